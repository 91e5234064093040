/*
 * cmd-trace-rank.c - `doppel trace rank`: statistical debugging over runs
 * labelled pass or fail (Liblit's Failure, Context, Increase, Importance).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd-trace.h"

#define MAX_RUNS 100000

static int exec_rank(int argc, char **argv);

const struct cmd_entry cmd_trace_rank_entry = {
	.name = "trace rank",
	.usage = "[--labels FILE] [--pass TRACE]... [--fail TRACE]... [--top N]\n"
		 "       [--predicates LIST] [--no-elimination] [--all] [--json] [OPTIONS]",
	.summary = "rank predicates that predict failing runs (statistical debugging)",
	.help = "Reads every run's trace and collects predicates: 'called f' (f was reached),\n"
		"'f -> g' (f called g: the branch it took), 'f() < 0 | == 0 | > 0' (return value\n"
		"sign, from uftrace -R or strace), 's() failed [with E]' (syscall errors). Each "
		"is\n"
		"scored with Liblit's statistics over the labelled runs:\n"
		"  Failure    share of runs where it was true that failed\n"
		"  Context    share of runs where it was observed that failed\n"
		"  Increase   Failure - Context: how much more likely failure is when it holds\n"
		"  Importance harmonic mean of Increase and log(F)/log(failed runs)\n"
		"Predicates whose Increase is not above zero with 95% confidence are left out\n"
		"(--all shows them). Then iterative elimination names one bug predictor per\n"
		"round, dropping the runs it explains, until every failure is explained.\n"
		"\n"
		"labels:\n"
		"  --labels FILE       lines 'TRACE LABEL'; LABEL is pass, fail, an exit status\n"
		"                      (0 passes) or @STATUS.json, a saved `doppel status --json`\n"
		"                      (the run fails when a replica has diverged turns)\n"
		"  --pass TRACE, --fail TRACE   label runs on the command line (repeatable)\n"
		"\n"
		"options:\n"
		"  --top N             predicates listed (default 10)\n"
		"  --predicates LIST   called,edge,return,syserr (default all)\n"
		"  --no-elimination    skip iterative elimination\n"
		"  --all               list predicates without significant Increase too\n"
		"  --json              the ranking as JSON\n" TRACE_READ_HELP "\n"
		"example:\n"
		"  for i in $(seq 50); do DOPPELTRACE_OUT=run$i.dtr ./app input$i;\n"
		"      echo \"run$i.dtr $?\" >> labels; done\n"
		"  doppel trace rank --labels labels\n",
	.exec = exec_rank,
};

struct runlist {
	struct trace_rank_run *v;
	char **owned;
	size_t n, cap, nowned;
};

static int add_run(struct runlist *l, const char *path, int failed, int own)
{
	if (l->n >= MAX_RUNS)
		return -ENOSPC;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct trace_rank_run *nv = realloc(l->v, nc * sizeof(*nv));
		char **no = realloc(l->owned, nc * sizeof(*no));

		if (nv)
			l->v = nv;
		if (no)
			l->owned = no;
		if (!nv || !no)
			return -ENOMEM;
		l->cap = nc;
	}
	l->v[l->n].path = path;
	l->v[l->n].failed = failed;
	l->n++;
	if (own)
		l->owned[l->nowned++] = (char *)path;
	return 0;
}

/* A saved `doppel status --json`: failed when a replica diverged. */
static int status_failed(const char *path, int *failed)
{
	FILE *f = fopen(path, "re");
	char buf[1 << 16];
	size_t n;
	const char *p;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	*failed = 0;
	for (p = buf; (p = strstr(p, "\"diverged_turns\"")) != NULL; p++) {
		const char *c = strchr(p, ':');

		if (c && strtoull(c + 1, NULL, 10) > 0)
			*failed = 1;
	}
	return strstr(buf, "\"diverged_turns\"") ? 0 : -EINVAL;
}

static int parse_label(const char *label, const char *dir, int *failed)
{
	char *end;
	long v;

	if (!strcmp(label, "pass") || !strcmp(label, "ok") || !strcmp(label, "good"))
		*failed = 0;
	else if (!strcmp(label, "fail") || !strcmp(label, "failed") || !strcmp(label, "bad"))
		*failed = 1;
	else if (label[0] == '@') {
		char path[8300];

		if (label[1] == '/' || !dir)
			snprintf(path, sizeof(path), "%s", label + 1);
		else
			snprintf(path, sizeof(path), "%s/%s", dir, label + 1);
		return status_failed(path, failed);
	} else {
		v = strtol(label, &end, 10);
		if (end == label || *end)
			return -EINVAL;
		*failed = v != 0;
	}
	return 0;
}

static int read_labels(const struct cmd_entry *e, const char *file, struct runlist *l)
{
	FILE *f = fopen(file, "re");
	char line[8192], dir[4096];
	const char *slash = strrchr(file, '/');
	int lineno = 0;

	if (!f) {
		fprintf(stderr, "doppel %s: %s: %s\n", e->name, file, strerror(errno));
		return EXIT_RUNTIME;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
	while (fgets(line, sizeof(line), f)) {
		char path[4096], label[4096], *full;
		int failed = 0, rc;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%4095s %4095s", path, label) != 2) {
			fclose(f);
			fprintf(stderr, "doppel %s: %s:%d: expected 'TRACE LABEL'\n", e->name, file,
				lineno);
			return EXIT_USAGE;
		}
		rc = parse_label(label, dir, &failed);
		if (rc < 0) {
			fclose(f);
			fprintf(stderr,
				"doppel %s: %s:%d: label '%s': use pass, fail, an exit status or "
				"@status.json%s\n",
				e->name, file, lineno, label,
				rc == -EINVAL ? "" : " (that file could not be read)");
			return EXIT_USAGE;
		}
		/* relative trace paths are relative to the labels file */
		full = malloc(strlen(dir) + strlen(path) + 2);
		if (!full) {
			fclose(f);
			return EXIT_RUNTIME;
		}
		if (path[0] == '/')
			strcpy(full, path);
		else
			sprintf(full, "%s/%s", dir, path);
		if (add_run(l, full, failed, 1) < 0) {
			free(full);
			fclose(f);
			fprintf(stderr, "doppel %s: too many runs (at most %d)\n", e->name,
				MAX_RUNS);
			return EXIT_USAGE;
		}
	}
	fclose(f);
	return 0;
}

static int exec_rank(int argc, char **argv)
{
	static const struct option opts[] = {
		{"labels", required_argument, NULL, 'l'},
		{"pass", required_argument, NULL, 'p'},
		{"fail", required_argument, NULL, 'f'},
		{"top", required_argument, NULL, 't'},
		{"predicates", required_argument, NULL, 'P'},
		{"no-elimination", no_argument, NULL, 'n'},
		{"all", no_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		TRACE_READ_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_rank_entry;
	struct trace_read_opts ro = {0};
	struct trace_rank_opts o = {.top = 10};
	struct trace_rank_result res;
	struct runlist l = {0};
	unsigned long long v;
	char err[1024], *report = NULL;
	size_t len;
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			rc = read_labels(e, optarg, &l);
			if (rc)
				goto out;
			break;
		case 'p':
		case 'f':
			if (add_run(&l, optarg, c == 'f', 0) < 0) {
				rc = cmd_usage_error(e, "too many runs");
				goto out;
			}
			break;
		case 't':
			if (cmd_trace_parse_uint(e, "--top", optarg, 1u << 20, &v) < 0) {
				rc = EXIT_USAGE;
				goto out;
			}
			o.top = (size_t)v;
			break;
		case 'P':
			if (trace_rank_parse_families(optarg, &o.families) < 0) {
				rc = cmd_usage_error(e,
						     "--predicates '%s': a list of called, edge, "
						     "return, syserr",
						     optarg);
				goto out;
			}
			break;
		case 'n':
			o.no_elimination = 1;
			break;
		case 'a':
			o.all = 1;
			break;
		case 'j':
			o.json = 1;
			break;
		default:
			rc = cmd_trace_read_opt(e, c, optarg, &ro);
			if (rc <= 0) {
				rc = rc < 0 ? EXIT_USAGE
					    : cmd_usage_error(e,
							      "unknown or incomplete option '%s'",
							      argv[optind - 1]);
				goto out;
			}
		}
	}
	if (optind < argc) {
		rc = cmd_usage_error(e,
				     "unexpected argument '%s' (label runs with --labels, --pass "
				     "or --fail)",
				     argv[optind]);
		goto out;
	}
	if (l.n < 2) {
		rc = cmd_usage_error(e, "give labelled runs: --labels FILE, or --pass and --fail");
		goto out;
	}
	o.read = &ro;
	rc = trace_rank(l.v, l.n, &o, &res, &report, &len, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "doppel %s: %s\n", e->name, err);
		rc = rc == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
		goto out;
	}
	fwrite(report, 1, len, stdout);
	rc = fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
out:
	free(report);
	for (size_t i = 0; i < l.nowned; i++)
		free(l.owned[i]);
	free(l.owned);
	free(l.v);
	return rc;
}
