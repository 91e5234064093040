#!/bin/bash
# Promise: a clone of redis-server stopped in gdb for 30 s while
# redis-benchmark runs through the front: no client error, production has
# every write, the clone's overflow is reported and its debug window
# recorded, and `doppel attach` says how much of the window was used.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-benchmark; need gdb
N=gdb$$; L=$(free_port)
mkdir -p "$T/data"
run_service "$N" --listen 127.0.0.1:$L --port 6379 --state "$T/data" --buffer 256K -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save ''
clone "$N"
C=$(clone_pid "$N" 1)
log "gdb stops the clone for 30 s"
spawn attach "$DOPPEL" attach "$N/1" --batch -- gdb -p {pid} -batch -ex 'shell sleep 30' -ex 'info threads' -ex detach
for _ in $(seq 100); do grep -q "attached to clone 1" "$T/attach.log" && break; sleep 0.1; done
# gdb stops it once attached (loading symbols may take a few seconds)
for _ in $(seq 150); do [ "$(awk '{print $3}' /proc/$C/stat)" = t ] && break; sleep 0.1; done
[ "$(awk '{print $3}' /proc/$C/stat)" = t ] || fail "the clone is not stopped under gdb (state $(awk '{print $3}' /proc/$C/stat))"
timeout 120 redis-benchmark -p "$L" -t set -n 150000 -c 20 -r 1000000 -d 512 -q >"$T/bench.log" 2>&1 ||
	fail "benchmark: $(tail -2 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "client errors while the clone was stopped: $(grep -i error "$T/bench.log" | head -2)"
wait "$attach_PID" || fail "doppel attach failed: $(tail -5 "$T/attach.log")"
grep -qE "Thread 0x[0-9a-f]+ \(LWP [0-9]+\)" "$T/attach.log" || fail "gdb's output is missing: $(tail -5 "$T/attach.log")"
grep -q "debug window: closed during tracing" "$T/attach.log" ||
	fail "attach did not report the closed debug window: $(tail -3 "$T/attach.log")"
sup_status "$N" "$T/s.json"
r="j['proxy']['replicas'][0]"
assert_ge "$(json "$T/s.json" "$r['overflows']")" 1 "overflows"
assert_eq "$(json "$T/s.json" "$r['window_open']")" False "debug window closed"
assert_eq "$(json "$T/s.json" "$r['debug_window_s'] > 0")" True "debug window recorded"
assert_eq "$(json "$T/s.json" "j['proxy']['production']['connect_failures'] + j['proxy']['production']['production_resets']")" 0 "production errors"
kill -0 "$C" || fail "the clone died"
[ "$(awk '{print $3}' /proc/$C/stat)" != t ] || fail "the clone is still stopped after gdb detached"
ls "$T/work/$N/clone-1/"attach-*-gdb/output.log >/dev/null || fail "gdb's output was not saved under the clone"
log "PASS: $(grep -o '[0-9.]* requests per second' "$T/bench.log" | head -1) while the clone was stopped; $(grep 'debug window' "$T/attach.log" | sed 's/.*debug window: //')"
