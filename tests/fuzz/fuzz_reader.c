/*
 * fuzz_reader.c - libFuzzer target for one trace parser (FUZZ_FORMAT: strace,
 * babeltrace, dtt or dtr text/bytes from memory). Every input is read to the
 * end and pushed through summarise (keeping times) and expand, so the parser
 * and the folding code both see hostile input. Built with
 * clang -fsanitize=fuzzer,address,undefined (tests/fuzz/CMakeLists.txt).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"

struct null_sink {
	struct trace_sink base;
	uint64_t n;
};

static int null_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct null_sink *z = (struct null_sink *)s;

	/* touch every string the event carries */
	z->n += strlen(ev->name) + (ev->args ? strlen(ev->args) : 0) +
		(ev->fdpath ? strlen(ev->fdpath) : 0) + (ev->retpath ? strlen(ev->retpath) : 0) +
		(ev->extra ? strlen(ev->extra) : 0);
	return 0;
}

static void null_free(struct trace_sink *s)
{
	free(s);
}

static const struct trace_sink_ops null_ops = {null_event, NULL, null_free};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace_read_opts ro = {.format = FUZZ_FORMAT, .reorder_chunks = 4};
	struct trace_summarise_opts so = {.window = 8, .keep_times = 1, .max_events = 64};
	struct null_sink *z;
	struct trace_sink *chain;
	struct trace_reader *r;
	char err[512], *copy;
	FILE *f;

	if (size == 0)
		return 0;
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	f = fmemopen(copy, size, "r");
	if (!f) {
		free(copy);
		return 0;
	}
	if (trace_reader_open_file(f, "fuzz", &ro, &r, err, sizeof(err)) == 0) {
		z = calloc(1, sizeof(*z));
		z->base.ops = &null_ops;
		chain = trace_expand_new_limited(
			trace_summarise_new(&so, trace_expand_new_limited(&z->base, 100000)),
			100000);
		if (trace_pump(r, chain, err, sizeof(err)) == 0)
			trace_sink_end(chain);
		trace_sink_free(chain);
		trace_reader_close(r);
	}
	free(copy);
	trace_intern_reset();
	return 0;
}
