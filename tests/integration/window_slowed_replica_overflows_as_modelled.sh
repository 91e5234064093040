#!/bin/bash
# Promise: a replica slowed by a known factor (its CPU capped with the cpu
# cgroup controller) overflows through the proxy while production answers
# every request; the capture of the real arrivals, read by `doppel window`,
# counts every request sent exactly once; the proxy's accounting adds up
# (every byte forwarded was executed by the replica or sat in the kernel in
# front of it); the live forecast showed a finite time while the buffer
# filled; and the model, fed the measured rates, gives a finite prediction.
# The measured/predicted ratio is printed, not asserted: timing belongs to
# bench/window_validate.py.
. "$(dirname "$0")/lib.sh"
need redis-server
need tcpdump
LOAD=$(cd "$(dirname "$DOPPEL")/../bench" && pwd)/window-load
[ -x "$LOAD" ] || fail "$LOAD is missing (it is built with doppel)"
[ "$(id -u)" -eq 0 ] || skip "capping a process's CPU needs root"
SIZE=1000 WORK=100000 SLOWDOWN=4

CG=""
throttle() {
	local pid=$1 quota=$((10000 / SLOWDOWN))
	if [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
		CG=/sys/fs/cgroup/cpu/doppel-test-$$
		mkdir "$CG" && echo 10000 >"$CG/cpu.cfs_period_us" && echo "$quota" >"$CG/cpu.cfs_quota_us"
	elif [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		CG=/sys/fs/cgroup/doppel-test-$$
		mkdir "$CG" && echo "$quota 10000" >"$CG/cpu.max"
	else
		skip "no cpu cgroup controller (cgroup v1 cpu or v2 cpu.max)"
	fi
	echo "$pid" >"$CG/cgroup.procs" || fail "cannot move pid $pid into $CG"
}
release() {
	[ -n "$CG" ] || return 0
	for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do echo "$p" >"$(dirname "$CG")/cgroup.procs"; done
	rmdir "$CG" 2>/dev/null
	CG=""
}
trap 'rc=$?; release; (exit $rc); cleanup' EXIT

start_redis prod P
start_redis replica R
throttle "$replica_PID"
# The replica's service rate, from a backlog sent straight to it.
"$LOAD" --connect 127.0.0.1:$R --traffic det --rate 1000000 --count 200 --size $SIZE --work $WORK \
	>"$T/cal.json" || fail "calibrating the replica failed"
MU=$(json "$T/cal.json" "j['replies'] / j['last_reply_s']")
log "replica slowed ${SLOWDOWN}x executes $MU requests/s"

start_proxy proxy L A --backend 127.0.0.1:$P --replica 127.0.0.1:$R --buffer 64K
spawn tcpdump tcpdump -i lo --immediate-mode -U -n -s 128 -w "$T/cap.pcap" "tcp dst port $L"
for _ in $(seq 100); do grep -q "listening on" "$T/tcpdump.log" && break; sleep 0.05; done
grep -q "listening on" "$T/tcpdump.log" || fail "tcpdump did not start"
redis-cli -p "$R" config resetstat >/dev/null
# The proxy's start on CLOCK_MONOTONIC (the load generator's clock): now - uptime.
PROXY_START=$($PY -c "
import json, time, urllib.request
t0 = time.monotonic()
s = json.load(urllib.request.urlopen('http://127.0.0.1:$A/status'))
print((t0 + time.monotonic()) / 2 - s['uptime_s'])")
RATE=$($PY -c "print(2 * $MU)")
spawn load "$LOAD" --connect 127.0.0.1:$L --rate "$RATE" --duration 40 --size $SIZE --work $WORK
# One poller for the whole fill: a finite forecast must show before the
# overflow, which comes in about a second, so the status is read every 20 ms
# by one process (not a shell loop that forks per sample).
forecast_seen=$($PY - "127.0.0.1:$A" "$T/s.json" <<'PY'
import json, sys, time, urllib.request
url, out = "http://%s/status" % sys.argv[1], sys.argv[2]
seen, end = 0, time.monotonic() + 40
while time.monotonic() < end:
    raw = urllib.request.urlopen(url, timeout=5).read()
    r = json.loads(raw)["replicas"][0]
    if r["forecast_s"] is not None:
        seen = 1
    if r["overflows"] >= 1:
        break
    time.sleep(0.02)
open(out, "wb").write(raw)
print(seen)
PY
) || fail "polling the proxy's status failed"
assert_eq "$(json "$T/s.json" "j['replicas'][0]['overflows'] >= 1")" True "the slowed replica overflowed"
sleep 0.5 # the load goes on for a moment past the overflow (not a wait for a condition)
stop_pid "$load_PID"
sed -n '$p' "$T/load.log" >"$T/load.json"
# tcpdump writes what it has seen before it stops: until its file stops growing.
cap_size=-1
cap_settled() {
	local n
	n=$(stat -c %s "$T/cap.pcap")
	[ "$n" = "$cap_size" ] && return 0
	cap_size=$n
	sleep 0.2
	return 1
}
wait_for 10 cap_settled
stop_pid "$tcpdump_PID"
status_json 127.0.0.1:$A "$T/s.json"
SENT=$(json "$T/load.json" "j['sent']")
assert_eq "$(json "$T/load.json" "j['replies']")" "$SENT" "production answered every request"
assert_eq "$(json "$T/s.json" "j['replicas'][0]['window_open']")" False "the debug window closed"
assert_eq "$(json "$T/s.json" "j['replicas'][0]['first_overflow_s'] > 0")" True "first overflow recorded"
assert_eq "$(json "$T/s.json" "j['replicas'][0]['bytes_dropped'] > 0")" True "dropped bytes counted"
assert_eq "$forecast_seen" 1 "the live forecast gave a finite time while the buffer filled"

# The capture: doppel window counts each captured request once, as tcpdump does,
# and the capture holds (nearly: tcpdump may lose a packet) every request sent.
"$DOPPEL" window --arrivals "$T/cap.pcap" --port "$L" --service-rate "$MU" --service det \
	--buffer 64K --json >"$T/tr.json" || fail "doppel window could not read the capture"
# A reference reading of the same capture, by the rule doppel window
# documents: a TCP segment with payload toward port L is an arrival unless it
# ends at or before the highest sequence number already seen on its flow (a
# retransmission). Parsed here from the pcap records themselves.
read -r SEGS SEGBYTES < <($PY - "$T/cap.pcap" "$L" <<'PY'
import struct, sys
data, port = open(sys.argv[1], "rb").read(), int(sys.argv[2])
end = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
assert struct.unpack(end + "I", data[20:24])[0] == 1, "expected an Ethernet capture"
off, flows, n, nbytes = 24, {}, 0, 0
while off + 16 <= len(data):
    _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
    pkt = data[off + 16:off + 16 + incl]
    off += 16 + incl
    if len(pkt) < 14 + 20 or pkt[12:14] != b"\x08\x00":
        continue
    ip = pkt[14:]
    ihl, tot = (ip[0] & 15) * 4, struct.unpack(">H", ip[2:4])[0]
    if ip[9] != 6 or len(ip) < ihl + 20:
        continue
    tcp = ip[ihl:]
    sport, dport, seq = struct.unpack(">HHI", tcp[:8])
    payload = tot - ihl - (tcp[12] >> 4) * 4
    if dport != port or payload <= 0:
        continue
    key = (ip[12:16], sport)
    endseq = (seq + payload) & 0xffffffff
    if key in flows and not 0 < (endseq - flows[key]) & 0xffffffff < 1 << 31:
        continue  # ends at or before the highest byte seen: a retransmission
    flows[key] = endseq
    n += 1
    nbytes += payload
print(n, nbytes)
PY
)
NREQ=$(json "$T/tr.json" "j['trace']['arrivals']")
assert_eq "$NREQ" "$SEGS" "arrivals read from the capture (as a reference reader of the same rule reads them)"
assert_eq "$(json "$T/tr.json" "j['trace']['bytes']")" "$SEGBYTES" "payload bytes read from the capture"
assert_eq "$(json "$T/tr.json" "j['trace']['skipped_malformed']")" 0 "malformed packets"
assert_eq "$((SEGBYTES * 100 >= SENT * SIZE * 99))" 1 \
	"the capture holds at least 99 % of the $SENT requests' bytes ($SEGBYTES)"

# Accounting: forwarded = executed by the replica + held by the kernel in front of it.
prev=-1
for _ in $(seq 50); do
	calls=$(redis-cli -p "$R" info commandstats | sed -n 's/^cmdstat_eval:calls=\([0-9]*\),.*/\1/p')
	[ "$calls" = "$prev" ] && break
	prev=$calls
	sleep 0.3
done
FWD=$(json "$T/s.json" "j['replicas'][0]['bytes_forwarded']")
HIDDEN=$((FWD - calls * SIZE))
assert_ge "$HIDDEN" 0 "bytes the kernel held"
assert_eq "$((HIDDEN < 16 * 1024 * 1024))" 1 "kernel buffering in front of the replica is bounded ($HIDDEN)"
assert_eq "$(json "$T/s.json" "j['replicas'][0]['bytes_forwarded'] + j['replicas'][0]['bytes_dropped'] + j['replicas'][0]['buffered'] == j['replicas'][0]['bytes_offered']")" \
	True "every byte offered to the replica is forwarded, dropped or still buffered"

# The model from the measured rates, with the kernel's share added to the buffer.
MEASURED=$($PY -c "
import json
s = json.load(open('$T/s.json')); l = json.load(open('$T/load.json'))
print(round($PROXY_START + s['replicas'][0]['first_overflow_s'] - l['start_mono'], 3))")
LAM=$(json "$T/tr.json" "j['results'][0]['rate']")
MSG=$(json "$T/tr.json" "j['results'][0]['msg_size']")
"$DOPPEL" window --rate "$LAM" --service-rate "$MU" --service det --msg-size "$MSG" --buffer 64K \
	--kernel-buffer "$HIDDEN" --json >"$T/m.json" || fail "the model refused the measured rates"
PRED=$(json "$T/m.json" "j['results'][0]['mean_s']")
assert_eq "$($PY -c "print(0 < $PRED < 1e4)")" True "a finite prediction"
log "PASS: first overflow ${MEASURED}s after the first request; model ${PRED}s" \
	"(lambda $LAM/s, mu $MU/s, kernel $HIDDEN B); measured/model $($PY -c "print(round($MEASURED / $PRED, 2))")"
