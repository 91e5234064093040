#!/bin/bash
# Promise: `doppel trace` explains itself: every subcommand has --help (and
# `doppel help trace SUB`), bad usage exits 2 with the reason, a trace that
# cannot be read exits 1 with the reason, and analyses compose through pipes.
. "$(dirname "$0")/lib.sh"
. "$HERE/trace_lib.sh"
expect_rc() { # RC NEEDLE ARGS...
	local want=$1 needle=$2; shift 2
	"$DOPPEL" "$@" >"$T/out" 2>&1
	local rc=$?
	[ $rc -eq "$want" ] || fail "doppel $*: exit $rc, expected $want ($(cat "$T/out"))"
	grep -q -- "$needle" "$T/out" || fail "doppel $*: message lacks '$needle': $(cat "$T/out")"
}
for sub in demux summarise coarsen compare align rank view collect; do
	"$DOPPEL" trace "$sub" --help | grep -q "^usage: doppel trace $sub" || fail "trace $sub --help"
	"$DOPPEL" help trace "$sub" | grep -q "^usage: doppel trace $sub" || fail "help trace $sub"
done
"$DOPPEL" help --man | grep -q '^\.SS doppel trace rank' || fail "man page lacks trace rank"
expect_rc 2 "which analysis" trace
expect_rc 2 "no analysis 'frob'" trace frob
expect_rc 2 "--by is required" trace demux x
expect_rc 2 "use thread, process, connection, request or rule" trace demux --by bogus x
expect_rc 2 "needs --begin" trace demux --by rule x
expect_rc 2 "--window must be 1 to 64" trace summarise --window 0 x
expect_rc 2 "nothing to hide" trace coarsen x
expect_rc 2 "give two traces" trace compare a
expect_rc 2 "use exact, name or timing" trace compare --by fuzzy a b
expect_rc 2 "give labelled runs" trace rank
expect_rc 2 "--format 'xml'" trace view --format xml x
expect_rc 2 "--socket and -o are required" trace collect
expect_rc 1 "No such file or directory" trace view "$T/missing.dtr"
echo "hello, this is not a trace" >"$T/junk"
expect_rc 1 "unknown trace format" trace view "$T/junk"
# labels need both outcomes
DOPPELTRACE_OUT=$T/a.dtr "$SAMPLES/numbers_dtr" 1 >/dev/null
expect_rc 2 "needs both passing and failing runs" trace rank --pass "$T/a.dtr" --pass "$T/a.dtr"
# a pipeline: demux | summarise | coarsen | view, all through standard input
DOPPELTRACE_OUT=$T/mt.dtr "$SAMPLES/mt_counts_dtr" 2 50 4 >/dev/null
"$DOPPEL" trace demux --by thread "$T/mt.dtr" 2>/dev/null | "$DOPPEL" trace summarise - |
	"$DOPPEL" trace coarsen --depth 2 - | "$DOPPEL" trace view --tree - >"$T/tree" || fail "pipeline failed"
grep -q '== stream thread ' "$T/tree" || fail "pipeline lost the streams"
assert_eq "$(grep -c 'loop work ×50' "$T/tree")" 2 "work loops of the two threads"
grep -q '\.\.\. leaf ×4 hidden' "$T/tree" || fail "coarsened leaf() calls not counted"
log "PASS"
