/*
 * pool.c - 4 KiB blocks for the production window and the mask records, and
 * the pieces a busy connection takes and gives back, from per-thread free
 * lists, so that steady traffic does not allocate.
 */
#include "divergence/div-int.h"

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

/*
 * Free pieces of the sizes a connection keeps coming back to while busy (its
 * working state, its window and the window's short blocks), one list per
 * size: a busy moment reuses them instead of leaving the heap in holes
 * between the connections that stay.
 */
#define SIZED_CLASSES 8
#define SIZED_MAX 256
static _Thread_local struct sized {
	size_t size;
	void *head;
	unsigned len;
} sized[SIZED_CLASSES];

static struct sized *sized_class(size_t size, int add)
{
	for (unsigned k = 0; k < SIZED_CLASSES; k++) {
		if (sized[k].size == size)
			return &sized[k];
		if (!sized[k].size && add) {
			sized[k].size = size;
			return &sized[k];
		}
	}
	return NULL;
}

void *div_piece_get(size_t size)
{
	struct sized *c = sized_class(size, 0);
	void *p;

	if (c && c->head) {
		p = c->head;
		memcpy(&c->head, p, sizeof(void *));
		c->len--;
		return p;
	}
	p = malloc(size);
	if (!p)
		abort(); /* as div_block_get */
	return p;
}

void div_piece_put(void *p, size_t size)
{
	struct sized *c;

	if (!p)
		return;
	c = sized_class(size, 1);
	if (!c || c->len >= SIZED_MAX) {
		free(p);
		return;
	}
	memcpy(p, &c->head, sizeof(void *));
	c->head = p;
	c->len++;
}

void div_thread_exit(void)
{
	for (unsigned k = 0; k < SIZED_CLASSES; k++) {
		while (sized[k].head) {
			void *p = sized[k].head;

			memcpy(&sized[k].head, p, sizeof(void *));
			free(p);
		}
		sized[k].len = 0;
		sized[k].size = 0;
	}
	while (pool_head) {
		unsigned char *b = pool_head;

		memcpy(&pool_head, b, sizeof(void *));
		free(b);
	}
	pool_len = 0;
	div_rules_thread_exit();
}
