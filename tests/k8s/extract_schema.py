#!/usr/bin/python3
"""extract_schema.py - cut the Kubernetes OpenAPI (v2) spec down to what
deploy/k8s/ uses, for validate_manifests.py, and write it as JSON.

    extract_schema.py SWAGGER.json COMMIT > k8s-openapi-subset.json

SWAGGER.json is kubernetes/swagger.json.unprocessed of the
kubernetes-client/python repository (Kubernetes release-1.36 at COMMIT): the
API server's own OpenAPI document. Kept: every definition reachable from the
kinds below, with types, properties, required fields, formats and
$refs; descriptions are dropped.
"""
import json
import sys

KINDS = [
    "io.k8s.api.core.v1.Namespace", "io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.ServiceAccount", "io.k8s.api.apps.v1.Deployment", "io.k8s.api.batch.v1.Job",
    "io.k8s.api.rbac.v1.ClusterRole", "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "io.k8s.api.rbac.v1.Role", "io.k8s.api.rbac.v1.RoleBinding",
    "io.k8s.api.networking.v1.NetworkPolicy",
]
KEEP = {"type", "properties", "required", "items", "additionalProperties", "$ref", "enum", "format",
        "x-kubernetes-group-version-kind", "x-kubernetes-int-or-string"}


def strip(node, refs):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref":
                refs.append(v.split("/")[-1])
                out[k] = v
            elif k == "x-kubernetes-group-version-kind":
                out[k] = v
            elif k == "properties":
                out[k] = {p: strip(s, refs) for p, s in v.items()}
            elif k in KEEP:
                out[k] = strip(v, refs)
        return out
    if isinstance(node, list):
        return [strip(x, refs) for x in node]
    return node


def main():
    spec = json.load(open(sys.argv[1]))
    defs = spec["definitions"]
    out, todo = {}, list(KINDS)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        refs = []
        out[name] = strip(defs[name], refs)
        todo.extend(refs)
    doc = {
        "source": "Kubernetes OpenAPI v2 spec, release-1.36, as vendored in the kubernetes-client/python "
                  "repository, file kubernetes/swagger.json.unprocessed at commit " + sys.argv[2] +
                  "; cut to the definitions reachable from the kinds deploy/k8s uses by "
                  "tests/k8s/extract_schema.py (descriptions dropped)",
        "kinds": KINDS,
        "definitions": dict(sorted(out.items())),
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
