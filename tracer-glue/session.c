/*
 * session.c - one `doppel attach` session as an event-driven job (tmux job.c
 * style): the tool is a child whose stdout and stderr come back over a pipe
 * read by a bufferevent, its exit arrives as a SIGCHLD signal event, and a
 * start of the tool (a "run") is over only when both its exit and the end
 * of its output were seen. The governor is a timer that polls the clone's
 * state through the caller's callback and applies each step to the tool.
 *
 * A run per start: the restart method stops the tool at a cut and starts it
 * again at the restore, each start with its own pipe, so every run has an
 * end of output. The session ends when the current run exits (unless the
 * governor detached it), or on --duration or a stop signal; what the tool
 * wrote last is read until its EOF (at most DRAIN_NS: a descendant that
 * keeps the pipe open does not hold the session).
 *
 * Ownership: struct trc_session is allocated by trc_session_new() and freed
 * by trc_session_free(), on the caller's thread; it owns its event base,
 * its runs, the log file and perf's fifos. Runs are freed with the session.
 */
#define LOG_PREFIX "attach"
#include "tracer-glue/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/pidns.h"

#define TICK_NS (200 * NSEC_PER_MSEC)
#define KILL_NS (5 * NSEC_PER_SEC)  /* SIGINT at the end, SIGKILL this much later */
#define DRAIN_NS (1 * NSEC_PER_SEC) /* after the exit, wait this long for EOF */
#define PERF_ACK_MS 2000

/* One start of the tool. */
struct trc_run {
	struct trc_session *s;
	pid_t pid; /* > 0 until reaped */
	int exited;
	int eof;		 /* its output ended (always, when interactive) */
	struct bufferevent *out; /* the pipe's read end; NULL after EOF */
	struct trc_run *next;
};

struct trc_session {
	struct trc_session_config cfg;
	char dir[1200];
	int dir_fd, log_fd, ctl_fd, ack_fd;
	struct event_base *base;
	struct event *sigchld, *sigint, *sigterm, *sighup;
	struct event *tick, *deadline, *killer, *drain;
	struct sigaction old_int, old_quit; /* interactive: SIGINT, SIGQUIT ignored meanwhile */
	struct trc_run *runs;		    /* newest first */
	struct trc_run *cur;		    /* the tool now, or NULL */
	char **run_argv;		    /* expanded, as last started */
	int status;			    /* the last reaped run's wait status */
	int stopping;			    /* the tool was told to end */
	int ending;			    /* the session ends once its runs are over */
	struct trc_governor gov;
	pid_t pids[TRC_MAX_PIDS];
};

static void notice(struct trc_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void notice(struct trc_session *s, const char *fmt, ...)
{
	char text[1600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->cfg.ops && s->cfg.ops->notice)
		s->cfg.ops->notice(s->cfg.arg, text);
	else
		pr_info("%s", text);
}

static struct timeval tv_of(uint64_t ns)
{
	struct timeval tv = {(time_t)(ns / NSEC_PER_SEC), (suseconds_t)(ns % NSEC_PER_SEC / 1000)};

	return tv;
}

static void timer_in(struct event *ev, uint64_t ns)
{
	struct timeval tv = tv_of(ns);

	evtimer_add(ev, &tv);
}

/* ---- the tool's arguments ---- */

/* A copy of argv with `extra` inserted before argv[pos] (NULL-terminated; strdup'ed). */
static char **argv_insert(char *const *argv, unsigned pos, const char *extra)
{
	unsigned n = 0;
	char **v;

	while (argv[n])
		n++;
	v = calloc(n + 2, sizeof(*v));
	if (!v)
		return NULL;
	for (unsigned i = 0, j = 0; i <= n; i++) {
		if (i == pos)
			v[j++] = strdup(extra);
		if (i < n)
			v[j++] = strdup(argv[i]);
	}
	return v;
}

/* perf record with --control (fifos in its working directory, the output dir). */
static char **with_perf_control(char **argv)
{
	return argv_insert(argv, 2, "--control=fifo:perf-ctl.fifo,perf-ack.fifo");
}

/* strace -o FILE is truncated when strace starts again: append instead. */
static char **with_append(char **argv)
{
	int has_o = 0, has_a = 0;

	if (!strstr(argv[0], "strace"))
		return NULL;
	for (char **a = argv; *a; a++) {
		has_o |= strcmp(*a, "-o") == 0 || strncmp(*a, "--output", 8) == 0;
		has_a |= strcmp(*a, "-A") == 0;
	}
	return has_o && !has_a ? argv_insert(argv, 1, "-A") : NULL;
}

/*
 * The clone's main process. A clone of an adopted service (doppel adopt) has
 * an init of doppel's own (this program) at its root, and the service is
 * that init's child; other clones' init is the service itself.
 */
static pid_t main_pid(pid_t init, const pid_t *pids, int n)
{
	char a[64], b[PATH_MAX], c[PATH_MAX], line[512];
	ssize_t la, lb;

	snprintf(a, sizeof(a), "/proc/%d/exe", init);
	la = readlink(a, b, sizeof(b) - 1);
	lb = readlink("/proc/self/exe", c, sizeof(c) - 1);
	if (la <= 0 || lb <= 0 || la != lb || memcmp(b, c, (size_t)la) != 0)
		return init;
	for (int i = 1; i < n; i++) {
		FILE *f;
		char *rp;
		int ppid = 0;

		snprintf(a, sizeof(a), "/proc/%d/stat", pids[i]);
		f = fopen(a, "re");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f) && (rp = strrchr(line, ')')))
			sscanf(rp + 2, "%*c %d", &ppid);
		fclose(f);
		if (ppid == init)
			return pids[i];
	}
	return init;
}

/* The arguments for the clone's current processes, checked, with the method's additions. */
static int expand(struct trc_session *s, char ***out, char *err, size_t errlen)
{
	struct trc_subst sub;
	char **expanded = NULL, **final;
	int n = pidns_pids(s->cfg.clone_pid, s->pids, TRC_MAX_PIDS), rc;

	if (n <= 0) {
		snprintf(err, errlen, "clone %lu (pid %d) has no processes left", s->cfg.clone_id,
			 s->cfg.clone_pid);
		return -ESRCH;
	}
	sub.pid = main_pid(s->cfg.clone_pid, s->pids, n);
	sub.pids = s->pids;
	sub.npids = (unsigned)n;
	sub.dir = ".";
	rc = trc_expand_args(s->cfg.argv, &sub, &expanded);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	rc = trc_check_args(expanded, s->cfg.forbidden, s->cfg.nforbidden, err, errlen);
	if (rc) {
		trc_free_args(expanded);
		return rc;
	}
	final = s->cfg.method == TRC_GOV_CONTROL   ? with_perf_control(expanded)
		: s->cfg.method == TRC_GOV_RESTART ? with_append(expanded)
						   : NULL;
	if (final) {
		trc_free_args(expanded);
		expanded = final;
	}
	*out = expanded;
	return 0;
}

/* ---- runs: the tool's output and exit ---- */

static void maybe_end(struct trc_session *s);

/* Copy what the tool wrote to output.log and to the caller. */
static void on_output(struct bufferevent *bev, void *arg)
{
	struct trc_run *r = arg;
	struct trc_session *s = r->s;
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[8192];
	int n;

	while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0) {
		if (write(s->log_fd, buf, (size_t)n) < 0) {
			/* the log file is full or gone: the terminal still gets it */
		}
		if (s->cfg.ops && s->cfg.ops->output)
			s->cfg.ops->output(s->cfg.arg, buf, (size_t)n);
	}
}

static void on_output_end(struct bufferevent *bev, short what, void *arg)
{
	struct trc_run *r = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	on_output(bev, r);
	bufferevent_free(r->out);
	r->out = NULL;
	r->eof = 1;
	maybe_end(r->s);
}

static void run_free(struct trc_run *r)
{
	if (r->out)
		bufferevent_free(r->out);
	free(r);
}

/* Start the tool (again): a new run. */
static int run_start(struct trc_session *s, char *err, size_t errlen)
{
	struct trc_run *r;
	char **argv;
	int fds[2] = {-1, -1}, rc;

	rc = expand(s, &argv, err, errlen);
	if (rc)
		return rc;
	trc_free_args(s->run_argv);
	s->run_argv = argv;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->s = s;
	if (!s->cfg.interactive && pipe2(fds, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a pipe for the tool's output: %s",
			 strerror(-rc));
		free(r);
		return rc;
	}
	r->pid = trc_spawn(s->run_argv, s->cfg.clone_pid, s->dir_fd, fds[1], err, errlen);
	if (fds[1] >= 0)
		close(fds[1]); /* the tool holds the write end: its exit is our EOF */
	if (r->pid < 0) {
		rc = (int)r->pid;
		if (fds[0] >= 0)
			close(fds[0]);
		free(r);
		return rc;
	}
	if (fds[0] >= 0) {
		evutil_make_socket_nonblocking(fds[0]);
		r->out = bufferevent_socket_new(s->base, fds[0], BEV_OPT_CLOSE_ON_FREE);
		if (!r->out) {
			close(fds[0]);
			r->eof = 1; /* the log loses its output; the tool still runs */
			pr_warn("cannot watch the tool's output pid=%d", r->pid);
		} else {
			bufferevent_setcb(r->out, on_output, NULL, on_output_end, r);
			bufferevent_enable(r->out, EV_READ);
		}
	} else {
		r->eof = 1;
	}
	r->next = s->runs;
	s->runs = r;
	s->cur = r;
	return 0;
}

/* The current tool exited: does the session go on? */
static void tool_exited(struct trc_session *s, struct trc_run *r)
{
	if (r != s->cur)
		return;
	s->cur = NULL;
	/* a tool the governor detached comes back at the restore */
	if (s->stopping || !(s->cfg.method == TRC_GOV_RESTART && s->gov.lowered))
		s->ending = 1;
	maybe_end(s);
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct trc_session *s = arg;

	for (struct trc_run *r = s->runs; r; r = r->next) {
		int st;

		if (r->pid > 0 && waitpid(r->pid, &st, WNOHANG) == r->pid) {
			r->pid = 0;
			r->exited = 1;
			s->status = st;
			tool_exited(s, r);
		}
	}
}

static void on_drained(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(((struct trc_session *)arg)->base);
}

/* Once ending: over when every run has exited and its output ended (or waited DRAIN_NS). */
static void maybe_end(struct trc_session *s)
{
	int exited = 1, eof = 1;

	if (!s->ending)
		return;
	evtimer_del(s->tick);
	evtimer_del(s->deadline);
	for (struct trc_run *r = s->runs; r; r = r->next) {
		exited &= r->exited;
		eof &= r->eof;
	}
	if (exited && eof)
		event_base_loopbreak(s->base);
	else if (exited && !evtimer_pending(s->drain, NULL))
		timer_in(s->drain, DRAIN_NS);
}

/* ---- the end: --duration, a signal ---- */

static void on_killer(evutil_socket_t fd, short what, void *arg)
{
	struct trc_session *s = arg;

	if (s->cur && s->cur->pid > 0)
		kill(-s->cur->pid, SIGKILL); /* reaped by on_sigchld */
}

static void stop(struct trc_session *s)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	evtimer_del(s->tick);
	if (s->cur && s->cur->pid > 0) {
		kill(-s->cur->pid, SIGCONT);
		kill(-s->cur->pid, SIGINT);
		timer_in(s->killer, KILL_NS);
		return;
	}
	s->ending = 1;
	maybe_end(s);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	stop(arg);
}

/* ---- the governor ---- */

/* perf --control: write a command, wait (briefly) for its ack. */
static void perf_command(struct trc_session *s, const char *cmd)
{
	char ack[16];
	struct pollfd p = {.fd = s->ack_fd, .events = POLLIN};

	if (write(s->ctl_fd, cmd, strlen(cmd)) < 0)
		notice(s, "cannot send '%s' to perf: %s", cmd, strerror(errno));
	else if (poll(&p, 1, PERF_ACK_MS) == 1 && read(s->ack_fd, ack, sizeof(ack)) > 0)
		return;
	else
		notice(s, "perf did not acknowledge '%s'", cmd);
}

/* Apply a governor step to the running tool. */
static void govern(struct trc_session *s, enum trc_gov_step step, const struct trc_clone_state *st)
{
	const struct trc_governor *g = &s->gov;
	pid_t tool = s->cur ? s->cur->pid : 0;
	int lower = step == TRC_GOV_LOWER;
	char err[1024];

	if (lower && g->by_forecast)
		notice(s,
		       "governor: buffer %.0f%% and filling: overflow forecast in %.1f s (horizon "
		       "%.0f s): cutting tracing",
		       st->occupancy * 100, st->forecast_s, g->horizon_s);
	else
		notice(s, "governor: buffer %.0f%% %s: %s", st->occupancy * 100,
		       lower ? "above the high mark" : "below the low mark",
		       lower ? "cutting tracing" : "restoring full detail");
	switch (s->cfg.method) {
	case TRC_GOV_CONTROL:
		perf_command(s, lower ? "disable\n" : "enable\n");
		break;
	case TRC_GOV_PAUSE:
		if (tool > 0)
			kill(-tool, lower ? SIGSTOP : SIGCONT);
		break;
	case TRC_GOV_RESTART:
		if (lower && tool > 0)
			kill(-tool, SIGINT); /* detaches; reaped by on_sigchld */
		else if (!lower && tool <= 0 && run_start(s, err, sizeof(err)) < 0)
			notice(s, "cannot start the tool again: %s", err);
		break;
	default:
		break;
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct trc_session *s = arg;
	struct trc_clone_state st = {.forecast_s = -1};
	char err[1024] = "";
	enum trc_gov_step step;

	if (s->cfg.ops->poll(s->cfg.arg, &st, err, sizeof(err)) < 0) {
		notice(s, "the clone is gone: %s", err);
		if (s->cur && s->cur->pid > 0)
			kill(-s->cur->pid, SIGINT);
		return;
	}
	step = trc_gov_tick(&s->gov, st.occupancy, st.forecast_s, clock_now_ns());
	if (step != TRC_GOV_KEEP)
		govern(s, step, &st);
}

/* ---- the session ---- */

static int make_dir(struct trc_session *s, char *err, size_t errlen)
{
	const char *tool =
		strrchr(s->cfg.argv[0], '/') ? strrchr(s->cfg.argv[0], '/') + 1 : s->cfg.argv[0];
	char path[1400];
	time_t t = time(NULL);
	struct tm tm;
	int e;

	localtime_r(&t, &tm);
	snprintf(s->dir, sizeof(s->dir), "%s/attach-%04d%02d%02d-%02d%02d%02d-%s", s->cfg.clone_dir,
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 tool);
	if ((mkdir(s->dir, 0700) < 0 && errno != EEXIST) ||
	    (s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot create %s: %s", s->dir, strerror(e));
		return -e;
	}
	if (!s->cfg.interactive) {
		snprintf(path, sizeof(path), "%s/output.log", s->dir);
		s->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (s->log_fd < 0) {
			e = errno;
			snprintf(err, errlen, "cannot set up %s: %s", path, strerror(e));
			return -e;
		}
	}
	if (s->cfg.method == TRC_GOV_CONTROL) {
		char ctl[1300], ack[1300];

		snprintf(ctl, sizeof(ctl), "%s/perf-ctl.fifo", s->dir);
		snprintf(ack, sizeof(ack), "%s/perf-ack.fifo", s->dir);
		unlink(ctl);
		unlink(ack);
		if (mkfifo(ctl, 0600) < 0 || mkfifo(ack, 0600) < 0 ||
		    (s->ctl_fd = open(ctl, O_RDWR | O_CLOEXEC)) < 0 ||
		    (s->ack_fd = open(ack, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
			e = errno;
			snprintf(err, errlen, "cannot create perf's control fifos in %s: %s",
				 s->dir, strerror(e));
			return -e;
		}
	}
	return 0;
}

int trc_session_new(const struct trc_session_config *cfg, struct trc_session **out, char *err,
		    size_t errlen)
{
	struct trc_session *s = calloc(1, sizeof(*s));
	struct event_config *ec;
	int rc;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cfg = *cfg;
	s->dir_fd = s->log_fd = s->ctl_fd = s->ack_fd = -1;
	if (!s->cfg.tick_ns)
		s->cfg.tick_ns = TICK_NS;
	rc = make_dir(s, err, errlen);
	if (rc) {
		trc_session_free(s);
		return rc;
	}
	/* timers on CLOCK_MONOTONIC, as clock_now_ns(): --duration is exact, not coarse */
	ec = event_config_new();
	if (ec && event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER) == 0)
		s->base = event_base_new_with_config(ec);
	if (ec)
		event_config_free(ec);
	if (s->base) {
		s->sigchld = evsignal_new(s->base, SIGCHLD, on_sigchld, s);
		s->sigint = evsignal_new(s->base, SIGINT, on_stop, s);
		s->sigterm = evsignal_new(s->base, SIGTERM, on_stop, s);
		s->sighup = evsignal_new(s->base, SIGHUP, on_stop, s);
		s->tick = event_new(s->base, -1, EV_PERSIST, on_tick, s);
		s->deadline = evtimer_new(s->base, on_stop, s);
		s->killer = evtimer_new(s->base, on_killer, s);
		s->drain = evtimer_new(s->base, on_drained, s);
	}
	/* SIGCHLD is watched before the first tool is started: no exit is missed */
	if (!s->base || !s->sigchld || !s->sigint || !s->sigterm || !s->sighup || !s->tick ||
	    !s->deadline || !s->killer || !s->drain || event_add(s->sigchld, NULL) < 0) {
		snprintf(err, errlen, "cannot create the event loop");
		trc_session_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

int trc_session_start(struct trc_session *s, char *err, size_t errlen)
{
	return run_start(s, err, errlen);
}

pid_t trc_session_tool(const struct trc_session *s)
{
	return s->cur ? s->cur->pid : 0;
}

const char *trc_session_dir(const struct trc_session *s)
{
	return s->dir;
}

int trc_session_run(struct trc_session *s, struct trc_session_result *res)
{
	uint64_t t0 = clock_now_ns(), now;
	struct sigaction ign = {.sa_handler = SIG_IGN};
	int rc = 0;

	if (s->cfg.interactive) {
		sigaction(SIGINT, &ign, &s->old_int); /* Ctrl-C is for the tool */
		sigaction(SIGQUIT, &ign, &s->old_quit);
	} else {
		event_add(s->sigint, NULL);
	}
	event_add(s->sigterm, NULL);
	event_add(s->sighup, NULL);
	trc_gov_init(&s->gov, s->cfg.high, s->cfg.low, s->cfg.horizon_s, t0);
	if (s->cfg.method != TRC_GOV_OFF && s->cfg.ops && s->cfg.ops->poll) {
		struct timeval tv = tv_of(s->cfg.tick_ns);

		event_add(s->tick, &tv);
	}
	if (s->cfg.duration_ns)
		timer_in(s->deadline, s->cfg.duration_ns);
	if (!s->cur)
		s->ending = 1;		   /* never started, or already over */
	on_sigchld(SIGCHLD, EV_SIGNAL, s); /* it may have ended before the loop ran */
	maybe_end(s);
	if (event_base_dispatch(s->base) < 0)
		rc = -EIO;
	now = clock_now_ns();
	/* account the time since the last tick, without a step */
	trc_gov_tick(&s->gov, s->gov.lowered ? 1.0 : 0.0, -1, now);
	event_del(s->sigint);
	event_del(s->sigterm);
	event_del(s->sighup);
	event_del(s->tick);
	event_del(s->deadline);
	event_del(s->killer);
	event_del(s->drain);
	if (s->cfg.interactive) {
		sigaction(SIGINT, &s->old_int, NULL);
		sigaction(SIGQUIT, &s->old_quit, NULL);
	}
	res->status = s->status;
	res->elapsed_ns = now - t0;
	res->gov = s->gov;
	return rc;
}

void trc_session_free(struct trc_session *s)
{
	struct trc_run *r, *next;

	if (!s)
		return;
	for (r = s->runs; r; r = next) {
		next = r->next;
		if (r->pid > 0) {
			kill(-r->pid, SIGKILL);
			waitpid(r->pid, NULL, 0);
		}
		run_free(r);
	}
	if (s->sigchld)
		event_free(s->sigchld);
	if (s->sigint)
		event_free(s->sigint);
	if (s->sigterm)
		event_free(s->sigterm);
	if (s->sighup)
		event_free(s->sighup);
	if (s->tick)
		event_free(s->tick);
	if (s->deadline)
		event_free(s->deadline);
	if (s->killer)
		event_free(s->killer);
	if (s->drain)
		event_free(s->drain);
	if (s->base)
		event_base_free(s->base);
	trc_free_args(s->run_argv);
	if (s->log_fd >= 0)
		close(s->log_fd);
	if (s->ctl_fd >= 0)
		close(s->ctl_fd);
	if (s->ack_fd >= 0)
		close(s->ack_fd);
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	free(s);
}
