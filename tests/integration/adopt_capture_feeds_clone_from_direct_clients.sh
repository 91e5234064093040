#!/bin/bash
# Promise: with `doppel adopt --capture lo`, clients keep connecting to
# production directly (no proxy in their path) and the clone still receives
# their writes: after the clone, writes sent straight to production show up
# in the clone (DEBUG DIGEST equal), the capture reports no kernel drop and no
# gap, production's clients see no error, and stopping the supervisor leaves
# production serving with the same pid.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-benchmark; need nsenter
N=cap$$
REDIS_WRAP=setsid start_redis prod P # its own session, as under systemd
PROD=$prod_PID
$PY -c 'import sys
for i in range(20000): sys.stdout.write("SET key:%d value-%d\r\n" % (i, i))' | redis-cli -p "$P" --pipe >"$T/pipe.log" 2>&1 ||
	fail "redis-cli --pipe: $(cat "$T/pipe.log")"

spawn sup "$DOPPEL" adopt "$N" --pid "$PROD" --port "$P" --capture lo --work-dir "$T/work"
started sup "ready: service $N" || fail "doppel adopt failed: $(tail -3 "$T/sup.log")"
grep -q "capturing iface=lo" "$T/sup.log" || fail "no capture started: $(tail -3 "$T/sup.log")"

log "cloning while clients read from production directly"
redis-benchmark -p "$P" -t get -n 200000 -c 8 -q >"$T/bench.log" 2>&1 &
bench=$!
wait_for 20 eval '[ "$(redis-cli -p "$P" info clients | sed -n "s/^connected_clients:\([0-9]*\).*/\1/p")" -ge 8 ]' ||
	fail "the benchmark's clients never connected"
before=$(redis_digest "$P")
clone "$N"
C=$(clone_pid "$N" 1)
assert_eq "$(in_clone "$C" redis-cli -p "$P" debug digest)" "$before" "clone digest = production's at the freeze"
wait "$bench" || fail "redis-benchmark (direct clients) failed: $(tail -3 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "direct clients saw errors: $(grep -i error "$T/bench.log" | head -3)"

log "writes sent straight to production reach the clone through the capture"
$PY -c 'import sys
for i in range(5000): sys.stdout.write("SET after:%d v%d\r\n" % (i, i))' | redis-cli -p "$P" --pipe >"$T/pipe2.log" 2>&1 ||
	fail "redis-cli --pipe: $(cat "$T/pipe2.log")"
for i in 1 2 3 4 5; do redis-cli -p "$P" incr counter >/dev/null; done
redis-benchmark -p "$P" -t set -r 1000 -n 20000 -c 4 -q >"$T/bench2.log" 2>&1 || fail "SET load failed: $(tail -3 "$T/bench2.log")"
grep -qi error "$T/bench2.log" && fail "direct clients saw errors: $(grep -i error "$T/bench2.log" | head -3)"
wait_for 30 eval '[ "$(in_clone "$C" redis-cli -p "$P" debug digest)" = "$(redis_digest "$P")" ]'
assert_eq "$(in_clone "$C" redis-cli -p "$P" get counter)" 5 "clone counter"
assert_eq "$(in_clone "$C" redis-cli -p "$P" dbsize)" "$(redis-cli -p "$P" dbsize)" "clone keys"
assert_eq "$(in_clone "$C" redis-cli -p "$P" debug digest)" "$(redis_digest "$P")" "clone digest after direct writes"
sup_status "$N" "$T/s.json"
json "$T/s.json" "j['capture']"
assert_eq "$(json "$T/s.json" "j['capture']['kernel_drops']")" 0 "kernel drops"
assert_eq "$(json "$T/s.json" "j['capture']['gaps']")" 0 "connections with gaps"
assert_ge "$(json "$T/s.json" "j['capture']['connections']")" 11 "mirrored connections"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['overflows']")" 0 "clone overflows"

log "stopping the supervisor leaves production running"
stop_pid "$sup_PID" || fail "the supervisor did not stop cleanly: $(tail -3 "$T/sup.log")"
kill -0 "$C" 2>/dev/null && fail "clone $C still runs after the supervisor stopped"
assert_eq "$(redis-cli -p "$P" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')" "$PROD" "production's pid"
assert_eq "$(redis-cli -p "$P" get counter)" 5 "production serves after the supervisor stopped"
log "PASS: direct writes captured on lo reached the clone; no drops, no gaps"
