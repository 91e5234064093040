#!/bin/bash
# Promise: a real nginx serving N requests under strace demultiplexes into
# exactly N request streams (accept4 ... close of each client socket), each
# holding that request's own read of "GET /pN" and its reply; by connection
# finds the same sockets; the same trace turned into an LTTng-style CTF trace
# and printed by the real babeltrace2 demultiplexes into the same N requests.
. "$(dirname "$0")/lib.sh"
. "$HERE/trace_lib.sh"
need curl
N=20
P=$(free_port)
start_nginx_strace ng "$P" "$T/nginx.strace"
for i in $(seq $N); do
	curl -sf "http://127.0.0.1:$P/p$i.html" -o "$T/got" || fail "curl request $i"
	grep -q "page $i" "$T/got" || fail "nginx answered request $i wrongly"
done
stop_nginx_strace ng

"$DOPPEL" trace demux --by request "$T/nginx.strace" --list >"$T/list" 2>"$T/demux.log" ||
	fail "demux --list failed: $(cat "$T/demux.log")"
cat "$T/list"
assert_eq "$(grep -c ' request ' "$T/list")" "$N" "request streams"

"$DOPPEL" trace demux --by request "$T/nginx.strace" -o "$T/req" 2>>"$T/demux.log" ||
	fail "demux -o failed"
assert_eq "$(ls "$T/req"/request-*.dtt | wc -l)" "$N" "request files"
for i in $(seq $N); do
	f=$(grep -l "GET /p$i.html " "$T/req"/request-*.dtt)
	[ "$(echo "$f" | wc -l)" = 1 ] || fail "GET /p$i.html is in $(echo "$f" | wc -l) request streams"
	grep -q '| accept4(' "$f" || fail "$f: no accept4"
	grep -q '| close(.*TCP' "$f" || fail "$f: no close of the client socket"
	grep -q "openat(.*p$i.html" "$f" || fail "$f: the file served is not in its request"
	grep -q '| writev(' "$f" || fail "$f: no reply"
done
# streams read back: a request file is a trace like any other
"$DOPPEL" trace view --report "$T/req/request-1.dtt" | grep -q ' accept4$' || fail "view of a stream"

"$DOPPEL" trace demux --by connection "$T/nginx.strace" --list >"$T/conns" 2>/dev/null
assert_ge "$(grep -c 'peer=TCP:\[127.0.0.1:'"$P"'->' "$T/conns")" "$N" "client connections"

# babeltrace2 text of the same syscalls (LTTng kernel event layout)
need babeltrace2
$PY "$STRACE2CTF" "$T/nginx.strace" "$T/ctf" nginx || fail "strace2ctf"
babeltrace2 --clock-seconds "$T/ctf" >"$T/bt.txt" || fail "babeltrace2 could not read the CTF trace"
grep -q 'syscall_entry_accept4' "$T/bt.txt" || fail "babeltrace2 printed no accept4"
"$DOPPEL" trace demux --by request "$T/bt.txt" --list >"$T/btlist" 2>/dev/null || fail "demux of babeltrace text"
assert_eq "$(grep -c ' request ' "$T/btlist")" "$N" "request streams from babeltrace2 text"
log "PASS"
