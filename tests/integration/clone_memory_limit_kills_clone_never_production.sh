#!/bin/bash
# Promise: a clone that balloons past its memory limit is OOM-killed inside
# its own cgroup; production keeps serving with its data intact, and
# `doppel status` reports the clone as killed by its memory limit, with its
# debug window.
. "$(dirname "$0")/lib.sh"
need redis-server
N=oom$$
run_service "$N" L --port 6379 -- redis-server --port 6379 --bind 127.0.0.1 --save '' \
	--appendonly no --enable-debug-command local
redis-cli -p "$L" debug populate 1000 key 10 >/dev/null
assert_eq "$(redis-cli -p "$L" dbsize)" 1000 "production's keys before the clone"
D0=$(redis_digest "$L")

clone "$N" --clone-memory 64M
C=$(clone_pid "$N" 1)
assert_eq "$(in_clone "$C" redis-cli -p 6379 dbsize)" 1000 "the clone's keys"
sup_status "$N" "$T/before.json"
assert_eq "$(json "$T/before.json" "j['clones'][0]['limits']['memory']")" $((64 << 20)) "memory limit"

# The clone alone is asked to fill its memory (about 300 MB of keys: far past
# 64 MiB); the kernel kills it when it reaches its limit.
in_clone "$C" timeout 120 redis-cli -p 6379 debug populate 3000000 big 100 >"$T/populate.out" 2>&1
log "the clone answered: $(head -c 200 "$T/populate.out")"
wait_status "$N" "any(e['clone'] == 1 and e['killed_by_limit'] for e in j['ended_clones'])" 60 ||
	fail "no clone reported killed by its memory limit: $(cat "$T/wait_status.json")"
cp "$T/wait_status.json" "$T/after.json"
kill -0 "$C" 2>/dev/null && fail "clone pid $C still runs"
assert_eq "$(json "$T/after.json" "len(j['clones'])")" 0 "clones listed after the kill"
assert_eq "$(json "$T/after.json" "j['ended_clones'][0]['reason']")" "killed by its memory limit" "reason"
assert_eq "$(json "$T/after.json" "j['ended_clones'][0]['memory_limit']")" $((64 << 20)) "limit reported"
peak=$(json "$T/after.json" "j['ended_clones'][0].get('memory_peak', 0)")
assert_ge "$peak" $((60 << 20)) "the clone's peak memory (it reached its limit)"
json "$T/after.json" "j['ended_clones'][0]['debug_window_s']" >/dev/null || fail "no debug window for the ended clone"

# Production never noticed.
assert_eq "$(redis-cli -p "$L" ping)" PONG "production answers"
assert_eq "$(redis-cli -p "$L" dbsize)" 1000 "production's keys after the clone was killed"
assert_eq "$(redis_digest "$L")" "$D0" "production's dataset"
S=$(json "$T/after.json" "j['service']['pid']")
assert_eq "$(json "$T/after.json" "j['service']['state']")" running "production's state"
kill -0 "$S" || fail "production (pid $S) is gone"
"$DOPPEL" status "$N" >"$T/after.txt" || fail "doppel status"
grep -q "clone 1 killed by its memory limit after .*(memory limit 64.0 MiB, peak .*); its debug window: " "$T/after.txt" ||
	fail "doppel status does not say the clone was killed by its limit: $(cat "$T/after.txt")"
grep -q "clone 1 .* was killed by its memory limit (64.0 MiB" "$T/sup_$N.log" ||
	fail "the supervisor's log does not say why the clone ended"
"$DOPPEL" stop "$N" >/dev/null || fail "doppel stop"
log "PASS"
