/*
 * predump.c - iterative pre-dump: copy production's memory while it runs, so
 * that the frozen dump only writes what changed since.
 *
 * Each pass is `criu pre-dump --track-mem --pre-dump-mode read` into
 * IMAGES/pre-K, the parent being IMAGES/pre-(K-1): CRIU freezes the tasks
 * only long enough to read (and reset) their soft-dirty bits, lets them run,
 * and copies the dirty pages with process_vm_readv. The final dump (clone.c)
 * is `criu dump --track-mem --prev-images-dir pre-N` into IMAGES: it writes
 * only the pages dirtied since pass N, and the restore follows the `parent`
 * links. Passes stop on the first of (cm_predump_stop):
 *   - the last pass wrote at most small_pages (default 2560 pages, 10 MiB:
 *     about 5 ms of memory copy at the 2 GB/s measured into tmpfs here);
 *   - the last pass did not write at least min_shrink_pct (10 %) fewer pages
 *     than the one before: the service dirties memory as fast as we copy it,
 *     another pass would not make the final dump smaller;
 *   - max_passes (5) passes, or max_total_us (30 s) of pre-dumping.
 * Soft-dirty tracking needs a kernel built with CONFIG_MEM_SOFT_DIRTY;
 * `criu check --feature mem_dirty_track` says whether it is there (asked
 * once per CRIU and remembered). Where it is not, CRIU 4.2.1's pre-dump
 * aborts ("BUG at criu/mem.c:46"). There, on Linux >= 6.7 and with the CRIU
 * deploy/install.sh builds (`criu check --feature mem_written_track`),
 * production's memory is registered for async userfaultfd write-protect
 * (wptrack.c) and the passes and the final dump run with --track-written:
 * CRIU reads PAGEMAP_SCAN's written bit instead of soft-dirty. Else --predump
 * auto falls back to a plain dump and says why, --predump on fails before
 * production is touched. docs/criu.md has the measurements.
 */
#define LOG_PREFIX "predump"
#include "clonemgr/cm-int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"

#define PREDUMP_TIMEOUT_MS (300 * 1000)
#define CHECK_TIMEOUT_MS (30 * 1000)

/* ---- is soft-dirty tracking there? ---- */

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static char probe_path[CM_PATH_MAX];
static int probe_result = -1;
static char probe_why[200];

/*
 * CONFIG_MEM_SOFT_DIRTY in the running kernel's config: 1 set, 0 not set,
 * -1 unknown (no readable config).
 */
static int kernel_soft_dirty(void)
{
	struct utsname u;
	char path[128], line[256];
	FILE *f;
	int found = -1;

	if (uname(&u) < 0)
		return -1;
	snprintf(path, sizeof(path), "/boot/config-%s", u.release);
	f = fopen(path, "re");
	if (!f)
		f = popen("gzip -dc /proc/config.gz 2>/dev/null", "r");
	else
		path[0] = 0; /* fclose, not pclose */
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "CONFIG_MEM_SOFT_DIRTY=y", 23))
			found = 1;
		else if (strstr(line, "CONFIG_MEM_SOFT_DIRTY is not set"))
			found = 0;
		else if (found < 0 && !strncmp(line, "CONFIG_", 7))
			found = -2; /* a config, so far without the option */
	}
	if (path[0])
		pclose(f);
	else
		fclose(f);
	return found == -2 ? 0 : found;
}

int cm_criu_dirty_track(const struct cm_criu *criu, char *why, size_t whylen)
{
	int rc;

	pthread_mutex_lock(&probe_lock);
	if (probe_result < 0 || strcmp(probe_path, criu->path)) {
		char *argv[] = {"criu", "check", "--feature", "mem_dirty_track", NULL};
		char *argw[] = {"criu", "check", "--feature", "mem_written_track", NULL};
		struct cm_run run = {.netns_fd = -1, .timeout_ms = CHECK_TIMEOUT_MS};
		int st = cm_criu_run(criu, argv, "/dev/null", &run);

		snprintf(probe_path, sizeof(probe_path), "%s", criu->path);
		probe_result = st == 0;
		if (st > 0 && cm_criu_run(criu, argw, "/dev/null", &run) == 0) {
			probe_result = 2;
			snprintf(
				probe_why, sizeof(probe_why),
				"kernel has no soft-dirty; tracking written pages with userfaultfd "
				"write-protect");
		} else if (st == 0)
			snprintf(probe_why, sizeof(probe_why), "kernel tracks dirty pages");
		else if (st < 0)
			snprintf(probe_why, sizeof(probe_why),
				 "cannot run `criu check --feature mem_dirty_track`: %s",
				 strerror(-st));
		else if (kernel_soft_dirty() == 0)
			snprintf(probe_why, sizeof(probe_why),
				 "kernel has no soft-dirty tracking: CONFIG_MEM_SOFT_DIRTY is not "
				 "set, and this CRIU cannot track written pages instead");
		else
			snprintf(probe_why, sizeof(probe_why),
				 "kernel has no soft-dirty tracking: `criu check --feature "
				 "mem_dirty_track` fails (CONFIG_MEM_SOFT_DIRTY), and so does "
				 "mem_written_track");
		pr_info("dirty memory tracking: %s (criu=%s)", probe_why, criu->path);
	}
	rc = probe_result;
	snprintf(why, whylen, "%s", probe_why);
	pthread_mutex_unlock(&probe_lock);
	return rc;
}

/* ---- the decision and the stop rule ---- */

int cm_predump_decide(const struct cm_clone_opts *o, struct cm_dump_stats *st, char *err,
		      size_t errlen)
{
	char why[200];
	const char *cannot = NULL;
	int mode = 0;

	st->predump_mode = o->predump;
	st->predump_used = 0;
	st->track_written = 0;
	if (o->predump == CM_PREDUMP_OFF) {
		snprintf(st->predump_reason, sizeof(st->predump_reason), "--predump off");
		return 0;
	}
	if (o->host_netns_fd >= 0)
		cannot = "not with --host: the other host's page server takes a single dump";
	else if (!(mode = cm_criu_dirty_track(o->criu, why, sizeof(why))))
		cannot = why;
	if (!cannot) {
		st->track_written = mode == 2;
		snprintf(st->predump_reason, sizeof(st->predump_reason), "%s", why);
		st->predump_used = 1;
		return 1;
	}
	if (o->predump == CM_PREDUMP_ON) {
		snprintf(
			err, errlen,
			"--predump on: pre-dump cannot work here (%s); production was not touched. "
			"Clone with --predump auto or off (a plain dump)%s",
			cannot,
			o->host_netns_fd >= 0
				? ", or without --host"
				: ", or run the service on a kernel built with "
				  "CONFIG_MEM_SOFT_DIRTY=y (`criu check --feature mem_dirty_track` "
				  "says yes), or on Linux >= 6.7 with the CRIU deploy/install.sh "
				  "builds (`criu check --feature mem_written_track`)");
		return -EOPNOTSUPP;
	}
	snprintf(st->predump_reason, sizeof(st->predump_reason), "%s", cannot);
	return 0;
}

static void limits_fill(const struct cm_predump_limits *in, struct cm_predump_limits *l)
{
	*l = *in;
	if (!l->max_passes || l->max_passes > CM_PREDUMP_MAX_PASSES)
		l->max_passes = l->max_passes ? CM_PREDUMP_MAX_PASSES : 5;
	if (!l->small_pages)
		l->small_pages = 2560;
	if (!l->min_shrink_pct)
		l->min_shrink_pct = 10;
	if (!l->max_total_us)
		l->max_total_us = 30ULL * 1000 * 1000;
}

int cm_predump_stop(const struct cm_predump_limits *lim, const struct cm_dump_stats *st, char *why,
		    size_t whylen)
{
	struct cm_predump_limits l;
	const struct cm_predump_pass *p;

	limits_fill(lim, &l);
	if (st->npasses == 0)
		return 0;
	p = &st->passes[st->npasses - 1];
	if (p->pages_written <= l.small_pages) {
		snprintf(why, whylen, "dirty set small enough: %llu pages <= %llu",
			 (unsigned long long)p->pages_written, (unsigned long long)l.small_pages);
		return 1;
	}
	if (st->npasses >= 2) {
		uint64_t before = st->passes[st->npasses - 2].pages_written;

		if (p->pages_written * 100 > before * (100 - l.min_shrink_pct)) {
			snprintf(why, whylen,
				 "dirty set not shrinking: %llu pages after %llu (less than %u %% "
				 "fewer)",
				 (unsigned long long)p->pages_written, (unsigned long long)before,
				 l.min_shrink_pct);
			return 1;
		}
	}
	if (st->npasses >= l.max_passes) {
		snprintf(why, whylen, "pass cap reached: %u passes", l.max_passes);
		return 1;
	}
	if (st->predump_us >= l.max_total_us) {
		snprintf(why, whylen, "time cap reached: %.1f s of pre-dump",
			 (double)st->predump_us / 1e6);
		return 1;
	}
	return 0;
}

/* ---- the passes ---- */

/* One pass into IMAGES/pre-K (K = st->npasses + 1). 0 or -errno with err. */
static int predump_pass(const struct cm_service *svc, const struct cm_clone_opts *o,
			const char *clone_dir, unsigned long net_ino, struct cm_dump_stats *st,
			char *err, size_t errlen)
{
	struct cm_argv *a = calloc(1, sizeof(*a));
	unsigned k = st->npasses + 1;
	char dir[CM_PATH_MAX + 32], out[CM_PATH_MAX + 32], log[CM_PATH_MAX + 32], errs[1024];
	struct cm_dump_stats ps;
	struct cm_predump_pass *p;
	uint64_t t0;
	int rc;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(dir, sizeof(dir), "%s/pre-%u", o->images_dir, k);
	snprintf(out, sizeof(out), "%s/predump-%u.out", clone_dir, k);
	snprintf(log, sizeof(log), "%s/predump-%u.log", clone_dir, k);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	cm_arg_add(a, "criu");
	cm_arg_add(a, "pre-dump");
	cm_arg_add(a, "-t");
	cm_arg_add(a, "%d", svc->pid);
	cm_arg_add(a, st->track_written ? "--track-written" : "--track-mem");
	cm_arg_add(a, "--pre-dump-mode");
	cm_arg_add(a, "read");
	if (k > 1) {
		cm_arg_add(a, "--prev-images-dir");
		cm_arg_add(a, "../pre-%u", k - 1);
	}
	cm_arg_add(a, "--network-lock");
	cm_arg_add(a, "skip");
	cm_arg_add(a, "--external");
	cm_arg_add(a, "net[%lu]:net", net_ino);
	for (unsigned i = 0; i < svc->nstate; i++) {
		cm_arg_add(a, "--external");
		cm_arg_add(a, "mnt[%s]:state%u", svc->state_dirs[i], i);
	}
	cm_arg_add(a, "--display-stats");
	cm_arg_add(a, "-D");
	cm_arg_add(a, "%s", dir);
	cm_arg_add(a, "-o");
	cm_arg_add(a, "%s", log);
	cm_arg_add(a, "-v2");
	t0 = clock_now_ns();
	{
		struct cm_run run = {.netns_fd = -1, .timeout_ms = PREDUMP_TIMEOUT_MS};

		rc = cm_criu_run(o->criu, a->v, out, &run);
	}
	if (rc) {
		cm_criu_errors(log, errs, sizeof(errs));
		if (!errs[0])
			cm_criu_errors(out, errs, sizeof(errs));
		if (strstr(errs, "No space left on device")) {
			/* a plain dump would fail the same way, after freezing production */
			snprintf(err, errlen,
				 "the image directory %s is full (No space left on device) at "
				 "pre-dump pass %u: free space there or pass --images DIR on a "
				 "larger filesystem; production was not cloned and runs on (CRIU's "
				 "log: %s)",
				 o->images_dir, k, log);
			rc = -ENOSPC;
			goto out;
		}
		snprintf(err, errlen, "pre-dump pass %u failed (criu exit %d): %s (CRIU's log: %s)",
			 k, rc, errs[0] ? errs : "no error line in its log", log);
		rc = -EIO;
		goto out;
	}
	memset(&ps, 0, sizeof(ps));
	cm_criu_parse_stats(out, &ps);
	p = &st->passes[st->npasses++];
	p->us = (clock_now_ns() - t0) / 1000;
	p->pages_written = ps.pages_written;
	p->pages_scanned = ps.pages_scanned;
	p->frozen_us = ps.frozen_us;
	st->predump_us += p->us;
out:
	free(a);
	return rc;
}

int cm_predump_run(const struct cm_service *svc, const struct cm_clone_opts *o,
		   const char *clone_dir, unsigned long net_ino, struct cm_dump_stats *st,
		   struct cm_wptrack *wt, cm_progress_fn progress, void *arg, char *prev,
		   size_t prevlen, char *err, size_t errlen)
{
	char why[160], line[512], sz[32];
	int rc = 0;

	prev[0] = '\0';
	if (st->track_written) {
		rc = cm_wptrack_arm(wt, svc->pid, err, errlen);
		if (rc == 0) {
			snprintf(line, sizeof(line),
				 "write tracking: %u process%s, %u mapping%s registered (%u not), "
				 "one thread of each held %.1f ms%s",
				 wt->n, wt->n == 1 ? "" : "es", wt->ranges,
				 wt->ranges == 1 ? "" : "s", wt->range_failures,
				 (double)wt->stopped_us / 1000,
				 wt->untracked ? "; the others are dumped whole" : "");
			pr_info("%s", line);
			if (progress)
				progress(arg, line);
		} else {
			char e[300];

			snprintf(e, sizeof(e), "cannot track written pages: %s", err);
			snprintf(err, errlen, "%s", e);
		}
	}
	for (; rc == 0;) {
		struct cm_predump_pass *p;

		rc = predump_pass(svc, o, clone_dir, net_ino, st, err, errlen);
		if (rc)
			break;
		p = &st->passes[st->npasses - 1];
		snprintf(line, sizeof(line),
			 "pre-dump pass %u: %llu pages (%s) in %.1f ms while production runs "
			 "(frozen %.1f ms to read its dirty pages)",
			 st->npasses, (unsigned long long)p->pages_written,
			 size_format(p->pages_written * 4096, sz, sizeof(sz)), (double)p->us / 1000,
			 (double)p->frozen_us / 1000);
		pr_info("%s", line);
		if (progress)
			progress(arg, line);
		if (cm_predump_stop(&o->predump_limits, st, why, sizeof(why)))
			break;
	}
	if (rc == 0) {
		size_t used = strlen(st->predump_reason);

		snprintf(prev, prevlen, "pre-%u", st->npasses);
		snprintf(line, sizeof(line), "stopped after %u pass%s: %s", st->npasses,
			 st->npasses == 1 ? "" : "es", why);
		snprintf(st->predump_reason + used, sizeof(st->predump_reason) - used, "; %s",
			 line);
		pr_info("pre-dump: %s", line);
		if (progress) {
			char msg[600];

			snprintf(msg, sizeof(msg), "pre-dump: %s", line);
			progress(arg, msg);
		}
		return 0;
	}
	cm_wptrack_disarm(wt);
	if (o->predump == CM_PREDUMP_ON || rc == -ENOSPC)
		return rc;
	/* auto: a plain dump instead, and say why */
	snprintf(st->predump_reason, sizeof(st->predump_reason), "%s", err);
	st->predump_used = 0;
	err[0] = '\0';
	for (unsigned k = 1; k <= st->npasses + 1; k++) {
		char dir[CM_PATH_MAX + 32];

		snprintf(dir, sizeof(dir), "%s/pre-%u", o->images_dir, k);
		cm_rmtree(dir);
	}
	return 0;
}
