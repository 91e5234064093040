/*
 * test_window_capture.c - recorded arrivals from pcap, pcapng and text: built here
 * byte by byte, in both byte orders, with the link types and odd cases a
 * real capture has (VLAN tags, IPv6, retransmissions, snaplen, a capture cut
 * short).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "window/window.h"

struct buf {
	unsigned char d[1 << 16];
	size_t n;
	int be;
};

static void put8(struct buf *b, unsigned v)
{
	b->d[b->n++] = (unsigned char)v;
}

static void put16(struct buf *b, unsigned v, int be)
{
	if (be) {
		put8(b, v >> 8);
		put8(b, v & 255);
	} else {
		put8(b, v & 255);
		put8(b, v >> 8);
	}
}

static void put32(struct buf *b, uint32_t v, int be)
{
	if (be) {
		put16(b, v >> 16, 1);
		put16(b, v & 0xffff, 1);
	} else {
		put16(b, v & 0xffff, 0);
		put16(b, v >> 16, 0);
	}
}

static void put_bytes(struct buf *b, const unsigned char *p, size_t n)
{
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

/* A TCP segment (20-byte header) with `payload` bytes, network byte order. */
static void tcp_seg(struct buf *f, unsigned sport, unsigned dport, uint32_t seq, unsigned payload,
		    unsigned captured_payload)
{
	put16(f, sport, 1);
	put16(f, dport, 1);
	put32(f, seq, 1);
	put32(f, 0, 1);
	put8(f, 5 << 4);
	put8(f, 0x18);
	put16(f, 65535, 1);
	put32(f, 0, 1);
	(void)payload;
	for (unsigned i = 0; i < captured_payload; i++)
		put8(f, 'x');
}

static void ipv4_tcp(struct buf *f, unsigned sport, unsigned dport, uint32_t seq, unsigned payload,
		     unsigned captured_payload)
{
	put8(f, 0x45);
	put8(f, 0);
	put16(f, 20 + 20 + payload, 1);
	put32(f, 0x40000000, 1); /* id 0, DF */
	put8(f, 64);
	put8(f, 6);
	put16(f, 0, 1);
	put32(f, 0x7f000001, 1);
	put32(f, 0x7f000001, 1);
	tcp_seg(f, sport, dport, seq, payload, captured_payload);
}

static void ipv6_tcp(struct buf *f, unsigned sport, unsigned dport, uint32_t seq, unsigned payload)
{
	put32(f, 0x60000000, 1);
	put16(f, 20 + payload, 1);
	put8(f, 6);
	put8(f, 64);
	for (int i = 0; i < 32; i++)
		put8(f, i == 15 || i == 31 ? 1 : 0);
	tcp_seg(f, sport, dport, seq, payload, payload);
}

static void eth(struct buf *f, int vlan)
{
	for (int i = 0; i < 12; i++)
		put8(f, i);
	if (vlan) {
		put16(f, 0x8100, 1);
		put16(f, 42, 1);
	}
	put16(f, 0x0800, 1);
}

static void pcap_header(struct buf *b, int be, int nano, uint32_t linktype)
{
	b->be = be;
	put32(b, nano ? 0xa1b23c4d : 0xa1b2c3d4, be);
	put16(b, 2, be);
	put16(b, 4, be);
	put32(b, 0, be);
	put32(b, 0, be);
	put32(b, 65535, be);
	put32(b, linktype, be);
}

static void pcap_record(struct buf *b, uint32_t sec, uint32_t frac, const struct buf *frame)
{
	put32(b, sec, b->be);
	put32(b, frac, b->be);
	put32(b, (uint32_t)frame->n, b->be);
	put32(b, (uint32_t)frame->n + 1000, b->be);
	put_bytes(b, frame->d, frame->n);
}

static struct buf *newbuf(void)
{
	struct buf *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	return b;
}

static void check_three_arrivals(const struct window_trace *t)
{
	assert_int_equal(t->n, 3);
	assert_int_equal(t->size[0], 10);
	assert_int_equal(t->size[1], 20);
	assert_int_equal(t->size[2], 30);
	assert_true(fabs(t->gap[1] - 0.5) < 1e-9);
	assert_true(fabs(t->gap[2] - 1.0) < 1e-9);
	assert_true(fabs(t->duration - 1.5) < 1e-9);
	assert_int_equal(t->bytes, 60);
	assert_true(fabs(window_trace_rate(t) - 2 / 1.5) < 1e-9);
}

/* Ethernet pcap, little-endian microseconds, with the clutter of a real capture. */
static void pcap_ethernet_counts_payload_toward_the_port(void **state)
{
	struct buf *b = newbuf(), *f = newbuf();
	struct window_trace *t;
	struct window_trace_filter flt = {6379, 0};
	char err[256];

	(void)state;
	pcap_header(b, 0, 0, 1);
	f->n = 0;
	eth(f, 0);
	ipv4_tcp(f, 40000, 6379, 1000, 10, 10);
	pcap_record(b, 1700000000, 0, f);
	f->n = 0; /* production's answer: the other direction */
	eth(f, 0);
	ipv4_tcp(f, 6379, 40000, 5000, 5, 5);
	pcap_record(b, 1700000000, 100000, f);
	f->n = 0; /* a bare ACK */
	eth(f, 0);
	ipv4_tcp(f, 40000, 6379, 1010, 0, 0);
	pcap_record(b, 1700000000, 200000, f);
	f->n = 0; /* VLAN-tagged */
	eth(f, 1);
	ipv4_tcp(f, 40000, 6379, 1010, 20, 20);
	pcap_record(b, 1700000000, 500000, f);
	f->n = 0; /* the same bytes again: a retransmission */
	eth(f, 0);
	ipv4_tcp(f, 40000, 6379, 1010, 20, 20);
	pcap_record(b, 1700000001, 0, f);
	f->n = 0; /* snaplen: headers only, 30 bytes of payload announced by IP */
	eth(f, 0);
	ipv4_tcp(f, 40000, 6379, 1030, 30, 0);
	pcap_record(b, 1700000001, 500000, f);
	assert_int_equal(window_trace_parse(b->d, b->n, &flt, &t, err, sizeof(err)), 0);
	assert_string_equal(t->format, "pcap");
	check_three_arrivals(t);
	assert_int_equal(t->packets, 6);
	assert_int_equal(t->skipped_other, 1);
	assert_int_equal(t->skipped_empty, 1);
	assert_int_equal(t->skipped_retrans, 1);
	assert_int_equal(t->flows, 1);
	window_trace_free(t);
	/* Without --port: 6379 received the most payload. */
	assert_int_equal(window_trace_parse(b->d, b->n, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(t->port, 6379);
	check_three_arrivals(t);
	window_trace_free(t);
	/* A port nobody sent to. */
	flt.port = 80;
	assert_int_equal(window_trace_parse(b->d, b->n, &flt, &t, err, sizeof(err)), -EINVAL);
	assert_null(t);
	assert_non_null(strstr(err, "--port"));
	free(b);
	free(f);
}

/* Big-endian nanosecond pcap of Linux cooked frames (tcpdump -i any). */
static void pcap_big_endian_nanoseconds_cooked(void **state)
{
	struct buf *b = newbuf(), *f = newbuf();
	struct window_trace *t;
	static const uint32_t when[3] = {1, 500000001, 500000001};
	static const unsigned sizes[3] = {10, 20, 30};
	uint32_t seq = 1;
	char err[256];

	(void)state;
	pcap_header(b, 1, 1, 113);
	for (int i = 0; i < 3; i++) {
		f->n = 0;
		put16(f, 0, 1);
		put16(f, 772, 1);
		put16(f, 6, 1);
		for (int k = 0; k < 8; k++)
			put8(f, 0);
		put16(f, 0x0800, 1);
		ipv4_tcp(f, 50000, 7000, seq, sizes[i], sizes[i]);
		seq += sizes[i];
		pcap_record(b, 100 + (i == 2), when[i], f);
	}
	assert_int_equal(window_trace_parse(b->d, b->n, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(t->port, 7000);
	check_three_arrivals(t);
	/* Nanoseconds survive: 0.5 s gap exactly. */
	assert_true(fabs(t->gap[1] - 0.5) < 1e-12);
	window_trace_free(t);
	free(b);
	free(f);
}

static void ng_block(struct buf *b, uint32_t type, const struct buf *body)
{
	uint32_t len = 12 + (uint32_t)((body->n + 3) & ~(size_t)3);

	put32(b, type, b->be);
	put32(b, len, b->be);
	put_bytes(b, body->d, body->n);
	while (b->n % 4)
		put8(b, 0);
	put32(b, len, b->be);
}

static void pcapng_section(struct buf *b, int be, int nano)
{
	struct buf *body = newbuf();

	b->be = be;
	put32(body, 0x1A2B3C4D, be);
	put16(body, 1, be);
	put16(body, 0, be);
	put32(body, 0xffffffff, be);
	put32(body, 0xffffffff, be);
	ng_block(b, 0x0A0D0D0A, body);
	body->n = 0; /* interface 0: raw IP, maybe nanoseconds */
	put16(body, 101, be);
	put16(body, 0, be);
	put32(body, 65535, be);
	if (nano) {
		put16(body, 9, be);
		put16(body, 1, be);
		put8(body, 9);
		put8(body, 0);
		put8(body, 0);
		put8(body, 0);
	}
	put16(body, 0, be);
	put16(body, 0, be);
	ng_block(b, 1, body);
	free(body);
}

static void pcapng_epb(struct buf *b, uint64_t ts, const struct buf *frame)
{
	struct buf *body = newbuf();

	put32(body, 0, b->be);
	put32(body, (uint32_t)(ts >> 32), b->be);
	put32(body, (uint32_t)ts, b->be);
	put32(body, (uint32_t)frame->n, b->be);
	put32(body, (uint32_t)frame->n, b->be);
	put_bytes(body, frame->d, frame->n);
	ng_block(b, 6, body);
	free(body);
}

/* pcapng in both byte orders, IPv6 over raw IP, nanosecond and default resolution. */
static void pcapng_both_orders_ipv6(void **state)
{
	for (int be = 0; be < 2; be++) {
		for (int nano = 0; nano < 2; nano++) {
			struct buf *b = newbuf(), *f = newbuf();
			struct window_trace *t;
			static const unsigned sizes[3] = {10, 20, 30};
			static const double at[3] = {5.0, 5.5, 6.5};
			uint32_t seq = 7;
			char err[256];

			pcapng_section(b, be, nano);
			for (int i = 0; i < 3; i++) {
				f->n = 0;
				ipv6_tcp(f, 41000, 8080, seq, sizes[i]);
				seq += sizes[i];
				pcapng_epb(b, (uint64_t)llround(at[i] * (nano ? 1e9 : 1e6)), f);
			}
			assert_int_equal(window_trace_parse(b->d, b->n, NULL, &t, err, sizeof(err)),
					 0);
			assert_string_equal(t->format, "pcapng");
			assert_int_equal(t->port, 8080);
			check_three_arrivals(t);
			window_trace_free(t);
			free(b);
			free(f);
		}
	}
}

static void cut_short_capture_keeps_what_is_there(void **state)
{
	struct buf *b = newbuf(), *f = newbuf();
	struct window_trace *t;
	char err[256];

	(void)state;
	pcap_header(b, 0, 0, 101);
	for (int i = 0; i < 4; i++) {
		f->n = 0;
		ipv4_tcp(f, 40000, 6379, 1 + 100 * (uint32_t)i, 100, 100);
		pcap_record(b, 10 + (uint32_t)i, 0, f);
	}
	/* Cut the last record in half, as a killed tcpdump leaves it. */
	b->n -= 70;
	assert_int_equal(window_trace_parse(b->d, b->n, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(t->n, 3);
	assert_int_equal(t->skipped_bad, 1);
	window_trace_free(t);
	/* A file of just a header has no arrivals. */
	assert_int_equal(window_trace_parse(b->d, 24, NULL, &t, err, sizeof(err)), -EINVAL);
	free(b);
	free(f);
}

static void arrivals_cap_stops_the_reader(void **state)
{
	struct buf *b = newbuf(), *f = newbuf();
	struct window_trace *t;
	struct window_trace_filter flt = {6379, 5};
	char err[256];

	(void)state;
	pcap_header(b, 0, 0, 101);
	for (uint32_t i = 0; i < 50; i++) {
		f->n = 0;
		ipv4_tcp(f, 40000, 6379, 1 + 10 * i, 10, 10);
		pcap_record(b, 10, i * 1000, f);
	}
	assert_int_equal(window_trace_parse(b->d, b->n, &flt, &t, err, sizeof(err)), 0);
	assert_int_equal(t->n, 5);
	assert_true(t->truncated);
	window_trace_free(t);
	free(b);
	free(f);
}

static void text_arrivals(void **state)
{
	static const char good[] = "# time size\n0.5 100\n1.0, 200   # a comment\n\n"
				   "  2.0 300\r\n1.5 50\n";
	struct window_trace *t;
	char err[256];

	(void)state;
	assert_int_equal(window_trace_parse((const unsigned char *)good, strlen(good), NULL, &t,
					    err, sizeof(err)),
			 0);
	assert_string_equal(t->format, "text");
	assert_int_equal(t->n, 4);
	/* Out-of-order lines are sorted by time. */
	assert_int_equal(t->size[2], 50);
	assert_int_equal(t->bytes, 650);
	assert_true(fabs(t->duration - 1.5) < 1e-12);
	window_trace_free(t);
}

static void bad_text_is_refused_with_its_line(void **state)
{
	static const char *const bad[] = {
		"0.5 100\nhello\n", "0.5 -3\n", "-1 10\n", "0.5 10 20\n", "1.5 2.5\n", "nan\n", "",
	};
	struct window_trace *t;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(window_trace_parse((const unsigned char *)bad[i], strlen(bad[i]),
						    NULL, &t, err, sizeof(err)),
				 -EINVAL);
		assert_null(t);
	}
	assert_int_equal(window_trace_parse((const unsigned char *)"0.5 100\nhello\n", 14, NULL, &t,
					    err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	assert_int_equal(window_trace_parse((const unsigned char *)"0.5\0 1\n", 7, NULL, &t, err,
					    sizeof(err)),
			 -EINVAL);
}

static void load_reports_missing_files(void **state)
{
	struct window_trace *t;
	char err[256];

	(void)state;
	assert_int_equal(window_trace_load("/nonexistent/capture.pcap", NULL, &t, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/capture.pcap"));
	assert_int_equal(window_trace_load("/", NULL, &t, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pcap_ethernet_counts_payload_toward_the_port),
		cmocka_unit_test(pcap_big_endian_nanoseconds_cooked),
		cmocka_unit_test(pcapng_both_orders_ipv6),
		cmocka_unit_test(cut_short_capture_keeps_what_is_there),
		cmocka_unit_test(arrivals_cap_stops_the_reader),
		cmocka_unit_test(text_arrivals),
		cmocka_unit_test(bad_text_is_refused_with_its_line),
		cmocka_unit_test(load_reports_missing_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
