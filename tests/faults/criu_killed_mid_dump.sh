#!/bin/bash
# Fault: CRIU is SIGKILLed in the middle of a dump (`doppel clone` while
# redis-benchmark drives INCRs through doppel's front): criu_killer.sh stands
# in for CRIU (`doppel run --criu`), waits until CRIU has production seized
# (stopped under ptrace) and kills it 20 ms later. Production must be thawed
# and keep serving: no client error, every INCR executed, PING through the
# front and directly, no task left stopped; `doppel clone` fails with a clear
# message, the log says production runs; no clone is left, and the next clone
# (real CRIU) works.
. "$(dirname "$0")/clones.sh"
N=fc$$
export CRIU_KILL_PIDFILE=$T/prod.pid CRIU_KILL_DELAY=0.02
start_production "$N" --criu "$(dirname "$0")/criu_killer.sh"
echo "$PROD" >"$CRIU_KILL_PIDFILE"
bench "$T/warm.csv" -t ping -n 2000 -c 20
front_quiet "$N"
snapshot before
bench "$T/before.csv" -t incr -n 50000 -c 20
sup_status "$N" "$T/s0.json"
acc0=$(json "$T/s0.json" "j['proxy']['connections']['accepted']")
bench "$T/during.csv" -t incr -n 100000 -c 20 &
load=$!
wait_status "$N" "j['proxy']['connections']['accepted'] >= $acc0 + 20" 20 || fail "the load did not start"
touch "$CRIU_KILL_PIDFILE.arm"
"$DOPPEL" clone "$N" >"$T/clone.out" 2>&1 && fail "doppel clone succeeded with CRIU killed: $(cat "$T/clone.out")"
cat "$T/clone.out"
said=$(grep -o "CRIU was killed by signal 9 (Killed) in the middle of the dump" "$T/clone.out")
assert_eq "$(cat "$CRIU_KILL_PIDFILE.done")" "seized=yes killed=yes" "CRIU killed while production was seized"
kill -0 "$load" 2>/dev/null || fail "the load ended before the fault (make it longer)"
[ -n "$said" ] || fail "doppel clone's message does not say CRIU was killed: $(cat "$T/clone.out")"
not_frozen "$PROD"
for t in /proc/"$PROD"/task/*; do not_frozen "$PROD/task/${t##*/}"; done
assert_eq "$(timeout 5 redis-cli -p "$L" ping)" PONG "production through the front"
assert_eq "$(prod_cli ping)" PONG "production directly"
wait "$load" || fail "the load failed (above)"
counter_is 150000
assert_eq "$(timeout 5 redis-cli -p "$L" incr counter:__rand_int__)" 150001 "INCR after the fault"
grep -q "production (pid $PROD) runs after CRIU failed\|production thawed after CRIU failed" "$T/sup_$N.log" ||
	fail "the log does not say production runs"
reported=$(grep -o "production (pid $PROD) runs after CRIU failed[^\"]*\|production thawed after CRIU failed[^\"]*" "$T/sup_$N.log" | head -1)
sup_status "$N" "$T/status.json"
assert_eq "$(json "$T/status.json" "len(j['clones'])")" 0 "clones after the failed dump"
assert_eq "$(json "$T/status.json" "j['service']['state']")" running "production's state"
assert_eq "$(json "$T/status.json" "j['proxy']['production']['connect_failures'] + j['proxy']['production']['production_resets'] + j['proxy']['production']['client_resets']")" 0 "production errors"
front_quiet "$N"
snapshot after
bounded_growth
log "the next clone, with the real CRIU"
clone "$N"
C=$(clone_pid "$N" 2)
assert_eq "$(in_clone "$C" redis-cli -p 6379 get counter:__rand_int__)" 150001 "the next clone's counter"
result "CRIU SIGKILLed 20 ms into the dump, production seized (\`doppel run --criu criu_killer.sh\`, 20 conns INCR)" 0 \
	"$(p99 "$T/before.csv" INCR)" "$(p99 "$T/during.csv" INCR)" \
	"doppel clone: \"$said\"; log: \"$reported\"; next clone OK"
log "PASS"
