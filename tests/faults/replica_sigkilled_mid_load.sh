#!/bin/bash
# Fault: the replica is SIGKILLed in the middle of a redis-benchmark run
# through the proxy. No client error, every INCR executed, the replica is
# reported down (its connections reset, new ones refused), and the proxy's fds
# come back to where they were.
. "$(dirname "$0")/faults.sh"
start_redis prod P
start_redis replica R
start_proxy proxy L A --backend 127.0.0.1:$P --replica killed=127.0.0.1:$R
bench "$T/warm.csv" -t ping -n 2000 -c 20
quiet_front
snapshot before
bench "$T/before.csv" -t incr -n 30000 -c 20
r="j['replicas'][0]"
status_json 127.0.0.1:$A "$T/s0.json"
fwd0=$(json "$T/s0.json" "$r['bytes_forwarded']")
timeout 40 redis-benchmark -p "$L" --csv -t incr -n 60000 -c 20 >"$T/during.csv" 2>&1 &
bpid=$!
PIDS+=("$bpid")
wait_status "127.0.0.1:$A" "$r['bytes_forwarded'] > $fwd0 + 200000" 30 || fail "no load reached the replica"
kill -KILL "$replica_PID"
log "replica killed mid-load"
wait "$bpid" || fail "redis-benchmark failed (exit $?): $(tail -3 "$T/during.csv")"
grep -qiE "error|reset|closed" "$T/during.csv" && fail "redis-benchmark saw errors: $(head -3 "$T/during.csv")"
counter_is 90000
# New connections meet a refusing replica: it shows as down.
bench "$T/after.csv" -t incr -n 2000 -c 20
counter_is 92000
status_json 127.0.0.1:$A "$T/status.json"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures'] + j['production']['production_resets'] + j['production']['client_resets']")" 0 "production errors"
resets=$(json "$T/status.json" "$r['resets']")
refused=$(json "$T/status.json" "$r['connect_failures']")
assert_gt "$((resets + refused))" 0 "replica connections reset or refused"
quiet_front
wait_status "127.0.0.1:$A" "$r['connections'] == 0" 20 || fail "legs to the dead replica still open"
snapshot after
bounded_growth
result "replica SIGKILLed mid-load (20 conns, INCR)" 0 \
	"$(p99 "$T/before.csv" INCR)" "$(p99 "$T/during.csv" INCR)" \
	"resets=$resets, connect_failures=$refused, skipped=$(json "$T/status.json" "$r['connections_skipped']"), state=$(json "$T/status.json" "$r['state']")"
log "PASS"
