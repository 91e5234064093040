/*
 * read-strace.c - reads `strace -f -ttt -T -yy` output (and -tt, without -f,
 * with "[pid N]" prefixes) into TRACE_SYSCALL and TRACE_NOTE events.
 *
 * A call split by another thread ("<unfinished ...>" then "<... resumed>")
 * is joined and returned when it resumes, with its start time: events come
 * out in completion order, which keeps the reader streaming. Threads are told
 * from processes by the clone flags of the call that made them (CLONE_THREAD):
 * a tid's pid is its creator's pid for a thread, itself for a process.
 *
 * The first argument of a call is taken as its fd only when strace decorated
 * it (-y, -yy): "6<TCP:[127.0.0.1:80->127.0.0.1:5000]>", so that a number that
 * is not a descriptor is never mistaken for one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/imap.h"
#include "trace/reader-int.h"

#define MAX_TIDS 65536
#define MAX_PENDING_ARGS 4096

struct pending {
	uint64_t ts;
	const char *name;
	char *args;	  /* raw text after "NAME(" */
	int thread_clone; /* a clone with CLONE_THREAD is in flight */
};

struct strace_reader {
	struct trace_reader base;
	struct trace_input in;
	struct imap pid_of;  /* tid -> pid */
	struct imap pending; /* tid -> struct pending * */
	char *joined;	     /* a resumed call put back together */
	size_t joined_cap;
	char fdpath[4096];
	char note[1024];
	/* draining unfinished calls at the end */
	int draining;
	size_t drain_it;
};

const char *trace_parse_secs(const char *s, uint64_t *ns)
{
	uint64_t sec = 0, frac = 0, scale = TRACE_NS;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9') {
		if (sec > 100000000000ULL)
			return NULL;
		sec = sec * 10 + (uint64_t)(*p++ - '0');
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
			p++;
		}
	}
	*ns = sec * TRACE_NS + frac;
	return p;
}

const char *trace_parse_time(const char *s, uint64_t *ns)
{
	const char *p = s;
	uint64_t h = 0, m = 0, rest;

	/* -tt: HH:MM:SS.micro */
	if (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] == ':') {
		h = (uint64_t)(p[0] - '0') * 10 + (uint64_t)(p[1] - '0');
		p += 3;
		if (!(p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] == ':'))
			return NULL;
		m = (uint64_t)(p[0] - '0') * 10 + (uint64_t)(p[1] - '0');
		p += 3;
		p = trace_parse_secs(p, &rest);
		if (!p)
			return NULL;
		*ns = (h * 3600 + m * 60) * TRACE_NS + rest;
		return p;
	}
	return trace_parse_secs(p, ns);
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* Copy the text between '<' at p and its closing '>' (one followed by end,
 * ',', ')' or ' ', so that "->" inside a socket name does not end it). */
static const char *angle_text(const char *p, char *out, size_t outlen)
{
	const char *q = p + 1;
	size_t n;

	while (*q) {
		if (*q == '>' && (q[1] == '\0' || q[1] == ',' || q[1] == ')' || q[1] == ' '))
			break;
		q++;
	}
	if (*q != '>')
		return NULL;
	n = (size_t)(q - p - 1);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p + 1, n);
	out[n] = '\0';
	return q + 1;
}

/* The first argument as a decorated fd, e.g. "6<TCP:[...]>" or "AT_FDCWD</x>". */
static void first_fd(const char *args, struct trace_event *ev, char *buf, size_t buflen)
{
	const char *p = args;
	long fd = 0;

	if (strncmp(p, "AT_FDCWD<", 9) == 0) {
		if (angle_text(p + 8, buf, buflen)) {
			ev->fd = -100;
			ev->fdpath = buf;
		}
		return;
	}
	if (*p < '0' || *p > '9')
		return;
	while (*p >= '0' && *p <= '9' && fd < 1000000000)
		fd = fd * 10 + (*p++ - '0');
	if (*p != '<' || !angle_text(p, buf, buflen))
		return;
	ev->fd = (int32_t)fd;
	ev->fdpath = buf;
}

/* The " = RET[<path>] [ERR (desc)] [(desc)]" part, p just after "= ". */
static void parse_return(char *p, struct trace_event *ev)
{
	char *end;

	if (*p == '?') {
		p++;
	} else {
		long long v;

		errno = 0;
		if (p[0] == '0' && p[1] == 'x')
			v = (long long)strtoull(p, &end, 16);
		else
			v = strtoll(p, &end, 10);
		if (end == p)
			return;
		ev->ret = v;
		ev->flags |= TRACE_F_RET;
		p = end;
		if (*p == '<') {
			char *q = p + 1;

			while (*q && !(*q == '>' && (q[1] == '\0' || q[1] == ' ')))
				q++;
			if (*q == '>') {
				*q = '\0';
				ev->retpath = p + 1;
				ev->flags |= TRACE_F_RETFD;
				p = q + 1;
			}
		}
	}
	while (*p == ' ')
		p++;
	if (*p >= 'A' && *p <= 'Z') {
		char *q = p;

		while (*q && ((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_'))
			q++;
		if (q > p + 1 && (*q == ' ' || *q == '\0'))
			ev->errname = trace_intern(p, (size_t)(q - p));
	}
}

int trace_parse_strace_call(char *line, struct trace_event *ev, char *fdbuf, size_t fdbuflen)
{
	char *p = line, *open, *close = NULL, *q;
	size_t len;

	while (is_name_char(*p))
		p++;
	if (p == line || *p != '(')
		return -EINVAL;
	ev->kind = TRACE_SYSCALL;
	ev->name = trace_intern(line, (size_t)(p - line));
	open = p + 1;
	len = strlen(open);
	/* unfinished: "NAME(args <unfinished ...>" */
	if (len >= 16 && strcmp(open + len - 16, "<unfinished ...>") == 0) {
		char *e = open + len - 16;

		while (e > open && e[-1] == ' ')
			e--;
		*e = '\0';
		ev->args = open;
		ev->flags |= TRACE_F_UNFINISHED;
		first_fd(open, ev, fdbuf, fdbuflen);
		return 1;
	}
	/* duration "<0.000016>" at the end */
	if (len > 2 && open[len - 1] == '>') {
		q = strrchr(open, '<');
		if (q && q[1] >= '0' && q[1] <= '9') {
			uint64_t d;
			const char *e = trace_parse_secs(q + 1, &d);

			if (e && *e == '>') {
				ev->dur = d;
				ev->flags |= TRACE_F_DUR;
				while (q > open && q[-1] == ' ')
					q--;
				*q = '\0';
			}
		}
	}
	/* the return: the last " = " that follows a ')' (strace pads with spaces) */
	for (q = open + strlen(open); q >= open + 3; q--) {
		if (q[-3] == ' ' && q[-2] == '=' && q[-1] == ' ') {
			char *r = q - 3;

			while (r > open && r[-1] == ' ')
				r--;
			if (r > open && r[-1] == ')') {
				close = r - 1;
				break;
			}
		}
	}
	if (!close) {
		/* "NAME(args)" with no return (a process died in it) */
		q = open + strlen(open);
		if (q > open && q[-1] == ')') {
			q[-1] = '\0';
			ev->args = open;
			ev->flags |= TRACE_F_UNFINISHED;
			first_fd(open, ev, fdbuf, fdbuflen);
			return 0;
		}
		return -EINVAL;
	}
	*close = '\0';
	ev->args = open;
	first_fd(open, ev, fdbuf, fdbuflen);
	p = close + 1;
	while (*p == ' ')
		p++;
	if (*p == '=')
		p++;
	while (*p == ' ')
		p++;
	parse_return(p, ev);
	return 0;
}

static int32_t pid_for(struct strace_reader *sr, int32_t tid)
{
	uint64_t *v = imap_get(&sr->pid_of, (uint64_t)(uint32_t)tid);

	if (v)
		return (int32_t)*v;
	/* a new task: a thread of whoever has a CLONE_THREAD clone in flight */
	for (size_t it = 0;;) {
		uint64_t k, pv;

		if (!imap_next(&sr->pending, &it, &k, &pv))
			break;
		struct pending *pd = (struct pending *)(uintptr_t)pv;

		if (pd->thread_clone) {
			uint64_t *ppid = imap_get(&sr->pid_of, k);
			int32_t pid = ppid ? (int32_t)*ppid : (int32_t)k;

			imap_put(&sr->pid_of, (uint64_t)(uint32_t)tid, (uint64_t)(uint32_t)pid);
			return pid;
		}
	}
	/* a process we did not see being made (the first one, or attached) */
	imap_put(&sr->pid_of, (uint64_t)(uint32_t)tid, (uint64_t)(uint32_t)tid);
	return tid;
}

static void note_clone(struct strace_reader *sr, const struct trace_event *ev)
{
	int thread;

	if (!(ev->flags & TRACE_F_RET) || ev->ret <= 0)
		return;
	if (strcmp(ev->name, "clone") != 0 && strcmp(ev->name, "clone3") != 0 &&
	    strcmp(ev->name, "fork") != 0 && strcmp(ev->name, "vfork") != 0)
		return;
	thread = ev->args && strstr(ev->args, "CLONE_THREAD") != NULL;
	imap_put(&sr->pid_of, (uint64_t)ev->ret, (uint64_t)(uint32_t)(thread ? ev->pid : ev->ret));
}

static void pending_free(struct pending *pd)
{
	free(pd->args);
	free(pd);
}

static int ensure_joined(struct strace_reader *sr, size_t need)
{
	if (need <= sr->joined_cap)
		return 0;
	char *nb = realloc(sr->joined, need);

	if (!nb)
		return -ENOMEM;
	sr->joined = nb;
	sr->joined_cap = need;
	return 0;
}

/* Returns 1 with an event, 2 for a call held until it resumes, 0 for a line
 * that is not an event, <0 on error. */
static int parse_line(struct strace_reader *sr, char *line, struct trace_event *ev)
{
	char *p = line;
	int32_t tid = 0;
	uint64_t ts = 0;
	int rc;

	if (strncmp(p, "[pid ", 5) == 0) {
		tid = (int32_t)strtol(p + 5, &p, 10);
		if (*p != ']')
			return 0;
		p++;
		while (*p == ' ')
			p++;
	} else if (*p >= '0' && *p <= '9') {
		char *q = p;

		while (*q >= '0' && *q <= '9')
			q++;
		if (*q == ' ') {
			tid = (int32_t)strtol(p, NULL, 10);
			p = q;
			while (*p == ' ')
				p++;
		}
	}
	if (*p >= '0' && *p <= '9') {
		const char *e = trace_parse_time(p, &ts);

		if (!e)
			return 0;
		p = (char *)e;
		while (*p == ' ')
			p++;
	}
	trace_event_init(ev);
	ev->tid = tid;
	ev->ts = ts;
	ev->pid = pid_for(sr, tid);
	if (strncmp(p, "---", 3) == 0 || strncmp(p, "+++", 3) == 0) {
		size_t n = strlen(p);

		ev->kind = TRACE_NOTE;
		if (strncmp(p, "--- SIG", 7) == 0) {
			char *e = p + 4;

			while (*e >= 'A' && *e <= 'Z')
				e++;
			ev->name = trace_intern(p + 4, (size_t)(e - p - 4));
		} else if (strstr(p, "exited with") || strstr(p, "killed by")) {
			ev->name = trace_intern_str("exit");
		} else {
			ev->name = trace_intern_str("note");
		}
		if (n >= sizeof(sr->note))
			n = sizeof(sr->note) - 1;
		memcpy(sr->note, p, n);
		sr->note[n] = '\0';
		ev->extra = sr->note;
		return 1;
	}
	if (strncmp(p, "<... ", 5) == 0) {
		char *name = p + 5, *e = name, *rest;
		uint64_t *pv;
		struct pending *pd;
		size_t nlen, alen, rlen;

		while (is_name_char(*e))
			e++;
		nlen = (size_t)(e - name);
		rest = strstr(e, "resumed>");
		if (!rest)
			return 0;
		rest += 8;
		pv = imap_get(&sr->pending, (uint64_t)(uint32_t)tid);
		pd = pv ? (struct pending *)(uintptr_t)*pv : NULL;
		alen = pd ? strlen(pd->args) : 0;
		rlen = strlen(rest);
		if (ensure_joined(sr, nlen + alen + rlen + 3) < 0)
			return -ENOMEM;
		memcpy(sr->joined, name, nlen);
		sr->joined[nlen] = '(';
		if (pd)
			memcpy(sr->joined + nlen + 1, pd->args, alen);
		/* "read(7,  <unfinished ...>" + "\"ab\", 10)": one space after the comma */
		if (alen && pd->args[alen - 1] == ',' && rest[0] != ')' && rest[0] != ' ')
			sr->joined[nlen + 1 + alen++] = ' ';
		memcpy(sr->joined + nlen + 1 + alen, rest, rlen + 1);
		if (pd) {
			ev->ts = pd->ts;
			imap_del(&sr->pending, (uint64_t)(uint32_t)tid);
			pending_free(pd);
		}
		rc = trace_parse_strace_call(sr->joined, ev, sr->fdpath, sizeof(sr->fdpath));
		if (rc < 0)
			return 0;
		note_clone(sr, ev);
		return 1;
	}
	rc = trace_parse_strace_call(p, ev, sr->fdpath, sizeof(sr->fdpath));
	if (rc < 0)
		return 0;
	if (rc == 1) {
		/* unfinished: keep until it resumes */
		struct pending *pd = calloc(1, sizeof(*pd));
		size_t alen = strlen(ev->args);
		uint64_t *old;

		if (!pd)
			return -ENOMEM;
		if (alen > MAX_PENDING_ARGS)
			alen = MAX_PENDING_ARGS;
		pd->args = malloc(alen + 1);
		if (!pd->args) {
			free(pd);
			return -ENOMEM;
		}
		memcpy(pd->args, ev->args, alen);
		pd->args[alen] = '\0';
		pd->ts = ev->ts;
		pd->name = ev->name;
		pd->thread_clone =
			(strcmp(ev->name, "clone") == 0 || strcmp(ev->name, "clone3") == 0) &&
			strstr(ev->args, "CLONE_THREAD") != NULL;
		old = imap_get(&sr->pending, (uint64_t)(uint32_t)tid);
		if (old) {
			pending_free((struct pending *)(uintptr_t)*old);
			imap_del(&sr->pending, (uint64_t)(uint32_t)tid);
		}
		if (imap_put(&sr->pending, (uint64_t)(uint32_t)tid, (uint64_t)(uintptr_t)pd) < 0) {
			pending_free(pd);
			sr->base.st.skipped++;
		}
		return 2;
	}
	note_clone(sr, ev);
	return 1;
}

/* At the end: calls that never resumed. */
static int drain_pending(struct strace_reader *sr, struct trace_event *ev)
{
	uint64_t k, v;

	if (!imap_next(&sr->pending, &sr->drain_it, &k, &v))
		return 0;
	struct pending *pd = (struct pending *)(uintptr_t)v;

	trace_event_init(ev);
	ev->kind = TRACE_SYSCALL;
	ev->tid = (int32_t)k;
	ev->pid = pid_for(sr, ev->tid);
	ev->ts = pd->ts;
	ev->name = pd->name;
	if (ensure_joined(sr, strlen(pd->args) + 1) < 0)
		return -ENOMEM;
	strcpy(sr->joined, pd->args);
	ev->args = sr->joined;
	ev->flags |= TRACE_F_UNFINISHED;
	return 1;
}

static int strace_next(struct trace_reader *r, struct trace_event *ev)
{
	struct strace_reader *sr = (struct strace_reader *)r;
	char *line;
	size_t len;
	int rc;

	if (sr->draining)
		return drain_pending(sr, ev);
	while ((rc = trace_input_line(&sr->in, &line, &len)) > 0) {
		r->st.bytes = sr->in.consumed;
		if (len == 0)
			continue;
		rc = parse_line(sr, line, ev);
		if (rc < 0) {
			snprintf(r->err, sizeof(r->err), "strace reader: %s", strerror(-rc));
			return rc;
		}
		if (rc == 1)
			return 1;
		if (rc == 0 && strncmp(line, "strace: ", 8) != 0)
			r->st.skipped++;
	}
	if (rc < 0) {
		snprintf(r->err, sizeof(r->err), "reading strace text: %s", strerror(-rc));
		return rc;
	}
	r->st.skipped += sr->in.cut_lines;
	sr->in.cut_lines = 0;
	sr->draining = 1;
	sr->drain_it = 0;
	return drain_pending(sr, ev);
}

static void strace_close(struct trace_reader *r)
{
	struct strace_reader *sr = (struct strace_reader *)r;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&sr->pending, &it, &k, &v);)
		pending_free((struct pending *)(uintptr_t)v);
	imap_free(&sr->pending);
	imap_free(&sr->pid_of);
	trace_input_free(&sr->in);
	free(sr->joined);
	free(sr);
}

static const struct trace_reader_ops strace_ops = {strace_next, strace_close};

int trace_strace_open(struct trace_input *in, const struct trace_read_opts *o,
		      struct trace_reader **out, char *err, size_t errlen)
{
	struct strace_reader *sr = calloc(1, sizeof(*sr));

	(void)o;
	if (!sr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sr->base.ops = &strace_ops;
	sr->base.format = TRACE_FMT_STRACE;
	sr->in = *in;
	imap_init(&sr->pid_of, MAX_TIDS);
	imap_init(&sr->pending, MAX_TIDS);
	*out = &sr->base;
	return 0;
}
