#!/bin/bash
# Fault: the replica resets every connection as soon as it accepts it
# (SO_LINGER 0), under long (keep-alive) and short (one request each)
# connections. No client error, every INCR executed, the resets counted.
. "$(dirname "$0")/faults.sh"
start_redis prod P
spawn_listening replica R "$PY" -u "$HERE/tcp_peers.py" serve-rst 0
start_proxy proxy L A --backend 127.0.0.1:$P --replica resetting=127.0.0.1:$R
reference_bench "$T/before.csv" -t incr -n 20000 -c 20
reference_bench "$T/before-short.csv" -t incr -n 3000 -c 10 -k 0
bench "$T/warm.csv" -t ping -n 2000 -c 20
quiet_front
snapshot before
bench "$T/during.csv" -t incr -n 20000 -c 20
bench "$T/short.csv" -t incr -n 3000 -c 10 -k 0
counter_is 46000 # 23000 of them through the reference proxy
status_json 127.0.0.1:$A "$T/status.json"
r="j['replicas'][0]"
resets=$(json "$T/status.json" "$r['resets']")
assert_ge "$resets" 1000 "connections the replica reset (3000 short ones)"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures'] + j['production']['production_resets'] + j['production']['client_resets']")" 0 "production errors"
quiet_front
wait_status "127.0.0.1:$A" "$r['connections'] == 0" 20 || fail "replica connections still open"
snapshot after
bounded_growth
result "replica resets every connection (20 keep-alive conns, then 3000 one-request conns)" 0 \
	"$(p99 "$T/before.csv" INCR) (short: $(p99 "$T/before-short.csv" INCR))" "$(p99 "$T/during.csv" INCR) (short: $(p99 "$T/short.csv" INCR))" \
	"resets=$resets, connect_failures=$(json "$T/status.json" "$r['connect_failures']"), skipped=$(json "$T/status.json" "$r['connections_skipped']")"
log "PASS"
