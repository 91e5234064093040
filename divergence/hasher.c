/*
 * hasher.c - per-turn hashes: XXH3 of small turns kept inline, XXH64 of the
 * longer ones through a pooled streaming state (88 bytes where XXH3's takes
 * 576: an idle connection keeps its open turn's state).
 */
#include "divergence/hasher.h"
#include "divergence/divergence.h"

#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* sizeof(XXH64_state_t) */
#include <xxhash.h>

#define POOL_MAX 1024

/* Free XXH64 states of this thread, linked through their first bytes. */
static _Thread_local void *pool_head;
static _Thread_local unsigned pool_len;

static XXH64_state_t *state_get(void)
{
	XXH64_state_t *st;

	if (pool_head) {
		st = pool_head;
		memcpy(&pool_head, st, sizeof(void *));
		pool_len--;
		return st;
	}
	st = XXH64_createState();
	if (!st)
		abort();
	return st;
}

static void state_put(XXH64_state_t *st)
{
	if (pool_len >= POOL_MAX) {
		XXH64_freeState(st);
		return;
	}
	memcpy(st, &pool_head, sizeof(void *));
	pool_head = st;
	pool_len++;
}

uint64_t div_hash(const void *buf, size_t n)
{
	return XXH3_64bits(buf, n);
}

void div_hasher_init(struct div_hasher *h)
{
	h->len = 0;
	h->state = NULL;
}

void div_hasher_update(struct div_hasher *h, const void *buf, size_t n)
{
	if (!n)
		return;
	if (!h->state) {
		if (h->len + n <= DIV_HASHER_INLINE) {
			memcpy(h->inl + h->len, buf, n);
			h->len += n;
			return;
		}
		h->state = state_get();
		XXH64_reset(h->state, 0);
		XXH64_update(h->state, h->inl, (size_t)h->len);
	}
	XXH64_update(h->state, buf, n);
	h->len += n;
}

uint64_t div_hasher_peek(const struct div_hasher *h)
{
	if (h->state)
		return XXH64_digest(h->state);
	return XXH3_64bits(h->inl, (size_t)h->len);
}

uint64_t div_hasher_finish(struct div_hasher *h)
{
	uint64_t v = div_hasher_peek(h);

	div_hasher_release(h);
	return v;
}

void div_hasher_copy(struct div_hasher *dst, const struct div_hasher *src)
{
	*dst = *src;
	if (src->state) {
		dst->state = state_get();
		memcpy(dst->state, src->state, sizeof(XXH64_state_t));
	}
}

size_t div_hasher_footprint(const struct div_hasher *h)
{
	return h->state ? sizeof(XXH64_state_t) : 0;
}

void div_hasher_release(struct div_hasher *h)
{
	if (h->state)
		state_put(h->state);
	div_hasher_init(h);
}

void div_hasher_thread_exit(void)
{
	while (pool_head) {
		XXH64_state_t *st = pool_head;

		memcpy(&pool_head, st, sizeof(void *));
		XXH64_freeState(st);
	}
	pool_len = 0;
}
