/*
 * jobs.c - clone jobs. cm_clone_make() blocks (CRIU, file copies), so it
 * runs on a worker thread; the event loop keeps serving production. The
 * worker sends its progress lines through a pipe, then an EOT byte; the loop
 * thread forwards the lines to whoever asked (a streamed HTTP reply), joins
 * the worker, and hands the new clones to sup_clone_attach() (clones.c).
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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/netns.h"
#include "common/size.h"

#define JOB_DONE '\004'
#define JOB_FREEZING '\001' /* production is about to be frozen: hold its input */
#define JOB_THAWED '\002'   /* CRIU returned: production may have its input */
#define HOLD_ACK_MS 2000    /* the freeze waits this long at most for the loop */

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

/*
 * Runs on the worker around the final dump (cm_clone_opts.freezing): the
 * loop holds production's input from just before the freeze until CRIU
 * returns, and records the connections' backlog for joins (proxy_hold()).
 * The freeze waits for the loop's word, never longer than HOLD_ACK_MS.
 */
static void job_freezing(void *arg, int frozen_next)
{
	struct sup_job *job = arg;
	char m = frozen_next ? JOB_FREEZING : JOB_THAWED, ack;
	struct pollfd p = {.fd = job->ack[0], .events = POLLIN};

	job_write(job, &m, 1);
	if (frozen_next && poll(&p, 1, HOLD_ACK_MS) == 1 && read(job->ack[0], &ack, 1) < 0)
		pr_debug("no word from the loop before the freeze: %s", strerror(errno));
}

/* Runs on the worker: the clone's upstream listeners, before it is restored. */
static int job_prepare_netns(void *arg, unsigned index, int netns_fd, char *err, size_t errlen)
{
	struct sup_job *job = arg;
	int rc;

	if (!job->sup->agg || index >= SUP_MAX_CLONES)
		return 0;
	for (unsigned i = 0; index < job->agg_ready && i < agg_upstreams(job->sup->agg); i++)
		if (job->agg_fds[index][i] >= 0) {
			close(job->agg_fds[index]
					  [i]); /* of an earlier try at this clone's restore */
			job->agg_fds[index][i] = -1;
		}
	rc = agg_clone_listen(job->sup->agg, netns_fd, job->agg_fds[index], err, errlen);
	if (rc == 0 && index + 1 > job->agg_ready)
		job->agg_ready = index + 1;
	return rc;
}

/*
 * Runs on the worker, before each clone is restored (--join-open): its ends
 * of the proxy's connections to production that were open at the freeze.
 */
static int job_peers(void *arg, unsigned index, int netns_fd, const struct tcp_end *ends,
		     unsigned n, char *err, size_t errlen)
{
	struct sup_job *job = arg;
	unsigned made = 0;

	if (index >= SUP_MAX_CLONES || !job->sup->px)
		return 0;
	proxy_peers_free(job->peers[index]);
	job->peers[index] = proxy_peers_make(job->sup->px, netns_fd, ends, n, &made);
	if (job->sup->agg) {
		unsigned up = 0;

		agg_peers_free(job->agg_peers[index]);
		job->agg_peers[index] = agg_peers_make(job->sup->agg, netns_fd, ends, n, &up);
		made += up;
	}
	if (!job->peers[index] || (job->sup->agg && !job->agg_peers[index])) {
		snprintf(err, errlen, "out of memory making the clone's ends of %u connections", n);
		return -ENOMEM;
	}
	return (int)made;
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

/* The job's one teardown: its reply, its event, pipe and host netns, itself. */
static void job_free(struct supervisor *sup, struct sup_job *job)
{
	if (job->req) {
		evhttp_connection_set_closecb(evhttp_request_get_connection(job->req), NULL, NULL);
		evhttp_send_reply_end(job->req);
	}
	close_agg_fds(job, 0); /* those of clones that were not attached */
	for (unsigned k = 0; k < SUP_MAX_CLONES; k++) {
		proxy_peers_free(job->peers[k]);
		agg_peers_free(job->agg_peers[k]);
	}
	if (job->ev)
		event_free(job->ev);
	if (job->pipe[0] >= 0)
		close(job->pipe[0]);
	if (job->pipe[1] >= 0)
		close(job->pipe[1]);
	for (int i = 0; i < 2; i++)
		if (job->ack[i] >= 0)
			close(job->ack[i]);
	if (job->host_fd >= 0)
		close(job->host_fd);
	if (sup->job == job)
		sup->job = NULL;
	free(job);
}

/* A line for whoever asked for the clones (sup_clone_spec.report). */
static void report_line(void *arg, const char *line)
{
	reply_line(arg, "%s\n", line);
}

/* Hand each clone the worker made to sup_clone_attach(); say how it went. */
static void attach_all(struct supervisor *sup, struct sup_job *job)
{
	unsigned attached = 0;
	char sz[32], err[512];

	for (unsigned k = 0; k < job->count; k++) {
		struct sup_clone_spec spec = {
			.cm = &job->clones[k],
			.dump = job->stats,
			.buffer = job->buffer,
			.host = job->host,
			.host_fd = job->host_fd,
			.host_addr = job->host_addr,
			.agg_fds = sup->agg ? job->agg_fds[job->clones[k].id - job->opts.first_id]
					    : NULL,
			.peers = &job->peers[job->clones[k].id - job->opts.first_id],
			.agg_peers = &job->agg_peers[job->clones[k].id - job->opts.first_id],
			.control = job->control,
			.keep = job->keep[0] ? job->keep : NULL,
			.asked = job->asked,
			.report = report_line,
			.report_arg = job,
		};

		if (sup_clone_attach(sup, &spec, err, sizeof(err)) < 0) {
			pr_err("%s", err);
			reply_line(job, "ERROR: %s\n", err);
			continue;
		}
		attached++;
		reply_line(job,
			   "clone %u attached%s%s%s: it receives a copy of every new connection "
			   "(buffer %s per connection)\n",
			   job->clones[k].id, job->host[0] ? " on host " : "", job->host,
			   job->host[0] ? " through its network" : "",
			   size_format(job->buffer ? job->buffer : sup->cfg.proxy.buffer, sz,
				       sizeof(sz)));
	}
	pr_info("%u clone(s) ready; production frozen %.1f ms; total %.0f ms", attached,
		(double)job->stats.frozen_us / 1000, (double)job->stats.total_us / 1000);
	reply_line(job,
		   "OK frozen_ms=%.1f total_ms=%.0f clones=", (double)job->stats.frozen_us / 1000,
		   (double)job->stats.total_us / 1000);
	for (unsigned k = 0; k < job->count; k++)
		reply_line(job, "%s%u", k ? "," : "", job->clones[k].id);
	reply_line(job, "\n");
}

/* The worker is done: join it and take its result. */
static void job_finish(struct supervisor *sup, struct sup_job *job)
{
	pthread_join(job->thread, NULL);
	if (sup->px)
		proxy_hold(sup->px, 0); /* in case the worker died between its two words */
	if (sup->agg && job->opts.peers)
		agg_hold(sup->agg, 0);
	if (job->rc) {
		pr_err("clone failed: %s", job->err);
		reply_line(job, "ERROR: %s\n", job->err);
	} else if (sup->stopping || !sup->px) {
		for (unsigned k = 0; k < job->count; k++)
			cm_clone_destroy(&job->clones[k]);
		reply_line(job, "ERROR: the supervisor is stopping; clones discarded\n");
	} else {
		attach_all(sup, job);
	}
	if (sup->px)
		proxy_backlog_end(sup->px); /* the new clones have joined what they could */
	if (sup->agg && job->opts.peers)
		agg_hold_end(sup->agg);
	job_free(sup, job);
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
		if (buf[i] == JOB_FREEZING || buf[i] == JOB_THAWED) {
			char ack = 1;

			if (sup->px)
				proxy_hold(sup->px, buf[i] == JOB_FREEZING);
			if (sup->agg && job->opts.peers) /* its upstream connections continue too */
				agg_hold(sup->agg, buf[i] == JOB_FREEZING);
			if (buf[i] == JOB_FREEZING && write(job->ack[1], &ack, 1) < 0)
				pr_debug("cannot tell the worker: %s", strerror(errno));
			continue;
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
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
				  SUP_HOST_MAX);
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

/* Can a job start now? 0, or -errno with the reason. */
static int job_check(struct supervisor *sup, unsigned count, char *err, size_t errlen)
{
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
	return 0;
}

/* Where this dump's images go: under --images DIR, or the supervisor's own dir. */
static int job_images(struct supervisor *sup, struct sup_job *job, const char *images, char *err,
		      size_t errlen)
{
	struct stat st;

	if (!images || !*images) {
		snprintf(job->images, sizeof(job->images), "%s/dump-%u", sup->images_base,
			 sup->next_clone_id);
		return 0;
	}
	if (images[0] != '/' || stat(images, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen,
			 "--images %s: not an existing directory (give an absolute path)", images);
		return -EINVAL;
	}
	snprintf(job->images, sizeof(job->images), "%s/%s-dump-%u", images, sup->cfg.name,
		 sup->next_clone_id);
	return 0;
}

/*
 * The job's limits: those of the request, else doppel run's, else the
 * default rule (cm_clone_opts). Limits given explicitly anywhere are required.
 */
static void job_fill_limits(struct supervisor *sup, struct sup_job *job)
{
	const struct sup_config *cfg = &sup->cfg;
	const struct sup_limits *a = &job->asked;
	int asked = a->memory || a->cpu_weight || a->pids;

	snprintf(job->cgroup_base, sizeof(job->cgroup_base), "doppel/%s", cfg->name);
	job->opts.cgroup_base = cfg->no_clone_limits && !asked ? NULL : job->cgroup_base;
	job->opts.limits.memory = a->memory ? a->memory : cfg->clone_memory;
	job->opts.limits.cpu_weight =
		(unsigned)(a->cpu_weight ? a->cpu_weight : cfg->clone_cpu_weight);
	job->opts.limits.pids = (uint64_t)(a->pids ? a->pids : cfg->clone_pids);
	job->opts.limits_required = asked || cfg->clone_limits_given;
}

static void job_fill_opts(struct supervisor *sup, struct sup_job *job)
{
	job->opts.criu = &sup->criu;
	job->opts.work_dir = sup->work_dir;
	job->opts.images_dir = job->images;
	job->opts.count = job->count;
	job->opts.port = sup->cfg.port;
	job->opts.first_id = sup->next_clone_id;
	job->opts.ready_timeout_ms = 30 * 1000;
	job->opts.doppel_exe = sup->exe;
	job->opts.nice = sup->cfg.clone_nice;
	job_fill_limits(sup, job);
	job->opts.host_netns_fd = job->host_fd;
	job->opts.prepare_netns = job_prepare_netns;
	job->opts.prepare_arg = job;
	if (sup->px && sup->cfg.proxy.join_open) {
		/* production's input is held around the freeze (proxy_hold) */
		job->opts.freezing = job_freezing;
		job->opts.freezing_arg = job;
	}
	if (sup->px && sup->cfg.proxy.join_open && !sup->cfg.proxy.join_no_exact &&
	    !sup->svc.adopted) {
		job->opts.peers = job_peers;
		job->opts.peers_arg = job;
	}
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
}

/* Stream the job's progress to req (the client of POST /clone). */
static void job_reply_start(struct sup_job *job, struct evhttp_request *req)
{
	job->req = req;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_send_reply_start(req, 200, "OK");
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_client_gone, job);
}

int sup_job_start(struct supervisor *sup, unsigned count, uint64_t buffer, int reclone,
		  const char *host, const char *images, struct evhttp_request *req, char *err,
		  size_t errlen)
{
	return sup_job_start_ex(sup, count, buffer, reclone, host, images, 0, NULL, NULL,
				CM_PREDUMP_AUTO, req, err, errlen);
}

int sup_job_start_ex(struct supervisor *sup, unsigned count, uint64_t buffer, int reclone,
		     const char *host, const char *images, int control, const char *keep,
		     const struct sup_limits *limits, enum cm_predump predump,
		     struct evhttp_request *req, char *err, size_t errlen)
{
	struct sup_job *job;
	int rc;

	rc = job_check(sup, count, err, errlen);
	if (rc)
		return rc;
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
	if (limits)
		job->asked = *limits;
	if (keep && *keep)
		snprintf(job->keep, sizeof(job->keep), "%s", keep);
	job->host_fd = job->pipe[0] = job->pipe[1] = job->ack[0] = job->ack[1] = -1;
	if (host && *host && (rc = resolve_host(job, host, err, errlen)) < 0)
		goto fail;
	if (pipe2(job->pipe, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	fcntl(job->pipe[0], F_SETFL, O_NONBLOCK);
	if (pipe2(job->ack, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	rc = job_images(sup, job, images, err, errlen);
	if (rc)
		goto fail;
	job_fill_opts(sup, job);
	job->opts.predump = predump;
	job->ev = event_new(sup->base, job->pipe[0], EV_READ | EV_PERSIST, on_job_pipe, job);
	if (!job->ev) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	event_add(job->ev, NULL);
	rc = pthread_create(&job->thread, NULL, job_thread, job);
	if (rc) {
		snprintf(err, errlen, "cannot start a worker thread: %s", strerror(rc));
		rc = -rc;
		goto fail;
	}
	sup->next_clone_id += count;
	if (req)
		job_reply_start(job, req);
	sup->job = job;
	pr_info("making %u clone(s) of %s%s", count, sup->cfg.name,
		reclone ? " (re-clone after overflow)" : "");
	return 0;
fail:
	job_free(sup, job);
	return rc;
}

void sup_job_abandon(struct supervisor *sup)
{
	struct sup_job *job = sup->job;

	if (!job)
		return;
	pr_info("waiting for the clone in progress to finish before stopping");
	pthread_join(job->thread, NULL);
	for (unsigned k = 0; k < job->count; k++)
		if (!job->rc)
			cm_clone_destroy(&job->clones[k]);
	reply_line(job, "ERROR: the supervisor is stopping; clones discarded\n");
	job_free(sup, job);
}
