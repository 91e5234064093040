#!/bin/bash
# Promise: two real redis-servers that differ in one key: only the turns that
# read that key diverge, under RESP framing, and `doppel diverge` shows the
# differing bytes of both sides with the request that caused them.
. "$(dirname "$0")/lib.sh"
need redis-cli

P=$(free_port); R=$(free_port); L=$(free_port); A=$(free_port)
start_redis prod "$P"
start_redis cand "$R"
for port in "$P" "$R"; do
	for c in 0 1 2 3; do for i in $(seq 0 49); do echo "SET k${c}_$i value-$i"; done; done |
		redis-cli -p "$port" >/dev/null
done
redis-cli -p "$P" set special prod-value >/dev/null
redis-cli -p "$R" set special replica-value >/dev/null

spawn proxy "$DOPPEL" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:$P \
	--replica cand=127.0.0.1:$R --protocol resp --admin 127.0.0.1:$A
wait_port "$L"; wait_port "$A"

# 4 connections x 200 commands, one at a time; every 10th reads the special key.
# Each connection has keys of its own: a replica runs a connection's requests a
# little later than production, so a read of a key another connection has just
# written could differ for that reason alone.
$PY - "$L" >"$T/load.out" <<'PYEOF' || fail "load failed: $(cat "$T/load.out")"
import socket, sys
port = int(sys.argv[1])
def cmd(*a):
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
def reply(f):
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        return line + (f.read(n + 2) if n >= 0 else b"")
    return line
special = total = 0
for c in range(4):
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
    for i in range(200):
        if i % 10 == 0:
            s.sendall(cmd(b"GET", b"special")); special += 1
        elif i % 3 == 0:
            s.sendall(cmd(b"SET", b"k%d_%d" % (c, i % 50), b"v%d" % i))
        else:
            s.sendall(cmd(b"GET", b"k%d_%d" % (c, i % 50)))
        reply(f); total += 1
    s.close()
print(special, total)
PYEOF
read -r special total <"$T/load.out"
log "sent $total commands, $special of them GET special"

for _ in $(seq 100); do
	"$DOPPEL" diverge --admin 127.0.0.1:$A --json >"$T/d.json" || fail "doppel diverge failed"
	[ "$(json "$T/d.json" "j['replicas'][0]['divergence']['turns_compared']")" -ge "$total" ] && break
	sleep 0.1
done
D="j['replicas'][0]['divergence']"
assert_eq "$(json "$T/d.json" "$D['turns_compared']")" "$total" "turns compared"
assert_eq "$(json "$T/d.json" "$D['turns_diverged']")" "$special" "diverged turns (only GET special)"
assert_eq "$(json "$T/d.json" "$D['turns_net']")" "$special" "net diverged turns (no control: all)"
assert_eq "$(json "$T/d.json" "[t['raw'] for t in $D['types'] if t['type']=='SET'][0]")" 0 "SET turns diverged"
assert_eq "$(json "$T/d.json" "[t['raw'] for t in $D['types'] if t['type']=='GET'][0]")" "$special" "GET turns diverged"
# every excerpt is a read of the special key, and shows both values
assert_eq "$(json "$T/d.json" "all(e['request'].lower()=='get special' for e in $D['excerpts'])")" True "excerpt requests"
assert_ge "$(json "$T/d.json" "len($D['excerpts'])")" 1 "excerpts kept"
assert_eq "$(json "$T/d.json" "$D['excerpts'][0]['offset']")" 2 "first differing byte (in the bulk length)"
assert_eq "$(json "$T/d.json" "'prod-value' in $D['excerpts'][0]['production']['after']")" True "production's bytes"
assert_eq "$(json "$T/d.json" "'replica-value' in $D['excerpts'][0]['replica']['after']")" True "replica's bytes"

"$DOPPEL" diverge --admin 127.0.0.1:$A >"$T/d.txt" || fail "doppel diverge (text) failed"
grep -q 'GET .*DIVERGED' "$T/d.txt" || fail "the text report does not flag GET: $(cat "$T/d.txt")"
grep -q 'replica-value' "$T/d.txt" || fail "the text report does not show the replica's bytes"
stop_pid "$proxy_PID" || fail "proxy exited with an error"
log "PASS: only the $special reads of the differing key diverged"
