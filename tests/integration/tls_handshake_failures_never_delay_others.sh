#!/bin/bash
# Promise: a bad or slow TLS client never delays anyone else. Garbage instead
# of a ClientHello is counted as "not TLS", a client with no protocol version or
# cipher in common as such; a client that stops mid-handshake
# does not hold up another client's handshake and is closed and counted once
# the handshake timeout (1 s here) passes; 1,000 handshakes at once all
# succeed. A key file that group or others may read is refused with the fix.
. "$(dirname "$0")/lib.sh"
need curl
need openssl
# 1,000 handshakes at once need about 3 descriptors each in doppel (client,
# production, replica): raise the soft limit, and use fewer where the hard
# limit is low.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NCONC=$(( $(ulimit -n) / 4 - 50 ))
[ "$NCONC" -gt 1000 ] && NCONC=1000
[ "$NCONC" -ge 200 ] || skip "the descriptor limit ($(ulimit -n)) is too low for concurrent handshakes"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-keyout "$T/tls.key" -out "$T/tls.crt" -subj "/CN=localhost" \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>"$T/openssl.log" ||
	fail "openssl req: $(tail -2 "$T/openssl.log")"
chmod 600 "$T/tls.key"

# A key readable by others is refused before anything starts.
cp "$T/tls.key" "$T/open.key"
chmod 644 "$T/open.key"
"$DOPPEL" proxy --listen 127.0.0.1:1 --backend 127.0.0.1:1 --tls-cert "$T/tls.crt" \
	--tls-key "$T/open.key" >"$T/refused.out" 2>&1
assert_eq "$?" 2 "exit status with a key of mode 644"
grep -q "readable or writable by group or others (mode 0644).*chmod 600 $T/open.key" "$T/refused.out" ||
	fail "no clear message for a key of mode 644: $(cat "$T/refused.out")"
! grep -q "PRIVATE KEY" "$T/refused.out" || fail "the key was printed"
"$DOPPEL" run tlsrefused --listen 127.0.0.1:1 --port 1 --tls-cert "$T/tls.crt" \
	--tls-key "$T/open.key" -- true >"$T/run-refused.out" 2>&1
assert_eq "$?" 2 "doppel run's exit status with a key of mode 644"
grep -q "chmod 600 $T/open.key" "$T/run-refused.out" ||
	fail "doppel run: no clear message for a key of mode 644: $(cat "$T/run-refused.out")"

spawn_listening prod P $PY -u "$HERE/tls_peers.py" record 0 "$T/prod.bytes"
spawn_listening replica R $PY -u "$HERE/tls_peers.py" record 0 "$T/replica.bytes"
start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R \
	--tls-cert "$T/tls.crt" --tls-key "$T/tls.key" --tls-handshake-timeout 1s
get() { curl -sS --max-time 30 --cacert "$T/tls.crt" "https://localhost:$L/$1"; }

# Garbage: counted, and the next client is served.
$PY "$HERE/tls_peers.py" garbage $L >"$T/garbage.out" 2>&1 || fail "garbage client: $(cat "$T/garbage.out")"
wait_status 127.0.0.1:$A "j['tls']['failed_not_tls'] == 1" || fail "garbage not counted as not TLS"
assert_eq "$(get after-garbage)" "path=/after-garbage body=0" "answer after garbage"

# No protocol version in common (TLS 1.1), no cipher in common (an RSA suite
# against an ECDSA certificate): refused, counted as such.
openssl s_client -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' -connect 127.0.0.1:$L </dev/null \
	>"$T/tls11.out" 2>&1 && fail "a TLS 1.1 client was accepted"
openssl s_client -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -connect 127.0.0.1:$L </dev/null \
	>"$T/rsa.out" 2>&1 && fail "a client with no cipher in common was accepted"
wait_status 127.0.0.1:$A "j['tls']['failed_no_shared'] == 2" ||
	fail "no shared protocol/cipher not counted: $(cat "$T/wait_status.json")"

# A stalled handshake: another client completes while it is stalled, then it
# is closed and counted as a timeout.
spawn stall $PY -u "$HERE/tls_peers.py" stall $L
started stall "stalled" || fail "stall client: $(cat "$T/stall.log")"
assert_eq "$(get while-stalled)" "path=/while-stalled body=0" "answer while another handshake stalls"
grep -q closed "$T/stall.log" && log "note: the stalled client was already closed (a slow machine)"
wait_for 30 grep -q closed "$T/stall.log" || fail "the stalled client was never closed"
wait_status 127.0.0.1:$A "j['tls']['failed_timeout'] == 1" || fail "stalled handshake not counted as a timeout"

# 1,000 handshakes at once (each one connects production and the replica too),
# on a second proxy with a timeout that a loaded machine meets: the client
# (python) spends seconds of CPU on 1,000 handshakes.
assert_eq "$(get last)" "path=/last body=0" "answer at the end"
start_proxy proxy2 L2 A2 --backend 127.0.0.1:$P --replica 127.0.0.1:$R \
	--tls-cert "$T/tls.crt" --tls-key "$T/tls.key" --tls-handshake-timeout 120s --alpn h2,http/1.1
$PY "$HERE/tls_peers.py" many $L2 "$T/tls.crt" $NCONC >"$T/many.out" 2>&1 ||
	fail "$NCONC concurrent handshakes: $(cat "$T/many.out")"
assert_eq "$(cat "$T/many.out")" "ok $NCONC" "concurrent handshakes"
wait_status 127.0.0.1:$A2 "j['tls']['handshakes'] == $NCONC and j['tls']['active'] == 0" 30 ||
	fail "handshakes or active count wrong: $(cat "$T/wait_status.json")"
status_json 127.0.0.1:$A2 "$T/status.json"
for f in failed_timeout failed_no_shared failed_not_tls failed_closed failed_other; do
	assert_eq "$(json "$T/status.json" "j['tls']['$f']")" 0 "tls.$f"
done
# --alpn: the first protocol of the list the client also offers.
openssl s_client -alpn h2 -connect 127.0.0.1:$L2 </dev/null >"$T/alpn.out" 2>&1
grep -q "ALPN protocol: h2" "$T/alpn.out" || fail "--alpn h2,http/1.1 did not select h2: $(grep ALPN "$T/alpn.out")"
log "PASS"
