/*
 * test_chunk.c - chunks, segment queues and the shared read cursor: bytes
 * come out in order, references are released, nothing leaks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/chunk.h"

/* Read the cursor's space, fill it with a pattern, return where it went. */
static unsigned char *fake_read(struct chunk_pool *p, size_t n, unsigned char seed)
{
	unsigned char *buf;
	size_t room;

	assert_int_equal(chunk_read_space(p, &buf, &room), 0);
	assert_true(room >= CHUNK_MIN_TAIL);
	assert_true(n <= room);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(seed + i);
	return buf;
}

static void unqueued_reads_reuse_the_same_space(void **state)
{
	struct chunk_pool p;
	unsigned char *a, *b;

	(void)state;
	chunk_pool_init(&p, 4);
	a = fake_read(&p, 100, 1);
	b = fake_read(&p, 100, 2);
	assert_ptr_equal(a, b);
	assert_int_equal(p.chunks_live, 1);
	chunk_pool_destroy(&p);
}

static void queued_bytes_come_out_in_order_and_release_chunks(void **state)
{
	struct chunk_pool p;
	struct segq q1, q2;
	int sv[2];
	unsigned char out[4096];

	(void)state;
	chunk_pool_init(&p, 4);
	segq_init(&q1);
	segq_init(&q2);
	for (int i = 0; i < 20; i++) {
		unsigned char *buf = fake_read(&p, 100, (unsigned char)i);
		struct chunk *ch = p.cur;
		uint32_t off = (uint32_t)(buf - ch->data);

		/* One read, two destinations: one chunk, two references. */
		assert_int_equal(segq_append(&p, &q1, ch, off, 100), 0);
		assert_int_equal(segq_append(&p, &q2, ch, off + 50, 50), 0);
		chunk_read_keep(&p, 100);
	}
	assert_int_equal(q1.bytes, 2000);
	assert_int_equal(q2.bytes, 1000);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(segq_write(&p, &q1, sv[0]), 2000);
	assert_true(segq_empty(&q1));
	assert_int_equal(read(sv[1], out, sizeof(out)), 2000);
	for (int i = 0; i < 20; i++)
		for (int j = 0; j < 100; j++)
			assert_int_equal(out[i * 100 + j], (unsigned char)(i + j));
	segq_consume(&p, &q2, 25);
	assert_int_equal(q2.bytes, 975);
	assert_int_equal(segq_write(&p, &q2, sv[0]), 975);
	assert_int_equal(read(sv[1], out, sizeof(out)), 975);
	assert_int_equal(out[0], (unsigned char)(0 + 75));
	assert_int_equal(p.segs_live, 0);
	/* Only the cursor's chunk is still referenced. */
	assert_int_equal(p.chunks_live, 1);
	close(sv[0]);
	close(sv[1]);
	chunk_pool_destroy(&p);
}

static void cursor_moves_to_a_new_chunk_when_the_tail_is_short(void **state)
{
	struct chunk_pool p;
	struct segq q;
	struct chunk *first;

	(void)state;
	chunk_pool_init(&p, 4);
	segq_init(&q);
	fake_read(&p, 1, 0);
	first = p.cur;
	/* Keep reads until the first chunk cannot offer CHUNK_MIN_TAIL any more. */
	while (p.cur == first) {
		unsigned char *buf = fake_read(&p, 4096, 7);

		if (p.cur != first)
			break;
		assert_int_equal(segq_append(&p, &q, p.cur, (uint32_t)(buf - p.cur->data), 4096),
				 0);
		chunk_read_keep(&p, 4096);
	}
	assert_int_equal(p.chunks_live, 2); /* the old one lives on through q */
	segq_clear(&p, &q);
	assert_int_equal(p.chunks_live, 1);
	assert_int_equal(p.nfree_chunks, 1); /* recycled, not freed */
	chunk_pool_destroy(&p);
}

static void adjacent_appends_share_one_segment(void **state)
{
	struct chunk_pool p;
	struct segq q;
	unsigned char *buf;

	(void)state;
	chunk_pool_init(&p, 4);
	segq_init(&q);
	buf = fake_read(&p, 200, 0);
	assert_int_equal(segq_append(&p, &q, p.cur, (uint32_t)(buf - p.cur->data), 100), 0);
	assert_int_equal(segq_append(&p, &q, p.cur, (uint32_t)(buf - p.cur->data) + 100, 100), 0);
	assert_int_equal(p.segs_live, 1);
	assert_int_equal(q.bytes, 200);
	segq_clear(&p, &q);
	chunk_pool_destroy(&p);
}

static void write_to_a_full_socket_keeps_the_rest(void **state)
{
	struct chunk_pool p;
	struct segq q;
	int sv[2], sz = 4096;
	uint64_t queued = 0;
	ssize_t w;

	(void)state;
	chunk_pool_init(&p, 4);
	segq_init(&q);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	for (int i = 0; i < 64; i++) {
		unsigned char *buf = fake_read(&p, 8192, (unsigned char)i);

		assert_int_equal(segq_append(&p, &q, p.cur, (uint32_t)(buf - p.cur->data), 8192),
				 0);
		chunk_read_keep(&p, 8192);
		queued += 8192;
	}
	w = segq_write(&p, &q, sv[0]);
	assert_true(w > 0 && (uint64_t)w < queued);
	assert_int_equal(q.bytes, queued - (uint64_t)w);
	close(sv[1]);
	/* The peer is gone: an error, not a crash, and the queue is intact. */
	w = segq_write(&p, &q, sv[0]);
	assert_true(w == -EPIPE || w == -ECONNRESET);
	segq_clear(&p, &q);
	close(sv[0]);
	chunk_pool_destroy(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unqueued_reads_reuse_the_same_space),
		cmocka_unit_test(queued_bytes_come_out_in_order_and_release_chunks),
		cmocka_unit_test(cursor_moves_to_a_new_chunk_when_the_tail_is_short),
		cmocka_unit_test(adjacent_appends_share_one_segment),
		cmocka_unit_test(write_to_a_full_socket_keeps_the_rest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
