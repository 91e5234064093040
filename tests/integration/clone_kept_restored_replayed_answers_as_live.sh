#!/bin/bash
# Promise (staged record and replay): a clone made with --keep-images keeps
# its CRIU images, its state as of the dump and a capture of everything it
# received; `doppel restore` brings it back offline in new namespaces, and
# `doppel replay` of that capture gets the same answers it gave live and the
# same dataset; a second restore starts from the same state again. A control
# clone (--control) next to it measures noise for `doppel diverge NAME`.
. "$(dirname "$0")/lib.sh"
need redis-server; need nsenter; need tshark
N=keep$$; L=$(free_port)
mkdir -p "$T/data"
run_service "$N" --listen 127.0.0.1:$L --port 6379 --state "$T/data" --protocol resp -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save '' \
	--enable-debug-command local
for i in $(seq 0 199); do echo "SET base:$i v$i"; done | redis-cli -p "$L" >/dev/null
before=$(redis_digest "$L")

clone "$N" --keep-images "$T/keep"
grep -q "kept the images" "$T/clone.out" || fail "the clone did not keep its images: $(cat "$T/clone.out")"
C=$(clone_pid "$N" 1)
clone "$N" --control

# traffic the clone receives live: writes, reads, counters, over 3 connections.
# Each connection has keys of its own: a clone runs a connection's requests a
# little later than production, so a read of what another connection has just
# written could differ for that reason alone.
$PY - "$L" <<'PYEOF' || fail "traffic failed"
import socket, sys
port = int(sys.argv[1])
def cmd(*a):
    a = [x if isinstance(x, bytes) else str(x).encode() for x in a]
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
def reply(f):
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:]); return line + (f.read(n + 2) if n >= 0 else b"")
    if line[:1] == b"*":
        n = int(line[1:]); return line + b"".join(reply(f) for _ in range(max(n, 0)))
    return line
for c in range(3):
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
    for i in range(100):
        k = "base:%d" % (c * 60 + i % 60)
        for req in (cmd("GET", k), cmd("APPEND", k, "+%d" % c), cmd("INCR", "hits%d" % c),
                    cmd("LPUSH", "log%d" % c, i)):
            s.sendall(req); reply(f)
    s.close()
PYEOF
# The digest is read once the clones have answered every write before it.
clones_answered "$N" 1200 || fail "the clones answered $ANSWERED of 1200 turns"
want=$(redis_digest "$L") # through the front: the clone receives this read too
clones_answered "$N" 1201 || fail "the clones answered $ANSWERED of 1201 turns"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['diverged_turns']")" 0 "live divergence of the clone"
assert_eq "$(in_clone "$C" redis-cli -p 6379 debug digest)" "$want" "the live clone's dataset"
"$DOPPEL" diverge "$N" --json >"$T/d.json" || fail "doppel diverge $N failed"
DC="[r for r in j['replicas'] if r['name']=='clone-1'][0]['divergence']"
assert_eq "$(json "$T/d.json" "[r['divergence']['role'] for r in j['replicas'] if r['name']=='control-2'][0]")" control \
	"the --control clone's role"
assert_ge "$(json "$T/d.json" "sum(t['paired'] for t in $DC['types'])")" 1200 "turns paired with the control"
assert_eq "$(json "$T/d.json" "$DC['turns_net']")" 0 "net divergence of the clone"
"$DOPPEL" destroy "$N/2" >/dev/null || fail "doppel destroy $N/2 failed"
"$DOPPEL" destroy "$N/1" >/dev/null || fail "doppel destroy $N/1 failed"
ls "$T/keep" >"$T/keep.ls"
grep -q '^received-0001.pcap$' "$T/keep.ls" || fail "no capture of what the clone received: $(cat "$T/keep.ls")"
streams=$(tshark -r "$T/keep/received-0001.pcap" -T fields -e tcp.stream 2>/dev/null | sort -un | wc -l)
assert_eq "$streams" 4 "connections in the clone's capture (3, and DEBUG DIGEST)"

for round in 1 2; do
	"$DOPPEL" restore "$T/keep" --json >"$T/restore.json" 2>"$T/restore.err" ||
		fail "doppel restore failed: $(cat "$T/restore.err")"
	R=$(json "$T/restore.json" "j['pid']")
	track_pid "$R"
	port=$(json "$T/restore.json" "j['port']")
	assert_eq "$(nsenter -t "$R" -n redis-cli -p "$port" debug digest)" "$before" \
		"restore $round: the dataset as of the dump"
	"$DOPPEL" replay "$T/keep/received-0001.pcap" --to "127.0.0.1:$port" --netns "$R" \
		--as-fast-as-possible --protocol resp --json >"$T/replay.json" 2>"$T/replay.err" ||
		fail "restore $round: doppel replay failed ($?): $(cat "$T/replay.err") $(cat "$T/replay.json")"
	assert_eq "$(json "$T/replay.json" "j['connections']")" 4 "restore $round: connections replayed"
	assert_eq "$(json "$T/replay.json" "j['requests']")" 1201 "restore $round: requests replayed"
	assert_eq "$(json "$T/replay.json" "j['divergence']['turns_diverged']")" 0 \
		"restore $round: answers that differ from the live clone's"
	assert_eq "$(nsenter -t "$R" -n redis-cli -p "$port" debug digest)" "$want" \
		"restore $round: the dataset after the replay"
	kill -TERM "$R"
	for _ in $(seq 100); do kill -0 "$R" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$R" 2>/dev/null && fail "restore $round: the restored clone did not stop"
done
log "PASS: the kept clone, restored and replayed, answers as it did live"
