#!/bin/bash
# Promise: the proxy is a proper TCP relay. A client FIN reaches production
# (and the replica) after all data before it, and production's answer still
# flows back; a client reset reaches production as a reset; a production
# reset reaches the client as a reset; no connection is left behind.
. "$(dirname "$0")/lib.sh"
spawn_listening prod P "$PY" "$HERE/tcp_peers.py" serve-eof-reply 0
spawn_listening replica R "$PY" "$HERE/tcp_peers.py" serve-eof-reply 0
start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R

log "half-close: 1 MiB then FIN, the answer comes back after it"
$PY "$HERE/tcp_peers.py" half-close "$L" 1048576 >"$T/c1.log" || fail "half-close: $(cat "$T/c1.log")"
$PY "$HERE/tcp_peers.py" half-close "$L" 10 >"$T/c2.log" || fail "half-close small: $(cat "$T/c2.log")"
seen_fins() {
	grep -q "eof-after 1048576" "$T/prod.log" && grep -q "eof-after 1048576" "$T/replica.log" &&
		grep -q "eof-after 10\$" "$T/replica.log"
}
wait_for 10 seen_fins
grep -q "eof-after 1048576" "$T/prod.log" || fail "production did not see 1 MiB then FIN"
grep -q "eof-after 1048576" "$T/replica.log" || fail "replica did not see 1 MiB then FIN"
grep -q "eof-after 10" "$T/replica.log" || fail "replica did not see the small request then FIN"

log "client reset reaches production as a reset"
$PY "$HERE/tcp_peers.py" reset "$L" || fail "reset client"
wait_for 10 grep -q "^reset after 1000" "$T/prod.log"
grep -q "^reset after 1000" "$T/prod.log" || fail "production did not see the client's reset: $(tail -2 "$T/prod.log")"

status_json 127.0.0.1:$A "$T/status.json"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['diverged_turns']")" 0 "replica answers diverged"
assert_ge "$(json "$T/status.json" "j['replicas'][0]['turns_compared']")" 2 "answers compared"
assert_ge "$(json "$T/status.json" "j['production']['client_resets']")" 1 "client resets counted"

log "production reset reaches the client as a reset"
stop_pid "$prod_PID"
spawn prod2 "$PY" "$HERE/tcp_peers.py" serve-reset "$P"
started prod2 "^port $P" || fail "cannot serve again on production's port $P: $(tail -2 "$T/prod2.log")"
$PY "$HERE/tcp_peers.py" expect-end "$L" 5 >"$T/c3.log" || fail "client hung after production reset"
grep -q "^reset" "$T/c3.log" || fail "client saw '$(cat "$T/c3.log")' instead of a reset"
wait_status "127.0.0.1:$A" "j['connections']['active'] == 0"
status_json 127.0.0.1:$A "$T/status.json"
assert_eq "$(json "$T/status.json" "j['connections']['active']")" 0 "connections left open"
log "PASS"
