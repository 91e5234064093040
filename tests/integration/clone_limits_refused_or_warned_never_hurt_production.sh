#!/bin/bash
# Promise: when a clone's cgroup cannot be made, production is never touched:
# limits asked for explicitly make `doppel clone` refuse with the cause and
# the fix, before production is frozen; the default limits only warn, and the clone runs without them. A
# memory limit below production's own memory is refused before production is
# frozen.
. "$(dirname "$0")/lib.sh"
need redis-server
N=cgf$$
M=$(cg_mount memory)
[ -n "$M" ] || skip "no cgroup memory controller on this host"
run_service "$N" L --port 6379 -- redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no
redis-cli -p "$L" set k v >/dev/null

# Another process already holds the cgroups clones 1 and 2 would get.
for id in 1 2; do
	mkdir -p "$M/doppel/$N/clone-$id" || fail "cannot make $M/doppel/$N/clone-$id"
	spawn "blocker$id" sleep 600
	v=blocker${id}_PID
	echo "${!v}" >"$M/doppel/$N/clone-$id/cgroup.procs" || fail "cannot move the blocker"
done
on_exit "rmdir '$M/doppel/$N/clone-1' '$M/doppel/$N/clone-2' '$M/doppel/$N' '$M/doppel' 2>/dev/null"

# 1. asked for: refused, with the cause; nothing else happens
"$DOPPEL" clone "$N" --clone-memory 96M >"$T/c1.out" 2>&1 && fail "clone with a limit it cannot have succeeded: $(cat "$T/c1.out")"
grep -q "cannot give clone 1 the resource limits asked for: the cgroup $M/doppel/$N/clone-1 exists already and has processes" "$T/c1.out" ||
	fail "unclear refusal: $(cat "$T/c1.out")"
grep -q "freezing production" "$T/c1.out" && fail "production was frozen for a clone that was refused: $(cat "$T/c1.out")"
sup_status "$N" "$T/s1.json"
assert_eq "$(json "$T/s1.json" "len(j['clones'])")" 0 "clones after the refusal"
assert_eq "$(redis-cli -p "$L" get k)" v "production after the refusal"

# 2. the defaults: a warning, and a clone without limits that works
clone "$N"
grep -q "WARNING: clone 2 runs without resource limits (memory, CPU weight, pids): the cgroup .* exists already" "$T/clone.out" ||
	fail "no warning: $(cat "$T/clone.out")"
sup_status "$N" "$T/s2.json"
assert_eq "$(json "$T/s2.json" "'limits' in j['clones'][0] or 'cgroup' in j['clones'][0]")" False "a clone without a cgroup shows no limits"
C=$(clone_pid "$N" 2)
assert_eq "$(in_clone "$C" redis-cli -p 6379 get k)" v "the clone without limits answers"
"$DOPPEL" destroy "$N/2" >/dev/null || fail "destroy $N/2"
kill -0 "$blocker2_PID" || fail "destroying a clone without a cgroup killed what was in the cgroup it could not have"

# 3. a memory limit below production's own: refused before the freeze
"$DOPPEL" clone "$N" --clone-memory 4M >"$T/c3.out" 2>&1 && fail "a 4M clone of redis was made"
grep -q "is less than production's resident memory" "$T/c3.out" || fail "unclear refusal: $(cat "$T/c3.out")"
grep -q "freezing production" "$T/c3.out" && fail "production was frozen for a clone that was refused: $(cat "$T/c3.out")"
assert_eq "$(redis-cli -p "$L" get k)" v "production at the end"
"$DOPPEL" stop "$N" >/dev/null || fail "doppel stop"
log "PASS"
