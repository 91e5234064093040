#!/bin/bash
# Promise: with --tls-backend doppel speaks TLS to production too, verifying
# its certificate with --tls-ca (by the client's SNI name, else production's
# address), while the replica still gets the plaintext. A production whose
# certificate the CA did not sign is refused and counted, and its client closed.
. "$(dirname "$0")/lib.sh"
need curl
need openssl
mkcert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$T/$1.key" -out "$T/$1.crt" -subj "/CN=$2" -addext "subjectAltName=$3" \
		2>"$T/$1.openssl.log" || fail "openssl req: $(tail -2 "$T/$1.openssl.log")"
	chmod 600 "$T/$1.key"
}
mkcert front localhost "DNS:localhost,IP:127.0.0.1"
mkcert prod localhost "DNS:localhost,IP:127.0.0.1"
spawn_listening prod P $PY -u "$HERE/tls_peers.py" record 0 "$T/prod.bytes" "$T/prod.crt" "$T/prod.key"
spawn_listening replica R $PY -u "$HERE/tls_peers.py" record 0 "$T/replica.bytes"
start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R \
	--tls-cert "$T/front.crt" --tls-key "$T/front.key" --tls-backend --tls-ca "$T/prod.crt"

# With SNI (localhost) and without (an address: production's address is verified).
for url in "https://localhost:$L/sni" "https://127.0.0.1:$L/addr"; do
	out=$(curl -sS --max-time 30 --cacert "$T/front.crt" "$url") || fail "curl $url"
	assert_eq "$out" "path=/${url##*/} body=0" "answer from production over TLS"
done
# per connection: the replica may run two connections in another order
same_bytes() { $PY "$HERE/tls_peers.py" same "$T/prod.bytes" "$T/replica.bytes" >"$T/same.out"; }
wait_for 20 same_bytes || fail "the replica's plaintext differs from what production decrypted: $(cat "$T/same.out")"
grep -q "^GET /addr" "$T/replica.bytes" || fail "the replica did not get plaintext"
wait_status 127.0.0.1:$A "j['tls']['backend_handshakes'] == 2" || fail "production handshakes not counted"

# Plain clients, TLS to production (--tls-backend without --tls-cert).
start_proxy proxy3 L3 A3 --backend 127.0.0.1:$P --tls-backend --tls-ca "$T/prod.crt"
out=$(curl -sS --max-time 30 "http://127.0.0.1:$L3/plain") || fail "curl in plain HTTP to a TLS production"
assert_eq "$out" "path=/plain body=0" "answer from a TLS production to a plain client"

# A CA that did not sign production's certificate: refused, counted, client closed.
start_proxy proxy2 L2 A2 --backend 127.0.0.1:$P --tls-cert "$T/front.crt" --tls-key "$T/front.key" \
	--tls-backend --tls-ca "$T/front.crt"
if curl -sS --max-time 30 --cacert "$T/front.crt" "https://localhost:$L2/bad" >"$T/bad.out" 2>&1; then
	fail "a production with an unverified certificate answered: $(cat "$T/bad.out")"
fi
wait_status 127.0.0.1:$A2 "j['tls']['backend_failures'] == 1" || fail "production handshake failure not counted"
grep -q "TLS handshake with production failed.*certificate" "$T/proxy2.log" ||
	fail "no clear log line: $(tail -3 "$T/proxy2.log")"
! grep -q "GET /bad" "$T/prod.bytes" || fail "the request reached an unverified production"
log "PASS"
