/*
 * trace.h - reading traces and the Flowdar analyses (`doppel trace`).
 *
 * Everything here works on one event model (struct trc_event) that every
 * reader produces: libdoppeltrace files (.dtr), `strace -f -ttt -T -yy` text,
 * uftrace data directories, babeltrace2 text of LTTng syscall events, and
 * doppel's own trace text (.dtt), which every analysis writes so that they
 * compose through files and pipes. Analyses are *sinks*: a reader is pumped
 * into a chain of stages (summarise, coarsen, demux, expand) that ends in a
 * writer (text, call tree, report, Chrome JSON, SVG sequence diagram).
 *
 * This module is offline only, as uftrace keeps cmds/ apart from libmcount/:
 * the runtime that lives inside traced programs, the collector it streams to
 * and `doppel attach` are tracer-glue/; the one thing shared is the dtr
 * format (tracer-glue/runtime/dtr-format.h). docs/tracing.md specifies the
 * formats and the algorithms.
 *
 * Conventions: functions return 0 (or a count) or -errno, with a sentence in
 * the caller's error buffer. Nothing here prints messages; writers write the
 * output they were given a FILE for. Every table is bounded and counts what
 * it dropped. Single-threaded: one analysis runs on one thread.
 */
#ifndef DOPPEL_TRACE_H
#define DOPPEL_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TRC_NS 1000000000ULL

/* ------------------------------------------------------------------ events */

enum trc_kind {
	TRC_ENTER = 1,	 /* a function was entered */
	TRC_EXIT,	 /* ... returned; dur is its duration when known (TRC_F_DUR) */
	TRC_SYSCALL,	 /* a complete system call (args, ret or errname, dur) */
	TRC_NOTE,	 /* a signal, a process exit: extra holds the text */
	TRC_LOST,	 /* the tracer lost count records here */
	TRC_BLOCK_BEGIN, /* summarise: a folded block; its first iteration follows */
	TRC_BLOCK_END,	 /* ... end of the block's body */
	TRC_HIDDEN,	 /* coarsen: count calls (of name, or "...") taking dur were hidden */
	TRC_STREAM,	 /* demux: a new stream starts (name = kind, extra = its attributes) */
	TRC_MSG,	 /* align: count bytes sent by peer_* at time min reached this thread */
	TRC_KIND_MAX
};

/* What a folded block repeats: a loop keeps the depth; a recursion is folded
 * as a descent (one frame entered per iteration) and an ascent (one left). */
enum trc_block_kind {
	TRC_BLOCK_LOOP = 0,
	TRC_BLOCK_DESCEND,
	TRC_BLOCK_ASCEND,
};

#define TRC_F_RET 0x01	      /* ret is valid */
#define TRC_F_DUR 0x02	      /* dur is valid */
#define TRC_F_UNFINISHED 0x04 /* the syscall never returned in the trace */
#define TRC_F_RETFD 0x08      /* ret is a new file descriptor; retpath says what it is */
#define TRC_F_TIMES 0x10      /* BLOCK_END: extra holds every folded event's time */

/*
 * One event. Interned strings (name, prog, peer_prog, errname) live as long as
 * the process; the other strings belong to whoever produced the event and are
 * valid until its next event: a stage that keeps an event copies them.
 */
struct trc_event {
	uint64_t ts;	   /* ns: wall clock (strace, dtr), or the tracer's clock */
	uint64_t dur;	   /* ns (TRC_F_DUR); BLOCK_BEGIN: the block's whole span */
	int64_t ret;	   /* TRC_F_RET */
	uint64_t addr;	   /* code address (dtr, uftrace), 0 when unknown */
	uint64_t count;	   /* BLOCK_*: iterations; HIDDEN: calls; LOST: records; MSG: bytes */
	uint64_t min, max; /* BLOCK_BEGIN: shortest, longest iteration; MSG: min = send time */
	int32_t pid, tid;
	int32_t depth;		    /* call depth; ENTER and its EXIT have the same depth */
	int32_t fd;		    /* SYSCALL: first file descriptor argument, or -1 */
	int32_t peer_pid, peer_tid; /* MSG: the sender */
	uint16_t kind;		    /* enum trc_kind */
	uint16_t flags;		    /* TRC_F_* */
	int16_t block;		    /* BLOCK_*: enum trc_block_kind */
	int16_t delta;		    /* BLOCK_*: depth change of one iteration */
	const char *name;	    /* function, syscall, block or stream kind; never NULL */
	const char *prog;	    /* program label, or NULL */
	const char *peer_prog;	    /* MSG: sender's program label */
	const char *errname;	    /* SYSCALL: "EAGAIN" when it failed, else NULL */
	const char *args;	    /* SYSCALL: argument text as strace prints it */
	const char *fdpath;	    /* SYSCALL: what fd is ("TCP:[a:1->b:2]", "/etc/passwd") */
	const char *retpath;	    /* SYSCALL with TRC_F_RETFD: what the new fd is */
	const char *extra;	    /* NOTE text, STREAM attributes, BLOCK_END times */
};

void trc_event_init(struct trc_event *ev);
const char *trc_kind_name(int kind);
const char *trc_block_name(int block);

/* Interned strings: one copy per distinct string, for the whole process. The
 * table is bounded (64 MiB); past it, "?" is returned and counted. */
const char *trc_intern(const char *s, size_t len);
const char *trc_intern_str(const char *s);
uint64_t trc_intern_dropped(void);
void trc_intern_reset(void); /* frees every interned string (tests, fuzzers) */

/* What makes two events "the same" when folding or comparing. */
enum trc_key {
	TRC_KEY_NAME = 0, /* kind and name */
	TRC_KEY_ARGS,	  /* ... and arguments, return value and error */
};
uint64_t trc_event_key(const struct trc_event *ev, enum trc_key key);

/* Shell-style pattern (fnmatch) on a name. */
int trc_glob_match(const char *pattern, const char *name);

/* "1.234 ms" style; returns buf. */
char *trc_fmt_dur(uint64_t ns, char *buf, size_t len);

/* ----------------------------------------------------------------- readers */

enum trc_format {
	TRC_FMT_AUTO = 0,
	TRC_FMT_DTR,	    /* libdoppeltrace chunks */
	TRC_FMT_STRACE,	    /* strace -f -ttt -T -yy text */
	TRC_FMT_UFTRACE,    /* an uftrace.data directory */
	TRC_FMT_BABELTRACE, /* babeltrace2 text of LTTng kernel syscall events */
	TRC_FMT_DTT,	    /* doppel trace text */
};

struct trc_read_opts {
	enum trc_format format;	 /* TRC_FMT_AUTO: detect */
	const char *binary;	 /* dtr: symbolise the main program with this ELF file */
	const char *prog;	 /* label every event with this program name */
	unsigned reorder_chunks; /* dtr: chunks held to merge threads in time order
				    (default 256; 1 = file order) */
};

struct trc_read_stats {
	uint64_t events;     /* events returned */
	uint64_t bytes;	     /* input bytes consumed */
	uint64_t lost;	     /* records the tracer says it lost */
	uint64_t skipped;    /* lines or chunks that could not be parsed */
	uint64_t late;	     /* events returned out of time order (merge window too small) */
	uint64_t unresolved; /* addresses without a symbol */
};

struct trc_reader;

/* path "-" reads standard input (any text format, or dtr). */
int trc_reader_open(const char *path, const struct trc_read_opts *opts, struct trc_reader **out,
		    char *err, size_t errlen);
/* The same, from an open stream (not for uftrace); the reader closes fp. */
int trc_reader_open_file(FILE *fp, const char *name, const struct trc_read_opts *opts,
			 struct trc_reader **out, char *err, size_t errlen);
/* 1: *ev is the next event; 0: end of trace; <0: error (trc_reader_error). */
int trc_reader_next(struct trc_reader *r, struct trc_event *ev);
const char *trc_reader_error(const struct trc_reader *r);
enum trc_format trc_reader_format(const struct trc_reader *r);
void trc_reader_stats(const struct trc_reader *r, struct trc_read_stats *st);
void trc_reader_close(struct trc_reader *r);

int trc_format_parse(const char *name, enum trc_format *out);
const char *trc_format_name(enum trc_format f);
/* Guess a format from a file's first bytes (for dtr, its first chunk). */
enum trc_format trc_format_sniff(const char *buf, size_t len);

/* ------------------------------------------------------------------- sinks */

struct trc_sink;

struct trc_sink_ops {
	int (*event)(struct trc_sink *s, const struct trc_event *ev);
	int (*end)(struct trc_sink *s); /* input is over: flush */
	void (*free)(struct trc_sink *s);
};

/* Base of every sink; err holds the sentence behind a negative return. */
struct trc_sink {
	const struct trc_sink_ops *ops;
	char err[256];
};

int trc_sink_event(struct trc_sink *s, const struct trc_event *ev);
int trc_sink_end(struct trc_sink *s);
void trc_sink_free(struct trc_sink *s);
/* Read every event of r into s (not ending s). */
int trc_pump(struct trc_reader *r, struct trc_sink *s, char *err, size_t errlen);

/* Writers. They do not close out. */
struct trc_sink *trc_text_writer_new(FILE *out); /* doppel trace text (.dtt) */
/* Continue a text writer on another FILE (the same file, reopened). */
void trc_text_writer_set_file(struct trc_sink *s, FILE *out);

struct trc_view_opts {
	uint64_t t0;	  /* times are printed relative to this (0: the first event) */
	int show_tid;	  /* a thread column */
	size_t max_lines; /* 0: no limit */
};
struct trc_sink *trc_tree_writer_new(FILE *out, const struct trc_view_opts *o); /* call tree */
struct trc_sink *trc_report_writer_new(FILE *out, size_t max_functions); /* calls, total, self */
struct trc_sink *trc_chrome_writer_new(FILE *out); /* Chrome trace event JSON */

enum trc_lifeline { TRC_LIFE_THREAD = 0, TRC_LIFE_PROCESS, TRC_LIFE_PROGRAM };
struct trc_svg_opts {
	enum trc_lifeline lifeline;
	size_t max_rows; /* events drawn; the rest is counted in a note */
	int max_depth;	 /* deeper calls are not drawn (-1: all) */
	const char *title;
};
struct trc_sink *trc_svg_writer_new(FILE *out, const struct trc_svg_opts *o);

/* ------------------------------------------------------------------ stages */

/* Stages own their next sink: freeing a stage frees the chain after it. */

enum trc_sum_mode {
	TRC_SUM_SLIDING = 0, /* one streaming pass, repeats of up to window items */
	TRC_SUM_ITERATIVE,   /* each call's children refolded with windows 1..n/2 */
};
struct trc_summarise_opts {
	enum trc_sum_mode mode;
	unsigned window;   /* longest repeated pattern, in sibling items (default 16) */
	enum trc_key key;  /* what must be equal to fold (default TRC_KEY_NAME) */
	int keep_times;	   /* store every folded event's time: expansion is exact */
	size_t max_events; /* events held before the oldest are written out (256K) */
	int no_recursion;  /* do not fold recursion */
};
struct trc_summarise_stats {
	uint64_t events_in, events_out, blocks, recursions, spilled;
};
struct trc_sink *trc_summarise_new(const struct trc_summarise_opts *o, struct trc_sink *next);
void trc_summarise_stats(struct trc_sink *s, struct trc_summarise_stats *st);
/* Undo summarise: every block becomes its iterations again. Writing more
 * than max_events events in all is an error (default 2^36): nested blocks
 * of a hostile input could otherwise multiply without end. */
struct trc_sink *trc_expand_new(struct trc_sink *next);
struct trc_sink *trc_expand_new_limited(struct trc_sink *next, uint64_t max_events);

struct trc_coarsen_opts {
	int depth;		 /* keep events with depth < depth; -1: no cut */
	const char *const *hide; /* hide calls (and what they call) matching these */
	size_t nhide;
};
struct trc_sink *trc_coarsen_new(const struct trc_coarsen_opts *o, struct trc_sink *next);

/* ------------------------------------------------------------------- demux */

enum trc_demux_by {
	TRC_BY_THREAD = 0,
	TRC_BY_PROCESS,
	TRC_BY_CONNECTION, /* a socket's lifetime: the call that made it ... close */
	TRC_BY_REQUEST,	   /* accept/accept4 ... close of that socket, with the thread's
			      other events in between */
	TRC_BY_RULE,	   /* a thread's events from a begin pattern to an end pattern */
};

/* One output stream of demux. */
struct trc_stream_info {
	uint64_t id;	  /* 1, 2, ... in the order streams start */
	const char *kind; /* "thread", "request", ... */
	int32_t pid, tid, fd;
	uint64_t first_ts, last_ts, events;
	char attrs[384]; /* "pid=.. tid=.. fd=.. peer=.." as in the STREAM line */
};

/* Where demux sends streams; the CLI implements directory, stdout and list. */
struct trc_demux_target {
	/* a new stream: return an opaque handle, or NULL on error (errno set) */
	void *(*open)(struct trc_demux_target *t, const struct trc_stream_info *si);
	int (*event)(struct trc_demux_target *t, void *h, const struct trc_event *ev);
	int (*close)(struct trc_demux_target *t, void *h, const struct trc_stream_info *si);
};

struct trc_demux_opts {
	enum trc_demux_by by;
	const char *begin, *end; /* TRC_BY_RULE: glob patterns on event names */
	size_t max_streams;	 /* open at once (default 65536); more are dropped */
};
struct trc_demux_stats {
	uint64_t streams, events_routed, events_unrouted, streams_dropped, events_dropped;
};
struct trc_sink *trc_demux_new(const struct trc_demux_opts *o, struct trc_demux_target *t);
void trc_demux_stats(struct trc_sink *s, struct trc_demux_stats *st);
int trc_demux_parse_by(const char *text, enum trc_demux_by *out);

/* ----------------------------------------------------------------- compare */

enum trc_cmp {
	TRC_CMP_EXACT = 0, /* kind, name, arguments, return value, error */
	TRC_CMP_NAME,	   /* same function, arguments may differ (and are reported) */
	TRC_CMP_TIMING,	   /* same function, durations within the threshold */
};

struct trc_compare_opts {
	enum trc_cmp by;
	double threshold_rel;  /* TIMING: 0.5 = 50% slower or faster is a difference */
	uint64_t threshold_ns; /* TIMING: ... and at least this many ns apart */
	double max_diff;       /* verdict "similar" when differing events <= this share */
	size_t window;	       /* events looked ahead to resynchronise (default 4096) */
	unsigned context;      /* events shown before the first divergence (3) */
	unsigned max_hunks;    /* differences listed (10) */
	int json;
};

struct trc_compare_result {
	uint64_t events_a, events_b, matched, only_a, only_b, changed;
	int64_t first_a, first_b; /* event index of the first divergence, -1 if none */
	int similar;
};

int trc_compare_parse_by(const char *text, enum trc_cmp *out);
/* Compares two traces; the report (text or JSON) is appended to out. */
int trc_compare(struct trc_reader *a, struct trc_reader *b, const struct trc_compare_opts *o,
		struct trc_compare_result *res, char **out, size_t *outlen, char *err,
		size_t errlen);

/* ------------------------------------------------------------------- align */

struct trc_align_opts {
	const char *name_a, *name_b; /* program labels (default: file names) */
	int64_t offset_ns;	     /* added to b's times */
	int auto_offset;	     /* estimate the offset from matched messages */
	size_t max_pending;	     /* unmatched bytes ranges kept per connection side (4096) */
};
struct trc_align_result {
	uint64_t events_a, events_b, connections, messages, bytes, unmatched;
	int64_t offset_ns;
	uint64_t latency_min, latency_max, latency_sum;
};
/* Merges a and b into one timeline (events labelled with their program) with
 * TRC_MSG events where bytes sent on one side were received on the other. */
int trc_align(const char *path_a, const char *path_b, const struct trc_read_opts *ro,
	      const struct trc_align_opts *o, struct trc_sink *out, struct trc_align_result *res,
	      char *err, size_t errlen);

/* -------------------------------------------------------------------- rank */

struct trc_rank_run {
	const char *path;
	int failed;
};
struct trc_rank_opts {
	size_t top;	    /* rows listed (10) */
	int families;	    /* TRC_PRED_* bits to use (0: all) */
	int no_elimination; /* skip Liblit's iterative elimination */
	int all;	    /* list predicates whose Increase is not significant too */
	int json;
	const struct trc_read_opts *read;
};
#define TRC_PRED_CALLED 0x01 /* function or syscall reached */
#define TRC_PRED_EDGE 0x02   /* caller -> callee: which branch a function took */
#define TRC_PRED_RETURN 0x04 /* return value < 0, == 0, > 0 */
#define TRC_PRED_SYSERR 0x08 /* syscall failed (any, and with each errno) */

struct trc_rank_result {
	uint64_t runs, failed, predicates;
	char top[256]; /* the best predicate, "" if none */
	double top_importance;
};
int trc_rank_parse_families(const char *text, int *out);
/* Ranks predicates over labelled runs; report appended to *out. */
int trc_rank(const struct trc_rank_run *runs, size_t nruns, const struct trc_rank_opts *o,
	     struct trc_rank_result *res, char **out, size_t *outlen, char *err, size_t errlen);

#endif
