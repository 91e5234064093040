/*
 * fuzz_cli_parse.c - the parsers behind command-line options: sizes,
 * durations and HOST:PORT endpoints (numeric hosts only: no DNS while
 * fuzzing). No input may crash them, and what they accept must make sense.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/netaddr.h"
#include "common/size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[256], err[256], out[64];
	struct net_endpoint ep;
	uint64_t v;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (size_parse(s, &v) == 0)
		size_format(v, out, sizeof(out));
	duration_parse(s, &v);
	/* Names would be resolved through DNS: only numeric hosts here. */
	if (strspn(s, "0123456789.:[]abcdefABCDEF") == size &&
	    netaddr_parse(s, &ep, err, sizeof(err)) == 0) {
		if (ep.len == 0 || !strchr(ep.text, ':'))
			abort();
	} else if (err[0] == '\0' && strspn(s, "0123456789.:[]abcdefABCDEF") == size) {
		abort(); /* a refusal always says why */
	}
	return 0;
}
