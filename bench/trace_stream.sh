#!/bin/bash
# trace_stream.sh - do large traces (>= 1 GB) stream through `doppel trace`
# in bounded memory, and how fast? Prints a table: input, size, events,
# seconds, events per second and peak RSS, for doppel's readers and analyses
# and for `uftrace dump` on the same uftrace data.
#
#   bench/trace_stream.sh [BUILD_DIR] [WORK_DIR]
#
# The traces come from tests/trace-samples/mt_counts (2 threads, known call
# counts) traced by libdoppeltrace and by uftrace; WORK_DIR (default
# /var/tmp/doppel-trace-bench) needs about 4 GB. Nothing here passes or fails.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
W=${2:-/var/tmp/doppel-trace-bench}
D=$B/cli/doppel
RUN=$B/bench/trace_runstat
mkdir -p "$W"
command -v uftrace >/dev/null || { echo "uftrace is needed (apt-get install uftrace)"; exit 1; }

# ~2.2 GB of libdoppeltrace records: 2 threads x 100000 x (1 work + 350 leaf)
if [ ! -s "$W/big.dtr" ]; then
	echo "recording big.dtr ..."
	rm -f "$W/big.dtr"
	DOPPELTRACE_OUT=$W/big.dtr "$B/tests/trace-samples/mt_counts_dtr" 2 100000 350 >/dev/null
fi
# ~1.1 GB of uftrace records of the same program
if [ ! -d "$W/uftrace.data" ]; then
	echo "recording uftrace.data ..."
	uftrace record --no-libcall -d "$W/uftrace.data" "$B/tests/trace-samples/mt_counts_pg" 2 100000 170 >/dev/null
fi
ufsize=$(du -sb "$W/uftrace.data" | cut -f1)
dtrsize=$(stat -c %s "$W/big.dtr")
# events: every record is one event (doppel counts them while reading)
count() { "$D" trace view --report --stats "$1" 2>&1 >/dev/null | sed -n 's/.*, \([0-9]*\) events,.*/\1/p'; }
dtr_events=$(count "$W/big.dtr")
uf_events=$(count "$W/uftrace.data")

# Wall time suffers when other work shares the machine; CPU time (user + sys)
# much less: both are shown, events/s is per CPU second.
printf '%-46s %8s %11s %8s %8s %12s %10s\n' "COMMAND" "INPUT" "EVENTS" "WALL S" "CPU S" "EVENTS/CPU-S" "PEAK RSS"
row() { # LABEL SIZE EVENTS CMD...
	local label=$1 size=$2 events=$3 cpu; shift 3
	read -r wall user sys rss rc < <("$RUN" /dev/null "$@" 2>/dev/null)
	[ "$rc" = 0 ] || label="$label (exit $rc)"
	cpu=$(echo "$user + $sys" | bc -l)
	printf '%-46s %7.2fG %11s %8.1f %8.1f %12.0f %9.1fM\n' "$label" "$(echo "$size / 1073741824" | bc -l)" \
		"$events" "$wall" "$cpu" "$(echo "$events / $cpu" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}
row "doppel trace view --report (dtr)" "$dtrsize" "$dtr_events" "$D" trace view --report "$W/big.dtr"
row "doppel trace view --text (dtr)" "$dtrsize" "$dtr_events" "$D" trace view --text "$W/big.dtr"
row "doppel trace summarise (dtr)" "$dtrsize" "$dtr_events" "$D" trace summarise "$W/big.dtr"
row "doppel trace view --chrome (dtr)" "$dtrsize" "$dtr_events" "$D" trace view --chrome "$W/big.dtr"
row "doppel trace demux --by thread --list (dtr)" "$dtrsize" "$dtr_events" "$D" trace demux --by thread --list "$W/big.dtr"
row "doppel trace view --report (uftrace)" "$ufsize" "$uf_events" "$D" trace view --report "$W/uftrace.data"
row "doppel trace view --text (uftrace)" "$ufsize" "$uf_events" "$D" trace view --text "$W/uftrace.data"
row "doppel trace summarise (uftrace)" "$ufsize" "$uf_events" "$D" trace summarise "$W/uftrace.data"
row "uftrace dump" "$ufsize" "$uf_events" uftrace dump -d "$W/uftrace.data"
row "uftrace replay" "$ufsize" "$uf_events" uftrace replay -d "$W/uftrace.data"
row "uftrace report" "$ufsize" "$uf_events" uftrace report -d "$W/uftrace.data"
