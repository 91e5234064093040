/*
 * attach.c - find a clone's processes, expand a tracer's arguments, refuse
 * production's pids, and start the tracer where it sees the clone's files
 * and the host's pids (see attach.h).
 */
#define LOG_PREFIX "attach"
#include "tracer-glue/attach.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *join_pids(const pid_t *pids, unsigned n)
{
	size_t cap = (size_t)n * 12 + 1, off = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = '\0';
	for (unsigned i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s%d", i ? "," : "", pids[i]);
	return s;
}

/* Replace every {key} in arg; returns a new string or NULL. */
static char *expand_one(const char *arg, const char *const *keys, const char *const *vals,
			unsigned nkeys)
{
	size_t cap = strlen(arg) + 1, off = 0;
	char *out;

	for (unsigned k = 0; k < nkeys; k++)
		for (const char *p = strstr(arg, keys[k]); p; p = strstr(p + 1, keys[k]))
			cap += strlen(vals[k]);
	out = malloc(cap);
	if (!out)
		return NULL;
	while (*arg) {
		unsigned k;

		for (k = 0; k < nkeys; k++)
			if (strncmp(arg, keys[k], strlen(keys[k])) == 0)
				break;
		if (k < nkeys) {
			size_t l = strlen(vals[k]);

			memcpy(out + off, vals[k], l);
			off += l;
			arg += strlen(keys[k]);
		} else {
			out[off++] = *arg++;
		}
	}
	out[off] = '\0';
	return out;
}

int trc_expand_args(char *const *argv, const struct trc_subst *s, char ***out)
{
	char pidbuf[16], *pids = join_pids(s->pids, s->npids);
	const char *keys[] = {"{pids}", "{pid}", "{dir}"};
	const char *vals[3];
	unsigned n = 0;
	char **v;

	if (!pids)
		return -ENOMEM;
	snprintf(pidbuf, sizeof(pidbuf), "%d", s->pid);
	vals[0] = pids;
	vals[1] = pidbuf;
	vals[2] = s->dir ? s->dir : ".";
	while (argv[n])
		n++;
	v = calloc(n + 1, sizeof(*v));
	if (!v) {
		free(pids);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		v[i] = expand_one(argv[i], keys, vals, 3);
		if (!v[i]) {
			trc_free_args(v);
			free(pids);
			return -ENOMEM;
		}
	}
	free(pids);
	*out = v;
	return 0;
}

void trc_free_args(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

int trc_check_args(char *const *argv, const pid_t *forbidden, unsigned n, char *err, size_t errlen)
{
	for (char *const *a = argv; *a; a++) {
		const char *p = *a;

		/* every run of digits in the argument ("-p 12", "-p12", "--pid=12,13") */
		while (*p) {
			if (isdigit((unsigned char)*p) &&
			    (p == *a || !isalnum((unsigned char)p[-1]))) {
				char *end;
				long v = strtol(p, &end, 10);

				if (!isalnum((unsigned char)*end))
					for (unsigned i = 0; i < n; i++)
						if (v == forbidden[i]) {
							snprintf(err, errlen,
								 "argument '%s' names pid %ld, a "
								 "production "
								 "process: doppel attaches tools "
								 "to clones only "
								 "(use {pid} or {pids} for the "
								 "clone's)",
								 *a, v);
							return -EPERM;
						}
				p = end;
			} else {
				p++;
			}
		}
	}
	return 0;
}

static void __attribute__((noreturn)) child_fail(int fd, const char *what)
{
	int e = errno;

	dprintf(fd, "%s: %s", what, strerror(e));
	_exit(127);
}

pid_t trc_spawn(char *const *argv, pid_t clone_pid, int dir_fd, int out_fd, char *err,
		size_t errlen)
{
	char path[64], msg[512];
	int mnt, sp[2];
	ssize_t n;
	pid_t pid;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", clone_pid);
	mnt = open(path, O_RDONLY | O_CLOEXEC);
	if (mnt < 0) {
		int e = errno;

		snprintf(err, errlen, "the clone (pid %d) is gone: %s", clone_pid, strerror(e));
		return -e;
	}
	if (pipe2(sp, O_CLOEXEC) < 0) {
		int e = errno;

		close(mnt);
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(e));
		return -e;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(mnt);
		close(sp[0]);
		close(sp[1]);
		snprintf(err, errlen, "cannot fork: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		sigset_t all;

		close(sp[0]);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		setpgid(0, 0);
		/* The clone's files, in a copy of its mount namespace... */
		if (setns(mnt, CLONE_NEWNS) < 0)
			child_fail(sp[1], "entering the clone's mount namespace");
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			child_fail(sp[1], "copying the clone's mount namespace");
		/* ...with the host's pids in /proc: a proc mounted here shows our pid namespace. */
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			child_fail(sp[1], "mounting the host's /proc");
		if (fchdir(dir_fd) < 0)
			child_fail(sp[1], "entering the output directory");
		if (out_fd >= 0) {
			int devnull = open("/dev/null", O_RDONLY);

			if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_fd, 1) < 0 ||
			    dup2(out_fd, 2) < 0)
				child_fail(sp[1], "redirecting output");
		}
		if (sp[1] > 3)
			syscall(SYS_close_range, 3U, (unsigned)sp[1] - 1, 0U);
		syscall(SYS_close_range, (unsigned)sp[1] + 1, ~0U, 0U);
		execvp(argv[0], argv);
		child_fail(sp[1], argv[0]);
	}
	close(mnt);
	close(sp[1]);
	n = read(sp[0], msg, sizeof(msg) - 1);
	close(sp[0]);
	if (n > 0) {
		msg[n] = '\0';
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "cannot start %s: %s", argv[0], msg);
		return -ECHILD;
	}
	setpgid(pid, pid); /* also here: no race with the child's own call */
	return pid;
}
