/*
 * replay.c - a capture's client streams sent again to a server, in the
 * capture's order, and the server's answers compared with the recorded ones.
 *
 * Every send of every connection is one event, sorted by capture time (a
 * connection's own sends stay in their order). Before each client send, the
 * answers to everything sent before it, on every connection, must be in: as
 * many bytes as were recorded, or the connection went quiet for quiet_ns (a
 * shorter answer), or closed. So a request that on the live system followed
 * another connection's answer follows it again, whatever the speed. With
 * speed > 0 a send also waits for its recorded time (divided by speed).
 *
 * The recorded answers are production's side of a div_conn per connection,
 * the live answers its one follower: the same normalisers, turns and report
 * as the proxy's.
 */
#define LOG_PREFIX "replay: "
#include "record/record.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct event_ref {
	unsigned stream, seg;
	uint64_t ts;
};

struct live {
	int fd;	   /* -1: not open (yet, or any more) */
	int state; /* 0 not opened, 1 open, 2 done */
	int eof;
	struct div_conn *dc;
	uint64_t sent, answered, recorded;
	uint64_t since_ns; /* last answer bytes, or when the wait began */
	unsigned last_event;
};

struct rp {
	const struct rec_capture *cap;
	const struct rec_replay_opts *o;
	struct rec_replay_result *res;
	struct live *lv;
	unsigned char buf[65536];
};

void rec_replay_opts_defaults(struct rec_replay_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->to.netns_fd = -1;
	o->speed = 1.0;
	o->quiet_ns = 300 * 1000000ull;
	o->timeout_ns = 10 * 1000000000ull;
}

static int cmp_event(const void *a, const void *b)
{
	const struct event_ref *x = a, *y = b;

	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->stream != y->stream)
		return x->stream < y->stream ? -1 : 1;
	return x->seg < y->seg ? -1 : x->seg > y->seg;
}

/* Read what connection i has to say now. */
static void read_answers(struct rp *rp, struct live *l)
{
	for (;;) {
		ssize_t n = recv(l->fd, rp->buf, sizeof(rp->buf), MSG_DONTWAIT);

		if (n > 0) {
			div_follower_bytes(l->dc, 0, rp->buf, (size_t)n, l->sent);
			l->answered += (uint64_t)n;
			rp->res->bytes_answered += (uint64_t)n;
			l->since_ns = clock_now_ns();
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			l->eof = 1;
		return;
	}
}

static int waiting(const struct rp *rp, const struct live *l, uint64_t now)
{
	return l->state == 1 && !l->eof && l->answered < l->recorded &&
	       now - l->since_ns < rp->o->quiet_ns;
}

/*
 * Read answers until every open connection has answered what was recorded
 * so far (or went quiet), and until `until` (monotonic ns, 0: no wait).
 */
static void pump(struct rp *rp, uint64_t until)
{
	uint64_t start = clock_now_ns();
	unsigned n = rp->cap->nstreams;
	struct pollfd *pf = calloc(n ? n : 1, sizeof(*pf));
	unsigned *idx = calloc(n ? n : 1, sizeof(*idx));

	if (!pf || !idx) {
		free(pf);
		free(idx);
		return;
	}
	for (;;) {
		uint64_t now = clock_now_ns(), wait_ns = 0;
		unsigned np = 0;
		int any = 0;

		for (unsigned i = 0; i < n; i++) {
			struct live *l = &rp->lv[i];

			if (l->state != 1 || l->eof)
				continue;
			if (waiting(rp, l, now)) {
				uint64_t left = rp->o->quiet_ns - (now - l->since_ns);

				any = 1;
				if (!wait_ns || left < wait_ns)
					wait_ns = left;
			}
			pf[np].fd = l->fd;
			pf[np].events = POLLIN;
			idx[np++] = i;
		}
		if (until > now && (!wait_ns || until - now < wait_ns))
			wait_ns = until - now;
		if ((!any && until <= now) || now - start > rp->o->timeout_ns)
			break;
		if (poll(pf, np, (int)(wait_ns / 1000000 + 1)) > 0)
			for (unsigned k = 0; k < np; k++)
				if (pf[k].revents)
					read_answers(rp, &rp->lv[idx[k]]);
	}
	free(pf);
	free(idx);
}

static int open_live(struct rp *rp, unsigned i, char *err, size_t errlen)
{
	struct live *l = &rp->lv[i];
	struct pollfd p;
	int fd = netaddr_connect(&rp->o->to), soerr = 0;
	socklen_t sl = sizeof(soerr);

	l->state = 1;
	l->fd = -1;
	l->dc = div_conn_open(rp->o->rules, rp->res->types, i + 1, 1);
	if (!l->dc) {
		snprintf(err, errlen, "out of memory");
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	div_follower_attach(l->dc, 0, rp->res->rep);
	l->since_ns = clock_now_ns();
	rp->res->connections++;
	if (fd < 0)
		goto fail;
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, (int)(rp->o->timeout_ns / 1000000)) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
		close(fd);
		fd = -(soerr ? soerr : ETIMEDOUT);
		goto fail;
	}
	l->fd = fd;
	return 0;
fail:
	rp->res->connect_failures++;
	l->eof = 1;
	if (rp->res->connections == 1 && rp->res->connect_failures == 1) {
		snprintf(err, errlen, "cannot connect to %s: %s", rp->o->to.text, strerror(-fd));
		return fd;
	}
	pr_warn("connect failed to=%s stream=%u err=\"%s\"", rp->o->to.text, i, strerror(-fd));
	return 0;
}

/* Send all of p, reading answers while the server's window is full. */
static void send_all(struct rp *rp, struct live *l, const unsigned char *p, size_t n)
{
	uint64_t start = clock_now_ns();

	while (n && l->fd >= 0 && !l->eof) {
		ssize_t w = send(l->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		struct pollfd pf;

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			l->sent += (uint64_t)w;
			rp->res->bytes_sent += (uint64_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			l->eof = 1;
			return;
		}
		if (clock_now_ns() - start > rp->o->timeout_ns)
			return;
		pf.fd = l->fd;
		pf.events = POLLIN | POLLOUT;
		if (poll(&pf, 1, 100) > 0 && (pf.revents & POLLIN))
			read_answers(rp, l);
	}
}

/* The stream's last event is done: end it as the client did, read the rest, settle. */
static void finish_live(struct rp *rp, unsigned i)
{
	struct live *l = &rp->lv[i];

	if (l->state != 1)
		return;
	pump(rp, 0);
	if (l->fd >= 0 && !l->eof) {
		uint64_t start = clock_now_ns();

		shutdown(l->fd, SHUT_WR);
		l->since_ns = clock_now_ns();
		/* the rest of the answer, and the server's end, within quiet_ns of silence */
		while (!l->eof && clock_now_ns() - l->since_ns < rp->o->quiet_ns &&
		       clock_now_ns() - start < rp->o->timeout_ns) {
			struct pollfd pf = {.fd = l->fd, .events = POLLIN};

			if (poll(&pf, 1, (int)(rp->o->quiet_ns / 1000000) + 1) > 0)
				read_answers(rp, l);
		}
	}
	div_server_end(l->dc);
	div_follower_end(l->dc, 0, DIV_END_EOF);
	rp->res->requests += div_conn_requests(l->dc);
	div_conn_free(l->dc);
	l->dc = NULL;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->state = 2;
}

int rec_replay(const struct rec_capture *cap, const struct rec_replay_opts *opts,
	       struct rec_replay_result *res, char *err, size_t errlen)
{
	struct rp rp = {cap, opts, res, NULL, {0}};
	struct event_ref *ev;
	unsigned nev = 0;
	uint64_t t0 = 0, wall0;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	res->types = div_types_new();
	res->rep = div_replica_new(res->types, DIV_CANDIDATE, NULL);
	for (unsigned i = 0; i < cap->nstreams; i++)
		nev += cap->streams[i].nsegs;
	ev = calloc(nev ? nev : 1, sizeof(*ev));
	rp.lv = calloc(cap->nstreams ? cap->nstreams : 1, sizeof(*rp.lv));
	if (!res->types || !res->rep || !ev || !rp.lv) {
		free(ev);
		free(rp.lv);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	nev = 0;
	for (unsigned i = 0; i < cap->nstreams; i++) {
		const struct rec_stream *s = &cap->streams[i];
		uint64_t last = s->start_ns;

		rp.lv[i].fd = -1;
		for (unsigned j = 0; j < s->nsegs; j++) {
			/* a connection's sends keep their order */
			last = s->segs[j].ts_ns > last ? s->segs[j].ts_ns : last;
			ev[nev++] = (struct event_ref){i, j, last};
		}
	}
	qsort(ev, nev, sizeof(*ev), cmp_event);
	for (unsigned e = 0; e < nev; e++)
		rp.lv[ev[e].stream].last_event = e;
	if (nev)
		t0 = ev[0].ts;
	wall0 = clock_now_ns();
	for (unsigned e = 0; e < nev && rc == 0; e++) {
		const struct rec_seg *g = &cap->streams[ev[e].stream].segs[ev[e].seg];
		struct live *l = &rp.lv[ev[e].stream];

		if (l->state == 0)
			rc = open_live(&rp, ev[e].stream, err, errlen);
		if (rc < 0)
			break;
		if (!g->from_client) {
			div_server_bytes(l->dc, g->data, g->len);
			l->recorded += g->len;
			res->bytes_recorded += g->len;
		} else {
			uint64_t due =
				opts->speed > 0
					? wall0 + (uint64_t)((double)(ev[e].ts - t0) / opts->speed)
					: 0;

			pump(&rp, due);
			div_client_data(l->dc, g->data, g->len);
			send_all(&rp, l, g->data, g->len);
			l->since_ns = clock_now_ns();
		}
		if (rp.lv[ev[e].stream].last_event == e)
			finish_live(&rp, ev[e].stream);
	}
	for (unsigned i = 0; i < cap->nstreams; i++)
		if (rp.lv[i].state == 1)
			finish_live(&rp, i);
	free(ev);
	free(rp.lv);
	return rc;
}

void rec_replay_result_free(struct rec_replay_result *res)
{
	div_replica_free(res->rep);
	div_types_free(res->types);
	memset(res, 0, sizeof(*res));
}

void rec_replay_report(const struct rec_replay_result *res, int json, struct sbuf *sb)
{
	struct div_rule rule;

	div_rule_defaults(&rule);
	if (json) {
		sbuf_printf(sb,
			    "{\"connections\":%llu,\"connect_failures\":%llu,\"requests\":%llu,"
			    "\"bytes_sent\":%llu,\"bytes_answered\":%llu,\"bytes_recorded\":%llu,"
			    "\"divergence\":",
			    (unsigned long long)res->connections,
			    (unsigned long long)res->connect_failures,
			    (unsigned long long)res->requests, (unsigned long long)res->bytes_sent,
			    (unsigned long long)res->bytes_answered,
			    (unsigned long long)res->bytes_recorded);
		div_replica_report_json(res->rep, &rule, sb);
		sbuf_append(sb, "}\n", 2);
		return;
	}
	sbuf_printf(sb,
		    "replayed %llu connections (%llu failed to connect), %llu requests, "
		    "%llu bytes sent\n"
		    "answers: %llu bytes (recorded: %llu)\n"
		    "divergence of the answers from the recorded ones:\n",
		    (unsigned long long)res->connections, (unsigned long long)res->connect_failures,
		    (unsigned long long)res->requests, (unsigned long long)res->bytes_sent,
		    (unsigned long long)res->bytes_answered,
		    (unsigned long long)res->bytes_recorded);
	div_replica_report_text(res->rep, &rule, sb);
}
