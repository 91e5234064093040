/*
 * join.c - a replica attached while client connections are open joins them
 * (proxy_config.join_open), so that a clone also sees the clients that keep
 * one connection for hours: pools, keep-alive, pipelines.
 *
 * The rule. A connection that began before the replica was attached is
 * joined at its next turn: when the client sends again after production has
 * answered everything it had sent (request/response protocols are then
 * between two requests). A *join* is opened then: a mirrored connection with
 * one leg, to that replica, fed by the connection's data path from that
 * point on (client bytes to the leg, production's answers to divergence),
 * through the same bounded buffers, overflow accounting and debug window as
 * any leg, and ended with the connection.
 *
 * Joining at the freeze. A clone's state is production's at the freeze, so
 * the right point to join a connection is the freeze, not the attach that
 * comes after the restore. While a clone is made, the proxy holds
 * production's input from just before the freeze until its images are
 * written (proxy_hold, timed by CRIU's action script: clonemgr/hold.c;
 * production is frozen meanwhile, so this costs its clients little more
 * than the freeze), and records each connection's
 * conversation from its next turn on: its *backlog*, references to the
 * chunks its bytes are in, at most `buffer` bytes (past that it is dropped
 * and the connection is joined at its next turn after the attach, like one
 * that was in the middle of a turn all along). At the attach, a connection
 * with a backlog is joined at once and given the backlog first, client bytes
 * and production's answers in their order, so the clone gets exactly what
 * production got after the freeze. Connections accepted meanwhile are
 * recorded from their first byte the same way, so they reach the clone too.
 *
 * What the replica missed. The requests before the join are not replayed,
 * except a connection's state: when a connection began with RESP commands
 * that set per-connection state (AUTH, SELECT, HELLO, CLIENT, READONLY,
 * READWRITE), those commands and production's answers to them are kept
 * (at most JOIN_PRE_MAX bytes each way) and replayed on each join first, and
 * compared as a turn. A connection whose state commands cannot be replayed
 * (longer than that, or sent pipelined with other commands, so that their
 * answers cannot be told apart) is not joined and is counted as refused.
 * A connection in the middle of a turn at the hold (production had not
 * answered yet) is joined at its next turn after the attach: the requests it
 * sent in between are production's alone. Protocols with per-connection state
 * that is not made of such commands (MySQL's authenticated session, a
 * transaction open at the freeze, HTTP/2) are joined as they are and the
 * clone rejects or misreads what follows: leave join_open off for them.
 */
#define LOG_PREFIX "proxy"
#include "proxy/proxy-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/tcprepair.h"

#define JOIN_PRE_MAX 512 /* state commands kept per connection, each way */
#define JOIN_CMD_MAX 512 /* a command being read, while the state commands last */

/* A connection's conversation since the hold: the bytes each way, and their order. */
struct bl_mark {
	uint8_t server; /* production's answer, or the client's bytes */
	uint32_t len;
};

struct join_backlog {
	struct segq q[2];      /* the client's bytes, production's */
	struct bl_mark *marks; /* in the order they came */
	unsigned nmarks, capmarks;
	uint64_t bytes;
	int from_start; /* began with the connection: its state commands are in it */
	int from_hold;	/* began at the hold, maybe mid-turn: for exact joins only (exact.c) */
	int over;	/* outgrew the buffer: dropped */
};

/* A connection's opening RESP state commands and production's answers to them. */
struct join_pre {
	uint8_t done;	  /* the first other command came: nothing more is kept */
	uint8_t bad;	  /* what was kept cannot be replayed */
	uint8_t start_ok; /* the command in cur began a read, after production answered */
	unsigned cur_len, req_len, resp_len;
	unsigned char cur[JOIN_CMD_MAX]; /* the command being read */
	unsigned char req[JOIN_PRE_MAX];
	unsigned char resp[JOIN_PRE_MAX];
};

static const char *const state_cmds[] = {"AUTH",   "SELECT",   "HELLO",
					 "CLIENT", "READONLY", "READWRITE"};

/* A decimal after `*` or `$`, then CRLF: its value and the bytes used; 0 incomplete, -1 bad. */
static int resp_num(const unsigned char *p, size_t n, long *v, size_t *used)
{
	size_t i = 1;
	long x = 0;

	if (i >= n)
		return 0;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		x = x * 10 + (p[i] - '0');
		if (x > JOIN_CMD_MAX)
			return -1;
	}
	if (i + 1 >= n)
		return 0;
	if (i == 1 || p[i] != '\r' || p[i + 1] != '\n')
		return -1;
	*v = x;
	*used = i + 2;
	return 1;
}

/*
 * One RESP command at p: its length (and whether it sets connection state),
 * 0 when incomplete, -1 when it is not a RESP array of bulk strings or
 * longer than JOIN_CMD_MAX.
 */
static long resp_command(const unsigned char *p, size_t n, int *state)
{
	long argc, len;
	size_t off, used;
	int rc;

	if (!n)
		return 0;
	if (p[0] != '*')
		return -1;
	rc = resp_num(p, n, &argc, &used);
	if (rc <= 0)
		return rc;
	off = used;
	*state = 0;
	for (long a = 0; a < argc; a++) {
		if (off >= n)
			return 0;
		if (p[off] != '$')
			return -1;
		rc = resp_num(p + off, n - off, &len, &used);
		if (rc <= 0)
			return rc;
		off += used;
		if (off + (size_t)len + 2 > n)
			return off + (size_t)len + 2 > JOIN_CMD_MAX ? -1 : 0;
		if (a == 0)
			for (unsigned k = 0; k < sizeof(state_cmds) / sizeof(state_cmds[0]); k++)
				if (strlen(state_cmds[k]) == (size_t)len &&
				    !strncasecmp((const char *)p + off, state_cmds[k], (size_t)len))
					*state = 1;
		off += (size_t)len + 2;
	}
	return argc > 0 ? (long)off : -1;
}

/* The state commands are over: keep what a join needs, or nothing. */
static void pre_end(struct proxy_conn *c, int bad)
{
	struct join_pre *pre = c->pre;

	pre->done = 1;
	pre->bad |= bad;
	if (!pre->req_len) { /* nothing to replay: any join is right */
		free(pre);
		c->pre = NULL;
	}
}

/*
 * Client bytes while the connection may still be sending state commands.
 * answered: production answered since the client's previous bytes. A
 * command that starts a read after such an answer was sent alone; one that
 * starts right after another in the same read was pipelined with it.
 */
static void pre_client(struct proxy_conn *c, const unsigned char *buf, size_t n, int answered)
{
	struct join_pre *pre = c->pre;

	if (!pre) {
		if (!n || buf[0] != '*')
			return; /* only a connection that begins with a RESP command is watched */
		pre = c->pre = calloc(1, sizeof(*pre));
		if (!pre)
			return;
	}
	if (pre->done)
		return;
	if (!pre->cur_len)
		pre->start_ok = (uint8_t)answered;
	while (n) {
		size_t take = n < JOIN_CMD_MAX - pre->cur_len ? n : JOIN_CMD_MAX - pre->cur_len;
		long len;
		int state = 0;

		memcpy(pre->cur + pre->cur_len, buf, take);
		pre->cur_len += (unsigned)take;
		buf += take;
		n -= take;
		while ((len = resp_command(pre->cur, pre->cur_len, &state)) > 0) {
			if (!state || pre->req_len + (unsigned)len > JOIN_PRE_MAX) {
				/* the first other command (or too much state): were the state
				 * commands before it all answered before it was sent? */
				pre_end(c, !pre->start_ok || state);
				return;
			}
			if (!pre->start_ok) {
				pre_end(c, 1); /* pipelined with what came before */
				return;
			}
			memcpy(pre->req + pre->req_len, pre->cur, (size_t)len);
			pre->req_len += (unsigned)len;
			memmove(pre->cur, pre->cur + len, pre->cur_len - (unsigned)len);
			pre->cur_len -= (unsigned)len;
			pre->start_ok = 0; /* the next command starts in the same read */
		}
		if (len < 0) {
			pre_end(c, !pre->start_ok); /* not RESP, or a huge command */
			return;
		}
	}
}

static void pre_server(struct proxy_conn *c, const unsigned char *buf, size_t n)
{
	struct join_pre *pre = c->pre;

	if (pre->done)
		return;
	if (pre->resp_len + n > JOIN_PRE_MAX) {
		pre_end(c, 1);
		return;
	}
	memcpy(pre->resp + pre->resp_len, buf, n);
	pre->resp_len += (unsigned)n;
}

/* ---- what a join is given ---- */

/* n client bytes at ch[off] to join m: its divergence and its leg. */
static void feed_client(struct proxy_conn *m, struct chunk *ch, uint32_t off, size_t n, int *kept,
			uint64_t now)
{
	div_client_data(m->div, ch->data + off, n);
	leg_feed(&m->legs[0], ch, off, n, kept, now);
}

/* n bytes of production's answers to join m's divergence (an exact join's skip first). */
static void feed_server(struct proxy_conn *m, const unsigned char *p, size_t n)
{
	if (m->srv_skip) {
		size_t k = n < m->srv_skip ? n : (size_t)m->srv_skip;

		m->srv_skip -= k;
		p += k;
		n -= k;
		if (!n)
			return;
	}
	m->prod_answered += n;
	div_server_bytes(m->div, p, n);
}

/* ---- backlogs ---- */

static void bl_clear(struct proxy *px, struct join_backlog *bl)
{
	segq_clear(&px->pool, &bl->q[0]);
	segq_clear(&px->pool, &bl->q[1]);
	free(bl->marks);
	bl->marks = NULL;
	bl->nmarks = bl->capmarks = 0;
	bl->bytes = 0;
}

/* The backlog outgrew what it may hold: the connection joins at its next turn instead. */
static void bl_drop(struct proxy *px, struct join_backlog *bl)
{
	bl->over = 1;
	bl_clear(px, bl);
}

void join_backlog_free(struct proxy_conn *c)
{
	if (!c->bl)
		return;
	bl_clear(c->px, c->bl);
	free(c->bl);
	c->bl = NULL;
}

void join_backlog_add(struct proxy_conn *c, int server, struct chunk *ch, uint32_t off, size_t n,
		      int *kept)
{
	struct proxy *px = c->px;
	struct join_backlog *bl = c->bl;

	if (!bl) {
		/* recorded from a turn: the client sends after production answered all */
		if (server || c->client_turn || c->owner)
			return;
		bl = c->bl = calloc(1, sizeof(*bl));
		if (!bl)
			return;
		bl->from_start = !c->prod_answered;
	}
	if (bl->over)
		return;
	if (bl->bytes + n > px->cfg.buffer) {
		bl_drop(px, bl);
		return;
	}
	if (bl->nmarks && bl->marks[bl->nmarks - 1].server == server) {
		bl->marks[bl->nmarks - 1].len += (uint32_t)n;
	} else {
		if (bl->nmarks == bl->capmarks) {
			unsigned cap = bl->capmarks ? bl->capmarks * 2 : 8;
			struct bl_mark *m = realloc(bl->marks, cap * sizeof(*m));

			if (!m) {
				bl_drop(px, bl);
				return;
			}
			bl->marks = m;
			bl->capmarks = cap;
		}
		bl->marks[bl->nmarks++] =
			(struct bl_mark){.server = (uint8_t)server, .len = (uint32_t)n};
	}
	if (segq_append(&px->pool, &bl->q[server], ch, off, (uint32_t)n) < 0) {
		bl_drop(px, bl);
		return;
	}
	bl->bytes += n;
	*kept = 1;
}

int join_backlog_start(struct proxy_conn *c)
{
	struct proxy *px = c->px;
	struct join_backlog *bl;

	join_backlog_free(c);
	bl = c->bl = calloc(1, sizeof(*bl));
	if (!bl)
		return -ENOMEM;
	bl->from_start = !c->prod_answered && !c->prod_given;
	bl->from_hold = 1;
	if (!segq_empty(&c->be.out)) {
		/* queued for production, not written: production never got them */
		bl->marks = malloc(sizeof(*bl->marks));
		if (!bl->marks || segq_append_all(&px->pool, &bl->q[0], &c->be.out) < 0) {
			join_backlog_free(c);
			return -ENOMEM;
		}
		bl->capmarks = bl->nmarks = 1;
		bl->marks[0] = (struct bl_mark){.server = 0, .len = (uint32_t)c->be.out.bytes};
		bl->bytes = c->be.out.bytes;
	}
	return 0;
}

/* Give join m the backlog's bytes, in their order: client bytes to its leg, answers to divergence.
 */
static void bl_replay(struct proxy_conn *m, const struct join_backlog *bl, uint64_t now)
{
	const struct seg *seg[2] = {bl->q[0].head, bl->q[1].head};
	uint32_t used[2] = {0, 0};

	for (unsigned k = 0; k < bl->nmarks; k++) {
		int d = bl->marks[k].server;
		uint32_t left = bl->marks[k].len;

		while (left && seg[d]) {
			uint32_t l = seg[d]->len - used[d] < left ? seg[d]->len - used[d] : left;
			int kept = 0;

			if (d)
				feed_server(m, seg[d]->ch->data + seg[d]->off + used[d], l);
			else
				feed_client(m, seg[d]->ch, seg[d]->off + used[d], l, &kept, now);
			used[d] += l;
			left -= l;
			if (used[d] == seg[d]->len) {
				seg[d] = seg[d]->next;
				used[d] = 0;
			}
		}
	}
}

/* Does c (or one of its joins) have a leg to rep already? */
static int has_leg(const struct proxy_conn *c, const struct replica *rep)
{
	for (unsigned i = 0; i < c->nlegs; i++)
		if (c->legs[i].rep == rep)
			return 1;
	for (unsigned j = 0; j < c->njoins; j++)
		if (c->joins[j]->nlegs && c->joins[j]->legs[0].rep == rep)
			return 1;
	return 0;
}

/* Feed bytes kept in the connection (not in the read cursor) to a join's leg. */
static void feed_copy(struct proxy_conn *m, const unsigned char *buf, size_t n, uint64_t now)
{
	struct chunk_pool *pool = &m->px->pool;
	struct chunk *ch;
	int kept = 0;

	if (!n || chunk_new_copy(pool, buf, n, &ch) < 0)
		return;
	feed_client(m, ch, 0, n, &kept, now);
	chunk_release(pool, ch);
}

/*
 * c continues exactly on rep: a join whose leg is fd (the clone's end of
 * c, exact.c), given c's backlog since the hold, production's bytes before
 * the freeze (skip) left out of the comparison.
 */
static int open_join_exact(struct proxy_conn *c, struct replica *rep, int fd, uint64_t skip,
			   uint64_t now)
{
	struct proxy *px = c->px;
	struct proxy_conn **js = realloc(c->joins, (c->njoins + 1) * sizeof(*js));
	struct proxy_conn *m;

	if (js)
		c->joins = js;
	if (!js || tcprepair_done(fd) < 0 || !(m = conn_new(px, -1, 1))) {
		close(fd);
		return -1;
	}
	px->conns_accepted--; /* not a client's connection */
	m->owner = c;
	m->srv_skip = skip;
	leg_open_fd(m, 0, rep, fd, now);
	c->joins[c->njoins++] = m;
	rep->joined_exact++;
	bl_replay(m, c->bl, now);
	pr_debug("connection continued exactly conn=%llu replica=%s join=%llu skip=%llu",
		 (unsigned long long)c->id, rep->name, (unsigned long long)m->id,
		 (unsigned long long)skip);
	return 0;
}

static void open_join(struct proxy_conn *c, struct replica *rep, const struct join_backlog *bl,
		      uint64_t now)
{
	struct proxy *px = c->px;
	struct proxy_conn **js = realloc(c->joins, (c->njoins + 1) * sizeof(*js));
	struct proxy_conn *m;

	if (!js)
		return;
	c->joins = js;
	m = conn_new(px, -1, 1);
	if (!m)
		return;
	px->conns_accepted--; /* not a client's connection */
	m->owner = c;
	leg_open(m, 0, rep, now);
	c->joins[c->njoins++] = m;
	if (c->pre && c->pre->req_len && !(bl && bl->from_start)) {
		feed_copy(m, c->pre->req, c->pre->req_len, now);
		feed_server(m, c->pre->resp, c->pre->resp_len);
		rep->joined_preamble++;
	} else {
		rep->joined++;
	}
	if (bl)
		bl_replay(m, bl, now);
	pr_debug("connection joined conn=%llu replica=%s join=%llu state_commands=%u",
		 (unsigned long long)c->id, rep->name, (unsigned long long)m->id,
		 c->pre ? c->pre->req_len : 0);
}

/*
 * A replica was attached: connections it has an end of (peers, exact.c)
 * continue on it exactly; those with a backlog from a turn join it now, from
 * the hold on; the others at their next turn.
 */
void join_replica_added(struct proxy *px, struct replica *rep, struct proxy_peers *peers)
{
	uint64_t now = clock_coarse_ns(), skip = 0;

	if (!px->cfg.join_open)
		return;
	for (struct proxy_conn *c = px->conns; c; c = c->next) {
		int fd;

		if (c->cli.fd < 0 || c->front_done || c->owner)
			continue;
		fd = exact_take(peers, c->id, &skip);
		if (fd >= 0 && c->bl && c->bl->from_hold && !c->bl->over &&
		    open_join_exact(c, rep, fd, skip, now) == 0)
			continue;
		if (fd >= 0)
			close(fd);
		if (c->bl && c->bl->from_hold) {
			/* noted at the hold but not continued: its backlog may start mid-turn */
			rep->join_inexact++;
			c->join_pending = 1;
		} else if (c->bl && !c->bl->over &&
			   !(c->pre && c->pre->bad && !c->bl->from_start)) {
			open_join(c, rep, c->bl, now);
		} else {
			c->join_pending = 1;
		}
	}
	exact_close_rest(peers);
}

void join_client_before(struct proxy_conn *c, const unsigned char *buf, size_t n, uint64_t now)
{
	struct proxy *px = c->px;

	if (c->pre || (!c->prod_answered && !c->client_turn && !c->njoins))
		pre_client(c, buf, n, !c->client_turn);
	if (!c->join_pending || c->client_turn)
		return; /* not at a turn: production has not answered all yet */
	c->join_pending = 0;
	for (unsigned i = 0; i < px->nreps; i++) {
		struct replica *rep = px->reps[i];

		if (has_leg(c, rep))
			continue;
		if (c->pre && c->pre->bad)
			rep->join_refused++;
		else
			open_join(c, rep, NULL, now);
	}
}

void join_client_bytes(struct proxy_conn *c, struct chunk *ch, uint32_t off, size_t n, int *kept,
		       uint64_t now)
{
	struct proxy *px = c->px;

	for (unsigned j = 0; j < c->njoins; j++) {
		struct proxy_conn *m = c->joins[j];

		if (m->front_done)
			continue;
		if (px->ob.client_bytes)
			px->ob.client_bytes(m->obs, ch->data + off, n);
		feed_client(m, ch, off, n, kept, now);
	}
}

void join_server_bytes(struct proxy_conn *c, const unsigned char *buf, size_t n)
{
	struct proxy *px = c->px;

	if (c->pre)
		pre_server(c, buf, n);
	for (unsigned j = 0; j < c->njoins; j++) {
		struct proxy_conn *m = c->joins[j];

		if (m->front_done)
			continue;
		feed_server(m, buf, n);
		if (px->ob.server_bytes)
			px->ob.server_bytes(m->obs, buf, n);
	}
}

void join_owner_done(struct proxy_conn *c, int reset)
{
	struct proxy_conn **js = c->joins;
	unsigned n = c->njoins;

	c->joins = NULL;
	c->njoins = 0;
	for (unsigned j = 0; j < n; j++)
		js[j]->owner = NULL;
	for (unsigned j = 0; j < n; j++)
		proxy_mirror_close(js[j], reset); /* may free it */
	free(js);
}

void join_conn_free(struct proxy_conn *c)
{
	struct proxy_conn *o = c->owner;

	if (o) {
		for (unsigned j = 0; j < o->njoins; j++)
			if (o->joins[j] == c) {
				o->joins[j] = o->joins[--o->njoins];
				break;
			}
	}
	for (unsigned j = 0; j < c->njoins; j++)
		c->joins[j]->owner = NULL;
	free(c->joins);
	free(c->pre);
}
