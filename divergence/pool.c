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

void div_thread_exit(void)
{
	while (pool_head) {
		unsigned char *b = pool_head;

		memcpy(&pool_head, b, sizeof(void *));
		free(b);
	}
	pool_len = 0;
	div_rules_thread_exit();
	div_hasher_thread_exit();
}
