/*
 * tap.c - a proxy observer that records: client <-> production as side
 * "production", and each replica leg (what doppel sent it, what it answered)
 * as side "replica-NAME". It forwards every call to the observer it wraps
 * (the aggregator's), so recording needs no second observer slot.
 *
 * Recording can start and stop while the proxy runs: a connection already
 * open when recording starts is recorded from its next bytes on (its
 * capture then begins with a synthesised handshake mid-conversation).
 *
 * Ownership: the caller owns the tap and frees it after the proxy. Per
 * connection state lives from conn_open to conn_free.
 *
 * Threads: a proxy with several event loops calls the observer from each.
 * The list of connections and everything recording touches are under mu;
 * while nothing is recorded (active is 0) the byte callbacks take no lock.
 */
#define LOG_PREFIX "record: "
#include "record/record.h"
#include "record/tap.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tap_leg {
	unsigned id;
	int open;
	struct rec_flow *flow;
	struct rec_flow *kflow; /* the replica's own recording (rec_tap_keep_replica) */
	struct tap_leg *next;
};

#define TAP_KEEP_MAX 16

struct tap_conn {
	struct rec_tap *t;
	void *next_conn; /* the wrapped observer's state */
	uint64_t id;
	int front_closed;
	struct rec_flow *prod;
	struct tap_leg *legs;
	struct tap_conn *prev, *next;
};

struct rec_tap {
	pthread_mutex_t mu;
	_Atomic int active; /* recording, or keeping a replica's recording */
	struct proxy_observer next;
	struct net_endpoint backend;
	struct rec *rec; /* NULL: not recording */
	struct tap_conn *conns;
	uint64_t conns_live;
	struct {
		unsigned id;
		struct rec *rec;
	} keep[TAP_KEEP_MAX];
};

static struct rec *keep_rec(struct rec_tap *t, unsigned id)
{
	for (unsigned i = 0; i < TAP_KEEP_MAX; i++)
		if (t->keep[i].rec && t->keep[i].id == id)
			return t->keep[i].rec;
	return NULL;
}

/* Under mu: is anything being recorded? */
static void set_active(struct rec_tap *t)
{
	int a = t->rec != NULL;

	for (unsigned i = 0; i < TAP_KEEP_MAX; i++)
		a |= t->keep[i].rec != NULL;
	atomic_store(&t->active, a);
}

struct rec_tap *rec_tap_new(const struct proxy_observer *next, const struct net_endpoint *backend)
{
	struct rec_tap *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	if (next)
		t->next = *next;
	if (backend)
		t->backend = *backend;
	t->backend.netns_fd = -1;
	return t;
}

static void tap_conn_free(struct tap_conn *tc)
{
	struct rec_tap *t = tc->t;

	while (tc->legs) {
		struct tap_leg *l = tc->legs;

		tc->legs = l->next;
		free(l);
	}
	if (tc->prev)
		tc->prev->next = tc->next;
	else
		t->conns = tc->next;
	if (tc->next)
		tc->next->prev = tc->prev;
	t->conns_live--;
	free(tc);
}

/* Close every flow of every connection (recording stops). */
static void close_flows(struct rec_tap *t)
{
	for (struct tap_conn *tc = t->conns; tc; tc = tc->next) {
		rec_flow_close(tc->prod, 0);
		tc->prod = NULL;
		for (struct tap_leg *l = tc->legs; l; l = l->next) {
			rec_flow_close(l->flow, 0);
			l->flow = NULL;
		}
	}
}

int rec_tap_keep_replica(struct rec_tap *t, unsigned replica_id, const struct rec_config *c,
			 char *err, size_t errlen)
{
	pthread_mutex_lock(&t->mu);
	for (unsigned i = 0; i < TAP_KEEP_MAX; i++)
		if (!t->keep[i].rec) {
			int rc = rec_open(c, &t->keep[i].rec, err, errlen);

			if (rc == 0)
				t->keep[i].id = replica_id;
			set_active(t);
			pthread_mutex_unlock(&t->mu);
			return rc;
		}
	pthread_mutex_unlock(&t->mu);
	snprintf(err, errlen, "at most %d replicas recorded on their own", TAP_KEEP_MAX);
	return -ENOSPC;
}

static void keep_stop(struct rec_tap *t, unsigned replica_id);

void rec_tap_keep_stop(struct rec_tap *t, unsigned replica_id)
{
	pthread_mutex_lock(&t->mu);
	keep_stop(t, replica_id);
	set_active(t);
	pthread_mutex_unlock(&t->mu);
}

static void keep_stop(struct rec_tap *t, unsigned replica_id)
{
	for (unsigned i = 0; i < TAP_KEEP_MAX; i++) {
		if (!t->keep[i].rec || t->keep[i].id != replica_id)
			continue;
		for (struct tap_conn *tc = t->conns; tc; tc = tc->next)
			for (struct tap_leg *l = tc->legs; l; l = l->next)
				if (l->id == replica_id) {
					rec_flow_close(l->kflow, 0);
					l->kflow = NULL;
				}
		rec_close(t->keep[i].rec);
		t->keep[i].rec = NULL;
	}
}

void rec_tap_free(struct rec_tap *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < TAP_KEEP_MAX; i++)
		if (t->keep[i].rec)
			rec_tap_keep_stop(t, t->keep[i].id);
	rec_tap_stop(t);
	while (t->conns)
		tap_conn_free(t->conns);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

int rec_tap_start(struct rec_tap *t, const struct rec_config *c, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&t->mu);
	if (t->rec) {
		snprintf(err, errlen, "already recording into %s", rec_dir(t->rec));
		rc = -EALREADY;
	} else {
		rc = rec_open(c, &t->rec, err, errlen);
		set_active(t);
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static void tap_stop(struct rec_tap *t);

void rec_tap_stop(struct rec_tap *t)
{
	pthread_mutex_lock(&t->mu);
	tap_stop(t);
	set_active(t);
	pthread_mutex_unlock(&t->mu);
}

static void tap_stop(struct rec_tap *t)
{
	struct rec_stats st;

	if (!t->rec)
		return;
	close_flows(t);
	rec_get_stats(t->rec, &st);
	pr_info("recording stopped dir=%s files=%llu bytes=%llu flows=%llu dropped_packets=%llu",
		rec_dir(t->rec), (unsigned long long)st.files, (unsigned long long)st.bytes,
		(unsigned long long)st.flows, (unsigned long long)st.dropped_packets);
	rec_close(t->rec);
	t->rec = NULL;
}

int rec_tap_status(const struct rec_tap *t, struct rec_stats *st, const char **dir)
{
	struct rec_tap *mt = (struct rec_tap *)t;
	int on;

	pthread_mutex_lock(&mt->mu);
	on = t->rec != NULL;
	if (!on) {
		memset(st, 0, sizeof(*st));
		*dir = NULL;
	} else {
		rec_get_stats(t->rec, st);
		*dir = rec_dir(t->rec);
	}
	pthread_mutex_unlock(&mt->mu);
	return on;
}

/* ---- the observer ---- */

static void *tap_conn_open(void *arg, uint64_t conn_id)
{
	struct rec_tap *t = arg;
	struct tap_conn *tc = calloc(1, sizeof(*tc));

	if (!tc)
		return NULL;
	tc->t = t;
	tc->id = conn_id;
	if (t->next.conn_open)
		tc->next_conn = t->next.conn_open(t->next.arg, conn_id);
	pthread_mutex_lock(&t->mu);
	tc->next = t->conns;
	if (t->conns)
		t->conns->prev = tc;
	t->conns = tc;
	t->conns_live++;
	pthread_mutex_unlock(&t->mu);
	return tc;
}

static struct rec_flow *prod_flow(struct tap_conn *tc)
{
	struct rec_tap *t = tc->t;

	if (!t->rec || tc->front_closed)
		return NULL;
	if (!tc->prod) {
		struct rec_side *s = rec_side_get(t->rec, "production");

		if (s)
			tc->prod = rec_flow_open(s, tc->id, NULL, &t->backend);
	}
	return tc->prod;
}

/* Production's bytes one way, recorded while recording. */
static void prod_data(struct tap_conn *tc, int from_client, const void *buf, size_t n)
{
	if (!atomic_load_explicit(&tc->t->active, memory_order_relaxed))
		return;
	pthread_mutex_lock(&tc->t->mu);
	rec_flow_data(prod_flow(tc), from_client, buf, n);
	pthread_mutex_unlock(&tc->t->mu);
}

static void tap_client_bytes(void *conn, const void *buf, size_t n)
{
	struct tap_conn *tc = conn;

	if (!tc)
		return;
	prod_data(tc, 1, buf, n);
	if (tc->t->next.client_bytes)
		tc->t->next.client_bytes(tc->next_conn, buf, n);
}

static void tap_server_bytes(void *conn, const void *buf, size_t n)
{
	struct tap_conn *tc = conn;

	if (!tc)
		return;
	prod_data(tc, 0, buf, n);
	if (tc->t->next.server_bytes)
		tc->t->next.server_bytes(tc->next_conn, buf, n);
}

static void tap_conn_close(void *conn, int reset)
{
	struct tap_conn *tc = conn;

	if (!tc)
		return;
	pthread_mutex_lock(&tc->t->mu);
	rec_flow_close(tc->prod, reset);
	tc->prod = NULL;
	tc->front_closed = 1;
	pthread_mutex_unlock(&tc->t->mu);
	if (tc->t->next.conn_close)
		tc->t->next.conn_close(tc->next_conn, reset);
}

static void tap_conn_gone(void *conn)
{
	struct tap_conn *tc = conn;
	struct rec_tap *t;

	if (!tc)
		return;
	t = tc->t;
	if (tc->t->next.conn_free)
		tc->t->next.conn_free(tc->next_conn);
	pthread_mutex_lock(&t->mu);
	for (struct tap_leg *l = tc->legs; l; l = l->next) {
		rec_flow_close(l->flow, 0);
		rec_flow_close(l->kflow, 0);
	}
	rec_flow_close(tc->prod, 0);
	tap_conn_free(tc);
	pthread_mutex_unlock(&t->mu);
}

static struct tap_leg *leg_get(struct tap_conn *tc, unsigned id)
{
	struct tap_leg *l;

	for (l = tc->legs; l; l = l->next)
		if (l->id == id)
			return l;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->id = id;
	l->open = 1;
	l->next = tc->legs;
	tc->legs = l;
	return l;
}

static void tap_replica_bytes(void *conn, unsigned replica_id, const char *name, int to_replica,
			      const void *buf, size_t n)
{
	struct tap_conn *tc = conn;
	struct tap_leg *l;

	if (!tc)
		return;
	if (!atomic_load_explicit(&tc->t->active, memory_order_relaxed))
		goto next;
	pthread_mutex_lock(&tc->t->mu);
	l = leg_get(tc, replica_id);
	if (l && l->open) {
		struct rec *k = keep_rec(tc->t, replica_id);

		if (k && !l->kflow) {
			struct rec_side *s = rec_side_get(k, "received");

			if (s)
				l->kflow = rec_flow_open(s, tc->id, NULL, &tc->t->backend);
		}
		rec_flow_data(l->kflow, to_replica, buf, n);
	}
	if (l && l->open && tc->t->rec) {
		if (!l->flow) {
			char side[80];
			struct rec_side *s;

			snprintf(side, sizeof(side), "replica-%s", name);
			s = rec_side_get(tc->t->rec, side);
			if (s)
				l->flow = rec_flow_open(s, tc->id, NULL, &tc->t->backend);
		}
		rec_flow_data(l->flow, to_replica, buf, n);
	}
	pthread_mutex_unlock(&tc->t->mu);
next:
	if (tc->t->next.replica_bytes)
		tc->t->next.replica_bytes(tc->next_conn, replica_id, name, to_replica, buf, n);
}

static void tap_replica_close(void *conn, unsigned replica_id, int reset)
{
	struct tap_conn *tc = conn;
	struct tap_leg *l;

	if (!tc)
		return;
	if (tc->t->next.replica_close)
		tc->t->next.replica_close(tc->next_conn, replica_id, reset);
	pthread_mutex_lock(&tc->t->mu);
	for (l = tc->legs; l; l = l->next)
		if (l->id == replica_id && l->open) {
			rec_flow_close(l->flow, reset);
			l->flow = NULL;
			rec_flow_close(l->kflow, reset);
			l->kflow = NULL;
			l->open = 0;
		}
	pthread_mutex_unlock(&tc->t->mu);
}

void rec_tap_observer(struct rec_tap *t, struct proxy_observer *out)
{
	memset(out, 0, sizeof(*out));
	out->conn_open = tap_conn_open;
	out->client_bytes = tap_client_bytes;
	out->server_bytes = tap_server_bytes;
	out->conn_close = tap_conn_close;
	out->replica_bytes = tap_replica_bytes;
	out->replica_close = tap_replica_close;
	out->conn_free = tap_conn_gone;
	out->arg = t;
}
