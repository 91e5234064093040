#!/bin/bash
# Promise: doppel's own proxy and the nginx behind it, each traced by strace,
# align on one timeline: every request crosses from doppel to nginx (the bytes
# doppel sent are the bytes nginx read, on the same connection) and its
# answer crosses back; the clock offset estimated from those messages is 0
# (same machine); the aligned trace draws as an SVG with message arrows and
# as Chrome JSON with flow events.
. "$(dirname "$0")/lib.sh"
. "$HERE/trace_lib.sh"
need curl
N=5
P=$(free_port); L=$(free_port)
start_nginx_strace ng "$P" "$T/nginx.strace"
spawn px strace -f -ttt -T -yy -o "$T/doppel.strace" "$DOPPEL" proxy --listen 127.0.0.1:$L \
	--backend 127.0.0.1:$P --log-level warn
wait_listen "$L" 20
PXPID=$(pgrep -P "$px_PID" -f "doppel proxy" | head -1)
[ -n "$PXPID" ] || fail "no doppel proxy under strace"
PIDS+=("$PXPID")
for i in $(seq $N); do
	curl -sf "http://127.0.0.1:$L/p$i.html" -o "$T/got" || fail "curl through doppel ($i)"
	grep -q "page $i" "$T/got" || fail "wrong answer through doppel ($i)"
done
sleep 0.3
kill -TERM "$PXPID"
for _ in $(seq 100); do kill -0 "$px_PID" 2>/dev/null || break; sleep 0.05; done
wait "$px_PID" 2>/dev/null
stop_nginx_strace ng

"$DOPPEL" trace align --names doppel,nginx --offset auto --summary "$T/doppel.strace" \
	"$T/nginx.strace" -o "$T/aligned.dtt" 2>"$T/align.log" || fail "align: $(cat "$T/align.log")"
cat "$T/align.log"
grep -q 'offset 0 ns' "$T/align.log" || fail "clock offset should be 0 on one machine"
to_nginx=$(grep -c '^[0-9.]* nginx:[0-9/]* *= msg ×[0-9]* from doppel:' "$T/aligned.dtt")
to_doppel=$(grep -c '^[0-9.]* doppel:[0-9/]* *= msg ×[0-9]* from nginx:' "$T/aligned.dtt")
assert_eq "$to_nginx" "$N" "requests crossing from doppel to nginx"
assert_eq "$to_doppel" "$N" "answers crossing from nginx to doppel"
# each request's bytes: what nginx read equals what doppel sent
for i in $(seq $N); do
	grep -q "nginx:.*recvfrom(.*GET /p$i.html" "$T/aligned.dtt" || fail "nginx never read request $i"
done
"$DOPPEL" trace align --names doppel,nginx --svg --max-rows 3000 "$T/doppel.strace" "$T/nginx.strace" \
	-o "$T/aligned.svg" || fail "align --svg"
assert_ge "$(grep -c 'marker-end="url(#arrow)"' "$T/aligned.svg")" $((2 * N)) "message arrows"
if command -v rsvg-convert >/dev/null; then
	rsvg-convert "$T/aligned.svg" -o "$T/aligned.png" || fail "the aligned SVG does not render"
fi
"$DOPPEL" trace align --names doppel,nginx --chrome "$T/doppel.strace" "$T/nginx.strace" -o "$T/aligned.json" ||
	fail "align --chrome"
assert_ge "$(json "$T/aligned.json" "sum(1 for e in j['traceEvents'] if e['ph'] == 's')")" $((2 * N)) "flow events"
log "PASS"
