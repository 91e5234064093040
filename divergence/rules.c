/*
 * rules.c - what a normaliser hides: the protocol, the HTTP headers whose
 * values are masked, and the user masks (PCRE2, compiled once per proxy).
 *
 * Cost is bounded: a mask runs on one record of at most DIV_RECORD_MAX bytes,
 * with PCRE2's match and depth limits, and a record's masked output is capped.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "divergence/div-int.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MATCH_LIMIT 20000
#define DEPTH_LIMIT 2000
#define OUT_MAX (4 * DIV_RECORD_MAX)

static const char *const default_headers[] = {
	"Date", "Server", "Expires", "Last-Modified", "ETag", "Set-Cookie", "X-Request-Id",
};

void div_options_defaults(struct div_options *o)
{
	memset(o, 0, sizeof(*o));
	o->protocol = DIV_PROTO_RAW;
	o->max_turns = 4096;
	o->window = 64 * 1024;
}

int div_protocol_parse(const char *s, enum div_protocol *out)
{
	static const struct {
		const char *name;
		enum div_protocol p;
	} names[] = {
		{"raw", DIV_PROTO_RAW},	   {"http", DIV_PROTO_HTTP}, {"resp", DIV_PROTO_RESP},
		{"redis", DIV_PROTO_RESP}, {"auto", DIV_PROTO_AUTO},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i].name)) {
			*out = names[i].p;
			return 0;
		}
	return -EINVAL;
}

const char *div_protocol_name(enum div_protocol p)
{
	switch (p) {
	case DIV_PROTO_HTTP:
		return "http";
	case DIV_PROTO_RESP:
		return "resp";
	case DIV_PROTO_AUTO:
		return "auto";
	default:
		return "raw";
	}
}

void div_rules_free(struct div_rules *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->o.nmasks; i++) {
		pcre2_code_free(r->mask_code[i]);
		free(r->mask_src[i]);
	}
	for (unsigned i = 0; i < r->nheaders; i++)
		free(r->headers[i]);
	pcre2_match_context_free(r->mctx);
	free(r);
}

int div_rules_new(const struct div_options *o, struct div_rules **out, char *err, size_t errlen)
{
	struct div_rules *r = calloc(1, sizeof(*r));
	unsigned nh = sizeof(default_headers) / sizeof(default_headers[0]);

	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->o = *o;
	memset(r->o.masks, 0, sizeof(r->o.masks));
	memset(r->o.headers, 0, sizeof(r->o.headers));
	r->o.nmasks = 0;
	r->o.nheaders = 0;
	if (o->nmasks > DIV_MAX_MASKS || o->nheaders > DIV_MAX_HEADERS) {
		snprintf(err, errlen, "at most %d masks and %d headers", DIV_MAX_MASKS,
			 DIV_MAX_HEADERS);
		div_rules_free(r);
		return -EINVAL;
	}
	if (r->o.max_turns < 4)
		r->o.max_turns = 4;
	r->mctx = pcre2_match_context_create(NULL);
	if (!r->mctx) {
		div_rules_free(r);
		return -ENOMEM;
	}
	pcre2_set_match_limit(r->mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(r->mctx, DEPTH_LIMIT);
	for (unsigned i = 0; i < o->nmasks; i++) {
		int ec;
		PCRE2_SIZE eo;
		pcre2_code *code = pcre2_compile((PCRE2_SPTR)o->masks[i], PCRE2_ZERO_TERMINATED, 0,
						 &ec, &eo, NULL);

		if (!code) {
			char msg[160];

			pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
			snprintf(err, errlen, "--mask '%s': %s at offset %zu", o->masks[i], msg,
				 (size_t)eo);
			div_rules_free(r);
			return -EINVAL;
		}
		/* JIT when available; it honours the same match limit. */
		pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
		r->mask_code[r->o.nmasks] = code;
		r->mask_src[r->o.nmasks] = strdup(o->masks[i]);
		r->o.nmasks++;
	}
	for (unsigned i = 0; i < nh + o->nheaders && i < DIV_MAX_HEADERS + nh; i++) {
		const char *h = i < nh ? default_headers[i] : o->headers[i - nh];

		if (r->nheaders >= DIV_MAX_HEADERS)
			break;
		r->headers[r->nheaders++] = strdup(h);
	}
	for (unsigned i = 0; i < r->o.nmasks; i++)
		r->o.masks[i] = r->mask_src[i];
	for (unsigned i = nh; i < r->nheaders; i++)
		r->o.headers[r->o.nheaders++] = r->headers[i];
	*out = r;
	return 0;
}

const struct div_options *div_rules_options(const struct div_rules *r)
{
	return &r->o;
}

int div_rules_masks_header(const struct div_rules *r, const unsigned char *name, size_t n)
{
	for (unsigned i = 0; i < r->nheaders; i++)
		if (strlen(r->headers[i]) == n &&
		    !strncasecmp(r->headers[i], (const char *)name, n))
			return 1;
	return 0;
}

static _Thread_local unsigned char scratch[2][OUT_MAX];
static _Thread_local pcre2_match_data *mdata;

void div_rules_thread_exit(void)
{
	pcre2_match_data_free(mdata);
	mdata = NULL;
}

/* One mask over in[0..n) into out; returns the output length. */
static size_t mask_one(const struct div_rules *r, unsigned i, const unsigned char *in, size_t n,
		       unsigned char *out)
{
	size_t pos = 0, olen = 0;

	while (pos <= n) {
		PCRE2_SIZE *ov;
		int rc = pcre2_match(r->mask_code[i], in, n, pos, 0, mdata, r->mctx);
		size_t s, e;

		if (rc < 0)
			break; /* no match, or a limit hit: the rest stays as it is */
		ov = pcre2_get_ovector_pointer(mdata);
		s = ov[0];
		e = ov[1];
		if (e <= s) {
			/* an empty match masks nothing; look one byte further */
			if (s >= n)
				break;
			if (olen + (s + 1 - pos) > OUT_MAX)
				break;
			memcpy(out + olen, in + pos, s + 1 - pos);
			olen += s + 1 - pos;
			pos = s + 1;
			continue;
		}
		if (olen + (s - pos) + DIV_MASKED_LEN > OUT_MAX)
			break;
		memcpy(out + olen, in + pos, s - pos);
		olen += s - pos;
		memcpy(out + olen, DIV_MASKED, DIV_MASKED_LEN);
		olen += DIV_MASKED_LEN;
		pos = e;
	}
	if (pos < n) {
		size_t rest = n - pos;

		if (olen + rest > OUT_MAX)
			rest = OUT_MAX - olen;
		memcpy(out + olen, in + pos, rest);
		olen += rest;
	}
	return olen;
}

size_t div_rules_apply_masks(const struct div_rules *r, const unsigned char *in, size_t n,
			     const unsigned char **out)
{
	unsigned cur = 0;

	*out = in;
	if (!r->o.nmasks)
		return n;
	if (!mdata) {
		mdata = pcre2_match_data_create(1, NULL);
		if (!mdata)
			return n;
	}
	for (unsigned i = 0; i < r->o.nmasks; i++) {
		unsigned char *dst = scratch[cur];

		n = mask_one(r, i, *out, n, dst);
		*out = dst;
		cur ^= 1;
	}
	return n;
}
