#!/bin/bash
# criu_killer.sh - a stand-in for CRIU (`doppel run --criu THIS`): every
# command but `dump` runs the real CRIU; `dump` runs it too, waits until
# production ($CRIU_KILL_PIDFILE holds its pid) is seized (state 't' in
# /proc/PID/stat: CRIU has it stopped), lets $CRIU_KILL_DELAY seconds pass and
# SIGKILLs CRIU: a dump killed in its middle. It says what it did in
# $CRIU_KILL_PIDFILE.done. Only while $CRIU_KILL_PIDFILE.arm exists (once).
real=${CRIU_REAL:-/usr/local/sbin/criu}
[ "${1:-}" = dump ] && [ -e "$CRIU_KILL_PIDFILE.arm" ] || exec "$real" "$@"
rm -f "$CRIU_KILL_PIDFILE.arm"
"$real" "$@" &
criu=$!
prod=$(cat "$CRIU_KILL_PIDFILE")
seized=no
for _ in $(seq 2000); do
	st=$(sed 's/.*) //' "/proc/$prod/stat" 2>/dev/null | cut -d' ' -f1)
	[ "$st" = t ] && { seized=yes; break; }
	kill -0 "$criu" 2>/dev/null || break
	sleep 0.001
done
sleep "${CRIU_KILL_DELAY:-0.02}"
kill -KILL "$criu" 2>/dev/null && killed=yes || killed=no
echo "seized=$seized killed=$killed" >"$CRIU_KILL_PIDFILE.done"
wait "$criu"
# die as CRIU did, so doppel sees what it would see
kill -KILL $$
