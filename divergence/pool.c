/*
 * pool.c - 4 KiB blocks for the production window and the mask records,
 * from a per-thread free list, so that steady traffic does not allocate.
 */
#include "divergence/div-int.h"
#include "divergence/hasher.h"

#include <stdlib.h>
#include <string.h>

#define POOL_MAX 256 /* 1 MiB kept per thread at most */

static _Thread_local unsigned char *pool_head;
static _Thread_local unsigned pool_len;

unsigned char *div_block_get(void)
{
	unsigned char *b = pool_head;

	if (b) {
		memcpy(&pool_head, b, sizeof(void *));
		pool_len--;
		return b;
	}
	b = malloc(DIV_BLOCK);
	if (!b)
		abort();
	return b;
}

void div_block_put(unsigned char *b)
{
	if (!b)
		return;
	if (pool_len >= POOL_MAX) {
		free(b);
		return;
	}
	memcpy(b, &pool_head, sizeof(void *));
	pool_head = b;
	pool_len++;
}

/* Free working states (turns.c) of this thread, one list per follower count. */
#define WORK_CLASSES 8
#define WORK_MAX 64
static _Thread_local void *work_head[WORK_CLASSES];
static _Thread_local unsigned work_len[WORK_CLASSES];

void *div_work_get(unsigned nfollowers, size_t size)
{
	void *w = nfollowers < WORK_CLASSES ? work_head[nfollowers] : NULL;

	if (w) {
		memcpy(&work_head[nfollowers], w, sizeof(void *));
		work_len[nfollowers]--;
		return w;
	}
	w = malloc(size);
	if (!w)
		abort();
	return w;
}

void div_work_put(void *w, unsigned nfollowers)
{
	if (nfollowers >= WORK_CLASSES || work_len[nfollowers] >= WORK_MAX) {
		free(w);
		return;
	}
	memcpy(w, &work_head[nfollowers], sizeof(void *));
	work_head[nfollowers] = w;
	work_len[nfollowers]++;
}

void div_thread_exit(void)
{
	for (unsigned k = 0; k < WORK_CLASSES; k++) {
		while (work_head[k]) {
			void *w = work_head[k];

			memcpy(&work_head[k], w, sizeof(void *));
			free(w);
		}
		work_len[k] = 0;
	}
	while (pool_head) {
		unsigned char *b = pool_head;

		memcpy(&pool_head, b, sizeof(void *));
		free(b);
	}
	pool_len = 0;
	div_rules_thread_exit();
	div_hasher_thread_exit();
}
