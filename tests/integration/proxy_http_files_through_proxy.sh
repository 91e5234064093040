#!/bin/bash
# Promise: an HTTP service (python3 -m http.server) answers through the proxy
# exactly as it does directly, with curl as the client, for small and large
# files; the replica receives every request (its own access log shows them).
. "$(dirname "$0")/lib.sh"
need curl
P=$(free_port); R=$(free_port); L=$(free_port); A=$(free_port)
mkdir -p "$T/www"
echo "hello from doppel" >"$T/www/small.txt"
head -c 3000000 /dev/urandom >"$T/www/big.bin"
spawn web_prod $PY -m http.server "$P" --bind 127.0.0.1 --directory "$T/www"
spawn web_replica $PY -m http.server "$R" --bind 127.0.0.1 --directory "$T/www"
wait_port "$P"; wait_port "$R"
spawn proxy "$DOPPEL" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:$P --replica 127.0.0.1:$R --admin 127.0.0.1:$A
wait_port "$L"
for i in $(seq 20); do
	curl -sf "http://127.0.0.1:$L/small.txt" -o "$T/got_small.txt" || fail "curl small.txt through the proxy"
	cmp -s "$T/got_small.txt" "$T/www/small.txt" || fail "small.txt differs through the proxy"
done
curl -sf "http://127.0.0.1:$L/big.bin" -o "$T/got_big.bin" || fail "curl big.bin through the proxy"
cmp -s "$T/got_big.bin" "$T/www/big.bin" || fail "big.bin differs through the proxy"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$L/missing")
assert_eq "$code" 404 "status of a missing file"
sleep 1
n=$(grep -c '"GET /small.txt' "$T/web_replica.log")
assert_eq "$n" 20 "requests seen by the replica"
grep -q '"GET /big.bin' "$T/web_replica.log" || fail "replica never got the big.bin request"
status_json 127.0.0.1:$A "$T/status.json"
assert_ge "$(json "$T/status.json" "j['replicas'][0]['turns_compared']")" 22 "HTTP turns compared"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['bytes_dropped']")" 0 "bytes dropped"
log "PASS"
