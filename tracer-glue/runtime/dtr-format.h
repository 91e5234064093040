/*
 * dtr-format.h - the libdoppeltrace trace format (".dtr"), shared by the
 * runtime that writes it (tracer-glue/runtime/doppeltrace.c), the collector
 * that receives it (tracer-glue/collect.c) and the reader that analyses it
 * (trace/read-dtr.c). docs/tracing.md is the prose specification.
 *
 * A public header of the runtime, because the runtime defines the format:
 * it is what programs carry, it builds alone (libc only, no sanitizers, not
 * instrumented) and must not depend on the offline analyses, which follow
 * whatever it writes. Both trace/ and tracer-glue/ include it from here;
 * it includes nothing of doppel.
 *
 * A trace is a sequence of self-describing chunks, little endian, each a
 * 64-byte header followed by `size` payload bytes. Every traced thread fills
 * its own chunk and writes it whole (one write(2) to a file opened O_APPEND,
 * or one message on a SOCK_SEQPACKET unix socket), so chunks of different
 * threads and processes interleave but never mix, and no lock is shared
 * between threads. A thread's chunks appear in order (seq counts them; a gap
 * means chunks were lost).
 *
 * Chunk types:
 *   DTR_CHUNK_INFO    payload: "key=value\n" text (exe, clock, realtime offset)
 *   DTR_CHUNK_MAPS    payload: the executable lines of /proc/PID/maps, text
 *   DTR_CHUNK_EVENTS  payload: struct dtr_record[size / 16]
 *
 * Event records are 16 bytes: a raw timestamp and one word holding the
 * function address (48 bits), the record type (2 bits) and the call depth
 * (14 bits). Raw timestamps are TSC ticks or CLOCK_MONOTONIC nanoseconds
 * (INFO "clock="); each EVENTS header brackets its records with two
 * (raw, CLOCK_MONOTONIC ns) pairs taken when the chunk was started and when it
 * was written, so a reader converts raw ticks by linear interpolation without
 * knowing the TSC frequency.
 */
#ifndef DOPPEL_TRACER_GLUE_RUNTIME_DTR_FORMAT_H
#define DOPPEL_TRACER_GLUE_RUNTIME_DTR_FORMAT_H

#include <stdint.h>

#define DTR_MAGIC 0x31525444u /* "DTR1" */
#define DTR_HDR_SIZE 64u
#define DTR_MAX_PAYLOAD (16u << 20) /* a reader refuses larger chunks */

enum dtr_chunk_type {
	DTR_CHUNK_INFO = 1,
	DTR_CHUNK_MAPS = 2,
	DTR_CHUNK_EVENTS = 3,
};

struct dtr_chunk_hdr {
	uint32_t magic;	   /* DTR_MAGIC */
	uint16_t type;	   /* enum dtr_chunk_type */
	uint16_t hdr_size; /* DTR_HDR_SIZE; larger values leave room to grow */
	uint32_t size;	   /* payload bytes after the header */
	uint32_t pid;
	uint32_t tid;
	uint32_t seq;	    /* per-thread EVENTS chunk number, from 0 */
	uint64_t dropped;   /* records this thread could not write so far */
	uint64_t raw_begin; /* clock pair when the chunk was started */
	uint64_t ns_begin;
	uint64_t raw_end; /* clock pair when the chunk was written */
	uint64_t ns_end;
};

_Static_assert(sizeof(struct dtr_chunk_hdr) == DTR_HDR_SIZE, "dtr header is 64 bytes");

enum dtr_rec_type {
	DTR_REC_ENTER = 0,
	DTR_REC_EXIT = 1,
	DTR_REC_LOST = 2, /* addr field: number of records lost here */
};

struct dtr_record {
	uint64_t time; /* raw clock */
	uint64_t word; /* addr:48 | type:2 | depth:14 */
};

#define DTR_ADDR_MASK ((1ULL << 48) - 1)
#define DTR_DEPTH_MAX ((1u << 14) - 1)

static inline uint64_t dtr_word(uint64_t addr, unsigned type, unsigned depth)
{
	if (depth > DTR_DEPTH_MAX)
		depth = DTR_DEPTH_MAX;
	return (addr & DTR_ADDR_MASK) | ((uint64_t)(type & 3) << 48) | ((uint64_t)depth << 50);
}

static inline uint64_t dtr_rec_addr(uint64_t word)
{
	return word & DTR_ADDR_MASK;
}

static inline unsigned dtr_rec_type(uint64_t word)
{
	return (unsigned)(word >> 48) & 3;
}

static inline unsigned dtr_rec_depth(uint64_t word)
{
	return (unsigned)(word >> 50);
}

#endif
