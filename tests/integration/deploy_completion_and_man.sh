#!/bin/bash
# Promise: the bash completion completes doppel's commands, each command's
# options (every long option a command's option table accepts is offered),
# trace subcommands and their options, option values, running services'
# names (`doppel list`) and clone names NAME/ID (`doppel status NAME --json`);
# and the man page built from the help text renders with man -l, without
# warnings, with a section per command.
. "$(dirname "$0")/lib.sh"
need redis-server; need man
ROOT=$(cd "$HERE/../.." && pwd)
COMP=$ROOT/deploy/bash-completion/doppel
BIN=$(dirname "$DOPPEL")
[ "$(basename "$DOPPEL")" = doppel ] || fail "the binary must be called doppel for 'complete -F _doppel doppel'"

# complete_line LINE : what bash offers for LINE, cursor at its end, one per line
complete_line() {
	PATH="$BIN:$PATH" bash --norc --noprofile -c '
		source "$1" || exit 1
		line=$2
		read -ra COMP_WORDS <<<"$line"
		[[ $line == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE=$line; COMP_POINT=${#line}
		_doppel doppel "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$1" | sort
}
# expect LINE WORD... : each WORD is offered for LINE
expect() {
	local line=$1 got w; shift
	got=$(complete_line "$line")
	for w in "$@"; do
		grep -qxF -- "$w" <<<"$got" || fail "completing '$line': '$w' not offered (got: $(echo $got))"
	done
}
# expect_only LINE WORD... : exactly these
expect_only() {
	local line=$1; shift
	assert_eq "$(complete_line "$line" | tr '\n' ' ')" "$(printf '%s\n' "$@" | sort | tr '\n' ' ')" "completing '$line'"
}

assert_eq "$(bash --norc -c "source '$COMP'; complete -p doppel")" "complete -F _doppel doppel" "complete -p"
expect "doppel " run clone list status destroy stop attach trace window doctor proxy help version
complete_line "doppel " | grep -qx state-sync && fail "the hidden state-sync is offered"
expect_only "doppel cl" clone
expect_only "doppel st" status stop
expect "doppel run --li" --listen
expect_only "doppel proxy --rep" --replica --replica-flush
expect "doppel trace " demux summarise coarsen compare align rank view collect
expect "doppel trace demux --b" --by
expect_only "doppel trace demux --by r" request rule
expect_only "doppel attach x/1 --governor " auto control restart pause off
expect_only "doppel clone x --predump " auto on off
expect_only "doppel run x --overflow " drop reclone
expect "doppel help " run trace --man
expect_only "doppel help trace de" demux
expect "doppel run x --listen 127.0.0.1:1 --port 1 -- redis-ser" redis-server
log "commands, subcommands, options and their values complete"

# Every long option a command accepts is offered (the completion reads the
# help text: this checks the help text lists them all).
for f in "$ROOT"/cli/cmd-*.c; do
	name=$(sed -n 's/^[[:space:]]*\.name = "\([a-z-]*\)",$/\1/p' "$f" | head -1)
	case $name in "" | state-sync | trace | window) continue ;; esac # trace, window: shared option tables
	opts=$(sed -n '/static const struct option/,/{NULL, 0, NULL, 0}/s/.*{"\([a-z][a-z0-9-]*\)", *[a-z_]*_argument.*/--\1/p' "$f")
	[ -n "$opts" ] || continue
	got=$(complete_line "doppel $name --")
	for o in $opts; do
		grep -qxF -- "$o" <<<"$got" || fail "doppel $name accepts $o but neither its help nor the completion lists it"
	done
	log "doppel $name: all $(wc -w <<<"$opts") options offered"
done

# Services and clones of a running supervisor.
N=comp$$; L=$(free_port)
mkdir -p "$T/data"
run_service "$N" --listen 127.0.0.1:$L --port 6379 --state "$T/data" -- \
	redis-server --port 6379 --bind 127.0.0.1 --dir "$T/data" --appendonly yes --save ''
clone "$N" --count 2
expect "doppel status " "$N"
expect_only "doppel stop ${N:0:5}" "$N"
expect_only "doppel destroy ${N:0:5}" "$N/"
expect_only "doppel destroy $N/" "$N/1" "$N/2"
expect_only "doppel attach $N/2" "$N/2"
log "service names from doppel list, clone names from doppel status --json"

# The man page.
MAN=$(dirname "$DOPPEL")/doppel.1
[ -s "$MAN" ] || fail "the build did not make $MAN"
"$DOPPEL" help --man | cmp -s - "$MAN" || fail "$MAN differs from 'doppel help --man' (stale build?)"
MANWIDTH=80 man --warnings -l "$MAN" >"$T/man.txt" 2>"$T/man.err" || fail "man -l failed: $(cat "$T/man.err")"
[ -s "$T/man.err" ] && fail "man -l warns: $(head -5 "$T/man.err")"
grep -q '^NAME' "$T/man.txt" && grep -q 'doppel - debug live clones' "$T/man.txt" || fail "no NAME section"
for c in run clone status destroy stop attach trace window doctor proxy "trace demux"; do
	grep -q "^   doppel $c\$" "$T/man.txt" || fail "the man page has no section for doppel $c"
done
log "man -l renders $(wc -l <"$T/man.txt") lines, no warnings"
log "PASS"
