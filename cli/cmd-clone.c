/*
 * cmd-clone.c - `doppel clone NAME`: ask a supervisor for live clones and
 * show its progress as it happens.
 */
#include <errno.h>
#include <event2/http.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cmd.h"
#include "supervisor/supervisor.h"

static int cmd_clone_exec(int argc, char **argv);

const struct cmd_entry cmd_clone_entry = {
	.name = "clone",
	.usage = "NAME [--count N] [--buffer SIZE] [--images DIR] [--host NETNS] [--control]\n"
		 "       [--keep-images DIR] [--clone-memory SIZE] [--clone-cpu-weight N]\n"
		 "       [--clone-pids N] [--predump auto|on|off]",
	.summary = "make live clones of a service started with `doppel run`",
	.help = "Makes live clones of the service NAME while it keeps serving: copies its state\n"
		"dirs, freezes it just long enough for CRIU to dump it (the final copy of the\n"
		"state dirs happens in that window), restores each clone in new namespaces with\n"
		"its own copy of the state, and attaches it to the proxy: every connection that\n"
		"starts after that is also fed to the clone. Connections open at freeze time stay\n"
		"production's. Prints each step and how long production was frozen.\n"
		"\n"
		"options:\n"
		"  --count N       clones from one dump (scaled mode; default 1)\n"
		"  --buffer SIZE   queue per connection for these clones (default: the one\n"
		"                  given to `doppel run`)\n"
		"  --images DIR    write this dump's images under DIR (default: the supervisor's\n"
		"                  private tmpfs); created 0700, deleted after the restore\n"
		"  --host NETNS    external mode: run the clones on another host, here a network\n"
		"                  namespace (`ip netns` name or a netns file) linked to this one\n"
		"                  by a network (veth). CRIU's page server on that host receives\n"
		"                  production's memory over TCP during the dump; a relay there\n"
		"                  forwards the copy of the traffic, which crosses the network.\n"
		"                  See the README for the same on two machines.\n"
		"  --control       an unmodified clone that measures noise: what differs between\n"
		"                  it and production is not reported as divergence of the other\n"
		"                  clones (`doppel diverge NAME`)\n"
		"  --keep-images DIR\n"
		"                  staged record and replay: keep this dump's images and the\n"
		"                  state as of the dump in DIR, and record everything the clone\n"
		"                  receives (and answers) into DIR/received-NNNN.pcap until it is\n"
		"                  destroyed; `doppel restore DIR` brings it back offline and\n"
		"                  `doppel replay` feeds it the same traffic again\n"
		"  --predump auto|on|off\n"
		"                  iterative pre-dump (default auto): copy production's memory\n"
		"                  in passes while it runs (criu pre-dump --track-mem), then\n"
		"                  freeze it only to dump the pages dirtied since the last pass.\n"
		"                  Passes stop when the last one wrote at most 2560 pages\n"
		"                  (10 MiB), or not 10 % fewer than the one before, or after\n"
		"                  5 passes or 30 s of passes. Needs a kernel with\n"
		"                  soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY; `criu check\n"
		"                  --feature mem_dirty_track`), or else Linux >= 6.7 and the\n"
		"                  CRIU deploy/install.sh builds, which tracks written pages\n"
		"                  under userfaultfd write-protect (`criu check --feature\n"
		"                  mem_written_track`). auto: used where it works, else\n"
		"                  a plain dump and the reason is printed; on: fail (before\n"
		"                  production is touched) where it cannot work; off: plain dump.\n"
		"                  Not with --host (auto falls back to a plain dump).\n"
		"  --clone-memory SIZE\n"
		"                  memory limit of each clone (its cgroup): past it the kernel\n"
		"                  kills the clone, never production (default: the one given to\n"
		"                  `doppel run`, else 2 x production's resident memory + 1/8\n"
		"                  of the host's memory)\n"
		"  --clone-cpu-weight N\n"
		"                  CPU weight of each clone, 1 to 10000 (cgroup v2 scale, 100\n"
		"                  being an ordinary cgroup's; v1: cpu.shares N x 1024 / 100;\n"
		"                  default 10: a clone gets CPU time production leaves over)\n"
		"  --clone-pids N  most tasks (threads) a clone may have (default 2 x "
		"production's\n"
		"                  + 64)\n"
		"A limit given here is required: if the clone's cgroup cannot be made, no clone\n"
		"is made. Without one, a clone that cannot get a cgroup runs without limits and\n"
		"the progress says why.\n"
		"\n"
		"Exit status 0 when every clone is attached, 1 otherwise (the message says why,\n"
		"and where CRIU's log is).\n",
	.exec = cmd_clone_exec,
};

struct clone_out {
	char last[256];
	size_t len;
	int ok;
};

/* Print progress as it comes and remember whether the last line said OK. */
static void on_chunk(const char *data, size_t len, void *arg)
{
	struct clone_out *o = arg;

	fwrite(data, 1, len, stdout);
	fflush(stdout);
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			o->last[o->len] = '\0';
			o->ok = strncmp(o->last, "OK", 2) == 0;
			o->len = 0;
		} else if (o->len < sizeof(o->last) - 1) {
			o->last[o->len++] = data[i];
		}
	}
}

static int opt_images(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	if (!realpath(text, dest)) {
		cmd_usage_error(e, "%s %s: %s", opt, text, strerror(errno));
		return -1;
	}
	return 0;
}

static int opt_host(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	if (!*text || strlen(text) >= SUP_HOST_MAX) {
		cmd_usage_error(e, "%s '%s': a network namespace name or path", opt, text);
		return -1;
	}
	*(const char **)dest = text;
	return 0;
}

/* --keep-images DIR: created if need be (0700), made absolute. */
static int opt_keep(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	if ((mkdir(text, 0700) < 0 && errno != EEXIST) || !realpath(text, dest)) {
		cmd_usage_error(e, "%s %s: %s", opt, text, strerror(errno));
		return -1;
	}
	return 0;
}

static int opt_predump(const struct cmd_entry *e, const char *opt, const char *text, void *dest)
{
	enum cm_predump m;

	if (cm_predump_parse(text, &m) < 0) {
		cmd_usage_error(e, "%s '%s': auto, on or off", opt, text);
		return -1;
	}
	*(const char **)dest = text;
	return 0;
}

/* "&key=value", the value URL-escaped; 0 or -1 when it does not fit. */
static int query_add(char *q, size_t len, const char *key, const char *value)
{
	char *v = evhttp_uriencode(value, -1, 0);
	size_t used = strlen(q);
	int n;

	if (!v)
		return -1;
	n = snprintf(q + used, len - used, "&%s=%s", key, v);
	free(v);
	return n < 0 || (size_t)n >= len - used ? -1 : 0;
}

/* The clone's resource limits, those given, as query parameters. */
static int limits_query(char *q, size_t len, uint64_t memory, int cpu_weight, int pids)
{
	char v[32];

	snprintf(v, sizeof(v), "%llu", (unsigned long long)memory);
	if (memory && query_add(q, len, "memory", v))
		return -1;
	snprintf(v, sizeof(v), "%d", cpu_weight);
	if (cpu_weight && query_add(q, len, "cpu_weight", v))
		return -1;
	snprintf(v, sizeof(v), "%d", pids);
	return pids && query_add(q, len, "pids", v) ? -1 : 0;
}

static int cmd_clone_exec(int argc, char **argv)
{
	const struct cmd_entry *e = &cmd_clone_entry;
	struct clone_out out = {.ok = 0};
	char addr[512], path[6 * PATH_MAX + 512], err[512], sz[32];
	int count = 1, control = 0, cpu_weight = 0, pids = 0, status, rc;
	uint64_t buffer = 0, memory = 0;
	const char *host = NULL, *predump = NULL;
	char images[PATH_MAX] = "", keep[PATH_MAX] = "";
	const struct cli_opt opts[] = {
		CLI_INT("count", &count, 1, SUP_MAX_CLONES),
		CLI_SIZE("buffer", &buffer),
		CLI_FN("host", &host, opt_host),
		CLI_FN("images", images, opt_images),
		CLI_FLAG("control", &control),
		CLI_FN("keep-images", keep, opt_keep),
		CLI_SIZE("clone-memory", &memory),
		CLI_INT("clone-cpu-weight", &cpu_weight, 1, 10000),
		CLI_INT("clone-pids", &pids, 1, 4194304),
		CLI_FN("predump", &predump, opt_predump),
		CLI_END,
	};
	const struct cli_opt *const tables[] = {opts, NULL};

	if (argc < 2 || argv[1][0] == '-')
		return cmd_usage_error(e, "give the NAME of a service started with `doppel run`");
	if (cli_admin_for(e, argv[1], addr, sizeof(addr)))
		return EXIT_USAGE;
	rc = cli_parse_opts(e, argc, argv, 2, tables, 0);
	if (rc < 0)
		return EXIT_USAGE;
	if (rc < argc)
		return cmd_usage_error(e, "unexpected argument '%s'", argv[rc]);
	if (keep[0] && (count != 1 || host))
		return cmd_usage_error(e, "--keep-images keeps one clone made on this host");
	snprintf(path, sizeof(path), "/clone?count=%d%s", count, control ? "&control=1" : "");
	if (memory && memory < (4ULL << 20))
		return cmd_usage_error(e, "--clone-memory %llu: at least 4M",
				       (unsigned long long)memory);
	if (limits_query(path, sizeof(path), memory, cpu_weight, pids))
		return cmd_usage_error(e, "too many options");
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)buffer);
	if ((keep[0] && query_add(path, sizeof(path), "keep", keep)) ||
	    (buffer && query_add(path, sizeof(path), "buffer", sz)) ||
	    (host && query_add(path, sizeof(path), "host", host)) ||
	    (images[0] && query_add(path, sizeof(path), "images", images)) ||
	    (predump && query_add(path, sizeof(path), "predump", predump)))
		return cmd_usage_error(e, "--host, --images or --keep-images: too long");
	status = admin_request(addr, "POST", path, NULL, NULL, on_chunk, &out, 15 * 60 * 1000, err,
			       sizeof(err));
	if (status < 0) {
		fprintf(stderr, "doppel clone %s: %s\n", argv[1], err);
		return EXIT_RUNTIME;
	}
	if (status != 200)
		return EXIT_RUNTIME; /* the supervisor's reason was printed */
	return out.ok ? 0 : EXIT_RUNTIME;
}
