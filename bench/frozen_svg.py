#!/usr/bin/env python3
"""frozen_svg.py - draw bench/clone_frozen.sh's frozen.tsv as an SVG curve.

    python3 bench/frozen_svg.py frozen.tsv frozen-curve.svg [NOTE]

Production's frozen time (ms, log scale) against the memory redis used (MiB,
log scale): doppel clone with images on tmpfs and on disk, with --predump off,
the longest pre-dump pass freeze, plain `criu dump`
to disk and to tmpfs, and the 100 ms goal; NOTE (e.g. the machine's load) goes
under the legend. Standard library only.
"""
import csv
import math
import sys

SERIES = [
    ("doppel_frozen_ms", "doppel clone (images on tmpfs, default)", "#1f77b4", ""),
    ("doppel_disk_frozen_ms", "doppel clone --images on disk", "#17becf", "6,3"),
    ("doppel_plain_frozen_ms", "doppel clone --predump off", "#8c564b", "4,2"),
    ("pass_frozen_ms", "longest pre-dump pass freeze", "#9467bd", "1,2"),
    ("criu_tmpfs_frozen_ms", "criu dump --leave-running, tmpfs", "#d62728", "2,3"),
    ("criu_disk_frozen_ms", "criu dump --leave-running, disk", "#ff7f0e", ""),
]
W, H = 900, 460
L, R, TOP, B = 70, 330, 40, 60


def num(v):
    try:
        return float(v)
    except ValueError:
        return None


def main():
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    xs = [max(num(r["used_mib"]) or 1, 1) for r in rows]
    ys = [num(r[k]) for r in rows for k, *_ in SERIES if num(r[k])] + [100.0]
    x0, x1 = math.log10(min(xs)) - 0.1, math.log10(max(xs)) + 0.1
    y0 = math.floor(math.log10(min(ys)) - 0.05)
    y1 = math.ceil(math.log10(max(ys)) + 0.05)
    pw, ph = W - L - R, H - TOP - B

    def px(v):
        return L + (math.log10(v) - x0) / (x1 - x0) * pw

    def py(v):
        return TOP + ph - (math.log10(v) - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{L}" y="22" font-size="14">Production frozen to make a live clone '
        f'(redis under a SET load), {len(rows)} sizes</text>',
    ]
    for e in range(int(y0), int(y1) + 1):
        for m in (1, 2, 5):
            v = m * 10**e
            if not 10**y0 <= v <= 10**y1:
                continue
            y = py(v)
            out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}" '
                       f'stroke="#ddd"/>')
            out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    for r, x in zip(rows, xs):
        out.append(f'<line x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{TOP + ph}" '
                   f'stroke="#eee"/>')
        out.append(f'<text x="{px(x):.1f}" y="{TOP + ph + 16}" text-anchor="middle">'
                   f'{x:.0f}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 18}" text-anchor="middle">redis used '
               f'memory (MiB, log scale)</text>')
    out.append(f'<text x="16" y="{TOP + ph / 2}" transform="rotate(-90 16 {TOP + ph / 2})" '
               f'text-anchor="middle">frozen ms (freezing + frozen, log scale)</text>')
    out.append(f'<rect x="{L}" y="{TOP}" width="{pw}" height="{ph}" fill="none" '
               f'stroke="#444"/>')
    gy = py(100)
    out.append(f'<line x1="{L}" y1="{gy:.1f}" x2="{L + pw}" y2="{gy:.1f}" stroke="#2ca02c" '
               f'stroke-width="2" stroke-dasharray="8,4"/>')
    ly = TOP + 10
    for key, label, color, dash in SERIES:
        pts = [(px(x), py(num(r[key]))) for r, x in zip(rows, xs) if num(r[key])]
        if not pts:
            continue
        d = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{color}" '
                   f'stroke-width="2"{dash_attr}/>')
        for a, b in pts:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>')
        out.append(f'<line x1="{W - R + 14}" y1="{ly}" x2="{W - R + 40}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{W - R + 46}" y="{ly + 4}">{label}</text>')
        ly += 20
    out.append(f'<line x1="{W - R + 14}" y1="{ly}" x2="{W - R + 40}" y2="{ly}" '
               f'stroke="#2ca02c" stroke-width="2" stroke-dasharray="8,4"/>')
    out.append(f'<text x="{W - R + 46}" y="{ly + 4}">goal: 100 ms</text>')
    modes = sorted({r["predump"] for r in rows})
    out.append(f'<text x="{W - R + 14}" y="{ly + 30}">pre-dump: {"/".join(modes)}</text>')
    out.append(f'<text x="{W - R + 14}" y="{ly + 50}">median of the runs per size</text>')
    for i, part in enumerate((sys.argv[3] if len(sys.argv) > 3 else "").split("; ")):
        if part:
            esc = part.replace("&", "&amp;").replace("<", "&lt;")
            out.append(f'<text x="{W - R + 14}" y="{ly + 70 + 18 * i}">{esc}</text>')
    out.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
