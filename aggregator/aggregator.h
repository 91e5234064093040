/*
 * aggregator.h - upstream isolation: a clone of an app server talks to its
 * database, cache or other services exactly as production does, but never
 * reaches them. Production's upstream traffic is relayed and recorded; each
 * clone is answered from that recording.
 *
 * For every `--upstream L=R` (or `--upstream R`, L = R):
 *   - production side: a listener on L inside production's network namespace
 *     relays each connection to R (on the host) with the duplicating proxy
 *     (no replicas), and records what production sent and what the upstream
 *     answered, turn by turn (a turn: what one side sends before the other
 *     answers), in a store bounded by `budget` bytes; for an adopted service,
 *     which connects to R itself, the same recording comes from a passive
 *     capture of its conversations with R (agg_start_capture);
 *   - clone side: a listener on L inside each clone's network namespace. What
 *     a clone sends is compared with production's requests and dropped; what
 *     it receives is production's recorded answers.
 *
 * Matching a clone's request to production's (the rule, in order):
 *   1. by connection order (Parikshan's aggregator): the clone's k-th
 *      connection to an upstream is production's k-th connection to it opened
 *      after the clone was attached; its turns are replayed in order while
 *      the clone's requests equal production's, byte for byte;
 *   2. otherwise by content: the oldest turn recorded since the clone was
 *      attached, on any production connection (connection pools opened before
 *      the freeze included), whose request is exactly the clone's and that this
 *      clone has not used yet; replay then continues in order on that
 *      connection;
 *   3. otherwise the clone waits up to `wait` for production to make that
 *      request; if it never does, the request is *unanswered*: the clone's
 *      connection is reset and counted, never left hanging.
 * A request that differs from the one expected in order counts as diverged
 * (even if rule 2 then answers it). No protocol is parsed.
 *
 * Limits: requests that legitimately differ between production and clone
 * (random ids, timestamps) match by neither rule; the recording of a
 * connection that outgrows the budget is truncated (counted).
 *
 * Ownership and threads: one struct agg per supervisor, used from the thread
 * running its event_base, except agg_clone_listen(), which only creates
 * sockets and may run on a worker thread.
 */
#ifndef DOPPEL_AGGREGATOR_H
#define DOPPEL_AGGREGATOR_H

#include <stddef.h>
#include <stdint.h>

#include "capture/capture.h"
#include "common/sbuf.h"

#define AGG_MAX_UPSTREAMS 8 /* --upstream per service */
#define AGG_MAX_CLONES 64   /* clones served at once (a bit each in a uint64_t) */

struct event_base;
struct agg;

/* budget: recorded bytes kept per upstream; wait_ns: rule 3's wait. */
int agg_new(struct event_base *base, uint64_t budget, uint64_t wait_ns, struct agg **out);
void agg_free(struct agg *a);

/* Parse and add "L=R" (each HOST:PORT). 0, or -EINVAL with the reason in err. */
int agg_add_upstream(struct agg *a, const char *spec, char *err, size_t errlen);
unsigned agg_upstreams(const struct agg *a);

/* Start production's side: listeners on each L inside prod_netns_fd. */
int agg_start_production(struct agg *a, int prod_netns_fd, char *err, size_t errlen);
/*
 * Or, for a service doppel did not start (doppel adopt): record production's
 * conversations with each upstream by capturing them on iface (NULL or
 * "auto": the interface that carries the upstream's address), connections
 * open before the capture included from their next request. Only the
 * connections owned(owned_arg, ...) does not call another process's are
 * recorded. Each upstream must be given as HOST:PORT (L = R): the clones
 * connect where production does. IPv4 only. 0 or -errno with err.
 */
int agg_start_capture(struct agg *a, const char *iface, cap_owned_fn owned, void *owned_arg,
		      char *err, size_t errlen);

/*
 * Create the listening sockets of a clone's side inside netns_fd (before the
 * clone is restored, so its first connection finds them). Fills fds[0..n-1],
 * n = agg_upstreams(). Safe on any thread. 0 or -errno with err.
 */
int agg_clone_listen(const struct agg *a, int netns_fd, int *fds, char *err, size_t errlen);
/*
 * Exact continuation (--join-open; proxy.h, proxy_peers_make): around a
 * clone's freeze, agg_hold(a, 1) holds the upstreams' answers to production
 * and notes production's open upstream connections, agg_hold(a, 0) lets the
 * answers go; agg_hold_end() once the clones are attached. On the clone's
 * worker thread, agg_peers_make() makes in the clone's netns the
 * upstream-side end of each of production's upstream connections among
 * ends (production's ends as dumped); *made: how many. NULL out of memory.
 */
struct tcp_end;
struct agg_peers;
void agg_hold(struct agg *a, int hold);
void agg_hold_end(struct agg *a);
struct agg_peers *agg_peers_make(struct agg *a, int netns_fd, const struct tcp_end *ends,
				 unsigned n, unsigned *made);
void agg_peers_free(struct agg_peers *p);
/*
 * Serve clone `id` on the sockets from agg_clone_listen: 0 and they are taken
 * over, or -ENOSPC (AGG_MAX_CLONES served already) / -ENOMEM and they are
 * still the caller's to close. peers (may be NULL; always taken): the
 * clone's ends of production's upstream connections open at its freeze,
 * which then continue in the clone, answered from the recording from where
 * production's end was.
 */
int agg_clone_attach(struct agg *a, unsigned id, const int *fds, struct agg_peers *peers);
/* Stop serving clone `id`; closes its sockets and connections. */
void agg_clone_detach(struct agg *a, unsigned id);

/* JSON array of upstreams (production and per-clone counters). */
void agg_status_json(struct agg *a, struct sbuf *sb);
/* Lines for people. */
void agg_status_text(struct agg *a, struct sbuf *sb);
/* Prometheus samples of every upstream and clone; labels as in stats_prom(). */
void agg_metrics(struct agg *a, struct sbuf *sb, const char *labels);

#endif
