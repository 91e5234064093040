/*
 * turns.c - production's turns of one connection, and the followers that
 * compare a replica's answers with them (algorithm in divergence.h).
 */
#include "divergence/divergence.h"
#include "divergence/hasher.h"

#include <stdlib.h>
#include <string.h>

struct turn {
	uint64_t len; /* bytes production sent in this turn */
	uint64_t hash;
	uint64_t end_client; /* client bytes sent when the turn ended */
};

struct follower {
	struct div_counts *sink; /* NULL: slot unused, finished or detached */
	int lost;		 /* not comparing any more; each new production turn is unchecked */
	uint64_t turn;		 /* index of the turn being filled */
	uint64_t got;		 /* bytes of that turn received */
	struct div_hasher h;
	int diverged; /* this connection already counted as diverged */
};

struct div_conn {
	uint64_t client_total; /* client bytes so far */
	uint64_t first;	       /* index of the oldest turn still in the ring */
	uint64_t next;	       /* index the next turn will get */
	int open;	       /* turn next-1 is still receiving bytes */
	int ended;	       /* production is over */
	struct div_hasher cur; /* hash of the open turn */
	unsigned cap, max;     /* ring size now, and its bound */
	struct turn *ring;
	unsigned nfollowers;
	struct follower f[];
};

static struct turn *turn_at(struct div_conn *dc, uint64_t idx)
{
	return &dc->ring[idx % dc->cap];
}

struct div_conn *div_conn_new(unsigned nfollowers, unsigned max_turns)
{
	struct div_conn *dc = calloc(1, sizeof(*dc) + nfollowers * sizeof(struct follower));

	if (!dc)
		return NULL;
	dc->max = max_turns < 4 ? 4 : max_turns;
	dc->cap = 4;
	dc->ring = calloc(dc->cap, sizeof(*dc->ring));
	if (!dc->ring) {
		free(dc);
		return NULL;
	}
	dc->nfollowers = nfollowers;
	div_hasher_init(&dc->cur);
	for (unsigned i = 0; i < nfollowers; i++)
		div_hasher_init(&dc->f[i].h);
	return dc;
}

void div_conn_free(struct div_conn *dc)
{
	if (!dc)
		return;
	div_hasher_release(&dc->cur);
	for (unsigned i = 0; i < dc->nfollowers; i++)
		div_hasher_release(&dc->f[i].h);
	free(dc->ring);
	free(dc);
}

uint64_t div_turns(const struct div_conn *dc)
{
	return dc->next;
}

static void note_diverged(struct follower *f)
{
	f->sink->turns_diverged++;
	if (!f->diverged) {
		f->diverged = 1;
		f->sink->conns_diverged++;
	}
}

/*
 * Follower f stops comparing: every turn from its current one on, and every
 * turn production adds later, is unchecked.
 */
static void follower_give_up(struct div_conn *dc, struct follower *f)
{
	f->sink->turns_unchecked += dc->next - f->turn;
	div_hasher_release(&f->h);
	f->lost = 1;
}

static int follower_active(const struct follower *f)
{
	return f->sink && !f->lost;
}

/* Oldest turn any active follower still needs. */
static uint64_t oldest_needed(struct div_conn *dc)
{
	uint64_t min = dc->next;

	for (unsigned i = 0; i < dc->nfollowers; i++)
		if (follower_active(&dc->f[i]) && dc->f[i].turn < min)
			min = dc->f[i].turn;
	return min;
}

/* Make room for one more turn: drop turns no follower needs, grow, or evict. */
static void ring_make_room(struct div_conn *dc)
{
	uint64_t need = oldest_needed(dc);

	if (need > dc->first)
		dc->first = need;
	if (dc->next - dc->first < dc->cap)
		return;
	if (dc->cap < dc->max) {
		unsigned ncap = dc->cap * 2 > dc->max ? dc->max : dc->cap * 2;
		struct turn *nr = calloc(ncap, sizeof(*nr));

		if (nr) {
			for (uint64_t i = dc->first; i < dc->next; i++)
				nr[i % ncap] = *turn_at(dc, i);
			free(dc->ring);
			dc->ring = nr;
			dc->cap = ncap;
			return;
		}
	}
	/* Full at its bound: the followers still on the oldest turn stop comparing. */
	for (unsigned i = 0; i < dc->nfollowers; i++)
		if (follower_active(&dc->f[i]) && dc->f[i].turn == dc->first)
			follower_give_up(dc, &dc->f[i]);
	dc->first++;
}

static void close_open_turn(struct div_conn *dc)
{
	struct turn *t;

	if (!dc->open)
		return;
	t = turn_at(dc, dc->next - 1);
	t->len = dc->cur.len;
	t->hash = div_hasher_finish(&dc->cur);
	t->end_client = dc->client_total;
	dc->open = 0;
}

void div_client_bytes(struct div_conn *dc, size_t n)
{
	close_open_turn(dc);
	dc->client_total += n;
}

void div_server_bytes(struct div_conn *dc, const void *buf, size_t n)
{
	if (!n || dc->ended)
		return;
	if (!dc->open) {
		ring_make_room(dc);
		dc->next++;
		dc->open = 1;
		for (unsigned i = 0; i < dc->nfollowers; i++)
			if (dc->f[i].sink && dc->f[i].lost)
				dc->f[i].sink->turns_unchecked++;
	}
	div_hasher_update(&dc->cur, buf, n);
}

void div_server_end(struct div_conn *dc)
{
	close_open_turn(dc);
	dc->ended = 1;
}

void div_follower_start(struct div_conn *dc, unsigned idx, struct div_counts *sink)
{
	struct follower *f;

	if (idx >= dc->nfollowers)
		return;
	f = &dc->f[idx];
	f->sink = sink;
	f->lost = 0;
	f->turn = dc->next - (dc->open ? 1 : 0);
	f->got = 0;
	f->diverged = 0;
	div_hasher_init(&f->h);
}

/* Compare follower f's finished turn with production's and move to the next. */
static void follower_finish_turn(struct follower *f, const struct turn *t)
{
	uint64_t h = div_hasher_finish(&f->h);

	f->sink->turns_compared++;
	if (f->got != t->len || h != t->hash)
		note_diverged(f);
	f->turn++;
	f->got = 0;
}

/* True when production's turn idx is complete (not the open one). */
static int turn_closed(const struct div_conn *dc, uint64_t idx)
{
	return idx < dc->next && !(dc->open && idx == dc->next - 1);
}

void div_follower_bytes(struct div_conn *dc, unsigned idx, const void *buf, size_t n,
			uint64_t written)
{
	const unsigned char *p = buf;
	struct follower *f;

	if (idx >= dc->nfollowers || !follower_active(&dc->f[idx]))
		return;
	f = &dc->f[idx];
	while (n > 0) {
		struct turn *t;
		size_t take;

		if (f->turn < dc->first) {
			follower_give_up(dc, f);
			return;
		}
		if (!turn_closed(dc, f->turn)) {
			/* Production has not finished (or begun) this turn, so the
			 * replica cannot be past it either. */
			div_hasher_update(&f->h, p, n);
			f->got += n;
			return;
		}
		t = turn_at(dc, f->turn);
		if (written <= t->end_client) {
			take = n; /* the replica has not seen the next turn's request */
		} else {
			take = f->got < t->len ? (size_t)(t->len - f->got) : 0;
			if (take > n)
				take = n;
		}
		div_hasher_update(&f->h, p, take);
		f->got += take;
		p += take;
		n -= take;
		if (written > t->end_client && f->got >= t->len)
			follower_finish_turn(f, t);
	}
}

void div_follower_end(struct div_conn *dc, unsigned idx, enum div_end how)
{
	struct follower *f;

	if (idx >= dc->nfollowers || !follower_active(&dc->f[idx]))
		return;
	f = &dc->f[idx];
	if (how == DIV_END_DROPPED || f->turn < dc->first) {
		follower_give_up(dc, f);
		return;
	}
	/* The replica has said all it will say. */
	for (; f->turn < dc->next;) {
		if (turn_closed(dc, f->turn)) {
			follower_finish_turn(f, turn_at(dc, f->turn));
		} else {
			/* Production's turn is still open: compare with what it sent so far. */
			uint64_t h = div_hasher_finish(&f->h);

			f->sink->turns_compared++;
			if (f->got != dc->cur.len || h != div_hasher_peek(&dc->cur))
				note_diverged(f);
			f->turn++;
		}
	}
	if (f->got > 0) {
		/* Bytes beyond anything production sent. */
		f->sink->turns_compared++;
		note_diverged(f);
	}
	div_hasher_release(&f->h);
	f->sink = NULL;
}

void div_follower_detach(struct div_conn *dc, unsigned idx)
{
	if (idx >= dc->nfollowers)
		return;
	div_hasher_release(&dc->f[idx].h);
	dc->f[idx].sink = NULL;
	dc->f[idx].lost = 0;
}
