/*
 * read-dtt.c - reads doppel trace text (.dtt, see write-text.c) back into
 * events, so that every analysis can read what another one wrote.
 *
 * Depth comes from the indentation minus the thread's open folded blocks;
 * a syscall body is parsed by the strace call parser (the same syntax).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/imap.h"
#include "trace/reader-int.h"

struct dtt_reader {
	struct trace_reader base;
	struct trace_input in;
	struct imap blocks; /* tid -> open blocks */
	char fdpath[4096];
};

/* "×N" or "xN" at *p; returns end or NULL. */
static char *parse_count(char *p, uint64_t *n)
{
	char *e;

	if ((unsigned char)p[0] == 0xc3 && (unsigned char)p[1] == 0x97)
		p += 2;
	else if (*p == 'x')
		p++;
	else
		return NULL;
	if (*p < '0' || *p > '9')
		return NULL;
	*n = strtoull(p, &e, 10);
	return e;
}

static char *word(char **p)
{
	char *s = *p, *e;

	while (*s == ' ')
		s++;
	e = s;
	while (*e && *e != ' ')
		e++;
	if (*e)
		*e++ = '\0';
	*p = e;
	return s;
}

/* "[prog:]pid/tid" */
static char *parse_proc(char *p, const char **prog, int32_t *pid, int32_t *tid)
{
	char *colon = NULL, *q, *e;

	for (q = p; *q && *q != ' ' && *q != '/'; q++)
		if (*q == ':')
			colon = q;
	*prog = NULL;
	if (colon) {
		*prog = trace_intern(p, (size_t)(colon - p));
		p = colon + 1;
	}
	*pid = (int32_t)strtol(p, &e, 10);
	if (e == p || *e != '/')
		return NULL;
	p = e + 1;
	*tid = (int32_t)strtol(p, &e, 10);
	if (e == p)
		return NULL;
	return e;
}

static int secs_attr(const char *p, const char *key, uint64_t *out)
{
	const char *a = strstr(p, key);

	if (!a)
		return 0;
	return trace_parse_secs(a + strlen(key), out) != NULL;
}

static int parse_body(struct dtt_reader *dr, char mark, char *body, struct trace_event *ev)
{
	char *p = body, *w;
	uint64_t v;

	switch (mark) {
	case '>': {
		char *open = strchr(p, '('), *end = p + strlen(p);

		ev->kind = TRACE_ENTER;
		if (open && end > open && end[-1] == ')') {
			end[-1] = '\0';
			ev->name = trace_intern(p, (size_t)(open - p));
			ev->args = open + 1;
		} else {
			ev->name = trace_intern_str(word(&p));
		}
		return 0;
	}
	case '<':
		ev->kind = TRACE_EXIT;
		ev->name = trace_intern_str(word(&p));
		while (*p == ' ')
			p++;
		if (p[0] == '=' && p[1] == ' ') {
			ev->ret = strtoll(p + 2, &p, 10);
			ev->flags |= TRACE_F_RET;
			while (*p == ' ')
				p++;
		}
		if (*p == '<' && trace_parse_secs(p + 1, &v)) {
			ev->dur = v;
			ev->flags |= TRACE_F_DUR;
		}
		return 0;
	case '|': {
		int rc = trace_parse_strace_call(body, ev, dr->fdpath, sizeof(dr->fdpath));

		return rc < 0 ? rc : 0;
	}
	case '!': {
		char *colon = strchr(p, ':');

		ev->kind = TRACE_NOTE;
		if (!colon)
			return -EINVAL;
		ev->name = trace_intern(p, (size_t)(colon - p));
		p = colon + 1;
		while (*p == ' ')
			p++;
		ev->extra = p;
		return 0;
	}
	case '?':
		ev->kind = TRACE_LOST;
		ev->name = trace_intern_str("lost");
		w = word(&p);
		if (strcmp(w, "lost") != 0)
			return -EINVAL;
		ev->count = strtoull(p, NULL, 10);
		return 0;
	case '~':
		ev->kind = TRACE_HIDDEN;
		ev->name = trace_intern_str(word(&p));
		while (*p == ' ')
			p++;
		p = parse_count(p, &ev->count);
		if (!p)
			return -EINVAL;
		while (*p == ' ')
			p++;
		if (*p == '<' && trace_parse_secs(p + 1, &v)) {
			ev->dur = v;
			ev->flags |= TRACE_F_DUR;
		}
		return 0;
	case '[':
	case ']': {
		char *kind = word(&p);

		ev->kind = mark == '[' ? TRACE_BLOCK_BEGIN : TRACE_BLOCK_END;
		if (strcmp(kind, "loop") == 0)
			ev->block = TRACE_BLOCK_LOOP;
		else if (strcmp(kind, "descend") == 0)
			ev->block = TRACE_BLOCK_DESCEND;
		else if (strcmp(kind, "ascend") == 0)
			ev->block = TRACE_BLOCK_ASCEND;
		else
			return -EINVAL;
		ev->name = trace_intern_str(word(&p));
		while (*p == ' ')
			p++;
		p = parse_count(p, &ev->count);
		if (!p)
			return -EINVAL;
		if (mark == '[') {
			char *d = strstr(p, "delta=");

			secs_attr(p, "span=", &ev->dur);
			ev->flags |= TRACE_F_DUR;
			secs_attr(p, "min=", &ev->min);
			secs_attr(p, "max=", &ev->max);
			if (d)
				ev->delta = (int16_t)strtol(d + 6, NULL, 10);
		} else {
			char *t = strstr(p, " t=");

			if (t) {
				ev->extra = t + 3;
				ev->flags |= TRACE_F_TIMES;
			}
		}
		return 0;
	}
	case '=': {
		char *via;

		ev->kind = TRACE_MSG;
		ev->name = trace_intern_str(word(&p));
		while (*p == ' ')
			p++;
		p = parse_count(p, &ev->count);
		if (!p)
			return -EINVAL;
		w = word(&p);
		if (strcmp(w, "from") != 0)
			return -EINVAL;
		w = word(&p);
		if (!parse_proc(w, &ev->peer_prog, &ev->peer_pid, &ev->peer_tid))
			return -EINVAL;
		w = word(&p);
		if (strcmp(w, "at") != 0)
			return -EINVAL;
		w = word(&p);
		if (!trace_parse_secs(w, &ev->min))
			return -EINVAL;
		via = strstr(p, "via ");
		if (via)
			ev->fdpath = via + 4;
		return 0;
	}
	}
	return -EINVAL;
}

static int parse_line(struct dtt_reader *dr, char *line, struct trace_event *ev)
{
	char *p = line;
	const char *e;
	size_t spaces = 0;
	uint64_t *nb, open_blocks;
	char mark;

	trace_event_init(ev);
	if (line[0] == '#') {
		if (strncmp(line, "## stream ", 10) != 0)
			return 0;
		p = line + 10;
		ev->kind = TRACE_STREAM;
		ev->name = trace_intern_str(word(&p));
		while (*p == ' ')
			p++;
		ev->extra = p;
		imap_free(&dr->blocks);
		return 1;
	}
	e = trace_parse_secs(p, &ev->ts);
	if (!e || *e != ' ')
		return -EINVAL;
	p = (char *)e + 1;
	p = parse_proc(p, &ev->prog, &ev->pid, &ev->tid);
	if (!p || *p != ' ')
		return -EINVAL;
	p++;
	while (p[spaces] == ' ')
		spaces++;
	p += spaces;
	mark = *p;
	if (!mark || (p[1] != ' ' && p[1] != '\0'))
		return -EINVAL;
	p += p[1] ? 2 : 1;
	if (parse_body(dr, mark, p, ev) < 0)
		return -EINVAL;
	nb = imap_get(&dr->blocks, (uint64_t)(uint32_t)ev->tid);
	open_blocks = nb ? *nb : 0;
	if (ev->kind == TRACE_BLOCK_END && open_blocks > 0)
		open_blocks--;
	ev->depth = (int32_t)(spaces / 2) - (int32_t)open_blocks;
	if (ev->kind == TRACE_BLOCK_BEGIN)
		imap_put(&dr->blocks, (uint64_t)(uint32_t)ev->tid, open_blocks + 1);
	else if (ev->kind == TRACE_BLOCK_END)
		imap_put(&dr->blocks, (uint64_t)(uint32_t)ev->tid, open_blocks);
	return 1;
}

static int dtt_next(struct trace_reader *r, struct trace_event *ev)
{
	struct dtt_reader *dr = (struct dtt_reader *)r;
	char *line;
	size_t len;
	int rc;

	while ((rc = trace_input_line(&dr->in, &line, &len)) > 0) {
		r->st.bytes = dr->in.consumed;
		if (len == 0)
			continue;
		rc = parse_line(dr, line, ev);
		if (rc > 0)
			return 1;
		if (rc < 0)
			r->st.skipped++;
	}
	if (rc < 0) {
		snprintf(r->err, sizeof(r->err), "reading trace text: %s", strerror(-rc));
		return rc;
	}
	r->st.skipped += dr->in.cut_lines;
	dr->in.cut_lines = 0;
	return 0;
}

static void dtt_close(struct trace_reader *r)
{
	struct dtt_reader *dr = (struct dtt_reader *)r;

	imap_free(&dr->blocks);
	trace_input_free(&dr->in);
	free(dr);
}

static const struct trace_reader_ops dtt_ops = {dtt_next, dtt_close};

int trace_dtt_open(struct trace_input *in, const struct trace_read_opts *o,
		   struct trace_reader **out, char *err, size_t errlen)
{
	struct dtt_reader *dr = calloc(1, sizeof(*dr));

	(void)o;
	if (!dr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	dr->base.ops = &dtt_ops;
	dr->base.format = TRACE_FMT_DTT;
	dr->in = *in;
	imap_init(&dr->blocks, 1u << 20);
	*out = &dr->base;
	return 0;
}
