/*
 * align.c - Flowdar's alignment primitive: put the traces of two programs
 * that work together (a TLS proxy and the server behind it, doppel and the
 * service) on one timeline, and show where a request crosses from one to
 * the other.
 *
 * Matching by connection and bytes: every read-like call (read, recvfrom,
 * recvmsg, ...) and write-like call (write, writev, sendto, sendmsg,
 * sendfile, ...) on a socket moves a byte range of a directed flow. strace
 * -yy names a socket by its endpoints, "TCP:[A->B]" on one side and
 * "TCP:[B->A]" on the other (inodes for unix sockets), so bytes written on
 * one side and read on the other belong to the same flow; counting bytes per
 * flow on both sides tells which write carried the first byte of each read.
 * Each read that gets bytes is followed by a TRACE_MSG event naming the sender
 * and when it sent: an arrow in the SVG diagram, a flow in Perfetto.
 *
 * Matching by time: the two traces' clocks may differ (strace prints wall
 * time, uftrace its monotonic clock). With auto_offset, a first pass matches
 * messages and bounds B's offset by causality (nothing is read before it was
 * written): 0 when the clocks already agree, else the tightest bound.
 *
 * Memory: per flow, the last max_pending writes of each side are kept.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "trace/imap.h"
#include "trace/sum-int.h"
#include "trace/trace.h"

#define MAX_FLOWS 65536

struct send_rec {
	uint64_t off, end, ts;
	int32_t pid, tid;
	const char *prog;
};

struct flow {
	uint64_t sent, received; /* bytes so far on each side */
	struct send_rec *ring;
	size_t head, n, cap;
	char desc[160];
	int matched; /* at least one message */
	/* offset estimation (first pass) */
	uint64_t *recv_off, *recv_ts;
	int *recv_side;
	size_t nrecv;
};

struct aligner {
	const struct trace_align_opts *o;
	struct imap flows; /* flow key -> struct flow * */
	size_t max_pending;
	struct trace_align_result *res;
	const char *prog[2];
	int pass; /* 1: estimate, 2: emit */
	/* offset bounds: lower from A->B messages, upper from B->A */
	int have_lo, have_hi;
	int64_t lo, hi;
};

static int is_write(const char *n)
{
	return !strcmp(n, "write") || !strcmp(n, "writev") || !strcmp(n, "send") ||
	       !strcmp(n, "sendto") || !strcmp(n, "sendmsg") || !strcmp(n, "sendfile") ||
	       !strcmp(n, "sendfile64") || !strcmp(n, "pwritev") || !strcmp(n, "pwritev2");
}

static int is_read(const char *n)
{
	return !strcmp(n, "read") || !strcmp(n, "readv") || !strcmp(n, "recv") ||
	       !strcmp(n, "recvfrom") || !strcmp(n, "recvmsg") || !strcmp(n, "preadv") ||
	       !strcmp(n, "preadv2");
}

/* "TCP:[A->B]": the flow of bytes written is A>B, of bytes read B>A. */
static int flow_key(const char *path, int reading, uint64_t *key, char *desc, size_t desclen)
{
	const char *lb, *rb, *arrow;
	char a[80], b[80];
	size_t na, nb;

	if (!path)
		return 0;
	lb = strchr(path, '[');
	rb = strrchr(path, ']');
	arrow = lb ? strstr(lb, "->") : NULL;
	if (!lb || !rb || !arrow || arrow > rb)
		return 0;
	na = (size_t)(arrow - lb - 1);
	nb = (size_t)(rb - arrow - 2);
	if (na == 0 || nb == 0 || na >= sizeof(a) || nb >= sizeof(b))
		return 0;
	memcpy(a, lb + 1, na);
	a[na] = '\0';
	memcpy(b, arrow + 2, nb);
	b[nb] = '\0';
	{
		int pre = (int)(lb - path - 1) > 16 ? 16 : (int)(lb - path - 1);
		int n = snprintf(desc, desclen, "%.*s:[%.70s->%.70s]", pre < 0 ? 0 : pre, path,
				 reading ? b : a, reading ? a : b);

		if (n < 0 || (size_t)n >= desclen)
			return 0;
	}
	*key = XXH3_64bits(desc, strlen(desc));
	return 1;
}

static struct flow *flow_get(struct aligner *A, uint64_t key, const char *desc)
{
	uint64_t *v = imap_get(&A->flows, key);
	struct flow *f;

	if (v)
		return (struct flow *)(uintptr_t)*v;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->cap = A->max_pending;
	f->ring = calloc(f->cap, sizeof(*f->ring));
	if (!f->ring || imap_put(&A->flows, key, (uint64_t)(uintptr_t)f) < 0) {
		free(f->ring);
		free(f);
		return NULL;
	}
	snprintf(f->desc, sizeof(f->desc), "%s", desc);
	return f;
}

static void flows_free(struct aligner *A)
{
	uint64_t k, v;

	for (size_t it = 0; imap_next(&A->flows, &it, &k, &v);) {
		struct flow *f = (struct flow *)(uintptr_t)v;

		free(f->ring);
		free(f->recv_off);
		free(f->recv_ts);
		free(f->recv_side);
		free(f);
	}
	imap_free(&A->flows);
}

static const struct send_rec *find_send(const struct flow *f, uint64_t off)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct send_rec *s = &f->ring[(f->head + i) % f->cap];

		if (off >= s->off && off < s->end)
			return s;
	}
	return NULL;
}

/* Account one event; in pass 2, *msg receives the message it completes. */
static int data_event(struct aligner *A, const struct trace_event *ev, int side,
		      struct trace_event *msg)
{
	uint64_t key, n;
	char desc[160];
	struct flow *f;
	int reading;

	if (ev->kind != TRACE_SYSCALL || !(ev->flags & TRACE_F_RET) || ev->ret <= 0 || ev->errname)
		return 0;
	if (is_write(ev->name))
		reading = 0;
	else if (is_read(ev->name))
		reading = 1;
	else
		return 0;
	if (!flow_key(ev->fdpath, reading, &key, desc, sizeof(desc)))
		return 0;
	f = flow_get(A, key, desc);
	if (!f)
		return 0;
	n = (uint64_t)ev->ret;
	if (!reading) {
		struct send_rec *s;

		if (f->n == f->cap) {
			f->head = (f->head + 1) % f->cap;
			f->n--;
		}
		s = &f->ring[(f->head + f->n) % f->cap];
		f->n++;
		s->off = f->sent;
		s->end = f->sent + n;
		s->ts = ev->ts;
		s->pid = ev->pid;
		s->tid = ev->tid;
		s->prog = ev->prog;
		f->sent += n;
		return 0;
	}
	if (A->pass == 1) {
		/* remember reads: matched after both traces are read */
		if (f->nrecv < A->max_pending) {
			uint64_t *no = realloc(f->recv_off, (f->nrecv + 1) * sizeof(*no));
			uint64_t *nt =
				no ? realloc(f->recv_ts, (f->nrecv + 1) * sizeof(*nt)) : NULL;
			int *ns = nt ? realloc(f->recv_side, (f->nrecv + 1) * sizeof(*ns)) : NULL;

			if (no)
				f->recv_off = no;
			if (nt)
				f->recv_ts = nt;
			if (ns) {
				f->recv_side = ns;
				f->recv_off[f->nrecv] = f->received;
				f->recv_ts[f->nrecv] = ev->ts;
				f->recv_side[f->nrecv] = side;
				f->nrecv++;
			}
		}
		f->received += n;
		return 0;
	}
	{
		const struct send_rec *s = find_send(f, f->received);

		f->received += n;
		if (!s) {
			A->res->unmatched++;
			return 0;
		}
		trace_event_init(msg);
		msg->kind = TRACE_MSG;
		msg->name = trace_intern_str("msg");
		msg->ts = ev->ts + ((ev->flags & TRACE_F_DUR) ? ev->dur : 0);
		msg->pid = ev->pid;
		msg->tid = ev->tid;
		msg->prog = ev->prog;
		msg->depth = ev->depth;
		msg->count = n;
		msg->min = s->ts;
		msg->peer_pid = s->pid;
		msg->peer_tid = s->tid;
		msg->peer_prog = s->prog;
		msg->fdpath = f->desc;
		if (!f->matched) {
			f->matched = 1;
			A->res->connections++;
		}
		A->res->messages++;
		A->res->bytes += n;
		if (msg->ts >= s->ts) {
			uint64_t lat = msg->ts - s->ts;

			if (A->res->messages == 1 || lat < A->res->latency_min)
				A->res->latency_min = lat;
			if (lat > A->res->latency_max)
				A->res->latency_max = lat;
			A->res->latency_sum += lat;
		}
		return 1;
	}
}

/* Pass 1 for one trace: writes and reads of every flow. */
static int scan(struct aligner *A, const char *path, const struct trace_read_opts *ro, int side,
		char *err, size_t errlen)
{
	struct trace_reader *r;
	struct trace_event ev;
	int rc;

	rc = trace_reader_open(path, ro, &r, err, errlen);
	if (rc < 0)
		return rc;
	while ((rc = trace_reader_next(r, &ev)) > 0) {
		struct trace_event msg;

		ev.prog = A->prog[side];
		data_event(A, &ev, side, &msg);
	}
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, trace_reader_error(r));
	trace_reader_close(r);
	return rc;
}

/* Bounds on B's clock offset from every matched read. Sends are in the rings,
 * tagged by program label (side). */
static void estimate(struct aligner *A)
{
	uint64_t k, v;

	for (size_t it = 0; imap_next(&A->flows, &it, &k, &v);) {
		struct flow *f = (struct flow *)(uintptr_t)v;

		for (size_t i = 0; i < f->nrecv; i++) {
			const struct send_rec *s = find_send(f, f->recv_off[i]);
			int send_side, recv_side = f->recv_side[i];
			int64_t d;

			if (!s)
				continue;
			send_side = s->prog == A->prog[1] ? 1 : 0;
			if (send_side == recv_side)
				continue;
			if (send_side == 0) {
				/* B's read after A's write: recv_B + off >= send_A */
				d = (int64_t)(s->ts - f->recv_ts[i]);
				if (!A->have_lo || d > A->lo)
					A->lo = d;
				A->have_lo = 1;
			} else {
				/* A's read after B's write: recv_A >= send_B + off */
				d = (int64_t)(f->recv_ts[i] - s->ts);
				if (!A->have_hi || d < A->hi)
					A->hi = d;
				A->have_hi = 1;
			}
		}
	}
}

static int emit(struct trace_sink *out, const struct trace_event *ev, char *err, size_t errlen)
{
	int rc = trace_sink_event(out, ev);

	if (rc < 0)
		snprintf(err, errlen, "%s", out->err);
	return rc;
}

int trace_align(const char *path_a, const char *path_b, const struct trace_read_opts *ro,
		const struct trace_align_opts *o, struct trace_sink *out,
		struct trace_align_result *res, char *err, size_t errlen)
{
	struct aligner A;
	struct trace_reader *r[2] = {NULL, NULL};
	struct trace_event cur[2];
	int have[2] = {0, 0}, rc = 0;
	const char *paths[2] = {path_a, path_b};

	memset(&A, 0, sizeof(A));
	memset(res, 0, sizeof(*res));
	A.o = o;
	A.res = res;
	A.max_pending = o->max_pending ? o->max_pending : 4096;
	for (int i = 0; i < 2; i++) {
		const char *label = i ? o->name_b : o->name_a;

		if (!label) {
			const char *base = strrchr(paths[i], '/');

			label = base ? base + 1 : paths[i];
		}
		A.prog[i] = trace_intern_str(label);
	}
	if (A.prog[0] == A.prog[1]) {
		char buf[256];

		snprintf(buf, sizeof(buf), "%s#2", A.prog[1]);
		A.prog[1] = trace_intern_str(buf);
	}
	res->offset_ns = o->offset_ns;
	if (o->auto_offset) {
		if (!strcmp(path_a, "-") || !strcmp(path_b, "-")) {
			snprintf(err, errlen,
				 "--offset auto reads each trace twice: give files, not -");
			return -EINVAL;
		}
		imap_init(&A.flows, MAX_FLOWS);
		A.pass = 1;
		rc = scan(&A, path_a, ro, 0, err, errlen);
		if (rc == 0)
			rc = scan(&A, path_b, ro, 1, err, errlen);
		if (rc == 0) {
			estimate(&A);
			if (A.have_lo && A.have_hi && A.lo > A.hi)
				res->offset_ns = (A.lo + A.hi) / 2; /* contradictory: split */
			else if ((!A.have_lo || A.lo <= 0) && (!A.have_hi || A.hi >= 0))
				res->offset_ns = 0; /* the clocks agree already */
			else if (A.have_lo && A.lo > 0)
				res->offset_ns = A.lo;
			else
				res->offset_ns = A.hi;
		}
		flows_free(&A);
		if (rc < 0)
			return rc;
	}
	imap_init(&A.flows, MAX_FLOWS);
	A.pass = 2;
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = trace_reader_open(paths[i], ro, &r[i], err, errlen);
	while (rc == 0) {
		int pick, got;
		struct trace_event msg;

		for (int i = 0; i < 2; i++) {
			if (have[i] || !r[i])
				continue;
			got = trace_reader_next(r[i], &cur[i]);
			if (got < 0) {
				snprintf(err, errlen, "%s: %s", paths[i], trace_reader_error(r[i]));
				rc = got;
				break;
			}
			if (got == 0) {
				trace_reader_close(r[i]);
				r[i] = NULL;
				continue;
			}
			if (cur[i].kind == TRACE_STREAM)
				continue; /* streams do not survive a merge */
			cur[i].prog = A.prog[i];
			if (i == 1)
				cur[i].ts += (uint64_t)res->offset_ns;
			if (i == 0)
				res->events_a++;
			else
				res->events_b++;
			have[i] = 1;
		}
		if (rc < 0 || (!have[0] && !have[1]))
			break;
		if (!have[0] && r[0])
			continue;
		if (!have[1] && r[1])
			continue;
		pick = !have[0] ? 1 : (!have[1] ? 0 : (cur[1].ts < cur[0].ts ? 1 : 0));
		rc = emit(out, &cur[pick], err, errlen);
		if (rc == 0 && data_event(&A, &cur[pick], pick, &msg))
			rc = emit(out, &msg, err, errlen);
		have[pick] = 0;
	}
	for (int i = 0; i < 2; i++)
		trace_reader_close(r[i]);
	flows_free(&A);
	if (rc == 0 && trace_sink_end(out) < 0) {
		snprintf(err, errlen, "%s", out->err);
		rc = -EIO;
	}
	return rc;
}
