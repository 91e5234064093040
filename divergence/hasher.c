/*
 * hasher.c - per-turn XXH3 with inline small turns and pooled states.
 */
#include "divergence/hasher.h"
#include "divergence/divergence.h"

#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* sizeof(XXH3_state_t) */
#include <xxhash.h>

#define POOL_MAX 1024

/* Free XXH3 states of this thread, linked through their first bytes. */
static _Thread_local void *pool_head;
static _Thread_local unsigned pool_len;

static XXH3_state_t *state_get(void)
{
	XXH3_state_t *st;

	if (pool_head) {
		st = pool_head;
		memcpy(&pool_head, st, sizeof(void *));
		pool_len--;
		return st;
	}
	st = XXH3_createState();
	if (!st)
		abort();
	return st;
}

static void state_put(XXH3_state_t *st)
{
	if (pool_len >= POOL_MAX) {
		XXH3_freeState(st);
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
		XXH3_64bits_reset(h->state);
		XXH3_64bits_update(h->state, h->inl, (size_t)h->len);
	}
	XXH3_64bits_update(h->state, buf, n);
	h->len += n;
}

uint64_t div_hasher_peek(const struct div_hasher *h)
{
	if (h->state)
		return XXH3_64bits_digest(h->state);
	return XXH3_64bits(h->inl, (size_t)h->len);
}

uint64_t div_hasher_finish(struct div_hasher *h)
{
	uint64_t v = div_hasher_peek(h);

	div_hasher_release(h);
	return v;
}

size_t div_hasher_footprint(const struct div_hasher *h)
{
	return h->state ? sizeof(XXH3_state_t) : 0;
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
		XXH3_state_t *st = pool_head;

		memcpy(&pool_head, st, sizeof(void *));
		XXH3_freeState(st);
	}
	pool_len = 0;
}
