/*
 * proxy.c - the proxy object: listener, replicas, housekeeping and status.
 * The per-connection data path is in conn.c.
 */
#define LOG_PREFIX "proxy"
#include "proxy/proxy-int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"
#include "window/window.h"

#define ACCEPT_BATCH 64
#define TICK_MS 250
/* A replica counts as down or overflowing for this long after the event. */
#define STATE_MEMORY_NS (5 * NSEC_PER_SEC)

void proxy_config_defaults(struct proxy_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen.netns_fd = -1;
	cfg->backend.netns_fd = -1;
	cfg->listen_fd = -1;
	cfg->buffer = 4ULL << 20;
	cfg->pass_buffer = 256ULL << 10;
	cfg->linger_ns = 60 * NSEC_PER_SEC;
	cfg->max_turns = 4096;
	cfg->replica_flush_ns = 10 * NSEC_PER_MSEC;
	cfg->replica_sndbuf = 64 * 1024;
	div_rule_defaults(&cfg->div_rule);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	static uint64_t last_warn;

	(void)what;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			conn_accept(px, cfd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN)
			return;
		px->accept_errors++;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			struct timeval tv = {0, 100 * 1000};
			uint64_t now = clock_coarse_ns();

			if (now - last_warn > 10 * NSEC_PER_SEC) {
				pr_warn("cannot accept connections: %s; pausing accepts for 100 ms "
					"(raise "
					"`ulimit -n` if this persists)",
					strerror(errno));
				last_warn = now;
			}
			event_del(&px->lev);
			evtimer_add(&px->accept_retry, &tv);
			return;
		}
		pr_perror("accept failed on %s", px->cfg.listen.text);
		return;
	}
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;

	(void)fd;
	(void)what;
	if (px->lfd >= 0)
		event_add(&px->lev, NULL);
}

static void notify_cb(evutil_socket_t fd, short what, void *arg);

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_flush_dirty(arg);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_tick(arg, clock_coarse_ns());
}

int proxy_new(struct event_base *base, const struct proxy_config *cfg, struct proxy **out,
	      char *err, size_t errlen)
{
	struct proxy *px = calloc(1, sizeof(*px));
	struct timeval tick = {0, TICK_MS * 1000};
	int rc;

	if (!px) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	px->base = base;
	px->cfg = *cfg;
	if (!px->cfg.budget)
		px->cfg.budget = px->cfg.buffer * 64;
	if (!px->cfg.pass_buffer)
		px->cfg.pass_buffer = 256ULL << 10;
	px->cfg.backend.netns_fd = -1;
	if (cfg->backend.netns_fd >= 0) {
		px->cfg.backend.netns_fd = fcntl(cfg->backend.netns_fd, F_DUPFD_CLOEXEC, 0);
		if (px->cfg.backend.netns_fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot keep production's network namespace: %s",
				 strerror(errno));
			free(px);
			return rc;
		}
	}
	px->types = div_types_new();
	px->rules = cfg->div_rules;
	if (!px->rules) {
		struct div_options o;

		div_options_defaults(&o);
		o.max_turns = cfg->max_turns;
		if (div_rules_new(&o, &px->own_rules, err, errlen) < 0)
			px->own_rules = NULL;
		px->rules = px->own_rules;
	}
	if (!px->types || !px->rules) {
		snprintf(err, errlen, "out of memory");
		div_types_free(px->types);
		div_rules_free(px->own_rules);
		if (px->cfg.backend.netns_fd >= 0)
			close(px->cfg.backend.netns_fd);
		free(px);
		return -ENOMEM;
	}
	chunk_pool_init(&px->pool, 16); /* free chunks kept for reuse: 1 MiB */
	px->start_ns = clock_coarse_ns();
	if (cfg->listen_fd >= 0) {
		px->lfd = cfg->listen_fd;
	} else {
		px->lfd = netaddr_listen(&cfg->listen, 1024, 0, err, errlen);
		if (px->lfd < 0) {
			rc = px->lfd;
			if (px->cfg.backend.netns_fd >= 0)
				close(px->cfg.backend.netns_fd);
			div_types_free(px->types);
			div_rules_free(px->own_rules);
			free(px);
			return rc;
		}
	}
	event_assign(&px->lev, base, px->lfd, EV_READ | EV_PERSIST, accept_cb, px);
	event_add(&px->lev, NULL);
	evtimer_assign(&px->accept_retry, base, accept_retry_cb, px);
	event_assign(&px->tick, base, -1, EV_PERSIST, tick_cb, px);
	event_add(&px->tick, &tick);
	event_assign(&px->notify, base, -1, 0, notify_cb, px);
	evtimer_assign(&px->flush, base, flush_cb, px);
	*out = px;
	return 0;
}

void proxy_set_hooks(struct proxy *px, const struct proxy_hooks *hooks)
{
	px->hooks = *hooks;
}

void proxy_set_observer(struct proxy *px, const struct proxy_observer *ob)
{
	px->ob = *ob;
}

void proxy_stop_accepting(struct proxy *px)
{
	if (px->lfd < 0)
		return;
	event_del(&px->lev);
	event_del(&px->accept_retry);
	close(px->lfd);
	px->lfd = -1;
}

unsigned proxy_active_connections(const struct proxy *px)
{
	return (unsigned)px->conns_active;
}

static void replica_free(struct replica *rep)
{
	if (rep->ep.netns_fd >= 0)
		close(rep->ep.netns_fd);
	div_replica_free(rep->drep);
	free(rep);
}

void proxy_free(struct proxy *px)
{
	if (!px)
		return;
	proxy_stop_accepting(px);
	event_del(&px->tick);
	event_del(&px->notify);
	event_del(&px->flush);
	conn_close_all(px);
	for (unsigned i = 0; i < px->nreps; i++)
		replica_free(px->reps[i]);
	free(px->reps);
	chunk_pool_destroy(&px->pool);
	if (px->cfg.backend.netns_fd >= 0)
		close(px->cfg.backend.netns_fd);
	div_types_free(px->types);
	div_rules_free(px->own_rules);
	free(px);
}

/* ---- replicas ---- */

int proxy_replica_add(struct proxy *px, const struct net_endpoint *ep, const char *name,
		      const struct proxy_replica_opts *opts, unsigned *id_out, char *err,
		      size_t errlen)
{
	struct replica *rep;

	if (px->nreps == px->capreps) {
		unsigned ncap = px->capreps ? px->capreps * 2 : 4;
		struct replica **nr = realloc(px->reps, ncap * sizeof(*nr));

		if (!nr) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		px->reps = nr;
		px->capreps = ncap;
	}
	rep = calloc(1, sizeof(*rep));
	if (!rep) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rep->px = px;
	rep->control = opts && opts->control;
	rep->drep =
		div_replica_new(px->types, rep->control ? DIV_CONTROL : DIV_CANDIDATE, &rep->div);
	if (!rep->drep) {
		snprintf(err, errlen, "out of memory");
		free(rep);
		return -ENOMEM;
	}
	rep->id = ++px->next_rep_id;
	rep->ep = *ep;
	rep->ep.netns_fd = -1;
	if (ep->netns_fd >= 0) {
		rep->ep.netns_fd = fcntl(ep->netns_fd, F_DUPFD_CLOEXEC, 0);
		if (rep->ep.netns_fd < 0) {
			int e = errno;

			snprintf(err, errlen, "cannot keep the replica's network namespace: %s",
				 strerror(e));
			div_replica_free(rep->drep);
			free(rep);
			return -e;
		}
	}
	if (name && *name)
		snprintf(rep->name, sizeof(rep->name), "%s", name);
	else
		snprintf(rep->name, sizeof(rep->name), "r%u", rep->id);
	rep->buffer = opts && opts->buffer ? opts->buffer : px->cfg.buffer;
	rep->budget = opts && opts->budget   ? opts->budget
		      : opts && opts->buffer ? opts->buffer * 64
					     : px->cfg.budget;
	if (rep->budget < rep->buffer)
		rep->budget = rep->buffer;
	rep->attach_ns = clock_coarse_ns();
	rate_init(&rep->ingress, NSEC_PER_SEC);
	rate_init(&rep->drain, NSEC_PER_SEC);
	px->reps[px->nreps++] = rep;
	if (id_out)
		*id_out = rep->id;
	pr_info("replica attached replica=%s id=%u address=%s%s buffer=%llu budget=%llu%s",
		rep->name, rep->id, rep->ep.text,
		rep->ep.netns_fd >= 0 ? " (in its own netns)" : "", (unsigned long long)rep->buffer,
		(unsigned long long)rep->budget, rep->control ? " role=control" : "");
	return 0;
}

void replica_leg_unlink(struct leg *leg)
{
	struct replica *rep = leg->rep;

	if (leg->rep_prev)
		leg->rep_prev->rep_next = leg->rep_next;
	else
		rep->legs = leg->rep_next;
	if (leg->rep_next)
		leg->rep_next->rep_prev = leg->rep_prev;
	leg->rep_prev = leg->rep_next = NULL;
	leg->rep = NULL;
	/* The replica's counters are going away with it. */
	div_follower_detach(leg->conn->div, leg->idx);
}

static struct replica *replica_find(struct proxy *px, unsigned id, unsigned *pos)
{
	for (unsigned i = 0; i < px->nreps; i++)
		if (px->reps[i]->id == id) {
			if (pos)
				*pos = i;
			return px->reps[i];
		}
	return NULL;
}

int proxy_replica_remove(struct proxy *px, unsigned id)
{
	unsigned pos;
	struct replica *rep = replica_find(px, id, &pos);

	if (!rep)
		return -ENOENT;
	while (rep->legs) {
		struct leg *leg = rep->legs;

		conn_drop_leg(leg, "replica removed");
		replica_leg_unlink(leg);
	}
	/* Connections whose last open leg this was may now be finished. */
	conn_tick(px, clock_coarse_ns());
	/*
	 * Connections accepted earlier keep their leg slots (their rep is NULL
	 * now); only new connections see the shorter replica list.
	 */
	memmove(&px->reps[pos], &px->reps[pos + 1], (px->nreps - pos - 1) * sizeof(*px->reps));
	px->nreps--;
	pr_info("replica removed replica=%s id=%u overflows=%llu diverged_turns=%llu", rep->name,
		id, (unsigned long long)rep->overflows,
		(unsigned long long)rep->div.turns_diverged);
	replica_free(rep);
	return 0;
}

/*
 * Overflow hooks run from their own event, never from inside the data path:
 * a hook may remove the replica (re-clone), which closes legs that the data
 * path could still be walking.
 */
static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < px->nreps; i++) {
		struct replica *rep = px->reps[i];
		unsigned id = rep->id;
		uint64_t overflows = rep->overflows;

		if (!rep->hook_pending)
			continue;
		rep->hook_pending = 0;
		if (px->hooks.on_overflow) {
			px->hooks.on_overflow(px->hooks.arg, id, overflows);
			/* The hook may have changed the replica list: start over. */
			if (i >= px->nreps || px->reps[i]->id != id)
				i = (unsigned)-1;
		}
	}
}

void replica_overflowed(struct replica *rep, uint64_t now)
{
	struct proxy *px = rep->px;

	rep->overflows++;
	rep->last_overflow_ns = now;
	if (!rep->first_overflow_ns) {
		rep->first_overflow_ns = now;
		pr_warn("replica overflow: the debug window of replica=%s closed after %.3f s "
			"(buffer=%llu per connection, budget=%llu); production is unaffected",
			rep->name, (double)(now - rep->attach_ns) / 1e9,
			(unsigned long long)rep->buffer, (unsigned long long)rep->budget);
	}
	if (px->hooks.on_overflow) {
		rep->hook_pending = 1;
		event_active(&px->notify, EV_TIMEOUT, 0);
	}
}

static void replica_fill_info(struct replica *rep, uint64_t now, struct proxy_replica_info *out)
{
	uint64_t max_conn = 0;
	unsigned backlogged = 0;
	double conn_occ, tot_occ;
	struct window_live live;

	for (struct leg *leg = rep->legs; leg; leg = leg->rep_next) {
		if (leg->out.bytes > max_conn)
			max_conn = leg->out.bytes;
		if (leg->out.bytes)
			backlogged++;
	}
	memset(out, 0, sizeof(*out));
	out->buffered = rep->buffered;
	out->max_conn_buffered = max_conn;
	out->buffer_cap = rep->buffer;
	out->budget = rep->budget;
	out->ingress_bps = rate_per_sec(&rep->ingress, now);
	out->drain_bps = rate_per_sec(&rep->drain, now);
	conn_occ = (double)max_conn / (double)rep->buffer;
	tot_occ = (double)rep->buffered / (double)rep->budget;
	out->occupancy = conn_occ > tot_occ ? conn_occ : tot_occ;
	/* Two ways to overflow: one connection's --buffer, or the budget (window/live.c). */
	live.buffer = (double)rep->buffer;
	live.budget = (double)rep->budget;
	live.max_conn_queued = (double)max_conn;
	live.queued = (double)rep->buffered;
	live.backlogged = backlogged;
	live.ingress_bps = out->ingress_bps;
	live.drain_bps = out->drain_bps;
	out->forecast_s = window_live_forecast(&live);
	out->overflows = rep->overflows;
	out->window_open = rep->first_overflow_ns == 0;
	out->debug_window_s =
		(double)((rep->first_overflow_ns ? rep->first_overflow_ns : now) - rep->attach_ns) /
		1e9;
}

int proxy_replica_info(struct proxy *px, unsigned id, struct proxy_replica_info *out)
{
	struct replica *rep = replica_find(px, id, NULL);

	if (!rep)
		return -ENOENT;
	replica_fill_info(rep, clock_coarse_ns(), out);
	return 0;
}

static const char *replica_state(const struct replica *rep, const struct proxy_replica_info *info,
				 uint64_t now)
{
	if (rep->last_fail_ns && now - rep->last_fail_ns < STATE_MEMORY_NS && !rep->conns_active)
		return "down";
	if (rep->last_overflow_ns && now - rep->last_overflow_ns < STATE_MEMORY_NS)
		return "overflowing";
	if (info->occupancy > 0.10)
		return "lagging";
	return "ok";
}

/* ---- status ---- */

void proxy_status_json(struct proxy *px, struct sbuf *sb)
{
	uint64_t now = clock_coarse_ns();

	sbuf_printf(sb, "{\"listen\":");
	sbuf_json_str(sb, px->cfg.listen.text);
	sbuf_printf(sb, ",\"backend\":");
	sbuf_json_str(sb, px->cfg.backend.text);
	sbuf_printf(sb, ",\"uptime_s\":");
	sbuf_json_num(sb, (double)(now - px->start_ns) / 1e9);
	sbuf_printf(
		sb,
		",\"buffer\":%llu,\"budget\":%llu,\"connections\":{\"active\":%llu,\"accepted\":%"
		"llu,"
		"\"lingering\":%llu,\"allocated\":%llu},\"production\":{\"bytes_from_clients\":%"
		"llu,"
		"\"bytes_from_production\":%llu,\"connect_failures\":%llu,\"client_resets\":%llu,"
		"\"production_resets\":%llu,\"accept_errors\":%llu},"
		"\"memory\":{\"chunks_live\":%llu,\"chunk_bytes\":%llu},\"replicas\":[",
		(unsigned long long)px->cfg.buffer, (unsigned long long)px->cfg.budget,
		(unsigned long long)px->conns_active, (unsigned long long)px->conns_accepted,
		(unsigned long long)px->conns_lingering, (unsigned long long)px->conns_allocated,
		(unsigned long long)px->bytes_client, (unsigned long long)px->bytes_backend,
		(unsigned long long)px->backend_failures, (unsigned long long)px->client_resets,
		(unsigned long long)px->backend_resets, (unsigned long long)px->accept_errors,
		(unsigned long long)px->pool.chunks_live,
		(unsigned long long)(px->pool.chunks_live * sizeof(struct chunk)));
	for (unsigned i = 0; i < px->nreps; i++) {
		struct replica *rep = px->reps[i];
		struct proxy_replica_info info;

		replica_fill_info(rep, now, &info);
		sbuf_printf(sb, "%s{\"id\":%u,\"name\":", i ? "," : "", rep->id);
		sbuf_json_str(sb, rep->name);
		sbuf_printf(sb, ",\"address\":");
		sbuf_json_str(sb, rep->ep.text);
		sbuf_printf(sb, ",\"state\":");
		sbuf_json_str(sb, replica_state(rep, &info, now));
		sbuf_printf(sb, ",\"buffer\":%llu,\"budget\":%llu", (unsigned long long)rep->buffer,
			    (unsigned long long)rep->budget);
		sbuf_printf(sb,
			    ",\"connections\":%llu,\"connections_total\":%llu,\"connect_failures\":"
			    "%llu,"
			    "\"connections_skipped\":%llu,\"bytes_offered\":%llu,\"bytes_"
			    "forwarded\":%llu,"
			    "\"bytes_dropped\":%llu,\"bytes_answered\":%llu,\"buffered\":%llu,"
			    "\"buffer_high_water\":%llu,\"total_high_water\":%llu,\"occupancy\":",
			    (unsigned long long)rep->conns_active,
			    (unsigned long long)rep->conns_total,
			    (unsigned long long)rep->connect_failures,
			    (unsigned long long)rep->conns_skipped,
			    (unsigned long long)rep->bytes_offered,
			    (unsigned long long)rep->bytes_forwarded,
			    (unsigned long long)rep->bytes_dropped,
			    (unsigned long long)rep->bytes_answered,
			    (unsigned long long)rep->buffered, (unsigned long long)rep->high_water,
			    (unsigned long long)rep->total_high_water);
		sbuf_json_num(sb, info.occupancy);
		sbuf_printf(sb, ",\"overflows\":%llu,\"first_overflow_s\":",
			    (unsigned long long)rep->overflows);
		sbuf_json_num(sb, rep->first_overflow_ns
					  ? (double)(rep->first_overflow_ns - rep->attach_ns) / 1e9
					  : NAN);
		sbuf_printf(sb, ",\"debug_window_s\":");
		sbuf_json_num(sb, info.debug_window_s);
		sbuf_printf(sb, ",\"window_open\":%s,\"forecast_s\":",
			    info.window_open ? "true" : "false");
		sbuf_json_num(sb, info.forecast_s);
		sbuf_printf(sb, ",\"ingress_bps\":");
		sbuf_json_num(sb, floor(info.ingress_bps));
		sbuf_printf(sb, ",\"drain_bps\":");
		sbuf_json_num(sb, floor(info.drain_bps));
		sbuf_printf(
			sb,
			",\"turns_compared\":%llu,\"diverged_turns\":%llu,\"turns_unchecked\":%llu,"
			"\"diverged_connections\":%llu}",
			(unsigned long long)rep->div.turns_compared,
			(unsigned long long)rep->div.turns_diverged,
			(unsigned long long)rep->div.turns_unchecked,
			(unsigned long long)rep->div.conns_diverged);
	}
	sbuf_printf(sb, "]}\n");
}

static char *fmt_secs(double s, char *buf, size_t len)
{
	if (!isfinite(s))
		snprintf(buf, len, "-");
	else if (s < 120)
		snprintf(buf, len, "%.1f s", s);
	else if (s < 7200)
		snprintf(buf, len, "%.1f min", s / 60);
	else
		snprintf(buf, len, "%.1f h", s / 3600);
	return buf;
}

void proxy_status_text(struct proxy *px, struct sbuf *sb)
{
	uint64_t now = clock_coarse_ns();
	char a[32], b[32], c[32], d[32], e[32];
	int any_open = 0;

	sbuf_printf(sb, "listen %s -> production %s, up %s\n", px->cfg.listen.text,
		    px->cfg.backend.text,
		    fmt_secs((double)(now - px->start_ns) / 1e9, a, sizeof(a)));
	sbuf_printf(
		sb,
		"connections: %llu active, %llu accepted, %llu lingering; production: %llu connect "
		"failures, %llu resets; clients: %llu resets\n",
		(unsigned long long)px->conns_active, (unsigned long long)px->conns_accepted,
		(unsigned long long)px->conns_lingering, (unsigned long long)px->backend_failures,
		(unsigned long long)px->backend_resets, (unsigned long long)px->client_resets);
	sbuf_printf(sb, "buffer %s per connection and replica, budget %s per replica\n",
		    size_format(px->cfg.buffer, a, sizeof(a)),
		    size_format(px->cfg.budget, b, sizeof(b)));
	if (!px->nreps) {
		sbuf_printf(sb, "no replicas\n");
		return;
	}
	sbuf_printf(sb, "%-10s %-22s %-11s %6s %11s %11s %9s %11s %12s %10s %s\n", "REPLICA",
		    "ADDRESS", "STATE", "CONNS", "FORWARDED", "DROPPED", "OVERFLOWS", "HIGH-WATER",
		    "DEBUG-WINDOW", "FORECAST", "DIVERGED/COMPARED");
	for (unsigned i = 0; i < px->nreps; i++) {
		struct replica *rep = px->reps[i];
		struct proxy_replica_info info;
		char win[40];

		replica_fill_info(rep, now, &info);
		any_open |= info.window_open;
		fmt_secs(info.debug_window_s, c, sizeof(c));
		snprintf(win, sizeof(win), "%s%s", c, info.window_open ? "+" : "");
		sbuf_printf(sb,
			    "%-10s %-22s %-11s %6llu %11s %11s %9llu %11s %12s %10s %llu/%llu\n",
			    rep->name, rep->ep.text, replica_state(rep, &info, now),
			    (unsigned long long)rep->conns_active,
			    size_format(rep->bytes_forwarded, a, sizeof(a)),
			    size_format(rep->bytes_dropped, b, sizeof(b)),
			    (unsigned long long)rep->overflows,
			    size_format(rep->high_water, d, sizeof(d)), win,
			    fmt_secs(info.forecast_s, e, sizeof(e)),
			    (unsigned long long)rep->div.turns_diverged,
			    (unsigned long long)rep->div.turns_compared);
	}
	if (any_open)
		sbuf_printf(sb, "(DEBUG-WINDOW with + is still open: no overflow yet)\n");
}

void proxy_metrics(struct proxy *px, struct sbuf *sb, const char *labels)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} rmetrics[] = {
#define RM(n, t, h, f) {n, t, h, offsetof(struct replica, f)}
		RM("doppel_replica_connections", "gauge", "Open connections to the replica.",
		   conns_active),
		RM("doppel_replica_connections_total", "counter",
		   "Connections given to the replica.", conns_total),
		RM("doppel_replica_connect_failures_total", "counter",
		   "Failed connects to the replica.", connect_failures),
		RM("doppel_replica_bytes_forwarded_total", "counter",
		   "Client bytes written to the replica.", bytes_forwarded),
		RM("doppel_replica_bytes_dropped_total", "counter",
		   "Client bytes the replica did not get (overflow, failure).", bytes_dropped),
		RM("doppel_replica_bytes_answered_total", "counter",
		   "Bytes the replica answered (discarded).", bytes_answered),
		RM("doppel_replica_buffered_bytes", "gauge", "Bytes queued for the replica now.",
		   buffered),
		RM("doppel_replica_buffer_high_water_bytes", "gauge",
		   "Largest queue of one connection to the replica.", high_water),
		RM("doppel_replica_overflows_total", "counter",
		   "Connections dropped because their buffer was full.", overflows),
		RM("doppel_replica_turns_compared_total", "counter",
		   "Response turns compared with production.", div.turns_compared),
		RM("doppel_replica_diverged_turns_total", "counter",
		   "Response turns that differed from production.", div.turns_diverged),
		RM("doppel_replica_unchecked_turns_total", "counter",
		   "Production turns the replica never answered.", div.turns_unchecked),
#undef RM
	};
	uint64_t now = clock_coarse_ns();
	const char *sep = labels && *labels ? "," : "";

	if (!labels)
		labels = "";
	sbuf_printf(
		sb,
		"# HELP doppel_connections Client connections open.\n# TYPE doppel_connections "
		"gauge\n"
		"doppel_connections{%s} %llu\n"
		"# HELP doppel_connections_total Client connections accepted.\n"
		"# TYPE doppel_connections_total counter\ndoppel_connections_total{%s} %llu\n"
		"# HELP doppel_production_connect_failures_total Connections production refused.\n"
		"# TYPE doppel_production_connect_failures_total counter\n"
		"doppel_production_connect_failures_total{%s} %llu\n"
		"# HELP doppel_client_bytes_total Bytes received from clients.\n"
		"# TYPE doppel_client_bytes_total counter\ndoppel_client_bytes_total{%s} %llu\n",
		labels, (unsigned long long)px->conns_active, labels,
		(unsigned long long)px->conns_accepted, labels,
		(unsigned long long)px->backend_failures, labels,
		(unsigned long long)px->bytes_client);
	for (size_t m = 0; m < sizeof(rmetrics) / sizeof(rmetrics[0]); m++) {
		sbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", rmetrics[m].name, rmetrics[m].help,
			    rmetrics[m].name, rmetrics[m].type);
		for (unsigned i = 0; i < px->nreps; i++) {
			struct replica *rep = px->reps[i];
			uint64_t v;

			memcpy(&v, (const char *)rep + rmetrics[m].off, sizeof(v));
			sbuf_printf(sb, "%s{%s%sreplica=\"%s\",address=\"%s\"} %llu\n",
				    rmetrics[m].name, labels, sep, rep->name, rep->ep.text,
				    (unsigned long long)v);
		}
	}
	sbuf_printf(
		sb,
		"# HELP doppel_replica_debug_window_seconds Attach to first overflow (or now).\n"
		"# TYPE doppel_replica_debug_window_seconds gauge\n");
	for (unsigned i = 0; i < px->nreps; i++) {
		struct proxy_replica_info info;

		replica_fill_info(px->reps[i], now, &info);
		sbuf_printf(sb, "doppel_replica_debug_window_seconds{%s%sreplica=\"%s\"} %.3f\n",
			    labels, sep, px->reps[i]->name, info.debug_window_s);
	}
	sbuf_printf(sb,
		    "# HELP doppel_replica_forecast_seconds Seconds to overflow at current rates "
		    "(+Inf when not filling).\n# TYPE doppel_replica_forecast_seconds gauge\n");
	for (unsigned i = 0; i < px->nreps; i++) {
		struct proxy_replica_info info;

		replica_fill_info(px->reps[i], now, &info);
		if (isfinite(info.forecast_s))
			sbuf_printf(sb,
				    "doppel_replica_forecast_seconds{%s%sreplica=\"%s\"} %.3f\n",
				    labels, sep, px->reps[i]->name, info.forecast_s);
		else
			sbuf_printf(sb,
				    "doppel_replica_forecast_seconds{%s%sreplica=\"%s\"} +Inf\n",
				    labels, sep, px->reps[i]->name);
	}
}

/* ---- the divergence report ---- */

void proxy_diverge_report(struct proxy *px, int json, struct sbuf *sb)
{
	const char *proto = div_protocol_name(div_rules_options(px->rules)->protocol);

	if (json) {
		sbuf_printf(sb, "{\"protocol\":\"%s\",\"types_overflow\":%llu,\"replicas\":[",
			    proto, (unsigned long long)div_types_overflow(px->types));
		for (unsigned i = 0; i < px->nreps; i++) {
			struct replica *rep = px->reps[i];

			sbuf_printf(sb, "%s{\"id\":%u,\"name\":", i ? "," : "", rep->id);
			sbuf_json_str(sb, rep->name);
			sbuf_append(sb, ",\"divergence\":", 14);
			div_replica_report_json(rep->drep, &px->cfg.div_rule, sb);
			sbuf_append(sb, "}", 1);
		}
		sbuf_append(sb, "]}\n", 3);
		return;
	}
	sbuf_printf(sb, "protocol %s; %u replica%s%s\n", proto, px->nreps,
		    px->nreps == 1 ? "" : "s", px->nreps ? "" : " (nothing to compare)");
	for (unsigned i = 0; i < px->nreps; i++) {
		struct replica *rep = px->reps[i];

		sbuf_printf(sb, "\nreplica %s (id %u, %s)\n", rep->name, rep->id,
			    rep->control ? "control" : "candidate");
		div_replica_report_text(rep->drep, &px->cfg.div_rule, sb);
	}
}

uint64_t proxy_replica_net_turns(struct proxy *px, unsigned id)
{
	struct replica *rep = replica_find(px, id, NULL);

	return rep ? div_replica_net(rep->drep, &px->cfg.div_rule) : 0;
}
