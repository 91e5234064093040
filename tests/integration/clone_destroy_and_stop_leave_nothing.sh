#!/bin/bash
# Promise: `doppel destroy` and `doppel stop` leave nothing behind: no
# process, no network or mount namespace, no mount, no images, no state copy.
. "$(dirname "$0")/lib.sh"
need redis-server; need lsns
N=gone$$
mkdir -p "$T/data"
run_service "$N" L --port 6379 --state "$T/data" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save ''
redis-cli -p "$L" set k v >/dev/null
clone "$N" --count 2
S=$(json "$T/clones.json" "j['service']['pid']")
C1=$(clone_pid "$N" 1); C2=$(clone_pid "$N" 2)
NS1=$(readlink /proc/$C1/ns/net | tr -dc 0-9); MNT1=$(readlink /proc/$C1/ns/mnt | tr -dc 0-9)
NS2=$(readlink /proc/$C2/ns/net | tr -dc 0-9)
ls -d "$T/work/$N/clone-1" "$T/work/$N/clone-2" >/dev/null || fail "clone dirs missing"
[ "$(ls -A "$T/run/$N.images" 2>/dev/null)" = "" ] || fail "images left after the clone: $(ls "$T/run/$N.images")"

"$DOPPEL" destroy "$N/1" >/dev/null || fail "destroy $N/1"
clone1_gone() {
	! kill -0 "$C1" 2>/dev/null && ! lsns -t net -n -o NS | grep -qw "$NS1" &&
		! lsns -t mnt -n -o NS | grep -qw "$MNT1" && [ ! -e "$T/work/$N/clone-1" ]
}
wait_for 10 clone1_gone
kill -0 "$C1" 2>/dev/null && fail "clone 1 (pid $C1) still runs"
lsns -t net -n -o NS | grep -qw "$NS1" && fail "clone 1's network namespace $NS1 still exists"
lsns -t mnt -n -o NS | grep -qw "$MNT1" && fail "clone 1's mount namespace $MNT1 still exists"
[ -e "$T/work/$N/clone-1" ] && fail "clone 1's state copy is left"
kill -0 "$C2" 2>/dev/null || fail "destroying clone 1 killed clone 2"
assert_eq "$(redis-cli -p "$L" get k)" v "production after destroy"

"$DOPPEL" stop "$N" >/dev/null || fail "doppel stop"
for p in "$S" "$C2"; do kill -0 "$p" 2>/dev/null && fail "pid $p still runs after stop"; done
lsns -t net -n -o NS | grep -qw "$NS2" && fail "clone 2's network namespace still exists"
[ -e "$T/run/$N.sock" ] && fail "admin socket left"
[ -e "$T/run/$N.images" ] && fail "images dir left"
[ -e "$T/work/$N" ] && fail "work dir left: $(ls -R "$T/work/$N" | head)"
grep -q "doppel-images" /proc/self/mountinfo && fail "an images tmpfs is still mounted"
v=sup_${N}_PID
wait "${!v}"; rc=$?
assert_eq "$rc" 0 "doppel run exit status after stop"
log "PASS"
