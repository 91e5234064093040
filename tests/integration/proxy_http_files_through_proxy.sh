#!/bin/bash
# Promise: an HTTP service (python3 -m http.server) answers through the proxy
# exactly as it does directly, with curl as the client, for small and large
# files; the replica receives every request (its own access log shows them).
. "$(dirname "$0")/lib.sh"
need curl
mkdir -p "$T/www"
echo "hello from doppel" >"$T/www/small.txt"
head -c 3000000 /dev/urandom >"$T/www/big.bin"
spawn_listening web_prod P $PY -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www"
spawn_listening web_replica R $PY -u -m http.server 0 --bind 127.0.0.1 --directory "$T/www"
start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R
for i in $(seq 20); do
	curl -sf "http://127.0.0.1:$L/small.txt" -o "$T/got_small.txt" || fail "curl small.txt through the proxy"
	cmp -s "$T/got_small.txt" "$T/www/small.txt" || fail "small.txt differs through the proxy"
done
curl -sf "http://127.0.0.1:$L/big.bin" -o "$T/got_big.bin" || fail "curl big.bin through the proxy"
cmp -s "$T/got_big.bin" "$T/www/big.bin" || fail "big.bin differs through the proxy"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$L/missing")
assert_eq "$code" 404 "status of a missing file"
replica_saw_all() {
	[ "$(grep -c '"GET /small.txt' "$T/web_replica.log")" = 20 ] && grep -q '"GET /big.bin' "$T/web_replica.log"
}
wait_for 10 replica_saw_all
wait_status "127.0.0.1:$A" "j['replicas'][0]['turns_compared'] >= 22"
n=$(grep -c '"GET /small.txt' "$T/web_replica.log")
assert_eq "$n" 20 "requests seen by the replica"
grep -q '"GET /big.bin' "$T/web_replica.log" || fail "replica never got the big.bin request"
status_json 127.0.0.1:$A "$T/status.json"
assert_ge "$(json "$T/status.json" "j['replicas'][0]['turns_compared']")" 22 "HTTP turns compared"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['bytes_dropped']")" 0 "bytes dropped"
log "PASS"
