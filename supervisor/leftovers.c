/*
 * leftovers.c - what a supervisor killed without a chance to clean up
 * (SIGKILL, the OOM killer, a crash) leaves behind, found by the next
 * `doppel run NAME`.
 *
 * Its clones run on, orphaned, in their cgroups doppel/NAME/clone-N: they
 * are disposable copies, so they are killed and their cgroups removed. Its
 * service runs on too, unreachable (its front died with the supervisor) and
 * still holding its state dirs: starting a second one on the same dirs would
 * have two processes write the same data, so the new supervisor refuses to
 * start until the old service is stopped, and says how. The service's pid
 * and start time are kept in RUN_DIR/NAME.service while it runs (the start
 * time tells a recycled pid from the same process).
 */
#include "supervisor/sup-int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgroup/cgroup.h"
#include "common/log.h"

static void record_path(const struct sup_config *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.service", cfg->run_dir, cfg->name);
}

/* Field 22 of /proc/PID/stat (clock ticks since boot); 0 when pid is gone. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], line[1024], *rp;
	unsigned long long t = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f) && (rp = strrchr(line, ')')) &&
	    sscanf(rp + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
		   "%*d %*d %llu",
		   &t) != 1)
		t = 0;
	fclose(f);
	return t;
}

int sup_leftovers_check(const struct sup_config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX + 64], base[SUP_NAME_MAX + 16];
	unsigned long long t = 0;
	struct cg_host h;
	unsigned killed;
	int pid = 0;
	FILE *f;

	cg_host_detect(&h);
	snprintf(base, sizeof(base), "doppel/%s", cfg->name);
	killed = cg_sweep(&h, base);
	if (killed)
		pr_warn("killed %u process(es) of clones an earlier supervisor of %s left running "
			"(it was killed without stopping them), and removed their cgroups",
			killed, cfg->name);
	record_path(cfg, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%d %llu", &pid, &t) != 2)
		pid = 0;
	fclose(f);
	if (pid > 0 && t && start_time(pid) == t) {
		snprintf(err, errlen,
			 "an earlier `doppel run %s` was killed and left its service running (pid "
			 "%d), unreachable and still holding its state dirs; a second copy on the "
			 "same dirs would write the same data. Stop it (kill %d; kill -KILL %d if "
			 "it does not exit), then start again",
			 cfg->name, pid, pid, pid);
		return -EEXIST;
	}
	unlink(path); /* that process is gone: a stale record */
	return 0;
}

void sup_service_record(const struct sup_config *cfg, pid_t pid)
{
	char path[PATH_MAX + 64];
	FILE *f;

	record_path(cfg, path, sizeof(path));
	f = fopen(path, "we");
	if (!f || fprintf(f, "%d %llu\n", (int)pid, start_time(pid)) < 0)
		pr_warn("cannot write %s (%s): a supervisor killed later cannot tell the next "
			"one which service it left",
			path, strerror(errno));
	if (f)
		fclose(f);
}

void sup_service_forget(const struct sup_config *cfg)
{
	char path[PATH_MAX + 64];

	record_path(cfg, path, sizeof(path));
	unlink(path);
}
