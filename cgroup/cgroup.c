/*
 * cgroup.c - a clone's cgroup: find the controllers, plan and make the
 * cgroup with its limits, start a process inside it, read its usage,
 * remove it. See cgroup.h for the files and values of v1 and v2.
 */
#define LOG_PREFIX "cgroup"
#include "cgroup/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static const char *const ctrl_name[CG_NCTRL] = {"memory", "cpu", "pids"};

/* ---- pure ---- */

unsigned cg_v1_shares(unsigned weight)
{
	uint64_t s = (uint64_t)weight * 1024 / 100;

	if (s < 2)
		s = 2;
	if (s > 262144)
		s = 262144;
	return (unsigned)s;
}

uint64_t cg_default_memory(uint64_t production_rss, uint64_t host_memory)
{
	uint64_t headroom = host_memory / 8;

	if (headroom < (64ULL << 20))
		headroom = 64ULL << 20;
	return 2 * production_rss + headroom;
}

uint64_t cg_default_pids(uint64_t production_tasks)
{
	return 2 * production_tasks + 64;
}

int cg_parse_value(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long v;

	while (*text == ' ' || *text == '\t')
		text++;
	if (!strncmp(text, "max", 3) && (!text[3] || text[3] == '\n')) {
		*out = UINT64_MAX;
		return 0;
	}
	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || (*end && *end != '\n'))
		return -EINVAL;
	*out = v;
	return 0;
}

int cg_parse_keyed(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return cg_parse_value(p + klen + 1, out);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -ENOENT;
}

/* Is word one of the comma-separated options in opts? */
static int has_option(const char *opts, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = opts; p && *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);

		if (l == wl && !strncmp(p, word, l))
			return 1;
		p = c ? c + 1 : NULL;
	}
	return 0;
}

/* Is word one of the space-separated words of list? */
static int has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = list; p && *p;) {
		size_t l;

		while (*p == ' ' || *p == '\n')
			p++;
		l = strcspn(p, " \n");
		if (l == wl && !strncmp(p, word, l))
			return 1;
		p += l;
	}
	return 0;
}

static void read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	buf[0] = '\0';
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
}

void cg_host_parse(FILE *mountinfo, const char *controllers_v2, struct cg_host *h)
{
	char line[4096], v2mnt[CG_PATH_MAX] = "";
	int v1_any = 0;

	memset(h, 0, sizeof(*h));
	while (fgets(line, sizeof(line), mountinfo)) {
		char *f[16], *save = NULL, *sep = strstr(line, " - ");
		int n = 0;

		if (!sep)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t && n < 10;
		     t = strtok_r(NULL, " ", &save))
			f[n++] = t;
		if (n < 5)
			continue;
		{
			char *tail = sep + 3, *fstype, *src, *opts;

			fstype = strtok_r(tail, " \n", &save);
			src = fstype ? strtok_r(NULL, " \n", &save) : NULL;
			opts = src ? strtok_r(NULL, " \n", &save) : NULL;
			if (!fstype || !opts)
				continue;
			if (!strcmp(fstype, "cgroup2") && !v2mnt[0]) {
				snprintf(v2mnt, sizeof(v2mnt), "%s", f[4]);
			} else if (!strcmp(fstype, "cgroup")) {
				for (int c = 0; c < CG_NCTRL; c++)
					if (has_option(opts, ctrl_name[c]) && !h->mnt[c][0]) {
						snprintf(h->mnt[c], sizeof(h->mnt[c]), "%s", f[4]);
						v1_any = 1;
					}
			}
		}
	}
	if (v2mnt[0]) {
		char v2ctrl[256];

		if (controllers_v2) {
			snprintf(v2ctrl, sizeof(v2ctrl), "%s", controllers_v2);
		} else {
			char path[CG_PATH_MAX + 32];

			snprintf(path, sizeof(path), "%s/cgroup.controllers", v2mnt);
			read_small(path, v2ctrl, sizeof(v2ctrl));
		}
		if (has_word(v2ctrl, "memory")) {
			h->version = CG_V2;
			for (int c = 0; c < CG_NCTRL; c++)
				snprintf(h->mnt[c], sizeof(h->mnt[c]), "%s",
					 has_word(v2ctrl, ctrl_name[c]) ? v2mnt : "");
			return;
		}
	}
	if (v1_any && h->mnt[CG_MEMORY][0]) {
		char path[CG_PATH_MAX + 64];
		struct stat st;

		h->version = CG_V1;
		snprintf(path, sizeof(path), "%s/memory.memsw.limit_in_bytes", h->mnt[CG_MEMORY]);
		h->memsw = stat(path, &st) == 0;
		return;
	}
	memset(h->mnt, 0, sizeof(h->mnt));
	snprintf(h->why, sizeof(h->why), "%s",
		 v2mnt[0] ? "the cgroup v2 hierarchy has no memory controller and no cgroup v1 "
			    "memory hierarchy is mounted"
			  : "no cgroup hierarchy with the memory controller is mounted");
}

static int add_step(struct cg_step *steps, unsigned max, unsigned *n, enum cg_step_kind kind,
		    enum cg_ctrl ctrl, int optional, const char *dir, const char *file,
		    const char *value)
{
	struct cg_step *s;

	if (*n >= max)
		return -EINVAL;
	s = &steps[(*n)++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->ctrl = ctrl;
	s->optional = optional;
	if (file)
		snprintf(s->path, sizeof(s->path), "%s/%s", dir, file);
	else
		snprintf(s->path, sizeof(s->path), "%s", dir);
	if (value)
		snprintf(s->value, sizeof(s->value), "%s", value);
	return 0;
}

/* rel is relative, without "..", "//" or a trailing slash. */
static int rel_valid(const char *rel)
{
	if (!*rel || rel[0] == '/' || strlen(rel) >= CG_PATH_MAX - 1 || strstr(rel, "..") ||
	    strstr(rel, "//") || rel[strlen(rel) - 1] == '/')
		return 0;
	return 1;
}

int cg_plan(const struct cg_host *h, const char *rel, const struct cg_limits *l,
	    struct cg_step *steps, unsigned max, struct cg_group *g)
{
	unsigned n = 0;
	char num[32];
	int rc = 0;

	memset(g, 0, sizeof(*g));
	if (h->version == CG_NONE || !rel_valid(rel))
		return -EINVAL;
	g->version = h->version;
	snprintf(g->rel, sizeof(g->rel), "%s", rel);
	for (int c = 0; c < CG_NCTRL; c++) {
		/* each level from the top (doppel) down to the clone's */
		const char *p = rel;

		if (!h->mnt[c][0])
			continue;
		snprintf(g->dir[c], sizeof(g->dir[c]), "%s/%s", h->mnt[c], rel);
		/* v2: one hierarchy, one walk (done with the memory controller's) */
		if (h->version == CG_V2 && c != CG_MEMORY)
			continue;
		for (;;) {
			const char *slash = strchr(p, '/');
			char dir[CG_DIR_MAX], parent[CG_DIR_MAX];
			size_t len = slash ? (size_t)(slash - rel) : strlen(rel);
			int leaf = !slash;

			snprintf(parent, sizeof(parent), "%s%s%.*s", h->mnt[c], p == rel ? "" : "/",
				 p == rel ? 0 : (int)(p - rel - 1), rel);
			snprintf(dir, sizeof(dir), "%s/%.*s", h->mnt[c], (int)len, rel);
			if (h->version == CG_V2) {
				/* the parent hands its controllers down */
				for (int k = 0; k < CG_NCTRL; k++) {
					char plus[16];

					if (!h->mnt[k][0])
						continue;
					snprintf(plus, sizeof(plus), "+%s", ctrl_name[k]);
					rc |= add_step(steps, max, &n, CG_STEP_WRITE, k, 1, parent,
						       "cgroup.subtree_control", plus);
				}
			}
			rc |= add_step(steps, max, &n, CG_STEP_MKDIR, c, 0, dir, NULL, NULL);
			if (l->cpu_weight &&
			    (h->version == CG_V2 ? h->mnt[CG_CPU][0] != 0 : c == CG_CPU)) {
				if (h->version == CG_V2)
					snprintf(num, sizeof(num), "%u", l->cpu_weight);
				else
					snprintf(num, sizeof(num), "%u",
						 cg_v1_shares(l->cpu_weight));
				rc |= add_step(steps, max, &n, CG_STEP_WRITE, CG_CPU, 0, dir,
					       h->version == CG_V2 ? "cpu.weight" : "cpu.shares",
					       num);
			}
			if (leaf)
				break;
			p = slash + 1;
		}
	}
	/* the clone's own limits, at the leaf */
	if (l->memory && g->dir[CG_MEMORY][0]) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)l->memory);
		if (h->version == CG_V2) {
			rc |= add_step(steps, max, &n, CG_STEP_WRITE, CG_MEMORY, 0,
				       g->dir[CG_MEMORY], "memory.max", num);
			rc |= add_step(steps, max, &n, CG_STEP_WRITE, CG_MEMORY, 1,
				       g->dir[CG_MEMORY], "memory.swap.max", "0");
		} else {
			rc |= add_step(steps, max, &n, CG_STEP_WRITE, CG_MEMORY, 0,
				       g->dir[CG_MEMORY], "memory.limit_in_bytes", num);
			if (h->memsw)
				rc |= add_step(steps, max, &n, CG_STEP_WRITE, CG_MEMORY, 0,
					       g->dir[CG_MEMORY], "memory.memsw.limit_in_bytes",
					       num);
		}
	}
	if (l->pids && g->dir[CG_PIDS][0]) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)l->pids);
		rc |= add_step(steps, max, &n, CG_STEP_WRITE, CG_PIDS, 0, g->dir[CG_PIDS],
			       "pids.max", num);
	}
	g->limits.memory = g->dir[CG_MEMORY][0] ? l->memory : 0;
	g->limits.cpu_weight = g->dir[CG_CPU][0] ? l->cpu_weight : 0;
	g->limits.pids = g->dir[CG_PIDS][0] ? l->pids : 0;
	return rc ? -EINVAL : (int)n;
}

/* ---- the host ---- */

void cg_host_detect(struct cg_host *h)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f) {
		memset(h, 0, sizeof(*h));
		snprintf(h->why, sizeof(h->why), "cannot read /proc/self/mountinfo: %s",
			 strerror(errno));
		return;
	}
	cg_host_parse(f, NULL, h);
	fclose(f);
}

static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	e = errno;
	close(fd);
	return n == (ssize_t)strlen(value) ? 0 : -(n < 0 ? e : EIO);
}

/* rmdir the leaf and, when empty, the levels above it up to the mount. */
static void remove_dirs(const struct cg_group *g)
{
	for (int c = 0; c < CG_NCTRL; c++) {
		char dir[CG_DIR_MAX];
		size_t mlen;

		if (!g->dir[c][0] || (c > 0 && !strcmp(g->dir[c], g->dir[c - 1])))
			continue;
		snprintf(dir, sizeof(dir), "%s", g->dir[c]);
		mlen = strlen(dir) - strlen(g->rel);
		while (strlen(dir) > mlen && (rmdir(dir) == 0 || errno == ENOENT)) {
			char *slash = strrchr(dir, '/');

			if (!slash || (size_t)(slash - dir) < mlen)
				break;
			*slash = '\0';
		}
	}
}

int cg_create(const struct cg_host *h, const char *rel, const struct cg_limits *l,
	      struct cg_group *g, char *err, size_t errlen)
{
	struct cg_step *steps = calloc(CG_MAX_STEPS, sizeof(*steps));
	int n, rc = 0;

	if (!steps) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (h->version == CG_NONE) {
		snprintf(err, errlen, "%s", h->why[0] ? h->why : "no cgroup hierarchy found");
		free(steps);
		memset(g, 0, sizeof(*g));
		return -ENOTSUP;
	}
	n = cg_plan(h, rel, l, steps, CG_MAX_STEPS, g);
	if (n < 0) {
		snprintf(err, errlen, "bad cgroup name '%s'", rel);
		free(steps);
		return n;
	}
	/* A leftover of an earlier run with the same name (empty, or rmdir fails). */
	remove_dirs(g);
	for (int i = 0; i < n && !rc; i++) {
		struct cg_step *s = &steps[i];

		if (s->kind == CG_STEP_MKDIR) {
			int e = mkdir(s->path, 0755) < 0 ? errno : 0;

			if (e == EEXIST && !strcmp(s->path, g->dir[s->ctrl])) {
				/* not ours to reuse: remove_dirs() could not remove it */
				rc = -EEXIST;
				snprintf(err, errlen,
					 "the cgroup %s exists already and has processes in it "
					 "(a clone left by a doppel that was killed?): see its "
					 "cgroup.procs, stop them, then rmdir it",
					 s->path);
			} else if (e && e != EEXIST) {
				rc = -e;
				snprintf(err, errlen, "cannot create the cgroup %s: %s%s", s->path,
					 strerror(e),
					 e == EACCES || e == EPERM || e == EROFS
						 ? " (doppel needs root and a writable cgroup "
						   "hierarchy: not inside a container that mounts "
						   "/sys/fs/cgroup read-only)"
						 : "");
			}
		} else {
			int wrc = write_file(s->path, s->value);

			if (wrc && !s->optional) {
				rc = wrc;
				snprintf(err, errlen, "cannot set %s to %s: %s%s", s->path,
					 s->value, strerror(-wrc),
					 wrc == -ENOENT && g->version == CG_V2
						 ? " (the controller is not enabled for this "
						   "cgroup: another process holds the cgroup "
						   "above it, or the host does not delegate it)"
						 : "");
			} else if (wrc) {
				pr_debug("optional cgroup write %s=%s failed: %s", s->path,
					 s->value, strerror(-wrc));
			}
		}
	}
	free(steps);
	if (rc) {
		remove_dirs(g);
		memset(g, 0, sizeof(*g));
	}
	return rc;
}

int cg_enter(const struct cg_group *g)
{
	for (int c = 0; c < CG_NCTRL; c++) {
		char path[CG_DIR_MAX + 16];
		size_t len = strlen(g->dir[c]);
		int fd;

		if (!len || (c > 0 && !strcmp(g->dir[c], g->dir[c - 1])))
			continue;
		/* no snprintf: async-signal-safe */
		if (len + sizeof("/cgroup.procs") > sizeof(path))
			return -ENAMETOOLONG;
		memcpy(path, g->dir[c], len);
		memcpy(path + len, "/cgroup.procs", sizeof("/cgroup.procs"));
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (write(fd, "0", 1) != 1) {
			int e = errno;

			close(fd);
			return -e;
		}
		close(fd);
	}
	return 0;
}

static int read_value(const char *dir, const char *file, uint64_t *out)
{
	char path[CG_DIR_MAX + 64], buf[64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (stat(path, &st) < 0)
		return -errno;
	read_small(path, buf, sizeof(buf));
	return cg_parse_value(buf, out);
}

static int read_keyed(const char *dir, const char *file, const char *key, uint64_t *out)
{
	char path[CG_DIR_MAX + 64], buf[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	read_small(path, buf, sizeof(buf));
	return cg_parse_keyed(buf, key, out);
}

int cg_usage_read(const struct cg_group *g, struct cg_usage *u)
{
	const char *mem = g->dir[CG_MEMORY], *pids = g->dir[CG_PIDS];
	int rc = -ENOENT;

	memset(u, 0, sizeof(*u));
	if (g->version == CG_NONE)
		return -ENOENT;
	if (mem[0]) {
		if (g->version == CG_V2) {
			rc = read_value(mem, "memory.current", &u->memory);
			read_value(mem, "memory.peak", &u->memory_peak); /* Linux >= 5.19 */
			read_keyed(mem, "memory.events", "oom_kill", &u->oom_kills);
		} else {
			rc = read_value(mem, "memory.usage_in_bytes", &u->memory);
			read_value(mem, "memory.max_usage_in_bytes", &u->memory_peak);
			read_value(mem, "memory.failcnt", &u->failcnt);
			read_keyed(mem, "memory.oom_control", "oom_kill", &u->oom_kills);
		}
	}
	if (pids[0] && read_value(pids, "pids.current", &u->pids) == 0)
		rc = 0;
	return rc;
}

/* SIGKILL every process listed in dir/cgroup.procs. */
static int kill_procs(const char *dir)
{
	char path[CG_DIR_MAX + 16], buf[4096];
	int n = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	read_small(path, buf, sizeof(buf));
	for (char *p = buf; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (pid > 1 && kill((pid_t)pid, SIGKILL) == 0)
			n++;
		p = end;
		while (*p == '\n')
			p++;
	}
	return n;
}

int cg_destroy(struct cg_group *g, int timeout_ms)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	int rc = 0;

	if (g->version == CG_NONE)
		return 0;
	for (int waited = 0;; waited += 10) {
		int busy = 0;

		for (int c = 0; c < CG_NCTRL; c++) {
			if (!g->dir[c][0])
				continue;
			kill_procs(g->dir[c]);
			if (rmdir(g->dir[c]) < 0 && errno != ENOENT)
				busy = errno;
		}
		if (!busy)
			break;
		if (waited >= timeout_ms) {
			rc = -busy;
			pr_warn("cannot remove the cgroup %s: %s; remove it with rmdir once its "
				"processes are gone",
				g->rel, strerror(busy));
			break;
		}
		nanosleep(&ts, NULL);
	}
	remove_dirs(g); /* the parents, when nothing else is in them */
	memset(g, 0, sizeof(*g));
	return rc;
}

/* "a/b" into out; -1 (out empty) when it does not fit. */
static int path_join(char *out, size_t n, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la + 1 + lb + 1 > n) {
		out[0] = '\0';
		return -1;
	}
	memcpy(out, a, la);
	out[la] = '/';
	memcpy(out + la + 1, b, lb + 1);
	return 0;
}

unsigned cg_sweep(const struct cg_host *h, const char *base)
{
	unsigned killed = 0;

	if (h->version == CG_NONE)
		return 0;
	for (int c = 0; c < CG_NCTRL; c++) {
		char dir[CG_DIR_MAX];
		struct dirent *e;
		DIR *d;

		if (!h->mnt[c][0])
			continue;
		if (path_join(dir, sizeof(dir), h->mnt[c], base) < 0)
			continue;
		d = opendir(dir);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			struct cg_group g = {.version = h->version};

			if (strncmp(e->d_name, "clone-", 6) != 0 ||
			    path_join(g.rel, sizeof(g.rel), base, e->d_name) < 0)
				continue;
			for (int k = 0; k < CG_NCTRL; k++)
				if (h->mnt[k][0] &&
				    path_join(g.dir[k], sizeof(g.dir[k]), h->mnt[k], g.rel) < 0)
					g.dir[k][0] = '\0';
			for (int k = 0; k < CG_NCTRL; k++)
				if (g.dir[k][0] && (k == 0 || strcmp(g.dir[k], g.dir[k - 1])))
					killed += (unsigned)kill_procs(g.dir[k]);
			cg_destroy(&g, 2000);
		}
		closedir(d);
	}
	return killed;
}
