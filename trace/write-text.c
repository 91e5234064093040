/*
 * write-text.c - doppel trace text (.dtt): the format every analysis writes
 * and reads back, so that they compose through files and pipes, and that a
 * person can read (grep, less). One event per line:
 *
 *   TS [PROG:]PID/TID INDENT MARK BODY
 *
 *   1795458246.087516000 24107/24107 | recvfrom(6<TCP:[...]>, "GET / ..."..., 1024) = 79
 * <0.000007000> 12.000000100 nginx:100/100   > ngx_http_process_request 12.000000900 nginx:100/100
 * < ngx_http_process_request <0.000000800>
 *
 * INDENT is two spaces per call depth plus one level per open folded block of
 * that thread. Marks: > enter, < exit, | syscall, ! note, ? lost, ~ hidden,
 * [ block begin, ] block end, = message. "## stream KIND ATTRS" starts a
 * demultiplexed stream. docs/tracing.md has the grammar; read-dtt.c parses it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "trace/imap.h"
#include "trace/trace.h"
#include "trace/text-int.h"

struct text_writer {
	struct trace_sink base;
	FILE *out;
	int header_done;
	struct imap blocks; /* tid -> open blocks */
};

/* "SECONDS.NNNNNNNNN" at p */
static char *put_secs(char *p, uint64_t ns)
{
	uint64_t frac = ns % TRACE_NS;

	p = trace_put_u64(p, ns / TRACE_NS);
	*p++ = '.';
	for (int i = 8; i >= 0; i--) {
		p[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	return p + 9;
}

void trace_text_secs(FILE *out, uint64_t ns)
{
	char buf[32];

	fwrite(buf, 1, (size_t)(put_secs(buf, ns) - buf), out);
}

void trace_text_proc(FILE *out, const char *prog, int32_t pid, int32_t tid)
{
	if (prog && *prog) {
		for (const char *p = prog; *p; p++) {
			char c = *p;

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
				c = '_';
			putc(c, out);
		}
		putc(':', out);
	}
	fprintf(out, "%d/%d", pid, tid);
}

/* The body of an event after its mark (shared with the tree view). */
void trace_text_body(FILE *out, const struct trace_event *ev)
{
	switch (ev->kind) {
	case TRACE_ENTER:
		fputs(ev->name, out);
		if (ev->args)
			fprintf(out, "(%s)", ev->args);
		break;
	case TRACE_EXIT:
		fputs(ev->name, out);
		if (ev->flags & TRACE_F_RET)
			fprintf(out, " = %lld", (long long)ev->ret);
		if (ev->flags & TRACE_F_DUR) {
			fputs(" <", out);
			trace_text_secs(out, ev->dur);
			putc('>', out);
		}
		break;
	case TRACE_SYSCALL:
		fprintf(out, "%s(%s", ev->name, ev->args ? ev->args : "");
		if (ev->flags & TRACE_F_UNFINISHED) {
			fputs(" <unfinished ...>", out);
			break;
		}
		putc(')', out);
		if (ev->flags & TRACE_F_RET) {
			fprintf(out, " = %lld", (long long)ev->ret);
			if ((ev->flags & TRACE_F_RETFD) && ev->retpath)
				fprintf(out, "<%s>", ev->retpath);
		} else {
			fputs(" = ?", out);
		}
		if (ev->errname)
			fprintf(out, " %s", ev->errname);
		if (ev->flags & TRACE_F_DUR) {
			fputs(" <", out);
			trace_text_secs(out, ev->dur);
			putc('>', out);
		}
		break;
	case TRACE_NOTE:
		fprintf(out, "%s: %s", ev->name, ev->extra ? ev->extra : "");
		break;
	case TRACE_LOST:
		fprintf(out, "lost %llu", (unsigned long long)ev->count);
		break;
	case TRACE_HIDDEN:
		fprintf(out, "%s \xc3\x97%llu <", ev->name, (unsigned long long)ev->count);
		trace_text_secs(out, ev->dur);
		putc('>', out);
		break;
	case TRACE_BLOCK_BEGIN:
		fprintf(out, "%s %s \xc3\x97%llu span=", trace_block_name(ev->block), ev->name,
			(unsigned long long)ev->count);
		trace_text_secs(out, ev->dur);
		fputs(" min=", out);
		trace_text_secs(out, ev->min);
		fputs(" max=", out);
		trace_text_secs(out, ev->max);
		if (ev->delta)
			fprintf(out, " delta=%d", ev->delta);
		break;
	case TRACE_BLOCK_END:
		fprintf(out, "%s %s \xc3\x97%llu", trace_block_name(ev->block), ev->name,
			(unsigned long long)ev->count);
		if ((ev->flags & TRACE_F_TIMES) && ev->extra)
			fprintf(out, " t=%s", ev->extra);
		break;
	case TRACE_MSG:
		fprintf(out, "%s \xc3\x97%llu from ", ev->name, (unsigned long long)ev->count);
		trace_text_proc(out, ev->peer_prog, ev->peer_pid, ev->peer_tid);
		fputs(" at ", out);
		trace_text_secs(out, ev->min);
		if (ev->fdpath && *ev->fdpath)
			fprintf(out, " via %s", ev->fdpath);
		break;
	default:
		fputs(ev->name, out);
	}
}

char trace_text_mark(int kind)
{
	switch (kind) {
	case TRACE_ENTER:
		return '>';
	case TRACE_EXIT:
		return '<';
	case TRACE_SYSCALL:
		return '|';
	case TRACE_NOTE:
		return '!';
	case TRACE_LOST:
		return '?';
	case TRACE_HIDDEN:
		return '~';
	case TRACE_BLOCK_BEGIN:
		return '[';
	case TRACE_BLOCK_END:
		return ']';
	case TRACE_MSG:
		return '=';
	}
	return '!';
}

static int text_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct text_writer *w = (struct text_writer *)s;
	uint64_t *nb, open_blocks;
	long level;

	if (!w->header_done) {
		fputs("# doppel-trace 1\n", w->out);
		w->header_done = 1;
	}
	if (ev->kind == TRACE_STREAM) {
		fprintf(w->out, "## stream %s %s\n", ev->name, ev->extra ? ev->extra : "");
		imap_free(&w->blocks);
		return 0;
	}
	nb = imap_get(&w->blocks, (uint64_t)(uint32_t)ev->tid);
	open_blocks = nb ? *nb : 0;
	if (ev->kind == TRACE_BLOCK_END && open_blocks > 0)
		open_blocks--;
	level = (long)ev->depth + (long)open_blocks;
	if (level < 0)
		level = 0;
	if (level > 4000)
		level = 4000;
	if ((ev->kind == TRACE_ENTER && !ev->args) || ev->kind == TRACE_EXIT) {
		/* the common case, a line built in one buffer: no printf */
		size_t nlen = strlen(ev->name);
		char buf[512], *p = buf;

		if (!ev->prog && nlen < 128 && level < 100) {
			p = put_secs(p, ev->ts);
			*p++ = ' ';
			p = trace_put_i64(p, ev->pid);
			*p++ = '/';
			p = trace_put_i64(p, ev->tid);
			*p++ = ' ';
			memset(p, ' ', (size_t)level * 2);
			p += level * 2;
			*p++ = ev->kind == TRACE_ENTER ? '>' : '<';
			*p++ = ' ';
			memcpy(p, ev->name, nlen);
			p += nlen;
			if (ev->kind == TRACE_EXIT && (ev->flags & TRACE_F_RET)) {
				memcpy(p, " = ", 3);
				p = trace_put_i64(p + 3, ev->ret);
			}
			if (ev->kind == TRACE_EXIT && (ev->flags & TRACE_F_DUR)) {
				*p++ = ' ';
				*p++ = '<';
				p = put_secs(p, ev->dur);
				*p++ = '>';
			}
			*p++ = '\n';
			fwrite(buf, 1, (size_t)(p - buf), w->out);
			goto written;
		}
	}
	trace_text_secs(w->out, ev->ts);
	putc(' ', w->out);
	trace_text_proc(w->out, ev->prog, ev->pid, ev->tid);
	putc(' ', w->out);
	for (long i = 0; i < level; i++)
		fputs("  ", w->out);
	putc(trace_text_mark(ev->kind), w->out);
	putc(' ', w->out);
	trace_text_body(w->out, ev);
	putc('\n', w->out);
written:
	if (ev->kind == TRACE_BLOCK_BEGIN)
		imap_put(&w->blocks, (uint64_t)(uint32_t)ev->tid, open_blocks + 1);
	else if (ev->kind == TRACE_BLOCK_END)
		imap_put(&w->blocks, (uint64_t)(uint32_t)ev->tid, open_blocks);
	if (ferror(w->out)) {
		snprintf(s->err, sizeof(s->err), "writing trace text: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static int text_end(struct trace_sink *s)
{
	struct text_writer *w = (struct text_writer *)s;

	if (!w->header_done) {
		fputs("# doppel-trace 1\n", w->out);
		w->header_done = 1;
	}
	if (fflush(w->out) != 0) {
		snprintf(s->err, sizeof(s->err), "writing trace text: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static void text_free(struct trace_sink *s)
{
	struct text_writer *w = (struct text_writer *)s;

	imap_free(&w->blocks);
	free(w);
}

static const struct trace_sink_ops text_ops = {text_event, text_end, text_free};

struct trace_sink *trace_text_writer_new(FILE *out)
{
	struct text_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->base.ops = &text_ops;
	w->out = out;
	imap_init(&w->blocks, 1u << 20);
	return &w->base;
}

void trace_text_writer_set_file(struct trace_sink *s, FILE *out)
{
	((struct text_writer *)s)->out = out;
}
