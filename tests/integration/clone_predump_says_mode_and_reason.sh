#!/bin/bash
# Promise: `doppel clone` says whether it pre-dumped production's memory and
# why, `doppel status` keeps that per clone; `--predump on` where the kernel
# cannot track dirty memory fails with the cause and the fix, before
# production is touched (still serving, never frozen), and leaves no clone.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-cli
N=predump$$
mkdir -p "$T/data"
run_service "$N" L --port 6379 --state "$T/data" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --save '' --appendonly no \
	--enable-debug-command local
redis-cli -p "$L" debug populate 20000 >/dev/null || fail "populate"
if "${DOPPEL_CRIU:-criu}" check --feature mem_dirty_track >/dev/null 2>&1 ||
	/usr/local/sbin/criu check --feature mem_dirty_track >/dev/null 2>&1; then
	tracking=1
else
	tracking=0
fi
log "kernel tracks dirty memory: $tracking"

log "--predump auto (the default) says what it did and why"
clone "$N"
cat "$T/clone.out"
grep -q '^pre-dump: ' "$T/clone.out" || fail "no pre-dump line: $(cat "$T/clone.out")"
sup_status "$N" "$T/s.json"
c0="j['clones'][0]"
assert_eq "$(json "$T/s.json" "$c0['predump_asked']")" auto "predump asked"
if [ $tracking = 0 ]; then
	grep -q '^pre-dump: off (kernel has no soft-dirty tracking: .*CONFIG_MEM_SOFT_DIRTY.*); plain dump$' \
		"$T/clone.out" || fail "no fallback reason: $(cat "$T/clone.out")"
	assert_eq "$(json "$T/s.json" "$c0['predump']")" off "predump in status"
	json "$T/s.json" "$c0['predump_reason']" | grep -q 'CONFIG_MEM_SOFT_DIRTY' ||
		fail "status lacks the reason: $(json "$T/s.json" "$c0['predump_reason']")"
	assert_eq "$(json "$T/s.json" "len($c0['predump_passes'])")" 0 "passes without pre-dump"
else
	grep -q '^pre-dump pass 1: [0-9]* pages' "$T/clone.out" || fail "no pass line: $(cat "$T/clone.out")"
	assert_eq "$(json "$T/s.json" "$c0['predump']")" on "predump in status"
	assert_ge "$(json "$T/s.json" "len($c0['predump_passes'])")" 1 "passes"
fi
[ "$(json "$T/s.json" "$c0['final_pages']")" -gt 0 ] || fail "no final dump pages in status"
"$DOPPEL" status "$N" >"$T/status.txt" || fail "doppel status"
grep -q "clone 1: pre-dump $(json "$T/s.json" "$c0['predump']") (" "$T/status.txt" ||
	fail "status text lacks the pre-dump line: $(cat "$T/status.txt")"
C1=$(clone_pid "$N" 1)
d=$(redis_digest "$L") || exit 1
wait_for 10 eval '[ "$(in_clone "$C1" redis-cli -p 6379 debug digest)" = "$d" ]'
assert_eq "$(in_clone "$C1" redis-cli -p 6379 debug digest)" "$d" "clone digest"

log "--predump off: a plain dump, said so"
clone "$N" --predump off
grep -q '^pre-dump: off (--predump off); plain dump$' "$T/clone.out" || fail "off: $(cat "$T/clone.out")"

log "--predump with a bad value is a usage error"
"$DOPPEL" clone "$N" --predump maybe >"$T/bad.out" 2>&1
assert_eq $? 2 "exit status of --predump maybe"
grep -q "auto, on or off" "$T/bad.out" || fail "bad value message: $(cat "$T/bad.out")"

if [ $tracking = 0 ]; then
	log "--predump on where the kernel cannot track dirty memory"
	spid=$(json "$T/s.json" "j['service']['pid']")
	"$DOPPEL" clone "$N" --predump on >"$T/on.out" 2>&1
	assert_eq $? 1 "exit status of --predump on"
	cat "$T/on.out"
	grep -q -- "--predump on: pre-dump cannot work here (kernel has no soft-dirty tracking" "$T/on.out" ||
		fail "no cause: $(cat "$T/on.out")"
	grep -q "production was not touched" "$T/on.out" || fail "no word on production: $(cat "$T/on.out")"
	grep -q "CONFIG_MEM_SOFT_DIRTY=y" "$T/on.out" || fail "no fix: $(cat "$T/on.out")"
	grep -q "freezing production" "$T/on.out" && fail "production was frozen: $(cat "$T/on.out")"
	state=$(awk '{print $3}' "/proc/$spid/stat")
	case $state in t | T) fail "production is stopped (state $state)" ;; esac
	assert_eq "$(redis-cli -p "$L" set after-on yes)" OK "production serves after --predump on"
	sup_status "$N" "$T/s2.json"
	assert_eq "$(json "$T/s2.json" "len(j['clones'])")" 2 "clones after the refused one"
	[ -e "$T/work/$N/clone-3" ] && fail "the refused clone left a directory"
fi
log "PASS"
