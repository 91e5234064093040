#!/bin/bash
# Promise: libdoppeltrace records every call of a multithreaded program whose
# call counts are known (4 threads x 100 work() x 10 leaf()), to a file and
# through a collector on a unix socket: the counts match exactly, per
# function and per thread; forked children that leave with _exit() keep
# their calls, each child its own process; the Chrome trace JSON it converts
# to is valid and balanced, ready for Perfetto.
. "$(dirname "$0")/lib.sh"
. "$HERE/trace_lib.sh"
THREADS=4 ROUNDS=100 LEAVES=10
cd "$T" || fail "no temp dir"

check_counts() { # TRACE
	"$DOPPEL" trace view --report "$1" >"$T/report" 2>"$T/report.err" || fail "report of $1: $(cat "$T/report.err")"
	[ -s "$T/report.err" ] && fail "reading $1 warned: $(cat "$T/report.err")"
	calls() { awk -v f="$1" '$NF == f {print $1}' "$T/report"; }
	assert_eq "$(calls setup)" 1 "setup() calls"
	assert_eq "$(calls worker)" $THREADS "worker() calls"
	assert_eq "$(calls work)" $((THREADS * ROUNDS)) "work() calls"
	assert_eq "$(calls leaf)" $((THREADS * ROUNDS * LEAVES)) "leaf() calls"
	assert_eq "$(calls main)" 1 "main() calls"
}

# to a file
DOPPELTRACE_OUT=$T/mt.dtr "$SAMPLES/mt_counts_dtr" $THREADS $ROUNDS $LEAVES >/dev/null || fail "mt_counts failed"
check_counts "$T/mt.dtr"

# per thread: main's thread, and 4 workers with 100 work() and 1000 leaf() each
"$DOPPEL" trace demux --by thread "$T/mt.dtr" -o "$T/threads" 2>/dev/null || fail "demux by thread"
assert_eq "$(ls "$T/threads"/thread-*.dtt | wc -l)" $((THREADS + 1)) "thread streams"
workers=0
for f in "$T/threads"/thread-*.dtt; do
	w=$(grep -c '> work$' "$f")
	[ "$w" = 0 ] && continue
	assert_eq "$w" $ROUNDS "work() calls in $f"
	assert_eq "$(grep -c '> leaf$' "$f")" $((ROUNDS * LEAVES)) "leaf() calls in $f"
	workers=$((workers + 1))
done
assert_eq "$workers" $THREADS "threads that worked"

# through the collector
spawn collector "$DOPPEL" trace collect --socket "$T/dt.sock" -o "$T/collected.dtr" --once
for _ in $(seq 100); do [ -S "$T/dt.sock" ] && break; sleep 0.05; done
DOPPELTRACE_OUT=unix:$T/dt.sock "$SAMPLES/mt_counts_dtr" $THREADS $ROUNDS $LEAVES >/dev/null || fail "mt_counts (socket) failed"
# --once: the collector leaves by itself once the program has gone
for _ in $(seq 200); do kill -0 "$collector_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$collector_PID" 2>/dev/null && fail "collect --once still running 10 s after its only client left"
wait "$collector_PID" || fail "the collector failed: $(cat "$T/collector.log")"
grep -q "1 programs" "$T/collector.log" || fail "collector: $(cat "$T/collector.log")"
check_counts "$T/collected.dtr"

# A collector told to stop (SIGTERM) keeps what its clients had sent: here the
# program connects, sends and leaves while the collector is frozen, and the
# SIGTERM is already pending when it wakes. (A small run: its chunks fit the
# socket's queue before any accept.)
spawn collector2 "$DOPPEL" trace collect --socket "$T/dt2.sock" -o "$T/collected2.dtr"
for _ in $(seq 100); do [ -S "$T/dt2.sock" ] && break; sleep 0.05; done
sigstop "$collector2_PID"
DOPPELTRACE_OUT=unix:$T/dt2.sock timeout 20 "$SAMPLES/mt_counts_dtr" 2 10 10 >/dev/null ||
	fail "mt_counts (to a frozen collector) failed"
kill -TERM "$collector2_PID"
kill -CONT "$collector2_PID"
wait "$collector2_PID" || fail "the stopped collector failed: $(cat "$T/collector2.log")"
"$DOPPEL" trace view --report "$T/collected2.dtr" >"$T/report2" 2>&1 || fail "report of the stopped collector's file: $(cat "$T/report2")"
assert_eq "$(awk '$NF == "leaf" {print $1}' "$T/report2")" 200 "leaf() calls kept by a collector stopped after its client left"
assert_eq "$(awk '$NF == "work" {print $1}' "$T/report2")" 20 "work() calls kept by a collector stopped after its client left"

# forked children: 3 processes with 100 child_work() each, the parent's 50 calls
DOPPELTRACE_OUT=$T/forks.dtr "$SAMPLES/forks_dtr" 3 || fail "forks_dtr failed"
"$DOPPEL" trace demux --by process "$T/forks.dtr" -o "$T/procs" 2>/dev/null || fail "demux by process"
assert_eq "$(ls "$T/procs"/process-*.dtt | wc -l)" 4 "processes (parent and 3 children)"
kids=0
for f in "$T/procs"/process-*.dtt; do
	n=$(grep -c '> child_work$' "$f")
	[ "$n" = 0 ] && { assert_eq "$(grep -c '> parent_work$' "$f")" 50 "parent_work() calls"; continue; }
	assert_eq "$n" 100 "child_work() calls in $f"
	kids=$((kids + 1))
done
assert_eq "$kids" 3 "children with their calls"

# Chrome trace JSON: valid, B/E balanced per thread, every leaf() there
"$DOPPEL" trace view --chrome "$T/mt.dtr" -o "$T/mt.json" || fail "view --chrome"
$PY - "$T/mt.json" $((THREADS * ROUNDS * LEAVES)) <<'PYEOF' || fail "Chrome JSON check"
import json, sys, collections
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
depth = collections.Counter()
leaves = 0
for e in ev:
    if e["ph"] == "B":
        depth[(e["pid"], e["tid"])] += 1
        leaves += e["name"] == "leaf"
    elif e["ph"] == "E":
        depth[(e["pid"], e["tid"])] -= 1
        assert depth[(e["pid"], e["tid"])] >= 0, "E before B"
assert all(v == 0 for v in depth.values()), depth
assert leaves == int(sys.argv[2]), leaves
assert any(e["ph"] == "M" and e["name"] == "thread_name" for e in ev)
PYEOF
log "PASS"
