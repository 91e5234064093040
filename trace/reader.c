/*
 * reader.c - opening a trace in any supported format (sniffed from its first
 * bytes, or a directory for uftrace), the bounded input buffer the readers
 * share, and pumping a reader into a chain of sinks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tracer-glue/runtime/dtr-format.h"
#include "trace/reader-int.h"

int trace_input_init(struct trace_input *in, FILE *fp)
{
	memset(in, 0, sizeof(*in));
	in->buf = malloc(TRACE_INPUT_BUF + 1);
	if (!in->buf)
		return -ENOMEM;
	in->fp = fp;
	return 0;
}

void trace_input_free(struct trace_input *in)
{
	if (in->fp && in->fp != stdin)
		fclose(in->fp);
	free(in->buf);
	memset(in, 0, sizeof(*in));
}

int trace_input_fill(struct trace_input *in)
{
	size_t n;

	if (in->pos > 0) {
		memmove(in->buf, in->buf + in->pos, in->len - in->pos);
		in->len -= in->pos;
		in->pos = 0;
	}
	if (in->eof || in->len == TRACE_INPUT_BUF)
		return in->len > 0 ? 1 : 0;
	n = fread(in->buf + in->len, 1, TRACE_INPUT_BUF - in->len, in->fp);
	in->len += n;
	if (n == 0) {
		if (ferror(in->fp)) {
			in->error = errno ? errno : EIO;
			return -in->error;
		}
		in->eof = 1;
	}
	return in->len > 0 ? 1 : 0;
}

int trace_input_line(struct trace_input *in, char **line, size_t *len)
{
	for (;;) {
		char *start = in->buf + in->pos;
		char *nl = memchr(start, '\n', in->len - in->pos);

		if (nl) {
			*nl = '\0';
			*line = start;
			*len = (size_t)(nl - start);
			in->consumed += *len + 1;
			in->pos += *len + 1;
			return 1;
		}
		if (in->eof) {
			if (in->pos == in->len)
				return 0;
			/* last line without a newline */
			in->buf[in->len] = '\0';
			*line = start;
			*len = in->len - in->pos;
			in->consumed += *len;
			in->pos = in->len;
			return 1;
		}
		if (in->pos == 0 && in->len == TRACE_INPUT_BUF) {
			/* longer than the buffer: keep its head, skip the rest */
			int c;

			in->buf[in->len] = '\0';
			*line = in->buf;
			*len = in->len;
			in->consumed += in->len;
			in->pos = in->len;
			in->cut_lines++;
			while ((c = getc(in->fp)) != EOF && c != '\n')
				in->consumed++;
			if (c == EOF)
				in->eof = 1;
			else
				in->consumed++;
			return 1;
		}
		if (trace_input_fill(in) < 0)
			return -in->error;
	}
}

int trace_input_read(struct trace_input *in, void *dst, size_t n)
{
	char *d = dst;
	size_t got = 0;

	while (got < n) {
		size_t avail = in->len - in->pos;

		if (avail == 0) {
			int rc = trace_input_fill(in);

			if (rc < 0)
				return rc;
			if (rc == 0)
				return got == 0 ? 0 : -EIO;
			continue;
		}
		if (avail > n - got)
			avail = n - got;
		memcpy(d + got, in->buf + in->pos, avail);
		in->pos += avail;
		got += avail;
	}
	in->consumed += n;
	return 1;
}

int trace_input_skip(struct trace_input *in, uint64_t n)
{
	while (n > 0) {
		size_t avail = in->len - in->pos;

		if (avail == 0) {
			int rc = trace_input_fill(in);

			if (rc <= 0)
				return rc;
			continue;
		}
		if (avail > n)
			avail = (size_t)n;
		in->pos += avail;
		in->consumed += avail;
		n -= avail;
	}
	return 1;
}

static const char *const format_names[] = {
	[TRACE_FMT_AUTO] = "auto",
	[TRACE_FMT_DTR] = "dtr",
	[TRACE_FMT_STRACE] = "strace",
	[TRACE_FMT_UFTRACE] = "uftrace",
	[TRACE_FMT_BABELTRACE] = "babeltrace",
	[TRACE_FMT_DTT] = "dtt",
};

int trace_format_parse(const char *name, enum trace_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcmp(name, format_names[i]) == 0) {
			*out = (enum trace_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *trace_format_name(enum trace_format f)
{
	if ((unsigned)f >= sizeof(format_names) / sizeof(format_names[0]))
		return "?";
	return format_names[f];
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Does this text line look like an strace line? [pid N] / N TS / TS name( */
static int strace_like(const char *s, const char *end)
{
	const char *p = s;

	if (end - p > 6 && strncmp(p, "[pid ", 5) == 0)
		return 1;
	if (p < end && is_digit(*p)) {
		const char *q = p;

		while (q < end && is_digit(*q))
			q++;
		if (q < end && *q == ' ') {
			/* "PID TS" or "PID name(" (strace pads short pids) */
			while (q < end && *q == ' ')
				q++;
			if (q < end && (is_digit(*q) || (*q >= 'a' && *q <= 'z')))
				return 1;
		} else if (q < end && (*q == '.' || *q == ':')) {
			return 1; /* a timestamp first: strace without -f */
		}
	}
	return 0;
}

enum trace_format trace_format_sniff(const char *buf, size_t len)
{
	const char *end = buf + len, *line = buf;

	if (len >= 4) {
		uint32_t magic;

		memcpy(&magic, buf, 4);
		if (magic == DTR_MAGIC)
			return TRACE_FMT_DTR;
	}
	if (len >= 14 && strncmp(buf, "# doppel-trace", 14) == 0)
		return TRACE_FMT_DTT;
	/* look at the first few non-empty lines */
	for (int n = 0; line < end && n < 8; n++) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end;

		if (le > line) {
			if (*line == '[') {
				const char *close = memchr(line, ']', (size_t)(le - line));

				if (close && close + 3 < le && close[1] == ' ' && close[2] == '(')
					return TRACE_FMT_BABELTRACE;
				if (close && close + 1 < le && close[1] == ' ' &&
				    memchr(line, ':', (size_t)(le - line)) &&
				    !strace_like(line, le))
					return TRACE_FMT_BABELTRACE;
			}
			if (strace_like(line, le))
				return TRACE_FMT_STRACE;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return TRACE_FMT_AUTO;
}

static int open_input(FILE *fp, const char *name, const struct trace_read_opts *o,
		      struct trace_reader **out, char *err, size_t errlen)
{
	struct trace_input in;
	enum trace_format f = o ? o->format : TRACE_FMT_AUTO;
	int rc;

	rc = trace_input_init(&in, fp);
	if (rc < 0) {
		if (fp != stdin)
			fclose(fp);
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	rc = trace_input_fill(&in);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", name, strerror(-rc));
		trace_input_free(&in);
		return rc;
	}
	if (f == TRACE_FMT_AUTO)
		f = trace_format_sniff(in.buf, in.len);
	switch (f) {
	case TRACE_FMT_DTR:
		rc = trace_dtr_open(&in, fp == stdin ? NULL : name, o, out, err, errlen);
		break;
	case TRACE_FMT_STRACE:
		rc = trace_strace_open(&in, o, out, err, errlen);
		break;
	case TRACE_FMT_BABELTRACE:
		rc = trace_babeltrace_open(&in, o, out, err, errlen);
		break;
	case TRACE_FMT_DTT:
		rc = trace_dtt_open(&in, o, out, err, errlen);
		break;
	case TRACE_FMT_UFTRACE:
		snprintf(err, errlen, "%s: uftrace data is a directory, not a stream", name);
		rc = -EINVAL;
		break;
	default:
		snprintf(err, errlen,
			 "%s: unknown trace format (%s); expected libdoppeltrace (.dtr), "
			 "strace -f -ttt -T -yy text, babeltrace2 text, doppel trace text, or an "
			 "uftrace.data directory; --format names one",
			 name, in.len ? "not recognised" : "empty");
		rc = -EINVAL;
	}
	if (rc < 0)
		trace_input_free(&in);
	return rc;
}

int trace_reader_open_file(FILE *fp, const char *name, const struct trace_read_opts *o,
			   struct trace_reader **out, char *err, size_t errlen)
{
	int rc = open_input(fp, name, o, out, err, errlen);

	if (rc == 0 && o && o->prog)
		(*out)->prog = trace_intern_str(o->prog);
	return rc;
}

int trace_reader_open(const char *path, const struct trace_read_opts *o, struct trace_reader **out,
		      char *err, size_t errlen)
{
	struct stat st;
	FILE *fp;
	int rc;

	*out = NULL;
	if (strcmp(path, "-") == 0)
		return trace_reader_open_file(stdin, "standard input", o, out, err, errlen);
	if (stat(path, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (S_ISDIR(st.st_mode) || (o && o->format == TRACE_FMT_UFTRACE)) {
		rc = trace_uftrace_open(path, o, out, err, errlen);
		if (rc == 0 && o && o->prog)
			(*out)->prog = trace_intern_str(o->prog);
		return rc;
	}
	fp = fopen(path, "re");
	if (!fp) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	return trace_reader_open_file(fp, path, o, out, err, errlen);
}

int trace_reader_next(struct trace_reader *r, struct trace_event *ev)
{
	int rc = r->ops->next(r, ev);

	if (rc > 0) {
		r->st.events++;
		if (r->prog && !ev->prog)
			ev->prog = r->prog;
	}
	return rc;
}

const char *trace_reader_error(const struct trace_reader *r)
{
	return r->err;
}

enum trace_format trace_reader_format(const struct trace_reader *r)
{
	return r->format;
}

void trace_reader_stats(const struct trace_reader *r, struct trace_read_stats *st)
{
	*st = r->st;
}

void trace_reader_close(struct trace_reader *r)
{
	if (r)
		r->ops->close(r);
}

int trace_sink_event(struct trace_sink *s, const struct trace_event *ev)
{
	return s->ops->event(s, ev);
}

int trace_sink_end(struct trace_sink *s)
{
	return s->ops->end ? s->ops->end(s) : 0;
}

void trace_sink_free(struct trace_sink *s)
{
	if (s)
		s->ops->free(s);
}

int trace_pump(struct trace_reader *r, struct trace_sink *s, char *err, size_t errlen)
{
	struct trace_event ev;
	int rc;

	while ((rc = trace_reader_next(r, &ev)) > 0) {
		rc = trace_sink_event(s, &ev);
		if (rc < 0) {
			snprintf(err, errlen, "%s", s->err[0] ? s->err : strerror(-rc));
			return rc;
		}
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", r->err[0] ? r->err : strerror(-rc));
		return rc;
	}
	return 0;
}
