#!/bin/bash
# trace_overhead.sh - what does a function tracer cost a real program, per
# call? The Lua 5.4 interpreter (Debian's source package) is built three
# ways: plain, with -finstrument-functions and libdoppeltrace, and with -pg
# for uftrace; each runs the same Lua script. Cost per call =
# (traced time - plain -O2 time) / calls recorded by that tracer: the whole
# cost of tracing, instrumentation included. Prints a table.
#
#   bench/trace_overhead.sh [BUILD_DIR] [WORK_DIR]
#
# Needs Debian's lua5.4 source: `apt-get source --download-only lua5.4` (a
# deb-src entry), or LUA_TARBALL=/path/lua-5.4.x.tar.gz. Traces are written
# to WORK_DIR (default /dev/shm/doppel-overhead: memory, so that the disk is
# not what is measured). Nothing here passes or fails.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
W=${2:-/dev/shm/doppel-overhead}
SRC=${LUA_SRC_CACHE:-/var/cache/doppel/lua}
RUN=$B/bench/trace_runstat
LIB=$B/tracer-glue/runtime
mkdir -p "$W" "$SRC"

tarball=${LUA_TARBALL:-$(ls "$SRC"/lua5.4_*.orig.tar.gz 2>/dev/null | tail -1 || true)}
if [ -z "$tarball" ]; then
	(cd "$SRC" && apt-get source --download-only lua5.4 >/dev/null 2>&1) ||
		{ echo "need lua5.4's source: a deb-src entry for apt-get source, or LUA_TARBALL"; exit 1; }
	tarball=$(ls "$SRC"/lua5.4_*.orig.tar.gz | tail -1)
fi
build_lua() { # NAME CFLAGS LDFLAGS LIBS
	local dir=$W/lua-$1
	[ -x "$dir/src/lua" ] && return
	rm -rf "$dir" && mkdir -p "$dir"
	tar -C "$dir" --strip-components=1 -xzf "$tarball"
	make -C "$dir/src" -j2 posix CC=gcc MYCFLAGS="$2" MYLDFLAGS="$3" MYLIBS="$4" >/dev/null
}
build_lua plain "-O2" "" ""
build_lua dtr "-O2 -finstrument-functions" "-L$LIB -Wl,-rpath,$LIB" "-ldoppeltrace"
build_lua pg "-O2 -pg" "-pg" ""

cat >"$W/bench.lua" <<'LUA'
-- calls of Lua functions, table and string work: the interpreter's C
-- functions are what the tracers see
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local t = {}
for i = 1, 100000 do t[#t + 1] = string.format("%d:%s", i, tostring(i * 3)) end
table.sort(t)
print(fib(28), #t)
LUA

best() { # runs CMD 3 times, prints the least CPU time (user + sys): the
	  # machine may be shared, and a traced run is CPU-bound
	local b=999999 w u s
	for _ in 1 2 3; do
		read -r w u s _ < <("$RUN" /dev/null "$@")
		w=$(echo "$u + $s" | bc -l)
		b=$(echo "if ($w < $b) $w else $b" | bc -l)
	done
	echo "$b"
}
events() { "$B/cli/doppel" trace view --report --stats "$1" 2>&1 >/dev/null | sed -n 's/.*, \([0-9]*\) events,.*/\1/p'; }

plain=$(best "$W/lua-plain/src/lua" "$W/bench.lua")
plain_pg=$(cd "$W" && best "$W/lua-pg/src/lua" "$W/bench.lua") # gprof's mcount, untraced
rm -f "$W/lua.dtr"
dtr=$(best env DOPPELTRACE_OUT=/dev/null "$W/lua-dtr/src/lua" "$W/bench.lua")
DOPPELTRACE_OUT=$W/lua.dtr "$W/lua-dtr/src/lua" "$W/bench.lua" >/dev/null
dtr_file=$(best sh -c "rm -f $W/lua.dtr; DOPPELTRACE_OUT=$W/lua.dtr exec $W/lua-dtr/src/lua $W/bench.lua")
dtr_calls=$(( $(events "$W/lua.dtr") / 2 ))
uft=$(best sh -c "rm -rf $W/uf; exec uftrace record --no-libcall -d $W/uf $W/lua-pg/src/lua $W/bench.lua")
uf_calls=$(( $(events "$W/uf") / 2 ))
uft_lib=$(best sh -c "rm -rf $W/ufl; exec uftrace record -d $W/ufl $W/lua-pg/src/lua $W/bench.lua")
ufl_calls=$(( $(events "$W/ufl") / 2 ))

printf '%-52s %10s %12s %12s\n' "RUN" "CPU S" "CALLS" "NS PER CALL"
printf '%-52s %10s %12s %12s\n' "lua, plain -O2" "$plain" "-" "-"
printf '%-52s %10s %12s %12.1f\n' "lua -finstrument-functions, DOPPELTRACE_OUT=/dev/null" "$dtr" "$dtr_calls" \
	"$(echo "($dtr - $plain) * 1000000000 / $dtr_calls" | bc -l)"
printf '%-52s %10s %12s %12.1f\n' "lua -finstrument-functions, libdoppeltrace to file" "$dtr_file" "$dtr_calls" \
	"$(echo "($dtr_file - $plain) * 1000000000 / $dtr_calls" | bc -l)"
printf '%-52s %10s %12s %12s\n' "lua -pg, not traced" "$plain_pg" "-" "-"
printf '%-52s %10s %12s %12.1f\n' "lua -pg, uftrace record --no-libcall" "$uft" "$uf_calls" \
	"$(echo "($uft - $plain) * 1000000000 / $uf_calls" | bc -l)"
printf '%-52s %10s %12s %12.1f\n' "lua -pg, uftrace record (and library calls)" "$uft_lib" "$ufl_calls" \
	"$(echo "($uft_lib - $plain) * 1000000000 / $ufl_calls" | bc -l)"
echo "trace sizes: libdoppeltrace $(du -sh "$W/lua.dtr" | cut -f1), uftrace $(du -sh "$W/uf" | cut -f1)"
