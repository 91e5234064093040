/*
 * cmd-attach.c - `doppel attach NAME/ID -- TOOL ARGS...`: a tracer on a clone,
 * governed so that it fits in the clone's debug window. This file parses the
 * options, reads the clone's state from its supervisor and prints; the
 * session itself (the tool, its output, the governor) is tracer-glue's
 * struct trc_session (tracer-glue/attach.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin.h"
#include "cli/cmd.h"
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

struct clone_info {
	pid_t pid, service_pid;
	char dir[1024];
	double occupancy, debug_window_s, forecast_s;
	int window_open;
	unsigned long long overflows, buffer;
};

/* The clone's state from its supervisor (GET /clone-info). */
static int clone_info(const char *addr, unsigned long id, struct clone_info *ci, char *err,
		      size_t errlen)
{
	struct admin_clone_info a;
	int rc = admin_clone_info(addr, (unsigned)id, &a, err, errlen);

	if (rc < 0)
		return rc;
	memset(ci, 0, sizeof(*ci));
	ci->pid = a.pid;
	ci->service_pid = a.service_pid;
	snprintf(ci->dir, sizeof(ci->dir), "%.*s", (int)sizeof(ci->dir) - 1, a.dir);
	ci->occupancy = a.occupancy;
	ci->debug_window_s = a.debug_window_s;
	ci->forecast_s = a.forecast_s; /* INFINITY: nothing is filling */
	ci->window_open = a.window_open;
	ci->overflows = a.overflows;
	ci->buffer = a.buffer;
	return 0;
}

/* What the command line asked for. */
struct attach_args {
	char name[64], addr[600];
	unsigned long id;
	const char *gov, *tool_name;
	double high, low, horizon;
	uint64_t duration;
	int batch;
	char *const *tool_argv;
	enum trc_gov_method method;
};

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

/* The session's callbacks: the clone's state, sentences, the tool's output. */
static int poll_clone(void *arg, struct trc_clone_state *out, char *err, size_t errlen)
{
	const struct attach_args *a = arg;
	struct clone_info ci;
	int rc = clone_info(a->addr, a->id, &ci, err, errlen);

	if (rc)
		return rc;
	out->occupancy = ci.occupancy;
	out->forecast_s = ci.forecast_s;
	out->window_open = ci.window_open;
	out->debug_window_s = ci.debug_window_s;
	out->overflows = ci.overflows;
	return 0;
}

static void print_notice(void *arg, const char *text)
{
	say("%s", text);
}

static void print_output(void *arg, const char *data, size_t len)
{
	fwrite(data, 1, len, stdout);
	fflush(stdout);
}

static const struct trc_session_ops attach_ops = {
	.poll = poll_clone,
	.notice = print_notice,
	.output = print_output,
};

/* NAME/ID: the supervisor's address and the clone's id. */
static int parse_target(const struct cmd_entry *e, const char *arg, struct attach_args *a)
{
	const char *slash = strchr(arg, '/');
	char *end;

	if (!slash || (size_t)(slash - arg) >= sizeof(a->name))
		return cmd_usage_error(e,
				       "'%s': doppel attaches tools to clones only, never to "
				       "production; give NAME/ID (ids: `doppel status NAME`)",
				       arg);
	snprintf(a->name, sizeof(a->name), "%.*s", (int)(slash - arg), arg);
	a->id = strtoul(slash + 1, &end, 10);
	if (!slash[1] || *end || !a->id)
		return cmd_usage_error(e, "'%s': the clone id after '/' is a number, e.g. web/1",
				       arg);
	return cli_admin_for(e, a->name, a->addr, sizeof(a->addr)) ? EXIT_USAGE : 0;
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

/* One option; 0 or EXIT_USAGE (the message printed). */
static int parse_option(const struct cmd_entry *e, int c, const char *arg, struct attach_args *a)
{
	uint64_t ns;

	switch (c) {
	case 'g':
		a->gov = arg;
		return 0;
	case 'H':
		return parse_pct(e, "--high", arg, &a->high) ? EXIT_USAGE : 0;
	case 'L':
		return parse_pct(e, "--low", arg, &a->low) ? EXIT_USAGE : 0;
	case 'd':
		return cli_parse_duration(e, "--duration", arg, &a->duration) ? EXIT_USAGE : 0;
	case 'b':
		a->batch = 1;
		return 0;
	case 'z':
		if (cli_parse_duration(e, "--horizon", arg, &ns))
			return EXIT_USAGE;
		a->horizon = (double)ns / 1e9;
		return 0;
	default:
		return -1;
	}
}

static const struct {
	const char *name;
	enum trc_gov_method method;
} governors[] = {
	{"control", TRC_GOV_CONTROL},
	{"restart", TRC_GOV_RESTART},
	{"pause", TRC_GOV_PAUSE},
	{"off", TRC_GOV_OFF},
};

/* The tool after --, and what can be refused before anything starts. */
static int check_tool(const struct cmd_entry *e, struct attach_args *a)
{
	const char *slash = strrchr(a->tool_argv[0], '/');
	int found = strcmp(a->gov, "auto") == 0;

	if (a->low >= a->high)
		return cmd_usage_error(e, "--low must be below --high");
	a->method = trc_gov_method_for(a->tool_argv); /* auto */
	for (unsigned i = 0; !found && i < sizeof(governors) / sizeof(*governors); i++)
		if (strcmp(a->gov, governors[i].name) == 0) {
			a->method = governors[i].method;
			found = 1;
		}
	if (!found)
		return cmd_usage_error(e, "--governor '%s': auto, control, restart, pause or off",
				       a->gov);
	a->tool_name = slash ? slash + 1 : a->tool_argv[0];
	if (strcmp(a->tool_name, "uftrace") == 0)
		return cmd_usage_error(
			e, "uftrace cannot attach to a running process; start the service "
			   "under it instead (see `doppel help attach`)");
	if (a->method == TRC_GOV_CONTROL &&
	    (!a->tool_argv[1] || strcmp(a->tool_argv[1], "record") != 0))
		return cmd_usage_error(e, "--governor control works with `perf record` only");
	return 0;
}

static int parse_args(const struct cmd_entry *e, int argc, char **argv, struct attach_args *a)
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
	int c, rc;

	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(e, "give the clone as NAME/ID, e.g. web/1");
	rc = parse_target(e, argv[1], a);
	if (rc)
		return rc;
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		rc = parse_option(e, c, optarg, a);
		if (rc < 0)
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		if (rc)
			return rc;
	}
	if (optind >= argc)
		return cmd_usage_error(e, "give the tool after --, e.g. -- gdb -p {pid}");
	a->tool_argv = &argv[optind];
	return check_tool(e, a);
}

/* After the tool: how it ended, what the governor did, how much of the window was used. */
static int report(const struct attach_args *a, const struct clone_info *before,
		  const struct trc_session_result *res, const char *dir)
{
	double secs = (double)res->elapsed_ns / 1e9;
	struct clone_info after;
	char err[1024];
	int st = res->status;

	say("%s ended (%s %d) after %.1f s; its files: %s", a->tool_name,
	    WIFSIGNALED(st) ? "signal" : "exit status",
	    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), secs, dir);
	if (a->method != TRC_GOV_OFF)
		say("governor (%s, high %.0f%%, low %.0f%%): %u cut(s), %u restore(s); traced at "
		    "full detail %.0f%% of the time",
		    trc_gov_method_name(a->method), a->high * 100, a->low * 100, res->gov.lowers,
		    res->gov.restores, trc_gov_full_share(&res->gov) * 100);
	if (clone_info(a->addr, a->id, &after, err, sizeof(err)) < 0)
		say("the clone is gone: %s", err);
	else if (after.window_open)
		say("debug window: still open after %.1f s of tracing; the clone kept up (buffer "
		    "now %.0f%% full)",
		    secs, after.occupancy * 100);
	else if (before->window_open)
		say("debug window: closed during tracing, %.1f s after the clone was attached "
		    "(%.1f s into this session); %llu overflow(s): the clone missed traffic from "
		    "then on",
		    after.debug_window_s, after.debug_window_s - before->debug_window_s,
		    after.overflows);
	else
		say("debug window: it had already closed before this session (%.1f s after the "
		    "attach); %llu overflow(s) so far",
		    after.debug_window_s, after.overflows);
	return WIFEXITED(st) && WEXITSTATUS(st) != 0 ? EXIT_RUNTIME : 0;
}

static int cmd_attach_exec(int argc, char **argv)
{
	static pid_t prod[TRC_MAX_PIDS];
	const struct cmd_entry *e = &cmd_attach_entry;
	struct attach_args a = {.gov = "auto", .high = 0.70, .low = 0.30, .horizon = 5};
	struct trc_session_config cfg = {.ops = &attach_ops, .arg = &a, .forbidden = prod};
	struct trc_session_result res;
	struct trc_session *s = NULL;
	struct clone_info before;
	char err[1024];
	int rc, n;

	rc = parse_args(e, argc, argv, &a);
	if (rc)
		return rc;
	if (clone_info(a.addr, a.id, &before, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel attach: %s", err);
		if (err[0] && err[strlen(err) - 1] != '\n')
			fputc('\n', stderr);
		return EXIT_RUNTIME;
	}
	n = pidns_pids(before.service_pid, prod, TRC_MAX_PIDS);
	cfg.nforbidden = n > 0 ? (unsigned)n : 0;
	cfg.argv = a.tool_argv;
	cfg.clone_pid = before.pid;
	cfg.clone_id = a.id;
	cfg.clone_dir = before.dir;
	cfg.method = a.method;
	cfg.interactive = !a.batch && isatty(0) && isatty(1);
	cfg.high = a.high;
	cfg.low = a.low;
	cfg.horizon_s = a.horizon;
	cfg.duration_ns = a.duration;
	if (trc_session_new(&cfg, &s, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel attach: %s\n", err);
		return EXIT_RUNTIME;
	}
	rc = trc_session_start(s, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "doppel attach: %s\n", err);
		trc_session_free(s);
		return rc == -EPERM ? EXIT_USAGE : EXIT_RUNTIME; /* -EPERM: a production pid */
	}
	say("%s (pid %d) attached to clone %lu of %s (pid %d); governor %s; output in %s",
	    a.tool_name, trc_session_tool(s), a.id, a.name, before.pid,
	    trc_gov_method_name(a.method), trc_session_dir(s));
	rc = trc_session_run(s, &res);
	if (rc < 0) {
		fprintf(stderr, "doppel attach: the session's event loop failed: %s\n",
			strerror(-rc));
		trc_session_free(s);
		return EXIT_RUNTIME;
	}
	rc = report(&a, &before, &res, trc_session_dir(s));
	trc_session_free(s);
	return rc;
}
