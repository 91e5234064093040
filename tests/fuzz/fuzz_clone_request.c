/*
 * fuzz_clone_request.c - POST /clone's query as the admin endpoint gets it:
 * libevent's query parser (evhttp_parse_query_str) and then doppel's checks
 * (supervisor/clone-request.c). No query may crash them; what is accepted is
 * within its documented range, and a refusal always says why.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "supervisor/sup-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[4096], err[512] = "";
	struct evkeyvalq q;
	struct sup_clone_request r;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(s, &q) == 0) {
		if (sup_clone_request_parse(&q, &r, err, sizeof(err)) == 0) {
			if (r.count < 1 || r.count > SUP_MAX_CLONES)
				abort();
			if (r.limits.memory && r.limits.memory < (4ULL << 20))
				abort();
			if (r.limits.cpu_weight < 0 || r.limits.cpu_weight > 10000)
				abort();
			if (r.limits.pids < 0)
				abort();
			if (r.keep && (r.keep[0] != '/' || r.count != 1))
				abort();
			if (r.predump != CM_PREDUMP_AUTO && r.predump != CM_PREDUMP_ON &&
			    r.predump != CM_PREDUMP_OFF)
				abort();
		} else if (!err[0]) {
			abort();
		}
	}
	evhttp_clear_headers(&q);
	return 0;
}
