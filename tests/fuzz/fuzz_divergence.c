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
 *
 * The first byte picks the protocol whose normaliser both sides go through
 * (raw, HTTP, RESP; with or without a user mask) and the request typer reads
 * the client bytes: a normaliser never makes an identical replica diverge.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "divergence/divergence.h"
#include "tests/fuzz/fuzz_input.h"

#define MAX_TURNS 64
#define MAX_BYTES 65536

static struct div_rules *rules_for(unsigned pick, unsigned max_turns)
{
	static struct div_rules *cache[8][4];
	static const enum div_protocol protos[4] = {DIV_PROTO_RAW, DIV_PROTO_HTTP, DIV_PROTO_RESP,
						    DIV_PROTO_AUTO};
	unsigned p = pick % 4, m = (pick / 4) % 2, t = max_turns % 4;

	if (!cache[p * 2 + m][t]) {
		struct div_options o;
		char err[128];

		div_options_defaults(&o);
		o.protocol = protos[p];
		o.max_turns = 4 + t * 8;
		o.window = (t % 2) ? 4096 : 0;
		if (m)
			o.masks[o.nmasks++] = "[0-9]+";
		if (div_rules_new(&o, &cache[p * 2 + m][t], err, sizeof(err)) < 0)
			abort();
	}
	return cache[p * 2 + m][t];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char answers[MAX_BYTES], reqbuf[256];
	struct in in = {data, size};
	unsigned pick = take(&in, 0);
	unsigned nturns = 1 + take(&in, MAX_TURNS);
	uint64_t req_end[MAX_TURNS], ans_end[MAX_TURNS], client = 0, total_ans = 0;
	struct div_types *types = div_types_new();
	struct div_replica *rep = div_replica_new(types, DIV_CANDIDATE, NULL);
	const struct div_counts *cntp = div_replica_counts(rep);
	struct div_conn *dc = div_conn_open(rules_for(pick, take(&in, 0)), types, 1, 1);

	if (!dc)
		abort();
	div_follower_attach(dc, 0, rep);
	/* Production's conversation. */
	for (unsigned k = 0; k < nturns; k++) {
		unsigned r = take(&in, 40), s = 1 + take(&in, 250);

		if (total_ans + s > MAX_BYTES)
			break;
		if (!r && k > 0)
			r = 1; /* every turn after the first starts with client bytes */
		for (unsigned i = 0; i < r; i++)
			reqbuf[i] = (unsigned char)take(&in, 0);
		if (r)
			div_client_data(dc, reqbuf, r);
		client += r;
		req_end[k] = client;
		for (unsigned i = 0; i < s; i++)
			answers[total_ans + i] =
				(unsigned char)(take(&in, 0) ^ (pick % 4 ? 0 : k * 31 + i));
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
	if (cntp->turns_diverged != 0 ||
	    cntp->turns_compared + cntp->turns_unchecked != div_turns(dc))
		abort();
	div_conn_free(dc);
	div_replica_free(rep);
	div_types_free(types);
	return 0;
}
