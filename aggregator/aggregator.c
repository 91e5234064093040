/*
 * aggregator.c - upstreams, their production relays, clones' listeners,
 * status. Recording is in record.c, answering clones in replay.c.
 */
#define LOG_PREFIX "aggregator"
#include "aggregator/agg-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"

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
	if (!eq || eq == spec || !eq[1] || (size_t)(eq - spec) >= sizeof(left)) {
		snprintf(err, errlen,
			 "--upstream '%s': expected LISTEN=TARGET, e.g. "
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
	    netaddr_parse(eq + 1, &up->right, perr, sizeof(perr)) < 0) {
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

int agg_clone_listen(const struct agg *a, int netns_fd, int *fds, char *err, size_t errlen)
{
	for (unsigned i = 0; i < a->nups; i++) {
		struct net_endpoint ep = a->ups[i].left;
		char lerr[512];

		ep.netns_fd = netns_fd;
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

int agg_clone_attach(struct agg *a, unsigned id, const int *fds)
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
		cu->lfd = fds[i];
		cu->base_seq = a->ups[i].next_seq + 1;
		cu->attach_ns = clock_coarse_ns();
		cu->lev = event_new(a->base, cu->lfd, EV_READ | EV_PERSIST, agg_replay_accept, cu);
		event_add(cu->lev, NULL);
	}
	/* A turn used by the clone that had this slot before is free for this one. */
	for (unsigned i = 0; i < a->nups; i++)
		for (struct agg_pconn *pc = a->ups[i].head; pc; pc = pc->next)
			for (unsigned t = 0; t < pc->nturns; t++)
				pc->turns[t].used_by &= ~(1ULL << slot);
	a->clones[slot] = cl;
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
		agg_record_free_all(up);
		if (up->wake)
			event_free(up->wake);
	}
	event_free(a->tick);
	free(a);
}

void agg_status_json(struct agg *a, struct sbuf *sb)
{
	sbuf_printf(sb, "[");
	for (unsigned i = 0; i < a->nups; i++) {
		struct agg_up *up = &a->ups[i];
		unsigned n = 0;

		sbuf_printf(sb, "%s{\"listen\":", i ? "," : "");
		sbuf_json_str(sb, up->left.text);
		sbuf_printf(sb, ",\"target\":");
		sbuf_json_str(sb, up->right.text);
		sbuf_printf(sb,
			    ",\"production\":{\"connections\":%llu,\"bytes_recorded\":%llu,\"bytes_"
			    "kept\":%llu,"
			    "\"budget\":%llu,\"evicted_connections\":%llu,\"truncated_"
			    "connections\":%llu},"
			    "\"clones\":[",
			    (unsigned long long)up->conns_recorded,
			    (unsigned long long)up->bytes_recorded, (unsigned long long)up->bytes,
			    (unsigned long long)a->budget, (unsigned long long)up->evicted,
			    (unsigned long long)up->truncated);
		for (unsigned s = 0; s < AGG_MAX_CLONES; s++) {
			struct agg_clone_up *cu;

			if (!a->clones[s])
				continue;
			cu = &a->clones[s]->ups[i];
			sbuf_printf(
				sb,
				"%s{\"clone\":%u,\"connections\":%llu,\"requests_answered\":%llu,"
				"\"matched_in_order\":%llu,\"matched_by_content\":%llu,"
				"\"diverged\":%llu,"
				"\"unanswered\":%llu,\"bytes_answered\":%llu,\"bytes_dropped\":%"
				"llu}",
				n++ ? "," : "", a->clones[s]->id,
				(unsigned long long)cu->conns_total,
				(unsigned long long)(cu->in_order + cu->by_content),
				(unsigned long long)cu->in_order,
				(unsigned long long)cu->by_content,
				(unsigned long long)cu->diverged,
				(unsigned long long)cu->unanswered,
				(unsigned long long)cu->bytes_answered,
				(unsigned long long)cu->bytes_dropped);
		}
		sbuf_printf(sb, "]}");
	}
	sbuf_printf(sb, "]");
}

void agg_status_text(struct agg *a, struct sbuf *sb)
{
	char b1[32], b2[32];

	for (unsigned i = 0; i < a->nups; i++) {
		struct agg_up *up = &a->ups[i];

		sbuf_printf(sb,
			    "upstream %s -> %s: production %llu connections, %s recorded (%s "
			    "kept), %llu "
			    "evicted, %llu truncated\n",
			    up->left.text, up->right.text, (unsigned long long)up->conns_recorded,
			    size_format(up->bytes_recorded, b1, sizeof(b1)),
			    size_format(up->bytes, b2, sizeof(b2)), (unsigned long long)up->evicted,
			    (unsigned long long)up->truncated);
		for (unsigned s = 0; s < AGG_MAX_CLONES; s++) {
			struct agg_clone_up *cu;

			if (!a->clones[s])
				continue;
			cu = &a->clones[s]->ups[i];
			sbuf_printf(sb,
				    "  clone %u: %llu connections, %llu requests answered from the "
				    "recording (%llu in "
				    "order, %llu by content), %llu diverged, %llu unanswered; its "
				    "writes dropped: %s\n",
				    a->clones[s]->id, (unsigned long long)cu->conns_total,
				    (unsigned long long)(cu->in_order + cu->by_content),
				    (unsigned long long)cu->in_order,
				    (unsigned long long)cu->by_content,
				    (unsigned long long)cu->diverged,
				    (unsigned long long)cu->unanswered,
				    size_format(cu->bytes_dropped, b1, sizeof(b1)));
		}
	}
}
