/*
 * read-babeltrace.c - reads babeltrace2 (or babeltrace 1) text output of
 * LTTng kernel traces into TRACE_SYSCALL events: each syscall_entry_X is paired
 * with the next syscall_exit_X of the same thread (older traces: sys_X and
 * exit_syscall), giving the call's start, duration and return value. Other
 * events (scheduler, ...) are passed over.
 *
 *   [11:42:47.100290690] (+0.000002458) host syscall_entry_accept4: { cpu_id = 0 },
 *       { procname = "apache2", pid = 1234, tid = 1240 }, { fd = 3, upeer_sockaddr = ... }
 *
 * Times may be "[HH:MM:SS.ns]" (time of day), "[SECONDS.ns]" (--clock-seconds)
 * or "[YYYY-MM-DD HH:MM:SS.ns]" (--clock-date). Thread and process ids come
 * from the pid/tid (or vpid/vtid) context fields LTTng adds with
 * `lttng add-context -t pid -t tid`.
 *
 * Arguments are kept as "fd<>, key = value, ..." so that the first fd reads
 * like strace's (with an unknown path), and a returned descriptor (accept4,
 * socket, open...) is marked as one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace/imap.h"
#include "trace/reader-int.h"

#define MAX_TIDS 65536
#define MAX_ARGS_TEXT 2048

struct bt_pending {
	uint64_t ts;
	const char *name;
	int32_t pid;
	char *args;
	int32_t fd;
};

struct bt_reader {
	struct trace_reader base;
	struct trace_input in;
	struct imap pending; /* tid -> struct bt_pending * */
	char args[MAX_ARGS_TEXT + 64];
	char procname[256];
	int draining;
	size_t drain_it;
};

/* Fields of one event we care about. */
struct bt_fields {
	long long pid, tid, fd, ret;
	int has_pid, has_tid, has_fd, has_ret;
	char procname[256];
	char payload[MAX_ARGS_TEXT]; /* the last { } group, as text */
};

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* End of a value starting at p: a string, a nested group, or a token. */
static const char *value_end(const char *p)
{
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++)
			if (*p == '\\' && p[1])
				p++;
		return *p ? p + 1 : p;
	}
	if (*p == '{' || *p == '[') {
		int depth = 0;

		for (; *p; p++) {
			if (*p == '"') {
				p = value_end(p) - 1;
				continue;
			}
			if (*p == '{' || *p == '[')
				depth++;
			else if ((*p == '}' || *p == ']') && --depth == 0)
				return p + 1;
		}
		return p;
	}
	while (*p && *p != ',' && *p != '}' && *p != ' ')
		p++;
	return p;
}

/* Walk "{ a = 1, b = "x" }, { ... }" collecting known fields. */
static void parse_groups(const char *p, struct bt_fields *f)
{
	const char *last_group = NULL, *last_end = NULL;

	while (*p) {
		p = skip_ws(p);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p != '{')
			break;
		const char *g = p, *end = value_end(p);

		last_group = g;
		last_end = end;
		p = g + 1;
		while (p < end) {
			const char *k, *ke, *v, *ve;

			p = skip_ws(p);
			if (*p == '}' || !*p)
				break;
			k = p;
			while (p < end && *p != ' ' && *p != '=')
				p++;
			ke = p;
			p = skip_ws(p);
			if (*p != '=')
				break;
			v = skip_ws(p + 1);
			ve = value_end(v);
			if (ve > end)
				ve = end;
			size_t kl = (size_t)(ke - k);

#define KEY(s) (kl == sizeof(s) - 1 && strncmp(k, s, kl) == 0)
			if (KEY("pid") || KEY("vpid")) {
				if (!f->has_pid || KEY("pid"))
					f->pid = strtoll(v, NULL, 0);
				f->has_pid = 1;
			} else if (KEY("tid") || KEY("vtid")) {
				if (!f->has_tid || KEY("tid"))
					f->tid = strtoll(v, NULL, 0);
				f->has_tid = 1;
			} else if (KEY("procname") && *v == '"') {
				size_t n = (size_t)(ve - v);

				if (n >= 2 && n - 2 < sizeof(f->procname)) {
					memcpy(f->procname, v + 1, n - 2);
					f->procname[n - 2] = '\0';
				}
			}
#undef KEY
			p = ve;
			p = skip_ws(p);
			if (*p == ',')
				p++;
		}
		p = end;
	}
	/* the payload is the last group: keep its text, note fd and ret */
	if (last_group) {
		const char *q = skip_ws(last_group + 1);
		size_t n = 0;

		while (q < last_end && *q) {
			const char *k = q, *ke, *v, *ve;

			while (q < last_end && *q != ' ' && *q != '=' && *q != '}')
				q++;
			ke = q;
			q = skip_ws(q);
			if (*q != '=')
				break;
			v = skip_ws(q + 1);
			ve = value_end(v);
			if (ve > last_end)
				ve = last_end;
			if (ke - k == 2 && strncmp(k, "fd", 2) == 0) {
				f->fd = strtoll(v, NULL, 0);
				f->has_fd = 1;
			} else if (ke - k == 3 && strncmp(k, "ret", 3) == 0) {
				f->ret = strtoll(v, NULL, 0);
				f->has_ret = 1;
			} else if (n < sizeof(f->payload) - 8) {
				int w = snprintf(f->payload + n, sizeof(f->payload) - n,
						 "%s%.*s = %.*s", n ? ", " : "", (int)(ke - k), k,
						 (int)(ve - v), v);

				if (w > 0)
					n += (size_t)w < sizeof(f->payload) - n
						     ? (size_t)w
						     : sizeof(f->payload) - n - 1;
			}
			q = skip_ws(ve);
			if (*q == ',')
				q++;
			q = skip_ws(q);
		}
	}
}

/* "[...]" at the start of the line: the event time in ns. */
static const char *parse_stamp(const char *p, uint64_t *ns)
{
	const char *close = strchr(p, ']');
	const char *e;

	if (*p != '[' || !close)
		return NULL;
	p++;
	if (close - p > 10 && p[4] == '-' && p[7] == '-' && p[10] == ' ') {
		struct tm tm;
		uint64_t tod;

		memset(&tm, 0, sizeof(tm));
		tm.tm_year = atoi(p) - 1900;
		tm.tm_mon = atoi(p + 5) - 1;
		tm.tm_mday = atoi(p + 8);
		e = trace_parse_time(p + 11, &tod);
		if (!e)
			return NULL;
		*ns = (uint64_t)timegm(&tm) * TRACE_NS + tod;
	} else {
		e = trace_parse_time(p, ns);
		if (!e)
			return NULL;
	}
	return close + 1;
}

static int returns_fd(const char *name)
{
	static const char *const names[] = {
		"accept",   "accept4",	 "socket",	   "open",
		"openat",   "openat2",	 "creat",	   "dup",
		"dup2",	    "dup3",	 "epoll_create",   "epoll_create1",
		"eventfd2", "signalfd4", "timerfd_create", "memfd_create"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

static void pending_free(struct bt_pending *p)
{
	free(p->args);
	free(p);
}

static void fill_args(char *out, size_t len, const char *payload, int has_fd, long long fd)
{
	if (has_fd)
		snprintf(out, len, "%lld<>%s%s", fd, *payload ? ", " : "", payload);
	else
		snprintf(out, len, "%s", payload);
}

static void finish_event(struct bt_reader *br, struct trace_event *ev, long long ret, int has_ret)
{
	if (has_ret) {
		ev->ret = ret;
		ev->flags |= TRACE_F_RET;
		if (ret < 0 && ret > -4096) {
			const char *en = strerrorname_np((int)-ret);

			ev->errname = trace_intern_str(en ? en : "EUNKNOWN");
		} else if (returns_fd(ev->name)) {
			ev->flags |= TRACE_F_RETFD;
			ev->retpath = "";
		}
	}
	ev->args = br->args;
	if (br->args[0] >= '0' && br->args[0] <= '9') {
		ev->fd = (int32_t)strtol(br->args, NULL, 10);
		ev->fdpath = "";
	}
}

/* 1: an event; 0: nothing to return for this line. */
static int parse_line(struct bt_reader *br, const char *line, struct trace_event *ev)
{
	struct bt_fields f;
	const char *p, *name = NULL, *name_end = NULL;
	uint64_t ts;
	int entry;
	size_t nl;

	p = parse_stamp(line, &ts);
	if (!p)
		return -EINVAL;
	p = skip_ws(p);
	if (*p == '(') {
		p = strchr(p, ')');
		if (!p)
			return -EINVAL;
		p = skip_ws(p + 1);
	}
	/* [host] event_name: */
	for (const char *q = p; *q && *q != '{'; q++) {
		if (*q == ':' && (q[1] == ' ' || q[1] == '\0')) {
			name_end = q;
			break;
		}
	}
	if (!name_end)
		return -EINVAL;
	name = name_end;
	while (name > p && name[-1] != ' ')
		name--;
	memset(&f, 0, sizeof(f));
	parse_groups(name_end + 1, &f);
	nl = (size_t)(name_end - name);
	if (nl > 14 && strncmp(name, "syscall_entry_", 14) == 0) {
		entry = 1;
		name += 14;
	} else if (nl > 13 && strncmp(name, "syscall_exit_", 13) == 0) {
		entry = 0;
		name += 13;
	} else if (nl > 21 && strncmp(name, "compat_syscall_entry_", 21) == 0) {
		entry = 1;
		name += 21;
	} else if (nl > 20 && strncmp(name, "compat_syscall_exit_", 20) == 0) {
		entry = 0;
		name += 20;
	} else if (nl == 12 && strncmp(name, "exit_syscall", 12) == 0) {
		entry = 0;
		name = NULL;
	} else if (nl > 4 && strncmp(name, "sys_", 4) == 0) {
		entry = 1;
		name += 4;
	} else {
		return 0;
	}
	int32_t tid = f.has_tid ? (int32_t)f.tid : (f.has_pid ? (int32_t)f.pid : 0);
	uint64_t *pv = imap_get(&br->pending, (uint64_t)(uint32_t)tid);
	struct bt_pending *pd = pv ? (struct bt_pending *)(uintptr_t)*pv : NULL;

	if (entry) {
		struct bt_pending *np = calloc(1, sizeof(*np));
		int emitted = 0;

		if (!np)
			return -ENOMEM;
		if (pd) {
			/* the previous call never returned (exit, exit_group, a thread's
			 * end): it is an unfinished call */
			trace_event_init(ev);
			ev->kind = TRACE_SYSCALL;
			ev->tid = tid;
			ev->pid = pd->pid;
			ev->ts = pd->ts;
			ev->name = pd->name;
			snprintf(br->args, sizeof(br->args), "%s", pd->args);
			finish_event(br, ev, 0, 0);
			ev->flags |= TRACE_F_UNFINISHED;
			imap_del(&br->pending, (uint64_t)(uint32_t)tid);
			pending_free(pd);
			emitted = 1;
		}
		{
			char text[MAX_ARGS_TEXT + 64];

			fill_args(text, sizeof(text), f.payload, f.has_fd, f.fd);
			np->args = strdup(text);
		}
		if (!np->args) {
			free(np);
			return -ENOMEM;
		}
		np->ts = ts;
		np->name = trace_intern(name, (size_t)(name_end - name));
		np->pid = f.has_pid ? (int32_t)f.pid : tid;
		np->fd = f.has_fd ? (int32_t)f.fd : -1;
		if (imap_put(&br->pending, (uint64_t)(uint32_t)tid, (uint64_t)(uintptr_t)np) < 0) {
			pending_free(np);
			br->base.st.skipped++;
		}
		return emitted;
	}
	trace_event_init(ev);
	ev->kind = TRACE_SYSCALL;
	ev->tid = tid;
	ev->pid = f.has_pid ? (int32_t)f.pid : tid;
	if (pd && (!name || (strncmp(pd->name, name, (size_t)(name_end - name)) == 0 &&
			     pd->name[name_end - name] == '\0'))) {
		ev->ts = pd->ts;
		ev->dur = ts >= pd->ts ? ts - pd->ts : 0;
		ev->flags |= TRACE_F_DUR;
		ev->name = pd->name;
		snprintf(br->args, sizeof(br->args), "%s", pd->args);
		imap_del(&br->pending, (uint64_t)(uint32_t)tid);
		pending_free(pd);
	} else {
		if (!name)
			return 0;
		ev->ts = ts;
		ev->name = trace_intern(name, (size_t)(name_end - name));
		br->args[0] = '\0';
	}
	finish_event(br, ev, f.ret, f.has_ret);
	if (f.procname[0]) {
		snprintf(br->procname, sizeof(br->procname), "%s", f.procname);
		ev->extra = br->procname;
	}
	return 1;
}

static int drain(struct bt_reader *br, struct trace_event *ev)
{
	uint64_t k, v;

	if (!imap_next(&br->pending, &br->drain_it, &k, &v))
		return 0;
	struct bt_pending *pd = (struct bt_pending *)(uintptr_t)v;

	trace_event_init(ev);
	ev->kind = TRACE_SYSCALL;
	ev->tid = (int32_t)k;
	ev->pid = pd->pid;
	ev->ts = pd->ts;
	ev->name = pd->name;
	snprintf(br->args, sizeof(br->args), "%s", pd->args);
	finish_event(br, ev, 0, 0);
	ev->flags |= TRACE_F_UNFINISHED;
	return 1;
}

static int bt_next(struct trace_reader *r, struct trace_event *ev)
{
	struct bt_reader *br = (struct bt_reader *)r;
	char *line;
	size_t len;
	int rc;

	if (br->draining)
		return drain(br, ev);
	while ((rc = trace_input_line(&br->in, &line, &len)) > 0) {
		r->st.bytes = br->in.consumed;
		if (len == 0)
			continue;
		rc = parse_line(br, line, ev);
		if (rc > 0)
			return 1;
		if (rc == -ENOMEM) {
			snprintf(r->err, sizeof(r->err), "babeltrace reader: out of memory");
			return rc;
		}
		if (rc < 0)
			r->st.skipped++;
	}
	if (rc < 0) {
		snprintf(r->err, sizeof(r->err), "reading babeltrace text: %s", strerror(-rc));
		return rc;
	}
	r->st.skipped += br->in.cut_lines;
	br->in.cut_lines = 0;
	br->draining = 1;
	br->drain_it = 0;
	return drain(br, ev);
}

static void bt_close(struct trace_reader *r)
{
	struct bt_reader *br = (struct bt_reader *)r;
	uint64_t k, v;

	for (size_t it = 0; imap_next(&br->pending, &it, &k, &v);)
		pending_free((struct bt_pending *)(uintptr_t)v);
	imap_free(&br->pending);
	trace_input_free(&br->in);
	free(br);
}

static const struct trace_reader_ops bt_ops = {bt_next, bt_close};

int trace_babeltrace_open(struct trace_input *in, const struct trace_read_opts *o,
			  struct trace_reader **out, char *err, size_t errlen)
{
	struct bt_reader *br = calloc(1, sizeof(*br));

	(void)o;
	if (!br) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	br->base.ops = &bt_ops;
	br->base.format = TRACE_FMT_BABELTRACE;
	br->in = *in;
	imap_init(&br->pending, MAX_TIDS);
	*out = &br->base;
	return 0;
}
