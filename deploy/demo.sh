#!/bin/bash
# demo.sh - doppel in two minutes: a live clone of a running redis-server.
#
#   1. `doppel run` starts redis (AOF persistence in a state dir) in its own
#      namespaces and fronts it; 100k keys are loaded through the front;
#   2. `doppel clone` makes a live clone while a load keeps production busy;
#   3. both answer: writes sent through the front reach production and clone;
#   4. the clone is stopped, as a debugger would stop it at a breakpoint:
#      production carries on at full speed, and doppel reports the clone's
#      overflow and its debug window.
# Everything started here is stopped on exit.
set -uo pipefail
DOPPEL=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/doppel}
T=$(mktemp -d /var/tmp/doppel-demo.XXXXXX)
export DOPPEL_RUN_DIR=$T/run
NAME=demo
SUP=
CLONE=
cleanup() {
	[ -n "$CLONE" ] && kill -CONT "$CLONE" 2>/dev/null
	[ -n "$SUP" ] && kill -TERM "$SUP" 2>/dev/null && wait "$SUP" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
h() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
field() { "$DOPPEL" status "$NAME" --json | python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
bench() { redis-benchmark -p "$L" -t set -n "$1" -c 50 -r 1000000 -d "$2" --csv 2>/dev/null | awk -F'"' '/SET/{print $4}'; }

L=$(port)
mkdir -p "$T/data"
h "1. doppel run: redis-server in its own namespaces, clients connect to 127.0.0.1:$L"
printf '\033[2m$ doppel run %s --listen 127.0.0.1:%s --port 6379 --state %s --buffer 1M -- redis-server ...\033[0m\n' \
	"$NAME" "$L" "$T/data"
"$DOPPEL" run "$NAME" --listen 127.0.0.1:$L --port 6379 --state "$T/data" --buffer 1M --work-dir "$T/work" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save '' \
	--enable-debug-command local >"$T/run.log" 2>&1 &
SUP=$!
for _ in $(seq 100); do [ "$(field "j['service']['state']" 2>/dev/null)" = running ] && break; sleep 0.1; done
python3 -c 'import sys
for i in range(100000): sys.stdout.write("SET user:%d profile-%d\r\n" % (i, i))' | redis-cli -p "$L" --pipe | tail -1
echo "production holds $(redis-cli -p "$L" dbsize) keys"

h "2. doppel clone: a live clone while 200k GETs keep production busy"
redis-benchmark -p "$L" -t get -n 200000 -c 20 --csv >"$T/during.csv" 2>/dev/null &
B=$!
sleep 0.3
run "$DOPPEL" clone "$NAME"
wait "$B"
echo "GETs served during the clone: $(awk -F'"' '/GET/{print $4}' "$T/during.csv") requests/s, no errors: $(grep -ci error "$T/during.csv") errors"
CLONE=$(field "j['clones'][0]['pid']")

h "3. both answer; writes through the front reach both"
echo "production: GET user:42 -> $(redis-cli -p "$L" get user:42)"
echo "clone:      GET user:42 -> $(nsenter -t "$CLONE" -n redis-cli -p 6379 get user:42)   (pid $CLONE, own netns, same 127.0.0.1:6379)"
echo "200k SETs through the front: $(bench 200000 64) requests/s"
sleep 0.5
pd=$(redis-cli -p "$L" debug digest); cd_=$(nsenter -t "$CLONE" -n redis-cli -p 6379 debug digest)
echo "keys: production $(redis-cli -p "$L" dbsize), clone $(nsenter -t "$CLONE" -n redis-cli -p 6379 dbsize); datasets $([ "$pd" = "$cd_" ] && echo identical || echo DIFFERENT) (DEBUG DIGEST)"
echo "answers compared: $(field "j['proxy']['replicas'][0]['turns_compared']"), diverged: $(field "j['proxy']['replicas'][0]['diverged_turns']")"

h "4. the clone stops at a 'breakpoint' (SIGSTOP); production goes on"
kill -STOP "$CLONE"
echo "200k SETs (512-byte values) through the front: $(bench 200000 512) requests/s with the clone stopped"
run "$DOPPEL" status "$NAME"
if [ "$(field "j['clones'][0]['overflows']")" -gt 0 ]; then
	h "The stopped clone's 1 MiB buffers overflowed after $(field "'%.1f' % j['clones'][0]['debug_window_s']") s: that was its debug window. Production never waited."
else
	h "The clone kept up: its debug window is still open."
fi
kill -CONT "$CLONE"
run "$DOPPEL" stop "$NAME"
SUP=
