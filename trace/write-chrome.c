/*
 * write-chrome.c - Chrome trace event JSON (the format chrome://tracing and
 * Perfetto's UI open), written as events arrive: constant memory.
 *
 *   enter/exit         "B" / "E" slices on the thread's track
 *   syscall            "X" complete slice with its duration, args and result
 *   note, lost, hidden "i" instant events
 *   folded block       a "B"/"E" slice named "loop f x1000" around its first
 *                      iteration, spanning the whole block
 *   message (align)    a flow arrow ("s" at the sender, "f" at the receiver)
 *
 * Times are microseconds (with nanosecond decimals) from the first event's
 * second, so that doubles keep nanosecond precision; otherData.t0_ns has it.
 * Process and thread names come from program labels and streams.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/sbuf.h"
#include "trace/imap.h"
#include "trace/text-int.h"
#include "trace/trace.h"

struct chrome {
	struct trace_sink base;
	FILE *out;
	int started;
	uint64_t t0;
	uint64_t nevents, skipped_exits, flows;
	struct imap named;  /* pid -> named, (tid|1<<63) -> named */
	struct imap open;   /* thread -> open B slices */
	const char *stream; /* current demux stream label */
};

static void json_str(FILE *out, const char *s)
{
	struct sbuf sb;

	sbuf_init(&sb);
	sbuf_json_str(&sb, s);
	fwrite(sb.buf, 1, sb.len, out);
	sbuf_free(&sb);
}

static void ts_us(FILE *out, struct chrome *C, uint64_t ts)
{
	int64_t d = (int64_t)(ts - C->t0);
	uint64_t a = d < 0 ? (uint64_t)-d : (uint64_t)d;

	fprintf(out, "%s%llu.%03llu", d < 0 ? "-" : "", (unsigned long long)(a / 1000),
		(unsigned long long)(a % 1000));
}

static void sep(struct chrome *C)
{
	fputs(C->nevents++ ? ",\n" : "\n", C->out);
}

static void head(struct chrome *C, const char *ph, const char *name, const struct trace_event *ev,
		 uint64_t ts)
{
	sep(C);
	fprintf(C->out, "{\"ph\":\"%s\",\"name\":", ph);
	json_str(C->out, name);
	fprintf(C->out, ",\"pid\":%d,\"tid\":%d,\"ts\":", ev->pid, ev->tid);
	ts_us(C->out, C, ts);
}

static void name_tracks(struct chrome *C, const struct trace_event *ev)
{
	uint64_t pk = (uint64_t)(uint32_t)ev->pid;
	uint64_t tk =
		(uint64_t)(uint32_t)ev->tid | (1ULL << 62) | ((uint64_t)(uint32_t)ev->pid << 32);

	if (!imap_get(&C->named, pk)) {
		char label[256];

		snprintf(label, sizeof(label), "%s%s%d", ev->prog ? ev->prog : "",
			 ev->prog ? " " : "pid ", ev->pid);
		sep(C);
		fprintf(C->out,
			"{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%d,\"args\":{\"name\":",
			ev->pid);
		json_str(C->out, label);
		fputs("}}", C->out);
		imap_put(&C->named, pk, 1);
	}
	if (!imap_get(&C->named, tk)) {
		char label[512];

		snprintf(label, sizeof(label), "tid %d%s%s", ev->tid, C->stream ? " " : "",
			 C->stream ? C->stream : "");
		sep(C);
		fprintf(C->out,
			"{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%d,\"tid\":%d,\"args\":{"
			"\"name\":",
			ev->pid, ev->tid);
		json_str(C->out, label);
		fputs("}}", C->out);
		imap_put(&C->named, tk, 1);
	}
}

static uint64_t *open_count(struct chrome *C, const struct trace_event *ev)
{
	uint64_t k = (uint64_t)(uint32_t)ev->tid | ((uint64_t)(uint32_t)ev->pid << 32);
	uint64_t *v = imap_get(&C->open, k);

	if (!v && imap_put(&C->open, k, 0) == 0)
		v = imap_get(&C->open, k);
	return v;
}

/* B and E slices of plain names, the bulk of a function trace: one buffer */
static int fast_slice(struct chrome *C, const struct trace_event *ev, char ph)
{
	size_t n = strlen(ev->name);
	char buf[256], *p = buf;
	int64_t d = (int64_t)(ev->ts - C->t0);
	uint64_t a = d < 0 ? (uint64_t)-d : (uint64_t)d;

	if (n > 160)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (ev->name[i] == '"' || ev->name[i] == '\\' || (unsigned char)ev->name[i] < 0x20)
			return 0;
	if (C->nevents++) {
		*p++ = ',';
		*p++ = '\n';
	} else {
		*p++ = '\n';
	}
	memcpy(p, "{\"ph\":\"", 7);
	p += 7;
	*p++ = ph;
	memcpy(p, "\",\"name\":\"", 10);
	p += 10;
	memcpy(p, ev->name, n);
	p += n;
	memcpy(p, "\",\"pid\":", 8);
	p = trace_put_i64(p + 8, ev->pid);
	memcpy(p, ",\"tid\":", 7);
	p = trace_put_i64(p + 7, ev->tid);
	memcpy(p, ",\"ts\":", 6);
	p += 6;
	if (d < 0)
		*p++ = '-';
	p = trace_put_u64(p, a / 1000);
	*p++ = '.';
	*p++ = (char)('0' + a % 1000 / 100);
	*p++ = (char)('0' + a % 100 / 10);
	*p++ = (char)('0' + a % 10);
	*p++ = '}';
	fwrite(buf, 1, (size_t)(p - buf), C->out);
	return 1;
}

static int chrome_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct chrome *C = (struct chrome *)s;
	uint64_t *open;
	char label[512];

	if (!C->started) {
		C->t0 = ev->ts - ev->ts % TRACE_NS;
		fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", C->out);
		C->started = 1;
	}
	if (ev->kind == TRACE_STREAM) {
		free((char *)C->stream);
		snprintf(label, sizeof(label), "%s %s", ev->name, ev->extra ? ev->extra : "");
		C->stream = strdup(label);
		imap_free(&C->named); /* name the next stream's tracks after it */
		return 0;
	}
	name_tracks(C, ev);
	open = open_count(C, ev);
	switch (ev->kind) {
	case TRACE_ENTER:
		if (!ev->args && fast_slice(C, ev, 'B')) {
			if (open)
				(*open)++;
			break;
		}
		head(C, "B", ev->name, ev, ev->ts);
		if (ev->args) {
			fputs(",\"args\":{\"args\":", C->out);
			json_str(C->out, ev->args);
			putc('}', C->out);
		}
		putc('}', C->out);
		if (open)
			(*open)++;
		break;
	case TRACE_EXIT:
		if (open && *open == 0) {
			C->skipped_exits++; /* entered before the trace began */
			break;
		}
		if (open)
			(*open)--;
		if (!(ev->flags & TRACE_F_RET) && fast_slice(C, ev, 'E'))
			break;
		head(C, "E", ev->name, ev, ev->ts);
		if (ev->flags & TRACE_F_RET)
			fprintf(C->out, ",\"args\":{\"ret\":%lld}", (long long)ev->ret);
		putc('}', C->out);
		break;
	case TRACE_SYSCALL:
		head(C, "X", ev->name, ev, ev->ts);
		fputs(",\"cat\":\"syscall\",\"dur\":", C->out);
		fprintf(C->out, "%llu.%03llu", (unsigned long long)(ev->dur / 1000),
			(unsigned long long)(ev->dur % 1000));
		fputs(",\"args\":{\"args\":", C->out);
		json_str(C->out, ev->args ? ev->args : "");
		if (ev->flags & TRACE_F_RET)
			fprintf(C->out, ",\"ret\":%lld", (long long)ev->ret);
		if (ev->errname) {
			fputs(",\"error\":", C->out);
			json_str(C->out, ev->errname);
		}
		if (ev->fdpath && *ev->fdpath) {
			fputs(",\"fd\":", C->out);
			json_str(C->out, ev->fdpath);
		}
		fputs("}}", C->out);
		break;
	case TRACE_BLOCK_BEGIN:
		snprintf(label, sizeof(label), "%s %s \xc3\x97%llu",
			 ev->block == TRACE_BLOCK_LOOP
				 ? "loop"
				 : (ev->block == TRACE_BLOCK_DESCEND ? "recursion" : "return"),
			 ev->name, (unsigned long long)ev->count);
		head(C, "B", label, ev, ev->ts);
		fprintf(C->out,
			",\"cat\":\"folded\",\"args\":{\"iterations\":%llu,\"min_ns\":%llu,"
			"\"max_ns\":%llu,\"span_ns\":%llu}}",
			(unsigned long long)ev->count, (unsigned long long)ev->min,
			(unsigned long long)ev->max, (unsigned long long)ev->dur);
		if (open)
			(*open)++;
		break;
	case TRACE_BLOCK_END:
		if (open && *open == 0)
			break;
		head(C, "E", "", ev, ev->ts);
		putc('}', C->out);
		if (open)
			(*open)--;
		break;
	case TRACE_MSG: {
		struct trace_event from = *ev;

		from.pid = ev->peer_pid;
		from.tid = ev->peer_tid;
		from.prog = ev->peer_prog;
		name_tracks(C, &from);
		snprintf(label, sizeof(label), "%llu bytes", (unsigned long long)ev->count);
		head(C, "s", label, &from, ev->min);
		fprintf(C->out, ",\"cat\":\"msg\",\"id\":%llu}", (unsigned long long)C->flows);
		head(C, "f", label, ev, ev->ts);
		fprintf(C->out, ",\"cat\":\"msg\",\"bp\":\"e\",\"id\":%llu}",
			(unsigned long long)C->flows);
		C->flows++;
		break;
	}
	default:
		if (ev->kind == TRACE_HIDDEN)
			snprintf(label, sizeof(label), "%s \xc3\x97%llu hidden", ev->name,
				 (unsigned long long)ev->count);
		else if (ev->kind == TRACE_LOST)
			snprintf(label, sizeof(label), "lost %llu records",
				 (unsigned long long)ev->count);
		else
			snprintf(label, sizeof(label), "%s", ev->name);
		head(C, "i", label, ev, ev->ts);
		fputs(",\"s\":\"t\"", C->out);
		if (ev->extra) {
			fputs(",\"args\":{\"text\":", C->out);
			json_str(C->out, ev->extra);
			putc('}', C->out);
		}
		putc('}', C->out);
	}
	if (ferror(C->out)) {
		snprintf(s->err, sizeof(s->err), "writing Chrome JSON: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static int chrome_end(struct trace_sink *s)
{
	struct chrome *C = (struct chrome *)s;

	if (!C->started)
		fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", C->out);
	fprintf(C->out, "\n],\"otherData\":{\"t0_ns\":\"%llu\",\"exits_before_trace\":%llu}}\n",
		(unsigned long long)C->t0, (unsigned long long)C->skipped_exits);
	if (fflush(C->out) != 0) {
		snprintf(s->err, sizeof(s->err), "writing Chrome JSON: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static void chrome_free(struct trace_sink *s)
{
	struct chrome *C = (struct chrome *)s;

	imap_free(&C->named);
	imap_free(&C->open);
	free((char *)C->stream);
	free(C);
}

static const struct trace_sink_ops chrome_ops = {chrome_event, chrome_end, chrome_free};

struct trace_sink *trace_chrome_writer_new(FILE *out)
{
	struct chrome *C = calloc(1, sizeof(*C));

	if (!C)
		return NULL;
	C->base.ops = &chrome_ops;
	C->out = out;
	imap_init(&C->named, 1u << 20);
	imap_init(&C->open, 1u << 20);
	return &C->base;
}
