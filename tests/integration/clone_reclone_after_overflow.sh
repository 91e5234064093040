#!/bin/bash
# Promise: with --overflow reclone, a clone that cannot keep up (stopped, as
# under a debugger) is replaced by a fresh clone, its debug window is
# recorded, and production never notices.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-benchmark
N=re$$
mkdir -p "$T/data"
run_service "$N" L --port 6379 --state "$T/data" --buffer 64K --overflow reclone -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save ''
clone "$N"
C1=$(clone_pid "$N" 1)
sigstop "$C1"
log "clone 1 stopped; load through the front"
timeout 120 redis-benchmark -p "$L" -t set -n 60000 -c 20 -d 1024 -r 100000 -q >"$T/bench.log" 2>&1 ||
	fail "benchmark: $(tail -2 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "production errors: $(grep -i error "$T/bench.log" | head -2)"
wait_status "$N" "j['reclones'] >= 1 and not j['clone_in_progress'] and len(j['clones']) == 1" 20
sup_status "$N" "$T/s.json"
assert_ge "$(json "$T/s.json" "j['reclones']")" 1 "re-clones"
new=$(json "$T/s.json" "j['clones'][0]['id']")
[ "$new" -gt 1 ] || fail "the clone was not replaced (id $new)"
track_pid "$(json "$T/s.json" "j['clones'][0]['pid']")"
kill -0 "$C1" 2>/dev/null && fail "the overflowed clone (pid $C1) still runs"
assert_eq "$(json "$T/s.json" "j['past_windows'][0]['clone']")" 1 "recorded window's clone"
assert_eq "$(json "$T/s.json" "j['past_windows'][0]['debug_window_s'] > 0")" True "recorded debug window"
C2=$(json "$T/s.json" "j['clones'][0]['pid']")
redis-cli -p "$L" set fresh 1 >/dev/null
wait_for 10 eval '[ "$(nsenter -t "$C2" -n redis-cli -p 6379 get fresh)" = 1 ]'
assert_eq "$(nsenter -t "$C2" -n redis-cli -p 6379 get fresh)" 1 "the fresh clone gets traffic"
log "PASS: clone 1's debug window $(json "$T/s.json" "j['past_windows'][0]['debug_window_s']") s, replaced by clone $new"
