#!/bin/bash
# Promise: the budget governor cuts a costly tracer when the clone's buffer
# passes the high mark, restores it below the low mark, logs every step with
# the occupancy that caused it, and reports the share of time traced at full
# detail. The "tracer" stops the clone 98% of the time (a synthetic slow
# clone: 1 ms of every 50); it detaches on SIGINT, like strace. A second
# session, with the forecast on (--horizon), cuts before the high mark because
# the buffer fills fast.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-benchmark
N=gov$$; L=$(free_port)
mkdir -p "$T/data"
run_service "$N" --listen 127.0.0.1:$L --port 6379 --state "$T/data" --buffer 1M -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --save ''
clone "$N"
spawn attach "$DOPPEL" attach "$N/1" --governor restart --high 40 --low 10 --horizon 0 --duration 25s -- \
	$PY "$HERE/slow_tracer.py" {pids}
for _ in $(seq 100); do grep -q "attached to clone 1" "$T/attach.log" && break; sleep 0.1; done
# A steady load, one connection per client, for the length of each session.
load() { # load LOG: redis-benchmark until stopped
	spawn bench redis-benchmark -p "$L" -t set -n 100000000 -c 4 -r 1000000 -d 200 -q
	BENCH_LOG=$1
}
load_done() {
	kill -0 "$bench_PID" 2>/dev/null || fail "the benchmark ended early: $(tail -c 300 "$T/bench.log")"
	stop_pid "$bench_PID"
	cp "$T/bench.log" "$BENCH_LOG" # bench.log stays for the failure report
	grep -q 'SET: rps=' "$BENCH_LOG" || fail "the benchmark reported no progress"
	grep -qi error "$BENCH_LOG" && fail "client errors: $(grep -i -m1 error "$BENCH_LOG")"
	return 0
}
load "$T/bench1.log"
wait "$attach_PID"
load_done
cat "$T/attach.log" | grep "doppel attach" | head -20
grep -qE "governor: buffer [0-9]+% above the high mark: cutting tracing" "$T/attach.log" || fail "the governor never cut tracing; clone: $("$DOPPEL" status "$N" 2>&1 | tail -8)"
grep -qE "governor: buffer [0-9]+% below the low mark: restoring full detail" "$T/attach.log" || fail "the governor never restored it"
cuts=$(grep -oE '[0-9]+ cut\(s\)' "$T/attach.log" | grep -oE '^[0-9]+')
restores=$(grep -oE '[0-9]+ restore\(s\)' "$T/attach.log" | grep -oE '^[0-9]+')
assert_ge "$cuts" 1 "cuts reported"
assert_ge "$restores" 1 "restores reported"
share=$(grep -oE 'full detail [0-9]+% of the time' "$T/attach.log" | grep -oE '[0-9]+')
[ -n "$share" ] && [ "$share" -gt 0 ] && [ "$share" -lt 100 ] || fail "full-detail share '$share' is not between 0 and 100"
assert_ge "$(grep -c '^slowing' "$T/work/$N/clone-1/"attach-*/output.log)" 2 "tracer starts (restarted after a cut)"

# The forecast: the high mark is out of reach (95%), the fill rate is not.
spawn attach2 "$DOPPEL" attach "$N/1" --governor restart --high 95 --low 10 --horizon 5s --duration 15s -- \
	$PY "$HERE/slow_tracer.py" {pids}
for _ in $(seq 100); do grep -q "attached to clone 1" "$T/attach2.log" && break; sleep 0.1; done
load "$T/bench2.log"
wait "$attach2_PID"
load_done
grep "doppel attach" "$T/attach2.log" | head -20
grep -qE "governor: buffer [0-9]+% and filling: overflow forecast in [0-9.]+ s \(horizon 5 s\): cutting tracing" \
	"$T/attach2.log" || fail "the forecast never cut tracing before the high mark"
grep -q "above the high mark" "$T/attach2.log" && fail "the buffer reached the high mark although the forecast was on"
log "PASS: $cuts cuts, $restores restores, full detail $share% of the time; the forecast cut before the high mark"
