#!/bin/bash
# Promise: a clone of an app that writes to redis on each request never
# writes to the real redis: after N requests through the front with a clone
# attached, redis holds N writes, not 2N, and the clone answered exactly as
# production did, from production's recorded redis answers. Both with a
# connection per request (matched in connection order) and with a pool opened
# before the clone (matched by content). With --join-open the pool's
# connection, open at the freeze, continues in the clone itself: the clone
# opens no connection of its own, and its requests on the old one are
# answered in order from where production's end was.
. "$(dirname "$0")/lib.sh"
need redis-server; need curl
$PY -c 'import redis' 2>/dev/null || skip "python3-redis is not installed (deploy/install.sh installs it)"
start_redis upstream UPR
UPL=6390 # inside the service's and the clones' namespaces: no other test there
for mode in per_request pool pool_continued; do
	log "mode: $mode"
	redis-cli -p "$UPR" flushall >/dev/null
	N=app_${mode}_$$
	run_service "$N" L --port 8000 --upstream "127.0.0.1:$UPL=127.0.0.1:$UPR" \
		$([ $mode = pool_continued ] && echo --join-open) -- \
		$PY "$HERE/redis_app.py" 8000 "$UPL" $([ $mode != per_request ] && echo pool)
	assert_eq "$(curl -sf "http://127.0.0.1:$L/hit?id=0")" "hits=1" "first request"
	clone "$N"
	conns0=$(redis-cli -p "$UPR" info stats | awk -F: '/total_connections_received/{print $2+0}')
	for i in $(seq 1 40); do
		curl -sf "http://127.0.0.1:$L/hit?id=$i" >>"$T/answers.$mode" || fail "request $i"
	done
	# The clone has served the 40 too, answered from the recording.
	wait_status "$N" "j['proxy']['replicas'][0]['turns_compared'] >= 40 and j['upstreams'][0]['clones'][0]['requests_answered'] >= 80"
	conns1=$(redis-cli -p "$UPR" info stats | awk -F: '/total_connections_received/{print $2+0}')
	assert_eq "$(redis-cli -p "$UPR" get hits)" 41 "redis hits (production's only)"
	assert_eq "$(redis-cli -p "$UPR" dbsize)" 42 "redis keys"
	# redis saw production's connections (and the info call), never the clone's.
	want=$([ $mode != per_request ] && echo 1 || echo 41)
	assert_eq "$((conns1 - conns0))" "$want" "connections redis received during the load"
	sup_status "$N" "$T/s.json"
	assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['turns_compared']")" 40 "answers compared"
	assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 \
		"the clone's answers differ from production's"
	u="j['upstreams'][0]['clones'][0]"
	assert_eq "$(json "$T/s.json" "$u['requests_answered']")" 80 "requests answered from the recording"
	assert_eq "$(json "$T/s.json" "$u['diverged'] + $u['unanswered']")" 0 "diverged or unanswered"
	assert_gt "$(json "$T/s.json" "$u['bytes_dropped']")" 0 "clone writes dropped"
	if [ $mode = pool ]; then
		assert_ge "$(json "$T/s.json" "$u['matched_by_content']")" 1 "requests matched by content"
	elif [ $mode = pool_continued ]; then
		assert_eq "$(json "$T/s.json" "$u['continued']")" 1 "the pool's connection continued in the clone"
		assert_eq "$(json "$T/s.json" "$u['connections']")" 0 "connections the clone opened itself"
		assert_eq "$(json "$T/s.json" "$u['matched_in_order']")" 80 "requests matched in order on it"
	else
		assert_eq "$(json "$T/s.json" "$u['matched_in_order']")" 80 "requests matched in order"
	fi
	"$DOPPEL" stop "$N" >/dev/null || fail "stop"
done
[ "$mode" = pool_continued ] || fail "the loop did not reach the last mode"
log "PASS"
