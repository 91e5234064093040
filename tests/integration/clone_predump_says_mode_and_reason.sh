#!/bin/bash
# Promise: `doppel clone` says whether it pre-dumped production's memory and
# why, `doppel status` keeps that per clone; where the kernel has no
# soft-dirty but CRIU tracks written pages (deploy/criu/track-written.patch),
# it registers production for write tracking, says so, and the clone holds
# production's data; `--predump on` where dirty memory cannot be tracked at
# all (a CRIU that fails both checks stands in for such a host) fails with
# the cause and the fix, before production is touched (still serving, never
# frozen), and leaves no clone.
. "$(dirname "$0")/lib.sh"
need redis-server; need redis-cli
N=predump$$
mkdir -p "$T/data"
run_service "$N" L --port 6379 --state "$T/data" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --save '' --appendonly no \
	--enable-debug-command local
redis-cli -p "$L" debug populate 20000 >/dev/null || fail "populate"
REAL=${DOPPEL_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
if "$REAL" check --feature mem_dirty_track >/dev/null 2>&1; then
	tracking=1 # soft-dirty
elif "$REAL" check --feature mem_written_track >/dev/null 2>&1; then
	tracking=2 # written pages, userfaultfd write-protect
else
	tracking=0
fi
log "dirty memory tracking: $tracking (0 none, 1 soft-dirty, 2 written pages)"

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
	if [ $tracking = 2 ]; then
		grep -q '^pre-dump: on (kernel has no soft-dirty; tracking written pages with userfaultfd write-protect)' \
			"$T/clone.out" || fail "no written-tracking reason: $(cat "$T/clone.out")"
		grep -q '^write tracking: 1 process, [1-9][0-9]* mappings registered' "$T/clone.out" ||
			fail "no registration line: $(cat "$T/clone.out")"
		json "$T/s.json" "$c0['predump_reason']" | grep -q 'tracking written pages' ||
			fail "status lacks the mode: $(json "$T/s.json" "$c0['predump_reason']")"
		# the registration is gone with the last dump: no userfaultfd left anywhere
		spid=$(json "$T/s.json" "j['service']['pid']")
		grep -q '^VmFlags:.* uw' "/proc/$spid/smaps" && fail "production still registered after the clone"
		v=sup_${N}_PID
		ls -l "/proc/${!v}/fd" | grep -q userfaultfd && fail "the supervisor kept a userfaultfd"
	fi
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

log "--predump on where dirty memory cannot be tracked (a CRIU that fails both checks)"
cat >"$T/criu-none" <<WRAP
#!/bin/bash
case "\$*" in
"check --feature mem_dirty_track" | "check --feature mem_written_track") exit 1 ;;
esac
exec "$REAL" "\$@"
WRAP
chmod +x "$T/criu-none"
N2=nodirty$$
mkdir -p "$T/data2"
run_service "$N2" L2 --port 6379 --state "$T/data2" --criu "$T/criu-none" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data2" --save '' --appendonly no
sup_status "$N2" "$T/n2.json"
spid=$(json "$T/n2.json" "j['service']['pid']")
"$DOPPEL" clone "$N2" --predump on >"$T/on.out" 2>&1
assert_eq $? 1 "exit status of --predump on"
cat "$T/on.out"
grep -q -- "--predump on: pre-dump cannot work here (kernel has no soft-dirty tracking" "$T/on.out" ||
	fail "no cause: $(cat "$T/on.out")"
grep -q "production was not touched" "$T/on.out" || fail "no word on production: $(cat "$T/on.out")"
grep -q "CONFIG_MEM_SOFT_DIRTY=y" "$T/on.out" || fail "no fix: $(cat "$T/on.out")"
grep -q "mem_written_track" "$T/on.out" || fail "no word on the other fix: $(cat "$T/on.out")"
grep -q "freezing production" "$T/on.out" && fail "production was frozen: $(cat "$T/on.out")"
state=$(awk '{print $3}' "/proc/$spid/stat")
case $state in t | T) fail "production is stopped (state $state)" ;; esac
assert_eq "$(redis-cli -p "$L2" set after-on yes)" OK "production serves after --predump on"
sup_status "$N2" "$T/s2.json"
assert_eq "$(json "$T/s2.json" "len(j['clones'])")" 0 "clones after the refused one"
[ -e "$T/work/$N2/clone-1" ] && fail "the refused clone left a directory"
log "--predump auto there: a plain dump, and why"
clone "$N2"
grep -q '^pre-dump: off (kernel has no soft-dirty tracking: .*CONFIG_MEM_SOFT_DIRTY.*); plain dump$' \
	"$T/clone.out" || fail "no fallback reason: $(cat "$T/clone.out")"
log "PASS"
