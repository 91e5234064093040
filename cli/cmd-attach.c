/*
 * cmd-attach.c - `doppel attach NAME/ID -- TOOL ARGS...`: a tracer on a clone,
 * governed so that it fits in the clone's debug window.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
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

#include "admin/admin.h"
#include "cli/cmd.h"
#include "common/clock.h"
#include "common/pidns.h"
#include "tracer-glue/attach.h"

static int cmd_attach_exec(int argc, char **argv);

const struct cmd_entry cmd_attach_entry = {
	.name = "attach",
	.usage = "NAME/ID [--governor auto|control|restart|pause|off] [--high PCT] [--low PCT]\n"
		 "       [--horizon DUR] [--duration DUR] [--batch] -- TOOL [ARGS...]",
	.summary = "run gdb, perf, strace, ltrace, bpftrace, ... on a clone, never on production",
	.help = "Runs TOOL against clone ID of the service NAME. In the arguments, {pid} is the\n"
		"clone's main process and {pids} all its processes (host pids, comma-separated),\n"
		"{dir} the output directory. The tool runs in a private copy of the clone's mount\n"
		"namespace (it sees the clone's files and its own copies of the state dirs) with "
		"the\n"
		"host's /proc, in CLONEDIR/attach-TIME-TOOL/, where its files and (unless it is\n"
		"interactive) its output go. Production is never traced: an argument naming one "
		"of\n"
		"production's pids is refused. When the tool exits, prints how much of the "
		"clone's\n"
		"debug window the session used.\n"
		"\n"
		"The budget governor watches the clone's buffer occupancy while the tool runs.\n"
		"Above --high it cuts the tracing cost; so it does past --low when the proxy's "
		"live\n"
		"forecast puts the next overflow less than --horizon away (the buffer fills "
		"fast);\n"
		"below --low, with no overflow in sight, it restores full detail. Each step is\n"
		"logged with the occupancy that caused it, and the share of time traced at full\n"
		"detail is reported. Methods (auto picks one per tool):\n"
		"  control   perf record: its events are disabled and enabled through perf's\n"
		"            --control fifo (added to the command); no sampling while disabled\n"
		"  restart   strace, ltrace, bpftrace, other perf commands: the tool is stopped\n"
		"            (SIGINT: it detaches) and started again later (strace -o gets -A)\n"
		"  pause     SIGSTOP/SIGCONT the tool; only for tools whose cost stops with them\n"
		"            (never a ptrace tool: the clone would stall at its next stop)\n"
		"  off       gdb (auto): a person is at the controls; a breakpoint may stop the\n"
		"            clone for minutes: production never waits, the clone overflows\n"
		"\n"
		"options:\n"
		"  --governor M   auto (default), control, restart, pause or off\n"
		"  --high PCT     occupancy that cuts tracing (default 70)\n"
		"  --low PCT      occupancy that restores it (default 30)\n"
		"  --horizon D    also cut past --low when overflow is forecast within D\n"
		"                 (default 5s; 0: the marks only)\n"
		"  --duration D   end the session after D (SIGINT to the tool), e.g. 20s\n"
		"  --batch        capture the tool's output even on a terminal (gdb -batch, "
		"scripts)\n"
		"\n"
		"uftrace cannot attach to a running process. Record a service with uftrace from "
		"the\n"
		"start instead: `doppel run NAME ... -- uftrace record -d DIR CMD` (binaries "
		"built\n"
		"with -pg or -finstrument-functions); clones keep recording into their own copy "
		"if\n"
		"DIR is a --state dir. libdoppeltrace (doppel trace) is the lighter alternative.\n"
		"\n"
		"examples:\n"
		"  doppel attach web/1 -- gdb -p {pid}\n"
		"  doppel attach web/1 -- perf record -F 20000 -g -p {pids}\n"
		"  doppel attach web/1 --duration 30s -- strace -f -tt -p {pids} -o strace.out\n",
	.exec = cmd_attach_exec,
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

struct clone_info {
	pid_t pid, service_pid;
	char dir[1024];
	double occupancy, debug_window_s, forecast_s;
	int window_open;
	unsigned long long overflows, buffer;
};

static int clone_info(const char *addr, unsigned long id, struct clone_info *ci, char *err,
		      size_t errlen)
{
	char path[64];
	struct sbuf body;
	int status;

	snprintf(path, sizeof(path), "/clone-info?id=%lu", id);
	sbuf_init(&body);
	status = admin_request(addr, "GET", path, NULL, &body, NULL, NULL, 3000, err, errlen);
	if (status != 200) {
		if (status > 0)
			snprintf(err, errlen, "%s", body.buf ? body.buf : "no answer");
		sbuf_free(&body);
		return -ENOENT;
	}
	memset(ci, 0, sizeof(*ci));
	ci->forecast_s = -1; /* no forecast given: nothing known to be filling */
	for (char *line = strtok(body.buf, "\n"); line; line = strtok(NULL, "\n")) {
		sscanf(line, "pid=%d", &ci->pid);
		sscanf(line, "service_pid=%d", &ci->service_pid);
		sscanf(line, "dir=%1023[^\n]", ci->dir);
		sscanf(line, "occupancy=%lf", &ci->occupancy);
		sscanf(line, "debug_window_s=%lf", &ci->debug_window_s);
		sscanf(line, "forecast_s=%lf", &ci->forecast_s);
		sscanf(line, "window_open=%d", &ci->window_open);
		sscanf(line, "overflows=%llu", &ci->overflows);
		sscanf(line, "buffer=%llu", &ci->buffer);
	}
	sbuf_free(&body);
	return ci->pid > 0 ? 0 : -ENOENT;
}

static int parse_pct(const struct cmd_entry *e, const char *opt, const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (*end == '%')
		end++;
	if (*end || v <= 0 || v >= 100) {
		cmd_usage_error(e, "%s '%s': a percentage between 0 and 100", opt, s);
		return -1;
	}
	*out = v / 100.0;
	return 0;
}

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

struct session {
	const char *addr;
	unsigned long id;
	struct clone_info before;
	char *const *tool_argv; /* unexpanded */
	char **run_argv;	/* expanded, as started */
	enum trc_gov_method method;
	int dir_fd, interactive;
	int log_fd; /* output.log */
	int pipe_w; /* the tool's stdout+stderr (kept open: a restarted tool writes here too) */
	int ctl_fd, ack_fd;
	pid_t tool;
	int tool_status;
	pid_t prod[TRC_MAX_PIDS];
	unsigned nprod;
};

/* Expand the arguments for the clone's current processes and start the tool. */
static int start_tool(struct session *s, char *err, size_t errlen)
{
	static pid_t pids[TRC_MAX_PIDS];
	struct trc_subst sub;
	char **expanded = NULL, **final;
	int n = pidns_pids(s->before.pid, pids, TRC_MAX_PIDS), rc;

	if (n <= 0) {
		snprintf(err, errlen, "clone %lu (pid %d) has no processes left", s->id,
			 s->before.pid);
		return -ESRCH;
	}
	sub.pid = s->before.pid;
	sub.pids = pids;
	sub.npids = (unsigned)n;
	sub.dir = ".";
	rc = trc_expand_args(s->tool_argv, &sub, &expanded);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	rc = trc_check_args(expanded, s->prod, s->nprod, err, errlen);
	if (rc) {
		trc_free_args(expanded);
		return rc;
	}
	final = s->method == TRC_GOV_CONTROL   ? with_perf_control(expanded)
		: s->method == TRC_GOV_RESTART ? with_append(expanded)
					       : NULL;
	if (final) {
		trc_free_args(expanded);
		expanded = final;
	}
	trc_free_args(s->run_argv);
	s->run_argv = expanded;
	s->tool = trc_spawn(s->run_argv, s->before.pid, s->dir_fd, s->interactive ? -1 : s->pipe_w,
			    err, errlen);
	return s->tool < 0 ? (int)s->tool : 0;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "doppel attach: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* perf --control: write a command, wait (briefly) for its ack. */
static void perf_command(struct session *s, const char *cmd)
{
	char ack[16];
	struct pollfd p = {.fd = s->ack_fd, .events = POLLIN};

	if (write(s->ctl_fd, cmd, strlen(cmd)) < 0)
		say("cannot send '%s' to perf: %s", cmd, strerror(errno));
	else if (poll(&p, 1, 2000) == 1 && read(s->ack_fd, ack, sizeof(ack)) > 0)
		return;
	else
		say("perf did not acknowledge '%s'", cmd);
}

/* Apply a governor step to the running tool. */
static void govern(struct session *s, const struct trc_governor *g, enum trc_gov_step step,
		   const struct clone_info *ci, char *err, size_t errlen)
{
	int lower = step == TRC_GOV_LOWER;

	if (lower && g->by_forecast)
		say("governor: buffer %.0f%% and filling: overflow forecast in %.1f s (horizon "
		    "%.0f s): "
		    "cutting tracing",
		    ci->occupancy * 100, ci->forecast_s, g->horizon_s);
	else
		say("governor: buffer %.0f%% %s: %s", ci->occupancy * 100,
		    lower ? "above the high mark" : "below the low mark",
		    lower ? "cutting tracing" : "restoring full detail");
	switch (s->method) {
	case TRC_GOV_CONTROL:
		perf_command(s, lower ? "disable\n" : "enable\n");
		break;
	case TRC_GOV_PAUSE:
		kill(-s->tool, lower ? SIGSTOP : SIGCONT);
		break;
	case TRC_GOV_RESTART:
		if (lower) {
			kill(-s->tool, SIGINT); /* detaches; reaped by the main loop */
		} else if (s->tool <= 0 && start_tool(s, err, errlen) < 0) {
			say("cannot start the tool again: %s", err);
		}
		break;
	default:
		break;
	}
}

/* Copy what the tool wrote (non-blocking: nothing there is fine). */
static void copy_output(int from, int to)
{
	char buf[8192];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n > 0) {
		if (write(to, buf, (size_t)n) < 0) {
			/* the log file is full or gone: the terminal still gets it */
		}
		fwrite(buf, 1, (size_t)n, stdout);
		fflush(stdout);
	}
}

static int cmd_attach_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"governor", required_argument, NULL, 'g'},
		{"high", required_argument, NULL, 'H'},
		{"low", required_argument, NULL, 'L'},
		{"duration", required_argument, NULL, 'd'},
		{"batch", no_argument, NULL, 'b'},
		{"horizon", required_argument, NULL, 'z'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_attach_entry;
	struct session s = {.ctl_fd = -1, .ack_fd = -1, .log_fd = -1, .pipe_w = -1, .dir_fd = -1};
	const char *gov = "auto";
	double high = 0.70, low = 0.30, horizon = 5;
	uint64_t duration = 0, t0, now;
	char name[64], addr[600], err[1024], outdir[1200], path[1400];
	struct trc_governor g;
	struct clone_info after;
	const char *slash, *tool_name;
	int batch = 0, c, out_pipe[2] = {-1, -1}, code = 0;
	char *end;

	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(e, "give the clone as NAME/ID, e.g. web/1");
	slash = strchr(argv[1], '/');
	if (!slash || (size_t)(slash - argv[1]) >= sizeof(name))
		return cmd_usage_error(
			e,
			"'%s': doppel attaches tools to clones only, never to production; "
			"give NAME/ID (ids: `doppel status NAME`)",
			argv[1]);
	snprintf(name, sizeof(name), "%.*s", (int)(slash - argv[1]), argv[1]);
	s.id = strtoul(slash + 1, &end, 10);
	if (!slash[1] || *end || !s.id)
		return cmd_usage_error(e, "'%s': the clone id after '/' is a number, e.g. web/1",
				       argv[1]);
	if (cli_admin_for(e, name, addr, sizeof(addr)))
		return EXIT_USAGE;
	s.addr = addr;
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			gov = optarg;
			break;
		case 'H':
			if (parse_pct(e, "--high", optarg, &high))
				return EXIT_USAGE;
			break;
		case 'L':
			if (parse_pct(e, "--low", optarg, &low))
				return EXIT_USAGE;
			break;
		case 'd':
			if (cli_parse_duration(e, "--duration", optarg, &duration))
				return EXIT_USAGE;
			break;
		case 'b':
			batch = 1;
			break;
		case 'z': {
			uint64_t ns;

			if (cli_parse_duration(e, "--horizon", optarg, &ns))
				return EXIT_USAGE;
			horizon = (double)ns / 1e9;
			break;
		}
		default:
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cmd_usage_error(e, "give the tool after --, e.g. -- gdb -p {pid}");
	if (low >= high)
		return cmd_usage_error(e, "--low must be below --high");
	s.tool_argv = &argv[optind];
	if (strcmp(gov, "auto") == 0)
		s.method = trc_gov_method_for(s.tool_argv);
	else if (strcmp(gov, "control") == 0)
		s.method = TRC_GOV_CONTROL;
	else if (strcmp(gov, "restart") == 0)
		s.method = TRC_GOV_RESTART;
	else if (strcmp(gov, "pause") == 0)
		s.method = TRC_GOV_PAUSE;
	else if (strcmp(gov, "off") == 0)
		s.method = TRC_GOV_OFF;
	else
		return cmd_usage_error(e, "--governor '%s': auto, control, restart, pause or off",
				       gov);
	tool_name =
		strrchr(s.tool_argv[0], '/') ? strrchr(s.tool_argv[0], '/') + 1 : s.tool_argv[0];
	if (strcmp(tool_name, "uftrace") == 0)
		return cmd_usage_error(
			e, "uftrace cannot attach to a running process; start the service "
			   "under it instead (see `doppel help attach`)");
	if (s.method == TRC_GOV_CONTROL &&
	    (!s.tool_argv[1] || strcmp(s.tool_argv[1], "record") != 0))
		return cmd_usage_error(e, "--governor control works with `perf record` only");

	if (clone_info(addr, s.id, &s.before, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel attach: %s", err);
		if (err[0] && err[strlen(err) - 1] != '\n')
			fputc('\n', stderr);
		return EXIT_RUNTIME;
	}
	{
		int n = pidns_pids(s.before.service_pid, s.prod, TRC_MAX_PIDS);

		s.nprod = n > 0 ? (unsigned)n : 0;
	}
	/* The output directory, under the clone's. */
	{
		time_t t = time(NULL);
		struct tm tm;

		localtime_r(&t, &tm);
		snprintf(outdir, sizeof(outdir), "%s/attach-%04d%02d%02d-%02d%02d%02d-%s",
			 s.before.dir, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, tool_name);
	}
	if (mkdir(outdir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "doppel attach: cannot create %s: %s\n", outdir, strerror(errno));
		return EXIT_RUNTIME;
	}
	s.dir_fd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s.interactive = !batch && isatty(0) && isatty(1);
	if (!s.interactive) {
		snprintf(path, sizeof(path), "%s/output.log", outdir);
		if (pipe2(out_pipe, O_CLOEXEC) < 0 ||
		    (s.log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
			fprintf(stderr, "doppel attach: cannot set up %s: %s\n", path,
				strerror(errno));
			return EXIT_RUNTIME;
		}
	}
	if (s.method == TRC_GOV_CONTROL) {
		char ctl[1300], ack[1300];

		snprintf(ctl, sizeof(ctl), "%s/perf-ctl.fifo", outdir);
		snprintf(ack, sizeof(ack), "%s/perf-ack.fifo", outdir);
		unlink(ctl);
		unlink(ack);
		if (mkfifo(ctl, 0600) < 0 || mkfifo(ack, 0600) < 0 ||
		    (s.ctl_fd = open(ctl, O_RDWR | O_CLOEXEC)) < 0 ||
		    (s.ack_fd = open(ack, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
			fprintf(stderr,
				"doppel attach: cannot create perf's control fifos in %s: %s\n",
				outdir, strerror(errno));
			return EXIT_RUNTIME;
		}
	}
	/*
	 * The tool writes into a pipe we read: the terminal and output.log get it.
	 * We keep the write end (a restarted tool writes there too), so reads must
	 * never block: nothing to read is not the end.
	 */
	s.pipe_w = out_pipe[1];
	if (out_pipe[0] >= 0)
		fcntl(out_pipe[0], F_SETFL, fcntl(out_pipe[0], F_GETFL) | O_NONBLOCK);
	if (start_tool(&s, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel attach: %s\n", err);
		return strstr(err, "production") ? EXIT_USAGE : EXIT_RUNTIME;
	}
	say("%s (pid %d) attached to clone %lu of %s (pid %d); governor %s; output in %s",
	    tool_name, s.tool, s.id, name, s.before.pid, trc_gov_method_name(s.method), outdir);

	if (s.interactive) {
		signal(SIGINT, SIG_IGN); /* Ctrl-C is for the tool */
		signal(SIGQUIT, SIG_IGN);
	} else {
		signal(SIGINT, on_signal);
	}
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	t0 = clock_now_ns();
	trc_gov_init(&g, high, low, horizon, t0);
	for (;;) {
		struct pollfd p = {.fd = out_pipe[0], .events = POLLIN};
		int st;

		if (poll(&p, out_pipe[0] >= 0 ? 1 : 0, 200) > 0 && (p.revents & POLLIN))
			copy_output(out_pipe[0], s.log_fd);
		now = clock_now_ns();
		if (s.tool > 0 && waitpid(s.tool, &st, WNOHANG) == s.tool) {
			s.tool_status = st;
			s.tool = 0;
			if (!(s.method == TRC_GOV_RESTART && g.lowered && !got_signal))
				break; /* ended on its own (or on request) */
		}
		if (got_signal || (duration && now - t0 >= duration)) {
			if (s.tool > 0) {
				kill(-s.tool, SIGCONT);
				kill(-s.tool, SIGINT);
				for (int i = 0; i < 100 && waitpid(s.tool, &st, WNOHANG) == 0;
				     i++) {
					struct timespec ts = {0, 50 * 1000 * 1000};

					if (out_pipe[0] >= 0)
						copy_output(out_pipe[0], s.log_fd);
					nanosleep(&ts, NULL);
				}
				if (kill(s.tool, 0) == 0) {
					kill(-s.tool, SIGKILL);
					waitpid(s.tool, &st, 0);
				}
				s.tool_status = st;
				s.tool = 0;
			}
			break;
		}
		if (s.method != TRC_GOV_OFF) {
			struct clone_info ci;

			if (clone_info(addr, s.id, &ci, err, sizeof(err)) == 0) {
				enum trc_gov_step step =
					trc_gov_tick(&g, ci.occupancy, ci.forecast_s, now);

				if (step != TRC_GOV_KEEP)
					govern(&s, &g, step, &ci, err, sizeof(err));
			} else {
				say("the clone is gone: %s", err);
				if (s.tool > 0)
					kill(-s.tool, SIGINT);
			}
		}
	}
	if (out_pipe[0] >= 0) {
		/* what the tool said last */
		struct pollfd p = {.fd = out_pipe[0], .events = POLLIN};

		while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN))
			copy_output(out_pipe[0], s.log_fd);
	}
	now = clock_now_ns();
	trc_gov_tick(&g, g.lowered ? 1.0 : 0.0, -1, now);
	signal(SIGINT, SIG_DFL);

	/* The report. */
	if (WIFEXITED(s.tool_status) && WEXITSTATUS(s.tool_status) != 0)
		code = EXIT_RUNTIME;
	say("%s ended (%s %d) after %.1f s; its files: %s", tool_name,
	    WIFSIGNALED(s.tool_status) ? "signal" : "exit status",
	    WIFSIGNALED(s.tool_status) ? WTERMSIG(s.tool_status) : WEXITSTATUS(s.tool_status),
	    (double)(now - t0) / 1e9, outdir);
	if (s.method != TRC_GOV_OFF)
		say("governor (%s, high %.0f%%, low %.0f%%): %u cut(s), %u restore(s); traced at "
		    "full detail "
		    "%.0f%% of the time",
		    trc_gov_method_name(s.method), high * 100, low * 100, g.lowers, g.restores,
		    trc_gov_full_share(&g) * 100);
	if (clone_info(addr, s.id, &after, err, sizeof(err)) == 0) {
		if (after.window_open)
			say("debug window: still open after %.1f s of tracing; the clone kept up "
			    "(buffer now %.0f%% "
			    "full)",
			    (double)(now - t0) / 1e9, after.occupancy * 100);
		else if (s.before.window_open)
			say("debug window: closed during tracing, %.1f s after the clone was "
			    "attached (%.1f s into "
			    "this session); %llu overflow(s): the clone missed traffic from then "
			    "on",
			    after.debug_window_s, after.debug_window_s - s.before.debug_window_s,
			    after.overflows);
		else
			say("debug window: it had already closed before this session (%.1f s after "
			    "the attach); "
			    "%llu overflow(s) so far",
			    after.debug_window_s, after.overflows);
	} else {
		say("the clone is gone: %s", err);
	}
	trc_free_args(s.run_argv);
	if (s.log_fd >= 0)
		close(s.log_fd);
	if (s.pipe_w >= 0)
		close(s.pipe_w);
	if (out_pipe[0] >= 0)
		close(out_pipe[0]);
	return code;
}
