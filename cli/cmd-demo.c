/*
 * cmd-demo.c - `doppel demo`: the guided demos, which are scripts shipped in
 * deploy/ (installed under share/doppel/). This command finds the script and
 * runs it with this doppel; the script does the rest.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"

#ifndef DOPPEL_SOURCE_DIR
#define DOPPEL_SOURCE_DIR ""
#endif

static int cmd_demo_exec(int argc, char **argv);

const struct cmd_entry cmd_demo_entry = {
	.name = "demo",
	.usage = "[--redis]",
	.summary = "a guided demo: find a real bug on a live clone while production serves",
	.help = "Runs a small profile store (deploy/demo/kvd.c) under `doppel run` with users\n"
		"reading and updating records; some reads come back stale. It makes a live clone\n"
		"while the load runs, traces the clone with strace through `doppel attach`, finds\n"
		"the stale answers in the clone's trace with `doppel trace` (demux by request,\n"
		"then compare a right read with a stale one: the first divergence is the bug),\n"
		"shows the wrong cache entry in the clone with gdb, and prints production's\n"
		"request and error counts at every step. Takes about a minute; everything it\n"
		"starts is stopped at the end. Needs root, CRIU, cc, strace, gdb and python3.\n"
		"\n"
		"options:\n"
		"  --redis   the live-clone demo with redis-server instead: a clone while a load\n"
		"            runs, both datasets identical, then the clone stopped as at a\n"
		"            breakpoint while production carries on (deploy/demo.sh)\n"
		"\n"
		"The scripts are looked up in $DOPPEL_DEMO_DIR, then in share/doppel next to\n"
		"this binary's bin/, then in the source tree it was built from. With\n"
		"DOPPEL_DEMO_SUMMARY=FILE each step's outcome is also written to FILE.\n",
	.exec = cmd_demo_exec,
};

/* DIR/rel if it exists; 0 or -ENOENT. */
static int try_dir(const char *dir, const char *rel, char *out, size_t len)
{
	if (!dir || !*dir)
		return -ENOENT;
	snprintf(out, len, "%s/%s", dir, rel);
	return access(out, R_OK) == 0 ? 0 : -ENOENT;
}

static int find_script(const char *rel, const char *exe, char *out, size_t len)
{
	char share[PATH_MAX], src[PATH_MAX];
	const char *slash = strrchr(exe, '/');

	snprintf(share, sizeof(share), "%.*s/../share/doppel", slash ? (int)(slash - exe) : 1,
		 slash ? exe : ".");
	snprintf(src, sizeof(src), "%s/deploy", DOPPEL_SOURCE_DIR);
	if (try_dir(getenv("DOPPEL_DEMO_DIR"), rel, out, len) == 0 ||
	    try_dir(share, rel, out, len) == 0 ||
	    (DOPPEL_SOURCE_DIR[0] && try_dir(src, rel, out, len) == 0))
		return 0;
	return -ENOENT;
}

static int cmd_demo_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_demo_entry;
	const char *rel = "demo/bug.sh";
	char exe[PATH_MAX], script[PATH_MAX + 64];
	ssize_t n;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--redis") == 0)
			rel = "demo.sh";
		else
			return cmd_usage_error(e, "unknown argument '%s'", argv[i]);
	}
	if (geteuid() != 0) {
		fprintf(stderr, "doppel demo: run it as root: it runs `doppel run` and CRIU\n");
		return EXIT_USAGE;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "doppel demo: cannot find my own executable: %s\n",
			strerror(errno));
		return EXIT_RUNTIME;
	}
	exe[n] = '\0';
	if (find_script(rel, exe, script, sizeof(script)) < 0) {
		fprintf(stderr,
			"doppel demo: cannot find %s (looked in $DOPPEL_DEMO_DIR, share/doppel "
			"next "
			"to %s, and %s/deploy); install doppel with deploy/install.sh or set "
			"DOPPEL_DEMO_DIR\n",
			rel, exe, DOPPEL_SOURCE_DIR[0] ? DOPPEL_SOURCE_DIR : "the source tree");
		return EXIT_RUNTIME;
	}
	fflush(stdout);
	execl("/bin/bash", "bash", script, exe, (char *)NULL);
	fprintf(stderr, "doppel demo: cannot run /bin/bash %s: %s\n", script, strerror(errno));
	return EXIT_RUNTIME;
}
