#!/bin/bash
# Promise: `doppel proxy --threads 2` spreads connections over two event loops
# (each with its own SO_REUSEPORT listener) and is still one proxy to its
# replicas and to the operator: a replica that keeps up gets every request
# (same dataset, no diverged turn, every turn compared, /diverge's per-type
# rows summed over the threads); a stopped replica's budget is one budget over
# both threads (the queue over both never passes it by more than what one read
# of each thread adds) and its debug window closes once; /status, /status.txt
# and /metrics show the sums and the thread count.
. "$(dirname "$0")/lib.sh"
need redis-benchmark
start_redis prod P
start_redis fast R
start_redis slow S
# Each connection's queue for the stopped replica stays below --buffer; all of
# them together pass the budget: only the budget (one over both threads) drops.
budget=$((1024 * 1024))
start_proxy proxy L A --backend 127.0.0.1:$P --replica fast=127.0.0.1:$R \
	--replica slow=127.0.0.1:$S --threads 2 --buffer 1M --budget $budget --protocol resp
sigstop "$slow_PID"
n=20000
timeout 120 redis-benchmark -p "$L" -t set -n $n -c 40 -r 100000 -d 1024 -q >"$T/bench.log" 2>&1 ||
	fail "redis-benchmark failed or hung: $(tail -3 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "benchmark errors: $(grep -i error "$T/bench.log" | head -3)"

# the fast replica answered everything: its turns, compared over both threads
fast_done() {
	status_json 127.0.0.1:$A "$T/status.json"
	[ "$(json "$T/status.json" "j['replicas'][0]['turns_compared']")" -ge $n ]
}
wait_for 30 fast_done || fail "the fast replica's turns: $(json "$T/status.json" "j['replicas'][0]")"
J="$T/status.json"
assert_eq "$(json "$J" "j['threads']")" 2 "threads in /status"
assert_eq "$(json "$J" "len(j['connections']['accepted_per_thread'])")" 2 "per-thread accept counts"
assert_eq "$(json "$J" "sum(j['connections']['accepted_per_thread']) == j['connections']['accepted']")" True \
	"per-thread accepts add up"
assert_eq "$(json "$J" "min(j['connections']['accepted_per_thread']) > 0")" True \
	"both threads accepted connections: $(json "$J" "j['connections']['accepted_per_thread']")"
assert_eq "$(json "$J" "j['replicas'][0]['name']")" fast "first replica"
assert_eq "$(json "$J" "j['replicas'][0]['diverged_turns']")" 0 "fast replica's diverged turns"
assert_eq "$(json "$J" "j['replicas'][0]['overflows']")" 0 "fast replica's overflows"
assert_eq "$(redis_digest "$R")" "$(redis_digest "$P")" "the fast replica's dataset"

# the stopped replica: one budget over both threads, one debug window
S_="j['replicas'][1]"
assert_ge "$(json "$J" "$S_['overflows']")" 1 "the stopped replica's overflows"
assert_eq "$(json "$J" "$S_['window_open']")" False "its debug window closed"
hw=$(json "$J" "$S_['total_high_water']")
# a thread adds at most one read (64 KiB) past the budget before it sees it
assert_eq "$(json "$J" "$S_['total_high_water'] <= $budget + 2 * 65536")" True \
	"the queue over both threads stayed within one budget (high water $hw of $budget)"
assert_eq "$(json "$J" "$S_['bytes_forwarded'] + $S_['bytes_dropped'] + $S_['buffered'] == $S_['bytes_offered']")" True \
	"every byte offered to it is forwarded, dropped or still buffered"
assert_eq "$(grep -c "debug window of replica=slow closed" "$T/proxy.log")" 1 \
	"the debug window closes once (logged once)"

# /diverge: the fast replica's SET row is the sum over both threads (a turn
# is counted by type once every replica has answered or dropped it: the
# stopped one runs again first)
kill -CONT "$slow_PID"
D="[r for r in j['replicas'] if r['name']=='fast'][0]['divergence']"
set_rows() {
	"$DOPPEL" diverge --admin 127.0.0.1:$A --json >"$T/d.json" || return 1
	[ "$(json "$T/d.json" "sum(t['turns'] for t in $D['types'] if t['type']=='SET')")" -ge $n ]
}
wait_for 30 set_rows || fail "SET turns in /diverge: $(json "$T/d.json" "$D['types']")"
assert_eq "$(json "$T/d.json" "[t['turns'] for t in $D['types'] if t['type']=='SET'][0]")" $n \
	"SET turns in /diverge"
assert_eq "$(json "$T/d.json" "$D['turns_diverged']")" 0 "diverged turns in /diverge"

"$DOPPEL" status --admin 127.0.0.1:$A >"$T/status.txt" || fail "doppel status --admin"
grep -q "^threads: 2 event loops" "$T/status.txt" || fail "status text shows no threads line: $(cat "$T/status.txt")"
curl -sS "http://127.0.0.1:$A/metrics" >"$T/metrics.txt" || fail "GET /metrics"
grep -q "^doppel_threads{} 2$" "$T/metrics.txt" || fail "no doppel_threads metric"
acc=$(json "$J" "j['connections']['accepted']")
grep -q "^doppel_connections_total{} $acc$" "$T/metrics.txt" ||
	fail "doppel_connections_total is not the sum ($acc): $(grep '^doppel_connections_total' "$T/metrics.txt")"
stop_pid "$proxy_PID" || fail "doppel proxy did not stop cleanly: $(tail -3 "$T/proxy.log")"
grep -q "final status" "$T/proxy.log" || fail "no final status at exit"
log "PASS: $(grep -o '[0-9.]* requests per second' "$T/bench.log" | head -1) over 2 threads ($(json "$J" "j['connections']['accepted_per_thread']")), slow replica high water $hw of $budget"
