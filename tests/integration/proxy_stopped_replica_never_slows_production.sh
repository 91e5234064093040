#!/bin/bash
# Promise: a SIGSTOPped replica never slows or breaks clients: the benchmark
# completes with no errors, production has every key, /status shows the
# overflow, the dropped bytes and a closed debug window.
. "$(dirname "$0")/lib.sh"
need redis-benchmark
start_redis prod P
start_redis replica R
start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R --buffer 256K
sigstop "$replica_PID"
log "replica stopped; SET load through the proxy"
timeout 120 redis-benchmark -p "$L" -t set -n 100000 -c 50 -r 100000 -d 512 -q >"$T/bench.log" 2>&1 ||
	fail "redis-benchmark failed or hung: $(tail -3 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "benchmark errors: $(grep -i error "$T/bench.log" | head -3)"
pk=$(redis-cli -p "$P" dbsize)
assert_gt "$pk" 50000 "production keys"
status_json 127.0.0.1:$A "$T/status.json"
assert_ge "$(json "$T/status.json" "j['replicas'][0]['overflows']")" 1 "overflows"
assert_gt "$(json "$T/status.json" "j['replicas'][0]['bytes_dropped']")" 0 "bytes dropped"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['window_open']")" False "debug window closed"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['debug_window_s'] is not None and j['replicas'][0]['debug_window_s'] >= 0")" True "debug window recorded"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['buffer_high_water'] > 200000")" True "high-water near the buffer"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['bytes_forwarded'] + j['replicas'][0]['bytes_dropped'] + j['replicas'][0]['buffered'] == j['replicas'][0]['bytes_offered']")" True \
	"every byte offered to the replica is forwarded, dropped or still buffered"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures'] + j['production']['production_resets']")" 0 "production errors"
log "PASS: $(grep -o '[0-9.]* requests per second' "$T/bench.log" | head -1) with the replica stopped; $(json "$T/status.json" "j['replicas'][0]['overflows']") overflows"
