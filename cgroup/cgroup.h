/*
 * cgroup.h - resource limits for a clone: a cgroup of its own, v2 where the
 * host has the unified hierarchy with controllers, v1 otherwise.
 *
 * A clone's cgroup is REL (doppel/NAME/clone-ID) under the hierarchy root:
 *   v2: /sys/fs/cgroup/REL (or wherever cgroup2 is mounted with the memory
 *       controller available): memory.max, memory.swap.max = 0, cpu.weight,
 *       pids.max; the controllers are enabled in cgroup.subtree_control of
 *       each level above the clone's;
 *   v1: MOUNT/REL in the memory, cpu and pids hierarchies (each where it is
 *       mounted, e.g. /sys/fs/cgroup/memory): memory.limit_in_bytes (and
 *       memory.memsw.limit_in_bytes, the same, when swap is accounted),
 *       cpu.shares (weight x 1024 / 100), pids.max.
 * The CPU weight is set at every level doppel creates (doppel, doppel/NAME,
 * the clone), because a weight only counts against siblings: production
 * competes with the top level.
 *
 * The clone is started inside it: the restoring CRIU joins the cgroup
 * (cg_enter, in the child before exec) so every restored page and task is
 * charged to the clone from its first instruction.
 *
 * Pure parts (cg_host_parse, cg_plan, cg_v1_shares, the defaults, the value
 * parsers) touch no file and are unit-tested. Not thread-safe by itself:
 * a struct cg_group is used by one thread at a time; cg_enter is
 * async-signal-safe (open, write, close).
 */
#ifndef DOPPEL_CGROUP_H
#define DOPPEL_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CG_PATH_MAX 512
#define CG_DIR_MAX (CG_PATH_MAX + 128)

enum cg_version {
	CG_NONE = 0,
	CG_V1 = 1,
	CG_V2 = 2,
};

enum cg_ctrl {
	CG_MEMORY,
	CG_CPU,
	CG_PIDS,
	CG_NCTRL,
};

/* Where the controllers are on this host. */
struct cg_host {
	enum cg_version version;
	/* v1: each controller's mount point ("" when not mounted); v2: all the same */
	char mnt[CG_NCTRL][CG_PATH_MAX];
	int memsw;     /* v1: memory.memsw.* exists (swap accounted) */
	char why[256]; /* CG_NONE: why no limits can be set here */
};

/* Limits of one clone; 0 means "not limited". */
struct cg_limits {
	uint64_t memory;     /* bytes */
	unsigned cpu_weight; /* 1..10000, the v2 scale (100: a default cgroup's) */
	uint64_t pids;	     /* tasks (threads) */
};

/* A clone's cgroup. Filled by cg_create; emptied by cg_destroy. */
struct cg_group {
	enum cg_version version;	/* CG_NONE: the clone has no cgroup */
	char rel[CG_PATH_MAX];		/* doppel/NAME/clone-ID */
	char dir[CG_NCTRL][CG_DIR_MAX]; /* v1: per controller ("" if absent); v2: all equal */
	struct cg_limits limits;	/* as applied */
};

/* What a clone's cgroup says now. */
struct cg_usage {
	uint64_t memory;      /* bytes charged now */
	uint64_t memory_peak; /* high-water mark (0: the kernel does not keep one) */
	uint64_t pids;	      /* tasks now */
	uint64_t oom_kills;   /* processes the OOM killer ended in it */
	uint64_t failcnt;     /* v1: times the limit was hit */
};

/* ---- pure ---- */

/*
 * Find the controllers in a mountinfo text (the format of
 * /proc/self/mountinfo). controllers_v2 is the content of the cgroup2
 * mount's cgroup.controllers (NULL: read it from the mount). Prefers v2
 * when its hierarchy has the memory controller.
 */
void cg_host_parse(FILE *mountinfo, const char *controllers_v2, struct cg_host *h);

/* The v1 cpu.shares for a v2 weight (100 -> 1024), clamped to 2..262144. */
unsigned cg_v1_shares(unsigned weight);
/*
 * The default memory limit: 2 x production's RSS + an eighth of the host's
 * memory (at least 64 MiB). A clone gets the same writes as production and
 * grows as production does; the headroom lets it, and still stops a clone
 * that balloons long before it can take the host's memory from production.
 */
uint64_t cg_default_memory(uint64_t production_rss, uint64_t host_memory);
/* The default pids limit: 2 x production's tasks + 64. */
uint64_t cg_default_pids(uint64_t production_tasks);

/* A cgroup file's number ("max" reads as UINT64_MAX). 0 or -EINVAL. */
int cg_parse_value(const char *text, uint64_t *out);
/* The value of KEY in "key value" lines (memory.events, memory.oom_control). */
int cg_parse_keyed(const char *text, const char *key, uint64_t *out);

/* One step of making a clone's cgroup. */
enum cg_step_kind {
	CG_STEP_MKDIR, /* path: a directory (existing is fine) */
	CG_STEP_WRITE, /* value into path */
};
struct cg_step {
	enum cg_step_kind kind;
	enum cg_ctrl ctrl;
	int optional; /* failing is fine (a controller already enabled, no swap file) */
	char path[CG_DIR_MAX + 64];
	char value[32];
};
#define CG_MAX_STEPS 48

/*
 * The steps that make REL with limits l on host h, in order, and the
 * directories (g->dir). Returns the number of steps, or -EINVAL.
 */
int cg_plan(const struct cg_host *h, const char *rel, const struct cg_limits *l,
	    struct cg_step *steps, unsigned max, struct cg_group *g);

/* ---- the host ---- */

/* cg_host_parse on /proc/self/mountinfo. */
void cg_host_detect(struct cg_host *h);

/*
 * Make the clone's cgroup with its limits. Returns 0, or -errno with the
 * cause and the fix in err (g is then empty, nothing is left behind).
 */
int cg_create(const struct cg_host *h, const char *rel, const struct cg_limits *l,
	      struct cg_group *g, char *err, size_t errlen);

/* Move the calling process into g. Async-signal-safe. 0 or -errno. */
int cg_enter(const struct cg_group *g);

/* Read the usage. 0, or -errno when the cgroup is gone. */
int cg_usage_read(const struct cg_group *g, struct cg_usage *u);

/*
 * SIGKILL whatever is left in g, remove it (waiting up to timeout_ms for
 * exiting tasks), and the parents doppel made when they are empty.
 * Returns 0 or -errno (g is emptied either way).
 */
int cg_destroy(struct cg_group *g, int timeout_ms);

/*
 * Destroy every BASE/clone-* cgroup (what a supervisor killed without a
 * chance to clean up leaves: orphaned clones, running on in them). Returns
 * how many processes were still in them, now SIGKILLed.
 */
unsigned cg_sweep(const struct cg_host *h, const char *base);

#endif
