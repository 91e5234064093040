/*
 * proxy-int.h - the proxy's private structures, shared by proxy.c (listener,
 * replicas), conn.c (the per-connection data path) and status.c (status views).
 *
 * Ownership and threads: everything here belongs to one struct proxy and is
 * touched only by the thread running its event_base. With --threads N there
 * are N such proxies, one per thread (workers.c): worker 0 is the one the
 * caller made and owns the others; a replica is attached to every worker
 * under the same id, and its workers' struct replica share one struct
 * replica_share (worker 0's), the only data-path state threads share.
 *   - struct proxy owns its replicas, its connections and the chunk pool.
 *   - struct proxy_conn is allocated at accept (with one leg per replica
 *     known then) and freed by conn_release() once the client side, the
 *     production side and every leg are closed.
 *   - a leg points to its replica; removing the replica closes the leg first.
 *   - an open leg whose client side is over (lingering) is also on its
 *     replica's linger list, oldest first, until it closes: the legs that go
 *     first when the replica's legs reach their cap or production needs an fd.
 */
#ifndef DOPPEL_PROXY_INT_H
#define DOPPEL_PROXY_INT_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rate.h"
#include "divergence/divergence.h"
#include "proxy/chunk.h"
#include "proxy/proxy.h"
#include "proxy/tls.h"

struct proxy_conn;

/* side->flags / leg->flags */
enum {
	SF_OPEN = 1 << 0,	 /* fd is valid */
	SF_CONNECTING = 1 << 1,	 /* connect() in progress */
	SF_EOF_IN = 1 << 2,	 /* read returned 0 */
	SF_FIN_PENDING = 1 << 3, /* send FIN once out is drained */
	SF_SHUT_OUT = 1 << 4,	 /* FIN sent */
	SF_PAUSED = 1 << 5,	 /* reading paused (peer's queue is full) */
	SF_RESET = 1 << 6,	 /* close with RST once drained */
	SF_DROPPED = 1 << 7,	 /* leg only: replica dropped; bytes are counted, not sent */
	SF_SETTLED = 1 << 8,	 /* leg only: divergence follower ended */
	SF_DIRTY = 1 << 9,	 /* leg only: on px->dirty, waiting for the flush timer */
	SF_FIN_WAIT = 1 << 10,	 /* leg only: FIN held until the replica has answered enough */
	SF_FULL = 1 << 11,	/* leg only: its socket took less than offered; wait for EV_WRITE */
	SF_HANDSHAKE = 1 << 12, /* side only: TLS handshake in progress (tls.c) */
	SF_LINGER = 1 << 13,	/* leg only: on rep->linger (open, its client gone) */
};

/* The client or the production side of a connection (side_conn finds it). */
struct side {
	int fd;
	uint16_t flags;
	uint8_t is_be; /* production's side: the connection's be, else its cli */
	struct event ev;
	struct segq out;      /* bytes waiting to be written to fd */
	struct tls_conn *tls; /* TLS on this side (tls.c), or NULL: plain TCP */
};

struct replica;

/* One replica's share of one client connection (leg_conn finds it). */
struct leg {
	struct replica *rep; /* NULL once the replica is gone */
	int fd;
	unsigned flags;
	unsigned idx; /* its slot in conn->legs, and its follower slot in conn->div */
	struct event ev;
	struct segq out;
	uint64_t written;		       /* client bytes given to the replica */
	uint64_t answered;		       /* bytes the replica answered on this connection */
	uint64_t last_activity_ns;	       /* last write to or answer from the replica */
	struct leg *rep_prev, *rep_next;       /* rep->legs */
	struct leg *dirty_prev, *dirty_next;   /* px->dirty */
	struct leg *linger_prev, *linger_next; /* rep->linger_head..linger_tail */
};

/*
 * What a replica's workers share (atomics): one budget over all of their
 * queues, one count of overflows, one first overflow (the debug window),
 * and whether the owner's overflow hook has yet to hear of the latest.
 */
struct replica_share {
	_Atomic uint64_t buffered, total_high_water;
	_Atomic uint64_t overflows, first_overflow_ns, last_overflow_ns;
	_Atomic int hook_pending;
};

/*
 * A replica's queues and rates, summed over workers (each read on its own
 * thread): what replica_fill_info walks the legs and rate counters for.
 */
struct replica_snap {
	uint64_t max_conn;
	unsigned backlogged;
	double ingress_bps, drain_bps;
};

struct replica {
	struct proxy *px;
	struct replica_share *sh; /* &own_sh on worker 0, worker 0's on the others */
	struct replica_share own_sh;
	struct replica_snap snap; /* a folded view's (status.c): over every worker */
	unsigned id;
	char name[64];
	struct net_endpoint ep;
	uint64_t buffer, budget; /* this replica's caps */
	uint64_t attach_ns;
	struct leg *legs; /* legs with an open fd or queued bytes */
	/* open legs whose client has gone, oldest first (SF_LINGER) */
	struct leg *linger_head, *linger_tail;
	uint64_t lingering; /* legs on that list */
	/* counters (conns_active: open legs, each holding an fd) */
	uint64_t conns_total, conns_active, connect_failures, conns_skipped;
	uint64_t conns_over_cap; /* of conns_skipped: the replica's legs were at their cap */
	uint64_t legs_evicted;	 /* lingering legs closed to make room for a new one */
	uint64_t resets;	 /* legs the replica reset (or that failed) once connected */
	uint64_t bytes_offered, bytes_forwarded, bytes_dropped, bytes_answered;
	/* connections open before the attach joined at a turn (join.c): as they were, after a
	 * replay of their state commands, or refused (those could not be replayed) */
	uint64_t joined, joined_preamble, join_refused;
	/* open at its freeze: continued exactly (exact.c), or joined at a turn instead */
	uint64_t joined_exact, join_inexact;
	/* this worker's queue; its largest for one connection (rep->sh: over all) */
	uint64_t buffered, high_water;
	uint64_t last_fail_ns;
	uint64_t cap_warn_ns; /* when its leg cap was last logged */
	struct rate_ctr ingress, drain;
	struct div_counts div;
	struct div_replica *drep; /* per-type counts and excerpts; counts go to div */
	int control;
};

struct proxy_conn {
	struct proxy *px;
	uint64_t id;
	struct side cli, be;
	struct div_conn *div;
	void *obs;			/* the observer's per-connection state */
	struct proxy_conn *prev, *next; /* px->conns */
	int reset;			/* the front ended with a reset */
	int front_done;			/* client and production sides closed */
	uint64_t front_done_ns;
	uint64_t prod_answered;	      /* bytes production sent on this connection */
	uint64_t prod_given;	      /* client bytes production's socket took (send returned) */
	uint64_t cli_given, cli_read; /* bytes the client's socket took, and gave */
	uint64_t
		srv_skip; /* an exact join: production's bytes not to compare (before the freeze) */
	/*
	 * How much production had answered when the client ended its side (FIN
	 * or reset): a replica gets the same end once it has answered as much,
	 * as production did. Valid once fin_mark_set.
	 */
	uint64_t fin_mark;
	int fin_mark_set;
	/* joins (join.c) */
	uint8_t client_turn;	   /* the client sent bytes production has not answered yet */
	uint8_t join_pending;	   /* replicas were attached after this connection began */
	struct join_pre *pre;	   /* its RESP state commands and their answers, or NULL */
	struct proxy_conn *owner;  /* a join: the connection whose bytes it copies */
	struct proxy_conn **joins; /* an accepted connection: its joins */
	struct join_backlog *bl;   /* its conversation since a turn at the last hold, or NULL */
	unsigned njoins;
	unsigned nlegs;
	struct leg legs[];
};

static inline struct proxy_conn *side_conn(struct side *s)
{
	return s->is_be ? (struct proxy_conn *)((char *)s - offsetof(struct proxy_conn, be))
			: (struct proxy_conn *)((char *)s - offsetof(struct proxy_conn, cli));
}

static inline struct proxy_conn *leg_conn(const struct leg *leg)
{
	return (struct proxy_conn *)((char *)(leg - leg->idx) - offsetof(struct proxy_conn, legs));
}

struct proxy_workers;

struct proxy {
	struct event_base *base;
	struct proxy_config cfg;
	/* --threads: worker 0 (itself on worker 0), this worker's index, how many */
	struct proxy *primary;
	unsigned widx, nthreads;
	struct proxy_workers *workers; /* worker 0 with more than one: the others (workers.c) */
	int notify_fd;		       /* worker 0 with workers: their overflows arrive here */
	int own_lfd;		       /* lfd is this worker's (not cfg.listen_fd) */
	uint64_t *fold_accepted;       /* a folded view (status.c) only: each worker's accepts */
	struct proxy_hooks hooks;
	struct proxy_observer ob;
	int lfd;
	struct event lev;
	struct event accept_retry;
	struct event tick;
	struct event notify; /* runs overflow hooks outside the data path */
	struct event flush;  /* writes the dirty legs' queues (replica_flush_ns) */
	struct leg *dirty;   /* legs with bytes waiting for the flush timer */
	struct chunk_pool pool;
	unsigned char scratch[64 * 1024]; /* replica answers: hashed, then dropped */
	struct replica **reps;
	unsigned nreps, capreps, next_rep_id;
	const struct div_rules *rules; /* cfg.div_rules, or own_rules */
	struct div_rules *own_rules;
	struct div_types *types; /* request types of every connection */
	struct proxy_conn *conns;
	uint64_t next_conn_id;
	uint64_t start_ns;
	/* counters */
	uint64_t conns_accepted, conns_active, conns_lingering;
	uint64_t conns_allocated; /* struct proxy_conn not yet freed (leak check) */
	uint64_t fin_waits;	  /* legs holding a FIN back (conn_tick releases them) */
	uint64_t sweep_ns;	  /* when conn_tick last let idle connections rest */
	uint64_t backend_failures, client_resets, backend_resets, accept_errors;
	/* replica legs: the cap (cfg.max_legs or from the fd limit), how many are open */
	uint64_t fd_limit, legs_cap, legs_open;
	uint64_t legs_reclaimed; /* legs closed because a client or production needed an fd */
	uint64_t accept_pauses;	 /* accepting paused for lack of fds or memory */
	uint64_t accept_warn_ns; /* when that was last logged */
	int legs_cap_logged;
	uint64_t bytes_client, bytes_backend;
	struct tls_front *tls; /* --tls-cert / --tls-backend, or NULL */
	int hold;	       /* production's input is held (proxy_hold) */
	uint64_t hold_ns;      /* since when */
	uint64_t holds, held_ns_total;
	int backlog; /* connections record their backlog (proxy_hold until
			proxy_backlog_end) */
	/* exact.c: where each connection's streams began, noted at the hold; under exact_mu */
	pthread_mutex_t exact_mu;
	struct exact_note *notes;
	unsigned nnotes;
	struct tls_stats tls_stats;
};

/* conn.c */
void conn_accept(struct proxy *px, int fd);
void conn_drop_leg(struct leg *leg, const char *reason);
void conn_tick(struct proxy *px, uint64_t now);
void conn_close_all(struct proxy *px);
void conn_flush_dirty(struct proxy *px);
/*
 * Out of fds: close a replica leg so a client and production get theirs (the
 * oldest lingering leg, else a live one). 1 if one was closed.
 */
int conn_reclaim_leg(struct proxy *px);

/* conn.c, for join.c */
struct proxy_conn *conn_new(struct proxy *px, int cfd, unsigned nlegs);
void leg_open(struct proxy_conn *c, unsigned idx, struct replica *rep, uint64_t now);
void leg_feed(struct leg *leg, struct chunk *ch, uint32_t off, size_t n, int *kept, uint64_t now);

/*
 * join.c: connections open when a replica is attached join it at their next
 * turn (proxy_config.join_open). A join is a mirrored connection (one leg,
 * to that replica) fed by its owner's data path.
 */
void join_replica_added(struct proxy *px, struct replica *rep, struct proxy_peers *peers);
/* From from_client / from_backend while px->backlog: the bytes (in ch at off) recorded. */
void join_backlog_add(struct proxy_conn *c, int server, struct chunk *ch, uint32_t off, size_t n,
		      int *kept);
void join_backlog_free(struct proxy_conn *c);
/* exact.c at the hold: c's backlog from now, with what is queued for production first. */
int join_backlog_start(struct proxy_conn *c);
/* From from_client, before the bytes are handled: track state commands, open joins. */
void join_client_before(struct proxy_conn *c, const unsigned char *buf, size_t n, uint64_t now);
/* From from_client: the owner's bytes (in ch at off) to its joins. */
void join_client_bytes(struct proxy_conn *c, struct chunk *ch, uint32_t off, size_t n, int *kept,
		       uint64_t now);
/* From from_backend: production's answer to the joins' divergence. */
void join_server_bytes(struct proxy_conn *c, const unsigned char *buf, size_t n);
/* The owner's front is over (reset or not): end its joins. */
void join_owner_done(struct proxy_conn *c, int reset);
/* conn_free: a join leaves its owner's list; an owner frees its lists. */
void join_conn_free(struct proxy_conn *c);

/*
 * exact.c: exact continuation. exact_hold(): at proxy_hold(px, 1), note each
 * connection's stream origins and start its backlog from now. exact_end():
 * at proxy_backlog_end(), forget them. exact_take(): the end made for
 * connection id in peers, or -1; its skip (production's bytes before the
 * freeze, not to compare) in *skip. exact_close_rest(): close the ends not
 * taken (their clone sees a FIN).
 */
struct exact_note;
void exact_hold(struct proxy *px);
void exact_end(struct proxy *px);
int exact_take(struct proxy_peers *peers, uint64_t id, uint64_t *skip);
void exact_close_rest(struct proxy_peers *peers);
/* conn.c: leg_open with a connected socket */
void leg_open_fd(struct proxy_conn *c, unsigned idx, struct replica *rep, int fd, uint64_t now);

/* proxy.c: one worker's proxy (worker widx of primary's; primary NULL: worker 0) */
int proxy_new_one(struct event_base *base, const struct proxy_config *cfg, struct proxy *primary,
		  unsigned widx, struct proxy **out, char *err, size_t errlen);
void proxy_free_one(struct proxy *px);

/*
 * workers.c. workers_start: threads - 1 workers besides px (worker 0), each
 * on its own thread. workers_each: fn(worker, arg) on every worker, worker 0
 * first, each on its own thread while the caller (worker 0's thread) waits;
 * workers_each_other: the same without worker 0. workers_stop: stop and free
 * them.
 */
int workers_start(struct proxy *px, unsigned threads, char *err, size_t errlen);
void workers_stop(struct proxy *px);
unsigned workers_count(const struct proxy *px);
void workers_each(struct proxy *px, void (*fn)(struct proxy *px, void *arg), void *arg);
void workers_each_other(struct proxy *px, void (*fn)(struct proxy *px, void *arg), void *arg);

/*
 * status.c: what px's views are made from: px itself with one thread, else a
 * fresh proxy holding its workers' counters summed (NULL when out of memory).
 * status_view_done frees it.
 */
struct proxy *status_view(struct proxy *px);
void status_view_done(struct proxy *px, struct proxy *view);

/* proxy.c */
void replica_overflowed(struct replica *rep, uint64_t now);
/* snap: its queues and rates over the workers, or NULL: this worker's, read now */
void replica_fill_info(struct replica *rep, const struct replica_snap *snap, uint64_t now,
		       struct proxy_replica_info *out);
/* Its legs' queues and rates now, added to sum (on its worker's thread). */
void replica_snap_add(struct replica *rep, uint64_t now, struct replica_snap *sum);
void replica_leg_unlink(struct leg *leg);
/* Open legs allowed to rep (cfg.max_replica_legs, or its share of legs_cap). */
uint64_t replica_leg_cap(const struct replica *rep);

#endif
