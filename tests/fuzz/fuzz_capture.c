/*
 * fuzz_capture.c - record/'s capture reader on arbitrary bytes (pcap and
 * pcapng through libpcap, then link, IP and TCP headers and reassembly):
 * no crash, no leak, and the streams hold exactly the payload it counted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "record/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec_capture cap;
	FILE *fp;
	char err[256];
	uint64_t sum = 0;

	if (!size)
		return 0;
	fp = fmemopen((void *)data, size, "rb");
	if (!fp)
		return 0;
	if (rec_capture_read_fp(fp, size % 2 ? 0 : 80, 1 << 20, &cap, err, sizeof(err)) < 0)
		return 0;
	for (unsigned i = 0; i < cap.nstreams; i++) {
		const struct rec_stream *s = &cap.streams[i];
		uint64_t c = 0, v = 0;

		for (unsigned j = 0; j < s->nsegs; j++) {
			if (s->segs[j].from_client)
				c += s->segs[j].len;
			else
				v += s->segs[j].len;
			if (j && s->segs[j].from_client == s->segs[j - 1].from_client)
				abort(); /* a send is a maximal run of one direction */
		}
		if (c != s->client_bytes || v != s->server_bytes)
			abort();
		sum += c + v;
	}
	if (sum != cap.bytes)
		abort();
	rec_capture_free(&cap);
	return 0;
}
