#!/bin/bash
# Promise: two runs of a program, one taking the input path with a bug:
# compare points at the first divergent call (negate_even vs negate_odd, inside
# main > classify > add_negative). Over 50 runs labelled by exit status, rank
# puts the buggy predicate first and iterative elimination names it as the one
# bug predictor; with uftrace return values, "check() < 0" is a perfect
# predictor too.
. "$(dirname "$0")/lib.sh"
. "$HERE/trace_lib.sh"
cd "$T" || fail "no temp dir"

DOPPELTRACE_OUT=$T/good.dtr "$SAMPLES/numbers_dtr" 5 7 -4 3 >/dev/null || fail "the good run failed"
DOPPELTRACE_OUT=$T/bad.dtr "$SAMPLES/numbers_dtr" 5 7 -3 3 >/dev/null && fail "the bad run passed"
"$DOPPEL" trace compare "$T/good.dtr" "$T/bad.dtr" >"$T/cmp" || fail "compare failed"
cat "$T/cmp"
grep -q '^first divergence: event #17 of A, #17 of B$' "$T/cmp" || fail "first divergence position"
grep -q '^  call path B: main > classify > add_negative$' "$T/cmp" || fail "call path at the divergence"
grep -q '^  > A     > negate_even$' "$T/cmp" || fail "A's first divergent call"
grep -q '^  > B     > negate_odd$' "$T/cmp" || fail "B's first divergent call"
grep -q '^verdict: different' "$T/cmp" || fail "verdict"
"$DOPPEL" trace compare --json "$T/good.dtr" "$T/bad.dtr" >"$T/cmp.json" || fail "compare --json"
assert_eq "$(json "$T/cmp.json" "j['first']['event_b']")" "> negate_odd" "JSON first divergence"
"$DOPPEL" trace compare --exit-status "$T/good.dtr" "$T/good.dtr" >/dev/null || fail "a trace differs from itself"
"$DOPPEL" trace compare --exit-status "$T/good.dtr" "$T/bad.dtr" >/dev/null
assert_eq "$?" 3 "--exit-status for different traces"
# the timing comparator ignores the call structure's equal parts
"$DOPPEL" trace compare --by timing --threshold 1000% "$T/good.dtr" "$T/good.dtr" | grep -q '^verdict: similar' ||
	fail "timing comparator on one trace"

# 50 runs with random inputs, labelled by exit status
RANDOM=42
: >"$T/labels"
for i in $(seq 50); do
	args=""
	for _ in 1 2 3; do args="$args $((RANDOM % 30 - 6))"; done
	DOPPELTRACE_OUT=$T/run$i.dtr "$SAMPLES/numbers_dtr" $args >/dev/null
	echo "run$i.dtr $?" >>"$T/labels"
done
failed=$(grep -c ' 1$' "$T/labels")
log "$failed of 50 runs failed"
assert_ge "$failed" 2 "failing runs"
[ "$failed" -lt 48 ] || fail "too few passing runs ($failed failed)"
"$DOPPEL" trace rank --labels "$T/labels" >"$T/rank" || fail "rank failed"
cat "$T/rank"
first=$(awk '$1 == "1" && NF >= 10 {for (i = 10; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : ""); print ""; exit}' "$T/rank")
assert_eq "$first" "called negate_odd" "the top predicate"
grep -q '^  1\. called negate_odd .*explains '"$failed"' of '"$failed"' remaining' "$T/rank" ||
	fail "iterative elimination"
"$DOPPEL" trace rank --labels "$T/labels" --json >"$T/rank.json" || fail "rank --json"
assert_eq "$(json "$T/rank.json" "j['ranking'][0]['predicate']")" "called negate_odd" "JSON top predicate"
assert_eq "$(json "$T/rank.json" "j['ranking'][0]['F']")" "$failed" "F(called negate_odd)"
assert_eq "$(json "$T/rank.json" "j['ranking'][0]['S']")" 0 "S(called negate_odd)"

# labels from divergence reports: a saved `doppel status --json` per run
echo '{"replicas":[{"name":"clone","diverged_turns":2}]}' >"$T/diverged.json"
echo '{"replicas":[{"name":"clone","diverged_turns":0}]}' >"$T/same.json"
sed -e 's/ 1$/ @diverged.json/' -e 's/ 0$/ @same.json/' "$T/labels" >"$T/labels.status"
"$DOPPEL" trace rank --labels "$T/labels.status" --json >"$T/rank2.json" || fail "rank with status labels"
assert_eq "$(json "$T/rank2.json" "j['failed']")" "$failed" "runs failed by their divergence reports"
assert_eq "$(json "$T/rank2.json" "j['ranking'][0]['predicate']")" "called negate_odd" "top predicate (status labels)"

# return values recorded by uftrace: 12 runs, half of them failing
need uftrace
: >"$T/ulabels"
for i in $(seq 12); do
	if [ $((i % 2)) = 0 ]; then args="4 -3 2"; else args="4 -2 $i"; fi
	uftrace record -d "$T/u$i" -R 'check@retval/i32' "$SAMPLES/numbers_pg" $args >/dev/null 2>&1
	echo "u$i $?" >>"$T/ulabels"
done
"$DOPPEL" trace rank --labels "$T/ulabels" --predicates return,called --top 20 >"$T/urank" || fail "rank of uftrace runs"
cat "$T/urank"
grep -Eq '^ +[0-9]+ +[0-9.]+ +0\.500 +0\.500 +1\.000 +6 +0 +6 +6  check\(\) < 0$' "$T/urank" ||
	fail "check() < 0 should have Failure 1.000 and Increase 0.500"
log "PASS"
