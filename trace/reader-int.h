/*
 * reader-int.h - private to trace/: the reader base, the buffered input
 * every reader consumes, and the per-format constructors.
 *
 * struct trace_input is a bounded read buffer over a FILE: text readers take
 * lines from it (a line longer than the buffer is cut and counted), binary
 * readers take bytes. The format is sniffed from its first fill, so standard
 * input can be read without seeking.
 */
#ifndef DOPPEL_TRACE_READER_INT_H
#define DOPPEL_TRACE_READER_INT_H

#include <stdint.h>
#include <stdio.h>

#include "trace/trace.h"

#define TRACE_INPUT_BUF (1u << 20) /* also the longest line kept whole */

struct trace_input {
	FILE *fp;
	char *buf;
	size_t pos, len; /* unread bytes are buf[pos..len) */
	int eof;
	int error;	    /* errno of a read error */
	uint64_t consumed;  /* bytes handed out */
	uint64_t cut_lines; /* lines longer than the buffer */
};

int trace_input_init(struct trace_input *in, FILE *fp);
void trace_input_free(struct trace_input *in); /* closes fp unless it is stdin */
/* Fill as much of the buffer as one read gives; 0 at EOF, <0 on error. */
int trace_input_fill(struct trace_input *in);
/* Next line without its '\n' (NUL-terminated in place); 1, 0 at EOF, <0. */
int trace_input_line(struct trace_input *in, char **line, size_t *len);
/* Exactly n bytes into dst: 1, 0 at a clean EOF, -EIO on a short tail. */
int trace_input_read(struct trace_input *in, void *dst, size_t n);
/* Skip n bytes: 1, 0 at EOF. */
int trace_input_skip(struct trace_input *in, uint64_t n);

struct trace_reader_ops {
	int (*next)(struct trace_reader *r, struct trace_event *ev);
	void (*close)(struct trace_reader *r);
};

struct trace_reader {
	const struct trace_reader_ops *ops;
	enum trace_format format;
	struct trace_read_stats st;
	const char *prog; /* interned label from the options, or NULL */
	char err[512];
};

/* Constructors: on success *out owns in (for text and dtr readers). */
int trace_strace_open(struct trace_input *in, const struct trace_read_opts *o,
		      struct trace_reader **out, char *err, size_t errlen);
int trace_babeltrace_open(struct trace_input *in, const struct trace_read_opts *o,
			  struct trace_reader **out, char *err, size_t errlen);
int trace_dtt_open(struct trace_input *in, const struct trace_read_opts *o,
		   struct trace_reader **out, char *err, size_t errlen);
int trace_dtr_open(struct trace_input *in, const char *path, const struct trace_read_opts *o,
		   struct trace_reader **out, char *err, size_t errlen);
int trace_uftrace_open(const char *dir, const struct trace_read_opts *o, struct trace_reader **out,
		       char *err, size_t errlen);

/* Parsing helpers shared by the strace and dtt readers. */

/* Parse "NAME(ARGS) = RET... <DUR>" (an strace call without pid and time)
 * into ev (name interned; args and retpath point into line, which is
 * modified; fdpath is copied to fdbuf). Returns 0, 1 when the call is
 * "<unfinished ...>", -EINVAL. */
int trace_parse_strace_call(char *line, struct trace_event *ev, char *fdbuf, size_t fdbuflen);
/* "1795458246.086785" (or "18:24:06.086785") to ns; returns end or NULL. */
const char *trace_parse_time(const char *s, uint64_t *ns);
/* Seconds "0.000016" (strace -T) to ns; returns end or NULL. */
const char *trace_parse_secs(const char *s, uint64_t *ns);

#endif
