/*
 * hasher.h - the hash of one turn, cheap for the common small turn.
 *
 * Most turns are small (a RESP "+OK", a short HTTP reply): they are kept
 * inline and hashed one-shot with XXH3 at the end. A turn that outgrows the
 * inline space takes a streaming XXH64 state (88 bytes, where XXH3's is 576:
 * an idle connection keeps its open turn's) from a per-thread free list, and
 * gives it back when the turn ends. Which hash a turn gets depends on its
 * length only, and the streaming state on the bytes only (not on how they
 * were cut), so production and every replica agree. Private to divergence/.
 */
#ifndef DOPPEL_DIVERGENCE_HASHER_H
#define DOPPEL_DIVERGENCE_HASHER_H

#include <stddef.h>
#include <stdint.h>

#define DIV_HASHER_INLINE 56

struct div_hasher {
	uint64_t len;
	void *state; /* XXH3_state_t, when len outgrew inl */
	unsigned char inl[DIV_HASHER_INLINE];
};

void div_hasher_init(struct div_hasher *h);
void div_hasher_update(struct div_hasher *h, const void *buf, size_t n);
/* Hash of the bytes so far; the hasher may go on being updated. */
uint64_t div_hasher_peek(const struct div_hasher *h);
/* Hash of the bytes so far; the hasher is reset for the next turn. */
uint64_t div_hasher_finish(struct div_hasher *h);
/* dst (released or never used) becomes a copy of src, with a state of its own. */
void div_hasher_copy(struct div_hasher *dst, const struct div_hasher *src);
/* Heap bytes it holds beside itself (a streaming state, or none). */
size_t div_hasher_footprint(const struct div_hasher *h);
/* Forget everything (returns any state to the pool). */
void div_hasher_release(struct div_hasher *h);

/* This thread's pooled states go (div_thread_exit). */
void div_hasher_thread_exit(void);

#endif
