#!/bin/bash
# capture_rate.sh - how fast can production's direct clients go before
# `doppel adopt --capture lo` loses packets?
#
#   bench/capture_rate.sh [DOPPEL] [REQUESTS]
#
# Starts a plain redis-server, adopts it with --capture lo, makes one clone,
# then runs redis-benchmark (SET and GET, 3-byte values) straight at
# production with 1, 2, 4, 8, 16, 32 and 64 clients, then 8 and 50 clients
# pipelining 16 requests (-P 16), REQUESTS requests each (default 100000).
# For each run it prints the rate redis-benchmark reached and what the
# capture counted meanwhile: packets, kernel drops (pcap_stats) and
# connections with gaps. The highest rate with no kernel drop and no gap
# is printed last. Nothing passes or fails on timing.
set -uo pipefail
DOPPEL=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/doppel}
REQ=${2:-100000}
T=$(mktemp -d /var/tmp/doppel-bench.XXXXXX)
export DOPPEL_RUN_DIR=$T/run
SUP= RED=
cleanup() {
	[ -n "$SUP" ] && kill -TERM "$SUP" 2>/dev/null && wait "$SUP" 2>/dev/null
	[ -n "$RED" ] && kill -TERM "$RED" 2>/dev/null && wait "$RED" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
cap() { "$DOPPEL" status capbench --json | python3 -c "import json,sys; c=json.load(sys.stdin)['capture']; print(c['packets'], c['kernel_drops'], c['gaps'])"; }

P=$(port)
redis-server --port "$P" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" >"$T/redis.log" 2>&1 &
RED=$!
for _ in $(seq 100); do redis-cli -p "$P" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$DOPPEL" adopt capbench --pid "$RED" --port "$P" --capture lo --work-dir "$T/work" >"$T/sup.log" 2>&1 &
SUP=$!
for _ in $(seq 100); do "$DOPPEL" status capbench >/dev/null 2>&1 && break; sleep 0.1; done
"$DOPPEL" clone capbench >"$T/clone.out" 2>&1 || { cat "$T/clone.out"; exit 1; }

best=0 best_c=-
printf '%-8s %-10s %12s %12s %10s %12s %6s\n' clients test "req/s" "packets" "drops" "pkts/s" gaps
for c in 1 2 4 8 16 32 64 8P16 50P16; do
	pipe=1
	case $c in *P*) pipe=${c#*P} c=${c%P*} ;; esac
	for t in set get; do
		read -r p0 d0 g0 < <(cap)
		s0=$(date +%s.%N)
		rps=$(redis-benchmark -p "$P" -t "$t" -n "$REQ" -c "$c" -P "$pipe" -q 2>/dev/null | tr '\r' '\n' |
			sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
		s1=$(date +%s.%N)
		sleep 0.2 # the capture's last block (5 ms timeout) and a stats tick
		read -r p1 d1 g1 < <(cap)
		pps=$(echo "($p1 - $p0) / ($s1 - $s0)" | bc)
		printf '%-8s %-10s %12s %12s %10s %12s %6s\n' "$c" "$t$([ "$pipe" = 1 ] || echo " -P$pipe")" "$rps" $((p1 - p0)) $((d1 - d0)) "$pps" $((g1 - g0))
		if [ $((d1 - d0)) -eq 0 ] && [ $((g1 - g0)) -eq 0 ] &&
			[ "$(echo "$rps > $best" | bc)" = 1 ]; then
			best=$rps best_c="$c clients, $t, pipeline $pipe"
		fi
	done
done
echo "highest loss-free rate: $best requests/s ($best_c); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
