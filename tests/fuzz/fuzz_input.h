/*
 * fuzz_input.h - the input of a libFuzzer target read as a stream of
 * choices: each take() consumes one byte (0 once the input is spent).
 */
#ifndef DOPPEL_FUZZ_INPUT_H
#define DOPPEL_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct in {
	const uint8_t *p;
	size_t n;
};

/* The next byte, modulo mod when mod is not 0. */
static inline unsigned take(struct in *in, unsigned mod)
{
	unsigned v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return mod ? v % mod : v;
}

#endif
