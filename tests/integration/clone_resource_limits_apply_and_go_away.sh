#!/bin/bash
# Promise: each clone runs in a cgroup of its own with the memory limit, CPU
# weight and pids limit asked for (or the default rule), from its first
# instruction; `doppel status` shows the limits and what the clone uses; the
# cgroup is gone once the clone is destroyed; production is not in it.
. "$(dirname "$0")/lib.sh"
need redis-server
N=lim$$

run_service "$N" L --port 6379 -- redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no
S=$(json "$T/ready.json" "j['service']['pid']")
redis-cli -p "$L" set k v >/dev/null

# 1. limits given to `doppel clone`
clone "$N" --clone-memory 96M --clone-cpu-weight 20 --clone-pids 100
grep -q "each clone gets a cgroup of its own: memory 96.0 MiB" "$T/clone.out" ||
	fail "doppel clone did not say which limits: $(cat "$T/clone.out")"
C=$(clone_pid "$N" 1)
sup_status "$N" "$T/s1.json"
VERSION=$(json "$T/s1.json" "j['clones'][0]['cgroup_version']")
log "cgroup $VERSION"
assert_eq "$(json "$T/s1.json" "j['clones'][0]['cgroup']")" "doppel/$N/clone-1" "the clone's cgroup"
assert_eq "$(json "$T/s1.json" "j['clones'][0]['limits']['memory']")" $((96 << 20)) "memory limit in /status"
assert_eq "$(json "$T/s1.json" "j['clones'][0]['limits']['cpu_weight']")" 20 "CPU weight in /status"
assert_eq "$(json "$T/s1.json" "j['clones'][0]['limits']['pids']")" 100 "pids limit in /status"
used=$(json "$T/s1.json" "j['clones'][0]['usage']['memory']")
assert_gt "$used" $((1 << 20)) "memory the clone uses (it holds redis' restored pages)"
assert_gt "$(json "$T/s1.json" "j['clones'][0]['usage']['pids']")" 0 "tasks in the clone's cgroup"

MEM=$(cg_mount memory)/doppel/$N/clone-1
CPU=$(cg_mount cpu)/doppel/$N/clone-1
PIDS_CG=$(cg_mount pids)/doppel/$N/clone-1
if [ "$VERSION" = v1 ]; then
	assert_eq "$(cat "$MEM/memory.limit_in_bytes")" $((96 << 20)) "memory.limit_in_bytes"
	[ -e "$MEM/memory.memsw.limit_in_bytes" ] &&
		assert_eq "$(cat "$MEM/memory.memsw.limit_in_bytes")" $((96 << 20)) "memory.memsw.limit_in_bytes"
	assert_eq "$(cat "$CPU/cpu.shares")" 204 "cpu.shares (weight 20 x 1024 / 100)"
	assert_eq "$(cat "$(dirname "$(dirname "$CPU")")/cpu.shares")" 204 "cpu.shares of the top level doppel made"
	grep -q "^[0-9]*:memory:/doppel/$N/clone-1\$" /proc/"$C"/cgroup || fail "clone not in its memory cgroup: $(cat /proc/"$C"/cgroup)"
else
	assert_eq "$(cat "$MEM/memory.max")" $((96 << 20)) "memory.max"
	assert_eq "$(cat "$CPU/cpu.weight")" 20 "cpu.weight"
	grep -q "^0::/doppel/$N/clone-1\$" /proc/"$C"/cgroup || fail "clone not in its cgroup: $(cat /proc/"$C"/cgroup)"
fi
assert_eq "$(cat "$PIDS_CG/pids.max")" 100 "pids.max"
grep -qx "$C" "$MEM/cgroup.procs" || fail "clone pid $C not in $MEM/cgroup.procs"
grep -q "doppel/$N" /proc/"$S"/cgroup && fail "production was moved into a clone's cgroup: $(cat /proc/"$S"/cgroup)"
# the restored pages were charged to the clone (CRIU restored them inside its
# cgroup): its usage covers the clone's anonymous memory
anon=$(awk '/RssAnon/ {printf "%.0f\n", $2 * 1024}' /proc/"$C"/status)
assert_ge "$used" $((anon / 2)) "the clone's memory usage against its anonymous memory ($anon)"
"$DOPPEL" status "$N" >"$T/s1.txt" || fail "doppel status"
grep -q "MEMORY/LIMIT" "$T/s1.txt" && grep -q "/96.0 MiB" "$T/s1.txt" ||
	fail "doppel status does not show the limits: $(cat "$T/s1.txt")"
curl -s --unix-socket "$T/run/$N.sock" http://x/metrics >"$T/metrics" || fail "GET /metrics"
grep -q "^doppel_clone_memory_limit_bytes{.*clone=\"1\"} $((96 << 20))" "$T/metrics" ||
	fail "no memory limit in /metrics: $(grep memory "$T/metrics" | head)"

# 2. no limit given: the default rule (2 x production's RSS + 1/8 of the host, weight 10)
clone "$N"
sup_status "$N" "$T/s2.json"
prss=$(awk '/VmRSS/ {printf "%.0f\n", $2 * 1024}' /proc/"$S"/status)
lim=$(json "$T/s2.json" "[c for c in j['clones'] if c['id'] == 2][0]['limits']['memory']")
assert_ge "$lim" $((64 << 20)) "default memory limit"
host=$(awk '/MemTotal/ {printf "%.0f\n", $2 * 1024}' /proc/meminfo)
head=$((host / 8 > (64 << 20) ? host / 8 : (64 << 20)))
[ "$lim" -le $((3 * prss + head)) ] || fail "default memory limit $lim is far above 2 x RSS ($prss) + 1/8 of the host ($head)"
assert_eq "$(json "$T/s2.json" "[c for c in j['clones'] if c['id'] == 2][0]['limits']['cpu_weight']")" 10 "default CPU weight"

# 3. destroyed: the cgroups go, all the way up to doppel/NAME
"$DOPPEL" destroy "$N/1" >/dev/null || fail "destroy $N/1"
wait_for 10 test ! -e "$MEM" || fail "$MEM left after destroy"
[ -e "$CPU" ] && fail "$CPU left after destroy"
[ -e "$PIDS_CG" ] && fail "$PIDS_CG left after destroy"
"$DOPPEL" destroy "$N/2" >/dev/null || fail "destroy $N/2"
for d in "$(cg_mount memory)" "$(cg_mount cpu)" "$(cg_mount pids)"; do
	wait_for 10 test ! -e "$d/doppel/$N" || fail "$d/doppel/$N left after every clone was destroyed"
done
assert_eq "$(redis-cli -p "$L" get k)" v "production after the clones"
"$DOPPEL" stop "$N" >/dev/null || fail "doppel stop"
log "PASS"
