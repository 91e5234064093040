#!/bin/bash
# governor_window.sh - does the budget governor lengthen a traced clone's
# debug window? (Parikshan thesis ch. 6: fit tracing into the window.)
#
#   bench/governor_window.sh [DOPPEL] [ROUNDS] [CAP_SECONDS]
#
# A redis-server under `doppel run` (buffer 4M) gets a steady SET load
# through the front. A fresh clone is traced by `perf record -F max -g` (the
# highest sampling rate the kernel allows, with call graphs), once with the
# governor off and once with it on (perf's events disabled above 70% of the
# buffer, or past 30% when the live forecast puts an overflow within 5 s;
# enabled again below 30%). Printed: the debug window (attach to first
# overflow, capped at CAP_SECONDS: a window still open at the cap shows as
# ">CAP"), the share of time traced at full detail, and the ratio.
set -uo pipefail
DOPPEL=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/doppel}
ROUNDS=${2:-2}
CAP=${3:-40}
T=$(mktemp -d /var/tmp/doppel-gov.XXXXXX)
export DOPPEL_RUN_DIR=$T/run
SUP= LOAD=
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null
	[ -n "$SUP" ] && kill -TERM "$SUP" 2>/dev/null && wait "$SUP" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)"; exit 1; }
. "$(dirname "$0")/lib.sh"
info() {
	curl -s --unix-socket "$T/run/gw.sock" "http://x/clone-info?id=$1" | python3 -c \
		"import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print(int(v) if isinstance(v,bool) else v)" "$2" 2>/dev/null
}

L=$(port)
mkdir -p "$T/data"
"$DOPPEL" run gw --listen 127.0.0.1:$L --port 6379 --state "$T/data" --work-dir "$T/work" --buffer 4M -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --save '' >"$T/run.log" 2>&1 &
SUP=$!
for _ in $(seq 100); do redis-cli -p "$L" ping >/dev/null 2>&1 && break; sleep 0.1; done
# Steady load for the whole run: a new redis-benchmark whenever one finishes.
( while :; do redis-benchmark -p "$L" -t set -n 1000000 -c 8 -r 1000000 -d 200 -q >/dev/null 2>&1; done ) &
LOAD=$!
printf '%-8s %-9s %-16s %-22s %s\n' round governor "debug window" "traced at full detail" "perf samples"
declare -A WIN
for r in $(seq "$ROUNDS"); do
	for gov in off control; do
		"$DOPPEL" clone gw >"$T/clone.out" || { cat "$T/clone.out"; exit 1; }
		id=$("$DOPPEL" status gw --json | python3 -c "import json,sys; print(json.load(sys.stdin)['clones'][-1]['id'])")
		"$DOPPEL" attach "gw/$id" --governor "$gov" --duration "${CAP}s" -- \
			perf record -F max -g -p {pids} -o perf.data >"$T/attach.log" 2>&1 &
		A=$!
		t0=$(date +%s.%N)
		win=""
		while kill -0 "$A" 2>/dev/null; do
			if [ "$(info "$id" window_open)" = 0 ]; then
				win=$(python3 -c "print('%.1f s' % ($(date +%s.%N) - $t0))")
				kill -INT "$A" 2>/dev/null
				break
			fi
			sleep 0.2
		done
		wait "$A" 2>/dev/null
		[ -n "$win" ] || win=">${CAP} s"
		share=$(grep -oE 'full detail [0-9]+%' "$T/attach.log" | grep -oE '[0-9]+%' || echo "100%")
		samples=$(grep -oE '\([0-9]+ samples\)' "$T/attach.log" | grep -oE '[0-9]+' | tail -1)
		printf '%-8s %-9s %-16s %-22s %s\n' "$r" "$gov" "$win" "$share" "${samples:-?}"
		WIN[$r$gov]=$win
		"$DOPPEL" destroy "gw/$id" >/dev/null
	done
done
echo
for r in $(seq "$ROUNDS"); do
	off=${WIN[${r}off]} on=${WIN[${r}control]}
	python3 - "$off" "$on" "$r" <<'PY'
import sys
off, on, r = sys.argv[1], sys.argv[2], sys.argv[3]
v = lambda s: float(s.strip(">").split()[0])
print("round %s: window with the governor / without: %s%.1fx" % (r, ">" if on.startswith(">") else "", v(on) / v(off)))
PY
done
