#!/bin/bash
# Promise: `doppel clone NAME --host NETNS` runs the clone on another host (a
# network namespace this test links to the host with a veth pair): the
# memory pages cross that link through CRIU's page server, the copy of the
# traffic crosses it too, and destroying the clone removes its relay there.
. "$(dirname "$0")/lib.sh"
need redis-server; need ip; need nsenter
HB=dplhb$$; VA=dpa$$; VB=dpb$$
NET=10.$((200 + $$ % 50)).$(($$ % 250)).
on_exit 'ip netns del "$HB" 2>/dev/null; ip link del "$VA" 2>/dev/null'
ip netns add "$HB" || fail "cannot create a network namespace"
ip link add "$VA" type veth peer name "$VB" && ip link set "$VB" netns "$HB" || fail "cannot create a veth pair"
ip addr add "${NET}1/30" dev "$VA" && ip link set "$VA" up
ip -n "$HB" addr add "${NET}2/30" dev "$VB" && ip -n "$HB" link set "$VB" up && ip -n "$HB" link set lo up

N=ext$$
mkdir -p "$T/data"
run_service "$N" L --port 6379 --state "$T/data" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save '' \
	--enable-debug-command local
redis-cli -p "$L" debug populate 50000 >/dev/null
clone "$N" --host "$HB"
cat "$T/clone.out"
grep -q "attached on host $HB" "$T/clone.out" || fail "not attached on $HB"
sup_status "$N" "$T/s.json"
addr=$(json "$T/s.json" "j['clones'][0]['address']")
case $addr in "${NET}2:"*) ;; *) fail "the copy goes to $addr, not to ${NET}2 on $HB" ;; esac
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['address']")" "$addr" "replica address"
grep -q "Accepted connection from ${NET}1:" "$T/work/$N/clone-1/page-server.log" ||
	fail "the dump did not reach the page server over the link: $(tail -3 "$T/work/$N/clone-1/page-server.log")"
grep -q "Session over" "$T/work/$N/clone-1/page-server.log" || fail "the page server session did not complete"
C=$(clone_pid "$N" 1)
assert_eq "$(in_clone "$C" redis-cli -p 6379 dbsize)" 50000 "clone keys"
# The copy of new traffic crosses the link to the relay on the other host.
for i in $(seq 100); do redis-cli -p "$L" set "net:$i" "$i" >/dev/null; done
wait_for 10 eval '[ "$(in_clone "$C" redis-cli -p 6379 dbsize)" = 50100 ]'
assert_eq "$(in_clone "$C" redis-cli -p 6379 dbsize)" 50100 "clone keys after writes"
assert_eq "$(in_clone "$C" redis-cli -p 6379 debug digest)" "$(redis_digest "$L")" "clone digest"
rx=$(cat "/sys/class/net/$VA/statistics/tx_bytes")
assert_gt "$rx" 100000 "bytes sent over the link (pages and traffic)"
port=${addr##*:}
ip netns exec "$HB" ss -ltn | grep -q ":$port " || fail "no relay listening on $HB"
"$DOPPEL" destroy "$N/1" >/dev/null || fail "destroy"
wait_for 10 eval '! ip netns exec "$HB" ss -ltn | grep -q ":$port " && ! kill -0 "$C" 2>/dev/null'
ip netns exec "$HB" ss -ltn | grep -q ":$port " && fail "the relay on $HB outlived its clone"
kill -0 "$C" 2>/dev/null && fail "the clone still runs"
log "PASS: clone on $HB at $addr, $rx bytes over the link"
