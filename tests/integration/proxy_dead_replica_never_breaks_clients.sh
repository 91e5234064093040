#!/bin/bash
# Promise: a replica that dies mid-run, or refuses connections from the start,
# never breaks clients; its lost traffic is counted, not silently skipped.
. "$(dirname "$0")/lib.sh"
need redis-benchmark
start_redis prod P
start_redis replica R
refused_port DEAD
start_proxy proxy L A --backend 127.0.0.1:$P --replica live=127.0.0.1:$R --replica never=127.0.0.1:$DEAD
timeout 120 redis-benchmark -p "$L" -t set -n 200000 -c 20 -r 100000 -q >"$T/bench.log" 2>&1 &
bench=$!
wait_status "127.0.0.1:$A" "j['replicas'][0]['bytes_forwarded'] > 1000000" 30
log "killing the replica mid-run"
kill -KILL "$replica_PID"
wait "$bench" || fail "redis-benchmark failed: $(tail -3 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "benchmark errors: $(grep -i error "$T/bench.log" | head -3)"
# New connections after the death see a refusing replica.
redis-benchmark -p "$L" -t set -n 2000 -c 5 -r 100000 -q >"$T/bench2.log" 2>&1 || fail "second benchmark failed"
status_json 127.0.0.1:$A "$T/status.json"
live="j['replicas'][0]"; never="j['replicas'][1]"
assert_gt "$(json "$T/status.json" "$live['bytes_dropped']")" 0 "dead replica's dropped bytes"
assert_ge "$(json "$T/status.json" "$never['connect_failures'] + $never['connections_skipped']")" 1 "refusing replica connect failures"
assert_eq "$(json "$T/status.json" "$never['bytes_dropped'] == $never['bytes_offered'] and $never['bytes_offered'] > 0")" True \
	"refusing replica: every offered byte counted as dropped"
assert_eq "$(json "$T/status.json" "$never['state']")" down "refusing replica state"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures']")" 0 "production failures"
log "PASS"
