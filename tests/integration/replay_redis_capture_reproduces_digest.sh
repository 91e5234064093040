#!/bin/bash
# Promise: a capture replayed into a fresh redis-server reproduces the
# dataset (same DEBUG DIGEST) and the same answers, turn for turn: doppel's
# own --record capture, and a tcpdump capture of clients talking to redis
# directly (reassembled by sequence number).
. "$(dirname "$0")/lib.sh"
need redis-cli
need tcpdump

# workload PORT : several connections, one at a time and interleaved, many types
workload() {
	$PY - "$1" <<'PYEOF' || fail "workload failed"
import random, socket, sys
port = int(sys.argv[1]); rnd = random.Random(7)
def cmd(*a):
    a = [x if isinstance(x, bytes) else str(x).encode() for x in a]
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
def reply(f):
    line = f.readline()
    t = line[:1]
    if t == b"$":
        n = int(line[1:]); return line + (f.read(n + 2) if n >= 0 else b"")
    if t == b"*":
        n = int(line[1:]); return line + b"".join(reply(f) for _ in range(max(n, 0)))
    return line
conns = []
for c in range(6):
    s = socket.create_connection(("127.0.0.1", port)); conns.append((s, s.makefile("rb")))
for i in range(1500):
    s, f = conns[rnd.randrange(len(conns))]
    k = rnd.randrange(100)
    op = rnd.randrange(6)
    if op == 0: s.sendall(cmd("SET", "s%d" % k, "v%d" % i))
    elif op == 1: s.sendall(cmd("INCRBY", "n%d" % (k % 10), rnd.randrange(100)))
    elif op == 2: s.sendall(cmd("RPUSH", "l%d" % (k % 7), i))
    elif op == 3: s.sendall(cmd("HSET", "h%d" % (k % 5), "f%d" % k, i))
    elif op == 4: s.sendall(cmd("SADD", "z%d" % (k % 3), k))
    else: s.sendall(cmd("GET", "s%d" % k))
    reply(f)
# a pipelined burst on one connection
s, f = conns[0]
s.sendall(b"".join(cmd("LPUSH", "pipe", j) for j in range(200)))
for _ in range(200): reply(f)
for s, f in conns: s.close()
PYEOF
}

# --- doppel's own capture
P=$(free_port); L=$(free_port); F=$(free_port)
start_redis prod "$P"
spawn proxy "$DOPPEL" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:$P --record "$T/rec"
wait_port "$L"
workload "$L"
want=$(redis_digest "$P")
stop_pid "$proxy_PID" || fail "proxy exited with an error"
start_redis fresh "$F"
"$DOPPEL" replay "$T/rec/production-0001.pcap" --to 127.0.0.1:$F --as-fast-as-possible \
	--protocol resp --json >"$T/replay.json" 2>"$T/replay.err" || fail "doppel replay failed ($?): $(cat "$T/replay.err")"
assert_eq "$(redis_digest "$F")" "$want" "DEBUG DIGEST after replaying doppel's capture"
assert_eq "$(json "$T/replay.json" "j['connections']")" 6 "connections replayed"
assert_eq "$(json "$T/replay.json" "j['requests']")" 1700 "requests replayed"
assert_eq "$(json "$T/replay.json" "j['divergence']['turns_diverged']")" 0 "answers that differ from the recorded ones"
assert_eq "$(json "$T/replay.json" "j['bytes_answered'] == j['bytes_recorded']")" True "answer bytes"

# --- a tcpdump capture of clients talking to redis directly
D=$(free_port); G=$(free_port)
start_redis direct "$D"
spawn tcpdump tcpdump -i lo -U -s 0 -w "$T/direct.pcap" "tcp port $D"
for _ in $(seq 100); do grep -q "listening on" "$T/tcpdump.log" && break; sleep 0.1; done
workload "$D"
# tcpdump -U writes each packet as it sees it: wait for the six clients' FINs
for _ in $(seq 100); do
	n=$(tcpdump -r "$T/direct.pcap" "tcp[tcpflags] & tcp-fin != 0 and dst port $D" 2>/dev/null | wc -l)
	[ "$n" -ge 6 ] && break
	sleep 0.1
done
[ "$n" -ge 6 ] || fail "tcpdump did not see the clients end (saw $n FINs)"
stop_pid "$tcpdump_PID"
want=$(redis_digest "$D")
start_redis fresh2 "$G"
"$DOPPEL" replay "$T/direct.pcap" --to 127.0.0.1:$G --as-fast-as-possible --port "$D" \
	--protocol resp --json >"$T/replay2.json" 2>"$T/replay2.err" || fail "doppel replay of the tcpdump capture failed: $(cat "$T/replay2.err")"
assert_eq "$(redis_digest "$G")" "$want" "DEBUG DIGEST after replaying a tcpdump capture"
assert_eq "$(json "$T/replay2.json" "j['divergence']['turns_diverged']")" 0 "answers that differ (tcpdump capture)"
log "PASS: both captures rebuilt the same dataset"
