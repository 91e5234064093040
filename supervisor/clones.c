/*
 * clones.c - the supervisor's live clones: the registry (find, add, remove,
 * reap), attaching a freshly restored clone (proxy replica, relay on another
 * host, upstream isolation, its output), and the overflow policy that
 * replaces a clone that could not keep up (--overflow reclone).
 *
 * Clones are made by a job on a worker thread (jobs.c); the job hands each
 * restored clone back to sup_clone_attach() on the loop thread. Everything
 * here runs on the loop thread.
 */
#define LOG_PREFIX "clone"
#include "supervisor/sup-int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"

_Static_assert(SUP_MAX_CLONES <= AGG_MAX_CLONES, "the aggregator serves every clone");

/* ---- the registry ---- */

struct sup_clone *sup_clone_find(struct supervisor *sup, unsigned id)
{
	for (unsigned i = 0; i < sup->nclones; i++)
		if (sup->clones[i]->cm.id == id)
			return sup->clones[i];
	return NULL;
}

static struct sup_clone *clone_by_replica(struct supervisor *sup, unsigned replica_id)
{
	for (unsigned i = 0; i < sup->nclones; i++)
		if (sup->clones[i]->replica_id == replica_id)
			return sup->clones[i];
	return NULL;
}

static int clone_add(struct supervisor *sup, struct sup_clone *c)
{
	if (sup->nclones == SUP_MAX_CLONES)
		return -ENOSPC;
	sup->clones[sup->nclones++] = c;
	return 0;
}

void sup_clone_remove(struct supervisor *sup, struct sup_clone *c, const char *why)
{
	unsigned i;

	pr_info("destroying clone %u (pid %d): %s", c->cm.id, c->cm.pid, why);
	if (sup->px && c->replica_id)
		proxy_replica_remove(sup->px, c->replica_id);
	if (sup->tap && c->kept)
		rec_tap_keep_stop(sup->tap, c->replica_id);
	if (sup->agg)
		agg_clone_detach(sup->agg, c->cm.id);
	if (c->relay)
		proxy_free(c->relay);
	if (c->log_ev)
		event_free(c->log_ev);
	if (c->log_file >= 0)
		close(c->log_file);
	cm_clone_destroy(&c->cm);
	for (i = 0; i < sup->nclones && sup->clones[i] != c; i++)
		;
	if (i < sup->nclones) {
		memmove(&sup->clones[i], &sup->clones[i + 1], (sup->nclones - i - 1) * sizeof(c));
		sup->nclones--;
	}
	free(c);
}

void sup_clones_remove_all(struct supervisor *sup, const char *why)
{
	while (sup->nclones)
		sup_clone_remove(sup, sup->clones[0], why);
}

/*
 * Keep what /status says of a clone that ended on its own: why (the OOM
 * killer inside its cgroup is "killed by its memory limit"), how long it
 * lived, and its debug window.
 */
static void record_end(struct supervisor *sup, struct sup_clone *c, int st)
{
	struct sup_ended *e = &sup->ended[sup->nended % SUP_ENDED_CLONES];
	struct proxy_replica_info info;
	struct cg_usage u;
	char how[64], lim[32], peak[32];

	memset(e, 0, sizeof(*e));
	e->clone_id = c->cm.id;
	e->age_s = (double)(clock_coarse_ns() - c->created_ns) / 1e9;
	e->memory_limit = c->cm.cg.limits.memory;
	if (cg_usage_read(&c->cm.cg, &u) == 0) {
		e->memory_peak = u.memory_peak;
		e->killed_by_limit = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && u.oom_kills > 0;
	}
	if (sup->px && proxy_replica_info(sup->px, c->replica_id, &info) == 0) {
		e->debug_window_s = info.debug_window_s;
		e->window_open = info.window_open;
	}
	sup_describe_status(st, how, sizeof(how));
	if (e->killed_by_limit)
		snprintf(e->reason, sizeof(e->reason), "killed by its memory limit");
	else
		snprintf(e->reason, sizeof(e->reason), "exited: %s", how);
	sup->nended++;
	if (e->killed_by_limit)
		pr_warn("clone %u (pid %d) was killed by its memory limit (%s; peak %s) after %.1f "
			"s; its debug window was %.2f s%s; production was not touched",
			c->cm.id, c->cm.pid, size_format(e->memory_limit, lim, sizeof(lim)),
			size_format(e->memory_peak, peak, sizeof(peak)), e->age_s,
			e->debug_window_s, e->window_open ? " (still open)" : "");
	else
		pr_warn("clone %u (pid %d) exited: %s; removing it", c->cm.id, c->cm.pid, how);
}

void sup_clones_reap(struct supervisor *sup)
{
	int st;

	for (unsigned i = 0; i < sup->nclones; i++) {
		struct sup_clone *c = sup->clones[i];

		if (c->cm.pid > 0 && waitpid(c->cm.pid, &st, WNOHANG) == c->cm.pid) {
			record_end(sup, c, st);
			c->cm.pid = 0;
			sup_clone_remove(sup, c, "it exited");
			i = (unsigned)-1; /* the array changed */
		}
	}
}

/* ---- attaching a new clone ---- */

/* The clone's stdout and stderr, into its log file (capped, drops counted). */
static void on_clone_log(evutil_socket_t fd, short what, void *arg)
{
	struct sup_clone *c = arg;
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf));

	(void)what;
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			event_del(c->log_ev);
		return;
	}
	if (c->log_bytes + (uint64_t)n > SUP_CLONE_LOG_CAP || c->log_file < 0) {
		c->log_dropped += (uint64_t)n;
		return;
	}
	if (write(c->log_file, buf, (size_t)n) == n)
		c->log_bytes += (uint64_t)n;
	else
		c->log_dropped += (uint64_t)n;
}

static void start_log(struct supervisor *sup, struct sup_clone *c)
{
	char path[CM_PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/log", c->cm.dir);
	c->log_file = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (c->cm.log_fd < 0)
		return;
	fcntl(c->cm.log_fd, F_SETFL, O_NONBLOCK);
	c->log_ev = event_new(sup->base, c->cm.log_fd, EV_READ | EV_PERSIST, on_clone_log, c);
	if (c->log_ev)
		event_add(c->log_ev, NULL);
	else
		pr_warn("clone %u: cannot watch its output (out of memory); it is not logged",
			c->cm.id);
}

/*
 * External mode: listen on the other host's address (inside its netns) and
 * forward to the clone's 127.0.0.1:PORT (inside the clone's netns). On two
 * machines this relay is `doppel proxy` running on the second one.
 */
static int start_relay(struct supervisor *sup, const struct sup_clone_spec *spec,
		       struct sup_clone *c, const struct net_endpoint *clone_ep, char *err,
		       size_t errlen)
{
	struct proxy_config rc;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char text[SUP_HOST_MAX + 8];
	int fd;

	proxy_config_defaults(&rc);
	snprintf(text, sizeof(text), "%s:1", spec->host_addr);
	if (netaddr_parse(text, &rc.listen, err, errlen) < 0)
		return -EINVAL;
	((struct sockaddr_in *)&rc.listen.ss)->sin_port = 0; /* any free port over there */
	rc.listen.netns_fd = spec->host_fd;
	fd = netaddr_listen(&rc.listen, 256, 0, err, errlen);
	if (fd < 0)
		return fd;
	getsockname(fd, (struct sockaddr *)&ss, &len);
	netaddr_format((struct sockaddr *)&ss, len, c->address, sizeof(c->address));
	snprintf(rc.listen.text, sizeof(rc.listen.text), "%s", c->address);
	rc.listen_fd = fd;
	rc.backend = *clone_ep;
	snprintf(c->host, sizeof(c->host), "%s", spec->host);
	return proxy_new(sup->base, &rc, &c->relay, err, errlen);
}

/* --keep-images: what the clone receives is recorded on its own, for staged replay. */
static void keep_recording(struct supervisor *sup, struct sup_clone *c, const char *dir,
			   void (*report)(void *arg, const char *line), void *report_arg)
{
	struct rec_config rc_keep = sup->cfg.record;
	char err[256], line[400];

	rc_keep.dir = dir;
	if (rec_tap_keep_replica(sup->tap, c->replica_id, &rc_keep, err, sizeof(err)) < 0) {
		snprintf(line, sizeof(line),
			 "WARNING: clone %u: not recording what it receives: %s", c->cm.id, err);
		if (report)
			report(report_arg, line);
		return;
	}
	c->kept = 1;
}

static const char *agg_attach_error(int rc, char *buf, size_t len)
{
	if (rc == -ENOSPC)
		snprintf(buf, len, "the aggregator already serves %d clones", AGG_MAX_CLONES);
	else
		snprintf(buf, len, "%s", strerror(-rc));
	return buf;
}

int sup_clone_attach(struct supervisor *sup, const struct sup_clone_spec *spec, char *err,
		     size_t errlen)
{
	struct proxy_replica_opts ro = {.buffer = spec->buffer, .budget = 0};
	unsigned id = spec->cm->id;
	struct net_endpoint ep;
	struct sup_clone *c;
	char addr[96], name[32], why[256];
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "cannot attach clone %u: out of memory", id);
		cm_clone_destroy(spec->cm);
		return -ENOMEM;
	}
	c->cm = *spec->cm;
	c->alive = 1;
	c->created_ns = clock_coarse_ns();
	c->dump = spec->dump;
	c->buffer = spec->buffer ? spec->buffer : sup->cfg.proxy.buffer;
	c->log_file = -1;
	if (sup->nclones == SUP_MAX_CLONES) {
		snprintf(err, errlen, "cannot attach clone %u: %d clones exist already", id,
			 SUP_MAX_CLONES);
		rc = -ENOSPC;
		goto fail;
	}
	snprintf(addr, sizeof(addr), "%s:%d", sup->svc.adopted ? sup->svc.addr : "127.0.0.1",
		 sup->cfg.port);
	netaddr_parse(addr, &ep, why, sizeof(why));
	ep.netns_fd = c->cm.netns_fd;
	if (spec->host[0]) {
		/* The clone is on another host: a relay there, reached over the network. */
		rc = start_relay(sup, spec, c, &ep, why, sizeof(why));
		if (rc) {
			snprintf(err, errlen, "cannot relay to clone %u on %s: %s", id, spec->host,
				 why);
			goto fail;
		}
		netaddr_parse(c->address, &ep, why, sizeof(why));
	}
	snprintf(c->address, sizeof(c->address), "%s", ep.text);
	snprintf(name, sizeof(name), "%s-%u", spec->control ? "control" : "clone", id);
	ro.control = spec->control;
	if (spec->peers) {
		ro.peers = *spec->peers; /* proxy_replica_add takes them, whatever happens */
		*spec->peers = NULL;
	}
	c->control = spec->control;
	c->asked = spec->asked;
	rc = proxy_replica_add(sup->px, &ep, name, &ro, &c->replica_id, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "cannot attach clone %u: %s", id, why);
		goto fail;
	}
	if (sup->agg) {
		/* Without its upstreams' answers the clone would misbehave: not attached. */
		struct agg_peers *peers = spec->agg_peers ? *spec->agg_peers : NULL;

		if (spec->agg_peers)
			*spec->agg_peers = NULL; /* agg_clone_attach takes them */
		rc = agg_clone_attach(sup->agg, id, spec->agg_fds, peers);
		if (rc) {
			snprintf(err, errlen,
				 "cannot isolate clone %u from the upstreams: %s; the clone is "
				 "destroyed",
				 id, agg_attach_error(rc, why, sizeof(why)));
			goto fail;
		}
		for (unsigned i = 0; i < AGG_MAX_UPSTREAMS; i++)
			spec->agg_fds[i] = -1; /* the aggregator owns them now */
	}
	if (spec->keep && sup->tap)
		keep_recording(sup, c, spec->keep, spec->report, spec->report_arg);
	start_log(sup, c);
	clone_add(sup, c); /* room checked above */
	return 0;
fail:
	if (c->replica_id)
		proxy_replica_remove(sup->px, c->replica_id);
	if (c->relay)
		proxy_free(c->relay);
	cm_clone_destroy(&c->cm);
	free(c);
	return rc;
}

/* ---- the overflow policy ---- */

/* A debug window that ended, kept for /status (the last SUP_PAST_WINDOWS). */
static void record_window(struct supervisor *sup, struct sup_clone *c)
{
	struct proxy_replica_info info;
	struct sup_window *w;

	if (proxy_replica_info(sup->px, c->replica_id, &info) < 0)
		return;
	w = &sup->windows[sup->nwindows % SUP_PAST_WINDOWS];
	w->clone_id = c->cm.id;
	w->seconds = info.debug_window_s;
	sup->nwindows++;
	pr_info("clone %u overflowed: its debug window was %.2f s; replacing it with a fresh clone",
		c->cm.id, info.debug_window_s);
}

/* Replace c by a fresh clone with the same buffer, on the same host. */
static void reclone(struct supervisor *sup, struct sup_clone *c)
{
	char err[256], host[SUP_HOST_MAX];
	uint64_t buffer = c->buffer;
	struct sup_limits asked = c->asked;

	snprintf(host, sizeof(host), "%s", c->host);
	sup_clone_remove(sup, c, "overflowed (--overflow reclone)");
	sup->reclones++;
	if (sup_job_start_ex(sup, 1, buffer, 1, host, NULL, 0, NULL, &asked, CM_PREDUMP_AUTO, NULL,
			     err, sizeof(err)) < 0)
		pr_err("cannot re-clone: %s", err);
}

void sup_on_overflow(void *arg, unsigned replica_id, uint64_t overflows)
{
	struct supervisor *sup = arg;
	struct sup_clone *c = clone_by_replica(sup, replica_id);

	if (!c || sup->cfg.overflow != SUP_OVERFLOW_RECLONE || sup->stopping)
		return;
	if (sup->job) {
		pr_info("clone %u overflowed again (%llu overflows); a clone is in progress, "
			"re-clone later",
			c->cm.id, (unsigned long long)overflows);
		return;
	}
	record_window(sup, c);
	reclone(sup, c);
}
