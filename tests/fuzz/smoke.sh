#!/bin/bash
# smoke.sh FUZZER CORPUS [SECONDS] - run a libFuzzer target over the seed
# corpus, then fuzz for a few seconds (default 5) from it. New inputs go to a
# scratch directory that is removed afterwards; a crash leaves its input in
# the build directory (crash-*) and fails the test.
set -u
fuzzer=$1 corpus=$2 secs=${3:-5}
work=$(mktemp -d /tmp/doppel-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$fuzzer" -runs=0 "$corpus" || exit 1
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -seed=1 \
	-artifact_prefix="$(pwd)/" "$work" "$corpus"
