/*
 * demux.c - Flowdar's demultiplexing primitive: split one trace into the
 * streams it interleaves.
 *
 *   thread      one stream per thread (pid, tid)
 *   process     one per process
 *   connection  one per socket's lifetime in a process: from the call that
 *               returned it (accept, accept4, socket) or its first use, to its
 *               close; only calls on that descriptor
 *   request     as the syscall dataset delimits requests: from accept/accept4
 *               of a client socket to its close, with everything the thread
 *               did in between. A thread serving several connections at once
 *               (an event loop) has its events sent to the request of the
 *               descriptor they use, and descriptor-less events (opening the
 *               file to serve, writing the log) to the request it last worked on.
 *   rule        a thread's events from one matching --begin to the matching
 *               --end (names, shell patterns); without --end, the --begin
 *               call's own subtree
 *
 * Streams go to a target (demux-out.c: files in a directory, sections of one
 * output, a list). At most max_streams are open at once; events of streams beyond that are
 * dropped and counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/imap.h"
#include "trace/trace.h"

struct dstream {
	struct trace_stream_info si;
	void *h;
	uint64_t key;
	int32_t end_depth; /* rule: depth of the begin call */
};

struct demux {
	struct trace_sink base;
	struct trace_demux_opts o;
	struct trace_demux_target *tgt;
	struct imap streams; /* key -> struct dstream * */
	struct imap current; /* request: thread -> key of its current request */
	uint64_t next_id;
	struct trace_demux_stats st;
	int err;
};

static uint64_t thread_key(const struct trace_event *ev)
{
	return (uint64_t)(uint32_t)ev->tid | ((uint64_t)(uint32_t)ev->pid << 32);
}

static uint64_t fd_key(int32_t pid, int32_t fd)
{
	return (uint64_t)(uint32_t)fd | ((uint64_t)(uint32_t)pid << 32);
}

/* Indexed by enum trace_demux_by. */
static const char *const by_names[] = {"thread", "process", "connection", "request", "rule"};

int trace_demux_parse_by(const char *text, enum trace_demux_by *out)
{
	for (size_t i = 0; i < sizeof(by_names) / sizeof(by_names[0]); i++) {
		if (strcmp(text, by_names[i]) == 0) {
			*out = (enum trace_demux_by)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *trace_demux_by_name(enum trace_demux_by by)
{
	return (size_t)by < sizeof(by_names) / sizeof(by_names[0]) ? by_names[by] : "?";
}

static int is_socket_path(const char *p)
{
	return p && (strncmp(p, "TCP", 3) == 0 || strncmp(p, "UDP", 3) == 0 ||
		     strncmp(p, "UNIX", 4) == 0 || strncmp(p, "socket:", 7) == 0 ||
		     strncmp(p, "SCTP", 4) == 0);
}

static int is_accept(const struct trace_event *ev)
{
	return ev->kind == TRACE_SYSCALL && (ev->flags & TRACE_F_RET) && ev->ret >= 0 &&
	       (strcmp(ev->name, "accept4") == 0 || strcmp(ev->name, "accept") == 0);
}

static int is_close(const struct trace_event *ev)
{
	return ev->kind == TRACE_SYSCALL && ev->fd >= 0 && strcmp(ev->name, "close") == 0;
}

static struct dstream *stream_open(struct demux *D, uint64_t key, const struct trace_event *ev,
				   int32_t fd, const char *peer)
{
	struct dstream *s;
	int n;

	if (D->streams.count >= D->o.max_streams) {
		D->st.streams_dropped++;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->key = key;
	s->si.id = ++D->next_id;
	s->si.kind = trace_demux_by_name(D->o.by);
	s->si.pid = ev->pid;
	s->si.tid = ev->tid;
	s->si.fd = fd;
	s->si.first_ts = ev->ts;
	s->end_depth = ev->depth;
	n = snprintf(s->si.attrs, sizeof(s->si.attrs), "id=%llu pid=%d",
		     (unsigned long long)s->si.id, ev->pid);
	if (D->o.by != TRACE_BY_PROCESS && D->o.by != TRACE_BY_CONNECTION && n > 0 &&
	    (size_t)n < sizeof(s->si.attrs))
		n += snprintf(s->si.attrs + n, sizeof(s->si.attrs) - (size_t)n, " tid=%d", ev->tid);
	if (fd >= 0 && n > 0 && (size_t)n < sizeof(s->si.attrs))
		n += snprintf(s->si.attrs + n, sizeof(s->si.attrs) - (size_t)n, " fd=%d", fd);
	if (ev->prog && n > 0 && (size_t)n < sizeof(s->si.attrs))
		n += snprintf(s->si.attrs + n, sizeof(s->si.attrs) - (size_t)n, " prog=%s",
			      ev->prog);
	if (peer && *peer && n > 0 && (size_t)n < sizeof(s->si.attrs))
		snprintf(s->si.attrs + n, sizeof(s->si.attrs) - (size_t)n, " peer=%s", peer);
	if (D->o.by == TRACE_BY_RULE && n > 0 && (size_t)n < sizeof(s->si.attrs))
		snprintf(s->si.attrs + n, sizeof(s->si.attrs) - (size_t)n, " begin=%s", ev->name);
	s->h = D->tgt->open(D->tgt, &s->si);
	if (!s->h) {
		snprintf(D->base.err, sizeof(D->base.err), "demux: cannot open stream %llu: %s",
			 (unsigned long long)s->si.id, strerror(errno ? errno : EIO));
		D->err = -(errno ? errno : EIO);
		free(s);
		return NULL;
	}
	if (imap_put(&D->streams, key, (uint64_t)(uintptr_t)s) < 0) {
		D->tgt->close(D->tgt, s->h, &s->si);
		free(s);
		D->st.streams_dropped++;
		return NULL;
	}
	D->st.streams++;
	return s;
}

static struct dstream *stream_get(struct demux *D, uint64_t key)
{
	uint64_t *v = imap_get(&D->streams, key);

	return v ? (struct dstream *)(uintptr_t)*v : NULL;
}

static void stream_route(struct demux *D, struct dstream *s, const struct trace_event *ev)
{
	int rc;

	if (D->err)
		return;
	rc = D->tgt->event(D->tgt, s->h, ev);
	if (rc < 0) {
		D->err = rc;
		snprintf(D->base.err, sizeof(D->base.err), "demux: writing stream %llu: %s",
			 (unsigned long long)s->si.id, strerror(-rc));
		return;
	}
	s->si.events++;
	s->si.last_ts = ev->ts;
	D->st.events_routed++;
}

static void stream_close(struct demux *D, struct dstream *s)
{
	int rc;

	imap_del(&D->streams, s->key);
	rc = D->tgt->close(D->tgt, s->h, &s->si);
	if (rc < 0 && !D->err) {
		D->err = rc;
		snprintf(D->base.err, sizeof(D->base.err), "demux: closing stream %llu: %s",
			 (unsigned long long)s->si.id, strerror(-rc));
	}
	free(s);
}

static void unrouted(struct demux *D)
{
	D->st.events_unrouted++;
}

static void by_request(struct demux *D, const struct trace_event *ev)
{
	struct dstream *s = NULL;
	uint64_t *cur;

	if (is_accept(ev)) {
		uint64_t key = fd_key(ev->pid, (int32_t)ev->ret);

		s = stream_get(D, key);
		if (s)
			stream_close(D, s); /* a descriptor reused without a close we saw */
		s = stream_open(D, key, ev, (int32_t)ev->ret, ev->retpath);
		if (!s) {
			D->st.events_dropped++;
			return;
		}
		stream_route(D, s, ev);
		imap_put(&D->current, thread_key(ev), key);
		return;
	}
	if (ev->kind == TRACE_SYSCALL && ev->fd >= 0)
		s = stream_get(D, fd_key(ev->pid, ev->fd));
	if (s) {
		imap_put(&D->current, thread_key(ev), s->key);
	} else {
		cur = imap_get(&D->current, thread_key(ev));
		if (cur)
			s = stream_get(D, *cur);
	}
	if (!s) {
		unrouted(D);
		return;
	}
	stream_route(D, s, ev);
	if (is_close(ev) && ev->fd == s->si.fd && ev->pid == s->si.pid) {
		cur = imap_get(&D->current, thread_key(ev));
		if (cur && *cur == s->key)
			imap_del(&D->current, thread_key(ev));
		stream_close(D, s);
	}
}

static void by_connection(struct demux *D, const struct trace_event *ev)
{
	struct dstream *s;
	int32_t fd = -1;
	const char *path = NULL;

	if (ev->kind != TRACE_SYSCALL) {
		unrouted(D);
		return;
	}
	if ((ev->flags & TRACE_F_RETFD) && ev->ret >= 0 &&
	    (is_socket_path(ev->retpath) || is_accept(ev) || strcmp(ev->name, "socket") == 0)) {
		uint64_t key = fd_key(ev->pid, (int32_t)ev->ret);

		s = stream_get(D, key);
		if (s)
			stream_close(D, s);
		s = stream_open(D, key, ev, (int32_t)ev->ret, ev->retpath);
		if (s)
			stream_route(D, s, ev);
		else
			D->st.events_dropped++;
		return;
	}
	fd = ev->fd;
	path = ev->fdpath;
	if (fd < 0) {
		unrouted(D);
		return;
	}
	s = stream_get(D, fd_key(ev->pid, fd));
	if (!s) {
		if (!is_socket_path(path)) {
			unrouted(D);
			return;
		}
		/* a socket that was open before the trace began */
		s = stream_open(D, fd_key(ev->pid, fd), ev, fd, path);
		if (!s) {
			D->st.events_dropped++;
			return;
		}
	}
	stream_route(D, s, ev);
	if (is_close(ev))
		stream_close(D, s);
}

static void by_rule(struct demux *D, const struct trace_event *ev)
{
	uint64_t key = thread_key(ev);
	struct dstream *s = stream_get(D, key);

	if (!s) {
		if ((ev->kind == TRACE_ENTER || ev->kind == TRACE_SYSCALL) &&
		    trace_glob_match(D->o.begin, ev->name)) {
			s = stream_open(D, key, ev, -1, NULL);
			if (!s) {
				D->st.events_dropped++;
				return;
			}
			stream_route(D, s, ev);
			/* a begin syscall with no end pattern is a stream of its own */
			if (!D->o.end && ev->kind == TRACE_SYSCALL)
				stream_close(D, s);
			return;
		}
		unrouted(D);
		return;
	}
	stream_route(D, s, ev);
	if (D->o.end) {
		if ((ev->kind == TRACE_EXIT || ev->kind == TRACE_SYSCALL) &&
		    trace_glob_match(D->o.end, ev->name))
			stream_close(D, s);
	} else if (ev->kind == TRACE_EXIT && ev->depth <= s->end_depth) {
		stream_close(D, s);
	}
}

static int demux_event(struct trace_sink *sk, const struct trace_event *ev)
{
	struct demux *D = (struct demux *)sk;
	struct dstream *s;
	uint64_t key;

	if (D->err)
		return D->err;
	if (ev->kind == TRACE_STREAM)
		return 0; /* input streams are demultiplexed again */
	switch (D->o.by) {
	case TRACE_BY_THREAD:
	case TRACE_BY_PROCESS:
		key = D->o.by == TRACE_BY_THREAD ? thread_key(ev) : (uint64_t)(uint32_t)ev->pid;
		s = stream_get(D, key);
		if (!s)
			s = stream_open(D, key, ev, -1, NULL);
		if (!s) {
			D->st.events_dropped++;
			break;
		}
		stream_route(D, s, ev);
		break;
	case TRACE_BY_CONNECTION:
		by_connection(D, ev);
		break;
	case TRACE_BY_REQUEST:
		by_request(D, ev);
		break;
	case TRACE_BY_RULE:
		by_rule(D, ev);
		break;
	}
	return D->err;
}

static int id_cmp(const void *a, const void *b)
{
	const struct dstream *x = *(const struct dstream *const *)a;
	const struct dstream *y = *(const struct dstream *const *)b;

	return x->si.id < y->si.id ? -1 : x->si.id > y->si.id;
}

/* The trace ended: close what is open, oldest first. */
static int demux_end(struct trace_sink *sk)
{
	struct demux *D = (struct demux *)sk;
	struct dstream **v;
	size_t n = 0;
	uint64_t k, val;

	v = malloc((D->streams.count + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t it = 0; imap_next(&D->streams, &it, &k, &val);)
		v[n++] = (struct dstream *)(uintptr_t)val;
	qsort(v, n, sizeof(*v), id_cmp);
	for (size_t i = 0; i < n; i++)
		stream_close(D, v[i]);
	free(v);
	return D->err;
}

static void demux_free(struct trace_sink *sk)
{
	struct demux *D = (struct demux *)sk;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&D->streams, &it, &k, &v);) {
		struct dstream *s = (struct dstream *)(uintptr_t)v;

		D->tgt->close(D->tgt, s->h, &s->si);
		free(s);
	}
	imap_free(&D->streams);
	imap_free(&D->current);
	free(D);
}

static const struct trace_sink_ops demux_ops = {demux_event, demux_end, demux_free};

struct trace_sink *trace_demux_new(const struct trace_demux_opts *o, struct trace_demux_target *t)
{
	struct demux *D = calloc(1, sizeof(*D));

	if (!D)
		return NULL;
	D->base.ops = &demux_ops;
	D->o = *o;
	if (!D->o.max_streams)
		D->o.max_streams = 65536;
	D->tgt = t;
	imap_init(&D->streams, D->o.max_streams + 1);
	imap_init(&D->current, 1u << 20);
	return &D->base;
}

void trace_demux_stats(struct trace_sink *s, struct trace_demux_stats *st)
{
	*st = ((struct demux *)s)->st;
}
