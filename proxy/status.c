/*
 * status.c - what the proxy says about itself: the field tables of the
 * proxy (front counters) and of a replica, and the JSON, text and Prometheus
 * views made from them (common/stats.h). A counter is added here once.
 */
#include "proxy/proxy-int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/stats.h"

/* A replica counts as down or overflowing for this long after the event. */
#define STATE_MEMORY_NS (5 * NSEC_PER_SEC)

/* What a replica's row is read with, besides the replica itself. */
struct replica_ctx {
	uint64_t now;
	struct proxy_replica_info info;
	const char *state;
	uint64_t net_diverged; /* diverged turns beyond the noise (divergence/report.c) */
};

struct replica_rows {
	struct proxy *px;
	uint64_t now;
	struct replica_ctx cur;
};

static const char *replica_state(const struct replica *rep, const struct proxy_replica_info *info,
				 uint64_t now)
{
	if (rep->last_fail_ns && now - rep->last_fail_ns < STATE_MEMORY_NS && !rep->conns_active)
		return "down";
	uint64_t last_overflow = rep->sh->last_overflow_ns;

	if (last_overflow && now - last_overflow < STATE_MEMORY_NS)
		return "overflowing";
	if (info->occupancy > 0.10)
		return "lagging";
	return "ok";
}

static const void *replica_row(void *arg, unsigned i, const void **ctx)
{
	struct replica_rows *rr = arg;
	struct replica *rep = rr->px->reps[i];

	rr->cur.now = rr->now;
	replica_fill_info(rep, rr->px->fold_accepted ? &rep->snap : NULL, rr->now, &rr->cur.info);
	rr->cur.state = replica_state(rep, &rr->cur.info, rr->now);
	rr->cur.net_diverged = rep->drep ? div_replica_net(rep->drep, &rr->px->cfg.div_rule) : 0;
	*ctx = &rr->cur;
	return rep;
}

static void replica_rows_init(struct replica_rows *rr, struct stats_rows *rows, struct proxy *px,
			      uint64_t now)
{
	rr->px = px;
	rr->now = now;
	rows->n = px->nreps;
	rows->row = replica_row;
	rows->arg = rr;
}

/* ---- the replica table ---- */

#define REP(o) ((const struct replica *)(o))
#define RCTX(c) ((const struct replica_ctx *)(c))

static int rep_id(const void *o, const void *c, struct stats_val *v)
{
	v->u = REP(o)->id;
	return 0;
}

static int rep_name(const void *o, const void *c, struct stats_val *v)
{
	v->s = REP(o)->name;
	return 0;
}

static int rep_address(const void *o, const void *c, struct stats_val *v)
{
	v->s = REP(o)->ep.text;
	return 0;
}

static int rep_state(const void *o, const void *c, struct stats_val *v)
{
	v->s = RCTX(c)->state;
	return 0;
}

static int rep_occupancy(const void *o, const void *c, struct stats_val *v)
{
	v->d = RCTX(c)->info.occupancy;
	return 0;
}

static int rep_first_overflow(const void *o, const void *c, struct stats_val *v)
{
	const struct replica *rep = REP(o);

	uint64_t first = rep->sh->first_overflow_ns;

	v->d = first ? (double)(first - rep->attach_ns) / 1e9 : NAN;
	return 0;
}

/* Kept in the replica's share: one over all workers. */
static int rep_overflows(const void *o, const void *c, struct stats_val *v)
{
	v->u = REP(o)->sh->overflows;
	return 0;
}

static int rep_total_high_water(const void *o, const void *c, struct stats_val *v)
{
	v->u = REP(o)->sh->total_high_water;
	return 0;
}

static int rep_debug_window(const void *o, const void *c, struct stats_val *v)
{
	v->d = RCTX(c)->info.debug_window_s;
	return 0;
}

static int rep_window_open(const void *o, const void *c, struct stats_val *v)
{
	v->b = RCTX(c)->info.window_open;
	return 0;
}

static int rep_forecast(const void *o, const void *c, struct stats_val *v)
{
	v->d = RCTX(c)->info.forecast_s;
	return 0;
}

static int rep_ingress(const void *o, const void *c, struct stats_val *v)
{
	v->d = floor(RCTX(c)->info.ingress_bps);
	return 0;
}

static int rep_legs_cap(const void *o, const void *c, struct stats_val *v)
{
	v->u = replica_leg_cap(REP(o));
	return 0;
}

static int rep_net_diverged(const void *o, const void *c, struct stats_val *v)
{
	v->u = RCTX(c)->net_diverged;
	return 0;
}

static int rep_drain(const void *o, const void *c, struct stats_val *v)
{
	v->d = floor(RCTX(c)->info.drain_bps);
	return 0;
}

#define RCOUNT(n, f, m, h)                                                                         \
	{                                                                                          \
		.name = n, .kind = STATS_COUNTER, .off = offsetof(struct replica, f), .metric = m, \
		.help = h                                                                          \
	}
#define RGAUGE(n, f, u, m, h)                                                                  \
	{                                                                                      \
		.name = n, .kind = STATS_GAUGE, .off = offsetof(struct replica, f), .unit = u, \
		.metric = m, .help = h                                                         \
	}
/* a byte setting: the same on every worker (stats_fold keeps one) */
#define RSETTING(n, f, m, h)                                                               \
	{                                                                                  \
		.name = n, .kind = STATS_GAUGE, .flags = STATS_F_SAME,                     \
		.off = offsetof(struct replica, f), .unit = STATS_UNIT_BYTES, .metric = m, \
		.help = h                                                                  \
	}

static const struct stats_field replica_fields[] = {
	{.name = "id", .kind = STATS_GAUGE, .get = rep_id},
	{.name = "name",
	 .kind = STATS_STRING,
	 .flags = STATS_F_LABEL,
	 .metric = "replica",
	 .get = rep_name},
	{.name = "address",
	 .kind = STATS_STRING,
	 .flags = STATS_F_LABEL,
	 .metric = "address",
	 .get = rep_address},
	{.name = "state", .kind = STATS_STRING, .get = rep_state},
	RSETTING("buffer", buffer, "doppel_replica_buffer_bytes",
		 "Bytes queued per connection to the replica before the connection is dropped."),
	RSETTING("budget", budget, "doppel_replica_budget_bytes",
		 "Bytes queued over all connections to the replica before one is dropped."),
	RGAUGE("connections", conns_active, STATS_UNIT_NONE, "doppel_replica_connections",
	       "Open connections to the replica."),
	RCOUNT("connections_total", conns_total, "doppel_replica_connections_total",
	       "Connections given to the replica."),
	RCOUNT("connect_failures", connect_failures, "doppel_replica_connect_failures_total",
	       "Failed connects to the replica."),
	RCOUNT("resets", resets, "doppel_replica_resets_total",
	       "Connections the replica reset (or that failed) after it had accepted them."),
	RCOUNT("connections_skipped", conns_skipped, "doppel_replica_connections_skipped_total",
	       "Connections not given to the replica: it failed just before, or its legs were at "
	       "their cap."),
	RCOUNT("connections_over_cap", conns_over_cap, "doppel_replica_connections_over_cap_total",
	       "Connections that skipped the replica because its legs were at their cap (or the fd "
	       "table was full)."),
	{.name = "legs_cap",
	 .kind = STATS_GAUGE,
	 .get = rep_legs_cap,
	 .metric = "doppel_replica_legs_cap",
	 .help = "Open connections the replica may hold (its share of the proxy's leg cap)."},
	RGAUGE("legs_lingering", lingering, STATS_UNIT_NONE, "doppel_replica_legs_lingering",
	       "Open connections to the replica whose client has gone."),
	RCOUNT("legs_evicted", legs_evicted, "doppel_replica_legs_evicted_total",
	       "Lingering connections closed to make room under the leg cap."),
	RCOUNT("joined_exact", joined_exact, "doppel_replica_joined_exact_total",
	       "Connections open at the clone's freeze that continue on it exactly where "
	       "production's end was (TCP repair)."),
	RCOUNT("join_inexact", join_inexact, "doppel_replica_join_inexact_total",
	       "Connections open at the freeze that could not continue exactly (production "
	       "had not taken every byte, or no end could be made): joined at their next turn."),
	RCOUNT("joined", joined, "doppel_replica_joined_total",
	       "Connections open before the replica was attached, joined at their next turn."),
	RCOUNT("joined_with_state", joined_preamble, "doppel_replica_joined_with_state_total",
	       "Of those, connections joined after a replay of their RESP state commands "
	       "(AUTH, SELECT, HELLO, CLIENT, READONLY)."),
	RCOUNT("join_refused", join_refused, "doppel_replica_join_refused_total",
	       "Open connections not joined: their state commands could not be replayed "
	       "(pipelined, or longer than 512 bytes)."),
	RCOUNT("bytes_offered", bytes_offered, "doppel_replica_bytes_offered_total",
	       "Client bytes meant for the replica."),
	{.name = "bytes_forwarded",
	 .kind = STATS_COUNTER,
	 .off = offsetof(struct replica, bytes_forwarded),
	 .unit = STATS_UNIT_BYTES,
	 .metric = "doppel_replica_bytes_forwarded_total",
	 .help = "Client bytes written to the replica."},
	{.name = "bytes_dropped",
	 .kind = STATS_COUNTER,
	 .off = offsetof(struct replica, bytes_dropped),
	 .unit = STATS_UNIT_BYTES,
	 .metric = "doppel_replica_bytes_dropped_total",
	 .help = "Client bytes the replica did not get (overflow, failure)."},
	RCOUNT("bytes_answered", bytes_answered, "doppel_replica_bytes_answered_total",
	       "Bytes the replica answered (discarded)."),
	RGAUGE("buffered", buffered, STATS_UNIT_BYTES, "doppel_replica_buffered_bytes",
	       "Bytes queued for the replica now."),
	{.name = "buffer_high_water",
	 .kind = STATS_GAUGE,
	 .flags = STATS_F_MAX,
	 .off = offsetof(struct replica, high_water),
	 .unit = STATS_UNIT_BYTES,
	 .metric = "doppel_replica_buffer_high_water_bytes",
	 .help = "Largest queue of one connection to the replica."},
	{.name = "total_high_water",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .get = rep_total_high_water,
	 .metric = "doppel_replica_total_high_water_bytes",
	 .help = "Largest queue over all connections to the replica."},
	{.name = "occupancy",
	 .kind = STATS_NUMBER,
	 .get = rep_occupancy,
	 .metric = "doppel_replica_occupancy_ratio",
	 .help = "The fuller of the fullest connection's buffer and the budget (0 to 1)."},
	{.name = "overflows",
	 .kind = STATS_COUNTER,
	 .get = rep_overflows,
	 .metric = "doppel_replica_overflows_total",
	 .help = "Connections dropped because their buffer was full."},
	{.name = "first_overflow_s",
	 .kind = STATS_NUMBER,
	 .unit = STATS_UNIT_SECONDS,
	 .get = rep_first_overflow,
	 .metric = "doppel_replica_first_overflow_seconds",
	 .help = "Attach to first overflow (NaN before the first)."},
	{.name = "debug_window_s",
	 .kind = STATS_NUMBER,
	 .flags = STATS_F_KEY_LABEL,
	 .unit = STATS_UNIT_SECONDS,
	 .get = rep_debug_window,
	 .metric = "doppel_replica_debug_window_seconds",
	 .help = "Attach to first overflow (or now)."},
	{.name = "window_open",
	 .kind = STATS_BOOL,
	 .get = rep_window_open,
	 .metric = "doppel_replica_window_open",
	 .help = "1 while the replica has had no overflow."},
	{.name = "forecast_s",
	 .kind = STATS_NUMBER,
	 .flags = STATS_F_KEY_LABEL,
	 .unit = STATS_UNIT_SECONDS,
	 .get = rep_forecast,
	 .metric = "doppel_replica_forecast_seconds",
	 .help = "Seconds to overflow at current rates (+Inf when not filling)."},
	{.name = "ingress_bps",
	 .kind = STATS_NUMBER,
	 .get = rep_ingress,
	 .metric = "doppel_replica_ingress_bytes_per_second",
	 .help = "Client bytes arriving for the replica per second."},
	{.name = "drain_bps",
	 .kind = STATS_NUMBER,
	 .get = rep_drain,
	 .metric = "doppel_replica_drain_bytes_per_second",
	 .help = "Bytes the replica takes per second."},
	RCOUNT("turns_compared", div.turns_compared, "doppel_replica_turns_compared_total",
	       "Response turns compared with production."),
	RCOUNT("diverged_turns", div.turns_diverged, "doppel_replica_diverged_turns_total",
	       "Response turns that differed from production."),
	{.name = "net_diverged_turns",
	 .kind = STATS_GAUGE,
	 .get = rep_net_diverged,
	 .metric = "doppel_replica_net_diverged_turns",
	 .help = "Diverged turns beyond what the control replica shows as noise (all of them "
		 "without a control)."},
	RCOUNT("turns_unchecked", div.turns_unchecked, "doppel_replica_unchecked_turns_total",
	       "Production turns the replica never answered."),
	RCOUNT("diverged_connections", div.conns_diverged,
	       "doppel_replica_diverged_connections_total",
	       "Connections with at least one diverged turn."),
};

static const struct stats_table replica_table = STATS_TABLE(replica_fields);

static const struct stats_col replica_cols[] = {
	{"REPLICA", -10, "{name}"},
	{"ADDRESS", -22, "{address}"},
	{"STATE", -11, "{state}"},
	{"CONNS", 6, "{connections}"},
	{"SKIPPED", 8, "{connections_skipped}"},
	{"EVICTED", 8, "{legs_evicted}"},
	{"FORWARDED", 11, "{bytes_forwarded}"},
	{"DROPPED", 11, "{bytes_dropped}"},
	{"OVERFLOWS", 9, "{overflows}"},
	{"HIGH-WATER", 11, "{buffer_high_water}"},
	{"DEBUG-WINDOW", 12, "{debug_window_s}{?window_open +}"},
	{"FORECAST", 10, "{forecast_s}"},
	{"DIVERGED/COMPARED", 0, "{diverged_turns}/{turns_compared}"},
};

/* ---- the proxy table (front counters) ---- */

#define PX(o) ((const struct proxy *)(o))

static int px_listen(const void *o, const void *c, struct stats_val *v)
{
	v->s = PX(o)->cfg.listen.text;
	return 0;
}

static int px_backend(const void *o, const void *c, struct stats_val *v)
{
	v->s = PX(o)->cfg.backend.text;
	return 0;
}

static int px_uptime(const void *o, const void *c, struct stats_val *v)
{
	v->d = (double)(*(const uint64_t *)c - PX(o)->start_ns) / 1e9;
	return 0;
}

static int px_threads(const void *o, const void *c, struct stats_val *v)
{
	v->u = PX(o)->cfg.threads > 1 ? PX(o)->cfg.threads : 1;
	return 0;
}

/* Connections each thread accepted: how SO_REUSEPORT spread them. */
static void px_thread_conns_json(struct sbuf *sb, const void *o, const void *c)
{
	const struct proxy *px = o;
	unsigned n = px->cfg.threads > 1 ? px->cfg.threads : 1;

	(void)c;
	sbuf_append(sb, "[", 1);
	for (unsigned i = 0; i < n; i++)
		sbuf_printf(sb, "%s%llu", i ? "," : "",
			    (unsigned long long)(px->fold_accepted ? px->fold_accepted[i]
								   : px->conns_accepted));
	sbuf_append(sb, "]", 1);
}

static int px_chunk_bytes(const void *o, const void *c, struct stats_val *v)
{
	v->u = PX(o)->pool.chunks_live * sizeof(struct chunk);
	return 0;
}

static int px_nreps(const void *o, const void *c, struct stats_val *v)
{
	v->u = PX(o)->nreps;
	return 0;
}

static void px_replicas_json(struct sbuf *sb, const void *o, const void *c)
{
	struct replica_rows rr;
	struct stats_rows rows;

	replica_rows_init(&rr, &rows, (struct proxy *)o, *(const uint64_t *)c);
	stats_json_array(sb, &replica_table, &rows);
}

static int px_held_ms(const void *o, const void *c, struct stats_val *v)
{
	(void)c;
	v->u = ((const struct proxy *)o)->held_ns_total / 1000000;
	return 0;
}

#define PCOUNT(n, f, m, h)                                                                       \
	{                                                                                        \
		.name = n, .kind = STATS_COUNTER, .off = offsetof(struct proxy, f), .metric = m, \
		.help = h                                                                        \
	}
#define PGAUGE(n, f, u, m, h)                                                                \
	{                                                                                    \
		.name = n, .kind = STATS_GAUGE, .off = offsetof(struct proxy, f), .unit = u, \
		.metric = m, .help = h                                                       \
	}
#define PSETTING(n, f, u, m, h)                                                     \
	{                                                                           \
		.name = n, .kind = STATS_GAUGE, .flags = STATS_F_SAME,              \
		.off = offsetof(struct proxy, f), .unit = u, .metric = m, .help = h \
	}

/* The object is the proxy; the context, the uint64_t time of the reading. */
static const struct stats_field proxy_fields[] = {
	{.name = "listen", .kind = STATS_STRING, .get = px_listen},
	{.name = "backend", .kind = STATS_STRING, .get = px_backend},
	{.name = "uptime_s",
	 .kind = STATS_NUMBER,
	 .unit = STATS_UNIT_SECONDS,
	 .get = px_uptime,
	 .metric = "doppel_uptime_seconds",
	 .help = "Seconds since the proxy started."},
	PSETTING("buffer", cfg.buffer, STATS_UNIT_BYTES, "doppel_buffer_bytes",
		 "Bytes queued per connection and replica before the replica is dropped."),
	PSETTING("budget", cfg.budget, STATS_UNIT_BYTES, "doppel_budget_bytes",
		 "Bytes queued per replica over all connections before one is dropped."),
	{.name = "threads",
	 .kind = STATS_GAUGE,
	 .get = px_threads,
	 .metric = "doppel_threads",
	 .help = "Event loops (threads) the proxy runs; its counters are their sums."},
	PGAUGE("connections.active", conns_active, STATS_UNIT_NONE, "doppel_connections",
	       "Client connections open."),
	PCOUNT("connections.accepted", conns_accepted, "doppel_connections_total",
	       "Client connections accepted."),
	{.name = "connections.accepted_per_thread",
	 .kind = STATS_LIST,
	 .get = px_threads,
	 .json = px_thread_conns_json},
	PGAUGE("connections.lingering", conns_lingering, STATS_UNIT_NONE,
	       "doppel_connections_lingering",
	       "Connections whose client has gone while a replica still gets its backlog."),
	PGAUGE("connections.allocated", conns_allocated, STATS_UNIT_NONE,
	       "doppel_connections_allocated", "Connection objects not freed yet."),
	PCOUNT("production.bytes_from_clients", bytes_client, "doppel_client_bytes_total",
	       "Bytes received from clients."),
	PCOUNT("production.bytes_from_production", bytes_backend, "doppel_production_bytes_total",
	       "Bytes received from production."),
	PCOUNT("production.connect_failures", backend_failures,
	       "doppel_production_connect_failures_total", "Connections production refused."),
	PCOUNT("production.client_resets", client_resets, "doppel_client_resets_total",
	       "Client connections that ended with a reset."),
	PCOUNT("production.production_resets", backend_resets, "doppel_production_resets_total",
	       "Production connections that ended with a reset."),
	PCOUNT("production.accept_errors", accept_errors, "doppel_accept_errors_total",
	       "Failed accepts on the listener."),
	PCOUNT("production.accept_pauses", accept_pauses, "doppel_accept_pauses_total",
	       "Times accepting paused 100 ms for lack of fds or memory."),
	PCOUNT("production.input_holds", holds, "doppel_production_input_holds_total",
	       "Times production's input was held around a clone's freeze (--join-open)."),
	{.name = "production.input_held_ms",
	 .kind = STATS_COUNTER,
	 .get = px_held_ms,
	 .metric = "doppel_production_input_held_milliseconds_total",
	 .help = "Milliseconds production's input was held in all (--join-open)."},
	PSETTING("legs.fd_limit", fd_limit, STATS_UNIT_NONE, "doppel_fd_limit",
		 "The process's fd limit (soft RLIMIT_NOFILE) when the proxy started."),
	PGAUGE("legs.cap", legs_cap, STATS_UNIT_NONE, "doppel_legs_cap",
	       "Open replica connections allowed over all replicas."),
	PGAUGE("legs.open", legs_open, STATS_UNIT_NONE, "doppel_legs_open",
	       "Open replica connections over all replicas."),
	PCOUNT("legs.reclaimed", legs_reclaimed, "doppel_legs_reclaimed_total",
	       "Replica connections closed because a client or production needed the fd (the "
	       "oldest lingering one, else a live one)."),
	PGAUGE("tls.active", tls_stats.active, STATS_UNIT_NONE, "doppel_tls_connections",
	       "Client connections with TLS now (handshaking or established)."),
	PCOUNT("tls.handshakes", tls_stats.handshakes, "doppel_tls_handshakes_total",
	       "Client TLS handshakes completed."),
	PCOUNT("tls.failed_timeout", tls_stats.fail_timeout, "doppel_tls_handshake_timeouts_total",
	       "Client TLS handshakes not completed within the handshake timeout."),
	PCOUNT("tls.failed_no_shared", tls_stats.fail_no_shared,
	       "doppel_tls_handshake_no_shared_total",
	       "Client TLS handshakes failed for lack of a common protocol version or cipher."),
	PCOUNT("tls.failed_not_tls", tls_stats.fail_not_tls, "doppel_tls_handshake_not_tls_total",
	       "Clients that did not speak TLS (plain HTTP, garbage)."),
	PCOUNT("tls.failed_closed", tls_stats.fail_closed, "doppel_tls_handshake_closed_total",
	       "Clients that closed or reset the connection mid-handshake."),
	PCOUNT("tls.failed_other", tls_stats.fail_other,
	       "doppel_tls_handshake_other_failures_total",
	       "Client TLS handshakes failed for another reason (a client alert, say)."),
	PCOUNT("tls.sni_unknown", tls_stats.sni_unknown, "doppel_tls_sni_unknown_total",
	       "Handshakes naming a host no certificate covers (the default certificate was "
	       "used)."),
	/* every worker reloads its own certificates: the count is one worker's */
	{.name = "tls.reloads",
	 .kind = STATS_COUNTER,
	 .flags = STATS_F_SAME,
	 .off = offsetof(struct proxy, tls_stats.reloads),
	 .metric = "doppel_tls_reloads_total",
	 .help = "Certificate reloads (SIGHUP)."},
	{.name = "tls.reload_failures",
	 .kind = STATS_COUNTER,
	 .flags = STATS_F_SAME,
	 .off = offsetof(struct proxy, tls_stats.reload_failures),
	 .metric = "doppel_tls_reload_failures_total",
	 .help = "Certificate reloads refused (the loaded certificates stayed)."},
	PCOUNT("tls.backend_handshakes", tls_stats.backend_handshakes,
	       "doppel_tls_production_handshakes_total",
	       "TLS handshakes with production completed (--tls-backend)."),
	PCOUNT("tls.backend_failures", tls_stats.backend_failures,
	       "doppel_tls_production_handshake_failures_total",
	       "TLS handshakes with production failed or timed out (--tls-backend)."),
	PGAUGE("memory.chunks_live", pool.chunks_live, STATS_UNIT_NONE, "doppel_chunks",
	       "Data chunks referenced now."),
	{.name = "memory.chunk_bytes",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .get = px_chunk_bytes,
	 .metric = "doppel_chunk_bytes",
	 .help = "Bytes of the data chunks referenced now."},
	{.name = "replicas",
	 .kind = STATS_LIST,
	 .get = px_nreps,
	 .json = px_replicas_json,
	 .metric = "doppel_replicas",
	 .help = "Replicas attached."},
};

static const struct stats_table proxy_table = STATS_TABLE(proxy_fields);

/* ---- folding the workers' counters (--threads) ---- */

struct fold_call {
	struct proxy *fold;
	uint64_t now;
};

/* On worker px's thread: its counters into the fold. */
static void fold_fn(struct proxy *px, void *arg)
{
	struct fold_call *fc = arg;
	struct proxy *f = fc->fold;

	stats_fold(&proxy_table, f, px);
	f->fold_accepted[px->widx] = px->conns_accepted;
	for (unsigned i = 0; i < f->nreps; i++) {
		struct replica *fr = f->reps[i], *rep = NULL;

		for (unsigned j = 0; j < px->nreps && !rep; j++)
			if (px->reps[j]->id == fr->id)
				rep = px->reps[j];
		if (!rep)
			continue;
		stats_fold(&replica_table, fr, rep);
		replica_snap_add(rep, fc->now, &fr->snap);
		if (rep->last_fail_ns > fr->last_fail_ns)
			fr->last_fail_ns = rep->last_fail_ns;
		div_replica_merge(fr->drep, rep->drep);
	}
}

static void status_fold_free(struct proxy *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < f->nreps; i++) {
		if (f->reps[i])
			div_replica_free(f->reps[i]->drep);
		free(f->reps[i]);
	}
	free(f->reps);
	free(f->fold_accepted);
	div_types_free(f->types);
	free(f);
}

static struct proxy *status_fold(struct proxy *px)
{
	struct proxy *f = calloc(1, sizeof(*f));
	struct fold_call fc = {f, clock_coarse_ns()};

	if (!f)
		return NULL;
	f->cfg = px->cfg;
	f->cfg.backend.netns_fd = -1;
	f->primary = f;
	f->nthreads = 1; /* the caps it shows are the whole proxy's */
	f->notify_fd = -1;
	f->start_ns = px->start_ns;
	f->tls = px->tls; /* only whether there is one */
	f->rules = px->rules;
	f->types = div_types_new();
	f->reps = calloc(px->nreps ? px->nreps : 1, sizeof(*f->reps));
	f->fold_accepted = calloc(px->nthreads, sizeof(*f->fold_accepted));
	if (!f->types || !f->reps || !f->fold_accepted) {
		status_fold_free(f);
		return NULL;
	}
	for (unsigned i = 0; i < px->nreps; i++) {
		const struct replica *rep = px->reps[i];
		struct replica *fr = calloc(1, sizeof(*fr));

		if (!fr ||
		    !(fr->drep = div_replica_new(f->types, div_replica_role(rep->drep), NULL))) {
			free(fr);
			status_fold_free(f);
			return NULL;
		}
		f->reps[f->nreps++] = fr;
		fr->px = f;
		fr->sh = rep->sh;
		fr->id = rep->id;
		memcpy(fr->name, rep->name, sizeof(fr->name));
		fr->ep = rep->ep;
		fr->ep.netns_fd = -1;
		fr->buffer = rep->buffer;
		fr->budget = rep->budget;
		fr->attach_ns = rep->attach_ns;
		fr->control = rep->control;
	}
	workers_each(px, fold_fn, &fc);
	return f;
}

struct proxy *status_view(struct proxy *px)
{
	return px->workers ? status_fold(px) : px;
}

void status_view_done(struct proxy *px, struct proxy *view)
{
	if (view != px)
		status_fold_free(view);
}

/* ---- the views ---- */

static void status_json(struct proxy *px, struct sbuf *sb)
{
	uint64_t now = clock_coarse_ns();

	stats_json_object(sb, &proxy_table, px, &now);
	sbuf_append(sb, "\n", 1);
}

static void status_text(struct proxy *px, struct sbuf *sb);
static void metrics(struct proxy *px, struct sbuf *sb, const char *labels);

void proxy_status_json(struct proxy *px, struct sbuf *sb)
{
	struct proxy *view = status_view(px);

	if (view)
		status_json(view, sb);
	status_view_done(px, view);
}

void proxy_status_text(struct proxy *px, struct sbuf *sb)
{
	struct proxy *view = status_view(px);

	if (view)
		status_text(view, sb);
	status_view_done(px, view);
}

void proxy_metrics(struct proxy *px, struct sbuf *sb, const char *labels)
{
	struct proxy *view = status_view(px);

	if (view)
		metrics(view, sb, labels);
	status_view_done(px, view);
}

static void status_text(struct proxy *px, struct sbuf *sb)
{
	uint64_t now = clock_coarse_ns();
	struct replica_rows rr;
	struct stats_rows rows;
	int any_open = 0;

	stats_text(sb, &proxy_table, px, &now,
		   "listen {listen} -> production {backend}, up {uptime_s}\n"
		   "connections: {connections.active} active, {connections.accepted} accepted, "
		   "{connections.lingering} lingering; production: {production.connect_failures} "
		   "connect failures, {production.production_resets} resets; clients: "
		   "{production.client_resets} resets\n"
		   "buffer {buffer} per connection and replica, budget {budget} per replica\n"
		   "replica legs: {legs.open} open of {legs.cap} (fd limit {legs.fd_limit}), "
		   "{legs.reclaimed} closed for production; accept pauses: "
		   "{production.accept_pauses}\n");
	if (px->tls)
		stats_text(sb, &proxy_table, px, &now,
			   "tls: {tls.active} active, {tls.handshakes} handshakes; failed: "
			   "{tls.failed_timeout} timeout, {tls.failed_no_shared} no shared "
			   "protocol/cipher, {tls.failed_not_tls} not TLS, {tls.failed_closed} "
			   "closed, {tls.failed_other} other; {tls.sni_unknown} unknown SNI; "
			   "production: {tls.backend_handshakes} handshakes, "
			   "{tls.backend_failures} failed\n");
	if (px->cfg.threads > 1)
		sbuf_printf(sb, "threads: %u event loops (the counters are their sums)\n",
			    px->cfg.threads);
	if (!px->nreps) {
		sbuf_printf(sb, "no replicas\n");
		return;
	}
	replica_rows_init(&rr, &rows, px, now);
	stats_text_table(sb, &replica_table, &rows, replica_cols,
			 sizeof(replica_cols) / sizeof(replica_cols[0]));
	for (unsigned i = 0; i < px->nreps; i++) {
		struct proxy_replica_info info;

		replica_fill_info(px->reps[i], px->fold_accepted ? &px->reps[i]->snap : NULL, now,
				  &info);
		any_open |= info.window_open;
	}
	if (any_open)
		sbuf_printf(sb, "(DEBUG-WINDOW with + is still open: no overflow yet)\n");
	for (unsigned i = 0; i < px->nreps; i++) {
		const struct replica *r = px->reps[i];

		if (!(r->joined_exact | r->join_inexact | r->joined | r->joined_preamble |
		      r->join_refused))
			continue;
		sbuf_printf(
			sb,
			"%s: connections open before it: %llu continued exactly, %llu joined at "
			"a turn (%llu after a replay of their state commands), %llu refused "
			"(state commands not replayable); %llu of those open at the freeze "
			"could not continue exactly\n",
			r->name, (unsigned long long)r->joined_exact,
			(unsigned long long)(r->joined + r->joined_preamble),
			(unsigned long long)r->joined_preamble, (unsigned long long)r->join_refused,
			(unsigned long long)r->join_inexact);
	}
}

static void metrics(struct proxy *px, struct sbuf *sb, const char *labels)
{
	uint64_t now = clock_coarse_ns();
	struct replica_rows rr;
	struct stats_rows rows;

	stats_prom_object(sb, &proxy_table, px, &now, labels);
	replica_rows_init(&rr, &rows, px, now);
	stats_prom(sb, &replica_table, &rows, labels);
}
