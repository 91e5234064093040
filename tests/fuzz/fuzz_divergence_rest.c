/*
 * fuzz_divergence_rest.c - differential fuzzer for divergence/'s resting: a
 * connection that rests whenever it can (after every call, and swept after
 * every call: it gives back its working state, production's compared bytes
 * and its settled turns whenever nothing is on its way) counts and shows
 * exactly what the same connection that never rests does.
 *
 * The input drives one conversation fed to both: the client's requests, and
 * the answers of production, of a candidate replica and of a control, in any
 * order and pieces, built from protocol tokens (HTTP, RESP) and raw bytes so
 * that the framers reach their states between and inside messages. The
 * replicas mostly repeat production's bytes (so that most turns match and a
 * normaliser woken in the wrong state shows), sometimes say something else,
 * end early or are dropped.
 * The first byte picks the protocol and whether a user mask applies.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "divergence/divergence.h"
#include "tests/fuzz/fuzz_input.h"

static const char *const tokens[] = {
	"GET /a HTTP/1.1\r\n",
	"HEAD /x/12 HTTP/1.1\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	"Host: h\r\n",
	"\r\n",
	"HTTP/1.1 200 OK\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n",
	"Content-Length: 5\r\n",
	"Content-Length: 0\r\n",
	"Transfer-Encoding: chunked\r\n",
	"Date: Mon, 1 Jan\r\n",
	"5\r\nhello\r\n",
	"0\r\n\r\n",
	"hello",
	"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
	"*1\r\n$4\r\nPING\r\n",
	"PING\r\n",
	"+PONG\r\n",
	"+OK\r\n",
	"$5\r\nvalue\r\n",
	"$-1\r\n",
	":42\r\n",
	"*2\r\n:1\r\n*1\r\n+x\r\n",
	"%1\r\n+k\r\n+v\r\n",
	"-ERR no\r\n",
};
#define NTOKENS (sizeof(tokens) / sizeof(tokens[0]))
#define SIDES 3 /* candidate, control: followers 0 and 1; production */

/* A few tokens, or raw bytes from the input. */
static size_t make_bytes(struct in *in, unsigned char *out, size_t cap)
{
	unsigned k = 1 + take(in, 4);
	size_t n = 0;

	for (unsigned i = 0; i < k; i++) {
		unsigned t = take(in, NTOKENS + 2);

		if (t < NTOKENS) {
			size_t l = strlen(tokens[t]);

			if (n + l > cap)
				break;
			memcpy(out + n, tokens[t], l);
			n += l;
		} else {
			unsigned r = 1 + take(in, 24);

			for (unsigned j = 0; j < r && n < cap; j++)
				out[n++] = (unsigned char)take(in, 0);
		}
	}
	return n;
}

struct side {
	struct div_types *types;
	struct div_replica *rep[2];
	struct div_conn *dc;
};

static struct div_rules *rules_for(unsigned pick)
{
	static struct div_rules *cache[16];
	static const enum div_protocol protos[4] = {DIV_PROTO_RAW, DIV_PROTO_HTTP, DIV_PROTO_RESP,
						    DIV_PROTO_AUTO};
	unsigned i = pick % 16;

	if (!cache[i]) {
		struct div_options o;
		char err[128];

		div_options_defaults(&o);
		o.protocol = protos[i % 4];
		o.max_turns = (i / 8) ? 4 : 64;
		o.window = (i / 4) % 2 ? 4096 : 65536;
		if ((i / 4) % 2)
			o.masks[o.nmasks++] = "[0-9]+";
		if (div_rules_new(&o, &cache[i], err, sizeof(err)) < 0)
			abort();
	}
	return cache[i];
}

static void side_open(struct side *s, const struct div_rules *r)
{
	s->types = div_types_new();
	s->rep[0] = div_replica_new(s->types, DIV_CANDIDATE, NULL);
	s->rep[1] = div_replica_new(s->types, DIV_CONTROL, NULL);
	s->dc = div_conn_open(r, s->types, 7, 2);
	if (!s->types || !s->rep[0] || !s->rep[1] || !s->dc)
		abort();
	div_follower_attach(s->dc, 0, s->rep[0]);
	div_follower_attach(s->dc, 1, s->rep[1]);
}

static void side_close(struct side *s)
{
	div_conn_free(s->dc);
	div_replica_free(s->rep[0]);
	div_replica_free(s->rep[1]);
	div_types_free(s->types);
}

static void excerpts_of(void *arg, const struct div_excerpt *e)
{
	struct div_excerpt **pp = arg;

	*(*pp)++ = *e;
}

static void same_replica(const struct div_replica *a, const struct div_replica *b,
			 const struct div_types *ta)
{
	static struct div_excerpt ea[DIV_EXCERPTS_MAX], eb[DIV_EXCERPTS_MAX];
	struct div_excerpt *pa = ea, *pb = eb;

	if (memcmp(div_replica_counts(a), div_replica_counts(b), sizeof(struct div_counts)))
		abort();
	for (unsigned id = 0; id <= DIV_TYPES_MAX; id++)
		if (id < div_types_count(ta) || id == DIV_TYPES_MAX)
			if (memcmp(div_replica_type(a, id), div_replica_type(b, id),
				   sizeof(struct div_type_counts)))
				abort();
	div_replica_excerpts(a, excerpts_of, &pa);
	div_replica_excerpts(b, excerpts_of, &pb);
	if (pa - ea != pb - eb ||
	    div_replica_excerpts_skipped(a) != div_replica_excerpts_skipped(b))
		abort();
	for (long i = 0; i < pa - ea; i++)
		if (memcmp(&ea[i], &eb[i], sizeof(ea[i])))
			abort();
}

#define PROD_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char buf[4096], prod[PROD_MAX];
	size_t prod_n = 0, pos[2] = {0, 0};
	struct in in = {data, size};
	const struct div_rules *r = rules_for(take(&in, 0));
	struct side a, b;
	uint64_t client = 0, written[2] = {0, 0};
	int ended[SIDES] = {0, 0, 0};

	side_open(&a, r);
	side_open(&b, r);
	div_conn_never_rest(a.dc);
	for (unsigned step = 0; step < 200 && in.n; step++) {
		unsigned op = take(&in, 8);
		unsigned k = op % 2;
		size_t n;

		switch (op) {
		case 0:
		case 1: /* the client */
			n = make_bytes(&in, buf, sizeof(buf));
			div_client_data(a.dc, buf, n);
			div_client_data(b.dc, buf, n);
			client += n;
			break;
		case 2:
		case 3: /* production */
			if (ended[2])
				break;
			n = make_bytes(&in, buf, sizeof(buf));
			if (prod_n + n > PROD_MAX)
				break;
			memcpy(prod + prod_n, buf, n);
			prod_n += n;
			div_server_bytes(a.dc, buf, n);
			div_server_bytes(b.dc, buf, n);
			break;
		case 4:
		case 5: /* a replica answers, having been given some of the client's bytes */
			if (ended[k])
				break;
			written[k] += take(&in, 0) * (client - written[k] + 1) / 256;
			if (written[k] > client)
				written[k] = client;
			if (take(&in, 4) && pos[k] < prod_n) {
				/* production's next bytes, in a piece of its own size */
				n = 1 + take(&in, 0) * 4;
				if (n > prod_n - pos[k])
					n = prod_n - pos[k];
				memcpy(buf, prod + pos[k], n);
				pos[k] += n;
			} else {
				n = make_bytes(&in, buf, sizeof(buf));
			}
			div_follower_bytes(a.dc, k, buf, n, written[k]);
			div_follower_bytes(b.dc, k, buf, n, written[k]);
			break;
		case 6: /* a replica ends or is dropped; production ends */
			if (take(&in, 4) == 0 && !ended[2]) {
				div_server_end(a.dc);
				div_server_end(b.dc);
				ended[2] = 1;
			} else if (!ended[k] && take(&in, 4) == 0) {
				enum div_end how = take(&in, 2) ? DIV_END_EOF : DIV_END_DROPPED;

				div_follower_end(a.dc, k, how);
				div_follower_end(b.dc, k, how);
				ended[k] = 1;
			}
			break;
		default: /* time passes: only b is swept */
			break;
		}
		div_conn_sweep(b.dc);
		div_conn_sweep(b.dc);
		if (div_turns(a.dc) != div_turns(b.dc) ||
		    div_conn_requests(a.dc) != div_conn_requests(b.dc) ||
		    div_conn_protocol(a.dc) != div_conn_protocol(b.dc))
			abort();
	}
	if (!ended[2]) {
		div_server_end(a.dc);
		div_server_end(b.dc);
	}
	for (unsigned k = 0; k < 2; k++) {
		if (ended[k])
			continue;
		div_follower_end(a.dc, k, DIV_END_EOF);
		div_follower_end(b.dc, k, DIV_END_EOF);
	}
	div_conn_sweep(b.dc);
	div_conn_sweep(b.dc);
	/* freeing settles what was left: compare after it */
	div_conn_free(a.dc);
	div_conn_free(b.dc);
	a.dc = b.dc = NULL;
	if (div_types_count(a.types) != div_types_count(b.types))
		abort();
	same_replica(a.rep[0], b.rep[0], a.types);
	same_replica(a.rep[1], b.rep[1], a.types);
	side_close(&a);
	side_close(&b);
	return 0;
}
