#!/bin/bash
# Promise: a replica that accepts connections and never reads them cannot take
# the file descriptors production needs. With an fd limit of 256, thousands of
# one-request client connections go through the proxy (each leaves a replica
# leg lingering for --linger, 60 s): every client is answered, production
# executes every request, the proxy's fds stay below the limit, and the legs
# the cap closed or skipped are counted in /status.
. "$(dirname "$0")/lib.sh"
LIMIT=256
N=4000
start_redis prod P
spawn_listening replica R "$PY" -u "$HERE/tcp_peers.py" hold-open 0
# doppel proxy under a low fd limit (soft and hard: it cannot raise it).
printf '#!/bin/bash\nulimit -n %s || exit 1\nexec "%s" "$@"\n' "$LIMIT" "$DOPPEL" >"$T/doppel-lowfd"
chmod +x "$T/doppel-lowfd"
DOPPEL="$T/doppel-lowfd" start_proxy proxy L A --backend 127.0.0.1:$P --replica wedged=127.0.0.1:$R
assert_eq "$(awk '/Max open files/{print $4}' /proc/$proxy_PID/limits)" "$LIMIT" "the proxy's fd limit"
fds() { ls /proc/$proxy_PID/fd | wc -l; }
fd0=$(fds)
# Sample the proxy's fd count while the clients run.
( max=0; while :; do n=$(ls /proc/$proxy_PID/fd 2>/dev/null | wc -l); [ "$n" -gt "$max" ] && max=$n && echo "$max" >"$T/fdmax"; sleep 0.02; done ) &
sampler=$!
PIDS+=("$sampler")
log "$N one-request connections through the proxy, 8 at a time"
timeout 60 "$PY" "$HERE/tcp_peers.py" resp-set-conns "$L" "$N" 8 >"$T/clients.log" 2>&1
rc=$?
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
cat "$T/clients.log"
assert_eq "$rc" 0 "clients: every connection answered +OK"
assert_eq "$(redis-cli -p "$P" dbsize)" "$N" "keys production has (one per client connection)"
fdmax=$(cat "$T/fdmax")
log "proxy fds: $fd0 at start, at most $fdmax during the run (limit $LIMIT)"
assert_gt "$LIMIT" "$fdmax" "fd limit over the proxy's largest fd count"
status_json 127.0.0.1:$A "$T/status.json"
r="j['replicas'][0]"
assert_eq "$(json "$T/status.json" "j['legs']['fd_limit']")" "$LIMIT" "fd limit in /status"
cap=$(json "$T/status.json" "j['legs']['cap']")
assert_eq "$cap" $(((LIMIT - 64) / 2)) "leg cap: (fd limit - 64) / 2"
assert_eq "$(json "$T/status.json" "j['legs']['open'] <= $cap and $r['connections'] <= $r['legs_cap']")" True "open legs within their caps"
assert_gt "$(json "$T/status.json" "$r['legs_evicted'] + $r['connections_over_cap']")" 0 "legs evicted or skipped at the cap"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures'] + j['production']['production_resets'] + j['production']['client_resets']")" 0 "production and client errors"
grep -q "Too many open files" "$T/proxy.log" && fail "the proxy ran out of fds: $(grep -m1 'Too many open files' "$T/proxy.log")"
grep -q "replica legs at their cap: replica=wedged" "$T/proxy.log" || fail "no log line about the cap"
"$DOPPEL" status --admin 127.0.0.1:$A >"$T/status.txt" || fail "doppel status --admin failed"
grep -q "^replica legs: .* open of $cap (fd limit $LIMIT)" "$T/status.txt" || fail "status text: $(cat "$T/status.txt")"
curl -sf "http://127.0.0.1:$A/metrics" >"$T/metrics.txt" || fail "GET /metrics failed"
grep -q '^doppel_replica_legs_evicted_total{replica="wedged"' "$T/metrics.txt" ||
	fail "no doppel_replica_legs_evicted_total in /metrics"
log "PASS: $N clients answered, fds at most $fdmax of $LIMIT; $(json "$T/status.json" "$r['legs_evicted']") legs evicted, $(json "$T/status.json" "$r['connections_over_cap']") connections skipped at the cap"
