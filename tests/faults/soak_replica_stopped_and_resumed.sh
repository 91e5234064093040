#!/bin/bash
# Soak (short): 200,000 requests through the proxy while its replica is
# stopped for a second and resumed for a second, over and over. The proxy's
# fds and RSS are sampled every 0.1 s: fds never pass what the connections need, RSS stays within a bound,
# and both come back once the replica has caught up. No client error, every
# INCR executed. SOAK_N (default 100,000) is the requests per kind (SET and
# INCR); bench/soak.sh runs the long version, 10^6 requests.
. "$(dirname "$0")/faults.sh"
start_redis prod P
start_redis replica R
start_proxy proxy L A --backend 127.0.0.1:$P --replica flapping=127.0.0.1:$R --buffer 64K
r="j['replicas'][0]"
bench "$T/warm.csv" -t set,incr -n 4000 -c 20 -d 256
quiet_front
wait_status "127.0.0.1:$A" "$r['connections'] == 0" 20 || fail "replica connections still open after the warm-up"
snapshot before
( while :; do kill -STOP "$replica_PID"; sleep 1; kill -CONT "$replica_PID"; sleep 1; done ) &
flapper=$!
PIDS+=("$flapper")
( while :; do echo "$(fds_of "$proxy_PID") $(rss_of "$proxy_PID")"; sleep 0.1; done ) >"$T/samples" 2>/dev/null &
sampler=$!
PIDS+=("$sampler")
SOAK_N=${SOAK_N:-100000}
bench "$T/during.csv" -t set,incr -n "$SOAK_N" -c 20 -d 256
kill "$flapper" "$sampler"; wait "$flapper" "$sampler" 2>/dev/null
kill -CONT "$replica_PID"
counter_is $((SOAK_N + 4000))
status_json 127.0.0.1:$A "$T/status.json"
assert_eq "$(json "$T/status.json" "j['production']['connect_failures'] + j['production']['production_resets'] + j['production']['client_resets']")" 0 "production errors"
quiet_front
wait_status "127.0.0.1:$A" "$r['connections'] == 0" 20 || fail "replica connections still open after it resumed"
snapshot after
read -r nsamples fdmax rssmax < <(awk '{ n++; if ($1 > f) f = $1; if ($2 > r) r = $2 } END { print n, f, r }' "$T/samples")
log "$nsamples samples: fds at most $fdmax, RSS at most $rssmax KiB"
assert_ge "$nsamples" 2 "samples taken"
# 20 clients, each a client, a production and a replica socket; the legs of
# the SET run's 20 connections may still linger (the replica stopped) while
# the INCR run has its own; the admin request.
[ "$fdmax" -le $((before_fds + 4 * 20 + 4)) ] || fail "fds reached $fdmax (from $before_fds) with 20 clients"
[ "$rssmax" -le $((before_rss + 32768)) ] || fail "RSS reached $rssmax KiB (from $before_rss)"
bounded_growth
result "soak: replica stopped 1 s and resumed 1 s in turn ($((2 * SOAK_N)) requests, 20 conns, SET 256 B + INCR)" 0 \
	"$(p99 "$T/warm.csv" INCR)" "$(p99 "$T/during.csv" INCR)" \
	"overflows=$(json "$T/status.json" "$r['overflows']"), max fds $fdmax, max RSS $rssmax KiB over $nsamples samples"
log "PASS"
