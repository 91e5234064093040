/*
 * trace.h - reading traces and the Flowdar analyses (`doppel trace`).
 *
 * Everything here works on one event model (struct trace_event) that every
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

#define TRACE_NS 1000000000ULL

/* ------------------------------------------------------------------ events */

enum trace_kind {
	TRACE_ENTER = 1,   /* a function was entered */
	TRACE_EXIT,	   /* ... returned; dur is its duration when known (TRACE_F_DUR) */
	TRACE_SYSCALL,	   /* a complete system call (args, ret or errname, dur) */
	TRACE_NOTE,	   /* a signal, a process exit: extra holds the text */
	TRACE_LOST,	   /* the tracer lost count records here */
	TRACE_BLOCK_BEGIN, /* summarise: a folded block; its first iteration follows */
	TRACE_BLOCK_END,   /* ... end of the block's body */
	TRACE_HIDDEN,	   /* coarsen: count calls (of name, or "...") taking dur were hidden */
	TRACE_STREAM,	   /* demux: a new stream starts (name = kind, extra = its attributes) */
	TRACE_MSG,	   /* align: count bytes sent by peer_* at time min reached this thread */
	TRACE_KIND_MAX
};

/* What a folded block repeats: a loop keeps the depth; a recursion is folded
 * as a descent (one frame entered per iteration) and an ascent (one left). */
enum trace_block_kind {
	TRACE_BLOCK_LOOP = 0,
	TRACE_BLOCK_DESCEND,
	TRACE_BLOCK_ASCEND,
};

#define TRACE_F_RET 0x01	/* ret is valid */
#define TRACE_F_DUR 0x02	/* dur is valid */
#define TRACE_F_UNFINISHED 0x04 /* the syscall never returned in the trace */
#define TRACE_F_RETFD 0x08	/* ret is a new file descriptor; retpath says what it is */
#define TRACE_F_TIMES 0x10	/* BLOCK_END: extra holds every folded event's time */

/*
 * One event. Interned strings (name, prog, peer_prog, errname) live as long as
 * the process; the other strings belong to whoever produced the event and are
 * valid until its next event: a stage that keeps an event copies them.
 */
struct trace_event {
	uint64_t ts;	   /* ns: wall clock (strace, dtr), or the tracer's clock */
	uint64_t dur;	   /* ns (TRACE_F_DUR); BLOCK_BEGIN: the block's whole span */
	int64_t ret;	   /* TRACE_F_RET */
	uint64_t addr;	   /* code address (dtr, uftrace), 0 when unknown */
	uint64_t count;	   /* BLOCK_*: iterations; HIDDEN: calls; LOST: records; MSG: bytes */
	uint64_t min, max; /* BLOCK_BEGIN: shortest, longest iteration; MSG: min = send time */
	int32_t pid, tid;
	int32_t depth;		    /* call depth; ENTER and its EXIT have the same depth */
	int32_t fd;		    /* SYSCALL: first file descriptor argument, or -1 */
	int32_t peer_pid, peer_tid; /* MSG: the sender */
	uint16_t kind;		    /* enum trace_kind */
	uint16_t flags;		    /* TRACE_F_* */
	int16_t block;		    /* BLOCK_*: enum trace_block_kind */
	int16_t delta;		    /* BLOCK_*: depth change of one iteration */
	const char *name;	    /* function, syscall, block or stream kind; never NULL */
	const char *prog;	    /* program label, or NULL */
	const char *peer_prog;	    /* MSG: sender's program label */
	const char *errname;	    /* SYSCALL: "EAGAIN" when it failed, else NULL */
	const char *args;	    /* SYSCALL: argument text as strace prints it */
	const char *fdpath;	    /* SYSCALL: what fd is ("TCP:[a:1->b:2]", "/etc/passwd") */
	const char *retpath;	    /* SYSCALL with TRACE_F_RETFD: what the new fd is */
	const char *extra;	    /* NOTE text, STREAM attributes, BLOCK_END times */
};

void trace_event_init(struct trace_event *ev);
const char *trace_kind_name(int kind);
const char *trace_block_name(int block);

/* Interned strings: one copy per distinct string, for the whole process. The
 * table is bounded (64 MiB); past it, "?" is returned and counted. */
const char *trace_intern(const char *s, size_t len);
const char *trace_intern_str(const char *s);
uint64_t trace_intern_dropped(void);
void trace_intern_reset(void); /* frees every interned string (tests, fuzzers) */

/* What makes two events "the same" when folding or comparing. */
enum trace_key {
	TRACE_KEY_NAME = 0, /* kind and name */
	TRACE_KEY_ARGS,	    /* ... and arguments, return value and error */
};
uint64_t trace_event_key(const struct trace_event *ev, enum trace_key key);

/* Shell-style pattern (fnmatch) on a name. */
int trace_glob_match(const char *pattern, const char *name);

/* "1.234 ms" style; returns buf. */
char *trace_fmt_dur(uint64_t ns, char *buf, size_t len);

/* ----------------------------------------------------------------- readers */

enum trace_format {
	TRACE_FMT_AUTO = 0,
	TRACE_FMT_DTR,	      /* libdoppeltrace chunks */
	TRACE_FMT_STRACE,     /* strace -f -ttt -T -yy text */
	TRACE_FMT_UFTRACE,    /* an uftrace.data directory */
	TRACE_FMT_BABELTRACE, /* babeltrace2 text of LTTng kernel syscall events */
	TRACE_FMT_DTT,	      /* doppel trace text */
};

struct trace_read_opts {
	enum trace_format format; /* TRACE_FMT_AUTO: detect */
	const char *binary;	  /* dtr: symbolise the main program with this ELF file */
	const char *prog;	  /* label every event with this program name */
	unsigned reorder_chunks;  /* dtr: chunks held to merge threads in time order
				     (default 256; 1 = file order) */
};

struct trace_read_stats {
	uint64_t events;     /* events returned */
	uint64_t bytes;	     /* input bytes consumed */
	uint64_t lost;	     /* records the tracer says it lost */
	uint64_t skipped;    /* lines or chunks that could not be parsed */
	uint64_t late;	     /* events returned out of time order (merge window too small) */
	uint64_t unresolved; /* addresses without a symbol */
};

struct trace_reader;

/* path "-" reads standard input (any text format, or dtr). */
int trace_reader_open(const char *path, const struct trace_read_opts *opts,
		      struct trace_reader **out, char *err, size_t errlen);
/* The same, from an open stream (not for uftrace); the reader closes fp. */
int trace_reader_open_file(FILE *fp, const char *name, const struct trace_read_opts *opts,
			   struct trace_reader **out, char *err, size_t errlen);
/* 1: *ev is the next event; 0: end of trace; <0: error (trace_reader_error). */
int trace_reader_next(struct trace_reader *r, struct trace_event *ev);
const char *trace_reader_error(const struct trace_reader *r);
enum trace_format trace_reader_format(const struct trace_reader *r);
void trace_reader_stats(const struct trace_reader *r, struct trace_read_stats *st);
void trace_reader_close(struct trace_reader *r);

int trace_format_parse(const char *name, enum trace_format *out);
const char *trace_format_name(enum trace_format f);
/* Guess a format from a file's first bytes (for dtr, its first chunk). */
enum trace_format trace_format_sniff(const char *buf, size_t len);

/* ------------------------------------------------------------------- sinks */

struct trace_sink;

struct trace_sink_ops {
	int (*event)(struct trace_sink *s, const struct trace_event *ev);
	int (*end)(struct trace_sink *s); /* input is over: flush */
	void (*free)(struct trace_sink *s);
};

/* Base of every sink; err holds the sentence behind a negative return. */
struct trace_sink {
	const struct trace_sink_ops *ops;
	char err[256];
};

int trace_sink_event(struct trace_sink *s, const struct trace_event *ev);
int trace_sink_end(struct trace_sink *s);
void trace_sink_free(struct trace_sink *s);
/* Read every event of r into s (not ending s). */
int trace_pump(struct trace_reader *r, struct trace_sink *s, char *err, size_t errlen);

/* Writers. They do not close out. */
struct trace_sink *trace_text_writer_new(FILE *out); /* doppel trace text (.dtt) */
/* Continue a text writer on another FILE (the same file, reopened). */
void trace_text_writer_set_file(struct trace_sink *s, FILE *out);

struct trace_view_opts {
	uint64_t t0;	  /* times are printed relative to this (0: the first event) */
	int show_tid;	  /* a thread column */
	size_t max_lines; /* 0: no limit */
};
struct trace_sink *trace_tree_writer_new(FILE *out,
					 const struct trace_view_opts *o); /* call tree */
struct trace_sink *trace_report_writer_new(FILE *out,
					   size_t max_functions); /* calls, total, self */
struct trace_sink *trace_chrome_writer_new(FILE *out);		  /* Chrome trace event JSON */

enum trace_lifeline { TRACE_LIFE_THREAD = 0, TRACE_LIFE_PROCESS, TRACE_LIFE_PROGRAM };
struct trace_svg_opts {
	enum trace_lifeline lifeline;
	size_t max_rows; /* events drawn; the rest is counted in a note */
	int max_depth;	 /* deeper calls are not drawn (-1: all) */
	const char *title;
};
struct trace_sink *trace_svg_writer_new(FILE *out, const struct trace_svg_opts *o);
/* "thread", "process" or "program"; -EINVAL for anything else. */
int trace_lifeline_parse(const char *text, enum trace_lifeline *out);

/* ------------------------------------------------------------------ stages */

/* Stages own their next sink: freeing a stage frees the chain after it. */

enum trace_sum_mode {
	TRACE_SUM_SLIDING = 0, /* one streaming pass, repeats of up to window items */
	TRACE_SUM_ITERATIVE,   /* each call's children refolded with windows 1..n/2 */
};
struct trace_summarise_opts {
	enum trace_sum_mode mode;
	unsigned window;    /* longest repeated pattern, in sibling items (default 16) */
	enum trace_key key; /* what must be equal to fold (default TRACE_KEY_NAME) */
	int keep_times;	    /* store every folded event's time: expansion is exact */
	size_t max_events;  /* events held before the oldest are written out (256K) */
	int no_recursion;   /* do not fold recursion */
};
struct trace_summarise_stats {
	uint64_t events_in, events_out, blocks, recursions, spilled;
};
struct trace_sink *trace_summarise_new(const struct trace_summarise_opts *o,
				       struct trace_sink *next);
void trace_summarise_stats(struct trace_sink *s, struct trace_summarise_stats *st);
/* Undo summarise: every block becomes its iterations again. Writing more
 * than max_events events in all is an error (default 2^36): nested blocks
 * of a hostile input could otherwise multiply without end. */
struct trace_sink *trace_expand_new(struct trace_sink *next);
struct trace_sink *trace_expand_new_limited(struct trace_sink *next, uint64_t max_events);

struct trace_coarsen_opts {
	int depth;		 /* keep events with depth < depth; -1: no cut */
	const char *const *hide; /* hide calls (and what they call) matching these */
	size_t nhide;
};
struct trace_sink *trace_coarsen_new(const struct trace_coarsen_opts *o, struct trace_sink *next);

/* ------------------------------------------------------------------- demux */

enum trace_demux_by {
	TRACE_BY_THREAD = 0,
	TRACE_BY_PROCESS,
	TRACE_BY_CONNECTION, /* a socket's lifetime: the call that made it ... close */
	TRACE_BY_REQUEST,    /* accept/accept4 ... close of that socket, with the thread's
			other events in between */
	TRACE_BY_RULE,	     /* a thread's events from a begin pattern to an end pattern */
};

/* One output stream of demux. */
struct trace_stream_info {
	uint64_t id;	  /* 1, 2, ... in the order streams start */
	const char *kind; /* "thread", "request", ... */
	int32_t pid, tid, fd;
	uint64_t first_ts, last_ts, events;
	char attrs[384]; /* "pid=.. tid=.. fd=.. peer=.." as in the STREAM line */
};

/* Where demux sends streams (trace_demux_out below is the usual one). */
struct trace_demux_target {
	/* a new stream: return an opaque handle, or NULL on error (errno set) */
	void *(*open)(struct trace_demux_target *t, const struct trace_stream_info *si);
	int (*event)(struct trace_demux_target *t, void *h, const struct trace_event *ev);
	int (*close)(struct trace_demux_target *t, void *h, const struct trace_stream_info *si);
};

struct trace_demux_opts {
	enum trace_demux_by by;
	const char *begin, *end; /* TRACE_BY_RULE: glob patterns on event names */
	size_t max_streams;	 /* open at once (default 65536); more are dropped */
};
struct trace_demux_stats {
	uint64_t streams, events_routed, events_unrouted, streams_dropped, events_dropped;
};
struct trace_sink *trace_demux_new(const struct trace_demux_opts *o, struct trace_demux_target *t);
void trace_demux_stats(struct trace_sink *s, struct trace_demux_stats *st);
int trace_demux_parse_by(const char *text, enum trace_demux_by *out);
/* "thread", "process", ...: the kind of the streams demux makes. */
const char *trace_demux_by_name(enum trace_demux_by by);

/* The demux writer: a target that writes every stream as doppel trace text. */
enum trace_demux_out_mode {
	TRACE_DEMUX_OUT_SECTIONS = 0, /* sections of one output, in the order streams end
					 (each held in memory until then) */
	TRACE_DEMUX_OUT_DIR,	      /* one file per stream, DIR/KIND-ID.dtt */
	TRACE_DEMUX_OUT_LIST,	      /* no events: a table of the streams only */
};
struct trace_demux_out_opts {
	enum trace_demux_out_mode mode;
	FILE *out;	   /* SECTIONS and LIST write here (not closed) */
	const char *dir;   /* DIR: created when missing */
	size_t max_open;   /* DIR: files open at once (default 256): past it the least
			      recently written is closed, and reopened to append */
	size_t max_memory; /* SECTIONS: bytes held for open streams (no default: the
			      CLI's is 256 MiB); an event past it fails with -EFBIG */
};
struct trace_demux_out;
/* DIR also raises the soft limit on open files to max_open + 64 when lower. */
int trace_demux_out_new(const struct trace_demux_out_opts *o, struct trace_demux_out **out,
			char *err, size_t errlen);
/* The target to give trace_demux_new; it belongs to d. */
struct trace_demux_target *trace_demux_out_target(struct trace_demux_out *d);
/* 1 when the sections held more than max_memory. */
int trace_demux_out_over_memory(const struct trace_demux_out *d);
/* After the demux sink is freed: LIST writes the table of every stream (by
 * id) to out, DIR writes it to DIR/streams.txt when it can. */
void trace_demux_out_finish(struct trace_demux_out *d);
/* Frees d; the demux sink using it must be freed first. */
void trace_demux_out_free(struct trace_demux_out *d);

/* ----------------------------------------------------------------- compare */

enum trace_cmp {
	TRACE_CMP_EXACT = 0, /* kind, name, arguments, return value, error */
	TRACE_CMP_NAME,	     /* same function, arguments may differ (and are reported) */
	TRACE_CMP_TIMING,    /* same function, durations within the threshold */
};

struct trace_compare_opts {
	enum trace_cmp by;
	double threshold_rel;  /* TIMING: 0.5 = 50% slower or faster is a difference */
	uint64_t threshold_ns; /* TIMING: ... and at least this many ns apart */
	double max_diff;       /* verdict "similar" when differing events <= this share */
	size_t window;	       /* events looked ahead to resynchronise (default 4096) */
	unsigned context;      /* events shown before the first divergence (3) */
	unsigned max_hunks;    /* differences listed (10) */
	int json;
};

struct trace_compare_result {
	uint64_t events_a, events_b, matched, only_a, only_b, changed;
	int64_t first_a, first_b; /* event index of the first divergence, -1 if none */
	int similar;
};

int trace_compare_parse_by(const char *text, enum trace_cmp *out);
/* Compares two traces; the report (text or JSON) is appended to out. */
int trace_compare(struct trace_reader *a, struct trace_reader *b,
		  const struct trace_compare_opts *o, struct trace_compare_result *res, char **out,
		  size_t *outlen, char *err, size_t errlen);

/* ------------------------------------------------------------------- align */

struct trace_align_opts {
	const char *name_a, *name_b; /* program labels (default: file names) */
	int64_t offset_ns;	     /* added to b's times */
	int auto_offset;	     /* estimate the offset from matched messages */
	size_t max_pending;	     /* unmatched bytes ranges kept per connection side (4096) */
};
struct trace_align_result {
	uint64_t events_a, events_b, connections, messages, bytes, unmatched;
	int64_t offset_ns;
	uint64_t latency_min, latency_max, latency_sum;
};
/* Merges a and b into one timeline (events labelled with their program) with
 * TRACE_MSG events where bytes sent on one side were received on the other. */
int trace_align(const char *path_a, const char *path_b, const struct trace_read_opts *ro,
		const struct trace_align_opts *o, struct trace_sink *out,
		struct trace_align_result *res, char *err, size_t errlen);

/* -------------------------------------------------------------------- rank */

struct trace_rank_run {
	const char *path;
	int failed;
};
struct trace_rank_opts {
	size_t top;	    /* rows listed (10) */
	int families;	    /* TRACE_PRED_* bits to use (0: all) */
	int no_elimination; /* skip Liblit's iterative elimination */
	int all;	    /* list predicates whose Increase is not significant too */
	int json;
	const struct trace_read_opts *read;
};
#define TRACE_PRED_CALLED 0x01 /* function or syscall reached */
#define TRACE_PRED_EDGE 0x02   /* caller -> callee: which branch a function took */
#define TRACE_PRED_RETURN 0x04 /* return value < 0, == 0, > 0 */
#define TRACE_PRED_SYSERR 0x08 /* syscall failed (any, and with each errno) */

struct trace_rank_result {
	uint64_t runs, failed, predicates;
	char top[256]; /* the best predicate, "" if none */
	double top_importance;
};
int trace_rank_parse_families(const char *text, int *out);
/* Ranks predicates over labelled runs; report appended to *out. */
int trace_rank(const struct trace_rank_run *runs, size_t nruns, const struct trace_rank_opts *o,
	       struct trace_rank_result *res, char **out, size_t *outlen, char *err, size_t errlen);

#endif
