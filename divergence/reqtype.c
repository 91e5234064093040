/*
 * reqtype.c - request types, the key noise is learnt by: HTTP method + path
 * template, RESP command name, or the first bytes of a raw request. The typer
 * reads the client stream once per connection (it is the same for production
 * and every replica) and frames requests so that pipelined ones are told
 * apart; it also notes which HTTP requests were HEAD, whose answers have no
 * body. The type table is bounded (DIV_TYPES_MAX, then "(other)").
 */
#include "divergence/div-int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the table ---- */

#define SLOTS (2 * DIV_TYPES_MAX)

struct div_types {
	unsigned n;
	uint64_t overflow;
	uint16_t slot[SLOTS]; /* id + 1, 0 free */
	char names[DIV_TYPES_MAX + 1][DIV_TYPE_NAME_MAX];
};

struct div_types *div_types_new(void)
{
	struct div_types *t = calloc(1, sizeof(*t));

	if (t)
		strcpy(t->names[DIV_TYPES_MAX], "(other)");
	return t;
}

void div_types_free(struct div_types *t)
{
	free(t);
}

unsigned div_types_count(const struct div_types *t)
{
	return t->n;
}

const char *div_type_name(const struct div_types *t, unsigned id)
{
	if (id > DIV_TYPES_MAX || (id < DIV_TYPES_MAX && id >= t->n))
		return "(none)";
	return t->names[id];
}

uint64_t div_types_overflow(const struct div_types *t)
{
	return t->overflow;
}

unsigned div_type_intern(struct div_types *t, const char *name, size_t len)
{
	uint64_t h;
	unsigned i;

	if (len >= DIV_TYPE_NAME_MAX)
		len = DIV_TYPE_NAME_MAX - 1;
	h = div_hash(name, len);
	for (i = (unsigned)(h % SLOTS);; i = (i + 1) % SLOTS) {
		unsigned id = t->slot[i];

		if (!id)
			break;
		id--;
		if (strlen(t->names[id]) == len && !memcmp(t->names[id], name, len))
			return id;
	}
	if (t->n >= DIV_TYPES_MAX) {
		t->overflow++;
		return DIV_TYPES_MAX;
	}
	memcpy(t->names[t->n], name, len);
	t->names[t->n][len] = 0;
	t->slot[i] = (uint16_t)(t->n + 1);
	return t->n++;
}

/* ---- path templates ---- */

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return n > 0;
}

static int is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

static int is_hex_id(const char *s, size_t n)
{
	int digit = 0;

	if (n < 8)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return 0;
		if (isdigit((unsigned char)s[i]))
			digit = 1;
	}
	return digit;
}

size_t div_path_template(const char *path, size_t n, char *out, size_t outlen)
{
	size_t o = 0, i = 0;

	if (!outlen)
		return 0;
	/* absolute-form: drop scheme and authority */
	if (n > 7 && (!strncasecmp(path, "http://", 7) || !strncasecmp(path, "https://", 8))) {
		const char *p = memchr(path + 8, '/', n - 8);
		size_t skip = p ? (size_t)(p - path) : n;

		path += skip;
		n -= skip;
	}
	for (size_t j = 0; j < n; j++)
		if (path[j] == '?' || path[j] == '#') {
			n = j;
			break;
		}
	while (i < n) {
		size_t s = i, e;
		const char *rep = NULL;

		if (path[i] == '/') {
			if (o + 1 < outlen)
				out[o++] = '/';
			i++;
			continue;
		}
		e = s;
		while (e < n && path[e] != '/')
			e++;
		if (all_digits(path + s, e - s))
			rep = "{n}";
		else if (is_uuid(path + s, e - s))
			rep = "{uuid}";
		else if (is_hex_id(path + s, e - s))
			rep = "{hex}";
		if (rep) {
			for (const char *r = rep; *r && o + 1 < outlen; r++)
				out[o++] = *r;
		} else {
			for (size_t k = s; k < e && o + 1 < outlen; k++)
				out[o++] = path[k];
		}
		i = e;
	}
	out[o] = 0;
	return o;
}

/* ---- the typer ---- */

enum {
	T_LINE,	 /* HTTP request line */
	T_HDR,	 /* HTTP header line */
	T_BODY,	 /* HTTP content-length body */
	T_CSIZE, /* HTTP chunk-size line */
	T_CDATA, /* HTTP chunk data + CRLF */
	T_TRAILER,
	T_R_START, /* RESP: a command's first byte */
	T_R_COUNT, /* RESP: "*N" */
	T_R_BLEN,  /* RESP: "$L" */
	T_R_BULK,  /* RESP: an argument */
	T_R_BEND,  /* RESP: its CRLF */
	T_R_INLINE,
	T_RAW, /* raw, or a stream the typer could not read */
};

enum protocol_guess { GUESS_RAW, GUESS_HTTP, GUESS_RESP };

enum div_protocol div_sniff_protocol(const unsigned char *p, size_t n)
{
	static const char *const methods[] = {
		"GET ",	    "POST ",  "PUT ",	  "DELETE ", "HEAD ",
		"OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
	};

	if (n && p[0] == '*')
		return DIV_PROTO_RESP;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t l = strlen(methods[i]);

		if (n >= l && !memcmp(p, methods[i], l))
			return DIV_PROTO_HTTP;
	}
	return DIV_PROTO_RAW;
}

void div_typer_init(struct div_typer *t, enum div_protocol proto, struct div_types *types,
		    struct div_reqlog *log)
{
	memset(t, 0, sizeof(*t));
	t->proto = proto;
	t->types = types;
	t->log = log;
	t->cur = t->pending = -1;
	t->raw_new = 1;
	if (proto == DIV_PROTO_HTTP)
		t->state = T_LINE;
	else if (proto == DIV_PROTO_RESP)
		t->state = T_R_START;
	else
		t->state = T_RAW;
}

int div_typer_rest(const struct div_typer *t, struct div_typer_rest *r)
{
	uint8_t ground = t->proto == DIV_PROTO_HTTP   ? T_LINE
			 : t->proto == DIV_PROTO_RESP ? T_R_START
						      : T_RAW;

	/*
	 * Between requests only these are read before being written again:
	 * what a new request starts resets the name, the lengths and the
	 * argument counts. A type waiting for its turn is kept when it is the
	 * latest request's (its head is t->head; pend_head is written before
	 * it is read); a pipelined one keeps the typer awake.
	 */
	if ((t->pending >= 0 && t->pend_req != t->reqs) ||
	    (t->state != T_RAW && (t->state != ground || t->val_len)))
		return 0;
	if (t->state == T_LINE && t->name_len)
		return 0; /* a request line begun (a RESP command resets its name) */
	r->reqs = t->reqs;
	r->cur = t->cur;
	r->pending = t->pending;
	r->state = t->state;
	r->raw_new = t->raw_new;
	return 1;
}

void div_typer_wake(struct div_typer *t, enum div_protocol proto, struct div_types *types,
		    struct div_reqlog *log, const struct div_typer_rest *r,
		    const unsigned char *head, unsigned head_len)
{
	div_typer_init(t, proto, types, log);
	t->reqs = r->reqs;
	t->cur = r->cur;
	t->pending = r->pending;
	t->pend_req = r->pending >= 0 ? r->reqs : 0;
	t->state = r->state;
	t->raw_new = r->raw_new;
	t->head_len = head_len;
	if (head_len)
		memcpy(t->head, head, head_len);
}

/* A request of type `name` starts (its head is t->head). */
static void typer_request(struct div_typer *t, const char *name, size_t len)
{
	int id;

	t->reqs++;
	if (!t->types)
		return;
	id = (int)div_type_intern(t->types, name, len);
	t->cur = id;
	if (t->pending < 0) {
		t->pend_req = t->reqs;
		t->pending = id;
		memcpy(t->pend_head, t->head, t->head_len);
		t->pend_head_len = t->head_len;
	}
}

/* A new request starts: the pending one keeps its head. */
static void head_start(struct div_typer *t)
{
	if (t->pending >= 0 && t->pend_req == t->reqs) {
		memcpy(t->pend_head, t->head, t->head_len);
		t->pend_head_len = t->head_len;
		t->pend_req = 0;
	}
	t->head_len = 0;
}

static void head_add(struct div_typer *t, const unsigned char *p, size_t n)
{
	size_t c = n < DIV_EXCERPT_REQ - t->head_len ? n : DIV_EXCERPT_REQ - t->head_len;

	memcpy(t->head + t->head_len, p, c);
	t->head_len += (unsigned)c;
}

/* Appends to t->name (bounded); returns 0 when it was full. */
static int name_add(struct div_typer *t, const unsigned char *p, size_t n)
{
	size_t room = sizeof(t->name) - 1 - t->name_len;
	size_t c = n < room ? n : room;

	memcpy(t->name + t->name_len, p, c);
	t->name_len += (unsigned)c;
	return c == n;
}

static uint64_t parse_num(const char *s, size_t n, int base, int *ok)
{
	uint64_t v = 0;
	size_t i = 0;
	int d = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (; i < n && isxdigit((unsigned char)s[i]); i++) {
		unsigned c = isdigit((unsigned char)s[i]) ? (unsigned)(s[i] - '0')
							  : (unsigned)(tolower(s[i]) - 'a' + 10);

		if (c >= (unsigned)base || v > UINT64_MAX / 16)
			break;
		v = v * (unsigned)base + c;
		d = 1;
	}
	*ok = d;
	return v;
}

static void http_request_line(struct div_typer *t)
{
	char type[DIV_TYPE_NAME_MAX], tmpl[DIV_TYPE_NAME_MAX];
	const char *sp, *sp2, *line = t->name;
	size_t len = t->name_len, mlen, tl;
	uint64_t idx;

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	sp = memchr(line, ' ', len);
	if (!sp || sp == line) {
		t->state = T_RAW;
		return;
	}
	mlen = (size_t)(sp - line);
	for (size_t i = 0; i < mlen; i++)
		if (!isupper((unsigned char)line[i]) || mlen > 16) {
			t->state = T_RAW;
			return;
		}
	sp2 = memchr(sp + 1, ' ', len - mlen - 1);
	div_path_template(sp + 1, sp2 ? (size_t)(sp2 - sp - 1) : len - mlen - 1, tmpl,
			  sizeof(tmpl));
	memcpy(type, line, mlen);
	type[mlen] = ' ';
	tl = mlen + 1 + strlen(tmpl) < sizeof(type) - 1 ? strlen(tmpl) : sizeof(type) - 2 - mlen;
	memcpy(type + mlen + 1, tmpl, tl);
	type[mlen + 1 + tl] = 0;
	idx = t->log ? t->log->nreq : 0;
	if (t->log) {
		uint8_t *b = &t->log->head[(idx % DIV_REQLOG) / 8];

		if (mlen == 4 && !memcmp(line, "HEAD", 4))
			*b |= (uint8_t)(1u << (idx % 8));
		else
			*b &= (uint8_t) ~(1u << (idx % 8));
		t->log->nreq++;
	}
	typer_request(t, type, strlen(type));
	t->has_clen = t->chunked = 0;
	t->remaining = 0;
	t->name_len = 0;
	t->state = T_HDR;
}

static void http_header_line(struct div_typer *t)
{
	const char *line = t->name, *colon;
	size_t len = t->name_len, nl;
	int ok;

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	t->name_len = 0;
	if (!len) {
		/* end of headers (or trailers) */
		if (t->state == T_TRAILER) {
			t->state = T_LINE;
		} else if (t->chunked) {
			t->state = T_CSIZE;
		} else if (t->has_clen && t->remaining) {
			t->state = T_BODY;
		} else {
			t->state = T_LINE;
		}
		return;
	}
	if (t->state == T_TRAILER)
		return;
	colon = memchr(line, ':', len);
	if (!colon)
		return;
	nl = (size_t)(colon - line);
	if (nl == 14 && !strncasecmp(line, "Content-Length", 14)) {
		uint64_t v = parse_num(colon + 1, len - nl - 1, 10, &ok);

		if (ok) {
			t->has_clen = 1;
			t->remaining = v;
		}
	} else if (nl == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
		char v[64];
		size_t vl = len - nl - 1 < sizeof(v) - 1 ? len - nl - 1 : sizeof(v) - 1;

		memcpy(v, colon + 1, vl);
		v[vl] = 0;
		if (strcasestr(v, "chunked"))
			t->chunked = 1;
	}
}

static size_t http_feed(struct div_typer *t, const unsigned char *p, size_t n)
{
	const unsigned char *q;
	size_t take;

	switch (t->state) {
	case T_LINE:
		if (!t->name_len && (p[0] == '\r' || p[0] == '\n'))
			return 1; /* CRLF between requests */
		if (!t->name_len)
			head_start(t);
		q = memchr(p, '\n', n);
		take = q ? (size_t)(q - p) + 1 : n;
		name_add(t, p, take);
		head_add(t, p, take);
		if (q) {
			while (t->head_len && (t->head[t->head_len - 1] == '\n' ||
					       t->head[t->head_len - 1] == '\r'))
				t->head_len--;
			http_request_line(t);
		}
		return take;
	case T_HDR:
	case T_TRAILER:
		q = memchr(p, '\n', n);
		take = q ? (size_t)(q - p) + 1 : n;
		name_add(t, p, take);
		if (q)
			http_header_line(t);
		return take;
	case T_BODY:
		take = n < t->remaining ? n : (size_t)t->remaining;
		t->remaining -= take;
		if (!t->remaining)
			t->state = T_LINE;
		return take;
	case T_CSIZE: {
		int ok;
		uint64_t v;

		q = memchr(p, '\n', n);
		take = q ? (size_t)(q - p) + 1 : n;
		name_add(t, p, take);
		if (!q)
			return take;
		v = parse_num(t->name, t->name_len, 16, &ok);
		t->name_len = 0;
		if (!ok) {
			t->state = T_RAW;
		} else if (!v) {
			t->state = T_TRAILER;
		} else {
			t->remaining = v + 2; /* and its CRLF */
			t->state = T_CDATA;
		}
		return take;
	}
	case T_CDATA:
		take = n < t->remaining ? n : (size_t)t->remaining;
		t->remaining -= take;
		if (!t->remaining)
			t->state = T_CSIZE;
		return take;
	default:
		return n;
	}
}

static void resp_command_name(struct div_typer *t)
{
	char up[DIV_TYPE_NAME_MAX];
	size_t n = t->name_len < sizeof(up) - 1 ? t->name_len : sizeof(up) - 1;

	for (size_t i = 0; i < n; i++)
		up[i] = (char)toupper((unsigned char)t->name[i]);
	up[n] = 0;
	typer_request(t, up, n);
}

static size_t resp_feed(struct div_typer *t, const unsigned char *p, size_t n)
{
	const unsigned char *q;
	size_t take;
	int ok;

	switch (t->state) {
	case T_R_START:
		if (p[0] == '\r' || p[0] == '\n')
			return 1;
		head_start(t);
		t->name_len = 0;
		t->argi = 0;
		if (p[0] == '*') {
			t->state = T_R_COUNT;
			return 1;
		}
		t->state = T_R_INLINE;
		return 0;
	case T_R_INLINE: {
		const char *sp;

		q = memchr(p, '\n', n);
		take = q ? (size_t)(q - p) + 1 : n;
		name_add(t, p, take);
		head_add(t, p, take);
		if (!q)
			return take;
		while (t->head_len &&
		       (t->head[t->head_len - 1] == '\n' || t->head[t->head_len - 1] == '\r'))
			t->head_len--;
		sp = memchr(t->name, ' ', t->name_len);
		if (sp)
			t->name_len = (unsigned)(sp - t->name);
		while (t->name_len &&
		       (t->name[t->name_len - 1] == '\n' || t->name[t->name_len - 1] == '\r'))
			t->name_len--;
		resp_command_name(t);
		t->state = T_R_START;
		return take;
	}
	case T_R_COUNT:
	case T_R_BLEN:
		q = memchr(p, '\n', n);
		take = q ? (size_t)(q - p) + 1 : n;
		if (t->val_len + take > sizeof(t->val)) {
			t->state = T_RAW;
			return n;
		}
		memcpy(t->val + t->val_len, p, take);
		t->val_len += (unsigned)take;
		if (!q)
			return take;
		if (t->state == T_R_COUNT) {
			t->nargs = (int64_t)parse_num(t->val, t->val_len, 10, &ok);
			t->val_len = 0;
			if (!ok) {
				t->state = T_RAW;
			} else if (t->nargs <= 0) {
				t->state = T_R_START;
			} else {
				t->state = T_R_BLEN;
			}
			return take;
		}
		if (t->val[0] != '$') {
			t->state = T_RAW;
			return take;
		}
		t->bulk = parse_num(t->val + 1, t->val_len - 1, 10, &ok);
		t->val_len = 0;
		if (!ok) {
			t->state = T_RAW;
			return take;
		}
		if (t->argi > 0 && t->head_len < DIV_EXCERPT_REQ)
			head_add(t, (const unsigned char *)" ", 1);
		t->state = T_R_BULK;
		if (!t->bulk)
			t->state = T_R_BEND;
		return take;
	case T_R_BULK:
		take = n < t->bulk ? n : (size_t)t->bulk;
		if (t->argi == 0)
			name_add(t, p, take);
		head_add(t, p, take);
		t->bulk -= take;
		if (!t->bulk)
			t->state = T_R_BEND;
		return take;
	case T_R_BEND:
		q = memchr(p, '\n', n);
		if (!q)
			return n;
		if (t->argi == 0)
			resp_command_name(t);
		t->argi++;
		t->state = --t->nargs > 0 ? T_R_BLEN : T_R_START;
		return (size_t)(q - p) + 1;
	default:
		return n;
	}
}

void div_typer_feed(struct div_typer *t, const unsigned char *p, size_t n, int turn_started)
{
	if (t->proto == DIV_PROTO_RAW || t->state == T_RAW) {
		if (t->proto == DIV_PROTO_RAW && (turn_started || t->raw_new) && n) {
			char type[DIV_TYPE_NAME_MAX] = "raw:";
			size_t o = 4;

			t->raw_new = 0;
			head_start(t);
			head_add(t, p, n);
			for (size_t i = 0; i < n && i < 8; i++)
				type[o++] = isprint(p[i]) ? (char)p[i] : '.';
			typer_request(t, type, o);
		}
		return;
	}
	while (n) {
		size_t used = t->proto == DIV_PROTO_HTTP ? http_feed(t, p, n) : resp_feed(t, p, n);

		if (t->state == T_RAW)
			return;
		p += used;
		n -= used;
	}
}

unsigned div_typer_take(struct div_typer *t, unsigned char *head, unsigned *head_len)
{
	unsigned id;

	if (t->pending >= 0) {
		id = (unsigned)t->pending;
		if (t->pend_req == t->reqs) {
			/* still the latest request: its head may have grown since */
			memcpy(head, t->head, t->head_len);
			*head_len = t->head_len;
		} else {
			memcpy(head, t->pend_head, t->pend_head_len);
			*head_len = t->pend_head_len;
		}
		t->pending = -1;
		return id;
	}
	memcpy(head, t->head, t->head_len);
	*head_len = t->head_len;
	if (t->cur >= 0)
		return (unsigned)t->cur;
	if (!t->types)
		return 0;
	return div_type_intern(t->types, "(none)", 6);
}
