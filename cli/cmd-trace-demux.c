/*
 * cmd-trace-demux.c - `doppel trace demux`: split a trace into streams (per
 * thread, process, connection, request, or begin/end rule), written as files
 * in a directory, as sections on standard output, or listed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cli/cmd-trace.h"

#define MAX_OPEN_FILES 256

static int exec_demux(int argc, char **argv);

const struct cmd_entry cmd_trace_demux_entry = {
	.name = "trace demux",
	.usage = "--by thread|process|connection|request|rule [--begin PAT] [--end PAT]\n"
		 "       [-o DIR | --list] [OPTIONS] FILE...",
	.summary = "split a trace into per-thread, -process, -connection or -request streams",
	.help = "  --by thread        one stream per thread\n"
		"  --by process       one per process\n"
		"  --by connection    one per socket, from the call that made it (accept, "
		"accept4,\n"
		"                     socket) to its close: the calls on that descriptor\n"
		"  --by request       accept/accept4 ... close of a client socket, with "
		"everything\n"
		"                     the serving thread did in between (an event loop's events\n"
		"                     go to the request of the descriptor they use, others to the\n"
		"                     request it last worked on); needs syscalls (strace -yy,\n"
		"                     babeltrace)\n"
		"  --by rule          a thread's events from a call matching --begin to one\n"
		"                     matching --end (shell patterns); without --end, the\n"
		"                     --begin call with everything it calls\n"
		"\n"
		"output:\n"
		"  (default)          every stream as a section of doppel trace text, in the\n"
		"                     order streams end ('## stream request id=3 ... peer=...')\n"
		"  -o, --output DIR   one file per stream, DIR/KIND-ID.dtt, and DIR/streams.txt\n"
		"  --list             a table of the streams only\n"
		"  --max-streams N    streams open at once (default 65536); events of more\n"
		"                     streams are dropped and counted\n"
		"  --max-memory SIZE  standard output only: bytes held for open streams\n"
		"                     (default 256M)\n" TRACE_READ_HELP "\n"
		"example:\n"
		"  strace -f -ttt -T -yy -o nginx.strace nginx -g 'daemon off;'\n"
		"  doppel trace demux --by request nginx.strace --list\n",
	.exec = exec_demux,
};

/* One open output stream. */
struct ostream {
	struct trace_stream_info si;
	struct trace_sink *writer;
	FILE *f;
	char *mem; /* standard output: the stream's text so far */
	size_t memlen;
	char path[4200];
	uint64_t last_use;
};

struct target {
	struct trace_demux_target t;
	int mode; /* 0 stdout, 1 dir, 2 list */
	const char *dir;
	FILE *out;
	FILE *index;
	size_t open_files;
	uint64_t clock;
	size_t max_memory, held;
	uint64_t sections;
	struct ostream **all; /* open streams, for the LRU */
	size_t nall, capall;
	/* closed streams, for the list */
	struct trace_stream_info *done;
	size_t ndone, capdone;
};

static void list_header(FILE *out)
{
	fprintf(out, "%6s %-10s %8s %8s %5s %9s %12s  %s\n", "ID", "KIND", "PID", "TID", "FD",
		"EVENTS", "DURATION", "ATTRIBUTES");
}

static void list_row(FILE *out, const struct trace_stream_info *si)
{
	char d[32];
	const char *attrs = strstr(si->attrs, " peer=");

	if (!attrs)
		attrs = strstr(si->attrs, " begin=");
	char tid[16];

	if (si->kind[0] == 'p' || si->kind[0] == 'c')
		snprintf(tid, sizeof(tid), "-");
	else
		snprintf(tid, sizeof(tid), "%d", si->tid);
	fprintf(out, "%6llu %-10s %8d %8s %5d %9llu %12s  %s\n", (unsigned long long)si->id,
		si->kind, si->pid, tid, si->fd, (unsigned long long)si->events,
		trace_fmt_dur(si->last_ts > si->first_ts ? si->last_ts - si->first_ts : 0, d,
			      sizeof(d)),
		attrs ? attrs + 1 : "");
}

static void lru_close_one(struct target *T)
{
	struct ostream *old = NULL;

	for (size_t i = 0; i < T->nall; i++)
		if (T->all[i]->f && (!old || T->all[i]->last_use < old->last_use))
			old = T->all[i];
	if (!old)
		return;
	fclose(old->f);
	old->f = NULL;
	T->open_files--;
}

static int ensure_file(struct target *T, struct ostream *o, const char *mode)
{
	if (o->f)
		return 0;
	if (T->open_files >= MAX_OPEN_FILES)
		lru_close_one(T);
	o->f = fopen(o->path, mode);
	if (!o->f)
		return -errno;
	T->open_files++;
	if (o->writer)
		trace_text_writer_set_file(o->writer, o->f);
	return 0;
}

static void *t_open(struct trace_demux_target *t, const struct trace_stream_info *si)
{
	struct target *T = (struct target *)t;
	struct ostream *o = calloc(1, sizeof(*o));
	struct trace_event sev;

	if (!o)
		return NULL;
	o->si = *si;
	if (T->mode == 2)
		return o;
	if (T->mode == 1) {
		snprintf(o->path, sizeof(o->path), "%s/%s-%llu.dtt", T->dir, si->kind,
			 (unsigned long long)si->id);
		if (ensure_file(T, o, "we") < 0) {
			int e = errno;

			free(o);
			errno = e;
			return NULL;
		}
	} else {
		o->f = open_memstream(&o->mem, &o->memlen);
		if (!o->f) {
			free(o);
			return NULL;
		}
	}
	o->writer = trace_text_writer_new(o->f);
	if (!o->writer) {
		fclose(o->f);
		free(o->mem);
		free(o);
		errno = ENOMEM;
		return NULL;
	}
	trace_event_init(&sev);
	sev.kind = TRACE_STREAM;
	sev.name = si->kind;
	sev.extra = si->attrs;
	trace_sink_event(o->writer, &sev);
	if (T->nall == T->capall) {
		size_t nc = T->capall ? T->capall * 2 : 64;
		struct ostream **na = realloc(T->all, nc * sizeof(*na));

		if (!na) {
			trace_sink_free(o->writer);
			fclose(o->f);
			free(o->mem);
			free(o);
			errno = ENOMEM;
			return NULL;
		}
		T->all = na;
		T->capall = nc;
	}
	T->all[T->nall++] = o;
	return o;
}

static int t_event(struct trace_demux_target *t, void *h, const struct trace_event *ev)
{
	struct target *T = (struct target *)t;
	struct ostream *o = h;
	int rc;

	if (T->mode == 2)
		return 0;
	o->last_use = ++T->clock;
	if (T->mode == 1 && (rc = ensure_file(T, o, "ae")) < 0)
		return rc;
	rc = trace_sink_event(o->writer, ev);
	if (rc < 0)
		return rc;
	if (T->mode == 0) {
		size_t before = o->memlen;

		fflush(o->f);
		T->held += o->memlen - before;
		if (T->held > T->max_memory)
			return -EFBIG;
	}
	return 0;
}

static void forget(struct target *T, struct ostream *o)
{
	for (size_t i = 0; i < T->nall; i++) {
		if (T->all[i] == o) {
			T->all[i] = T->all[--T->nall];
			break;
		}
	}
}

static int t_close(struct trace_demux_target *t, void *h, const struct trace_stream_info *si)
{
	struct target *T = (struct target *)t;
	struct ostream *o = h;
	int rc = 0;

	if (T->ndone == T->capdone) {
		size_t nc = T->capdone ? T->capdone * 2 : 256;
		struct trace_stream_info *nd = realloc(T->done, nc * sizeof(*nd));

		if (nd) {
			T->done = nd;
			T->capdone = nc;
		}
	}
	if (T->ndone < T->capdone)
		T->done[T->ndone++] = *si;
	if (T->mode == 2) {
		free(o);
		return 0;
	}
	if (T->mode == 1)
		ensure_file(T, o, "ae");
	if (o->writer && o->f)
		trace_sink_end(o->writer);
	trace_sink_free(o->writer);
	if (o->f) {
		if (fclose(o->f) != 0)
			rc = -errno;
		if (T->mode == 1)
			T->open_files--;
	}
	if (T->mode == 0 && o->mem) {
		const char *text = o->mem;
		size_t len = o->memlen;

		/* one header for the whole output */
		if (T->sections++ && len > 17 && strncmp(text, "# doppel-trace 1\n", 17) == 0) {
			text += 17;
			len -= 17;
		}
		if (fwrite(text, 1, len, T->out) != len)
			rc = -EIO;
		T->held -= o->memlen < T->held ? o->memlen : T->held;
	}
	free(o->mem);
	forget(T, o);
	free(o);
	return rc;
}

static int info_cmp(const void *a, const void *b)
{
	const struct trace_stream_info *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int exec_demux(int argc, char **argv)
{
	static const struct option opts[] = {
		{"by", required_argument, NULL, 'b'},
		{"begin", required_argument, NULL, 'B'},
		{"end", required_argument, NULL, 'E'},
		{"output", required_argument, NULL, 'o'},
		{"list", no_argument, NULL, 'l'},
		{"max-streams", required_argument, NULL, 'm'},
		{"max-memory", required_argument, NULL, 'M'},
		TRACE_READ_OPTIONS,
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_trace_demux_entry;
	struct trace_read_opts ro = {0};
	struct trace_demux_opts dopt = {0};
	struct target T = {.t = {t_open, t_event, t_close}, .max_memory = 256u << 20};
	struct trace_demux_stats st;
	struct trace_sink *dm;
	unsigned long long v;
	uint64_t size;
	int c, rc, have_by = 0, list = 0;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (trace_demux_parse_by(optarg, &dopt.by) < 0)
				return cmd_usage_error(e,
						       "--by '%s': use thread, process, "
						       "connection, request or rule",
						       optarg);
			have_by = 1;
			break;
		case 'B':
			dopt.begin = optarg;
			break;
		case 'E':
			dopt.end = optarg;
			break;
		case 'o':
			T.dir = optarg;
			break;
		case 'l':
			list = 1;
			break;
		case 'm':
			if (cmd_trace_parse_uint(e, "--max-streams", optarg, 1u << 24, &v) < 0 ||
			    v == 0)
				return v == 0 ? cmd_usage_error(e,
								"--max-streams must be at least 1")
					      : EXIT_USAGE;
			dopt.max_streams = (size_t)v;
			break;
		case 'M':
			if (cli_parse_size(e, "--max-memory", optarg, &size) < 0)
				return EXIT_USAGE;
			T.max_memory = (size_t)size;
			break;
		default:
			rc = cmd_trace_read_opt(e, c, optarg, &ro);
			if (rc < 0)
				return EXIT_USAGE;
			if (rc == 0)
				return cmd_usage_error(e, "unknown or incomplete option '%s'",
						       argv[optind - 1]);
		}
	}
	if (!have_by)
		return cmd_usage_error(e, "--by is required");
	if (dopt.by == TRACE_BY_RULE && !dopt.begin)
		return cmd_usage_error(e, "--by rule needs --begin PATTERN (and optionally --end)");
	if (dopt.by != TRACE_BY_RULE && (dopt.begin || dopt.end))
		return cmd_usage_error(e, "--begin and --end go with --by rule");
	if (list && T.dir)
		return cmd_usage_error(e, "--list and --output are exclusive");
	if (optind >= argc)
		return cmd_usage_error(e, "which trace? give a file (or - for standard input)");
	T.out = stdout;
	T.mode = list ? 2 : (T.dir ? 1 : 0);
	if (T.mode == 1) {
		struct rlimit rl;

		if (mkdir(T.dir, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "doppel %s: cannot create %s: %s\n", e->name, T.dir,
				strerror(errno));
			return EXIT_RUNTIME;
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MAX_OPEN_FILES + 64) {
			rl.rlim_cur = rl.rlim_max < MAX_OPEN_FILES + 64 ? rl.rlim_max
									: MAX_OPEN_FILES + 64;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	dm = trace_demux_new(&dopt, &T.t);
	rc = cmd_trace_run(e, argv + optind, argc - optind, &ro, dm);
	if (rc == 0 && T.held > T.max_memory)
		fprintf(stderr, "doppel %s: more than --max-memory held; use -o DIR\n", e->name);
	if (dm) {
		trace_demux_stats(dm, &st);
		trace_sink_free(dm);
	} else {
		memset(&st, 0, sizeof(st));
	}
	qsort(T.done, T.ndone, sizeof(*T.done), info_cmp);
	if (T.mode == 2) {
		list_header(stdout);
		for (size_t i = 0; i < T.ndone; i++)
			list_row(stdout, &T.done[i]);
	} else if (T.mode == 1) {
		char path[4200];
		FILE *idx;

		snprintf(path, sizeof(path), "%s/streams.txt", T.dir);
		idx = fopen(path, "we");
		if (idx) {
			list_header(idx);
			for (size_t i = 0; i < T.ndone; i++)
				list_row(idx, &T.done[i]);
			fclose(idx);
		}
	}
	fflush(stdout);
	if (rc)
		goto done;
	fprintf(stderr, "doppel %s: %llu %s streams, %llu events in streams, %llu in none%s",
		e->name, (unsigned long long)st.streams,
		dopt.by == TRACE_BY_THREAD	 ? "thread"
		: dopt.by == TRACE_BY_PROCESS	 ? "process"
		: dopt.by == TRACE_BY_CONNECTION ? "connection"
		: dopt.by == TRACE_BY_REQUEST	 ? "request"
						 : "rule",
		(unsigned long long)st.events_routed, (unsigned long long)st.events_unrouted,
		T.mode == 1 ? "" : "\n");
	if (T.mode == 1)
		fprintf(stderr, "; written to %s/\n", T.dir);
	if (st.streams_dropped)
		fprintf(stderr,
			"doppel %s: %llu streams dropped (%llu events) over --max-streams\n",
			e->name, (unsigned long long)st.streams_dropped,
			(unsigned long long)st.events_dropped);
done:
	free(T.done);
	free(T.all);
	return rc;
}
