#!/bin/bash
# Promise: a clone made with pre-dump passes holds exactly production's memory
# as of the freeze, however production writes it while the passes run.
# The service is memcheck (memcheck.c): it rewrites random pages of 64 MiB
# about 20,000 times a second, drops pages with MADV_DONTNEED, replaces and
# moves small mappings, and keeps each page's generation in a table; asked
# "check", it says whether every page holds what the table says. A write
# that dirty tracking missed (soft-dirty, or the written bit under
# userfaultfd write-protect where the kernel has no soft-dirty) leaves a
# stale page in the clone, which then answers "bad". Three clones in a row;
# each final dump must be incremental (fewer pages than the memory).
. "$(dirname "$0")/lib.sh"
need cc; need nsenter
REAL=${DOPPEL_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
[ -x "$REAL" ] || skip "criu is not installed (deploy/install.sh installs it)"
"$REAL" check --feature mem_dirty_track >/dev/null 2>&1 ||
	"$REAL" check --feature mem_written_track >/dev/null 2>&1 ||
	skip "this kernel and CRIU cannot track dirty pages (neither mem_dirty_track nor mem_written_track)"
cc -O2 -Wall -o "$T/memcheck" "$(dirname "$0")/memcheck.c" || fail "cannot build memcheck"
N=memck$$
run_service "$N" L --port 7000 -- "$T/memcheck" 7000 64
ask() { # ask PORT: memcheck's answer to "check" on 127.0.0.1:PORT
	$PY - "$1" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"check\n")
print(s.recv(200).decode().strip())
PYEOF
}
sleep 1 # pages dropped and mappings moved before the first pass too
out=$(ask "$L")
log "production: $out"
[[ $out == ok* ]] || fail "production fails its own check: $out"
for k in 1 2 3; do
	log "clone $k under writes"
	clone "$N" --predump on
	cat "$T/clone.out"
	grep -q '^pre-dump pass 1: ' "$T/clone.out" || fail "no pass: $(cat "$T/clone.out")"
	grep -q 'pages dirtied since the last pass only' "$T/clone.out" || fail "final dump not incremental"
	sup_status "$N" "$T/s.json"
	final=$(json "$T/s.json" "[c['final_pages'] for c in j['clones'] if c['id'] == $k][0]")
	log "final dump: $final pages (the churned region alone is 16384)"
	[ "$final" -lt 16384 ] || fail "the final dump wrote $final pages: tracking did not narrow it"
	[ "$final" -gt 0 ] || fail "the final dump wrote no page, yet production writes all the time"
	C=$(clone_pid "$N" "$k")
	out=$(in_clone "$C" $PY - <<'PYEOF'
import socket
s = socket.create_connection(("127.0.0.1", 7000), timeout=10)
s.sendall(b"check\n")
print(s.recv(200).decode().strip())
PYEOF
)
	log "clone $k: $out"
	[[ $out == ok* ]] || fail "clone $k holds memory production never had: $out"
done
out=$(ask "$L")
[[ $out == ok* ]] || fail "production fails its own check after the clones: $out"
log "PASS"
