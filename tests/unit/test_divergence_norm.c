/*
 * test_divergence_norm.c - the normalisers and the request typer: HTTP/1.x
 * responses framed (content-length, chunked, HEAD, interim, pipelined) with
 * volatile headers masked, RESP replies framed, user masks, raw bytes; the
 * output never depends on how the stream was cut into reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <xxhash.h>

#include "divergence/div-int.h"
#include "divergence/divergence.h"
#include "divergence/hasher.h"

struct cap {
	char buf[16384];
	size_t len;
	unsigned boundaries;
};

static void cap_bytes(void *ctx, const unsigned char *p, size_t n)
{
	struct cap *c = ctx;

	assert_true(c->len + n < sizeof(c->buf));
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void cap_boundary(void *ctx)
{
	((struct cap *)ctx)->boundaries++;
}

static struct div_rules *rules_with(enum div_protocol p, const char *mask, const char *header)
{
	struct div_options o;
	struct div_rules *r;
	char err[256];

	div_options_defaults(&o);
	o.protocol = p;
	if (mask)
		o.masks[o.nmasks++] = mask;
	if (header)
		o.headers[o.nheaders++] = header;
	assert_int_equal(div_rules_new(&o, &r, err, sizeof(err)), 0);
	return r;
}

/* Normalise s, fed in pieces of `piece` bytes (0: at once). */
static void normalise(const struct div_rules *r, enum div_protocol p, const struct div_reqlog *log,
		      const char *s, size_t n, size_t piece, struct cap *c)
{
	struct div_sink sink = {cap_bytes, cap_boundary, c};
	struct div_norm nm;

	memset(c, 0, sizeof(*c));
	div_norm_init(&nm, r, p, log, &sink);
	if (!piece)
		piece = n;
	for (size_t off = 0; off < n; off += piece)
		div_norm_feed(&nm, (const unsigned char *)s + off,
			      off + piece > n ? n - off : piece);
	div_norm_finish(&nm);
	div_norm_release(&nm);
	c->buf[c->len] = 0;
}

static const char http_a[] = "HTTP/1.1 200 OK\r\n"
			     "Date: Mon, 01 Dec 2026 10:00:00 GMT\r\n"
			     "Server: nginx/1.22.1\r\n"
			     "ETag: \"abc-1\"\r\n"
			     "Set-Cookie: sid=1234\r\n"
			     "Content-Length: 5\r\n"
			     "\r\n"
			     "hello";
static const char http_b[] = "HTTP/1.1 200 OK\r\n"
			     "date: Mon, 01 Dec 2026 10:00:01 GMT\r\n"
			     "Server: SimpleHTTP/0.6 Python/3.11.2\r\n"
			     "ETag: \"def-22\"\r\n"
			     "Set-Cookie: sid=98765432\r\n"
			     "Content-Length: 5\r\n"
			     "\r\n"
			     "hello";

static void http_volatile_headers_are_masked(void **state)
{
	struct div_rules *r = rules_with(DIV_PROTO_HTTP, NULL, NULL);
	struct cap a, b;

	(void)state;
	normalise(r, DIV_PROTO_HTTP, NULL, http_a, strlen(http_a), 0, &a);
	normalise(r, DIV_PROTO_HTTP, NULL, http_b, strlen(http_b), 3, &b);
	assert_string_equal(a.buf, b.buf);
	assert_int_equal(a.boundaries, 1);
	assert_non_null(strstr(a.buf, "date: <masked>\r\n"));
	assert_non_null(strstr(a.buf, "content-length: 5\r\n"));
	assert_null(strstr(a.buf, "nginx"));
	div_rules_free(r);
}

static void http_configured_header_is_masked(void **state)
{
	static const char x1[] = "HTTP/1.1 204 No Content\r\nX-Trace: 1\r\n\r\n";
	static const char x2[] = "HTTP/1.1 204 No Content\r\nX-Trace: 22\r\n\r\n";
	struct div_rules *plain = rules_with(DIV_PROTO_HTTP, NULL, NULL);
	struct div_rules *r = rules_with(DIV_PROTO_HTTP, NULL, "x-trace");
	struct cap a, b;

	(void)state;
	normalise(plain, DIV_PROTO_HTTP, NULL, x1, strlen(x1), 0, &a);
	normalise(plain, DIV_PROTO_HTTP, NULL, x2, strlen(x2), 0, &b);
	assert_string_not_equal(a.buf, b.buf);
	normalise(r, DIV_PROTO_HTTP, NULL, x1, strlen(x1), 0, &a);
	normalise(r, DIV_PROTO_HTTP, NULL, x2, strlen(x2), 0, &b);
	assert_string_equal(a.buf, b.buf);
	div_rules_free(plain);
	div_rules_free(r);
}

/* Pipelined: interim 100, content-length, chunked with trailer, 204, 304, then HTTP/1.0 to EOF. */
static const char pipelined[] = "HTTP/1.1 100 Continue\r\n\r\n"
				"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
				"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				"2\r\nhe\r\n3;ext=1\r\nllo\r\n0\r\nX-Tail: t\r\n\r\n"
				"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
				"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
				"HTTP/1.0 200 OK\r\nServer: a\r\n\r\nto the end";

static void http_framing_does_not_depend_on_reads(void **state)
{
	struct div_rules *r = rules_with(DIV_PROTO_HTTP, NULL, NULL);
	struct cap whole, piece;

	(void)state;
	normalise(r, DIV_PROTO_HTTP, NULL, pipelined, strlen(pipelined), 0, &whole);
	/* 100, 200, chunked 200, 204, 304, and the read-to-close body at the end */
	assert_int_equal(whole.boundaries, 6);
	/* chunked body de-chunked: sizes and extensions are gone */
	assert_non_null(strstr(whole.buf, "\r\n\r\nhellox-tail: t\r\n\r\n"));
	assert_null(strstr(whole.buf, "ext=1"));
	for (size_t p = 1; p < 40; p++) {
		normalise(r, DIV_PROTO_HTTP, NULL, pipelined, strlen(pipelined), p, &piece);
		assert_int_equal(piece.boundaries, whole.boundaries);
		assert_int_equal(piece.len, whole.len);
		assert_memory_equal(piece.buf, whole.buf, whole.len);
	}
	div_rules_free(r);
}

static void http_chunk_sizes_do_not_matter(void **state)
{
	static const char c1[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "b\r\nhello world\r\n0\r\n\r\n";
	static const char c2[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "1\r\nh\r\n4\r\nello\r\n6\r\n world\r\n0\r\n\r\n";
	struct div_rules *r = rules_with(DIV_PROTO_HTTP, NULL, NULL);
	struct cap a, b;

	(void)state;
	normalise(r, DIV_PROTO_HTTP, NULL, c1, strlen(c1), 0, &a);
	normalise(r, DIV_PROTO_HTTP, NULL, c2, strlen(c2), 5, &b);
	assert_string_equal(a.buf, b.buf);
	assert_int_equal(a.boundaries, 1);
	div_rules_free(r);
}

static void http_head_answer_has_no_body(void **state)
{
	static const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
				  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct div_rules *r = rules_with(DIV_PROTO_HTTP, NULL, NULL);
	struct div_types *types = div_types_new();
	struct div_reqlog log = {0};
	struct div_typer t;
	static const char reqs[] = "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	struct cap c;

	(void)state;
	div_typer_init(&t, DIV_PROTO_HTTP, types, &log);
	div_typer_feed(&t, (const unsigned char *)reqs, strlen(reqs), 0);
	assert_int_equal(log.nreq, 2);
	normalise(r, DIV_PROTO_HTTP, &log, two, strlen(two), 7, &c);
	assert_int_equal(c.boundaries, 2);
	assert_int_equal(c.len, strlen(two));
	div_types_free(types);
	div_rules_free(r);
}

static void not_http_passes_as_raw(void **state)
{
	static const char junk[] = "SSH-2.0-OpenSSH\r\n\x01\x02\x03";
	struct div_rules *r = rules_with(DIV_PROTO_HTTP, NULL, NULL);
	struct cap c;

	(void)state;
	normalise(r, DIV_PROTO_HTTP, NULL, junk, sizeof(junk) - 1, 2, &c);
	assert_int_equal(c.len, sizeof(junk) - 1);
	assert_memory_equal(c.buf, junk, c.len);
	div_rules_free(r);
}

static void resp_replies_are_framed(void **state)
{
	static const char replies[] = "*2\r\n*1\r\n$3\r\nfoo\r\n:5\r\n"
				      "+OK\r\n"
				      "$-1\r\n"
				      "$11\r\nhello\r\nworld\r\n"
				      "*0\r\n"
				      "%1\r\n+k\r\n*2\r\n:1\r\n:2\r\n"
				      "|1\r\n+ttl\r\n:3\r\n#t\r\n"
				      "-ERR no\r\n";
	struct div_rules *r = rules_with(DIV_PROTO_RESP, NULL, NULL);
	struct cap whole, piece;

	(void)state;
	normalise(r, DIV_PROTO_RESP, NULL, replies, strlen(replies), 0, &whole);
	/* array, +OK, null, bulk, empty array, map, (attribute+)boolean, error */
	assert_int_equal(whole.boundaries, 8);
	assert_int_equal(whole.len, strlen(replies));
	for (size_t p = 1; p < 12; p++) {
		normalise(r, DIV_PROTO_RESP, NULL, replies, strlen(replies), p, &piece);
		assert_int_equal(piece.boundaries, whole.boundaries);
		assert_memory_equal(piece.buf, whole.buf, whole.len);
	}
	div_rules_free(r);
}

static void user_masks_apply_to_any_protocol(void **state)
{
	static const char i1[] = "$40\r\nuptime_in_seconds:7\r\nconnected_clients:1\r\n";
	static const char i2[] = "$43\r\nuptime_in_seconds:1234\r\nconnected_clients:1\r\n";
	static const char raw1[] = "id=17 ok\nid=3 ok\n";
	static const char raw2[] = "id=900 ok\nid=3 ok\n";
	struct div_rules *r = rules_with(DIV_PROTO_RESP, "uptime_in_seconds:[0-9]+", NULL);
	struct div_rules *rr = rules_with(DIV_PROTO_RAW, "id=[0-9]+", NULL);
	struct cap a, b;

	(void)state;
	normalise(r, DIV_PROTO_RESP, NULL, i1, strlen(i1), 0, &a);
	normalise(r, DIV_PROTO_RESP, NULL, i2, strlen(i2), 4, &b);
	assert_string_equal(a.buf, b.buf);
	assert_non_null(strstr(a.buf, "$?\r\n<masked>\r\nconnected_clients:1"));
	normalise(rr, DIV_PROTO_RAW, NULL, raw1, strlen(raw1), 1, &a);
	normalise(rr, DIV_PROTO_RAW, NULL, raw2, strlen(raw2), 0, &b);
	assert_string_equal(a.buf, "<masked> ok\n<masked> ok\n");
	assert_string_equal(a.buf, b.buf);
	div_rules_free(r);
	div_rules_free(rr);
}

static void bad_mask_is_refused_with_its_position(void **state)
{
	struct div_options o;
	struct div_rules *r;
	char err[256] = "";

	(void)state;
	div_options_defaults(&o);
	o.masks[o.nmasks++] = "ab(c";
	assert_int_equal(div_rules_new(&o, &r, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "ab(c"));
	assert_non_null(strstr(err, "offset"));
}

static void empty_matches_mask_nothing(void **state)
{
	struct div_rules *r = rules_with(DIV_PROTO_RAW, "x*", NULL);
	struct cap c;

	(void)state;
	normalise(r, DIV_PROTO_RAW, NULL, "abxxc\n", 6, 0, &c);
	assert_string_equal(c.buf, "ab<masked>c\n");
	div_rules_free(r);
}

static void raw_is_unchanged(void **state)
{
	static const unsigned char bin[] = {0, 1, 2, '\n', 0xff, 0x80};
	struct div_rules *r = rules_with(DIV_PROTO_RAW, NULL, NULL);
	struct cap c;

	(void)state;
	normalise(r, DIV_PROTO_RAW, NULL, (const char *)bin, sizeof(bin), 1, &c);
	assert_int_equal(c.len, sizeof(bin));
	assert_memory_equal(c.buf, bin, sizeof(bin));
	assert_int_equal(c.boundaries, 0);
	div_rules_free(r);
}

static void path_templates_collapse_ids(void **state)
{
	char out[128];

	(void)state;
	div_path_template("/users/123/orders/550e8400-e29b-41d4-a716-446655440000?x=1", 57, out,
			  sizeof(out));
	assert_string_equal(out, "/users/{n}/orders/{uuid}");
	div_path_template("/blob/0a1b2c3d4e5f/raw", 22, out, sizeof(out));
	assert_string_equal(out, "/blob/{hex}/raw");
	div_path_template("/index.html", 11, out, sizeof(out));
	assert_string_equal(out, "/index.html");
	div_path_template("http://example.com:80/a/7", 25, out, sizeof(out));
	assert_string_equal(out, "/a/{n}");
	div_path_template("/deadbeef/file1.txt", 19, out, sizeof(out));
	assert_string_equal(out, "/deadbeef/file1.txt");
}

static const char *take_name(struct div_typer *t, struct div_types *types, char *head)
{
	unsigned char h[DIV_EXCERPT_REQ + 1];
	unsigned n = 0;
	unsigned id = div_typer_take(t, h, &n);

	memcpy(head, h, n);
	head[n] = 0;
	return div_type_name(types, id);
}

static void request_types_per_protocol(void **state)
{
	static const char http[] = "POST /users/42/avatar?size=1 HTTP/1.1\r\nContent-Length: 4\r\n"
				   "\r\nabcdGET /x HTTP/1.1\r\n\r\n";
	static const char resp[] = "*3\r\n$3\r\nset\r\n$5\r\nkey:1\r\n$1\r\nv\r\nPING\r\n";
	struct div_types *types = div_types_new();
	struct div_reqlog log = {0};
	struct div_typer t;
	char head[DIV_EXCERPT_REQ + 1];

	(void)state;
	div_typer_init(&t, DIV_PROTO_HTTP, types, &log);
	/* split inside the body and inside the next request line */
	div_typer_feed(&t, (const unsigned char *)http, 60, 0);
	div_typer_feed(&t, (const unsigned char *)http + 60, 8, 0);
	assert_string_equal(take_name(&t, types, head), "POST /users/{n}/avatar");
	assert_string_equal(head, "POST /users/42/avatar?size=1 HTTP/1.1");
	div_typer_feed(&t, (const unsigned char *)http + 68, strlen(http) - 68, 0);
	assert_string_equal(take_name(&t, types, head), "GET /x");
	assert_int_equal(log.nreq, 2);

	div_typer_init(&t, DIV_PROTO_RESP, types, NULL);
	for (size_t i = 0; i < strlen(resp); i++)
		div_typer_feed(&t, (const unsigned char *)resp + i, 1, 0);
	assert_string_equal(take_name(&t, types, head), "SET");
	assert_string_equal(head, "set key:1 v");
	assert_string_equal(take_name(&t, types, head), "PING");

	div_typer_init(&t, DIV_PROTO_RAW, types, NULL);
	div_typer_feed(&t, (const unsigned char *)"HELO mail.example\r\n", 19, 0);
	assert_string_equal(take_name(&t, types, head), "raw:HELO mai");
	assert_int_equal(div_types_count(types), 5);
	div_types_free(types);
}

static void type_table_is_bounded(void **state)
{
	struct div_types *types = div_types_new();
	char name[32];

	(void)state;
	for (int i = 0; i < DIV_TYPES_MAX + 10; i++) {
		snprintf(name, sizeof(name), "T%d", i);
		div_type_intern(types, name, strlen(name));
	}
	assert_int_equal(div_types_count(types), DIV_TYPES_MAX);
	assert_int_equal(div_types_overflow(types), 10);
	assert_int_equal(div_type_intern(types, "T3", 2), 3);
	assert_string_equal(div_type_name(types, div_type_intern(types, "new", 3)), "(other)");
	div_types_free(types);
}

static void protocol_is_sniffed_from_the_client(void **state)
{
	(void)state;
	assert_int_equal(div_sniff_protocol((const unsigned char *)"GET / HTTP/1.1", 14),
			 DIV_PROTO_HTTP);
	assert_int_equal(div_sniff_protocol((const unsigned char *)"*1\r\n$4\r\nPING", 12),
			 DIV_PROTO_RESP);
	assert_int_equal(div_sniff_protocol((const unsigned char *)"\x16\x03\x01", 3),
			 DIV_PROTO_RAW);
}

/*
 * A turn's hash is XXH3 of its bytes up to DIV_HASHER_INLINE, XXH64 beyond,
 * however the bytes come; peek does not disturb the stream.
 */
static void turn_hash_is_xxh3_then_xxh64_however_cut(void **state)
{
	static unsigned char buf[20000];
	unsigned seed = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + (i >> 7));
	for (size_t len = 0; len < sizeof(buf); len = len < 200 ? len + 1 : len * 3 / 2) {
		uint64_t want =
			len <= DIV_HASHER_INLINE ? XXH3_64bits(buf, len) : XXH64(buf, len, 0);

		for (int cut = 0; cut < 4; cut++) {
			struct div_hasher h;
			size_t off = 0;

			div_hasher_init(&h);
			while (off < len) {
				size_t n;

				seed = seed * 1103515245u + 12345u;
				n = cut == 0   ? len
				    : cut == 1 ? 1
					       : 1 + (seed >> 8) % (cut == 2 ? 40 : 700);
				if (n > len - off)
					n = len - off;
				div_hasher_update(&h, buf + off, n);
				off += n;
				if (off == len / 2)
					(void)div_hasher_peek(&h);
			}
			assert_int_equal(h.len, len);
			assert_int_equal(div_hasher_streaming(&h), len > DIV_HASHER_INLINE);
			assert_true(div_hasher_peek(&h) == want);
			assert_true(div_hasher_finish(&h) == want);
			assert_int_equal(h.len, 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(turn_hash_is_xxh3_then_xxh64_however_cut),
		cmocka_unit_test(http_volatile_headers_are_masked),
		cmocka_unit_test(http_configured_header_is_masked),
		cmocka_unit_test(http_framing_does_not_depend_on_reads),
		cmocka_unit_test(http_chunk_sizes_do_not_matter),
		cmocka_unit_test(http_head_answer_has_no_body),
		cmocka_unit_test(not_http_passes_as_raw),
		cmocka_unit_test(resp_replies_are_framed),
		cmocka_unit_test(user_masks_apply_to_any_protocol),
		cmocka_unit_test(bad_mask_is_refused_with_its_position),
		cmocka_unit_test(empty_matches_mask_nothing),
		cmocka_unit_test(raw_is_unchanged),
		cmocka_unit_test(path_templates_collapse_ids),
		cmocka_unit_test(request_types_per_protocol),
		cmocka_unit_test(type_table_is_bounded),
		cmocka_unit_test(protocol_is_sniffed_from_the_client),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
