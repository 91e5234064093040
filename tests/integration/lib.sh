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

# Descriptors inherited from the runner (ctest, a CI agent) are closed, as
# systemd starts services with none: a service holding one opened in another
# mount namespace cannot be dumped by CRIU. 255 is bash's own (close-on-exec).
for _fd in /proc/$$/fd/*; do
	_fd=${_fd##*/}
	[ "$_fd" -gt 2 ] && [ "$_fd" != 255 ] && eval "exec $_fd>&-" 2>/dev/null
done
unset _fd

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

# A port free right now. Another test may take it before it is used: servers
# that can bind port 0 do so and say which port they got (spawn_listening);
# the others retry with another port when theirs was taken (start_redis,
# start_proxy, run_service).
free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# spawn_listening NAME VAR CMD... : start a server that binds port 0 and prints
# the port it got (a line with "port N"; python3 -u -m http.server does), and
# put that port in VAR once it listens
spawn_listening() {
	local name=$1 var=$2; shift 2
	spawn "$name" "$@"
	local pid_var="${name}_PID" port=""
	for _ in $(seq 200); do
		port=$(sed -n 's/.*\bport \([0-9][0-9]*\).*/\1/p' "$T/$name.log" | head -1)
		[ -n "$port" ] && break
		kill -0 "${!pid_var}" 2>/dev/null || fail "$name exited: $(tail -3 "$T/$name.log")"
		sleep 0.05
	done
	[ -n "$port" ] || fail "$name did not say which port it listens on after 10 s"
	printf -v "$var" '%s' "$port"
}

# refused_port VAR : a port on 127.0.0.1 that refuses connections for the whole
# test (held bound, never listening), in VAR
refused_port() {
	spawn_listening "refuse_$1" "$1" "$PY" -u "$HERE/tcp_peers.py" hold-closed 0
}

# wait_for SECONDS CMD... : run CMD until it succeeds, at most SECONDS; returns
# 1 (and says so) if it never did: the assertion that follows then fails with
# its own message
wait_for() {
	local secs=$1; shift
	local end=$((SECONDS + secs))
	until "$@"; do
		if [ "$SECONDS" -ge "$end" ]; then
			log "still not true after ${secs}s: $*"
			return 1
		fi
		sleep 0.05
	done
}

# wait_status ADMIN_OR_NAME PY_EXPR [SECONDS] : until the /status document j of
# a proxy (--admin HOST:PORT) or a supervisor (NAME) makes PY_EXPR true (default
# 10 s); the last document is left in $T/wait_status.json
wait_status() {
	local who=$1 expr=$2 secs=${3:-10}
	local end=$((SECONDS + secs))
	local -a how=("$who")
	case $who in *:*) how=(--admin "$who") ;; esac
	while :; do
		if "$DOPPEL" status "${how[@]}" --json >"$T/wait_status.json" 2>/dev/null &&
			[ "$(json "$T/wait_status.json" "bool($expr)" 2>/dev/null)" = True ]; then
			return 0
		fi
		if [ "$SECONDS" -ge "$end" ]; then
			log "status of $who still not $expr after ${secs}s"
			return 1
		fi
		sleep 0.1
	done
}

# started NAME WHAT : wait until NAME's log shows WHAT (0), or NAME exits (1)
started() {
	local name=$1 what=$2 pid_var="${1}_PID"
	for _ in $(seq 600); do
		grep -q -- "$what" "$T/$name.log" && return 0
		kill -0 "${!pid_var}" 2>/dev/null || { grep -q -- "$what" "$T/$name.log"; return; }
		sleep 0.05
	done
	fail "$name: no '$what' after 30 s: $(tail -3 "$T/$name.log")"
}

# taken NAME : did NAME fail because its port was taken meanwhile?
taken() { grep -q "already in use" "$T/$1.log"; }

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

# as_session_child CMD... : CMD as the child of a shell that leads a session
# of its own (setsid), as a command typed in a terminal runs: its session id
# is a pid this namespace sees, not its own. The shell's pid is the one
# spawn records: add CMD's own pid to PIDS once known.
as_session_child() {
	setsid bash -c '"$@" & wait' session "$@"
}

# start_redis NAME VAR [extra args] : a real redis-server, no persistence, its
# port in VAR (redis cannot bind port 0: a port taken meanwhile is retried).
# nginx_conf FILE DIR PORT ROOT : a one-worker nginx (in the foreground, as a service
# under `doppel run`) serving ROOT on 127.0.0.1:PORT, its pid, logs and temp files in DIR
nginx_conf() {
	cat >"$1" <<CONF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $2/nginx.pid;
error_log $2/error.log;
events { worker_connections 64; }
http {
	access_log $2/access.log;
	client_body_temp_path $2/body;
	proxy_temp_path $2/proxy;
	fastcgi_temp_path $2/fastcgi;
	uwsgi_temp_path $2/uwsgi;
	scgi_temp_path $2/scgi;
	server { listen 127.0.0.1:$3; root $4; }
}
CONF
}

# start_redis NAME PORT [extra args] : the same on a port chosen by the caller.
# NAME_PID is its pid; with REDIS_WRAP=setsid it leads a session of its own (as under
# systemd), with REDIS_WRAP=as_session_child it is a terminal's child.
start_redis() {
	local name=$1 var=$2 port; shift 2
	need redis-server
	for _ in 1 2 3 4 5; do
		if [[ $var =~ ^[0-9]+$ ]]; then port=$var; else port=$(free_port); fi
		spawn "$name" ${REDIS_WRAP:-} redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
			--dir "$T" --dbfilename "$name.rdb" --enable-debug-command local "$@"
		if started "$name" "Ready to accept connections"; then
			[[ $var =~ ^[0-9]+$ ]] || printf -v "$var" '%s' "$port"
			return 0
		fi
		grep -q "Address already in use" "$T/$name.log" && ! [[ $var =~ ^[0-9]+$ ]] ||
			fail "redis-server $name did not start: $(tail -3 "$T/$name.log")"
		log "port $port was taken meanwhile; trying another"
	done
	fail "redis-server $name found no free port in 5 tries"
}

# start_proxy NAME LVAR AVAR [doppel proxy options] : `doppel proxy` with its
# --listen and --admin ports (in LVAR and AVAR) on 127.0.0.1, retried if
# another test takes one of them meanwhile; returns once both listen
start_proxy() {
	local name=$1 lvar=$2 avar=$3 l a; shift 3
	for _ in 1 2 3 4 5; do
		l=$(free_port); a=$(free_port)
		spawn "$name" "$DOPPEL" proxy --listen "127.0.0.1:$l" --admin "127.0.0.1:$a" "$@"
		if started "$name" "listening on 127.0.0.1:$l"; then
			printf -v "$lvar" '%s' "$l"
			printf -v "$avar" '%s' "$a"
			return 0
		fi
		taken "$name" || fail "doppel proxy did not start: $(tail -3 "$T/$name.log")"
		log "port $l or $a was taken meanwhile; trying others"
	done
	fail "doppel proxy found no free ports in 5 tries"
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

# clones_answered NAME TURNS : wait (20 s at most) until every clone of NAME has
# answered TURNS turns (all compared). A clone runs each connection a little
# after production: a read through the front on a new connection, made before
# that, could reach a clone ahead of writes it must see. ANSWERED: the least.
clones_answered() {
	for _ in $(seq 200); do
		sup_status "$1" "$T/answered.json"
		ANSWERED=$(json "$T/answered.json" "min([r['turns_compared'] for r in j['proxy']['replicas']] or [0])")
		[ "$ANSWERED" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# run_service NAME [VAR] [doppel run options] -- CMD... : start a supervisor and
# wait until it is ready. With VAR (and no --listen), the front listens on a
# free port of 127.0.0.1, retried if another test takes it meanwhile, and VAR
# gets it.
run_service() {
	local name=$1; shift
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "run_service: '$name' is not usable as a name (letters, digits, _)"
	local var=""
	case ${1:-} in -*|"") ;; *) var=$1; shift ;; esac
	local st spid_var="sup_${name}_PID" spid port=""
	for _ in 1 2 3 4 5; do
		st=""
		if [ -n "$var" ]; then
			port=$(free_port)
			spawn "sup_$name" "$DOPPEL" run "$name" --listen "127.0.0.1:$port" \
				--work-dir "$T/work/$name" --stop-timeout 5s "$@"
		else
			spawn "sup_$name" "$DOPPEL" run "$name" --work-dir "$T/work/$name" --stop-timeout 5s "$@"
		fi
		spid=${!spid_var}
		for _ in $(seq 300); do
			if "$DOPPEL" status "$name" --json >"$T/ready.json" 2>/dev/null; then
				st=$(json "$T/ready.json" "j['service']['state']")
				[ "$st" = running ] && break
			fi
			kill -0 "$spid" 2>/dev/null || break
			sleep 0.1
		done
		[ "$st" = running ] && break
		kill -0 "$spid" 2>/dev/null && fail "service $name not ready after 30 s"
		wait "$spid" 2>/dev/null
		[ -n "$var" ] && taken "sup_$name" || fail "doppel run $name exited: $(tail -3 "$T/sup_$name.log")"
		log "port $port was taken meanwhile; trying another"
	done
	[ "$st" = running ] || fail "doppel run $name found no free port in 5 tries"
	[ -n "$var" ] && printf -v "$var" '%s' "$port"
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

# cg_mount CONTROLLER : where clones' cgroups of that controller live: the
# cgroup2 mount when its hierarchy has the memory controller (v2), else the
# controller's v1 hierarchy (as cgroup/cgroup.c chooses)
cg_mount() {
	$PY - "$1" <<'PYEOF'
import os, sys
ctrl = sys.argv[1]
v1, v2 = {}, None
for line in open("/proc/self/mountinfo"):
    a, b = line.split(" - ")
    mnt = a.split()[4]
    fstype, _, opts = b.split()[:3]
    if fstype == "cgroup2" and v2 is None:
        v2 = mnt
    elif fstype == "cgroup":
        for o in opts.split(","):
            v1.setdefault(o, mnt)
if v2 and "memory" in open(os.path.join(v2, "cgroup.controllers")).read().split():
    print(v2)
else:
    print(v1.get(ctrl, ""))
PYEOF
}
