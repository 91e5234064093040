#!/usr/bin/python3
"""tls_peers.py - servers and clients for the TLS tests.

  record PORT FILE [CERT KEY]  an HTTP/1.1 server (keep-alive, Content-Length
                               bodies) that appends every byte it receives to
                               FILE and answers "path=P body=N"; with CERT and
                               KEY it speaks TLS. Says "port N" once it listens.
                               When a connection ends, its whole stream goes to
                               FILE.conns as one block ("== LENGTH\n" STREAM).
  same FILE1 FILE2             exit 0 when the .conns of two recorders hold the
                               same connections byte for byte, in any order
                               (a server may run two connections in either
                               order); else prints the first difference.
  many PORT CAFILE N           N TLS handshakes at once (asyncio), all held open
                               until every one has completed; prints "ok N" and
                               exits 0 when all succeeded.
  stall PORT                   sends the first bytes of a ClientHello and stops;
                               prints "stalled", then "closed" when the server
                               gives up on it (exit 0), or exits 1 after 60 s.
  garbage PORT                 sends bytes that are not TLS; prints "closed"
                               when the server closes (exit 0).
  keepalive PORT CAFILE FLAG   one TLS connection: GET /before, prints "first
                               ok SERIAL", waits for the file FLAG, then GET
                               /after on the same connection: "second ok".
"""
import asyncio
import os
import socket
import ssl
import sys
import time


def say(*a):
    print(*a, flush=True)


async def handle(reader, writer, log, conns):
    stream = []
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            body = await reader.readexactly(length) if length else b""
            log.write(head + body)
            log.flush()
            stream.append(head + body)
            path = head.split(b" ")[1]
            answer = b"path=%s body=%d\n" % (path, len(body))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
            await writer.drain()
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    if stream:
        data = b"".join(stream)
        conns.write(b"== %d\n" % len(data) + data)
        conns.flush()
    writer.close()


def connections(path):
    try:
        data = open(path + ".conns", "rb").read()
    except FileNotFoundError:
        return []
    out = []
    while data:
        head, _, rest = data.partition(b"\n")
        n = int(head[3:])
        out.append(rest[:n])
        data = rest[n:]
    return sorted(out)


def same(a, b):
    ca, cb = connections(a), connections(b)
    if ca and ca == cb:
        return 0
    say("%d connections in %s, %d in %s" % (len(ca), a, len(cb), b))
    for x, y in zip(ca, cb):
        if x != y:
            i = next((i for i in range(min(len(x), len(y))) if x[i] != y[i]), min(len(x), len(y)))
            say("first differing connection differs at byte %d: %r vs %r" % (i, x[i:i + 40], y[i:i + 40]))
            break
    return 1


async def record(port, path, cert=None, key=None):
    log = open(path, "ab")
    conns = open(path + ".conns", "ab")
    ctx = None
    if cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
    srv = await asyncio.start_server(lambda r, w: handle(r, w, log, conns), "127.0.0.1", port,
                                     ssl=ctx, backlog=2048)
    say("port", srv.sockets[0].getsockname()[1])
    await srv.serve_forever()


async def many(port, cafile, n):
    ctx = ssl.create_default_context(cafile=cafile)
    ready = asyncio.Event()
    done = 0

    async def one():
        nonlocal done
        r, w = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost"),
            120)
        done += 1
        if done == n:
            ready.set()
        await ready.wait()
        w.close()

    res = await asyncio.gather(*[one() for _ in range(n)], return_exceptions=True)
    bad = [r for r in res if isinstance(r, BaseException)]
    for r in bad[:3]:
        say("failed:", repr(r))
    say("ok", n - len(bad))
    return 0 if not bad else 1


def stall(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
    say("stalled")
    s.settimeout(60)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        say("never closed")
        return 1
    except ConnectionResetError:
        pass
    say("closed")
    return 0


def garbage(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30)
    try:
        s.sendall(b"this is not TLS at all\r\n" * 40)
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    say("closed")
    return 0


def get(tls, path):
    tls.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path)
    data = b""
    while b"\r\n\r\n" not in data:
        data += tls.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
            .split(b":")[1])
    while len(body) < n:
        body += tls.recv(4096)
    return body


def keepalive(port, cafile, flag):
    ctx = ssl.create_default_context(cafile=cafile)
    tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                          server_hostname="localhost")
    tls.settimeout(30)
    body = get(tls, b"/before")
    serial = tls.getpeercert()["serialNumber"]
    say("first ok" if body == b"path=/before body=0\n" else "first bad %r" % body, serial)
    end = time.time() + 60
    while not os.path.exists(flag):
        if time.time() > end:
            return 1
        time.sleep(0.05)
    body = get(tls, b"/after")
    say("second ok" if body == b"path=/after body=0\n" else "second bad %r" % body)
    return 0


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        asyncio.run(record(int(a[0]), a[1], *(a[2:4] if len(a) >= 4 else [])))
    elif cmd == "many":
        sys.exit(asyncio.run(many(int(a[0]), a[1], int(a[2]))))
    elif cmd == "same":
        sys.exit(same(a[0], a[1]))
    elif cmd == "stall":
        sys.exit(stall(int(a[0])))
    elif cmd == "garbage":
        sys.exit(garbage(int(a[0])))
    elif cmd == "keepalive":
        sys.exit(keepalive(int(a[0]), a[1], a[2]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
