/*
 * fuzz_divergence.c - property fuzzer for divergence/: a replica that answers
 * exactly like production never diverges, however its answers are chunked
 * and delayed, as long as it only answers requests it has received.
 *
 * The input drives a conversation: each turn, the client sends r bytes and
 * production answers s (>= 1) bytes, in pieces. The replica then sends the
 * same answer bytes in other pieces; with each piece it reports `written`,
 * the client bytes it had been given: at least up to the request of the last
 * turn the piece touches (causality), at most everything.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "divergence/divergence.h"

#define MAX_TURNS 64
#define MAX_BYTES 65536

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned take(struct in *in, unsigned mod)
{
	unsigned v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return mod ? v % mod : v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char answers[MAX_BYTES];
	struct in in = {data, size};
	unsigned nturns = 1 + take(&in, MAX_TURNS);
	uint64_t req_end[MAX_TURNS], ans_end[MAX_TURNS], client = 0, total_ans = 0;
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 4 + take(&in, 128));

	if (!dc)
		return 0;
	div_follower_start(dc, 0, &cnt);
	/* Production's conversation. */
	for (unsigned k = 0; k < nturns; k++) {
		unsigned r = take(&in, 40), s = 1 + take(&in, 200);

		if (total_ans + s > MAX_BYTES)
			break;
		if (r || k == 0) {
			div_client_bytes(dc, r);
			client += r;
		} else if (k > 0) {
			/* no client bytes: production simply goes on; this is the same turn */
			r = 1;
			div_client_bytes(dc, r);
			client += r;
		}
		req_end[k] = client;
		for (unsigned i = 0; i < s; i++)
			answers[total_ans + i] = (unsigned char)(take(&in, 0) ^ (k * 31 + i));
		for (unsigned off = 0; off < s;) {
			unsigned piece = 1 + take(&in, s - off);

			div_server_bytes(dc, answers + total_ans + off, piece);
			off += piece;
		}
		total_ans += s;
		ans_end[k] = total_ans;
		nturns = k + 1;
	}
	div_server_end(dc);
	/* The same answers from the replica, in other pieces. */
	for (uint64_t off = 0; off < total_ans;) {
		uint64_t piece = 1 + take(&in, 97), last;
		unsigned j = 0;

		if (piece > total_ans - off)
			piece = total_ans - off;
		last = off + piece - 1;
		while (ans_end[j] <= last)
			j++;
		/* It has received at least turn j's request, maybe more. */
		{
			uint64_t lo = req_end[j], w = lo + take(&in, 0) * (client - lo + 1) / 256;

			div_follower_bytes(dc, 0, answers + off, (size_t)piece, w);
		}
		off += piece;
	}
	div_follower_end(dc, 0, DIV_END_EOF);
	if (cnt.turns_diverged != 0 || cnt.turns_compared + cnt.turns_unchecked != nturns)
		abort();
	div_conn_free(dc);
	return 0;
}
