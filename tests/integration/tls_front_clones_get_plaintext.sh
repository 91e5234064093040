#!/bin/bash
# Promise: doppel terminates TLS at its front (curl --cacert, openssl s_client
# with TLS 1.2 and 1.3), production answers the client through it, and the
# replica receives exactly the plaintext production received (byte for byte,
# and no diverged turn). The certificate is chosen by SNI; an unknown name gets
# the default certificate and is counted. SIGHUP loads new certificates for new
# handshakes while an open connection carries on.
. "$(dirname "$0")/lib.sh"
need curl
need openssl
# mkcert NAME CN SAN : a self-signed P-256 certificate and its key in $T
mkcert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$T/$1.key" -out "$T/$1.crt" -subj "/CN=$2" -addext "subjectAltName=$3" \
		2>"$T/$1.openssl.log" || fail "openssl req: $(tail -2 "$T/$1.openssl.log")"
	chmod 600 "$T/$1.key"
}
mkcert main localhost "DNS:localhost,IP:127.0.0.1"
mkcert other other.test "DNS:other.test,DNS:*.other.test"
spawn_listening prod P $PY -u "$HERE/tls_peers.py" record 0 "$T/prod.bytes"
spawn_listening replica R $PY -u "$HERE/tls_peers.py" record 0 "$T/replica.bytes"
start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R --protocol http \
	--tls-cert "$T/main.crt" --tls-key "$T/main.key" \
	--tls-cert "$T/other.crt" --tls-key "$T/other.key"

# curl over HTTPS: GETs on one keep-alive connection, then a POST with a body.
out=$(curl -sS --cacert "$T/main.crt" "https://localhost:$L/a" "https://localhost:$L/b") ||
	fail "curl through doppel's TLS front"
assert_eq "$out" "$(printf 'path=/a body=0\npath=/b body=0')" "answers to curl"
head -c 100000 /dev/urandom | base64 -w0 >"$T/post.txt"
out=$(curl -sS --cacert "$T/main.crt" --data-binary @"$T/post.txt" "https://localhost:$L/post") ||
	fail "curl POST through doppel's TLS front"
assert_eq "$out" "path=/post body=$(stat -c %s "$T/post.txt")" "answer to the POST"

# openssl s_client with each protocol version, verifying the certificate.
for v in 1_2 1_3; do
	printf 'GET /s%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' $v |
		openssl s_client -tls$v -connect 127.0.0.1:$L -servername localhost \
			-CAfile "$T/main.crt" -verify_return_error -ign_eof >"$T/s_client$v.out" 2>&1 ||
		fail "openssl s_client -tls$v: $(tail -3 "$T/s_client$v.out")"
	grep -q "path=/s$v body=0" "$T/s_client$v.out" || fail "s_client -tls$v got no answer"
	want=TLSv1.2; [ $v = 1_3 ] && want=TLSv1.3
	grep -q "Protocol *: $want" "$T/s_client$v.out" || grep -q "New, $want" "$T/s_client$v.out" ||
		fail "s_client -tls$v did not negotiate $want"
done

# ALPN: http/1.1 is chosen among what a client offers (the default --alpn).
openssl s_client -alpn h2,http/1.1 -connect 127.0.0.1:$L -servername localhost </dev/null \
	>"$T/alpn.out" 2>&1
grep -q "ALPN protocol: http/1.1" "$T/alpn.out" || fail "ALPN did not select http/1.1: $(grep ALPN "$T/alpn.out")"

# SNI: other.test's certificate for its names, the default one for an unknown name.
subject() {
	openssl s_client -connect 127.0.0.1:$L -servername "$1" </dev/null 2>/dev/null |
		openssl x509 -noout -subject
}
assert_eq "$(subject www.other.test)" "subject=CN = other.test" "certificate for www.other.test"
assert_eq "$(subject unknown.example)" "subject=CN = localhost" "certificate for an unknown name"
wait_status 127.0.0.1:$A "j['tls']['sni_unknown'] == 1" || fail "unknown SNI not counted"

# The replica got exactly what production got, and answered the same.
# per connection: the replica may run two connections in another order
same_bytes() { $PY "$HERE/tls_peers.py" same "$T/prod.bytes" "$T/replica.bytes" >"$T/same.out"; }
wait_for 20 same_bytes || fail "the replica's plaintext differs from production's: $(cat "$T/same.out")"
grep -q "^POST /post" "$T/replica.bytes" || fail "the replica never got the POST in plaintext"
wait_status 127.0.0.1:$A "j['replicas'][0]['turns_compared'] >= 5" ||
	fail "turns not compared: $(cat "$T/wait_status.json")"
status_json 127.0.0.1:$A "$T/status.json"
assert_eq "$(json "$T/status.json" "j['replicas'][0]['diverged_turns']")" 0 "diverged turns"
assert_ge "$(json "$T/status.json" "j['tls']['handshakes']")" 6 "TLS handshakes counted"
"$DOPPEL" status --admin 127.0.0.1:$A >"$T/status.txt" || fail "doppel status --admin"
grep -q "^tls: .* handshakes" "$T/status.txt" || fail "doppel status shows no tls line"
curl -sS "http://127.0.0.1:$A/metrics" >"$T/metrics.txt" || fail "GET /metrics"
grep -q "^doppel_tls_handshakes_total" "$T/metrics.txt" || fail "no TLS metric"

# SIGHUP: new certificate for new handshakes; an open connection carries on.
spawn ka $PY -u "$HERE/tls_peers.py" keepalive $L "$T/main.crt" "$T/reloaded"
started ka "first ok" || fail "keep-alive client: $(cat "$T/ka.log")"
old_serial=$(openssl x509 -in "$T/main.crt" -noout -serial | cut -d= -f2)
mkcert new localhost "DNS:localhost,IP:127.0.0.1"
cat "$T/new.crt" >"$T/main.crt"
cat "$T/new.key" >"$T/main.key"
kill -HUP "$proxy_PID"
wait_status 127.0.0.1:$A "j['tls']['reloads'] == 1" || fail "SIGHUP did not reload: $(tail -3 "$T/proxy.log")"
new_serial=$(openssl s_client -connect 127.0.0.1:$L -servername localhost </dev/null 2>/dev/null |
	openssl x509 -noout -serial | cut -d= -f2)
assert_eq "$new_serial" "$(openssl x509 -in "$T/new.crt" -noout -serial | cut -d= -f2)" "certificate after SIGHUP"
[ "$new_serial" != "$old_serial" ] || fail "the certificate did not change"
touch "$T/reloaded"
wait_for 20 grep -q "second ok" "$T/ka.log" || fail "connection opened before SIGHUP broke: $(cat "$T/ka.log")"
grep -q "certificates reloaded" "$T/proxy.log" || fail "reload not logged"
! grep -q "PRIVATE KEY" "$T/proxy.log" || fail "a key was logged"
log "PASS"
