#!/bin/bash
# Promise: the errors an operator will hit say what failed, why and what to
# do, with the right exit status, and a failed clone leaves production
# running and nothing behind.
. "$(dirname "$0")/lib.sh"
need setpriv
expect() { # expect STATUS TEXT CMD...
	local want=$1 text=$2; shift 2
	timeout 60 "$@" >"$T/out" 2>&1
	local rc=$?
	[ $rc -eq "$want" ] || fail "$*: exit $rc, expected $want: $(tail -3 "$T/out")"
	grep -q -- "$text" "$T/out" || fail "$*: message lacks '$text': $(tail -3 "$T/out")"
}
L=$(free_port)
expect 1 "cannot start the service: no-such-command-xyz" "$DOPPEL" run e1 --listen 127.0.0.1:$L --port 9 --work-dir "$T/w" -- no-such-command-xyz
expect 1 "exit status 3); its last words: oops" "$DOPPEL" run e2 --listen 127.0.0.1:$L --port 9 --work-dir "$T/w" -- sh -c 'echo oops; exit 3'
expect 1 "the service exited (exit status 4)" "$DOPPEL" run e2b --listen 127.0.0.1:$L --port 9 --work-dir "$T/w" -- sh -c 'sleep 0.5; exit 4'
expect 1 "did not listen on 127.0.0.1:9" "$DOPPEL" run e3 --listen 127.0.0.1:$L --port 9 --ready-timeout 1s --stop-timeout 1s --work-dir "$T/w" -- sleep 30
expect 2 "--port is required" "$DOPPEL" run e4 --listen 127.0.0.1:$L -- true
expect 2 "bad NAME" "$DOPPEL" run ../x --listen 127.0.0.1:$L --port 9 -- true
expect 2 "--state /nonexistent" "$DOPPEL" run e5 --listen 127.0.0.1:$L --port 9 --state /nonexistent -- true
expect 2 "give the service's command" "$DOPPEL" run e6 --listen 127.0.0.1:$L --port 9
expect 1 "nothing is listening" "$DOPPEL" clone nosuch$$
expect 2 "not NAME/ID" "$DOPPEL" destroy nosuch
expect 2 "must run as root" setpriv --reuid=65534 --regid=65534 --clear-groups "$DOPPEL" run e7 --listen 127.0.0.1:$L --port 9 -- true

log "CRIU missing or too old"
printf '#!/bin/sh\necho "Version: 3.17.1"\n' >"$T/old-criu"; chmod +x "$T/old-criu"
N=nocriu$$
run_service "$N" L2 --port 8000 --criu "$T/old-criu" -- $PY -m http.server 8000 --bind 127.0.0.1
expect 1 "CRIU 3.17.1 at $T/old-criu is too old: doppel needs CRIU >= 4.2" "$DOPPEL" clone "$N"
grep -q "deploy/install.sh" "$T/out" || fail "no fix given for an old CRIU: $(cat "$T/out")"
"$DOPPEL" stop "$N" >/dev/null
N=nocriu2$$
run_service "$N" L2 --port 8000 --criu /nonexistent/criu -- $PY -m http.server 8000 --bind 127.0.0.1
expect 1 "CRIU not found at /nonexistent/criu" "$DOPPEL" clone "$N"
"$DOPPEL" stop "$N" >/dev/null
DOPPEL_CRIU=$T/old-criu expect 1 "too old" "$DOPPEL" doctor
expect 2 "--images /nonexistent" "$DOPPEL" clone x$$ --images /nonexistent

log "a service that cannot be dumped (runs as nobody: CRIU cannot read its rlimits)"
N=nobody$$
run_service "$N" L --port 8000 -- setpriv --reuid=65534 --regid=65534 --clear-groups \
	$PY -m http.server 8000 --bind 127.0.0.1 --directory /
expect 1 "CRIU could not dump the service" "$DOPPEL" clone "$N"
grep -q "(CRIU's log: $T/work/$N/failed-1/dump.log)" "$T/out" || fail "no path to CRIU's log: $(cat "$T/out")"
grep -q "Error (" "$T/out" || fail "CRIU's own reason is not quoted: $(cat "$T/out")"
grep -q "Error (" "$T/work/$N/failed-1/dump.log" || fail "CRIU's log was not kept for the operator"
curl -sf "http://127.0.0.1:$L/" >/dev/null || fail "production does not answer after the failed clone"
[ -e "$T/work/$N/clone-1" ] && fail "a failed clone left its directory"
[ "$(ls "$T/work/$N/failed-1" | grep -v -E '^(dump|restore|page-server|predump-[0-9]+)\.(log|out)$|^log$')" = "" ] ||
	fail "a failed clone kept more than logs: $(ls "$T/work/$N/failed-1")"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "len(j['clones'])")" 0 "clones after a failure"
expect 1 "has no clone 7" "$DOPPEL" destroy "$N/7"
# The admin API checks what the CLI checks: out-of-range values are a 400 that names them.
for q in 'cpu_weight=20000' 'cpu_weight=99999999999999999999' 'pids=-1' 'count=0x2' 'memory=1K' \
	'predump=maybe' 'keep=rel/dir'; do
	code=$(curl -s -o "$T/api.out" -w '%{http_code}' -X POST --unix-socket "$DOPPEL_RUN_DIR/$N.sock" "http://x/clone?$q")
	assert_eq "$code" 400 "POST /clone?$q"
	grep -q "bad\|keep=DIR" "$T/api.out" || fail "POST /clone?$q: no reason: $(cat "$T/api.out")"
done

log "a second supervisor with the same name or port"
expect 2 "already running" "$DOPPEL" run "$N" --listen 127.0.0.1:$(free_port) --port 8000 -- true
expect 2 "already in use" "$DOPPEL" run other$$ --listen 127.0.0.1:$L --port 8000 -- true
log "PASS"
