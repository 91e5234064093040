/*
 * cmd-trace-rank.c - `doppel trace rank`: statistical debugging over runs
 * labelled pass or fail (Liblit's Failure, Context, Increase, Importance).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/cmd-trace.h"

#define MAX_RUNS 100000
#define MAX_STATUS_BYTES (16 << 20) /* a status is a few KiB */

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
		"  --json              the ranking as JSON\n" CMD_TRACE_READ_HELP "\n"
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

/* Every "diverged_turns" member, at any depth (`doppel run` has them under
 * proxy.replicas, `doppel proxy` under replicas): *found when there is one,
 * *failed when one is a non-zero number. */
static void find_diverged(const json_t *j, int *found, int *failed)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v) find_diverged(v, found, failed);
		return;
	}
	if (!json_is_object(j))
		return;
	json_object_foreach((json_t *)j, key, v)
	{
		if (strcmp(key, "diverged_turns") == 0) {
			*found = 1;
			if ((json_is_integer(v) && json_integer_value(v) != 0) ||
			    (json_is_real(v) &&
			     (json_real_value(v) >= 1 || json_real_value(v) <= -1)))
				*failed = 1;
		}
		find_diverged(v, found, failed);
	}
}

/* A saved `doppel status --json`: failed when a replica diverged. 0; -EINVAL
 * when it is not JSON (why says where) or has no diverged_turns; -errno when
 * it cannot be read or is too large to be one. */
static int status_failed(const char *path, int *failed, char *why, size_t whylen)
{
	FILE *f = fopen(path, "re");
	struct stat sb;
	json_error_t jerr;
	json_t *j;
	int found = 0;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &sb) < 0 || sb.st_size > MAX_STATUS_BYTES) {
		fclose(f);
		return -EFBIG;
	}
	j = json_loadf(f, 0, &jerr);
	fclose(f);
	if (!j) {
		snprintf(why, whylen, " (not JSON: line %d: %s)", jerr.line, jerr.text);
		return -EINVAL;
	}
	*failed = 0;
	find_diverged(j, &found, failed);
	json_decref(j);
	return found ? 0 : -EINVAL;
}

static int parse_label(const char *label, const char *dir, int *failed, char *why, size_t whylen)
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
		return status_failed(path, failed, why, whylen);
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
		char path[4096], label[4096], why[512] = "", *full;
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
		rc = parse_label(label, dir, &failed, why, sizeof(why));
		if (rc < 0) {
			fclose(f);
			fprintf(stderr,
				"doppel %s: %s:%d: label '%s': use pass, fail, an exit status or "
				"@status.json%s\n",
				e->name, file, lineno, label,
				rc == -EINVAL ? why : " (that file could not be read)");
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

struct rank_args {
	struct trace_rank_opts o;
	struct runlist l;
};

static int rank_opt(const struct cmd_entry *e, void *ctx, int c, const char *arg)
{
	struct rank_args *a = ctx;
	unsigned long long v;

	switch (c) {
	case 'l':
		return read_labels(e, arg, &a->l);
	case 'p':
	case 'f':
		if (add_run(&a->l, arg, c == 'f', 0) < 0)
			return cmd_usage_error(e, "too many runs");
		break;
	case 't':
		if (cmd_trace_parse_uint(e, "--top", arg, 1u << 20, &v) < 0)
			return EXIT_USAGE;
		a->o.top = (size_t)v;
		break;
	case 'P':
		if (trace_rank_parse_families(arg, &a->o.families) < 0)
			return cmd_usage_error(
				e, "--predicates '%s': a list of called, edge, return, syserr",
				arg);
		break;
	case 'n':
		a->o.no_elimination = 1;
		break;
	case 'a':
		a->o.all = 1;
		break;
	case 'j':
		a->o.json = 1;
		break;
	}
	return 0;
}

static int rank(const struct cmd_entry *e, int argc, char **argv, struct rank_args *a,
		struct trace_read_opts *ro)
{
	struct trace_rank_result res;
	char err[1024], *report = NULL;
	size_t len;
	int rc;

	if (optind < argc)
		return cmd_usage_error(e,
				       "unexpected argument '%s' (label runs with --labels, --pass "
				       "or --fail)",
				       argv[optind]);
	if (a->l.n < 2)
		return cmd_usage_error(e,
				       "give labelled runs: --labels FILE, or --pass and --fail");
	a->o.read = ro;
	rc = trace_rank(a->l.v, a->l.n, &a->o, &res, &report, &len, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "doppel %s: %s\n", e->name, err);
		rc = rc == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
	} else {
		fwrite(report, 1, len, stdout);
		rc = fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
	}
	free(report);
	return rc;
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
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_rank_entry;
	struct trace_read_opts ro = {0};
	struct rank_args a = {.o = {.top = 10}};
	int rc;

	rc = cmd_trace_getopt(e, argc, argv, "", opts, rank_opt, &a, &ro);
	if (rc == 0)
		rc = rank(e, argc, argv, &a, &ro);
	for (size_t i = 0; i < a.l.nowned; i++)
		free(a.l.owned[i]);
	free(a.l.owned);
	free(a.l.v);
	return rc;
}
