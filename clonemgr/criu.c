/*
 * criu.c - find CRIU, run it as a child process, read its stats and errors.
 */
#define LOG_PREFIX "criu"
#include "clonemgr/cm-int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define CRIU_MIN_MAJOR 4
#define CRIU_MIN_MINOR 2

static int version_ok(const char *v)
{
	int major = 0, minor = 0;

	if (sscanf(v, "%d.%d", &major, &minor) < 1)
		return 0;
	return major > CRIU_MIN_MAJOR || (major == CRIU_MIN_MAJOR && minor >= CRIU_MIN_MINOR);
}

/* Run `path --version`; fills ver. 0 or -errno. */
static int criu_version(const char *path, char *ver, size_t len)
{
	char cmd[CM_PATH_MAX + 32], line[256];
	FILE *p;
	int rc = -ENOEXEC;

	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", path);
	p = popen(cmd, "re");
	if (!p)
		return -errno;
	while (fgets(line, sizeof(line), p))
		if (sscanf(line, "Version: %31s", ver) == 1) {
			rc = 0;
			break;
		}
	pclose(p);
	(void)len;
	return rc;
}

int cm_criu_find(const char *path, struct cm_criu *out, char *err, size_t errlen)
{
	static const char *const fixed[] = {"/usr/local/sbin/criu", "/usr/sbin/criu",
					    "/usr/local/bin/criu", "/usr/bin/criu"};
	char found_old[CM_PATH_MAX] = "", old_ver[32] = "";
	const char *path_env = getenv("PATH");
	char cand[CM_PATH_MAX];

	memset(out, 0, sizeof(*out));
	if (!path || !*path)
		path = getenv("DOPPEL_CRIU");
	if (path && *path) {
		char ver[32] = "";

		if (access(path, X_OK) < 0) {
			snprintf(err, errlen,
				 "CRIU not found at %s: %s (install it with deploy/install.sh, or "
				 "give the right --criu)",
				 path, strerror(errno));
			return -ENOENT;
		}
		if (criu_version(path, ver, sizeof(ver)) < 0) {
			snprintf(err, errlen, "%s does not answer `--version` like CRIU does",
				 path);
			return -ENOEXEC;
		}
		if (!version_ok(ver)) {
			snprintf(err, errlen,
				 "CRIU %s at %s is too old: doppel needs CRIU >= %d.%d (older ones "
				 "fail on "
				 "recent kernels); run deploy/install.sh, which builds it from "
				 "Debian's source",
				 ver, path, CRIU_MIN_MAJOR, CRIU_MIN_MINOR);
			return -ENOEXEC;
		}
		snprintf(out->path, sizeof(out->path), "%s", path);
		snprintf(out->version, sizeof(out->version), "%s", ver);
		return 0;
	}
	/* $PATH first, then the usual places (sbin is often not in a user's PATH). */
	for (int pass = 0; pass < 2; pass++) {
		const char *p = pass == 0 ? path_env : NULL;
		unsigned fi = 0;

		for (;;) {
			char ver[32] = "";

			if (pass == 0) {
				const char *colon;
				size_t len;

				if (!p || !*p)
					break;
				colon = strchr(p, ':');
				len = colon ? (size_t)(colon - p) : strlen(p);
				snprintf(cand, sizeof(cand), "%.*s/criu", (int)len, p);
				p = colon ? colon + 1 : NULL;
			} else {
				if (fi == sizeof(fixed) / sizeof(fixed[0]))
					break;
				snprintf(cand, sizeof(cand), "%s", fixed[fi++]);
			}
			if (access(cand, X_OK) < 0 || criu_version(cand, ver, sizeof(ver)) < 0)
				continue;
			if (version_ok(ver)) {
				snprintf(out->path, sizeof(out->path), "%s", cand);
				snprintf(out->version, sizeof(out->version), "%s", ver);
				return 0;
			}
			if (!found_old[0]) {
				snprintf(found_old, sizeof(found_old), "%s", cand);
				snprintf(old_ver, sizeof(old_ver), "%s", ver);
			}
		}
	}
	if (found_old[0]) {
		snprintf(err, errlen,
			 "CRIU %s at %s is too old: doppel needs CRIU >= %d.%d (older ones fail on "
			 "recent kernels); run deploy/install.sh, which builds it from Debian's "
			 "source",
			 old_ver, found_old, CRIU_MIN_MAJOR, CRIU_MIN_MINOR);
		return -ENOEXEC;
	}
	snprintf(
		err, errlen,
		"CRIU is not installed: doppel needs CRIU >= %d.%d to clone; run deploy/install.sh",
		CRIU_MIN_MAJOR, CRIU_MIN_MINOR);
	return -ENOENT;
}

pid_t cm_criu_spawn(const struct cm_criu *criu, char *const argv[], const char *out_path,
		    const struct cm_run *run)
{
	int out;
	pid_t pid;

	out = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (out < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(out);
		return -e;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (run->netns_fd >= 0 && setns(run->netns_fd, CLONE_NEWNET) < 0)
			_exit(125);
		if (run->cgroup && cg_enter(run->cgroup) < 0)
			_exit(124);
		/* Park the fds above every target first, so no dup2 clobbers another. */
		for (unsigned i = 0; i < run->nfds; i++) {
			int hi = fcntl(run->fds[i], F_DUPFD, 100);

			if (hi < 0 || dup2(hi, 3 + (int)i) < 0)
				_exit(126);
		}
		dup2(devnull, 0);
		dup2(out, 1);
		dup2(out, 2);
		syscall(SYS_close_range, 3U + run->nfds, ~0U, 0U);
		execv(criu->path, argv);
		_exit(127);
	}
	close(out);
	return pid;
}

int cm_criu_wait(pid_t pid, int timeout_ms)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	int status, waited = 0;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (timeout_ms > 0 && waited >= timeout_ms) {
			pr_err("criu (pid %d) still running after %d ms; killing it", pid,
			       timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
		waited += 5;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int cm_criu_run(const struct cm_criu *criu, char *const argv[], const char *out_path,
		const struct cm_run *run)
{
	pid_t pid = cm_criu_spawn(criu, argv, out_path, run);

	return pid < 0 ? pid : cm_criu_wait(pid, run->timeout_ms);
}

char *cm_criu_errors(const char *log_path, char *buf, size_t len)
{
	char line[1024];
	FILE *f = fopen(log_path, "re");
	size_t off = 0;
	int n = 0;

	buf[0] = '\0';
	if (!f)
		return buf;
	while (fgets(line, sizeof(line), f) && n < 4) {
		char *e = strstr(line, "Error (");
		char *nl;

		if (!e || strstr(line, "RLIMIT_NOFILE"))
			continue;
		nl = strchr(e, '\n');
		if (nl)
			*nl = '\0';
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s", n ? "; " : "",
					e);
		if (off >= len)
			break;
		n++;
	}
	fclose(f);
	return buf;
}

void cm_criu_parse_stats(const char *out_path, struct cm_dump_stats *st)
{
	char line[256];
	FILE *f = fopen(out_path, "re");
	unsigned long long v;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Frozen time: %llu us", &v) == 1)
			st->frozen_us = v;
		else if (sscanf(line, "Freezing time: %llu us", &v) == 1)
			st->freezing_us = v;
		else if (sscanf(line, "Memory dump time: %llu us", &v) == 1)
			st->memdump_us = v;
		else if (sscanf(line, "Memory write time: %llu us", &v) == 1)
			st->memwrite_us = v;
		else if (sscanf(line, "Memory pages written: %llu", &v) == 1)
			st->pages_written = v;
		else if (sscanf(line, "Memory pages scanned: %llu", &v) == 1)
			st->pages_scanned = v;
		else if (sscanf(line, "Memory pages skipped from parent: %llu", &v) == 1)
			st->pages_skipped_parent = v;
	}
	fclose(f);
}

/* nftw has no user argument: the running total lives in the calling thread. */
static _Thread_local uint64_t du_total;

static int du_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		du_total += (uint64_t)st->st_blocks * 512;
	return 0;
}

uint64_t cm_du(const char *path)
{
	du_total = 0;
	nftw(path, du_cb, 16, FTW_PHYS | FTW_MOUNT);
	return du_total;
}
