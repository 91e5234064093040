#!/bin/bash
# Promise: with --join-open, a clone made while clients hold connections open
# gets what they send afterwards, on the very connections production had: the
# clone is restored with production's end of each (CRIU --tcp-established)
# and doppel makes the other end in the clone's netns with TCP repair, so each
# continues exactly where production's was, its state (SELECT 2, a SELECT
# pipelined with a write) intact in the restored process. A pool connection's
# writes land in the clone's db 2, a plain connection's INCRs in db 0, the
# pipelined one's in db 3; the clone answers every request as production did,
# and production's clients see no error. The same for an HTTP/1.1 keep-alive
# client of python's http.server and of nginx: the requests it sends on its
# old connection after the clone reach the clone (nginx: its own access log). Clients that write without pause all through the clone: once
# they stop, the clone's dataset equals production's (DEBUG DIGEST), nothing
# missed and nothing applied twice. With --no-join-exact the fallback joins
# each connection at its next turn, replaying RESP state commands (SELECT)
# where it can and refusing the pipelined one.
. "$(dirname "$0")/lib.sh"
need redis-server; need nsenter; need nginx
# Three clients, each on one connection opened before the clone; each waits for
# $T/go, then writes, then prints "done N" (N: replies that were errors).
cat >"$T/client.py" <<'PYEOF'
import os, socket, sys, time
port, mode, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def cmd(*args):
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
def reply():
    line = f.readline()
    return line
errors = 0
if mode == "state":          # SELECT answered before the next command: replayable
    cmd(b"SELECT", b"2"); assert reply() == b"+OK\r\n"
    cmd(b"SET", b"pre", b"1"); reply()
elif mode == "pipelined":    # SELECT and a write in one send: not replayable
    s.sendall(b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*3\r\n$3\r\nSET\r\n$3\r\nc:0\r\n$1\r\n1\r\n")
    reply(); reply()
else:
    cmd(b"PING"); reply()
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.02)
for i in range(200 if mode != "pipelined" else 50):
    if mode == "plain":
        cmd(b"INCR", b"counter")
    else:
        cmd(b"SET", b"post:%d" % i if mode == "state" else b"c:%d" % (i + 1), b"v%d" % i)
    if reply()[:1] == b"-":
        errors += 1
print("done %d" % errors, flush=True)
time.sleep(30)
PYEOF

# pool_clients EXACT|TURN [doppel run options]: the three clients through one clone
pool_clients() {
	local how=$1 c C tc r="j['proxy']['replicas'][0]"
	shift
	log "pool clients, joined $how"
	N=join$how$$
	run_service "$N" L --port 6379 --join-open "$@" --protocol resp -- redis-server --port 6379 \
		--bind 127.0.0.1 --save '' --appendonly no --enable-debug-command local
	rm -f "$T/go"
	client() { spawn "$1$how" $PY "$T/client.py" "$L" "$2" "$T/go"; } # NAME MODE
	client state state
	client plain plain
	client piped pipelined
	for c in state plain piped; do started "$c$how" ready || fail "client $c did not start: $(cat "$T/$c$how.log")"; done
	clone "$N"
	C=$(clone_pid "$N" 1)
	touch "$T/go"
	for c in state plain piped; do started "$c$how" "done" || fail "client $c did not finish: $(cat "$T/$c$how.log")"; done
	for c in state plain piped; do grep -q "done 0" "$T/$c$how.log" || fail "client $c saw errors: $(cat "$T/$c$how.log")"; done
	cl() { in_clone "$C" redis-cli -p 6379 "$@"; }
	if [ "$how" = EXACT ]; then
		# 200 SETs + 200 INCRs + 50 SETs = 450 turns; the last turn of each
		# connection still open may wait for its client to send again or leave
		wait_status "$N" "$r['turns_compared'] >= 447" 20 ||
			fail "the clone did not answer the continued connections' requests"
		assert_eq "$(cl -n 3 dbsize)" 51 "the pipelined connection's writes in the clone's db 3"
	else
		# 1 replayed SELECT + 200 SETs + 200 INCRs = 401 turns
		wait_status "$N" "$r['turns_compared'] >= 399" 20 ||
			fail "the clone did not answer the joined connections' requests"
		assert_eq "$(cl -n 3 dbsize)" 1 "the refused connection's writes stay production's (c:0 is from before)"
	fi
	assert_eq "$(cl -n 2 eval "return #redis.call('keys', 'post:*')" 0)" 200 "the pool's writes in the clone's db 2"
	assert_eq "$(cl -n 0 get counter)" 200 "the plain connection's INCRs in the clone"
	assert_eq "$(redis-cli -p "$L" -n 3 dbsize)" 51 "production got every write of the pipelined connection"
	sup_status "$N" "$T/s.json"
	tc=$(json "$T/s.json" "$r['turns_compared']")
	assert_eq "$(json "$T/s.json" "$r['diverged_turns']")" 0 "turns that diverged"
	"$DOPPEL" status "$N" >"$T/s.txt"
	if [ "$how" = EXACT ]; then
		assert_eq "$(json "$T/s.json" "$r['joined_exact']")" 3 "continued exactly"
		assert_eq "$(json "$T/s.json" "$r['joined'] + $r['joined_with_state'] + $r['join_refused'] + $r['join_inexact']")" 0 "joined otherwise"
		[ "$tc" -ge 447 ] && [ "$tc" -le 450 ] || fail "continued turns compared: $tc, expected 447 to 450"
		grep -q "clone-1: connections open before it: 3 continued exactly" "$T/s.txt" ||
			fail "doppel status does not show the exact joins: $(cat "$T/s.txt")"
		grep -Eq "^doppel_replica_joined_exact_total(\{[^}]*\})? 3$" <(curl -s --unix-socket "$DOPPEL_RUN_DIR/$N.sock" http://x/metrics) ||
			fail "no exact join counter in /metrics"
	else
		assert_eq "$(json "$T/s.json" "$r['joined']")" 1 "joined as they were"
		assert_eq "$(json "$T/s.json" "$r['joined_with_state']")" 1 "joined after a replay of SELECT"
		assert_eq "$(json "$T/s.json" "$r['join_refused']")" 1 "refused: a pipelined SELECT"
		assert_eq "$(json "$T/s.json" "$r['joined_exact']")" 0 "continued exactly with --no-join-exact"
		[ "$tc" -ge 399 ] && [ "$tc" -le 401 ] || fail "joined turns compared: $tc, expected 399 to 401"
		grep -q "2 joined at a turn (1 after a replay of their state commands), 1 refused" "$T/s.txt" ||
			fail "doppel status does not show the joins: $(cat "$T/s.txt")"
	fi
	"$DOPPEL" stop "$N" >/dev/null || fail "stop $N"
}
pool_clients EXACT
pool_clients TURN --no-join-exact

log "an HTTP/1.1 keep-alive connection"
mkdir -p "$T/www"
echo "kept alive" >"$T/www/index.txt"
N=joinh$$
run_service "$N" H --port 8000 --join-open --protocol http -- $PY -c 'import functools, http.server as h, sys
h.SimpleHTTPRequestHandler.protocol_version = "HTTP/1.1"
h.ThreadingHTTPServer(("127.0.0.1", 8000), functools.partial(h.SimpleHTTPRequestHandler, directory=sys.argv[1])).serve_forever()' "$T/www"
cat >"$T/keepalive.py" <<'PYEOF'
import http.client, os, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
def get(i):
    c.request("GET", "/index.txt?i=%d" % i)
    r = c.getresponse()
    assert r.read() == b"kept alive\n" and r.status == 200
get(0)
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
for i in range(1, 21):
    get(i)
print("done", flush=True)
time.sleep(30)
PYEOF
rm -f "$T/go"
spawn web $PY "$T/keepalive.py" "$H" "$T/go"
started web ready || fail "the keep-alive client did not start: $(cat "$T/web.log")"
clone "$N"
touch "$T/go"
started web done || fail "the keep-alive client failed: $(cat "$T/web.log")"
wait_for 10 eval '[ "$(grep -c "GET /index.txt?i=" "$T/work/$N/clone-1/log")" = 20 ]'
assert_eq "$(grep -c "GET /index.txt?i=" "$T/work/$N/clone-1/log")" 20 "the old connection's requests in the clone's log"
grep -q "GET /index.txt?i=0 " "$T/work/$N/clone-1/log" && fail "a request from before the clone reached it"
sup_status "$N" "$T/h.json"
assert_eq "$(json "$T/h.json" "j['proxy']['replicas'][0]['joined_exact']")" 1 "the keep-alive connection continued exactly"
assert_eq "$(json "$T/h.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 "its turns that diverged"
"$DOPPEL" stop "$N" >/dev/null || fail "stop $N"

log "an HTTP/1.1 keep-alive connection to nginx"
N=joinn$$
mkdir -p "$T/nginx"
nginx_conf "$T/nginx.conf" "$T/nginx" 8080 "$T/www"
run_service "$N" X --port 8080 --state "$T/nginx" --join-open --protocol http -- nginx -c "$T/nginx.conf"
rm -f "$T/go"
spawn webx $PY "$T/keepalive.py" "$X" "$T/go"
started webx ready || fail "the keep-alive client did not start: $(cat "$T/webx.log")"
clone "$N"
touch "$T/go"
started webx done || fail "the keep-alive client failed: $(cat "$T/webx.log")"
cl_log=$T/work/$N/clone-1/state-0/access.log
wait_for 10 eval '[ "$(grep -c "GET /index.txt?i=" "$cl_log")" -ge 21 ]'
assert_eq "$(grep -c "GET /index.txt?i=" "$T/nginx/access.log")" 21 "requests in production's access log"
# the clone's log is a copy of production's as of the freeze (i=0), then its own
assert_eq "$(grep -c "GET /index.txt?i=" "$cl_log")" 21 "requests in the clone's access log"
assert_eq "$(grep -c "GET /index.txt?i=0 " "$cl_log")" 1 "the request from before the freeze, in the clone's log once"
sup_status "$N" "$T/x.json"
assert_eq "$(json "$T/x.json" "j['proxy']['replicas'][0]['joined_exact']")" 1 "the keep-alive connection continued exactly"
assert_eq "$(json "$T/x.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 "its turns that diverged"
"$DOPPEL" stop "$N" >/dev/null || fail "stop $N"

log "clients writing without pause through the clone"
N=joinw$$
run_service "$N" W --port 6379 --join-open --protocol resp -- redis-server --port 6379 \
	--bind 127.0.0.1 --save '' --appendonly no --enable-debug-command local
cat >"$T/writer.py" <<'PYEOF'
import os, socket, sys
port, db, stop = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def cmd(*args):
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return f.readline()
if db != b"0":
    assert cmd(b"SELECT", db) == b"+OK\r\n"
n = errors = 0
print("writing", flush=True)
while not os.path.exists(stop):
    if cmd(b"INCR", b"n") [:1] == b"-" or cmd(b"SET", b"k:%d" % (n % 5000), b"%d" % n)[:1] == b"-":
        errors += 1
    n += 1
print("done %d %d" % (n, errors), flush=True)
import time; time.sleep(30)
PYEOF
rm -f "$T/stop"
spawn w0 $PY "$T/writer.py" "$W" 0 "$T/stop"
spawn w1 $PY "$T/writer.py" "$W" 1 "$T/stop"
started w0 writing && started w1 writing || fail "the writers did not start"
sleep 0.5
clone "$N"
C=$(clone_pid "$N" 1)
sleep 1
touch "$T/stop"
started w0 done && started w1 done || fail "the writers did not stop"
grep -q "done [0-9]* 0" "$T/w0.log" && grep -q "done [0-9]* 0" "$T/w1.log" || fail "writers saw errors: $(cat "$T/w0.log" "$T/w1.log")"
want=$(redis-cli -p "$W" debug digest)
wait_for 10 eval '[ "$(in_clone "$C" redis-cli -p 6379 debug digest)" = "$want" ]'
assert_eq "$(in_clone "$C" redis-cli -p 6379 debug digest)" "$want" "the clone's dataset = production's"
sup_status "$N" "$T/w.json"
assert_eq "$(json "$T/w.json" "j['proxy']['replicas'][0]['joined_exact']")" 2 "writers continued exactly"
assert_eq "$(json "$T/w.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 "their turns that diverged"
log "writers: $(cat "$T/w0.log" "$T/w1.log" | grep done | tr '\n' ' ')"
log "CRIU cannot restore the open connections: the clone is restored with them closed"
# A wrapper refuses restores that keep established connections, as CRIU does
# when one's address is missing in the clone's netns.
REAL=${DOPPEL_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
cat >"$T/criu" <<WRAP
#!/bin/bash
if [ "\$1" = restore ] && [[ " \$* " == *" --tcp-established "* ]]; then
	log=/dev/null; while [ \$# -gt 0 ]; do [ "\$1" = -o ] && log=\$2; shift; done
	echo "Error (emulated): inet: Can't bind inet socket: Cannot assign requested address" | tee "\$log"
	exit 1
fi
exec "$REAL" "\$@"
WRAP
chmod +x "$T/criu"
N=joinf$$
run_service "$N" F --port 6379 --join-open --criu "$T/criu" --protocol resp -- redis-server \
	--port 6379 --bind 127.0.0.1 --save '' --appendonly no
rm -f "$T/stop"
spawn f0 $PY "$T/writer.py" "$F" 0 "$T/stop"
started f0 writing || fail "the writer did not start"
clone "$N"
C=$(clone_pid "$N" 1)
grep -q "restoring it with them closed" "$T/sup_$N.log" || fail "no word of the fallback: $(tail -5 "$T/sup_$N.log")"
[ -s "$T/work/$N/clone-1/restore-established.log" ] || fail "CRIU's log of the failed try was not kept"
sleep 0.5
touch "$T/stop"
started f0 done || fail "the writer did not stop"
grep -q "done [0-9]* 0" "$T/f0.log" || fail "the writer saw errors: $(cat "$T/f0.log")"
sup_status "$N" "$T/f.json"
r="j['proxy']['replicas'][0]"
assert_eq "$(json "$T/f.json" "$r['joined_exact']")" 0 "continued exactly without the ends"
assert_eq "$(json "$T/f.json" "$r['join_inexact'] + $r['joined']")" 2 "noted at the freeze, then joined at its next turn"
assert_gt "$(in_clone "$C" redis-cli -p 6379 get n)" 0 "the clone got the writer's requests after the join"
"$DOPPEL" stop "$N" >/dev/null || fail "stop $N"

log "PASS: pool, plain, pipelined and keep-alive connections continued exactly (joined at a turn with --no-join-exact); writers through the clone: digest equal; a failed restore of the connections falls back"
