#!/bin/bash
# proxy_bench.sh - doppel proxy side by side with HAProxy and nginx's mirror.
#
#   bench/proxy_bench.sh [DOPPEL] [ROUNDS]
#
# One run prints three tables, every figure the median of ROUNDS rounds in
# which all configurations run in turn (so a noisy moment hits them all):
#   1. redis-server under redis-benchmark (GET and SET, 50 clients): direct,
#      HAProxy 2.6 in TCP mode with nbthread 1 and with one thread per CPU,
#      doppel with 0, 1 and 2 replicas, with one replica at nice 10 (as
#      `doppel run` runs clones: they yield the CPU to production), and with
#      its one replica SIGSTOPped, all with --threads 1; then doppel with 0 and
#      1 replica with --threads one per CPU. Each ratio is to HAProxy with as
#      many threads as that doppel row.
#      Each doppel row also says how often its replicas overflowed (a dropped
#      replica costs nothing, so a ratio means little without it).
#   2. nginx serving a 1 KiB file under wrk (50 connections): the same, plus
#      nginx's own `mirror` with its mirror target running and stopped.
#      A second table gives the CPU each configuration spent per request (the
#      proxy, plus the replica servers it feeds): steadier than throughput on a
#      small, shared machine, where every process competes for the same cores.
#   3. doppel's RSS per idle connection (redis and nginx, 0 and 1 replica, one
#      thread and one per CPU): the growth over a second round of thousands of
#      connections that each carried one request. PROXY_BENCH_ONLY=idle runs
#      this table alone.
# Nothing passes or fails: this prints what was measured.
set -uo pipefail
DOPPEL=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/doppel}
ROUNDS=${2:-3}
# PROXY_BENCH_ONLY=idle: only the idle connections (table 3)
ONLY=${PROXY_BENCH_ONLY:-all}
T=$(mktemp -d /var/tmp/doppel-pbench.XXXXXX)
PIDS=()
STOPPED=()
cleanup() {
	for p in "${STOPPED[@]}"; do kill -CONT "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
bg() { "$@" >>"$T/bg.log" 2>&1 & PIDS+=($!); LAST=$!; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR) print a[int((NR+1)/2)]; else print 0 }'; }
# CPU ticks (user + system) used so far by the given pids, summed.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# ---------- redis ----------
RP=$(port); RR1=$(port); RR2=$(port); HA=$(port); HA1=$(port)
bg redis-server --port "$RP" --save '' --appendonly no; PROD=$LAST
bg redis-server --port "$RR1" --save '' --appendonly no; REP1=$LAST
bg redis-server --port "$RR2" --save '' --appendonly no; REP2=$LAST
RR3=$(port)
bg nice -n 10 redis-server --port "$RR3" --save '' --appendonly no; REP3=$LAST
wait_port "$RP"; wait_port "$RR1"; wait_port "$RR2"; wait_port "$RR3"

NP=$(port); NR1=$(port); NR2=$(port); NHA=$(port); NHA1=$(port); NMIR=$(port); NMIRS=$(port)
NCPU=$(nproc)
# haproxy.cfg: one thread per CPU; haproxy1.cfg: one thread, as doppel --threads 1
for ha in haproxy haproxy1; do
	nbt=$NCPU; hp=$HA; np=$NHA
	[ $ha = haproxy1 ] && { nbt=1; hp=$HA1; np=$NHA1; }
	cat >"$T/$ha.cfg" <<EOF
global
  maxconn 4000
  nbthread $nbt
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen redis
  bind 127.0.0.1:$hp
  server prod 127.0.0.1:$RP
listen web
  bind 127.0.0.1:$np
  server prod 127.0.0.1:$NP
EOF
done
bg haproxy -f "$T/haproxy.cfg" -db; HAPID=$LAST
bg haproxy -f "$T/haproxy1.cfg" -db; HAPID1=$LAST
declare -A RPORT ADMIN PROXYPID
RPORT[direct]=$RP; RPORT[haproxy]=$HA; RPORT[haproxy1]=$HA1
for cfg in d0 d1 d2 d1nice d1stop d0tN d1tN; do RPORT[$cfg]=$(port); ADMIN[r$cfg]=$(port); done
# THREADS of each configuration (1 unless said): its ratio is to HAProxy with as many
declare -A THREADS=([haproxy]=$NCPU [d0tN]=$NCPU [d1tN]=$NCPU)
dp() { # dp CFG ADMINKEY BACKEND REPLICAS... (DP_THREADS: --threads, default 1)
	local c=$1 a=$2 b=$3; shift 3
	local args=()
	for r in "$@"; do args+=(--replica "127.0.0.1:$r"); done
	bg "$DOPPEL" proxy --listen 127.0.0.1:$c --backend 127.0.0.1:$b --admin 127.0.0.1:$a \
		--threads "${DP_THREADS:-1}" "${args[@]}"
}
dp "${RPORT[d0]}" "${ADMIN[rd0]}" "$RP"; PROXYPID[d0]=$LAST
dp "${RPORT[d1]}" "${ADMIN[rd1]}" "$RP" "$RR1"; PROXYPID[d1]=$LAST
DP_THREADS=$NCPU dp "${RPORT[d0tN]}" "${ADMIN[rd0tN]}" "$RP"; PROXYPID[d0tN]=$LAST
DP_THREADS=$NCPU dp "${RPORT[d1tN]}" "${ADMIN[rd1tN]}" "$RP" "$RR1"; PROXYPID[d1tN]=$LAST
dp "${RPORT[d2]}" "${ADMIN[rd2]}" "$RP" "$RR1" "$RR2"; PROXYPID[d2]=$LAST
dp "${RPORT[d1nice]}" "${ADMIN[rd1nice]}" "$RP" "$RR3"; PROXYPID[d1nice]=$LAST
dp "${RPORT[d1stop]}" "${ADMIN[rd1stop]}" "$RP" "$RR2"; PROXYPID[d1stop]=$LAST
PROXYPID[haproxy]=$HAPID; PROXYPID[haproxy1]=$HAPID1
# The replica servers each configuration feeds, for CPU accounting.
declare -A REPPIDS=([d1]="$REP1" [d2]="$REP1 $REP2" [d1nice]="$REP3" [d1stop]="$REP2" [d1tN]="$REP1")
for c in "${!RPORT[@]}"; do wait_port "${RPORT[$c]}"; done
REDIS_CFGS="direct haproxy1 d0 d1 d2 d1nice d1stop haproxy d0tN d1tN"
REP2_PID=$(pgrep -f "redis-server \*:$RR2" | head -1)

if [ "$ONLY" != idle ]; then
for r in $(seq "$ROUNDS"); do
	for c in $REDIS_CFGS; do
		[ "$c" = d1stop ] && { kill -STOP "$REP2_PID"; STOPPED+=("$REP2_PID"); }
		px=${PROXYPID[$c]:-}; reps=${REPPIDS[$c]:-}
		# shellcheck disable=SC2086
		p0=$(ticks $px); r0=$(ticks $reps)
		redis-benchmark -p "${RPORT[$c]}" -t get,set -n 200000 -c 50 -r 100000 --csv 2>/dev/null |
			awk -F'"' -v c="$c" '/^"(GET|SET)"/{print c, $2, $4}' >>"$T/redis.txt"
		# shellcheck disable=SC2086
		echo "$c $(($(ticks $px) - p0)) $(($(ticks $reps) - r0)) 400000" >>"$T/redis-cpu.txt"
		[ "$c" = d1stop ] && kill -CONT "$REP2_PID"
		sleep 0.5
	done
done
fi

# ---------- nginx ----------
mkdir -p "$T/www" "$T/ng"
head -c 1024 /dev/urandom | base64 | head -c 1024 >"$T/www/1k.txt"
ngconf() { # ngconf NAME PORT BODY
	cat >"$T/ng/$1.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $T/ng/$1.pid; error_log $T/ng/$1.err;
events { worker_connections 12000; }
http { access_log off; client_body_temp_path $T/ng/$1.b; proxy_temp_path $T/ng/$1.p;
  fastcgi_temp_path $T/ng/$1.f; uwsgi_temp_path $T/ng/$1.u; scgi_temp_path $T/ng/$1.s;
  $3 }
EOF
	bg nginx -c "$T/ng/$1.conf"
}
ngconf prod "$NP" "server { listen 127.0.0.1:$NP; root $T/www; keepalive_requests 1000000; }"
ngconf r1 "$NR1" "server { listen 127.0.0.1:$NR1; root $T/www; keepalive_requests 1000000; }"; NGR1=$LAST
ngconf r2 "$NR2" "server { listen 127.0.0.1:$NR2; root $T/www; keepalive_requests 1000000; }"; NGR2=$LAST
NR3=$(port)
ngconf r3 "$NR3" "server { listen 127.0.0.1:$NR3; root $T/www; keepalive_requests 1000000; }"
NGR3=$LAST; renice -n 10 -p "$NGR3" >/dev/null
ngconf mirror "$NMIR" "upstream p { server 127.0.0.1:$NP; keepalive 64; } upstream m { server 127.0.0.1:$NR1; keepalive 64; }
  server { listen 127.0.0.1:$NMIR; keepalive_requests 1000000;
    location / { mirror /mirror; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass http://p; }
    location = /mirror { internal; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass http://m\$request_uri; } }"
NGMIR=$LAST
ngconf mirrorstop "$NMIRS" "upstream p { server 127.0.0.1:$NP; keepalive 64; } upstream m { server 127.0.0.1:$NR2; keepalive 64; }
  server { listen 127.0.0.1:$NMIRS; keepalive_requests 1000000;
    location / { mirror /mirror; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass http://p; }
    location = /mirror { internal; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass http://m\$request_uri; } }"
NGMIRS=$LAST
declare -A NPORT NPROXYPID
NPORT[direct]=$NP; NPORT[haproxy]=$NHA; NPORT[haproxy1]=$NHA1
NPORT[nginx-mirror]=$NMIR; NPORT[nginx-mirror-stop]=$NMIRS
for cfg in d0 d1 d2 d1nice d1stop d0tN d1tN; do NPORT[$cfg]=$(port); ADMIN[n$cfg]=$(port); done
dp "${NPORT[d0]}" "${ADMIN[nd0]}" "$NP"; NPROXYPID[d0]=$LAST
dp "${NPORT[d1]}" "${ADMIN[nd1]}" "$NP" "$NR1"; NPROXYPID[d1]=$LAST
DP_THREADS=$NCPU dp "${NPORT[d0tN]}" "${ADMIN[nd0tN]}" "$NP"; NPROXYPID[d0tN]=$LAST
DP_THREADS=$NCPU dp "${NPORT[d1tN]}" "${ADMIN[nd1tN]}" "$NP" "$NR1"; NPROXYPID[d1tN]=$LAST
dp "${NPORT[d2]}" "${ADMIN[nd2]}" "$NP" "$NR1" "$NR2"; NPROXYPID[d2]=$LAST
dp "${NPORT[d1nice]}" "${ADMIN[nd1nice]}" "$NP" "$NR3"; NPROXYPID[d1nice]=$LAST
dp "${NPORT[d1stop]}" "${ADMIN[nd1stop]}" "$NP" "$NR2"; NPROXYPID[d1stop]=$LAST
NPROXYPID[haproxy]=$HAPID; NPROXYPID[haproxy1]=$HAPID1
NPROXYPID[nginx-mirror]=$NGMIR; NPROXYPID[nginx-mirror-stop]=$NGMIRS
declare -A NREPPIDS=([d1]="$NGR1" [d2]="$NGR1 $NGR2" [d1nice]="$NGR3" [d1stop]="$NGR2"
	[nginx-mirror]="$NGR1" [nginx-mirror-stop]="$NGR2" [d1tN]="$NGR1")
for c in "${!NPORT[@]}"; do wait_port "${NPORT[$c]}"; done
NGINX_CFGS="direct haproxy1 d0 d1 d2 d1nice d1stop nginx-mirror nginx-mirror-stop haproxy d0tN d1tN"
if [ "$ONLY" != idle ]; then
for r in $(seq "$ROUNDS"); do
	for c in $NGINX_CFGS; do
		case $c in d1stop | nginx-mirror-stop) kill -STOP "$NGR2"; STOPPED+=("$NGR2") ;; esac
		px=${NPROXYPID[$c]:-}; reps=${NREPPIDS[$c]:-}
		# shellcheck disable=SC2086
		p0=$(ticks $px); r0=$(ticks $reps)
		wrk -t1 -c50 -d${WRK_SECONDS:-5}s "http://127.0.0.1:${NPORT[$c]}/1k.txt" >"$T/wrk.out" 2>/dev/null
		# shellcheck disable=SC2086
		p1=$(ticks $px); r1=$(ticks $reps)
		rps=$(awk '/Requests\/sec/{print $2}' "$T/wrk.out")
		nreq=$(awk '/requests in/{print $1}' "$T/wrk.out")
		echo "$c ${rps:-0}" >>"$T/nginx.txt"
		echo "$c $((p1 - p0)) $((r1 - r0)) ${nreq:-0}" >>"$T/nginx-cpu.txt"
		kill -CONT "$NGR2"
		sleep 0.5
	done
done
fi

# ---------- report ----------
if [ "$ONLY" != idle ]; then
# base_of CFG: the HAProxy it is compared with (as many threads)
base_of() { if [ "${THREADS[$1]:-1}" = 1 ]; then echo haproxy1; else echo haproxy; fi; }
US_PER_TICK=$((1000000 / $(getconf CLK_TCK)))
cpu_table() { # cpu_table FILE CONFIGS...: lines "config proxy_ticks replica_ticks requests"
	local f=$1 c hac pc rc
	shift
	echo "CPU per request, same runs (user + system, microseconds, median of $ROUNDS rounds;"
	echo "ratios to HAProxy with as many threads)"
	printf '  %-32s %10s %16s %10s %16s %14s\n' configuration proxy "replica servers" total \
		"total / HAProxy" "proxy / HAProxy"
	for c in "$@"; do
		[ "$c" = direct ] && continue
		hac=$(awk -v us="$US_PER_TICK" -v b="$(base_of "$c")" '$1==b && $4>0{print $2 * us / $4}' "$f" | median)
		pc=$(awk -v us="$US_PER_TICK" -v c="$c" '$1==c && $4>0{print $2 * us / $4}' "$f" | median)
		rc=$(awk -v us="$US_PER_TICK" -v c="$c" '$1==c && $4>0{print $3 * us / $4}' "$f" | median)
		printf '  %-32s %10.1f %16.1f %10.1f %16s %14s\n' "${LABEL[$c]}" "$pc" "$rc" \
			"$(awk -v a="$pc" -v b="$rc" 'BEGIN{print a + b}')" \
			"$(ratio "$(awk -v a="$pc" -v b="$rc" 'BEGIN{print a + b}')" "$hac")" "$(ratio "$pc" "$hac")"
	done
}
echo "redis-server, redis-benchmark -c 50, median of $ROUNDS rounds (requests/s, ratio to HAProxy"
echo "with as many threads)"
printf '  %-32s %12s %7s %12s %7s  %s\n' configuration GET ratio SET ratio "replica overflows"
overflows() { # overflows ADMINPORT: total overflows of that proxy's replicas
	curl -s "http://127.0.0.1:$1/status" | python3 -c "import json,sys; print(sum(r['overflows'] for r in json.load(sys.stdin)['replicas']))" 2>/dev/null || echo "?"
}
declare -A LABEL=([direct]="direct, no proxy" [haproxy1]="HAProxy 2.6, TCP, nbthread 1"
	[haproxy]="HAProxy 2.6, TCP, nbthread $NCPU" [d0]="doppel, 0 replicas"
	[d1]="doppel, 1 replica" [d2]="doppel, 2 replicas" [d1nice]="doppel, 1 replica at nice 10"
	[d1stop]="doppel, 1 replica SIGSTOPped" [d0tN]="doppel --threads $NCPU, 0 replicas"
	[d1tN]="doppel --threads $NCPU, 1 replica"
	[nginx-mirror]="nginx mirror, target running" [nginx-mirror-stop]="nginx mirror, target SIGSTOPped")
for c in $REDIS_CFGS; do
	b=$(base_of "$c")
	hag=$(awk -v b="$b" '$1==b && $2=="GET"{print $3}' "$T/redis.txt" | median)
	has=$(awk -v b="$b" '$1==b && $2=="SET"{print $3}' "$T/redis.txt" | median)
	g=$(awk -v c="$c" '$1==c && $2=="GET"{print $3}' "$T/redis.txt" | median)
	s=$(awk -v c="$c" '$1==c && $2=="SET"{print $3}' "$T/redis.txt" | median)
	ov=""; [ -n "${ADMIN[r$c]:-}" ] && ov=$(overflows "${ADMIN[r$c]}")
	printf '  %-32s %12.0f %7s %12.0f %7s  %s\n' "${LABEL[$c]}" "$g" "$(ratio "$g" "$hag")" "$s" "$(ratio "$s" "$has")" "$ov"
done
d0g=$(awk '$1=="d0" && $2=="GET"{print $3}' "$T/redis.txt" | median)
dsg=$(awk '$1=="d1stop" && $2=="GET"{print $3}' "$T/redis.txt" | median)
echo "  stopped replica vs none (GET): $(ratio "$dsg" "$d0g")"
dtg=$(awk '$1=="d0tN" && $2=="GET"{print $3}' "$T/redis.txt" | median)
echo "  doppel --threads $NCPU vs --threads 1, 0 replicas (GET): $(ratio "$dtg" "$d0g")"

cpu_table "$T/redis-cpu.txt" $REDIS_CFGS
echo
echo "nginx, 1 KiB file, wrk -c 50 -d ${WRK_SECONDS:-5}s, median of $ROUNDS rounds (requests/s, ratio to"
echo "HAProxy with as many threads)"
for c in $NGINX_CFGS; do
	han=$(awk -v b="$(base_of "$c")" '$1==b{print $2}' "$T/nginx.txt" | median)
	v=$(awk -v c="$c" '$1==c{print $2}' "$T/nginx.txt" | median)
	ov=""; [ -n "${ADMIN[n$c]:-}" ] && ov="replica overflows: $(overflows "${ADMIN[n$c]}")"
	printf '  %-32s %12.0f %7s  %s\n' "${LABEL[$c]}" "$v" "$(ratio "$v" "$han")" "$ov"
done
d0n=$(awk '$1=="d0"{print $2}' "$T/nginx.txt" | median)
dsn=$(awk '$1=="d1stop"{print $2}' "$T/nginx.txt" | median)
echo "  stopped replica vs none: $(ratio "$dsn" "$d0n")"
dtn=$(awk '$1=="d0tN"{print $2}' "$T/nginx.txt" | median)
echo "  doppel --threads $NCPU vs --threads 1, 0 replicas: $(ratio "$dtn" "$d0n")"
cpu_table "$T/nginx-cpu.txt" $NGINX_CFGS

fi
# ---------- idle connections ----------
# Each proxy gets two rounds of connections (N1, then N2). Every connection
# carries one request and its answer (100 connections at a time, as many
# clients would), then stays open and idle. The figure is the RSS growth over
# the second round divided by N2: what one more idle connection costs, without
# the pools the first round sized once. libevent keeps a table of 8 bytes per
# fd that doubles as fds grow; the rounds are sized so that the second stays
# between two doublings (8,192 and 16,384 fds): that table, up to 16 bytes per
# fd once amortised (a connection has 2 fds, 3 with a replica), comes on top.
echo
echo "doppel RSS per idle connection (fd limit $(ulimit -n); growth over a second round of N2, per connection;"
echo "libevent's fd table, up to 16 bytes per fd, on top)"
idle_case() { # idle_case LABEL PROTO N1 N2 BACKEND [REPLICA] (IDLE_THREADS: --threads)
	local label=$1 proto=$2 n1=$3 n=$4 be=$5 rep=${6:-} L rss1 rss2 hold
	local args=(--threads "${IDLE_THREADS:-1}")
	[ -n "$rep" ] && args+=(--replica "127.0.0.1:$rep")
	L=$(port)
	bg "$DOPPEL" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:$be "${args[@]}"; PX=$LAST
	wait_port "$L"
	rm -f "$T"/idle.*
	python3 - "$L" "$n1" "$n" "$proto" "$T/idle" <<'PY' &
import os, socket, sys, time
port, n1, n2, proto, flag = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
req = b"PING\r\n" if proto == "redis" else b"GET /1k.txt HTTP/1.1\r\nHost: bench\r\n\r\n"
def answer(s):
    if proto == "redis":
        s.recv(16)
        return
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, body = buf.split(b"\r\n\r\n", 1)
    clen = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < clen:
        body += s.recv(4096)
socks = []
for rnd, n in ((1, n1), (2, n2)):
    new = []
    for i in range(n):
        new.append(socket.create_connection(("127.0.0.1", port)))
        if i % 500 == 499:
            time.sleep(0.05)
    for b in range(0, n, 100):
        for s in new[b:b + 100]:
            s.sendall(req)
        for s in new[b:b + 100]:
            answer(s)
    socks += new
    open(f"{flag}.held{rnd}", "w").close()
    while not os.path.exists(f"{flag}.go{rnd}"):
        time.sleep(0.05)
time.sleep(120)
PY
	hold=$!
	PIDS+=($hold)
	for rnd in 1 2; do
		for _ in $(seq 900); do [ -e "$T/idle.held$rnd" ] && break; sleep 0.1; done
		sleep 2.5 # idle connections rest at the proxy's next sweep (every second)
		[ "$rnd" = 1 ] && rss1=$(awk '/VmRSS/{print $2}' /proc/$PX/status) || rss2=$(awk '/VmRSS/{print $2}' /proc/$PX/status)
		touch "$T/idle.go$rnd"
	done
	printf '  %-44s %5d + %5d connections, RSS %6d KiB -> %6d KiB: %5.0f bytes per connection\n' \
		"$label" "$n1" "$n" "$rss1" "$rss2" "$(awk -v a="$rss1" -v b="$rss2" -v n="$n" 'BEGIN{print (b-a)*1024/n}')"
	kill "$hold" "$PX" 2>/dev/null
	wait "$hold" "$PX" 2>/dev/null
}
idle_case "redis PING, 0 replicas, --threads 1" redis 4200 3800 "$RP"
idle_case "redis PING, 1 replica, --threads 1" redis 2800 2500 "$RP" "$RR1"
IDLE_THREADS=$NCPU idle_case "redis PING, 1 replica, --threads $NCPU" redis 2800 2500 "$RP" "$RR1"
idle_case "nginx GET 1 KiB, 0 replicas, --threads 1" http 4200 3800 "$NP"
idle_case "nginx GET 1 KiB, 1 replica, --threads 1" http 2800 2500 "$NP" "$NR1"
