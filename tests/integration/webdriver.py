#!/usr/bin/python3
"""webdriver.py - open a page in headless Chromium through chromedriver (the
W3C WebDriver protocol, spoken with the standard library only) and capture
what it shows.

    webdriver.py URL --out FILE.json --screenshot FILE.png [--when FILE] [--polls N]
                 [--status URL --status-out FILE] [--timeout S]

Starts chromedriver on a free port and Chromium headless with a fresh
profile, opens URL, waits until the page has polled its data N times
(body[data-polls], default 3), and - with --when - until FILE exists, then
for 3 more polls. Writes FILE.json: {"polls", "fields": [[data-field,
data-value, text]...], "charts": {replica: points}, "resources": [URLs the
page fetched], "title"}, and a screenshot; with --status, the document at
URL fetched right after the capture goes to --status-out. Stops Chromium and
chromedriver.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--window-size=1500,860", "--hide-scrollbars"]

COLLECT = """
const f = Array.from(document.querySelectorAll('[data-field]')).map(e => [e.dataset.field, e.dataset.value, e.textContent]);
const charts = {};
document.querySelectorAll('tr[data-replica]').forEach(r => {
  const s = r.querySelector('svg.chart');
  charts[r.dataset.replica] = s ? +s.getAttribute('data-points') : -1;
});
return {polls: +(document.body.dataset.polls || 0), fields: f, charts: charts, title: document.title,
        resources: performance.getEntriesByType('resource').map(e => e.name),
        live: document.getElementById('live').textContent};
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Driver:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.sid = None

    def call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())["value"]

    def session(self, profile):
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": shutil.which("chromium") or "/usr/bin/chromium",
            "args": CHROME_ARGS + ["--user-data-dir=" + profile]}}}}
        self.sid = self.call("POST", "/session", caps, timeout=120)["sessionId"]

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.sid, path), body)

    def quit(self):
        if self.sid:
            try:
                self.call("DELETE", "/session/" + self.sid, timeout=30)
            except OSError:
                pass


def main():
    args = sys.argv[1:]
    url = args.pop(0)
    opts = {}
    while args:
        opts[args[0].lstrip("-")] = args[1]
        args = args[2:]
    polls = int(opts.get("polls", "3"))
    deadline = time.monotonic() + float(opts.get("timeout", "120"))
    port = free_port()
    profile = tempfile.mkdtemp(prefix="doppel-chromium.")
    log = open(os.path.join(profile, "chromedriver.log"), "w")
    cd = subprocess.Popen([shutil.which("chromedriver") or "/usr/bin/chromedriver", "--port=%d" % port],
                          stdout=log, stderr=subprocess.STDOUT)
    drv = Driver(port)
    try:
        while True:
            try:
                drv.call("GET", "/status", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or cd.poll() is not None:
                    raise SystemExit("chromedriver did not start")
                time.sleep(0.1)
        drv.session(os.path.join(profile, "profile"))
        drv.s("POST", "/url", {"url": url})

        def page():
            return drv.s("POST", "/execute/sync", {"script": COLLECT, "args": []})

        got = page()
        while got["polls"] < polls:
            if time.monotonic() > deadline:
                raise SystemExit("the page polled %d times, not %d: %s" % (got["polls"], polls, got["live"]))
            time.sleep(0.2)
            got = page()
        if "when" in opts:
            while not os.path.exists(opts["when"]):
                if time.monotonic() > deadline:
                    raise SystemExit("%s never appeared" % opts["when"])
                time.sleep(0.2)
            target = page()["polls"] + 3
            got = page()
            while got["polls"] < target:
                if time.monotonic() > deadline:
                    raise SystemExit("the page stopped polling: %s" % got["live"])
                time.sleep(0.2)
                got = page()
        if "status" in opts:  # the JSON the page showed, fetched at once
            with urllib.request.urlopen(opts["status"], timeout=30) as r, \
                    open(opts["status-out"], "wb") as f:
                f.write(r.read())
        png = drv.s("GET", "/screenshot")
        with open(opts["screenshot"], "wb") as f:
            f.write(base64.b64decode(png))
        got["captured_at"] = time.time()
        with open(opts["out"], "w") as f:
            json.dump(got, f, indent=1)
    finally:
        drv.quit()
        cd.terminate()
        try:
            cd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cd.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
