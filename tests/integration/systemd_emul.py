#!/usr/bin/python3
"""systemd_emul.py - run one systemd service unit the way systemd would, on a
machine where systemd is not PID 1 (no `systemctl start`, no `systemd-run`).

    systemd_emul.py UNIT-FILE INSTANCE [--map OLD=NEW]... [--state FILE]

It reads the unit (a template: %i is INSTANCE), and for its [Service]:
  * EnvironmentFile= / Environment= give the environment; ExecStart= is split
    into words and expanded as systemd does: %i/%I/%n/%N/%p specifiers, a word
    "$VAR" becomes the variable's value split at whitespace (quotes honoured),
    "${VAR}" inside a word is replaced as it is;
  * the main process runs in a cgroup of its own (the name=systemd hierarchy on
    a hybrid host, cgroup v2 otherwise): what is left in it after the main
    process exits is what systemd would find there;
  * CapabilityBoundingSet=, NoNewPrivileges=, LimitNOFILE=, WorkingDirectory=
    are applied to the main process, and the file-system sandboxing options
    (PrivateTmp=, ProtectSystem=, ProtectHome=, ReadWritePaths=,
    ProtectKernelTunables=, ProtectControlGroups=, RuntimeDirectory=,
    StateDirectory=) by mounts in a private mount namespace, as systemd does;
  * Type=notify: NOTIFY_SOCKET names a unix datagram socket this program owns;
    the unit is started when READY=1 arrives from the main process (checked with
    SCM_CREDENTIALS, NotifyAccess=main), failed after TimeoutStartSec=;
  * Restart=on-failure with RestartSec= and RestartPreventExitStatus=;
  * stop (SIGTERM or SIGINT to this program): KillSignal= to the main process
    (KillMode=mixed), up to TimeoutStopSec= for it to exit, then SIGKILL to
    whatever is left in the cgroup, which is reported.

Any directive it does not know is refused: the unit and this emulation stay
in step. --map OLD=NEW rewrites a path prefix in the unit (the test's doppel
binary for /usr/local/bin/doppel, its own directory for /etc/doppel).

Events are printed one per line ("ready pid=N", "exited pid=N status=S",
"restart", "stopped status=S leftover=N"); --state FILE holds the last one.
Exit status: 0 when the last run of the unit stopped cleanly on request
(exit status 0, nothing left in its cgroup), 1 otherwise.
"""
import ctypes
import os
import re
import resource
import select
import shlex
import signal
import socket
import struct
import sys
import time

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_SLAVE = 32, 4096, 16384, 1 << 19
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24

CAPS = ["chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
        "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
        "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
        "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
        "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
        "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
        "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore"]

# Directives this emulation applies (or that have no effect on one host).
KNOWN = {
    "Unit": {"Description", "Documentation", "After", "Wants", "Requires", "Before",
             "ConditionPathExists", "StartLimitIntervalSec", "StartLimitBurst"},
    "Service": {"Type", "NotifyAccess", "ExecStart", "EnvironmentFile", "Environment",
                "Restart", "RestartSec", "RestartPreventExitStatus", "TimeoutStartSec",
                "TimeoutStopSec", "KillMode", "KillSignal", "SuccessExitStatus",
                "CapabilityBoundingSet", "NoNewPrivileges", "LimitNOFILE", "WorkingDirectory",
                "PrivateTmp", "ProtectSystem", "ProtectHome", "ReadWritePaths",
                "ProtectKernelTunables", "ProtectControlGroups", "RuntimeDirectory",
                "RuntimeDirectoryPreserve", "StateDirectory", "SyslogIdentifier",
                "StandardOutput", "StandardError", "User", "Group", "DynamicUser"},
    "Install": {"WantedBy", "DefaultInstance"},
}

# Accepted and reported as not applied: seccomp filters and device/kernel
# protections need systemd itself (systemd-analyze verify checks their syntax).
NOT_APPLIED = {"PrivateDevices", "ProtectKernelModules", "ProtectKernelLogs", "ProtectClock",
               "ProtectHostname", "RestrictNamespaces", "RestrictRealtime", "LockPersonality",
               "MemoryDenyWriteExecute", "RestrictAddressFamilies", "SystemCallArchitectures",
               "SystemCallFilter"}

STATE_FILE = None


def say(line):
    print(line, flush=True)
    if STATE_FILE:
        with open(STATE_FILE + ".tmp", "w") as f:
            f.write(line + "\n")
        os.replace(STATE_FILE + ".tmp", STATE_FILE)


def die(msg):
    say("error " + msg)
    sys.exit(1)


def parse_unit(text, maps):
    for old, new in maps:
        text = text.replace(old, new)
    sections, cur = {}, None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        if not line or line[0] in "#;":
            continue
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            cur = m.group(1)
            sections.setdefault(cur, [])
            continue
        if cur is None or "=" not in line:
            die("cannot parse unit line: " + line)
        k, v = line.split("=", 1)
        k, v = k.strip(), v.strip()
        if cur == "Service" and k in NOT_APPLIED:
            say("not applied here: %s=%s" % (k, v))
            continue
        if cur not in KNOWN or k not in KNOWN[cur]:
            die("this emulation does not apply [%s] %s=; teach tests/integration/systemd_emul.py" % (cur, k))
        sections[cur].append((k, v))
    return sections


def get(sec, key, default=None):
    vals = [v for k, v in sec if k == key]
    return vals[-1] if vals else default


def get_all(sec, key):
    return [v for k, v in sec if k == key]


def specifiers(s, unit, instance):
    prefix = unit.split("@")[0]
    full = "%s@%s.service" % (prefix, instance)
    rep = {"i": instance, "I": instance, "n": full, "N": full[: -len(".service")], "p": prefix, "%": "%"}
    return re.sub(r"%(.)", lambda m: rep.get(m.group(1), m.group(0)), s)


def load_env_file(path):
    """systemd's EnvironmentFile= syntax, for the subset a shell would also read."""
    env = {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("export "):
                line = line[7:]
            k, _, v = line.partition("=")
            k, v = k.strip(), v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            env[k] = v
    return env


def expand_exec(cmdline, env):
    words = shlex.split(cmdline)
    out = []
    for w in words:
        if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", w):
            out.extend(shlex.split(env.get(w[1:], "")))
        else:
            out.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), w))
    return out


def seconds(text, default):
    if text is None:
        return default
    m = re.fullmatch(r"([0-9.]+)\s*(ms|s|min|)", text)
    if not m:
        die("cannot parse a time span: " + text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "ms" else v * 60 if m.group(2) == "min" else v


def yes(text):
    return text is not None and text.lower() in ("yes", "true", "1", "on")


# ---- what runs in the child between fork and exec ----

def mount(src, target, fstype, flags, data=None):
    if libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                  flags, data.encode() if data else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s on %s: %s" % (src, target, os.strerror(e)))


def mount_flags(target):
    """The per-mount flags of the mount at target, to keep them on a remount."""
    flags = 0
    with open("/proc/self/mountinfo") as f:
        for line in f:
            p = line.split()
            if p[4] == target:
                opts = p[5].split(",")
                flags = 0
                for o, b in (("nosuid", MS_NOSUID), ("nodev", MS_NODEV), ("noexec", MS_NOEXEC),
                             ("noatime", MS_NOATIME), ("nodiratime", MS_NODIRATIME), ("relatime", MS_RELATIME)):
                    if o in opts:
                        flags |= b
    return flags


def remount(target, ro):
    mount(None, target, None, MS_REMOUNT | MS_BIND | mount_flags(target) | (MS_RDONLY if ro else 0))


def bind_self(path, ro):
    mount(path, path, None, MS_BIND | MS_REC)
    remount(path, ro)


def mountpoints():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4].replace("\\040", " ") for line in f]


def under(path, prefixes):
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def sandbox(opts):
    """File-system options, in the order systemd's namespace setup applies them."""
    os.unshare(CLONE_NEWNS) if hasattr(os, "unshare") else None
    if not hasattr(os, "unshare") and libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_SLAVE)
    rw = list(opts["rw_paths"])
    if opts["private_tmp"]:
        for d, name in (("/tmp", "tmp"), ("/var/tmp", "var-tmp")):
            src = os.path.join(opts["private_tmp"], name)
            os.makedirs(src, exist_ok=True)
            os.chmod(src, 0o1777)
            mount(src, d, None, MS_BIND)
            rw.append(d)
    home = opts["protect_home"]
    if home in ("yes", "true", "read-only", "tmpfs"):
        empty = os.path.join(opts["private_tmp"] or opts["scratch"], "inaccessible")
        os.makedirs(empty, exist_ok=True)
        os.chmod(empty, 0)
        for d in ("/home", "/root", "/run/user"):
            if not os.path.isdir(d):
                continue
            if home == "read-only":
                bind_self(d, True)
            elif home == "tmpfs":
                mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0755")
            else:
                mount(empty, d, None, MS_BIND)
                remount(d, True)
    for p in rw:
        if os.path.exists(p):
            mount(p, p, None, MS_BIND | MS_REC)
    ps = opts["protect_system"]
    if ps in ("yes", "true", "full", "strict"):
        ro = ["/usr", "/boot", "/efi"] + (["/etc"] if ps in ("full", "strict") else [])
        if ps == "strict":
            ro = ["/"]
        for mp in mountpoints():
            if not under(mp, ro) or under(mp, ["/proc", "/sys", "/dev"]) or under(mp, rw):
                continue
            remount(mp, True)
        for d in ro:
            if d != "/" and os.path.isdir(d) and d not in mountpoints():
                bind_self(d, True)
    if opts["protect_tunables"]:
        for d in ("/proc/sys", "/proc/sysrq-trigger"):
            if os.path.exists(d):
                bind_self(d, True)
        for mp in mountpoints():
            if under(mp, ["/sys"]):
                remount(mp, True)
    if opts["protect_cgroups"]:
        for mp in mountpoints():
            if under(mp, ["/sys/fs/cgroup"]):
                remount(mp, True)


def child_setup(opts):
    os.setsid()
    with open(os.path.join(opts["cgroup"], "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    if opts["nofile"]:
        resource.setrlimit(resource.RLIMIT_NOFILE, (opts["nofile"], opts["nofile"]))
    if opts["needs_ns"]:
        sandbox(opts)
    if opts["workdir"]:
        os.chdir(opts["workdir"])
    for cap in opts["drop_caps"]:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP %d" % cap)
    if opts["uid"]:
        os.setgroups([])
        os.setresgid(opts["uid"], opts["uid"], opts["uid"])
        os.setresuid(opts["uid"], opts["uid"], opts["uid"])
    if opts["nnp"] and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    for s in range(1, signal.NSIG):
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def has_cap(name):
    with open("/proc/self/status") as f:
        eff = int(next(l for l in f if l.startswith("CapEff:")).split()[1], 16)
    return bool(eff >> CAPS.index(name) & 1)


def make_cgroup(name):
    for base in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(base, "cgroup.procs")):
            path = os.path.join(base, name)
            os.makedirs(path, exist_ok=True)
            return path
    die("no cgroup hierarchy to track the unit's processes in")


def cgroup_pids(path):
    pids = []
    for root, _, files in os.walk(path):
        if "cgroup.procs" in files:
            with open(os.path.join(root, "cgroup.procs")) as f:
                pids += [int(x) for x in f.read().split()]
    return pids


def describe(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return "%d (%s)" % (pid, f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120])
    except OSError:
        return str(pid)


def main():
    global STATE_FILE
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        sys.exit(2)
    unit_path, instance = args[0], args[1]
    maps, dropins = [], []
    rest = args[2:]
    while rest:
        if rest[0] == "--map" and len(rest) > 1:
            old, _, new = rest[1].partition("=")
            maps.append((old, new))
            rest = rest[2:]
        elif rest[0] == "--dropin" and len(rest) > 1:
            dropins.append(rest[1])
            rest = rest[2:]
        elif rest[0] == "--state" and len(rest) > 1:
            STATE_FILE = rest[1]
            rest = rest[2:]
        else:
            die("unknown argument " + rest[0])
    unit = os.path.basename(unit_path)
    text = open(unit_path).read()
    for d in dropins:  # drop-ins are read after the unit: later settings win
        text += "\n" + open(d).read()
    sections = parse_unit(text, maps)
    svc = sections.get("Service", [])
    un = sections.get("Unit", [])
    for cond in get_all(un, "ConditionPathExists"):
        cond = specifiers(cond, unit, instance)
        neg = cond.startswith("!")
        if os.path.exists(cond.lstrip("!")) == neg:
            die("condition failed: ConditionPathExists=" + cond)
    typ = get(svc, "Type", "simple")
    if typ not in ("simple", "exec", "notify"):
        die("Type=%s is not emulated" % typ)
    if get(svc, "NotifyAccess", "main") != "main":
        die("NotifyAccess= other than main is not emulated")
    if get(svc, "KillMode", "control-group") != "mixed":
        die("only KillMode=mixed is emulated")
    for who in ("User", "Group"):
        if get(svc, who, "root") != "root":
            die("%s= other than root is not emulated" % who)
    uid = 0
    if yes(get(svc, "DynamicUser")):
        # An unused uid, and what DynamicUser= implies.
        used = {int(l.split(":")[2]) for l in open("/etc/passwd") if l.count(":") >= 2}
        uid = next(u for u in range(61184 + os.getpid() % 4000, 65519) if u not in used)
        svc = [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "read-only"),
               ("PrivateTmp", "yes")] + svc

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for ef in get_all(svc, "EnvironmentFile"):
        ef = specifiers(ef, unit, instance)
        optional = ef.startswith("-")
        ef = ef.lstrip("-")
        if not os.path.exists(ef):
            if optional:
                continue
            die("EnvironmentFile %s does not exist" % ef)
        env.update(load_env_file(ef))
    for e in get_all(svc, "Environment"):
        for w in shlex.split(specifiers(e, unit, instance)):
            k, _, v = w.partition("=")
            env[k] = v
    execs = get_all(svc, "ExecStart")
    if len(execs) != 1:
        die("exactly one ExecStart= is emulated")
    argv = expand_exec(specifiers(execs[0], unit, instance), env)
    if not argv or not os.path.isabs(argv[0]):
        die("ExecStart must start with an absolute path: %r" % argv)

    scratch = "/run/systemd-emul-%d" % os.getpid()
    os.makedirs(scratch, exist_ok=True)
    cg = make_cgroup("systemd-emul-%d.service" % os.getpid())
    keep = get(svc, "CapabilityBoundingSet")
    drop = []
    if keep is not None:
        want = {c.lower().replace("cap_", "") for c in keep.split()}
        unknown = want - set(CAPS)
        if unknown:
            die("unknown capabilities " + " ".join(sorted(unknown)))
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
        drop = [i for i, c in enumerate(CAPS) if c not in want and i <= last]
    rw = [specifiers(p, unit, instance).lstrip("-") for v in get_all(svc, "ReadWritePaths") for p in v.split()]
    for base, key in (("/run/", "RuntimeDirectory"), ("/var/lib/", "StateDirectory")):
        for d in get(svc, key, "").split():
            os.makedirs(base + d, mode=0o755, exist_ok=True)
            if uid:
                os.chown(base + d, uid, uid)
            rw.append(base + d)
    nofile = int(get(svc, "LimitNOFILE") or 0)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if nofile > hard and not has_cap("sys_resource"):
        say("LimitNOFILE=%d lowered to %d: this host's hard limit (systemd as PID 1 can raise it)" % (nofile, hard))
        nofile = hard
    opts = {
        "cgroup": cg, "scratch": scratch, "drop_caps": drop,
        "nnp": yes(get(svc, "NoNewPrivileges")),
        "nofile": nofile, "uid": uid,
        "workdir": get(svc, "WorkingDirectory"),
        "private_tmp": os.path.join(scratch, "private") if yes(get(svc, "PrivateTmp")) else None,
        "protect_system": (get(svc, "ProtectSystem") or "no").lower(),
        "protect_home": (get(svc, "ProtectHome") or "no").lower(),
        "protect_tunables": yes(get(svc, "ProtectKernelTunables")),
        "protect_cgroups": yes(get(svc, "ProtectControlGroups")),
        "rw_paths": rw,
    }
    opts["needs_ns"] = bool(opts["private_tmp"] or opts["protect_system"] not in ("no", "false")
                            or opts["protect_home"] not in ("no", "false") or opts["protect_tunables"]
                            or opts["protect_cgroups"])
    start_timeout = seconds(get(svc, "TimeoutStartSec"), 90)
    stop_timeout = seconds(get(svc, "TimeoutStopSec"), 90)
    restart = get(svc, "Restart", "no")
    if restart not in ("no", "on-failure"):
        die("Restart=%s is not emulated" % restart)
    restart_sec = seconds(get(svc, "RestartSec"), 0.1)
    prevent = {int(x) for x in get(svc, "RestartPreventExitStatus", "").split()}
    success = {0} | {int(x) for x in get(svc, "SuccessExitStatus", "").split() if x.isdigit()}
    killsig = getattr(signal, get(svc, "KillSignal", "SIGTERM"))
    preserve_runtime = get(svc, "RuntimeDirectoryPreserve", "no")
    if preserve_runtime not in ("yes", "restart") and get(svc, "RuntimeDirectory"):
        die("RuntimeDirectory= without RuntimeDirectoryPreserve=yes is not emulated")

    notify = None
    if typ == "notify":
        npath = os.path.join(scratch, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(npath)
        os.chmod(npath, 0o777)  # as /run/systemd/notify: any uid may send
        notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        env["NOTIFY_SOCKET"] = npath
    env["INVOCATION_ID"] = os.urandom(16).hex()

    stop = {"requested": False}

    def on_stop(sig, frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    say("exec " + " ".join(shlex.quote(a) for a in argv))
    clean = False
    while True:
        import subprocess

        proc = subprocess.Popen(argv, env=env, preexec_fn=lambda: child_setup(opts), close_fds=True)
        say("started pid=%d cgroup=%s" % (proc.pid, cg))
        ready = typ != "notify"
        if ready:
            say("ready pid=%d" % proc.pid)
        t0 = time.monotonic()
        status = None
        stopping_since = None
        while status is None:
            if stop["requested"] and stopping_since is None:
                stopping_since = time.monotonic()
                say("stopping: %s to pid %d" % (signal.Signals(killsig).name, proc.pid))
                proc.send_signal(killsig)
            if stopping_since is not None and time.monotonic() - stopping_since > stop_timeout:
                say("stop timed out after %.0f s: SIGKILL" % stop_timeout)
                for p in cgroup_pids(cg):
                    os.kill(p, signal.SIGKILL)
            if not ready and time.monotonic() - t0 > start_timeout:
                say("start timed out after %.0f s (no READY=1)" % start_timeout)
                stop["requested"] = True
            rl = [notify] if notify is not None else []
            r, _, _ = select.select(rl, [], [], 0.05)
            if r:
                data, anc, _, _ = notify.recvmsg(4096, socket.CMSG_SPACE(12))
                pid = None
                for level, kind, blob in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                        pid = struct.unpack("iII", blob[:12])[0]
                msg = data.decode(errors="replace").split("\n")
                if pid != proc.pid:
                    say("ignored notification from pid %s (not the main process %d): %r" % (pid, proc.pid, msg))
                elif "READY=1" in msg and not ready:
                    ready = True
                    say("ready pid=%d after %.2f s" % (proc.pid, time.monotonic() - t0))
            status = proc.poll()
        leftover = cgroup_pids(cg)
        if leftover:
            say("left in the cgroup after the main process exited (systemd would SIGKILL them): "
                + ", ".join(describe(p) for p in leftover))
            for p in leftover:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        say("exited pid=%d status=%d ready=%d leftover=%d" % (proc.pid, status, ready, len(leftover)))
        if stop["requested"]:
            clean = status in success and not leftover and ready
            say("stopped status=%d leftover=%d clean=%d" % (status, len(leftover), clean))
            break
        if restart == "on-failure" and status not in success and status not in prevent:
            say("restart in %.1f s (Restart=on-failure, exit status %d)" % (restart_sec, status))
            deadline = time.monotonic() + restart_sec
            while time.monotonic() < deadline and not stop["requested"]:
                time.sleep(0.05)
            if stop["requested"]:
                break
            continue
        say("failed status=%d (no restart%s)" % (status, ": RestartPreventExitStatus" if status in prevent else ""))
        break
    for _ in range(50):
        if not cgroup_pids(cg):
            break
        time.sleep(0.1)
    try:
        os.rmdir(cg)
    except OSError as e:
        say("cannot remove the cgroup %s: %s" % (cg, e))
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
