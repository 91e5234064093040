/*
 * fuzz_normalise.c - property fuzzer for divergence/'s normalisers and
 * request typer: whatever the bytes, a normaliser's output (bytes and message
 * boundaries) does not depend on how the stream was cut into reads, and its
 * state stays bounded (no crash, no leak, output at most a few times the
 * input).
 *
 * Input: byte 0 picks the protocol (raw, HTTP, RESP) and whether user masks
 * apply; byte 1 seeds the read sizes; the rest is the stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "divergence/div-int.h"
#include "divergence/divergence.h"

struct out {
	unsigned char *buf;
	size_t len, cap;
	unsigned boundaries;
	uint64_t sig; /* where the boundaries fell */
};

static void out_bytes(void *ctx, const unsigned char *p, size_t n)
{
	struct out *o = ctx;

	if (o->len + n > o->cap)
		abort(); /* output far larger than the input: unbounded growth */
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void out_boundary(void *ctx)
{
	struct out *o = ctx;

	o->boundaries++;
	o->sig = o->sig * 31 + o->len;
}

static void run(const struct div_rules *r, enum div_protocol p, const struct div_reqlog *log,
		const uint8_t *d, size_t n, unsigned seed, struct out *o)
{
	struct div_sink s = {out_bytes, out_boundary, o};
	struct div_norm nm;
	size_t off = 0;

	div_norm_init(&nm, r, p, log, &s);
	while (off < n) {
		size_t piece = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 17 : n;

		if (piece > n - off)
			piece = n - off;
		div_norm_feed(&nm, d + off, piece);
		off += piece;
	}
	div_norm_finish(&nm);
	div_norm_release(&nm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct div_rules *rules[2];
	struct div_types *types;
	struct div_typer t;
	struct div_reqlog log = {0};
	enum div_protocol p;
	struct out a = {0}, b = {0};
	unsigned seed;

	if (size < 2)
		return 0;
	if (!rules[0]) {
		struct div_options o;
		char err[128];

		div_options_defaults(&o);
		if (div_rules_new(&o, &rules[0], err, sizeof(err)) < 0)
			abort();
		o.masks[o.nmasks++] = "[0-9]+";
		o.masks[o.nmasks++] = "(a|b)*c";
		if (div_rules_new(&o, &rules[1], err, sizeof(err)) < 0)
			abort();
	}
	p = data[0] % 3 == 1 ? DIV_PROTO_HTTP : data[0] % 3 == 2 ? DIV_PROTO_RESP : DIV_PROTO_RAW;
	seed = data[1] | 1u;
	data += 2;
	size -= 2;

	/* the typer over the same bytes, as if they were requests */
	types = div_types_new();
	div_typer_init(&t, p, types, &log);
	for (size_t off = 0; off < size;) {
		size_t piece = 1 + (off * 7 + seed) % 13;

		if (piece > size - off)
			piece = size - off;
		div_typer_feed(&t, data + off, piece, (off / 13) % 2);
		off += piece;
		{
			unsigned char head[DIV_EXCERPT_REQ];
			unsigned hl;

			div_typer_take(&t, head, &hl);
			if (hl > DIV_EXCERPT_REQ)
				abort();
		}
	}
	div_types_free(types);

	a.cap = b.cap = 16 * size + 4096;
	a.buf = malloc(a.cap);
	b.buf = malloc(b.cap);
	if (!a.buf || !b.buf)
		abort();
	run(rules[(data - 2)[0] / 3 % 2], p, &log, data, size, 0, &a);
	run(rules[(data - 2)[0] / 3 % 2], p, &log, data, size, seed, &b);
	if (a.len != b.len || memcmp(a.buf, b.buf, a.len) || a.boundaries != b.boundaries ||
	    a.sig != b.sig)
		abort();
	free(a.buf);
	free(b.buf);
	return 0;
}
