/*
 * agg-int.h - the aggregator's private structures, shared by record.c
 * (production's recording), replay.c (answering clones) and aggregator.c.
 *
 * Ownership: struct agg owns its upstreams; an upstream owns its recorded
 * production connections (oldest first) and its clone connections; a clone
 * connection that is bound to a recorded connection holds a reference on it,
 * so eviction never frees what a clone is replaying. All on the event-loop
 * thread.
 */
#ifndef DOPPEL_AGGREGATOR_INT_H
#define DOPPEL_AGGREGATOR_INT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>

#include "aggregator/aggregator.h"
#include "capture/capture.h"
#include "common/netaddr.h"
#include "proxy/proxy.h"

/* agg_turn.used_by has a bit per clone slot. */
_Static_assert(AGG_MAX_CLONES <= 64, "a clone slot is a bit of a uint64_t");

/* One turn of a recorded connection: a request and the answer to it. */
struct agg_turn {
	uint64_t off; /* request starts at pc->data + off; the answer follows it */
	uint32_t req_len;
	uint32_t resp_len;
	uint64_t ns;	  /* when the request began (monotonic) */
	uint64_t used_by; /* clones (bit per slot) that were answered with it */
};

/* One production connection to the upstream, as recorded. */
struct agg_pconn {
	struct agg_up *up;
	uint64_t seq;	  /* 1, 2, ... in order of opening; 0: open before the capture */
	uint64_t conn_id; /* the relay's (or capture's) connection id */
	uint64_t open_ns;
	unsigned char *data; /* requests and answers, in order */
	uint64_t len, cap;
	struct agg_turn *turns;
	unsigned nturns, capturns;
	int answering; /* the last bytes were the upstream's */
	int closed, reset, truncated;
	unsigned refs; /* clone connections bound here */
	struct agg_pconn *prev, *next;
};

/* One clone connection to a fake upstream. */
struct agg_cconn {
	struct agg_clone_up *cu;
	struct bufferevent *bev;
	uint64_t index;	      /* 0 for the clone's first connection to this upstream */
	struct agg_pconn *pc; /* bound recording, or NULL */
	unsigned turn;	      /* the turn being answered or expected next */
	int answering;	      /* turn's request matched; its answer is being sent */
	uint32_t sent;	      /* bytes of the turn's answer sent */
	int content_matched;  /* bound by rule 2 */
	unsigned char *pend;  /* what the clone sent and we have not matched yet */
	uint32_t pend_len, pend_cap;
	uint64_t wait_since; /* 0: not waiting for production */
	struct agg_cconn *prev, *next;
};

/* A clone's side of one upstream. */
struct agg_clone_up {
	struct agg_up *up;
	struct agg_clone *cl;
	int lfd;
	struct event *lev;
	uint64_t base_seq; /* production's next connection seq when the clone was attached */
	uint64_t attach_ns;
	uint64_t next_index;
	struct agg_cconn *conns;
	/* counters */
	uint64_t conns_total, in_order, by_content, diverged, unanswered;
	/* production's connections open at the freeze that continue here, or could not */
	uint64_t continued, not_continued;
	uint64_t bytes_answered, bytes_dropped;
};

struct agg_clone {
	struct agg *agg;
	unsigned id;
	unsigned slot; /* bit in agg_turn.used_by */
	struct agg_clone_up ups[AGG_MAX_UPSTREAMS];
};

struct agg_up {
	struct agg *agg;
	unsigned idx;
	struct net_endpoint left, right;
	struct proxy *px;	       /* production's relay (doppel run) */
	struct capture *cap;	       /* or production's conversations captured (doppel adopt) */
	char host[64];		       /* right's IPv4 address, for the capture */
	struct agg_pconn *head, *tail; /* recordings, oldest first */
	uint64_t next_seq;
	uint64_t bytes;	    /* recorded now */
	struct event *wake; /* runs waiting clone connections after new recordings */
	/* counters */
	uint64_t conns_recorded, evicted, truncated, bytes_recorded;
};

struct agg {
	struct event_base *base;
	uint64_t budget, wait_ns;
	struct agg_up ups[AGG_MAX_UPSTREAMS];
	unsigned nups;
	struct agg_clone *clones[AGG_MAX_CLONES];
	struct event *tick; /* wait timeouts */
};

/* record.c */
extern const struct proxy_observer agg_recorder;
void agg_pconn_unref(struct agg_pconn *pc);
void agg_record_free_all(struct agg_up *up);
/* Is the request of turn t complete (the upstream began to answer, or production ended)? */
int agg_turn_req_complete(const struct agg_pconn *pc, unsigned t);
/* Is the answer of turn t complete? */
int agg_turn_resp_complete(const struct agg_pconn *pc, unsigned t);

/* replay.c */
void agg_replay_accept(evutil_socket_t fd, short what, void *arg);
/*
 * Production's connection pc, open at the freeze, continues in the clone on
 * fd (the clone's end of it, connected, out of repair mode): answered from
 * the recording from where production's end was (it had sent `sent` bytes
 * and received `received`). 0, or -1 when the recording has no such point
 * (fd is left to the caller).
 */
int agg_replay_continue(struct agg_clone_up *cu, int fd, struct agg_pconn *pc, uint64_t sent,
			uint64_t received);
void agg_replay_wake(evutil_socket_t fd, short what, void *arg);
void agg_replay_tick(struct agg *a, uint64_t now);
void agg_cconn_free(struct agg_cconn *cc);

#endif
