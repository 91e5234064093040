#!/bin/bash
# Fault: the image directory is full: `doppel clone NAME --images DIR` where
# DIR is a tmpfs capped at 2 MiB (redis-server's images take about 3 MiB),
# while redis-benchmark drives INCRs through doppel's front. The clone fails
# with a message naming the cause, production keeps serving and is not left
# stopped, no client error, every INCR executed, nothing is left behind in DIR
# or among the clones.
. "$(dirname "$0")/clones.sh"
need mount; need umount
N=fi$$
mkdir -p "$T/img"
mount -t tmpfs -o size=2M doppel-fault-img "$T/img" || skip "cannot mount a tmpfs"
on_exit 'umount "$T/img" 2>/dev/null || umount -l "$T/img"'
start_production "$N"
bench "$T/warm.csv" -t ping -n 2000 -c 20
front_quiet "$N"
snapshot before
bench "$T/before.csv" -t incr -n 50000 -c 20
sup_status "$N" "$T/s0.json"
acc0=$(json "$T/s0.json" "j['proxy']['connections']['accepted']")
bench "$T/during.csv" -t incr -n 100000 -c 20 &
load=$!
wait_status "$N" "j['proxy']['connections']['accepted'] >= $acc0 + 20" 20 || fail "the load did not start"
"$DOPPEL" clone "$N" --images "$T/img" >"$T/clone.out" 2>&1 && fail "doppel clone succeeded into a full image dir: $(cat "$T/clone.out")"
cat "$T/clone.out"
kill -0 "$load" 2>/dev/null || fail "the load ended before the fault (make it longer)"
said=$(grep -i "error" "$T/clone.out" | head -1)
echo "$said" | grep -q "the image directory $T/img.* is full (No space left on device)" || fail "the message does not name the cause: $said"
not_frozen "$PROD"
for t in /proc/"$PROD"/task/*; do not_frozen "$PROD/task/${t##*/}"; done
assert_eq "$(timeout 5 redis-cli -p "$L" ping)" PONG "production through the front"
assert_eq "$(prod_cli ping)" PONG "production directly"
wait "$load" || fail "the load failed (above)"
counter_is 150000
assert_eq "$(find "$T/img" -mindepth 1 | wc -l)" 0 "files left in the image dir"
sup_status "$N" "$T/status.json"
assert_eq "$(json "$T/status.json" "len(j['clones'])")" 0 "clones after the failed dump"
assert_eq "$(json "$T/status.json" "j['proxy']['production']['connect_failures'] + j['proxy']['production']['production_resets'] + j['proxy']['production']['client_resets']")" 0 "production errors"
front_quiet "$N"
snapshot after
bounded_growth
result "image dir full: \`doppel clone --images\` on a 2 MiB tmpfs (20 conns INCR)" 0 \
	"$(p99 "$T/before.csv" INCR)" "$(p99 "$T/during.csv" INCR)" \
	"doppel clone: \"$(echo "$said" | sed "s|$T|T|g; s| (CRIU.s log.*||")\"; image dir left empty"
log "PASS"
