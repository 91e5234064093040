/*
 * hasher.c - per-turn hashes: XXH3 of the turns kept inline, XXH64 of the
 * longer ones streamed in place (the algorithm as xxHash specifies it; the
 * unit tests check it against libxxhash's XXH64).
 */
#include "divergence/hasher.h"
#include "divergence/divergence.h"

#include <string.h>
#include <xxhash.h>

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

uint64_t div_hash(const void *buf, size_t n)
{
	return XXH3_64bits(buf, n);
}

static uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* Little-endian loads, whatever the host (one load on x86). */
static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static uint64_t round64(uint64_t acc, uint64_t in)
{
	return rotl(acc + in * P2, 31) * P1;
}

static void stripe(uint64_t acc[4], const unsigned char *p)
{
	for (int i = 0; i < 4; i++)
		acc[i] = round64(acc[i], rd64(p + 8 * i));
}

/* Streaming: add n bytes (h->len counts them, the stripe holds len % 32). */
static void stream(struct div_hasher *h, const unsigned char *p, size_t n)
{
	size_t fill = (size_t)(h->len % 32);

	h->len += n;
	if (fill) {
		size_t take = 32 - fill < n ? 32 - fill : n;

		memcpy(h->s.stripe + fill, p, take);
		p += take;
		n -= take;
		if (fill + take < 32)
			return;
		stripe(h->s.acc, h->s.stripe);
	}
	if (n >= 32) {
		/* the lanes in registers while the stripes go by */
		uint64_t v[4] = {h->s.acc[0], h->s.acc[1], h->s.acc[2], h->s.acc[3]};

		for (; n >= 32; p += 32, n -= 32)
			stripe(v, p);
		memcpy(h->s.acc, v, sizeof(v));
	}
	memcpy(h->s.stripe, p, n);
}

void div_hasher_init(struct div_hasher *h)
{
	h->len = 0;
}

int div_hasher_streaming(const struct div_hasher *h)
{
	return h->len > DIV_HASHER_INLINE;
}

void div_hasher_update(struct div_hasher *h, const void *buf, size_t n)
{
	if (!n)
		return;
	if (!div_hasher_streaming(h)) {
		unsigned char held[DIV_HASHER_INLINE];
		size_t have = (size_t)h->len;

		if (have + n <= DIV_HASHER_INLINE) {
			memcpy(h->inl + have, buf, n);
			h->len += n;
			return;
		}
		/* outgrown: what was inline starts the stream */
		memcpy(held, h->inl, have);
		h->len = 0;
		h->s.acc[0] = P1 + P2;
		h->s.acc[1] = P2;
		h->s.acc[2] = 0;
		h->s.acc[3] = 0 - P1;
		stream(h, held, have);
	}
	stream(h, buf, n);
}

uint64_t div_hasher_peek(const struct div_hasher *h)
{
	const uint64_t *a = h->s.acc;
	const unsigned char *p = h->s.stripe;
	size_t left = (size_t)(h->len % 32);
	uint64_t v;

	if (!div_hasher_streaming(h))
		return XXH3_64bits(h->inl, (size_t)h->len);
	v = rotl(a[0], 1) + rotl(a[1], 7) + rotl(a[2], 12) + rotl(a[3], 18);
	for (int i = 0; i < 4; i++)
		v = (v ^ round64(0, a[i])) * P1 + P4;
	v += h->len;
	for (; left >= 8; p += 8, left -= 8)
		v = rotl(v ^ round64(0, rd64(p)), 27) * P1 + P4;
	if (left >= 4) {
		v = rotl(v ^ (uint64_t)rd32(p) * P1, 23) * P2 + P3;
		p += 4;
		left -= 4;
	}
	for (; left; p++, left--)
		v = rotl(v ^ *p * P5, 11) * P1;
	v ^= v >> 33;
	v *= P2;
	v ^= v >> 29;
	v *= P3;
	v ^= v >> 32;
	return v;
}

uint64_t div_hasher_finish(struct div_hasher *h)
{
	uint64_t v = div_hasher_peek(h);

	div_hasher_init(h);
	return v;
}
