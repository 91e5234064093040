#!/bin/bash
# Fault: bad input at every door, one kind at a time. Bad names on the command
# line get a clear error and exit status 2, never a crash; the admin endpoint
# answers garbage, a huge request and a request that never ends without
# stopping anyone else; the front takes 4,000 connections opened at once,
# slowloris clients, and a client that sends 64 MiB without reading a byte of
# the answers, while production keeps serving and doppel's memory stays
# bounded. (Scaled down from 10,000 connections and 1 GB so the test fits in a
# minute on a small machine.)
. "$(dirname "$0")/faults.sh"

# ---- names and command lines ----
bad_cli() { # WHAT ARGS... : exit status 2 and a message naming the problem
	local what=$1 rc; shift
	"$DOPPEL" "$@" >"$T/cli.out" 2>&1
	rc=$?
	assert_eq "$rc" 2 "doppel $what: exit status ($(head -c 300 "$T/cli.out"))"
	grep -qi "bad\|invalid\|unexpected\|use letters\|give" "$T/cli.out" ||
		fail "doppel $what: no clear message: $(head -c 300 "$T/cli.out")"
}
LONG=$(printf 'a%.0s' $(seq 300))
bad_cli "run with a 300-character name" run "$LONG" --listen 127.0.0.1:1 --port 1 -- true
bad_cli "run with a non-UTF-8 name" run $'\xff\xfe' --listen 127.0.0.1:1 --port 1 -- true
bad_cli "run with a '/' in the name" run 'a/b' --listen 127.0.0.1:1 --port 1 -- true
bad_cli "run with '..' as the name" run '..' --listen 127.0.0.1:1 --port 1 -- true
bad_cli "clone with a '/' in the name" clone '../etc'
bad_cli "status with a non-UTF-8 name" status $'\xff'
bad_cli "proxy with a garbage address" proxy --listen $'\x01\x02:99999' --backend 127.0.0.1:1
bad_cli "proxy with a huge option value" proxy --listen 127.0.0.1:0 --backend "$LONG$LONG:1"
log "bad command lines: exit status 2 and a message, every one"

start_redis prod P
start_redis replica R
start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R
bench "$T/warm.csv" -t ping -n 2000 -c 20
quiet_front
snapshot before

# ---- the admin endpoint ----
$PY - "$A" <<'PY' || fail "the admin endpoint mishandled bad requests"
import socket, sys, time, urllib.request
port = int(sys.argv[1])
def exchange(data, wait=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        s.sendall(data)
    except OSError:
        pass  # it may close before taking everything: that is an answer too
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    return out
def ok_status():
    j = urllib.request.urlopen("http://127.0.0.1:%d/status" % port, timeout=10).read()
    assert b'"replicas"' in j, j[:200]
for name, data in [("garbage", b"\x00\xffGARBAGE \x01\r\n\r\n"),
                   ("a huge request line", b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n"),
                   ("a huge header", b"GET /status HTTP/1.1\r\nX: " + b"b" * (4 << 20) + b"\r\n\r\n")]:
    ans = exchange(data)
    # refused (4xx) or closed, never served; the headers are capped at 64 KiB
    assert not ans or ans.startswith(b"HTTP/1.1 4"), (name, ans[:100])
    print("admin, %s: %r" % (name, ans.split(b"\r\n")[0][:60] if ans else "closed"))
    ok_status()
# A request that never ends: others are served meanwhile.
slow = socket.create_connection(("127.0.0.1", port))
slow.sendall(b"GET /status HTTP/1.1\r\nX-Slow: ")
for _ in range(5):
    slow.sendall(b"z")
    ok_status()
    time.sleep(0.2)
slow.close()
print("admin: a request that never ends did not stop /status")
PY

# ---- 4,000 connections at once through the front ----
$PY - "$L" 4000 <<'PY' || fail "connections opened at once were not all served"
import resource, selectors, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel, socks = selectors.DefaultSelector(), []
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    socks.append(s)
    sel.register(s, selectors.EVENT_WRITE, i)
got, sent = {}, set()
import time
end = time.monotonic() + 40
while len(got) < n and time.monotonic() < end:
    for key, ev in sel.select(timeout=1):
        s, i = key.fileobj, key.data
        if ev & selectors.EVENT_WRITE and i not in sent:
            s.send(b"PING\r\n")
            sent.add(i)
            sel.modify(s, selectors.EVENT_READ, i)
        elif ev & selectors.EVENT_READ:
            b = s.recv(16)
            got[i] = b
            sel.unregister(s)
bad = [i for i in range(n) if got.get(i) != b"+PONG\r\n"]
for s in socks:
    s.close()
print("front: %d connections at once, %d answered +PONG" % (n, n - len(bad)))
sys.exit(1 if bad else 0)
PY

# ---- slowloris: 200 clients sending a byte now and then, and a normal load ----
$PY - "$L" <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
msg = b"*2\r\n$3\r\nGET\r\n$5\r\nslow1\r\n"
for k in range(len(msg)):
    for s in socks:
        s.send(msg[k:k + 1])
    time.sleep(0.3)
for s in socks:
    assert s.recv(16) == b"$-1\r\n"
PY
slow=$!
PIDS+=("$slow")
bench "$T/slowloris.csv" -t incr -n 20000 -c 20
counter_is 20000
wait "$slow" || fail "the slowloris clients were not answered in the end"
log "slowloris: 200 slow clients, and 20,000 INCRs from 20 normal ones, all answered"

# ---- a client that sends 64 MiB and reads nothing ----
$PY - "$L" "$T/hog.done" <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
chunk = b"PING\r\n" * (1 << 16)  # 384 KiB
for _ in range((64 << 20) // len(chunk)):
    s.sendall(chunk)
open(sys.argv[2], "w").close()
s.close()
PY
hog=$!
PIDS+=("$hog")
max_rss=0
while kill -0 "$hog" 2>/dev/null; do
	r=$(rss_of "$proxy_PID")
	[ "$r" -gt "$max_rss" ] && max_rss=$r
	sleep 0.2
done
wait "$hog" || fail "the 64 MiB client could not send (the proxy should keep reading)"
[ -e "$T/hog.done" ] || fail "the 64 MiB client did not finish"
log "a client sent 64 MiB without reading: doppel's RSS peaked at $max_rss KiB"
assert_eq "$((max_rss < before_rss + 65536))" 1 "doppel's RSS bounded while a client reads nothing ($before_rss -> $max_rss KiB)"
bench "$T/after.csv" -t incr -n 2000 -c 20
counter_is 22000

quiet_front
snapshot after
status_json 127.0.0.1:$A "$T/s.json"
SLACK_KB=32768 bounded_growth "$(json "$T/s.json" "j['legs']['open']")"
result "bad input: names, admin garbage/huge/endless, 4,000 connections at once, 200 slowloris, a 64 MiB client that reads nothing" \
	0 "$(p99 "$T/warm.csv" PING_INLINE)" "$(p99 "$T/slowloris.csv" INCR)" \
	"bad names exit 2; admin answers 4xx or closes; all 4,000 answered; RSS peak $max_rss KiB"
