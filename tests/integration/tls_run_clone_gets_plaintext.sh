#!/bin/bash
# Promise: under `doppel run`, TLS terminates at the front and a live clone of
# a plaintext service receives the plaintext requests (its own access log shows
# them); `doppel reload NAME` loads new certificates for new handshakes, and a
# key that others may read is refused, the loaded certificate staying.
. "$(dirname "$0")/lib.sh"
need curl; need openssl; need nsenter
mkcert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$T/$1.key" -out "$T/$1.crt" -subj "/CN=localhost" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>"$T/$1.openssl.log" ||
		fail "openssl req: $(tail -2 "$T/$1.openssl.log")"
	chmod 600 "$T/$1.key"
}
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
served_serial() {
	openssl s_client -connect 127.0.0.1:$L -servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -serial | cut -d= -f2
}
mkcert site
cp "$T/site.crt" "$T/ca.crt"
mkdir -p "$T/www"
echo "hello over TLS" >"$T/www/index.txt"
N=tls$$
run_service "$N" L --port 8000 --tls-cert "$T/site.crt" --tls-key "$T/site.key" \
	-- $PY -m http.server 8000 --bind 127.0.0.1 --directory "$T/www"
clone "$N"
for i in $(seq 5); do
	out=$(curl -sS --cacert "$T/ca.crt" "https://localhost:$L/index.txt?n=$i") || fail "curl through the TLS front"
	assert_eq "$out" "hello over TLS" "answer through the TLS front"
done
# The clone is a plain HTTP server: it logs the plaintext requests it got.
wait_for 20 eval '[ "$(grep -c "\"GET /index.txt?n=" "$T/work/$N/clone-1/log")" = 5 ]' ||
	fail "the clone did not get the 5 requests in plaintext: $(tail -5 "$T/work/$N/clone-1/log")"
sup_status "$N" "$T/st.json"
assert_ge "$(json "$T/st.json" "j['proxy']['tls']['handshakes']")" 5 "handshakes in doppel status $N"

# doppel reload: a new certificate for new handshakes.
mkcert next
cat "$T/next.crt" >"$T/site.crt"
cat "$T/next.key" >"$T/site.key"
"$DOPPEL" reload "$N" >"$T/reload.out" 2>&1 || fail "doppel reload: $(cat "$T/reload.out")"
grep -q "certificates reloaded" "$T/reload.out" || fail "doppel reload said: $(cat "$T/reload.out")"
assert_eq "$(served_serial)" "$(serial_of "$T/next.crt")" "certificate served after doppel reload"
# A key others may read: refused, the loaded certificate stays.
chmod 644 "$T/site.key"
"$DOPPEL" reload "$N" >"$T/reload2.out" 2>&1 && fail "doppel reload accepted a key of mode 644"
grep -q "chmod 600" "$T/reload2.out" || fail "no clear message: $(cat "$T/reload2.out")"
assert_eq "$(served_serial)" "$(serial_of "$T/next.crt")" "certificate served after a refused reload"
"$DOPPEL" stop "$N" >/dev/null || fail "stop $N"
log "PASS"
