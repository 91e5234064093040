/*
 * test_session.c - an attach session (tracer-glue/attach.h) with real
 * short-lived tools (sh, sleep) and no clone: the "clone" is this test
 * process (its mount namespace is copied for the tool, as for a clone), and
 * its state comes from a poll callback that plays the clone's buffer. Needs
 * root, like `doppel attach`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "tracer-glue/attach.h"

#define MS NSEC_PER_MSEC

struct ctx {
	struct trc_session *s;
	char dir[64];
	char out[4096];
	size_t outlen;
	char notices[8192];
	/* the poll callback's script */
	int (*script)(struct ctx *c, struct trc_clone_state *st, char *err, size_t errlen);
	unsigned polls;
	int phase;
	pid_t detached;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/doppel-test-session-XXXXXX");
	if (!mkdtemp(c->dir)) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	trc_session_free(c->s);
	nftw(c->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	return 0;
}

static int poll_cb(void *arg, struct trc_clone_state *st, char *err, size_t errlen)
{
	struct ctx *c = arg;

	c->polls++;
	return c->script ? c->script(c, st, err, errlen) : 0;
}

static void notice_cb(void *arg, const char *text)
{
	struct ctx *c = arg;
	size_t len = strlen(c->notices);

	snprintf(c->notices + len, sizeof(c->notices) - len, "%s\n", text);
}

static void output_cb(void *arg, const char *data, size_t len)
{
	struct ctx *c = arg;

	assert_true(c->outlen + len < sizeof(c->out));
	memcpy(c->out + c->outlen, data, len);
	c->outlen += len;
	c->out[c->outlen] = '\0';
}

static const struct trc_session_ops ops = {
	.poll = poll_cb,
	.notice = notice_cb,
	.output = output_cb,
};

static struct trc_session_config config(struct ctx *c, char **argv, enum trc_gov_method m)
{
	struct trc_session_config cfg = {
		.argv = argv,
		.clone_pid = getpid(),
		.clone_id = 1,
		.clone_dir = c->dir,
		.method = m,
		.high = 0.70,
		.low = 0.30,
		.tick_ns = 20 * MS,
		.ops = &ops,
		.arg = c,
	};
	return cfg;
}

static void need_root(void)
{
	if (geteuid() != 0)
		skip(); /* the tool enters a copy of the clone's mount namespace */
}

/* Start and run to the end; the elapsed time in seconds. */
static double run(struct ctx *c, const struct trc_session_config *cfg,
		  struct trc_session_result *res)
{
	char err[1024];
	int rc = trc_session_new(cfg, &c->s, err, sizeof(err));

	if (rc)
		fail_msg("trc_session_new: %s", err);
	rc = trc_session_start(c->s, err, sizeof(err));
	if (rc)
		fail_msg("trc_session_start: %s", err);
	assert_true(trc_session_tool(c->s) > 0);
	assert_int_equal(trc_session_run(c->s, res), 0);
	return (double)res->elapsed_ns / 1e9;
}

static void read_log(struct ctx *c, char *buf, size_t len)
{
	char path[1400];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/output.log", trc_session_dir(c->s));
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void output_is_captured_and_exit_status_reported(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"sh", "-c", "echo out {pid}; echo err >&2; exit 3", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_OFF);
	struct trc_session_result res;
	char want[64], log[4096];
	double secs;

	need_root();
	secs = run(c, &cfg, &res);
	snprintf(want, sizeof(want), "out %d\nerr\n", (int)getpid());
	assert_string_equal(c->out, want);
	read_log(c, log, sizeof(log));
	assert_string_equal(log, want);
	assert_true(WIFEXITED(res.status));
	assert_int_equal(WEXITSTATUS(res.status), 3);
	assert_true(secs < 5);
	assert_int_equal(c->polls, 0); /* governor off: the clone is not polled */
	assert_non_null(strstr(trc_session_dir(c->s), "/attach-"));
	assert_non_null(strstr(trc_session_dir(c->s), "-sh"));
}

/* Occupancy rises 10 points a tick; after the cut it stays high until the
 * tool has detached, then falls below the low mark. */
static int rising_then_falling(struct ctx *c, struct trc_clone_state *st, char *err, size_t errlen)
{
	st->forecast_s = -1;
	switch (c->phase) {
	case 0:
		st->occupancy = 0.1 * c->polls;
		if (st->occupancy > 0.70)
			c->phase = 1;
		break;
	case 1:
		st->occupancy = 0.9;
		if (trc_session_tool(c->s) == 0) {
			c->phase = 2;
			st->occupancy = 0.1;
		}
		break;
	default:
		st->occupancy = 0.1;
	}
	return 0;
}

static void governor_cuts_then_restarts_the_tool(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"sh", "-c", "echo started; exec sleep 30", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_RESTART);
	struct trc_session_result res;
	double secs;

	need_root();
	c->script = rising_then_falling;
	cfg.duration_ns = 1500 * MS;
	secs = run(c, &cfg, &res);
	assert_non_null(strstr(c->notices, "above the high mark: cutting tracing"));
	assert_non_null(strstr(c->notices, "governor: buffer 10% below the low mark: restoring "
					   "full detail"));
	/* the detached tool did not end the session; it was started again */
	assert_string_equal(c->out, "started\nstarted\n");
	assert_int_equal(res.gov.lowers, 1);
	assert_int_equal(res.gov.restores, 1);
	assert_true(trc_gov_full_share(&res.gov) > 0 && trc_gov_full_share(&res.gov) < 1);
	/* --duration ended it with SIGINT */
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGINT);
	assert_true(secs >= 1.5 && secs < 5);
}

/* Past the low mark and filling fast; the tool's state two ticks after the cut. */
static int filling_fast(struct ctx *c, struct trc_clone_state *st, char *err, size_t errlen)
{
	st->occupancy = 0.4;
	st->forecast_s = 2.0;
	if (c->polls == 3) {
		char path[64], state = '?';
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)trc_session_tool(c->s));
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%*d %*s %c", &state) != 1)
				state = '?';
			fclose(f);
		}
		c->phase = state;
	}
	return 0;
}

static void forecast_cuts_and_pause_stops_the_tool(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"sleep", "30", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_PAUSE);
	struct trc_session_result res;

	need_root();
	c->script = filling_fast;
	cfg.horizon_s = 5;
	cfg.duration_ns = 300 * MS;
	run(c, &cfg, &res);
	assert_non_null(strstr(c->notices, "governor: buffer 40% and filling: overflow forecast "
					   "in 2.0 s (horizon 5 s): cutting tracing"));
	assert_int_equal(res.gov.lowers, 1);
	assert_true(res.gov.by_forecast);
	assert_int_equal(c->phase, 'T'); /* SIGSTOP */
	/* continued and interrupted at the end */
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGINT);
}

static void exit_ends_the_session_at_once(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"sh", "-c", "exit 0", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_RESTART);
	struct trc_session_result res;
	char err[256];
	uint64_t t0 = clock_now_ns();

	need_root();
	cfg.duration_ns = 60 * NSEC_PER_SEC;
	assert_int_equal(trc_session_new(&cfg, &c->s, err, sizeof(err)), 0);
	assert_int_equal(trc_session_start(c->s, err, sizeof(err)), 0);
	/* the tool is over before the loop runs: its SIGCHLD waits for the loop */
	while (clock_now_ns() - t0 < 200 * MS)
		usleep(10000);
	assert_int_equal(trc_session_run(c->s, &res), 0);
	assert_true(WIFEXITED(res.status));
	assert_int_equal(WEXITSTATUS(res.status), 0);
	assert_true(res.elapsed_ns < 2 * NSEC_PER_SEC);
	assert_int_equal(trc_session_tool(c->s), 0);
}

static void descendant_keeping_the_output_does_not_hold_the_session(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"sh", "-c", "sleep 20 & echo bye", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_OFF);
	struct trc_session_result res;
	char err[256];
	pid_t group;

	need_root();
	assert_int_equal(trc_session_new(&cfg, &c->s, err, sizeof(err)), 0);
	assert_int_equal(trc_session_start(c->s, err, sizeof(err)), 0);
	group = trc_session_tool(c->s);
	assert_int_equal(trc_session_run(c->s, &res), 0);
	kill(-group, SIGKILL); /* the sleep left behind, in the tool's process group */
	assert_string_equal(c->out, "bye\n");
	assert_true(WIFEXITED(res.status));
	assert_true(res.elapsed_ns < 4 * NSEC_PER_SEC);
}

static void sigint_ignored_then_sigkill(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"sh", "-c", "trap '' INT; echo ready; sleep 30", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_OFF);
	struct trc_session_result res;
	double secs;

	need_root();
	cfg.duration_ns = 200 * MS;
	secs = run(c, &cfg, &res);
	assert_string_equal(c->out, "ready\n");
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGKILL);
	assert_true(secs >= 5 && secs < 10);
}

static int gone(struct ctx *c, struct trc_clone_state *st, char *err, size_t errlen)
{
	snprintf(err, errlen, "no clone 1");
	return -ENOENT;
}

static void clone_gone_interrupts_the_tool(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"sleep", "30", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_RESTART);
	struct trc_session_result res;
	double secs;

	need_root();
	c->script = gone;
	secs = run(c, &cfg, &res);
	assert_non_null(strstr(c->notices, "the clone is gone: no clone 1\n"));
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGINT);
	assert_true(secs < 5);
}

static int terminate_on_third(struct ctx *c, struct trc_clone_state *st, char *err, size_t errlen)
{
	st->occupancy = 0;
	st->forecast_s = -1;
	if (c->polls == 3)
		raise(SIGTERM);
	return 0;
}

static void sigterm_ends_the_session(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"sleep", "30", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_RESTART);
	struct trc_session_result res;
	double secs;

	need_root();
	c->script = terminate_on_third;
	secs = run(c, &cfg, &res);
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGINT);
	assert_true(secs < 5);
	assert_int_equal(c->polls, 3); /* no tick after the stop */
}

static void production_pid_is_refused(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"strace", "-p", "4242", NULL};
	pid_t prod[] = {4241, 4242};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_OFF);
	char err[512];

	cfg.forbidden = prod;
	cfg.nforbidden = 2;
	assert_int_equal(trc_session_new(&cfg, &c->s, err, sizeof(err)), 0);
	assert_int_equal(trc_session_start(c->s, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "names pid 4242, a production process"));
	assert_int_equal(trc_session_tool(c->s), 0);
}

static void missing_tool_is_reported(void **state)
{
	struct ctx *c = *state;
	char *argv[] = {"/nonexistent/tracer", NULL};
	struct trc_session_config cfg = config(c, argv, TRC_GOV_OFF);
	char err[512];

	need_root();
	assert_int_equal(trc_session_new(&cfg, &c->s, err, sizeof(err)), 0);
	assert_int_equal(trc_session_start(c->s, err, sizeof(err)), -ECHILD);
	assert_non_null(strstr(err, "cannot start /nonexistent/tracer"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(output_is_captured_and_exit_status_reported),
		T(governor_cuts_then_restarts_the_tool),
		T(forecast_cuts_and_pause_stops_the_tool),
		T(exit_ends_the_session_at_once),
		T(descendant_keeping_the_output_does_not_hold_the_session),
		T(sigint_ignored_then_sigkill),
		T(clone_gone_interrupts_the_tool),
		T(sigterm_ends_the_session),
		T(production_pid_is_refused),
		T(missing_tool_is_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
