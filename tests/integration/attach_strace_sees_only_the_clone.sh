#!/bin/bash
# Promise: strace attached to a clone of nginx captures the clone's
# accept4/read/write for requests sent through the front, and nothing from
# production; a production pid given to attach is refused.
. "$(dirname "$0")/lib.sh"
need nginx; need strace; need curl
L=$(free_port)
mkdir -p "$T/www" "$T/ng"
echo "traced" >"$T/www/t.txt"
cat >"$T/nginx.conf" <<CONF
daemon off; master_process on; worker_processes 1; user root;
pid $T/ng/nginx.pid; error_log $T/ng/error.log;
events { worker_connections 64; }
http { access_log $T/ng/access.log; client_body_temp_path $T/ng/body; proxy_temp_path $T/ng/proxy;
	fastcgi_temp_path $T/ng/f; uwsgi_temp_path $T/ng/u; scgi_temp_path $T/ng/s;
	server { listen 127.0.0.1:8080; root $T/www; } }
CONF
N=st$$
run_service "$N" --listen 127.0.0.1:$L --port 8080 --state "$T/ng" -- nginx -c "$T/nginx.conf"
clone "$N"
S=$(json "$T/clones.json" "j['service']['pid']")
expect_refused() {
	"$DOPPEL" attach "$@" >"$T/ref.out" 2>&1 && fail "attach $* was accepted"
	grep -q "clones only" "$T/ref.out" || fail "attach $*: unclear refusal: $(cat "$T/ref.out")"
}
expect_refused "$N" -- strace -p "$S"
expect_refused "$N/1" -- strace -p "$S"
spawn attach "$DOPPEL" attach "$N/1" --duration 6s -- strace -f -p {pids} -e trace=accept4,recvfrom,read,write,writev,sendfile -o strace.out
for _ in $(seq 100); do grep -q "attached to clone 1" "$T/attach.log" && break; sleep 0.1; done
sleep 1
for i in $(seq 12); do curl -sf "http://127.0.0.1:$L/t.txt?req=$i" >/dev/null || fail "request $i"; done
wait "$attach_PID"
out=$(ls "$T/work/$N/clone-1/"attach-*-strace/strace.out) || fail "no strace.out under the clone"
n=$(grep -c 'GET /t.txt?req=' "$out")
assert_eq "$n" 12 "requests seen in the clone's reads"
assert_ge "$(grep -c 'accept4(' "$out")" 12 "accept4 calls in the clone"
grep -q 'write.*HTTP/1.1 200' "$out" || grep -q 'writev.*HTTP/1.1 200' "$out" || fail "the clone's answers are not in the trace"
# Every pid in the trace is one of the clone's, none is production's.
clone_pids=" $(ls /proc/$(clone_pid "$N" 1)/task >/dev/null; for p in /proc/[0-9]*; do [ "$(readlink $p/ns/pid)" = "$(readlink /proc/$(clone_pid "$N" 1)/ns/pid)" ] && basename $p; done | tr '\n' ' ')"
prod_pids=" $(for p in /proc/[0-9]*; do [ "$(readlink $p/ns/pid 2>/dev/null)" = "$(readlink /proc/$S/ns/pid)" ] && basename $p; done | tr '\n' ' ')"
for p in $(awk '{print $1}' "$out" | grep -E '^[0-9]+$' | sort -u); do
	case $prod_pids in *" $p "*) fail "the trace contains production's pid $p" ;; esac
	case $clone_pids in *" $p "*) ;; *) fail "the trace contains pid $p, not the clone's ($clone_pids)" ;; esac
done
log "PASS: $n requests traced in the clone, none in production"
