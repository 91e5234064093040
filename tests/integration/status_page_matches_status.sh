#!/bin/bash
# Promise: the status page (GET / on every admin endpoint) is self-contained,
# polls /status and shows what /status says. doppel run --admin ADDR serves it
# on TCP with the read-only routes only (POST /stop is not there). Driven in
# headless Chromium: a live redis with a clone, traffic, the clone stopped
# as at a breakpoint until it overflows; every number on the page equals
# /status fetched right after, the buffer chart has a point per poll, and the
# page fetched nothing but ./status. A bare `doppel proxy --admin` serves the
# page too. The screenshot stays in the test's directory (and goes to
# $DOPPEL_SCREENSHOT_OUT when that is set).
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-benchmark; need curl; need chromium; need chromedriver
N=page$$; L=$(free_port); A=$(free_port)
mkdir -p "$T/data"
run_service "$N" --listen 127.0.0.1:$L --port 6379 --state "$T/data" --buffer 256K \
	--admin 127.0.0.1:$A -- redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --save '' --appendonly no
clone "$N"
C=$(clone_pid "$N" 1)

# The page: HTML, no external asset, on TCP and on the admin socket.
curl -sf -o "$T/page.html" -D "$T/page.head" "http://127.0.0.1:$A/" || fail "GET / on --admin failed"
grep -qi '^content-type: text/html' "$T/page.head" || fail "GET / is not text/html: $(cat "$T/page.head")"
grep -q '<title>doppel status</title>' "$T/page.html" || fail "GET / is not the status page"
ext=$(grep -Eo '(src|href)="[^"#]*"|@import|url\(' "$T/page.html" | grep -v '="data:' || true)
[ -z "$ext" ] || fail "the page loads external assets: $ext"
curl -sf --unix-socket "$DOPPEL_RUN_DIR/$N.sock" -o "$T/page-unix.html" http://doppel/ || fail "GET / on the admin socket"
cmp -s "$T/page.html" "$T/page-unix.html" || fail "the admin socket serves another page"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$A/stop")
assert_eq "$code" 404 "POST /stop on the TCP admin address"
sup_status "$N" "$T/alive.json"
assert_eq "$(json "$T/alive.json" "j['service']['state']")" running "service after POST /stop on TCP"

# Chromium watches the page while traffic runs, then captures it.
spawn browser "$PY" "$HERE/webdriver.py" "http://127.0.0.1:$A/?interval=500" --out "$T/page.json" \
	--screenshot "$T/status-page.png" --when "$T/traffic-done" --polls 2 --timeout 200 \
	--status "http://127.0.0.1:$A/status" --status-out "$T/status.json"
redis-benchmark -p "$L" -t set -n 20000 -c 5 -d 100 -r 100000 -q >/dev/null || fail "traffic through the front"
# The clone stops as at a breakpoint; one client keeps writing 64 KiB a second:
# its queue toward the clone fills for 4 s (the page draws it), then overflows.
sigstop "$C"
"$PY" - "$L" <<'PYEOF' || fail "the paced writer failed"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
value = "x" * 1000
t0 = time.monotonic()
for i in range(640):
    s.sendall(("*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$1000\r\n%s\r\n" % (len("k%d" % i), i, value)).encode())
    s.recv(16)
    time.sleep(max(0, t0 + i / 64.0 - time.monotonic()))
s.close()
PYEOF
for _ in $(seq 100); do
	sup_status "$N" "$T/s.json"
	[ "$(json "$T/s.json" "j['proxy']['replicas'][0]['overflows']")" -gt 0 ] && break
	redis-benchmark -p "$L" -t set -n 2000 -c 2 -d 1000 -r 100000 -q >/dev/null
done
assert_gt "$(json "$T/s.json" "j['proxy']['replicas'][0]['overflows']")" 0 "overflows of the stopped clone"
# A replica reads "overflowing" for 5 s after its last overflow: let that pass, so the
# page and the /status fetched after it see the same state.
for _ in $(seq 200); do
	sup_status "$N" "$T/s.json"
	[ "$(json "$T/s.json" "j['proxy']['replicas'][0]['state']")" != overflowing ] && break
	sleep 0.1
done
touch "$T/traffic-done"
wait "$browser_PID" || fail "the browser run failed: $(tail -5 "$T/browser.log")"
[ -s "$T/status.json" ] || fail "no /status fetched after the capture"
"$PY" "$HERE/status_compare.py" --min 20 "$T/page.json" "$T/status.json" >"$T/compare.out"
rc=$?
cat "$T/compare.out"
[ "$rc" = 0 ] || fail "the page and /status differ (above)"
for f in replica.clone-1.overflows replica.clone-1.diverged_turns replica.clone-1.turns_compared \
	clone.1.frozen_ms service.pid proxy.connections.accepted replica.clone-1.debug_window_s; do
	grep -q "^ok    $f " "$T/compare.out" || fail "the page does not show $f"
done
points=$(json "$T/page.json" "j['charts']['clone-1']")
polls=$(json "$T/page.json" "j['polls']")
assert_ge "$points" 5 "points in clone-1's buffer chart"
[ "$points" -le "$polls" ] || fail "$points chart points from $polls polls"
others=$(json "$T/page.json" "' '.join(u for u in j['resources'] if not u.startswith('http://127.0.0.1:$A/status'))")
[ -z "$others" ] || fail "the page fetched more than /status: $others"
[ -s "$T/status-page.png" ] && [ "$(head -c 8 "$T/status-page.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
	fail "no PNG screenshot"
[ -n "${DOPPEL_SCREENSHOT_OUT:-}" ] && cp "$T/status-page.png" "$DOPPEL_SCREENSHOT_OUT"
log "the page showed $(wc -l <"$T/compare.out") numbers equal to /status after $polls polls; screenshot $T/status-page.png"

# A bare proxy serves the page too.
B=$(free_port); R=$(free_port); PL=$(free_port)
start_redis prod "$B"
start_redis rep "$R"
spawn px "$DOPPEL" proxy --listen 127.0.0.1:$PL --backend 127.0.0.1:$B --replica r=127.0.0.1:$R --admin "unix:$T/px.sock"
for _ in $(seq 100); do [ -S "$T/px.sock" ] && break; sleep 0.05; done
curl -sf --unix-socket "$T/px.sock" -o "$T/page-px.html" http://doppel/ || fail "GET / on doppel proxy --admin"
cmp -s "$T/page.html" "$T/page-px.html" || fail "doppel proxy --admin serves another page"
log "PASS"
