#!/bin/bash
# Promise: --count 2 makes two clones from one dump (production frozen once);
# both get every new connection; destroying one leaves the other fed.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-benchmark; need nsenter
N=two$$
mkdir -p "$T/data"
run_service "$N" L --port 6379 --state "$T/data" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save '' \
	--enable-debug-command local
redis-benchmark -p "$L" -t set -n 20000 -r 1000000 -q >/dev/null 2>&1 || fail "preload"
clone "$N" --count 2
assert_eq "$(grep -c 'production was frozen' "$T/clone.out")" 1 "dumps for two clones"
C1=$(clone_pid "$N" 1); C2=$(clone_pid "$N" 2)
[ "$C1" != "$C2" ] || fail "one pid for two clones"
redis-benchmark -p "$L" -t set -n 20000 -r 1000000 -c 20 -q >/dev/null 2>&1 || fail "load after clone"
# the digest is read through the front (the clones compare it too) once they ran every SET
clones_answered "$N" 20000 || fail "the clones answered $ANSWERED of 20000 SETs"
d=$(redis_digest "$L") || exit 1
both_caught_up() {
	[ "$(in_clone "$C1" redis-cli -p 6379 debug digest)" = "$d" ] &&
		[ "$(in_clone "$C2" redis-cli -p 6379 debug digest)" = "$d" ]
}
wait_for 10 both_caught_up
assert_eq "$(in_clone "$C1" redis-cli -p 6379 debug digest)" "$d" "clone 1 digest"
assert_eq "$(in_clone "$C2" redis-cli -p 6379 debug digest)" "$d" "clone 2 digest"
"$DOPPEL" destroy "$N/1" >/dev/null || fail "destroy clone 1"
redis-cli -p "$L" set only-two yes >/dev/null
wait_for 10 eval '[ "$(in_clone "$C2" redis-cli -p 6379 get only-two)" = yes ]'
assert_eq "$(in_clone "$C2" redis-cli -p 6379 get only-two)" yes "clone 2 after clone 1 was destroyed"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "len(j['clones'])")" 1 "clones left"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 "clone 2 diverged turns"
log "PASS"
