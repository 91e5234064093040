# trace_lib.sh - helpers for the `doppel trace` integration tests, on top of
# lib.sh: the sample programs, and nginx under strace (run as root with
# `user root;` and `daemon off;` on a free loopback port in a temporary prefix;
# its master is stopped by pid, and registered for the EXIT trap too).
: "${DOPPEL_BUILD:?DOPPEL_BUILD must point at the build directory}"
SAMPLES=$DOPPEL_BUILD/tests/trace-samples
STRACE2CTF=$HERE/../trace-samples/strace2ctf.py

# nginx_conf DIR PORT : a minimal nginx prefix serving DIR/html
nginx_conf() {
	local dir=$1 port=$2
	mkdir -p "$dir/html" "$dir/logs" "$dir/tmp"
	for i in $(seq 50); do echo "page $i" >"$dir/html/p$i.html"; done
	cat >"$dir/nginx.conf" <<CONF
user root;
daemon off;
master_process on;
worker_processes 1;
error_log $dir/logs/error.log;
pid $dir/nginx.pid;
events { worker_connections 256; }
http {
  access_log $dir/logs/access.log;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  keepalive_timeout 0;
  server { listen 127.0.0.1:$port; root $dir/html; }
}
CONF
}

# wait_listen PORT [SECONDS] : until something listens on 127.0.0.1:PORT, without
# connecting (a probe connection would be a request in the trace)
wait_listen() {
	local port=$1 secs=${2:-10}
	for _ in $(seq $((secs * 20))); do
		ss -ltnH "sport = :$port" 2>/dev/null | grep -q LISTEN && return 0
		sleep 0.05
	done
	fail "nothing listens on 127.0.0.1:$port after ${secs}s"
}

# start_nginx_strace NAME PORT TRACE : nginx under strace -f -ttt -T -yy
start_nginx_strace() {
	local name=$1 port=$2 trace=$3 dir=$T/$1
	need nginx
	need strace
	nginx_conf "$dir" "$port"
	spawn "$name" strace -f -ttt -T -yy -o "$trace" nginx -p "$dir" -c "$dir/nginx.conf"
	wait_listen "$port" 20
	for _ in $(seq 100); do [ -s "$dir/nginx.pid" ] && break; sleep 0.05; done
	[ -s "$dir/nginx.pid" ] || fail "nginx wrote no pid file"
	PIDS+=("$(cat "$dir/nginx.pid")")
}

# stop_nginx_strace NAME : TERM nginx's master, wait until strace has written all
stop_nginx_strace() {
	local name=$1 dir=$T/$1 spid
	kill -TERM "$(cat "$dir/nginx.pid")" || fail "cannot stop nginx"
	spid=${name}_PID
	for _ in $(seq 100); do kill -0 "${!spid}" 2>/dev/null || break; sleep 0.05; done
	kill -0 "${!spid}" 2>/dev/null && fail "strace of nginx did not finish"
	wait "${!spid}" 2>/dev/null
	return 0
}
