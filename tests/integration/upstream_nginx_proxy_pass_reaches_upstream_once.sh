#!/bin/bash
# Promise: nginx as the service, proxy_pass to an upstream web server through
# --upstream: after N requests through the front with a clone attached, the
# upstream's access log shows N requests (not 2N) and the clone's answers are
# production's, byte for byte.
. "$(dirname "$0")/lib.sh"
need nginx; need curl
UPL=6390 # inside the service's and the clones' namespaces: no other test there
mkdir -p "$T/www" "$T/ng"
for i in $(seq 1 5); do head -c $((i * 3000)) /dev/urandom | base64 >"$T/www/f$i.txt"; done
spawn_listening upstream UPR $PY -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www"
cat >"$T/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $T/ng/nginx.pid;
error_log $T/ng/error.log;
events { worker_connections 64; }
http {
	access_log $T/ng/access.log;
	client_body_temp_path $T/ng/body;
	proxy_temp_path $T/ng/proxy;
	fastcgi_temp_path $T/ng/fastcgi;
	uwsgi_temp_path $T/ng/uwsgi;
	scgi_temp_path $T/ng/scgi;
	server {
		listen 127.0.0.1:8080;
		location / {
			proxy_pass http://127.0.0.1:$UPL;
			proxy_pass_header Date;
			proxy_pass_header Server;
		}
	}
}
CONF
N=ngup$$
run_service "$N" L --port 8080 --state "$T/ng" --upstream "127.0.0.1:$UPL=127.0.0.1:$UPR" -- \
	nginx -c "$T/nginx.conf"
curl -sf "http://127.0.0.1:$L/f1.txt" -o /dev/null || fail "nginx through the front"
clone "$N"
before=$(grep -c '"GET /f' "$T/upstream.log")
for i in $(seq 1 30); do
	f=f$(( (i % 5) + 1 )).txt
	curl -sf "http://127.0.0.1:$L/$f" -o "$T/got" || fail "request $i"
	cmp -s "$T/got" "$T/www/$f" || fail "$f differs through the front"
done
# The clone has served the 30 too (answered from the recording), so any request of
# its own to the upstream would be in the upstream's log by now.
wait_status "$N" "j['proxy']['replicas'][0]['turns_compared'] >= 30 and j['upstreams'][0]['clones'][0]['requests_answered'] >= 30"
clone_logged() {
	[ "$(grep -c '"GET /f' "$T/work/$N/clone-1/state-0/access.log")" = "$(grep -c '"GET /f' "$T/ng/access.log")" ]
}
wait_for 10 clone_logged
after=$(grep -c '"GET /f' "$T/upstream.log")
assert_eq "$((after - before))" 30 "requests the upstream received"
C=$(clone_pid "$N" 1)
# The clone's access log is its copy of production's: the request made before the
# clone is in both; the 30 after it were served by each.
assert_eq "$(grep -c '"GET /f' "$T/work/$N/clone-1/state-0/access.log")" "$(grep -c '"GET /f' "$T/ng/access.log")" \
	"requests the clone's nginx served (same as production's)"
assert_eq "$(grep -c '"GET /f' "$T/ng/access.log")" 31 "requests production's nginx served"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['turns_compared']")" 30 "answers compared"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 "diverged answers"
u="j['upstreams'][0]['clones'][0]"
assert_eq "$(json "$T/s.json" "$u['requests_answered']")" 30 "upstream requests answered from the recording"
assert_eq "$(json "$T/s.json" "$u['unanswered']")" 0 "unanswered"
log "PASS: upstream saw $((after - before)) requests for 30 through the front, the clone got identical answers"
