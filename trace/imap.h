/*
 * imap.h - private to trace/: a bounded hash map from 64-bit keys to
 * 64-bit values (or pointers), open addressing with linear probing and
 * backward-shift deletion. Readers map thread ids to process ids and to
 * pending calls; demux maps (pid, fd) to streams.
 *
 * imap_put returns -ENOSPC once max entries are held: the caller counts what
 * it could not keep.
 */
#ifndef DOPPEL_TRACE_IMAP_H
#define DOPPEL_TRACE_IMAP_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

struct imap {
	uint64_t *keys;
	uint64_t *vals;
	unsigned char *used;
	size_t cap, count, max;
};

static inline uint64_t imap_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static inline void imap_init(struct imap *m, size_t max)
{
	m->keys = NULL;
	m->vals = NULL;
	m->used = NULL;
	m->cap = 0;
	m->count = 0;
	m->max = max;
}

static inline void imap_free(struct imap *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	imap_init(m, m->max);
}

static inline uint64_t *imap_get(const struct imap *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	for (size_t i = imap_hash(key) & (m->cap - 1); m->used[i]; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == key)
			return &m->vals[i];
	return NULL;
}

static inline int imap_grow(struct imap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	uint64_t *nk = calloc(ncap, sizeof(*nk)), *nv = calloc(ncap, sizeof(*nv));
	unsigned char *nu = calloc(ncap, 1);

	if (!nk || !nv || !nu) {
		free(nk);
		free(nv);
		free(nu);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->used[i])
			continue;
		for (j = imap_hash(m->keys[i]) & (ncap - 1); nu[j]; j = (j + 1) & (ncap - 1))
			;
		nu[j] = 1;
		nk[j] = m->keys[i];
		nv[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	free(m->used);
	m->keys = nk;
	m->vals = nv;
	m->used = nu;
	m->cap = ncap;
	return 0;
}

/* Insert or replace. Returns 0, -ENOSPC (full) or -ENOMEM. */
static inline int imap_put(struct imap *m, uint64_t key, uint64_t val)
{
	uint64_t *v = imap_get(m, key);
	size_t i;

	if (v) {
		*v = val;
		return 0;
	}
	if (m->count >= m->max)
		return -ENOSPC;
	if ((m->count + 1) * 4 > m->cap * 3 && imap_grow(m) < 0)
		return -ENOMEM;
	for (i = imap_hash(key) & (m->cap - 1); m->used[i]; i = (i + 1) & (m->cap - 1))
		;
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
	return 0;
}

static inline int imap_del(struct imap *m, uint64_t key)
{
	size_t i, j;

	if (!m->cap)
		return 0;
	for (i = imap_hash(key) & (m->cap - 1); m->used[i]; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == key)
			break;
	if (!m->used[i])
		return 0;
	/* backward-shift deletion keeps probe chains intact without tombstones */
	j = i;
	for (;;) {
		size_t h;

		m->used[i] = 0;
		for (;;) {
			j = (j + 1) & (m->cap - 1);
			if (!m->used[j]) {
				m->count--;
				return 1;
			}
			h = imap_hash(m->keys[j]) & (m->cap - 1);
			/* move j back to i unless its home lies cyclically in (i, j] */
			if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
				continue;
			break;
		}
		m->used[i] = 1;
		m->keys[i] = m->keys[j];
		m->vals[i] = m->vals[j];
		i = j;
	}
}

/* Iterate: for (size_t it = 0; imap_next(m, &it, &k, &v);) */
static inline int imap_next(const struct imap *m, size_t *it, uint64_t *key, uint64_t *val)
{
	while (*it < m->cap) {
		size_t i = (*it)++;

		if (m->used[i]) {
			*key = m->keys[i];
			*val = m->vals[i];
			return 1;
		}
	}
	return 0;
}

#endif
