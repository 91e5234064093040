#!/bin/bash
# Promise: a redis-server started by a plain command (not by doppel), with
# clients connected to it directly, can be adopted and cloned: the clone holds
# production's data as of the freeze (DBSIZE and DEBUG DIGEST equal), writes
# sent through --front afterwards reach the clone, production's direct clients
# see no error, the clone writes its own copy of production's log file, and
# once the supervisor is stopped production runs on with the same pid.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-benchmark; need nsenter
N=ad$$
mkdir -p "$T/data"
# a plain background command of a terminal's shell (not a session leader)
REDIS_WRAP=as_session_child start_redis prod P --dir "$T/data" --appendonly yes
PROD=$(redis-cli -p "$P" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
[ -n "$PROD" ] || fail "no process_id from redis INFO"
PIDS+=("$PROD")
SID=$(ps -o sid= -p "$PROD" | tr -d ' ')
[ "$SID" != "$PROD" ] && [ "$SID" != 0 ] || fail "redis (pid $PROD) should be a shell's child, its session $SID"

log "loading 20k keys directly into production (pid $PROD)"
$PY -c 'import sys
for i in range(20000): sys.stdout.write("SET key:%d value-%d\r\n" % (i, i))' | redis-cli -p "$P" --pipe >"$T/pipe.log" 2>&1 ||
	fail "redis-cli --pipe: $(cat "$T/pipe.log")"

log "adopting it"
for _ in 1 2 3 4 5; do
	F=$(free_port)
	spawn sup "$DOPPEL" adopt "$N" --pid "$PROD" --port "$P" --front "127.0.0.1:$F" \
		--state "$T/data" --work-dir "$T/work"
	if started sup "ready: service $N"; then break; fi
	taken sup || fail "doppel adopt failed: $(tail -3 "$T/sup.log")"
done
grep -q "ready: service $N (pid $PROD, adopted)" "$T/sup.log" || fail "not ready: $(tail -3 "$T/sup.log")"
sup_status "$N" "$T/s0.json"
assert_eq "$(json "$T/s0.json" "j['service']['pid']")" "$PROD" "status: service pid"
assert_eq "$(json "$T/s0.json" "j['service']['state']")" running "status: service state"

log "cloning while clients read from production directly"
before=$(redis_digest "$P")
redis-benchmark -p "$P" -t get -n 200000 -c 8 -q >"$T/bench.log" 2>&1 &
bench=$!
wait_for 20 eval '[ "$(redis-cli -p "$P" info clients | sed -n "s/^connected_clients:\([0-9]*\).*/\1/p")" -ge 8 ]' ||
	fail "the benchmark's clients never connected"
clone "$N"
cat "$T/clone.out"
grep -q "production was frozen for" "$T/clone.out" || fail "clone did not report the frozen time"
C=$(clone_pid "$N" 1)
# The adopted clone runs in a cgroup of its own (its limits), production does not.
for p in $C $(pgrep -P "$C"); do
	grep -q "/doppel/$N/clone-1\$" /proc/"$p"/cgroup || fail "clone task $p not in its cgroup: $(cat /proc/"$p"/cgroup)"
done
grep -q "doppel/$N" /proc/"$PROD"/cgroup && fail "production is in a clone's cgroup"
sup_status "$N" "$T/sc.json"
assert_gt "$(json "$T/sc.json" "j['clones'][0]['limits']['memory']")" 0 "the adopted clone's memory limit in status"
assert_eq "$(in_clone "$C" redis-cli -p "$P" dbsize)" 20000 "clone keys"
assert_eq "$(in_clone "$C" redis-cli -p "$P" debug digest)" "$before" "clone digest = production's at the freeze"
wait "$bench" || fail "redis-benchmark (direct clients) failed: $(tail -3 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "direct clients saw errors: $(grep -i error "$T/bench.log" | head -3)"
grep -q "GET: " "$T/bench.log" || fail "benchmark did not finish: $(tail -2 "$T/bench.log")"

log "the clone is in namespaces of its own, with its own copies"
inside=$(ps -o pid= --ppid "$C" | tr -d ' ')
[ -n "$inside" ] || fail "no process under the clone's init $C"
[ "$(readlink /proc/$inside/ns/pid)" != "$(readlink /proc/$PROD/ns/pid)" ] || fail "clone shares production's pid namespace"
[ "$(readlink /proc/$inside/ns/net)" != "$(readlink /proc/$PROD/ns/net)" ] || fail "clone shares production's network namespace"
grep -q " $T/work/clone-1/state-0 $T/data " /proc/$inside/mountinfo ||
	fail "clone's $T/data is not its own copy: $(grep "$T" /proc/$inside/mountinfo)"
grep -q " $T/prod.log " /proc/$inside/mountinfo ||
	fail "clone writes production's log file: $(grep "$T" /proc/$inside/mountinfo)"

log "writes through the front reach production and the clone"
$PY -c 'import sys
for i in range(1000): sys.stdout.write("SET after:%d v%d\r\n" % (i, i))' | redis-cli -p "$F" --pipe >/dev/null
wait_for 20 eval '[ "$(in_clone "$C" redis-cli -p "$P" debug digest)" = "$(redis_digest "$P")" ]'
assert_eq "$(redis-cli -p "$P" dbsize)" 21000 "production keys after"
assert_eq "$(in_clone "$C" redis-cli -p "$P" dbsize)" 21000 "clone keys after"
grep -q "after:999" "$T/work/clone-1/state-0/appendonlydir/"*.incr.aof || fail "clone's AOF copy lacks its writes"
grep -q "after:999" "$T/data/appendonlydir/"*.incr.aof || fail "production's AOF lacks the writes"
sup_status "$N" "$T/s.json"
frozen=$(json "$T/s.json" "j['clones'][0]['frozen_ms']")

log "stopping the supervisor leaves production running"
stop_pid "$sup_PID" || fail "the supervisor did not stop cleanly: $(tail -3 "$T/sup.log")"
grep -q "adopted, not ours: left running" "$T/sup.log" || fail "no word about production at stop"
kill -0 "$C" 2>/dev/null && fail "clone $C still runs after the supervisor stopped"
assert_eq "$(redis-cli -p "$P" ping)" PONG "production answers after the supervisor stopped"
assert_eq "$(redis-cli -p "$P" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')" "$PROD" "production's pid"
assert_eq "$(redis-cli -p "$P" dbsize)" 21000 "production keeps its data"
log "PASS: frozen ${frozen} ms; clone had production's 20000 keys and got 1000 writes via --front"
