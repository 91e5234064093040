/*
 * test_tcpimg.c - production's established connections read from CRIU's
 * images (clonemgr/tcpimg.c): the entries CRIU 4.2 writes, built here field
 * by field as protobuf, are read back; other sockets and files are left out;
 * every truncation and a wrong magic are refused, never read past the end.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clonemgr/cm-int.h"

struct buf {
	uint8_t b[1024];
	size_t n;
};

static void put_varint(struct buf *b, uint64_t v)
{
	do {
		b->b[b->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

static void field(struct buf *b, unsigned f, uint64_t v)
{
	put_varint(b, (uint64_t)f << 3);
	put_varint(b, v);
}

static void sub(struct buf *b, unsigned f, const struct buf *m)
{
	put_varint(b, ((uint64_t)f << 3) | 2);
	put_varint(b, m->n);
	memcpy(b->b + b->n, m->b, m->n);
	b->n += m->n;
}

static void u32(struct buf *b, uint32_t v)
{
	memcpy(b->b + b->n, &v, 4);
	b->n += 4;
}

static void entry(struct buf *img, const struct buf *m)
{
	u32(img, (uint32_t)m->n);
	memcpy(img->b + img->n, m->b, m->n);
	img->n += m->n;
}

/* An inet_sk_entry as CRIU writes it: addresses are words of network-order bytes. */
static void inet_sk(struct buf *m, uint32_t ino, unsigned family, unsigned state, unsigned sport,
		    unsigned dport, uint32_t src, uint32_t dst)
{
	struct buf empty = {.n = 0};

	field(m, 1, 7);
	field(m, 2, ino);
	field(m, 3, family);
	field(m, 4, 1); /* SOCK_STREAM */
	field(m, 5, 6); /* TCP */
	field(m, 6, state);
	field(m, 7, sport);
	field(m, 8, dport);
	field(m, 9, 0);
	field(m, 10, 0);
	field(m, 11, src);
	field(m, 12, dst);
	sub(m, 13, &empty);
	sub(m, 14, &empty);
}

static const uint8_t lo[4] = {127, 0, 0, 1}, peer[4] = {127, 0, 0, 2};

static uint32_t word(const uint8_t a[4])
{
	uint32_t w;

	memcpy(&w, a, 4);
	return w;
}

/* files.img: a regular file, a listener, two established sockets (one IPv6). */
static struct buf files_img(void)
{
	struct buf img = {.n = 0}, m, isk, reg = {.n = 0};

	u32(&img, 0x54564319u);
	u32(&img, 0x56303138u);
	m.n = 0;
	field(&m, 1, 1); /* REG */
	field(&m, 2, 1);
	field(&reg, 1, 1);
	sub(&m, 3, &reg);
	entry(&img, &m);
	m.n = isk.n = 0;
	field(&m, 1, 4);
	field(&m, 2, 2);
	inet_sk(&isk, 0x100, 2, 10 /* LISTEN */, 6379, 0, word(lo), 0);
	sub(&m, 4, &isk);
	entry(&img, &m);
	m.n = isk.n = 0;
	field(&m, 1, 4);
	field(&m, 2, 3);
	inet_sk(&isk, 0xabc, 2, 1, 6379, 40001, word(lo), word(peer));
	sub(&m, 4, &isk);
	entry(&img, &m);
	m.n = isk.n = 0;
	field(&m, 1, 4);
	field(&m, 2, 4);
	inet_sk(&isk, 0xabd, 10 /* AF_INET6 */, 1, 6379, 40002, 0, 0);
	sub(&m, 4, &isk);
	entry(&img, &m);
	return img;
}

static struct buf stream_img(void)
{
	struct buf img = {.n = 0}, m = {.n = 0};

	u32(&img, 0x54564319u);
	u32(&img, 0x51465506u);
	field(&m, 1, 3);	  /* inq_len */
	field(&m, 2, 1000);	  /* inq_seq */
	field(&m, 3, 5);	  /* outq_len */
	field(&m, 4, 0xfffffffe); /* outq_seq: wraps below */
	field(&m, 5, 1 | 2 | 4);  /* timestamps, sack, wscale */
	field(&m, 6, 7);
	field(&m, 7, 65483);
	field(&m, 8, 9);
	field(&m, 14, 65536);
	field(&m, 16, 43690);
	entry(&img, &m);
	memcpy(img.b + img.n, "abcdefgh", 8); /* the queues' bytes */
	img.n += 8;
	return img;
}

static void established_ipv4_sockets_are_found(void **state)
{
	struct buf img = files_img();
	struct cm_tcp_sock s[4];

	(void)state;
	assert_int_equal(cm_tcpimg_files(img.b, img.n, s, 4), 1);
	assert_int_equal(s[0].ino, 0xabc);
	assert_memory_equal(s[0].end.src, lo, 4);
	assert_memory_equal(s[0].end.dst, peer, 4);
	assert_int_equal(s[0].end.sport, 6379);
	assert_int_equal(s[0].end.dport, 40001);
	assert_int_equal(cm_tcpimg_files(img.b, img.n, s, 0), 0);
}

static void a_stream_gives_its_sequence_numbers(void **state)
{
	struct buf img = stream_img();
	struct tcp_end e;

	(void)state;
	memset(&e, 0, sizeof(e));
	assert_int_equal(cm_tcpimg_stream(img.b, img.n, &e), 0);
	assert_int_equal(e.rcv_nxt, 1000);
	assert_int_equal(e.snd_nxt, 0xfffffffe);
	assert_int_equal(e.snd_una, 0xfffffff9);
	assert_int_equal(e.mss, 65483);
	assert_int_equal(e.snd_wscale, 7);
	assert_int_equal(e.rcv_wscale, 9);
	assert_true(e.sack && e.timestamps);
	assert_int_equal(e.snd_wnd, 65536);
	assert_int_equal(e.rcv_wnd, 43690);
}

static void every_truncation_is_refused(void **state)
{
	struct buf f = files_img(), s = stream_img();
	struct cm_tcp_sock out[4];
	struct tcp_end e;

	(void)state;
	/* cut anywhere: an error, or what the whole entries before the cut hold */
	for (size_t n = 0; n < f.n; n++) {
		uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */

		int rc;

		memcpy(copy, f.b, n);
		rc = cm_tcpimg_files(copy, n, out, 4);
		assert_true(rc == -EBADMSG || rc == 0 || rc == 1);
		free(copy);
	}
	for (size_t n = 0; n < s.n - 8; n++) {
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, s.b, n);
		assert_int_equal(cm_tcpimg_stream(copy, n, &e), -EBADMSG);
		free(copy);
	}
}

static void a_wrong_magic_is_refused(void **state)
{
	struct buf f = files_img(), s = stream_img();
	struct cm_tcp_sock out[4];
	struct tcp_end e;

	(void)state;
	/* each image read as the other */
	assert_int_equal(cm_tcpimg_files(s.b, s.n, out, 4), -EBADMSG);
	assert_int_equal(cm_tcpimg_stream(f.b, f.n, &e), -EBADMSG);
}

static void a_directory_without_images_is_an_error(void **state)
{
	struct tcp_end e[2];

	(void)state;
	assert_int_equal(cm_tcp_ends("/nonexistent-doppel-images", e, 2), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(established_ipv4_sockets_are_found),
		cmocka_unit_test(a_stream_gives_its_sequence_numbers),
		cmocka_unit_test(every_truncation_is_refused),
		cmocka_unit_test(a_wrong_magic_is_refused),
		cmocka_unit_test(a_directory_without_images_is_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
