#!/bin/bash
# clone_frozen.sh - how long production is frozen to make a live clone, and
# how long a clone takes in all, for redis-server with 10k, 100k and 1M keys.
#
#   bench/clone_frozen.sh [DOPPEL] [RUNS]
#
# For each size: `doppel run` a redis, fill it with DEBUG POPULATE, make RUNS
# clones one after the other (each destroyed before the next) and print the
# minimum / median / maximum of production's frozen time (CRIU's "Frozen
# time"), of the memory dump inside it, and of the whole clone. Next to it,
# the same redis dumped by a plain `criu dump --leave-running --tcp-close` to
# a disk directory, the way CRIU is usually run. One run prints one table;
# nothing passes or fails on timing.
set -uo pipefail
DOPPEL=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/doppel}
RUNS=${2:-5}
T=$(mktemp -d /var/tmp/doppel-bench.XXXXXX)
export DOPPEL_RUN_DIR=$T/run
SUP=
cleanup() {
	[ -n "$SUP" ] && kill -TERM "$SUP" 2>/dev/null && wait "$SUP" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stats() { # min median max of numbers on stdin
	sort -g | awk '{a[NR]=$1} END{printf "%.1f / %.1f / %.1f", a[1], a[int((NR+1)/2)], a[NR]}'
}
field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

printf '%-6s %-9s %-28s %-28s %-24s %s\n' keys image "frozen ms (min/med/max)" "memory dump ms" "clone total ms" \
	"plain criu dump to disk: frozen ms"
for keys in 10000 100000 1000000; do
	name=bench$keys
	L=$(port)
	mkdir -p "$T/data$keys"
	"$DOPPEL" run "$name" --listen 127.0.0.1:$L --port 6379 --state "$T/data$keys" --work-dir "$T/work$keys" \
		-- redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data$keys" --save '' --appendonly no --enable-debug-command local \
		>"$T/run$keys.log" 2>&1 &
	SUP=$!
	for _ in $(seq 100); do redis-cli -p "$L" ping >/dev/null 2>&1 && break; sleep 0.1; done
	redis-cli -p "$L" debug populate "$keys" >/dev/null
	got=$(redis-cli -p "$L" dbsize)
	[ "$got" = "$keys" ] || { echo "redis holds $got keys, not $keys"; exit 1; }
	: >"$T/frozen"; : >"$T/mem"; : >"$T/total"; image=0
	# one warm-up clone (first use of the images tmpfs), not counted
	"$DOPPEL" clone "$name" >/dev/null && "$DOPPEL" destroy "$name/1" >/dev/null
	for r in $(seq "$RUNS"); do
		"$DOPPEL" clone "$name" >"$T/clone.out" || { cat "$T/clone.out"; exit 1; }
		"$DOPPEL" status "$name" --json >"$T/s.json"
		field "$T/s.json" "j['clones'][0]['frozen_ms']" >>"$T/frozen"
		field "$T/s.json" "j['clones'][0]['memdump_ms']" >>"$T/mem"
		field "$T/s.json" "j['clones'][0]['clone_total_ms']" >>"$T/total"
		image=$(field "$T/s.json" "'%.0f MiB' % (j['clones'][0]['image_bytes'] / 1048576)")
		"$DOPPEL" destroy "$name/$(field "$T/s.json" "j['clones'][0]['id']")" >/dev/null
	done
	# the same service, dumped the usual way: default options, images on disk
	pid=$("$DOPPEL" status "$name" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['service']['pid'])")
	: >"$T/plain"
	for r in $(seq "$RUNS"); do
		rm -rf "$T/plain-img"; mkdir -p "$T/plain-img"
		criu dump -t "$pid" --leave-running --tcp-close -D "$T/plain-img" --display-stats \
			--external "mnt[$T/data$keys]:s" -o dump.log 2>/dev/null |
			awk '/Frozen time/{print $3/1000}' >>"$T/plain"
	done
	rm -rf "$T/plain-img"
	printf '%-6s %-9s %-28s %-28s %-24s %s\n' "$keys" "$image" "$(stats <"$T/frozen")" "$(stats <"$T/mem")" \
		"$(stats <"$T/total")" "$(stats <"$T/plain")"
	kill -TERM "$SUP"; wait "$SUP" 2>/dev/null; SUP=
done
