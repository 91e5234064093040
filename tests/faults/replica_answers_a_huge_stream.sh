#!/bin/bash
# Fault: the replica answers every connection with a 32 MiB stream, whatever
# it is sent, then closes it (with a reset: what it was sent is unread). Its answers are read, hashed and dropped a bounded amount per
# loop turn: no client error, every INCR executed, the proxy's RSS stays flat.
. "$(dirname "$0")/faults.sh"
MIB=32
start_redis prod P
spawn_listening replica R "$PY" -u "$HERE/tcp_peers.py" serve-flood 0 "$MIB"
start_proxy proxy L A --backend 127.0.0.1:$P --replica flood=127.0.0.1:$R
reference_bench "$T/before.csv" -t incr -n 20000 -c 20
bench "$T/warm.csv" -t ping -n 200 -c 2
r="j['replicas'][0]"
wait_status "127.0.0.1:$A" "$r['connections'] == 0" 30 || fail "warm-up replica connections still open"
quiet_front
snapshot before
bench "$T/during.csv" -t incr -n 20000 -c 20
counter_is 40000 # 20000 of them through the reference proxy
r="j['replicas'][0]"
# Each stream ends with a reset (the replica closes with our requests unread).
wait_status "127.0.0.1:$A" "$r['connections'] == 0" 40 || fail "the replica's streams were not all read"
status_json 127.0.0.1:$A "$T/status.json"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures'] + j['production']['production_resets'] + j['production']['client_resets']")" 0 "production errors"
quiet_front
snapshot after
bounded_growth
result "replica answers each connection with $MIB MiB (20 keep-alive conns, INCR)" 0 \
	"$(p99 "$T/before.csv" INCR)" "$(p99 "$T/during.csv" INCR)" \
	"bytes_answered=$(json "$T/status.json" "$r['bytes_answered']"), diverged_turns=$(json "$T/status.json" "$r['diverged_turns']")"
log "PASS"
