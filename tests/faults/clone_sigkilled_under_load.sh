#!/bin/bash
# Fault: a live CRIU clone of redis-server under `doppel run` is SIGKILLed
# while redis-benchmark drives INCRs through doppel's front. Production loses
# nothing: no client error, every INCR executed; status lists the clone as
# ended with its reason; the supervisor's fds and RSS come back.
. "$(dirname "$0")/clones.sh"
N=fk$$
start_production "$N"
clone "$N"
C=$(clone_pid "$N" 1)
bench "$T/warm.csv" -t ping -n 2000 -c 20
front_quiet "$N"
snapshot before
bench "$T/before.csv" -t incr -n 50000 -c 20
sup_status "$N" "$T/s0.json"
acc0=$(json "$T/s0.json" "j['proxy']['connections']['accepted']")
bench "$T/during.csv" -t incr -n 100000 -c 20 &
load=$!
wait_status "$N" "j['proxy']['connections']['accepted'] >= $acc0 + 20" 20 || fail "the load did not start"
sleep 0.3
kill -KILL "$C"
kill -0 "$load" 2>/dev/null || fail "the load ended before the clone was killed (make it longer)"
log "clone 1 (pid $C) killed under load"
wait "$load" || fail "the load failed (above)"
counter_is 150000
wait_status "$N" "len(j['clones']) == 0 and len(j['ended_clones']) == 1" 20 || fail "the killed clone is not reported as ended"
sup_status "$N" "$T/status.json"
reason=$(json "$T/status.json" "j['ended_clones'][0]['reason']")
assert_eq "$reason" "exited: killed by signal 9 (Killed)" "ended clone's reason"
assert_eq "$(json "$T/status.json" "j['ended_clones'][0]['killed_by_limit']")" False "killed by its limit"
window=$(json "$T/status.json" "j['ended_clones'][0]['debug_window_s']")
assert_eq "$(json "$T/status.json" "len(j['proxy']['replicas'])")" 0 "replicas left on the proxy"
assert_eq "$(json "$T/status.json" "j['proxy']['production']['connect_failures'] + j['proxy']['production']['production_resets'] + j['proxy']['production']['client_resets']")" 0 "production errors"
grep -q "clone 1 (pid $C) exited" "$T/sup_$N.log" || fail "the log does not say the clone exited"
assert_eq "$(redis-cli -p "$L" ping)" PONG "production answers through the front"
front_quiet "$N"
snapshot after
bounded_growth
result "clone SIGKILLed mid-load (\`doppel run\`, 20 conns, INCR)" 0 \
	"$(p99 "$T/before.csv" INCR)" "$(p99 "$T/during.csv" INCR)" \
	"ended_clones: reason \"$reason\", debug window ${window} s; replica removed"
log "PASS"
