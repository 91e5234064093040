/*
 * aggregator.c - upstreams, their production relays (or captures, for an
 * adopted service), clones' listeners, and the field tables of the status
 * views (an upstream, a clone's side of it). Recording is in record.c,
 * answering clones in replay.c.
 */
#define LOG_PREFIX "aggregator"
#include "aggregator/agg-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/netns.h"
#include "common/tcprepair.h"
#include "common/stats.h"

#define TICK_MS 200

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	agg_replay_tick(arg, clock_coarse_ns());
}

int agg_new(struct event_base *base, uint64_t budget, uint64_t wait_ns, struct agg **out)
{
	struct agg *a = calloc(1, sizeof(*a));
	struct timeval tv = {0, TICK_MS * 1000};

	if (!a)
		return -ENOMEM;
	a->base = base;
	a->budget = budget ? budget : 256ULL << 20;
	a->wait_ns = wait_ns ? wait_ns : 5 * NSEC_PER_SEC;
	a->tick = event_new(base, -1, EV_PERSIST, on_tick, a);
	if (!a->tick) {
		free(a);
		return -ENOMEM;
	}
	event_add(a->tick, &tv);
	*out = a;
	return 0;
}

unsigned agg_upstreams(const struct agg *a)
{
	return a->nups;
}

int agg_add_upstream(struct agg *a, const char *spec, char *err, size_t errlen)
{
	const char *eq = strchr(spec, '=');
	struct agg_up *up;
	char left[NETADDR_TEXT_MAX], perr[256];

	if (a->nups == AGG_MAX_UPSTREAMS) {
		snprintf(err, errlen, "at most %d --upstream", AGG_MAX_UPSTREAMS);
		return -EINVAL;
	}
	if (!eq)
		eq = spec + strlen(spec); /* HOST:PORT: LISTEN and TARGET alike */
	if (eq == spec || (*eq && !eq[1]) || (size_t)(eq - spec) >= sizeof(left)) {
		snprintf(err, errlen,
			 "--upstream '%s': expected LISTEN=TARGET or HOST:PORT, e.g. "
			 "127.0.0.1:6379=127.0.0.1:6379 (the "
			 "service connects to LISTEN in its namespace; doppel forwards to TARGET "
			 "on this host)",
			 spec);
		return -EINVAL;
	}
	up = &a->ups[a->nups];
	memset(up, 0, sizeof(*up));
	snprintf(left, sizeof(left), "%.*s", (int)(eq - spec), spec);
	if (netaddr_parse(left, &up->left, perr, sizeof(perr)) < 0 ||
	    netaddr_parse(*eq ? eq + 1 : spec, &up->right, perr, sizeof(perr)) < 0) {
		snprintf(err, errlen, "--upstream '%s': %s", spec, perr);
		return -EINVAL;
	}
	up->agg = a;
	up->idx = a->nups;
	up->wake = event_new(a->base, -1, 0, agg_replay_wake, up);
	if (!up->wake) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->nups++;
	return 0;
}

int agg_start_production(struct agg *a, int prod_netns_fd, char *err, size_t errlen)
{
	for (unsigned i = 0; i < a->nups; i++) {
		struct agg_up *up = &a->ups[i];
		struct proxy_observer ob = agg_recorder;
		struct proxy_config pc;
		char lerr[512];
		int rc;

		proxy_config_defaults(&pc);
		pc.service_is_client = 1; /* for agg_hold(): the service is the relay's client */
		pc.listen = up->left;
		pc.listen.netns_fd = prod_netns_fd;
		pc.listen_fd = netaddr_listen(&pc.listen, 256, 0, lerr, sizeof(lerr));
		if (pc.listen_fd < 0) {
			snprintf(err, errlen, "upstream %s inside the service's namespace: %s",
				 up->left.text, lerr);
			return pc.listen_fd;
		}
		pc.backend = up->right;
		rc = proxy_new(a->base, &pc, &up->px, lerr, sizeof(lerr));
		if (rc) {
			close(pc.listen_fd);
			snprintf(err, errlen, "upstream %s: %s", up->right.text, lerr);
			return rc;
		}
		ob.arg = up;
		proxy_set_observer(up->px, &ob);
		pr_info("upstream: the service's connections to %s are relayed to %s and recorded "
			"for clones",
			up->left.text, up->right.text);
	}
	return 0;
}

/* The IPv4 address of ep as text; 0, or -EAFNOSUPPORT. */
static int ep_host(const struct net_endpoint *ep, char *buf, size_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ep->ss;

	if (ep->ss.ss_family != AF_INET)
		return -EAFNOSUPPORT;
	inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)len);
	return 0;
}

int agg_start_capture(struct agg *a, const char *iface, cap_owned_fn owned, void *owned_arg,
		      char *err, size_t errlen)
{
	for (unsigned i = 0; i < a->nups; i++) {
		struct agg_up *up = &a->ups[i];
		struct proxy_observer sink = agg_recorder;
		char ifname[IF_NAMESIZE + 8] = "";
		struct cap_config cc = {
			.iface = iface && strcmp(iface, "auto") ? iface : ifname,
			.addr = up->host,
			.port = ntohs(((struct sockaddr_in *)&up->right.ss)->sin_port),
			.match_host = 1,
			.midstream = 1,
			.owned = owned,
			.owned_arg = owned_arg,
			.immediate = 1};
		char lerr[512];
		int rc;

		if (strcmp(up->left.text, up->right.text)) {
			snprintf(err, errlen,
				 "--upstream %s=%s: an adopted service's clones connect where the "
				 "service does: give the address it connects to, --upstream %s",
				 up->left.text, up->right.text, up->right.text);
			return -EINVAL;
		}
		if (ep_host(&up->right, up->host, sizeof(up->host)) < 0) {
			snprintf(
				err, errlen,
				"--upstream %s: only IPv4 upstreams can be captured; give its IPv4 "
				"address",
				up->right.text);
			return -EAFNOSUPPORT;
		}
		if ((!iface || !strcmp(iface, "auto")) &&
		    (rc = cap_iface_towards(up->host, ifname, sizeof(ifname))) < 0) {
			snprintf(err, errlen,
				 "upstream %s: no interface leads to %s (%s); check the address",
				 up->right.text, up->host, strerror(-rc));
			return rc;
		}
		sink.arg = up;
		rc = cap_new(a->base, &sink, &cc, &up->cap, lerr, sizeof(lerr));
		if (rc) {
			snprintf(err, errlen, "upstream %s: %s", up->right.text, lerr);
			return rc;
		}
		pr_info("upstream: the service's conversations with %s are captured on %s and "
			"recorded for clones",
			up->right.text, cap_iface(up->cap));
	}
	return 0;
}

static int add_addr_cb(void *arg)
{
	const char *const *la = arg;

	return netns_lo_add_addr(la[0], la[1]);
}

/*
 * A LISTEN address outside 127.0.0.0/8 (an upstream on another host) is
 * added to the clone's loopback, so the clone's connections to it reach us.
 */
static int add_local_addr(const struct agg_up *up, unsigned i, int netns_fd, char *err,
			  size_t errlen)
{
	char host[64], label[16];
	const char *la[2] = {label, host};
	int rc;

	if (ep_host(&up->left, host, sizeof(host)) < 0 || !strncmp(host, "127.", 4) ||
	    !strcmp(host, "0.0.0.0"))
		return 0;
	snprintf(label, sizeof(label), "lo:u%u", i);
	rc = netns_run(netns_fd, add_addr_cb, la);
	if (rc < 0)
		snprintf(err, errlen, "cannot add %s to the clone's loopback: %s", host,
			 strerror(-rc));
	return rc;
}

int agg_clone_listen(const struct agg *a, int netns_fd, int *fds, char *err, size_t errlen)
{
	for (unsigned i = 0; i < a->nups; i++) {
		struct net_endpoint ep = a->ups[i].left;
		char lerr[512];

		ep.netns_fd = netns_fd;
		if (add_local_addr(&a->ups[i], i, netns_fd, lerr, sizeof(lerr)) < 0)
			fds[i] = -EADDRNOTAVAIL;
		else
			fds[i] = netaddr_listen(&ep, 256, 0, lerr, sizeof(lerr));
		if (fds[i] < 0) {
			int rc = fds[i];

			snprintf(err, errlen, "upstream %s inside the clone's namespace: %s",
				 ep.text, lerr);
			while (i-- > 0)
				close(fds[i]);
			return rc;
		}
	}
	return 0;
}

void agg_hold(struct agg *a, int hold)
{
	for (unsigned i = 0; i < a->nups; i++)
		if (a->ups[i].px)
			proxy_hold(a->ups[i].px, hold);
}

void agg_hold_end(struct agg *a)
{
	for (unsigned i = 0; i < a->nups; i++)
		if (a->ups[i].px)
			proxy_backlog_end(a->ups[i].px);
}

struct agg_peers {
	struct proxy_peers *ups[AGG_MAX_UPSTREAMS];
};

struct agg_peers *agg_peers_make(struct agg *a, int netns_fd, const struct tcp_end *ends,
				 unsigned n, unsigned *made)
{
	struct agg_peers *p = calloc(1, sizeof(*p));

	*made = 0;
	if (!p)
		return NULL;
	for (unsigned i = 0; i < a->nups; i++) {
		unsigned m = 0;

		if (!a->ups[i].px)
			continue;
		p->ups[i] = proxy_peers_make(a->ups[i].px, netns_fd, ends, n, &m);
		if (!p->ups[i]) {
			agg_peers_free(p);
			return NULL;
		}
		*made += m;
	}
	return p;
}

void agg_peers_free(struct agg_peers *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < AGG_MAX_UPSTREAMS; i++)
		proxy_peers_free(p->ups[i]);
	free(p);
}

static struct agg_pconn *by_conn_id(struct agg_up *up, uint64_t id)
{
	for (struct agg_pconn *pc = up->head; pc; pc = pc->next)
		if (pc->conn_id == id)
			return pc;
	return NULL;
}

/* Production's connections open at the freeze continue in the clone (agg_peers_make). */
static void continue_conns(struct agg_clone *cl, struct agg_peers *p)
{
	for (unsigned i = 0; p && i < cl->agg->nups; i++) {
		struct agg_clone_up *cu = &cl->ups[i];
		uint64_t id, sent, received;
		int fd;

		while (proxy_peers_take_next(p->ups[i], &id, &fd, &sent, &received)) {
			struct agg_pconn *pc = by_conn_id(cu->up, id);

			if (tcprepair_done(fd) == 0 && pc &&
			    agg_replay_continue(cu, fd, pc, sent, received) == 0)
				continue;
			pr_info("clone %u: production's connection to upstream %s open at the "
				"freeze "
				"cannot continue from the recording (%s); the clone sees it end",
				cl->id, cu->up->right.text,
				!pc ? "no longer recorded" : "no turn there");
			cu->not_continued++;
			close(fd);
		}
	}
}

static int agg_clone_attach_fds(struct agg *a, unsigned id, const int *fds, struct agg_clone **out);

int agg_clone_attach(struct agg *a, unsigned id, const int *fds, struct agg_peers *peers)
{
	struct agg_clone *cl = NULL;
	int rc = agg_clone_attach_fds(a, id, fds, &cl);

	if (rc == 0)
		continue_conns(cl, peers);
	agg_peers_free(peers);
	return rc;
}

static int agg_clone_attach_fds(struct agg *a, unsigned id, const int *fds, struct agg_clone **out)
{
	struct agg_clone *cl;
	unsigned slot;

	for (slot = 0; slot < AGG_MAX_CLONES && a->clones[slot]; slot++)
		;
	if (slot == AGG_MAX_CLONES)
		return -ENOSPC;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->agg = a;
	cl->id = id;
	cl->slot = slot;
	for (unsigned i = 0; i < a->nups; i++) {
		struct agg_clone_up *cu = &cl->ups[i];

		cu->up = &a->ups[i];
		cu->cl = cl;
		cu->lfd = -1;
		cu->base_seq = a->ups[i].next_seq + 1;
		cu->attach_ns = clock_coarse_ns();
		cu->lev = event_new(a->base, fds[i], EV_READ | EV_PERSIST, agg_replay_accept, cu);
		if (!cu->lev) {
			/* The sockets stay the caller's: nothing of them was taken. */
			while (i-- > 0)
				event_free(cl->ups[i].lev);
			free(cl);
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < a->nups; i++) {
		cl->ups[i].lfd = fds[i];
		event_add(cl->ups[i].lev, NULL);
	}
	/* A turn used by the clone that had this slot before is free for this one. */
	for (unsigned i = 0; i < a->nups; i++)
		for (struct agg_pconn *pc = a->ups[i].head; pc; pc = pc->next)
			for (unsigned t = 0; t < pc->nturns; t++)
				pc->turns[t].used_by &= ~(1ULL << slot);
	a->clones[slot] = cl;
	*out = cl;
	return 0;
}

void agg_clone_detach(struct agg *a, unsigned id)
{
	for (unsigned s = 0; s < AGG_MAX_CLONES; s++) {
		struct agg_clone *cl = a->clones[s];

		if (!cl || cl->id != id)
			continue;
		for (unsigned i = 0; i < a->nups; i++) {
			struct agg_clone_up *cu = &cl->ups[i];

			while (cu->conns)
				agg_cconn_free(cu->conns);
			if (cu->lev)
				event_free(cu->lev);
			if (cu->lfd >= 0)
				close(cu->lfd);
		}
		a->clones[s] = NULL;
		free(cl);
		return;
	}
}

void agg_free(struct agg *a)
{
	if (!a)
		return;
	for (unsigned s = 0; s < AGG_MAX_CLONES; s++)
		if (a->clones[s])
			agg_clone_detach(a, a->clones[s]->id);
	for (unsigned i = 0; i < a->nups; i++) {
		struct agg_up *up = &a->ups[i];

		if (up->px)
			proxy_free(up->px); /* closes production's relayed connections first */
		cap_free(up->cap);
		agg_record_free_all(up);
		if (up->wake)
			event_free(up->wake);
	}
	event_free(a->tick);
	free(a);
}

/* ---- status: the upstream table and the per-clone table ---- */

#define UP(o) ((const struct agg_up *)(o))
#define CU(o) ((const struct agg_clone_up *)(o))

/* A clone's side of upstream `up`, or of every upstream when up < 0. */
struct clone_rows {
	const struct agg *a;
	int up;
};

static const void *clone_row(void *arg, unsigned i, const void **ctx)
{
	const struct clone_rows *cr = arg;
	unsigned up = cr->up < 0 ? i / AGG_MAX_CLONES : (unsigned)cr->up;
	const struct agg_clone *cl = cr->a->clones[i % AGG_MAX_CLONES];

	*ctx = NULL;
	return cl ? &cl->ups[up] : NULL;
}

static int cu_upstream(const void *o, const void *c, struct stats_val *v)
{
	v->s = CU(o)->up->left.text;
	return 0;
}

static int cu_clone(const void *o, const void *c, struct stats_val *v)
{
	v->u = CU(o)->cl->id;
	return 0;
}

static int cu_answered(const void *o, const void *c, struct stats_val *v)
{
	v->u = CU(o)->in_order + CU(o)->by_content;
	return 0;
}

#define CUCOUNT(n, f, u, m, h)                                                             \
	{                                                                                  \
		.name = n, .kind = STATS_COUNTER, .off = offsetof(struct agg_clone_up, f), \
		.unit = u, .metric = m, .help = h                                          \
	}

static const struct stats_field clone_up_fields[] = {
	{.name = "upstream",
	 .kind = STATS_STRING,
	 .flags = STATS_F_LABEL | STATS_F_NO_JSON,
	 .metric = "upstream",
	 .get = cu_upstream},
	{.name = "clone",
	 .kind = STATS_GAUGE,
	 .flags = STATS_F_LABEL,
	 .metric = "clone",
	 .get = cu_clone},
	CUCOUNT("connections", conns_total, STATS_UNIT_NONE,
		"doppel_upstream_clone_connections_total",
		"Connections the clone opened to the upstream."),
	{.name = "requests_answered",
	 .kind = STATS_COUNTER,
	 .get = cu_answered,
	 .metric = "doppel_upstream_clone_requests_answered_total",
	 .help = "The clone's requests answered from production's recording."},
	CUCOUNT("matched_in_order", in_order, STATS_UNIT_NONE,
		"doppel_upstream_clone_matched_in_order_total",
		"Requests matched by connection order."),
	CUCOUNT("matched_by_content", by_content, STATS_UNIT_NONE,
		"doppel_upstream_clone_matched_by_content_total", "Requests matched by content."),
	CUCOUNT("continued", continued, STATS_UNIT_NONE, "doppel_upstream_clone_continued_total",
		"Production's connections open at the freeze that continue in the clone, "
		"answered from the recording where production's end was (--join-open)."),
	CUCOUNT("not_continued", not_continued, STATS_UNIT_NONE,
		"doppel_upstream_clone_not_continued_total",
		"Of those, connections the recording had no place for: the clone saw them end."),
	CUCOUNT("diverged", diverged, STATS_UNIT_NONE, "doppel_upstream_clone_diverged_total",
		"Requests that differed from the one production made in order."),
	CUCOUNT("unanswered", unanswered, STATS_UNIT_NONE, "doppel_upstream_clone_unanswered_total",
		"Requests production never made (the clone's connection was reset)."),
	CUCOUNT("bytes_answered", bytes_answered, STATS_UNIT_BYTES,
		"doppel_upstream_clone_answered_bytes_total",
		"Bytes of recorded answers sent to the clone."),
	CUCOUNT("bytes_dropped", bytes_dropped, STATS_UNIT_BYTES,
		"doppel_upstream_clone_dropped_bytes_total",
		"Bytes the clone wrote to the upstream, dropped."),
};

static const struct stats_table clone_up_table = STATS_TABLE(clone_up_fields);

static int up_listen(const void *o, const void *c, struct stats_val *v)
{
	v->s = UP(o)->left.text;
	return 0;
}

static int up_target(const void *o, const void *c, struct stats_val *v)
{
	v->s = UP(o)->right.text;
	return 0;
}

static int up_budget(const void *o, const void *c, struct stats_val *v)
{
	v->u = UP(o)->agg->budget;
	return 0;
}

static void up_clones_json(struct sbuf *sb, const void *o, const void *c)
{
	struct clone_rows cr = {UP(o)->agg, (int)UP(o)->idx};
	struct stats_rows rows = {.n = AGG_MAX_CLONES, .row = clone_row, .arg = &cr};

	stats_json_array(sb, &clone_up_table, &rows);
}

/* An adopted service's upstream: its capture (null under doppel run). */
static void up_capture_json(struct sbuf *sb, const void *o, const void *c)
{
	(void)c;
	if (UP(o)->cap)
		cap_status_json(UP(o)->cap, sb);
	else
		sbuf_append(sb, "null", 4);
}

#define UPCOUNT(n, f, u, m, h)                                                                  \
	{                                                                                       \
		.name = n, .kind = STATS_COUNTER, .off = offsetof(struct agg_up, f), .unit = u, \
		.metric = m, .help = h                                                          \
	}

static const struct stats_field up_fields[] = {
	{.name = "listen",
	 .kind = STATS_STRING,
	 .flags = STATS_F_LABEL,
	 .metric = "upstream",
	 .get = up_listen},
	{.name = "target",
	 .kind = STATS_STRING,
	 .flags = STATS_F_LABEL,
	 .metric = "target",
	 .get = up_target},
	UPCOUNT("production.connections", conns_recorded, STATS_UNIT_NONE,
		"doppel_upstream_connections_total",
		"Production's connections to the upstream, relayed and recorded."),
	UPCOUNT("production.bytes_recorded", bytes_recorded, STATS_UNIT_BYTES,
		"doppel_upstream_recorded_bytes_total",
		"Bytes of production's upstream traffic recorded."),
	{.name = "production.bytes_kept",
	 .kind = STATS_GAUGE,
	 .off = offsetof(struct agg_up, bytes),
	 .unit = STATS_UNIT_BYTES,
	 .metric = "doppel_upstream_kept_bytes",
	 .help = "Recorded bytes kept now."},
	{.name = "production.budget",
	 .kind = STATS_GAUGE,
	 .get = up_budget,
	 .unit = STATS_UNIT_BYTES,
	 .metric = "doppel_upstream_budget_bytes",
	 .help = "Recorded bytes kept at most."},
	UPCOUNT("production.evicted_connections", evicted, STATS_UNIT_NONE,
		"doppel_upstream_evicted_connections_total",
		"Recorded connections evicted to stay within the budget."),
	UPCOUNT("production.truncated_connections", truncated, STATS_UNIT_NONE,
		"doppel_upstream_truncated_connections_total",
		"Recorded connections cut short by the budget."),
	{.name = "capture", .kind = STATS_LIST, .json = up_capture_json},
	{.name = "clones", .kind = STATS_LIST, .json = up_clones_json},
};

static const struct stats_table up_table = STATS_TABLE(up_fields);

static const void *up_row(void *arg, unsigned i, const void **ctx)
{
	const struct agg *a = arg;

	*ctx = NULL;
	return &a->ups[i];
}

void agg_status_json(struct agg *a, struct sbuf *sb)
{
	struct stats_rows rows = {.n = a->nups, .row = up_row, .arg = a};

	stats_json_array(sb, &up_table, &rows);
}

void agg_status_text(struct agg *a, struct sbuf *sb)
{
	for (unsigned i = 0; i < a->nups; i++) {
		stats_text(
			sb, &up_table, &a->ups[i], NULL,
			"upstream {listen} -> {target}: production {production.connections} "
			"connections, {production.bytes_recorded} recorded "
			"({production.bytes_kept} kept), {production.evicted_connections} evicted, "
			"{production.truncated_connections} truncated\n");
		if (a->ups[i].cap) {
			sbuf_append(sb, "  ", 2);
			cap_status_text(a->ups[i].cap, sb);
		}
		for (unsigned s = 0; s < AGG_MAX_CLONES; s++) {
			if (!a->clones[s])
				continue;
			stats_text(
				sb, &clone_up_table, &a->clones[s]->ups[i], NULL,
				"  clone {clone}: {connections} connections ({continued} continued "
				"from the freeze), {requests_answered} "
				"requests answered from the recording ({matched_in_order} in "
				"order, {matched_by_content} by content), {diverged} diverged, "
				"{unanswered} unanswered; its writes dropped: {bytes_dropped}\n");
		}
	}
}

void agg_metrics(struct agg *a, struct sbuf *sb, const char *labels)
{
	struct stats_rows rows = {.n = a->nups, .row = up_row, .arg = a};
	struct clone_rows cr = {a, -1};

	stats_prom(sb, &up_table, &rows, labels);
	rows = (struct stats_rows){.n = a->nups * AGG_MAX_CLONES, .row = clone_row, .arg = &cr};
	stats_prom(sb, &clone_up_table, &rows, labels);
}
