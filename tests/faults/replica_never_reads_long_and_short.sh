#!/bin/bash
# Fault: the replica accepts every connection and never reads nor closes it.
# Under long connections (keep-alive, 1 KiB SETs) each replica leg fills its
# buffer and overflows; under short ones (one request per connection) each
# leg would linger for --linger (60 s) and, uncapped, fill the fd table. The
# proxy runs with an fd limit of 256: no client error, every INCR executed,
# fds below the limit, overflows and evicted legs reported.
. "$(dirname "$0")/faults.sh"
LIMIT=256
start_redis prod P
spawn_listening replica R "$PY" -u "$HERE/tcp_peers.py" hold-open 0
printf '#!/bin/bash\nulimit -n %s || exit 1\nexec "%s" "$@"\n' "$LIMIT" "$DOPPEL" >"$T/doppel-lowfd"
chmod +x "$T/doppel-lowfd"
DOPPEL="$T/doppel-lowfd" start_proxy proxy L A --backend 127.0.0.1:$P --replica wedged=127.0.0.1:$R --buffer 64K
reference_bench "$T/before.csv" -t set,incr -n 10000 -c 20 -d 1024
reference_bench "$T/before-short.csv" -t incr -n 4000 -c 10 -k 0
bench "$T/warm.csv" -t ping -n 200 -c 2
quiet_front
snapshot before
( max=0; while :; do n=$(ls /proc/$proxy_PID/fd 2>/dev/null | wc -l); [ "$n" -gt "$max" ] && max=$n && echo "$max" >"$T/fdmax"; sleep 0.02; done ) &
PIDS+=("$!")
sampler=$!
bench "$T/long.csv" -t set,incr -n 10000 -c 20 -d 1024
bench "$T/short.csv" -t incr -n 4000 -c 10 -k 0
kill "$sampler"; wait "$sampler" 2>/dev/null
counter_is 28000 # 14000 of them through the reference proxy
status_json 127.0.0.1:$A "$T/status.json"
r="j['replicas'][0]"
fdmax=$(cat "$T/fdmax")
assert_gt "$LIMIT" "$fdmax" "fd limit over the proxy's largest fd count"
overflows=$(json "$T/status.json" "$r['overflows']")
evicted=$(json "$T/status.json" "$r['legs_evicted']")
over_cap=$(json "$T/status.json" "$r['connections_over_cap']")
assert_ge "$overflows" 1 "overflows under long connections"
assert_gt "$((evicted + over_cap))" 0 "legs evicted or skipped at the cap under short connections"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures'] + j['production']['production_resets'] + j['production']['client_resets']")" 0 "production errors"
grep -q "Too many open files" "$T/proxy.log" && fail "the proxy ran out of fds"
quiet_front
snapshot after
# The lingering legs stay open (at most the cap) until --linger ends.
bounded_growth "$(json "$T/status.json" "j['legs']['cap']")"
result "replica accepts and never reads, fd limit 256 (20 keep-alive conns SET 1 KiB + INCR, then 4000 one-request conns)" 0 \
	"$(p99 "$T/before.csv" INCR) (short: $(p99 "$T/before-short.csv" INCR))" "$(p99 "$T/long.csv" INCR) (short: $(p99 "$T/short.csv" INCR))" \
	"overflows=$overflows, legs_evicted=$evicted, over_cap=$over_cap, legs open $(json "$T/status.json" "j['legs']['open']")/$(json "$T/status.json" "j['legs']['cap']"), max fds $fdmax, accept pauses $(json "$T/status.json" "j['production']['accept_pauses']")"
log "PASS"
