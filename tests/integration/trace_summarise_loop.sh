#!/bin/bash
# Promise: a C program with a loop of 1,000 calls summarises to one folded
# block of 1,000 (traced by libdoppeltrace and by uftrace), and expands back
# to the very same trace; a recursion folds into one descent and one ascent;
# coarsen hides by depth and by name while keeping counts.
. "$(dirname "$0")/lib.sh"
. "$HERE/trace_lib.sh"
cd "$T" || fail "no temp dir"

one_block() { # TRACE LABEL
	"$DOPPEL" trace summarise "$1" -o "$T/sum.dtt" || fail "$2: summarise failed"
	cat "$T/sum.dtt"
	assert_eq "$(grep -c '\[ loop step ×1000 ' "$T/sum.dtt")" 1 "$2: blocks 'loop step ×1000'"
	assert_eq "$(grep -c '\[ ' "$T/sum.dtt")" 1 "$2: folded blocks"
	assert_eq "$(grep -c '> step$' "$T/sum.dtt")" 1 "$2: step() shown once"
	# the report still counts every call
	"$DOPPEL" trace view --report "$T/sum.dtt" | awk '$NF == "step" {print $1}' >"$T/n"
	assert_eq "$(cat "$T/n")" 1000 "$2: step() calls in the report"
}

DOPPELTRACE_OUT=$T/loop.dtr "$SAMPLES/loop1000_dtr" >/dev/null || fail "loop1000_dtr"
one_block "$T/loop.dtr" libdoppeltrace

need uftrace
uftrace record -d "$T/uftrace.data" "$SAMPLES/loop1000_pg" >/dev/null 2>&1 || fail "uftrace record"
one_block "$T/uftrace.data" uftrace

# lossless: with --keep-times, expand gives back the trace line for line
"$DOPPEL" trace view --text "$T/loop.dtr" -o "$T/orig.dtt" || fail "view --text"
"$DOPPEL" trace summarise --keep-times "$T/loop.dtr" | "$DOPPEL" trace summarise --expand - -o "$T/back.dtt" ||
	fail "summarise | expand"
cmp -s "$T/orig.dtt" "$T/back.dtt" || fail "expand(summarise --keep-times) differs: $(diff "$T/orig.dtt" "$T/back.dtt" | head)"
# without it, every event comes back, iterations spread over the block's span
"$DOPPEL" trace summarise "$T/loop.dtr" | "$DOPPEL" trace summarise --expand - -o "$T/back2.dtt"
assert_eq "$(wc -l <"$T/back2.dtt")" "$(wc -l <"$T/orig.dtt")" "lines after a plain expand"
strip() { sed -E 's/^[0-9.]+ //; s/ <[0-9.]+>$//' "$1"; }
diff <(strip "$T/orig.dtt") <(strip "$T/back2.dtt") >/dev/null || fail "plain expand changed the events"

# iterative windows find the same block
"$DOPPEL" trace summarise --mode iterative --window 4 "$T/loop.dtr" | grep -q '\[ loop step ×1000 ' ||
	fail "iterative mode"

# recursion: walk() recursing 50 times with the same work at each level
DOPPELTRACE_OUT=$T/rec.dtr "$SAMPLES/recurse_dtr" 50 >/dev/null || fail "recurse_dtr"
"$DOPPEL" trace summarise "$T/rec.dtr" -o "$T/rec.dtt" || fail "summarise recursion"
assert_eq "$(grep -c '\[ descend walk ×50 ' "$T/rec.dtt")" 1 "descent blocks"
assert_eq "$(grep -c '\[ ascend walk ×50 ' "$T/rec.dtt")" 1 "ascent blocks"
"$DOPPEL" trace view --text "$T/rec.dtr" -o "$T/rec.orig"
"$DOPPEL" trace summarise --keep-times "$T/rec.dtr" | "$DOPPEL" trace summarise --expand - -o "$T/rec.back"
cmp -s "$T/rec.orig" "$T/rec.back" || fail "recursion does not expand back exactly"

# coarsen: depth 1 keeps main and hides the 1002 calls below it, with their count
"$DOPPEL" trace coarsen --depth 1 "$T/loop.dtr" -o "$T/c1.dtt" || fail "coarsen --depth"
grep -q '~ \.\.\. ×1002 ' "$T/c1.dtt" || fail "coarsen --depth 1: $(cat "$T/c1.dtt")"
assert_eq "$(grep -c '^[0-9.]* [0-9/]* *[<>]' "$T/c1.dtt")" 2 "events kept at depth 0"
"$DOPPEL" trace coarsen --hide 'st*' "$T/loop.dtr" | grep -c '> step' >"$T/n" || true
assert_eq "$(cat "$T/n")" 0 "step() hidden by name"
"$DOPPEL" trace coarsen --hide 'st*' "$T/loop.dtr" | grep -q '~ step ×1000 ' || fail "hidden steps not counted"
log "PASS"
