#!/bin/bash
# Promise: after redis-benchmark SET load through the proxy, the replica holds
# exactly production's keys (same DEBUG DIGEST), every answer turn matched,
# nothing was dropped.
. "$(dirname "$0")/lib.sh"
need redis-benchmark
start_redis prod P
start_redis replica R
start_proxy proxy L A --backend 127.0.0.1:$P --replica r1=127.0.0.1:$R

log "SET load through the proxy"
redis-benchmark -p "$L" -t set -n 50000 -c 20 -r 20000 -d 64 -q >"$T/bench.log" 2>&1 ||
	fail "redis-benchmark failed: $(tail -3 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "redis-benchmark reported errors: $(grep -i error "$T/bench.log" | head -3)"
# The last replica batch: the replica has answered every request.
wait_status "127.0.0.1:$A" "j['replicas'][0]['turns_compared'] >= 50000 and j['replicas'][0]['buffered'] == 0"

pk=$(redis-cli -p "$P" dbsize); rk=$(redis-cli -p "$R" dbsize)
assert_gt "$pk" 1000 "production keys"
assert_eq "$rk" "$pk" "replica keys"
pd=$(redis_digest "$P") || exit 1; rd=$(redis_digest "$R") || exit 1
assert_eq "$rd" "$pd" "replica dataset digest"

status_json 127.0.0.1:$A "$T/status.json"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['overflows']")" 0 "overflows"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['bytes_dropped']")" 0 "bytes dropped"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['diverged_turns']")" 0 "diverged turns"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['bytes_forwarded'] == j['production']['bytes_from_clients']")" True \
	"replica got every client byte"
assert_ge "$(json "$T/status.json" "j['replicas'][0]['turns_compared']")" 50000 "turns compared"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['window_open']")" True "debug window still open"
"$DOPPEL" status --admin 127.0.0.1:$A | grep -q "r1 .*127.0.0.1:$R" || fail "status text lacks the replica"
# Saved first: grep -q stops reading at the match, and curl would fail writing the rest.
curl -sf "http://127.0.0.1:$A/metrics" >"$T/metrics" || fail "GET /metrics failed"
grep -q "doppel_replica_bytes_forwarded_total{replica=\"r1\"" "$T/metrics" ||
	fail "/metrics lacks replica counters"
stop_pid "$proxy_PID" || fail "proxy did not exit 0 on SIGTERM"
log "PASS: $pk keys on both sides, digest $pd"
