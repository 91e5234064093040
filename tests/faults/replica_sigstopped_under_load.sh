#!/bin/bash
# Fault: the replica is SIGSTOPped (a debugger's breakpoint) while
# redis-benchmark drives SETs and INCRs through the proxy. Production loses
# nothing: no client error, every INCR executed; the replica's overflow is
# reported; the proxy's fds and RSS come back once the replica resumes.
. "$(dirname "$0")/faults.sh"
start_redis prod P
start_redis replica R
start_proxy proxy L A --backend 127.0.0.1:$P --replica stopped=127.0.0.1:$R --buffer 64K
LOAD=(-t set,incr -n 20000 -c 20 -d 1024)
bench "$T/warm.csv" -t ping -n 2000 -c 20
quiet_front
snapshot before
bench "$T/before.csv" "${LOAD[@]}"
sigstop "$replica_PID"
log "replica stopped; the same load again"
bench "$T/during.csv" "${LOAD[@]}"
counter_is 40000
status_json 127.0.0.1:$A "$T/status.json"
r="j['replicas'][0]"
overflows=$(json "$T/status.json" "$r['overflows']")
assert_ge "$overflows" 1 "replica overflows"
assert_eq "$(json "$T/status.json" "$r['window_open']")" False "debug window closed"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures'] + j['production']['production_resets'] + j['production']['client_resets']")" 0 "production errors"
dropped=$(json "$T/status.json" "$r['bytes_dropped']")
kill -CONT "$replica_PID"
quiet_front
wait_status "127.0.0.1:$A" "$r['connections'] == 0" 20 || fail "replica connections still open after it resumed"
snapshot after
bounded_growth
result "replica SIGSTOPped under load (20 conns, SET 1 KiB + INCR)" 0 \
	"$(p99 "$T/before.csv" INCR)" "$(p99 "$T/during.csv" INCR)" \
	"overflows=$overflows, bytes_dropped=$dropped, window closed"
log "PASS"
