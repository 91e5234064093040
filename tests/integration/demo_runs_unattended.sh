#!/bin/bash
# Promise: `doppel demo` runs unattended and every step does what it says:
# kvd starts under doppel run and users see stale reads (the bug); a live
# clone is made while the load runs; strace attached to the clone records
# its requests; doppel trace finds stale answers in the clone's own trace and
# the comparison of a right and a stale read shows the missed re-read; gdb
# shows the stale cache entry in the clone; production answered throughout
# with no error; everything is stopped at the end.
. "$(dirname "$0")/lib.sh"
need cc; need strace; need gdb
before=$(pgrep -fc 'kvd --port 8080 --data /var/tmp/doppel-demo' || true)
DOPPEL_DEMO_SUMMARY=$T/summary DOPPEL_DEMO_KEEP=1 timeout 280 "$DOPPEL" demo >"$T/demo.log" 2>&1
rc=$?
cat "$T/demo.log"
KEPT=$(sed -n 's/^(files kept in \(.*\))$/\1/p' "$T/demo.log")
# the demo's own logs (doppel run's, with any sanitizer report) join the test's
[ -n "$KEPT" ] && [ -f "$KEPT/run.log" ] && cp "$KEPT/run.log" "$T/demo-run.log"
[ -n "$KEPT" ] && on_exit "rm -rf '$KEPT'"
assert_eq "$rc" 0 "doppel demo's exit status"
get() { sed -n "s/^$1=//p" "$T/summary" | tail -1; }
grep -q '^FAILED=' "$T/summary" && fail "a step failed: $(get FAILED)"
for step in "0. The service" "1. doppel run" "2. doppel clone" "3. doppel attach: strace" \
	"4. doppel trace" "5. doppel attach: gdb" "6. What doppel saw" "Done:"; do
	grep -qF "$step" "$T/demo.log" || fail "the demo did not announce step '$step'"
done
for k in RUN CLONE ATTACH_STRACE COMPARE_LOCATES GDB_CACHE_ENTRY STOP; do
	assert_eq "$(get $k)" ok "step $k"
done
assert_gt "$(get PROD_STALE_BEFORE)" 0 "stale reads users saw before the clone (the bug in production)"
[[ $(get FROZEN_MS) =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "no frozen time reported: '$(get FROZEN_MS)'"
assert_gt "$(get TRACE_LINES)" 10 "lines of strace from the clone"
assert_gt "$(get CLONE_READS)" 0 "reads in the clone's trace"
assert_gt "$(get CLONE_STALE)" 0 "stale reads in the clone's trace (the bug on the clone)"
assert_eq "$(get PROD_ERRORS)" 0 "production's errors"
assert_gt "$(get PROD_REQUESTS_DURING)" 100 "requests production answered while cloned, traced and debugged"
assert_gt "$(get TURNS_COMPARED)" 0 "turns compared between production and the clone"
grep -q '^  > A .*openat(' "$T/demo.log" || fail "the comparison shown does not name the re-read"
grep -qE '^   \$1 = "user=[0-9]+;balance=[0-9]+;v=[0-9]+"' "$T/demo.log" || fail "gdb's output is not shown"
after=$(pgrep -fc 'kvd --port 8080 --data /var/tmp/doppel-demo' || true)
assert_eq "$after" "$before" "kvd processes left running"
log "PASS: $(get PROD_REQUESTS_DURING) requests answered by production during the demo, 0 errors; $(get CLONE_STALE) stale reads found on the clone"
