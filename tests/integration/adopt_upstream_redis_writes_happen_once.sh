#!/bin/bash
# Promise: an app started by a plain command that writes to redis over a
# connection pool opened long before doppel came can be adopted with
# `--upstream HOST:PORT` and cloned, and its clone never writes to the real
# redis: after N requests through the front, redis holds production's N
# writes only, the clone answered exactly as production did from production's
# captured redis conversations (its pool connection, open before the capture,
# recorded from its next request), another process's connection to the same
# redis is left out of the recording, and nothing of the clone reaches redis.
. "$(dirname "$0")/lib.sh"
need redis-server; need curl; need nsenter
$PY -c 'import redis' 2>/dev/null || skip "python3-redis is not installed (deploy/install.sh installs it)"
start_redis upstream UPR
N=adup$$

# The app, its own session (as under systemd), its pool opened by a first request.
for _ in 1 2 3 4 5; do
	A=$(free_port)
	spawn app setsid $PY "$HERE/redis_app.py" "$A" "$UPR" pool
	wait_for 10 curl -sf "http://127.0.0.1:$A/hit?id=0" -o "$T/first" && break
	kill -0 "$app_PID" 2>/dev/null && fail "the app does not answer on $A: $(tail -3 "$T/app.log")"
	log "port $A was taken meanwhile; trying another"
done
assert_eq "$(cat "$T/first")" "hits=1" "first request, straight to the app"
# Another process of the host talks to the same redis all along: not the app's.
spawn other $PY -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
for i in range(1200):
    s.sendall(b"INCR other\r\n"); s.recv(64); time.sleep(0.05)' "$UPR"
started other connected || fail "the other client did not connect"

for _ in 1 2 3 4 5; do
	F=$(free_port)
	spawn sup "$DOPPEL" adopt "$N" --pid "$app_PID" --port "$A" --front "127.0.0.1:$F" \
		--upstream "127.0.0.1:$UPR" --work-dir "$T/work"
	if started sup "ready: service $N"; then break; fi
	taken sup || fail "doppel adopt failed: $(tail -3 "$T/sup.log")"
done
grep -q "conversations with 127.0.0.1:$UPR are captured on lo" "$T/sup.log" ||
	fail "no upstream capture: $(grep -i upstream "$T/sup.log" | tail -3)"
# before the clone: a short connection of redis-cli's may be recorded as the app's
# (its socket can be gone before its owner is checked: counted as owner_unknown)
conns0=$(redis-cli -p "$UPR" info stats | awk -F: '/total_connections_received/{print $2+0}')
clone "$N"
C=$(clone_pid "$N" 1)
for i in $(seq 1 40); do
	curl -sf "http://127.0.0.1:$F/hit?id=$i" >>"$T/answers" || fail "request $i through the front"
done
wait_status "$N" "j['proxy']['replicas'][0]['turns_compared'] >= 40 and j['upstreams'][0]['clones'][0]['requests_answered'] >= 80" 30
conns1=$(redis-cli -p "$UPR" info stats | awk -F: '/total_connections_received/{print $2+0}')
assert_eq "$(tail -1 "$T/answers")" "hits=41" "production's last answer"
assert_eq "$(redis-cli -p "$UPR" get hits)" 41 "redis hits (production's only)"
assert_eq "$(redis-cli -p "$UPR" dbsize)" 43 "redis keys (hits, 41 hit:N, other)"
# the info calls above are redis-cli's own; the app's pool and the clone add none
assert_eq "$((conns1 - conns0))" 1 "connections redis received during the load"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['turns_compared']")" 40 "answers compared"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 \
	"the clone's answers differ from production's"
u="j['upstreams'][0]['clones'][0]"
assert_eq "$(json "$T/s.json" "$u['requests_answered']")" 80 "requests answered from the recording"
assert_ge "$(json "$T/s.json" "$u['matched_by_content']")" 1 "requests matched by content (the pool)"
assert_eq "$(json "$T/s.json" "$u['diverged'] + $u['unanswered']")" 0 "diverged or unanswered"
assert_gt "$(json "$T/s.json" "$u['bytes_dropped']")" 0 "the clone's writes dropped"
c="j['upstreams'][0]['capture']"
assert_ge "$(json "$T/s.json" "$c['midstream']")" 1 "the pool connection, open before the capture"
assert_ge "$(json "$T/s.json" "$c['not_ours']")" 1 "the other process's connection, left out"
assert_eq "$(json "$T/s.json" "$c['gaps'] + $c['kernel_drops']")" 0 "capture gaps and drops"
"$DOPPEL" status "$N" >"$T/s.txt" || fail "doppel status"
grep -q "upstream 127.0.0.1:$UPR -> 127.0.0.1:$UPR" "$T/s.txt" || fail "no upstream in status: $(cat "$T/s.txt")"
grep -q "capture on lo" "$T/s.txt" || fail "no upstream capture in status: $(cat "$T/s.txt")"

stop_pid "$sup_PID" || fail "the supervisor did not stop cleanly: $(tail -3 "$T/sup.log")"
kill -0 "$C" 2>/dev/null && fail "clone $C still runs after the supervisor stopped"
kill -0 "$app_PID" || fail "the adopted app is gone"
assert_eq "$(curl -sf "http://127.0.0.1:$A/hit?id=99")" "hits=42" "the app serves on after the supervisor stopped"
log "PASS: adopted app's clone answered from captured upstream conversations; redis got production's writes only"
