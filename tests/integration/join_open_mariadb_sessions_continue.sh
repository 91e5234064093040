#!/bin/bash
# Promise: with --join-open, MariaDB clients that logged in, selected a
# database and set session state before a live clone keep writing on their
# old connections after it, and the clone gets every write: the clone is
# restored with production's end of each connection and doppel continues it
# there exactly (TCP repair), so the authenticated session, its default
# database, its user variable and even a transaction open at the freeze are
# intact in the clone. A join at a turn could not do this (MySQL's handshake
# cannot be replayed). Afterwards the clone's table equals production's
# (CHECKSUM TABLE), the transaction's rows are committed in both, production's
# clients saw no error, and no divergence was counted.
. "$(dirname "$0")/lib.sh"
need mariadbd; need mariadb; need mariadb-install-db; need nsenter
data=$T/data
mkdir -p "$data"
mariadb-install-db --no-defaults --datadir="$data" --user=root --skip-test-db \
	--auth-root-authentication-method=normal >"$T/install.log" 2>&1 ||
	fail "mariadb-install-db: $(tail -5 "$T/install.log")"
N=maria$$
run_service "$N" L --port 3306 --state "$data" --join-open --ready-timeout 90s -- \
	mariadbd --no-defaults --datadir="$data" --socket="$data/sock" --port=3306 \
	--bind-address=127.0.0.1 --user=root --skip-name-resolve --innodb-buffer-pool-size=32M \
	--innodb-use-native-aio=0 --innodb-log-file-size=16M --skip-log-bin
root() { mariadb -S "$data/sock" -uroot -N -B "$@"; }
root -e "CREATE DATABASE app; CREATE TABLE app.t (tag VARCHAR(16) NOT NULL, i INT NOT NULL,
	PRIMARY KEY (tag, i)) ENGINE=InnoDB; CREATE USER app@'%' IDENTIFIED BY 's3cret';
	GRANT ALL ON app.* TO app@'%'" || fail "cannot set up the database"

# One mariadb client per connection, fed statement by statement: it logs in as
# app (password), USE app, sets @tag; "session" writes 10 rows before the
# clone and 100 after, "txn" begins a transaction and inserts a row before,
# inserts another and commits after. Each prints "ready", waits for $T/go,
# then prints "done" once the server answered everything.
cat >"$T/client.py" <<'PYEOF'
import os, subprocess, sys, time
port, mode, go = sys.argv[1], sys.argv[2], sys.argv[3]
p = subprocess.Popen(["mariadb", "-h127.0.0.1", "-P" + port, "-uapp", "-ps3cret", "-N", "-B",
                      "--unbuffered"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=sys.stdout, text=True, bufsize=1)
def sql(s):
    p.stdin.write(s + "\n"); p.stdin.flush()
def mark(m):
    sql("SELECT '%s';" % m)
    while True:
        line = p.stdout.readline()
        if not line:
            print("client exited: %s" % p.wait(), flush=True); sys.exit(1)
        if line.strip() == m:
            return
def insert(i):
    sql("INSERT INTO t (tag, i) VALUES (@tag, %d);" % i)
sql("USE app;")
sql("SET @tag = '%s';" % mode)
if mode == "session":
    for i in range(10):
        insert(i)
else:
    sql("BEGIN;"); insert(0)
mark("ready"); print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.02)
if mode == "session":
    for i in range(10, 110):
        insert(i); time.sleep(0.005)
else:
    insert(1); sql("COMMIT;")
mark("done"); print("done", flush=True)
time.sleep(60)
PYEOF
spawn session $PY "$T/client.py" "$L" session "$T/go"
spawn txn $PY "$T/client.py" "$L" txn "$T/go"
for c in session txn; do started "$c" ready || fail "client $c did not start: $(cat "$T/$c.log")"; done

clone "$N"
C=$(clone_pid "$N" 1)
touch "$T/go"
for c in session txn; do started "$c" done || fail "client $c did not finish: $(cat "$T/$c.log")"; done
for c in session txn; do
	assert_eq "$(grep -vc -e ready -e done "$T/$c.log")" 0 "lines other than ready/done from client $c: $(cat "$T/$c.log")"
done

q() { root -e "$1"; }
qc() { in_clone "$C" mariadb -h127.0.0.1 -P3306 -uapp -ps3cret -N -B app -e "$1"; }
assert_eq "$(q "SELECT COUNT(*) FROM app.t WHERE tag='session'")" 110 "production's rows of the session"
assert_eq "$(q "SELECT COUNT(*) FROM app.t WHERE tag='txn'")" 2 "production's rows of the transaction"
wait_for 10 eval '[ "$(qc "SELECT COUNT(*) FROM t WHERE tag='"'session'"' AND i >= 10")" = 100 ]'
assert_eq "$(qc "SELECT COUNT(*) FROM t WHERE tag='session' AND i >= 10")" 100 \
	"the clone's rows written on the old session after the freeze"
assert_eq "$(qc "SELECT COUNT(*) FROM t WHERE tag='txn'")" 2 \
	"the clone's rows of the transaction open at the freeze, committed"
assert_eq "$(qc "CHECKSUM TABLE t" | awk '{print $2}')" "$(q "CHECKSUM TABLE app.t" | awk '{print $2}')" \
	"the clone's table = production's"
sup_status "$N" "$T/s.json"
r="j['proxy']['replicas'][0]"
assert_eq "$(json "$T/s.json" "$r['joined_exact']")" 2 "connections continued exactly"
assert_eq "$(json "$T/s.json" "$r['diverged_turns']")" 0 "turns that diverged"
log "turns compared on the continued sessions: $(json "$T/s.json" "$r['turns_compared']")"
"$DOPPEL" stop "$N" >/dev/null || fail "stop $N"
log "PASS: a logged-in session with USE and @tag, and a transaction open at the freeze, continued on the clone: table checksums equal"
