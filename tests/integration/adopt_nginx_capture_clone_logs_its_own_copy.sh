#!/bin/bash
# Promise: an nginx (master and worker) started by a plain command can be
# adopted with --capture lo and cloned, with the clone limits given to adopt: the clone serves the same file, the
# requests clients send straight to production are replayed to the clone
# (they show up in the clone's private copy of the access log, never twice in
# production's), and production runs on with the same pid once the supervisor
# stops.
. "$(dirname "$0")/lib.sh"
need nginx; need curl; need nsenter
N=ng$$
mkdir -p "$T/nginx" "$T/html"
echo "adopted-nginx-$$" >"$T/html/index.html"
for _ in 1 2 3 4 5; do
	P=$(free_port)
	cat >"$T/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 64; }
http {
	access_log $T/nginx/access.log;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	server { listen 127.0.0.1:$P; root $T/html; }
}
CONF
	spawn prod setsid nginx -c "$T/nginx.conf" # its own session, as under systemd
	wait_for 10 curl -sf "http://127.0.0.1:$P/" -o /dev/null && break
	kill -0 "$prod_PID" 2>/dev/null && fail "nginx does not answer on $P"
	log "port $P was taken meanwhile; trying another"
done
PROD=$prod_PID

spawn sup "$DOPPEL" adopt "$N" --pid "$PROD" --port "$P" --capture lo --work-dir "$T/work" \
	--clone-memory 1G --clone-cpu-weight 20 --clone-pids 300
started sup "ready: service $N" || fail "doppel adopt failed: $(tail -3 "$T/sup.log")"
clone "$N"
C=$(clone_pid "$N" 1)
sup_status "$N" "$T/s1.json"
assert_eq "$(json "$T/s1.json" "j['clones'][0]['limits']['memory']")" $((1 << 30)) "the adopt's --clone-memory"
assert_eq "$(json "$T/s1.json" "j['clones'][0]['limits']['cpu_weight']")" 20 "the adopt's --clone-cpu-weight"
assert_eq "$(json "$T/s1.json" "j['clones'][0]['limits']['pids']")" 300 "the adopt's --clone-pids"
assert_eq "$(in_clone "$C" curl -s "http://127.0.0.1:$P/")" "adopted-nginx-$$" "the clone's page"

log "requests sent straight to production reach the clone"
for i in $(seq 20); do
	assert_eq "$(curl -s "http://127.0.0.1:$P/?direct=$i")" "adopted-nginx-$$" "production's page"
done
copy=""
wait_for 20 eval 'copy=$(grep -l "direct=20 " "$T/work/clone-1/files/"* 2>/dev/null | head -1); [ -n "$copy" ] &&
	[ "$(grep -c "direct=" "$copy")" -eq 20 ]' || fail "the clone did not log the 20 direct requests"
assert_eq "$(grep -c "direct=" "$T/nginx/access.log")" 20 "production logged each request once"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "j['capture']['gaps']")" 0 "connections with gaps"
assert_eq "$(json "$T/s.json" "j['capture']['kernel_drops']")" 0 "kernel drops"

stop_pid "$sup_PID" || fail "the supervisor did not stop cleanly: $(tail -3 "$T/sup.log")"
kill -0 "$C" 2>/dev/null && fail "clone $C still runs after the supervisor stopped"
kill -0 "$PROD" || fail "production's nginx is gone"
assert_eq "$(curl -s "http://127.0.0.1:$P/")" "adopted-nginx-$$" "production serves after the supervisor stopped"
log "PASS: nginx adopted, clone fed by capture, production untouched"
