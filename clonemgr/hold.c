/*
 * hold.c - production's input is held (cm_clone_opts.freezing) exactly
 * around the freeze, not around the whole CRIU run: CRIU's action script
 * tells the worker when it is about to freeze (pre-dump, the last step before
 * CRIU stops the tasks) and when the images are written (post-dump, still
 * frozen). Two FIFOs in the clone's directory carry it: hold.req (the script
 * writes F or T) and hold.ack (the worker answers F once the hold is in
 * place; the script waits for it at most 2 s, else the dump fails before
 * anything is frozen). The worker keeps both open read-write, so neither side
 * ever blocks on open(). It waits for CRIU on a pidfd, so CRIU's exit is seen
 * at once, not at the next 5 ms tick.
 */
#define LOG_PREFIX "clone"
#include "clonemgr/cm-int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

int cm_hold_open(struct cm_hold *h, const char *clone_dir)
{
	char req[CM_PATH_MAX + 32], ack[CM_PATH_MAX + 32];

	h->req = h->ack = -1;
	h->started = h->ended = 0;
	snprintf(h->dir, sizeof(h->dir), "%s", clone_dir);
	snprintf(req, sizeof(req), "%s/hold.req", clone_dir);
	snprintf(ack, sizeof(ack), "%s/hold.ack", clone_dir);
	unlink(req);
	unlink(ack);
	if (mkfifo(req, 0600) < 0 || mkfifo(ack, 0600) < 0)
		goto fail;
	h->req = open(req, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	h->ack = open(ack, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (h->req < 0 || h->ack < 0)
		goto fail;
	return 0;
fail : {
	int e = -errno;

	cm_hold_close(h);
	return e;
}
}

void cm_hold_close(struct cm_hold *h)
{
	char path[CM_PATH_MAX + 32];

	if (h->req >= 0)
		close(h->req);
	if (h->ack >= 0)
		close(h->ack);
	h->req = h->ack = -1;
	snprintf(path, sizeof(path), "%s/hold.req", h->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/hold.ack", h->dir);
	unlink(path);
}

void cm_hold_script(const struct cm_hold *h, FILE *f)
{
	fprintf(f,
		"# production's input is held from here to post-dump (clonemgr/hold.c)\n"
		"case \"$CRTOOLS_SCRIPT_ACTION\" in\n"
		"pre-dump)\n"
		"\tprintf F >'%s/hold.req' || exit 1\n"
		"\texec timeout 2 head -c 1 '%s/hold.ack' >/dev/null ;;\n"
		"post-dump)\n"
		"\tprintf T >'%s/hold.req' ;;\n"
		"esac\n",
		h->dir, h->dir, h->dir);
}

static void on_word(struct cm_hold *h, const struct cm_clone_opts *o, char w)
{
	if (w == 'F' && !h->started) {
		h->started = 1;
		o->freezing(o->freezing_arg, 1); /* returns once the hold is in place */
		if (write(h->ack, "F", 1) < 0)
			pr_warn("cannot tell CRIU's action script to go on: %s", strerror(errno));
	} else if (w == 'T' && h->started && !h->ended) {
		h->ended = 1;
		o->freezing(o->freezing_arg, 0);
	}
}

int cm_hold_wait(struct cm_hold *h, pid_t pid, int timeout_ms, const struct cm_clone_opts *o)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0), status = 0;
	uint64_t deadline = clock_now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	for (;;) {
		struct pollfd p[2] = {{.fd = h->req, .events = POLLIN},
				      {.fd = pfd, .events = POLLIN}};
		pid_t r = waitpid(pid, &status, WNOHANG);
		char buf[16];
		ssize_t n;

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = -errno;
			goto out;
		}
		if (clock_now_ns() > deadline) {
			pr_err("criu (pid %d) still running after %d ms; killing it", pid,
			       timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			status = -ETIMEDOUT;
			goto out;
		}
		/* without a pidfd (kernel < 5.3), look again every 5 ms */
		poll(p, pfd >= 0 ? 2 : 1, pfd >= 0 ? 1000 : 5);
		while ((n = read(h->req, buf, sizeof(buf))) > 0)
			for (ssize_t i = 0; i < n; i++)
				on_word(h, o, buf[i]);
	}
	{
		char buf[16];
		ssize_t n;

		while ((n = read(h->req, buf, sizeof(buf))) > 0) /* said just before CRIU ended */
			for (ssize_t i = 0; i < n; i++)
				on_word(h, o, buf[i]);
	}
	status = WIFEXITED(status) ? WEXITSTATUS(status)
				   : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
out:
	if (pfd >= 0)
		close(pfd);
	return status;
}
