#!/bin/bash
# Fault: a live CRIU clone's loopback is taken down (`ip link set lo down` in
# its network namespace) while redis-benchmark drives INCRs through doppel's
# front, then the load runs again with new connections. Production loses
# nothing: no client error, every INCR executed; status says what happened to
# the clone (it looks like a clone that stopped reading: doppel sees no error);
# the supervisor's fds and RSS come back once the loopback is up again.
. "$(dirname "$0")/clones.sh"
need ip
N=fl$$
start_production "$N"
clone "$N"
C=$(clone_pid "$N" 1)
bench "$T/warm.csv" -t ping -n 2000 -c 20
front_quiet "$N"
snapshot before
bench "$T/before.csv" -t incr -n 50000 -c 20
sup_status "$N" "$T/s0.json"
acc0=$(json "$T/s0.json" "j['proxy']['connections']['accepted']")
bench "$T/during.csv" -t incr -n 100000 -c 20 &
load=$!
wait_status "$N" "j['proxy']['connections']['accepted'] >= $acc0 + 20" 20 || fail "the load did not start"
sleep 0.3
in_clone "$C" ip link set lo down || fail "could not take the clone's loopback down"
kill -0 "$load" 2>/dev/null || fail "the load ended before the fault (make it longer)"
log "clone 1 (pid $C): loopback down under load"
wait "$load" || fail "the load failed (above)"
log "new connections while the clone's loopback is down"
bench "$T/after.csv" -t incr -n 20000 -c 20
counter_is 170000
assert_eq "$(redis-cli -p "$L" ping)" PONG "production answers through the front"
front_quiet "$N"
sup_status "$N" "$T/status.json"
assert_eq "$(json "$T/status.json" "j['proxy']['production']['connect_failures'] + j['proxy']['production']['production_resets'] + j['proxy']['production']['client_resets']")" 0 "production errors"
# doppel does not see a dead link: connects to the clone and writes to it
# hang (no RST, no error), so the clone just looks like one that stopped
# reading: its data stays buffered, it drains nothing, its legs linger. The
# state stays "ok" until its buffer overflows or --linger (60 s) ends.
r="j['proxy']['replicas'][0]"
assert_eq "$(json "$T/status.json" "$r['state']")" ok "clone's state"
buffered=$(json "$T/status.json" "$r['buffered']")
legs=$(json "$T/status.json" "$r['connections']")
assert_gt "$buffered" 0 "bytes buffered for the unreachable clone"
assert_gt "$legs" 0 "legs open to the unreachable clone"
snapshot after
# while it is down: fds for its legs; RSS holds what is buffered for them
# (within the clone's --budget), printed
SLACK_KB=$((1 << 30)) bounded_growth "$legs"
assert_eq "$(json "$T/status.json" "$r['buffered'] <= $r['budget']")" True "buffered within the clone's budget"
down_fds=$after_fds down_rss=$after_rss
log "loopback up again: the legs drain"
in_clone "$C" ip link set lo up
wait_status "$N" "$r['connections'] == 0 and $r['buffered'] == 0" 40 || fail "the clone's legs did not drain once its loopback was up"
sup_status "$N" "$T/status2.json"
snapshot after
bounded_growth
reported="state=ok throughout; while down: $legs legs open, $buffered B buffered, drain_bps=$(json "$T/status.json" "$r['drain_bps']"), forecast_s=$(json "$T/status.json" "$r['forecast_s']"), fds $down_fds, RSS $down_rss KiB; lo up again: legs drained, overflows=$(json "$T/status2.json" "$r['overflows']")"
result "clone's loopback down mid-load (\`doppel run\`, 20 conns INCR, then 20 new conns)" 0 \
	"$(p99 "$T/before.csv" INCR)" "$(p99 "$T/during.csv" INCR) ms, new conns $(p99 "$T/after.csv" INCR)" \
	"$reported"
log "PASS"
