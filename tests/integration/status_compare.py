#!/usr/bin/python3
"""status_compare.py PAGE.json STATUS.json - every number the status page
showed (webdriver.py's capture) against /status fetched right after.

Counters and states must be equal; durations that grow with the clock
(uptime, age, an open debug window, the forecast) may differ by the time
between the page's last poll and the fetch (--slack, 5 s). An integer shown
as such must read as its value. Prints one line per field; exit 1 on any
mismatch or when fewer than --min fields were compared.
"""
import json
import math
import sys

args = sys.argv[1:]
opts = {"slack": "5", "min": "20"}
while args and args[0].startswith("--"):
    opts[args[0][2:]] = args[1]
    args = args[2:]
page = json.load(open(args[0]))
st = json.load(open(args[1]))
sup = "service" in st
px = st["proxy"] if sup else st
CLOCK = ("uptime_s", "age_s", "debug_window_s", "forecast_s")


def lookup(field):
    parts = field.split(".")
    if parts[0] == "replica":
        name, key = ".".join(parts[1:-1]), parts[-1]
        r = next(r for r in px["replicas"] if r["name"] == name)
        return r[key], r
    if parts[0] == "clone":
        c = next(c for c in st["clones"] if c["id"] == int(parts[1]))
        return c[parts[2]], c
    if parts[0] == "past":
        w = next(w for w in st["past_windows"] if w["clone"] == int(parts[1]))
        return w[parts[2]], w
    node = st if parts[0] != "proxy" else px
    for p in parts[1:] if parts[0] == "proxy" else parts:
        node = node[p]
    return node, None


bad = 0
for field, shown, text in page["fields"]:
    want, obj = lookup(field)
    key = field.rsplit(".", 1)[-1]
    if want is None or shown == "null":
        ok = (want is None) == (shown == "null")
    elif isinstance(want, bool) or isinstance(want, str):
        ok = str(want).lower() == shown.lower()
    else:
        got = float(shown)
        if key in CLOCK and not (key == "debug_window_s" and obj is not None and not obj.get("window_open", True)):
            ok = abs(got - want) <= float(opts["slack"])
        elif key == "occupancy":
            ok = math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
        else:
            ok = got == want
        if ok and isinstance(want, int) and not isinstance(want, bool) and text.strip().isdigit():
            ok = int(text) == want
    print("%-5s %-45s page %-22s /status %s" % ("ok" if ok else "DIFF", field, shown, want))
    bad += not ok
n = len(page["fields"])
print("%d fields compared, %d differ" % (n, bad))
sys.exit(1 if bad or n < int(opts["min"]) else 0)
