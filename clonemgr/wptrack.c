/*
 * wptrack.c - dirty-page tracking without soft-dirty: register production's
 * private anonymous memory for asynchronous userfaultfd write-protect, so
 * that CRIU (built with deploy/criu/track-written.patch, `--track-written`)
 * can read which pages were written since its last pass from PAGEMAP_SCAN's
 * PAGE_IS_WRITTEN bit, and write-protect them again, as it would use and
 * reset soft-dirty bits.
 *
 * A userfaultfd is made for the calling process's memory only, so each of
 * production's processes makes its own: one thread is stopped with ptrace
 * (PTRACE_SEIZE + PTRACE_INTERRUPT; the others keep running) and made to run
 *   mmap (a scratch page), userfaultfd (UFFD_USER_MODE_ONLY),
 *   UFFDIO_API (WP_ASYNC | WP_UNPOPULATED), one UFFDIO_REGISTER (MODE_WP)
 *   per private writable anonymous mapping, close, munmap
 * at a `syscall` instruction already in its code (the one it stopped after,
 * or one in its vDSO), never by writing code into it: another thread may be
 * running the same bytes. doppel takes the userfaultfd with pidfd_getfd
 * before the process closes its own, and holds it until the final dump:
 * closing it unregisters the memory and drops the protection.
 * With WP_ASYNC a write to a protected page is resolved by the kernel at
 * once (a minor fault, as with soft-dirty); no thread ever waits on doppel.
 *
 * Left unregistered, so always dumped whole (still correct): file-backed
 * private mappings (the kernel keeps write-protect markers across a drop of
 * their pages, which a scan would report as unchanged), shared memory,
 * mappings made after the registration, and processes under a seccomp
 * filter (a filter that kills on userfaultfd would kill production: such a
 * process is not touched at all). x86-64 only.
 */
#define LOG_PREFIX "wptrack"
#include "clonemgr/cm-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

#if defined(__x86_64__)
#include <linux/userfaultfd.h>
#include <sys/user.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1ULL << 15)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* Linux's syscall restart codes, seen in rax when a thread stopped in a syscall. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

/* One stopped thread that runs syscalls for us. */
struct inj {
	pid_t tid;
	struct user_regs_struct saved;
	unsigned long sysinsn; /* address of a `syscall` instruction in its code */
	int deliver;	       /* a signal it stopped with, given back at detach */
};

static int read_mem(pid_t pid, unsigned long addr, void *buf, size_t n)
{
	struct iovec l = {buf, n}, r = {(void *)addr, n};

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -EFAULT;
}

static int write_mem(pid_t pid, unsigned long addr, const void *buf, size_t n)
{
	struct iovec l = {(void *)buf, n}, r = {(void *)addr, n};

	return process_vm_writev(pid, &l, 1, &r, 1, 0) == (ssize_t)n ? 0 : -EFAULT;
}

/* A `syscall` (0f 05) in the process's vDSO. */
static unsigned long vdso_syscall(pid_t pid)
{
	char path[64], line[512];
	unsigned long lo = 0, hi = 0, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			break;
	fclose(f);
	if (hi > lo && hi - lo <= (1UL << 20)) {
		unsigned char *b = malloc(hi - lo);

		if (b && read_mem(pid, lo, b, hi - lo) == 0)
			for (unsigned long i = 0; i + 1 < hi - lo; i++)
				if (b[i] == 0x0f && b[i + 1] == 0x05) {
					found = lo + i;
					break;
				}
		free(b);
	}
	return found;
}

/*
 * The next stop of a traced thread, within WAIT_STOP_S: a thread in
 * uninterruptible sleep stops only when it leaves it. Given up, the thread
 * stays seized until the helper process exits, which detaches it.
 */
#define WAIT_STOP_S 3
static void on_alarm(int sig)
{
	(void)sig; /* only to interrupt waitpid */
}

static int wait_stop(pid_t tid, int *status)
{
	pid_t w;

	alarm(WAIT_STOP_S); /* the helper's SIGALRM interrupts, without restart */
	w = waitpid(tid, status, __WALL);
	alarm(0);
	if (w == tid)
		return WIFSTOPPED(*status) ? 0 : -ESRCH;
	return errno == EINTR ? -ETIMEDOUT : -errno;
}

/* A thread of pid that is not a zombie (a leader may have exited before its threads). */
static pid_t live_thread(pid_t pid)
{
	char path[64], sp[300], line[128];
	pid_t found = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return pid;
	while (!found && (e = readdir(d))) {
		char state = 0;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(sp, sizeof(sp), "/proc/%d/task/%s/status", pid, e->d_name);
		f = fopen(sp, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "State: %c", &state) == 1)
				break;
		fclose(f);
		if (state && state != 'Z' && state != 'X')
			found = atoi(e->d_name);
	}
	closedir(d);
	return found ? found : pid;
}

static int inj_stop(struct inj *j, pid_t tid)
{
	int st, rc;
	unsigned char insn[2];

	memset(j, 0, sizeof(*j));
	j->tid = tid;
	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0)
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) {
		rc = -errno;
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return rc;
	}
	if ((rc = wait_stop(tid, &st)))
		return rc;
	/* a signal arriving first: handed back at detach */
	if (st >> 16 != PTRACE_EVENT_STOP && WSTOPSIG(st) != SIGTRAP)
		j->deliver = WSTOPSIG(st);
	if (ptrace(PTRACE_GETREGS, tid, 0, &j->saved) < 0) {
		rc = -errno;
		ptrace(PTRACE_DETACH, tid, 0, (void *)(long)j->deliver);
		return rc;
	}
	if ((long)j->saved.orig_rax >= 0 && read_mem(tid, j->saved.rip - 2, insn, 2) == 0 &&
	    insn[0] == 0x0f && insn[1] == 0x05)
		j->sysinsn = j->saved.rip - 2;
	else
		j->sysinsn = vdso_syscall(tid);
	if (!j->sysinsn) {
		ptrace(PTRACE_DETACH, tid, 0, (void *)(long)j->deliver);
		return -ENOEXEC;
	}
	return 0;
}

/* Run one syscall in the stopped thread: its return value (-errno on failure). */
static long inj_call(struct inj *j, long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	struct user_regs_struct r = j->saved;
	int st, rc;

	r.rip = j->sysinsn;
	r.rax = (unsigned long)nr;
	r.orig_rax = (unsigned long)-1; /* no restart of what it was in */
	r.rdi = (unsigned long)a1;
	r.rsi = (unsigned long)a2;
	r.rdx = (unsigned long)a3;
	r.r10 = (unsigned long)a4;
	r.r8 = (unsigned long)a5;
	r.r9 = (unsigned long)a6;
	if (ptrace(PTRACE_SETREGS, j->tid, 0, &r) < 0)
		return -errno;
	/* to the syscall's entry, then to its exit */
	for (int stop = 0; stop < 2;) {
		if (ptrace(PTRACE_SYSCALL, j->tid, 0, 0) < 0)
			return -errno;
		if ((rc = wait_stop(j->tid, &st)))
			return rc;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80))
			stop++;
		else if (st >> 16 == 0 && WSTOPSIG(st) != SIGTRAP)
			j->deliver = WSTOPSIG(st); /* a signal meanwhile: given back later */
	}
	if (ptrace(PTRACE_GETREGS, j->tid, 0, &r) < 0)
		return -errno;
	return (long)r.rax;
}

/*
 * Put the thread back as it was and let it go. A syscall it was stopped in
 * is restarted, as the kernel would have done had we not stopped it there;
 * with a signal to give back, the kernel decides (restart, or EINTR for a
 * handler without SA_RESTART) when it delivers it.
 */
static void inj_release(struct inj *j)
{
	struct user_regs_struct r = j->saved;

	if ((long)r.orig_rax >= 0 && !j->deliver) {
		long err = -(long)r.rax;

		if (err == ERESTARTSYS || err == ERESTARTNOINTR || err == ERESTARTNOHAND) {
			r.rax = r.orig_rax;
			r.rip -= 2;
		} else if (err == ERESTART_RESTARTBLOCK) {
			r.rax = SYS_restart_syscall;
			r.rip -= 2;
		}
	}
	if (ptrace(PTRACE_SETREGS, j->tid, 0, &r) < 0)
		pr_warn("cannot restore the registers of thread %d: %s", j->tid, strerror(errno));
	ptrace(PTRACE_DETACH, j->tid, 0, (void *)(long)j->deliver);
}

/* "Seccomp:" of /proc/PID/status: 0 none, 1 strict, 2 filter; -1 unknown. */
static int seccomp_mode(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	int mode = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode;
}

/* Private, writable, anonymous: what gets registered. */
struct range {
	unsigned long lo, hi;
};

static int anon_ranges(pid_t pid, struct range **out, unsigned *n)
{
	char path[64], line[1024];
	unsigned cap = 0;
	FILE *f;

	*out = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		char perms[8], name[512] = "";
		int off = 0;

		if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu %n", &lo, &hi, perms, &ino, &off) < 4)
			continue;
		if (off > 0)
			sscanf(line + off, "%511[^\n]", name);
		if (perms[1] != 'w' || perms[3] != 'p' || ino != 0)
			continue;
		if (name[0] && strcmp(name, "[heap]") && strcmp(name, "[stack]") &&
		    strncmp(name, "[anon:", 6))
			continue; /* [vvar], [vdso], memfds, deleted files... */
		if (*n == cap) {
			struct range *r = realloc(*out, (cap ? cap * 2 : 64) * sizeof(**out));

			if (!r) {
				fclose(f);
				return -ENOMEM;
			}
			*out = r;
			cap = cap ? cap * 2 : 64;
		}
		(*out)[(*n)++] = (struct range){lo, hi};
	}
	fclose(f);
	return 0;
}

/* Register one process's anonymous memory; its userfaultfd, in doppel, or -errno. */
static int arm_one(pid_t pid, unsigned *regs, unsigned *fails, uint64_t *stopped_us, char *err,
		   size_t errlen)
{
	struct inj j;
	struct range *rs = NULL;
	unsigned nr = 0;
	long scratch, rfd = -1;
	int pidfd = -1, fd = -1, rc;
	uint64_t t0;

	if (seccomp_mode(pid) != 0) {
		snprintf(err, errlen,
			 "process %d runs under seccomp (a filter could kill it on "
			 "userfaultfd): left untracked",
			 pid);
		return -EPERM;
	}
	if ((rc = anon_ranges(pid, &rs, &nr))) {
		snprintf(err, errlen, "cannot read /proc/%d/maps: %s", pid, strerror(-rc));
		return rc;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "pidfd_open(%d): %s", pid, strerror(errno));
		free(rs);
		return rc;
	}
	t0 = clock_now_ns();
	if ((rc = inj_stop(&j, live_thread(pid)))) {
		snprintf(err, errlen, "cannot stop process %d with ptrace: %s", pid,
			 rc == -ENOEXEC ? "no syscall instruction found" : strerror(-rc));
		goto out;
	}
	scratch = inj_call(&j, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scratch < 0 && scratch > -4096) {
		rc = (int)scratch;
		snprintf(err, errlen, "mmap in process %d: %s", pid, strerror(-rc));
		goto release;
	}
	rfd = inj_call(&j, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0, 0,
		       0, 0);
	if (rfd < 0) {
		rc = (int)rfd;
		snprintf(err, errlen, "userfaultfd in process %d: %s", pid, strerror(-rc));
		goto unmap;
	}
	{
		struct uffdio_api api = {.api = UFFD_API,
					 .features = UFFD_FEATURE_WP_ASYNC |
						     UFFD_FEATURE_WP_UNPOPULATED};
		long r;

		if ((rc = write_mem(pid, (unsigned long)scratch, &api, sizeof(api)))) {
			snprintf(err, errlen, "cannot write to process %d's scratch page", pid);
			goto close_remote;
		}
		r = inj_call(&j, SYS_ioctl, rfd, (long)UFFDIO_API, scratch, 0, 0, 0);
		if (r < 0) {
			rc = (int)r;
			snprintf(err, errlen,
				 "this kernel's userfaultfd lacks async write-protect (Linux >= "
				 "6.7): "
				 "%s",
				 strerror(-rc));
			goto close_remote;
		}
	}
	for (unsigned i = 0; i < nr; i++) {
		struct uffdio_register reg = {
			.range = {.start = rs[i].lo, .len = rs[i].hi - rs[i].lo},
			.mode = UFFDIO_REGISTER_MODE_WP,
		};

		if (write_mem(pid, (unsigned long)scratch, &reg, sizeof(reg)) ||
		    inj_call(&j, SYS_ioctl, rfd, (long)UFFDIO_REGISTER, scratch, 0, 0, 0) < 0)
			(*fails)++; /* unmapped meanwhile, or not registrable: dumped whole */
		else
			(*regs)++;
	}
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)rfd, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "pidfd_getfd of process %d's userfaultfd: %s", pid,
			 strerror(errno));
	}
close_remote:
	inj_call(&j, SYS_close, rfd, 0, 0, 0, 0, 0);
unmap:
	inj_call(&j, SYS_munmap, scratch, 4096, 0, 0, 0, 0);
release:
	inj_release(&j);
	*stopped_us += (clock_now_ns() - t0) / 1000;
out:
	close(pidfd);
	free(rs);
	return fd >= 0 ? fd : (rc ? rc : -EIO);
}

/* pid and its descendants (from /proc/PID/task/TID/children), up to max. */
static unsigned tree_pids(pid_t pid, pid_t *out, unsigned n, unsigned max)
{
	char path[64];
	DIR *d;
	struct dirent *e;

	if (n >= max)
		return n;
	out[n++] = pid;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return n;
	while ((e = readdir(d))) {
		char cp[300];
		FILE *f;
		int child;

		if (e->d_name[0] == '.')
			continue;
		snprintf(cp, sizeof(cp), "/proc/%d/task/%s/children", pid, e->d_name);
		f = fopen(cp, "re");
		if (!f)
			continue;
		while (fscanf(f, "%d", &child) == 1)
			n = tree_pids(child, out, n, max);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* In the helper process: arm the tree, fill t (fds are the helper's). */
static int arm_tree(struct cm_wptrack *t, pid_t root, char *err, size_t errlen)
{
	pid_t pids[CM_WPTRACK_MAX];
	unsigned np = tree_pids(root, pids, 0, CM_WPTRACK_MAX);

	err[0] = '\0';
	for (unsigned i = 0; i < np; i++) {
		char e1[256];
		int fd = arm_one(pids[i], &t->ranges, &t->range_failures, &t->stopped_us, e1,
				 sizeof(e1));

		if (fd >= 0) {
			t->fds[t->n++] = fd;
			continue;
		}
		t->untracked++;
		if (!err[0])
			snprintf(err, errlen, "%s", e1);
	}
	return t->n ? 0 : -EOPNOTSUPP;
}

/* What the helper sends back with its userfaultfds. */
struct arm_reply {
	struct cm_wptrack t;
	char err[256];
};

/*
 * The ptrace work runs in a helper process: a stop of a process we trace is
 * reported to the tracer's whole thread group, where the supervisor's own
 * waitpid on production would take it for production's end.
 */
int cm_wptrack_arm(struct cm_wptrack *t, pid_t root, char *err, size_t errlen)
{
	struct arm_reply rep;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * CM_WPTRACK_MAX)];
	} cb;
	struct iovec iov = {&rep, sizeof(rep)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int sv[2], st;
	pid_t helper;
	ssize_t got;

	memset(t, 0, sizeof(*t));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -errno;
	}
	helper = fork();
	if (helper < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -EAGAIN;
	}
	if (helper == 0) {
		struct sigaction sa = {.sa_handler = on_alarm};

		sigaction(SIGALRM, &sa, NULL);
		close(sv[0]);
		memset(&rep, 0, sizeof(rep));
		arm_tree(&rep.t, root, rep.err, sizeof(rep.err));
		if (rep.t.n) {
			struct cmsghdr *c;

			mh.msg_control = cb.b;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * rep.t.n);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * rep.t.n);
			memcpy(CMSG_DATA(c), rep.t.fds, sizeof(int) * rep.t.n);
		}
		_exit(sendmsg(sv[1], &mh, MSG_NOSIGNAL) < 0);
	}
	close(sv[1]);
	mh.msg_control = cb.b;
	mh.msg_controllen = sizeof(cb.b);
	do
		got = recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC);
	while (got < 0 && errno == EINTR);
	close(sv[0]);
	while (waitpid(helper, &st, 0) < 0 && errno == EINTR)
		;
	if (got != (ssize_t)sizeof(rep)) {
		snprintf(err, errlen, "the tracking helper (pid %d) ended without an answer",
			 helper);
		return -EIO;
	}
	*t = rep.t;
	t->n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			memcpy(t->fds, CMSG_DATA(c), sizeof(int) * k);
			t->n = k;
		}
	if (rep.err[0])
		pr_info("written-page tracking: %s", rep.err);
	if (t->n == 0) {
		snprintf(err, errlen, "%s", rep.err[0] ? rep.err : "no process to track");
		return -EOPNOTSUPP;
	}
	return 0;
}

#else /* !__x86_64__ */

int cm_wptrack_arm(struct cm_wptrack *t, pid_t root, char *err, size_t errlen)
{
	(void)root;
	memset(t, 0, sizeof(*t));
	snprintf(err, errlen, "written-page tracking is implemented for x86-64 only");
	return -EOPNOTSUPP;
}

#endif

void cm_wptrack_disarm(struct cm_wptrack *t)
{
	for (unsigned i = 0; i < t->n; i++)
		close(t->fds[i]);
	t->n = 0;
}
