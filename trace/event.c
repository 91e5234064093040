/*
 * event.c - the event model's small helpers: kind names, the interned string
 * table, event keys (what folding and comparing call "the same"), patterns
 * and duration formatting.
 *
 * Interning: names of functions, syscalls and errors repeat millions of times
 * in a trace but are few; interning them once makes events cheap to copy and
 * to compare (pointer equality). The table holds at most 64 MiB of strings.
 */
#include "trace/trace.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define INTERN_MAX_BYTES (64u << 20)
#define ARENA_BLOCK (1u << 20)

struct arena_block {
	struct arena_block *next;
	size_t used;
	char data[];
};

static struct {
	const char **slots; /* open addressing, power of two */
	uint64_t *hashes;
	size_t cap, count, bytes;
	uint64_t dropped;
	struct arena_block *blocks;
} itab;

void trace_event_init(struct trace_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->fd = -1;
	ev->name = "";
}

const char *trace_kind_name(int kind)
{
	static const char *const names[TRACE_KIND_MAX] = {
		[TRACE_ENTER] = "enter",   [TRACE_EXIT] = "exit",     [TRACE_SYSCALL] = "syscall",
		[TRACE_NOTE] = "note",	   [TRACE_LOST] = "lost",     [TRACE_BLOCK_BEGIN] = "block",
		[TRACE_BLOCK_END] = "end", [TRACE_HIDDEN] = "hidden", [TRACE_STREAM] = "stream",
		[TRACE_MSG] = "msg",
	};

	if (kind <= 0 || kind >= TRACE_KIND_MAX)
		return "?";
	return names[kind];
}

const char *trace_block_name(int block)
{
	switch (block) {
	case TRACE_BLOCK_LOOP:
		return "loop";
	case TRACE_BLOCK_DESCEND:
		return "descend";
	case TRACE_BLOCK_ASCEND:
		return "ascend";
	}
	return "loop";
}

static char *arena_alloc(size_t len)
{
	struct arena_block *b = itab.blocks;

	if (!b || b->used + len > ARENA_BLOCK) {
		size_t sz = len > ARENA_BLOCK ? len : ARENA_BLOCK;

		b = malloc(sizeof(*b) + sz);
		if (!b)
			abort();
		b->next = itab.blocks;
		b->used = 0;
		itab.blocks = b;
	}
	b->used += len;
	return b->data + b->used - len;
}

static void itab_grow(void)
{
	size_t ncap = itab.cap ? itab.cap * 2 : 4096;
	const char **ns = calloc(ncap, sizeof(*ns));
	uint64_t *nh = calloc(ncap, sizeof(*nh));

	if (!ns || !nh)
		abort();
	for (size_t i = 0; i < itab.cap; i++) {
		size_t j;

		if (!itab.slots[i])
			continue;
		for (j = itab.hashes[i] & (ncap - 1); ns[j]; j = (j + 1) & (ncap - 1))
			;
		ns[j] = itab.slots[i];
		nh[j] = itab.hashes[i];
	}
	free(itab.slots);
	free(itab.hashes);
	itab.slots = ns;
	itab.hashes = nh;
	itab.cap = ncap;
}

const char *trace_intern(const char *s, size_t len)
{
	uint64_t h = XXH3_64bits(s, len);
	size_t j;
	char *copy;

	if (itab.count * 2 >= itab.cap)
		itab_grow();
	for (j = h & (itab.cap - 1); itab.slots[j]; j = (j + 1) & (itab.cap - 1)) {
		if (itab.hashes[j] == h && strncmp(itab.slots[j], s, len) == 0 &&
		    itab.slots[j][len] == '\0')
			return itab.slots[j];
	}
	if (itab.bytes + len + 1 > INTERN_MAX_BYTES) {
		itab.dropped++;
		return "?";
	}
	copy = arena_alloc(len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	itab.slots[j] = copy;
	itab.hashes[j] = h;
	itab.count++;
	itab.bytes += len + 1;
	return copy;
}

const char *trace_intern_str(const char *s)
{
	return trace_intern(s, strlen(s));
}

uint64_t trace_intern_dropped(void)
{
	return itab.dropped;
}

void trace_intern_reset(void)
{
	while (itab.blocks) {
		struct arena_block *b = itab.blocks;

		itab.blocks = b->next;
		free(b);
	}
	free(itab.slots);
	free(itab.hashes);
	memset(&itab, 0, sizeof(itab));
}

uint64_t trace_event_key(const struct trace_event *ev, enum trace_key key)
{
	uint64_t h =
		XXH3_64bits_withSeed(ev->name, strlen(ev->name), 0x9e3779b97f4a7c15ULL ^ ev->kind);

	if (ev->kind == TRACE_BLOCK_BEGIN || ev->kind == TRACE_BLOCK_END ||
	    ev->kind == TRACE_HIDDEN) {
		uint64_t v[2] = {ev->count, (uint64_t)(uint16_t)ev->block};

		h = XXH3_64bits_withSeed(v, sizeof(v), h);
	}
	if (key == TRACE_KEY_ARGS) {
		if (ev->args)
			h = XXH3_64bits_withSeed(ev->args, strlen(ev->args), h + 1);
		if (ev->flags & TRACE_F_RET)
			h = XXH3_64bits_withSeed(&ev->ret, sizeof(ev->ret), h + 2);
		if (ev->errname)
			h = XXH3_64bits_withSeed(ev->errname, strlen(ev->errname), h + 3);
	}
	return h;
}

int trace_glob_match(const char *pattern, const char *name)
{
	return fnmatch(pattern, name, 0) == 0;
}

char *trace_fmt_dur(uint64_t ns, char *buf, size_t len)
{
	if (ns < 1000)
		snprintf(buf, len, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.3f us", (double)ns / 1e3);
	else if (ns < TRACE_NS)
		snprintf(buf, len, "%.3f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.3f s", (double)ns / 1e9);
	return buf;
}
