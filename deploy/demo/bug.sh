#!/bin/bash
# bug.sh - doppel's guided demo: find a real, traffic-dependent bug on a live
# clone while production keeps serving. Run it as `doppel demo`.
#
#   1. kvd (deploy/demo/kvd.c), a small profile store with a file-backed
#      cache, runs under `doppel run`; users (load.py) read and update
#      records, and some reads come back stale: the bug;
#   2. `doppel clone` makes a live clone while the load runs;
#   3. `doppel attach` runs strace on the clone only;
#   4. `doppel trace` (Flowdar) splits the clone's trace into requests, finds
#      the stale answers and compares a right read with a stale one: the
#      first divergence is where the bug is;
#   5. `doppel attach` runs gdb on the clone and prints the cache entry that
#      is wrong;
#   6. production's request and error counts, at every step.
# Every step says what it does. With DOPPEL_DEMO_SUMMARY=FILE, each step's
# outcome is also written there as "KEY=VALUE" lines (the tests read them).
# Everything started here is stopped on exit.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DOPPEL=${1:-doppel}
T=$(mktemp -d /var/tmp/doppel-demo.XXXXXX)
export DOPPEL_RUN_DIR=$T/run
SUMMARY=${DOPPEL_DEMO_SUMMARY:-$T/summary}
NAME=shop
USERS=1000
SUP=
LOAD=
cleanup() {
	[ -n "$LOAD" ] && kill -TERM "$LOAD" 2>/dev/null && wait "$LOAD" 2>/dev/null
	[ -n "$SUP" ] && kill -TERM "$SUP" 2>/dev/null && wait "$SUP" 2>/dev/null
	[ "${DOPPEL_DEMO_KEEP:-0}" = 1 ] && echo "(files kept in $T)" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
h() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
result() { echo "$1=$2" >>"$SUMMARY"; }
die() {
	printf '\033[31mdemo failed: %s\033[0m\n' "$*" >&2
	result FAILED "$*"
	[ -f "$T/run.log" ] && tail -5 "$T/run.log" >&2
	exit 1
}
# Debian's python3 first: a version manager's shim costs seconds per call on a busy host.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
field() { "$DOPPEL" status "$NAME" --json | $PY -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
stat_of() { $PY -c "import json,sys; print(json.load(open('$T/load.stats'))['$1'])" 2>/dev/null || echo 0; }
production() {
	$PY -c "import json; s = json.load(open('$T/load.stats'))
print('    production: %d requests answered, %d errors; users saw %d stale reads' % (s['requests'], s['errors'], s['stale']))
if s['errors']: print('    (last error: %s)' % s['last_error'])"
}
# wait_for SECONDS CMD... : until CMD succeeds
wait_for() {
	local secs=$1; shift
	for _ in $(seq $((secs * 10))); do "$@" && return 0; sleep 0.1; done
	return 1
}
: >"$SUMMARY"
command -v cc >/dev/null || die "a C compiler (cc) is needed to build the demo service"
command -v strace >/dev/null || die "strace is needed (apt-get install strace)"
command -v gdb >/dev/null || die "gdb is needed (apt-get install gdb)"

h "0. The service: kvd, a profile store whose reads are served from a cache that"
say "   revalidates each record against its file's modification time (deploy/demo/kvd.c)"
run cc -g -O1 -o "$T/kvd" "$HERE/kvd.c" || die "cannot build kvd"
mkdir -p "$T/data"
$PY "$HERE/load.py" --seed "$T/data" --users $USERS || die "cannot write the records"
say "   $USERS records written to $T/data"

L=$(port)
h "1. doppel run: kvd in its own namespaces; users connect to 127.0.0.1:$L"
printf '\033[2m$ doppel run %s --listen 127.0.0.1:%s --port 8080 --state %s -- kvd --port 8080 --data %s\033[0m\n' \
	"$NAME" "$L" "$T/data" "$T/data"
"$DOPPEL" run "$NAME" --listen 127.0.0.1:$L --port 8080 --state "$T/data" --work-dir "$T/work" \
	--stop-timeout 3s -- "$T/kvd" --port 8080 --data "$T/data" >"$T/run.log" 2>&1 &
SUP=$!
wait_for 30 sh -c "\"$DOPPEL\" status $NAME --json 2>/dev/null | grep -q '\"state\":\"running\"'" ||
	die "kvd did not start under doppel run"
result RUN ok
say "   users now read and update records: mostly reads, and now and then a user updates a"
say "   record twice in a row, reading it after each update (python3 deploy/demo/load.py)"
$PY "$HERE/load.py" 127.0.0.1:$L --users $USERS --rate 250 --stats "$T/load.stats" \
	--expect "$T/expect" --stop "$T/stop" &
LOAD=$!
wait_for 20 sh -c "[ \"\$($PY -c \"import json; print(json.load(open('$T/load.stats'))['stale'])\" 2>/dev/null || echo 0)\" -gt 2 ]" ||
	die "no stale read appeared under load"
production
say "   Stale reads: a user updated a record and then read the value it had before."
say "   No error, no log line; it happens only to some double updates. Debug it live:"
result PROD_REQUESTS_BEFORE "$(stat_of requests)"
result PROD_STALE_BEFORE "$(stat_of stale)"

h "2. doppel clone: a live clone of production, made while the users keep coming"
req0=$(stat_of requests)
# CRIU refuses to dump a service while a connection waits in its accept queue
# ("In-flight connection"); kvd, single-threaded under steady load, often has
# one. doppel clone then fails cleanly, production untouched: try again.
for try in 1 2 3 4 5; do
	run "$DOPPEL" clone "$NAME" >"$T/clone.out" 2>&1 && break
	cat "$T/clone.out"
	grep -q "In-flight connection" "$T/clone.out" || die "doppel clone failed"
	say "   (a connection was waiting in kvd's accept queue at the freeze: trying again)"
	result CLONE_RETRIES "$try"
done
cat "$T/clone.out"
grep -q '^OK ' "$T/clone.out" || die "doppel clone failed 5 times"
CID=$(field "j['clones'][0]['id']")
CLONE_NAME=$NAME/$CID
frozen=$(sed -n 's/.*frozen_ms=\([0-9.]*\).*/\1/p' "$T/clone.out")
result CLONE ok
result FROZEN_MS "$frozen"
say "   production was frozen for $frozen ms; the clone gets a copy of every new connection"
production

h "3. doppel attach: strace on the clone only, 6 s at a time (production is never traced)"
# 4. below needs a right read and a stale one in the trace; on a slow host a
# second or third round of tracing may be needed to catch them.
mkdir -p "$T/requests"
for round in 1 2 3; do
	run "$DOPPEL" attach "$CLONE_NAME" --duration 6s -- strace -f -ttt -T -yy -v -s 256 \
		-e trace=accept4,read,write,newfstatat,openat,close -o "{dir}/kvd-$round.strace" -p '{pids}' \
		>"$T/attach.out" 2>&1 || die "doppel attach strace failed: $(tail -3 "$T/attach.out")"
	sed 's/^/   /' "$T/attach.out" | tail -4
	TRACE=$(ls "$T"/work/clone-$CID/attach-*strace*/kvd-$round.strace 2>/dev/null | head -1)
	[ -s "$TRACE" ] || die "no strace output from the clone"
	result ATTACH_STRACE ok
	result TRACE_LINES "$(wc -l <"$TRACE")"
	say "   $(wc -l <"$TRACE") lines of strace from the clone in $TRACE"
	production
	[ "$round" = 1 ] && {
		h "4. doppel trace (Flowdar): the clone's trace, request by request"
		run "$DOPPEL" trace demux --by request "$TRACE" --list 2>/dev/null | head -6
	}
	mkdir -p "$T/requests/$round"
	"$DOPPEL" trace demux --by request "$TRACE" -o "$T/requests/$round" >/dev/null 2>&1 || die "demux failed"
	$PY "$HERE/label.py" "$T/requests" "$T/expect" "$T/labels" >"$T/pair" || die "cannot read the requests"
	grep -q '^GOOD=' "$T/pair" && break
	say "   (no stale read next to a right one in this trace yet: tracing again)"
done
. <(grep -E '^[A-Z_]+=' "$T/pair" | sed "s/=\(.*\)/='\1'/")
say "   the clone answered ${READS:-0} reads while traced; ${STALE:-0} of them were stale:"
say "   the clone, fed production's traffic, has production's bug"
result CLONE_READS "${READS:-0}"
result CLONE_STALE "${STALE:-0}"
[ "${STALE:-0}" -gt 0 ] || die "no stale read in the clone's trace"
[ -n "${GOOD:-}" ] || die "no right read to compare a stale one with in the trace"
if [ "$SAME_USER" = 1 ]; then
	say "   compare a right read of user $USER_ID (after its first update) with its stale read"
	say "   (after the second update), call by call:"
else
	say "   compare a right read that re-read its record with a stale read, call by call:"
fi
run "$DOPPEL" trace compare --by name "$GOOD" "$BAD" | tee "$T/compare.out" | sed -n '1,9p'
grep -q '^  > A .*openat(' "$T/compare.out" && grep -q '^  > B .*write(' "$T/compare.out" ||
	die "the comparison does not show the missed re-read"
result COMPARE_LOCATES ok
mt() {
	grep 'newfstatat(' "$1" | sed -n 's/.*st_mtime=\([0-9]*\) .*st_mtime_nsec=\([0-9]*\).*/\1 \2/p' | head -1 |
		{ read -r s n && printf '%s.%09d s' "$s" "$n"; }
}
say "   Both reads stat() the file first. The right one then opens and reads it; the"
say "   stale one answers from the cache at once although the file had changed:"
if [ "$SAME_USER" = 1 ]; then
	say "     right read: file modified at $(mt "$GOOD")"
	say "     stale read: file modified at $(mt "$BAD")"
	say "   the same second: a freshness check on whole seconds cannot tell them apart."
else
	say "     stale read: the file was last modified at $(mt "$BAD"), in the second of the"
	say "     copy in the cache: a freshness check on whole seconds cannot tell them apart."
fi

h "5. doppel attach: gdb on the clone, to look at the cache entry of user $USER_ID"
run "$DOPPEL" attach "$CLONE_NAME" --batch -- gdb -p '{pid}' -batch \
	-ex "print cache[$USER_ID].value" -ex "print cache[$USER_ID].mtime" -ex "print cache[$USER_ID].size" \
	-ex "info line cache_fresh" -ex "list cache_fresh" >"$T/gdb.out" 2>&1 || die "doppel attach gdb failed"
grep -E '^\$[0-9]|^Line|e->mtime ==' "$T/gdb.out" | sed 's/^/   /'
cached=$(sed -n 's/^\$1 = "\([^"]*\)".*/\1/p' "$T/gdb.out")
[[ $cached == user=*";balance="* ]] || die "gdb did not print the clone's cache entry for user $USER_ID"
result GDB_CACHE_ENTRY ok
file=$(cat "$T/work/clone-$CID/state-0/user-$USER_ID" 2>/dev/null)
say "   In the clone, user $USER_ID's record:"
say "     in the cache: $cached (mtime kept in whole seconds: \$2)"
say "     in its file:  $file"
if [ "$cached" != "$file" ]; then
	result GDB_STALE_NOW yes
	say "   The cache still serves the old record: the whole-second check let it through."
else
	result GDB_STALE_NOW no
	say "   (the record was updated again since, in a later second, and the cache caught up)"
fi
say "   The check to fix, kvd.c cache_fresh(): e->mtime == st->st_mtime compares whole"
say "   seconds; keep st_mtim and compare its nanoseconds too."
production

h "6. What doppel saw: production served throughout; the clone kept up, or did not"
run "$DOPPEL" status "$NAME" | tail -4
touch "$T/stop"
wait "$LOAD"
LOAD=
"$DOPPEL" status "$NAME" --json >"$T/final.json" || die "doppel status failed"
. <($PY -c "import json
s = json.load(open('$T/load.stats')); r = json.load(open('$T/final.json'))['proxy']['replicas'][0]
print('req1=%d errors=%d stale=%d div=%d compared=%d' % (s['requests'], s['errors'], s['stale'],
      r['diverged_turns'], r['turns_compared']))")
result PROD_REQUESTS "$req1"
result PROD_REQUESTS_DURING "$((req1 - req0))"
result PROD_ERRORS "$errors"
result PROD_STALE "$stale"
result DIVERGED_TURNS "$div"
result TURNS_COMPARED "$compared"
say "   production answered $((req1 - req0)) requests while it was cloned, traced and debugged,"
say "   with $errors errors. doppel compared the clone's answers with production's: $div of"
say "   $compared differed. The bug depends on the clock: when a user's two updates fall in"
say "   one second on one side and straddle a second on the other (the clone runs a little"
say "   later, and slower under strace), one side serves a stale record and the other does"
say "   not, until that record changes again."
run "$DOPPEL" stop "$NAME" >/dev/null
wait "$SUP"
SUP=
result STOP ok
h "Done: the bug was found on the clone; production never waited."
