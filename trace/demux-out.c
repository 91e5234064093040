/*
 * demux-out.c - where demux's streams go (struct trace_demux_target): one
 * file per stream in a directory, sections of one text output, or only a
 * table of the streams.
 *
 * A directory may receive more streams than a process may keep files open:
 * at most max_open files are open at once, and when one more is needed the
 * least recently written is closed, to be reopened for appending when its
 * stream gets its next event. Sections are held in memory per stream
 * (open_memstream) until the stream ends, so that they come out whole; the
 * bytes held are bounded by max_memory.
 *
 * Ownership: trace_demux_out_new allocates; trace_demux_out_free frees it,
 * after the demux sink that used it (freeing the sink closes the streams
 * still open). Streams are allocated by the target's open and freed by its
 * close, both called by the demux sink. Single-threaded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "trace/trace.h"

#define DEFAULT_MAX_OPEN 256
#define TEXT_HEADER "# doppel-trace 1\n"

/* One open output stream. */
struct dout_stream {
	struct trace_stream_info si;
	struct trace_sink *writer;
	FILE *f;
	char *mem; /* sections: the stream's text so far */
	size_t memlen;
	char path[4200];
	uint64_t last_use;
};

struct trace_demux_out {
	struct trace_demux_target t; /* first: the target is the whole object */
	struct trace_demux_out_opts o;
	size_t open_files;
	uint64_t clock;
	size_t held;
	uint64_t sections;
	struct dout_stream **all; /* open streams, for the LRU */
	size_t nall, capall;
	/* closed streams, for the table */
	struct trace_stream_info *done;
	size_t ndone, capdone;
};

static void list_header(FILE *out)
{
	fprintf(out, "%6s %-10s %8s %8s %5s %9s %12s  %s\n", "ID", "KIND", "PID", "TID", "FD",
		"EVENTS", "DURATION", "ATTRIBUTES");
}

static void list_row(FILE *out, const struct trace_stream_info *si)
{
	char d[32];
	const char *attrs = strstr(si->attrs, " peer=");

	if (!attrs)
		attrs = strstr(si->attrs, " begin=");
	char tid[16];

	if (si->kind[0] == 'p' || si->kind[0] == 'c')
		snprintf(tid, sizeof(tid), "-");
	else
		snprintf(tid, sizeof(tid), "%d", si->tid);
	fprintf(out, "%6llu %-10s %8d %8s %5d %9llu %12s  %s\n", (unsigned long long)si->id,
		si->kind, si->pid, tid, si->fd, (unsigned long long)si->events,
		trace_fmt_dur(si->last_ts > si->first_ts ? si->last_ts - si->first_ts : 0, d,
			      sizeof(d)),
		attrs ? attrs + 1 : "");
}

static void list_write(FILE *out, const struct trace_stream_info *si, size_t n)
{
	list_header(out);
	for (size_t i = 0; i < n; i++)
		list_row(out, &si[i]);
}

static void lru_close_one(struct trace_demux_out *T)
{
	struct dout_stream *old = NULL;

	for (size_t i = 0; i < T->nall; i++)
		if (T->all[i]->f && (!old || T->all[i]->last_use < old->last_use))
			old = T->all[i];
	if (!old)
		return;
	fclose(old->f);
	old->f = NULL;
	T->open_files--;
}

static int ensure_file(struct trace_demux_out *T, struct dout_stream *o, const char *mode)
{
	if (o->f)
		return 0;
	if (T->open_files >= T->o.max_open)
		lru_close_one(T);
	o->f = fopen(o->path, mode);
	if (!o->f)
		return -errno;
	T->open_files++;
	if (o->writer)
		trace_text_writer_set_file(o->writer, o->f);
	return 0;
}

static void *t_open(struct trace_demux_target *t, const struct trace_stream_info *si)
{
	struct trace_demux_out *T = (struct trace_demux_out *)t;
	struct dout_stream *o = calloc(1, sizeof(*o));
	struct trace_event sev;

	if (!o)
		return NULL;
	o->si = *si;
	if (T->o.mode == TRACE_DEMUX_OUT_LIST)
		return o;
	if (T->o.mode == TRACE_DEMUX_OUT_DIR) {
		snprintf(o->path, sizeof(o->path), "%s/%s-%llu.dtt", T->o.dir, si->kind,
			 (unsigned long long)si->id);
		if (ensure_file(T, o, "we") < 0) {
			int e = errno;

			free(o);
			errno = e;
			return NULL;
		}
	} else {
		o->f = open_memstream(&o->mem, &o->memlen);
		if (!o->f) {
			free(o);
			return NULL;
		}
	}
	o->writer = trace_text_writer_new(o->f);
	if (!o->writer) {
		fclose(o->f);
		free(o->mem);
		free(o);
		errno = ENOMEM;
		return NULL;
	}
	trace_event_init(&sev);
	sev.kind = TRACE_STREAM;
	sev.name = si->kind;
	sev.extra = si->attrs;
	trace_sink_event(o->writer, &sev);
	if (T->nall == T->capall) {
		size_t nc = T->capall ? T->capall * 2 : 64;
		struct dout_stream **na = realloc(T->all, nc * sizeof(*na));

		if (!na) {
			trace_sink_free(o->writer);
			fclose(o->f);
			free(o->mem);
			free(o);
			errno = ENOMEM;
			return NULL;
		}
		T->all = na;
		T->capall = nc;
	}
	T->all[T->nall++] = o;
	return o;
}

static int t_event(struct trace_demux_target *t, void *h, const struct trace_event *ev)
{
	struct trace_demux_out *T = (struct trace_demux_out *)t;
	struct dout_stream *o = h;
	int rc;

	if (T->o.mode == TRACE_DEMUX_OUT_LIST)
		return 0;
	o->last_use = ++T->clock;
	if (T->o.mode == TRACE_DEMUX_OUT_DIR && (rc = ensure_file(T, o, "ae")) < 0)
		return rc;
	rc = trace_sink_event(o->writer, ev);
	if (rc < 0)
		return rc;
	if (T->o.mode == TRACE_DEMUX_OUT_SECTIONS) {
		size_t before = o->memlen;

		fflush(o->f);
		T->held += o->memlen - before;
		if (T->held > T->o.max_memory)
			return -EFBIG;
	}
	return 0;
}

static void forget(struct trace_demux_out *T, struct dout_stream *o)
{
	for (size_t i = 0; i < T->nall; i++) {
		if (T->all[i] == o) {
			T->all[i] = T->all[--T->nall];
			break;
		}
	}
}

static int t_close(struct trace_demux_target *t, void *h, const struct trace_stream_info *si)
{
	struct trace_demux_out *T = (struct trace_demux_out *)t;
	struct dout_stream *o = h;
	int rc = 0;

	if (T->ndone == T->capdone) {
		size_t nc = T->capdone ? T->capdone * 2 : 256;
		struct trace_stream_info *nd = realloc(T->done, nc * sizeof(*nd));

		if (nd) {
			T->done = nd;
			T->capdone = nc;
		}
	}
	if (T->ndone < T->capdone)
		T->done[T->ndone++] = *si;
	if (T->o.mode == TRACE_DEMUX_OUT_LIST) {
		free(o);
		return 0;
	}
	if (T->o.mode == TRACE_DEMUX_OUT_DIR)
		ensure_file(T, o, "ae");
	if (o->writer && o->f)
		trace_sink_end(o->writer);
	trace_sink_free(o->writer);
	if (o->f) {
		if (fclose(o->f) != 0)
			rc = -errno;
		if (T->o.mode == TRACE_DEMUX_OUT_DIR)
			T->open_files--;
	}
	if (T->o.mode == TRACE_DEMUX_OUT_SECTIONS && o->mem) {
		const char *text = o->mem;
		size_t len = o->memlen, hl = strlen(TEXT_HEADER);

		/* one header for the whole output */
		if (T->sections++ && len > hl && strncmp(text, TEXT_HEADER, hl) == 0) {
			text += hl;
			len -= hl;
		}
		if (fwrite(text, 1, len, T->o.out) != len)
			rc = -EIO;
		T->held -= o->memlen < T->held ? o->memlen : T->held;
	}
	free(o->mem);
	forget(T, o);
	free(o);
	return rc;
}

/* A directory of streams may need more open files than the soft limit. */
static void raise_file_limit(size_t max_open)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_open + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int trace_demux_out_new(const struct trace_demux_out_opts *o, struct trace_demux_out **out,
			char *err, size_t errlen)
{
	struct trace_demux_out *T;

	*out = NULL;
	if (o->mode == TRACE_DEMUX_OUT_DIR && mkdir(o->dir, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;

		snprintf(err, errlen, "cannot create %s: %s", o->dir, strerror(errno));
		return rc;
	}
	T = calloc(1, sizeof(*T));
	if (!T) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	T->t.open = t_open;
	T->t.event = t_event;
	T->t.close = t_close;
	T->o = *o;
	if (!T->o.max_open)
		T->o.max_open = DEFAULT_MAX_OPEN;
	if (T->o.mode == TRACE_DEMUX_OUT_DIR)
		raise_file_limit(T->o.max_open);
	*out = T;
	return 0;
}

struct trace_demux_target *trace_demux_out_target(struct trace_demux_out *d)
{
	return &d->t;
}

int trace_demux_out_over_memory(const struct trace_demux_out *d)
{
	return d->held > d->o.max_memory;
}

static int info_cmp(const void *a, const void *b)
{
	const struct trace_stream_info *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

void trace_demux_out_finish(struct trace_demux_out *d)
{
	if (d->ndone)
		qsort(d->done, d->ndone, sizeof(*d->done), info_cmp);
	if (d->o.mode == TRACE_DEMUX_OUT_LIST) {
		list_write(d->o.out, d->done, d->ndone);
	} else if (d->o.mode == TRACE_DEMUX_OUT_DIR) {
		char path[4200];
		FILE *idx;

		snprintf(path, sizeof(path), "%s/streams.txt", d->o.dir);
		idx = fopen(path, "we");
		if (idx) {
			list_write(idx, d->done, d->ndone);
			fclose(idx);
		}
	}
}

void trace_demux_out_free(struct trace_demux_out *d)
{
	if (!d)
		return;
	free(d->done);
	free(d->all);
	free(d);
}
