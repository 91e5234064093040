#!/usr/bin/python3
"""slow_tracer.py PIDS - a stand-in for a costly tracer: it keeps the given
processes stopped 98% of the time (1 ms of every 50). Like a
ptrace tool it must not itself be stopped; on SIGINT or SIGTERM it lets the
processes run again and exits (it "detaches"), as the governor's restart
method expects."""
import os
import signal
import sys
import time

pids = [int(p) for p in sys.argv[1].split(",") if p]
done = False


def stop(sig, frame):
    global done
    done = True


def signal_all(sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
# Real-time priority: on a busy machine a starved tracer would leave the clone
# running far longer than 1 ms, and the clone would not be slow at all.
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
print("slowing", pids, flush=True)
while not done:
    signal_all(signal.SIGSTOP)
    time.sleep(0.049)
    signal_all(signal.SIGCONT)
    time.sleep(0.001)
signal_all(signal.SIGCONT)
print("detached", flush=True)
