/*
 * replay.c - the upstreams a clone sees: each of its connections is answered
 * from production's recording (the matching rules are in aggregator.h). What
 * the clone sends is compared, then dropped; nothing reaches the real
 * upstream.
 *
 * A clone connection is in one of these states:
 *   unbound   - no recording chosen yet (its first request not matched);
 *   expecting - bound; waiting for its next request to arrive and match;
 *   answering - its request matched turn T: sending T's recorded answer, as
 *               much of it as production has received so far;
 *   ending    - production's connection ended there: end the clone's too.
 * It waits for production (not for the clone) at most agg->wait_ns.
 */
#define LOG_PREFIX "aggregator"
#include "aggregator/agg-int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#define PEND_MAX (1 << 20) /* what a clone may send ahead of production */
#define OUT_MAX (4 << 20)  /* answer bytes queued toward a clone that does not read */
#define ACCEPT_BATCH 64	   /* connections accepted per wake-up of a clone's listener */

static void process(struct agg_cconn *cc);

static void unbind(struct agg_cconn *cc)
{
	if (cc->pc)
		agg_pconn_unref(cc->pc);
	cc->pc = NULL;
	cc->answering = 0;
	cc->sent = 0;
	cc->content_matched = 0;
}

static void bind_at(struct agg_cconn *cc, struct agg_pconn *pc, unsigned turn)
{
	if (cc->pc != pc) {
		unbind(cc);
		pc->refs++;
		cc->pc = pc;
	}
	cc->turn = turn;
}

void agg_cconn_free(struct agg_cconn *cc)
{
	struct agg_clone_up *cu = cc->cu;

	unbind(cc);
	if (cc->bev)
		bufferevent_free(cc->bev);
	if (cc->prev)
		cc->prev->next = cc->next;
	else
		cu->conns = cc->next;
	if (cc->next)
		cc->next->prev = cc->prev;
	free(cc->pend);
	free(cc);
}

/* End the clone's connection abruptly (RST), e.g. a request nobody answers. */
static void reset_conn(struct agg_cconn *cc)
{
	struct linger lg = {1, 0};

	setsockopt(bufferevent_getfd(cc->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	agg_cconn_free(cc);
}

static uint64_t bit_of(const struct agg_cconn *cc)
{
	return 1ULL << cc->cu->cl->slot;
}

/*
 * Does the clone's pending request equal turn t's? 1: yes and complete,
 * 0: so far so good (wait for more of either side), -1: no.
 */
static int compare(const struct agg_cconn *cc, const struct agg_pconn *pc, unsigned t)
{
	const struct agg_turn *tr = &pc->turns[t];
	uint32_t n = cc->pend_len < tr->req_len ? cc->pend_len : tr->req_len;

	if (tr->used_by & bit_of(cc))
		return -1;
	if (n && memcmp(cc->pend, pc->data + tr->off, n) != 0)
		return -1;
	if (cc->pend_len < tr->req_len)
		return 0;
	if (!agg_turn_req_complete(pc, t))
		return 0; /* production's request may still grow */
	if (tr->req_len == 0 && t != 0)
		return -1; /* only a first turn may have no request (a server greeting) */
	return 1;
}

/* Rule 2: the oldest matching turn since the clone was attached, any connection. */
static int search(struct agg_cconn *cc, struct agg_pconn **pcp, unsigned *tp)
{
	int maybe = 0;

	if (cc->pend_len == 0)
		return 0;
	for (struct agg_pconn *pc = cc->cu->up->head; pc; pc = pc->next) {
		for (unsigned t = 0; t < pc->nturns; t++) {
			int m;

			if (pc->turns[t].ns < cc->cu->attach_ns || pc->turns[t].req_len == 0)
				continue;
			m = compare(cc, pc, t);
			if (m == 1) {
				*pcp = pc;
				*tp = t;
				return 1;
			}
			if (m == 0)
				maybe = 1;
		}
	}
	return maybe ? 0 : -1;
}

/*
 * Consume turn t's request from pend and start answering. by_content: found
 * by rule 2 (the connection stays "content matched" while it then goes on
 * in order there).
 */
static void take(struct agg_cconn *cc, struct agg_pconn *pc, unsigned t, int by_content)
{
	struct agg_turn *tr = &pc->turns[t];

	pr_debug("clone=%u upstream=%s conn=%llu request=%uB matched production conn=%llu turn=%u "
		 "by=%s",
		 cc->cu->cl->id, cc->cu->up->right.text, (unsigned long long)cc->index, tr->req_len,
		 (unsigned long long)pc->seq, t, by_content ? "content" : "order");
	bind_at(cc, pc, t);
	if (tr->req_len)
		memmove(cc->pend, cc->pend + tr->req_len, cc->pend_len - tr->req_len);
	cc->pend_len -= tr->req_len;
	tr->used_by |= bit_of(cc);
	cc->answering = 1;
	cc->sent = 0;
	cc->wait_since = 0;
	if (by_content) {
		cc->content_matched = 1;
		cc->cu->by_content++;
	} else {
		cc->cu->in_order++;
	}
}

static struct agg_pconn *by_seq(struct agg_up *up, uint64_t seq)
{
	for (struct agg_pconn *pc = up->head; pc; pc = pc->next)
		if (pc->seq == seq)
			return pc;
	return NULL;
}

/* 1: a turn was taken; 0: wait; -1: nothing can answer this (now or later). */
static int match(struct agg_cconn *cc)
{
	struct agg_clone_up *cu = cc->cu;
	struct agg_pconn *pc;
	unsigned t;
	int m, expected_gone = 0;

	/* Rule 1: in order. */
	if (!cc->pc) {
		/* Production's counterpart: its connection number base + index. */
		pc = cc->index == UINT64_MAX ? NULL : by_seq(cu->up, cu->base_seq + cc->index);
		if (!pc)
			m = 0; /* not opened yet: the clone may be ahead */
		else if (pc->nturns)
			m = compare(cc, pc, 0);
		else
			m = pc->closed || pc->truncated ? -1 : 0;
		if (m == 1) {
			take(cc, pc, 0, 0); /* also answers a greeting when nothing was asked */
			return 1;
		}
		if (cc->pend_len == 0)
			return 0;
		if (m == 0)
			goto rule2_or_wait;
		expected_gone = 1; /* production's counterpart asked something else */
	} else if (cc->turn < cc->pc->nturns) {
		m = compare(cc, cc->pc, cc->turn);
		if (m == 1) {
			take(cc, cc->pc, cc->turn, 0);
			return 1;
		}
		if (m == 0)
			goto rule2_or_wait;
		expected_gone = 1;
	} else if (cc->pc->closed || cc->pc->truncated) {
		expected_gone = 1; /* the clone asks more than production did there */
	} else if (cc->pend_len == 0) {
		return 0;
	}
	if (expected_gone) {
		pr_debug("clone=%u upstream=%s conn=%llu request=%uB differs from production's in "
			 "order",
			 cu->cl->id, cu->up->right.text, (unsigned long long)cc->index,
			 cc->pend_len);
		cu->diverged++;
		unbind(cc);
	}
rule2_or_wait:
	if (cc->pend_len == 0)
		return 0;
	m = search(cc, &pc, &t);
	if (m == 1) {
		take(cc, pc, t, 1);
		return 1;
	}
	return 0; /* production may still make this request: wait, up to agg->wait_ns */
}

/* Send what we have of the answer. 1 when the whole answer is sent. */
static int send_answer(struct agg_cconn *cc)
{
	struct agg_pconn *pc = cc->pc;
	struct agg_turn *tr = &pc->turns[cc->turn];
	struct evbuffer *out = bufferevent_get_output(cc->bev);

	if (cc->sent < tr->resp_len) {
		size_t room =
			evbuffer_get_length(out) < OUT_MAX ? OUT_MAX - evbuffer_get_length(out) : 0;
		size_t n = tr->resp_len - cc->sent;

		if (n > room)
			n = room;
		if (n) {
			bufferevent_write(cc->bev, pc->data + tr->off + tr->req_len + cc->sent, n);
			cc->sent += (uint32_t)n;
			cc->cu->bytes_answered += n;
		}
	}
	return cc->sent == tr->resp_len && agg_turn_resp_complete(pc, cc->turn);
}

static void process(struct agg_cconn *cc)
{
	for (int guard = 0; guard < 4096; guard++) {
		int r;

		if (cc->answering) {
			if (!send_answer(cc))
				return;
			cc->answering = 0;
			cc->sent = 0;
			cc->turn++;
		}
		if (cc->pc && cc->pend_len == 0 && cc->pc->closed && cc->turn >= cc->pc->nturns) {
			/* Production's connection ended here: end the clone's the same way. */
			if (cc->pc->reset) {
				reset_conn(cc);
				return;
			}
			if (evbuffer_get_length(bufferevent_get_output(cc->bev)) == 0)
				shutdown(bufferevent_getfd(cc->bev), SHUT_WR);
			return;
		}
		r = match(cc);
		if (r == 1)
			continue;
		if (cc->pend_len && !cc->wait_since)
			cc->wait_since = clock_coarse_ns();
		return;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct agg_cconn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	if (cc->pend_len + n > PEND_MAX) {
		pr_warn("clone %u sent %zu bytes to upstream %s that production never sent; "
			"resetting",
			cc->cu->cl->id, (size_t)cc->pend_len + n, cc->cu->up->right.text);
		cc->cu->unanswered++;
		reset_conn(cc);
		return;
	}
	if (cc->pend_len + n > cc->pend_cap) {
		uint32_t cap = cc->pend_cap ? cc->pend_cap : 1024;
		unsigned char *np;

		while (cap < cc->pend_len + n)
			cap *= 2;
		np = realloc(cc->pend, cap);
		if (!np) {
			reset_conn(cc);
			return;
		}
		cc->pend = np;
		cc->pend_cap = cap;
	}
	evbuffer_remove(in, cc->pend + cc->pend_len, n);
	cc->pend_len += (uint32_t)n;
	cc->cu->bytes_dropped += n; /* what a clone writes never goes anywhere */
	process(cc);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		agg_cconn_free(arg);
}

/* A clone connection on fd (taken over, also on failure), not started; NULL out of memory. */
static struct agg_cconn *cconn_new(struct agg_clone_up *cu, int fd)
{
	struct agg_cconn *cc = calloc(1, sizeof(*cc));
	int one = 1;

	if (!cc) {
		close(fd);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cc->cu = cu;
	cc->bev = bufferevent_socket_new(cu->up->agg->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cc->bev) {
		close(fd);
		free(cc);
		return NULL;
	}
	cc->next = cu->conns;
	if (cu->conns)
		cu->conns->prev = cc;
	cu->conns = cc;
	bufferevent_setcb(cc->bev, on_read, on_write, on_event, cc);
	return cc;
}

void agg_replay_accept(evutil_socket_t fd, short what, void *arg)
{
	struct agg_clone_up *cu = arg;

	(void)what;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct agg_cconn *cc;

		if (cfd < 0)
			return;
		cc = cconn_new(cu, cfd);
		if (!cc)
			continue;
		cc->index = cu->next_index++;
		cu->conns_total++;
		bufferevent_enable(cc->bev, EV_READ | EV_WRITE);
		process(cc); /* a server that speaks first answers at once */
	}
}

/*
 * Where in pc's recording a connection is whose service end had sent q
 * request bytes and received a answer bytes: the turn, how much of its
 * request was sent already (partial) or how much of its answer received
 * (answering). 0, or -1 when no turn fits.
 */
static int position(const struct agg_pconn *pc, uint64_t q, uint64_t a, unsigned *turn,
		    uint32_t *partial, int *answering, uint32_t *sent)
{
	uint64_t r = 0, s = 0;

	*partial = *sent = 0;
	*answering = 0;
	for (unsigned t = 0; t <= pc->nturns; t++) {
		const struct agg_turn *tr = t < pc->nturns ? &pc->turns[t] : NULL;

		*turn = t;
		if (q == r && a == s)
			return 0; /* between two turns: its next request is turn t's */
		if (!tr)
			break;
		if (a == s && q > r && q < r + tr->req_len) {
			*partial = (uint32_t)(q - r); /* in the middle of its request */
			return 0;
		}
		if (q == r + tr->req_len && a >= s && a < s + tr->resp_len) {
			*answering = 1; /* waiting for (the rest of) the answer */
			*sent = (uint32_t)(a - s);
			return 0;
		}
		r += tr->req_len;
		s += tr->resp_len;
	}
	return -1;
}

int agg_replay_continue(struct agg_clone_up *cu, int fd, struct agg_pconn *pc, uint64_t sent,
			uint64_t received)
{
	unsigned turn;
	uint32_t partial, got;
	int answering;
	struct agg_cconn *cc;

	if (pc->truncated || position(pc, sent, received, &turn, &partial, &answering, &got) < 0)
		return -1;
	cc = cconn_new(cu, fd);
	if (!cc)
		return 0;	/* fd is closed: the clone sees its connection end */
	cc->index = UINT64_MAX; /* not one of the clone's own: never matched by order */
	bind_at(cc, pc, turn);
	if (partial) {
		/* the part of the request production's end had sent is the clone's too */
		cc->pend = malloc(partial);
		if (cc->pend) {
			memcpy(cc->pend, pc->data + pc->turns[turn].off, partial);
			cc->pend_len = cc->pend_cap = partial;
		}
	}
	if (answering) {
		pc->turns[turn].used_by |= bit_of(cc);
		cc->answering = 1;
		cc->sent = got;
	}
	cu->continued++;
	pr_debug("clone=%u upstream=%s: production conn=%llu continues at turn %u (sent %llu, "
		 "received %llu)",
		 cu->cl->id, cu->up->right.text, (unsigned long long)pc->seq, turn,
		 (unsigned long long)sent, (unsigned long long)received);
	bufferevent_enable(cc->bev, EV_READ | EV_WRITE);
	process(cc);
	return 0;
}

void agg_replay_wake(evutil_socket_t fd, short what, void *arg)
{
	struct agg_up *up = arg;
	struct agg *a = up->agg;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < AGG_MAX_CLONES; i++) {
		struct agg_cconn *cc, *next;

		if (!a->clones[i])
			continue;
		for (cc = a->clones[i]->ups[up->idx].conns; cc; cc = next) {
			next = cc->next;
			process(cc);
		}
	}
}

void agg_replay_tick(struct agg *a, uint64_t now)
{
	for (unsigned i = 0; i < AGG_MAX_CLONES; i++) {
		if (!a->clones[i])
			continue;
		for (unsigned u = 0; u < a->nups; u++) {
			struct agg_clone_up *cu = &a->clones[i]->ups[u];
			struct agg_cconn *cc, *next;

			for (cc = cu->conns; cc; cc = next) {
				next = cc->next;
				if (!cc->wait_since || now - cc->wait_since < a->wait_ns)
					continue;
				pr_info("clone %u: a request to upstream %s that production never "
					"made "
					"(%u bytes) went unanswered for %.1f s; resetting that "
					"connection",
					cu->cl->id, cu->up->right.text, cc->pend_len,
					(double)(now - cc->wait_since) / 1e9);
				cu->unanswered++;
				reset_conn(cc);
			}
		}
	}
}
