/*
 * proxy.c - the proxy object: listener, replicas and housekeeping. The
 * per-connection data path is in conn.c, status views in status.c.
 */
#define LOG_PREFIX "proxy"
#include "proxy/proxy-int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "window/window.h"

#define ACCEPT_BATCH 64
#define TICK_MS 250

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
	cfg->tls.handshake_timeout_ns = 10 * NSEC_PER_SEC;
}

/* Accepting is out of fds or memory: say so once (then once a minute), pause 100 ms. */
static void accept_pause(struct proxy *px, int err)
{
	struct timeval tv = {0, 100 * 1000};
	uint64_t now = clock_coarse_ns();

	px->accept_pauses++;
	if (!px->accept_warn_ns || now - px->accept_warn_ns > 60 * NSEC_PER_SEC) {
		if (err == EMFILE || err == ENFILE)
			pr_warn("cannot accept connections on %s: %s (fd limit %llu, %llu replica "
				"legs open, none left to close); pausing accepts for "
				"100 ms at a time, clients wait in the listen queue; pauses=%llu. "
				"Fix: raise the fd limit (`ulimit -n`, LimitNOFILE= in a systemd "
				"unit)%s",
				px->cfg.listen.text, strerror(err),
				(unsigned long long)px->fd_limit, (unsigned long long)px->legs_open,
				(unsigned long long)px->accept_pauses,
				err == ENFILE ? " or the host's (fs.file-max)" : "");
		else
			pr_warn("cannot accept connections on %s: %s; pausing accepts for 100 ms "
				"at a "
				"time, clients wait in the listen queue; pauses=%llu. Fix: free "
				"memory "
				"on the host",
				px->cfg.listen.text, strerror(err),
				(unsigned long long)px->accept_pauses);
		px->accept_warn_ns = now;
	}
	/* The listener is level-triggered: left armed, it would fire again at once. */
	event_del(&px->lev);
	evtimer_add(&px->accept_retry, &tv);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;

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
		if (errno == EMFILE || errno == ENFILE) {
			int e = errno;

			/* A client and its production socket come before replica legs. */
			if (conn_reclaim_leg(px)) {
				conn_reclaim_leg(px);
				continue;
			}
			accept_pause(px, e);
			return;
		}
		if (errno == ENOBUFS || errno == ENOMEM) {
			accept_pause(px, errno);
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

unsigned proxy_leg_cap_auto(uint64_t nofile)
{
	uint64_t cap =
		nofile >= 2 * PROXY_FD_RESERVE ? (nofile - PROXY_FD_RESERVE) / 2 : nofile / 4;

	if (cap < 1)
		cap = 1;
	return cap > UINT_MAX ? UINT_MAX : (unsigned)cap;
}

/* The soft fd limit, with "unlimited" read as the kernel's ceiling (fs.nr_open). */
static uint64_t nofile_soft(const struct rlimit *rl)
{
	if (rl->rlim_cur != RLIM_INFINITY)
		return rl->rlim_cur;
	return 1ULL << 20;
}

int proxy_raise_fd_limit(uint64_t *before, uint64_t *after)
{
	struct rlimit rl;
	int rc = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (before)
		*before = nofile_soft(&rl);
	if (rl.rlim_cur != rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			FILE *f = fopen("/proc/sys/fs/nr_open", "r");
			unsigned long long nr = 0;

			/* An unlimited hard limit: the soft one may go up to fs.nr_open. */
			rc = -errno;
			if (f && fscanf(f, "%llu", &nr) == 1 && nr > old) {
				rl.rlim_cur = (rlim_t)nr;
				rc = setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
			}
			if (f)
				fclose(f);
			if (rc < 0)
				rl.rlim_cur = old;
		}
	}
	if (after)
		*after = nofile_soft(&rl);
	return rc;
}

/* Where worker widx listens: its own socket (SO_REUSEPORT with others), or the shared one. */
static int listen_socket(struct proxy *px, const struct proxy_config *cfg, struct proxy *primary,
			 char *err, size_t errlen)
{
	struct net_endpoint ep = cfg->listen;

	if (cfg->listen_fd >= 0) {
		px->lfd = cfg->listen_fd;
		return 0;
	}
	if (primary) {
		/* the port worker 0 got (cfg.listen may say port 0) */
		ep.len = sizeof(ep.ss);
		if (getsockname(primary->lfd, (struct sockaddr *)&ep.ss, &ep.len) < 0) {
			snprintf(err, errlen, "getsockname: %s", strerror(errno));
			return -errno;
		}
	} else if (px->nthreads > 1) {
		/* SO_REUSEPORT would share a port another process holds the same way: check */
		int probe = netaddr_listen(&cfg->listen, 1, 0, err, errlen);

		if (probe < 0)
			return probe;
		close(probe);
	}
	px->lfd = netaddr_listen(&ep, 1024, px->nthreads > 1, err, errlen);
	if (px->lfd < 0)
		return px->lfd;
	px->own_lfd = 1;
	return 0;
}

int proxy_new_one(struct event_base *base, const struct proxy_config *cfg, struct proxy *primary,
		  unsigned widx, struct proxy **out, char *err, size_t errlen)
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
	px->primary = primary ? primary : px;
	px->widx = widx;
	px->nthreads = cfg->threads > 1 ? cfg->threads : 1;
	px->next_conn_id = widx;
	px->notify_fd = -1;
	pthread_mutex_init(&px->exact_mu, NULL);
	rc = tls_front_new(&cfg->tls, &px->tls_stats, &cfg->backend, &px->tls, err, errlen);
	if (rc < 0) {
		free(px);
		return rc;
	}
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
			tls_front_free(px->tls);
			free(px);
			return rc;
		}
	}
	{
		struct rlimit rl;

		px->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? nofile_soft(&rl) : 1024;
	}
	px->legs_cap = cfg->max_legs ? cfg->max_legs : proxy_leg_cap_auto(px->fd_limit);
	/* the fds are the process's: each worker gets its share */
	px->legs_cap = px->legs_cap / px->nthreads ? px->legs_cap / px->nthreads : 1;
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
		tls_front_free(px->tls);
		free(px);
		return -ENOMEM;
	}
	chunk_pool_init(&px->pool, 16); /* free chunks kept for reuse: 1 MiB */
	px->start_ns = clock_coarse_ns();
	rc = listen_socket(px, cfg, primary, err, errlen);
	if (rc < 0) {
		if (px->cfg.backend.netns_fd >= 0)
			close(px->cfg.backend.netns_fd);
		div_types_free(px->types);
		div_rules_free(px->own_rules);
		tls_front_free(px->tls);
		free(px);
		return rc;
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

int proxy_new(struct event_base *base, const struct proxy_config *cfg, struct proxy **out,
	      char *err, size_t errlen)
{
	struct proxy *px;
	int rc;

	if (cfg->threads > 1 && (cfg->join_open || cfg->service_is_client)) {
		snprintf(err, errlen, "%s runs on one thread only (give --threads 1)",
			 cfg->join_open ? "--join-open" : "an upstream relay");
		return -EINVAL;
	}
	if (cfg->threads > PROXY_THREADS_MAX) {
		snprintf(err, errlen, "at most %d threads", PROXY_THREADS_MAX);
		return -EINVAL;
	}
	rc = proxy_new_one(base, cfg, NULL, 0, &px, err, errlen);
	if (rc < 0 || px->nthreads == 1) {
		*out = rc < 0 ? NULL : px;
		return rc;
	}
	/* other workers' overflows wake worker 0's notify event */
	px->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (px->notify_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		proxy_free_one(px);
		return rc;
	}
	event_assign(&px->notify, base, px->notify_fd, EV_READ | EV_PERSIST, notify_cb, px);
	event_add(&px->notify, NULL);
	rc = workers_start(px, px->nthreads, err, errlen);
	if (rc < 0) {
		proxy_free_one(px);
		return rc;
	}
	*out = px;
	return 0;
}

void proxy_set_hooks(struct proxy *px, const struct proxy_hooks *hooks)
{
	px->hooks = *hooks;
}

static void set_observer_fn(struct proxy *px, void *arg)
{
	px->ob = *(const struct proxy_observer *)arg;
}

void proxy_set_observer(struct proxy *px, const struct proxy_observer *ob)
{
	workers_each(px, set_observer_fn, (void *)ob);
}

static void stop_accepting_fn(struct proxy *px, void *arg)
{
	(void)arg;
	if (px->lfd < 0)
		return;
	event_del(&px->lev);
	event_del(&px->accept_retry);
	if (px->own_lfd || px->widx == 0)
		close(px->lfd);
	px->lfd = -1;
}

void proxy_stop_accepting(struct proxy *px)
{
	/* the others first: a listen_fd they share is closed by worker 0 */
	workers_each_other(px, stop_accepting_fn, NULL);
	stop_accepting_fn(px, NULL);
}

static void active_fn(struct proxy *px, void *arg)
{
	*(uint64_t *)arg += px->conns_active;
}

unsigned proxy_active_connections(const struct proxy *px)
{
	uint64_t n = 0;

	workers_each((struct proxy *)px, active_fn, &n);
	return (unsigned)n;
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
	workers_stop(px);
	proxy_free_one(px);
}

void proxy_free_one(struct proxy *px)
{
	stop_accepting_fn(px, NULL);
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
	tls_front_free(px->tls);
	exact_end(px);
	pthread_mutex_destroy(&px->exact_mu);
	if (px->notify_fd >= 0)
		close(px->notify_fd);
	free(px);
}

int proxy_tls_check(const struct proxy_tls_config *cfg, char *err, size_t errlen)
{
	struct tls_stats st = {0};
	struct tls_front *tf;
	int rc = tls_front_new(cfg, &st, NULL, &tf, err, errlen);

	tls_front_free(tf);
	return rc;
}

struct reload_call {
	int rc;
	char *err;
	size_t errlen;
};

static void tls_reload_fn(struct proxy *px, void *arg)
{
	struct reload_call *rc = arg;

	if (rc->rc == 0)
		rc->rc = tls_front_reload(px->tls, rc->err, rc->errlen);
}

int proxy_tls_reload(struct proxy *px, char *err, size_t errlen)
{
	struct reload_call rc = {0, err, errlen};

	if (!tls_front_serves(px->tls)) {
		snprintf(err, errlen, "no --tls-cert to reload");
		return -ENOENT;
	}
	/* each worker has its own TLS contexts: each reads the files */
	workers_each(px, tls_reload_fn, &rc);
	if (rc.rc == 0)
		pr_info("TLS certificates reloaded certs=%u; new handshakes use them",
			px->cfg.tls.ncerts);
	return rc.rc;
}

/* ---- replicas ---- */

static void legs_cap_log(struct proxy *px);
static struct replica *replica_find(struct proxy *px, unsigned id, unsigned *pos);

/* sh: worker 0's share of the replica (the other workers), or NULL (worker 0: its own) */
static int replica_add(struct proxy *px, const struct net_endpoint *ep, const char *name,
		       const struct proxy_replica_opts *opts, unsigned *id_out,
		       struct replica_share *sh, unsigned id, char *err, size_t errlen)
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
	rep->sh = sh ? sh : &rep->own_sh;
	rep->control = opts && opts->control;
	rep->drep =
		div_replica_new(px->types, rep->control ? DIV_CONTROL : DIV_CANDIDATE, &rep->div);
	if (!rep->drep) {
		snprintf(err, errlen, "out of memory");
		free(rep);
		return -ENOMEM;
	}
	rep->id = id ? id : ++px->next_rep_id;
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
	join_replica_added(px, rep, opts ? opts->peers : NULL); /* open connections join it */
	if (px->nreps == 1 && !px->legs_cap_logged && !px->widx) {
		legs_cap_log(px);
		px->legs_cap_logged = 1;
	}
	if (id_out)
		*id_out = rep->id;
	if (px->widx)
		return 0; /* worker 0 says it */
	pr_info("replica attached replica=%s id=%u address=%s%s buffer=%llu budget=%llu%s",
		rep->name, rep->id, rep->ep.text,
		rep->ep.netns_fd >= 0 ? " (in its own netns)" : "", (unsigned long long)rep->buffer,
		(unsigned long long)rep->budget, rep->control ? " role=control" : "");
	return 0;
}

struct add_call {
	const struct net_endpoint *ep;
	const char *name;
	struct proxy_replica_opts opts;
	struct replica_share *sh;
	unsigned id;
	int rc;
	char *err;
	size_t errlen;
};

static void replica_add_fn(struct proxy *px, void *arg)
{
	struct add_call *a = arg;

	if (a->rc == 0)
		a->rc = replica_add(px, a->ep, a->name, &a->opts, NULL, a->sh, a->id, a->err,
				    a->errlen);
}

/* What removing a replica from every worker gathers: its diverged turns on each. */
struct remove_call {
	unsigned id;
	uint64_t diverged;
};

static int replica_remove(struct proxy *px, struct remove_call *rc);

static void replica_remove_fn(struct proxy *px, void *arg)
{
	replica_remove(px, arg);
}

int proxy_replica_add(struct proxy *px, const struct net_endpoint *ep, const char *name,
		      const struct proxy_replica_opts *opts, unsigned *id_out, char *err,
		      size_t errlen)
{
	unsigned id = 0;
	int rc = replica_add(px, ep, name, opts, &id, NULL, 0, err, errlen);

	if (rc == 0 && px->workers) {
		/* the same replica, same id and share, on every other worker */
		struct add_call a = {
			.ep = ep, .name = name, .id = id, .err = err, .errlen = errlen};

		if (opts)
			a.opts = *opts;
		a.opts.peers = NULL;
		a.sh = replica_find(px, id, NULL)->sh;
		workers_each_other(px, replica_add_fn, &a);
		rc = a.rc;
		if (rc < 0) {
			struct remove_call undo = {.id = id};

			workers_each_other(px, replica_remove_fn, &undo);
			replica_remove(px, &undo);
		}
	}
	if (rc == 0 && id_out)
		*id_out = id;

	if (opts && opts->peers) {
		exact_close_rest(
			opts->peers); /* the ends no connection took: their clone sees a FIN */
		proxy_peers_free(opts->peers);
	}
	return rc;
}

uint64_t replica_leg_cap(const struct replica *rep)
{
	const struct proxy *px = rep->px;
	uint64_t share = px->nreps ? px->legs_cap / px->nreps : px->legs_cap;

	if (px->cfg.max_replica_legs) /* each worker its share */
		share = px->cfg.max_replica_legs / px->nthreads;
	return share ? share : 1;
}

/* With the first replica: how many legs replicas may hold, and why. */
static void legs_cap_log(struct proxy *px)
{
	unsigned autocap = proxy_leg_cap_auto(px->fd_limit);
	uint64_t cap = px->legs_cap * px->nthreads; /* each worker has its share */

	if (px->cfg.max_legs)
		pr_info("replica legs: at most %llu open in total (--max-legs), %s per replica; fd "
			"limit %llu",
			(unsigned long long)cap,
			px->cfg.max_replica_legs ? "--max-replica-legs" : "an equal share",
			(unsigned long long)px->fd_limit);
	else
		pr_info("replica legs: at most %llu open in total (fd limit %llu: half of what is "
			"left after %d fds kept for the listener, admin and logs; the other half "
			"is "
			"kept for clients and production), %s per replica",
			(unsigned long long)cap, (unsigned long long)px->fd_limit, PROXY_FD_RESERVE,
			px->cfg.max_replica_legs ? "--max-replica-legs" : "an equal share");
	if (px->cfg.max_legs > autocap)
		pr_warn("--max-legs %u is more than the fd limit %llu leaves replicas (%u): "
			"replica "
			"legs may take fds production and clients need; lower it or raise `ulimit "
			"-n`",
			px->cfg.max_legs, (unsigned long long)px->fd_limit, autocap);
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
	div_follower_detach(leg_conn(leg)->div, leg->idx);
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
	struct remove_call rc = {.id = id};

	if (!replica_find(px, id, NULL))
		return -ENOENT;
	/* worker 0 last: its replica holds the share the others point to */
	workers_each_other(px, replica_remove_fn, &rc);
	return replica_remove(px, &rc);
}

static int replica_remove(struct proxy *px, struct remove_call *rc)
{
	unsigned pos, id = rc->id;
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
	rc->diverged += rep->div.turns_diverged;
	if (!px->widx)
		pr_info("replica removed replica=%s id=%u overflows=%llu diverged_turns=%llu",
			rep->name, id, (unsigned long long)rep->sh->overflows,
			(unsigned long long)rc->diverged);
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
	uint64_t v;

	(void)what;
	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_perror("overflow notification read");
	for (unsigned i = 0; i < px->nreps; i++) {
		struct replica *rep = px->reps[i];
		unsigned id = rep->id;
		uint64_t overflows = rep->sh->overflows;

		if (!atomic_exchange(&rep->sh->hook_pending, 0))
			continue;
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
	uint64_t none = 0;

	atomic_fetch_add(&rep->sh->overflows, 1);
	atomic_store(&rep->sh->last_overflow_ns, now);
	/* the first on any thread closes the debug window */
	if (atomic_compare_exchange_strong(&rep->sh->first_overflow_ns, &none, now)) {
		pr_warn("replica overflow: the debug window of replica=%s closed after %.3f s "
			"(buffer=%llu per connection, budget=%llu); production is unaffected",
			rep->name, (double)(now - rep->attach_ns) / 1e9,
			(unsigned long long)rep->buffer, (unsigned long long)rep->budget);
	}
	if (px->primary->hooks.on_overflow && !atomic_exchange(&rep->sh->hook_pending, 1)) {
		uint64_t one = 1;

		if (px == px->primary)
			event_active(&px->notify, EV_TIMEOUT, 0);
		else if (write(px->primary->notify_fd, &one, sizeof(one)) < 0)
			pr_perror("overflow notification write");
	}
}

void replica_fill_info(struct replica *rep, const struct replica_snap *snap, uint64_t now,
		       struct proxy_replica_info *out)
{
	struct replica_snap own = {0};
	uint64_t max_conn, first;
	unsigned backlogged;
	double conn_occ, tot_occ;
	struct window_live live;

	if (!snap) {
		replica_snap_add(rep, now, &own);
		snap = &own;
	}
	max_conn = snap->max_conn;
	backlogged = snap->backlogged;
	memset(out, 0, sizeof(*out));
	out->buffered = rep->sh->buffered;
	out->max_conn_buffered = max_conn;
	out->buffer_cap = rep->buffer;
	out->budget = rep->budget;
	out->ingress_bps = snap->ingress_bps;
	out->drain_bps = snap->drain_bps;
	conn_occ = (double)max_conn / (double)rep->buffer;
	tot_occ = (double)out->buffered / (double)rep->budget;
	out->occupancy = conn_occ > tot_occ ? conn_occ : tot_occ;
	/* Two ways to overflow: one connection's --buffer, or the budget (window/live.c). */
	live.buffer = (double)rep->buffer;
	live.budget = (double)rep->budget;
	live.max_conn_queued = (double)max_conn;
	live.queued = (double)out->buffered;
	live.backlogged = backlogged;
	live.ingress_bps = out->ingress_bps;
	live.drain_bps = out->drain_bps;
	out->forecast_s = window_live_forecast(&live);
	out->overflows = rep->sh->overflows;
	first = rep->sh->first_overflow_ns;
	out->window_open = first == 0;
	out->debug_window_s = (double)((first ? first : now) - rep->attach_ns) / 1e9;
}

void replica_snap_add(struct replica *rep, uint64_t now, struct replica_snap *sum)
{
	for (struct leg *leg = rep->legs; leg; leg = leg->rep_next) {
		if (leg->out.bytes > sum->max_conn)
			sum->max_conn = leg->out.bytes;
		if (leg->out.bytes)
			sum->backlogged++;
	}
	sum->ingress_bps += rate_per_sec(&rep->ingress, now);
	sum->drain_bps += rate_per_sec(&rep->drain, now);
}

struct info_call {
	unsigned id;
	uint64_t now;
	struct replica_snap snap;
};

static void info_fn(struct proxy *px, void *arg)
{
	struct info_call *ic = arg;
	struct replica *rep = replica_find(px, ic->id, NULL);

	if (rep)
		replica_snap_add(rep, ic->now, &ic->snap);
}

int proxy_replica_info(struct proxy *px, unsigned id, struct proxy_replica_info *out)
{
	struct replica *rep = replica_find(px, id, NULL);
	struct info_call ic = {.id = id, .now = clock_coarse_ns()};

	if (!rep)
		return -ENOENT;
	/* only the queues are per worker: the rest is in rep and its share */
	workers_each(px, info_fn, &ic);
	replica_fill_info(rep, &ic.snap, ic.now, out);
	return 0;
}

/* ---- the divergence report ---- */

static void diverge_report(struct proxy *px, int json, struct sbuf *sb);

void proxy_diverge_report(struct proxy *px, int json, struct sbuf *sb)
{
	struct proxy *view = status_view(px);

	if (!view) {
		sbuf_printf(sb, json ? "{\"error\":\"out of memory\"}\n" : "out of memory\n");
		return;
	}
	diverge_report(view, json, sb);
	status_view_done(px, view);
}

static void diverge_report(struct proxy *px, int json, struct sbuf *sb)
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
	struct proxy *view = status_view(px);
	struct replica *rep = view ? replica_find(view, id, NULL) : NULL;
	uint64_t n = rep ? div_replica_net(rep->drep, &px->cfg.div_rule) : 0;

	status_view_done(px, view);
	return n;
}
