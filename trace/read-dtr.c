/*
 * read-dtr.c - reads libdoppeltrace traces (tracer-glue/runtime/dtr-format.h) into
 * TRACE_ENTER / TRACE_EXIT / TRACE_LOST events, symbolised from the ELF files of
 * the mappings the runtime recorded.
 *
 * Threads write their chunks independently, so a file holds each thread's
 * records in order but threads interleave chunk by chunk, and a quiet
 * thread's chunk is written long after its first record. A regular file is
 * first scanned header by header: INFO and MAPS chunks are applied, and every
 * EVENTS chunk is indexed by the time it was started. Chunks are then loaded
 * (pread) in that order into a heap that returns the earliest record, and a
 * chunk is loaded as soon as its start is not later than the heap's next
 * record: events come out exactly in time order, holding only the chunks
 * whose time spans overlap (about one per thread). The index costs 48 bytes
 * per 64 KiB chunk (beyond 16 Mi chunks, file order is used).
 *
 * A pipe cannot be scanned twice: the reader keeps a window of decoded chunks
 * (reorder_chunks, default 256, and at most 64 MiB) and returns the earliest
 * record among them; a chunk more than a window late gives events out of
 * order (counted in stats.late).
 *
 * Processes: each INFO chunk starts a process image (pid, clock, wall-clock
 * offset, executable); MAPS chunks add its mappings, including those written
 * at exit (libraries loaded with dlopen), so they symbolise earlier records.
 *
 * Time: EVENTS headers bracket their records with two (raw, monotonic ns)
 * pairs; raw TSC ticks are interpolated between them, then moved to the wall
 * clock with the image's offset, so dtr and strace times line up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tracer-glue/runtime/dtr-format.h"
#include "trace/imap.h"
#include "trace/reader-int.h"
#include "trace/sym-int.h"

#define MAX_HELD_BYTES (64u << 20)
#define MAX_MAPS 4096
#define MAX_MODULES 1024
#define MAX_THREADS 65536
#define MAX_IMAGES 65536
#define CACHE_SIZE 8192
#define MAX_INDEX (16u << 20) /* chunks indexed (1 TiB of trace); more: file order */
#define NO_TS UINT64_MAX

struct mapping {
	uint64_t start, end, off;
	const char *path;
	struct module *mod;
};

struct module {
	const char *path;	  /* interned */
	const char *base;	  /* its file name, for unresolved addresses */
	struct trace_symtab *sym; /* NULL when it could not be read */
	int tried;
};

struct image {
	int32_t pid;
	uint64_t info_off;
	int tsc;
	int64_t rt_off;
	const char *exe;
	struct mapping *maps; /* sorted by start */
	size_t nmaps;
	struct image *next;
};

struct dthread {
	uint64_t *ts; /* enter time by depth, NO_TS when unknown */
	uint32_t cap;
};

struct dchunk {
	struct dtr_chunk_hdr h;
	struct dtr_record *rec;
	uint32_t n, i;
	uint64_t order; /* load order: ties and same-thread order */
	uint64_t next_ts;
	double slope;
	int tsc;
	int64_t rt_off;
	struct image *img;
};

/* An EVENTS chunk found by the prescan of a regular file. */
struct cindex {
	uint64_t off;	/* of its header */
	uint64_t begin; /* wall-clock time its first record cannot precede */
	struct dtr_chunk_hdr h;
	struct image *img;
};

struct dtr_reader {
	struct trace_reader base;
	struct trace_input in;
	int eof;
	int prescanned;
	/* a regular file: chunks are loaded by start time, not file order */
	int indexed;
	int fd;
	struct cindex *index;
	size_t nindex, next_index, heapcap;
	unsigned window;
	size_t held_bytes;
	uint64_t loads;
	uint64_t last_ts;
	struct dchunk **heap;
	size_t nheap;
	struct image *images;
	size_t nimages;
	struct imap current; /* pid -> struct image * (the latest INFO seen) */
	struct imap modules; /* interned path -> struct module * */
	size_t nmodules;
	struct imap threads; /* tid -> struct dthread * */
	const char *binary;  /* --binary: symbols for the main executable */
	struct {
		const struct image *img;
		uint64_t addr;
		const char *name;
	} cache[CACHE_SIZE];
	char namebuf[512];
};

/* ---------------------------------------------------------- images, maps */

static struct image *image_new(struct dtr_reader *dr, int32_t pid, uint64_t off)
{
	struct image *im;

	if (dr->nimages >= MAX_IMAGES)
		return NULL;
	im = calloc(1, sizeof(*im));
	if (!im)
		return NULL;
	im->pid = pid;
	im->info_off = off;
	im->tsc = 1;
	im->next = dr->images;
	dr->images = im;
	dr->nimages++;
	return im;
}

static struct image *image_find(struct dtr_reader *dr, int32_t pid, uint64_t off)
{
	for (struct image *im = dr->images; im; im = im->next)
		if (im->pid == pid && im->info_off == off)
			return im;
	return NULL;
}

static struct image *image_current(struct dtr_reader *dr, int32_t pid)
{
	uint64_t *v = imap_get(&dr->current, (uint64_t)(uint32_t)pid);
	struct image *im, *oldest = NULL;

	if (v)
		return (struct image *)(uintptr_t)*v;
	/* no INFO for this pid yet: one recorded for it later, else the first one */
	for (im = dr->images; im; im = im->next) {
		if (im->pid == pid)
			return im;
		oldest = im;
	}
	return oldest;
}

static void parse_info(struct image *im, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t n = (size_t)(le - p);

		if (n > 6 && strncmp(p, "clock=", 6) == 0)
			im->tsc = n >= 9 && strncmp(p + 6, "tsc", 3) == 0;
		else if (n > 19 && strncmp(p, "realtime_offset_ns=", 19) == 0) {
			char num[32];
			size_t k = n - 19 < sizeof(num) - 1 ? n - 19 : sizeof(num) - 1;

			memcpy(num, p + 19, k);
			num[k] = '\0';
			im->rt_off = strtoll(num, NULL, 10);
		} else if (n > 4 && strncmp(p, "exe=", 4) == 0)
			im->exe = trace_intern(p + 4, n - 4);
		p = le + 1;
	}
}

static void add_mapping(struct image *im, uint64_t start, uint64_t end, uint64_t off,
			const char *path)
{
	size_t i;
	struct mapping *nm;

	for (i = 0; i < im->nmaps; i++) {
		if (im->maps[i].start == start) {
			im->maps[i].end = end;
			im->maps[i].off = off;
			im->maps[i].path = path;
			im->maps[i].mod = NULL;
			return;
		}
		if (im->maps[i].start > start)
			break;
	}
	if (im->nmaps >= MAX_MAPS)
		return;
	nm = realloc(im->maps, (im->nmaps + 1) * sizeof(*nm));
	if (!nm)
		return;
	im->maps = nm;
	memmove(&im->maps[i + 1], &im->maps[i], (im->nmaps - i) * sizeof(*nm));
	im->maps[i].start = start;
	im->maps[i].end = end;
	im->maps[i].off = off;
	im->maps[i].path = path;
	im->maps[i].mod = NULL;
	im->nmaps++;
}

/* "start-end perms offset dev inode path" lines */
static void parse_maps(struct image *im, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		char line[4352];
		size_t n = (size_t)(le - p);
		unsigned long long s, e, off;
		int pos = 0;

		if (n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = '\0';
			if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &s, &e, &off, &pos) ==
				    3 &&
			    pos > 0 && line[pos] == '/' && e > s) {
				add_mapping(im, s, e, off, trace_intern_str(line + pos));
			}
		}
		p = le + 1;
	}
}

static struct module *module_get(struct dtr_reader *dr, const char *path, const char *exe)
{
	uint64_t *v = imap_get(&dr->modules, (uint64_t)(uintptr_t)path);
	struct module *m;
	char err[256];

	if (v)
		return (struct module *)(uintptr_t)*v;
	if (dr->nmodules >= MAX_MODULES)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->path = path;
	m->base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (imap_put(&dr->modules, (uint64_t)(uintptr_t)path, (uint64_t)(uintptr_t)m) < 0) {
		free(m);
		return NULL;
	}
	dr->nmodules++;
	if (trace_symtab_load(dr->binary && exe == path ? dr->binary : path, &m->sym, err,
			      sizeof(err)) < 0)
		m->sym = NULL;
	return m;
}

static const char *resolve(struct dtr_reader *dr, const struct image *im, uint64_t addr)
{
	size_t slot = (size_t)((addr >> 4) ^ (uintptr_t)im) & (CACHE_SIZE - 1);
	const char *name = NULL;
	size_t lo = 0, hi;
	struct mapping *mp = NULL;

	if (dr->cache[slot].img == im && dr->cache[slot].addr == addr && dr->cache[slot].name)
		return dr->cache[slot].name;
	if (im && im->nmaps) {
		hi = im->nmaps;
		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;

			if (im->maps[mid].start <= addr)
				lo = mid;
			else
				hi = mid;
		}
		if (addr >= im->maps[lo].start && addr < im->maps[lo].end)
			mp = &im->maps[lo];
	}
	if (mp) {
		if (!mp->mod)
			mp->mod = module_get(dr, mp->path, im->exe);
		if (mp->mod && mp->mod->sym) {
			int64_t bias = trace_symtab_bias(mp->mod->sym, mp->off);
			uint64_t vaddr = addr - mp->start + mp->off + (uint64_t)bias;

			name = trace_symtab_lookup(mp->mod->sym, vaddr);
		}
		if (!name) {
			snprintf(dr->namebuf, sizeof(dr->namebuf), "%s+0x%llx",
				 mp->mod ? mp->mod->base : mp->path,
				 (unsigned long long)(addr - mp->start + mp->off));
			name = trace_intern_str(dr->namebuf);
			dr->base.st.unresolved++;
		}
	} else {
		snprintf(dr->namebuf, sizeof(dr->namebuf), "0x%llx", (unsigned long long)addr);
		name = trace_intern_str(dr->namebuf);
		dr->base.st.unresolved++;
	}
	dr->cache[slot].img = im;
	dr->cache[slot].addr = addr;
	dr->cache[slot].name = name;
	return name;
}

/* ------------------------------------------------------------- prescan */

static void handle_meta(struct dtr_reader *dr, const struct dtr_chunk_hdr *h, const char *payload,
			uint64_t off)
{
	struct image *im;

	if (h->type == DTR_CHUNK_INFO) {
		im = image_find(dr, (int32_t)h->pid, off);
		if (!im) {
			im = image_new(dr, (int32_t)h->pid, off);
			if (!im)
				return;
			parse_info(im, payload, h->size);
		}
		imap_put(&dr->current, h->pid, (uint64_t)(uintptr_t)im);
	} else if (h->type == DTR_CHUNK_MAPS) {
		uint64_t *v = imap_get(&dr->current, h->pid);

		im = v ? (struct image *)(uintptr_t)*v : NULL;
		if (!im) {
			im = image_new(dr, (int32_t)h->pid, 0);
			if (!im)
				return;
			imap_put(&dr->current, h->pid, (uint64_t)(uintptr_t)im);
		}
		parse_maps(im, payload, h->size);
	}
}

static int hdr_valid(const struct dtr_chunk_hdr *h)
{
	return h->magic == DTR_MAGIC && h->hdr_size >= DTR_HDR_SIZE && h->hdr_size <= 4096 &&
	       h->size <= DTR_MAX_PAYLOAD && h->type >= DTR_CHUNK_INFO &&
	       h->type <= DTR_CHUNK_EVENTS;
}

static int cindex_cmp(const void *a, const void *b)
{
	const struct cindex *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* A regular file: collect INFO and MAPS chunks first (headers only), and an
 * index of the EVENTS chunks, to load them in order of their start time. */
static void prescan(struct dtr_reader *dr, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct dtr_chunk_hdr h;
	char *payload = NULL;
	uint64_t off = 0;
	size_t cap = 0;
	int clean = 0;

	if (fd < 0)
		return;
	/* headers only: one pread each, the payloads are not read */
	for (;;) {
		ssize_t got = pread(fd, &h, sizeof(h), (off_t)off);

		if (got == 0) {
			clean = 1; /* every chunk was seen */
			break;
		}
		if (got != (ssize_t)sizeof(h) || !hdr_valid(&h))
			break;
		if (h.type == DTR_CHUNK_INFO || h.type == DTR_CHUNK_MAPS) {
			char *np = realloc(payload, h.size + 1);

			if (!np)
				break;
			payload = np;
			if (pread(fd, payload, h.size, (off_t)(off + h.hdr_size)) !=
			    (ssize_t)h.size)
				break;
			handle_meta(dr, &h, payload, off);
		} else if (h.size && h.size % sizeof(struct dtr_record) == 0 &&
			   dr->nindex < MAX_INDEX) {
			uint64_t *cur = imap_get(&dr->current, h.pid);

			if (dr->nindex == cap) {
				size_t nc = cap ? cap * 2 : 1024;
				struct cindex *ni = realloc(dr->index, nc * sizeof(*ni));

				if (!ni)
					break;
				dr->index = ni;
				cap = nc;
			}
			dr->index[dr->nindex].off = off;
			dr->index[dr->nindex].h = h;
			dr->index[dr->nindex].img = cur ? (struct image *)(uintptr_t)*cur : NULL;
			dr->nindex++;
		} else if (h.size && h.size % sizeof(struct dtr_record) == 0) {
			break; /* too many chunks to index: read in file order */
		}
		off += h.hdr_size + h.size;
	}
	free(payload);
	imap_free(&dr->current); /* the main pass follows the file again */
	dr->prescanned = 1;
	if (clean && dr->nindex) {
		dr->fd = fd;
		{
			for (size_t i = 0; i < dr->nindex; i++) {
				struct cindex *ci = &dr->index[i];

				if (!ci->img)
					ci->img = image_current(dr, (int32_t)ci->h.pid);
				ci->begin =
					ci->h.ns_begin + (uint64_t)(ci->img ? ci->img->rt_off : 0);
			}
			qsort(dr->index, dr->nindex, sizeof(*dr->index), cindex_cmp);
			dr->indexed = 1;
			return;
		}
	}
	close(fd);
	free(dr->index);
	dr->index = NULL;
	dr->nindex = 0;
}

/* ---------------------------------------------------------------- heap */

static int chunk_before(const struct dchunk *a, const struct dchunk *b)
{
	if (a->next_ts != b->next_ts)
		return a->next_ts < b->next_ts;
	return a->order < b->order;
}

static void heap_up(struct dtr_reader *dr, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!chunk_before(dr->heap[i], dr->heap[p]))
			break;
		struct dchunk *t = dr->heap[i];

		dr->heap[i] = dr->heap[p];
		dr->heap[p] = t;
		i = p;
	}
}

static void heap_down(struct dtr_reader *dr, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < dr->nheap && chunk_before(dr->heap[l], dr->heap[m]))
			m = l;
		if (r < dr->nheap && chunk_before(dr->heap[r], dr->heap[m]))
			m = r;
		if (m == i)
			break;
		struct dchunk *t = dr->heap[i];

		dr->heap[i] = dr->heap[m];
		dr->heap[m] = t;
		i = m;
	}
}

static uint64_t chunk_time(const struct dchunk *c, uint64_t raw)
{
	uint64_t mono;

	if (c->tsc) {
		double d = (double)(int64_t)(raw - c->h.raw_begin) * c->slope;

		if (d > 9e18)
			d = 9e18;
		else if (d < -9e18)
			d = -9e18;
		mono = c->h.ns_begin + (uint64_t)(int64_t)d;
	} else {
		mono = raw;
	}
	return mono + (uint64_t)c->rt_off;
}

static void chunk_free(struct dtr_reader *dr, struct dchunk *c)
{
	dr->held_bytes -= c->h.size;
	free(c->rec);
	free(c);
}

/* Read the next chunk: EVENTS go to the heap, INFO and MAPS are applied.
 * Returns 1 (a chunk was read), 0 at EOF, <0 on error. */
static int load_chunk(struct dtr_reader *dr)
{
	struct dtr_chunk_hdr h;
	uint64_t off = dr->in.consumed;
	int rc;

	/* look at the header before taking it, to resynchronise byte by byte */
	while (dr->in.len - dr->in.pos < sizeof(h)) {
		size_t before = dr->in.len - dr->in.pos;

		rc = trace_input_fill(&dr->in);
		if (rc < 0)
			return rc;
		if (dr->in.len - dr->in.pos == before) {
			if (before)
				dr->base.st
					.skipped++; /* a truncated last chunk (a killed process) */
			dr->in.consumed += before;
			dr->in.pos = dr->in.len;
			return 0;
		}
	}
	memcpy(&h, dr->in.buf + dr->in.pos, sizeof(h));
	if (!hdr_valid(&h)) {
		/* not a chunk here: find the next one */
		dr->base.st.skipped++;
		for (;;) {
			uint32_t magic;

			dr->in.pos++;
			dr->in.consumed++;
			if (dr->in.len - dr->in.pos < 4) {
				rc = trace_input_fill(&dr->in);
				if (rc <= 0 || dr->in.len - dr->in.pos < 4) {
					dr->in.consumed += dr->in.len - dr->in.pos;
					dr->in.pos = dr->in.len;
					return rc < 0 ? rc : 0;
				}
			}
			memcpy(&magic, dr->in.buf + dr->in.pos, 4);
			if (magic == DTR_MAGIC)
				return 1;
		}
	}
	dr->in.pos += sizeof(h);
	dr->in.consumed += sizeof(h);
	if (h.hdr_size > DTR_HDR_SIZE && trace_input_skip(&dr->in, h.hdr_size - DTR_HDR_SIZE) <= 0)
		return 0;
	if (h.type != DTR_CHUNK_EVENTS) {
		char *payload = malloc(h.size + 1);

		if (!payload)
			return -ENOMEM;
		rc = trace_input_read(&dr->in, payload, h.size);
		if (rc > 0 || h.size == 0) {
			if (!(dr->prescanned && h.type == DTR_CHUNK_MAPS))
				handle_meta(dr, &h, payload, off);
			else if (h.type == DTR_CHUNK_MAPS && !imap_get(&dr->current, h.pid))
				handle_meta(dr, &h, payload, off);
		}
		free(payload);
		return rc < 0 ? 0 : 1;
	}
	if (h.size % sizeof(struct dtr_record) != 0) {
		dr->base.st.skipped++;
		return trace_input_skip(&dr->in, h.size) > 0 ? 1 : 0;
	}
	struct dchunk *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->h = h;
	c->n = h.size / (uint32_t)sizeof(struct dtr_record);
	c->rec = malloc(h.size ? h.size : 1);
	if (!c->rec) {
		free(c);
		return -ENOMEM;
	}
	if (h.size && trace_input_read(&dr->in, c->rec, h.size) <= 0) {
		dr->base.st.skipped++;
		free(c->rec);
		free(c);
		return 0;
	}
	if (c->n == 0) {
		free(c->rec);
		free(c);
		return 1;
	}
	c->img = image_current(dr, (int32_t)h.pid);
	c->tsc = c->img ? c->img->tsc : 0;
	c->rt_off = c->img ? c->img->rt_off : 0;
	if (h.raw_end > h.raw_begin && h.ns_end >= h.ns_begin)
		c->slope = (double)(h.ns_end - h.ns_begin) / (double)(h.raw_end - h.raw_begin);
	c->order = dr->loads++;
	c->next_ts = chunk_time(c, c->rec[0].time);
	dr->held_bytes += h.size;
	dr->heap[dr->nheap++] = c;
	heap_up(dr, dr->nheap - 1);
	return 1;
}

/* Indexed mode: load the chunk at index i with pread. */
static int load_indexed(struct dtr_reader *dr, const struct cindex *ci)
{
	struct dchunk *c;
	ssize_t got;

	if (dr->nheap == dr->heapcap) {
		size_t nc = dr->heapcap * 2;
		struct dchunk **nh = realloc(dr->heap, nc * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		dr->heap = nh;
		dr->heapcap = nc;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h = ci->h;
	c->n = ci->h.size / (uint32_t)sizeof(struct dtr_record);
	c->rec = malloc(ci->h.size);
	if (!c->rec) {
		free(c);
		return -ENOMEM;
	}
	got = pread(dr->fd, c->rec, ci->h.size, (off_t)(ci->off + ci->h.hdr_size));
	if (got != (ssize_t)ci->h.size) {
		dr->base.st.skipped++;
		free(c->rec);
		free(c);
		return 0;
	}
	dr->base.st.bytes += ci->h.hdr_size + ci->h.size;
	c->img = ci->img;
	c->tsc = c->img ? c->img->tsc : 0;
	c->rt_off = c->img ? c->img->rt_off : 0;
	if (c->h.raw_end > c->h.raw_begin && c->h.ns_end >= c->h.ns_begin)
		c->slope = (double)(c->h.ns_end - c->h.ns_begin) /
			   (double)(c->h.raw_end - c->h.raw_begin);
	c->order = dr->loads++;
	c->next_ts = chunk_time(c, c->rec[0].time);
	dr->held_bytes += ci->h.size;
	dr->heap[dr->nheap++] = c;
	heap_up(dr, dr->nheap - 1);
	return 0;
}

static struct dthread *thread_get(struct dtr_reader *dr, int32_t tid)
{
	uint64_t *v = imap_get(&dr->threads, (uint64_t)(uint32_t)tid);
	struct dthread *t;

	if (v)
		return (struct dthread *)(uintptr_t)*v;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (imap_put(&dr->threads, (uint64_t)(uint32_t)tid, (uint64_t)(uintptr_t)t) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static void thread_set(struct dthread *t, unsigned depth, uint64_t ts)
{
	if (depth >= t->cap) {
		uint32_t nc = t->cap ? t->cap : 64;
		uint64_t *n;

		while (nc <= depth)
			nc *= 2;
		n = realloc(t->ts, nc * sizeof(*n));
		if (!n)
			return;
		for (uint32_t i = t->cap; i < nc; i++)
			n[i] = NO_TS;
		t->ts = n;
		t->cap = nc;
	}
	t->ts[depth] = ts;
}

static int dtr_next(struct trace_reader *r, struct trace_event *ev)
{
	struct dtr_reader *dr = (struct dtr_reader *)r;
	struct dchunk *c;
	struct dtr_record *rec;
	struct dthread *th;
	unsigned type, depth;
	int rc;

	/* indexed: every chunk that may hold the next record is loaded */
	while (dr->indexed && dr->next_index < dr->nindex &&
	       (dr->nheap == 0 || dr->index[dr->next_index].begin <= dr->heap[0]->next_ts)) {
		rc = load_indexed(dr, &dr->index[dr->next_index++]);
		if (rc < 0) {
			snprintf(r->err, sizeof(r->err), "reading libdoppeltrace data: %s",
				 strerror(-rc));
			return rc;
		}
	}
	while (!dr->indexed && !dr->eof && dr->nheap < dr->window &&
	       dr->held_bytes < MAX_HELD_BYTES) {
		rc = load_chunk(dr);
		if (rc < 0) {
			snprintf(r->err, sizeof(r->err), "reading libdoppeltrace data: %s",
				 strerror(-rc));
			return rc;
		}
		if (rc == 0)
			dr->eof = 1;
	}
	if (!dr->indexed)
		r->st.bytes = dr->in.consumed;
	if (dr->nheap == 0)
		return 0;
	c = dr->heap[0];
	rec = &c->rec[c->i];
	trace_event_init(ev);
	ev->pid = (int32_t)c->h.pid;
	ev->tid = (int32_t)c->h.tid;
	ev->ts = c->next_ts;
	type = dtr_rec_type(rec->word);
	depth = dtr_rec_depth(rec->word);
	ev->depth = (int32_t)depth;
	th = thread_get(dr, ev->tid);
	if (type == DTR_REC_LOST) {
		ev->kind = TRACE_LOST;
		ev->name = trace_intern_str("lost");
		ev->count = dtr_rec_addr(rec->word);
		r->st.lost += ev->count;
		if (th)
			for (uint32_t i = 0; i < th->cap; i++)
				th->ts[i] = NO_TS;
	} else {
		ev->addr = dtr_rec_addr(rec->word);
		ev->name = resolve(dr, c->img, ev->addr);
		if (type == DTR_REC_ENTER) {
			ev->kind = TRACE_ENTER;
			if (th)
				thread_set(th, depth, ev->ts);
		} else {
			ev->kind = TRACE_EXIT;
			if (th && depth < th->cap && th->ts[depth] != NO_TS &&
			    ev->ts >= th->ts[depth]) {
				ev->dur = ev->ts - th->ts[depth];
				ev->flags |= TRACE_F_DUR;
				th->ts[depth] = NO_TS;
			}
		}
	}
	if (ev->ts < dr->last_ts)
		r->st.late++;
	else
		dr->last_ts = ev->ts;
	if (++c->i < c->n) {
		c->next_ts = chunk_time(c, c->rec[c->i].time);
		heap_down(dr, 0);
	} else {
		dr->heap[0] = dr->heap[--dr->nheap];
		if (dr->nheap)
			heap_down(dr, 0);
		chunk_free(dr, c);
	}
	return 1;
}

static void dtr_close(struct trace_reader *r)
{
	struct dtr_reader *dr = (struct dtr_reader *)r;
	uint64_t k, v;

	while (dr->nheap)
		chunk_free(dr, dr->heap[--dr->nheap]);
	free(dr->heap);
	free(dr->index);
	if (dr->fd >= 0)
		close(dr->fd);
	while (dr->images) {
		struct image *im = dr->images;

		dr->images = im->next;
		free(im->maps);
		free(im);
	}
	for (size_t it = 0; imap_next(&dr->modules, &it, &k, &v);) {
		struct module *m = (struct module *)(uintptr_t)v;

		trace_symtab_free(m->sym);
		free(m);
	}
	for (size_t it = 0; imap_next(&dr->threads, &it, &k, &v);) {
		struct dthread *t = (struct dthread *)(uintptr_t)v;

		free(t->ts);
		free(t);
	}
	imap_free(&dr->modules);
	imap_free(&dr->threads);
	imap_free(&dr->current);
	trace_input_free(&dr->in);
	free(dr);
}

static const struct trace_reader_ops dtr_ops = {dtr_next, dtr_close};

int trace_dtr_open(struct trace_input *in, const char *path, const struct trace_read_opts *o,
		   struct trace_reader **out, char *err, size_t errlen)
{
	struct dtr_reader *dr = calloc(1, sizeof(*dr));

	if (!dr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dr->base.ops = &dtr_ops;
	dr->base.format = TRACE_FMT_DTR;
	dr->in = *in;
	dr->window = o && o->reorder_chunks ? o->reorder_chunks : 256;
	dr->heapcap = dr->window;
	dr->fd = -1;
	dr->heap = calloc(dr->window, sizeof(*dr->heap));
	if (!dr->heap) {
		free(dr);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dr->binary = o && o->binary ? trace_intern_str(o->binary) : NULL;
	imap_init(&dr->current, MAX_IMAGES);
	imap_init(&dr->modules, MAX_MODULES);
	imap_init(&dr->threads, MAX_THREADS);
	if (path)
		prescan(dr, path);
	*out = &dr->base;
	return 0;
}
