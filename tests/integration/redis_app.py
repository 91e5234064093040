#!/usr/bin/python3
"""redis_app.py PORT REDIS_PORT [pool] - a tiny web app that writes to redis.

GET /hit?id=N  -> INCR hits, SET hit:N, answers "hits=<value>\n".
With "pool", one connection pool is kept for the app's life (connections
opened before a clone is made are reused); otherwise a connection per request.
"""
import http.server
import sys
import urllib.parse

import redis

PORT, REDIS_PORT = int(sys.argv[1]), int(sys.argv[2])
POOL = len(sys.argv) > 3 and sys.argv[3] == "pool"
shared = redis.Redis(host="127.0.0.1", port=REDIS_PORT) if POOL else None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        n = q.get("id", ["0"])[0]
        try:
            r = shared or redis.Redis(host="127.0.0.1", port=REDIS_PORT, single_connection_client=True)
            hits = r.incr("hits")
            r.set("hit:" + n, "x")
            if not POOL:
                r.close()
            body = ("hits=%d\n" % hits).encode()
            self.send_response(200)
        except redis.RedisError as e:
            body = ("error: %s\n" % e).encode()
            self.send_response(502)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))

    # No Date/Server headers: production and clone answers must be byte-equal.
    def send_response(self, code, message=None):
        self.send_response_only(code, message)


class Server(http.server.HTTPServer):
    # A clone lagging behind production (CPU weight 10) must not overflow its listen
    # queue: dropped handshakes arrive ~1 s later, out of order, and matching its
    # upstream connections in order then pairs the wrong ones.
    request_queue_size = 128


Server(("127.0.0.1", PORT), Handler).serve_forever()
