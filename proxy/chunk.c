/*
 * chunk.c - reference-counted chunks, segment queues and the read cursor.
 */
#include "proxy/chunk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define WRITEV_MAX 64

void chunk_pool_init(struct chunk_pool *p, unsigned max_free_chunks)
{
	p->free_chunks = NULL;
	p->free_segs = NULL;
	p->nfree_chunks = 0;
	p->max_free_chunks = max_free_chunks;
	p->chunks_live = 0;
	p->segs_live = 0;
	p->cur = NULL;
}

static void chunk_unref(struct chunk_pool *p, struct chunk *ch)
{
	if (--ch->refs)
		return;
	p->chunks_live--;
	if (p->nfree_chunks >= p->max_free_chunks) {
		free(ch);
		return;
	}
	ch->next_free = p->free_chunks;
	p->free_chunks = ch;
	p->nfree_chunks++;
}

void chunk_pool_destroy(struct chunk_pool *p)
{
	if (p->cur)
		chunk_unref(p, p->cur);
	p->cur = NULL;
	while (p->free_chunks) {
		struct chunk *ch = p->free_chunks;

		p->free_chunks = ch->next_free;
		free(ch);
	}
	while (p->free_segs) {
		struct seg *s = p->free_segs;

		p->free_segs = s->next;
		free(s);
	}
	p->nfree_chunks = 0;
}

static struct chunk *chunk_get(struct chunk_pool *p)
{
	struct chunk *ch = p->free_chunks;

	if (ch) {
		p->free_chunks = ch->next_free;
		p->nfree_chunks--;
	} else {
		ch = malloc(sizeof(*ch));
		if (!ch)
			return NULL;
	}
	ch->refs = 1;
	ch->used = 0;
	ch->next_free = NULL;
	p->chunks_live++;
	return ch;
}

int chunk_read_space(struct chunk_pool *p, unsigned char **buf, size_t *room)
{
	if (!p->cur || CHUNK_SIZE - p->cur->used < CHUNK_MIN_TAIL) {
		struct chunk *ch = chunk_get(p);

		if (!ch)
			return -ENOMEM;
		if (p->cur)
			chunk_unref(p, p->cur);
		p->cur = ch; /* the cursor's own reference */
	}
	*buf = p->cur->data + p->cur->used;
	*room = CHUNK_SIZE - p->cur->used;
	return 0;
}

void chunk_read_keep(struct chunk_pool *p, size_t n)
{
	/* Keep the next read 64-byte aligned: separate cache lines per read. */
	size_t adv = (n + 63) & ~(size_t)63;

	p->cur->used = adv > CHUNK_SIZE - p->cur->used ? CHUNK_SIZE : p->cur->used + (uint32_t)adv;
}

int chunk_new_copy(struct chunk_pool *p, const void *buf, size_t n, struct chunk **out)
{
	struct chunk *ch;

	if (n > CHUNK_SIZE || !(ch = chunk_get(p)))
		return -ENOMEM;
	memcpy(ch->data, buf, n);
	ch->used = (uint32_t)n;
	*out = ch;
	return 0;
}

void chunk_release(struct chunk_pool *p, struct chunk *ch)
{
	chunk_unref(p, ch);
}

static struct seg *seg_get(struct chunk_pool *p)
{
	struct seg *s = p->free_segs;

	if (s)
		p->free_segs = s->next;
	else if (!(s = malloc(sizeof(*s))))
		return NULL;
	p->segs_live++;
	return s;
}

static void seg_put(struct chunk_pool *p, struct seg *s)
{
	chunk_unref(p, s->ch);
	s->next = p->free_segs;
	p->free_segs = s;
	p->segs_live--;
}

int segq_append(struct chunk_pool *p, struct segq *q, struct chunk *ch, uint32_t off, uint32_t len)
{
	struct seg *s;

	if (!len)
		return 0;
	/* Contiguous with the last segment of the same chunk: extend it. */
	if (q->tail && q->tail->ch == ch && q->tail->off + q->tail->len == off) {
		q->tail->len += len;
		q->bytes += len;
		return 0;
	}
	s = seg_get(p);
	if (!s)
		return -ENOMEM;
	ch->refs++;
	s->ch = ch;
	s->off = off;
	s->len = len;
	s->next = NULL;
	if (q->tail)
		q->tail->next = s;
	else
		q->head = s;
	q->tail = s;
	q->bytes += len;
	return 0;
}

int segq_append_all(struct chunk_pool *p, struct segq *q, const struct segq *src)
{
	for (const struct seg *s = src->head; s; s = s->next)
		if (segq_append(p, q, s->ch, s->off, s->len) < 0)
			return -ENOMEM;
	return 0;
}

void segq_consume(struct chunk_pool *p, struct segq *q, uint64_t n)
{
	while (n > 0 && q->head) {
		struct seg *s = q->head;

		if (n < s->len) {
			s->off += (uint32_t)n;
			s->len -= (uint32_t)n;
			q->bytes -= n;
			return;
		}
		n -= s->len;
		q->bytes -= s->len;
		q->head = s->next;
		if (!q->head)
			q->tail = NULL;
		seg_put(p, s);
	}
}

void segq_clear(struct chunk_pool *p, struct segq *q)
{
	segq_consume(p, q, q->bytes);
}

ssize_t segq_write(struct chunk_pool *p, struct segq *q, int fd)
{
	return segq_write_seen(p, q, fd, NULL, NULL);
}

ssize_t segq_write_seen(struct chunk_pool *p, struct segq *q, int fd,
			void (*seen)(void *arg, const void *buf, size_t n), void *arg)
{
	struct iovec iov[WRITEV_MAX];
	ssize_t total = 0;

	while (q->head) {
		int n = 0;
		ssize_t w;
		size_t want = 0;

		for (struct seg *s = q->head; s && n < WRITEV_MAX; s = s->next, n++) {
			iov[n].iov_base = s->ch->data + s->off;
			iov[n].iov_len = s->len;
			want += s->len;
		}
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};

		w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return total;
			return -errno;
		}
		if (seen) {
			size_t left = (size_t)w;

			for (int i = 0; i < n && left; i++) {
				size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;

				seen(arg, iov[i].iov_base, c);
				left -= c;
			}
		}
		segq_consume(p, q, (uint64_t)w);
		total += w;
		if ((size_t)w < want)
			return total;
	}
	return total;
}
