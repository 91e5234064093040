/*
 * test_trace.c - trace/: parsers (strace, babeltrace, doppel trace text,
 * libdoppeltrace chunks), and the primitives on small known traces:
 * summarise folds and expands back exactly, coarsen counts what it hides,
 * demux finds requests and its writer keeps few files open, compare finds
 * the first divergence, rank scores predicates with Liblit's formulas.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tracer-glue/runtime/dtr-format.h"
#include "trace/trace.h"

/* ---------------------------------------------------------------- helpers */

/* A sink that keeps copies of what it gets, as .dtt lines and as events. */
struct keep {
	struct trace_sink base;
	char *text;
	size_t len;
	FILE *mem;
	struct trace_sink *writer;
	struct trace_event ev[4096];
	size_t n;
	int ended;
};

static int keep_event(struct trace_sink *s, const struct trace_event *ev)
{
	struct keep *k = (struct keep *)s;

	if (k->n < 4096) {
		k->ev[k->n] = *ev;
		k->ev[k->n].args = k->ev[k->n].fdpath = k->ev[k->n].retpath = k->ev[k->n].extra =
			NULL;
		k->n++;
	}
	return trace_sink_event(k->writer, ev);
}

static int keep_end(struct trace_sink *s)
{
	struct keep *k = (struct keep *)s;

	k->ended = 1;
	trace_sink_end(k->writer);
	fflush(k->mem);
	return 0;
}

static void keep_free(struct trace_sink *s)
{
	struct keep *k = (struct keep *)s;

	trace_sink_free(k->writer);
	fclose(k->mem);
	free(k->text);
	free(k);
}

static const struct trace_sink_ops keep_ops = {keep_event, keep_end, keep_free};

static struct keep *keep_new(void)
{
	struct keep *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	k->base.ops = &keep_ops;
	k->mem = open_memstream(&k->text, &k->len);
	assert_non_null(k->mem);
	k->writer = trace_text_writer_new(k->mem);
	return k;
}

static struct trace_reader *open_text(const char *text, enum trace_format fmt)
{
	struct trace_read_opts ro = {.format = fmt};
	struct trace_reader *r = NULL;
	char err[512];
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(f);
	assert_int_equal(trace_reader_open_file(f, "test", &ro, &r, err, sizeof(err)), 0);
	return r;
}

static void ev_make(struct trace_event *ev, int kind, const char *name, uint64_t ts, int depth)
{
	trace_event_init(ev);
	ev->kind = (uint16_t)kind;
	ev->name = trace_intern_str(name);
	ev->ts = ts;
	ev->depth = depth;
	ev->pid = 100;
	ev->tid = 100;
}

static void feed(struct trace_sink *s, int kind, const char *name, uint64_t ts, int depth)
{
	static uint64_t entered[256];
	struct trace_event ev;

	ev_make(&ev, kind, name, ts, depth);
	if (kind == TRACE_ENTER)
		entered[depth & 255] = ts;
	if (kind == TRACE_EXIT) {
		/* as a tracer reports it: the time since the matching entry */
		ev.flags |= TRACE_F_DUR;
		ev.dur = ts - entered[depth & 255];
	}
	assert_int_equal(trace_sink_event(s, &ev), 0);
}

/* main { prepare; step x n; report } with distinct times */
static void feed_loop(struct trace_sink *s, int n)
{
	uint64_t t = 1000;

	feed(s, TRACE_ENTER, "main", t++, 0);
	feed(s, TRACE_ENTER, "prepare", t++, 1);
	feed(s, TRACE_EXIT, "prepare", t++, 1);
	for (int i = 0; i < n; i++) {
		feed(s, TRACE_ENTER, "step", t, 1);
		t += 3 + (uint64_t)(i % 5);
		feed(s, TRACE_EXIT, "step", t, 1);
		t += 2;
	}
	feed(s, TRACE_ENTER, "report", t++, 1);
	feed(s, TRACE_EXIT, "report", t++, 1);
	feed(s, TRACE_EXIT, "main", t++, 0);
}

static size_t count_lines(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* ----------------------------------------------------------------- strace */

static const char strace_text[] =
	"100 1700000000.000100 accept4(5<TCP:[127.0.0.1:80]>, {sa_family=AF_INET}, [16], "
	"SOCK_NONBLOCK) = 6<TCP:[127.0.0.1:80->127.0.0.1:5000]> <0.000016>\n"
	"100 1700000000.000200 recvfrom(6<TCP:[127.0.0.1:80->127.0.0.1:5000]>, \"GET / "
	"HTTP/1.1\\r\\n\"..., "
	"1024, 0, NULL, NULL) = 79 <0.000007>\n"
	"100 1700000000.000300 read(7<pipe:[99]>,  <unfinished ...>\n"
	"101 1700000000.000310 write(8</tmp/f (1) = 2>, \"x) = 3\", 6) = 6 <0.000002>\n"
	"100 1700000000.000400 <... read resumed>\"ab\", 10) = 2 <0.000100>\n"
	"100 1700000000.000500 openat(AT_FDCWD</srv>, \"/nope\", O_RDONLY) = -1 ENOENT (No such "
	"file or directory) <0.000003>\n"
	"100 1700000000.000600 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, -1, 0) = 0x7f0000000000 "
	"<0.000004>\n"
	"100 1700000000.000700 clone(child_stack=0x1, flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND) = "
	"102 <0.000030>\n"
	"102 1700000000.000800 futex(0x1, FUTEX_WAIT, 0, NULL) = 0 <0.000001>\n"
	"100 1700000000.000900 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER} ---\n"
	"100 1700000000.001000 close(6<TCP:[127.0.0.1:80->127.0.0.1:5000]>) = 0 <0.000010>\n"
	"100 1700000000.001100 exit_group(0)                     = ?\n"
	"100 1700000000.001200 +++ exited with 0 +++\n"
	"this line is not strace output\n";

static void strace_parses_calls_resumes_errors_and_threads(void **state)
{
	struct trace_reader *r = open_text(strace_text, TRACE_FMT_AUTO);
	struct trace_event ev;
	struct trace_read_stats st;
	int n = 0;

	(void)state;
	assert_int_equal(trace_reader_format(r), TRACE_FMT_STRACE);
	while (trace_reader_next(r, &ev) > 0) {
		n++;
		if (n == 1) {
			assert_string_equal(ev.name, "accept4");
			assert_int_equal(ev.ts, 1700000000000100000ULL);
			assert_int_equal(ev.fd, 5);
			assert_string_equal(ev.fdpath, "TCP:[127.0.0.1:80]");
			assert_true(ev.flags & TRACE_F_RETFD);
			assert_int_equal(ev.ret, 6);
			assert_string_equal(ev.retpath, "TCP:[127.0.0.1:80->127.0.0.1:5000]");
			assert_int_equal(ev.dur, 16000);
		} else if (n == 2) {
			assert_string_equal(ev.name, "recvfrom");
			assert_int_equal(ev.ret, 79);
			assert_string_equal(ev.fdpath, "TCP:[127.0.0.1:80->127.0.0.1:5000]");
		} else if (n == 3) {
			/* the last ") = " before the return, not the one inside the string */
			assert_string_equal(ev.name, "write");
			assert_int_equal(ev.tid, 101);
			assert_int_equal(ev.ret, 6);
			assert_string_equal(ev.args, "8</tmp/f (1) = 2>, \"x) = 3\", 6");
		} else if (n == 4) {
			/* unfinished + resumed, with the start time */
			assert_string_equal(ev.name, "read");
			assert_int_equal(ev.ts, 1700000000000300000ULL);
			assert_int_equal(ev.ret, 2);
			assert_int_equal(ev.fd, 7);
			assert_string_equal(ev.args, "7<pipe:[99]>, \"ab\", 10");
		} else if (n == 5) {
			assert_string_equal(ev.name, "openat");
			assert_int_equal(ev.ret, -1);
			assert_string_equal(ev.errname, "ENOENT");
			assert_int_equal(ev.fd, -100);
		} else if (n == 6) {
			assert_int_equal(ev.ret, 0x7f0000000000LL);
			assert_int_equal(ev.fd, -1); /* -1 is not decorated: not an fd */
		} else if (n == 8) {
			/* a thread of pid 100, made by clone(CLONE_THREAD) */
			assert_string_equal(ev.name, "futex");
			assert_int_equal(ev.tid, 102);
			assert_int_equal(ev.pid, 100);
		} else if (n == 9) {
			assert_int_equal(ev.kind, TRACE_NOTE);
			assert_string_equal(ev.name, "SIGTERM");
		} else if (n == 11) {
			assert_string_equal(ev.name, "exit_group");
			assert_false(ev.flags & TRACE_F_RET);
		} else if (n == 12) {
			assert_int_equal(ev.kind, TRACE_NOTE);
			assert_string_equal(ev.name, "exit");
		}
	}
	assert_int_equal(n, 12);
	trace_reader_stats(r, &st);
	assert_int_equal(st.skipped, 1);
	trace_reader_close(r);
}

/* ------------------------------------------------------------- babeltrace */

static const char bt_text[] =
	"[11:42:47.100290690] (+0.000002458) host syscall_entry_accept4: { cpu_id = 0 }, "
	"{ procname = \"apache2\", pid = 1234, tid = 1240 }, { fd = 3, upeer_sockaddr = "
	"140722476310080, upeer_addrlen = 140722476310076, flags = 524288 }\n"
	"[11:42:47.100290700] (+0.000000010) host sched_switch: { cpu_id = 0 }, { prev_comm = "
	"\"x\", prev_tid = 0 }\n"
	"[11:42:47.100295123] (+0.000004423) host syscall_exit_accept4: { cpu_id = 0 }, { procname "
	"= \"apache2\", pid = 1234, tid = 1240 }, { ret = 12, upeer_sockaddr = 140722476310080 }\n"
	"[2020-01-02 11:42:48.000000000] (+?.\?\?\?\?\?\?\?\?\?) host syscall_entry_read: { cpu_id "
	"= 1 }, "
	"{ pid = 1234, tid = 1240 }, { fd = 12, buf = 1, count = 10 }\n"
	"[2020-01-02 11:42:48.000001000] (+0.000001000) host syscall_exit_read: { cpu_id = 1 }, "
	"{ pid = 1234, tid = 1240 }, { ret = -11, buf = 1 }\n";

static void babeltrace_pairs_entry_and_exit(void **state)
{
	struct trace_reader *r = open_text(bt_text, TRACE_FMT_AUTO);
	struct trace_event ev;

	(void)state;
	assert_int_equal(trace_reader_format(r), TRACE_FMT_BABELTRACE);
	assert_int_equal(trace_reader_next(r, &ev), 1);
	assert_string_equal(ev.name, "accept4");
	assert_int_equal(ev.pid, 1234);
	assert_int_equal(ev.tid, 1240);
	assert_int_equal(ev.fd, 3);
	assert_int_equal(ev.ret, 12);
	assert_true(ev.flags & TRACE_F_RETFD);
	assert_int_equal(ev.dur, 4433);
	assert_int_equal(ev.ts, (11 * 3600 + 42 * 60 + 47) * TRACE_NS + 100290690);
	assert_int_equal(trace_reader_next(r, &ev), 1);
	assert_string_equal(ev.name, "read");
	assert_int_equal(ev.ret, -11);
	assert_string_equal(ev.errname, "EAGAIN");
	assert_int_equal(ev.ts, 1577965368ULL * TRACE_NS);
	assert_int_equal(trace_reader_next(r, &ev), 0);
	trace_reader_close(r);
}

/* -------------------------------------------------------- text round trip */

static void text_roundtrip_keeps_every_field(void **state)
{
	struct keep *k = keep_new();
	struct trace_reader *r;
	struct trace_event ev, got;
	char *copy;

	(void)state;
	ev_make(&ev, TRACE_ENTER, "handler", 5 * TRACE_NS + 7, 2);
	ev.args = "\"x\", 3";
	ev.prog = trace_intern_str("nginx");
	trace_sink_event(&k->base, &ev);
	ev_make(&ev, TRACE_SYSCALL, "accept4", 6 * TRACE_NS, 3);
	ev.args = "5<TCP:[1.2.3.4:80]>, NULL, NULL, 0";
	ev.flags = TRACE_F_RET | TRACE_F_RETFD | TRACE_F_DUR;
	ev.ret = 6;
	ev.retpath = "TCP:[1.2.3.4:80->5.6.7.8:9]";
	ev.dur = 1234;
	trace_sink_event(&k->base, &ev);
	ev_make(&ev, TRACE_BLOCK_BEGIN, "step", 7 * TRACE_NS, 3);
	ev.count = 1000;
	ev.dur = 55;
	ev.min = 1;
	ev.max = 9;
	trace_sink_event(&k->base, &ev);
	ev_make(&ev, TRACE_EXIT, "step", 8 * TRACE_NS, 3);
	ev.flags = TRACE_F_RET | TRACE_F_DUR;
	ev.ret = -4;
	ev.dur = 77;
	trace_sink_event(&k->base, &ev);
	ev_make(&ev, TRACE_BLOCK_END, "step", 9 * TRACE_NS, 3);
	ev.count = 1000;
	ev.flags = TRACE_F_TIMES;
	ev.extra = "1,2,-3";
	trace_sink_event(&k->base, &ev);
	ev_make(&ev, TRACE_MSG, "msg", 10 * TRACE_NS, 1);
	ev.count = 79;
	ev.min = 9 * TRACE_NS;
	ev.peer_pid = 7;
	ev.peer_tid = 8;
	ev.peer_prog = trace_intern_str("doppel");
	ev.fdpath = "TCP:[a->b]";
	trace_sink_event(&k->base, &ev);
	trace_sink_end(&k->base);
	copy = strdup(k->text);
	r = open_text(copy, TRACE_FMT_AUTO);
	assert_int_equal(trace_reader_format(r), TRACE_FMT_DTT);
	assert_int_equal(trace_reader_next(r, &got), 1);
	assert_int_equal(got.kind, TRACE_ENTER);
	assert_string_equal(got.name, "handler");
	assert_string_equal(got.args, "\"x\", 3");
	assert_string_equal(got.prog, "nginx");
	assert_int_equal(got.depth, 2);
	assert_int_equal(got.ts, 5 * TRACE_NS + 7);
	assert_int_equal(trace_reader_next(r, &got), 1);
	assert_int_equal(got.kind, TRACE_SYSCALL);
	assert_int_equal(got.fd, 5);
	assert_int_equal(got.ret, 6);
	assert_string_equal(got.retpath, "TCP:[1.2.3.4:80->5.6.7.8:9]");
	assert_int_equal(got.dur, 1234);
	assert_int_equal(got.depth, 3);
	assert_int_equal(trace_reader_next(r, &got), 1);
	assert_int_equal(got.kind, TRACE_BLOCK_BEGIN);
	assert_int_equal(got.count, 1000);
	assert_int_equal(got.dur, 55);
	assert_int_equal(got.max, 9);
	assert_int_equal(got.depth, 3);
	assert_int_equal(trace_reader_next(r, &got), 1);
	assert_int_equal(got.kind, TRACE_EXIT);
	assert_int_equal(got.ret, -4);
	assert_int_equal(got.depth, 3); /* indentation minus the open block */
	assert_int_equal(trace_reader_next(r, &got), 1);
	assert_int_equal(got.kind, TRACE_BLOCK_END);
	assert_string_equal(got.extra, "1,2,-3");
	assert_int_equal(got.depth, 3);
	assert_int_equal(trace_reader_next(r, &got), 1);
	assert_int_equal(got.kind, TRACE_MSG);
	assert_int_equal(got.count, 79);
	assert_int_equal(got.peer_tid, 8);
	assert_string_equal(got.peer_prog, "doppel");
	assert_int_equal(got.min, 9 * TRACE_NS);
	assert_int_equal(trace_reader_next(r, &got), 0);
	trace_reader_close(r);
	free(copy);
	trace_sink_free(&k->base);
}

/* -------------------------------------------------------------- summarise */

static void summarise_folds_a_loop_of_1000_into_one_block(void **state)
{
	struct keep *k = keep_new();
	struct trace_summarise_opts o = {.window = 16};
	struct trace_sink *s = trace_summarise_new(&o, &k->base);
	size_t blocks = 0;

	(void)state;
	feed_loop(s, 1000);
	assert_int_equal(trace_sink_end(s), 0);
	for (size_t i = 0; i < k->n; i++) {
		if (k->ev[i].kind == TRACE_BLOCK_BEGIN) {
			blocks++;
			assert_int_equal(k->ev[i].count, 1000);
			assert_string_equal(k->ev[i].name, "step");
		}
	}
	assert_int_equal(blocks, 1);
	/* main, prepare x2, block, step x2, end, report x2, main */
	assert_int_equal(k->n, 10);
	trace_sink_free(s);
}

/* Feed a trace through summarise (with keep_times) and expand: same lines. */
static void roundtrip(void (*gen)(struct trace_sink *), const struct trace_summarise_opts *o)
{
	struct keep *plain = keep_new(), *back = keep_new();
	struct trace_sink *chain = trace_summarise_new(o, trace_expand_new(&back->base));

	gen(&plain->base);
	trace_sink_end(&plain->base);
	gen(chain);
	assert_int_equal(trace_sink_end(chain), 0);
	assert_string_equal(plain->text, back->text);
	trace_sink_free(chain);
	trace_sink_free(&plain->base);
}

static void gen_loop(struct trace_sink *s)
{
	feed_loop(s, 1000);
}

/* for i < 20: { g(); for j < 5: f(); h(); } then a recursion of depth 30 */
static void gen_nested(struct trace_sink *s)
{
	uint64_t t = 1;

	feed(s, TRACE_ENTER, "main", t++, 0);
	for (int i = 0; i < 20; i++) {
		feed(s, TRACE_ENTER, "g", t++, 1);
		feed(s, TRACE_EXIT, "g", t += 3, 1);
		for (int j = 0; j < 5; j++) {
			feed(s, TRACE_ENTER, "f", t++, 1);
			feed(s, TRACE_EXIT, "f", t += (uint64_t)(1 + j), 1);
		}
		feed(s, TRACE_ENTER, "h", t++, 1);
		feed(s, TRACE_EXIT, "h", t += 2, 1);
	}
	for (int d = 0; d < 30; d++) {
		feed(s, TRACE_ENTER, "walk", t++, 1 + d);
		feed(s, TRACE_ENTER, "visit", t++, 2 + d);
		feed(s, TRACE_EXIT, "visit", t += 2, 2 + d);
	}
	feed(s, TRACE_ENTER, "walk", t++, 31);
	feed(s, TRACE_EXIT, "walk", t++, 31);
	for (int d = 29; d >= 0; d--) {
		feed(s, TRACE_ENTER, "after", t++, 2 + d);
		feed(s, TRACE_EXIT, "after", t += 1 + (uint64_t)(d % 3), 2 + d);
		feed(s, TRACE_EXIT, "walk", t++, 1 + d);
	}
	feed(s, TRACE_EXIT, "main", t++, 0);
}

static void summarise_expands_back_exactly_with_keep_times(void **state)
{
	struct trace_summarise_opts o = {.window = 16, .keep_times = 1};

	(void)state;
	roundtrip(gen_loop, &o);
	roundtrip(gen_nested, &o);
	o.mode = TRACE_SUM_ITERATIVE;
	roundtrip(gen_nested, &o);
	/* a tiny memory bound forces spills: still lossless */
	o.mode = TRACE_SUM_SLIDING;
	o.max_events = 16;
	roundtrip(gen_nested, &o);
}

static void summarise_nests_loops_and_folds_recursion(void **state)
{
	struct keep *k = keep_new();
	struct trace_summarise_opts o = {.window = 16};
	struct trace_sink *s = trace_summarise_new(&o, &k->base);
	int outer = 0, inner = 0, descend = 0, ascend = 0;

	(void)state;
	gen_nested(s);
	assert_int_equal(trace_sink_end(s), 0);
	for (size_t i = 0; i < k->n; i++) {
		const struct trace_event *e = &k->ev[i];

		if (e->kind != TRACE_BLOCK_BEGIN)
			continue;
		if (e->block == TRACE_BLOCK_LOOP && e->count == 20 && strcmp(e->name, "g") == 0)
			outer++;
		if (e->block == TRACE_BLOCK_LOOP && e->count == 5 && strcmp(e->name, "f") == 0)
			inner++;
		if (e->block == TRACE_BLOCK_DESCEND && e->count == 30)
			descend++;
		if (e->block == TRACE_BLOCK_ASCEND && e->count == 30)
			ascend++;
	}
	assert_int_equal(outer, 1);
	assert_int_equal(inner, 1);
	assert_int_equal(descend, 1);
	assert_int_equal(ascend, 1);
	trace_sink_free(s);
}

/* ---------------------------------------------------------------- coarsen */

static void coarsen_counts_hidden_calls_and_time(void **state)
{
	struct keep *k = keep_new();
	const char *hide[] = {"report"};
	struct trace_coarsen_opts o = {.depth = 1};
	struct trace_sink *c = trace_coarsen_new(&o, &k->base);

	(void)state;
	feed_loop(c, 10);
	assert_int_equal(trace_sink_end(c), 0);
	/* main, one hidden run (prepare, 10 steps, report), main */
	assert_int_equal(k->n, 3);
	assert_int_equal(k->ev[1].kind, TRACE_HIDDEN);
	assert_int_equal(k->ev[1].count, 12);
	assert_string_equal(k->ev[1].name, "...");
	/* prepare 1 ns, steps 3+4+5+6+7 ns twice, report 1 ns */
	assert_int_equal(k->ev[1].dur, 1 + 2 * (3 + 4 + 5 + 6 + 7) + 1);
	trace_sink_free(c);

	k = keep_new();
	o.depth = -1;
	o.hide = hide;
	o.nhide = 1;
	c = trace_coarsen_new(&o, &k->base);
	feed_loop(c, 3);
	trace_sink_end(c);
	assert_int_equal(count_lines(k->text, "~ report \xc3\x97"
					      "1 "),
			 1);
	assert_int_equal(count_lines(k->text, "> step"), 3);
	trace_sink_free(c);
}

/* ------------------------------------------------------------------ demux */

struct dtarget {
	struct trace_demux_target t;
	int opened, closed;
	uint64_t events[16];
	char attrs[16][384];
};

static void *dt_open(struct trace_demux_target *t, const struct trace_stream_info *si)
{
	struct dtarget *d = (struct dtarget *)t;

	if (d->opened < 16)
		snprintf(d->attrs[d->opened], sizeof(d->attrs[0]), "%s", si->attrs);
	return (void *)(uintptr_t)(++d->opened);
}

static int dt_event(struct trace_demux_target *t, void *h, const struct trace_event *ev)
{
	struct dtarget *d = (struct dtarget *)t;
	size_t i = (uintptr_t)h - 1;

	(void)ev;
	if (i < 16)
		d->events[i]++;
	return 0;
}

static int dt_close(struct trace_demux_target *t, void *h, const struct trace_stream_info *si)
{
	(void)h;
	(void)si;
	((struct dtarget *)t)->closed++;
	return 0;
}

static void demux_finds_requests_from_accept_to_close(void **state)
{
	static const char text[] =
		"9 1.000001 epoll_wait(3<anon_inode:[eventpoll]>, [], 512, -1) = 1 <0.1>\n"
		"9 1.000002 accept4(5<TCP:[0.0.0.0:80]>, NULL, NULL, 0) = 6<TCP:[a:80->b:1]> "
		"<0.1>\n"
		"9 1.000003 accept4(5<TCP:[0.0.0.0:80]>, NULL, NULL, 0) = 7<TCP:[a:80->b:2]> "
		"<0.1>\n"
		"9 1.000004 read(6<TCP:[a:80->b:1]>, \"GET\", 10) = 3 <0.1>\n"
		"9 1.000005 openat(AT_FDCWD</>, \"/index\", O_RDONLY) = 8</index> <0.1>\n"
		"9 1.000006 read(7<TCP:[a:80->b:2]>, \"GET\", 10) = 3 <0.1>\n"
		"9 1.000007 close(6<TCP:[a:80->b:1]>) = 0 <0.1>\n"
		"9 1.000008 write(7<TCP:[a:80->b:2]>, \"200\", 3) = 3 <0.1>\n"
		"9 1.000009 close(7<TCP:[a:80->b:2]>) = 0 <0.1>\n";
	struct dtarget d = {.t = {dt_open, dt_event, dt_close}};
	struct trace_demux_opts o = {.by = TRACE_BY_REQUEST};
	struct trace_sink *s = trace_demux_new(&o, &d.t);
	struct trace_reader *r = open_text(text, TRACE_FMT_STRACE);
	struct trace_demux_stats st;
	char err[256];

	(void)state;
	assert_int_equal(trace_pump(r, s, err, sizeof(err)), 0);
	assert_int_equal(trace_sink_end(s), 0);
	assert_int_equal(d.opened, 2);
	assert_int_equal(d.closed, 2);
	/* request 1: accept4, read, openat (its current request), close */
	assert_int_equal(d.events[0], 4);
	/* request 2: accept4, read, write, close */
	assert_int_equal(d.events[1], 4);
	assert_non_null(strstr(d.attrs[0], "peer=TCP:[a:80->b:1]"));
	trace_demux_stats(s, &st);
	assert_int_equal(st.events_unrouted, 1);
	trace_reader_close(r);
	trace_sink_free(s);
}

/* Files under dir that this process has open. */
static int open_files_under(const char *dir)
{
	char link[64], target[4096];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t len;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (strncmp(target, dir, strlen(dir)) == 0)
			n++;
	}
	return n;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void demux_out_keeps_at_most_max_open_files(void **state)
{
	char dir[] = "/tmp/test_trace.XXXXXX", sub[64], path[128];
	struct trace_demux_out_opts oo = {.mode = TRACE_DEMUX_OUT_DIR, .max_open = 2};
	struct trace_demux_opts o = {.by = TRACE_BY_THREAD};
	struct trace_demux_out *dout;
	struct trace_sink *s;
	struct trace_event ev;
	char err[256], *text;
	int most = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/streams", dir);
	oo.dir = sub;
	assert_int_equal(trace_demux_out_new(&oo, &dout, err, sizeof(err)), 0);
	s = trace_demux_new(&o, trace_demux_out_target(dout));
	assert_non_null(s);
	/* six threads, each entering and leaving f five times, interleaved */
	for (int round = 0; round < 5; round++) {
		for (int tid = 1; tid <= 6; tid++) {
			for (int kind = TRACE_ENTER; kind <= TRACE_EXIT; kind++) {
				ev_make(&ev, kind, "f", (uint64_t)(round * 100 + tid * 10 + kind),
					0);
				ev.tid = tid;
				assert_int_equal(trace_sink_event(s, &ev), 0);
			}
			if (open_files_under(sub) > most)
				most = open_files_under(sub);
		}
	}
	assert_int_equal(most, 2);
	assert_int_equal(trace_sink_end(s), 0);
	trace_sink_free(s);
	trace_demux_out_finish(dout);
	trace_demux_out_free(dout);
	assert_int_equal(open_files_under(sub), 0);
	/* every stream whole, in order, with one header, though reopened */
	for (int id = 1; id <= 6; id++) {
		snprintf(path, sizeof(path), "%s/thread-%d.dtt", sub, id);
		text = slurp(path);
		assert_int_equal(count_lines(text, "# doppel-trace 1"), 1);
		assert_int_equal(count_lines(text, "## stream thread"), 1);
		assert_int_equal(count_lines(text, "> f"), 5);
		assert_int_equal(count_lines(text, "< f"), 5);
		free(text);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/streams.txt", sub);
	text = slurp(path);
	assert_int_equal(count_lines(text, " thread "), 6);
	free(text);
	unlink(path);
	rmdir(sub);
	rmdir(dir);
}

static void demux_out_sections_stop_at_max_memory(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct trace_demux_out_opts oo = {
		.mode = TRACE_DEMUX_OUT_SECTIONS, .out = out, .max_memory = 300};
	struct trace_demux_opts o = {.by = TRACE_BY_THREAD};
	struct trace_demux_out *dout;
	struct trace_sink *s;
	struct trace_event ev;
	char err[256];
	int rc = 0, n = 0;

	(void)state;
	assert_int_equal(trace_demux_out_new(&oo, &dout, err, sizeof(err)), 0);
	s = trace_demux_new(&o, trace_demux_out_target(dout));
	/* one thread that never ends: its section is held until it does */
	while (rc == 0 && n < 100) {
		ev_make(&ev, TRACE_ENTER, "held", (uint64_t)++n, 0);
		rc = trace_sink_event(s, &ev);
	}
	assert_int_equal(rc, -EFBIG);
	assert_true(n > 1 && n < 100);
	trace_sink_free(s);
	trace_demux_out_finish(dout);
	trace_demux_out_free(dout);
	fclose(out);
	free(buf);
}

/* ---------------------------------------------------------------- compare */

static void compare_points_at_the_first_divergent_call(void **state)
{
	static const char a_text[] = "# doppel-trace 1\n"
				     "1.0 1/1 > main\n"
				     "1.1 1/1   > parse\n"
				     "1.2 1/1   < parse\n"
				     "1.3 1/1   > classify\n"
				     "1.4 1/1     > add_positive\n"
				     "1.5 1/1     < add_positive\n"
				     "1.6 1/1   < classify\n"
				     "1.7 1/1   > check\n"
				     "1.8 1/1   < check\n"
				     "1.9 1/1 < main\n";
	static const char b_text[] = "# doppel-trace 1\n"
				     "1.0 1/1 > main\n"
				     "1.1 1/1   > parse\n"
				     "1.2 1/1   < parse\n"
				     "1.3 1/1   > classify\n"
				     "1.4 1/1     > add_negative\n"
				     "1.45 1/1       > negate_odd\n"
				     "1.46 1/1       < negate_odd\n"
				     "1.5 1/1     < add_negative\n"
				     "1.6 1/1   < classify\n"
				     "1.7 1/1   > check\n"
				     "1.8 1/1   < check\n"
				     "1.9 1/1 < main\n";
	struct trace_reader *a = open_text(a_text, TRACE_FMT_AUTO),
			    *b = open_text(b_text, TRACE_FMT_AUTO);
	struct trace_compare_opts o = {.context = 2};
	struct trace_compare_result res;
	char *out = NULL, err[256];
	size_t len;

	(void)state;
	assert_int_equal(trace_compare(a, b, &o, &res, &out, &len, err, sizeof(err)), 0);
	assert_int_equal(res.first_a, 4);
	assert_int_equal(res.first_b, 4);
	assert_int_equal(res.only_a, 2);
	assert_int_equal(res.only_b, 4);
	assert_int_equal(res.matched, 8);
	assert_false(res.similar);
	assert_non_null(strstr(out, "call path B: main > classify"));
	assert_non_null(strstr(out, "> B     > add_negative"));
	assert_non_null(strstr(out, "negate_odd"));
	free(out);
	trace_reader_close(a);
	trace_reader_close(b);
	/* a trace compared with itself does not diverge */
	a = open_text(a_text, TRACE_FMT_AUTO);
	b = open_text(a_text, TRACE_FMT_AUTO);
	assert_int_equal(trace_compare(a, b, &o, &res, &out, &len, err, sizeof(err)), 0);
	assert_int_equal(res.first_a, -1);
	assert_true(res.similar);
	free(out);
	trace_reader_close(a);
	trace_reader_close(b);
}

/* ------------------------------------------------------------------- rank */

static void rank_scores_with_liblit_formulas(void **state)
{
	char dir[] = "/tmp/doppel-rank-XXXXXX";
	struct trace_rank_run runs[10];
	char paths[10][64];
	struct trace_read_opts ro = {0};
	struct trace_rank_opts o = {.top = 5, .read = &ro, .json = 1};
	struct trace_rank_result res;
	char *out = NULL, err[256];
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* 10 runs: runs 0-3 call bug() and fail; run 4 fails without it; runs
	 * 5-9 pass, runs 5-6 call noise() */
	for (int i = 0; i < 10; i++) {
		FILE *f;

		snprintf(paths[i], sizeof(paths[i]), "%s/r%d.dtt", dir, i);
		f = fopen(paths[i], "w");
		assert_non_null(f);
		fprintf(f, "# doppel-trace 1\n1.0 1/1 > main\n");
		if (i < 4)
			fprintf(f, "1.1 1/1   > bug\n1.2 1/1   < bug\n");
		if (i == 5 || i == 6 || i == 0)
			fprintf(f, "1.3 1/1   > noise\n1.4 1/1   < noise\n");
		fprintf(f, "1.9 1/1 < main\n");
		fclose(f);
		runs[i].path = paths[i];
		runs[i].failed = i < 5;
	}
	assert_int_equal(trace_rank(runs, 10, &o, &res, &out, &len, err, sizeof(err)), 0);
	assert_string_equal(res.top, "called bug");
	/* F=4 S=0: Failure 1; Context 5/10; Increase 0.5;
	 * Importance = 2 / (1/0.5 + 1/(log 4 / log 5)) */
	assert_true(fabs(res.top_importance - 2.0 / (2.0 + log(5.0) / log(4.0))) < 1e-9);
	assert_non_null(strstr(out, "\"F\":4,\"S\":0,\"F_obs\":5,\"S_obs\":5"));
	free(out);
	for (int i = 0; i < 10; i++)
		unlink(paths[i]);
	rmdir(dir);
}

/* -------------------------------------------------------------------- dtr */

static void put_chunk(FILE *f, unsigned type, uint32_t pid, uint32_t tid, uint32_t seq,
		      const void *payload, uint32_t size, uint64_t ns0, uint64_t ns1)
{
	struct dtr_chunk_hdr h;

	memset(&h, 0, sizeof(h));
	h.magic = DTR_MAGIC;
	h.type = (uint16_t)type;
	h.hdr_size = DTR_HDR_SIZE;
	h.size = size;
	h.pid = pid;
	h.tid = tid;
	h.seq = seq;
	h.raw_begin = ns0;
	h.ns_begin = ns0;
	h.raw_end = ns1;
	h.ns_end = ns1;
	fwrite(&h, sizeof(h), 1, f);
	fwrite(payload, 1, size, f);
}

static void dtr_merges_threads_in_time_and_reports_loss(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char info[] = "version=1\nclock=mono\npid=5\nrealtime_offset_ns=1000\n";
	struct dtr_record t1[2] = {{100, dtr_word(0x1000, DTR_REC_ENTER, 0)},
				   {300, dtr_word(0x1000, DTR_REC_EXIT, 0)}};
	struct dtr_record t2[3] = {{200, dtr_word(0x2000, DTR_REC_ENTER, 0)},
				   {250, dtr_word(7, DTR_REC_LOST, 1)},
				   {400, dtr_word(0x2000, DTR_REC_EXIT, 0)}};
	struct trace_read_opts ro = {.format = TRACE_FMT_DTR};
	struct trace_reader *r;
	struct trace_event ev;
	struct trace_read_stats st;
	char err[256];
	uint64_t last = 0;
	int n = 0, lost = 0;

	(void)state;
	put_chunk(f, DTR_CHUNK_INFO, 5, 5, 0, info, sizeof(info) - 1, 0, 0);
	put_chunk(f, DTR_CHUNK_EVENTS, 5, 6, 0, t1, sizeof(t1), 100, 300);
	fputs("garbage between chunks", f);
	put_chunk(f, DTR_CHUNK_EVENTS, 5, 7, 0, t2, sizeof(t2), 200, 400);
	fclose(f);
	f = fmemopen(buf, len, "r");
	assert_int_equal(trace_reader_open_file(f, "mem", &ro, &r, err, sizeof(err)), 0);
	while (trace_reader_next(r, &ev) > 0) {
		n++;
		assert_true(ev.ts >= last); /* two threads merged in time order */
		last = ev.ts;
		if (ev.kind == TRACE_LOST) {
			lost++;
			assert_int_equal(ev.count, 7);
		}
		if (ev.kind == TRACE_EXIT && ev.tid == 6) {
			assert_true(ev.flags & TRACE_F_DUR);
			assert_int_equal(ev.dur, 200);
			assert_int_equal(ev.ts, 300 + 1000); /* moved to the wall clock */
		}
		if (ev.kind == TRACE_ENTER)
			assert_non_null(strstr(ev.name, "0x")); /* no mapping: the address */
	}
	assert_int_equal(n, 5);
	assert_int_equal(lost, 1);
	trace_reader_stats(r, &st);
	assert_int_equal(st.lost, 7);
	assert_int_equal(st.skipped, 1); /* the garbage, skipped to the next chunk */
	trace_reader_close(r);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strace_parses_calls_resumes_errors_and_threads),
		cmocka_unit_test(babeltrace_pairs_entry_and_exit),
		cmocka_unit_test(text_roundtrip_keeps_every_field),
		cmocka_unit_test(summarise_folds_a_loop_of_1000_into_one_block),
		cmocka_unit_test(summarise_expands_back_exactly_with_keep_times),
		cmocka_unit_test(summarise_nests_loops_and_folds_recursion),
		cmocka_unit_test(coarsen_counts_hidden_calls_and_time),
		cmocka_unit_test(demux_finds_requests_from_accept_to_close),
		cmocka_unit_test(demux_out_keeps_at_most_max_open_files),
		cmocka_unit_test(demux_out_sections_stop_at_max_memory),
		cmocka_unit_test(compare_points_at_the_first_divergent_call),
		cmocka_unit_test(rank_scores_with_liblit_formulas),
		cmocka_unit_test(dtr_merges_threads_in_time_and_reports_loss),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	trace_intern_reset();
	return rc;
}
