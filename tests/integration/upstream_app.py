#!/usr/bin/python3
"""upstream_app.py PORT UPSTREAM_PORT - an app that asks an upstream.

GET /ask?msg=X connects to 127.0.0.1:UPSTREAM_PORT, sends X, reads until the
upstream closes or resets, and answers "got=<bytes> end=<eof|reset|refused>".
No Date/Server headers, so that production's and a clone's answers compare.
"""
import http.server
import socket
import sys
import urllib.parse

PORT, UP = int(sys.argv[1]), int(sys.argv[2])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        msg = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("msg", ["hi"])[0]
        got, end = b"", "eof"
        try:
            s = socket.create_connection(("127.0.0.1", UP), timeout=20)
            s.sendall(msg.encode() + b"\n")
            while True:
                b = s.recv(4096)
                if not b:
                    break
                got += b
            s.close()
        except ConnectionResetError:
            end = "reset"
        except ConnectionRefusedError:
            end = "refused"
        except socket.timeout:
            end = "timeout"
        body = ("got=%d end=%s\n" % (len(got), end)).encode()
        self.send_response_only(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))


http.server.HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
