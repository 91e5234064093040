#!/bin/bash
# Promise: no fd or memory leak over many connections, with a live replica
# and with a refusing one: fd count returns to its baseline, RSS stays flat.
. "$(dirname "$0")/lib.sh"
# Under AddressSanitizer freed memory sits in a quarantine on purpose; without
# one, RSS measures what the proxy keeps, as in a normal build.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
spawn_listening prod P "$PY" "$HERE/tcp_peers.py" serve-echo 0
spawn_listening replica R "$PY" "$HERE/tcp_peers.py" serve-echo 0
refused_port DEAD
start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R --replica 127.0.0.1:$DEAD
rss() { awk '/VmRSS/{print $2}' /proc/$proxy_PID/status; }
fds() { ls /proc/$proxy_PID/fd | wc -l; }
# Every connection closed, and no admin connection (our own status requests) open.
admin_idle() { [ -z "$(ss -Htn state established state close-wait "( sport = :$A )")" ]; }
quiet() {
	wait_status "127.0.0.1:$A" "j['connections']['active'] == 0 and j['connections']['allocated'] == 0 and j['replicas'][0]['connections'] == 0" 30
	wait_for 10 admin_idle
}
# Each connection leaves sockets in TIME_WAIT for 60 s (client, production and
# replica side): 7,000 here keeps two back-to-back runs of the suite well inside
# the 28,000 local ports of one destination. bench/ churns through more.
$PY "$HERE/tcp_peers.py" many "$L" 1000 >/dev/null || fail "warm-up connections"
quiet
fd0=$(fds); rss0=$(rss)
for round in 1 2 3; do
	$PY "$HERE/tcp_peers.py" many "$L" 2000 >"$T/many.log" || fail "round $round: $(cat "$T/many.log")"
done
quiet
fd1=$(fds); rss1=$(rss)
log "fds $fd0 -> $fd1, RSS ${rss0} KiB -> ${rss1} KiB over 6000 connections"
assert_eq "$fd1" "$fd0" "open fds after 6000 connections"
# A leaked connection costs well over 1 KiB (connection, divergence state, legs):
# 6000 of them would pass 6 MiB. Below that, the chunk cache (at most 1 MiB of
# free chunks kept for reuse) and the allocator's own caches.
[ "$rss1" -lt $((rss0 + 3072)) ] || fail "RSS grew from $rss0 to $rss1 KiB"
status_json 127.0.0.1:$A "$T/status.json"
assert_eq "$(json "$T/status.json" "j['connections']['active']")" 0 "active connections"
assert_eq "$(json "$T/status.json" "j['connections']['allocated']")" 0 "connection objects not freed"
assert_ge "$(json "$T/status.json" "j['connections']['accepted']")" 7000 "accepted connections"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['connections']")" 0 "replica connections left open"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['diverged_turns']")" 0 "diverged turns"
assert_eq "$(json "$T/status.json" "j['memory']['chunks_live'] == j['threads']")" True \
	"chunks still referenced (each thread's read cursor only): $(json "$T/status.json" "j['memory']['chunks_live']")"
log "PASS"
