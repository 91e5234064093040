#!/bin/bash
# Promise: `doppel adopt` refuses what it cannot do with a message that says
# why and what to do, before touching the service: no traffic source, both
# sources, a port the process does not listen on, a pid that does not exist,
# an interface that does not exist, a process whose session began outside
# doppel's pid namespace; the service keeps running.
. "$(dirname "$0")/lib.sh"
need redis-server; need unshare
REDIS_WRAP=setsid start_redis prod P # its own session, as under systemd
try() { # EXPECTED_RC PATTERN ARGS...
	local want=$1 pat=$2; shift 2
	"$DOPPEL" adopt "e$$" "$@" --work-dir "$T/work" >"$T/err.out" 2>&1
	local rc=$?
	assert_eq "$rc" "$want" "exit status of doppel adopt $*"
	grep -q -- "$pat" "$T/err.out" || fail "doppel adopt $*: no '$pat' in: $(cat "$T/err.out")"
}
try 2 "give --capture IFACE" --pid "$prod_PID" --port "$P"
try 2 "exclude each other" --pid "$prod_PID" --port "$P" --capture lo --front 127.0.0.1:9
try 2 "does not listen on TCP port 1; check --port" --pid "$prod_PID" --port 1 --capture lo
try 2 "no process 999999999" --pid 999999999 --port "$P" --capture lo
try 1 "cannot capture on nosuchif0: .*ip link" --pid "$prod_PID" --port "$P" --capture nosuchif0
# in a pid namespace of its own this shell's session leader is outside
unshare -p -f --mount-proc bash -c 'sleep 120 & "$0" adopt "o$$" --pid $! --port 1 --capture lo --work-dir "$1/work" >"$1/sid0.out" 2>&1; rc=$?; kill $!; exit $rc' \
	"$DOPPEL" "$T"
assert_eq "$?" 2 "exit status of doppel adopt of a process whose session is outside"
grep -q "session began outside doppel's pid namespace .*start the service with setsid" "$T/sid0.out" ||
	fail "the outside session is not explained: $(cat "$T/sid0.out")"
[ -e "$T/run/e$$.sock" ] && fail "an admin socket was left behind"
assert_eq "$(redis-cli -p "$P" ping)" PONG "redis still answers"
log "PASS: every refusal said why"
