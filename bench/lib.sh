# lib.sh - helpers the benchmarks share (bash, sourced).

# A free TCP port of 127.0.0.1.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# "median (min-max)" of the numbers on stdin, "-" for none.
med() { sort -g | awk '{a[NR]=$1} END{if(!NR){print "-";exit} printf "%.0f (%.0f-%.0f)", a[int((NR+1)/2)], a[1], a[NR]}'; }
# The median alone, one decimal.
medv() { sort -g | awk '{a[NR]=$1} END{if(NR) printf "%.1f", a[int((NR+1)/2)]}'; }
# field FILE EXPR: a Python expression over the JSON in FILE (as j).
field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
now() { date +%s.%N; }
# rate COUNT0 COUNT1 T0 T1: per second, rounded.
rate() { awk -v a="$1" -v b="$2" -v s="$3" -v e="$4" 'BEGIN{printf "%.0f", (b-a)/(e-s)}'; }

# criu_plain_dump CRIU PID DIR STATE_DIR OUT [CRIU OPTIONS]: `criu dump --leave-running
# --tcp-close` of PID to DIR (removed afterwards), as CRIU is usually run; appends
# freezing + frozen ms (CRIU's --display-stats) to OUT, or keeps CRIU's errors in
# OUT.err when the dump fails.
criu_plain_dump() {
	local criu=$1 pid=$2 dir=$3 state=$4 out=$5
	shift 5
	rm -rf "$dir"; mkdir -p "$dir"
	if "$criu" dump -t "$pid" --leave-running --tcp-close -D "$dir" --display-stats \
		--external "mnt[$state]:s" "$@" -o dump.log >"$dir.stats" 2>&1; then
		awk '/^Freezing time/{f=$3} /^Frozen time/{z=$3} END{if (z) printf "%.1f\n", (f+z)/1000}' \
			"$dir.stats" >>"$out"
	else
		grep 'Error' "$dir/dump.log" | tail -3 >>"$out.err"
	fi
	rm -rf "$dir" "$dir.stats"
}
