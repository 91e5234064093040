#!/bin/bash
# Promise: `doppel doctor --pid` says whether a running process can be adopted
# and why not, without freezing it: a plain redis-server can (exit 0, its log
# file named as a file the clone gets a private copy of); a process with an
# inotify fd, and one in a network namespace of its own, cannot (exit 1, the
# reason and a fix printed); both keep running untouched. A terminal's child
# (not a session leader) is adoptable with a warning; a process whose session
# began outside doppel's pid namespace (session id 0, as in a container's
# shell) is refused, since CRIU cannot dump it.
. "$(dirname "$0")/lib.sh"
need redis-server; need unshare
REDIS_WRAP=setsid start_redis prod P # its own session, as under systemd
"$DOPPEL" doctor --pid "$prod_PID" --port "$P" >"$T/ok.out" 2>&1 || fail "doctor failed on redis: $(cat "$T/ok.out")"
grep -q "pid $prod_PID can be adopted" "$T/ok.out" || fail "no verdict: $(tail -5 "$T/ok.out")"
grep -q "listens on 127.0.0.1:$P" "$T/ok.out" || fail "port not checked: $(cat "$T/ok.out")"
grep -q "$T/prod.log is open for writing outside the state dirs" "$T/ok.out" ||
	fail "the log file is not reported: $(cat "$T/ok.out")"
"$DOPPEL" doctor --pid "$prod_PID" --port 1 >"$T/port.out" 2>&1 && fail "doctor accepted a port redis does not listen on"
grep -q "does not listen on TCP port 1" "$T/port.out" || fail "wrong port not explained: $(cat "$T/port.out")"

spawn watcher setsid $PY -c 'import ctypes, time; assert ctypes.CDLL(None).inotify_init() >= 0; print("ready", flush=True); time.sleep(120)'
started watcher ready
"$DOPPEL" doctor --pid "$watcher_PID" >"$T/ino.out" 2>&1 && fail "doctor accepted a process with an inotify fd"
grep -q "FAIL  pid $watcher_PID fd [0-9]*: anon_inode:inotify" "$T/ino.out" || fail "inotify not named: $(cat "$T/ino.out")"
grep -q "pid $watcher_PID cannot be adopted: 1 reason" "$T/ino.out" || fail "no verdict: $(tail -5 "$T/ino.out")"

spawn netns setsid unshare -n sleep 120
wait_for 10 eval '[ "$(readlink /proc/$netns_PID/ns/net)" != "$(readlink /proc/self/ns/net)" ]' || fail "unshare -n did not start"
"$DOPPEL" doctor --pid "$netns_PID" >"$T/ns.out" 2>&1 && fail "doctor accepted a process in its own netns"
grep -q "FAIL  pid $netns_PID runs in namespaces of its own" "$T/ns.out" || fail "namespaces not named: $(cat "$T/ns.out")"
grep -q "fix: " "$T/ns.out" || fail "no fix given"
"$DOPPEL" doctor --port 5 >"$T/usage.out" 2>&1; assert_eq "$?" 2 "--port without --pid is a usage error"

spawn child setsid bash -c 'sleep 120 & echo "child $!"; wait'
started child "child " || fail "the session child did not start"
CHILD=$(sed -n 's/^child //p' "$T/child.log")
PIDS+=("$CHILD")
"$DOPPEL" doctor --pid "$CHILD" >"$T/child.out" 2>&1 || fail "doctor refused a terminal's child: $(cat "$T/child.out")"
grep -q "warn  pid $CHILD is not a session leader: dumped as a shell job" "$T/child.out" ||
	fail "the shell job is not named: $(cat "$T/child.out")"

# In a pid namespace of its own, this shell's session leader is outside: a
# process started there reads session id 0, as in a CI runner's container.
unshare -p -f --mount-proc bash -c 'sleep 120 & "$0" doctor --pid $! >"$1" 2>&1; rc=$?; kill $!; exit $rc' \
	"$DOPPEL" "$T/sid0.out" && fail "doctor accepted a process whose session is outside its pid namespace"
grep -q "FAIL  pid [0-9]*'s session began outside doppel's pid namespace (session id 0 here)" "$T/sid0.out" ||
	fail "the outside session is not named: $(cat "$T/sid0.out")"
grep -q "fix: start the service with setsid" "$T/sid0.out" || fail "no fix for the outside session: $(cat "$T/sid0.out")"

kill -0 "$prod_PID" && kill -0 "$watcher_PID" && kill -0 "$netns_PID" || fail "a process did not survive doctor"
assert_eq "$(redis-cli -p "$P" ping)" PONG "redis answers after doctor"
log "PASS: redis adoptable; a shell's child warned; inotify, own-netns and outside-session processes refused with reasons"
