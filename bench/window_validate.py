#!/usr/bin/env python3
"""window_validate.py - the debug-window model against real overflows.

A real service (redis-server) runs as production and as a replica; the
replica is slowed by a known factor (its CPU is capped with the cpu cgroup
controller: quota = period / slowdown). `doppel proxy` sits in front, with one
open-loop client (bench/window-load) sending CPU-heavy EVAL requests over one
connection, Poisson or in bursts (MMPP). For each buffer size the script
measures the real time from the client's first request to the replica's first
overflow (/status first_overflow_s) and asks `doppel window` for its
prediction from measured rates:

  * the arrival rate and request size from a tcpdump capture of the run;
  * the replica's service rate from a calibration just before the run (a
    backlog of requests sent straight to the throttled replica);
  * the kernel's buffering in front of the replica (socket send and receive
    buffers, redis' query buffer), measured once in a calibration run as
    bytes the proxy had forwarded minus bytes the replica had executed when
    the first overflow came, and added to --buffer (--kernel-buffer).

Two predictions are printed per run: the parametric one (--traffic poisson or
the MMPP rescaled to the measured rate) and the trace-driven one (--arrivals
capture.pcap), each as the mean time to first overflow, with the ratio
measured / predicted. A table, never a pass/fail.

  bench/window_validate.py [--doppel build/cli/doppel] [--load build/bench/window-load]
                           [--slowdown 3] [--repeats 2] [--buffers 128K,512K,2M] [--quick]

Needs root (cgroups), redis-server and tcpdump. Every process it starts is
stopped by pid, and the cgroup removed, however it ends.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BACKLOG = 16384
ROOT = os.path.dirname(HERE)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def parse_size(text):
    mult = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    t = text.strip().upper().rstrip("B").rstrip("I")
    if t and t[-1] in mult:
        return int(float(t[:-1]) * mult[t[-1]])
    return int(t)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, secs=10):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d after %ds" % (port, secs))


def redis(port, *args):
    """One command over RESP; returns the raw reply text."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in map(str, args))
    s.sendall(req.encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if data.startswith(b"$"):
            n = int(data[1:data.index(b"\r\n")])
            if n < 0 or len(data) >= data.index(b"\r\n") + 2 + n + 2:
                break
        elif data.endswith(b"\r\n"):
            break
    s.close()
    return data.decode(errors="replace")


def eval_calls(port):
    for line in redis(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_eval:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


class Procs:
    """Every process started here, stopped by pid (TERM, then KILL)."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append((name, p))
        return p

    def stop(self, p, timeout=5):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for _, p in reversed(self.procs):
            try:
                os.kill(p.pid, signal.SIGCONT)
            except OSError:
                pass
            self.stop(p)


class Throttle:
    """Cap one process's CPU to 1/slowdown of a core: cgroup v1, cgroup v2, or
    SIGSTOP/SIGCONT duty cycling as a last resort."""

    PERIOD_US = 10000

    def __init__(self, pid, slowdown):
        self.pid, self.path, self.kind = pid, None, None
        quota = int(self.PERIOD_US / slowdown)
        v1 = "/sys/fs/cgroup/cpu"
        name = "doppel-window-bench-%d" % os.getpid()
        if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
            self.path, self.kind = os.path.join(v1, name), "cgroup v1 cpu.cfs_quota_us"
            os.mkdir(self.path)
            self._w("cpu.cfs_period_us", self.PERIOD_US)
            self._w("cpu.cfs_quota_us", quota)
            self._w("cgroup.procs", pid)
        elif os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            self.path, self.kind = os.path.join("/sys/fs/cgroup", name), "cgroup v2 cpu.max"
            os.mkdir(self.path)
            self._w("cpu.max", "%d %d" % (quota, self.PERIOD_US))
            self._w("cgroup.procs", pid)
        else:
            self.kind = "SIGSTOP duty cycle"
            self.stop_evt = threading.Event()
            on = self.PERIOD_US / slowdown / 1e6
            off = self.PERIOD_US / 1e6 - on

            def duty():
                while not self.stop_evt.is_set():
                    time.sleep(on)
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(off)
                    os.kill(pid, signal.SIGCONT)

            self.thread = threading.Thread(target=duty, daemon=True)
            self.thread.start()

    def _w(self, f, v):
        with open(os.path.join(self.path, f), "w") as fh:
            fh.write(str(v))

    def release(self):
        if self.path:
            root = os.path.dirname(self.path)
            try:
                with open(os.path.join(self.path, "cgroup.procs")) as fh:
                    pids = fh.read().split()
                for p in pids:
                    with open(os.path.join(root, "cgroup.procs"), "w") as fh:
                        fh.write(p)
            except OSError:
                pass
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    break
                except OSError:
                    time.sleep(0.1)
            self.path = None
        elif self.kind == "SIGSTOP duty cycle":
            self.stop_evt.set()
            self.thread.join()
            os.kill(self.pid, signal.SIGCONT)


def status(admin):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % admin, timeout=5) as r:
        return json.loads(r.read())


def calibrate(load, port, n):
    """Requests per second a server executes from a backlog of n requests."""
    out = subprocess.run([load, "--connect", "127.0.0.1:%d" % port, "--traffic", "det",
                          "--rate", "1000000", "--count", str(n), "--size", str(ARGS.size),
                          "--work", str(ARGS.work)], capture_output=True, text=True, check=True)
    j = json.loads(out.stdout)
    if j["replies"] < n:
        raise RuntimeError("calibration: %d of %d answers" % (j["replies"], n))
    return n / j["last_reply_s"]


def window(args):
    out = subprocess.run([ARGS.doppel, "window", "--json"] + args, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("doppel window %s: %s" % (" ".join(args), out.stderr.strip()))
    return json.loads(out.stdout)["results"][0]


def run_once(procs, tmp, prod, replica, traffic, rate, buffer, seed, max_s):
    """One measured debug window. Returns a dict of what was seen."""
    L, A = free_port(), free_port()
    cap = os.path.join(tmp, "run-%d.pcap" % seed)
    td_err = open(os.path.join(tmp, "tcpdump-%d.log" % seed), "w+")
    td = procs.start("tcpdump", ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-n", "-s", "128", "-w", cap,
                                 "tcp dst port %d" % L], stdout=subprocess.DEVNULL, stderr=td_err)
    for _ in range(100):
        td_err.seek(0)
        if "listening on" in td_err.read():
            break
        time.sleep(0.05)
    else:
        raise RuntimeError("tcpdump did not start")
    px = procs.start("proxy", [ARGS.doppel, "proxy", "--listen", "127.0.0.1:%d" % L,
                               "--backend", "127.0.0.1:%d" % prod,
                               "--replica", "127.0.0.1:%d" % replica,
                               "--buffer", str(buffer), "--admin", "127.0.0.1:%d" % A,
                               "--log-level", "warn"],
                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "proxy.log"), "a"))
    wait_port(L)
    wait_port(A)
    redis(replica, "CONFIG", "RESETSTAT")
    load_args = [ARGS.load, "--connect", "127.0.0.1:%d" % L, "--duration", str(max_s),
                 "--size", str(ARGS.size), "--work", str(ARGS.work), "--seed", str(seed)]
    load_args += ["--traffic", traffic] + (["--rate", "%.3f" % rate] if not traffic.startswith("mmpp") else [])
    ld = procs.start("load", load_args, stdout=subprocess.PIPE, text=True)
    start_off, rep, samples = None, None, []
    deadline = time.time() + max_s + 5
    while time.time() < deadline and ld.poll() is None:
        t0 = time.monotonic()
        st = status(A)
        t1 = time.monotonic()
        start_off = (t0 + t1) / 2 - st["uptime_s"]  # the proxy's start on CLOCK_MONOTONIC
        rep = st["replicas"][0]
        if rep["overflows"] >= 1:
            break
        calls = eval_calls(replica)
        samples.append(((t0 + t1) / 2, rep["bytes_forwarded"], rep["buffered"], calls,
                        time.monotonic()))
        time.sleep(0.02)
    # While a backlog waits in the proxy the replica is never idle: its
    # executed requests over that time are its service rate, and what the
    # proxy forwarded but the replica had not executed yet sat in the kernel.
    # The proxy always holds up to one flush interval (10 ms) of requests for
    # the replica; more than BACKLOG bytes means the kernel did not take them.
    busy_t, busy_c, hidden = 0.0, 0, []
    for a, b in zip(samples, samples[1:]):
        if a[2] > BACKLOG and b[2] > BACKLOG:
            busy_t += b[4] - a[4]
            busy_c += b[3] - a[3]
            hidden.append(b[1] - b[3] * ARGS.size)
    hidden.sort()
    overflowed = rep is not None and rep["overflows"] >= 1
    time.sleep(1.0)  # a little more traffic in the capture after the overflow
    procs.stop(ld)
    lj = json.loads(ld.stdout.read())
    st = status(A)
    rep = st["replicas"][0]
    # The replica finishes what it had read; then its count stops moving.
    calls, prev = eval_calls(replica), -1
    while calls != prev:
        time.sleep(0.3)
        prev, calls = calls, eval_calls(replica)
    procs.stop(px)
    procs.stop(td)
    measured = (start_off + rep["first_overflow_s"] - lj["start_mono"]) if overflowed else None
    calls_at_overflow = samples[-1][3] if samples else 0
    res = {
        "overflowed": overflowed,
        "measured": measured,
        "sent": lj["sent"],
        "late_max_ms": lj["late_max_ms"],
        "forwarded": rep["bytes_forwarded"],
        "executed_bytes": calls * ARGS.size,
        "hidden": rep["bytes_forwarded"] - calls * ARGS.size,
        "high_water": rep["buffer_high_water"],
        "capture": cap,
        "port": L,
        # too short a backlog to time: the replica was busy from about the
        # first request (rho > 1), so what it executed over the whole run
        "mu_run": busy_c / busy_t if busy_t > 0.5 else
        (calls_at_overflow / measured if overflowed and measured > 0 else None),
        "hidden_run": hidden[len(hidden) // 2] if len(hidden) >= 5 else None,
        "busy_s": busy_t,
        "samples": samples,
        "final": rep,
        "load": lj,
        "start_off": start_off,
    }
    return res


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--doppel", default=os.path.join(ROOT, "build", "cli", "doppel"))
    ap.add_argument("--load", default=os.path.join(ROOT, "build", "bench", "window-load"))
    ap.add_argument("--slowdown", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--buffers", default="128K,512K,2M")
    ap.add_argument("--size", type=int, default=1000, help="bytes per request")
    ap.add_argument("--work", type=int, default=100000, help="Lua loop iterations per request")
    ap.add_argument("--quick", action="store_true", help="one repeat, two buffers")
    ap.add_argument("--verbose", action="store_true", help="print each run's samples")
    ap.add_argument("--only", choices=("poisson", "bursty"), help="one kind of traffic")
    ARGS = ap.parse_args()
    if ARGS.quick:
        ARGS.repeats, ARGS.buffers = 1, "128K,512K"
    buffers = [parse_size(b) for b in ARGS.buffers.split(",")]
    for tool in ("redis-server", "tcpdump"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ["PATH"].split(":")):
            sys.exit("window_validate: %s is not installed (deploy/install.sh installs it)" % tool)
    procs, throttle = Procs(), None
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    tmp = tempfile.mkdtemp(prefix="doppel-window-bench.")
    try:
        P, R = free_port(), free_port()
        for name, port in (("prod", P), ("replica", R)):
            procs.start(name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", tmp,
                               "--dbfilename", name + ".rdb"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(port)
        replica_pid = [p for n, p in procs.procs if n == "replica"][0].pid
        mu_prod = calibrate(ARGS.load, P, 1000)
        throttle = Throttle(replica_pid, ARGS.slowdown)
        mu0 = calibrate(ARGS.load, R, 400)
        log("production executes %.0f req/s, the replica (%s, slowdown %.3g) %.0f req/s: "
            "measured slowdown %.2f" % (mu_prod, throttle.kind, ARGS.slowdown, mu0, mu_prod / mu0))
        scenarios = [
            ("poisson", "poisson", 1.5 * mu0, "poisson"),
            ("bursty", "mmpp:%.1f/0.5,%.1f/1.0" % (2.5 * mu0, 0.7 * mu0), (2.5 * 0.5 + 0.7) / 1.5 * mu0, None),
        ]
        # Kernel buffering in front of the replica, measured once.
        log("calibration run: the kernel's share of the buffer")
        cal = run_once(procs, tmp, P, R, "poisson", 1.5 * mu0, buffers[0], 999, 120)
        hidden = cal["hidden"]
        log("kernel buffering: %d bytes forwarded but not yet executed at the first overflow "
            "(%.0f KiB)" % (hidden, hidden / 1024))
        rows = []
        seed = 1
        for name, traffic, rate, _ in scenarios:
            if ARGS.only and name != ARGS.only:
                continue
            for b in buffers:
                for rep_i in range(ARGS.repeats):
                    mu = calibrate(ARGS.load, R, 300)
                    log("%s, buffer %d KiB, run %d: replica at %.0f req/s" % (name, b // 1024, rep_i + 1, mu))
                    r = run_once(procs, tmp, P, R, traffic, rate, b, seed, 240)
                    seed += 1
                    if ARGS.verbose:
                        log("run: %s" % json.dumps({k: v for k, v in r.items() if k != "samples"}))
                        for t, f, q, c, _ in r["samples"]:
                            log("  t=%.3f forwarded=%d queued=%d executed=%d" %
                                (t - r["load"]["start_mono"], f, q, c))
                    if not r["overflowed"]:
                        rows.append(dict(name=name, buffer=b, r=r, mu_cal=mu))
                        continue
                    mu_run = r["mu_run"] or mu
                    h_run = r["hidden_run"] if r["hidden_run"] is not None else hidden
                    svc = ["--service-rate", "%.3f" % mu_run, "--service", "det", "--buffer", str(b)]
                    cap = ["--arrivals", r["capture"], "--port", str(r["port"])]
                    tr = window(cap + ["--kernel-buffer", str(h_run)] + svc)
                    path = window(cap + ["--replay-from-start", "--kernel-buffer", str(h_run)] + svc)
                    lam, size = tr["rate"], tr["msg_size"]
                    if traffic.startswith("mmpp"):
                        # the configured bursts, rescaled to the measured mean rate
                        k = lam / rate
                        t_arg = "mmpp:" + ",".join("%.3f/%s" % (float(st.split("/")[0]) * k, st.split("/")[1])
                                                   for st in traffic[5:].split(","))
                        t_args = ["--traffic", t_arg]
                    else:
                        t_args = ["--rate", "%.3f" % lam, "--traffic", "poisson"]
                    base = t_args + ["--msg-size", "%.2f" % size, "--service", "det", "--buffer", str(b)]
                    par = window(base + ["--kernel-buffer", str(h_run), "--service-rate", "%.3f" % mu_run])
                    naive = window(base + ["--service-rate", "%.3f" % mu_run])
                    prior = window(base + ["--kernel-buffer", str(hidden), "--service-rate", "%.3f" % mu])
                    rows.append(dict(name=name, buffer=b, r=r, mu_cal=mu, mu=mu_run, lam=lam,
                                     par=par, tr=tr, path=path, naive=naive, prior=prior, h=h_run))
        print()
        print("debug window through doppel proxy: measured vs model (slowdown %.3g by %s; "
              "requests of %d bytes; kernel buffering %.0f KiB added to --buffer)"
              % (ARGS.slowdown, throttle.kind, ARGS.size, hidden / 1024))
        print()
        print("%-8s %6s %6s %6s %5s %7s %8s %8s %5s %8s %5s %8s %5s %8s %5s %8s" %
              ("TRAFFIC", "BUFFER", "LAMBDA", "MU", "RHO", "KERNEL", "MEASURED", "MODEL", "RATIO",
               "TRACE", "RATIO", "PATH", "RATIO", "PRIOR", "RATIO", "NO-KERN"))
        ratios = []
        for row in rows:
            r = row["r"]
            if "par" not in row:
                print("%-8s %5dK %6s %6.0f %5s %7s %8s" % (row["name"], row["buffer"] // 1024, "-",
                                                          row["mu_cal"], "-", "-", "none"))
                continue
            m = r["measured"]
            q = [row[k]["mean_s"] for k in ("par", "tr", "path", "prior")]
            ratios.append((row["name"],) + tuple(m / x for x in q))
            print("%-8s %5dK %6.0f %6.0f %5.2f %6.0fK %7.1fs %7.1fs %5.2f %7.1fs %5.2f %7.1fs %5.2f "
                  "%7.1fs %5.2f %7.1fs" %
                  (row["name"], row["buffer"] // 1024, row["lam"], row["mu"], row["lam"] / row["mu"],
                   row["h"] / 1024, m, q[0], m / q[0], q[1], m / q[1], q[2], m / q[2], q[3], m / q[3],
                   row["naive"]["mean_s"]))
        print()
        for kind in ("poisson", "bursty"):
            rs = [x for x in ratios if x[0] == kind]
            if not rs:
                continue
            parts = []
            for i, what in ((1, "model"), (2, "trace"), (3, "same path"), (4, "prior")):
                within = sum(1 for x in rs if 0.75 <= x[i] <= 1.25)
                parts.append("%s %.2f..%.2f (%d/%d within +-25%%)" %
                             (what, min(x[i] for x in rs), max(x[i] for x in rs), within, len(rs)))
            med = sorted(x[1] for x in rs)[len(rs) // 2]
            print("%s measured/predicted: %s; median (model) %.2f" % (kind, "; ".join(parts), med))
        print()
        print("LAMBDA: requests/s in the run's capture. MU: requests/s the replica executed while a "
              "backlog waited in the proxy.")
        print("KERNEL: bytes forwarded but not yet executed while a backlog waited (median), "
              "added to --buffer.")
        print("MODEL: doppel window's mean for these rates (Poisson, or the configured bursts at "
              "the measured mean rate).")
        print("TRACE: replaying the run's capture from random offsets; PATH: replaying it from its "
              "first request (the same arrivals).")
        print("PRIOR: MODEL with the service rate and kernel buffering calibrated before the run; "
              "NO-KERN: MODEL without kernel buffering.")
    finally:
        if throttle:
            throttle.release()
        procs.stop_all()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
