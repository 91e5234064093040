/*
 * norm.c - normalisers: a side's answer stream, in arbitrary pieces, becomes
 * the bytes that are hashed and compared, plus message boundaries.
 *
 * Three framers (raw, HTTP/1.x responses, RESP replies) feed one user-mask
 * stage. Each keeps bounded state: a header name (64 bytes), a length or
 * chunk-size line (64 bytes), a RESP aggregate stack (32 levels) and, with
 * user masks only, one record of at most DIV_RECORD_MAX bytes. What a framer
 * cannot parse it passes on unchanged, as raw bytes, to the end of the stream.
 */
#include "divergence/div-int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	/* HTTP */
	H_STATUS,   /* the status line, at a message's start */
	H_HNAME,    /* a header name (held until ':') */
	H_HVALUE,   /* a header value, to the end of the line */
	H_HEND,	    /* '\r' of the empty line seen */
	H_BODY,	    /* content-length body */
	H_CSIZE,    /* chunk-size line */
	H_CDATA,    /* chunk data */
	H_CCRLF,    /* CRLF after chunk data */
	H_EOF_BODY, /* body to the end of the stream */
	/* RESP */
	R_TYPE,	    /* an element's type byte */
	R_LINE,	    /* a simple line element */
	R_LEN,	    /* a length or count line */
	R_BULK,	    /* bulk string content */
	R_BULK_END, /* the CRLF after it */
	/* anything */
	N_RAW,
};

int div_reqlog_is_head(const struct div_reqlog *l, uint64_t idx)
{
	if (!l || idx >= l->nreq || l->nreq - idx > DIV_REQLOG)
		return 0;
	return (l->head[(idx % DIV_REQLOG) / 8] >> (idx % 8)) & 1;
}

/* ---- the user-mask stage ---- */

static void rec_flush(struct div_norm *n)
{
	const unsigned char *o;
	size_t olen;

	if (!n->rec)
		return;
	if (n->rec_len) {
		olen = div_rules_apply_masks(n->rules, n->rec, n->rec_len, &o);
		n->out.bytes(n->out.ctx, o, olen);
	}
	div_block_put(n->rec);
	n->rec = NULL;
	n->rec_len = 0;
}

static void emit(struct div_norm *n, const unsigned char *p, size_t len)
{
	if (!len)
		return;
	if (!n->masks) {
		n->out.bytes(n->out.ctx, p, len);
		return;
	}
	while (len) {
		size_t room, take;
		const unsigned char *nl;

		if (!n->rec) {
			n->rec = div_block_get();
			n->rec_len = 0;
		}
		room = DIV_RECORD_MAX - n->rec_len;
		take = len < room ? len : room;
		nl = memchr(p, '\n', take);
		if (nl)
			take = (size_t)(nl - p) + 1;
		memcpy(n->rec + n->rec_len, p, take);
		n->rec_len += (unsigned)take;
		p += take;
		len -= take;
		if (nl || n->rec_len == DIV_RECORD_MAX)
			rec_flush(n);
	}
}

static void emit_str(struct div_norm *n, const char *s)
{
	emit(n, (const unsigned char *)s, strlen(s));
}

static void boundary(struct div_norm *n)
{
	rec_flush(n);
	if (n->out.boundary)
		n->out.boundary(n->out.ctx);
}

void div_norm_init(struct div_norm *n, const struct div_rules *r, enum div_protocol proto,
		   const struct div_reqlog *reqs, const struct div_sink *out)
{
	memset(n, 0, sizeof(*n));
	n->rules = r;
	n->reqs = reqs;
	n->out = *out;
	n->proto = proto;
	n->masks = r && r->o.nmasks > 0;
	switch (proto) {
	case DIV_PROTO_HTTP:
		n->state = H_STATUS;
		break;
	case DIV_PROTO_RESP:
		n->state = R_TYPE;
		break;
	default:
		n->state = N_RAW;
		break;
	}
}

int div_norm_rest(const struct div_norm *n, struct div_norm_rest *r)
{
	uint8_t ground = n->proto == DIV_PROTO_HTTP   ? H_STATUS
			 : n->proto == DIV_PROTO_RESP ? R_TYPE
						      : N_RAW;

	/*
	 * Between messages every other field is written before it is read
	 * again: the status line resets the HTTP framing, a header name its
	 * value, a type byte the RESP element; below depth, the stack is dead.
	 */
	if (n->rec || (n->state != N_RAW && (n->state != ground || n->tok_len || n->depth)))
		return 0;
	r->responses = n->responses;
	r->raw = n->state == N_RAW;
	return 1;
}

void div_norm_wake(struct div_norm *n, const struct div_rules *rules, enum div_protocol proto,
		   const struct div_reqlog *reqs, const struct div_sink *out,
		   const struct div_norm_rest *r)
{
	div_norm_init(n, rules, proto, reqs, out);
	n->responses = r->responses;
	if (r->raw)
		n->state = N_RAW;
}

void div_norm_release(struct div_norm *n)
{
	div_block_put(n->rec);
	n->rec = NULL;
	n->rec_len = 0;
}

void div_norm_finish(struct div_norm *n)
{
	/* A name held for masking goes out as it came. */
	if (n->state == H_HNAME && n->tok_len)
		emit(n, n->tok, n->tok_len);
	n->tok_len = 0;
	if (n->state == H_EOF_BODY)
		boundary(n);
	else
		rec_flush(n);
	n->state = N_RAW;
}

/* ---- HTTP/1.x responses ---- */

static int parse_u64(const unsigned char *p, size_t n, int base, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	int digits = 0;

	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	for (; i < n; i++) {
		unsigned d;
		unsigned char c = p[i];

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		if (v > (UINT64_MAX - d) / (unsigned)base)
			return -1;
		v = v * (unsigned)base + d;
		digits++;
	}
	if (!digits)
		return -1;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i < n && !(base == 16 && p[i] == ';'))
		return -1;
	*out = v;
	return 0;
}

enum { HDR_OTHER, HDR_CLEN, HDR_TE };

/* The empty line ended the headers (or trailers): what follows? */
static void http_headers_done(struct div_norm *n)
{
	int head;

	if (n->trailer) {
		n->trailer = 0;
		n->responses++;
		boundary(n);
		n->state = H_STATUS;
		return;
	}
	if (n->status == 101) {
		/* Switching protocols: whatever follows is not HTTP. */
		n->responses++;
		boundary(n);
		n->state = N_RAW;
		return;
	}
	if (n->status >= 100 && n->status < 200) {
		/* An interim answer: the final one follows. */
		boundary(n);
		n->state = H_STATUS;
		return;
	}
	head = div_reqlog_is_head(n->reqs, n->responses);
	if (head || n->status == 204 || n->status == 304 || (n->has_clen && !n->clen)) {
		n->responses++;
		boundary(n);
		n->state = H_STATUS;
	} else if (n->chunked) {
		n->state = H_CSIZE;
		n->tok_len = 0;
	} else if (n->has_clen) {
		n->remaining = n->clen;
		n->state = H_BODY;
	} else {
		n->state = H_EOF_BODY;
	}
}

static void http_status_line_done(struct div_norm *n)
{
	uint64_t code;

	if (n->tok_len < 12 || memcmp(n->tok, "HTTP/", 5) ||
	    parse_u64(n->tok + 9, 3, 10, &code) < 0) {
		n->state = N_RAW;
		return;
	}
	n->status = (unsigned)code;
	n->has_clen = n->chunked = n->trailer = 0;
	n->clen = 0;
	n->tok_len = 0;
	n->state = H_HNAME;
}

static void http_header_value_done(struct div_norm *n)
{
	uint64_t v;

	if (n->hdr == HDR_CLEN && parse_u64(n->val, n->val_len, 10, &v) == 0) {
		n->has_clen = 1;
		n->clen = v;
	} else if (n->hdr == HDR_TE) {
		n->val[n->val_len < sizeof(n->val) ? n->val_len : sizeof(n->val) - 1] = 0;
		if (strcasestr((const char *)n->val, "chunked"))
			n->chunked = 1;
	}
}

/* The name of a header is complete (the ':' is next): mask or pass. */
static void http_name_done(struct div_norm *n)
{
	n->hdr = HDR_OTHER;
	n->val_len = 0;
	n->skip_value = 0;
	if (!n->trailer && n->tok_len == 14 && !strncasecmp((char *)n->tok, "Content-Length", 14))
		n->hdr = HDR_CLEN;
	else if (!n->trailer && n->tok_len == 17 &&
		 !strncasecmp((char *)n->tok, "Transfer-Encoding", 17))
		n->hdr = HDR_TE;
	else if (div_rules_masks_header(n->rules, n->tok, n->tok_len))
		n->skip_value = 1;
	/* header names are case-insensitive: compare them in lower case */
	for (unsigned i = 0; i < n->tok_len; i++)
		if (n->tok[i] >= 'A' && n->tok[i] <= 'Z')
			n->tok[i] = (unsigned char)(n->tok[i] - 'A' + 'a');
	emit(n, n->tok, n->tok_len);
	emit_str(n, n->skip_value ? ": " DIV_MASKED : ":");
	n->tok_len = 0;
}

static size_t http_feed(struct div_norm *n, const unsigned char *p, size_t len)
{
	const unsigned char *q;
	size_t take;

	switch (n->state) {
	case H_STATUS:
		q = memchr(p, '\n', len);
		take = q ? (size_t)(q - p) + 1 : len;
		if (n->tok_len < 16) {
			size_t c = take < 16 - n->tok_len ? take : 16 - n->tok_len;

			memcpy(n->tok + n->tok_len, p, c);
			n->tok_len += (unsigned)c;
		}
		emit(n, p, take);
		if (q)
			http_status_line_done(n);
		return take;
	case H_HNAME:
		if (n->tok_len == 0 && p[0] == '\r') {
			emit(n, p, 1);
			n->state = H_HEND;
			return 1;
		}
		if (n->tok_len == 0 && p[0] == '\n') {
			emit(n, p, 1);
			http_headers_done(n);
			return 1;
		}
		for (take = 0; take < len; take++) {
			unsigned char c = p[take];

			if (c == ':') {
				http_name_done(n);
				n->state = H_HVALUE;
				return take + 1;
			}
			if (c == '\n' || n->tok_len == DIV_HNAME_MAX) {
				/* not a header we can read: pass the line on as it is */
				emit(n, n->tok, n->tok_len);
				n->tok_len = 0;
				n->hdr = HDR_OTHER;
				n->skip_value = 0;
				n->state = H_HVALUE;
				return take;
			}
			n->tok[n->tok_len++] = c;
		}
		return take;
	case H_HEND:
		if (p[0] != '\n') {
			n->state = N_RAW;
			return 0;
		}
		emit(n, p, 1);
		http_headers_done(n);
		return 1;
	case H_HVALUE:
		q = memchr(p, '\n', len);
		take = q ? (size_t)(q - p) + 1 : len;
		if (n->hdr != HDR_OTHER) {
			size_t c = take;

			if (c > sizeof(n->val) - 1 - n->val_len)
				c = sizeof(n->val) - 1 - n->val_len;
			memcpy(n->val + n->val_len, p, c);
			n->val_len += (unsigned)c;
		}
		if (!n->skip_value)
			emit(n, p, take);
		else if (q)
			emit_str(n, "\r\n");
		if (q) {
			http_header_value_done(n);
			n->skip_value = 0;
			n->state = H_HNAME;
		}
		return take;
	case H_BODY:
	case H_CDATA:
		take = len < n->remaining ? len : (size_t)n->remaining;
		emit(n, p, take);
		n->remaining -= take;
		if (!n->remaining) {
			if (n->state == H_BODY) {
				n->responses++;
				boundary(n);
				n->state = H_STATUS;
			} else {
				rec_flush(n);
				n->state = H_CCRLF;
			}
		}
		return take;
	case H_CCRLF:
		q = memchr(p, '\n', len);
		if (!q)
			return len;
		n->state = H_CSIZE;
		n->tok_len = 0;
		return (size_t)(q - p) + 1;
	case H_CSIZE: {
		uint64_t size;

		q = memchr(p, '\n', len);
		take = q ? (size_t)(q - p) + 1 : len;
		if (n->tok_len < DIV_HNAME_MAX) {
			size_t c = take < DIV_HNAME_MAX - n->tok_len ? take
								     : DIV_HNAME_MAX - n->tok_len;

			memcpy(n->tok + n->tok_len, p, c);
			n->tok_len += (unsigned)c;
		}
		if (!q)
			return take;
		if (parse_u64(n->tok, n->tok_len - 1, 16, &size) < 0) {
			n->state = N_RAW;
			return take;
		}
		n->tok_len = 0;
		if (size == 0) {
			/* trailers: header lines up to an empty line */
			n->trailer = 1;
			n->state = H_HNAME;
		} else {
			n->remaining = size;
			n->state = H_CDATA;
		}
		return take;
	}
	case H_EOF_BODY:
	default:
		emit(n, p, len);
		return len;
	}
}

/* ---- RESP replies ---- */

/* An element is complete; a finished top-level reply is a message. */
static void resp_elem_done(struct div_norm *n)
{
	int attr = 0;

	n->state = R_TYPE;
	while (n->depth > 0) {
		if (attr)
			return; /* an attribute does not count as its parent's element */
		if (--n->left[n->depth - 1] > 0)
			return;
		n->depth--;
		attr = n->attr[n->depth];
	}
	if (!attr)
		boundary(n);
}

static void resp_len_done(struct div_norm *n)
{
	int64_t v = 0;
	int neg = 0;
	unsigned i = 0;

	if (i < n->val_len && n->val[i] == '-') {
		neg = 1;
		i++;
	}
	for (; i < n->val_len && n->val[i] >= '0' && n->val[i] <= '9'; i++) {
		if (v > INT64_MAX / 20) {
			n->state = N_RAW;
			return;
		}
		v = v * 10 + (n->val[i] - '0');
	}
	if (neg)
		v = -v;
	if (n->kind == '$' || n->kind == '!' || n->kind == '=') {
		/* a masked bulk string may change length: the length says nothing then */
		if (n->masks && v >= 0)
			emit_str(n, "?\r\n");
		else
			emit(n, n->val, n->val_len);
		if (v < 0) {
			resp_elem_done(n);
		} else {
			n->remaining = (uint64_t)v;
			n->state = n->remaining ? R_BULK : R_BULK_END;
		}
		return;
	}
	emit(n, n->val, n->val_len);
	if (n->kind == '%' || n->kind == '|')
		v *= 2;
	if (v <= 0) {
		resp_elem_done(n);
		return;
	}
	if (n->depth == DIV_RESP_DEPTH) {
		n->state = N_RAW;
		return;
	}
	n->left[n->depth] = v;
	n->attr[n->depth] = n->kind == '|';
	n->depth++;
	n->state = R_TYPE;
}

static size_t resp_feed(struct div_norm *n, const unsigned char *p, size_t len)
{
	const unsigned char *q;
	size_t take;

	switch (n->state) {
	case R_TYPE:
		n->kind = p[0];
		switch (p[0]) {
		case '+':
		case '-':
		case ':':
		case ',':
		case '#':
		case '_':
		case '(':
			emit(n, p, 1);
			n->state = R_LINE;
			return 1;
		case '$':
		case '!':
		case '=':
		case '*':
		case '%':
		case '~':
		case '>':
		case '|':
			emit(n, p, 1);
			n->val_len = 0;
			n->state = R_LEN;
			return 1;
		default:
			n->state = N_RAW;
			return 0;
		}
	case R_LINE:
		q = memchr(p, '\n', len);
		take = q ? (size_t)(q - p) + 1 : len;
		emit(n, p, take);
		if (q) {
			rec_flush(n);
			resp_elem_done(n);
		}
		return take;
	case R_LEN:
		q = memchr(p, '\n', len);
		take = q ? (size_t)(q - p) + 1 : len;
		if (n->val_len + take > sizeof(n->val)) {
			/* no length is that long */
			emit(n, n->val, n->val_len);
			n->state = N_RAW;
			return 0;
		}
		memcpy(n->val + n->val_len, p, take);
		n->val_len += (unsigned)take;
		if (q)
			resp_len_done(n);
		return take;
	case R_BULK:
		take = len < n->remaining ? len : (size_t)n->remaining;
		emit(n, p, take);
		n->remaining -= take;
		if (!n->remaining) {
			rec_flush(n);
			n->state = R_BULK_END;
		}
		return take;
	case R_BULK_END:
		q = memchr(p, '\n', len);
		take = q ? (size_t)(q - p) + 1 : len;
		emit(n, p, take);
		if (q) {
			rec_flush(n);
			resp_elem_done(n);
		}
		return take;
	default:
		emit(n, p, len);
		return len;
	}
}

void div_norm_feed(struct div_norm *n, const unsigned char *p, size_t len)
{
	while (len) {
		size_t used;

		if (n->state == N_RAW) {
			emit(n, p, len);
			return;
		}
		if (n->proto == DIV_PROTO_HTTP)
			used = http_feed(n, p, len);
		else if (n->proto == DIV_PROTO_RESP)
			used = resp_feed(n, p, len);
		else
			used = (emit(n, p, len), len);
		p += used;
		len -= used;
	}
}
