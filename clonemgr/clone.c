/*
 * clone.c - make live clones of a running service with CRIU (see clonemgr.h
 * for the algorithm).
 *
 * CRIU options and why (measured on Linux 6.18 with CRIU 4.2.1; docs/criu.md):
 *   --leave-running        production goes on after the dump;
 *   --tcp-close            established connections are production's: the clone
 *                          gets them closed, production keeps them (verified);
 *   --tcp-established      instead, when the caller continues them in the clone
 *                          (cm_clone_opts.peers): production's ends are dumped with
 *                          their sequence numbers and queues (CRIU leaves repair
 *                          mode on them as it thaws production), restored in the
 *                          clone facing the peers the caller made there;
 *   --skip-in-flight       a connection still in the listener's accept queue at
 *                          the freeze stays production's alone (without it the
 *                          dump fails: "In-flight connection"); the clone gets
 *                          its copy of that connection's bytes through doppel;
 *   --network-lock skip    CRIU would otherwise lock TCP with iptables and spend
 *                          ~80 ms of the frozen window running iptables-restore;
 *                          with --tcp-close nothing needs locking;
 *   --external net[INO]    the service's network namespace is not dumped at
 *                          all (no links, routes, iptables, sysctls while frozen);
 *                          each clone is restored into a fresh one we make and
 *                          pass with --inherit-fd, loopback already up;
 *   --file-locks           databases lock their files (InnoDB);
 *   --external mnt[DIR]    each state dir is its own bind mount, replaced at
 *                          restore by the clone's copy.
 * Together: frozen time ~45 ms instead of ~165 ms for a small redis.
 * Files kept per clone dir: dump.log/dump.out, restore.log/restore.out (CRIU's
 * own logs), log (the clone's stdout/stderr), pid, state-N (state copies).
 */
#define LOG_PREFIX "clone"
#include "clonemgr/cm-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/netns.h"
#include "common/pidns.h"
#include "common/size.h"

#define DUMP_TIMEOUT_MS (300 * 1000)
#define RESTORE_TIMEOUT_MS (120 * 1000)
void cm_arg_add(struct cm_argv *a, const char *fmt, ...)
{
	va_list ap;

	if (a->n >= CM_MAX_ARGS - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(a->store[a->n], sizeof(a->store[a->n]), fmt, ap);
	va_end(ap);
	a->v[a->n] = a->store[a->n];
	a->v[++a->n] = NULL;
}

static void say(cm_progress_fn progress, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(cm_progress_fn progress, void *arg, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pr_info("%s", line);
	if (progress)
		progress(arg, line);
}

static int mkdir_private(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		int e = errno;

		snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
		return -e;
	}
	chmod(path, 0700);
	return 0;
}

/* A path is put inside single quotes in the action script. */
static int shell_safe(const char *s)
{
	return !strchr(s, '\'') && !strchr(s, '\n');
}

/*
 * The action script CRIU runs at each step of the dump; at post-dump (tasks
 * still frozen) it brings each clone-0 state copy up to date.
 */
/* hold: the FIFOs of the hold around the freeze (hold.c), or NULL. */
static int write_action_script(const char *path, const struct cm_service *svc,
			       const struct cm_clone_opts *o, const char *clone_dir,
			       const struct cm_hold *hold, char *err, size_t errlen)
{
	FILE *f = fopen(path, "we");

	if (!f) {
		int e = errno;

		snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
		return -e;
	}
	fprintf(f, "#!/bin/sh\n# Run by criu dump.\n");
	if (hold)
		cm_hold_script(hold, f);
	if (svc->nstate) {
		fprintf(f, "# the final copy of the state dirs while frozen\n");
		fprintf(f, "[ \"$CRTOOLS_SCRIPT_ACTION\" = post-dump ] || exit 0\n");
		fprintf(f, "exec '%s' state-sync --stats '%s/sync.stats'", o->doppel_exe,
			clone_dir);
		for (unsigned i = 0; i < svc->nstate; i++)
			fprintf(f, " '%s' '%s/state-%u'", svc->state_dirs[i], clone_dir, i);
		fprintf(f, "\n");
	}
	fprintf(f, "exit 0\n");
	if (fclose(f) != 0 || chmod(path, 0700) < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

static void read_sync_stats(const char *clone_dir, struct cm_dump_stats *st)
{
	char path[CM_PATH_MAX + 32];
	unsigned long long bytes = 0, us = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sync.stats", clone_dir);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fscanf(f, "bytes=%llu us=%llu", &bytes, &us) == 2) {
		st->final_sync_bytes = bytes;
		st->final_sync_us = us;
	}
	fclose(f);
}

/* Inode of the network namespace of pid. */
static unsigned long ns_ino(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	return stat(path, &st) < 0 ? 0 : (unsigned long)st.st_ino;
}

/* Inode of the pipe behind the service's stdout, or 0. */
static unsigned long stdout_pipe_ino(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/1", pid);
	if (stat(path, &st) < 0 || !S_ISFIFO(st.st_mode))
		return 0;
	return (unsigned long)st.st_ino;
}

/* A free TCP port on addr inside netns_fd (bind to port 0 and ask). */
static int free_port_in(int netns_fd, const char *addr)
{
	struct net_endpoint ep;
	char text[64], perr[128];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, port = -EADDRNOTAVAIL;

	snprintf(text, sizeof(text), "%s:1", addr);
	if (netaddr_parse(text, &ep, perr, sizeof(perr)) < 0)
		return -EINVAL;
	((struct sockaddr_in *)&ep.ss)->sin_port = 0;
	ep.netns_fd = netns_fd;
	fd = netaddr_listen(&ep, 1, 0, perr, sizeof(perr));
	if (fd < 0)
		return fd;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	close(fd);
	return port;
}

/*
 * Start `criu page-server` on the other host and wait until it is ready
 * (--status-fd: a probe connection would use up its single session).
 */
static pid_t start_page_server(const struct cm_clone_opts *o, const char *clone_dir, int port,
			       char *err, size_t errlen)
{
	struct cm_argv *a = calloc(1, sizeof(*a));
	char out[CM_PATH_MAX + 32], log[CM_PATH_MAX + 32], ready;
	struct pollfd pfd;
	int st[2];
	pid_t pid;

	if (!a || pipe2(st, O_CLOEXEC) < 0) {
		free(a);
		snprintf(err, errlen, "cannot prepare the page server: %s", strerror(errno));
		return -ENOMEM;
	}
	snprintf(out, sizeof(out), "%s/page-server.out", clone_dir);
	snprintf(log, sizeof(log), "%s/page-server.log", clone_dir);
	cm_arg_add(a, "criu");
	cm_arg_add(a, "page-server");
	cm_arg_add(a, "--address");
	cm_arg_add(a, "%s", o->host_addr);
	cm_arg_add(a, "--port");
	cm_arg_add(a, "%d", port);
	cm_arg_add(a, "-D");
	cm_arg_add(a, "%s", o->host_images_dir);
	cm_arg_add(a, "-o");
	cm_arg_add(a, "%s", log);
	cm_arg_add(a, "-v3"); /* logs who connected and when the session ended */
	cm_arg_add(a, "--status-fd");
	cm_arg_add(a, "3");
	{
		struct cm_run run = {&st[1], 1, o->host_netns_fd, 0, NULL};

		pid = cm_criu_spawn(o->criu, a->v, out, &run);
	}
	close(st[1]);
	free(a);
	if (pid < 0) {
		close(st[0]);
		snprintf(err, errlen, "cannot start criu page-server: %s", strerror(-pid));
		return pid;
	}
	pfd.fd = st[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) != 1 || read(st[0], &ready, 1) != 1) {
		close(st[0]);
		kill(pid, SIGKILL);
		cm_criu_wait(pid, 0);
		snprintf(err, errlen, "criu page-server on %s:%d did not start; see %s",
			 o->host_addr, port, log);
		return -EIO;
	}
	close(st[0]);
	return pid;
}

/*
 * Stopped tasks of production's process (its threads; 'T' stopped, 't'
 * stopped by a tracer), counted from /proc/PID/task/TID/stat.
 */
static int stopped_tasks(pid_t pid)
{
	char path[64], buf[512];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		char *p;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", pid, e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ' &&
		    (p[2] == 'T' || p[2] == 't'))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/*
 * After a failed dump (CRIU killed, timed out or in error), production must
 * not stay frozen. CRIU stops the tasks with PTRACE_SEIZE + PTRACE_INTERRUPT
 * (no freezer cgroup: we do not pass --freeze-cgroup); when CRIU dies the
 * kernel detaches its tracees and they run on (measured: CRIU SIGKILLed in
 * the middle of a dump leaves redis-server in state S). We check it, give the
 * kernel a moment, and if a task is still stopped (and was not before the
 * dump) send production SIGCONT. Either way the log says so.
 */
static void thaw_after_failed_dump(pid_t pid, int stopped_before)
{
	int n = 0;

	for (int i = 0; i < 100 && (n = stopped_tasks(pid)) > stopped_before; i++)
		usleep(10 * 1000);
	if (n <= stopped_before) {
		pr_info("production (pid %d) runs after CRIU failed: no task left stopped", pid);
		return;
	}
	kill(pid, SIGCONT);
	usleep(50 * 1000);
	n = stopped_tasks(pid);
	if (n <= stopped_before)
		pr_warn("production thawed after CRIU failed (pid %d: tasks left stopped, "
			"SIGCONT sent)",
			pid);
	else
		pr_err("production (pid %d) still has %d task(s) stopped after CRIU failed and "
		       "SIGCONT; see /proc/%d/task/*/stat",
		       pid, n, pid);
}

/* Are production's open connections to be continued in the clones (cm_clone_opts.peers)? */
static int exact_wanted(const struct cm_service *svc, const struct cm_clone_opts *o)
{
	return o->peers && !svc->adopted && o->host_netns_fd < 0;
}

#define MAX_ENDS 4096 /* connections continued per clone */

/* The service's established connections as dumped; none (and why) when they cannot be read. */
static void read_ends(const struct cm_clone_opts *o, struct tcp_end **ends, unsigned *n,
		      cm_progress_fn progress, void *arg)
{
	int rc;

	*ends = calloc(MAX_ENDS, sizeof(**ends));
	rc = *ends ? cm_tcp_ends(o->images_dir, *ends, MAX_ENDS) : -ENOMEM;
	if (rc < 0) {
		say(progress, arg,
		    "WARNING: cannot read production's open connections from CRIU's images (%s): "
		    "the clones get them closed",
		    strerror(-rc));
		rc = 0;
	}
	*n = (unsigned)rc;
	if (rc)
		say(progress, arg,
		    "%d connection(s) were open at the freeze: each clone continues them where "
		    "production stopped",
		    rc);
}

/*
 * The frozen dump. prev: the last pre-dump pass's dir relative to the images
 * dir ("" without pre-dump): only pages dirtied since are written.
 */
static int do_dump(const struct cm_service *svc, const struct cm_clone_opts *o,
		   const char *clone_dir, const char *prev, struct cm_dump_stats *st, char *err,
		   size_t errlen)
{
	struct cm_argv *a = calloc(1, sizeof(*a));
	char script[CM_PATH_MAX + 32], out[CM_PATH_MAX + 32], log[CM_PATH_MAX + 32], errs[1024];
	uint64_t t0;
	pid_t ps = 0;
	int rc, stopped_before, script_used;
	struct cm_hold hold = {.req = -1, .ack = -1};
	int holding = 0;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(script, sizeof(script), "%s/action.sh", clone_dir);
	snprintf(out, sizeof(out), "%s/dump.out", clone_dir);
	snprintf(log, sizeof(log), "%s/dump.log", clone_dir);
	/* The action script syncs state dirs and says when to hold production's input. */
	if (o->freezing) {
		rc = cm_hold_open(&hold, clone_dir);
		if (rc)
			pr_warn("cannot make the FIFOs that time the hold around the freeze (%s): "
				"production's input is held the whole time CRIU runs",
				strerror(-rc));
		holding = rc == 0;
	}
	script_used = svc->nstate || holding;
	if (script_used && (rc = write_action_script(script, svc, o, clone_dir,
						     holding ? &hold : NULL, err, errlen)))
		goto out;
	cm_arg_add(a, "criu");
	cm_arg_add(a, "dump");
	cm_arg_add(a, "-t");
	cm_arg_add(a, "%d", svc->pid);
	cm_arg_add(a, "--leave-running");
	cm_arg_add(a, exact_wanted(svc, o) ? "--tcp-established" : "--tcp-close");
	cm_arg_add(a, "--skip-in-flight");
	cm_arg_add(a, "--network-lock");
	cm_arg_add(a, "skip");
	if (svc->adopted) {
		/* host namespaces: not dumped; the clone's are made at restore (adopt.c) */
		if (cm_adopt_shell_job(svc->pid))
			cm_arg_add(a, "--shell-job");
	} else {
		cm_arg_add(a, "--external");
		cm_arg_add(a, "net[%lu]:net", ns_ino(svc->pid));
	}
	cm_arg_add(a, "--file-locks");
	cm_arg_add(a, "--display-stats");
	if (prev[0]) {
		cm_arg_add(a, st->track_written ? "--track-written" : "--track-mem");
		cm_arg_add(a, "--prev-images-dir");
		cm_arg_add(a, "%s", prev);
	}
	cm_arg_add(a, "-D");
	cm_arg_add(a, "%s", o->images_dir);
	cm_arg_add(a, "-o");
	cm_arg_add(a, "%s", log);
	cm_arg_add(a, "-v2");
	for (unsigned i = 0; !svc->adopted && i < svc->nstate; i++) {
		cm_arg_add(a, "--external");
		cm_arg_add(a, "mnt[%s]:state%u", svc->state_dirs[i], i);
	}
	if (script_used) {
		cm_arg_add(a, "--action-script");
		cm_arg_add(a, "%s", script);
	}
	if (o->host_netns_fd >= 0) {
		int port = free_port_in(o->host_netns_fd, o->host_addr);

		if (port < 0) {
			rc = port;
			snprintf(err, errlen, "no free port on %s for CRIU's page server: %s",
				 o->host_addr, strerror(-rc));
			goto out;
		}
		if (mkdir(o->host_images_dir, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			snprintf(err, errlen, "cannot create %s: %s", o->host_images_dir,
				 strerror(errno));
			goto out;
		}
		ps = start_page_server(o, clone_dir, port, err, errlen);
		if (ps < 0) {
			rc = ps;
			goto out;
		}
		cm_arg_add(a, "--page-server");
		cm_arg_add(a, "--address");
		cm_arg_add(a, "%s", o->host_addr);
		cm_arg_add(a, "--port");
		cm_arg_add(a, "%d", port);
	}
	if (o->freezing && !holding)
		o->freezing(o->freezing_arg, 1);
	t0 = clock_now_ns();
	stopped_before = stopped_tasks(svc->pid);
	{
		struct cm_run run = {.netns_fd = -1, .timeout_ms = DUMP_TIMEOUT_MS};

		if (holding) {
			pid_t pid = cm_criu_spawn(o->criu, a->v, out, &run);

			rc = pid < 0 ? pid : cm_hold_wait(&hold, pid, DUMP_TIMEOUT_MS, o);
		} else {
			rc = cm_criu_run(o->criu, a->v, out, &run);
		}
	}
	if (rc)
		thaw_after_failed_dump(svc->pid, stopped_before);
	if (o->freezing && (!holding || (hold.started && !hold.ended)))
		o->freezing(o->freezing_arg, 0);
	if (ps > 0) {
		int prc = cm_criu_wait(ps, rc ? 1 : 60000);

		if (!rc && prc) {
			snprintf(
				err, errlen,
				"CRIU's page server on %s failed (exit %d); see %s/page-server.log",
				o->host_addr, prc, clone_dir);
			rc = -EIO;
			goto out;
		}
	}
	st->dump_wall_us = (clock_now_ns() - t0) / 1000;
	cm_criu_parse_stats(out, st);
	read_sync_stats(clone_dir, st);
	if (rc) {
		cm_criu_errors(log, errs, sizeof(errs));
		if (!errs[0])
			cm_criu_errors(out, errs, sizeof(errs));
		if (rc > 128)
			/* killed by a signal: say which (cm_criu_wait returns 128 + it) */
			snprintf(err, errlen,
				 "CRIU was killed by signal %d (%s) in the middle of the dump "
				 "(pid %d); production was not cloned and runs on (CRIU's log: "
				 "%s)",
				 rc - 128, strsignal(rc - 128), svc->pid, log);
		else if (strstr(errs, "No space left on device"))
			snprintf(err, errlen,
				 "the image directory %s is full (No space left on device): "
				 "free space there or pass --images DIR on a larger filesystem; "
				 "production was not cloned and runs on (CRIU's log: %s)",
				 o->images_dir, log);
		else
			snprintf(err, errlen,
				 "CRIU could not dump the service (pid %d, criu exit %d): %s "
				 "(CRIU's log: %s)",
				 svc->pid, rc, errs[0] ? errs : "no error line in its log", log);
		rc = -EIO;
		goto out;
	}
	if (o->host_netns_fd >= 0) {
		/* The pages are on the other host already; send it the rest of the images. */
		rc = cm_copy_into(o->images_dir, o->host_images_dir, err, errlen);
	}
out:
	if (holding)
		cm_hold_close(&hold);
	free(a);
	return rc;
}

/* What a restore needs from the service it came from. */
struct restore_src {
	const char *images_dir;
	unsigned nstate;
	unsigned long pipe_ino;	    /* the service's stdout pipe in the images (0: none) */
	const struct tcp_end *ends; /* its established connections in the images */
	unsigned nends;
};

/* *exact: set when the restore kept production's connections (--tcp-established). */
static int do_restore_from(const struct restore_src *src, const struct cm_clone_opts *o,
			   struct cm_clone *c, int *exact, char *err, size_t errlen)
{
	struct cm_argv *a = calloc(1, sizeof(*a));
	char out[CM_PATH_MAX + 32], log[CM_PATH_MAX + 32], pidfile[CM_PATH_MAX + 32], errs[1024];
	unsigned long ino = src->pipe_ino;
	int logp[2] = {-1, -1}, fds[2], nfds = 0, netns = -1, rc;
	uint64_t t0 = clock_now_ns();
	FILE *f;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(out, sizeof(out), "%s/restore.out", c->dir);
	snprintf(log, sizeof(log), "%s/restore.log", c->dir);
	snprintf(pidfile, sizeof(pidfile), "%s/pid", c->dir);
	cm_arg_add(a, "criu");
	cm_arg_add(a, "restore");
	cm_arg_add(a, "-D");
	cm_arg_add(a, "%s", src->images_dir);
	cm_arg_add(a, "-d");
	cm_arg_add(a, "--root");
	cm_arg_add(a, "/");
	cm_arg_add(a, "--file-locks");
	cm_arg_add(a, "--pidfile");
	cm_arg_add(a, "%s", pidfile);
	cm_arg_add(a, "-o");
	cm_arg_add(a, "%s", log);
	cm_arg_add(a, "-v2");
	if (c->cg.version != CG_NONE) {
		/* criu runs inside the clone's cgroup: what it restores stays there */
		cm_arg_add(a, "--manage-cgroups=ignore");
	}
	/* The clone's network namespace: a fresh one, loopback up, given to CRIU. */
	netns = cm_netns_new();
	if (netns < 0) {
		rc = netns;
		snprintf(err, errlen, "cannot create a network namespace for clone %u: %s", c->id,
			 strerror(-rc));
		goto out;
	}
	if (o->prepare_netns) {
		rc = o->prepare_netns(o->prepare_arg, c->id - o->first_id, netns, err, errlen);
		if (rc)
			goto out;
	}
	if (o->peers && src->nends) {
		/* the other ends first: the service's must find them when it leaves repair */
		rc = o->peers(o->peers_arg, c->id - o->first_id, netns, src->ends, src->nends, err,
			      errlen);
		if (rc < 0)
			goto out;
		if (rc > 0) {
			*exact = 1;
			cm_arg_add(a, "--tcp-established");
			cm_arg_add(a, "--network-lock"); /* nothing else lives in this netns */
			cm_arg_add(a, "skip");
		}
	}
	if (!o->peers || !src->nends || rc == 0)
		cm_arg_add(a, "--tcp-close");
	rc = 0;
	fds[nfds] = netns;
	cm_arg_add(a, "--inherit-fd");
	cm_arg_add(a, "fd[%d]:net", 3 + nfds++);
	for (unsigned i = 0; i < src->nstate; i++) {
		cm_arg_add(a, "--external");
		cm_arg_add(a, "mnt[state%u]:%s/state-%u", i, c->dir, i);
	}
	if (ino) {
		/* The clone's stdout/stderr: a pipe of its own that the supervisor reads. */
		if (pipe2(logp, O_CLOEXEC) < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
			goto out;
		}
		fds[nfds] = logp[1];
		cm_arg_add(a, "--inherit-fd");
		cm_arg_add(a, "fd[%d]:pipe:[%lu]", 3 + nfds++, ino);
	}
	{
		struct cm_run run = {fds, (unsigned)nfds, o->host_netns_fd, RESTORE_TIMEOUT_MS,
				     c->cg.version != CG_NONE ? &c->cg : NULL};

		rc = cm_criu_run(o->criu, a->v, out, &run);
	}
	if (logp[1] >= 0) {
		close(logp[1]);
		logp[1] = -1;
	}
	if (rc) {
		struct cg_usage u;
		char lim[32];

		cm_criu_errors(log, errs, sizeof(errs));
		if (!errs[0])
			cm_criu_errors(out, errs, sizeof(errs));
		if (c->cg.limits.memory && cg_usage_read(&c->cg, &u) == 0 && u.oom_kills)
			snprintf(errs, sizeof(errs),
				 "the clone's memory limit (%s) is too small to restore it: give "
				 "`doppel clone --clone-memory` more than production's resident "
				 "memory",
				 size_format(c->cg.limits.memory, lim, sizeof(lim)));
		else if (rc == 124)
			snprintf(errs, sizeof(errs), "criu could not join the clone's cgroup %s",
				 c->cg.rel);
		snprintf(err, errlen,
			 "CRIU could not restore clone %u (criu exit %d): %s (CRIU's log: %s)",
			 c->id, rc, errs[0] ? errs : "no error line in its log", log);
		rc = -EIO;
		goto out;
	}
	f = fopen(pidfile, "re");
	if (!f || fscanf(f, "%d", &c->pid) != 1 || c->pid <= 0) {
		snprintf(err, errlen, "CRIU restored clone %u but wrote no pid to %s", c->id,
			 pidfile);
		if (f)
			fclose(f);
		rc = -EIO;
		goto out;
	}
	fclose(f);
	c->netns_fd = netns_open_pid(c->pid);
	if (c->netns_fd < 0) {
		rc = c->netns_fd;
		snprintf(err, errlen,
			 "clone %u (pid %d) died right after restore; see %s and %s/log", c->id,
			 c->pid, log, c->dir);
		goto out;
	}
	if (o->nice && pidns_renice(c->pid, o->nice) < 0)
		pr_warn("cannot lower clone %u's priority (nice %d): %s", c->id, o->nice,
			strerror(errno));
	c->log_fd = logp[0];
	logp[0] = -1;
	c->restore_us = (clock_now_ns() - t0) / 1000;
	rc = 0;
out:
	if (logp[0] >= 0)
		close(logp[0]);
	if (logp[1] >= 0)
		close(logp[1]);
	if (netns >= 0)
		close(netns);
	free(a);
	return rc;
}

static int do_restore(const struct cm_service *svc, const struct cm_clone_opts *o,
		      const struct tcp_end *ends, unsigned nends, struct cm_clone *c, char *err,
		      size_t errlen)
{
	struct restore_src src = {o->host_netns_fd >= 0 ? o->host_images_dir : o->images_dir,
				  svc->nstate, stdout_pipe_ino(svc->pid), ends, nends};
	char from[CM_PATH_MAX + 32], to[CM_PATH_MAX + 48];
	int exact = 0, rc;

	if (svc->adopted)
		return cm_adopt_restore(svc, o, src.images_dir, c, err, errlen);
	rc = do_restore_from(&src, o, c, &exact, err, errlen);
	if (!rc || !exact)
		return rc;
	/*
	 * Production's connections could not be restored (an address the clone's
	 * netns lacks, say): the clone matters more than continuing them. Its
	 * ends are dropped and the clone restored with them closed.
	 */
	pr_warn("clone %u: restoring production's open connections failed (%s); restoring it "
		"with them closed",
		c->id, err);
	snprintf(from, sizeof(from), "%s/restore.log", c->dir);
	snprintf(to, sizeof(to), "%s/restore-established.log", c->dir);
	rename(from, to);
	if ((rc = o->peers(o->peers_arg, c->id - o->first_id, -1, NULL, 0, err, errlen)) < 0)
		return rc;
	src.nends = 0;
	return do_restore_from(&src, o, c, &exact, err, errlen);
}

/*
 * Keep what restoring this dump needs, for `doppel restore`: the images, the
 * state copies as of the dump (before any clone ran on them), and clone.conf.
 */
static int keep_dump(const struct cm_service *svc, const struct cm_clone_opts *o,
		     const char *clone0_dir, char *err, size_t errlen)
{
	char src[CM_PATH_MAX + 32], dst[CM_PATH_MAX + 32];
	FILE *f;
	int rc;

	if ((rc = mkdir_private(o->keep_dir, err, errlen)))
		return rc;
	snprintf(dst, sizeof(dst), "%s/images", o->keep_dir);
	cm_rmtree(dst);
	if ((rc = cm_state_sync(o->images_dir, dst, NULL, err, errlen)))
		return rc;
	for (unsigned i = 0; i < svc->nstate; i++) {
		snprintf(src, sizeof(src), "%s/state-%u", clone0_dir, i);
		snprintf(dst, sizeof(dst), "%s/state-%u", o->keep_dir, i);
		cm_rmtree(dst);
		if ((rc = cm_state_sync(src, dst, NULL, err, errlen)))
			return rc;
	}
	snprintf(dst, sizeof(dst), "%s/clone.conf", o->keep_dir);
	f = fopen(dst, "we");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
		return rc;
	}
	fprintf(f,
		"# doppel clone kept for `doppel restore`\nservice %s\nport %d\nnstate %u\n"
		"pipe_ino %lu\ncriu %s\n",
		svc->name, o->port, svc->nstate, stdout_pipe_ino(svc->pid), o->criu->version);
	for (unsigned i = 0; i < svc->nstate; i++)
		fprintf(f, "state %s\n", svc->state_dirs[i]);
	if (fclose(f) != 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", dst, strerror(errno));
		return rc;
	}
	return 0;
}

int cm_kept_read(const char *keep_dir, struct cm_kept *out, char *err, size_t errlen)
{
	char path[CM_PATH_MAX + 32], line[CM_PATH_MAX + 32];
	FILE *f;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/clone.conf", keep_dir);
	f = fopen(path, "re");
	if (!f) {
		int e = errno;

		snprintf(err, errlen,
			 "%s is not a kept clone (no clone.conf: %s); make one with `doppel clone "
			 "NAME --keep-images DIR`",
			 keep_dir, strerror(e));
		return -e;
	}
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ' ');

		if (!v || line[0] == '#')
			continue;
		*v++ = 0;
		v[strcspn(v, "\n")] = 0;
		if (!strcmp(line, "service"))
			snprintf(out->service, sizeof(out->service), "%s", v);
		else if (!strcmp(line, "port"))
			out->port = atoi(v);
		else if (!strcmp(line, "nstate"))
			out->nstate = (unsigned)atoi(v);
		else if (!strcmp(line, "pipe_ino"))
			out->pipe_ino = strtoul(v, NULL, 10);
	}
	fclose(f);
	if (out->port <= 0 || out->nstate > CM_MAX_STATE) {
		snprintf(err, errlen, "%s is damaged (no port, or too many state dirs)", path);
		return -EINVAL;
	}
	return 0;
}

int cm_restore_kept(const struct cm_criu *criu, const char *keep_dir, const char *work_dir,
		    unsigned id, struct cm_clone *c, char *err, size_t errlen)
{
	struct cm_kept k;
	struct cm_clone_opts o;
	struct restore_src src;
	char images[CM_PATH_MAX + 32];
	int rc, exact = 0;

	memset(c, 0, sizeof(*c));
	c->netns_fd = c->log_fd = -1;
	c->id = id;
	if ((rc = cm_kept_read(keep_dir, &k, err, errlen)))
		return rc;
	if ((rc = mkdir_private(work_dir, err, errlen)))
		return rc;
	snprintf(c->dir, sizeof(c->dir), "%s/restore-%u", work_dir, id);
	cm_rmtree(c->dir);
	if ((rc = mkdir_private(c->dir, err, errlen)))
		return rc;
	/* a fresh copy of the state as of the dump: the kept one stays as it was */
	for (unsigned i = 0; i < k.nstate; i++) {
		char s[CM_PATH_MAX + 32], d[CM_PATH_MAX + 32];

		snprintf(s, sizeof(s), "%s/state-%u", keep_dir, i);
		snprintf(d, sizeof(d), "%s/state-%u", c->dir, i);
		if ((rc = cm_state_sync(s, d, NULL, err, errlen)))
			goto fail;
	}
	memset(&o, 0, sizeof(o));
	o.criu = criu;
	o.host_netns_fd = -1;
	snprintf(images, sizeof(images), "%s/images", keep_dir);
	src.images_dir = images;
	src.nstate = k.nstate;
	src.pipe_ino = k.pipe_ino;
	src.ends = NULL;
	src.nends = 0;
	if ((rc = do_restore_from(&src, &o, c, &exact, err, errlen)))
		goto fail;
	rc = cm_wait_listen(c->netns_fd, k.port, 30 * 1000, c->pid);
	if (rc) {
		snprintf(err, errlen, "restored clone (pid %d) %s on port %d; see %s/restore.log",
			 c->pid, rc == -ESRCH ? "died before listening" : "never listened", k.port,
			 c->dir);
		goto fail;
	}
	return 0;
fail:
	pr_err("%s", err);
	cm_clone_destroy(c);
	return rc;
}

int cm_wait_listen(int netns_fd, int port, int timeout_ms, pid_t pid)
{
	return cm_wait_listen_on(netns_fd, "127.0.0.1", port, timeout_ms, pid);
}

int cm_wait_listen_on(int netns_fd, const char *host, int port, int timeout_ms, pid_t pid)
{
	struct net_endpoint ep;
	struct cm_service probe = {.pid = pid};
	char perr[128], addr[96];
	struct timespec ts = {0, 10 * 1000 * 1000};

	snprintf(addr, sizeof(addr), "%s:%d", host, port);
	if (netaddr_parse(addr, &ep, perr, sizeof(perr)) < 0)
		return -EINVAL;
	ep.netns_fd = netns_fd;
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		int fd = netaddr_connect(&ep);

		if (fd >= 0) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int soerr = 0;
			socklen_t len = sizeof(soerr);

			if (poll(&pfd, 1, 200) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
				close(fd);
				return 0;
			}
			close(fd);
		}
		if (pid > 0 && !cm_service_alive(&probe)) /* gone, or a zombie */
			return -ESRCH;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

void cm_clone_destroy(struct cm_clone *c)
{
	if (c->pid > 0) {
		/* SIGKILL to a pid namespace's init ends every process in it. */
		cm_stop_init(c->pid, 0);
		c->pid = 0;
	}
	if (c->netns_fd >= 0)
		close(c->netns_fd);
	if (c->log_fd >= 0)
		close(c->log_fd);
	c->netns_fd = c->log_fd = -1;
	cg_destroy(&c->cg, 2000);
	if (c->dir[0]) {
		cm_rmtree(c->dir);
		c->dir[0] = '\0';
	}
}

/*
 * A clone failed: keep CRIU's logs (and the clone's own output) in
 * WORK/failed-ID for the operator, drop everything else, and point the
 * error message there instead of at the directory being removed.
 */
static void keep_logs_of_failure(const struct cm_clone_opts *o, struct cm_clone *c, char *err,
				 size_t errlen)
{
	static const char *const keep[] = {"dump.log",	    "dump.out",	       "restore.log",
					   "restore.out",   "page-server.log", "page-server.out",
					   "log",	    "predump-1.log",   "predump-2.log",
					   "predump-3.log", "predump-4.log",   "predump-5.log"};
	char failed[CM_PATH_MAX + 32], from[CM_PATH_MAX + 32], to[CM_PATH_MAX + 64], *at;
	int any = 0;

	if (!c->dir[0])
		return;
	snprintf(failed, sizeof(failed), "%s/failed-%u", o->work_dir, c->id);
	cm_rmtree(failed);
	for (unsigned i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		snprintf(from, sizeof(from), "%s/%s", c->dir, keep[i]);
		if (access(from, F_OK) < 0)
			continue;
		if (!any && mkdir(failed, 0700) < 0)
			return;
		any = 1;
		snprintf(to, sizeof(to), "%s/%s", failed, keep[i]);
		if (rename(from, to) < 0)
			pr_warn("cannot keep %s: %s", from, strerror(errno));
	}
	/* Rewrite "CLONEDIR/x.log" in the message as "WORK/failed-ID/x.log". */
	at = strstr(err, c->dir);
	if (any && at && strlen(err) + strlen(failed) < errlen) {
		char tail[1024];
		size_t dl = strlen(c->dir);

		snprintf(tail, sizeof(tail), "%s", at + dl);
		snprintf(at, errlen - (size_t)(at - err), "%s%s", failed, tail);
	}
}

/* Resident memory and tasks (threads) of every process of the service. */
static void service_usage(pid_t init, uint64_t *rss, uint64_t *tasks)
{
	pid_t pids[1024];
	int n = pidns_pids(init, pids, sizeof(pids) / sizeof(pids[0]));

	*rss = *tasks = 0;
	for (int i = 0; i < n; i++) {
		char path[64], line[256];
		unsigned long long v;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/status", pids[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "VmRSS: %llu kB", &v) == 1)
				*rss += v * 1024;
			else if (sscanf(line, "Threads: %llu", &v) == 1)
				*tasks += v;
		}
		fclose(f);
	}
}

/* The host's memory (0 if unknown: the default headroom is then 64 MiB). */
static uint64_t host_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

/*
 * The limits every clone of this job gets: the ones asked for, the default
 * rule for the others. Refuses (before production is frozen) a memory limit
 * below production's resident memory: such a clone dies while restored.
 */
static int job_limits(const struct cm_service *svc, const struct cm_clone_opts *o,
		      struct cg_limits *l, cm_progress_fn progress, void *arg, char *err,
		      size_t errlen)
{
	uint64_t rss, tasks;
	char a[32], b[32], d[32], f[32];

	*l = o->limits;
	service_usage(svc->pid, &rss, &tasks);
	if (l->memory && l->memory < rss) {
		snprintf(err, errlen,
			 "--clone-memory %s is less than production's resident memory (%s): the "
			 "clone would be killed while it is restored; give at least %s (the "
			 "default is 2 x production's memory + 1/8 of the host's = %s)",
			 size_format(l->memory, a, sizeof(a)), size_format(rss, b, sizeof(b)),
			 size_format(rss + (16ULL << 20), d, sizeof(d)),
			 size_format(cg_default_memory(rss, host_memory()), f, sizeof(f)));
		return -EINVAL;
	}
	if (!l->memory)
		l->memory = cg_default_memory(rss, host_memory());
	if (!l->pids)
		l->pids = cg_default_pids(tasks);
	say(progress, arg,
	    "each clone gets a cgroup of its own: memory %s (production uses %s), CPU weight "
	    "%u, at most %llu tasks",
	    size_format(l->memory, a, sizeof(a)), size_format(rss, b, sizeof(b)), l->cpu_weight,
	    (unsigned long long)l->pids);
	return 0;
}

/* The clone's cgroup; without it, a warning (or a failure when limits were asked for). */
static int clone_cgroup(const struct cg_host *h, const struct cm_clone_opts *o,
			const struct cg_limits *l, struct cm_clone *c, cm_progress_fn progress,
			void *arg, char *err, size_t errlen)
{
	char rel[CG_PATH_MAX], why[512];
	int rc;

	snprintf(rel, sizeof(rel), "%s/clone-%u", o->cgroup_base, c->id);
	rc = cg_create(h, rel, l, &c->cg, why, sizeof(why));
	if (!rc)
		return 0;
	if (o->limits_required) {
		snprintf(err, errlen,
			 "cannot give clone %u the resource limits asked for: %s. Production "
			 "was not changed; clone without --clone-memory/--clone-cpu-weight/"
			 "--clone-pids to run it without limits",
			 c->id, why);
		return rc;
	}
	say(progress, arg,
	    "WARNING: clone %u runs without resource limits (memory, CPU weight, pids): %s. "
	    "Run doppel as root on a host with the cgroup memory controller (see `doppel "
	    "doctor`), or pass --no-clone-limits to `doppel run` to silence this",
	    c->id, why);
	return 0;
}

int cm_clone_make(const struct cm_service *svc, const struct cm_clone_opts *o,
		  struct cm_clone *clones, struct cm_dump_stats *st, cm_progress_fn progress,
		  void *arg, char *err, size_t errlen)
{
	uint64_t t0 = clock_now_ns(), t1;
	char sz[32], sz2[32], prev[32] = "";
	struct cg_limits limits = {0};
	struct cg_host cgh;
	struct tcp_end *ends = NULL;
	struct cm_wptrack wt = {.n = 0};
	unsigned nends = 0;
	int rc, predump;

	memset(st, 0, sizeof(*st));
	for (unsigned k = 0; k < o->count; k++) {
		memset(&clones[k], 0, sizeof(clones[k]));
		clones[k].netns_fd = clones[k].log_fd = -1;
		clones[k].id = o->first_id + k;
	}
	if (!cm_service_alive(svc)) {
		snprintf(err, errlen, "the service (pid %d) is not running any more; see its log",
			 svc->pid);
		return -ESRCH;
	}
	if (svc->adopted && (o->host_netns_fd >= 0 || o->keep_dir)) {
		snprintf(err, errlen,
			 "clones of an adopted service are made on this host only, without "
			 "--host or --keep-images");
		return -ENOTSUP;
	}
	if (!shell_safe(o->work_dir) || !shell_safe(o->doppel_exe)) {
		snprintf(err, errlen, "paths with quotes or newlines are not supported: %s",
			 o->work_dir);
		return -EINVAL;
	}
	for (unsigned i = 0; i < svc->nstate; i++)
		if (!shell_safe(svc->state_dirs[i])) {
			snprintf(err, errlen, "state dir paths with quotes are not supported: %s",
				 svc->state_dirs[i]);
			return -EINVAL;
		}
	/* Before anything touches the service: --predump on fails here where it cannot work. */
	predump = cm_predump_decide(o, st, err, errlen);
	if (predump < 0)
		return predump;
	if (o->cgroup_base) {
		cg_host_detect(&cgh);
		if ((rc = job_limits(svc, o, &limits, progress, arg, err, errlen)))
			return rc;
	}
	if ((rc = mkdir_private(o->work_dir, err, errlen)) ||
	    (rc = mkdir_private(o->images_dir, err, errlen)))
		return rc;
	for (unsigned k = 0; k < o->count; k++) {
		snprintf(clones[k].dir, sizeof(clones[k].dir), "%s/clone-%u", o->work_dir,
			 clones[k].id);
		cm_rmtree(clones[k].dir);
		if ((rc = mkdir_private(clones[k].dir, err, errlen)))
			goto fail;
		/* before production is frozen: a clone refused costs production nothing */
		if (o->cgroup_base &&
		    (rc = clone_cgroup(&cgh, o, &limits, &clones[k], progress, arg, err, errlen)))
			goto fail;
	}

	/* 1. Copy the state while production runs. */
	t1 = clock_now_ns();
	for (unsigned i = 0; i < svc->nstate; i++) {
		char dst[CM_PATH_MAX + 32];
		uint64_t bytes = 0;

		snprintf(dst, sizeof(dst), "%s/state-%u", clones[0].dir, i);
		rc = cm_state_sync(svc->state_dirs[i], dst, &bytes, err, errlen);
		if (rc)
			goto fail;
		say(progress, arg, "copied state dir %s (%s) while production runs",
		    svc->state_dirs[i], size_format(bytes, sz, sizeof(sz)));
	}
	st->precopy_us = (clock_now_ns() - t1) / 1000;

	/* 2a. Pre-dump passes while production runs, where the kernel tracks dirty pages. */
	if (predump) {
		say(progress, arg, "pre-dump: on (%s); copying memory while production runs",
		    st->predump_reason);
		rc = cm_predump_run(svc, o, clones[0].dir, ns_ino(svc->pid), st, &wt, progress, arg,
				    prev, sizeof(prev), err, errlen);
		if (rc)
			goto fail;
		if (!prev[0])
			say(progress, arg, "pre-dump: off (%s); plain dump", st->predump_reason);
	} else {
		say(progress, arg, "pre-dump: off (%s); plain dump", st->predump_reason);
	}

	/* 2b. Freeze, dump, final state sync while frozen, unfreeze. */
	say(progress, arg, "freezing production (pid %d) and dumping it with CRIU %s%s", svc->pid,
	    o->criu->version, prev[0] ? " (pages dirtied since the last pass only)" : "");
	rc = do_dump(svc, o, clones[0].dir, prev, st, err, errlen);
	cm_wptrack_disarm(&wt); /* the last pass is taken: production's memory is its own again */
	if (rc)
		goto fail;
	st->image_bytes = cm_du(o->images_dir);
	if (exact_wanted(svc, o))
		read_ends(o, &ends, &nends, progress, arg);
	say(progress, arg,
	    "production was frozen for %.1f ms (memory dump %.1f ms, %llu pages, final state "
	    "sync %.1f ms, %s); images %s",
	    (double)st->frozen_us / 1000, (double)st->memdump_us / 1000,
	    (unsigned long long)st->pages_written, (double)st->final_sync_us / 1000,
	    size_format(st->final_sync_bytes, sz, sizeof(sz)),
	    size_format(st->image_bytes, sz2, sizeof(sz2)));
	if (o->keep_dir && o->host_netns_fd < 0) {
		rc = keep_dump(svc, o, clones[0].dir, err, errlen);
		if (rc)
			goto fail;
		say(progress, arg, "kept the images and the state as of the dump in %s",
		    o->keep_dir);
	}

	/* 3. One restore per clone, each with its own copy of the state. */
	for (unsigned k = 0; k < o->count; k++) {
		struct cm_clone *c = &clones[k];

		for (unsigned i = 0; k > 0 && i < svc->nstate; i++) {
			char src[CM_PATH_MAX + 32], dst[CM_PATH_MAX + 32];

			snprintf(src, sizeof(src), "%s/state-%u", clones[0].dir, i);
			snprintf(dst, sizeof(dst), "%s/state-%u", c->dir, i);
			if ((rc = cm_state_sync(src, dst, NULL, err, errlen)))
				goto fail;
		}
		rc = do_restore(svc, o, ends, nends, c, err, errlen);
		if (rc)
			goto fail;
		/* 4. Ready when it accepts on the service's port in its own netns. */
		if (o->port > 0) {
			rc = svc->adopted
				     ? cm_adopt_wait_listen(svc, c, o->port, o->ready_timeout_ms)
				     : cm_wait_listen(c->netns_fd, o->port, o->ready_timeout_ms,
						      c->pid);
			if (rc) {
				snprintf(err, errlen,
					 "clone %u (pid %d) %s on port %d; see its log %s/log and "
					 "CRIU's "
					 "%s/restore.log",
					 c->id, c->pid,
					 rc == -ESRCH ? "died before listening" : "never listened",
					 o->port, c->dir, c->dir);
				goto fail;
			}
		}
		say(progress, arg,
		    "clone %u restored (pid %d) in %.0f ms, listening on 127.0.0.1:%d in its "
		    "own network namespace",
		    c->id, c->pid, (double)c->restore_us / 1000, o->port);
	}
	cm_rmtree(o->images_dir);
	if (o->host_images_dir)
		cm_rmtree(o->host_images_dir);
	st->total_us = (clock_now_ns() - t0) / 1000;
	free(ends);
	return 0;
fail:
	cm_wptrack_disarm(&wt);
	free(ends);
	for (unsigned k = 0; k < o->count; k++)
		keep_logs_of_failure(o, &clones[k], err, errlen);
	pr_err("%s", err);
	for (unsigned k = 0; k < o->count; k++)
		cm_clone_destroy(&clones[k]);
	cm_rmtree(o->images_dir);
	if (o->host_images_dir)
		cm_rmtree(o->host_images_dir);
	return rc;
}
