#!/bin/bash
# Promise: the SVG sequence diagrams are well-formed and render: rsvg-convert
# turns them into PNG images of the size the SVG declares, with a lifeline per
# thread, the folded loop drawn as a box labelled "loop step ×1000", and
# a multithreaded program drawn as one lifeline per thread.
. "$(dirname "$0")/lib.sh"
. "$HERE/trace_lib.sh"
need rsvg-convert
cd "$T" || fail "no temp dir"

png_check() { # SVG PNG
	rsvg-convert "$1" -o "$2" || fail "rsvg-convert could not render $1"
	$PY - "$1" "$2" <<'PYEOF' || fail "$2 is not the PNG of $1"
import struct, sys, xml.etree.ElementTree as ET
svg = ET.parse(sys.argv[1]).getroot()
w, h = int(svg.get("width")), int(svg.get("height"))
png = open(sys.argv[2], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pw, ph = struct.unpack(">II", png[16:24])
assert (pw, ph) == (w, h), (pw, ph, w, h)
assert len(png) > 2000, "suspiciously small image"
PYEOF
}

DOPPELTRACE_OUT=$T/loop.dtr "$SAMPLES/loop1000_dtr" >/dev/null || fail "loop1000_dtr"
"$DOPPEL" trace summarise "$T/loop.dtr" | "$DOPPEL" trace view --svg --title "loop1000" - -o "$T/loop.svg" ||
	fail "view --svg"
grep -q '>loop step ×1000 ' "$T/loop.svg" || fail "no folded loop box in the SVG"
grep -q '>main() ' "$T/loop.svg" || fail "no main() activation in the SVG"
png_check "$T/loop.svg" "$T/loop.png"

DOPPELTRACE_OUT=$T/mt.dtr "$SAMPLES/mt_counts_dtr" 3 5 2 >/dev/null || fail "mt_counts_dtr"
"$DOPPEL" trace summarise "$T/mt.dtr" | "$DOPPEL" trace view --svg - -o "$T/mt.svg" || fail "view --svg (threads)"
assert_eq "$(grep -c 'stroke-dasharray="4,3"' "$T/mt.svg")" 4 "lifelines (main and 3 workers)"
png_check "$T/mt.svg" "$T/mt.png"

DOPPELTRACE_OUT=$T/rec.dtr "$SAMPLES/recurse_dtr" 20 >/dev/null || fail "recurse_dtr"
"$DOPPEL" trace summarise "$T/rec.dtr" | "$DOPPEL" trace view --svg --max-rows 10 - -o "$T/rec.svg"
grep -q '>recursion walk ×20 ' "$T/rec.svg" || fail "no recursion box"
grep -q 'more events and 0 more lifelines not drawn' "$T/rec.svg" || fail "no note about rows left out"
png_check "$T/rec.svg" "$T/rec.png"
log "PASS"
