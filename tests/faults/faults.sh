# faults.sh - helpers of the fault-injection scripts, on top of the
# integration tests' lib.sh (spawn, start_redis, start_proxy, json, fail...).
#
# A script sets up production (a redis-server), a replica and `doppel proxy`,
# measures a baseline load, injects one fault under the same load, and checks:
# no client error, production executed every request (INCR counts them), the
# proxy's fds and RSS before and after (bounded growth), what /status said.
# It ends with `result`, one row of the README's table (a RESULT line).
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
need redis-benchmark
need redis-server
# Freed memory sits in ASan's quarantine on purpose: without one, RSS measures
# what the proxy keeps, as in a normal build.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"

fds_of() { ls "/proc/$1/fd" | wc -l; }
rss_of() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

# bench OUT ARGS... : redis-benchmark --csv ARGS against the proxy ($L), bounded
# to BENCH_TIMEOUT seconds (40); fails on a non-zero exit or any error line (a
# closed or reset connection, an error reply)
bench() {
	local out=$1; shift
	timeout "${BENCH_TIMEOUT:-40}" redis-benchmark -p "$L" --csv "$@" >"$out" 2>&1 ||
		fail "redis-benchmark $* failed or hung (exit $?): $(tail -3 "$out")"
	if grep -qiE "error|reset|closed" "$out"; then
		fail "redis-benchmark saw errors: $(grep -iE 'error|reset|closed' "$out" | head -3)"
	fi
}

# p99 OUT TEST : the p99 latency (ms) redis-benchmark measured for TEST
p99() { awk -F'"' -v t="$2" '$2 == t { print $14 }' "$1"; }

# counter_is N : production executed exactly N INCRs (redis-benchmark -t incr
# increments one key, counter:__rand_int__, when -r is not given)
counter_is() {
	local v
	v=$(redis-cli -p "$P" get counter:__rand_int__)
	assert_eq "$v" "$1" "INCRs production executed"
}

# quiet_front : the proxy has no client connection left (its own admin
# requests aside)
quiet_front() {
	wait_status "127.0.0.1:$A" "j['connections']['active'] == 0" 20 || fail "client connections still open"
}

# snapshot VAR : "fds rss" of the proxy into VAR_fds and VAR_rss
snapshot() {
	printf -v "$1_fds" '%s' "$(fds_of "$proxy_PID")"
	printf -v "$1_rss" '%s' "$(rss_of "$proxy_PID")"
}

# bounded_growth : after the fault, fds back within SLACK_FDS of before (legs
# still open at the time are allowed for) and RSS within SLACK_KB
bounded_growth() {
	local legs=${1:-0}
	[ "$after_fds" -le $((before_fds + legs + ${SLACK_FDS:-2})) ] ||
		fail "fds grew from $before_fds to $after_fds ($legs legs still open)"
	[ "$after_rss" -le $((before_rss + ${SLACK_KB:-16384})) ] ||
		fail "RSS grew from $before_rss to $after_rss KiB"
}

# result FAULT ERRORS P99_BEFORE P99_DURING REPORTED : the README table row
result() {
	printf 'RESULT | %s | %s | %s ms | %s ms | %s → %s | %s → %s KiB | %s |\n' \
		"$1" "$2" "$3" "$4" "$before_fds" "$after_fds" "$before_rss" "$after_rss" "$5"
}

# reference_bench OUT ARGS... : the same load through a second proxy whose
# replica is a healthy redis (the "before" of faults whose replica is faulty
# from the start); started on first use
reference_bench() {
	if [ -z "${REF_L:-}" ]; then
		start_redis ref_replica REF_R
		start_proxy ref_proxy REF_L REF_A --backend 127.0.0.1:$P --replica 127.0.0.1:$REF_R
	fi
	local saved=$L
	L=$REF_L
	bench "$@"
	L=$saved
}
