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
    # keys of its own: replica legs of consecutive clients may interleave
    key = b"%s-%d" % (os.path.basename(prefix).encode(), c)
    for req in [cmd(b"SET", b"bin-" + key, big), cmd(b"GET", b"bin-" + key),
                cmd(b"PING"), cmd(b"INCR", b"n-" + key), cmd(b"GET", b"missing")]:
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

# follow FILE N OUT : tshark's followed streams 0..N-1 (one tshark run), client
# bytes of stream i to OUT.i.c, server bytes to OUT.i.s
follow() {
	local args=()
	for i in $(seq 0 $(($2 - 1))); do args+=(-z "follow,tcp,raw,$i"); done
	tshark -r "$1" -q "${args[@]}" 2>>"$T/tshark.err" | $PY -c '
import sys
out = sys.argv[1]
streams = {}
cur = None
for line in sys.stdin:
    if line.startswith("Filter: tcp.stream eq "):
        cur = int(line.split()[-1]); streams[cur] = [bytearray(), bytearray()]
        continue
    if cur is None or line.startswith(("=====", "Follow:", "Node ")) or not line.strip():
        continue
    streams[cur][1 if line.startswith("\t") else 0] += bytes.fromhex(line.strip())
for i, (c, s) in streams.items():
    open("%s.%d.c" % (out, i), "wb").write(c); open("%s.%d.s" % (out, i), "wb").write(s)
' "$3"
}

# check_side FILE CONNS PREFIX : every stream of FILE equals what the clients sent/received
check_side() {
	local f=$1 n=$2 prefix=$3
	tshark -r "$f" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE \
		-T fields -e tcp.stream -e _ws.expert.message >"$T/tshark.out" 2>"$T/tshark.err" ||
		fail "tshark cannot read $f: $(cat "$T/tshark.err")"
	grep -v "Running as user" "$T/tshark.err" >"$T/tshark.err2"
	[ -s "$T/tshark.err2" ] && fail "tshark complained about $f: $(cat "$T/tshark.err2")"
	assert_eq "$(cut -f1 "$T/tshark.out" | sort -un | wc -l)" "$n" "TCP streams in $(basename "$f")"
	grep -i -E "retransmission|out-of-order|previous segment not captured|bad checksum|malformed" \
		"$T/tshark.out" >"$T/tshark.bad" && fail "tshark's analysis of $(basename "$f"): $(head -3 "$T/tshark.bad")"
	rm -f "$T"/f.*
	follow "$f" "$n" "$T/f"
	# streams are numbered in the order of their first packet: match them by content
	local used=" "
	for i in $(seq 0 $((n - 1))); do
		local match=""
		for j in $(seq 0 $((n - 1))); do
			[[ $used == *" $j "* ]] && continue
			cmp -s "$T/f.$i.c" "$prefix.$j.sent" && { match=$j; break; }
		done
		[ -n "$match" ] || fail "stream $i of $(basename "$f"): its client bytes are not what any client sent"
		used+="$match "
		cmp -s "$T/f.$i.s" "$prefix.$match.recv" ||
			fail "stream $i of $(basename "$f"): server bytes differ from what client $match received"
	done
}

clients 3 "$T/a"
# live: stop, send unrecorded traffic, start again into another directory
"$DOPPEL" record --admin 127.0.0.1:$A status >"$T/st.json" || fail "doppel record status"
assert_eq "$(json "$T/st.json" "j['recording']")" True "recording from --record"
# wait until the replica's legs of the first three connections are closed
for _ in $(seq 100); do
	status_json 127.0.0.1:$A "$T/s.json"
	[ "$(json "$T/s.json" "j['replicas'][0]['connections']")" = 0 ] && break
	sleep 0.1
done
"$DOPPEL" record --admin 127.0.0.1:$A stop >/dev/null || fail "doppel record stop"
clients 2 "$T/b"
"$DOPPEL" record --admin 127.0.0.1:$A start --dir "$T/rec2" >/dev/null || fail "doppel record start"
clients 2 "$T/c"
for _ in $(seq 100); do
	status_json 127.0.0.1:$A "$T/s.json"
	[ "$(json "$T/s.json" "j['replicas'][0]['connections']")" = 0 ] && break
	sleep 0.1
done
stop_pid "$proxy_PID" || fail "proxy exited with an error"

ls "$T/rec" "$T/rec2" >"$T/files.txt"
check_side "$T/rec/production-0001.pcap" 3 "$T/a"
check_side "$T/rec/replica-r1-0001.pcap" 3 "$T/a"
check_side "$T/rec2/production-0001.pcap" 2 "$T/c"
check_side "$T/rec2/replica-r1-0001.pcap" 2 "$T/c"
log "PASS: tshark follows every recorded stream byte for byte"
