#!/bin/bash
# Promise: when production refuses connections, clients see their connection
# closed promptly (not hung), the failure is counted, and the proxy recovers
# when production comes back.
. "$(dirname "$0")/lib.sh"
P=$(free_port)
start_proxy proxy L A --backend 127.0.0.1:$P
for i in 1 2 3; do
	$PY "$HERE/tcp_peers.py" expect-end "$L" 2 >"$T/c$i.log" || fail "client not closed promptly: $(cat "$T/c$i.log")"
done
status_json 127.0.0.1:$A "$T/status.json"
assert_ge "$(json "$T/status.json" "j['production']['connect_failures']")" 3 "production connect failures"
spawn prod "$PY" "$HERE/tcp_peers.py" serve-echo "$P"
started prod "^port $P" || fail "cannot serve on production's port $P: $(tail -2 "$T/prod.log")"
$PY "$HERE/tcp_peers.py" many "$L" 5 >"$T/after.log" || fail "no service after production came back"
log "PASS: $(cat "$T/c1.log")"
