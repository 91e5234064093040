#!/bin/bash
# Promise: clones of python3 -m http.server and of nginx serve the same files
# as production; requests through the front reach the clones (their own
# access logs show them), and a clone answers directly with identical bytes.
. "$(dirname "$0")/lib.sh"
need nginx; need curl; need nsenter
mkdir -p "$T/www"
echo "hello from production" >"$T/www/index.txt"
head -c 200000 /dev/urandom >"$T/www/blob.bin"

log "python3 -m http.server"
N=py$$
run_service "$N" L --port 8000 -- $PY -m http.server 8000 --bind 127.0.0.1 --directory "$T/www"
clone "$N"
C=$(clone_pid "$N" 1)
for i in $(seq 10); do
	curl -sf "http://127.0.0.1:$L/index.txt" -o "$T/got.txt" || fail "curl through the front"
	cmp -s "$T/got.txt" "$T/www/index.txt" || fail "index.txt differs through the front"
done
in_clone "$C" curl -sf http://127.0.0.1:8000/blob.bin -o "$T/clone_blob.bin" || fail "curl in the clone"
cmp -s "$T/clone_blob.bin" "$T/www/blob.bin" || fail "the clone serves a different blob.bin"
wait_for 10 eval '[ "$(grep -c "\"GET /index.txt" "$T/work/$N/clone-1/log")" = 10 ]'
n=$(grep -c '"GET /index.txt' "$T/work/$N/clone-1/log")
assert_eq "$n" 10 "requests in the clone's own log"
"$DOPPEL" stop "$N" >/dev/null || fail "stop $N"

log "nginx"
N=ngx$$
mkdir -p "$T/nginx"
nginx_conf "$T/nginx.conf" "$T/nginx" 8080 "$T/www"
run_service "$N" L --port 8080 --state "$T/nginx" -- nginx -c "$T/nginx.conf"
curl -sf "http://127.0.0.1:$L/index.txt" >/dev/null || fail "nginx through the front"
clone "$N"
C=$(clone_pid "$N" 1)
for i in $(seq 20); do
	curl -sf "http://127.0.0.1:$L/blob.bin" -o "$T/got.bin" || fail "curl nginx through the front"
done
cmp -s "$T/got.bin" "$T/www/blob.bin" || fail "blob.bin differs through the front"
in_clone "$C" curl -sf http://127.0.0.1:8080/index.txt -o "$T/clone_index.txt" || fail "curl in the nginx clone"
cmp -s "$T/clone_index.txt" "$T/www/index.txt" || fail "the nginx clone serves a different index.txt"
both_logged() {
	[ "$(grep -c '"GET /blob.bin' "$T/nginx/access.log")" = 20 ] &&
		[ "$(grep -c '"GET /blob.bin' "$T/work/$N/clone-1/state-0/access.log")" = 20 ]
}
wait_for 10 both_logged
prod_n=$(grep -c '"GET /blob.bin' "$T/nginx/access.log")
clone_n=$(grep -c '"GET /blob.bin' "$T/work/$N/clone-1/state-0/access.log")
assert_eq "$prod_n" 20 "requests in production's access log"
assert_eq "$clone_n" 20 "requests in the clone's own access log (its copy of the state dir)"
grep -q '"GET /index.txt' "$T/nginx/access.log" || fail "production's log lost its earlier request"
log "PASS"
