#!/bin/bash
# Promise: where CRIU can track dirty memory, `doppel clone` runs pre-dump
# passes while production runs, stops on the documented rule (here: the
# third pass wrote <= 2560 pages), freezes production once for a dump of the
# pages dirtied since the last pass (--track-mem --prev-images-dir pre-3),
# prints each pass and keeps them in `doppel status`; a failing pass under
# --predump auto falls back to a plain dump and says why.
# This kernel may lack soft-dirty tracking, so a wrapper stands in for CRIU:
# it answers the tracking check and the pre-dump passes (pages written:
# 30000, 9000, 2000, ...) and hands the final dump to the real CRIU without
# the parent images, so the clone is real and its data checked.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-cli; need nsenter
REAL=${DOPPEL_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
[ -x "$REAL" ] || skip "criu is not installed (deploy/install.sh installs it)"
echo ok >"$T/mode"
cat >"$T/criu" <<WRAP
#!/bin/bash
echo "\$*" >>"$T/criu.calls"
case "\$1" in
check) [ "\$*" = "check --feature mem_dirty_track" ] && exit 0 ;;
pre-dump)
	[ "\$(cat "$T/mode")" = fail ] && { echo "Error (emulated): pre-dump refused"; exit 1; }
	dir=; while [ \$# -gt 0 ]; do [ "\$1" = -D ] && dir=\$2; shift; done
	case \$(basename "\$dir") in pre-1) p=30000 ;; pre-2) p=9000 ;; *) p=2000 ;; esac
	echo "Displaying dump stats:"
	echo "Freezing time: 100 us"
	echo "Frozen time: 1500 us"
	echo "Memory pages scanned: 40000 (0x0)"
	echo "Memory pages written: \$p (0x0)"
	exit 0 ;;
dump)
	args=(); skip=0
	for a in "\$@"; do
		if [ \$skip = 1 ]; then skip=0; continue; fi
		case \$a in --track-mem) ;; --prev-images-dir) skip=1 ;; *) args+=("\$a") ;; esac
	done
	exec "$REAL" "\${args[@]}" ;;
esac
exec "$REAL" "\$@"
WRAP
chmod +x "$T/criu"
N=passes$$
mkdir -p "$T/data"
run_service "$N" L --port 6379 --state "$T/data" --criu "$T/criu" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --save '' --appendonly no \
	--enable-debug-command local
redis-cli -p "$L" debug populate 5000 >/dev/null || fail "populate"

log "passes until the dirty set is small, then one frozen dump on top of them"
clone "$N" --predump on
cat "$T/clone.out"
grep -q '^pre-dump: on (kernel tracks dirty pages)' "$T/clone.out" || fail "no mode line"
for k in 1 2 3; do grep -q "^pre-dump pass $k: " "$T/clone.out" || fail "no line for pass $k"; done
grep -q '^pre-dump pass 4' "$T/clone.out" && fail "a 4th pass after a small dirty set"
grep -q '^pre-dump: stopped after 3 passes: dirty set small enough: 2000 pages <= 2560$' "$T/clone.out" ||
	fail "no stop reason"
grep -q 'pages dirtied since the last pass only' "$T/clone.out" || fail "final dump not said incremental"
assert_eq "$(grep -c '^pre-dump ' "$T/criu.calls")" 3 "pre-dump runs"
grep '^pre-dump ' "$T/criu.calls" | sed -n 2p | grep -q -- '--prev-images-dir ../pre-1' ||
	fail "pass 2 not on top of pass 1: $(grep '^pre-dump ' "$T/criu.calls" | sed -n 2p)"
grep '^dump ' "$T/criu.calls" | tail -1 | grep -q -- '--track-mem --prev-images-dir pre-3' ||
	fail "final dump not on top of pass 3: $(grep '^dump ' "$T/criu.calls" | tail -1)"
sup_status "$N" "$T/s.json"
c0="j['clones'][0]"
assert_eq "$(json "$T/s.json" "$c0['predump']")" on "predump in status"
assert_eq "$(json "$T/s.json" "$c0['predump_asked']")" on "predump asked in status"
assert_eq "$(json "$T/s.json" "[p['pages'] for p in $c0['predump_passes']]")" "[30000, 9000, 2000]" "passes in status"
assert_eq "$(json "$T/s.json" "$c0['predump_passes'][0]['frozen_ms']")" 1.5 "pass frozen time"
json "$T/s.json" "$c0['predump_reason']" | grep -q "stopped after 3 passes" || fail "no stop reason in status"
"$DOPPEL" status "$N" | grep -q "clone 1: pre-dump on (.*); passes of 30000, 9000, 2000 pages in" ||
	fail "status text: $("$DOPPEL" status "$N")"
C1=$(clone_pid "$N" 1)
d=$(redis_digest "$L") || exit 1
wait_for 10 eval '[ "$(in_clone "$C1" redis-cli -p 6379 debug digest)" = "$d" ]'
assert_eq "$(in_clone "$C1" redis-cli -p 6379 debug digest)" "$d" "clone digest"

log "a pass that fails: auto falls back to a plain dump, on fails and production serves"
echo fail >"$T/mode"
clone "$N"
cat "$T/clone.out"
grep -q '^pre-dump: off (pre-dump pass 1 failed (criu exit 1): Error (emulated): pre-dump refused' "$T/clone.out" ||
	fail "no fallback reason"
grep '^dump ' "$T/criu.calls" | tail -1 | grep -q -- '--prev-images-dir' && fail "plain dump had a parent"
sup_status "$N" "$T/s.json"
assert_eq "$(json "$T/s.json" "j['clones'][-1]['predump']")" off "predump after a failed pass"
"$DOPPEL" clone "$N" --predump on >"$T/on.out" 2>&1
assert_eq $? 1 "exit status of --predump on with a failing pass"
grep -q "pre-dump pass 1 failed" "$T/on.out" || fail "no cause: $(cat "$T/on.out")"
assert_eq "$(redis-cli -p "$L" set after yes)" OK "production serves after a failed pre-dump"
log "PASS"
