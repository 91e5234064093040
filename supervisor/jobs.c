/*
 * jobs.c - clone jobs. cm_clone_make() blocks (CRIU, file copies), so it
 * runs on a worker thread; the event loop keeps serving production. The
 * worker sends its progress lines through a pipe, then an EOT byte; the loop
 * thread forwards the lines to whoever asked (a streamed HTTP reply), joins
 * the worker, and attaches the new clones to the proxy.
 */
#define LOG_PREFIX "clone"
#include "supervisor/sup-int.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/netns.h"
#include "common/size.h"

#define JOB_DONE '\004'

/* ---- worker thread ---- */

static void job_write(struct sup_job *job, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(job->pipe[1], s, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

static void job_progress(void *arg, const char *line)
{
	struct sup_job *job = arg;

	job_write(job, line, strlen(line));
	job_write(job, "\n", 1);
}

static void *job_thread(void *arg)
{
	struct sup_job *job = arg;
	char done = JOB_DONE;

	job->rc = cm_clone_make(&job->sup->svc, &job->opts, job->clones, &job->stats, job_progress,
				job, job->err, sizeof(job->err));
	job_write(job, &done, 1);
	return NULL;
}

/* Runs on the worker: the clone's upstream listeners, before it is restored. */
static int job_prepare_netns(void *arg, unsigned index, int netns_fd, char *err, size_t errlen)
{
	struct sup_job *job = arg;
	int rc;

	if (!job->sup->agg || index >= SUP_MAX_CLONES)
		return 0;
	rc = agg_clone_listen(job->sup->agg, netns_fd, job->agg_fds[index], err, errlen);
	if (rc == 0 && index + 1 > job->agg_ready)
		job->agg_ready = index + 1;
	return rc;
}

/* Close listeners made for clones that were not attached. */
static void close_agg_fds(struct sup_job *job, unsigned from)
{
	unsigned n = job->sup->agg ? agg_upstreams(job->sup->agg) : 0;

	for (unsigned k = from; k < job->agg_ready; k++)
		for (unsigned i = 0; i < n; i++)
			if (job->agg_fds[k][i] >= 0)
				close(job->agg_fds[k][i]);
	job->agg_ready = from;
}

/* ---- loop thread ---- */

static void reply_line(struct sup_job *job, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reply_line(struct sup_job *job, const char *fmt, ...)
{
	struct evbuffer *b;
	va_list ap;

	if (!job->req)
		return;
	b = evbuffer_new();
	if (!b)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
	evhttp_send_reply_chunk(job->req, b);
	evbuffer_free(b);
}

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

/*
 * External mode: listen on the other host's address (inside its netns) and
 * forward to the clone's 127.0.0.1:PORT (inside the clone's netns). On two
 * machines this relay is `doppel proxy` running on the second one.
 */
static int start_relay(struct supervisor *sup, struct sup_job *job, struct sup_clone *c,
		       const struct net_endpoint *clone_ep, char *err, size_t errlen)
{
	struct proxy_config rc;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char text[96];
	int fd;

	proxy_config_defaults(&rc);
	snprintf(text, sizeof(text), "%s:1", job->host_addr);
	if (netaddr_parse(text, &rc.listen, err, errlen) < 0)
		return -EINVAL;
	((struct sockaddr_in *)&rc.listen.ss)->sin_port = 0; /* any free port over there */
	rc.listen.netns_fd = job->host_fd;
	fd = netaddr_listen(&rc.listen, 256, 0, err, errlen);
	if (fd < 0)
		return fd;
	getsockname(fd, (struct sockaddr *)&ss, &len);
	netaddr_format((struct sockaddr *)&ss, len, c->address, sizeof(c->address));
	snprintf(rc.listen.text, sizeof(rc.listen.text), "%s", c->address);
	rc.listen_fd = fd;
	rc.backend = *clone_ep;
	snprintf(c->host, sizeof(c->host), "%s", job->host);
	return proxy_new(sup->base, &rc, &c->relay, err, errlen);
}

/* Put a freshly restored clone behind the proxy. */
static int attach_clone(struct supervisor *sup, struct sup_job *job, struct cm_clone *cm)
{
	struct proxy_replica_opts ro = {.buffer = job->buffer, .budget = 0};
	struct net_endpoint ep;
	struct sup_clone *c;
	char addr[32], name[32], path[CM_PATH_MAX + 8], err[256];
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cm = *cm;
	c->alive = 1;
	c->created_ns = clock_coarse_ns();
	c->dump = job->stats;
	c->buffer = job->buffer ? job->buffer : sup->cfg.proxy.buffer;
	c->log_file = -1;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", sup->cfg.port);
	netaddr_parse(addr, &ep, err, sizeof(err));
	ep.netns_fd = cm->netns_fd;
	if (job->host[0]) {
		/* The clone is on another host: a relay there, reached over the network. */
		rc = start_relay(sup, job, c, &ep, err, sizeof(err));
		if (rc) {
			reply_line(job, "ERROR: cannot relay to clone %u on %s: %s\n", cm->id,
				   job->host, err);
			cm_clone_destroy(&c->cm);
			free(c);
			return rc;
		}
		netaddr_parse(c->address, &ep, err, sizeof(err));
	}
	snprintf(c->address, sizeof(c->address), "%s", ep.text);
	snprintf(name, sizeof(name), "%s-%u", job->control ? "control" : "clone", cm->id);
	ro.control = job->control;
	c->control = job->control;
	rc = proxy_replica_add(sup->px, &ep, name, &ro, &c->replica_id, err, sizeof(err));
	if (rc) {
		reply_line(job, "ERROR: cannot attach clone %u: %s\n", cm->id, err);
		if (c->relay)
			proxy_free(c->relay);
		cm_clone_destroy(&c->cm);
		free(c);
		return rc;
	}
	if (sup->agg) {
		unsigned k = cm->id - job->opts.first_id;

		agg_clone_attach(sup->agg, cm->id, job->agg_fds[k]);
		for (unsigned i = 0; i < AGG_MAX_UPSTREAMS; i++)
			job->agg_fds[k][i] = -1; /* the aggregator owns them now */
	}
	if (job->keep[0] && sup->tap) {
		struct rec_config rc_keep = sup->cfg.record;

		rc_keep.dir = job->keep;
		if (rec_tap_keep_replica(sup->tap, c->replica_id, &rc_keep, err, sizeof(err)) < 0)
			reply_line(job, "WARNING: clone %u: not recording what it receives: %s\n",
				   cm->id, err);
		else
			c->kept = 1;
	}
	snprintf(path, sizeof(path), "%s/log", cm->dir);
	c->log_file = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (cm->log_fd >= 0) {
		fcntl(cm->log_fd, F_SETFL, O_NONBLOCK);
		c->log_ev = event_new(sup->base, cm->log_fd, EV_READ | EV_PERSIST, on_clone_log, c);
		event_add(c->log_ev, NULL);
	}
	sup->clones[sup->nclones++] = c;
	return 0;
}

static void job_finish(struct supervisor *sup, struct sup_job *job)
{
	char sz[32];

	pthread_join(job->thread, NULL);
	event_free(job->ev);
	close(job->pipe[0]);
	close(job->pipe[1]);
	if (job->rc || sup->stopping || !sup->px)
		close_agg_fds(job, 0);
	if (job->rc) {
		pr_err("clone failed: %s", job->err);
		reply_line(job, "ERROR: %s\n", job->err);
	} else if (sup->stopping || !sup->px) {
		for (unsigned k = 0; k < job->count; k++)
			cm_clone_destroy(&job->clones[k]);
		reply_line(job, "ERROR: the supervisor is stopping; clones discarded\n");
	} else {
		unsigned attached = 0;

		for (unsigned k = 0; k < job->count; k++) {
			if (attach_clone(sup, job, &job->clones[k]) == 0) {
				attached++;
				reply_line(job,
					   "clone %u attached%s%s%s: it receives a copy of every "
					   "new connection "
					   "(buffer %s per connection)\n",
					   job->clones[k].id, job->host[0] ? " on host " : "",
					   job->host, job->host[0] ? " through its network" : "",
					   size_format(job->buffer ? job->buffer
								   : sup->cfg.proxy.buffer,
						       sz, sizeof(sz)));
			}
		}
		pr_info("%u clone(s) ready; production frozen %.1f ms; total %.0f ms", attached,
			(double)job->stats.frozen_us / 1000, (double)job->stats.total_us / 1000);
		reply_line(job, "OK frozen_ms=%.1f total_ms=%.0f clones=",
			   (double)job->stats.frozen_us / 1000, (double)job->stats.total_us / 1000);
		for (unsigned k = 0; k < job->count; k++)
			reply_line(job, "%s%u", k ? "," : "", job->clones[k].id);
		reply_line(job, "\n");
	}
	if (job->req) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(job->req), NULL, NULL);
		evhttp_send_reply_end(job->req);
	}
	close_agg_fds(job, 0); /* those of clones that could not be attached */
	if (job->host_fd >= 0)
		close(job->host_fd);
	sup->job = NULL;
	free(job);
}

static void on_job_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct sup_job *job = arg;
	struct supervisor *sup = job->sup;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	(void)what;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == JOB_DONE) {
			job_finish(sup, job);
			return;
		}
		if (job->partial_len < sizeof(job->partial) - 2)
			job->partial[job->partial_len++] = buf[i];
		if (buf[i] == '\n') {
			job->partial[job->partial_len] = '\0';
			reply_line(job, "%s", job->partial);
			job->partial_len = 0;
		}
	}
	if (n == 0)
		job_finish(sup, job); /* the worker is gone without its marker */
}

static void on_client_gone(struct evhttp_connection *conn, void *arg)
{
	struct sup_job *job = arg;

	(void)conn;
	job->req = NULL; /* the job goes on; nobody hears about it */
}

static int first_ipv4(void *arg)
{
	char *out = arg;
	struct ifaddrs *ifa, *i;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    !(i->ifa_flags & IFF_LOOPBACK) && (i->ifa_flags & IFF_UP)) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, 64);
			break;
		}
	freeifaddrs(ifa);
	return out[0] ? 0 : -EADDRNOTAVAIL;
}

/* `--host NETNS`: open the other host's network namespace and find its address. */
static int resolve_host(struct sup_job *job, const char *host, char *err, size_t errlen)
{
	char path[CM_PATH_MAX];
	int rc;

	if (strlen(host) >= sizeof(job->host) || !*host) {
		snprintf(err, errlen, "bad host '%s'", host);
		return -EINVAL;
	}
	if (strchr(host, '/'))
		snprintf(path, sizeof(path), "%s", host);
	else
		snprintf(path, sizeof(path), "/var/run/netns/%s", host);
	job->host_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (job->host_fd < 0) {
		rc = -errno;
		snprintf(err, errlen,
			 "no network namespace %s (%s): create it with `ip netns add %s` and "
			 "link it to this host (veth), or give a path to a netns file",
			 host, strerror(errno), host);
		return rc;
	}
	rc = netns_run(job->host_fd, first_ipv4, job->host_addr);
	if (rc < 0) {
		snprintf(err, errlen,
			 "network namespace %s has no IPv4 address on an interface that is up: "
			 "give it one (ip -n %s addr add ...) so this host can reach it",
			 host, host);
		return rc;
	}
	snprintf(job->host, sizeof(job->host), "%s", host);
	return 0;
}

int sup_job_start(struct supervisor *sup, unsigned count, uint64_t buffer, int reclone,
		  const char *host, const char *images, struct evhttp_request *req, char *err,
		  size_t errlen)
{
	return sup_job_start_ex(sup, count, buffer, reclone, host, images, 0, NULL, req, err,
				errlen);
}

int sup_job_start_ex(struct supervisor *sup, unsigned count, uint64_t buffer, int reclone,
		     const char *host, const char *images, int control, const char *keep,
		     struct evhttp_request *req, char *err, size_t errlen)
{
	struct sup_job *job;
	int rc;

	if (sup->job) {
		snprintf(err, errlen, "a clone is already being made; try again when it is done");
		return -EBUSY;
	}
	if (!sup->have_criu) {
		snprintf(err, errlen, "%s", sup->criu_err);
		return -ENOENT;
	}
	if (!sup->ready) {
		snprintf(err, errlen, "the service is not listening yet; try again in a moment");
		return -EAGAIN;
	}
	if (count == 0 || sup->nclones + count > SUP_MAX_CLONES) {
		snprintf(err, errlen, "%u clones exist; at most %d in all", sup->nclones,
			 SUP_MAX_CLONES);
		return -ENOSPC;
	}
	job = calloc(1, sizeof(*job));
	if (!job) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	job->sup = sup;
	job->count = count;
	job->buffer = buffer;
	job->reclone = reclone;
	job->control = control;
	if (keep && *keep)
		snprintf(job->keep, sizeof(job->keep), "%s", keep);
	job->host_fd = -1;
	if (host && *host && (rc = resolve_host(job, host, err, errlen)) < 0) {
		if (job->host_fd >= 0)
			close(job->host_fd);
		free(job);
		return rc;
	}
	if (pipe2(job->pipe, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		if (job->host_fd >= 0)
			close(job->host_fd);
		free(job);
		return rc;
	}
	fcntl(job->pipe[0], F_SETFL, O_NONBLOCK);
	if (images && *images) {
		struct stat st;

		if (images[0] != '/' || stat(images, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen,
				 "--images %s: not an existing directory (give an absolute path)",
				 images);
			if (job->host_fd >= 0)
				close(job->host_fd);
			close(job->pipe[0]);
			close(job->pipe[1]);
			free(job);
			return -EINVAL;
		}
		snprintf(job->images, sizeof(job->images), "%s/%s-dump-%u", images, sup->cfg.name,
			 sup->next_clone_id);
	} else {
		snprintf(job->images, sizeof(job->images), "%s/dump-%u", sup->images_base,
			 sup->next_clone_id);
	}
	job->opts.criu = &sup->criu;
	job->opts.work_dir = sup->work_dir;
	job->opts.images_dir = job->images;
	job->opts.count = count;
	job->opts.port = sup->cfg.port;
	job->opts.first_id = sup->next_clone_id;
	job->opts.ready_timeout_ms = 30 * 1000;
	job->opts.doppel_exe = sup->exe;
	job->opts.nice = sup->cfg.clone_nice;
	job->opts.host_netns_fd = job->host_fd;
	job->opts.prepare_netns = job_prepare_netns;
	job->opts.prepare_arg = job;
	job->opts.keep_dir = job->keep[0] ? job->keep : NULL;
	for (unsigned k = 0; k < SUP_MAX_CLONES; k++)
		for (unsigned i = 0; i < AGG_MAX_UPSTREAMS; i++)
			job->agg_fds[k][i] = -1;
	if (job->host[0]) {
		/* Where the other host keeps the images (on two machines: a directory there). */
		snprintf(job->host_images, sizeof(job->host_images), "%s/host-%u", sup->images_base,
			 sup->next_clone_id);
		job->opts.host_addr = job->host_addr;
		job->opts.host_images_dir = job->host_images;
	}
	sup->next_clone_id += count;
	job->ev = event_new(sup->base, job->pipe[0], EV_READ | EV_PERSIST, on_job_pipe, job);
	event_add(job->ev, NULL);
	rc = pthread_create(&job->thread, NULL, job_thread, job);
	if (rc) {
		snprintf(err, errlen, "cannot start a worker thread: %s", strerror(rc));
		event_free(job->ev);
		close(job->pipe[0]);
		close(job->pipe[1]);
		if (job->host_fd >= 0)
			close(job->host_fd);
		free(job);
		return -rc;
	}
	if (req) {
		job->req = req;
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "text/plain; charset=utf-8");
		evhttp_send_reply_start(req, 200, "OK");
		evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_client_gone,
					      job);
	}
	sup->job = job;
	pr_info("making %u clone(s) of %s%s", count, sup->cfg.name,
		reclone ? " (re-clone after overflow)" : "");
	return 0;
}

void sup_job_abandon(struct supervisor *sup)
{
	struct sup_job *job = sup->job;

	if (!job)
		return;
	pr_info("waiting for the clone in progress to finish before stopping");
	pthread_join(job->thread, NULL);
	close_agg_fds(job, 0);
	for (unsigned k = 0; k < job->count; k++)
		if (!job->rc)
			cm_clone_destroy(&job->clones[k]);
	if (job->req) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(job->req), NULL, NULL);
		reply_line(job, "ERROR: the supervisor is stopping; clones discarded\n");
		evhttp_send_reply_end(job->req);
	}
	event_free(job->ev);
	close(job->pipe[0]);
	close(job->pipe[1]);
	if (job->host_fd >= 0)
		close(job->host_fd);
	sup->job = NULL;
	free(job);
}

void sup_on_overflow(void *arg, unsigned replica_id, uint64_t overflows)
{
	struct supervisor *sup = arg;
	struct proxy_replica_info info;
	struct sup_clone *c = NULL;
	char err[256], host[64];
	uint64_t buffer;

	for (unsigned i = 0; i < sup->nclones; i++)
		if (sup->clones[i]->replica_id == replica_id)
			c = sup->clones[i];
	if (!c || sup->cfg.overflow != SUP_OVERFLOW_RECLONE || sup->stopping)
		return;
	if (sup->job) {
		pr_info("clone %u overflowed again (%llu overflows); a clone is in progress, "
			"re-clone later",
			c->cm.id, (unsigned long long)overflows);
		return;
	}
	if (proxy_replica_info(sup->px, replica_id, &info) == 0) {
		struct sup_window *w = &sup->windows[sup->nwindows % 64];

		w->clone_id = c->cm.id;
		w->seconds = info.debug_window_s;
		sup->nwindows++;
		pr_info("clone %u overflowed: its debug window was %.2f s; replacing it with a "
			"fresh clone",
			c->cm.id, info.debug_window_s);
	}
	buffer = c->buffer;
	snprintf(host, sizeof(host), "%s", c->host);
	sup_clone_remove(sup, c, "overflowed (--overflow reclone)");
	sup->reclones++;
	if (sup_job_start(sup, 1, buffer, 1, host, NULL, NULL, err, sizeof(err)) < 0)
		pr_err("cannot re-clone: %s", err);
}
