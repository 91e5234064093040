#!/bin/bash
# Promise: an upstream that resets mid-stream resets the clone's connection
# too (the clone behaves as production did); a clone that connects more times
# than production did is answered by nobody: its connection is reset after
# --upstream-wait and counted, never left hanging, and never reaches the
# upstream.
. "$(dirname "$0")/lib.sh"
need curl; need nsenter
UPL=6390 # inside the service's and the clones' namespaces: no other test there
spawn_listening upstream UPR $PY "$HERE/tcp_peers.py" serve-reset 0
N=rst$$
run_service "$N" L --port 8000 --upstream "127.0.0.1:$UPL=127.0.0.1:$UPR" \
	--upstream-wait 1s -- $PY "$HERE/upstream_app.py" 8000 "$UPL"
clone "$N"
for i in 1 2 3; do
	assert_eq "$(curl -sf "http://127.0.0.1:$L/ask?msg=m$i")" "got=0 end=reset" "production's answer $i"
done
wait_status "$N" "j['proxy']['replicas'][0]['turns_compared'] >= 3"
# (requests carry "mN\n")
assert_eq "$(grep -c 'got 3 then reset' "$T/upstream.log")" 3 "requests the upstream saw"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['turns_compared']")" 3 "answers compared"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 \
	"the clone saw the reset as production did"

log "a connection production never made"
C=$(clone_pid "$N" 1)
t0=$(date +%s.%N)
out=$(nsenter -t "$C" -n $PY "$HERE/tcp_peers.py" expect-end "$UPL" 10) || fail "the extra connection hung: $out"
case $out in reset*) ;; *) fail "the extra connection ended with '$out', not a reset" ;; esac
sup_status "$N" "$T/s.json"
assert_ge "$(json "$T/s.json" "j['upstreams'][0]['clones'][0]['unanswered']")" 1 "unanswered requests"
assert_eq "$(grep -c 'then reset' "$T/upstream.log")" 3 "connections the upstream saw (the extra one is not among them)"
log "PASS: $out"
