/*
 * doppeltrace.h - the optional API of libdoppeltrace, the function tracer
 * for programs built with -finstrument-functions.
 *
 * A program needs none of this to be traced: build it with
 * -finstrument-functions and link it with -ldoppeltrace (or start it with
 * LD_PRELOAD=libdoppeltrace.so). The environment chooses where records go:
 *
 *   DOPPELTRACE_OUT=FILE        append chunks to FILE (default doppeltrace.dtr)
 *   DOPPELTRACE_OUT=unix:PATH   send chunks to a collector on a SOCK_SEQPACKET
 *                               unix socket (`doppel trace collect`)
 *   DOPPELTRACE_CLOCK=tsc|mono  timestamp source (default tsc when invariant)
 *   DOPPELTRACE_DISABLE=1       record nothing
 */
#ifndef DOPPELTRACE_H
#define DOPPELTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Write the calling thread's pending records now (they are otherwise written
 * every 4096 records, when the thread exits, and when the process exits). */
void doppeltrace_flush(void);

#ifdef __cplusplus
}
#endif

#endif
