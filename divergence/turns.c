/*
 * turns.c - production's turns of one connection, and the followers that
 * compare a replica's normalised answers with them (algorithm in
 * divergence.h). A turn is settled, and counted per request type, once every
 * follower has compared it; that is when the control's verdict on the same
 * turn is known.
 *
 * To locate the first differing byte, production's normalised bytes that a
 * follower has not compared yet are kept in a window of 4 KiB blocks
 * (div_options.window per connection at most; pooled blocks; an idle
 * connection holds none). A follower that falls further behind than the
 * window still gets its verdict from the hashes, without an offset.
 */
#include "divergence/div-int.h"
#include "divergence/hasher.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct turn {
	uint64_t start;	     /* production's normalised offset of the turn's first byte */
	uint64_t len;	     /* normalised bytes (so far, while open) */
	uint64_t hash;	     /* valid once closed */
	uint64_t end_client; /* client bytes sent when the turn ended */
	uint64_t msgs;	     /* protocol messages that ended in this turn */
	uint64_t tail;	     /* bytes after the last of them */
	uint16_t type;
	uint8_t req_n;
	unsigned char req[DIV_EXCERPT_REQ];
};

enum { FS_NONE, FS_MATCH, FS_DIFF, FS_UNCHECKED };

/*
 * A follower's current turn: the last bytes it compared, and its hash
 * (last: a rest that takes the hash from production keeps only what is
 * before it, fsync_keep_size).
 */
struct fsync {
	unsigned back_n;
	unsigned char back[DIV_EXCERPT_BEFORE];
	struct div_hasher h;
};

/*
 * A follower's working state, held only while an answer is on its way (in
 * struct div_work): its normaliser, its turn's hash, a difference being
 * recorded.
 */
struct fwork {
	struct fsync s;
	struct div_norm norm;
	int64_t diff_at;      /* the first difference in the current turn, -1 none */
	unsigned char *stash; /* bytes said before production said them (a pooled block) */
	unsigned stash_n;
	uint64_t stash_at; /* their offset in the turn */
	unsigned before_n, after_n, pafter_n;
	unsigned char before[DIV_EXCERPT_BEFORE];
	unsigned char after[DIV_EXCERPT_AFTER];
	/* production's bytes at the difference, kept when it is found: by the
	 * time the turn is over the window may have let them go */
	unsigned char pafter[DIV_EXCERPT_AFTER];
};

/*
 * What a connection needs only while a request or an answer is on its way:
 * the request typer, the normalisers, a difference being recorded. An idle
 * connection gives it back (div_conn_sweep) and keeps the few bytes that
 * make it again (struct div_typer_rest, struct div_norm_rest).
 */
struct div_work {
	struct div_reqlog log;
	struct div_typer typer;
	struct div_norm pnorm;
	struct fwork f[];
};

/*
 * Production's normalised bytes [lo, hi) that a follower may still compare,
 * in blocks n of them from block first, slot k % max holding block k.
 */
struct div_window {
	uint64_t lo, hi, first;
	unsigned max; /* blocks at most (div_options.window) */
	unsigned n;
	unsigned last_cap; /* bytes the last block can hold (< DIV_BLOCK: not pooled) */
	unsigned char *blk[];
};

/* One follower's verdict on one turn. */
struct fslot {
	uint64_t key; /* hash and length of its answer */
	uint64_t exc; /* excerpt seq, 0 none */
	uint8_t state;
};

struct follower {
	struct div_counts *sink; /* NULL: slot unused, finished or detached */
	struct div_replica *rep; /* per-type counts and excerpts; kept after the end */
	uint8_t lost;		 /* not comparing any more; each new production turn is unchecked */
	uint8_t diverged;	 /* this connection already counted as diverged */
	uint8_t norm_on;
	uint8_t gap;	   /* some bytes of the current turn could not be compared: no offset */
	uint8_t hash_prod; /* resting: its hash state is production's (SYNC_HASH) */
	uint16_t idx;	   /* its slot: &dc->f[idx] (follower_conn) */
	uint64_t turn;	   /* index of the turn being filled */
	uint64_t got;	   /* normalised bytes of that turn received */
	uint64_t tmsgs;	   /* messages ended in that turn */
	uint64_t since;	   /* bytes since the last of them (or the turn's start) */
	uint64_t written;  /* client bytes given to the replica */
	/*
	 * While resting: w is NULL, its normaliser is in nrest, and its hash
	 * and last bytes in keep, or nowhere when they are production's
	 * (follower_sync). Else w is &dc->w->f[its slot].
	 */
	struct fwork *w;
	struct fsync *keep;
	struct div_norm_rest nrest;
};

struct div_conn {
	const struct div_rules *rules;
	struct div_types *types;
	uint64_t id;
	enum div_protocol proto;
	unsigned cap; /* ring size now (at most ring_max) */
	unsigned proto_known : 1, norm_on : 1, spoke : 1;
	unsigned touched : 1;	/* fed since the last sweep */
	unsigned busy : 1;	/* never rests (div_conn_never_rest) */
	unsigned open : 1;	/* turn next-1 is still receiving bytes */
	unsigned ended : 1;	/* production is over */
	unsigned own_rules : 1; /* rules are div_conn_new's defaults, freed with it */
	/* while resting: the typer's head is production's last turn's request (1) or in thead */
	unsigned thead_turn : 1;
	uint8_t thead_len;
	int16_t control;     /* follower slot of the control, -1 none */
	uint16_t nfollowers; /* at most INT16_MAX */
	struct div_work *w;  /* NULL while resting */
	/*
	 * While resting: the typer (and with HTTP the request log's count, its
	 * requests), its head, production's normaliser.
	 */
	struct div_typer_rest trest;
	unsigned char *thead;
	struct div_norm_rest prest;
	uint64_t client_total; /* client bytes so far */
	uint64_t norm_total;   /* production's normalised bytes so far */
	uint64_t first;	       /* index of the oldest turn still in the ring */
	uint64_t next;	       /* index the next turn will get */
	uint64_t settled;      /* turns before this one are counted per type */
	struct div_hasher cur; /* hash of the open turn */
	struct turn *ring;
	struct fslot *slots;	/* cap x nfollowers */
	struct div_window *win; /* that window, while it holds bytes */
	struct follower f[];
};

/* Turns kept at most (div_options.max_turns, at least 4). */
static unsigned ring_max(const struct div_conn *dc)
{
	return dc->rules->o.max_turns < 4 ? 4 : dc->rules->o.max_turns;
}

static struct turn *turn_at(struct div_conn *dc, uint64_t idx)
{
	return &dc->ring[idx % dc->cap];
}

static struct fslot *slot_at(struct div_conn *dc, uint64_t idx, unsigned k)
{
	return &dc->slots[(idx % dc->cap) * dc->nfollowers + k];
}

/* Bytes of a connection's working state, and of a window of max blocks. */
static size_t work_size(const struct div_conn *dc)
{
	return sizeof(struct div_work) + dc->nfollowers * sizeof(struct fwork);
}

static size_t win_size(unsigned max)
{
	return sizeof(struct div_window) + max * sizeof(unsigned char *);
}

static struct div_conn *follower_conn(struct follower *f)
{
	return (struct div_conn *)((char *)(f - f->idx) - offsetof(struct div_conn, f));
}

static int follower_active(const struct follower *f)
{
	return f->sink && !f->lost;
}

static void stash_clear(struct follower *f);
static void followers_catch_up(struct div_conn *dc);

/* ---- production's window ---- */

/* A window block: full ones come from the pool; the last may be short (last_cap). */
static void win_block_free(unsigned char *b, unsigned cap)
{
	if (cap == DIV_BLOCK)
		div_block_put(b);
	else
		div_piece_put(b, cap);
}

/*
 * Make the last block hold at least need bytes. Most turns are short (a
 * RESP +OK, a small HTTP response), so a block starts small and grows to a
 * pooled DIV_BLOCK only when a turn needs it: an idle connection holding one
 * short answer for a slow replica costs a small allocation, not 4 KiB.
 */
static void win_block_fit(struct div_conn *dc, uint64_t k, size_t need)
{
	struct div_window *wn = dc->win;
	unsigned char **slot = &wn->blk[k % wn->max], *b;
	unsigned cap = need <= 128 ? 128 : need <= 512 ? 512 : DIV_BLOCK;

	if (*slot && wn->last_cap >= need)
		return;
	b = cap == DIV_BLOCK ? div_block_get() : div_piece_get(cap);
	if (*slot) {
		memcpy(b, *slot, wn->last_cap);
		win_block_free(*slot, wn->last_cap);
	}
	*slot = b;
	wn->last_cap = cap;
}

static void win_release_first(struct div_conn *dc)
{
	struct div_window *wn = dc->win;

	win_block_free(wn->blk[wn->first % wn->max], wn->n == 1 ? wn->last_cap : DIV_BLOCK);
	wn->blk[wn->first % wn->max] = NULL;
	wn->first++;
	wn->n--;
	if (wn->lo < wn->first * DIV_BLOCK)
		wn->lo = wn->first * DIV_BLOCK;
	if (wn->lo > wn->hi)
		wn->lo = wn->hi;
}

/*
 * An empty window with nothing before its end carries no state (the next
 * bytes start it afresh, or go on from its end, which is the same place):
 * it goes.
 */
static void win_drop_empty(struct div_conn *dc)
{
	if (dc->win && !dc->win->n && dc->win->lo == dc->win->hi) {
		div_piece_put(dc->win, win_size(dc->win->max));
		dc->win = NULL;
	}
}

static void win_append(struct div_conn *dc, const unsigned char *p, size_t n)
{
	struct div_window *wn = dc->win;

	if (!wn) {
		unsigned max = (unsigned)((dc->rules->o.window + DIV_BLOCK - 1) / DIV_BLOCK);

		if (!max)
			return;
		wn = div_piece_get(win_size(max));
		memset(wn, 0, win_size(max));
		wn->max = max;
		wn->lo = wn->hi = dc->norm_total;
		dc->win = wn;
	}
	if (wn->hi != dc->norm_total) {
		/* bytes went by while nobody compared: start afresh */
		while (wn->n)
			win_release_first(dc);
		wn->lo = wn->hi = dc->norm_total;
	}
	while (n) {
		uint64_t k = wn->hi / DIV_BLOCK, off = wn->hi % DIV_BLOCK;
		size_t c = DIV_BLOCK - off < n ? DIV_BLOCK - off : n;

		if (!wn->n || k >= wn->first + wn->n) {
			if (wn->n == wn->max)
				win_release_first(dc);
			if (!wn->n)
				wn->first = k;
			wn->blk[k % wn->max] = NULL;
			wn->n++;
		}
		win_block_fit(dc, k, off + c);
		memcpy(wn->blk[k % wn->max] + off, p, c);
		wn->hi += c;
		p += c;
		n -= c;
	}
}

/* Production's bytes from absolute offset off; returns how many are contiguous there. */
static size_t win_at(struct div_conn *dc, uint64_t off, const unsigned char **p)
{
	struct div_window *wn = dc->win;
	uint64_t k = off / DIV_BLOCK, end;

	if (!wn || off < wn->lo || off >= wn->hi || !wn->n)
		return 0;
	end = (k + 1) * DIV_BLOCK < wn->hi ? (k + 1) * DIV_BLOCK : wn->hi;
	*p = wn->blk[k % wn->max] + off % DIV_BLOCK;
	return (size_t)(end - off);
}

static size_t win_copy(struct div_conn *dc, uint64_t off, unsigned char *out, size_t n)
{
	size_t done = 0;

	while (done < n) {
		const unsigned char *p;
		size_t c = win_at(dc, off + done, &p);

		if (!c)
			break;
		if (c > n - done)
			c = n - done;
		memcpy(out + done, p, c);
		done += c;
	}
	return done;
}

/* Let go of the bytes before need. */
static void win_cut(struct div_conn *dc, uint64_t need)
{
	struct div_window *wn = dc->win;

	if (need > wn->lo)
		wn->lo = need;
	while (wn->n && (wn->first + 1) * DIV_BLOCK <= wn->lo)
		win_release_first(dc);
	if (wn->n && wn->lo == wn->hi)
		while (wn->n)
			win_release_first(dc);
}

/*
 * Where follower f still needs production's bytes from: its turn's start
 * or, when the connection rests (exact), where it compares next, or its
 * stash, or the difference it found. The bytes before that matched its own,
 * which it keeps for an excerpt's context (record_excerpt takes them from
 * there). A longer answer than production's turn still needs the turns after
 * it (rule 1: it may not be past this turn yet).
 */
static uint64_t follower_needs(struct div_conn *dc, const struct follower *f, int exact)
{
	const struct turn *t = turn_at(dc, f->turn);
	uint64_t pos = f->got;

	if (!exact)
		return t->start;
	if (f->w && f->w->stash_n && f->w->stash_at < pos)
		pos = f->w->stash_at;
	if (f->w && f->w->diff_at >= 0 && (uint64_t)f->w->diff_at < pos)
		pos = (uint64_t)f->w->diff_at;
	return t->start + (pos < t->len ? pos : t->len);
}

/* Drop what no follower can still compare (exact: see follower_needs). */
static void win_trim_to(struct div_conn *dc, int exact)
{
	uint64_t need;

	if (!dc->win)
		return;
	need = dc->win->hi;
	for (unsigned i = 0; i < dc->nfollowers; i++) {
		struct follower *f = &dc->f[i];
		uint64_t pos;

		if (!follower_active(f) || f->turn < dc->first || f->turn >= dc->next)
			continue;
		pos = follower_needs(dc, f, exact);
		if (pos < need)
			need = pos;
	}
	win_cut(dc, need);
}

static void win_trim(struct div_conn *dc)
{
	win_trim_to(dc, 0);
}

/* ---- settling: per-type counts once every follower has compared a turn ---- */

static void settle_turn(struct div_conn *dc, uint64_t i)
{
	struct turn *t = turn_at(dc, i);
	struct fslot *ctl = dc->control >= 0 ? slot_at(dc, i, (unsigned)dc->control) : NULL;
	int ctl_known = ctl && (ctl->state == FS_MATCH || ctl->state == FS_DIFF);

	for (unsigned k = 0; k < dc->nfollowers; k++) {
		struct follower *f = &dc->f[k];
		struct fslot *s = slot_at(dc, i, k);
		struct div_type_counts *row;

		if (!f->rep || s->state == FS_NONE)
			continue;
		row = &f->rep->rows[t->type <= DIV_TYPES_MAX ? t->type : DIV_TYPES_MAX];
		if (s->state == FS_UNCHECKED) {
			row->unchecked++;
			continue;
		}
		row->turns++;
		if (s->state == FS_DIFF)
			row->raw++;
		if ((int)k == dc->control || !ctl_known)
			continue;
		row->paired++;
		if (s->state == FS_DIFF)
			row->paired_raw++;
		if (ctl->state == FS_DIFF)
			row->noise++;
		if (s->key != ctl->key)
			row->cross++;
		if (s->exc)
			div_replica_excerpt_control(f->rep, s->exc, ctl->state == FS_MATCH);
	}
}

/* Settle every closed turn no active follower still needs (all of them when force). */
static void settle(struct div_conn *dc, int force)
{
	while (dc->settled < dc->next) {
		uint64_t i = dc->settled;

		if (!force) {
			if (dc->open && i == dc->next - 1)
				return;
			for (unsigned k = 0; k < dc->nfollowers; k++)
				if (follower_active(&dc->f[k]) && dc->f[k].turn <= i)
					return;
		}
		if (i >= dc->first)
			settle_turn(dc, i);
		dc->settled++;
	}
}

/* Settle what can be, and let the settled turns leave the ring. */
static void drop_settled(struct div_conn *dc)
{
	settle(dc, 0);
	if (dc->settled > dc->first)
		dc->first = dc->settled;
}

/* ---- resting: an idle connection keeps only what it needs between messages ---- */

static void prod_bytes(void *ctx, const unsigned char *p, size_t n);
static void prod_boundary(void *ctx);
static void fol_bytes(void *ctx, const unsigned char *p, size_t n);
static void fol_boundary(void *ctx);

/*
 * How much of a follower's turn state is production's. A follower that
 * matched production's open turn byte for byte so far (nothing stashed, no
 * gap, no difference) has the same hash state as production had at that
 * length: SYNC_ALL while both are held inline (its last bytes are
 * production's too), SYNC_HASH when both stream and have reached the same
 * length (its last bytes are kept). Resting, it keeps only the rest.
 */
enum { SYNC_NONE, SYNC_ALL, SYNC_HASH };

static int follower_sync(const struct div_conn *dc, const struct follower *f)
{
	const struct fsync *s = &f->w->s;
	unsigned bn = f->got < DIV_EXCERPT_BEFORE ? (unsigned)f->got : DIV_EXCERPT_BEFORE;

	if (s->h.len != f->got || s->back_n != bn)
		return SYNC_NONE;
	if (!f->got)
		return SYNC_ALL;
	if (!dc->open || f->turn != dc->next - 1 || f->gap)
		return SYNC_NONE;
	if (!div_hasher_streaming(&s->h) && !div_hasher_streaming(&dc->cur) &&
	    f->got <= dc->cur.len && !memcmp(s->h.inl, dc->cur.inl, f->got) &&
	    !memcmp(s->back, dc->cur.inl + f->got - bn, bn))
		return SYNC_ALL;
	if (div_hasher_streaming(&s->h) && div_hasher_streaming(&dc->cur) &&
	    f->got == dc->cur.len && div_hasher_peek(&s->h) == div_hasher_peek(&dc->cur))
		return SYNC_HASH;
	return SYNC_NONE;
}

/* What a resting follower's keep holds: all of fsync, or what is before the hash. */
static size_t fsync_keep_size(const struct follower *f)
{
	return f->hash_prod ? offsetof(struct fsync, h) : sizeof(struct fsync);
}

static void follower_sync_rest(struct div_conn *dc, struct follower *f)
{
	int sync = follower_sync(dc, f);

	if (sync == SYNC_ALL)
		return;
	f->hash_prod = sync == SYNC_HASH;
	f->keep = malloc(fsync_keep_size(f));
	if (!f->keep)
		abort(); /* as div_block_get */
	memcpy(f->keep, &f->w->s, fsync_keep_size(f));
}

static void follower_sync_wake(struct div_conn *dc, struct follower *f)
{
	struct fsync *s = &f->w->s;

	if (f->keep) {
		memcpy(s, f->keep, fsync_keep_size(f));
		free(f->keep);
		f->keep = NULL;
		if (f->hash_prod)
			s->h = dc->cur;
		f->hash_prod = 0;
		return;
	}
	div_hasher_init(&s->h);
	if (!follower_active(f) || !f->got)
		return;
	div_hasher_update(&s->h, dc->cur.inl, f->got);
	s->back_n = f->got < DIV_EXCERPT_BEFORE ? (unsigned)f->got : DIV_EXCERPT_BEFORE;
	memcpy(s->back, dc->cur.inl + f->got - s->back_n, s->back_n);
}

/* Bytes are coming: make the working state again if the connection rests. */
static void work_wake(struct div_conn *dc)
{
	struct div_work *w;

	dc->touched = 1;
	if (dc->w)
		return;
	w = div_piece_get(work_size(dc));
	memset(w, 0, work_size(dc));
	dc->w = w;
	w->log.nreq = dc->proto_known && dc->proto == DIV_PROTO_HTTP ? dc->trest.reqs : 0;
	if (dc->proto_known) {
		const unsigned char *head =
			dc->thead_turn ? turn_at(dc, dc->next - 1)->req : dc->thead;

		div_typer_wake(&w->typer, dc->proto, dc->types, &w->log, &dc->trest, head,
			       dc->thead_len);
		free(dc->thead);
		dc->thead = NULL;
	}
	if (dc->norm_on) {
		struct div_sink s = {prod_bytes, prod_boundary, dc};

		div_norm_wake(&w->pnorm, dc->rules, dc->proto, &w->log, &s, &dc->prest);
	}
	for (unsigned k = 0; k < dc->nfollowers; k++) {
		struct follower *f = &dc->f[k];

		f->w = &w->f[k];
		f->w->diff_at = -1;
		follower_sync_wake(dc, f);
		if (follower_active(f) && f->norm_on) {
			struct div_sink s = {fol_bytes, fol_boundary, f};

			div_norm_wake(&f->w->norm, dc->rules, dc->proto, &w->log, &s, &f->nrest);
		}
	}
}

/*
 * The typer's head while resting: most often the request of production's
 * last turn, still in the ring (nothing settles it before the connection
 * wakes), else a copy.
 */
static void typer_head_rest(struct div_conn *dc)
{
	const struct div_typer *t = &dc->w->typer;

	dc->thead_len = (uint8_t)t->head_len;
	dc->thead_turn = 0;
	if (!t->head_len)
		return;
	drop_settled(dc);
	if (dc->next > dc->first) {
		const struct turn *last = turn_at(dc, dc->next - 1);

		if (last->req_n == t->head_len && !memcmp(last->req, t->head, t->head_len)) {
			dc->thead_turn = 1;
			return;
		}
	}
	dc->thead = malloc(t->head_len);
	if (!dc->thead)
		abort(); /* as div_block_get */
	memcpy(dc->thead, t->head, t->head_len);
}

/*
 * Give the working state back if nothing is on its way: the typer between
 * requests with no type waiting, every normaliser between messages, no
 * follower ahead of production or in the middle of a difference, and (HTTP)
 * no request whose answer a normaliser has yet to frame. Returns 1 resting.
 */
static int work_rest(struct div_conn *dc)
{
	struct div_work *w = dc->w;
	uint64_t nreq = w->log.nreq;

	/* the log's count is the typer's with HTTP (wake makes it so), else 0 */
	if (nreq != (dc->proto_known && dc->proto == DIV_PROTO_HTTP ? w->typer.reqs : 0))
		return 0;
	if (dc->proto_known && !div_typer_rest(&w->typer, &dc->trest))
		return 0;
	if (dc->norm_on && !div_norm_rest(&w->pnorm, &dc->prest))
		return 0;
	if (nreq && (!dc->norm_on || dc->prest.responses < nreq))
		return 0;
	for (unsigned k = 0; k < dc->nfollowers; k++) {
		struct follower *f = &dc->f[k];

		if (!follower_active(f))
			continue;
		if (f->w->stash_n || f->w->diff_at >= 0)
			return 0;
		if (f->norm_on && !div_norm_rest(&f->w->norm, &f->nrest))
			return 0;
		if (nreq && (!f->norm_on || f->nrest.responses < nreq))
			return 0;
	}
	if (dc->proto_known)
		typer_head_rest(dc);
	for (unsigned k = 0; k < dc->nfollowers; k++) {
		struct follower *f = &dc->f[k];

		if (follower_active(f))
			follower_sync_rest(dc, f);
		f->w = NULL;
	}
	div_piece_put(w, work_size(dc));
	dc->w = NULL;
	return 1;
}

/* Keep only the turns a follower still needs, in a ring as small as they fit. */
static void ring_rest(struct div_conn *dc)
{
	unsigned nf = dc->nfollowers ? dc->nfollowers : 1;
	struct turn *nr;
	struct fslot *ns;

	drop_settled(dc);
	if (dc->cap == 1 || dc->next - dc->first > 1)
		return;
	nr = calloc(1, sizeof(*nr));
	ns = calloc(nf, sizeof(*ns));
	if (!nr || !ns) {
		free(nr);
		free(ns);
		return;
	}
	if (dc->next > dc->first) {
		*nr = *turn_at(dc, dc->first);
		memcpy(ns, &dc->slots[(dc->first % dc->cap) * nf], nf * sizeof(*ns));
	}
	free(dc->ring);
	free(dc->slots);
	dc->ring = nr;
	dc->slots = ns;
	dc->cap = 1;
}

/* Keep only production's bytes a follower has yet to compare or to show. */
static void win_rest(struct div_conn *dc)
{
	win_trim_to(dc, 1);
	win_drop_empty(dc);
}

/* After each call that fed the connection: let go of what nobody needs now. */
static void rest_if_idle(struct div_conn *dc)
{
	if (dc->busy)
		return;
	win_rest(dc);
	if (dc->w)
		work_rest(dc);
}

int div_conn_sweep(struct div_conn *dc)
{
	if (!dc || dc->busy)
		return 0;
	if (dc->touched) {
		dc->touched = 0;
		return 0;
	}
	ring_rest(dc);
	win_rest(dc);
	return !dc->w || work_rest(dc);
}

void div_conn_never_rest(struct div_conn *dc)
{
	work_wake(dc);
	dc->busy = 1;
}

size_t div_conn_footprint(const struct div_conn *dc)
{
	unsigned nf = dc->nfollowers ? dc->nfollowers : 1;
	size_t n = sizeof(*dc) + dc->nfollowers * sizeof(struct follower);

	n += dc->cap * (sizeof(struct turn) + nf * sizeof(struct fslot));
	if (dc->win) {
		n += win_size(dc->win->max);
		n += dc->win->n ? (dc->win->n - 1) * (size_t)DIV_BLOCK + dc->win->last_cap : 0;
	}
	if (dc->w)
		n += work_size(dc);
	for (unsigned k = 0; k < dc->nfollowers; k++) {
		const struct follower *f = &dc->f[k];

		if (f->keep)
			n += fsync_keep_size(f);
		n += dc->f[k].w && dc->f[k].w->stash ? DIV_BLOCK : 0;
	}
	return n;
}

/* ---- connections ---- */

struct div_conn *div_conn_open(const struct div_rules *rules, struct div_types *types,
			       uint64_t conn_id, unsigned nfollowers)
{
	struct div_conn *dc;

	if (nfollowers > INT16_MAX)
		return NULL;
	dc = calloc(1, sizeof(*dc) + nfollowers * sizeof(struct follower));
	if (!dc)
		return NULL;
	dc->rules = rules;
	dc->types = types;
	dc->id = conn_id;
	dc->cap = 1; /* grows as turns wait for a follower */
	dc->nfollowers = (uint16_t)nfollowers;
	dc->control = -1;
	dc->proto = rules->o.protocol;
	dc->proto_known = dc->proto != DIV_PROTO_AUTO;
	dc->ring = calloc(dc->cap, sizeof(*dc->ring));
	dc->slots = calloc((size_t)dc->cap * (nfollowers ? nfollowers : 1), sizeof(*dc->slots));
	if (!dc->ring || !dc->slots) {
		free(dc->ring);
		free(dc->slots);
		free(dc);
		return NULL;
	}
	work_wake(dc);
	if (dc->proto_known)
		div_typer_init(&dc->w->typer, dc->proto, types, &dc->w->log);
	div_hasher_init(&dc->cur);
	for (unsigned i = 0; i < nfollowers; i++) {
		dc->f[i].idx = (uint16_t)i;
	}
	work_rest(dc); /* nothing is on its way yet */
	dc->touched = 0;
	return dc;
}

struct div_conn *div_conn_new(unsigned nfollowers, unsigned max_turns)
{
	struct div_options o;
	struct div_rules *r;
	struct div_conn *dc;
	char err[16];

	div_options_defaults(&o);
	o.max_turns = max_turns;
	o.window = 0;
	if (div_rules_new(&o, &r, err, sizeof(err)) < 0)
		return NULL;
	dc = div_conn_open(r, NULL, 0, nfollowers);
	if (!dc) {
		div_rules_free(r);
		return NULL;
	}
	dc->own_rules = 1;
	return dc;
}

void div_conn_free(struct div_conn *dc)
{
	if (!dc)
		return;
	settle(dc, 1);
	if (dc->w)
		div_norm_release(&dc->w->pnorm);
	for (unsigned i = 0; i < dc->nfollowers; i++) {
		free(dc->f[i].keep);
		if (dc->f[i].w)
			div_norm_release(&dc->f[i].w->norm);
		stash_clear(&dc->f[i]);
	}
	while (dc->win && dc->win->n)
		win_release_first(dc);
	if (dc->own_rules)
		div_rules_free((struct div_rules *)dc->rules);
	free(dc->thead);
	if (dc->w)
		div_piece_put(dc->w, work_size(dc));
	if (dc->win)
		div_piece_put(dc->win, win_size(dc->win->max));
	free(dc->slots);
	free(dc->ring);
	free(dc);
}

uint64_t div_turns(const struct div_conn *dc)
{
	return dc->next;
}

uint64_t div_conn_requests(const struct div_conn *dc)
{
	if (!dc->proto_known)
		return 0;
	return dc->w ? dc->w->typer.reqs : dc->trest.reqs;
}

enum div_protocol div_conn_protocol(const struct div_conn *dc)
{
	return dc->proto_known ? dc->proto : DIV_PROTO_RAW;
}

static void resolve_protocol(struct div_conn *dc, const unsigned char *p, size_t n)
{
	if (dc->proto_known)
		return;
	dc->proto = p ? div_sniff_protocol(p, n) : DIV_PROTO_RAW;
	dc->proto_known = 1;
	div_typer_init(&dc->w->typer, dc->proto, dc->types, &dc->w->log);
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
	unsigned k = (unsigned)(f - dc->f);

	f->sink->turns_unchecked += dc->next - f->turn;
	for (uint64_t i = f->turn > dc->first ? f->turn : dc->first; i < dc->next; i++)
		slot_at(dc, i, k)->state = FS_UNCHECKED;
	div_hasher_init(&f->w->s.h);
	div_norm_release(&f->w->norm);
	stash_clear(f);
	f->lost = 1;
}

/* Make room for one more turn: drop settled turns, grow, or evict. */
static void ring_make_room(struct div_conn *dc)
{
	drop_settled(dc);
	if (dc->next - dc->first < dc->cap)
		return;
	if (dc->cap < ring_max(dc)) {
		unsigned ncap = dc->cap * 2 > ring_max(dc) ? ring_max(dc) : dc->cap * 2;
		unsigned nf = dc->nfollowers ? dc->nfollowers : 1;
		struct turn *nr = calloc(ncap, sizeof(*nr));
		struct fslot *ns = calloc((size_t)ncap * nf, sizeof(*ns));

		if (nr && ns) {
			for (uint64_t i = dc->first; i < dc->next; i++) {
				nr[i % ncap] = *turn_at(dc, i);
				memcpy(&ns[(i % ncap) * nf], &dc->slots[(i % dc->cap) * nf],
				       nf * sizeof(*ns));
			}
			free(dc->ring);
			free(dc->slots);
			dc->ring = nr;
			dc->slots = ns;
			dc->cap = ncap;
			return;
		}
		free(nr);
		free(ns);
	}
	/* Full at its bound: the followers still on the oldest turn stop comparing. */
	for (unsigned i = 0; i < dc->nfollowers; i++)
		if (follower_active(&dc->f[i]) && dc->f[i].turn == dc->first)
			follower_give_up(dc, &dc->f[i]);
	settle(dc, 0);
	if (dc->settled == dc->first)
		dc->settled++; /* cannot happen: nobody needs it any more */
	dc->first = dc->settled;
}

static void open_turn(struct div_conn *dc)
{
	struct turn *t;

	ring_make_room(dc);
	t = turn_at(dc, dc->next);
	memset(t, 0, sizeof(*t));
	t->start = dc->norm_total;
	t->end_client = UINT64_MAX;
	if (dc->proto_known) {
		unsigned n = 0;

		t->type = (uint16_t)div_typer_take(&dc->w->typer, t->req, &n);
		t->req_n = (uint8_t)n;
	}
	for (unsigned k = 0; k < dc->nfollowers; k++) {
		struct fslot *s = slot_at(dc, dc->next, k);

		memset(s, 0, sizeof(*s));
		if (dc->f[k].sink && dc->f[k].lost) {
			s->state = FS_UNCHECKED;
			dc->f[k].sink->turns_unchecked++;
		}
	}
	dc->next++;
	dc->open = 1;
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
	followers_catch_up(dc); /* a longer answer is now known to be longer */
	settle(dc, 0);
}

static void client_common(struct div_conn *dc, const void *buf, size_t n)
{
	int spoke = dc->spoke;

	work_wake(dc);
	close_open_turn(dc);
	dc->spoke = 0;
	resolve_protocol(dc, buf, n);
	if (buf)
		div_typer_feed(&dc->w->typer, buf, n, spoke);
	dc->client_total += n;
	rest_if_idle(dc);
}

void div_client_data(struct div_conn *dc, const void *buf, size_t n)
{
	if (dc && n)
		client_common(dc, buf, n);
}

void div_client_bytes(struct div_conn *dc, size_t n)
{
	if (dc)
		client_common(dc, NULL, n);
}

static int any_active(const struct div_conn *dc)
{
	for (unsigned i = 0; i < dc->nfollowers; i++)
		if (follower_active(&dc->f[i]))
			return 1;
	return 0;
}

static void prod_bytes(void *ctx, const unsigned char *p, size_t n)
{
	struct div_conn *dc = ctx;
	struct turn *t;

	if (!dc->open)
		open_turn(dc);
	t = turn_at(dc, dc->next - 1);
	div_hasher_update(&dc->cur, p, n);
	t->len += n;
	t->tail += n;
	if (any_active(dc))
		win_append(dc, p, n);
	dc->norm_total += n;
	followers_catch_up(dc);
}

static void prod_boundary(void *ctx)
{
	struct div_conn *dc = ctx;
	struct turn *t;

	if (!dc->open)
		return;
	t = turn_at(dc, dc->next - 1);
	t->msgs++;
	t->tail = 0;
}

static void prod_norm_on(struct div_conn *dc)
{
	struct div_sink s = {prod_bytes, prod_boundary, dc};

	if (dc->norm_on)
		return;
	if (!dc->proto_known)
		resolve_protocol(dc, NULL, 0);
	div_norm_init(&dc->w->pnorm, dc->rules, dc->proto, &dc->w->log, &s);
	dc->norm_on = 1;
}

void div_server_bytes(struct div_conn *dc, const void *buf, size_t n)
{
	if (!dc || !n || dc->ended)
		return;
	work_wake(dc);
	prod_norm_on(dc);
	if (!dc->open)
		open_turn(dc);
	dc->spoke = 1;
	div_norm_feed(&dc->w->pnorm, buf, n);
	rest_if_idle(dc);
}

void div_server_end(struct div_conn *dc)
{
	if (!dc || dc->ended)
		return;
	work_wake(dc);
	if (dc->norm_on)
		div_norm_finish(&dc->w->pnorm);
	close_open_turn(dc);
	dc->ended = 1;
	settle(dc, 0);
	rest_if_idle(dc);
}

/* ---- followers ---- */

static void follower_reset_turn(struct follower *f)
{
	stash_clear(f);
	f->got = f->tmsgs = f->since = 0;
	f->w->diff_at = -1;
	f->gap = 0;
	f->w->s.back_n = 0;
	f->w->before_n = f->w->after_n = f->w->pafter_n = 0;
}

static void follower_init(struct div_conn *dc, unsigned idx, struct div_counts *sink,
			  struct div_replica *rep)
{
	struct follower *f = &dc->f[idx];

	work_wake(dc);
	div_norm_release(&f->w->norm);
	f->sink = sink;
	f->rep = rep;
	f->lost = 0;
	f->norm_on = 0;
	f->turn = dc->next - (dc->open ? 1 : 0);
	f->written = 0;
	f->diverged = 0;
	follower_reset_turn(f);
	div_hasher_init(&f->w->s.h);
	rest_if_idle(dc);
}

void div_follower_start(struct div_conn *dc, unsigned idx, struct div_counts *sink)
{
	if (idx < dc->nfollowers)
		follower_init(dc, idx, sink, NULL);
}

void div_follower_attach(struct div_conn *dc, unsigned idx, struct div_replica *rep)
{
	if (idx >= dc->nfollowers)
		return;
	follower_init(dc, idx, rep->counts, rep);
	if (rep->role == DIV_CONTROL && dc->control < 0)
		dc->control = (int16_t)idx;
}

/* Keep the last bytes seen, for the context before a difference. */
static void back_add(struct follower *f, const unsigned char *p, size_t n)
{
	if (n >= DIV_EXCERPT_BEFORE) {
		memcpy(f->w->s.back, p + n - DIV_EXCERPT_BEFORE, DIV_EXCERPT_BEFORE);
		f->w->s.back_n = DIV_EXCERPT_BEFORE;
		return;
	}
	if (f->w->s.back_n + n > DIV_EXCERPT_BEFORE) {
		size_t drop = f->w->s.back_n + n - DIV_EXCERPT_BEFORE;

		memmove(f->w->s.back, f->w->s.back + drop, f->w->s.back_n - drop);
		f->w->s.back_n -= (unsigned)drop;
	}
	memcpy(f->w->s.back + f->w->s.back_n, p, n);
	f->w->s.back_n += (unsigned)n;
}

static void after_add(struct follower *f, const unsigned char *p, size_t n)
{
	struct fwork *w = f->w;
	size_t c = n < DIV_EXCERPT_AFTER - w->after_n ? n : DIV_EXCERPT_AFTER - w->after_n;

	memcpy(w->after + w->after_n, p, c);
	w->after_n += (unsigned)c;
}

/* The first difference is at byte i of p, whose first byte is the turn's byte base. */
static void found_diff(struct follower *f, const unsigned char *p, size_t n, size_t i,
		       uint64_t base)
{
	f->w->diff_at = (int64_t)(base + i);
	if (i < DIV_EXCERPT_BEFORE)
		back_add(f, p, i);
	else
		back_add(f, p + i - DIV_EXCERPT_BEFORE, DIV_EXCERPT_BEFORE);
	memcpy(f->w->before, f->w->s.back, f->w->s.back_n);
	f->w->before_n = f->w->s.back_n;
	after_add(f, p + i, n - i);
	f->w->pafter_n = (unsigned)win_copy(follower_conn(f),
					    turn_at(follower_conn(f), f->turn)->start + base + i,
					    f->w->pafter, DIV_EXCERPT_AFTER);
}

static void stash_clear(struct follower *f)
{
	if (!f->w)
		return; /* resting: it has none */
	div_block_put(f->w->stash);
	f->w->stash = NULL;
	f->w->stash_n = 0;
}

/*
 * Compare p[0..n), the turn's bytes from offset base, with production's.
 * Returns how many were compared (all of them once a difference is found or
 * comparing became impossible); fewer when production has not sent the rest
 * yet.
 */
static size_t compare_now(struct div_conn *dc, struct follower *f, uint64_t idx,
			  const unsigned char *p, size_t n, uint64_t base)
{
	struct turn *t;
	int closed;
	size_t pos = 0;

	if (idx >= dc->next)
		return 0; /* production has not begun this turn */
	if (idx < dc->first) {
		f->gap = 1;
		return n;
	}
	t = turn_at(dc, idx);
	closed = !(dc->open && idx == dc->next - 1);
	while (pos < n) {
		uint64_t toff = base + pos;
		const unsigned char *q;
		size_t c;

		if (toff >= t->len) {
			if (closed) {
				found_diff(f, p, n, pos, base); /* longer than production's */
				return n;
			}
			break; /* production may still send these */
		}
		c = win_at(dc, t->start + toff, &q);
		if (!c) {
			f->gap = 1;
			return n;
		}
		if (c > t->len - toff)
			c = (size_t)(t->len - toff);
		if (c > n - pos)
			c = n - pos;
		if (memcmp(q, p + pos, c)) {
			size_t j = 0;

			while (q[j] == p[pos + j])
				j++;
			found_diff(f, p, n, pos + j, base);
			return n;
		}
		back_add(f, p + pos, c);
		pos += c;
	}
	return pos;
}

/* Compare what the follower said ahead of production, as far as production has caught up. */
static void stash_drain(struct div_conn *dc, struct follower *f)
{
	size_t k;

	if (!f->w->stash_n)
		return;
	k = compare_now(dc, f, f->turn, f->w->stash, f->w->stash_n, f->w->stash_at);
	if (f->w->diff_at >= 0 || f->gap || k == f->w->stash_n) {
		stash_clear(f);
		return;
	}
	memmove(f->w->stash, f->w->stash + k, f->w->stash_n - k);
	f->w->stash_n -= (unsigned)k;
	f->w->stash_at += k;
}

/*
 * Compare the follower's next n bytes of turn idx with production's; bytes
 * production has not sent yet (the replica answered first) wait in a stash of
 * one block.
 */
static void follower_compare(struct div_conn *dc, struct follower *f, uint64_t idx,
			     const unsigned char *p, size_t n)
{
	size_t k = 0;

	if (f->w->diff_at >= 0) {
		after_add(f, p, n);
		return;
	}
	if (f->gap)
		return;
	if (!f->w->stash_n)
		k = compare_now(dc, f, idx, p, n, f->got);
	if (f->w->diff_at >= 0 || f->gap || k == n)
		return;
	if (f->w->stash_n + (n - k) > DIV_BLOCK) {
		stash_clear(f);
		f->gap = 1;
		return;
	}
	if (!f->w->stash) {
		f->w->stash = div_block_get();
		f->w->stash_at = f->got + k;
	}
	memcpy(f->w->stash + f->w->stash_n, p + k, n - k);
	f->w->stash_n += (unsigned)(n - k);
}

/* Production sent more: followers that were ahead compare what they can. */
static void followers_catch_up(struct div_conn *dc)
{
	for (unsigned i = 0; i < dc->nfollowers; i++)
		if (dc->f[i].w->stash_n && follower_active(&dc->f[i]))
			stash_drain(dc, &dc->f[i]);
}

static void follower_take(struct div_conn *dc, struct follower *f, const unsigned char *p, size_t n)
{
	if (!n)
		return;
	follower_compare(dc, f, f->turn, p, n);
	div_hasher_update(&f->w->s.h, p, n);
	f->got += n;
	f->since += n;
}

static uint64_t answer_key(uint64_t hash, uint64_t len)
{
	return hash ^ (len * 0x9E3779B97F4A7C15ull);
}

/* plen: production's turn's length now (an open turn's t->len is not up to date yet). */
static void record_excerpt(struct div_conn *dc, struct follower *f, struct turn *t, uint64_t idx,
			   uint64_t plen, struct fslot *s)
{
	struct div_excerpt e;
	struct fwork *w = f->w;
	int64_t at = w->diff_at;

	memset(&e, 0, sizeof(e));
	e.conn_id = dc->id;
	e.turn = idx;
	e.type = t->type;
	e.prod_len = plen;
	e.rep_len = f->got;
	e.control = -1;
	if (at < 0 && !f->gap) {
		/* every byte matched: one side is shorter */
		at = (int64_t)(f->got < plen ? f->got : plen);
		memcpy(w->before, w->s.back, w->s.back_n);
		w->before_n = w->s.back_n;
	}
	e.offset = at;
	e.stream_offset = at >= 0 ? (int64_t)(t->start + (uint64_t)at) : -1;
	if (at >= 0) {
		/*
		 * The bytes before the difference are the same on both sides
		 * (the replica's, kept as they matched); production's after it
		 * come from the window, or from when it was found if the window
		 * let them go.
		 */
		unsigned fb = w->before_n, k;
		uint64_t pa = plen > (uint64_t)at ? plen - (uint64_t)at : 0;

		if (pa > DIV_EXCERPT_AFTER)
			pa = DIV_EXCERPT_AFTER;
		e.before = fb;
		memcpy(e.prod, w->before, fb);
		k = (unsigned)win_copy(dc, t->start + (uint64_t)at, e.prod + fb, pa);
		if (k < pa && w->pafter_n > k) {
			k = w->pafter_n < pa ? w->pafter_n : (unsigned)pa;
			memcpy(e.prod + fb, w->pafter, k);
		}
		e.prod_n = fb + k;
		memcpy(e.rep, w->before, fb);
		memcpy(e.rep + fb, w->after, w->after_n);
		e.rep_n = fb + w->after_n;
	}
	memcpy(e.req, t->req, t->req_n);
	e.req_n = t->req_n;
	if (dc->control >= 0 && f != &dc->f[dc->control]) {
		struct fslot *c = slot_at(dc, idx, (unsigned)dc->control);

		if (c->state == FS_MATCH || c->state == FS_DIFF)
			e.control = c->state == FS_MATCH;
	}
	s->exc = div_replica_add_excerpt(f->rep, &e);
}

/* Compare follower f's finished turn with production's and move to the next. */
static void follower_finish_turn(struct div_conn *dc, struct follower *f)
{
	uint64_t idx = f->turn;
	struct turn *t = turn_at(dc, idx);
	int closed = !(dc->open && idx == dc->next - 1);
	uint64_t plen = closed ? t->len : dc->cur.len;
	uint64_t phash = closed ? t->hash : div_hasher_peek(&dc->cur);
	uint64_t h = div_hasher_finish(&f->w->s.h);
	struct fslot *s = slot_at(dc, idx, (unsigned)(f - dc->f));
	int same = f->got == plen && h == phash;

	stash_drain(dc, f);
	if (f->w->stash_n && f->w->diff_at < 0 && !f->gap && !same) {
		/* production's open turn ends here: the rest is longer than it */
		found_diff(f, f->w->stash, f->w->stash_n, 0, f->w->stash_at);
	}
	stash_clear(f);

	f->sink->turns_compared++;
	s->key = answer_key(h, f->got);
	s->state = same ? FS_MATCH : FS_DIFF;
	if (!same) {
		note_diverged(f);
		if (f->rep)
			record_excerpt(dc, f, t, idx, plen, s);
	}
	f->turn++;
	follower_reset_turn(f);
	win_trim(dc);
	settle(dc, 0);
}

static int turn_closed(const struct div_conn *dc, uint64_t idx)
{
	return idx < dc->next && !(dc->open && idx == dc->next - 1);
}

/* Has follower f said all of production's turn t (framing rules 2 and 3)? */
static int turn_done(const struct follower *f, const struct turn *t)
{
	return f->tmsgs > t->msgs || (f->tmsgs == t->msgs && f->since >= t->tail);
}

static void fol_bytes(void *ctx, const unsigned char *p, size_t n)
{
	struct follower *f = ctx;
	struct div_conn *dc = follower_conn(f);

	while (n > 0) {
		struct turn *t;
		size_t take;

		if (!follower_active(f))
			return;
		if (f->turn < dc->first) {
			follower_give_up(dc, f);
			return;
		}
		if (!turn_closed(dc, f->turn)) {
			/* Production has not finished (or begun) this turn, so the
			 * replica cannot be past it either. */
			follower_take(dc, f, p, n);
			return;
		}
		t = turn_at(dc, f->turn);
		if (f->written <= t->end_client || f->tmsgs < t->msgs)
			take = n; /* rule 1, or a message of this turn is not over */
		else if (f->tmsgs == t->msgs && f->since < t->tail)
			take = t->tail - f->since < n ? (size_t)(t->tail - f->since) : n;
		else
			take = 0;
		follower_take(dc, f, p, take);
		p += take;
		n -= take;
		if (f->written > t->end_client && turn_done(f, t))
			follower_finish_turn(dc, f);
		else if (!take)
			return; /* cannot happen: take is 0 only when the turn is done */
	}
}

static void fol_boundary(void *ctx)
{
	struct follower *f = ctx;
	struct div_conn *dc = follower_conn(f);
	struct turn *t;

	if (!follower_active(f))
		return;
	f->tmsgs++;
	f->since = 0;
	if (!turn_closed(dc, f->turn) || f->turn < dc->first)
		return;
	t = turn_at(dc, f->turn);
	if (f->written > t->end_client && turn_done(f, t))
		follower_finish_turn(dc, f);
}

static void follower_norm_on(struct div_conn *dc, struct follower *f)
{
	struct div_sink s = {fol_bytes, fol_boundary, f};

	if (f->norm_on)
		return;
	if (!dc->proto_known)
		resolve_protocol(dc, NULL, 0);
	div_norm_init(&f->w->norm, dc->rules, dc->proto, &dc->w->log, &s);
	f->norm_on = 1;
}

void div_follower_bytes(struct div_conn *dc, unsigned idx, const void *buf, size_t n,
			uint64_t written)
{
	struct follower *f;

	if (idx >= dc->nfollowers || !follower_active(&dc->f[idx]) || !n)
		return;
	work_wake(dc);
	f = &dc->f[idx];
	f->written = written;
	follower_norm_on(dc, f);
	/*
	 * A turn whose bytes are all in but that waited for a sign of the next
	 * request is done now that the replica has been given more.
	 */
	if (turn_closed(dc, f->turn) && f->turn >= dc->first) {
		struct turn *t = turn_at(dc, f->turn);

		if (f->written > t->end_client && f->got && turn_done(f, t))
			follower_finish_turn(dc, f);
	}
	div_norm_feed(&f->w->norm, buf, n);
	rest_if_idle(dc);
}

static void follower_end(struct div_conn *dc, struct follower *f, enum div_end how)
{
	if (how == DIV_END_DROPPED || f->turn < dc->first) {
		follower_give_up(dc, f);
		settle(dc, 0);
		return;
	}
	if (f->norm_on) {
		f->written = UINT64_MAX; /* whatever comes now is its last word */
		div_norm_finish(&f->w->norm);
		if (!follower_active(f))
			return;
	}
	/* The replica has said all it will say. */
	while (f->turn < dc->next)
		follower_finish_turn(dc, f);
	if (f->got > 0) {
		/* Bytes beyond anything production sent. */
		f->sink->turns_compared++;
		note_diverged(f);
	}
	div_hasher_init(&f->w->s.h);
	div_norm_release(&f->w->norm);
	stash_clear(f);
	f->sink = NULL;
	settle(dc, 0);
	win_trim(dc);
}

void div_follower_end(struct div_conn *dc, unsigned idx, enum div_end how)
{
	if (idx >= dc->nfollowers || !follower_active(&dc->f[idx]))
		return;
	work_wake(dc);
	follower_end(dc, &dc->f[idx], how);
	rest_if_idle(dc);
}

void div_follower_detach(struct div_conn *dc, unsigned idx)
{
	struct follower *f;

	if (idx >= dc->nfollowers)
		return;
	work_wake(dc);
	f = &dc->f[idx];
	div_hasher_init(&f->w->s.h);
	div_norm_release(&f->w->norm);
	stash_clear(f);
	f->sink = NULL;
	f->rep = NULL;
	f->lost = 0;
	if ((int)idx == dc->control)
		dc->control = -1;
	settle(dc, 0);
	win_trim(dc);
	rest_if_idle(dc);
}
