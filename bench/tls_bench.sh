#!/bin/bash
# tls_bench.sh - doppel terminating TLS side by side with HAProxy terminating TLS.
#
#   bench/tls_bench.sh [DOPPEL] [ROUNDS]
#
# Production is nginx serving a 1 KiB file over plain HTTP; the replica (for
# doppel with 1 replica) is a second nginx. In front, over HTTPS (TLS 1.3,
# OpenSSL 3's defaults, the same P-256 certificate):
#   - HAProxy 2.6, `bind ... ssl crt`, mode tcp (TLS off-loading and a byte
#     relay, as doppel does), one thread (nbthread 1: doppel runs one event
#     loop);
#   - doppel proxy --tls-cert/--tls-key with 0 and 1 replica.
# Measured, ROUNDS rounds with every configuration in turn (medians shown):
#   1. requests/s on keep-alive connections: wrk -t1 -c50 over HTTPS;
#   2. handshakes/s: wrk -t1 -c50 -H 'Connection: close' (a new connection and
#      a full handshake per request), and `openssl s_time -new` (one client,
#      one handshake after another: latency, not throughput);
#   3. CPU per request of the proxy process (and of the replica server it
#      feeds), from /proc ticks around each wrk run;
#   4. memory: the proxy's RSS growth with IDLE_CONNS (default 2000) idle
#      HTTPS connections, per connection (after one request each).
# wrk and openssl s_time run on the same cores as the proxies and nginx; a
# handshake costs the client more than the server (ECDSA verify vs sign), so
# handshake rates are bounded by the client as much as by the proxy: compare
# the ratios and the CPU per request, not the absolute rates.
# Nothing passes or fails: this prints what was measured.
set -uo pipefail
DOPPEL=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/doppel}
ROUNDS=${2:-3}
SECS=${WRK_SECONDS:-5}
IDLE=${IDLE_CONNS:-2000}
T=$(mktemp -d /var/tmp/doppel-tlsbench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
bg() { "$@" >>"$T/bg.log" 2>&1 & PIDS+=($!); LAST=$!; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR) print a[int((NR+1)/2)]; else print 0 }'; }
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }'; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-keyout "$T/tls.key" -out "$T/tls.crt" -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod 600 "$T/tls.key"
cat "$T/tls.crt" "$T/tls.key" >"$T/haproxy.pem"

# ---------- servers ----------
mkdir -p "$T/www" "$T/ng"
head -c 1024 /dev/urandom | base64 | head -c 1024 >"$T/www/1k.txt"
ngconf() { # ngconf NAME PORT
	cat >"$T/ng/$1.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $T/ng/$1.pid; error_log $T/ng/$1.err;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $T/ng/$1.b; proxy_temp_path $T/ng/$1.p;
  fastcgi_temp_path $T/ng/$1.f; uwsgi_temp_path $T/ng/$1.u; scgi_temp_path $T/ng/$1.s;
  server { listen 127.0.0.1:$2; root $T/www; keepalive_requests 1000000; } }
EOF
	bg nginx -c "$T/ng/$1.conf"
}
NP=$(port); NR=$(port)
ngconf prod "$NP"
ngconf replica "$NR"; NGR=$LAST

declare -A PORT PROXYPID REPPIDS ADMIN
PORT[haproxy]=$(port)
cat >"$T/haproxy.cfg" <<EOF
global
  maxconn 4000
  nbthread 1
  tune.ssl.default-dh-param 2048
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen web
  bind 127.0.0.1:${PORT[haproxy]} ssl crt $T/haproxy.pem
  server prod 127.0.0.1:$NP
EOF
bg haproxy -f "$T/haproxy.cfg" -db; PROXYPID[haproxy]=$LAST
for c in d0 d1; do PORT[$c]=$(port); ADMIN[$c]=$(port); done
tls=(--tls-cert "$T/tls.crt" --tls-key "$T/tls.key")
bg "$DOPPEL" proxy --listen 127.0.0.1:${PORT[d0]} --backend 127.0.0.1:$NP --admin 127.0.0.1:${ADMIN[d0]} "${tls[@]}"
PROXYPID[d0]=$LAST
bg "$DOPPEL" proxy --listen 127.0.0.1:${PORT[d1]} --backend 127.0.0.1:$NP --admin 127.0.0.1:${ADMIN[d1]} \
	--replica 127.0.0.1:$NR "${tls[@]}"
PROXYPID[d1]=$LAST
REPPIDS[d1]=$NGR
CFGS="haproxy d0 d1"
for c in $CFGS; do wait_port "${PORT[$c]}"; done
declare -A LABEL=([haproxy]="HAProxy 2.6, ssl, 1 thread" [d0]="doppel, 0 replicas" [d1]="doppel, 1 replica")

# wrkrun CFG KIND [wrk args]: one wrk run; appends "cfg rps proxy_ticks replica_ticks requests"
wrkrun() {
	local c=$1 kind=$2 px reps p0 r0 p1 r1 rps nreq
	shift 2
	px=${PROXYPID[$c]}; reps=${REPPIDS[$c]:-}
	# shellcheck disable=SC2086
	p0=$(ticks $px); r0=$(ticks $reps)
	wrk -t1 -c50 -d"${SECS}s" "$@" "https://127.0.0.1:${PORT[$c]}/1k.txt" >"$T/wrk.out" 2>&1
	# shellcheck disable=SC2086
	p1=$(ticks $px); r1=$(ticks $reps)
	rps=$(awk '/Requests\/sec/{print $2}' "$T/wrk.out")
	nreq=$(awk '/requests in/{print $1}' "$T/wrk.out")
	echo "$c ${rps:-0} $((p1 - p0)) $((r1 - r0)) ${nreq:-0}" >>"$T/$kind.txt"
}

for r in $(seq "$ROUNDS"); do
	for c in $CFGS; do
		wrkrun "$c" keepalive
		sleep 0.5
		wrkrun "$c" close -H "Connection: close"
		sleep 0.5
		n=$(openssl s_time -new -connect "127.0.0.1:${PORT[$c]}" -time "$SECS" 2>/dev/null |
			awk '/real seconds/{print $1 / $4; exit}')
		echo "$c ${n:-0}" >>"$T/stime.txt"
		sleep 0.5
	done
done

# ---------- report ----------
US_PER_TICK=$((1000000 / $(getconf CLK_TCK)))
col() { awk -v c="$2" -v k="$3" '$1==c{print $k}' "$T/$1.txt" | median; }
cpu() { awk -v us="$US_PER_TICK" -v c="$2" -v k="$3" '$1==c && $5>0{print $k * us / $5}' "$T/$1.txt" | median; }
table() { # table KIND TITLE
	local h hc
	echo "$2"
	printf '  %-28s %12s %7s %14s %9s %14s\n' configuration "requests/s" ratio "proxy us/req" ratio "replica us/req"
	h=$(col "$1" haproxy 2); hc=$(cpu "$1" haproxy 3)
	for c in $CFGS; do
		v=$(col "$1" "$c" 2); pc=$(cpu "$1" "$c" 3); rc=$(cpu "$1" "$c" 4)
		printf '  %-28s %12.0f %7s %14.1f %9s %14.1f\n' "${LABEL[$c]}" "$v" "$(ratio "$v" "$h")" \
			"$pc" "$(ratio "$pc" "$hc")" "$rc"
	done
}
echo "TLS termination in front of nginx (1 KiB file), wrk -t1 -c50 -d${SECS}s, median of $ROUNDS rounds"
echo "(ratio: to HAProxy; proxy us/req: CPU of the proxy process per request, user + system)"
table keepalive "1. keep-alive HTTPS connections"
table close "2. a new connection and handshake per request (wrk -H 'Connection: close')"
echo "3. openssl s_time -new: full handshakes one after another, per second"
hs=$(col stime haproxy 2)
for c in $CFGS; do
	v=$(col stime "$c" 2)
	printf '  %-28s %12.0f %7s\n' "${LABEL[$c]}" "$v" "$(ratio "$v" "$hs")"
done
echo "4. memory: RSS of the proxy with $IDLE idle HTTPS connections (handshake and one request each)"
for c in $CFGS; do
	px=${PROXYPID[$c]}
	rss0=$(awk '/VmRSS/{print $2}' "/proc/$px/status")
	rm -f "$T/held" "$T/release"
	python3 - "${PORT[$c]}" "$IDLE" "$T/tls.crt" "$T/held" "$T/release" <<'PY' &
import asyncio, os, ssl, sys
port, n, ca, held, release = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
async def one(sem):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    w.write(b"GET /1k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await r.readuntil(b"\r\n\r\n")
    await r.readexactly(1024)
    return w
async def main():
    sem = asyncio.Semaphore(100)
    ws = await asyncio.gather(*[one(sem) for _ in range(n)])
    open(held, "w").close()
    while not os.path.exists(release):
        await asyncio.sleep(0.1)
    for w in ws:
        w.close()
asyncio.run(main())
PY
	holder=$!
	for _ in $(seq 1200); do [ -e "$T/held" ] && break; sleep 0.1; done
	sleep 1
	rss1=$(awk '/VmRSS/{print $2}' "/proc/$px/status")
	printf '  %-28s RSS %d KiB -> %d KiB: %.0f bytes per connection\n' "${LABEL[$c]}" "$rss0" "$rss1" \
		"$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE" 'BEGIN{print (b-a)*1024/n}')"
	touch "$T/release"
	wait "$holder"
	sleep 1
done
for c in d0 d1; do
	curl -s "http://127.0.0.1:${ADMIN[$c]}/status" | python3 -c "
import json, sys
j = json.load(sys.stdin)['tls']
f = ', '.join('%s %d' % (k[7:], v) for k, v in j.items() if k.startswith('failed_') and v)
print('  %s: %d handshakes; failed: %s' % (sys.argv[1], j['handshakes'], f or 'none'))" "${LABEL[$c]}"
done
