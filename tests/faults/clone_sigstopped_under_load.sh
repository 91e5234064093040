#!/bin/bash
# Fault: a live CRIU clone of redis-server under `doppel run` is SIGSTOPped
# (a debugger's breakpoint) for 10 s (the issue's 30 s, scaled down to keep
# the test short: what matters is that the clone's buffer overflows, which
# takes well under a second at this load) while redis-benchmark drives SETs
# and INCRs through doppel's front. Production loses nothing: no client error,
# every INCR executed; status reports the clone's overflow and its debug
# window; the supervisor's fds and RSS come back once the clone resumes.
. "$(dirname "$0")/clones.sh"
N=fs$$
STOP_S=10
start_production "$N" --buffer 64K
clone "$N"
C=$(clone_pid "$N" 1)
LOAD=(-t set,incr -n 20000 -c 20 -d 1024)
bench "$T/warm.csv" -t ping -n 2000 -c 20
front_quiet "$N"
snapshot before
bench "$T/before.csv" "${LOAD[@]}"
sigstop "$C"
stopped_at=$SECONDS
log "clone 1 (pid $C) stopped; the same load again, then kept stopped ${STOP_S} s in all"
bench "$T/during.csv" "${LOAD[@]}"
while [ $((SECONDS - stopped_at)) -lt "$STOP_S" ]; do
	redis-cli -p "$L" incr counter:__rand_int__ >/dev/null || fail "INCR through the front failed while the clone was stopped"
	sleep 0.2
done
extra=$(prod_cli get counter:__rand_int__)
[ "$extra" -ge 40000 ] || fail "production executed $extra INCRs, fewer than the 40000 sent"
sup_status "$N" "$T/status.json"
r="j['proxy']['replicas'][0]"
overflows=$(json "$T/status.json" "$r['overflows']")
assert_ge "$overflows" 1 "clone overflows"
assert_eq "$(json "$T/status.json" "$r['window_open']")" False "debug window closed"
window=$(json "$T/status.json" "j['clones'][0]['debug_window_s']")
[ "$(json "$T/status.json" "j['clones'][0]['debug_window_s'] > 0")" = True ] || fail "no debug window reported: $window"
assert_eq "$(json "$T/status.json" "j['proxy']['production']['connect_failures'] + j['proxy']['production']['production_resets'] + j['proxy']['production']['client_resets']")" 0 "production errors"
dropped=$(json "$T/status.json" "$r['bytes_dropped']")
kill -CONT "$C"
front_quiet "$N"
wait_status "$N" "$r['connections'] == 0" 20 || fail "clone connections still open after it resumed"
kill -0 "$C" || fail "the clone died"
assert_eq "$(in_clone "$C" redis-cli -p 6379 ping)" PONG "the resumed clone answers"
assert_eq "$(redis-cli -p "$L" ping)" PONG "production answers through the front"
snapshot after
bounded_growth
result "clone SIGSTOPped ${STOP_S} s under load (\`doppel run --buffer 64K\`, 20 conns, SET 1 KiB + INCR)" 0 \
	"$(p99 "$T/before.csv" INCR)" "$(p99 "$T/during.csv" INCR)" \
	"overflows=$overflows, bytes_dropped=$dropped, debug window ${window} s (closed)"
log "PASS"
