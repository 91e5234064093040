# clones.sh - helpers of the fault scripts on live CRIU clones under
# `doppel run` (on top of faults.sh): production is a real redis-server in
# doppel's namespaces, redis-benchmark drives load through doppel's front ($L),
# and "doppel" in the RESULT row is the supervisor process (it is the proxy).
. "$(dirname "${BASH_SOURCE[0]}")/faults.sh"
need nsenter
[ "$(id -u)" = 0 ] || skip "clones need root (CRIU)"

# start_production NAME [doppel run options] : redis-server under `doppel run
# NAME`; the front's port in L, the supervisor's pid in proxy_PID (what
# snapshot measures), production's host pid in PROD
start_production() {
	local name=$1; shift
	run_service "$name" L --port 6379 "$@" -- \
		redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no
	local v="sup_${name}_PID"
	proxy_PID=${!v}
	PROD=$(json "$T/ready.json" "j['service']['pid']")
}

# prod_cli ARGS... : redis-cli straight to production (in its network
# namespace), not through the front
prod_cli() { nsenter -t "$PROD" -n redis-cli -p 6379 "$@"; }

# counter_is N : production executed exactly N INCRs (asked directly)
counter_is() {
	assert_eq "$(prod_cli get counter:__rand_int__)" "$1" "INCRs production executed"
}

# front_quiet NAME : no client connection left on the front
front_quiet() {
	wait_status "$1" "j['proxy']['connections']['active'] == 0" 20 || fail "client connections still open"
}

# not_frozen PID : the process is not stopped ('T' stopped, 't' traced-stop)
not_frozen() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)
	case $st in T | t) fail "process $1 is left stopped (state $st)" ;; esac
}
