# lib.sh - shared helpers for doppel's integration tests (bash).
#
# Every process a test starts goes through `spawn`, which records its pid; an
# EXIT trap stops them all (TERM, then KILL) whether the test passed or not,
# and removes the test's temporary directory unless KEEP_TMP=1.
#
# A test fails with `fail "why"` (exit 1). `skip "why"` (exit 77) is only for
# a prerequisite that is truly absent on a user's machine.

set -u
set -o pipefail

: "${DOPPEL:?DOPPEL must point at the doppel binary}"
PY=/usr/bin/python3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d "/tmp/doppel-test.XXXXXX")
PIDS=()
STOPPED_PIDS=()
EXTRA_PIDS=()	# services and clones started by a supervisor: killed last, by pid
# Supervisors of this test keep their admin sockets here, not in /run/doppel.
export DOPPEL_RUN_DIR="$T/run"


log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }

EXIT_HOOKS=()
# on_exit CMD : run CMD (eval'ed) during cleanup, after the processes are stopped
on_exit() { EXIT_HOOKS+=("$1"); }

cleanup() {
	local rc=$?
	for p in "${STOPPED_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	for p in "${EXTRA_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for h in "${EXIT_HOOKS[@]}"; do eval "$h"; done
	# A sanitizer report from any process the test ran fails the test, even one
	# written at exit (LeakSanitizer) after the test's own checks passed.
	if [ "$rc" -eq 0 ] && grep -l -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$T"/*.log \
		>"$T/sanitizer.hits" 2>/dev/null; then
		for f in $(cat "$T/sanitizer.hits"); do
			echo "---- sanitizer report in $(basename "$f")"
			grep -A 25 -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$f" | head -40
		done
		log "FAIL: a sanitizer reported an error (above)"
		rc=1
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "---- $(basename "$f") (last 30 lines)"
			tail -n 30 "$f"
		done
	fi
	[ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }
need() { command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed (deploy/install.sh installs it)"; }

# spawn NAME CMD... : start CMD in the background, output in $T/NAME.log, pid in $NAME_PID
spawn() {
	local name=$1; shift
	# The name becomes a variable (NAME_PID): refuse anything bash would choke on,
	# loudly, rather than let a shell error skip the rest of a test.
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "spawn: '$name' is not usable as a name (letters, digits, _)"
	"$@" >"$T/$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	printf -v "${name}_PID" '%s' "$pid"
}

# stop_pid PID : TERM a spawned process and wait for it; returns its exit status
stop_pid() {
	kill -TERM "$1" 2>/dev/null
	wait "$1"
}

sigstop() { kill -STOP "$1"; STOPPED_PIDS+=("$1"); }

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS] : until something accepts on 127.0.0.1:PORT
wait_port() {
	local port=$1 secs=${2:-10}
	for _ in $(seq $((secs * 20))); do
		if $PY -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	fail "nothing listens on 127.0.0.1:$port after ${secs}s"
}

# start_redis NAME PORT [extra args] : a real redis-server, no persistence
start_redis() {
	local name=$1 port=$2; shift 2
	need redis-server
	spawn "$name" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$T" --dbfilename "$name.rdb" --enable-debug-command local "$@"
	wait_port "$port"
}

# redis_digest PORT : the dataset's DEBUG DIGEST (40 hex digits), or fail
redis_digest() {
	local d
	d=$(redis-cli -p "$1" debug digest)
	[[ "$d" =~ ^[0-9a-f]{40}$ ]] || fail "DEBUG DIGEST on :$1 answered '$d'"
	echo "$d"
}

# json FILE EXPR : evaluate a python expression on the JSON document j
json() {
	$PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}

# status_json ADMIN OUT : fetch /status into OUT
status_json() {
	"$DOPPEL" status --admin "$1" --json >"$2" || fail "doppel status --admin $1 failed"
}

assert_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
assert_gt() { [ "$1" -gt "$2" ] || fail "$3: expected > $2, got $1"; }
assert_ge() { [ "$1" -ge "$2" ] || fail "$3: expected >= $2, got $1"; }

# ---- doppel run / clone ----

track_pid() { EXTRA_PIDS+=("$1"); }

# sup_status NAME FILE : the supervisor's /status JSON into FILE
sup_status() {
	"$DOPPEL" status "$1" --json >"$2" || fail "doppel status $1 failed"
}

# run_service NAME [doppel run options] -- CMD... : start a supervisor, wait until ready
run_service() {
	local name=$1; shift
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "run_service: '$name' is not usable as a name (letters, digits, _)"
	spawn "sup_$name" "$DOPPEL" run "$name" --work-dir "$T/work/$name" --stop-timeout 5s "$@"
	local st="" spid_var="sup_${name}_PID"
	local spid=${!spid_var}
	for _ in $(seq 300); do
		if "$DOPPEL" status "$name" --json >"$T/ready.json" 2>/dev/null; then
			st=$(json "$T/ready.json" "j['service']['state']")
			[ "$st" = running ] && break
		fi
		kill -0 "$spid" 2>/dev/null || fail "doppel run $name exited: $(tail -3 "$T/sup_$name.log")"
		sleep 0.1
	done
	[ "$st" = running ] || fail "service $name not ready after 30 s"
	track_pid "$(json "$T/ready.json" "j['service']['pid']")"
}

# clone NAME [doppel clone options] : make clones, track their pids
clone() {
	local name=$1; shift
	"$DOPPEL" clone "$name" "$@" >"$T/clone.out" 2>&1 || fail "doppel clone $name failed: $(cat "$T/clone.out")"
	sup_status "$name" "$T/clones.json"
	for p in $(json "$T/clones.json" "' '.join(str(c['pid']) for c in j['clones'])"); do track_pid "$p"; done
}

# clone_pid NAME ID : host pid of clone ID
clone_pid() {
	sup_status "$1" "$T/cp.json"
	json "$T/cp.json" "[c['pid'] for c in j['clones'] if c['id'] == $2][0]"
}

# in_clone PID CMD... : run CMD in the clone's network namespace
in_clone() { local p=$1; shift; nsenter -t "$p" -n "$@"; }
