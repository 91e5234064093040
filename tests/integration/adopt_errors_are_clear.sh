#!/bin/bash
# Promise: `doppel adopt` refuses what it cannot do with a message that says
# why and what to do, before touching the service: no traffic source, both
# sources, a port the process does not listen on, a pid that does not exist,
# an interface that does not exist; the service keeps running.
. "$(dirname "$0")/lib.sh"
need redis-server
start_redis prod P
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
[ -e "$T/run/e$$.sock" ] && fail "an admin socket was left behind"
assert_eq "$(redis-cli -p "$P" ping)" PONG "redis still answers"
log "PASS: every refusal said why"
