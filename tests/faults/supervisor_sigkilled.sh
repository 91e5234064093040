#!/bin/bash
# Fault: the supervisor (`doppel run`) is SIGKILLed while redis-benchmark
# drives INCRs through its front and a clone runs. What happens today (see
# README, "Fault injection"): the front goes with the supervisor, so its
# clients see their connections closed or reset; production and the clones are
# NOT killed: they are reparented to init and run on, unreachable, in their
# namespaces (production keeps its state dirs open); the admin socket file is
# left behind. The next `doppel run NAME` kills the orphaned clones (in their
# cgroups doppel/NAME/clone-N) and refuses to start while the old service
# runs, saying how to stop it; once it is stopped, the new run starts and its
# clones get their limits.
. "$(dirname "$0")/clones.sh"
N=fv$$
# The orphaned clone's cgroup dirs stay once it is killed (its supervisor is
# gone): removed here, after cleanup has killed every process of the test.
rm_leftover_cgroups() {
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		find /sys/fs/cgroup -depth -type d -path "*/doppel/$N*" -exec rmdir {} + 2>/dev/null
		[ -z "$(find /sys/fs/cgroup -type d -path "*/doppel/$N*" 2>/dev/null)" ] && return
		sleep 0.2
	done
}
on_exit rm_leftover_cgroups
start_production "$N"
clone "$N"
C=$(clone_pid "$N" 1)
S=$proxy_PID
snapshot before
bench "$T/before.csv" -t incr -n 20000 -c 20
sup_status "$N" "$T/s0.json"
acc0=$(json "$T/s0.json" "j['proxy']['connections']['accepted']")
timeout 40 redis-benchmark -p "$L" --csv -t incr -n 1000000 -c 20 >"$T/during.csv" 2>&1 &
load=$!
wait_status "$N" "j['proxy']['connections']['accepted'] >= $acc0 + 20" 20 || fail "the load did not start"
sleep 0.3
kill -KILL "$S"
log "supervisor (pid $S) killed under load"
wait "$load" && fail "the load went on without the front"
client_err=$(grep -oiE "error: [a-z ]+" "$T/during.csv" | head -1)
[ -n "$client_err" ] || fail "clients saw no error: $(tail -2 "$T/during.csv")"
sleep 1
kill -0 "$PROD" 2>/dev/null || fail "production died with the supervisor"
kill -0 "$C" 2>/dev/null || fail "the clone died with the supervisor"
assert_eq "$(awk '/^PPid/{print $2}' "/proc/$PROD/status")" 1 "production's parent"
assert_eq "$(awk '/^PPid/{print $2}' "/proc/$C/status")" 1 "the clone's parent"
assert_eq "$(prod_cli ping)" PONG "orphaned production, directly"
assert_eq "$(in_clone "$C" redis-cli -p 6379 ping)" PONG "orphaned clone"
redis-cli -p "$L" ping >/dev/null 2>&1 && fail "the front still answers"
[ -S "$DOPPEL_RUN_DIR/$N.sock" ] && stale="stale admin socket left" || stale="no admin socket left"
"$DOPPEL" status "$N" >"$T/status.out" 2>&1 && fail "doppel status answered with the supervisor dead"
log "doppel status: $(cat "$T/status.out")"
log "a new doppel run $N, while the old service runs"
OLD_PROD=$PROD
"$DOPPEL" run "$N" --listen 127.0.0.1:$(free_port) --port 6379 --work-dir "$T/work/$N" -- \
	redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no >"$T/refused.out" 2>&1
assert_eq "$?" 2 "a new run while the old service runs: exit status ($(tail -2 "$T/refused.out"))"
grep -q "left its service running (pid $OLD_PROD).*kill $OLD_PROD" "$T/refused.out" ||
	fail "the refusal does not name the old service and the fix: $(cat "$T/refused.out")"
grep -q "killed .* process(es) of clones an earlier supervisor of $N left running" "$T/refused.out" ||
	fail "the orphaned clone was not reported killed: $(cat "$T/refused.out")"
wait_for 10 eval '! kill -0 "$C" 2>/dev/null' || fail "the orphaned clone (pid $C) still runs"
[ -z "$(find /sys/fs/cgroup -type d -path "*/doppel/$N/clone-*" 2>/dev/null)" ] ||
	fail "the orphaned clone's cgroup is left: $(find /sys/fs/cgroup -type d -path "*/doppel/$N/clone-*")"
kill -0 "$OLD_PROD" || fail "the refused run touched the old service"
kill -TERM "$OLD_PROD"
wait_for 10 eval '! kill -0 "$OLD_PROD" 2>/dev/null' || kill -KILL "$OLD_PROD"
log "old service stopped: a new doppel run $N"
start_production "$N"
[ "$PROD" != "$OLD_PROD" ] || fail "the new run reports the old production"
assert_eq "$(redis-cli -p "$L" incr fresh)" 1 "the new production through its front"
clone "$N"
C2=$(clone_pid "$N" 1)
grep -q "runs without resource limits" "$T/clone.out" && fail "the new clone runs without limits: $(cat "$T/clone.out")"
grep -q "/doppel/$N/clone-1\$" /proc/"$C2"/cgroup || fail "the new clone is not in its cgroup: $(cat /proc/"$C2"/cgroup)"
assert_eq "$(in_clone "$C2" redis-cli -p 6379 get fresh)" 1 "the new run's clone"
after_fds="-" after_rss="-"
result "supervisor SIGKILLed under load with a clone (\`kill -KILL\` on \`doppel run\`, 20 conns INCR)" \
	"the load ends: \"$client_err\" (the front is gone)" "$(p99 "$T/before.csv" INCR)" "-" \
	"nothing (it is dead); production and clone run on orphaned (parent init), unreachable; $stale; the next \`doppel run\` of the name kills the orphaned clone and refuses to start while the old service runs (exit 2, \"kill $OLD_PROD\"); once it is stopped, the new run starts and its clone gets its limits"
log "PASS"
