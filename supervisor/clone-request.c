/*
 * clone-request.c - POST /clone's query checked before a clone job starts:
 * the admin API is reachable by more than the CLI, so every value is checked
 * here with its range (the CLI checks the same before it asks). Fuzzed by
 * tests/fuzz/fuzz_clone_request.c.
 */
#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/size.h"
#include "supervisor/sup-int.h"

/* A decimal integer in [min, max], digits only (no sign, no space). 0 or -1. */
static int int_in(const char *v, long min, long max, long *out)
{
	if (v[0] == '-' || v[0] == '+' || v[0] == ' ')
		return -1;
	return number_parse(v, min, max, out) < 0 ? -1 : 0;
}

int sup_clone_request_parse(const struct evkeyvalq *q, struct sup_clone_request *r, char *err,
			    size_t errlen)
{
	const char *v;
	long n;

	memset(r, 0, sizeof(*r));
	r->count = 1;
	r->predump = CM_PREDUMP_AUTO;
	if ((v = evhttp_find_header(q, "count"))) {
		if (int_in(v, 1, SUP_MAX_CLONES, &n) < 0) {
			snprintf(err, errlen, "bad count '%s': 1 to %d", v, SUP_MAX_CLONES);
			return -EINVAL;
		}
		r->count = (unsigned)n;
	}
	if ((v = evhttp_find_header(q, "buffer")) &&
	    (size_parse(v, &r->buffer) < 0 || !r->buffer)) {
		snprintf(err, errlen, "bad buffer '%s': write bytes or K/M/G, e.g. 64M", v);
		return -EINVAL;
	}
	if ((v = evhttp_find_header(q, "memory")) &&
	    (size_parse(v, &r->limits.memory) < 0 || r->limits.memory < (4ULL << 20))) {
		snprintf(err, errlen, "bad memory '%s': bytes or K/M/G, at least 4M", v);
		return -EINVAL;
	}
	if ((v = evhttp_find_header(q, "cpu_weight"))) {
		if (int_in(v, 1, 10000, &n) < 0) {
			snprintf(err, errlen, "bad cpu_weight '%s': 1 to 10000", v);
			return -EINVAL;
		}
		r->limits.cpu_weight = (int)n;
	}
	if ((v = evhttp_find_header(q, "pids"))) {
		if (int_in(v, 1, INT_MAX, &n) < 0) {
			snprintf(err, errlen, "bad pids '%s': a number of tasks, at least 1", v);
			return -EINVAL;
		}
		r->limits.pids = (int)n;
	}
	if ((v = evhttp_find_header(q, "predump")) && cm_predump_parse(v, &r->predump) < 0) {
		snprintf(err, errlen, "bad predump '%s': auto, on or off", v);
		return -EINVAL;
	}
	r->keep = evhttp_find_header(q, "keep");
	if (r->keep && (r->keep[0] != '/' || r->count != 1)) {
		snprintf(err, errlen, "keep=DIR: an absolute path, and one clone");
		return -EINVAL;
	}
	r->host = evhttp_find_header(q, "host");
	r->images = evhttp_find_header(q, "images");
	r->control = evhttp_find_header(q, "control") != NULL;
	return 0;
}
