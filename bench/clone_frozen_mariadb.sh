#!/bin/bash
# clone_frozen_mariadb.sh - MariaDB's frozen time to make a live clone, against
# the InnoDB buffer pool in use, under a steady write load.
#
#   POOLS="128M 1G" RUNS=3 bench/clone_frozen_mariadb.sh [DOPPEL] [OUT_DIR]
#
# For each pool size: one mariadbd under `doppel run` (its datadir a --state
# dir; --innodb-buffer-pool-size=POOL, native AIO off: CRIU cannot dump
# io_uring), a table filled with 1 KiB rows to about 80 % of the pool and read
# once so the pool holds it, and a write loop through doppel's front for the
# whole measurement: one client connection sending UPDATEs of random rows
# (autocommit), the way sysbench's oltp_update_index does; sysbench is not
# packaged in Debian bookworm. Then, RUNS times each:
#   - `doppel clone NAME`: production's frozen time (freezing + frozen, from
#     /status), the whole clone's wall time, and production's UPDATE rate during
#     the clone against the 3 s before (Com_update);
#   - plain `criu dump --leave-running --tcp-close --file-locks` of the same
#     process (MariaDB holds locks on its files), images on disk: freezing +
#     frozen time from CRIU's --display-stats.
# Correctness: with the load stopped, one more clone, and CHECKSUM TABLE in the
# clone against production's (nothing writes in between: they must be equal).
# Prints a table (median and min-max over RUNS) and writes OUT_DIR/frozen-mariadb.tsv.
# Nothing passes or fails on timing; the goal (< 150 ms frozen with 1 GiB of
# buffer pool in use) is printed beside each row.
set -uo pipefail
DOPPEL=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/doppel}
OUT=${2:-.}
POOLS=${POOLS:-"128M 1G"}
RUNS=${RUNS:-3}
CRIU=${DOPPEL_CRIU:-$(command -v criu || echo /usr/local/sbin/criu)}
T=$(mktemp -d /var/tmp/doppel-bench.XXXXXX)
export DOPPEL_RUN_DIR=$T/run
SUP= LOAD=
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null && wait "$LOAD" 2>/dev/null
	[ -n "$SUP" ] && kill -TERM "$SUP" 2>/dev/null && wait "$SUP" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
for c in mariadbd mariadb-install-db mariadb; do
	command -v "$c" >/dev/null || { echo "clone_frozen_mariadb: $c is not installed (apt-get install mariadb-server mariadb-client)" >&2; exit 2; }
done
mkdir -p "$OUT"
. "$(dirname "$0")/lib.sh"
sql() { mariadb -h127.0.0.1 -P"$L" -uroot -N -B bench -e "$1"; }
updates() { mariadb -h127.0.0.1 -P"$L" -uroot -N -B -e "show global status like 'Com_update'" | awk '{print $2}'; }

start_load() { # one connection, random-row UPDATEs as fast as the server answers them
	python3 -c 'import random, sys
rows = int(sys.argv[1])
out = sys.stdout
while True:
    out.write("UPDATE t SET n = n + 1 WHERE id = %d;\n" % random.randint(1, rows))' "$rows" 2>/dev/null |
		mariadb -h127.0.0.1 -P"$L" -uroot bench >/dev/null 2>&1 &
	LOAD=$!
	sleep 2
}
stop_load() { kill "$LOAD" 2>/dev/null; wait "$LOAD" 2>/dev/null; pkill -f "UPDATE t SET n" 2>/dev/null; LOAD=; }

doppel_clone() { # figures appended to $T/*.frozen, .total, .during
	local u0 t0 u1 t1 id
	u0=$(updates); t0=$(now)
	"$DOPPEL" clone "$name" >"$T/clone.out" 2>&1 || { cat "$T/clone.out" >&2; return 1; }
	u1=$(updates); t1=$(now)
	"$DOPPEL" status "$name" --json >"$T/s.json"
	field "$T/s.json" "j['clones'][-1]['frozen_ms'] + j['clones'][-1]['freezing_ms']" >>"$T/doppel.frozen"
	field "$T/s.json" "j['clones'][-1]['clone_total_ms']" >>"$T/doppel.total"
	field "$T/s.json" "'%.0f' % (j['clones'][-1]['image_bytes'] / 1048576)" >"$T/image"
	rate "$u0" "$u1" "$t0" "$t1" >>"$T/during"; echo >>"$T/during"
	id=$(field "$T/s.json" "j['clones'][-1]['id']")
	"$DOPPEL" destroy "$name/$id" >/dev/null
}

plain_dump() { # DIR: freezing + frozen ms appended to $T/criu.frozen (MariaDB holds file locks)
	criu_plain_dump "$CRIU" "$pid" "$1" "$data" "$T/criu.frozen" --file-locks
}

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB; $(uptime | sed 's/.*load/load/') at the start; CRIU $("$CRIU" --version | awk '/Version/{print $2}'); $("$(command -v mariadbd)" --version | awk '{print $3}'); $RUNS runs per size"
printf 'pool\trows\tdata_mib\timage_mib\tdoppel_frozen_ms\tcriu_disk_frozen_ms\tclone_total_ms\tupdate_per_s_before\tupdate_per_s_during\tchecksum\n' >"$OUT/frozen-mariadb.tsv"
printf '%-6s %-8s %-6s %-6s %-16s %-16s %-16s %-24s %-7s %s\n' pool rows data image "doppel frozen" "criu, disk" \
	"clone total" "UPDATE/s before, during" checksum "goal <150 ms (1G)"
for pool in $POOLS; do
	name=maria$(echo "$pool" | tr -cd 'a-zA-Z0-9')
	data=$T/data-$name
	mkdir -p "$data"
	mariadb-install-db --no-defaults --datadir="$data" --user=root --skip-test-db \
		--auth-root-authentication-method=normal >"$T/install-$name.log" 2>&1 ||
		{ cat "$T/install-$name.log"; exit 1; }
	L=$(port)
	"$DOPPEL" run "$name" --listen 127.0.0.1:$L --port 3306 --state "$data" --work-dir "$T/work-$name" \
		--ready-timeout 60s -- mariadbd --no-defaults --datadir="$data" --socket="$data/sock" \
		--port=3306 --bind-address=127.0.0.1 --user=root --skip-grant-tables --skip-name-resolve \
		--innodb-buffer-pool-size="$pool" --innodb-use-native-aio=0 --innodb-log-file-size=256M \
		--skip-log-bin >"$T/run-$name.log" 2>&1 &
	SUP=$!
	for _ in $(seq 600); do mariadb -h127.0.0.1 -P"$L" -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
	mariadb -h127.0.0.1 -P"$L" -uroot -e 'create database bench' || { tail -5 "$T/run-$name.log"; exit 1; }
	mib=${pool%[MG]}; [ "${pool: -1}" = G ] && mib=$((mib * 1024))
	rows=$((mib * 1024 * 8 / 10)) # 1 KiB rows: about 80 % of the pool
	sql "create table t (id int primary key auto_increment, n int not null default 0, pad char(255) not null, pad2 varchar(760) not null) engine=innodb"
	sql "insert into t (pad, pad2) values (repeat('a',255), repeat('b',760))"
	while [ "$(sql 'select count(*) from t')" -lt "$rows" ]; do
		sql "insert into t (pad, pad2) select pad, pad2 from t limit $((rows - $(sql 'select count(*) from t')))"
	done
	sql "select sum(n), count(*) from t" >/dev/null # read once: the pool holds the table
	sql "analyze table t" >/dev/null		# data_length up to date
	rows=$(sql 'select count(*) from t')
	dmib=$(sql "select round((data_length + index_length) / 1048576) from information_schema.tables where table_schema='bench' and table_name='t'")
	pid=$("$DOPPEL" status "$name" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['service']['pid'])")
	rm -f "$T"/*.frozen "$T"/*.frozen.err "$T"/*.total "$T/during" "$T/before"
	start_load
	for r in $(seq "$RUNS"); do
		u0=$(updates); t0=$(now); sleep 3; u1=$(updates); t1=$(now)
		rate "$u0" "$u1" "$t0" "$t1" >>"$T/before"; echo >>"$T/before"
		doppel_clone || exit 1
		plain_dump "$T/plain-disk"
	done
	stop_load
	"$DOPPEL" clone "$name" >"$T/clone.out" 2>&1 || { cat "$T/clone.out"; exit 1; }
	"$DOPPEL" status "$name" --json >"$T/s.json"
	cpid=$(field "$T/s.json" "j['clones'][-1]['pid']")
	want=$(sql 'checksum table t')
	got=$(nsenter -t "$cpid" -n mariadb -h127.0.0.1 -P3306 -uroot -N -B bench -e 'checksum table t')
	[ -n "$want" ] && [ "$want" = "$got" ] && sum=equal || sum="DIFFERS ($want / $got)"
	goal=$(medv <"$T/doppel.frozen" | awk -v p="$pool" '{print ($1 < 150) ? "met" : "NOT met"}')
	printf '%-6s %-8s %-6s %-6s %-16s %-16s %-16s %-24s %-7s %s\n' "$pool" "$rows" "$dmib" "$(cat "$T/image")" \
		"$(med <"$T/doppel.frozen")" "$(med <"$T/criu.frozen")" "$(med <"$T/doppel.total")" \
		"$(medv <"$T/before"), $(medv <"$T/during")" "$sum" "$goal"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pool" "$rows" "$dmib" "$(cat "$T/image")" \
		"$(medv <"$T/doppel.frozen")" "$(medv <"$T/criu.frozen")" "$(medv <"$T/doppel.total")" \
		"$(medv <"$T/before")" "$(medv <"$T/during")" "$sum" >>"$OUT/frozen-mariadb.tsv"
	[ -s "$T/criu.frozen.err" ] && echo "plain criu dump failed: $(sort -u "$T/criu.frozen.err" | head -3)"
	kill -TERM "$SUP"; wait "$SUP" 2>/dev/null; SUP=
done
echo "$(uptime | sed 's/.*load/load/') at the end"
