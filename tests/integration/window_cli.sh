#!/bin/bash
# Promise: `doppel window` answers from the command line as documented: bad
# input gets exit status 2 and a message naming the problem; every `doppel
# window` example in the README runs as written; a sweep writes an SVG chart
# that renders (rsvg-convert) to a PNG with the curves on it; --json parses;
# a capture and a text file of arrivals are read with every request counted.
. "$(dirname "$0")/lib.sh"
need rsvg-convert
ROOT=$(cd "$HERE/../.." && pwd)

expect_usage() {
	local want=$1; shift
	"$DOPPEL" window "$@" >"$T/out" 2>&1
	local rc=$?
	[ $rc -eq 2 ] || fail "doppel window $*: exit $rc, expected 2 ($(cat "$T/out"))"
	grep -q -- "$want" "$T/out" || fail "doppel window $*: message lacks '$want': $(cat "$T/out")"
}
OK="--rate 10 --service-rate 8 --msg-size 100"
expect_usage "--buffer is required" $OK
expect_usage "--rate is required" --service-rate 5 --buffer 4K --msg-size 100
expect_usage "exactly one of" $OK --slowdown 2 --buffer 4K
expect_usage "--msg-size is required" --rate 10 --service-rate 5 --buffer 4K
expect_usage "not a size" $OK --buffer 4Q
expect_usage "positive number" --rate -3 --service-rate 5 --buffer 4K --msg-size 100
expect_usage "only slowdown" --rate 10 --buffer 4K --msg-size 100 --sweep rate=1..2
expect_usage "slowdown=A..B" --rate 10 --buffer 4K --msg-size 100 --sweep slowdown=5..1
expect_usage "exact method needs" $OK --buffer 4K --traffic det --method exact
expect_usage "dwell times > 0" --service-rate 5 --buffer 4K --msg-size 100 --traffic mmpp:1/0
expect_usage "drop --rate" $OK --buffer 4K --traffic mmpp:20/1,1/1
expect_usage "cannot open" --arrivals /nonexistent/cap.pcap --service-rate 5 --buffer 4K
printf '0.1 100\nnot a time\n' >"$T/bad.txt"
expect_usage "line 2" --arrivals "$T/bad.txt" --service-rate 5 --buffer 4K
expect_usage "a busy fraction" $OK --buffer 4K --utilization 2
expect_usage "unknown or incomplete option" $OK --buffer 4K --bogus
log "usage errors: exit 2 with the cause"

# The README's examples, run as written (from a directory with a capture.pcap).
mkdir "$T/readme" && cp "$ROOT/tests/fuzz/corpus/window/eth.pcap" "$T/readme/capture.pcap"
awk '/^### `doppel window`/{f=1; next} /^### /{f=0} f' "$ROOT/README.md" |
	awk '/^\$ doppel window/{sub(/^\$ /, ""); cmd=$0; while (cmd ~ /\\$/) {getline l; sub(/\\$/, "", cmd); cmd=cmd l} print cmd}' \
		>"$T/examples"
n=$(wc -l <"$T/examples")
assert_ge "$n" 3 "doppel window examples in the README"
while read -r line; do
	(cd "$T/readme" && eval "\"\$DOPPEL\" ${line#doppel }") >"$T/ex.out" 2>&1
	rc=$?
	[ $rc -eq 0 ] || fail "README example failed (exit $rc): $line: $(tail -3 "$T/ex.out")"
	grep -q "first overflow after\|SLOWDOWN" "$T/ex.out" || fail "README example printed no answer: $line"
done <"$T/examples"
log "$n README examples ran"

# A sweep: table, SVG, and a PNG rendered from it with the curves drawn.
"$DOPPEL" window --rate 27 --utilization 0.5 --buffer 4K,16K --msg-size 19.6 \
	--sweep slowdown=1..5:0.5 --plot "$T/sweep.svg" >"$T/sweep.out" || fail "sweep failed"
assert_eq "$(grep -c '^ *[0-9.]* *[0-9.]* exact' "$T/sweep.out")" 18 "sweep rows (9 slowdowns x 2 buffers)"
rsvg-convert -f png -o "$T/sweep.png" "$T/sweep.svg" || fail "rsvg-convert cannot render the chart"
$PY - "$T/sweep.png" <<'PYEOF' || fail "the rendered chart is not what was drawn"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
w, h, depth, ctype = ihdr[:4]
assert (w, h) == (780, 480), "size %dx%d" % (w, h)
assert depth == 8 and ctype in (2, 6), "format %d/%d" % (depth, ctype)
bpp = 4 if ctype == 6 else 3
raw, stride, prev, px = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    px.append(line)
    prev = line
def count(rgb):
    return sum(1 for row in px for x in range(w)
               if all(abs(row[x * bpp + k] - rgb[k]) < 40 for k in range(3)))
blue, red = count((0x1f, 0x77, 0xb4)), count((0xd6, 0x27, 0x28))
white = count((255, 255, 255))
assert blue > 300 and red > 300, "series pixels: blue %d, red %d" % (blue, red)
assert white > w * h // 2, "mostly white background"
print("chart %dx%d: %d blue and %d red pixels" % (w, h, blue, red))
PYEOF
log "sweep chart rendered"

# --json, and arrivals from a capture and from text.
"$DOPPEL" window $OK --buffer 4K,16K --json >"$T/j.json" || fail "--json failed"
assert_eq "$(json "$T/j.json" "len(j['results'])")" 2 "one result per buffer"
assert_eq "$(json "$T/j.json" "j['results'][0]['method']")" exact "Poisson/exponential answered exactly"
assert_eq "$(json "$T/j.json" "j['results'][1]['mean_s'] > j['results'][0]['mean_s'] > 0")" True \
	"a bigger buffer lasts longer"
"$DOPPEL" window --arrivals "$ROOT/tests/fuzz/corpus/window/sll-ns-be.pcap" --service-rate 500 --buffer 100 \
	--json >"$T/c.json" || fail "reading a capture failed"
assert_eq "$(json "$T/c.json" "(j['trace']['arrivals'], j['trace']['bytes'], j['trace']['port'])")" \
	"(3, 60, 7000)" "capture read"
printf '# t size\n0 100\n0.5 100\n1 300\n' >"$T/a.txt"
"$DOPPEL" window --arrivals "$T/a.txt" --service-rate 1 --buffer 250 --replay-from-start --service det \
	--json >"$T/t.json" || fail "reading text arrivals failed"
# 0: served until 1 s; 0.5: waits (100 B); 1: 0.5 starts, 300 B > 250 B waits: overflow at 1 s.
assert_eq "$(json "$T/t.json" "float(j['results'][0]['mean_s'])")" 1.0 "replayed text arrivals overflow at 1 s"
log "PASS"
