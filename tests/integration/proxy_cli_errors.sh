#!/bin/bash
# Promise: bad input gets a clear message and exit status 2; SIGTERM stops the
# proxy cleanly with status 0; every command has --help.
. "$(dirname "$0")/lib.sh"
expect_usage() {
	local want=$1; shift
	"$DOPPEL" "$@" >"$T/out" 2>&1
	local rc=$?
	[ $rc -eq 2 ] || fail "doppel $*: exit $rc, expected 2 ($(cat "$T/out"))"
	grep -q -- "$want" "$T/out" || fail "doppel $*: message lacks '$want': $(cat "$T/out")"
}
L=$(free_port)
expect_usage "missing port" proxy --listen 127.0.0.1 --backend 127.0.0.1:1
expect_usage "1 to 65535" proxy --listen 127.0.0.1:99999 --backend 127.0.0.1:1
expect_usage "not a size" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1 --buffer 4Q
expect_usage "not a size" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1 --buffer 0
expect_usage "--backend is required" proxy --listen 127.0.0.1:$L
expect_usage "a number from 1 to" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1 --max-legs 0
expect_usage "a number from 1 to" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1 --max-replica-legs lots
expect_usage "unknown or incomplete option" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1 --bogus
expect_usage "no local interface" proxy --listen 192.0.2.1:$L --backend 127.0.0.1:1
expect_usage "no command" frobnicate
expect_usage "a number from 1 to 64" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1 --threads 0
expect_usage "give --threads 1 with it" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1 --threads 2 --join-open
DOPPEL_THREADS=many expect_usage "DOPPEL_THREADS='many' is not a number of threads" \
	proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1
# A port in use.
spawn_listening holder L "$PY" -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); print('port', s.getsockname()[1], flush=True); time.sleep(60)"
expect_usage "already in use" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:1
L2=$(free_port)
expect_usage "already in use" proxy --listen 127.0.0.1:$L2 --backend 127.0.0.1:1 --admin 127.0.0.1:$L
# A port another process holds with SO_REUSEPORT: two event loops would bind it
# beside that process and share its clients; doppel refuses it first.
spawn_listening rpholder RL "$PY" -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1); s.bind(('127.0.0.1',0)); s.listen(); print('port', s.getsockname()[1], flush=True); time.sleep(60)"
expect_usage "already in use" proxy --listen 127.0.0.1:$RL --backend 127.0.0.1:1 --threads 2
# Every command answers --help with its usage.
for cmd in $("$DOPPEL" help | awk '/^commands:/{f=1;next} f && !NF {exit} f {print $1}'); do
	case $cmd in help|version) continue ;; esac
	"$DOPPEL" "$cmd" --help | grep -q "^usage: doppel $cmd" || fail "doppel $cmd --help"
	"$DOPPEL" help "$cmd" | grep -q "^usage: doppel $cmd" || fail "doppel help $cmd"
done
"$DOPPEL" help --man | grep -q '^\.TH DOPPEL 1' || fail "man page"
# SIGTERM: clean exit 0.
start_proxy proxy L2 A --backend 127.0.0.1:1
stop_pid "$proxy_PID"; rc=$?
assert_eq "$rc" 0 "exit status after SIGTERM"
grep -q "received SIGTERM" "$T/proxy.log" || fail "no shutdown log line"
log "PASS"
