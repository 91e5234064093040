#!/bin/bash
# soak.sh - the long soak: 10^6 requests through `doppel proxy` while its
# replica is stopped for a second and resumed for a second, over and over
# (tests/faults/soak_replica_stopped_and_resumed.sh with more requests). The
# proxy's fds and RSS are sampled every 0.1 s; the script fails if they pass
# their bound, if a client sees an error, or if production misses an INCR,
# and prints the RESULT row (fds and RSS before and after, their maxima).
#
#   bench/soak.sh [DOPPEL] [REQUESTS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export DOPPEL=${1:-$ROOT/build/cli/doppel}
N=${2:-1000000}
export SOAK_N=$((N / 2)) BENCH_TIMEOUT=1800
exec bash "$ROOT/tests/faults/soak_replica_stopped_and_resumed.sh"
