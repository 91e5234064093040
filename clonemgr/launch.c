/*
 * launch.c - start a service as the init of fresh namespaces, dumpable by
 * CRIU, and stop such an init.
 *
 * Facts this file relies on (measured; see docs/criu.md):
 *   - any fd inherited from the parent's mount namespace makes `criu dump`
 *     fail ("Can't lookup mount=.. for fd=.."): close everything above 2;
 *   - a session leader outside the pid namespace makes dump fail: setsid()
 *     inside it;
 *   - CRIU archives the contents of every tmpfs the service can see while it
 *     is frozen, even overmounted ones: detach the host's /dev/shm and give it
 *     an empty one of its own;
 *   - each cgroup mount costs dump time and services rarely need them;
 *   - CRIU cannot dump nsfs mounts (such as those under /run/netns): detach them.
 */
#define LOG_PREFIX "launch"
#include "clonemgr/clonemgr.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h> /* struct clone_args */
#include <sched.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/netns.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Child side: report "step: errno" to the parent and die. */
static void __attribute__((noreturn)) child_fail(int fd, const char *step)
{
	char msg[512];
	int e = errno;
	int n = snprintf(msg, sizeof(msg), "%s: %s", step, strerror(e));

	if (n > 0 && write(fd, msg, (size_t)n) < 0) {
		/* the parent will see a bare failure */
	}
	_exit(127);
}

static int lo_up_here(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		rc = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			rc = -errno;
	}
	close(fd);
	return rc;
}

/*
 * Namespace files bind-mounted on the host (`ip netns add`, container
 * runtimes) are copied into the service's mount namespace, and CRIU cannot
 * dump an nsfs mount ("doesn't have a proper root mount"). The service has
 * no use for them: detach them all.
 */
static void detach_nsfs_mounts(void)
{
	char line[4096], path[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
		const char *dash = strstr(line, " - ");

		if (!dash || strncmp(dash + 3, "nsfs ", 5) != 0)
			continue;
		if (sscanf(line, "%*d %*d %*s %*s %4095s", path) == 1)
			umount2(path,
				MNT_DETACH); /* octal escapes (spaces in paths) are rare here */
	}
	fclose(f);
}

/* In the new namespaces, as pid 1; never returns. */
static void __attribute__((noreturn))
child_main(const struct cm_service_spec *spec, int logw, int syncw, int gor)
{
	char go;

	sigset_t all;
	int devnull;

	/* Undo what the supervisor set for itself: exec keeps ignored signals and the mask. */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	if (setsid() < 0)
		child_fail(syncw, "setsid");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(syncw, "making mounts private");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		child_fail(syncw, "mounting /proc for the new pid namespace");
	/*
	 * Detach the host's /dev/shm rather than mount over it: CRIU archives the
	 * contents of every tmpfs in the dumped mount namespace, overmounted ones
	 * included, while production is frozen.
	 */
	umount2("/dev/shm", MNT_DETACH);
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		child_fail(syncw, "mounting an empty /dev/shm");
	if (!spec->keep_cgroup_mounts)
		umount2("/sys/fs/cgroup", MNT_DETACH); /* absent is fine */
	detach_nsfs_mounts();
	for (unsigned i = 0; i < spec->nstate; i++)
		if (mount(spec->state_dirs[i], spec->state_dirs[i], NULL, MS_BIND, NULL) < 0)
			child_fail(syncw, "bind-mounting a state dir onto itself");
	if (lo_up_here() < 0)
		child_fail(syncw, "bringing up loopback");
	if (spec->chdir && chdir(spec->chdir) < 0)
		child_fail(syncw, "chdir");
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logw, 1) < 0 || dup2(logw, 2) < 0)
		child_fail(syncw, "setting up stdin/stdout/stderr");
	/* Wait until the parent has prepared what the service needs in its netns. */
	if (read(gor, &go, 1) != 1)
		_exit(126);
	/* Keep only 0-2 and the sync pipe (close-on-exec: EOF tells the parent exec worked). */
	if (syncw > 3)
		syscall(SYS_close_range, 3U, (unsigned)syncw - 1, 0U);
	syscall(SYS_close_range, (unsigned)syncw + 1, ~0U, 0U);
	execvp(spec->argv[0], spec->argv);
	child_fail(syncw, spec->argv[0]);
}

/* The service died before we could look at it: say how, and what it said last. */
static void exited_at_once(pid_t pid, int log_fd, char *err, size_t errlen)
{
	char out[4096], *last = out, *p;
	int st = 0;
	ssize_t n;

	waitpid(pid, &st, 0);
	fcntl(log_fd, F_SETFL, O_NONBLOCK);
	n = read(log_fd, out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	for (p = out; *p; p++)
		if (*p == '\n' && p[1])
			last = p + 1;
	if (WIFEXITED(st))
		snprintf(err, errlen, "the service exited (exit status %d)%s%s", WEXITSTATUS(st),
			 *last ? "; its last words: " : "", last);
	else
		snprintf(err, errlen, "the service exited (killed by signal %d: %s)%s%s",
			 WIFSIGNALED(st) ? WTERMSIG(st) : 0,
			 WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "unknown status",
			 *last ? "; its last words: " : "", last);
}

int cm_service_launch(const struct cm_service_spec *spec, struct cm_service *out, char *err,
		      size_t errlen)
{
	struct clone_args args;
	int logp[2] = {-1, -1}, syncp[2] = {-1, -1}, gop[2] = {-1, -1}, rc;
	char msg[512];
	ssize_t n;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->netns_fd = out->log_fd = -1;
	if (spec->nstate > CM_MAX_STATE) {
		snprintf(err, errlen, "at most %d state dirs", CM_MAX_STATE);
		return -EINVAL;
	}
	for (unsigned i = 0; i < spec->nstate; i++) {
		if (spec->state_dirs[i][0] != '/' || strlen(spec->state_dirs[i]) >= CM_PATH_MAX) {
			snprintf(err, errlen, "state dir '%s' must be an absolute path",
				 spec->state_dirs[i]);
			return -EINVAL;
		}
		if (access(spec->state_dirs[i], R_OK | W_OK | X_OK) < 0) {
			rc = -errno;
			snprintf(err, errlen, "state dir %s: %s (create it first)",
				 spec->state_dirs[i], strerror(errno));
			return rc;
		}
		snprintf(out->state_dirs[i], CM_PATH_MAX, "%s", spec->state_dirs[i]);
	}
	out->nstate = spec->nstate;
	snprintf(out->name, sizeof(out->name), "%s", spec->name);
	if (pipe2(logp, O_CLOEXEC) < 0 || pipe2(syncp, O_CLOEXEC) < 0 ||
	    pipe2(gop, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
		goto fail;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	args.exit_signal = SIGCHLD;
	pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		rc = -errno;
		if (errno == EPERM)
			snprintf(err, errlen,
				 "cannot create namespaces for the service: permission denied; run "
				 "doppel as root (it needs CAP_SYS_ADMIN)");
		else
			snprintf(err, errlen, "cannot create namespaces for the service: %s",
				 strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_main(spec, logp[1], syncp[1], gop[0]);
	close(logp[1]);
	close(syncp[1]);
	close(gop[0]);
	logp[1] = syncp[1] = gop[0] = -1;
	if (spec->prepare) {
		int nsfd = netns_open_pid(pid);

		rc = nsfd < 0 ? nsfd : spec->prepare(spec->prepare_arg, nsfd, err, errlen);
		if (nsfd >= 0)
			close(nsfd);
		if (rc) {
			if (nsfd < 0)
				snprintf(err, errlen,
					 "cannot open the service's network namespace: %s",
					 strerror(-rc));
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			goto fail;
		}
	}
	if (write(gop[1], "g", 1) != 1) {
		rc = -errno;
		snprintf(err, errlen, "cannot start the service: %s", strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto fail;
	}
	close(gop[1]);
	gop[1] = -1;
	do
		n = read(syncp[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	close(syncp[0]);
	syncp[0] = -1;
	if (n > 0) {
		msg[n] = '\0';
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "cannot start the service: %s", msg);
		rc = -ECHILD;
		goto fail;
	}
	out->pid = pid;
	out->log_fd = logp[0];
	out->netns_fd = netns_open_pid(pid);
	if (out->netns_fd < 0) {
		exited_at_once(pid, logp[0], err, errlen);
		close(logp[0]);
		out->pid = 0;
		out->log_fd = -1;
		return -ECHILD;
	}
	pr_info("service started name=%s pid=%d cmd=%s state_dirs=%u", spec->name, pid,
		spec->argv[0], spec->nstate);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (logp[i] >= 0)
			close(logp[i]);
		if (syncp[i] >= 0)
			close(syncp[i]);
		if (gop[i] >= 0)
			close(gop[i]);
	}
	return rc;
}

int cm_service_alive(const struct cm_service *svc)
{
	char path[64], buf[256];
	FILE *f;
	int alive = 0;

	if (svc->pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", svc->pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		const char *rp = strrchr(buf, ')');

		alive = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
	}
	fclose(f);
	return alive;
}

/* Signals the process has a handler for (SigCgt in /proc/PID/status). */
static uint64_t caught_signals(pid_t pid)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigCgt: %llx", &mask) == 1)
			break;
	fclose(f);
	return mask;
}

static int reaped(pid_t pid)
{
	pid_t r = waitpid(pid, NULL, WNOHANG);

	/* ECHILD: not our child (or reaped elsewhere): look at /proc instead. */
	if (r < 0 && errno == ECHILD) {
		struct cm_service tmp = {.pid = pid};

		return !cm_service_alive(&tmp);
	}
	return r == pid;
}

int cm_stop_init(pid_t pid, int timeout_ms)
{
	static const int polite[] = {SIGTERM, SIGINT, SIGQUIT};
	uint64_t caught = caught_signals(pid);
	int sig = SIGKILL;
	struct timespec ts = {0, 20 * 1000 * 1000};

	if (pid <= 0)
		return 0;
	for (unsigned i = 0; i < sizeof(polite) / sizeof(polite[0]); i++)
		if (caught & (1ULL << (polite[i] - 1))) {
			sig = polite[i];
			break;
		}
	if (timeout_ms <= 0)
		sig = SIGKILL;
	kill(pid, sig);
	if (sig != SIGKILL) {
		for (int waited = 0; waited < timeout_ms; waited += 20) {
			if (reaped(pid))
				return sig;
			nanosleep(&ts, NULL);
		}
		pr_warn("pid %d did not stop %d ms after %s; killing it", pid, timeout_ms,
			strsignal(sig));
		sig = SIGKILL;
		kill(pid, SIGKILL);
	}
	for (int i = 0; i < 500 && !reaped(pid); i++)
		nanosleep(&ts, NULL);
	return sig;
}

void cm_service_free(struct cm_service *svc)
{
	if (svc->netns_fd >= 0)
		close(svc->netns_fd);
	if (svc->log_fd >= 0)
		close(svc->log_fd);
	svc->netns_fd = svc->log_fd = -1;
}

static int lo_up_cb(void *arg)
{
	(void)arg;
	return lo_up_here();
}

int cm_netns_lo_up(int netns_fd)
{
	return netns_run(netns_fd, lo_up_cb, NULL);
}

/* unshare a fresh netns on this thread, keep an fd to it, bring lo up, come back. */
int cm_netns_new(void)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), fd, rc;

	if (self < 0)
		return -errno;
	if (unshare(CLONE_NEWNET) < 0) {
		rc = -errno;
		close(self);
		return rc;
	}
	fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	rc = fd < 0 ? -errno : lo_up_here();
	if (setns(self, CLONE_NEWNET) < 0) {
		pr_perror("cannot return to own network namespace");
		abort();
	}
	close(self);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}
