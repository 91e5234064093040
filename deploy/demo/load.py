#!/usr/bin/python3
"""load.py - the users of the demo's profile store (deploy/demo/kvd.c).

    load.py HOST:PORT --users N --stats FILE --expect FILE [--rate R] [--stop FILE]
    load.py --seed DIR --users N

With --seed DIR it only writes N records into DIR and exits. Otherwise it
sends requests until FILE given by --stop exists (or SIGTERM), one HTTP/1.0
request per connection, each with an X-Request-Id header:
  * mostly reads of random users' records;
  * now and then a user updates a record twice in a row and reads it after
    each update (a retry, a double click): PUT v1, GET, PUT v2, GET.
It knows every record's latest value, so it checks every answer: a read
that returns anything but the latest value is counted as "stale". Network
failures and non-2xx answers are "errors". At most --rate requests a
second (default 300). Every 0.25 s FILE given by
--stats gets {"requests", "errors", "stale", "updates", "last_stale_user",
"last_error"};
every read's expected answer is appended to --expect as "ID VALUE".
"""
import json
import os
import random
import signal
import socket
import sys
import time


def record(user, version):
    return "user=%05d;balance=%09d;v=%06d" % (user, (user * 7919 + version * 104729) % 10**9, version)


def request(addr, method, user, rid, body=""):
    s = socket.create_connection(addr, timeout=30)
    try:
        msg = "%s /user/%d HTTP/1.0\r\nX-Request-Id: %d\r\nContent-Length: %d\r\n\r\n%s" % (
            method, user, rid, len(body), body)
        s.sendall(msg.encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    return status, payload.decode(errors="replace")


def main():
    args = sys.argv[1:]
    opts = {}
    addr = None
    while args:
        if args[0].startswith("--"):
            opts[args[0][2:]] = args[1]
            args = args[2:]
        else:
            addr = args[0]
            args = args[1:]
    users = int(opts.get("users", "1000"))
    if "seed" in opts:
        for u in range(users):
            with open(os.path.join(opts["seed"], "user-%d" % u), "w") as f:
                f.write(record(u, 0))
        return
    host, port = addr.rsplit(":", 1)
    addr = (host, int(port))
    version = {u: 0 for u in range(users)}
    st = {"requests": 0, "errors": 0, "stale": 0, "updates": 0, "last_stale_user": None, "last_error": None}
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__("now", True))
    expect = open(opts["expect"], "a", buffering=1)
    rng = random.Random(7)
    rid = 0
    last_write = 0.0
    gap = 1.0 / float(opts.get("rate", "300"))
    next_at = time.monotonic()

    def write_stats():
        with open(opts["stats"] + ".tmp", "w") as f:
            json.dump(st, f)
        os.replace(opts["stats"] + ".tmp", opts["stats"])

    def do(method, user, body=""):
        nonlocal rid
        rid += 1
        if method == "GET":
            expect.write("%d %s\n" % (rid, record(user, version[user])))
        try:
            status, payload = request(addr, method, user, rid, body)
        except OSError as e:
            st["requests"] += 1
            st["errors"] += 1
            st["last_error"] = "%s /user/%d: %s" % (method, user, e)
            return
        st["requests"] += 1
        if status // 100 != 2:
            st["errors"] += 1
            st["last_error"] = "%s /user/%d: HTTP %d" % (method, user, status)
        elif method == "GET" and payload != record(user, version[user]):
            st["stale"] += 1
            st["last_stale_user"] = user

    while not stop["now"] and not os.path.exists(opts.get("stop", "/nonexistent")):
        if rng.random() < 0.08:
            u = rng.randrange(users)
            st["updates"] += 1
            for _ in range(2):
                version[u] += 1
                do("PUT", u, record(u, version[u]))
                do("GET", u)
        else:
            do("GET", rng.randrange(users))
        next_at += gap
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
        if time.monotonic() - last_write > 0.25:
            write_stats()
            last_write = time.monotonic()
    write_stats()


if __name__ == "__main__":
    main()
