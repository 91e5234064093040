#!/bin/bash
# Promise: a service that listens on an address of its own (not loopback) and
# whose clients come over a network link can be adopted with `--capture auto`:
# the capture takes the interface that carries the address, each clone has
# the address on its loopback (lo:1) and listens there, and the writes the
# remote clients send straight to production reach the clone (DEBUG DIGEST
# equal). The host is a network namespace this test makes (SV), its clients
# another one (CL), joined by a veth pair.
. "$(dirname "$0")/lib.sh"
need redis-server; need ip; need nsenter
SV=dplsv$$; CL=dplcl$$; VS=dps$$; VC=dpc$$
NET=10.$((150 + $$ % 50)).$(($$ % 250)).
ADDR=${NET}1
on_exit 'ip netns del "$SV" 2>/dev/null; ip netns del "$CL" 2>/dev/null'
ip netns add "$SV" && ip netns add "$CL" || fail "cannot create network namespaces"
ip link add "$VS" netns "$SV" type veth peer name "$VC" netns "$CL" || fail "cannot create a veth pair"
ip -n "$SV" addr add "$ADDR/30" dev "$VS" && ip -n "$SV" link set "$VS" up && ip -n "$SV" link set lo up
ip -n "$CL" addr add "${NET}2/30" dev "$VC" && ip -n "$CL" link set "$VC" up && ip -n "$CL" link set lo up
in_sv() { nsenter --net="/run/netns/$SV" "$@"; }
in_cl() { nsenter --net="/run/netns/$CL" "$@"; }

spawn prod nsenter --net="/run/netns/$SV" setsid redis-server --port 6379 --bind "$ADDR" --save '' --appendonly no \
	--protected-mode no --dir "$T" --enable-debug-command yes
started prod "Ready to accept connections" || fail "redis did not start: $(tail -3 "$T/prod.log")"
PROD=$(in_cl redis-cli -h "$ADDR" -p 6379 info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
[ "$PROD" = "$prod_PID" ] || fail "redis pid $PROD is not the one started ($prod_PID)"
in_cl redis-cli -h "$ADDR" -p 6379 debug populate 1000 >/dev/null

N=own$$
spawn sup nsenter --net="/run/netns/$SV" "$DOPPEL" adopt "$N" --pid "$PROD" --port 6379 --capture auto --work-dir "$T/work"
started sup "ready: service $N" || fail "doppel adopt failed: $(tail -3 "$T/sup.log")"
grep -q "capturing iface=$VS " "$T/sup.log" || fail "not captured on $VS: $(grep capturing "$T/sup.log")"
clone "$N"
C=$(clone_pid "$N" 1)
nsenter -t "$C" -n ip -4 addr show dev lo | grep -q "inet $ADDR/32 .*lo:1" ||
	fail "the clone's loopback lacks $ADDR: $(nsenter -t "$C" -n ip -4 addr show dev lo)"
assert_eq "$(in_clone "$C" redis-cli -h "$ADDR" -p 6379 dbsize)" 1000 "clone keys at the freeze"

log "remote clients write to production over the link"
for i in $(seq 1 200); do echo "SET remote:$i v$i"; done | in_cl redis-cli -h "$ADDR" -p 6379 >/dev/null
in_cl redis-cli -h "$ADDR" -p 6379 incrby counter 7 >/dev/null
wait_for 15 eval '[ "$(in_clone "$C" redis-cli -h "$ADDR" -p 6379 dbsize)" = 1201 ]'
assert_eq "$(in_clone "$C" redis-cli -h "$ADDR" -p 6379 dbsize)" 1201 "clone keys after the remote writes"
assert_eq "$(in_clone "$C" redis-cli -h "$ADDR" -p 6379 debug digest)" \
	"$(in_cl redis-cli -h "$ADDR" -p 6379 debug digest)" "clone digest = production's"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "j['capture']['iface']")" "$VS" "capture interface in status"
assert_eq "$(json "$T/s.json" "j['capture']['gaps'] + j['capture']['kernel_drops']")" 0 "capture gaps and drops"
stop_pid "$sup_PID" || fail "the supervisor did not stop cleanly: $(tail -3 "$T/sup.log")"
assert_eq "$(in_cl redis-cli -h "$ADDR" -p 6379 dbsize)" 1201 "production serves on after the supervisor stopped"
log "PASS: adopted on $ADDR, captured on $VS, clone at $ADDR in its own namespace"
