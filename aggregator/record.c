/*
 * record.c - production's upstream traffic, recorded turn by turn.
 *
 * The recorder is an observer of the upstream relay (a struct proxy with no
 * replicas): it runs inside production's data path, so it only appends bytes
 * and never waits. The store of one upstream is bounded by agg->budget bytes:
 * over it, finished recordings no clone is replaying go first (oldest first),
 * then the oldest finished turns of the connection being recorded, and only
 * then is that connection's recording truncated (counted). Clones waiting for
 * new turns are woken by an event, after production's bytes have moved on.
 */
#define LOG_PREFIX "aggregator"
#include "aggregator/agg-int.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

static void pconn_free(struct agg_pconn *pc)
{
	struct agg_up *up = pc->up;

	if (pc->prev)
		pc->prev->next = pc->next;
	else
		up->head = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	else
		up->tail = pc->prev;
	up->bytes -= pc->len;
	free(pc->data);
	free(pc->turns);
	free(pc);
}

void agg_pconn_unref(struct agg_pconn *pc)
{
	if (pc->refs)
		pc->refs--;
}

void agg_record_free_all(struct agg_up *up)
{
	while (up->head)
		pconn_free(up->head);
}

int agg_turn_req_complete(const struct agg_pconn *pc, unsigned t)
{
	return t + 1 < pc->nturns || (t < pc->nturns && (pc->answering || pc->closed));
}

int agg_turn_resp_complete(const struct agg_pconn *pc, unsigned t)
{
	return t + 1 < pc->nturns || (t < pc->nturns && pc->closed);
}

/* Drop the older half of pc's turns that are complete and unused by clones bound to pc. */
static int drop_old_turns(struct agg_pconn *pc)
{
	unsigned k = pc->nturns > 1 ? (pc->nturns - 1) / 2 : 0;
	uint64_t cut;

	if (k == 0 || pc->refs)
		return 0;
	cut = pc->turns[k].off;
	memmove(pc->data, pc->data + cut, pc->len - cut);
	pc->len -= cut;
	pc->up->bytes -= cut;
	memmove(pc->turns, pc->turns + k, (pc->nturns - k) * sizeof(*pc->turns));
	pc->nturns -= k;
	for (unsigned i = 0; i < pc->nturns; i++)
		pc->turns[i].off -= cut;
	return 1;
}

/* Make room for n more bytes in pc; 0, or -1 when pc must stop recording. */
static int make_room(struct agg_pconn *pc, size_t n)
{
	struct agg_up *up = pc->up;
	uint64_t budget = up->agg->budget;

	while (up->bytes + n > budget) {
		struct agg_pconn *old = up->head;

		while (old && (old == pc || !old->closed || old->refs))
			old = old->next;
		if (old) {
			up->evicted++;
			pconn_free(old);
			continue;
		}
		if (drop_old_turns(pc))
			continue;
		return -1;
	}
	if (pc->len + n > pc->cap) {
		uint64_t cap = pc->cap ? pc->cap : 4096;
		unsigned char *nd;

		while (cap < pc->len + n)
			cap *= 2;
		nd = realloc(pc->data, cap);
		if (!nd)
			return -1;
		pc->data = nd;
		pc->cap = cap;
	}
	return 0;
}

static int new_turn(struct agg_pconn *pc)
{
	struct agg_turn *t;

	if (pc->nturns == pc->capturns) {
		unsigned cap = pc->capturns ? pc->capturns * 2 : 8;
		struct agg_turn *nt = realloc(pc->turns, cap * sizeof(*nt));

		if (!nt)
			return -1;
		pc->turns = nt;
		pc->capturns = cap;
	}
	t = &pc->turns[pc->nturns++];
	memset(t, 0, sizeof(*t));
	t->off = pc->len;
	t->ns = clock_coarse_ns();
	return 0;
}

static void truncate_here(struct agg_pconn *pc)
{
	if (pc->truncated)
		return;
	pc->truncated = 1;
	pc->up->truncated++;
	pr_warn("upstream %s: the recording of production connection %llu is truncated (budget "
		"%llu "
		"bytes); clones needing more of it get no answer",
		pc->up->right.text, (unsigned long long)pc->seq,
		(unsigned long long)pc->up->agg->budget);
}

static void append(struct agg_pconn *pc, const void *buf, size_t n, int answer)
{
	struct agg_turn *t;

	if (pc->truncated)
		return;
	if ((!answer && (pc->answering || pc->nturns == 0)) || (answer && pc->nturns == 0)) {
		/* A new request (or a server that speaks first: a turn with no request). */
		if (new_turn(pc) < 0) {
			truncate_here(pc);
			return;
		}
	}
	if (make_room(pc, n) < 0) {
		truncate_here(pc);
		return;
	}
	memcpy(pc->data + pc->len, buf, n);
	pc->len += n;
	pc->up->bytes += n;
	pc->up->bytes_recorded += n;
	t = &pc->turns[pc->nturns - 1];
	if (answer)
		t->resp_len += (uint32_t)n;
	else
		t->req_len += (uint32_t)n;
	pc->answering = answer;
	event_active(pc->up->wake, EV_TIMEOUT, 0);
}

static void *rec_open(void *arg, uint64_t conn_id)
{
	struct agg_up *up = arg;
	struct agg_pconn *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	pc->up = up;
	pc->conn_id = conn_id;
	/* open before the capture began: matched by content only, never by order */
	pc->seq = conn_id & CAP_MIDSTREAM_ID ? 0 : ++up->next_seq;
	pc->open_ns = clock_coarse_ns();
	pc->prev = up->tail;
	if (up->tail)
		up->tail->next = pc;
	else
		up->head = pc;
	up->tail = pc;
	up->conns_recorded++;
	return pc;
}

static void rec_client(void *conn, const void *buf, size_t n)
{
	if (conn)
		append(conn, buf, n, 0);
}

static void rec_server(void *conn, const void *buf, size_t n)
{
	if (conn)
		append(conn, buf, n, 1);
}

static void rec_close(void *conn, int reset)
{
	struct agg_pconn *pc = conn;

	if (!pc)
		return;
	pc->closed = 1;
	pc->reset = reset;
	event_active(pc->up->wake, EV_TIMEOUT, 0);
}

const struct proxy_observer agg_recorder = {
	.conn_open = rec_open,
	.client_bytes = rec_client,
	.server_bytes = rec_server,
	.conn_close = rec_close,
};
