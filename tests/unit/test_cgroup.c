/* test_cgroup.c - a clone's cgroup: which hierarchy, which files, which values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cgroup/cgroup.h"

/* This development machine: v1 controllers, an empty unified hierarchy. */
static const char mountinfo_v1[] =
	"25 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
	"26 25 0:23 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"27 26 0:24 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"28 26 0:25 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"29 26 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"30 26 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"31 26 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

/* A systemd host with the unified hierarchy only. */
static const char mountinfo_v2[] =
	"25 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
	"26 25 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot\n";

/* Debian's v1 layout with cpu and cpuacct mounted together. */
static const char mountinfo_v1_comounted[] =
	"27 26 0:24 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
	"29 26 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";

static void parse(const char *text, const char *v2ctrl, struct cg_host *h)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(f);
	cg_host_parse(f, v2ctrl, h);
	fclose(f);
}

static void hybrid_host_without_v2_controllers_is_v1(void **state)
{
	struct cg_host h;

	(void)state;
	parse(mountinfo_v1, "hugetlb\n", &h);
	assert_int_equal(h.version, CG_V1);
	assert_string_equal(h.mnt[CG_MEMORY], "/sys/fs/cgroup/memory");
	assert_string_equal(h.mnt[CG_CPU], "/sys/fs/cgroup/cpu");
	assert_string_equal(h.mnt[CG_PIDS], "/sys/fs/cgroup/pids");
}

static void unified_with_memory_is_v2(void **state)
{
	struct cg_host h;

	(void)state;
	parse(mountinfo_v2, "cpuset cpu io memory hugetlb pids rdma misc\n", &h);
	assert_int_equal(h.version, CG_V2);
	for (int c = 0; c < CG_NCTRL; c++)
		assert_string_equal(h.mnt[c], "/sys/fs/cgroup");
	/* the hybrid layout with the controllers moved to the unified side */
	parse(mountinfo_v1, "memory pids\n", &h);
	assert_int_equal(h.version, CG_V2);
	assert_string_equal(h.mnt[CG_MEMORY], "/sys/fs/cgroup/unified");
	assert_string_equal(h.mnt[CG_CPU], "");
	assert_string_equal(h.mnt[CG_PIDS], "/sys/fs/cgroup/unified");
}

static void comounted_cpu_and_no_pids(void **state)
{
	struct cg_host h;

	(void)state;
	parse(mountinfo_v1_comounted, NULL, &h);
	assert_int_equal(h.version, CG_V1);
	assert_string_equal(h.mnt[CG_CPU], "/sys/fs/cgroup/cpu,cpuacct");
	assert_string_equal(h.mnt[CG_PIDS], "");
}

static void no_memory_controller_anywhere(void **state)
{
	struct cg_host h;

	(void)state;
	parse("31 26 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "cpu pids\n", &h);
	assert_int_equal(h.version, CG_NONE);
	assert_non_null(strstr(h.why, "memory controller"));
	parse("", NULL, &h);
	assert_int_equal(h.version, CG_NONE);
}

/* Index of the step writing file (a path suffix), or -1. */
static int find_step(const struct cg_step *s, int n, const char *suffix, const char **value)
{
	size_t sl = strlen(suffix);

	for (int i = 0; i < n; i++) {
		size_t pl = strlen(s[i].path);

		if (pl >= sl && !strcmp(s[i].path + pl - sl, suffix)) {
			if (value)
				*value = s[i].value;
			return i;
		}
	}
	return -1;
}

static void v1_plan_files_and_values(void **state)
{
	struct cg_host h;
	struct cg_group g;
	struct cg_step s[CG_MAX_STEPS];
	struct cg_limits l = {.memory = 64ULL << 20, .cpu_weight = 10, .pids = 200};
	const char *v;
	int n;

	(void)state;
	parse(mountinfo_v1, "", &h);
	h.memsw = 1;
	n = cg_plan(&h, "doppel/cache/clone-3", &l, s, CG_MAX_STEPS, &g);
	assert_true(n > 0);
	assert_string_equal(g.dir[CG_MEMORY], "/sys/fs/cgroup/memory/doppel/cache/clone-3");
	assert_string_equal(g.dir[CG_CPU], "/sys/fs/cgroup/cpu/doppel/cache/clone-3");
	assert_string_equal(g.dir[CG_PIDS], "/sys/fs/cgroup/pids/doppel/cache/clone-3");
	assert_true(find_step(s, n, "memory/doppel/cache/clone-3/memory.limit_in_bytes", &v) >= 0);
	assert_string_equal(v, "67108864");
	assert_true(find_step(s, n, "clone-3/memory.memsw.limit_in_bytes", &v) >= 0);
	assert_string_equal(v, "67108864");
	assert_true(find_step(s, n, "pids/doppel/cache/clone-3/pids.max", &v) >= 0);
	assert_string_equal(v, "200");
	/* the weight at each level doppel makes: production competes with the top one */
	assert_true(find_step(s, n, "cpu/doppel/cpu.shares", &v) >= 0);
	assert_string_equal(v, "102");
	assert_true(find_step(s, n, "cpu/doppel/cache/cpu.shares", &v) >= 0);
	assert_true(find_step(s, n, "cpu/doppel/cache/clone-3/cpu.shares", &v) >= 0);
	/* each directory is made before anything is written in it */
	assert_true(find_step(s, n, "memory/doppel", NULL) <
		    find_step(s, n, "memory/doppel/cache/clone-3", NULL));
	assert_true(find_step(s, n, "memory/doppel/cache/clone-3", NULL) <
		    find_step(s, n, "clone-3/memory.limit_in_bytes", NULL));
	assert_int_equal(find_step(s, n, "memory.max", NULL), -1);
	assert_int_equal(find_step(s, n, "cgroup.subtree_control", NULL), -1);
	assert_int_equal(g.limits.memory, 64ULL << 20);
	assert_int_equal(g.limits.pids, 200);
	/* without swap accounting, no memsw file */
	h.memsw = 0;
	n = cg_plan(&h, "doppel/cache/clone-3", &l, s, CG_MAX_STEPS, &g);
	assert_int_equal(find_step(s, n, "memory.memsw.limit_in_bytes", NULL), -1);
}

static void v2_plan_files_and_values(void **state)
{
	struct cg_host h;
	struct cg_group g;
	struct cg_step s[CG_MAX_STEPS];
	struct cg_limits l = {.memory = 100ULL << 20, .cpu_weight = 10, .pids = 64};
	const char *v;
	int n, i;

	(void)state;
	parse(mountinfo_v2, "cpu memory pids\n", &h);
	n = cg_plan(&h, "doppel/web/clone-1", &l, s, CG_MAX_STEPS, &g);
	assert_true(n > 0);
	for (int c = 0; c < CG_NCTRL; c++)
		assert_string_equal(g.dir[c], "/sys/fs/cgroup/doppel/web/clone-1");
	assert_true(find_step(s, n, "clone-1/memory.max", &v) >= 0);
	assert_string_equal(v, "104857600");
	i = find_step(s, n, "clone-1/memory.swap.max", &v);
	assert_true(i >= 0);
	assert_string_equal(v, "0");
	assert_true(s[i].optional); /* no swap file without swap accounting */
	assert_true(find_step(s, n, "clone-1/pids.max", &v) >= 0);
	assert_string_equal(v, "64");
	assert_true(find_step(s, n, "/sys/fs/cgroup/doppel/cpu.weight", &v) >= 0);
	assert_string_equal(v, "10");
	assert_true(find_step(s, n, "clone-1/cpu.weight", &v) >= 0);
	/* controllers handed down from the root to the clone's parent, before each mkdir */
	i = find_step(s, n, "/sys/fs/cgroup/cgroup.subtree_control", &v);
	assert_true(i >= 0 && i < find_step(s, n, "/sys/fs/cgroup/doppel", NULL));
	assert_true(find_step(s, n, "/sys/fs/cgroup/doppel/web/cgroup.subtree_control", NULL) >= 0);
	assert_int_equal(find_step(s, n, "clone-1/cgroup.subtree_control", NULL), -1);
	assert_int_equal(find_step(s, n, "memory.limit_in_bytes", NULL), -1);
	assert_int_equal(find_step(s, n, "cpu.shares", NULL), -1);
	/* a controller the hierarchy lacks: that limit is not applied */
	parse(mountinfo_v2, "memory pids\n", &h);
	n = cg_plan(&h, "doppel/web/clone-1", &l, s, CG_MAX_STEPS, &g);
	assert_int_equal(find_step(s, n, "cpu.weight", NULL), -1);
	assert_int_equal(g.limits.cpu_weight, 0);
	assert_int_equal(g.limits.memory, 100ULL << 20);
}

static void bad_names_are_refused(void **state)
{
	struct cg_host h;
	struct cg_group g;
	struct cg_step s[CG_MAX_STEPS];
	struct cg_limits l = {.memory = 1 << 20};

	(void)state;
	parse(mountinfo_v2, "memory\n", &h);
	assert_int_equal(cg_plan(&h, "/abs", &l, s, CG_MAX_STEPS, &g), -EINVAL);
	assert_int_equal(cg_plan(&h, "doppel/../x", &l, s, CG_MAX_STEPS, &g), -EINVAL);
	assert_int_equal(cg_plan(&h, "doppel//x", &l, s, CG_MAX_STEPS, &g), -EINVAL);
	assert_int_equal(cg_plan(&h, "", &l, s, CG_MAX_STEPS, &g), -EINVAL);
	h.version = CG_NONE;
	assert_int_equal(cg_plan(&h, "doppel/x", &l, s, CG_MAX_STEPS, &g), -EINVAL);
}

static void weights_defaults_and_values(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(cg_v1_shares(100), 1024);
	assert_int_equal(cg_v1_shares(10), 102);
	assert_int_equal(cg_v1_shares(1), 10);
	assert_int_equal(cg_v1_shares(10000), 102400);
	assert_int_equal(cg_default_memory(10ULL << 20, 0), 84ULL << 20);
	assert_int_equal(cg_default_memory(0, 256ULL << 20), 64ULL << 20);
	assert_int_equal(cg_default_memory(10ULL << 20, 24ULL << 30), (20ULL << 20) + (3ULL << 30));
	assert_int_equal(cg_default_pids(5), 74);
	assert_int_equal(cg_parse_value("max\n", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(cg_parse_value("4096\n", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cg_parse_value("", &v), -EINVAL);
	assert_int_equal(cg_parse_value("12x", &v), -EINVAL);
	assert_int_equal(
		cg_parse_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(
		cg_parse_keyed("low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n", "oom_kill", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(cg_parse_keyed("low 0\n", "oom_kill", &v), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hybrid_host_without_v2_controllers_is_v1),
		cmocka_unit_test(unified_with_memory_is_v2),
		cmocka_unit_test(comounted_cpu_and_no_pids),
		cmocka_unit_test(no_memory_controller_anywhere),
		cmocka_unit_test(v1_plan_files_and_values),
		cmocka_unit_test(v2_plan_files_and_values),
		cmocka_unit_test(bad_names_are_refused),
		cmocka_unit_test(weights_defaults_and_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
