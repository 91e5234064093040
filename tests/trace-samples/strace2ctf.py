#!/usr/bin/env python3
"""strace2ctf.py - turn `strace -f -ttt -T -yy` text into a CTF 1.8 trace laid
out like an LTTng kernel trace of syscalls (syscall_entry_X / syscall_exit_X
events with procname, pid and tid context), so that the real babeltrace2 can
print it as it prints LTTng traces. LTTng's kernel tracer needs kernel modules
a test machine may not have; this keeps the babeltrace text path honest.

usage: strace2ctf.py TRACE.strace OUTDIR [PROCNAME]
"""
import os
import re
import struct
import sys

LINE = re.compile(r'^(?:\[pid\s+)?(\d+)\]?\s+(\d+\.\d+)\s+(.*)$')
CALL = re.compile(r'^([a-z0-9_]+)\((.*)$')
RESUMED = re.compile(r'^<\.\.\. ([a-z0-9_]+) resumed>(.*)$')
RET = re.compile(r'\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(?:<[^>]*>)?(?:\s+([A-Z][A-Z0-9_]+))?.*?(?:<(\d+\.\d+)>)?\s*$')
FD = re.compile(r'^(\d+)<')

ERRNO = {'EAGAIN': 11, 'EINPROGRESS': 115, 'ENOENT': 2, 'EBADF': 9, 'EINTR': 4,
         'ECONNRESET': 104, 'EPIPE': 32, 'EEXIST': 17, 'ENOTCONN': 107}


def parse(path):
    """(ts_ns, tid, name, fd or None) entries and (ts_ns, tid, name, ret) exits."""
    events = []
    pending = {}
    for line in open(path, errors='replace'):
        m = LINE.match(line.rstrip('\n'))
        if not m:
            continue
        tid, ts, rest = int(m.group(1)), m.group(2), m.group(3)
        sec, frac = ts.split('.')
        t = int(sec) * 1000000000 + int((frac + '000000000')[:9])
        r = RESUMED.match(rest)
        if r:
            name, tail = r.group(1), r.group(2)
            start = pending.pop(tid, None)
            ret = parse_ret(RET.search(tail))
            if start and ret is not None:
                events.append((t, 1, tid, name, ret))
            continue
        c = CALL.match(rest)
        if not c:
            continue
        name, args = c.group(1), c.group(2)
        fdm = FD.match(args)
        fd = int(fdm.group(1)) if fdm else None
        if args.endswith('<unfinished ...>'):
            pending[tid] = True
            events.append((t, 0, tid, name, fd))
            continue
        rm = RET.search(args)
        ret = parse_ret(rm)
        dur = int(float(rm.group(3)) * 1e9) if rm and rm.group(3) else 0
        events.append((t, 0, tid, name, fd))
        if ret is not None:
            events.append((t + dur, 1, tid, name, ret))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def parse_ret(rm):
    if not rm or rm.group(1) == '?':
        return None
    v = int(rm.group(1), 0)
    if v == -1 and rm.group(2) in ERRNO:
        return -ERRNO[rm.group(2)]
    return v


def main():
    src, out = sys.argv[1], sys.argv[2]
    procname = sys.argv[3] if len(sys.argv) > 3 else 'traced'
    events = parse(src)
    if not events:
        sys.exit('no syscalls in ' + src)
    os.makedirs(out, exist_ok=True)
    names = sorted({(e[3], e[1], e[1] == 0 and e[4] is not None) for e in events})
    ids = {}
    meta = ['/* CTF 1.8 */',
            'typealias integer { size = 8; align = 8; signed = false; } := uint8_t;',
            'typealias integer { size = 32; align = 8; signed = false; } := uint32_t;',
            'typealias integer { size = 64; align = 8; signed = false; } := uint64_t;',
            'typealias integer { size = 64; align = 8; signed = true; } := int64_t;',
            'trace { major = 1; minor = 8; byte_order = le;',
            '  packet.header := struct { uint32_t magic; uint32_t stream_id; }; };',
            'env { hostname = "ctfhost"; domain = "kernel"; tracer_name = "lttng-modules"; };',
            'clock { name = "monotonic"; freq = 1000000000; offset_s = %d; };' % (events[0][0] // 1000000000),
            'typealias integer { size = 64; align = 8; signed = false; map = clock.monotonic.value; } := ts_t;',
            'stream { id = 0;',
            '  event.header := struct { uint32_t id; ts_t timestamp; };',
            '  packet.context := struct { ts_t timestamp_begin; ts_t timestamp_end;',
            '    uint64_t content_size; uint64_t packet_size; uint32_t cpu_id; };',
            '  event.context := struct { string procname; int64_t pid; int64_t tid; }; };']
    for i, (name, kind, has_fd) in enumerate(names):
        ids[(name, kind, has_fd)] = i
        if kind == 1:
            fields = 'int64_t ret;'
        elif has_fd:
            fields = 'int64_t fd;'
        else:
            fields = 'uint8_t unknown_args;'
        meta.append('event { name = "syscall_%s_%s"; id = %d; stream_id = 0; fields := struct { %s }; };'
                    % ('exit' if kind else 'entry', name, i, fields))
    open(os.path.join(out, 'metadata'), 'w').write('\n'.join(meta) + '\n')
    base = (events[0][0] // 1000000000) * 1000000000
    body = bytearray()
    pid_of = {}
    for t, kind, tid, name, val in events:
        has_fd = kind == 0 and val is not None
        body += struct.pack('<IQ', ids[(name, kind, has_fd)], t - base)
        body += procname.encode() + b'\0'
        body += struct.pack('<qq', pid_of.setdefault(tid, tid), tid)
        if kind == 1:
            body += struct.pack('<q', val)
        elif has_fd:
            body += struct.pack('<q', val)
        else:
            body += struct.pack('<B', 0)
    header_len = 8 + 8 + 8 + 8 + 8 + 4
    total = header_len + len(body)
    packet = struct.pack('<II', 0xC1FC1FC1, 0)
    packet += struct.pack('<QQQQI', events[0][0] - base, events[-1][0] - base,
                          total * 8, total * 8, 0)
    open(os.path.join(out, 'channel0_0'), 'wb').write(packet + bytes(body))


if __name__ == '__main__':
    main()
