/*
 * adopt.c - services doppel did not start (`doppel adopt`): a process tree
 * in the host's namespaces, registered by pid, never restarted, re-parented
 * or signalled; what can stop it from being cloned (`doppel doctor --pid`);
 * and how its clones are restored.
 *
 * CRIU dumps such a tree without its namespaces (they are CRIU's own), so a
 * restore puts the tree in whatever namespaces CRIU runs in. A clone is thus
 * restored by a small init made here: clone3() into new pid, mount, ipc and
 * uts namespaces, setns() into the clone's fresh network namespace (loopback
 * up, the service's own address added to it), the state copies and the
 * copies of the other files the service writes bind-mounted over the
 * originals, a /proc of the new pid namespace; then it runs
 * `criu restore -d` as its child, stays as the namespace's init and reaps.
 * Its host pid is the clone's pid: SIGKILL to it ends the whole clone.
 * The restored processes keep their pids (free in the new pid namespace).
 *
 * Threads: cm_service_adopt/cm_adopt_check run anywhere; cm_adopt_restore
 * blocks (worker thread). The init child only makes system calls between
 * clone3() and its exit.
 */
#define LOG_PREFIX "adopt"
#include "clonemgr/cm-int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h> /* struct clone_args */
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/netns.h"

#define TREE_MAX 256
#define ADOPT_RESTORE_TIMEOUT_MS (120 * 1000)

/* ---- the process tree ---- */

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512], *rp;
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
		sscanf(rp + 2, "%*c %d", &ppid);
	fclose(f);
	return ppid;
}

/* pid and its descendants (pid first). Returns the count. */
static unsigned tree_pids(pid_t root, pid_t *out, unsigned max)
{
	unsigned n = 0, grew = 1;
	DIR *d;
	struct dirent *de;

	if (max == 0)
		return 0;
	out[n++] = root;
	while (grew && n < max) {
		grew = 0;
		d = opendir("/proc");
		if (!d)
			break;
		while ((de = readdir(d)) && n < max) {
			pid_t p = (pid_t)atoi(de->d_name), pp;
			unsigned i, known = 0;

			if (p <= 0)
				continue;
			for (i = 0; i < n; i++)
				if (out[i] == p)
					known = 1;
			if (known || (pp = ppid_of(p)) <= 0)
				continue;
			for (i = 0; i < n; i++)
				if (out[i] == pp) {
					out[n++] = p;
					grew = 1;
					break;
				}
		}
		closedir(d);
	}
	return n;
}

static int same_ns(pid_t pid, const char *ns)
{
	char a[64], b[64];
	struct stat sa, sb;

	snprintf(a, sizeof(a), "/proc/%d/ns/%s", pid, ns);
	snprintf(b, sizeof(b), "/proc/self/ns/%s", ns);
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return -1;
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

static pid_t sid_of(pid_t pid)
{
	char path[64], buf[512], *rp;
	int ppid = 0, pgrp = 0, sid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
		sscanf(rp + 2, "%*c %d %d %d", &ppid, &pgrp, &sid);
	fclose(f);
	return sid;
}

int cm_adopt_shell_job(pid_t pid)
{
	return sid_of(pid) != pid;
}

/*
 * The first process of the tree whose session began outside doppel's pid
 * namespace (its session id reads 0 here: a shell of a parent namespace, as in
 * a CI runner's container), or 0. CRIU refuses to dump such a process, even as
 * a shell job (cr-dump.c: "A session leader ... is outside of its pid namespace").
 */
static pid_t session_outside(pid_t root)
{
	pid_t pids[TREE_MAX];
	unsigned n = tree_pids(root, pids, TREE_MAX);

	for (unsigned i = 0; i < n; i++)
		if (sid_of(pids[i]) == 0)
			return pids[i];
	return 0;
}

#define SESSION_OUTSIDE_FIX                                                                       \
	"start the service with setsid (or as a systemd unit) so that it leads a session of its " \
	"own, or run doppel in the pid namespace where the service's session began"

/* ---- the listening address ---- */

/* Socket inodes of the tree's fds. */
static unsigned tree_socket_inodes(const pid_t *pids, unsigned npids, unsigned long *ino,
				   unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < npids; i++) {
		char dir[64], path[320], link[128];
		struct dirent *de;
		DIR *d;

		snprintf(dir, sizeof(dir), "/proc/%d/fd", pids[i]);
		d = opendir(dir);
		if (!d)
			continue;
		while ((de = readdir(d)) && n < max) {
			ssize_t l;
			unsigned long v;

			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			l = readlink(path, link, sizeof(link) - 1);
			if (l <= 0)
				continue;
			link[l] = 0;
			if (sscanf(link, "socket:[%lu]", &v) == 1)
				ino[n++] = v;
		}
		closedir(d);
	}
	return n;
}

static int has_ino(const unsigned long *ino, unsigned n, unsigned long v)
{
	for (unsigned i = 0; i < n; i++)
		if (ino[i] == v)
			return 1;
	return 0;
}

/* One row of /proc/net/tcp{,6}: the local address (hex), port, state and inode. */
static int tcp_row(const char *line, char local[64], unsigned *lport, unsigned *st,
		   unsigned long *inode)
{
	return sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*s %*s %lu", local, lport,
		      st, inode) == 4;
}

int cm_adopt_owns_conn(pid_t pid, const unsigned char addr[4], unsigned port)
{
	pid_t pids[TREE_MAX];
	unsigned long ino[1024], inode = 0;
	unsigned n = 0, lport, st;
	uint32_t want;
	char line[512], local[64];
	FILE *f = fopen("/proc/net/tcp", "re");

	if (!f)
		return -1;
	memcpy(&want, addr, 4); /* /proc/net/tcp prints the address as a native u32 */
	while (fgets(line, sizeof(line), f))
		if (tcp_row(line, local, &lport, &st, &inode) &&
		    (uint32_t)strtoul(local, NULL, 16) == want && lport == port)
			break;
		else
			inode = 0;
	fclose(f);
	if (!inode)
		return -1; /* gone already, or in TIME_WAIT (inode 0) */
	n = tree_socket_inodes(pids, tree_pids(pid, pids, TREE_MAX), ino, 1024);
	return has_ino(ino, n, inode);
}

int cm_adopt_listen_addr(pid_t pid, int port, char *addr, size_t len)
{
	static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	pid_t pids[TREE_MAX];
	unsigned long ino[1024];
	unsigned npids = tree_pids(pid, pids, TREE_MAX);
	unsigned nino = tree_socket_inodes(pids, npids, ino, 1024);
	int found = 0;

	snprintf(addr, len, "127.0.0.1");
	for (unsigned fi = 0; fi < 2; fi++) {
		char line[512], local[64];
		unsigned lport, st;
		unsigned long inode;
		FILE *f = fopen(files[fi], "re");

		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (!tcp_row(line, local, &lport, &st, &inode))
				continue;
			if (st != 0x0A || (int)lport != port || !has_ino(ino, nino, inode))
				continue;
			if (fi == 0 && !found) {
				struct in_addr a;

				a.s_addr = (in_addr_t)strtoul(local, NULL, 16);
				if (a.s_addr != htonl(INADDR_ANY))
					inet_ntop(AF_INET, &a, addr, (socklen_t)len);
			}
			found = 1;
		}
		fclose(f);
	}
	return found ? 0 : -ENOENT;
}

/* ---- adopting ---- */

int cm_service_adopt(pid_t pid, const char *name, const char *const *state_dirs, unsigned nstate,
		     int port, struct cm_service *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->netns_fd = out->log_fd = -1;
	if (nstate > CM_MAX_STATE) {
		snprintf(err, errlen, "at most %d state dirs", CM_MAX_STATE);
		return -EINVAL;
	}
	out->pid = pid;
	if (!cm_service_alive(out)) {
		out->pid = 0;
		snprintf(err, errlen, "no running process with pid %d (check --pid)", pid);
		return -ESRCH;
	}
	if (same_ns(pid, "pid") != 1 || same_ns(pid, "net") != 1 || same_ns(pid, "mnt") != 1) {
		out->pid = 0;
		snprintf(
			err, errlen,
			"pid %d runs in namespaces of its own (a container?): doppel adopt takes "
			"processes in the host's pid, net and mount namespaces; run `doppel doctor "
			"--pid %d`",
			pid, pid);
		return -EINVAL;
	}
	pid_t outside = session_outside(pid);
	if (outside) {
		out->pid = 0;
		snprintf(err, errlen,
			 "pid %d's session began outside doppel's pid namespace (its session id "
			 "reads 0 here) and CRIU cannot dump such a process: " SESSION_OUTSIDE_FIX,
			 outside);
		return -EINVAL;
	}
	for (unsigned i = 0; i < nstate; i++) {
		if (state_dirs[i][0] != '/' || strlen(state_dirs[i]) >= CM_PATH_MAX) {
			snprintf(err, errlen, "state dir '%s' must be an absolute path",
				 state_dirs[i]);
			return -EINVAL;
		}
		snprintf(out->state_dirs[i], CM_PATH_MAX, "%s", state_dirs[i]);
	}
	out->nstate = nstate;
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (cm_adopt_listen_addr(pid, port, out->addr, sizeof(out->addr)) < 0) {
		out->pid = 0;
		snprintf(err, errlen,
			 "pid %d (or a process it started) does not listen on TCP port %d; check "
			 "--port",
			 pid, port);
		return -ENOENT;
	}
	out->netns_fd = netns_open_pid(pid);
	if (out->netns_fd < 0) {
		int e = out->netns_fd;

		out->pid = 0;
		snprintf(err, errlen, "cannot open pid %d's network namespace: %s", pid,
			 strerror(-e));
		return e;
	}
	out->adopted = 1;
	pr_info("adopted pid=%d name=%s addr=%s port=%d state_dirs=%u", pid, name, out->addr, port,
		nstate);
	return 0;
}

/* ---- what can stop a clone (doppel doctor --pid) ---- */

static void add(struct cm_adopt_report *r, int level, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add(struct cm_adopt_report *r, int level, const char *fix, const char *fmt, ...)
{
	struct cm_adopt_finding *f;
	va_list ap;

	if (level == CM_ADOPT_FAIL)
		r->fails++;
	if (r->n == CM_ADOPT_FINDINGS) {
		r->dropped++;
		return;
	}
	f = &r->f[r->n++];
	f->level = level;
	va_start(ap, fmt);
	vsnprintf(f->what, sizeof(f->what), fmt, ap);
	va_end(ap);
	snprintf(f->fix, sizeof(f->fix), "%s", fix ? fix : "");
}

static int under_state(const char *path, const char *const *state_dirs, unsigned nstate)
{
	for (unsigned i = 0; i < nstate; i++) {
		size_t l = strlen(state_dirs[i]);

		if (strncmp(path, state_dirs[i], l) == 0 && (path[l] == '/' || path[l] == 0))
			return 1;
	}
	return 0;
}

static unsigned fd_flags(pid_t pid, const char *fd)
{
	char path[96], line[128];
	unsigned flags = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid, fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "flags: %o", &flags) == 1)
			break;
	fclose(f);
	return flags;
}

/* Which /proc/net table lists this socket inode ("" if none). */
static const char *socket_kind(unsigned long inode)
{
	static const char *const files[] = {"tcp",  "tcp6",    "udp",	 "udp6",
					    "unix", "netlink", "packet", "raw"};
	char want[32], path[64], line[1024];

	snprintf(want, sizeof(want), " %lu", inode);
	for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f;
		int hit = 0;

		snprintf(path, sizeof(path), "/proc/net/%s", files[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (!hit && fgets(line, sizeof(line), f)) {
			char *p = strstr(line, want);

			hit = p && (p[strlen(want)] == ' ' || p[strlen(want)] == '\n');
		}
		fclose(f);
		if (hit)
			return files[i];
	}
	return "";
}

/* Files a clone must not share with production: open for writing outside state dirs. */
static int writable_outside(pid_t pid, const char *fd, const char *link, const char *const *sd,
			    unsigned nsd)
{
	char path[96];
	struct stat st;
	unsigned fl;

	if (link[0] != '/' || under_state(link, sd, nsd) || !strncmp(link, "/dev/", 5))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, fd);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	fl = fd_flags(pid, fd) & O_ACCMODE;
	return fl == O_WRONLY || fl == O_RDWR;
}

static const char *const ok_devices[] = {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/random",
					 "/dev/full"};

/*
 * Is the mount a path fd is on one of pid's mount namespace? An fd inherited
 * from a process of another mount namespace is not, and CRIU cannot dump it
 * ("Can't lookup mount=N for fd=..."). 1 yes, 0 no, -1 unknown.
 */
static int fd_mount_known(pid_t pid, const char *fd)
{
	char path[320], line[512];
	int mnt = -1, id, known = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid, fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "mnt_id: %d", &mnt) == 1)
			break;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	if (mnt < 0 || !(f = fopen(path, "re")))
		return -1;
	while (!known && fgets(line, sizeof(line), f))
		known = sscanf(line, "%d", &id) == 1 && id == mnt;
	fclose(f);
	return known;
}

static void check_fd(struct cm_adopt_report *r, pid_t pid, const char *fd, const char *link,
		     const char *const *sd, unsigned nsd)
{
	unsigned long ino;

	if (link[0] == '/' && fd_mount_known(pid, fd) == 0) {
		add(r, CM_ADOPT_FAIL,
		    "start the service with only the descriptors it opens itself (systemd does; "
		    "from a shell, close inherited fds above 2)",
		    "pid %d fd %s: %s was opened in another mount namespace (an inherited fd): "
		    "CRIU cannot dump it",
		    pid, fd, link);
		return;
	}

	if (sscanf(link, "socket:[%lu]", &ino) == 1) {
		const char *k = socket_kind(ino);

		if (!strncmp(k, "tcp", 3) || !strncmp(k, "udp", 3) || !strcmp(k, "netlink"))
			return;
		if (!strcmp(k, "unix")) {
			add(r, CM_ADOPT_WARN,
			    "a unix socket whose peer is outside the tree (journald, a local "
			    "database) cannot be dumped; point the service's logs to a file",
			    "pid %d fd %s: a unix socket (fine if listening or both ends are in "
			    "the tree)",
			    pid, fd);
			return;
		}
		add(r, CM_ADOPT_FAIL, "CRIU cannot dump it; run the service under `doppel run`",
		    "pid %d fd %s: a %s socket doppel cannot clone", pid, fd, k[0] ? k : "kind of");
		return;
	}
	if (!strcmp(link, "anon_inode:inotify") || !strcmp(link, "anon_inode:[fanotify]") ||
	    !strcmp(link, "anon_inode:[io_uring]") || !strcmp(link, "anon_inode:[userfaultfd]") ||
	    !strcmp(link, "anon_inode:[perf_event]") || !strncmp(link, "anon_inode:bpf", 14)) {
		add(r, CM_ADOPT_FAIL,
		    "not supported for adopted services (CRIU restores watches and rings only in "
		    "the namespaces it dumped them from); run the service under `doppel run`",
		    "pid %d fd %s: %s", pid, fd, link);
		return;
	}
	if (!strncmp(link, "/dev/pts/", 9) || !strncmp(link, "/dev/tty", 8)) {
		add(r, CM_ADOPT_FAIL,
		    "start the service detached from a terminal (setsid, </dev/null, output to a "
		    "file)",
		    "pid %d fd %s: a terminal (%s)", pid, fd, link);
		return;
	}
	if (!strncmp(link, "/dev/", 5)) {
		for (unsigned i = 0; i < sizeof(ok_devices) / sizeof(ok_devices[0]); i++)
			if (!strcmp(link, ok_devices[i]))
				return;
		add(r, CM_ADOPT_FAIL, "CRIU cannot clone an open device", "pid %d fd %s: device %s",
		    pid, fd, link);
		return;
	}
	if (writable_outside(pid, fd, link, sd, nsd))
		add(r, CM_ADOPT_WARN,
		    "each clone gets a private copy of it; to give the clone the file's directory "
		    "as it was at the freeze, declare it with --state DIR",
		    "pid %d fd %s: %s is open for writing outside the state dirs", pid, fd, link);
}

/* Hard limits above ours need CAP_SYS_RESOURCE to restore. */
static void check_limits(struct cm_adopt_report *r, pid_t pid)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		static const struct {
			const char *name;
			int res;
		} lim[] = {{"Max open files", RLIMIT_NOFILE},
			   {"Max processes", RLIMIT_NPROC},
			   {"Max locked memory", RLIMIT_MEMLOCK},
			   {"Max stack size", RLIMIT_STACK}};

		for (unsigned i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
			size_t l = strlen(lim[i].name);
			char soft[32], hard[32];
			struct rlimit mine;

			if (strncmp(line, lim[i].name, l) != 0 ||
			    sscanf(line + l, " %31s %31s", soft, hard) != 2 ||
			    getrlimit(lim[i].res, &mine) < 0)
				continue;
			if (strcmp(hard, "unlimited") != 0 && mine.rlim_max != RLIM_INFINITY &&
			    strtoull(hard, NULL, 10) <= mine.rlim_max)
				continue;
			if (!strcmp(hard, "unlimited") && mine.rlim_max == RLIM_INFINITY)
				continue;
			if (geteuid() != 0)
				add(r, CM_ADOPT_FAIL,
				    "run doppel as root (CAP_SYS_RESOURCE restores higher limits)",
				    "pid %d: %s hard limit %s is above doppel's", pid, lim[i].name,
				    hard);
		}
	}
	fclose(f);
}

int cm_adopt_check(pid_t pid, const char *const *state_dirs, unsigned nstate, int port,
		   struct cm_adopt_report *r)
{
	pid_t pids[TREE_MAX];
	unsigned npids;
	struct cm_service probe = {.pid = pid};
	char addr[64], exe[256], path[64];
	ssize_t l;

	memset(r, 0, sizeof(*r));
	if (!cm_service_alive(&probe)) {
		add(r, CM_ADOPT_FAIL, "give the pid of a running process", "no process with pid %d",
		    pid);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	l = readlink(path, exe, sizeof(exe) - 1);
	if (l <= 0) {
		add(r, CM_ADOPT_FAIL, "run doppel as root",
		    "cannot read pid %d's executable (a kernel thread, or no permission)", pid);
		return 0;
	}
	exe[l] = 0;
	npids = tree_pids(pid, pids, TREE_MAX);
	add(r, CM_ADOPT_OK, NULL, "pid %d runs %s; its tree has %u process%s", pid, exe, npids,
	    npids == 1 ? "" : "es");
	if (geteuid() != 0)
		add(r, CM_ADOPT_FAIL, "run doppel as root", "doppel is not running as root");
	if (same_ns(pid, "pid") != 1 || same_ns(pid, "net") != 1 || same_ns(pid, "mnt") != 1)
		add(r, CM_ADOPT_FAIL,
		    "adopt a process of the host's namespaces; a containerised service is "
		    "cloned with its runtime's checkpoint (see docs/deploy.md)",
		    "pid %d runs in namespaces of its own", pid);
	else
		add(r, CM_ADOPT_OK, NULL, "in the host's pid, net and mount namespaces");
	pid_t outside = session_outside(pid);
	if (outside)
		add(r, CM_ADOPT_FAIL, SESSION_OUTSIDE_FIX,
		    "pid %d's session began outside doppel's pid namespace (session id 0 here): "
		    "CRIU cannot dump it",
		    outside);
	else if (cm_adopt_shell_job(pid))
		add(r, CM_ADOPT_WARN,
		    "start it with setsid (or as a systemd unit) to be its own session",
		    "pid %d is not a session leader: dumped as a shell job, its clone joins a new "
		    "session",
		    pid);
	if (port > 0) {
		if (cm_adopt_listen_addr(pid, port, addr, sizeof(addr)) == 0)
			add(r, CM_ADOPT_OK, NULL, "listens on %s:%d", addr, port);
		else
			add(r, CM_ADOPT_FAIL, "check --port", "does not listen on TCP port %d",
			    port);
	}
	check_limits(r, pid);
	for (unsigned i = 0; i < npids; i++) {
		char dir[64], fp[320], link[512];
		struct dirent *de;
		DIR *d;

		snprintf(dir, sizeof(dir), "/proc/%d/fd", pids[i]);
		d = opendir(dir);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(fp, sizeof(fp), "%s/%s", dir, de->d_name);
			l = readlink(fp, link, sizeof(link) - 1);
			if (l <= 0)
				continue;
			link[l] = 0;
			check_fd(r, pids[i], de->d_name, link, state_dirs, nstate);
		}
		closedir(d);
	}
	return 0;
}

/* ---- files a clone gets its own copy of ---- */

/* Regular files the tree has open for writing outside the state dirs (deduplicated). */
static unsigned private_files(const struct cm_service *svc, char (*paths)[CM_PATH_MAX],
			      unsigned max)
{
	const char *sd[CM_MAX_STATE];
	pid_t pids[TREE_MAX];
	unsigned npids = tree_pids(svc->pid, pids, TREE_MAX), n = 0;

	for (unsigned i = 0; i < svc->nstate; i++)
		sd[i] = svc->state_dirs[i];
	for (unsigned i = 0; i < npids; i++) {
		char dir[64], fp[320], link[CM_PATH_MAX];
		struct dirent *de;
		DIR *d;

		snprintf(dir, sizeof(dir), "/proc/%d/fd", pids[i]);
		d = opendir(dir);
		if (!d)
			continue;
		while ((de = readdir(d)) && n < max) {
			ssize_t l;
			unsigned k;

			snprintf(fp, sizeof(fp), "%s/%s", dir, de->d_name);
			l = readlink(fp, link, sizeof(link) - 1);
			if (l <= 0)
				continue;
			link[l] = 0;
			if (strstr(link, " (deleted)") ||
			    !writable_outside(pids[i], de->d_name, link, sd, svc->nstate))
				continue;
			for (k = 0; k < n && strcmp(paths[k], link); k++)
				;
			if (k == n)
				snprintf(paths[n++], CM_PATH_MAX, "%s", link);
		}
		closedir(d);
	}
	return n;
}

static int copy_file(const char *src, const char *dst)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rc = 0;
	ssize_t n = 0;

	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	{
		/* CRIU checks the mode (and owner) of each file it reopens */
		struct stat st;

		if (fstat(in, &st) == 0 &&
		    (fchown(out, st.st_uid, st.st_gid) < 0 || fchmod(out, st.st_mode & 07777) < 0))
			rc = -errno;
	}
	while (!rc && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
	if (n < 0)
		rc = -errno;
	close(in);
	close(out);
	return rc;
}

/* ---- the clone's init ---- */

struct init_args {
	const struct cm_service *svc;
	const struct cm_clone_opts *o;
	struct cm_clone *c;
	const char *images;
	int netns;
	int report; /* write end: criu's exit status (int), then EOF */
	char (*files)[CM_PATH_MAX];
	unsigned nfiles;
	char *const *argv; /* criu restore ... */
	const char *criu_out;
};

static int add_addr_cb(void *arg)
{
	return netns_lo_add_addr("lo:1", arg);
}

static void __attribute__((noreturn)) init_fail(int fd, int code)
{
	if (write(fd, &code, sizeof(code)) < 0) {
		/* the parent sees EOF */
	}
	_exit(1);
}

/* Read the in-namespace pid CRIU wrote (raw syscalls: we are a fork of a threaded process). */
static pid_t read_pidfile(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	pid_t p = 0;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		p = p * 10 + (buf[i] - '0');
	return p;
}

static void __attribute__((noreturn)) init_main(const struct init_args *a, const char *pidfile)
{
	int st, code;
	pid_t criu, root;

	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	{
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	if (setns(a->netns, CLONE_NEWNET) < 0)
		init_fail(a->report, -1000 - errno);
	if (setsid() < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		init_fail(a->report, -2000 - errno);
	for (unsigned i = 0; i < a->svc->nstate; i++) {
		char src[CM_PATH_MAX + 32];

		snprintf(src, sizeof(src), "%s/state-%u", a->c->dir, i);
		if (mount(src, a->svc->state_dirs[i], NULL, MS_BIND, NULL) < 0)
			init_fail(a->report, -3000 - errno);
	}
	for (unsigned i = 0; i < a->nfiles; i++) {
		char src[CM_PATH_MAX + 32];

		snprintf(src, sizeof(src), "%s/files/%u", a->c->dir, i);
		if (mount(src, a->files[i], NULL, MS_BIND, NULL) < 0)
			init_fail(a->report, -4000 - errno);
	}
	/* The init, criu and what it restores live in the clone's cgroup (its limits). */
	if (a->c->cg.version != CG_NONE) {
		int e = cg_enter(&a->c->cg);

		if (e < 0)
			init_fail(a->report, -7000 + e);
	}
	criu = fork();
	if (criu < 0)
		init_fail(a->report, -5000 - errno);
	if (criu == 0) {
		int out = open(a->criu_out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (out < 0 || devnull < 0)
			_exit(126);
		dup2(devnull, 0);
		dup2(out, 1);
		dup2(out, 2);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		execv(a->o->criu->path, a->argv);
		_exit(127);
	}
	while (waitpid(criu, &st, 0) < 0 && errno == EINTR)
		;
	code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	root = code == 0 ? read_pidfile(pidfile) : 0;
	if (code == 0 && root <= 0)
		code = -6000;
	if (write(a->report, &code, sizeof(code)) < 0) {
		/* the parent sees EOF */
	}
	close(a->report);
	if (code)
		_exit(1);
	/* The namespace's init: reap orphans; end with the service's root process. */
	for (;;) {
		pid_t p = wait(&st);

		if (p == root)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		if (p < 0 && errno == ECHILD)
			_exit(0);
	}
}

static void init_error(int code, const struct cm_clone *c, char *err, size_t errlen)
{
	static const char *const step[] = {"",
					   "entering its network namespace",
					   "mounting /proc in its pid namespace",
					   "mounting a state copy over its state dir",
					   "mounting a private copy over a file it writes",
					   "starting criu",
					   "reading criu's pidfile",
					   "joining its cgroup (its limits)"};
	int k = -code / 1000, e = -code % 1000;

	if (k >= 1 && k <= 7)
		snprintf(err, errlen, "cannot prepare clone %u: %s: %s", c->id, step[k],
			 k == 6 ? "no pid" : strerror(e));
	else
		snprintf(err, errlen, "cannot prepare clone %u (code %d)", c->id, code);
}

int cm_adopt_restore(const struct cm_service *svc, const struct cm_clone_opts *o,
		     const char *images, struct cm_clone *c, char *err, size_t errlen)
{
	static char files[32][CM_PATH_MAX]; /* one clone job at a time (jobs.c) */
	char out[CM_PATH_MAX + 32], log[CM_PATH_MAX + 32], pidfile[CM_PATH_MAX + 32];
	char fdir[CM_PATH_MAX + 32], errs[1024];
	char *argv[32];
	char store[32][CM_PATH_MAX + 32];
	int nargs = 0, rep[2] = {-1, -1}, netns = -1, rc, code = 0;
	struct init_args a;
	struct clone_args ca;
	uint64_t t0 = clock_now_ns();
	unsigned nfiles;
	pid_t init;
	ssize_t n;

#define ARG(...)                                                           \
	do {                                                               \
		snprintf(store[nargs], sizeof(store[nargs]), __VA_ARGS__); \
		argv[nargs] = store[nargs];                                \
		argv[++nargs] = NULL;                                      \
	} while (0)
	snprintf(out, sizeof(out), "%s/restore.out", c->dir);
	snprintf(log, sizeof(log), "%s/restore.log", c->dir);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", c->dir);
	ARG("criu");
	ARG("restore");
	ARG("-D");
	ARG("%s", images);
	ARG("-d");
	ARG("--tcp-close");
	ARG("--file-locks");
	if (c->cg.version != CG_NONE)
		ARG("--manage-cgroups=ignore"); /* it runs inside the clone's cgroup already */
	if (cm_adopt_shell_job(svc->pid))
		ARG("--shell-job");
	ARG("--pidfile");
	ARG("%s", pidfile);
	ARG("-o");
	ARG("%s", log);
	ARG("-v2");
#undef ARG
	/* Private copies of the files it writes outside its state dirs. */
	nfiles = private_files(svc, files, 32);
	snprintf(fdir, sizeof(fdir), "%s/files", c->dir);
	if (nfiles && mkdir(fdir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", fdir, strerror(errno));
		return rc;
	}
	for (unsigned i = 0; i < nfiles; i++) {
		char dst[CM_PATH_MAX + 48];

		snprintf(dst, sizeof(dst), "%s/%u", fdir, i);
		rc = copy_file(files[i], dst);
		if (rc) {
			snprintf(err, errlen, "cannot copy %s for clone %u: %s", files[i], c->id,
				 strerror(-rc));
			return rc;
		}
	}
	netns = cm_netns_new();
	if (netns < 0) {
		snprintf(err, errlen, "cannot create a network namespace for clone %u: %s", c->id,
			 strerror(-netns));
		return netns;
	}
	/* 127.0.0.0/8 is on the clone's loopback already (and a /32 of it would change the
	 * source address its clients get); another address is added */
	if (svc->addr[0] && strncmp(svc->addr, "127.", 4) &&
	    (rc = netns_run(netns, add_addr_cb, (void *)svc->addr)) < 0) {
		snprintf(err, errlen,
			 "cannot add the service's address %s to clone %u's loopback: %s",
			 svc->addr, c->id, strerror(-rc));
		goto out;
	}
	if (o->prepare_netns) {
		rc = o->prepare_netns(o->prepare_arg, c->id - o->first_id, netns, err, errlen);
		if (rc)
			goto out;
	}
	if (pipe2(rep, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	a = (struct init_args){svc, o, c, images, netns, rep[1], files, nfiles, argv, out};
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	ca.exit_signal = SIGCHLD;
	init = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (init < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create namespaces for clone %u: %s", c->id,
			 strerror(errno));
		goto out;
	}
	if (init == 0)
		init_main(&a, pidfile);
	close(rep[1]);
	rep[1] = -1;
	{
		struct pollfd pfd = {.fd = rep[0], .events = POLLIN};

		if (poll(&pfd, 1, ADOPT_RESTORE_TIMEOUT_MS) != 1) {
			kill(init, SIGKILL);
			waitpid(init, NULL, 0);
			rc = -ETIMEDOUT;
			snprintf(err, errlen, "CRIU did not restore clone %u within %d s; see %s",
				 c->id, ADOPT_RESTORE_TIMEOUT_MS / 1000, log);
			goto out;
		}
	}
	n = read(rep[0], &code, sizeof(code));
	if (n != sizeof(code) || code != 0) {
		waitpid(init, NULL, 0);
		rc = -EIO;
		if (n == sizeof(code) && code < 0) {
			init_error(code, c, err, errlen);
			goto out;
		}
		cm_criu_errors(log, errs, sizeof(errs));
		if (!errs[0])
			cm_criu_errors(out, errs, sizeof(errs));
		snprintf(err, errlen,
			 "CRIU could not restore clone %u (criu exit %d): %s (CRIU's log: %s)",
			 c->id, code, errs[0] ? errs : "no error line in its log", log);
		goto out;
	}
	c->pid = init;
	c->netns_fd = netns;
	netns = -1;
	c->log_fd = -1; /* its output goes to its private copies of production's files */
	c->restore_us = (clock_now_ns() - t0) / 1000;
	rc = 0;
out:
	if (rep[0] >= 0)
		close(rep[0]);
	if (rep[1] >= 0)
		close(rep[1]);
	if (netns >= 0)
		close(netns);
	return rc;
}

int cm_adopt_wait_listen(const struct cm_service *svc, const struct cm_clone *c, int port,
			 int timeout_ms)
{
	return cm_wait_listen_on(c->netns_fd, svc->addr[0] ? svc->addr : "127.0.0.1", port,
				 timeout_ms, c->pid);
}
