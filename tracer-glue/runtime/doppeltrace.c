/*
 * doppeltrace.c - libdoppeltrace, a function tracer that lives inside the
 * traced program (Flowdar's design): GCC and Clang call
 * __cyg_profile_func_enter/exit around every function of code built with
 * -finstrument-functions, and this library records each call as a 16-byte
 * record (address, type, depth, timestamp) in a per-thread buffer.
 *
 * Why it is cheap: the hot path touches only the calling thread's own buffer
 * (no lock, no atomic read-modify-write, no allocation) and reads the TSC.
 * A full buffer (4096 records, 64 KiB) is written whole by the thread itself
 * with one write(2) (O_APPEND file: the kernel keeps chunks whole) or one
 * non-blocking send(2) on a SOCK_SEQPACKET socket to a collector; a collector
 * that cannot keep up costs the program nothing: the chunk is dropped and
 * counted, and the next chunk starts with a LOST record.
 *
 * This file must never be built with -finstrument-functions or sanitizers
 * (see CMakeLists.txt): it runs inside arbitrary programs, before their
 * constructors and after their destructors.
 *
 * Limits (docs/tracing.md): records of a thread that is still running when
 * its process exits are lost since that thread's last full chunk (the exiting
 * thread's are written, by exit() and by _exit(), which this library wraps);
 * a signal handler that runs while its thread is recording loses its own
 * records (counted). Format: dtr-format.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
#else
#define HAVE_TSC 0
#endif

#include "tracer-glue/runtime/dtr-format.h"
#include "tracer-glue/runtime/doppeltrace.h"

#define NOINST __attribute__((no_instrument_function))
#define EXPORT __attribute__((visibility("default")))
#define CHUNK_RECORDS 4096u

/* One per traced thread, mmap'd on its first record, owned by that thread only
 * (the fork child handler runs in the single surviving thread). The header
 * sits right before the records so that a chunk is one contiguous write. */
struct tbuf {
	struct dtr_chunk_hdr hdr;
	struct dtr_record rec[CHUNK_RECORDS];
	uint32_t n;		    /* records in rec[] */
	uint32_t depth;		    /* current call depth */
	volatile sig_atomic_t busy; /* recording now: a signal handler must not */
	uint64_t dropped;	    /* records lost in total (hdr.dropped) */
	uint64_t lost_pending;	    /* ... not yet announced by a LOST record */
};

enum { G_UNINIT, G_INIT, G_ON, G_OFF };
enum { T_NONE, T_ON, T_DONE };
enum { OUT_FILE, OUT_UNIX };

static int g_state = G_UNINIT;
static int g_out = OUT_FILE;
static int g_fd = -1;
static dev_t g_dev;
static ino_t g_ino;
static char g_path[PATH_MAX];
static int g_use_tsc;
static pthread_key_t g_key;

static __thread struct tbuf *t_self __attribute__((tls_model("initial-exec")));
static __thread int t_state __attribute__((tls_model("initial-exec")));

static NOINST uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline NOINST uint64_t raw_now(void)
{
#if HAVE_TSC
	if (g_use_tsc)
		return __rdtsc();
#endif
	return mono_ns();
}

static NOINST int gettid_(void)
{
	return (int)syscall(SYS_gettid);
}

/* Our descriptor may have been closed or replaced by the program (daemons close
 * every fd); never write trace data into someone else's file or socket. */
static NOINST int out_is_ours(void)
{
	struct stat st;

	if (g_fd < 0 || fstat(g_fd, &st) < 0)
		return 0;
	return st.st_dev == g_dev && st.st_ino == g_ino;
}

static NOINST int out_open(void)
{
	struct stat st;
	int fd;

	if (g_out == OUT_UNIX) {
		struct sockaddr_un sa;
		int sz = 1 << 20;

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		if (strlen(g_path) >= sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		memcpy(sa.sun_path, g_path, strlen(g_path));
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int e = errno;

			close(fd);
			return -e;
		}
	} else {
		fd = open(g_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
	}
	/* Keep clear of the low descriptors programs like to dup2() onto. */
	if (fd < 100) {
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 100);

		if (hi >= 0) {
			close(fd);
			fd = hi;
		}
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	g_fd = fd;
	g_dev = st.st_dev;
	g_ino = st.st_ino;
	return 0;
}

/* Write one chunk whole. Returns 0, or -1 when it was dropped. */
static NOINST int out_write(const void *buf, size_t len)
{
	const char *p = buf;

	if (!out_is_ours()) {
		g_fd = -1; /* not ours any more: never close someone else's fd */
		if (out_open() < 0)
			return -1;
	}
	if (g_out == OUT_UNIX) {
		ssize_t w;

		do
			w = send(g_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		return w == (ssize_t)len ? 0 : -1;
	}
	while (len > 0) {
		ssize_t w = write(g_fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* INFO and MAPS chunks: small text payloads written from a scratch mapping. */
static NOINST void write_text_chunk(unsigned type, const char *text, size_t len)
{
	size_t total = DTR_HDR_SIZE + len;
	char *buf = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct dtr_chunk_hdr *h = (struct dtr_chunk_hdr *)buf;

	if (buf == MAP_FAILED)
		return;
	memset(h, 0, sizeof(*h));
	h->magic = DTR_MAGIC;
	h->type = (uint16_t)type;
	h->hdr_size = DTR_HDR_SIZE;
	h->size = (uint32_t)len;
	h->pid = (uint32_t)getpid();
	h->tid = (uint32_t)gettid_();
	h->ns_begin = h->ns_end = mono_ns();
	h->raw_begin = h->raw_end = raw_now();
	memcpy(buf + DTR_HDR_SIZE, text, len);
	out_write(buf, total);
	munmap(buf, total);
}

static NOINST void write_info(void)
{
	char text[PATH_MAX + 256], exe[PATH_MAX];
	struct timespec rt, mono;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int len;

	exe[n > 0 ? n : 0] = '\0';
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	len = snprintf(text, sizeof(text),
		       "version=1\nclock=%s\npid=%d\nppid=%d\nexe=%s\nrealtime_offset_ns=%lld\n",
		       g_use_tsc ? "tsc" : "mono", (int)getpid(), (int)getppid(), exe,
		       (long long)(rt.tv_sec - mono.tv_sec) * 1000000000LL +
			       (rt.tv_nsec - mono.tv_nsec));
	if (len > 0)
		write_text_chunk(DTR_CHUNK_INFO, text,
				 (size_t)len < sizeof(text) ? (size_t)len : sizeof(text) - 1);
}

/* The executable mappings, for symbolising addresses later. */
static NOINST void write_maps(void)
{
	size_t cap = 1 << 20, len = 0, out = 0;
	char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd;

	if (buf == MAP_FAILED)
		return;
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r;

		while (len < cap - 1 && (r = read(fd, buf + len, cap - 1 - len)) > 0)
			len += (size_t)r;
		close(fd);
	}
	/* keep lines whose permissions have 'x' (field 2, char 3) */
	for (size_t i = 0; i < len;) {
		size_t j = i;
		const char *sp;

		while (j < len && buf[j] != '\n')
			j++;
		sp = memchr(buf + i, ' ', j - i);
		if (sp && sp + 3 < buf + j && sp[3] == 'x') {
			memmove(buf + out, buf + i, j - i);
			out += j - i;
			buf[out++] = '\n';
		}
		i = j + 1;
	}
	if (out)
		write_text_chunk(DTR_CHUNK_MAPS, buf, out);
	munmap(buf, cap);
}

static NOINST void chunk_begin(struct tbuf *t)
{
	t->n = 0;
	t->hdr.ns_begin = mono_ns();
	t->hdr.raw_begin = raw_now();
	if (t->lost_pending) {
		struct dtr_record *r = &t->rec[t->n++];

		r->time = t->hdr.raw_begin;
		r->word = dtr_word(t->lost_pending, DTR_REC_LOST, t->depth);
		t->lost_pending = 0;
	}
}

static NOINST void flush_thread(struct tbuf *t)
{
	if (t->n == 0)
		return;
	t->hdr.raw_end = raw_now();
	t->hdr.ns_end = mono_ns();
	if (!g_use_tsc)
		t->hdr.raw_end = t->hdr.ns_end;
	t->hdr.size = t->n * (uint32_t)sizeof(struct dtr_record);
	t->hdr.dropped = t->dropped;
	if (out_write(&t->hdr, DTR_HDR_SIZE + t->hdr.size) < 0) {
		t->dropped += t->n;
		t->lost_pending += t->n;
	}
	t->hdr.seq++;
	chunk_begin(t);
}

static NOINST void thread_done(void *arg)
{
	struct tbuf *t = arg;

	if (!t || t != t_self)
		return;
	t->busy = 1;
	flush_thread(t);
	t_state = T_DONE;
	t_self = NULL;
	munmap(t, sizeof(*t));
}

static NOINST void atfork_child(void)
{
	struct tbuf *t = t_self;

	if (g_state != G_ON)
		return;
	write_info();
	write_maps();
	if (!t)
		return;
	/* The parent writes what was pending; the child starts afresh, inside the
	 * same calls (its depth carries on). */
	t->hdr.pid = (uint32_t)getpid();
	t->hdr.tid = (uint32_t)gettid_();
	t->hdr.seq = 0;
	t->dropped = 0;
	t->lost_pending = 0;
	chunk_begin(t);
}

static NOINST int tsc_usable(void)
{
#if HAVE_TSC
	char line[4096];
	int constant = 0, nonstop = 0;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		constant = strstr(line, " constant_tsc") != NULL;
		nonstop = strstr(line, " nonstop_tsc") != NULL;
		break;
	}
	fclose(f);
	return constant && nonstop;
#else
	return 0;
#endif
}

static NOINST void global_init(void)
{
	const char *out = getenv("DOPPELTRACE_OUT");
	const char *clk = getenv("DOPPELTRACE_CLOCK");
	const char *off = getenv("DOPPELTRACE_DISABLE");
	int rc;

	if (off && *off && strcmp(off, "0") != 0) {
		__atomic_store_n(&g_state, G_OFF, __ATOMIC_RELEASE);
		return;
	}
	if (!out || !*out)
		out = "doppeltrace.dtr";
	if (strncmp(out, "unix:", 5) == 0) {
		g_out = OUT_UNIX;
		out += 5;
	}
	snprintf(g_path, sizeof(g_path), "%s", out);
	if (clk && strcmp(clk, "mono") == 0)
		g_use_tsc = 0;
	else if (clk && strcmp(clk, "tsc") == 0)
		g_use_tsc = HAVE_TSC;
	else
		g_use_tsc = tsc_usable();
	rc = out_open();
	if (rc < 0) {
		char msg[PATH_MAX + 128];
		int n = snprintf(msg, sizeof(msg),
				 "libdoppeltrace: cannot open %s%s: %s; tracing is off\n",
				 g_out == OUT_UNIX ? "unix:" : "", g_path, strerror(-rc));

		if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
			n = 0;
		__atomic_store_n(&g_state, G_OFF, __ATOMIC_RELEASE);
		return;
	}
	pthread_key_create(&g_key, thread_done);
	pthread_atfork(NULL, NULL, atfork_child);
	write_info();
	write_maps();
	__atomic_store_n(&g_state, G_ON, __ATOMIC_RELEASE);
}

static NOINST int global_ready(void)
{
	int s = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
	int expect = G_UNINIT;

	if (s == G_ON)
		return 1;
	if (s == G_UNINIT && __atomic_compare_exchange_n(&g_state, &expect, G_INIT, 0,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		global_init();
		return __atomic_load_n(&g_state, __ATOMIC_ACQUIRE) == G_ON;
	}
	return 0; /* off, or another thread is initialising: skip this record */
}

static NOINST struct tbuf *thread_start(void)
{
	struct tbuf *t;

	if (t_state != T_NONE)
		return NULL;
	t_state = T_DONE; /* no recursion while we set up */
	if (!global_ready()) {
		t_state = T_NONE;
		return NULL;
	}
	t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return NULL; /* stays T_DONE: this thread is not traced */
	t->hdr.magic = DTR_MAGIC;
	t->hdr.type = DTR_CHUNK_EVENTS;
	t->hdr.hdr_size = DTR_HDR_SIZE;
	t->hdr.pid = (uint32_t)getpid();
	t->hdr.tid = (uint32_t)gettid_();
	chunk_begin(t);
	pthread_setspecific(g_key, t);
	t_self = t;
	t_state = T_ON;
	return t;
}

static inline NOINST void record(void *fn, unsigned type)
{
	struct tbuf *t = t_self;
	struct dtr_record *r;
	unsigned depth;

	if (__builtin_expect(t == NULL, 0)) {
		t = thread_start();
		if (!t)
			return;
	}
	if (t->busy) {
		/* a signal handler interrupted this thread while it was recording */
		t->dropped++;
		t->lost_pending++;
		return;
	}
	t->busy = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (type == DTR_REC_ENTER)
		depth = t->depth++;
	else
		depth = t->depth ? --t->depth : 0;
	r = &t->rec[t->n];
	r->time = raw_now();
	r->word = dtr_word((uintptr_t)fn, type, depth);
	if (++t->n == CHUNK_RECORDS)
		flush_thread(t);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->busy = 0;
}

EXPORT NOINST void __cyg_profile_func_enter(void *fn, void *site)
{
	(void)site;
	record(fn, DTR_REC_ENTER);
}

EXPORT NOINST void __cyg_profile_func_exit(void *fn, void *site)
{
	(void)site;
	record(fn, DTR_REC_EXIT);
}

EXPORT NOINST void doppeltrace_flush(void)
{
	struct tbuf *t = t_self;

	if (!t || t->busy)
		return;
	t->busy = 1;
	flush_thread(t);
	t->busy = 0;
}

/* _exit() skips destructors: a forked child that ends with it (the usual way)
 * would lose its records. Programs linked with -ldoppeltrace (or preloading it)
 * resolve _exit and _Exit here first; the thread's records are written, then
 * the process ends as _exit would. */
static NOINST __attribute__((noreturn)) void exit_now(int status)
{
	struct tbuf *t = t_self;

	if (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) == G_ON && t && !t->busy) {
		t->busy = 1;
		flush_thread(t);
		t_state = T_DONE;
		t_self = NULL;
	}
	for (;;)
		syscall(SYS_exit_group, status);
}

EXPORT NOINST __attribute__((noreturn)) void _exit(int status)
{
	exit_now(status);
}

EXPORT NOINST __attribute__((noreturn)) void _Exit(int status)
{
	exit_now(status);
}

/* Process exit: write the exiting thread's records and the final mappings
 * (libraries loaded with dlopen since the start). */
static NOINST __attribute__((destructor)) void at_exit(void)
{
	struct tbuf *t = t_self;

	if (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) != G_ON)
		return;
	if (t && !t->busy) {
		t->busy = 1;
		flush_thread(t);
		t_state = T_DONE;
		t_self = NULL;
	}
	write_maps();
}
