#!/usr/bin/python3
"""label.py - read the clone's requests, one doppel trace text file each
(`doppel trace demux --by request -o DIR`), and say which answers were stale.

    label.py DIR EXPECT LABELS      (DIR and its subdirectories)

EXPECT is load.py's "ID VALUE" file: what each read should have returned.
For every read (GET) in DIR the request id comes from the bytes kvd read and
the answer from the bytes it wrote; LABELS gets "FILE 0" (right) or "FILE 1"
(stale). Prints, as KEY=VALUE lines: how many reads and stale answers, and a
pair for `doppel trace compare`: GOOD, a read that re-read the file right
after an update, and BAD, the stale read of the same user after its second
update, with USER_ID and SAME_USER=1; when the trace holds no such triple,
any right read that re-read its file and any stale read (SAME_USER=0).
"""
import os
import re
import sys

READ = re.compile(r'\| read\(\d+<TCP:\[[^\]]*\]>, "(GET|PUT) /user/(\d+) HTTP/1\.0\\r\\nX-Request-Id: (\d+)')
WRITE = re.compile(r'\| write\(\d+<TCP:\[[^\]]*\]>, "HTTP/1\.0 (\d+) [^"]*?\\r\\n\\r\\n([^"]*)"')


def main():
    d, expect_path, labels_path = sys.argv[1:4]
    expect = {}
    with open(expect_path) as f:
        for line in f:
            rid, _, value = line.rstrip("\n").partition(" ")
            expect[int(rid)] = value
    reqs = []
    files = [os.path.join(root, n) for root, _, names in os.walk(d) for n in names if n.endswith(".dtt")]
    for path in files:
        text = open(path).read()
        r, w = READ.search(text), WRITE.search(text)
        if not r or not w:
            continue
        reqs.append({"file": path, "method": r.group(1), "user": int(r.group(2)),
                     "id": int(r.group(3)), "status": int(w.group(1)), "body": w.group(2),
                     "reread": "openat(" in text})
    reqs.sort(key=lambda q: q["id"])
    reads = [q for q in reqs if q["method"] == "GET" and q["status"] == 200 and q["id"] in expect]
    stale = [q for q in reads if q["body"] != expect[q["id"]]]
    with open(labels_path, "w") as f:
        for q in reads:
            f.write("%s %d\n" % (q["file"], 1 if q in stale else 0))
    print("READS=%d" % len(reads))
    print("STALE=%d" % len(stale))
    print("PUTS=%d" % sum(1 for q in reqs if q["method"] == "PUT"))
    # GET(re-read) PUT GET(stale) of one user, consecutive in the request ids
    by_id = {q["id"]: q for q in reqs}
    for bad in stale:
        put = by_id.get(bad["id"] - 1)
        good = by_id.get(bad["id"] - 2)
        if put and good and put["method"] == "PUT" and put["user"] == bad["user"] and \
                good["method"] == "GET" and good["user"] == bad["user"] and good["reread"] and \
                good in reads and good not in stale:
            pair(good, bad, 1)
            return
    good = [q for q in reads if q["reread"] and q not in stale]
    if good and stale:
        pair(good[-1], stale[-1], 0)


def pair(good, bad, same):
    print("GOOD=%s" % good["file"])
    print("BAD=%s" % bad["file"])
    print("USER_ID=%d" % bad["user"])
    print("SAME_USER=%d" % same)
    print("STALE_VALUE=%s" % bad["body"])


if __name__ == "__main__":
    main()
