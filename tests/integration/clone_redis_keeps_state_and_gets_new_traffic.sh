#!/bin/bash
# Promise: a live clone of redis-server (AOF state dir) holds exactly the
# data production had at freeze time (100k keys loaded through the front),
# production keeps answering while it is cloned, writes sent after the clone
# reach both, and the clone writes to its own copy of the state dir.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-benchmark; need nsenter
N=redis$$
mkdir -p "$T/data"
run_service "$N" L --port 6379 --state "$T/data" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save '' \
	--enable-debug-command local

log "loading 100k keys through the front"
$PY -c 'import sys
for i in range(100000): sys.stdout.write("SET key:%d value-%d\r\n" % (i, i))' | redis-cli -p "$L" --pipe >"$T/pipe.log" 2>&1 ||
	fail "redis-cli --pipe: $(cat "$T/pipe.log")"
assert_eq "$(redis-cli -p "$L" dbsize)" 100000 "production keys"
before=$(redis_digest "$L") || exit 1

log "a connection open across the freeze"
$PY - "$L" "$T/old-conn" <<'PY' &
import socket, sys, os, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def cmd(c):
    s.sendall(c)
    return s.recv(100)
assert cmd(b"PING\r\n") == b"+PONG\r\n"
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(sys.argv[2] + ".go"):
    time.sleep(0.05)
r = cmd(b"SET old-conn survived\r\n")
open(sys.argv[2], "w").write(r.decode())
PY
OLD=$!
for _ in $(seq 100); do [ -e "$T/old-conn.ready" ] && break; sleep 0.05; done

log "cloning while a GET load runs through the front"
sup_status "$N" "$T/s0.json"
acc0=$(json "$T/s0.json" "j['proxy']['connections']['accepted']")
redis-benchmark -p "$L" -t get -n 300000 -c 10 -q >"$T/bench.log" 2>&1 &
bench=$!
# Running: its 10 clients are connected.
wait_status "$N" "j['proxy']['connections']['accepted'] >= $acc0 + 10"
clone "$N"
wait "$bench" || fail "redis-benchmark failed during the clone: $(tail -3 "$T/bench.log")"
grep -qi error "$T/bench.log" && fail "requests failed during the clone: $(grep -i error "$T/bench.log" | head -3)"
grep -q "GET: " "$T/bench.log" || fail "benchmark did not finish: $(tail -2 "$T/bench.log")"
cat "$T/clone.out"
grep -q "production was frozen for" "$T/clone.out" || fail "clone did not report the frozen time"
C=$(clone_pid "$N" 1)
assert_eq "$(in_clone "$C" redis-cli -p 6379 dbsize)" 100000 "clone keys"
touch "$T/old-conn.go"
wait "$OLD" || fail "the connection opened before the clone broke"
assert_eq "$(cat "$T/old-conn" | tr -d '\r\n')" "+OK" "answer on the connection opened before the clone"
assert_eq "$(redis-cli -p "$L" get old-conn)" survived "production got the old connection's write"
assert_eq "$(in_clone "$C" redis-cli -p 6379 exists old-conn)" 0 \
	"a connection open at freeze time is production's only (not duplicated)"
redis-cli -p "$L" del old-conn >/dev/null
wait_for 10 eval '[ "$(in_clone "$C" redis-cli -p 6379 debug digest)" = "$before" ]'
assert_eq "$(in_clone "$C" redis-cli -p 6379 debug digest)" "$before" "clone dataset digest"

log "writes after the clone reach production and the clone"
$PY -c 'import sys
for i in range(1000): sys.stdout.write("SET after:%d v%d\r\n" % (i, i))' | redis-cli -p "$L" --pipe >/dev/null
# the clone has run every SET (one connection, in order) before the digest is read
# through the front, which the clone answers too (on another connection)
wait_for 10 eval '[ "$(in_clone "$C" redis-cli -p 6379 dbsize)" = 101000 ]'
assert_eq "$(redis-cli -p "$L" dbsize)" 101000 "production keys after"
assert_eq "$(in_clone "$C" redis-cli -p 6379 dbsize)" 101000 "clone keys after"
assert_eq "$(in_clone "$C" redis-cli -p 6379 debug digest)" "$(redis_digest "$L")" "clone digest after"

log "each writes its own state dir"
grep -q " $T/work/$N/clone-1/state-0 $T/data " /proc/$C/mountinfo ||
	fail "clone's $T/data is not its own copy: $(grep "$T" /proc/$C/mountinfo)"
grep -q "after:999" "$T/work/$N/clone-1/state-0/appendonlydir/"*.incr.aof || fail "clone's AOF copy lacks its writes"
# a turn is compared once the clone's answer is in (DEL's may still be on its way)
wait_status "$N" "j['proxy']['replicas'][0]['diverged_turns'] >= 2" 10
sup_status "$N" "$T/s.json"
# Exactly two answers differ, and rightly: `GET old-conn` and `DEL old-conn` ran on
# duplicated connections, but only production has that key (its write came over a
# connection opened before the freeze, which is production's alone).
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['diverged_turns']")" 2 "diverged turns"
assert_eq "$(json "$T/s.json" "j['proxy']['replicas'][0]['diverged_connections']")" 2 "diverged connections"
assert_eq "$(json "$T/s.json" "j['proxy']['production']['connect_failures']")" 0 "production connect failures"
frozen=$(json "$T/s.json" "j['clones'][0]['frozen_ms']")
log "PASS: frozen ${frozen} ms, clone $C has 101000 keys like production"
