/*
 * tracer-glue.h - the live side of tracing: what runs next to a clone or a
 * traced program while it runs. `doppel attach` and the budget governor have
 * their own header (tracer-glue/attach.h); the runtime loaded into traced
 * programs is tracer-glue/runtime/ (doppeltrace.h, and dtr-format.h for the
 * format it writes). Reading and analysing the traces afterwards is trace/.
 *
 * This header: the collector libdoppeltrace streams to. Functions return 0 or
 * -errno, with a sentence in the caller's error buffer; nothing here prints.
 */
#ifndef DOPPEL_TRACER_GLUE_H
#define DOPPEL_TRACER_GLUE_H

#include <stddef.h>
#include <stdint.h>

struct trc_collect_stats {
	uint64_t clients, chunks, bytes, rejected;
};

/* Accepts libdoppeltrace clients on a SOCK_SEQPACKET unix socket and appends
 * their chunks to out_path until *stop is set, or (once) when the last client
 * leaves after at least one came. When *stop is set it still takes in what
 * clients had already sent, so a client that sent its chunks and left just
 * before the stop loses nothing. Runs on the caller's thread; *stop may be
 * set from a signal handler. */
int trc_collect(const char *sock_path, const char *out_path, int once, volatile int *stop,
		struct trc_collect_stats *st, char *err, size_t errlen);

#endif
