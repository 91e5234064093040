#!/bin/bash
# demo.sh - doppel in two minutes: production and a replica redis-server,
# `doppel proxy` in front, redis-benchmark through it; then the replica is
# stopped (as a debugger would stop it) and production carries on at full
# speed while doppel reports the overflow and the replica's debug window.
# Everything started here is stopped on exit.
set -uo pipefail
DOPPEL=${1:-$(dirname "$0")/../build/cli/doppel}
T=$(mktemp -d /tmp/doppel-demo.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened"; exit 1; }
bench() { redis-benchmark -p "$1" -t set -n 200000 -c 50 -r 100000 -d "${2:-128}" --csv 2>/dev/null | awk -F'"' '/SET/{print $4}'; }
field() { "$DOPPEL" status --admin 127.0.0.1:$A --json | python3 -c "import json,sys; r=json.load(sys.stdin)['replicas'][0]; print($1)"; }
h() { printf '\n\033[1m%s\033[0m\n' "$*"; }

P=$(port); R=$(port); L=$(port); A=$(port)
RS=(--save '' --appendonly no --dir "$T" --enable-debug-command local)
redis-server --port "$P" "${RS[@]}" >"$T/prod.log" 2>&1 & PIDS+=($!)
redis-server --port "$R" "${RS[@]}" >"$T/replica.log" 2>&1 & PIDS+=($!); REPLICA=$!
wait_port "$P"; wait_port "$R"
"$DOPPEL" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:$P --replica replica=127.0.0.1:$R \
	--buffer 256K --admin 127.0.0.1:$A >"$T/proxy.log" 2>&1 & PIDS+=($!)
wait_port "$L"; wait_port "$A"

h "production redis :$P, replica redis :$R, doppel proxy :$L (admin :$A)"
h "1. 200k SETs straight to production, then through doppel with a live replica"
direct=$(bench "$P"); echo "   direct:            $direct requests/s"
redis-cli -p "$P" flushall >/dev/null; redis-cli -p "$R" flushall >/dev/null
through=$(bench "$L"); echo "   through doppel:    $through requests/s"
sleep 0.3
echo "   keys: production $(redis-cli -p "$P" dbsize), replica $(redis-cli -p "$R" dbsize)"
pd=$(redis-cli -p "$P" debug digest); rd=$(redis-cli -p "$R" debug digest)
if [ "$pd" = "$rd" ]; then echo "   datasets identical: DEBUG DIGEST $pd on both"
else echo "   datasets differ: production $pd, replica $rd"; fi
echo "   answers compared: $(field "r['turns_compared']"), diverged: $(field "r['diverged_turns']")"

h "2. the replica is stopped (SIGSTOP, like a breakpoint) and the load runs again"
kill -STOP "$REPLICA"
stopped=$(bench "$L" 512); echo "   through doppel:    $stopped requests/s with the replica stopped (512-byte values)"
echo "   production keys:   $(redis-cli -p "$P" dbsize) (every SET answered)"
kill -CONT "$REPLICA"

h "3. what doppel says (doppel status --admin 127.0.0.1:$A)"
"$DOPPEL" status --admin 127.0.0.1:$A
if [ "$(field "r['overflows']")" -gt 0 ]; then
	h "The stopped replica overflowed its 256 KiB buffer $(field "r['overflows']") times after $(field "'%.1f s' % r['debug_window_s']") (its debug window); $(field "r['bytes_dropped']") bytes were dropped for it and counted. Production never waited."
else
	h "The replica kept up: no overflow."
fi
