/*
 * conn.c - one client connection: client <-> production, plus one leg per
 * replica that gets a copy of the client's bytes.
 *
 * Rules this file keeps:
 *   - Production first. Client bytes are written to production before any
 *     replica sees them, and nothing a replica does can pause a client read.
 *   - Replicas are fed through bounded queues. When a leg's queue passes
 *     --buffer (or the replica's queues together pass its budget), the leg is
 *     dropped: closed with RST, counted as an overflow, and every byte it
 *     missed is counted in bytes_dropped.
 *   - Client <-> production is a plain TCP relay (libevent le-proxy style):
 *     when one direction's queue passes pass_buffer, reading the source pauses
 *     until the queue is half drained. A FIN is passed on after the data
 *     before it; a reset is passed on as a reset.
 *   - Sockets are registered once, edge-triggered for read, write and peer
 *     shutdown (EPOLLRDHUP), and never re-armed. A read shorter than the buffer
 *     means the socket was drained, except when the peer has shut down (its FIN
 *     may sit behind the data, with no edge left to announce it), when a
 *     replica reset its leg (the same, for the error) or when reading resumes
 *     after a pause (edges were ignored meanwhile): then we read until EOF,
 *     an error or EAGAIN.
 *   - Replica legs are bounded in number (proxy.h: max_legs): a leg that
 *     would pass its replica's cap or the proxy's first closes the oldest
 *     lingering leg (its client gone), else the connection skips the
 *     replica. A client and its production socket never wait for a leg's:
 *     when accepting or connecting fails for lack of fds, a replica leg is
 *     closed (the oldest lingering one, else a live one) and the call tried
 *     again.
 *   - Handlers only close things; the connection is freed by conn_maybe_free()
 *     at the end of each top-level callback, once nothing is open. (Legs
 *     closed to make room belong to other, finished connections: those are
 *     freed at once, outside any walk of the connection list.)
 */
#define LOG_PREFIX "proxy"
#include "proxy/proxy-int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#define EV_IO (EV_READ | EV_WRITE | EV_PERSIST | EV_ET | EV_CLOSED)
/* After a replica refuses a connection, new connections skip it this long. */
#define REPLICA_RETRY_NS (1 * NSEC_PER_SEC)
/* Bytes read from one replica leg per turn of the event loop. */
#define LEG_READ_BUDGET (256 * 1024)
/* A replica holding back its answer this long gets the client's FIN anyway. */
#define FIN_GRACE_NS (1 * NSEC_PER_SEC)
/* How often idle connections give back their comparing state (div_conn_sweep). */
#define CONN_SWEEP_NS (1 * NSEC_PER_SEC)

static void side_cb(evutil_socket_t fd, short what, void *arg);
static void leg_cb(evutil_socket_t fd, short what, void *arg);
static void conn_abort(struct proxy_conn *c, const char *reason, int reset);
static void conn_start(struct proxy_conn *c);
static int conn_maybe_free(struct proxy_conn *c);
static int side_tls_connected(struct proxy_conn *c, struct side *s);

static void close_fd(int fd, int reset)
{
	if (reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(fd);
}

/* ---- the client and production sides ---- */

static void side_close(struct proxy_conn *c, struct side *s, int reset)
{
	if (!(s->flags & SF_OPEN))
		return;
	event_del(&s->ev);
	close_fd(s->fd, reset);
	s->fd = -1;
	s->flags &= ~(unsigned)SF_OPEN;
	segq_clear(&c->px->pool, &s->out);
	tls_conn_free(s->tls);
	s->tls = NULL;
}

/* Send FIN on s once everything queued for it is written. */
static void side_finish_out(struct side *s)
{
	if (!(s->flags & SF_OPEN) || (s->flags & SF_SHUT_OUT))
		return;
	if (segq_empty(&s->out) && !(s->flags & SF_CONNECTING)) {
		if (s->tls)
			tls_close_notify(s->tls);
		shutdown(s->fd, SHUT_WR);
		s->flags |= SF_SHUT_OUT;
		s->flags &= ~(unsigned)SF_FIN_PENDING;
	} else {
		s->flags |= SF_FIN_PENDING;
	}
}

/* ---- TLS hooks: a side with TLS reads and writes through tls.c ---- */

static ssize_t side_recv(struct side *s, void *buf, size_t n)
{
	return s->tls ? tls_recv(s->tls, buf, n) : recv(s->fd, buf, n, 0);
}

static ssize_t side_send(struct side *s, const void *buf, size_t n)
{
	return s->tls ? tls_send(s->tls, buf, n) : send(s->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static ssize_t side_write_queue(struct chunk_pool *p, struct side *s)
{
	return s->tls ? tls_segq_write(s->tls, p, &s->out) : segq_write(p, &s->out, s->fd);
}

/* ---- legs ---- */

static void leg_settle(struct leg *leg, enum div_end how)
{
	if (leg->flags & SF_SETTLED)
		return;
	leg->flags |= SF_SETTLED;
	div_follower_end(leg_conn(leg)->div, leg->idx, how);
}

static void leg_undirty(struct leg *leg)
{
	struct proxy *px = leg_conn(leg)->px;

	if (!(leg->flags & SF_DIRTY))
		return;
	if (leg->dirty_prev)
		leg->dirty_prev->dirty_next = leg->dirty_next;
	else
		px->dirty = leg->dirty_next;
	if (leg->dirty_next)
		leg->dirty_next->dirty_prev = leg->dirty_prev;
	leg->dirty_prev = leg->dirty_next = NULL;
	leg->flags &= ~(unsigned)SF_DIRTY;
}

/*
 * Queue the leg for the flush timer (armed by its first dirty leg). A leg
 * whose socket is full is not: writing again before the kernel says there is
 * room (EV_WRITE) would only fail, thousands of times a second for a stopped
 * replica.
 */
static void leg_dirty(struct leg *leg)
{
	struct proxy *px = leg_conn(leg)->px;

	if (leg->flags & (SF_DIRTY | SF_FULL))
		return;
	leg->flags |= SF_DIRTY;
	leg->dirty_prev = NULL;
	leg->dirty_next = px->dirty;
	if (px->dirty)
		px->dirty->dirty_prev = leg;
	else {
		struct timeval tv = {0, (suseconds_t)(px->cfg.replica_flush_ns / 1000)};

		event_add(&px->flush, &tv);
	}
	px->dirty = leg;
}

/* An open leg whose client has gone joins its replica's linger list (newest last). */
static void leg_linger(struct leg *leg)
{
	struct replica *rep = leg->rep;

	if (!rep || (leg->flags & SF_LINGER) || !(leg->flags & SF_OPEN))
		return;
	leg->flags |= SF_LINGER;
	leg->linger_next = NULL;
	leg->linger_prev = rep->linger_tail;
	if (rep->linger_tail)
		rep->linger_tail->linger_next = leg;
	else
		rep->linger_head = leg;
	rep->linger_tail = leg;
	rep->lingering++;
}

static void leg_unlinger(struct leg *leg)
{
	struct replica *rep = leg->rep;

	if (!(leg->flags & SF_LINGER))
		return;
	leg->flags &= ~(unsigned)SF_LINGER;
	if (leg->linger_prev)
		leg->linger_prev->linger_next = leg->linger_next;
	else
		rep->linger_head = leg->linger_next;
	if (leg->linger_next)
		leg->linger_next->linger_prev = leg->linger_prev;
	else
		rep->linger_tail = leg->linger_prev;
	leg->linger_prev = leg->linger_next = NULL;
	rep->lingering--;
}

/*
 * delta bytes more (or fewer) queued for rep on this worker; returns what is
 * queued for it on every worker together (its budget is one budget).
 */
static uint64_t rep_queued(struct replica *rep, int64_t delta)
{
	uint64_t all;

	rep->buffered += (uint64_t)delta;
	if (rep->px->nthreads == 1) {
		atomic_store_explicit(&rep->sh->buffered, rep->buffered, memory_order_relaxed);
		all = rep->buffered;
	} else {
		all = atomic_fetch_add_explicit(&rep->sh->buffered, (uint64_t)delta,
						memory_order_relaxed) +
		      (uint64_t)delta;
	}
	if (delta > 0 &&
	    all > atomic_load_explicit(&rep->sh->total_high_water, memory_order_relaxed))
		atomic_store_explicit(&rep->sh->total_high_water, all, memory_order_relaxed);
	return all;
}

/* Close the leg's socket. Bytes still queued were never delivered: dropped. */
static void leg_close(struct leg *leg, int reset)
{
	struct replica *rep = leg->rep;

	if (!(leg->flags & SF_OPEN))
		return;
	event_del(&leg->ev);
	leg_undirty(leg);
	leg_unlinger(leg);
	leg_conn(leg)->px->legs_open--;
	close_fd(leg->fd, reset);
	leg->fd = -1;
	leg->flags &= ~(unsigned)SF_OPEN;
	if (rep && leg_conn(leg)->px->ob.replica_close)
		leg_conn(leg)->px->ob.replica_close(leg_conn(leg)->obs, rep->id, reset);
	if (rep) {
		rep->bytes_dropped += leg->out.bytes;
		rep_queued(rep, -(int64_t)leg->out.bytes);
		rep->conns_active--;
	}
	segq_clear(&leg_conn(leg)->px->pool, &leg->out);
}

void conn_drop_leg(struct leg *leg, const char *reason)
{
	if (!(leg->flags & SF_OPEN) && (leg->flags & SF_DROPPED))
		return;
	pr_debug("replica leg dropped conn=%llu replica=%s reason=\"%s\" queued=%llu",
		 (unsigned long long)leg_conn(leg)->id, leg->rep ? leg->rep->name : "-", reason,
		 (unsigned long long)leg->out.bytes);
	leg_close(leg, 1);
	leg->flags |= SF_DROPPED;
	leg_settle(leg, DIV_END_DROPPED);
}

/* The replica could not be reached (refused, unreachable, reset). */
static void leg_fail(struct leg *leg, int err, const char *what)
{
	struct replica *rep = leg->rep;

	/* Reset once accepted (even before we saw the connect complete): the replica is up. */
	if (rep && (!(leg->flags & SF_CONNECTING) || err == ECONNRESET || err == EPIPE))
		rep->resets++;
	else if (rep) {
		rep->connect_failures++;
		if (!rep->last_fail_ns || clock_coarse_ns() - rep->last_fail_ns > 10 * NSEC_PER_SEC)
			pr_warn("replica %s unreachable: %s %s: %s; its traffic is counted as "
				"dropped "
				"until it answers",
				rep->name, what, rep->ep.text, strerror(err));
		rep->last_fail_ns = clock_coarse_ns();
	}
	conn_drop_leg(leg, what);
}

static void leg_sent(struct leg *leg, uint64_t n, uint64_t now)
{
	struct replica *rep = leg->rep;

	leg->written += n;
	leg->last_activity_ns = now;
	rep->bytes_forwarded += n;
	rate_add(&rep->drain, now, n);
}

static void leg_overflow(struct leg *leg, uint64_t now)
{
	struct replica *rep = leg->rep;

	replica_overflowed(rep, now);
	conn_drop_leg(leg, "overflow");
}

/*
 * Has the replica answered as much as production had when the client ended
 * its side? A server that sees the client's FIN before it has answered may
 * abort the request (nginx does: "client prematurely closed connection"),
 * which production never saw: hold the FIN until then, or until the replica
 * has been quiet for FIN_GRACE_NS.
 */
static int leg_may_end(const struct leg *leg, uint64_t now)
{
	const struct proxy_conn *c = leg_conn(leg);

	if (!c->fin_mark_set || leg->answered >= c->fin_mark)
		return 1;
	return now - leg->last_activity_ns > FIN_GRACE_NS;
}

/* Send FIN to the replica after its queue (or close with RST if asked to). */
static void leg_finish_out(struct leg *leg)
{
	if (!(leg->flags & SF_OPEN) || (leg->flags & SF_SHUT_OUT))
		return;
	if (segq_empty(&leg->out) && !(leg->flags & SF_CONNECTING) &&
	    !leg_may_end(leg, clock_coarse_ns())) {
		leg->flags |= SF_FIN_PENDING | SF_FIN_WAIT;
		leg_conn(leg)->px->fin_waits++;
		return;
	}
	leg->flags &= ~(unsigned)SF_FIN_WAIT;
	if (segq_empty(&leg->out) && !(leg->flags & SF_CONNECTING)) {
		if (leg->flags & SF_RESET) {
			leg_close(leg, 1);
			leg_settle(leg, DIV_END_DROPPED);
			return;
		}
		shutdown(leg->fd, SHUT_WR);
		leg->flags |= SF_SHUT_OUT;
		leg->flags &= ~(unsigned)SF_FIN_PENDING;
		if (leg->flags & SF_EOF_IN)
			leg_close(leg, 0);
	} else {
		leg->flags |= SF_FIN_PENDING;
	}
}

/* Give the replica its copy of n client bytes at ch[off]. */
void leg_feed(struct leg *leg, struct chunk *ch, uint32_t off, size_t n, int *kept, uint64_t now)
{
	struct replica *rep = leg->rep;
	struct proxy *px = leg_conn(leg)->px;
	ssize_t w = 0;
	uint64_t q, all;

	if (!rep)
		return;
	rep->bytes_offered += n;
	if (!(leg->flags & SF_OPEN) || (leg->flags & SF_SHUT_OUT)) {
		rep->bytes_dropped += n;
		return;
	}
	/* Ingress for the forecast: bytes headed for a buffer that can still fill. */
	rate_add(&rep->ingress, now, n);
	if (!(leg->flags & SF_CONNECTING) && segq_empty(&leg->out) && !px->cfg.replica_flush_ns) {
		w = send(leg->fd, ch->data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				rep->bytes_dropped += n;
				leg_fail(leg, errno, "write to");
				return;
			}
			w = 0;
		}
		if (w > 0) {
			leg_sent(leg, (uint64_t)w, now);
			if (px->ob.replica_bytes)
				px->ob.replica_bytes(leg_conn(leg)->obs, rep->id, rep->name, 1,
						     ch->data + off, (size_t)w);
		}
	}
	if ((size_t)w == n)
		return;
	if (segq_append(&px->pool, &leg->out, ch, off + (uint32_t)w, (uint32_t)(n - (size_t)w)) <
	    0) {
		rep->bytes_dropped += n - (size_t)w;
		conn_drop_leg(leg, "out of memory");
		return;
	}
	*kept = 1;
	if (px->cfg.replica_flush_ns && !(leg->flags & SF_CONNECTING))
		leg_dirty(leg);
	all = rep_queued(rep, (int64_t)(n - (size_t)w));
	q = leg->out.bytes;
	if (q > rep->high_water)
		rep->high_water = q;
	if (q > rep->buffer || all > rep->budget)
		leg_overflow(leg, now);
}

/* Bytes the replica was sent, for an observer that records them. */
static void leg_seen(void *arg, const void *buf, size_t n)
{
	struct leg *leg = arg;
	struct proxy *px = leg_conn(leg)->px;

	if (leg->rep)
		px->ob.replica_bytes(leg_conn(leg)->obs, leg->rep->id, leg->rep->name, 1, buf, n);
}

static void leg_flush(struct leg *leg)
{
	struct proxy *px = leg_conn(leg)->px;
	ssize_t w;

	if (!(leg->flags & SF_OPEN) || (leg->flags & SF_CONNECTING) || segq_empty(&leg->out))
		return;
	w = segq_write_seen(&px->pool, &leg->out, leg->fd, px->ob.replica_bytes ? leg_seen : NULL,
			    leg);
	if (w < 0) {
		leg_fail(leg, (int)-w, "write to");
		return;
	}
	if (leg->rep) {
		rep_queued(leg->rep, -(int64_t)w);
		leg_sent(leg, (uint64_t)w, clock_coarse_ns());
	}
	if (!segq_empty(&leg->out))
		leg->flags |= SF_FULL; /* until EV_WRITE */
	if (segq_empty(&leg->out) && (leg->flags & SF_FIN_PENDING))
		leg_finish_out(leg);
}

/*
 * drain: read until EOF or EAGAIN, even after a short read. A replica that
 * answers faster than we read (a huge stream) gets LEG_READ_BUDGET bytes per
 * turn of the loop; the rest is read in a later turn (the event is made
 * active again, as no new edge may come), after production's events.
 */
static void leg_read(struct leg *leg, int drain)
{
	struct proxy_conn *c = leg_conn(leg);
	struct proxy *px = c->px;
	size_t budget = LEG_READ_BUDGET;

	while (leg->flags & SF_OPEN) {
		ssize_t n;

		if (!budget) {
			event_active(&leg->ev, EV_READ | (drain ? EV_CLOSED : 0), 0);
			return;
		}
		n = recv(leg->fd, px->scratch, sizeof(px->scratch), 0);
		if (n > 0) {
			budget -= (size_t)n < budget ? (size_t)n : budget;
			if (leg->rep)
				leg->rep->bytes_answered += (uint64_t)n;
			leg->answered += (uint64_t)n;
			leg->last_activity_ns = clock_coarse_ns();
			div_follower_bytes(c->div, leg->idx, px->scratch, (size_t)n, leg->written);
			if (px->ob.replica_bytes && leg->rep)
				px->ob.replica_bytes(c->obs, leg->rep->id, leg->rep->name, 0,
						     px->scratch, (size_t)n);
			if ((leg->flags & SF_FIN_WAIT) && leg->answered >= c->fin_mark)
				leg_finish_out(leg);
			if ((size_t)n < sizeof(px->scratch) && !drain)
				return;
			continue;
		}
		if (n == 0) {
			leg->flags |= SF_EOF_IN;
			/* Done when we have said all we will say; else it may still read. */
			if (leg->flags & SF_SHUT_OUT)
				leg_close(leg, 0);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			leg_fail(leg, errno, "read from");
		return;
	}
}

/* ---- the leg cap ---- */

static int conn_maybe_free(struct proxy_conn *c);

/* Close a lingering leg to free its fd; its connection goes too if that was its last. */
static void leg_evict(struct leg *leg, const char *reason)
{
	struct proxy_conn *oc = leg_conn(leg);
	struct proxy *px = oc->px;

	conn_drop_leg(leg, reason);
	if (conn_maybe_free(oc) && px->conns_lingering)
		px->conns_lingering--;
}

/* The lingering leg that has lingered longest, over every replica. */
static struct leg *oldest_lingering(struct proxy *px)
{
	struct leg *old = NULL;

	for (unsigned i = 0; i < px->nreps; i++) {
		struct leg *h = px->reps[i]->linger_head;

		if (h && (!old || leg_conn(h)->front_done_ns < leg_conn(old)->front_done_ns))
			old = h;
	}
	return old;
}

/* An open leg of a live connection, of the replica holding the most legs. */
static struct leg *some_live_leg(struct proxy *px)
{
	struct replica *most = NULL;

	for (unsigned i = 0; i < px->nreps; i++)
		if (px->reps[i]->conns_active &&
		    (!most || px->reps[i]->conns_active > most->conns_active))
			most = px->reps[i];
	if (!most)
		return NULL;
	/* rep->legs is newest first: the newest connection loses the least history. */
	for (struct leg *leg = most->legs; leg; leg = leg->rep_next)
		if (leg->flags & SF_OPEN)
			return leg;
	return NULL;
}

int conn_reclaim_leg(struct proxy *px)
{
	struct leg *leg = oldest_lingering(px);

	if (!leg)
		leg = some_live_leg(px);
	if (!leg)
		return 0;
	px->legs_reclaimed++;
	leg_evict(leg, "production needs the fd");
	return 1;
}

/* Said once, then at most once a minute while it goes on. */
static void leg_cap_warn(struct replica *rep, uint64_t now)
{
	struct proxy *px = rep->px;

	if (rep->cap_warn_ns && now - rep->cap_warn_ns < 60 * NSEC_PER_SEC)
		return;
	rep->cap_warn_ns = now;
	pr_warn("replica legs at their cap: replica=%s open=%llu cap=%llu total_open=%llu "
		"total_cap=%llu skipped=%llu evicted=%llu; new connections skip the replica and "
		"its "
		"oldest lingering legs are closed first, production is unaffected (a replica that "
		"accepts and does not read or close holds each leg for --linger; raise --max-legs "
		"or "
		"`ulimit -n`, or lower --linger)",
		rep->name, (unsigned long long)rep->conns_active,
		(unsigned long long)replica_leg_cap(rep), (unsigned long long)px->legs_open,
		(unsigned long long)px->legs_cap, (unsigned long long)rep->conns_over_cap,
		(unsigned long long)rep->legs_evicted);
}

/*
 * Room for one more leg of rep: under both caps, or made by closing the
 * oldest lingering leg (rep's own for its cap, anyone's for the total).
 */
static int leg_make_room(struct proxy *px, struct replica *rep, uint64_t now)
{
	if (rep->conns_active >= replica_leg_cap(rep)) {
		if (!rep->linger_head)
			return 0;
		rep->legs_evicted++;
		leg_cap_warn(rep, now);
		leg_evict(rep->linger_head, "replica leg cap");
	}
	if (px->legs_open >= px->legs_cap) {
		struct leg *old = oldest_lingering(px);

		if (!old)
			return 0;
		old->rep->legs_evicted++;
		leg_cap_warn(rep, now);
		leg_evict(old, "leg cap");
	}
	return 1;
}

static void leg_skip(struct leg *leg, uint64_t now)
{
	struct replica *rep = leg->rep;

	rep->conns_skipped++;
	rep->conns_over_cap++;
	leg->flags = SF_DROPPED | SF_SETTLED;
	leg_cap_warn(rep, now);
}

/* fd >= 0: the leg's socket, connected already (an exact join's, join.c); else connect. */
void leg_open_fd(struct proxy_conn *c, unsigned idx, struct replica *rep, int fd, uint64_t now)
{
	struct leg *leg = &c->legs[idx];

	leg->rep = rep;
	leg->idx = idx;
	leg->fd = -1;
	segq_init(&leg->out);
	/* Link first: even a leg that never opens counts its dropped bytes. */
	leg->rep_prev = NULL;
	leg->rep_next = rep->legs;
	if (rep->legs)
		rep->legs->rep_prev = leg;
	rep->legs = leg;
	rep->conns_total++;
	if (rep->last_fail_ns && now - rep->last_fail_ns < REPLICA_RETRY_NS) {
		if (fd >= 0)
			close(fd);
		rep->conns_skipped++;
		leg->flags = SF_DROPPED | SF_SETTLED;
		return;
	}
	if (!leg_make_room(c->px, rep, now)) {
		if (fd >= 0)
			close(fd);
		leg_skip(leg, now);
		return;
	}
	if (fd < 0)
		fd = netaddr_connect(&rep->ep);
	if (fd == -EMFILE || fd == -ENFILE) {
		/* The fd table is full: not the replica's fault, and production comes first. */
		leg_skip(leg, now);
		return;
	}
	if (fd < 0) {
		rep->connect_failures++;
		rep->last_fail_ns = now;
		leg->flags = SF_DROPPED | SF_SETTLED;
		pr_debug("replica connect failed replica=%s err=\"%s\"", rep->name, strerror(-fd));
		return;
	}
	if (c->px->cfg.replica_sndbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &c->px->cfg.replica_sndbuf,
			   sizeof(c->px->cfg.replica_sndbuf));
	leg->fd = fd;
	leg->flags = SF_OPEN | SF_CONNECTING; /* connected already: done at the first EV_WRITE */
	event_assign(&leg->ev, c->px->base, fd, EV_IO, leg_cb, leg);
	event_add(&leg->ev, NULL);
	rep->conns_active++;
	c->px->legs_open++;
	div_follower_attach(c->div, idx, rep->drep);
}

void leg_open(struct proxy_conn *c, unsigned idx, struct replica *rep, uint64_t now)
{
	leg_open_fd(c, idx, rep, -1, now);
}

/* ---- the connection ---- */

/* The client ended its side now: remember how much production had answered. */
static void set_fin_mark(struct proxy_conn *c)
{
	if (c->fin_mark_set)
		return;
	c->fin_mark = c->prod_answered;
	c->fin_mark_set = 1;
}

/* Production's side is over: settle legs that have already closed. */
static void conn_front_done(struct proxy_conn *c)
{
	struct proxy *px = c->px;

	if (c->front_done)
		return;
	c->front_done = 1;
	c->front_done_ns = clock_coarse_ns();
	set_fin_mark(c);
	px->conns_active--;
	div_server_end(c->div);
	if (px->ob.conn_close)
		px->ob.conn_close(c->obs, c->reset);
	for (unsigned i = 0; i < c->nlegs; i++) {
		struct leg *leg = &c->legs[i];

		if (!(leg->flags & SF_OPEN))
			leg_settle(leg, DIV_END_EOF);
		else
			leg_finish_out(leg);
	}
	for (unsigned i = 0; i < c->nlegs; i++)
		if (c->legs[i].flags & SF_OPEN)
			leg_linger(&c->legs[i]);
	for (unsigned i = 0; i < c->nlegs; i++)
		if (c->legs[i].flags & SF_OPEN) {
			px->conns_lingering++;
			break;
		}
	if (c->njoins)
		join_owner_done(c, c->reset);
}

/* Both directions finished (FIN passed on each way): close the front. */
static void conn_check_front(struct proxy_conn *c)
{
	int c2b_done, b2c_done;

	if (c->front_done)
		return;
	c2b_done = !(c->be.flags & SF_OPEN) ||
		   ((c->cli.flags & SF_EOF_IN) && (c->be.flags & SF_SHUT_OUT));
	b2c_done = !(c->cli.flags & SF_OPEN) ||
		   ((c->be.flags & SF_EOF_IN) && (c->cli.flags & SF_SHUT_OUT));
	if (!c2b_done || !b2c_done)
		return;
	side_close(c, &c->cli, 0);
	side_close(c, &c->be, 0);
	conn_front_done(c);
}

/*
 * Tear down the front at once (a reset, an error, production unreachable).
 * reset: pass the abort on as RST. Replicas still get what was queued for
 * them, then the same kind of end.
 */
static void conn_abort(struct proxy_conn *c, const char *reason, int reset)
{
	if (c->front_done)
		return;
	pr_debug("connection aborted conn=%llu reason=\"%s\"", (unsigned long long)c->id, reason);
	c->reset = reset;
	set_fin_mark(c);
	side_close(c, &c->cli, reset);
	side_close(c, &c->be, reset);
	for (unsigned i = 0; i < c->nlegs; i++)
		if (reset)
			c->legs[i].flags |= SF_RESET;
	conn_front_done(c);
}

static void conn_free(struct proxy_conn *c)
{
	struct proxy *px = c->px;

	for (unsigned i = 0; i < c->nlegs; i++) {
		struct leg *leg = &c->legs[i];

		if (leg->rep)
			replica_leg_unlink(leg);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	div_conn_free(c->div);
	if (px->ob.conn_free)
		px->ob.conn_free(c->obs);
	join_conn_free(c);
	join_backlog_free(c);
	px->conns_allocated--;
	free(c);
}

static int conn_maybe_free(struct proxy_conn *c)
{
	if (!c->front_done)
		return 0;
	for (unsigned i = 0; i < c->nlegs; i++)
		if (c->legs[i].flags & SF_OPEN)
			return 0;
	for (unsigned i = 0; i < c->nlegs; i++)
		leg_settle(&c->legs[i], DIV_END_EOF);
	conn_free(c);
	return 1;
}

/* ---- reading and writing the front ---- */

static void from_client(struct proxy_conn *c, unsigned char *buf, size_t n)
{
	struct proxy *px = c->px;
	struct chunk *ch = px->pool.cur;
	uint32_t off = (uint32_t)(buf - ch->data);
	uint64_t now = clock_coarse_ns();
	ssize_t w = 0;
	int kept = 0;

	px->bytes_client += n;
	c->cli_read += n;
	if (px->cfg.join_open && c->cli.fd >= 0)
		join_client_before(c, buf, n, now);
	div_client_data(c->div, buf, n);
	if (px->ob.client_bytes)
		px->ob.client_bytes(c->obs, buf, n);
	/* Production first (unless its input is held: it is about to be frozen). */
	if ((c->be.flags & SF_OPEN) && !(c->be.flags & SF_SHUT_OUT)) {
		if (!(c->be.flags & SF_CONNECTING) && segq_empty(&c->be.out) &&
		    !(px->hold && !px->cfg.service_is_client)) {
			w = side_send(&c->be, buf, n);
			if (w > 0)
				c->prod_given += (uint64_t)w;
			if (w < 0) {
				if (errno != EAGAIN && errno != EINTR) {
					px->backend_resets++;
					conn_abort(c, "write to production failed", 1);
					w = (ssize_t)n;
				} else {
					w = 0;
				}
			}
		}
		if ((size_t)w < n && (c->be.flags & SF_OPEN)) {
			if (segq_append(&px->pool, &c->be.out, ch, off + (uint32_t)w,
					(uint32_t)(n - (size_t)w)) < 0) {
				conn_abort(c, "out of memory", 1);
			} else {
				kept = 1;
				if (c->be.out.bytes >= px->cfg.pass_buffer)
					c->cli.flags |= SF_PAUSED;
			}
		}
	}
	for (unsigned i = 0; i < c->nlegs; i++)
		leg_feed(&c->legs[i], ch, off, n, &kept, now);
	if (c->njoins)
		join_client_bytes(c, ch, off, n, &kept, now);
	if (px->backlog && c->cli.fd >= 0 && !c->front_done)
		join_backlog_add(c, 0, ch, off, n, &kept);
	c->client_turn = 1;
	if (kept)
		chunk_read_keep(&px->pool, n);
}

static void from_backend(struct proxy_conn *c, unsigned char *buf, size_t n)
{
	struct proxy *px = c->px;
	struct chunk *ch = px->pool.cur;
	ssize_t w = 0;
	int kept = 0;

	px->bytes_backend += n;
	c->prod_answered += n;
	c->client_turn = 0;
	div_server_bytes(c->div, buf, n);
	if (c->njoins || c->pre)
		join_server_bytes(c, buf, n);
	if (c->bl)
		join_backlog_add(c, 1, ch, (uint32_t)(buf - ch->data), n, &kept);
	if (px->ob.server_bytes)
		px->ob.server_bytes(c->obs, buf, n);
	if (!(c->cli.flags & SF_OPEN) || (c->cli.flags & SF_SHUT_OUT))
		goto out;
	if (segq_empty(&c->cli.out) && !(px->hold && px->cfg.service_is_client)) {
		w = side_send(&c->cli, buf, n);
		if (w > 0)
			c->cli_given += (uint64_t)w;
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				px->client_resets++;
				conn_abort(c, "write to client failed", 1);
				goto out;
			}
			w = 0;
		}
	}
	if ((size_t)w == n)
		goto out;
	if (segq_append(&px->pool, &c->cli.out, ch, (uint32_t)(buf - ch->data) + (uint32_t)w,
			(uint32_t)(n - (size_t)w)) < 0) {
		conn_abort(c, "out of memory", 1);
		goto out;
	}
	kept = 1;
	if (c->cli.out.bytes >= px->cfg.pass_buffer)
		c->be.flags |= SF_PAUSED;
out:
	if (kept)
		chunk_read_keep(&px->pool, n);
}

static void client_eof(struct proxy_conn *c)
{
	c->cli.flags |= SF_EOF_IN;
	set_fin_mark(c);
	side_finish_out(&c->be);
	for (unsigned i = 0; i < c->nlegs; i++)
		leg_finish_out(&c->legs[i]);
	conn_check_front(c);
}

static void backend_eof(struct proxy_conn *c)
{
	c->be.flags |= SF_EOF_IN;
	div_server_end(c->div);
	side_finish_out(&c->cli);
	conn_check_front(c);
}

/* Read one side until drained, paused or closed (drain: see the file comment). */
static void side_read(struct proxy_conn *c, struct side *s, int drain)
{
	struct proxy *px = c->px;
	int is_client = s == &c->cli;

	/* A TLS record may hold less than the socket does: read until EAGAIN. */
	if (s->tls)
		drain = 1;
	while ((s->flags & SF_OPEN) &&
	       !(s->flags & (SF_EOF_IN | SF_PAUSED | SF_CONNECTING | SF_HANDSHAKE))) {
		unsigned char *buf;
		size_t room;
		ssize_t n;

		if (chunk_read_space(&px->pool, &buf, &room) < 0) {
			conn_abort(c, "out of memory", 1);
			return;
		}
		n = side_recv(s, buf, room);
		if (n > 0) {
			if (is_client)
				from_client(c, buf, (size_t)n);
			else
				from_backend(c, buf, (size_t)n);
			if ((size_t)n < room && !drain)
				return;
			continue;
		}
		if (n == 0) {
			if (is_client)
				client_eof(c);
			else
				backend_eof(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return;
		if (is_client)
			px->client_resets++;
		else
			px->backend_resets++;
		conn_abort(c, is_client ? "client reset" : "production reset", 1);
		return;
	}
}

static void side_writable(struct proxy_conn *c, struct side *s)
{
	struct proxy *px = c->px;
	struct side *peer = s == &c->cli ? &c->be : &c->cli;

	if (!(s->flags & SF_OPEN))
		return;
	if (s->flags & SF_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY)
			return;
		if (err) {
			px->backend_failures++;
			pr_warn("production %s refused a connection: %s; closing the client "
				"connection "
				"conn=%llu",
				px->cfg.backend.text, strerror(err), (unsigned long long)c->id);
			conn_abort(c, "production unreachable", 0);
			return;
		}
		if (s->tls && !side_tls_connected(c, s))
			return;
		s->flags &= ~(unsigned)SF_CONNECTING;
	}
	if (px->hold && s == (px->cfg.service_is_client ? &c->cli : &c->be))
		return; /* the service's input is held: proxy_hold(px, 0) writes it */
	if (!segq_empty(&s->out)) {
		ssize_t w = side_write_queue(&px->pool, s);

		if (w > 0)
			*(s == &c->be ? &c->prod_given : &c->cli_given) += (uint64_t)w;
		if (w < 0) {
			if (s == &c->cli)
				px->client_resets++;
			else
				px->backend_resets++;
			conn_abort(c,
				   s == &c->cli ? "write to client failed"
						: "write to production failed",
				   1);
			return;
		}
	}
	if (segq_empty(&s->out) && (s->flags & SF_FIN_PENDING))
		side_finish_out(s);
	if ((peer->flags & SF_PAUSED) && s->out.bytes <= px->cfg.pass_buffer / 2) {
		peer->flags &= ~(unsigned)SF_PAUSED;
		side_read(c, peer, 1);
	}
}

/* ---- TLS handshakes (tls.c does the TLS, this says what follows) ---- */

/* One handshake step on s: 1 once done, 0 while going on or after it failed. */
static int side_handshake(struct proxy_conn *c, struct side *s)
{
	int r = tls_handshake(s->tls);

	if (r == 0)
		return 0;
	if (r < 0) {
		if (s == &c->be)
			c->px->backend_failures++;
		conn_abort(c,
			   s == &c->cli ? "client TLS handshake failed"
					: "TLS handshake with production failed",
			   0);
		return 0;
	}
	s->flags &= ~(unsigned)(SF_HANDSHAKE | SF_CONNECTING);
	if (s == &c->cli)
		conn_start(c); /* production and replicas only for a client that speaks TLS */
	return 1;
}

/* Production's TCP connect completed on a --tls-backend side: its handshake begins. */
static int side_tls_connected(struct proxy_conn *c, struct side *s)
{
	s->flags |= SF_HANDSHAKE;
	return side_handshake(c, s);
}

/*
 * An event on a side with TLS: drive its handshake; once established, any
 * event may unblock either direction (a TLS read may need a write and the
 * reverse), so both are tried. Returns 0 when nothing more is to be done now.
 */
static int side_tls_event(struct proxy_conn *c, struct side *s, short *what)
{
	if ((s->flags & (SF_CONNECTING | SF_HANDSHAKE)) == SF_CONNECTING)
		return 1; /* production's TCP connect first (side_writable) */
	if ((s->flags & SF_HANDSHAKE) && !side_handshake(c, s))
		return 0;
	*what |= EV_READ | EV_WRITE;
	return 1;
}

void conn_tls_timeout(struct side *s)
{
	struct proxy_conn *c = side_conn(s);

	if (s == &c->be)
		c->px->backend_failures++;
	conn_abort(c,
		   s == &c->cli ? "client TLS handshake timed out"
				: "TLS handshake with production timed out",
		   0);
	conn_maybe_free(c);
}

static void side_cb(evutil_socket_t fd, short what, void *arg)
{
	struct side *s = arg;
	struct proxy_conn *c = side_conn(s);

	(void)fd;
	if (s->tls && !side_tls_event(c, s, &what))
		goto out;
	if (what & EV_WRITE)
		side_writable(c, s);
	if ((what & (EV_READ | EV_CLOSED)) && (s->flags & SF_OPEN))
		side_read(c, s, what & EV_CLOSED);
out:
	/* A write may have finished a half-close the other way round. */
	conn_check_front(c);
	conn_maybe_free(c);
}

static void leg_cb(evutil_socket_t fd, short what, void *arg)
{
	struct leg *leg = arg;
	struct proxy_conn *c = leg_conn(leg);

	(void)fd;
	if ((what & EV_WRITE) && (leg->flags & SF_CONNECTING)) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(leg->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err && err != EINPROGRESS && err != EALREADY) {
			leg_fail(leg, err, "connect to");
		} else if (!err) {
			leg->flags &= ~(unsigned)SF_CONNECTING;
			if (leg->rep)
				leg->rep->last_fail_ns = 0;
			if (segq_empty(&leg->out) && (leg->flags & SF_FIN_PENDING))
				leg_finish_out(leg);
		}
	}
	/* Room in a full socket: write now. A leg waiting for the flush timer is written by it. */
	if ((what & EV_WRITE) && (leg->flags & SF_FULL)) {
		leg->flags &= ~(unsigned)SF_FULL;
		leg_flush(leg);
	} else if ((what & EV_WRITE) && !(leg->flags & SF_DIRTY)) {
		leg_flush(leg);
	}
	/*
	 * libevent reports a reset (EPOLLHUP, EPOLLERR) as EV_READ | EV_WRITE,
	 * without EV_CLOSED: read to the error then, even past a short read, or
	 * the reset would wait behind the data before it with no edge left.
	 */
	if (what & (EV_READ | EV_CLOSED))
		leg_read(leg, what & (EV_CLOSED | EV_WRITE));
	if (c->front_done && (leg->flags & SF_OPEN) == 0)
		leg_settle(leg, DIV_END_EOF);
	conn_maybe_free(c);
}

/* ---- accept and housekeeping ---- */

/*
 * A connection with one leg slot per replica, linked into px->conns and
 * counted; its client socket is cfd (-1: none, a mirrored connection).
 * NULL when out of memory.
 */
struct proxy_conn *conn_new(struct proxy *px, int cfd, unsigned n)
{
	struct proxy_conn *c = calloc(1, sizeof(*c) + n * sizeof(struct leg));

	/* Without replicas there is nothing to compare: no divergence state. */
	if (c && n)
		c->div = div_conn_open(px->rules, px->types, px->next_conn_id + px->nthreads, n);
	if (!c || (n && !c->div)) {
		free(c);
		return NULL;
	}
	px->conns_allocated++;
	c->px = px;
	c->id = px->next_conn_id += px->nthreads; /* unique over workers */
	c->nlegs = n;
	c->cli.fd = cfd;
	c->cli.flags = cfd >= 0 ? SF_OPEN : 0;
	segq_init(&c->cli.out);
	c->be.is_be = 1;
	c->be.fd = -1;
	segq_init(&c->be.out);
	c->next = px->conns;
	if (px->conns)
		px->conns->prev = c;
	px->conns = c;
	px->conns_accepted++;
	px->conns_active++;
	if (px->ob.conn_open)
		c->obs = px->ob.conn_open(px->ob.arg, c->id);
	return c;
}

void conn_accept(struct proxy *px, int fd)
{
	unsigned n = px->nreps;
	struct proxy_conn *c = conn_new(px, fd, n);
	int one = 1;

	if (!c) {
		pr_err("out of memory accepting a connection; closing it");
		close_fd(fd, 1);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	event_assign(&c->cli.ev, px->base, fd, EV_IO, side_cb, &c->cli);
	event_add(&c->cli.ev, NULL);
	/* Legs are opened by conn_start; until then they end with the connection. */
	for (unsigned i = 0; i < n; i++) {
		c->legs[i].idx = i;
		c->legs[i].fd = -1;
		c->legs[i].flags = SF_SETTLED;
	}
	if (tls_front_serves(px->tls)) {
		c->cli.tls = tls_conn_server(px->tls, px->base, &c->cli);
		if (!c->cli.tls) {
			pr_err("out of memory starting TLS; closing the connection conn=%llu",
			       (unsigned long long)c->id);
			conn_abort(c, "out of memory", 1);
			conn_maybe_free(c);
			return;
		}
		c->cli.flags |= SF_HANDSHAKE; /* conn_start once it is done */
		return;
	}
	conn_start(c);
	conn_maybe_free(c);
}

/* Connect production and the replicas: at accept, or after the client's TLS handshake. */
static void conn_start(struct proxy_conn *c)
{
	struct proxy *px = c->px;
	unsigned n = c->nlegs < px->nreps ? c->nlegs : px->nreps;
	uint64_t now = clock_coarse_ns();
	int bfd = netaddr_connect(&px->cfg.backend);

	/* Out of fds: production's socket before any lingering replica leg. */
	while ((bfd == -EMFILE || bfd == -ENFILE) && conn_reclaim_leg(px))
		bfd = netaddr_connect(&px->cfg.backend);
	if (bfd < 0) {
		px->backend_failures++;
		pr_warn("cannot connect to production %s: %s; closing the client connection "
			"conn=%llu",
			px->cfg.backend.text, strerror(-bfd), (unsigned long long)c->id);
		conn_abort(c, "production unreachable", 0);
		return;
	}
	c->be.fd = bfd;
	c->be.flags = SF_OPEN | SF_CONNECTING;
	event_assign(&c->be.ev, px->base, bfd, EV_IO, side_cb, &c->be);
	event_add(&c->be.ev, NULL);
	if (tls_front_backend(px->tls)) {
		c->be.tls = tls_conn_client(px->tls, px->base, &c->be,
					    c->cli.tls ? tls_conn_sni(c->cli.tls) : NULL);
		if (!c->be.tls) {
			px->backend_failures++;
			conn_abort(c, "cannot start TLS towards production", 1);
			return;
		}
	}
	for (unsigned i = 0; i < n; i++)
		leg_open(c, i, px->reps[i], now);
}

void conn_tick(struct proxy *px, uint64_t now)
{
	struct proxy_conn *c, *next;
	uint64_t lingering = 0;

	if (now - px->sweep_ns >= CONN_SWEEP_NS) {
		/* connections idle since the last sweep give back their comparing state */
		px->sweep_ns = now;
		for (c = px->conns; c; c = c->next)
			div_conn_sweep(c->div);
	}
	if (!px->conns_lingering && !px->fin_waits)
		return;
	px->fin_waits = 0;
	for (c = px->conns; c; c = next) {
		next = c->next;
		for (unsigned i = 0; i < c->nlegs; i++) {
			struct leg *leg = &c->legs[i];

			if (!(leg->flags & SF_FIN_WAIT))
				continue;
			if (leg_may_end(leg, now))
				leg_finish_out(leg);
			else
				px->fin_waits++;
		}
		if (!c->front_done)
			continue;
		if (now - c->front_done_ns > px->cfg.linger_ns) {
			for (unsigned i = 0; i < c->nlegs; i++)
				if (c->legs[i].flags & SF_OPEN)
					conn_drop_leg(&c->legs[i], "linger timeout");
		}
		if (!conn_maybe_free(c))
			lingering++;
	}
	px->conns_lingering = lingering;
}

void conn_flush_dirty(struct proxy *px)
{
	while (px->dirty) {
		struct leg *leg = px->dirty;

		leg_undirty(leg);
		leg_flush(leg);
		/* What the socket did not take now goes out on its next EV_WRITE. */
		conn_maybe_free(leg_conn(leg));
	}
}

void conn_close_all(struct proxy *px)
{
	while (px->conns) {
		struct proxy_conn *c = px->conns;

		conn_abort(c, "proxy stopping", 0);
		for (unsigned i = 0; i < c->nlegs; i++)
			conn_drop_leg(&c->legs[i], "proxy stopping");
		conn_maybe_free(c);
	}
	px->conns_lingering = 0;
}

/* ---- mirrored connections: client bytes from another source (proxy.h) ---- */

/*
 * A mirror is a struct proxy_conn whose client and production sides never
 * open: its bytes come from a capture of a conversation that happened
 * elsewhere. Only the legs (one per replica) and divergence work as for an
 * accepted connection, through the same functions.
 */
struct proxy_conn *proxy_mirror_open(struct proxy *px)
{
	struct proxy_conn *c = conn_new(px, -1, px->nreps);
	uint64_t now = clock_coarse_ns();

	if (!c)
		return NULL;
	for (unsigned i = 0; i < c->nlegs; i++)
		leg_open(c, i, px->reps[i], now);
	return c;
}

void proxy_mirror_client(struct proxy_conn *c, const void *buf, size_t n)
{
	struct proxy *px = c->px;
	const unsigned char *p = buf;

	if (c->front_done)
		return;
	while (n) {
		unsigned char *dst;
		size_t room;

		if (chunk_read_space(&px->pool, &dst, &room) < 0) {
			conn_abort(c, "out of memory", 1);
			return;
		}
		if (room > n)
			room = n;
		memcpy(dst, p, room);
		from_client(c, dst, room);
		p += room;
		n -= room;
	}
}

void proxy_mirror_server(struct proxy_conn *c, const void *buf, size_t n)
{
	if (c->front_done || !n)
		return;
	from_backend(c, (unsigned char *)(uintptr_t)buf, n);
}

void proxy_mirror_close(struct proxy_conn *c, int reset)
{
	if (reset)
		conn_abort(c, "mirrored connection reset", 1);
	else if (!c->front_done)
		client_eof(c);
	conn_maybe_free(c);
}

static void *mirror_open(void *arg, uint64_t conn_id)
{
	(void)conn_id;
	return proxy_mirror_open(arg);
}

static void mirror_client(void *c, const void *buf, size_t n)
{
	proxy_mirror_client(c, buf, n);
}

static void mirror_server(void *c, const void *buf, size_t n)
{
	proxy_mirror_server(c, buf, n);
}

static void mirror_close(void *c, int reset)
{
	proxy_mirror_close(c, reset);
}

void proxy_mirror_observer(struct proxy *px, struct proxy_observer *out)
{
	memset(out, 0, sizeof(*out));
	out->conn_open = mirror_open;
	out->client_bytes = mirror_client;
	out->server_bytes = mirror_server;
	out->conn_close = mirror_close;
	out->arg = px;
}

void proxy_hold(struct proxy *px, int hold)
{
	struct proxy_conn *c, *next;
	uint64_t held;

	if ((!px->cfg.join_open && !px->cfg.service_is_client) || px->hold == !!hold)
		return;
	px->hold = !!hold;
	if (hold) {
		px->backlog = !px->cfg.service_is_client;
		px->hold_ns = clock_now_ns();
		if (!px->cfg.join_no_exact)
			exact_hold(px); /* nothing is written to the service from here on */
		return;
	}
	held = clock_now_ns() - px->hold_ns;
	px->holds++;
	px->held_ns_total += held;
	if (!px->cfg.service_is_client)
		pr_info("production's input was held %.1f ms, from just before its freeze until "
			"its "
			"images were written (the new clone joins each open connection from that "
			"point)",
			(double)held / 1e6);
	/* What was queued for the service while it was frozen goes out now. */
	for (c = px->conns; c; c = next) {
		struct side *s = px->cfg.service_is_client ? &c->cli : &c->be;

		next = c->next;
		if ((s->flags & SF_OPEN) && !(s->flags & SF_CONNECTING) && !segq_empty(&s->out)) {
			side_writable(c, s);
			conn_maybe_free(c);
		}
	}
}

void proxy_backlog_end(struct proxy *px)
{
	if (!px->backlog)
		return;
	px->backlog = 0;
	for (struct proxy_conn *c = px->conns; c; c = c->next)
		join_backlog_free(c);
	exact_end(px);
}
