#!/bin/bash
# Promise: with --protocol http and a control replica, real HTTP servers that
# put Date (and Server, Last-Modified, ETag) on every answer, plus an endpoint
# whose answers differ every time, report nothing across seconds of load: the
# volatile headers are masked and the random endpoint's raw divergence is
# cancelled by the same noise on the control. A file changed on the candidate
# only is reported, with its path.
. "$(dirname "$0")/lib.sh"
need nginx
H=$HERE/http_noise.py

# wait_compared ADMIN N FILE : until every replica compared N turns (or 20 s)
wait_compared() {
	for _ in $(seq 200); do
		"$DOPPEL" diverge --admin "$1" --json >"$3" || fail "doppel diverge failed"
		[ "$(json "$3" "min(r['divergence']['turns_compared'] for r in j['replicas'])")" -ge "$2" ] && return
		sleep 0.1
	done
	fail "replicas did not compare $2 turns: $(cat "$3")"
}

# ---- python http.server: Date, Server, Last-Modified; /random/N differs every time
mkdir -p "$T/www/sub"
echo "alpha" >"$T/www/a.txt"
# b.bin spans two window blocks. Production may run a dozen turns ahead of replicas that
# are still connecting; at 20 KB that passed the 64 KiB window, and the first excerpts
# (the ones kept) lost their offsets, as documented: keep the early lag within the window.
head -c 8000 /dev/urandom >"$T/www/b.bin"
echo "gamma" >"$T/www/sub/c.txt"
P=$(free_port); C=$(free_port); K=$(free_port); L=$(free_port); A=$(free_port)
spawn py_prod $PY "$H" serve "$P" "$T/www"
spawn py_cand $PY "$H" serve "$C" "$T/www"
spawn py_ctl $PY "$H" serve "$K" "$T/www"
wait_port "$P"; wait_port "$C"; wait_port "$K"
spawn proxy "$DOPPEL" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:$P \
	--replica cand=127.0.0.1:$C --control 127.0.0.1:$K --protocol http --admin 127.0.0.1:$A
wait_port "$L"; wait_port "$A"
n=$($PY "$H" load "$L" 4 4 /a.txt /b.bin /random/1 /sub/c.txt /random/22) || fail "load failed"
log "python servers: $n requests in 4 s"
wait_compared 127.0.0.1:$A "$n" "$T/py.json"
C0="[r for r in j['replicas'] if r['name']=='cand'][0]['divergence']"
assert_eq "$(json "$T/py.json" "$C0['turns_net']")" 0 "net divergence of an unchanged candidate"
assert_eq "$(json "$T/py.json" "[t['raw'] for t in $C0['types'] if t['type']=='GET /a.txt'][0]")" 0 \
	"raw divergence of /a.txt (Date, Server, Last-Modified masked)"
R0="[t for t in $C0['types'] if t['type']=='GET /random/{n}'][0]"
assert_gt "$(json "$T/py.json" "$R0['paired_raw']")" 0 "raw divergence of /random/{n}"
assert_gt "$(json "$T/py.json" "$R0['noise']")" 0 "noise of /random/{n} on the control"
assert_eq "$(json "$T/py.json" "$R0['reported']")" False "/random/{n} reported"
"$DOPPEL" diverge --admin 127.0.0.1:$A >"$T/py.txt"
grep -q DIVERGED "$T/py.txt" && fail "something was reported: $(cat "$T/py.txt")"
stop_pid "$proxy_PID" || fail "proxy exited with an error"

# ---- nginx: Date, Server, ETag, Last-Modified; one file changed on the candidate
# nginx_site NAME PORT HTMLDIR : an nginx serving HTMLDIR on PORT
nginx_site() {
	local dir=$T/$1
	mkdir -p "$dir/logs" "$dir/tmp"
	cat >"$dir/nginx.conf" <<CONF
user root;
daemon off;
master_process on;
worker_processes 1;
error_log $dir/logs/error.log;
pid $dir/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  server { listen 127.0.0.1:$2; root $3; }
}
CONF
	spawn "$1" nginx -c "$dir/nginx.conf"
	wait_port "$2"
}
cp -a "$T/www" "$T/www_cand"
echo "GAMMA" >"$T/www_cand/sub/c.txt" # same length: the difference is in the body
touch -r "$T/www/sub/c.txt" "$T/www_cand/sub/c.txt"
P=$(free_port); C=$(free_port); K=$(free_port); L=$(free_port); A=$(free_port)
nginx_site ng_prod "$P" "$T/www"
nginx_site ng_cand "$C" "$T/www_cand"
nginx_site ng_ctl "$K" "$T/www"
spawn proxy2 "$DOPPEL" proxy --listen 127.0.0.1:$L --backend 127.0.0.1:$P \
	--replica cand=127.0.0.1:$C --control 127.0.0.1:$K --protocol http --admin 127.0.0.1:$A
wait_port "$L"; wait_port "$A"
n=$($PY "$H" load "$L" 4 4 /a.txt /b.bin /sub/c.txt) || fail "load failed"
log "nginx: $n requests in 4 s"
wait_compared 127.0.0.1:$A "$n" "$T/ng.json"
C0="[r for r in j['replicas'] if r['name']=='cand'][0]['divergence']"
K0="[r for r in j['replicas'] if r['name']=='control'][0]['divergence']"
assert_eq "$(json "$T/ng.json" "$K0['turns_diverged']")" 0 "control's divergence (Date, ETag masked)"
assert_eq "$(json "$T/ng.json" "[t['reported'] for t in $C0['types'] if t['type']=='GET /sub/c.txt'][0]")" True \
	"the changed file reported"
assert_eq "$(json "$T/ng.json" "[t['net'] for t in $C0['types'] if t['type']!='GET /sub/c.txt']")" "[0, 0]" \
	"net divergence of the unchanged files"
assert_eq "$(json "$T/ng.json" "all('/sub/c.txt' in e['request'] for e in $C0['excerpts'])")" True \
	"excerpts are of the changed file"
assert_eq "$(json "$T/ng.json" "[e['replica']['after'][:5] for e in $C0['excerpts'] if e['offset'] >= 0][0]")" GAMMA \
	"the excerpt shows the candidate's bytes"
assert_eq "$(json "$T/ng.json" "[e['production']['after'][:5] for e in $C0['excerpts'] if e['offset'] >= 0][0]")" gamma \
	"the excerpt shows production's bytes"
"$DOPPEL" diverge --admin 127.0.0.1:$A >"$T/ng.txt"
grep -q 'GET /sub/c.txt .*DIVERGED' "$T/ng.txt" || fail "the report does not flag /sub/c.txt: $(cat "$T/ng.txt")"
# /status and /metrics carry the same net count as the report (traffic has stopped)
net=$(json "$T/ng.json" "$C0['turns_net']")
assert_gt "$net" 0 "net divergence with one file changed"
status_json 127.0.0.1:$A "$T/ng-status.json"
assert_eq "$(json "$T/ng-status.json" "[r['net_diverged_turns'] for r in j['replicas'] if r['name']=='cand'][0]")" \
	"$net" "/status net_diverged_turns of the candidate"
assert_eq "$(json "$T/ng-status.json" "[r['net_diverged_turns'] for r in j['replicas'] if r['name']=='control'][0]")" \
	0 "/status net_diverged_turns of the control"
curl -sf "http://127.0.0.1:$A/metrics" >"$T/ng.metrics" || fail "GET /metrics"
grep -q "^doppel_replica_net_diverged_turns{replica=\"cand\",.*} $net\$" "$T/ng.metrics" ||
	fail "/metrics lacks the candidate's net count $net: $(grep net_diverged "$T/ng.metrics")"
stop_pid "$proxy2_PID" || fail "proxy exited with an error"
for s in ng_prod ng_cand ng_ctl; do v=${s}_PID; stop_pid "${!v}"; done
log "PASS: noise cancelled, the changed file reported with its path"
