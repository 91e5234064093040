#!/bin/bash
# clone_frozen.sh - production's frozen time to make a live clone, against
# the memory the service uses, under a steady write load.
#
#   SIZES="10k 100M 500M 1G 2G" RUNS=3 bench/clone_frozen.sh [DOPPEL] [OUT_DIR]
#
# For each size, one redis-server under `doppel run`, filled with DEBUG
# POPULATE ("10k": 10,000 small keys; "500M": about 500 MiB of 1 KiB values),
# and a write load through doppel's front for the whole measurement
# (redis-benchmark -t set, 20 connections, 4 pipelined, random keys: pages keep getting
# dirty). Then, RUNS times each:
#   - `doppel clone NAME` (default options: --predump auto, images on the
#     supervisor's tmpfs): production's frozen time as CRIU measured it
#     (freezing + frozen, from /status), the pre-dump mode it used, the whole
#     clone's wall time; production's SET rate during the clone against its
#     rate in the 3 s before (from INFO's total_commands_processed);
#     and the longest of the pre-dump passes' own short freezes;
#   - the same with `--images DIR` on disk (is the tmpfs worth it?);
#   - the same with `--predump off` (a plain dump: what pre-dump saves);
#   - plain `criu dump --leave-running --tcp-close` of the same process (CRIU's
#     defaults, as it is usually run), images to disk and to tmpfs: freezing +
#     frozen time from CRIU's stats (--display-stats prints the stats-dump
#     image's freezing_time and frozen_time; crit is not needed).
# Correctness: with the load stopped, one more clone, and its DEBUG DIGEST
# against production's (nothing writes in between, so they must be equal).
# Prints a table (median and min-max over RUNS) and writes OUT_DIR/frozen.tsv
# and OUT_DIR/frozen-curve.svg (bench/frozen_svg.py). Nothing passes or fails
# on timing; the goal (< 100 ms frozen) is printed beside each row.
set -uo pipefail
DOPPEL=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/doppel}
OUT=${2:-.}
SIZES=${SIZES:-"10k 100M 500M 1G 2G"}
RUNS=${RUNS:-3}
CRIU=${DOPPEL_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /var/tmp/doppel-bench.XXXXXX)
SHM=$(mktemp -d /dev/shm/doppel-bench.XXXXXX)
export DOPPEL_RUN_DIR=$T/run
SUP= LOAD=
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null && wait "$LOAD" 2>/dev/null
	[ -n "$SUP" ] && kill -TERM "$SUP" 2>/dev/null && wait "$SUP" 2>/dev/null
	rm -rf "$T" "$SHM"
}
trap cleanup EXIT
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
cmds() { redis-cli -p "$L" info stats | awk -F: '/^total_commands_processed/{print $2+0}'; }

start_load() {
	redis-benchmark -p "$L" -t set -n 2000000000 -r 100000 -c 20 -P 4 -d 16 -q >/dev/null 2>&1 &
	LOAD=$!
	sleep 2
}
stop_load() { kill "$LOAD" 2>/dev/null; wait "$LOAD" 2>/dev/null; LOAD=; }

# one doppel clone under load: frozen ms, total ms, set rate during, mode
doppel_clone() { # TAG [doppel clone options]: figures go to $T/TAG.*
	local tag=$1 c0 t0 c1 t1 id
	shift
	c0=$(cmds); t0=$(now)
	"$DOPPEL" clone "$name" "$@" >"$T/clone.out" 2>&1 || { cat "$T/clone.out" >&2; return 1; }
	c1=$(cmds); t1=$(now)
	"$DOPPEL" status "$name" --json >"$T/s.json"
	field "$T/s.json" "j['clones'][-1]['frozen_ms'] + j['clones'][-1]['freezing_ms']" >>"$T/$tag.frozen"
	field "$T/s.json" "j['clones'][-1]['clone_total_ms']" >>"$T/$tag.total"
	field "$T/s.json" "max([p['frozen_ms'] for p in j['clones'][-1]['predump_passes']] or [0])" >>"$T/$tag.passfrozen"
	field "$T/s.json" "j['clones'][-1]['predump']" >"$T/mode"
	field "$T/s.json" "j['clones'][-1]['predump_reason']" >"$T/reason"
	field "$T/s.json" "'%.0f' % (j['clones'][-1]['image_bytes'] / 1048576)" >"$T/image"
	rate "$c0" "$c1" "$t0" "$t1" >>"$T/$tag.during"
	echo >>"$T/$tag.during"
	id=$(field "$T/s.json" "j['clones'][-1]['id']")
	"$DOPPEL" destroy "$name/$id" >/dev/null
}

plain_dump() { # DIR FILE: criu dump to DIR, freezing + frozen ms appended to FILE
	criu_plain_dump "$CRIU" "$pid" "$1" "$data" "$2"
}

LOAD0=$(uptime | sed 's/.*load average: \([0-9.]*\).*/\1/')
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB; $(uptime | sed 's/.*load/load/') at the start; CRIU $("$CRIU" --version | awk '/Version/{print $2}'); $RUNS runs per size"
printf 'memory\tused_mib\timage_mib\tpredump\tdoppel_frozen_ms\tpass_frozen_ms\tdoppel_plain_frozen_ms\tdoppel_disk_frozen_ms\tcriu_disk_frozen_ms\tcriu_tmpfs_frozen_ms\tclone_total_ms\tset_per_s_before\tset_per_s_during\tdigest\n' \
	>"$OUT/frozen.tsv"
printf '%-7s %-6s %-6s %-8s %-16s %-16s %-16s %-16s %-16s %-16s %-16s %-22s %-7s %s\n' memory used image pre-dump \
	"doppel frozen" "longest pass" "doppel, no pre" "doppel, disk" "criu, disk" "criu, tmpfs" "clone total" "SET/s before, during" digest "goal <100 ms"
for size in $SIZES; do
	name=bench$(echo "$size" | tr -cd 'a-zA-Z0-9')
	data=$T/data-$name
	L=$(port)
	mkdir -p "$data"
	"$DOPPEL" run "$name" --listen 127.0.0.1:$L --port 6379 --state "$data" --work-dir "$T/work-$name" \
		-- redis-server --port 6379 --bind 127.0.0.1 --dir "$data" --save '' --appendonly no \
		--enable-debug-command local >"$T/run-$name.log" 2>&1 &
	SUP=$!
	for _ in $(seq 200); do redis-cli -p "$L" ping >/dev/null 2>&1 && break; sleep 0.1; done
	case $size in
	*k) redis-cli -p "$L" debug populate $((${size%k} * 1000)) >/dev/null ;;
	*M | *G)
		mib=${size%[MG]}; [ "${size: -1}" = G ] && mib=$((mib * 1024))
		redis-cli -p "$L" debug populate $((mib * 1024 * 1024 / 1100)) key 1024 >/dev/null ;;
	esac
	used=$(redis-cli -p "$L" info memory | awk -F: '/^used_memory:/{printf "%.0f", $2/1048576}')
	pid=$("$DOPPEL" status "$name" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['service']['pid'])")
	rm -f "$T"/*.frozen "$T"/*.passfrozen "$T"/*.total "$T"/*.during "$T/before" "$T"/criu-*
	start_load
	for r in $(seq "$RUNS"); do
		c0=$(cmds); t0=$(now); sleep 3; c1=$(cmds); t1=$(now)
		rate "$c0" "$c1" "$t0" "$t1" >>"$T/before"; echo >>"$T/before"
		doppel_clone tmpfs || exit 1
		mode=$(cat "$T/mode") reason=$(cat "$T/reason")
		doppel_clone plain --predump off || exit 1
		echo "$mode" >"$T/mode"; echo "$reason" >"$T/reason"
		mkdir -p "$T/disk-images"
		doppel_clone disk --images "$T/disk-images" || exit 1
		plain_dump "$T/plain-disk" "$T/criu-disk.frozen"
		plain_dump "$SHM/plain" "$T/criu-tmpfs.frozen"
	done
	stop_load
	# correctness: no writes between the freeze and the comparison
	"$DOPPEL" clone "$name" >"$T/clone.out" 2>&1 || { cat "$T/clone.out"; exit 1; }
	"$DOPPEL" status "$name" --json >"$T/s.json"
	cpid=$(field "$T/s.json" "j['clones'][-1]['pid']")
	want=$(redis-cli -p "$L" debug digest)
	got=$(nsenter -t "$cpid" -n redis-cli -p 6379 debug digest)
	[ "$want" = "$got" ] && digest=equal || digest="DIFFERS"
	frozen=$(med <"$T/tmpfs.frozen")
	goal=$(medv <"$T/tmpfs.frozen" | awk '{print ($1 < 100) ? "met" : "NOT met"}')
	printf '%-7s %-6s %-6s %-8s %-16s %-16s %-16s %-16s %-16s %-16s %-16s %-22s %-7s %s\n' "$size" "$used" "$(cat "$T/image")" \
		"$(cat "$T/mode")" "$frozen" "$(med <"$T/tmpfs.passfrozen")" "$(med <"$T/plain.frozen")" "$(med <"$T/disk.frozen")" "$(med <"$T/criu-disk.frozen")" \
		"$(med <"$T/criu-tmpfs.frozen")" "$(med <"$T/tmpfs.total")" "$(medv <"$T/before"), $(medv <"$T/tmpfs.during")" "$digest" "$goal"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$used" "$(cat "$T/image")" "$(cat "$T/mode")" \
		"$(medv <"$T/tmpfs.frozen")" "$(medv <"$T/tmpfs.passfrozen")" "$(medv <"$T/plain.frozen")" "$(medv <"$T/disk.frozen")" "$(medv <"$T/criu-disk.frozen")" "$(medv <"$T/criu-tmpfs.frozen")" \
		"$(medv <"$T/tmpfs.total")" "$(medv <"$T/before")" "$(medv <"$T/tmpfs.during")" "$digest" >>"$OUT/frozen.tsv"
	kill -TERM "$SUP"; wait "$SUP" 2>/dev/null; SUP=
done
echo "pre-dump: $(cat "$T/reason")"
echo "$(uptime | sed 's/.*load/load/') at the end"
python3 "$HERE/frozen_svg.py" "$OUT/frozen.tsv" "$OUT/frozen-curve.svg" \
	"$(nproc) cores; load average $LOAD0 at the start, $(uptime | sed 's/.*load average: \([0-9.]*\).*/\1/') at the end" && echo "wrote $OUT/frozen.tsv and $OUT/frozen-curve.svg"
