#!/usr/bin/python3
"""validate_manifests.py - check deploy/k8s/*.yaml offline, without a cluster.

    validate_manifests.py SCHEMA.json FILE.yaml... [--self-test]

1. Schema: each document is validated against its kind's definition in the
   Kubernetes OpenAPI subset SCHEMA.json (see extract_schema.py for where it
   comes from): types, required fields, int32 ranges, and - as
   kubeconform's -strict does - no field the API does not know (a misspelt
   field is silently dropped by the API server, which is worse than an error).
   (The v2 spec carries no enums; values such as restartPolicy are not checked.)
2. Consistency, which a schema cannot say: names are DNS labels, namespaces
   exist, a Deployment's selector matches its template, every Service selects
   a pod of the set and its targetPort names a port of that pod,
   NetworkPolicies select pods of the set, RBAC bindings name roles and
   accounts that exist, some role may create nodes/checkpoint and the
   checkpoint Job's account is bound to it, every `doppel proxy` listens on a
   declared port and its --replica is a Service of the set, the debug replica
   runs the image the checkpoint Job pushes, and the Job checkpoints a
   container that production has.

--self-test breaks copies of the manifests in known ways and fails unless
each break is reported. Exit status 0 when everything holds, 1 otherwise.
"""
import copy
import json
import re
import sys

import yaml

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


class Schema:
    def __init__(self, path):
        doc = json.load(open(path))
        self.defs = doc["definitions"]
        self.by_gvk = {}
        for name, d in self.defs.items():
            for gvk in d.get("x-kubernetes-group-version-kind", []):
                self.by_gvk[(gvk["group"], gvk["version"], gvk["kind"])] = name

    def check(self, obj, where):
        errs = []
        api = obj.get("apiVersion", "")
        group, _, version = api.rpartition("/")
        name = self.by_gvk.get((group, version, obj.get("kind")))
        if not name:
            return ["%s: no schema for apiVersion %r kind %r" % (where, api, obj.get("kind"))]
        self.value({"$ref": "#/definitions/" + name}, obj, where, errs)
        return errs

    def value(self, s, v, path, errs, defname=None):
        if "$ref" in s:
            ref = s["$ref"].split("/")[-1]
            return self.value(self.defs[ref], v, path, errs, ref)
        if v is None:
            return
        t = s.get("type")
        if defname and defname.endswith("resource.Quantity"):
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                errs.append("%s: a quantity, not %r" % (path, v))
            return
        if s.get("format") == "int-or-string":
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                errs.append("%s: a number or a name, not %r" % (path, v))
            return
        if t == "object" or "properties" in s:
            if not isinstance(v, dict):
                errs.append("%s: expected an object, got %r" % (path, v))
                return
            props = s.get("properties", {})
            for k in s.get("required", []):
                if k not in v:
                    errs.append("%s: missing required field %r" % (path, k))
            for k, sub in v.items():
                if k in props:
                    self.value(props[k], sub, "%s.%s" % (path, k), errs)
                elif "additionalProperties" in s:
                    self.value(s["additionalProperties"], sub, "%s.%s" % (path, k), errs)
                elif props:
                    errs.append("%s: unknown field %r" % (path, k))
        elif t == "array":
            if not isinstance(v, list):
                errs.append("%s: expected a list, got %r" % (path, v))
                return
            for i, item in enumerate(v):
                self.value(s.get("items", {}), item, "%s[%d]" % (path, i), errs)
        elif t == "string":
            if not isinstance(v, str):
                errs.append("%s: expected a string, got %r" % (path, v))
        elif t == "integer":
            if not isinstance(v, int) or isinstance(v, bool):
                errs.append("%s: expected an integer, got %r" % (path, v))
            elif s.get("format") == "int32" and not -2**31 <= v < 2**31:
                errs.append("%s: %d does not fit int32" % (path, v))
        elif t == "number":
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                errs.append("%s: expected a number, got %r" % (path, v))
        elif t == "boolean":
            if not isinstance(v, bool):
                errs.append("%s: expected true or false, got %r" % (path, v))
        if "enum" in s and v not in s["enum"]:
            errs.append("%s: %r is not one of %s" % (path, v, s["enum"]))


def pod_spec(obj):
    """(labels, spec) of the pods an object runs, or None."""
    if obj["kind"] == "Pod":
        return obj["metadata"].get("labels", {}), obj["spec"]
    if obj["kind"] in ("Deployment", "Job"):
        t = obj["spec"]["template"]
        return t.get("metadata", {}).get("labels", {}), t["spec"]
    return None


def arg_after(args, opt):
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == opt]


def consistency(docs):
    errs = []
    ns = {d["metadata"]["name"] for _, d in docs if d["kind"] == "Namespace"}
    objs = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for _, d in docs}
    pods = []  # (where, namespace, labels, spec)
    for where, d in docs:
        md = d["metadata"]
        if not DNS_SUBDOMAIN.match(md["name"]):
            errs.append("%s: name %r is not a DNS subdomain" % (where, md["name"]))
        if d["kind"] not in CLUSTER_SCOPED and md.get("namespace") not in ns:
            errs.append("%s: namespace %r is not created by these manifests" % (where, md.get("namespace")))
        p = pod_spec(d)
        if p:
            labels, spec = p
            pods.append((where, md.get("namespace"), labels, spec, d))
            names = [c["name"] for c in spec.get("containers", [])]
            if len(set(names)) != len(names):
                errs.append("%s: container names repeat: %s" % (where, names))
            for c in spec.get("containers", []):
                if not DNS_LABEL.match(c["name"]):
                    errs.append("%s: container name %r is not a DNS label" % (where, c["name"]))
                ports = {p.get("name") for p in c.get("ports", [])}
                for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                    port = c.get(probe, {}).get("tcpSocket", {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        errs.append("%s: %s of %s names port %r it does not declare" % (where, probe, c["name"], port))
        if d["kind"] == "Deployment":
            sel = d["spec"]["selector"].get("matchLabels", {})
            if not sel or any(labels.get(k) != v for k, v in sel.items()):
                errs.append("%s: selector %s does not match the template's labels %s" % (where, sel, labels))
    services = {}
    for where, d in docs:
        if d["kind"] != "Service":
            continue
        sel = d["spec"].get("selector", {})
        key = (d["metadata"]["name"], d["metadata"]["namespace"])
        services[key] = {p["port"] for p in d["spec"]["ports"]}
        chosen = [p for p in pods if p[1] == d["metadata"]["namespace"] and sel and
                  all(p[2].get(k) == v for k, v in sel.items())]
        if not chosen:
            errs.append("%s: service %s selects no pod of these manifests (%s)" % (where, key[0], sel))
        for port in d["spec"]["ports"]:
            tp = port.get("targetPort", port["port"])
            for pw, _, _, spec, _ in chosen:
                declared = [(c["name"], p) for c in spec["containers"] for p in c.get("ports", [])]
                if isinstance(tp, str) and not any(p.get("name") == tp for _, p in declared):
                    errs.append("%s: targetPort %r is no port of %s" % (where, tp, pw))
                if isinstance(tp, int) and not any(p["containerPort"] == tp for _, p in declared):
                    errs.append("%s: targetPort %d is no containerPort of %s" % (where, tp, pw))
    # doppel proxies: --listen on a declared port, --replica a Service of the set
    for where, nsname, _, spec, _ in pods:
        for c in spec["containers"]:
            argv = c.get("command", []) + c.get("args", [])
            if len(argv) < 2 or not argv[0].endswith("doppel") or argv[1] != "proxy":
                continue
            for listen in arg_after(argv, "--listen"):
                port = int(listen.rsplit(":", 1)[1])
                if port not in [p["containerPort"] for p in c.get("ports", [])]:
                    errs.append("%s: doppel in %s listens on %d, which it does not declare" % (where, c["name"], port))
            for rep in arg_after(argv, "--replica"):
                addr = rep.split("=", 1)[-1]
                host, port = addr.rsplit(":", 1)
                m = re.match(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?$", host)
                if not m or (m.group(1), m.group(2)) not in services:
                    errs.append("%s: --replica %s is not a Service of these manifests" % (where, addr))
                elif int(port) not in services[(m.group(1), m.group(2))]:
                    errs.append("%s: --replica %s: the Service has no port %s" % (where, addr, port))
    # NetworkPolicies isolate pods of the set
    for where, d in docs:
        if d["kind"] != "NetworkPolicy":
            continue
        sel = d["spec"]["podSelector"].get("matchLabels", {})
        if not [p for p in pods if p[1] == d["metadata"]["namespace"] and sel and
                all(p[2].get(k) == v for k, v in sel.items())]:
            errs.append("%s: podSelector %s selects no pod of these manifests" % (where, sel))
    # RBAC
    for where, d in docs:
        if d["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ref = d["roleRef"]
        rns = None if ref["kind"] == "ClusterRole" else d["metadata"].get("namespace")
        if (ref["kind"], rns, ref["name"]) not in objs:
            errs.append("%s: roleRef %s/%s does not exist here" % (where, ref["kind"], ref["name"]))
        for s in d.get("subjects", []):
            if s["kind"] == "ServiceAccount" and ("ServiceAccount", s.get("namespace"), s["name"]) not in objs:
                errs.append("%s: subject ServiceAccount %s/%s does not exist here" % (where, s.get("namespace"), s["name"]))
    checkpointers = {r["metadata"]["name"] for _, r in docs if r["kind"] == "ClusterRole" and any(
        "" in rule.get("apiGroups", []) and "nodes/checkpoint" in rule.get("resources", [])
        and "create" in rule.get("verbs", []) for rule in r.get("rules", []))}
    if not checkpointers:
        errs.append("no ClusterRole may create nodes/checkpoint (the kubelet's checkpoint API)")
    for where, nsname, _, spec, d in pods:
        if d["kind"] != "Job":
            continue
        sa = spec.get("serviceAccountName", "default")
        bound = [b for _, b in docs if b["kind"] == "ClusterRoleBinding" and b["roleRef"]["name"] in checkpointers
                 and any(s["kind"] == "ServiceAccount" and s["name"] == sa and s.get("namespace") == nsname
                         for s in b.get("subjects", []))]
        if not bound:
            errs.append("%s: its service account %s may not create nodes/checkpoint" % (where, sa))
        script = " ".join(c.get("args", [""])[-1] for c in spec["containers"])
        m = re.search(r"/checkpoint/([a-z0-9-]+)/\$POD/([a-z0-9-]+)", script)
        ann = re.search(r"checkpoint\.name=([a-z0-9-]+)", script)
        if not m:
            errs.append("%s: no kubelet checkpoint request (POST .../checkpoint/NS/$POD/CONTAINER)" % where)
            continue
        prod = [p for p in pods if p[1] == m.group(1) and p[4]["kind"] == "Deployment" and
                m.group(2) in [c["name"] for c in p[3]["containers"]]]
        if not prod:
            errs.append("%s: checkpoints container %r, which no Deployment in %s has" % (where, m.group(2), m.group(1)))
        if not ann or ann.group(1) != m.group(2):
            errs.append("%s: the image's checkpoint.name annotation must name the checkpointed container %r" % (where, m.group(2)))
        image = [e.get("value") for c in spec["containers"] for e in c.get("env", []) if e["name"] == "IMAGE"]
        restored = [p for p in pods if p[4]["kind"] == "Pod" and any(
            c["name"] == m.group(2) and c["image"] in image for c in p[3]["containers"])]
        if not restored:
            errs.append("%s: no debug pod runs container %r from the image it pushes (%s)" % (where, m.group(2), image))
    return errs


def run(schema, docs):
    errs = []
    for where, d in docs:
        errs += schema.check(d, where)
    if not errs:
        errs += consistency(docs)
    return errs


def self_test(schema, docs):
    """Each break must be reported; returns the breaks that were not."""
    def find(kind, name):
        return next(i for i, (_, d) in enumerate(docs) if d["kind"] == kind and d["metadata"]["name"] == name)

    def containers(dd):
        return pod_spec(dd)[1]["containers"]

    breaks = []

    def brk(what, fn):
        dd = copy.deepcopy(docs)
        fn(dd)
        if not run(schema, dd):
            breaks.append(what)

    dep, pod, job = find("Deployment", "web"), find("Pod", "web-debug"), find("Job", "web-checkpoint")
    brk("a misspelt field", lambda dd: dd[dep][1]["spec"]["template"]["spec"].__setitem__(
        "contianers", dd[dep][1]["spec"]["template"]["spec"].pop("containers")))
    brk("a port given as text", lambda dd: containers(dd[dep][1])[1]["ports"][0].__setitem__("containerPort", "7379"))
    brk("a count given as text", lambda dd: dd[job][1]["spec"].__setitem__("backoffLimit", "none"))
    brk("a selector that misses", lambda dd: dd[dep][1]["spec"]["selector"]["matchLabels"].__setitem__("app", "other"))
    brk("a targetPort nobody declares", lambda dd: containers(dd[pod][1])[1]["ports"][0].__setitem__("name", "relay2"))
    brk("--replica to an unknown Service", lambda dd: containers(dd[dep][1])[1]["command"].__setitem__(
        containers(dd[dep][1])[1]["command"].index("--replica") + 1, "debug=nowhere.shop.svc:6379"))
    brk("no nodes/checkpoint rule", lambda dd: [r.__setitem__("resources", ["nodes/proxy"]) for _, d in dd
                                                  if d["kind"] == "ClusterRole" for r in d["rules"]
                                                  if "nodes/checkpoint" in r["resources"]])
    brk("a debug pod with another image", lambda dd: containers(dd[pod][1])[0].__setitem__("image", "redis:7"))
    brk("a Deployment without its Namespace", lambda dd: dd.pop(find("Namespace", "shop")))
    return breaks


def main():
    args = [a for a in sys.argv[1:] if a != "--self-test"]
    schema = Schema(args[0])
    docs = []
    for path in args[1:]:
        with open(path) as f:
            for i, d in enumerate(yaml.safe_load_all(f)):
                if d is not None:
                    docs.append(("%s#%d %s/%s" % (path.rsplit("/", 1)[-1], i + 1, d.get("kind"),
                                                  d.get("metadata", {}).get("name")), d))
    errs = run(schema, docs)
    for e in errs:
        print("INVALID " + e)
    kinds = {}
    for _, d in docs:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    print("%d documents (%s): %s" % (len(docs), ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())),
                                      "valid" if not errs else "%d problems" % len(errs)))
    if errs:
        sys.exit(1)
    if "--self-test" in sys.argv:
        missed = self_test(schema, docs)
        for m in missed:
            print("SELF-TEST: %s was not reported" % m)
        print("self-test: 9 deliberate breaks, %d reported" % (9 - len(missed)))
        sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
