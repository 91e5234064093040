#!/bin/bash
# Promise: with --record, every connection's bytes are in pcap files that
# tshark reads without complaint, and tshark's "follow TCP stream" of each
# connection gives exactly the bytes the client sent and received
# (production's side), and what the replica was sent and answered (its side);
# recording can be stopped and started live (doppel record).
. "$(dirname "$0")/lib.sh"
need tshark
need redis-cli

P=$(free_port); R=$(free_port); L=$(free_port); A=$(free_port)
start_redis prod "$P"
start_redis rep "$R"
spawn proxy "$DOPPEL" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:$P \
	--replica r1=127.0.0.1:$R --protocol resp --admin 127.0.0.1:$A --record "$T/rec"
wait_port "$L"; wait_port "$A"

# clients CONNS PREFIX : each connection writes what it sent and received to PREFIX.N.{sent,recv}
clients() {
	$PY - "$L" "$1" "$2" <<'PYEOF' || fail "clients failed"
import os, socket, sys
port, conns, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def cmd(*a):
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
for c in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    sent = bytearray(); recv = bytearray()
    big = os.urandom(100000 + c)  # several packets, any bytes
    for req in [cmd(b"SET", b"bin%d" % c, big), cmd(b"GET", b"bin%d" % c),
                cmd(b"PING"), cmd(b"INCR", b"n"), cmd(b"GET", b"missing")]:
        s.sendall(req); sent += req
        want = {b"S": 5, b"G": None, b"P": 7, b"I": None}
        # read one reply
        buf = b""
        while True:
            buf += s.recv(1 << 20)
            if buf[:1] == b"$":
                n = int(buf[1:buf.index(b"\r\n")])
                if n < 0 or len(buf) >= buf.index(b"\r\n") + 2 + n + 2:
                    break
            elif buf.endswith(b"\r\n"):
                break
        recv += buf
    s.shutdown(socket.SHUT_WR)
    while True:
        b = s.recv(65536)
        if not b:
            break
        recv += b
    s.close()
    open("%s.%d.sent" % (prefix, c), "wb").write(sent)
    open("%s.%d.recv" % (prefix, c), "wb").write(recv)
PYEOF
}

# follow FILE STREAM OUT : tshark's followed stream, client bytes to OUT.c, server bytes to OUT.s
follow() {
	tshark -r "$1" -q -z "follow,tcp,raw,$2" 2>>"$T/tshark.err" | $PY -c '
import sys
c, s = bytearray(), bytearray()
body = False
for line in sys.stdin:
    if line.startswith("Node 1:"):
        body = True; continue
    if not body or line.startswith("====="):
        continue
    if line.startswith("\t"):
        s += bytes.fromhex(line.strip())
    elif line.strip():
        c += bytes.fromhex(line.strip())
open(sys.argv[1] + ".c", "wb").write(c); open(sys.argv[1] + ".s", "wb").write(s)
' "$3"
}

# check_side FILE CONNS PREFIX : every stream of FILE equals what the clients sent/received
check_side() {
	local f=$1 n=$2 prefix=$3
	tshark -r "$f" >"$T/tshark.out" 2>"$T/tshark.err" || fail "tshark cannot read $f: $(cat "$T/tshark.err")"
	grep -v "Running as user" "$T/tshark.err" >"$T/tshark.err2"
	[ -s "$T/tshark.err2" ] && fail "tshark complained about $f: $(cat "$T/tshark.err2")"
	local streams
	streams=$(tshark -r "$f" -T fields -e tcp.stream | sort -un | wc -l)
	assert_eq "$streams" "$n" "TCP streams in $(basename "$f")"
	bad=$(tshark -r "$f" -Y 'tcp.analysis.lost_segment || tcp.analysis.retransmission || tcp.analysis.out_of_order || tcp.checksum.status == "Bad" || ip.checksum.status == "Bad"' -T fields -e frame.number -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE | wc -l)
	assert_eq "$bad" 0 "packets tshark finds lost, retransmitted, out of order or with bad checksums in $(basename "$f")"
	for i in $(seq 0 $((n - 1))); do
		follow "$f" "$i" "$T/f$i"
		cmp -s "$T/f$i.c" "$prefix.$i.sent" || fail "stream $i of $(basename "$f"): client bytes differ from what was sent"
		cmp -s "$T/f$i.s" "$prefix.$i.recv" || fail "stream $i of $(basename "$f"): server bytes differ from what was received"
	done
}

clients 3 "$T/a"
# live: stop, send unrecorded traffic, start again into another directory
"$DOPPEL" record --admin 127.0.0.1:$A status >"$T/st.json" || fail "doppel record status"
assert_eq "$(json "$T/st.json" "j['recording']")" True "recording from --record"
# wait until the replica's legs of the first three connections are closed
for _ in $(seq 100); do
	status_json 127.0.0.1:$A "$T/s.json"
	[ "$(json "$T/s.json" "j['replicas'][0]['conns_active']")" = 0 ] && break
	sleep 0.1
done
"$DOPPEL" record --admin 127.0.0.1:$A stop >/dev/null || fail "doppel record stop"
clients 2 "$T/b"
"$DOPPEL" record --admin 127.0.0.1:$A start --dir "$T/rec2" >/dev/null || fail "doppel record start"
clients 2 "$T/c"
for _ in $(seq 100); do
	status_json 127.0.0.1:$A "$T/s.json"
	[ "$(json "$T/s.json" "j['replicas'][0]['conns_active']")" = 0 ] && break
	sleep 0.1
done
stop_pid "$proxy_PID" || fail "proxy exited with an error"

ls "$T/rec" "$T/rec2" >"$T/files.txt"
check_side "$T/rec/production-0001.pcap" 3 "$T/a"
check_side "$T/rec/replica-r1-0001.pcap" 3 "$T/a"
check_side "$T/rec2/production-0001.pcap" 2 "$T/c"
check_side "$T/rec2/replica-r1-0001.pcap" 2 "$T/c"
log "PASS: tshark follows every recorded stream byte for byte"
