#!/usr/bin/python3
"""tcp_peers.py - small TCP clients and servers with exact half-close and
reset behaviour, for testing what the proxy passes on.

Servers bind the port given (0: any free one), say "port N" once they
listen, then log one line per event to stdout ("eof-after N", "reset", ...).
`hold-closed PORT` binds a port without listening on it and holds it: a port
that refuses connections for as long as it runs. `hold-open PORT` accepts
every connection and never reads from it nor closes it (a wedged replica).
`serve-rst PORT` resets every connection as soon as it is accepted.
`resp-set-conns PORT N THREADS` makes N one-request connections to a redis
(SET, read +OK, close), THREADS at a time. `serve-flood PORT MIB` answers every connection with MIB MiB at once,
whatever it is sent, then closes it.
Clients exit 0 when what they saw matches what they expect, 1 otherwise,
and print what they saw.
"""
import hashlib
import socket
import struct
import sys
import threading
import time


def listen(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(512)
    return s


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def say(*a):
    print(*a, flush=True)


def serve(port, handler):
    s = listen(port)
    say("port", s.getsockname()[1])
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def h_eof_reply(c):
    """Read until the client's FIN, then answer with the length and hash."""
    data = b""
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
    except ConnectionResetError:
        say("reset after", len(data))
        c.close()
        return
    say("eof-after", len(data))
    c.sendall(b"len=%d sha=%s\n" % (len(data), hashlib.sha256(data).hexdigest().encode()))
    c.close()


def h_reset_after_data(c):
    """Read one chunk, then reset the connection."""
    b = c.recv(65536)
    say("got", len(b), "then reset")
    rst_close(c)


def h_echo(c):
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
    except ConnectionResetError:
        say("reset")
    c.close()


def client_half_close(port, size):
    data = bytes((i * 7 + 3) % 256 for i in range(size))
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        reply += b
    want = b"len=%d sha=%s\n" % (size, hashlib.sha256(data).hexdigest().encode())
    say("reply", reply.decode(errors="replace").strip())
    return reply == want


def client_reset(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"x" * 1000)
    time.sleep(0.3)
    rst_close(c)
    return True


def client_expect_end(port, timeout, send=b"hello\n"):
    """Connect; the connection must end (EOF or reset) within timeout seconds."""
    t0 = time.time()
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if send:
            c.sendall(send)
        b = c.recv(65536)
        while b:
            b = c.recv(65536)
        say("eof after %.3fs" % (time.time() - t0))
        return True
    except ConnectionResetError:
        say("reset after %.3fs" % (time.time() - t0))
        return True
    except socket.timeout:
        say("still open after %.1fs" % timeout)
        return False


def many_connections(port, n):
    """n sequential connections, each one echo round trip then close."""
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        msg = b"ping %d\n" % i
        c.sendall(msg)
        got = b""
        while len(got) < len(msg):
            b = c.recv(100)
            if not b:
                break
            got += b
        if got != msg:
            say("connection", i, "got", got)
            return False
        c.close()
    say("done", n)
    return True


def resp_set_conns(port, n, threads):
    """n connections to a redis (through the proxy), each one SET then close,
    from `threads` threads; prints ok and errors, true when no error."""
    lock = threading.Lock()
    res = {"ok": 0, "errors": 0, "first": ""}
    per = n // threads

    def worker(t):
        for i in range(per):
            key = b"k:%d:%d" % (t, i)
            cmd = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(key), key)
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=30)
                c.sendall(cmd)
                got = b""
                while not got.endswith(b"\r\n"):
                    b = c.recv(100)
                    if not b:
                        break
                    got += b
                c.close()
                good = got == b"+OK\r\n"
                why = "answer %r" % got
            except OSError as e:
                good, why = False, str(e)
            with lock:
                if good:
                    res["ok"] += 1
                else:
                    res["errors"] += 1
                    res["first"] = res["first"] or why

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    say("ok", res["ok"], "errors", res["errors"], res["first"])
    return res["errors"] == 0 and res["ok"] == per * threads


def hold_closed(port):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    say("port", s.getsockname()[1])
    while True:
        time.sleep(3600)


def hold_open(port):
    """Accept and keep every connection, reading nothing (one thread, no limit)."""
    s = listen(port)
    say("port", s.getsockname()[1])
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)
        if len(held) % 1000 == 0:
            say("holding", len(held))


def serve_rst(port):
    s = listen(port)
    say("port", s.getsockname()[1])
    n = 0
    while True:
        c, _ = s.accept()
        rst_close(c)
        n += 1
        if n % 1000 == 0:
            say("reset", n)


def h_flood(mib):
    block = b"x" * (1 << 20)

    def handler(c):
        try:
            for _ in range(mib):
                c.sendall(block)
            c.close()
        except OSError:
            c.close()
    return handler


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "hold-closed":
        hold_closed(port)
    if cmd == "hold-open":
        hold_open(port)
    if cmd == "serve-rst":
        serve_rst(port)
    if cmd == "serve-flood":
        serve(port, h_flood(int(sys.argv[3])))
    handlers = {"serve-eof-reply": h_eof_reply, "serve-reset": h_reset_after_data, "serve-echo": h_echo}
    if cmd in handlers:
        serve(port, handlers[cmd])
    ok = {
        "half-close": lambda: client_half_close(port, int(sys.argv[3])),
        "reset": lambda: client_reset(port),
        "expect-end": lambda: client_expect_end(port, float(sys.argv[3])),
        "many": lambda: many_connections(port, int(sys.argv[3])),
        "resp-set-conns": lambda: resp_set_conns(port, int(sys.argv[3]), int(sys.argv[4])),
    }[cmd]()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
