#!/bin/bash
# Promise: deploy/systemd's units run doppel as systemd would. doppel@NAME:
# READY=1 arrives from the main process, a clone works under the unit's
# capability bounding set and sandboxing (and under the strict drop-in), the
# service dying restarts the unit, bad arguments do not, and SIGTERM stops it
# with exit status 0 and nothing left in its cgroup. doppel-proxy@NAME: the
# same for a bare proxy running as a dynamic user with no capabilities.
# systemd-analyze verify finds nothing to say about the units.
#
# systemd is not PID 1 here, so tests/integration/systemd_emul.py runs the
# units: it reads them, applies what it can (see its header) and refuses any
# directive it does not know.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-cli
# The units use doppel's default admin directory, and so do the clients here.
export DOPPEL_RUN_DIR=/run/doppel
UNITS=$(cd "$HERE/../../deploy/systemd" && pwd)
EMUL="$PY $HERE/systemd_emul.py"
if [ -d /run/systemd/system ]; then
	log "systemd runs here, but this test emulates it all the same (no unit is installed on the host)"
else
	log "no systemd as PID 1 ($(ps -o comm= -p 1)): the units run under systemd_emul.py"
fi
mkdir -p "$T/etc" "$T/units"

# ---- systemd-analyze verify: syntax, directives, the binary, the drop-in
if command -v systemd-analyze >/dev/null; then
	for u in doppel@.service doppel-proxy@.service; do
		sed "s#/usr/local/bin/doppel#$DOPPEL#" "$UNITS/$u" >"$T/units/$u"
	done
	mkdir -p "$T/units/doppel@.service.d"
	cp "$UNITS/doppel-strict.conf" "$T/units/doppel@.service.d/strict.conf"
	(cd "$T/units" && systemd-analyze verify --man=no ./doppel@v.service ./doppel-proxy@v.service) \
		>"$T/verify.out" 2>&1 || fail "systemd-analyze verify failed: $(cat "$T/verify.out")"
	[ -s "$T/verify.out" ] && fail "systemd-analyze verify has remarks: $(cat "$T/verify.out")"
	log "systemd-analyze verify: both units and the drop-in are clean"
else
	fail "systemd-analyze is missing (Debian package systemd, in deploy/install.sh)"
fi

MAPS=(--map "/usr/local/bin/doppel=$DOPPEL" --map "/etc/doppel=$T/etc")
# wait_state FILE REGEX SECONDS : until the emulator's last event matches
wait_state() {
	local f=$1 re=$2 secs=$3
	for _ in $(seq $((secs * 10))); do
		grep -Eq "$re" "$f" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no '$re' from the unit after ${secs}s: $(cat "$f" 2>/dev/null)"
}
# caps PID : the capability bounding set of PID
caps() { awk '/^CapBnd/ {print $2}' "/proc/$1/status"; }
# mount_opts PID PATH : the options of the mount at PATH, as PID sees it
mount_opts() { awk -v p="$2" '$5 == p {o = $6} END {print o}' "/proc/$1/mountinfo"; }

# ---- doppel@NAME: start, clone under the hardening, restart, stop
N=unit$$
L=$(free_port)
DATA=/var/lib/doppel-state/$N/data # where doppel-strict.conf lets services write
mkdir -p "$DATA"
on_exit "rm -rf /var/lib/doppel-state/$N; rmdir /var/lib/doppel-state 2>/dev/null"
echo "DOPPEL_RUN_ARGS=--listen 127.0.0.1:$L --port 6379 --state $DATA --stop-timeout 5s -- redis-server --port 6379 --bind 127.0.0.1 --dir $DATA --appendonly yes" \
	>"$T/etc/$N.env"
spawn unit $EMUL "$UNITS/doppel@.service" "$N" "${MAPS[@]}" --state "$T/unit.state"
wait_state "$T/unit.log" '^ready pid=' 60
MAIN=$(sed -n 's/^ready pid=\([0-9]*\).*/\1/p' "$T/unit.log" | head -1)
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "j['supervisor_pid']")" "$MAIN" "READY=1 came from doppel run itself"
SVC=$(json "$T/s.json" "j['service']['pid']")
track_pid "$SVC"
UNIT_CAPS=$(caps "$MAIN")
assert_eq "$(caps "$SVC")" "$UNIT_CAPS" "the service's bounding set is the unit's"
[ "$UNIT_CAPS" != "$(caps $$)" ] || fail "CapabilityBoundingSet was not applied (bounding set $UNIT_CAPS)"
assert_eq "$(awk '/^NoNewPrivs/ {print $2}' "/proc/$SVC/status")" 1 "NoNewPrivileges on the service"
[[ $(mount_opts "$MAIN" /etc) == ro,* ]] || fail "ProtectSystem=full: /etc is not read-only for doppel"
[ "$(stat -L -c %i "/proc/$MAIN/root/tmp")" != "$(stat -c %i /tmp)" ] || fail "PrivateTmp: doppel sees the host's /tmp"
redis-cli -p "$L" set k v >/dev/null || fail "production does not answer through --listen"
clone "$N"
C=$(clone_pid "$N" 1)
assert_eq "$(in_clone "$C" redis-cli -p 6379 get k)" v "the clone made under the unit's hardening"
assert_eq "$(caps "$C")" "$UNIT_CAPS" "the clone's bounding set"
log "doppel@$N: ready from pid $MAIN, a clone (pid $C) made and answering under the unit's sandbox"

# Restart=on-failure: production dies, doppel exits 1, the unit starts again.
kill -KILL "$SVC"
wait_state "$T/unit.log" "^exited pid=$MAIN status=1 ready=1 leftover=0" 30
wait_state "$T/unit.log" '^restart in ' 5
for _ in $(seq 200); do
	[ "$(grep -c '^ready pid=' "$T/unit.log")" -ge 2 ] && break
	sleep 0.1
done
[ "$(grep -c '^ready pid=' "$T/unit.log")" -ge 2 ] || fail "the unit did not come back: $(tail -5 "$T/unit.log")"
kill -0 "$C" 2>/dev/null && fail "clone $C survived its supervisor"
MAIN2=$(sed -n 's/^ready pid=\([0-9]*\).*/\1/p' "$T/unit.log" | tail -1)
sup_status "$N" "$T/s2.json"
track_pid "$(json "$T/s2.json" "j['service']['pid']")"
assert_eq "$(redis-cli -p "$L" get k)" v "production after the restart (its AOF)"
log "Restart=on-failure: the service was killed, doppel exited 1 leaving nothing, pid $MAIN2 is ready"
clone "$N"

# Stop: SIGTERM to doppel only (KillMode=mixed), exit 0, an empty cgroup.
kill -TERM "$unit_PID"
wait "$unit_PID"
rc=$?
grep -q '^stopped status=0 leftover=0 clean=1' "$T/unit.log" || fail "unclean stop: $(tail -5 "$T/unit.log")"
assert_eq "$rc" 0 "the emulator's verdict"
[ -e "/run/doppel/$N.sock" ] && fail "admin socket left"
[ -e "/var/lib/doppel/$N" ] && fail "work dir left: $(ls -R "/var/lib/doppel/$N" | head)"
log "stop: doppel exited 0 and its cgroup was empty"

# ---- the strict drop-in: the whole file system read-only but the state dirs
spawn strict $EMUL "$UNITS/doppel@.service" "$N" "${MAPS[@]}" --dropin "$UNITS/doppel-strict.conf"
wait_state "$T/strict.log" '^ready pid=' 60
MAIN=$(sed -n 's/^ready pid=\([0-9]*\).*/\1/p' "$T/strict.log" | head -1)
[[ $(mount_opts "$MAIN" /) == ro,* ]] || fail "ProtectSystem=strict: / is not read-only for doppel"
clone "$N"
C=$(clone_pid "$N" 1)
redis-cli -p "$L" set k2 v2 >/dev/null
for _ in $(seq 50); do [ "$(in_clone "$C" redis-cli -p 6379 get k2)" = v2 ] && break; sleep 0.1; done
assert_eq "$(in_clone "$C" redis-cli -p 6379 get k2)" v2 "a clone under ProtectSystem=strict gets new writes"
kill -TERM "$strict_PID"
wait "$strict_PID" || fail "unclean stop under the strict drop-in: $(tail -5 "$T/strict.log")"
log "doppel-strict.conf: clone made, stop clean"

# ---- bad arguments: exit 2, no restart
echo "DOPPEL_RUN_ARGS=--listen 127.0.0.1:$L --port 6379 --no-such-option -- redis-server" >"$T/etc/bad$$.env"
$EMUL "$UNITS/doppel@.service" "bad$$" "${MAPS[@]}" >"$T/bad.log" 2>&1 && fail "a unit with bad arguments succeeded"
grep -q '^failed status=2 (no restart: RestartPreventExitStatus)' "$T/bad.log" ||
	fail "bad arguments: $(tail -3 "$T/bad.log")"
grep -q "unknown or incomplete option '--no-such-option'" "$T/bad.log" || fail "no reason given for exit 2"
log "bad arguments: exit 2 and no restart"

# ---- doppel-proxy@NAME: a dynamic user, no capabilities
B=$(free_port); R=$(free_port); PL=$(free_port)
start_redis prod "$B"
start_redis replica "$R"
P=px$$
ADMIN=unix:/run/doppel-proxy/$P.sock
echo "DOPPEL_PROXY_ARGS=--listen 127.0.0.1:$PL --backend 127.0.0.1:$B --replica r=127.0.0.1:$R --admin $ADMIN" \
	>"$T/etc/proxy-$P.env"
spawn proxy $EMUL "$UNITS/doppel-proxy@.service" "$P" "${MAPS[@]}"
wait_state "$T/proxy.log" '^ready pid=' 30
PMAIN=$(sed -n 's/^ready pid=\([0-9]*\).*/\1/p' "$T/proxy.log" | head -1)
uid=$(awk '/^Uid/ {print $2}' "/proc/$PMAIN/status")
[ "$uid" -ge 61184 ] || fail "doppel proxy runs as uid $uid, not a dynamic user"
assert_eq "$(caps "$PMAIN")" 0000000000000000 "the proxy's bounding set"
for i in $(seq 20); do redis-cli -p "$PL" set "p$i" v >/dev/null || fail "set through the proxy unit"; done
for _ in $(seq 50); do [ "$(redis-cli -p "$R" dbsize)" = 20 ] && break; sleep 0.1; done
assert_eq "$(redis-cli -p "$R" dbsize)" 20 "keys on the replica behind the proxy unit"
status_json "$ADMIN" "$T/p.json"
assert_eq "$(json "$T/p.json" "j['replicas'][0]['overflows']")" 0 "replica overflows"
kill -TERM "$proxy_PID"
wait "$proxy_PID" || fail "unclean stop of the proxy unit: $(tail -5 "$T/proxy.log")"
grep -q '^stopped status=0 leftover=0 clean=1' "$T/proxy.log" || fail "proxy unit stop: $(tail -3 "$T/proxy.log")"
[ -e "/run/doppel-proxy/$P.sock" ] && fail "the proxy's admin socket is left"
grep '^not applied here' "$T/proxy.log" | sed 's/^/    /'
log "doppel-proxy@$P: ready as uid $uid with no capabilities, traffic duplicated, stopped cleanly"
log "PASS"
