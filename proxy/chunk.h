/*
 * chunk.h - the proxy's bytes in flight: reference-counted chunks and queues
 * of references to them. Private to proxy/.
 *
 * Every byte the proxy reads lands once in a chunk. A destination that cannot
 * take the bytes at once (a backend or client with a full socket, a replica
 * that runs behind) queues a *segment*: a reference to a range of a chunk. One
 * read duplicated to production and N replicas is one chunk and up to N+1
 * segments, never N+1 copies.
 *
 * Reads go through a single cursor shared by all connections of a worker:
 * read into the free tail of the current chunk; if nobody queued the bytes
 * (the usual case: every destination took them at once), the same tail is
 * reused by the next read; otherwise the cursor moves past them. An idle
 * connection therefore holds no buffer at all.
 *
 * Chunks and segments come from free lists in struct chunk_pool; the hot path
 * never calls malloc once the pool is warm. Everything here is used by one
 * event-loop thread (the worker that owns the pool).
 */
#ifndef DOPPEL_PROXY_CHUNK_H
#define DOPPEL_PROXY_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CHUNK_SIZE (64 * 1024)
#define CHUNK_MIN_TAIL (8 * 1024)

struct chunk {
	uint32_t refs;
	uint32_t used; /* bytes before the free tail */
	struct chunk *next_free;
	unsigned char data[CHUNK_SIZE];
};

struct seg {
	struct seg *next;
	struct chunk *ch;
	uint32_t off;
	uint32_t len;
};

/* FIFO of segments; bytes is the exact number of bytes queued. */
struct segq {
	struct seg *head;
	struct seg *tail;
	uint64_t bytes;
};

struct chunk_pool {
	struct chunk *free_chunks;
	struct seg *free_segs;
	unsigned nfree_chunks, max_free_chunks;
	uint64_t chunks_live; /* allocated and referenced */
	uint64_t segs_live;
	struct chunk *cur; /* read cursor */
};

void chunk_pool_init(struct chunk_pool *p, unsigned max_free_chunks);
void chunk_pool_destroy(struct chunk_pool *p);

/* Where the next read should go: a pointer and the room there (>= CHUNK_MIN_TAIL). */
int chunk_read_space(struct chunk_pool *p, unsigned char **buf, size_t *room);
/*
 * The last read's n bytes (at the cursor) were queued by someone: keep them,
 * move the cursor past them.
 */
void chunk_read_keep(struct chunk_pool *p, size_t n);
/*
 * A chunk of its own (not the read cursor) holding a copy of buf (n <=
 * CHUNK_SIZE), for bytes that were kept elsewhere; the caller's reference is
 * given back with chunk_release() once segments reference it. 0 or -ENOMEM.
 */
int chunk_new_copy(struct chunk_pool *p, const void *buf, size_t n, struct chunk **out);
void chunk_release(struct chunk_pool *p, struct chunk *ch);

static inline void segq_init(struct segq *q)
{
	q->head = q->tail = NULL;
	q->bytes = 0;
}

static inline int segq_empty(const struct segq *q)
{
	return q->head == NULL;
}

/* Queue a reference to ch[off, off+len). Returns 0 or -ENOMEM. */
int segq_append(struct chunk_pool *p, struct segq *q, struct chunk *ch, uint32_t off, uint32_t len);
/* Queue references to everything queued in src (src is unchanged). */
int segq_append_all(struct chunk_pool *p, struct segq *q, const struct segq *src);
/* Drop the first n bytes. */
void segq_consume(struct chunk_pool *p, struct segq *q, uint64_t n);
/* Drop everything. */
void segq_clear(struct chunk_pool *p, struct segq *q);
/*
 * Write as much of q as the socket takes (sendmsg, MSG_NOSIGNAL), consuming
 * what was written. Returns the bytes written (>= 0) or -errno on a socket
 * error; q still holding bytes afterwards means the socket is full.
 */
ssize_t segq_write(struct chunk_pool *p, struct segq *q, int fd);
/* The same; seen(arg, bytes, n) is called for the bytes written, before they are released. */
ssize_t segq_write_seen(struct chunk_pool *p, struct segq *q, int fd,
			void (*seen)(void *arg, const void *buf, size_t n), void *arg);

#endif
