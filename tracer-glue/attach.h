/*
 * attach.h - run a tracer (gdb, perf, strace, ltrace, bpftrace, ...) on a
 * clone, never on production, and keep its cost inside the clone's debug
 * window (the budget governor, Parikshan thesis chapter 6).
 *
 * Where the tool runs: in a private copy of the clone's mount namespace (it
 * sees the clone's files, its own copies of the state dirs included) with a
 * /proc of the host's pid namespace mounted over the clone's, so host pids
 * ({pid}, {pids}) name the clone's processes. The clone itself is not
 * touched: the copy of its mount namespace is private to the tool.
 *
 * A session (struct trc_session, session.c) is the whole attach: the tool
 * started, its output captured, the governor run on a timer against the
 * clone's state, the tool stopped at the end. The caller says how to read the
 * clone's state (a callback), so this module does not depend on admin/.
 *
 * Ownership: plain functions and a small governor state, and the session,
 * which its caller creates and frees; used by `doppel attach`
 * (cli/cmd-attach.c) on its single thread.
 */
#ifndef DOPPEL_TRACER_GLUE_ATTACH_H
#define DOPPEL_TRACER_GLUE_ATTACH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct trc_session;

#define TRC_MAX_PIDS 4096

/* What {pid}, {pids} and {dir} stand for (pids: common/pidns.h). */
struct trc_subst {
	pid_t pid; /* the clone's main process, as a host pid */
	const pid_t *pids;
	unsigned npids;
	const char *dir; /* the attach's output directory */
};

/*
 * Copy argv with {pid}, {pids} (comma-separated) and {dir} replaced.
 * *out is a NULL-terminated array the caller frees with trc_free_args().
 * Returns 0 or -ENOMEM.
 */
int trc_expand_args(char *const *argv, const struct trc_subst *s, char ***out);
void trc_free_args(char **argv);

/*
 * Refuse arguments that name a production process: any number in argv that
 * is one of forbidden[] (production's host pids). 0, or -EPERM with the
 * sentence in err.
 */
int trc_check_args(char *const *argv, const pid_t *forbidden, unsigned n, char *err, size_t errlen);

/*
 * Start argv in a private copy of clone_pid's mount namespace with the host's
 * /proc, working directory dir_fd. Standard streams: inherited when out_fd
 * < 0, else stdin from /dev/null and stdout+stderr to out_fd. The tool gets
 * its own process group. Returns its pid, or -errno with err (a failure in
 * the child is reported through a pipe).
 */
pid_t trc_spawn(char *const *argv, pid_t clone_pid, int dir_fd, int out_fd, char *err,
		size_t errlen);

/* ---- the budget governor ---- */

enum trc_gov_method {
	TRC_GOV_OFF,	 /* never touch the tool */
	TRC_GOV_CONTROL, /* perf record: disable/enable its events through --control */
	TRC_GOV_RESTART, /* ptrace and probe tools: detach (SIGINT), attach again later */
	TRC_GOV_PAUSE,	 /* SIGSTOP/SIGCONT the tool (only for tools whose cost stops with them) */
};

/* The method that suits a tool (argv[0]'s basename and its subcommand). */
enum trc_gov_method trc_gov_method_for(char *const *argv);
const char *trc_gov_method_name(enum trc_gov_method m);

enum trc_gov_step {
	TRC_GOV_KEEP,
	TRC_GOV_LOWER,	 /* cut the tracing cost now (see struct trc_governor) */
	TRC_GOV_RESTORE, /* occupancy fell below the low mark: full detail again */
};

/*
 * Hysteresis between two marks of buffer occupancy (0..1), and the time spent
 * at full detail versus lowered, for the report.
 *
 * Tracing is cut when occupancy passes the high mark, or earlier when the
 * buffer is past the low mark and filling so fast that the proxy's live
 * forecast puts the overflow less than horizon_s away: a late cut leaves a
 * clone that barely outruns production too little room to drain. It comes
 * back below the low mark once the forecast no longer says so.
 */
struct trc_governor {
	double high, low;
	double horizon_s; /* 0: marks only */
	int lowered;
	int by_forecast; /* the last cut came from the forecast, not the high mark */
	uint64_t started_ns, last_ns;
	uint64_t full_ns, lowered_ns;
	unsigned lowers, restores;
};

void trc_gov_init(struct trc_governor *g, double high, double low, double horizon_s,
		  uint64_t now_ns);
/* forecast_s: seconds to the next overflow at the current rates; < 0 when not filling. */
enum trc_gov_step trc_gov_tick(struct trc_governor *g, double occupancy, double forecast_s,
			       uint64_t now_ns);
/* Share of the time so far traced at full detail (1 when nothing was lowered). */
double trc_gov_full_share(const struct trc_governor *g);

/* ---- a session: the tool on the clone, its output, the governor ---- */

/* The clone's state as the caller reads it (doppel attach: the admin socket). */
struct trc_clone_state {
	double occupancy;  /* its fullest buffer, 0..1 */
	double forecast_s; /* seconds to the next overflow at the live rates; < 0: not filling */
	int window_open;   /* no overflow yet */
	double debug_window_s;
	unsigned long long overflows;
};

/*
 * What the session asks of its caller. Every callback runs on the caller's
 * thread, inside trc_session_run().
 */
struct trc_session_ops {
	/* Read the clone's state: 0, or -errno with the reason in err (the clone is gone). */
	int (*poll)(void *arg, struct trc_clone_state *out, char *err, size_t errlen);
	/* A sentence for the person at the terminal: governor steps, a restart that failed. */
	void (*notice)(void *arg, const char *text);
	/* What the tool wrote (already appended to output.log); NULL: the log only. */
	void (*output)(void *arg, const char *data, size_t len);
};

struct trc_session_config {
	char *const *argv;	/* the tool, {pid}, {pids} and {dir} unexpanded */
	pid_t clone_pid;	/* the clone's main process, as a host pid */
	unsigned long clone_id; /* for messages */
	/* the session's directory, attach-TIME-TOOL/, is made here: the clone's */
	const char *clone_dir;
	const pid_t *forbidden; /* production's host pids: refused in the arguments */
	unsigned nforbidden;
	enum trc_gov_method method;
	/* the tool keeps the terminal: nothing captured, Ctrl-C (SIGINT) is its own */
	int interactive;
	double high, low, horizon_s; /* the governor's marks (struct trc_governor) */
	uint64_t duration_ns;	     /* end the session after this; 0: when the tool ends */
	uint64_t tick_ns;	     /* how often the clone is polled; 0: 200 ms */
	const struct trc_session_ops *ops;
	void *arg;
};

/* What a session ended with. */
struct trc_session_result {
	int status;		 /* the tool's last wait status */
	uint64_t elapsed_ns;	 /* from trc_session_run() to the end */
	struct trc_governor gov; /* steps taken and time at full detail */
};

/*
 * Make the session's directory under clone_dir (with output.log unless
 * interactive, and perf's control fifos for TRC_GOV_CONTROL) and its event
 * loop. The configuration's pointers must stay valid until
 * trc_session_free(). Returns 0 or -errno with err.
 */
int trc_session_new(const struct trc_session_config *cfg, struct trc_session **out, char *err,
		    size_t errlen);
/*
 * Start the tool: expand its arguments for the clone's current processes,
 * check them (-EPERM: one names a production process) and spawn it
 * (trc_spawn). 0 or -errno with err.
 */
int trc_session_start(struct trc_session *s, char *err, size_t errlen);
/* The running tool's pid (0 when none) and the session's directory. */
pid_t trc_session_tool(const struct trc_session *s);
const char *trc_session_dir(const struct trc_session *s);
/*
 * Run until the tool ends (a tool the governor detached does not end the
 * session; it is started again at the restore), --duration passes or
 * SIGINT, SIGTERM or SIGHUP arrive; then the tool gets SIGINT and, 5 s
 * later, SIGKILL. The session is over when the tool's exit and the end of
 * its output were both seen. 0, or -errno when the event loop fails.
 */
int trc_session_run(struct trc_session *s, struct trc_session_result *res);
/* Kills a tool still running (SIGKILL to its group) and reaps it. NULL is fine. */
void trc_session_free(struct trc_session *s);

#endif
