/*
 * hasher.h - the hash of one turn, in 72 bytes and no allocation.
 *
 * Most turns are small (a RESP "+OK", a short HTTP reply): their bytes are
 * kept inline and hashed one-shot with XXH3 at the end. A turn that outgrows
 * the inline space is hashed with XXH64, streamed in the same space (its four
 * lanes and the unfinished 32-byte stripe): an idle connection keeps its open
 * turn's hash and nothing else. Which hash a turn gets depends on its length
 * only, and the streamed state on its bytes only (not on how they were cut),
 * so production and every replica agree. Private to divergence/.
 */
#ifndef DOPPEL_DIVERGENCE_HASHER_H
#define DOPPEL_DIVERGENCE_HASHER_H

#include <stddef.h>
#include <stdint.h>

#define DIV_HASHER_INLINE 64

struct div_hasher {
	uint64_t len; /* bytes so far */
	union {
		unsigned char inl[DIV_HASHER_INLINE]; /* they, while len <= DIV_HASHER_INLINE */
		struct {
			uint64_t acc[4];	  /* XXH64's lanes, */
			unsigned char stripe[32]; /* and len % 32 bytes of the next stripe */
		} s;
	};
};

void div_hasher_init(struct div_hasher *h);
void div_hasher_update(struct div_hasher *h, const void *buf, size_t n);
/* Hash of the bytes so far; the hasher may go on being updated. */
uint64_t div_hasher_peek(const struct div_hasher *h);
/* Hash of the bytes so far; the hasher is reset for the next turn. */
uint64_t div_hasher_finish(struct div_hasher *h);
/* 1 once the bytes no longer fit inline (h->inl is not them). */
int div_hasher_streaming(const struct div_hasher *h);

#endif
