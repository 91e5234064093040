/*
 * cmd-doctor.c - `doppel doctor`: can this host run and clone services?
 * Each check prints ok, warn or FAIL, and for anything not ok, the fix.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "cgroup/cgroup.h"
#include "clonemgr/clonemgr.h"

static int cmd_doctor_exec(int argc, char **argv);

const struct cmd_entry cmd_doctor_entry = {
	.name = "doctor",
	.usage = "[--pid PID [--port PORT] [--state DIR]...]",
	.summary = "check that this host can run and clone services, and say what to fix",
	.help = "Checks: running as root; the kernel; the capabilities CRIU needs; that pid, net,\n"
		"mount, ipc and uts namespaces can be created and a tmpfs mounted in them; that\n"
		"CRIU >= 4.2 is installed and `criu check` passes; where clones' cgroups (memory,\n"
		"CPU and pids limits) can be made. Prints the fix for each\n"
		"problem. $DOPPEL_CRIU names a CRIU binary to use instead of the one found in\n"
		"$PATH, /usr/local/sbin or /usr/sbin. Exit status 0 when nothing failed\n"
		"(warnings allowed), 1 otherwise.\n"
		"\n"
		"With --pid PID, also says whether that running process can be taken by\n"
		"`doppel adopt`, and why not, before anything is frozen: it must be in the\n"
		"host's pid, net and mount namespaces; every fd of its tree is looked at\n"
		"(terminals, devices, inotify/fanotify, io_uring, userfaultfd, perf and bpf fds,\n"
		"and sockets other than TCP, UDP, netlink and unix fail; unix sockets and files\n"
		"open for writing outside the --state dirs are warned about: a clone gets a\n"
		"private copy of such a file); resource limits above doppel's need root; a\n"
		"process that is not a session leader is dumped as a shell job; one whose\n"
		"session began outside doppel's pid namespace (session id 0) cannot be dumped.\n"
		"\n"
		"options:\n"
		"  --pid PID      the process to adopt (and its descendants)\n"
		"  --port PORT    check that it listens on this TCP port\n"
		"  --state DIR    a state dir you will give to `doppel adopt` (repeatable)\n",
	.exec = cmd_doctor_exec,
};

static int failures, warnings;

static void report(int level, const char *what, const char *fix)
{
	static const char *const tag[] = {"ok  ", "warn", "FAIL"};

	printf("%s  %s\n", tag[level], what);
	if (level && fix)
		printf("      fix: %s\n", fix);
	if (level == 1)
		warnings++;
	if (level == 2)
		failures++;
}

static unsigned long long cap_eff(void)
{
	char line[256];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* In a child: the namespaces `doppel run` creates, and a tmpfs mount in them. */
static int try_namespaces(char *why, size_t len)
{
	int p[2], st;
	pid_t pid;
	ssize_t n;

	if (pipe(p) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		const char *step = "unshare(pid, net, mount, ipc, uts)";

		close(p[0]);
		if (unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC |
			    CLONE_NEWUTS) == 0) {
			step = "mount a tmpfs";
			if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
			    mount("doppel-doctor", "/tmp", "tmpfs", 0, NULL) == 0)
				_exit(0);
		}
		dprintf(p[1], "%s: %s", step, strerror(errno));
		_exit(1);
	}
	close(p[1]);
	n = read(p[0], why, len - 1);
	close(p[0]);
	why[n > 0 ? n : 0] = '\0';
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int criu_check(const char *criu, char *out, size_t len)
{
	char cmd[CM_PATH_MAX + 32];
	FILE *p;
	size_t off = 0;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' check 2>&1", criu);
	p = popen(cmd, "re");
	if (!p)
		return -1;
	while (off < len - 1 && fgets(out + off, (int)(len - off), p))
		off = strlen(out);
	st = pclose(p);
	return strstr(out, "Looks good") && st == 0 ? 0 : -1;
}

/* The capabilities CRIU and the namespaces need. */
static void check_caps(void)
{
	static const struct {
		int bit;
		const char *name;
		int level;
		const char *why;
	} caps[] = {
		{21, "CAP_SYS_ADMIN", 2, "namespaces, mounts and CRIU need it"},
		{19, "CAP_SYS_PTRACE", 2, "CRIU seizes the service's threads with ptrace"},
		{12, "CAP_NET_ADMIN", 2, "bringing up loopback in a clone's network namespace"},
		{24, "CAP_SYS_RESOURCE", 1,
		 "without it CRIU logs a harmless RLIMIT_NOFILE error, and cannot dump services "
		 "that "
		 "run as another user (it cannot read their rlimits): run them as root"},
	};
	unsigned long long eff = cap_eff();
	char msg[128], fix[512];

	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int have = (eff >> caps[i].bit) & 1;

		snprintf(msg, sizeof(msg), "%s %s", caps[i].name, have ? "granted" : "missing");
		if (have) {
			report(0, msg, NULL);
			continue;
		}
		snprintf(fix, sizeof(fix),
			 "%s; grant it (run as full root, not in a restricted container)",
			 caps[i].why);
		report(caps[i].level, msg, fix);
	}
}

static void check_namespaces(void)
{
	char msg[1024], what[1100];

	if (try_namespaces(msg, sizeof(msg)) == 0) {
		report(0, "pid, net, mount, ipc and uts namespaces and a tmpfs can be created",
		       NULL);
		return;
	}
	snprintf(what, sizeof(what), "cannot create namespaces: %s", msg);
	report(2, what,
	       "run as root on a kernel with namespaces enabled; in a container, allow "
	       "unshare (e.g. --privileged)");
}

static void check_criu(void)
{
	struct cm_criu criu;
	char msg[1024], out[4096], what[CM_PATH_MAX + 64];
	char *nl;

	if (cm_criu_find(NULL, &criu, msg, sizeof(msg)) < 0) {
		report(2, msg, "./deploy/install.sh builds and installs CRIU >= 4.2");
		return;
	}
	snprintf(what, sizeof(what), "CRIU %s at %s", criu.version, criu.path);
	report(0, what, NULL);
	out[0] = '\0';
	if (criu_check(criu.path, out, sizeof(out)) == 0) {
		report(0, "criu check: Looks good", NULL);
		return;
	}
	nl = strchr(out, '\n');
	if (nl)
		*nl = '\0';
	snprintf(msg, sizeof(msg), "criu check failed: %.900s", out[0] ? out : "no output");
	report(2, msg,
	       "see `criu check` and docs/criu.md; ./deploy/install.sh builds a "
	       "CRIU "
	       "that works on recent kernels");
}

/* Where clones' cgroups go, and whether doppel can make them there. */
static void check_cgroups(void)
{
	static const char *const name[CG_NCTRL] = {"memory", "cpu", "pids"};
	struct cg_host h;
	char msg[CG_NCTRL * (CG_PATH_MAX + 16) + 64];
	size_t off;

	cg_host_detect(&h);
	if (h.version == CG_NONE) {
		snprintf(msg, sizeof(msg), "clones cannot get resource limits: %s", h.why);
		report(1, msg,
		       "mount the cgroup memory controller (cgroup v2 with memory in "
		       "cgroup.controllers, or v1 at /sys/fs/cgroup/memory); until then clones "
		       "run without memory, CPU and pids limits");
		return;
	}
	off = (size_t)snprintf(msg, sizeof(msg), "cgroup v%d for clones' limits:", h.version);
	for (int c = 0; c < CG_NCTRL && off < sizeof(msg); c++)
		off += (size_t)snprintf(msg + off, sizeof(msg) - off, " %s %s", name[c],
					h.mnt[c][0] ? h.mnt[c] : "(absent: not limited)");
	if (access(h.mnt[CG_MEMORY], W_OK) < 0) {
		report(1, msg,
		       "the cgroup hierarchy is read-only here (a container, or systemd's "
		       "ProtectControlGroups=yes): clones run without limits");
		return;
	}
	report(h.mnt[CG_CPU][0] && h.mnt[CG_PIDS][0] ? 0 : 1, msg,
	       "enable the missing controllers to limit clones' CPU and tasks too");
}

/* --pid: can this process be adopted (`doppel adopt`)? Nothing is frozen. */
static void check_adopt(int pid, int port, const char *const *state, unsigned nstate)
{
	struct cm_adopt_report *r = calloc(1, sizeof(*r));
	char what[64];

	if (!r) {
		report(2, "out of memory", NULL);
		return;
	}
	snprintf(what, sizeof(what), "\nprocess %d (doppel adopt):", pid);
	printf("%s\n", what);
	cm_adopt_check(pid, state, nstate, port, r);
	for (unsigned i = 0; i < r->n; i++)
		report(r->f[i].level, r->f[i].what, r->f[i].fix[0] ? r->f[i].fix : NULL);
	if (r->dropped)
		printf("      (%u more findings not shown)\n", r->dropped);
	if (r->fails)
		printf("pid %d cannot be adopted: %u reason(s) above\n", pid, r->fails);
	else
		printf("pid %d can be adopted%s\n", pid,
		       port ? "" : " (give --port to check it listens)");
	free(r);
}

static int opt_state(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	static char abs[CM_MAX_STATE][PATH_MAX];
	static unsigned n;
	const char **dirs = dest;

	if (n == CM_MAX_STATE)
		return cmd_usage_error(e, "at most %d %s dirs", CM_MAX_STATE, opt), -1;
	if (!realpath(text, abs[n]))
		return cmd_usage_error(e, "%s %s: %s", opt, text, strerror(errno)), -1;
	dirs[n] = abs[n];
	n++;
	return 0;
}

static int cmd_doctor_exec(int argc, char **argv)
{
	struct utsname u;
	char msg[1024];
	int pid = 0, port = 0, rc;
	const char *state[CM_MAX_STATE + 1] = {0};
	const struct cli_opt own[] = {
		CLI_INT("pid", &pid, 1, INT_MAX),
		CLI_INT("port", &port, 1, 65535),
		CLI_FN("state", state, opt_state),
		CLI_END,
	};
	const struct cli_opt *const tables[] = {own, NULL};
	unsigned nstate = 0;

	rc = cli_parse_opts(&cmd_doctor_entry, argc, argv, 1, tables, 0);
	if (rc < 0)
		return EXIT_USAGE;
	if (rc < argc)
		return cmd_usage_error(&cmd_doctor_entry, "unexpected argument '%s'", argv[rc]);
	if ((port || state[0]) && !pid)
		return cmd_usage_error(&cmd_doctor_entry, "--port and --state go with --pid");
	while (state[nstate])
		nstate++;
	if (geteuid() == 0)
		report(0, "running as root", NULL);
	else
		report(2, "not running as root", "run doppel as root (sudo doppel ...)");
	uname(&u);
	snprintf(msg, sizeof(msg), "kernel %s %s", u.release, u.machine);
	report(0, msg, NULL);
	check_caps();
	check_namespaces();
	check_criu();
	check_cgroups();
	if (pid)
		check_adopt(pid, port, state, nstate);
	printf("\n%s: %d failure(s), %d warning(s)\n", failures ? "not ready" : "ready", failures,
	       warnings);
	return failures ? EXIT_RUNTIME : 0;
}
