/*
 * supervisor.c - the life of `doppel run`: start the service in its own
 * namespaces, wait until it listens, front it with the proxy, watch it and
 * its clones, and on exit stop everything it started.
 *
 * Order matters at start-up:
 *   1. take the admin socket and the listening port first, so that a second
 *      supervisor with the same name or port fails before touching anything;
 *   2. enter a private mount namespace: the tmpfs that holds CRIU images is
 *      mounted there, invisible to everyone else, and vanishes with us even if
 *      we are killed (images hold production's memory);
 *   3. launch the service (its namespaces are copied from ours, before the
 *      images tmpfs exists, so it never sees images);
 *   4. become a child subreaper: clones that `criu restore -d` leaves behind
 *      are re-parented to us, so we reap them and hear when they die.
 */
#define LOG_PREFIX "run"
#include "supervisor/sup-int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clonemgr/clonemgr.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"

#define READY_POLL_MS 50
#define ADOPT_POLL_MS 200 /* how often an adopted service is looked at */

void sup_config_defaults(struct sup_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	proxy_config_defaults(&cfg->proxy);
	cfg->overflow = SUP_OVERFLOW_DROP;
	cfg->ready_timeout_ns = 60 * NSEC_PER_SEC;
	cfg->stop_timeout_ns = 10 * NSEC_PER_SEC;
	cfg->run_dir = SUP_RUN_DIR;
	cfg->clone_nice = 10;
	cfg->clone_cpu_weight = 10;
}

int sup_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SUP_NAME_MAX || name[0] == '.' || name[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return 0;
	return 1;
}

void sup_admin_addr(const char *run_dir, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "unix:%s/%s.sock", run_dir ? run_dir : SUP_RUN_DIR, name);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[CM_PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

void sup_shutdown(struct supervisor *sup, int code, const char *why)
{
	struct timeval tv = {0, 50 * 1000}; /* lets a last admin reply go out */

	if (sup->stopping)
		return;
	sup->stopping = 1;
	sup->exit_code = code;
	snprintf(sup->stop_reason, sizeof(sup->stop_reason), "%s", why);
	if (code)
		pr_err("stopping: %s", why);
	else
		pr_info("stopping: %s", why);
	event_base_loopexit(sup->base, &tv);
}

/* ---- signals and children ---- */

static void drain_service_log(struct supervisor *sup);

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	sup_shutdown(arg, 0, sig == SIGINT ? "received SIGINT" : "received SIGTERM");
}

/* SIGHUP: new TLS certificates for new handshakes. */
static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	struct supervisor *sup = arg;
	char err[512];

	(void)sig;
	(void)what;
	if (!sup->px)
		return;
	if (proxy_tls_reload(sup->px, err, sizeof(err)) < 0)
		pr_warn("SIGHUP: certificates not reloaded: %s; the loaded ones stay", err);
}

void sup_describe_status(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "status 0x%x", st);
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct supervisor *sup = arg;
	char how[64], why[400];
	int st;

	(void)sig;
	(void)what;
	if (sup->svc.pid > 0 && waitpid(sup->svc.pid, &st, WNOHANG) == sup->svc.pid) {
		sup_describe_status(st, how, sizeof(how));
		pr_err("the service (pid %d) exited: %s", sup->svc.pid, how);
		sup->svc.pid = 0;
		drain_service_log(sup);
		snprintf(why, sizeof(why), "the service exited (%s)%s%s", how,
			 sup->svc_last[0] ? "; its last words: " : "", sup->svc_last);
		sup_shutdown(sup, 1, why);
	}
	sup_clones_reap(sup);
}

/* ---- the service's output ---- */

static void service_line(struct supervisor *sup)
{
	pr_info("service: %.*s", (int)sup->svc_line_len, sup->svc_line);
	if (sup->svc_line_len)
		snprintf(sup->svc_last, sizeof(sup->svc_last), "%.*s", (int)sup->svc_line_len,
			 sup->svc_line);
	sup->svc_line_len = 0;
}

/* Read one chunk of the service's output; logs complete lines. Returns read()'s result. */
static ssize_t read_service_log(struct supervisor *sup)
{
	char buf[4096];
	ssize_t n = read(sup->svc.log_fd, buf, sizeof(buf));

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			if (sup->svc_log_ev)
				event_del(sup->svc_log_ev);
			if (sup->svc_line_len)
				service_line(sup);
		}
		return n;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n' || sup->svc_line_len == sizeof(sup->svc_line) - 1) {
			service_line(sup);
			if (buf[i] == '\n')
				continue;
		}
		sup->svc_line[sup->svc_line_len++] = buf[i];
	}
	return n;
}

static void on_service_log(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	read_service_log(arg);
}

/* Read whatever the service wrote before it died (the pipe is non-blocking). */
static void drain_service_log(struct supervisor *sup)
{
	if (sup->svc.log_fd < 0)
		return;
	while (read_service_log(sup) > 0)
		;
}

/* ---- readiness ---- */

static void sd_notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sun.sun_path))
		return;
	strcpy(sun.sun_path, path);
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sun, len) < 0)
		pr_warn("cannot notify systemd: %s", strerror(errno));
	close(fd);
}

static int become_ready(struct supervisor *sup, char *err, size_t errlen)
{
	struct proxy_hooks hooks = {sup_on_overflow, sup};
	struct proxy_config pc = sup->cfg.proxy;
	char addr[96], perr[128], b[32];
	int rc;

	snprintf(addr, sizeof(addr), "%s:%d", sup->svc.adopted ? sup->svc.addr : "127.0.0.1",
		 sup->cfg.port);
	if (netaddr_parse(addr, &pc.backend, perr, sizeof(perr)) < 0) {
		snprintf(err, errlen, "%s", perr);
		return -EINVAL;
	}
	pc.backend.netns_fd = sup->svc.netns_fd;
	rc = proxy_new(sup->base, &pc, &sup->px, err, errlen);
	if (rc)
		return rc;
	sup->cfg.proxy.listen_fd = -1; /* the proxy owns it now */
	proxy_set_hooks(sup->px, &hooks);
	/* recording: production and every clone, started now or live (doppel record) */
	sup->tap = rec_tap_new(NULL, &pc.backend);
	if (!sup->tap) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	{
		struct proxy_observer ob;
		char dir[CM_PATH_MAX + 16];

		rec_tap_observer(sup->tap, &ob);
		proxy_set_observer(sup->px, &ob);
		if (sup->cfg.record_dir) {
			struct rec_config rc_rec = sup->cfg.record;

			rc_rec.dir = sup->cfg.record_dir;
			rc = rec_tap_start(sup->tap, &rc_rec, err, errlen);
			if (rc)
				return rc;
		}
		snprintf(dir, sizeof(dir), "%s/record", sup->work_dir);
		sup->rroutes = rec_routes_add(sup->adm, sup->px, sup->tap, &sup->cfg.record,
					      sup->cfg.record_dir ? sup->cfg.record_dir : dir);
	}
	if (sup->cfg.capture_iface) {
		struct cap_config cc = {.iface = sup->cfg.capture_iface,
					.addr = sup->svc.addr,
					.port = sup->cfg.port,
					.buffer = sup->cfg.capture_buffer};

		struct proxy_observer sink;

		proxy_mirror_observer(sup->px, &sink);
		rc = cap_new(sup->base, &sink, &cc, &sup->cap, err, errlen);
		if (rc)
			return rc;
	}
	sup->ready = 1;
	sup->ready_ns = clock_coarse_ns();
	pr_info("ready: service %s (pid %d%s) listens on %s in %s namespaces; clients "
		"connect to %s; buffer %s per connection and clone; admin %s%s%s",
		sup->cfg.name, sup->svc.pid, sup->svc.adopted ? ", adopted" : "", addr,
		sup->svc.adopted ? "the host's" : "its own", pc.listen.text,
		size_format(pc.buffer, b, sizeof(b)), sup->admin_path,
		sup->cfg.admin_addr ? ", status page http://" : "",
		sup->cfg.admin_addr ? sup->cfg.admin_addr : "");
	sd_notify_ready();
	return 0;
}

static void on_ready_timer(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor *sup = arg;
	struct timeval tv = {0, READY_POLL_MS * 1000};
	char err[512];

	(void)fd;
	(void)what;
	if (sup->svc.adopted && !sup->stopping) {
		/* not our child: no SIGCHLD; watch it instead */
		if (!cm_service_alive(&sup->svc)) {
			snprintf(err, sizeof(err), "the adopted service (pid %d) exited",
				 sup->svc.pid);
			sup->svc.pid = 0;
			sup_shutdown(sup, 1, err);
			return;
		}
		if (!sup->ready && become_ready(sup, err, sizeof(err)) < 0) {
			sup_shutdown(sup, 1, err);
			return;
		}
		tv.tv_usec = ADOPT_POLL_MS * 1000;
		evtimer_add(sup->ready_timer, &tv);
		return;
	}
	if (sup->stopping || sup->ready)
		return;
	if (!cm_service_alive(&sup->svc))
		return; /* SIGCHLD will say why */
	if (cm_wait_listen(sup->svc.netns_fd, sup->cfg.port, 0, sup->svc.pid) == 0) {
		if (become_ready(sup, err, sizeof(err)) < 0)
			sup_shutdown(sup, 1, err);
		return;
	}
	if (clock_coarse_ns() - sup->start_ns > sup->cfg.ready_timeout_ns) {
		snprintf(err, sizeof(err),
			 "the service did not listen on 127.0.0.1:%d (inside its namespace) within "
			 "%.0f s; "
			 "check --port and the service's log above",
			 sup->cfg.port, (double)sup->cfg.ready_timeout_ns / 1e9);
		sup_shutdown(sup, 1, err);
		return;
	}
	evtimer_add(sup->ready_timer, &tv);
}

/* ---- start and stop ---- */

/* Before the service runs: its upstreams' listeners inside its namespace. */
static int prepare_service(void *arg, int netns_fd, char *err, size_t errlen)
{
	struct supervisor *sup = arg;

	return sup->agg ? agg_start_production(sup->agg, netns_fd, err, errlen) : 0;
}

/* The upstream capture of an adopted service records its own connections only. */
static int owns_conn(void *arg, const unsigned char cip[16], uint16_t cport)
{
	const struct supervisor *sup = arg;

	switch (cm_adopt_owns_conn(sup->svc.pid, cip + 12, cport)) {
	case 1:
		return CAP_OURS;
	case 0:
		return CAP_NOT_OURS;
	default:
		return CAP_OWNER_UNKNOWN;
	}
}

static int setup_images(struct supervisor *sup, char *err, size_t errlen)
{
	int rc;

	if (sup->svc.adopted && !sup->cfg.images_dir) {
		/*
		 * An adopted service shares our mount namespace: a private tmpfs
		 * would be its too. Images go to a 0700 directory, deleted after
		 * each restore.
		 */
		snprintf(sup->images_base, sizeof(sup->images_base), "%s/%s.images",
			 sup->cfg.run_dir, sup->cfg.name);
		rc = mkdir_p(sup->images_base, 0700);
		if (rc)
			snprintf(err, errlen, "cannot create %s: %s", sup->images_base,
				 strerror(-rc));
		return rc;
	}
	if (sup->cfg.images_dir) {
		snprintf(sup->images_base, sizeof(sup->images_base), "%s/%s", sup->cfg.images_dir,
			 sup->cfg.name);
		rc = mkdir_p(sup->images_base, 0700);
		if (rc)
			snprintf(err, errlen, "cannot create %s: %s", sup->images_base,
				 strerror(-rc));
		return rc;
	}
	snprintf(sup->images_base, sizeof(sup->images_base), "%s/%s.images", sup->cfg.run_dir,
		 sup->cfg.name);
	rc = mkdir_p(sup->images_base, 0700);
	if (rc) {
		snprintf(err, errlen, "cannot create %s: %s", sup->images_base, strerror(-rc));
		return rc;
	}
	if (mount("doppel-images", sup->images_base, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0700") < 0) {
		rc = -errno;
		snprintf(err, errlen,
			 "cannot mount a tmpfs for images on %s: %s (use --images DIR)",
			 sup->images_base, strerror(errno));
		return rc;
	}
	sup->images_tmpfs = 1;
	return 0;
}

static void teardown(struct supervisor *sup)
{
	if (sup->px)
		proxy_stop_accepting(sup->px);
	sup_job_abandon(sup);
	if (sup->cap) {
		struct sbuf sb;

		sbuf_init(&sb);
		cap_status_text(sup->cap, &sb);
		pr_info("%.*s", (int)(sb.len ? sb.len - 1 : 0), sb.buf);
		sbuf_free(&sb);
		cap_free(sup->cap); /* before the proxy: its mirrored connections are the proxy's */
		sup->cap = NULL;
	}
	sup_clones_remove_all(sup, "the supervisor is stopping");
	if (sup->px) {
		struct sbuf sb;

		sbuf_init(&sb);
		proxy_status_text(sup->px, &sb);
		pr_info("final status:\n%s", sb.buf);
		sbuf_free(&sb);
		proxy_free(sup->px);
		sup->px = NULL;
	}
	rec_tap_free(sup->tap);
	sup->tap = NULL;
	if (sup->svc.pid > 0 && sup->svc.adopted) {
		pr_info("service (pid %d) adopted, not ours: left running", sup->svc.pid);
		sup->svc.pid = 0;
	}
	if (sup->svc.pid > 0) {
		int sig =
			cm_stop_init(sup->svc.pid, (int)(sup->cfg.stop_timeout_ns / NSEC_PER_MSEC));

		pr_info("service (pid %d) stopped with %s", sup->svc.pid, strsignal(sig));
		sup->svc.pid = 0;
	}
	if (sup->svc_recorded)
		sup_service_forget(&sup->cfg);
	if (sup->svc_log_ev) {
		drain_service_log(sup); /* its last words */
		event_free(sup->svc_log_ev);
		sup->svc_log_ev = NULL;
	}
	cm_service_free(&sup->svc);
	agg_free(sup->agg);
	sup->agg = NULL;
	if (sup->adm) {
		admin_free(sup->adm);
		sup->adm = NULL;
	}
	if (sup->adm_tcp) {
		admin_free(sup->adm_tcp);
		sup->adm_tcp = NULL;
	}
	rec_routes_free(sup->rroutes);
	sup->rroutes = NULL;
	if (sup->images_tmpfs) {
		umount2(sup->images_base, MNT_DETACH);
		rmdir(sup->images_base);
	} else if (sup->images_base[0] && !sup->cfg.images_dir) {
		rmdir(sup->images_base);
	}
	rmdir(sup->work_dir);
	if (sup->cfg.proxy.listen_fd >= 0)
		close(sup->cfg.proxy.listen_fd);
	if (sup->ready_timer)
		event_free(sup->ready_timer);
	if (sup->sigint)
		event_free(sup->sigint);
	if (sup->sigterm)
		event_free(sup->sigterm);
	if (sup->sighup)
		event_free(sup->sighup);
	if (sup->sigchld)
		event_free(sup->sigchld);
}

int sup_run(const struct sup_config *cfg, char *err, size_t errlen)
{
	struct supervisor *sup;
	struct cm_service_spec spec;
	struct timeval now = {0, 0};
	char addr[CM_PATH_MAX + 8];
	ssize_t n;
	int rc, code;

	if (geteuid() != 0) {
		snprintf(
			err, errlen,
			"doppel run must run as root: it creates namespaces, mounts and runs CRIU");
		return 2;
	}
	sup = calloc(1, sizeof(*sup));
	if (!sup) {
		snprintf(err, errlen, "out of memory");
		return 1;
	}
	sup->cfg = *cfg;
	sup->svc.netns_fd = sup->svc.log_fd = -1;
	sup->next_clone_id = 1;
	sup->start_ns = clock_coarse_ns();
	n = readlink("/proc/self/exe", sup->exe, sizeof(sup->exe) - 1);
	if (n <= 0) {
		snprintf(err, errlen, "cannot find my own executable: %s", strerror(errno));
		free(sup);
		return 1;
	}
	sup->exe[n] = '\0';
	if (cm_criu_find(cfg->criu, &sup->criu, sup->criu_err, sizeof(sup->criu_err)) == 0)
		sup->have_criu = 1;
	else
		pr_warn("%s; `doppel clone %s` will fail until then", sup->criu_err, cfg->name);
	if (cfg->work_dir)
		snprintf(sup->work_dir, sizeof(sup->work_dir), "%s", cfg->work_dir);
	else
		snprintf(sup->work_dir, sizeof(sup->work_dir), "%s/%s", SUP_WORK_DIR, cfg->name);

	sup->base = event_base_new();
	if (!sup->base) {
		snprintf(err, errlen, "cannot create the event loop");
		free(sup);
		return 1;
	}
	code = 1;
	/* 1. Admin socket and listening port, before anything is started. */
	rc = mkdir_p(cfg->run_dir, 0755);
	if (rc) {
		snprintf(err, errlen, "cannot create %s: %s", cfg->run_dir, strerror(-rc));
		goto out;
	}
	sup_admin_addr(cfg->run_dir, cfg->name, addr, sizeof(addr));
	snprintf(sup->admin_path, sizeof(sup->admin_path), "%s", addr + 5);
	rc = admin_new(sup->base, addr, &sup->adm, err, errlen);
	if (rc) {
		code = rc == -EADDRINUSE ? 2 : 1;
		goto out;
	}
	/* The name is ours now: what a killed supervisor of it left. */
	rc = sup_leftovers_check(cfg, err, errlen);
	if (rc) {
		code = 2;
		goto out;
	}
	sup_routes_install(sup);
	if (cfg->admin_addr) {
		rc = admin_new(sup->base, cfg->admin_addr, &sup->adm_tcp, err, errlen);
		if (rc) {
			code = 2;
			goto out;
		}
		sup_routes_install_readonly(sup, sup->adm_tcp);
	}
	if (cfg->nupstreams) {
		rc = agg_new(sup->base, cfg->upstream_budget, cfg->upstream_wait_ns, &sup->agg);
		for (unsigned i = 0; !rc && i < cfg->nupstreams; i++)
			rc = agg_add_upstream(sup->agg, cfg->upstreams[i], err, errlen);
		if (rc) {
			code = 2;
			goto out;
		}
	}
	sup->cfg.proxy.listen_fd = netaddr_listen(&cfg->proxy.listen, 1024, 0, err, errlen);
	if (sup->cfg.proxy.listen_fd < 0) {
		code = 2;
		goto out;
	}
	rc = mkdir_p(sup->work_dir, 0700);
	if (rc) {
		snprintf(err, errlen, "cannot create %s: %s", sup->work_dir, strerror(-rc));
		goto out;
	}
	if (cfg->adopt_pid > 0) {
		/* doppel adopt: the service runs already, in the host's namespaces */
		rc = cm_service_adopt(cfg->adopt_pid, cfg->name, cfg->state_dirs, cfg->nstate,
				      cfg->port, &sup->svc, err, errlen);
		if (rc) {
			code = 2;
			goto out;
		}
		if (sup->agg) {
			rc = agg_start_capture(sup->agg, NULL, owns_conn, sup, err, errlen);
			if (rc) {
				code = rc == -EINVAL || rc == -EAFNOSUPPORT ? 2 : 1;
				goto out;
			}
		}
		rc = setup_images(sup, err, errlen);
		if (rc)
			goto out;
		goto watch;
	}
	/* 2. A mount namespace of our own. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(err, errlen, "cannot make a private mount namespace: %s", strerror(errno));
		goto out;
	}
	/* 3. The service. */
	memset(&spec, 0, sizeof(spec));
	spec.name = cfg->name;
	spec.argv = cfg->argv;
	spec.state_dirs = cfg->state_dirs;
	spec.nstate = cfg->nstate;
	spec.chdir = cfg->chdir;
	spec.keep_cgroup_mounts = cfg->keep_cgroup_mounts;
	spec.prepare = prepare_service;
	spec.prepare_arg = sup;
	rc = cm_service_launch(&spec, &sup->svc, err, errlen);
	if (rc)
		goto out;
	sup_service_record(cfg, sup->svc.pid);
	sup->svc_recorded = 1;
	rc = setup_images(sup, err, errlen);
	if (rc)
		goto out;
	/* 4. Restored clones become our children. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		pr_warn("cannot become a child subreaper (%s): clones will not be reaped by doppel",
			strerror(errno));

	fcntl(sup->svc.log_fd, F_SETFL, O_NONBLOCK);
	sup->svc_log_ev =
		event_new(sup->base, sup->svc.log_fd, EV_READ | EV_PERSIST, on_service_log, sup);
	event_add(sup->svc_log_ev, NULL);
watch:
	sup->sigint = evsignal_new(sup->base, SIGINT, on_stop_signal, sup);
	sup->sigterm = evsignal_new(sup->base, SIGTERM, on_stop_signal, sup);
	sup->sigchld = evsignal_new(sup->base, SIGCHLD, on_sigchld, sup);
	event_add(sup->sigint, NULL);
	event_add(sup->sigterm, NULL);
	sup->sighup = evsignal_new(sup->base, SIGHUP, on_reload_signal, sup);
	event_add(sup->sighup, NULL);
	event_add(sup->sigchld, NULL);
	sup->ready_timer = evtimer_new(sup->base, on_ready_timer, sup);
	evtimer_add(sup->ready_timer, &now);
	/* The service may have died before SIGCHLD was watched. */
	on_sigchld(SIGCHLD, EV_SIGNAL, sup);

	event_base_dispatch(sup->base);
	code = sup->exit_code;
	if (code)
		snprintf(err, errlen, "%s", sup->stop_reason);
out:
	teardown(sup);
	event_base_free(sup->base);
	free(sup);
	return code;
}
