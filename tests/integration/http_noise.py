#!/usr/bin/env python3
"""http_noise.py - an HTTP/1.1 file server with a noisy endpoint, and a load
generator, for the divergence tests.

  http_noise.py serve PORT DIR    files from DIR (python's http.server: Date,
                                  Server, Last-Modified on every answer), and
                                  /random/N: a body and an X-Token header that
                                  differ on every request
  http_noise.py load PORT SECONDS CONNS PATH...
                                  CONNS keep-alive connections request the
                                  paths in turn for SECONDS; prints the count
"""
import http.client
import http.server
import os
import sys
import threading
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/random/"):
            body = ("token %s\n" % os.urandom(8).hex()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("X-Token", os.urandom(4).hex())
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, fmt, *args):
        pass


def serve(port, directory):
    os.chdir(directory)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


def load(port, seconds, conns, paths):
    end = time.time() + float(seconds)
    counts = [0] * int(conns)

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        i = k
        while time.time() < end:
            c.request("GET", paths[i % len(paths)])
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit("GET %s: %d" % (paths[i % len(paths)], r.status))
            counts[k] += 1
            i += 1
        c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(int(conns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(sum(counts))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        load(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
