/*
 * divergence.h - does a replica answer like production? Per-turn hashing.
 *
 * A *turn* is what a server sends between two sends of the client. For each
 * client connection, a struct div_conn records production's turns (length,
 * XXH3 hash, and how many client bytes had been sent when the turn ended) in a
 * bounded ring. Each replica of that connection is a *follower*: its answer
 * stream is cut into the same turns and each turn's hash is compared with
 * production's.
 *
 * How a replica's bytes are assigned to turns. Replica bytes can be late (the
 * replica runs behind, from a buffer) and chunked differently, so arrival time
 * alone cannot cut them. Two facts do:
 *   1. a replica cannot answer turn k+1 before it was given the client bytes
 *      that start turn k+1 (the caller passes `written`, the client bytes given
 *      to the replica so far); while written <= end_client(k), every byte the
 *      replica sends belongs to turn k or earlier, so a longer answer stays in
 *      its own turn;
 *   2. otherwise the turn is cut at production's length for that turn.
 * An identical replica therefore matches on every turn however it is delayed
 * or pipelined; a different answer of the same length diverges on one turn; a
 * longer answer diverges on one turn when the replica keeps up. Limit: a
 * *shorter* answer given while the replica is more than one turn behind shifts
 * the cut, and later turns of that connection count as diverged too.
 *
 * Ownership: the proxy allocates one div_conn per client connection (with room
 * for its followers), feeds it from the connection's event-loop thread only,
 * and frees it once production and every follower are finished.
 */
#ifndef DOPPEL_DIVERGENCE_H
#define DOPPEL_DIVERGENCE_H

#include <stddef.h>
#include <stdint.h>

/* Live counters of one replica, summed over its connections. */
struct div_counts {
	uint64_t turns_compared;  /* turns with both answers complete */
	uint64_t turns_diverged;  /* ... whose hashes (or lengths) differed */
	uint64_t turns_unchecked; /* production turns the replica never got to answer */
	uint64_t conns_diverged;  /* connections with at least one diverged turn */
};

/* How a follower ended. */
enum div_end {
	DIV_END_EOF,	 /* the replica finished: turns it did not answer diverged */
	DIV_END_DROPPED, /* doppel dropped the replica (overflow): the rest, and every
			    later production turn, is unchecked */
};

struct div_conn;

/*
 * max_turns bounds the ring of production turns kept for followers that run
 * behind; a follower more than max_turns behind stops comparing (its remaining
 * turns count as unchecked). nfollowers is the number of follower slots.
 */
struct div_conn *div_conn_new(unsigned nfollowers, unsigned max_turns);
void div_conn_free(struct div_conn *dc);

/* The client sent n bytes (to production and every follower). */
void div_client_bytes(struct div_conn *dc, size_t n);
/* Production sent these bytes to the client. */
void div_server_bytes(struct div_conn *dc, const void *buf, size_t n);
/* Production's side is over: its last turn is complete. */
void div_server_end(struct div_conn *dc);

/* Start comparing follower idx; counts go to *sink (owned by the caller, must outlive dc). */
void div_follower_start(struct div_conn *dc, unsigned idx, struct div_counts *sink);
/*
 * Follower idx sent these bytes; `written` is the number of client bytes
 * given to it so far.
 */
void div_follower_bytes(struct div_conn *dc, unsigned idx, const void *buf, size_t n,
			uint64_t written);
/* Follower idx is over; settle its remaining turns according to `how`. */
void div_follower_end(struct div_conn *dc, unsigned idx, enum div_end how);

/* Stop counting anything for follower idx (its sink is going away). */
void div_follower_detach(struct div_conn *dc, unsigned idx);

/* Number of production turns seen so far on this connection. */
uint64_t div_turns(const struct div_conn *dc);

/* One-shot XXH3 of a buffer, the hash used for every turn. */
uint64_t div_hash(const void *buf, size_t n);

#endif
