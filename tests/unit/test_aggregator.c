/*
 * test_aggregator.c - the aggregator's matching rules and its recording
 * budget (aggregator/aggregator.h).
 *
 * Production's upstream traffic is fed to the recorder exactly as the
 * upstream relay feeds it (the proxy observer, agg_recorder); a clone is a
 * real TCP client on loopback talking to the clone-side listener that
 * agg_clone_listen() made, served by the aggregator on a libevent loop that
 * the test runs. What the clone receives and the counters of /status (the
 * aggregator's JSON) are what is checked.
 */
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "aggregator/agg-int.h"
#include "common/clock.h"

#define WAIT_MS 3000 /* the longest any step may take before the test fails */

struct fx {
	struct event_base *base;
	struct agg *a;
	struct agg_up *up;
	uint16_t port[4]; /* clone id -> its listener's port */
};

static struct fx *fx_new(uint64_t budget, uint64_t wait_ns)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	assert_int_equal(agg_new(f->base, budget, wait_ns, &f->a), 0);
	assert_int_equal(agg_add_upstream(f->a, "127.0.0.1:1=127.0.0.1:1", err, sizeof(err)), 0);
	f->up = &f->a->ups[0];
	/* The clones' listeners take any free port (a clone has its own netns in real use). */
	((struct sockaddr_in *)&f->up->left.ss)->sin_port = 0;
	return f;
}

static void fx_free(struct fx *f)
{
	agg_free(f->a);
	event_base_free(f->base);
	free(f);
}

static void attach(struct fx *f, unsigned id)
{
	int fds[AGG_MAX_UPSTREAMS];
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char err[256];

	assert_int_equal(agg_clone_listen(f->a, -1, fds, err, sizeof(err)), 0);
	assert_int_equal(getsockname(fds[0], (struct sockaddr *)&sin, &len), 0);
	f->port[id] = ntohs(sin.sin_port);
	assert_int_equal(agg_clone_attach(f->a, id, fds, NULL), 0);
}

/* ---- production's side, as the relay reports it ---- */

static struct agg_pconn *prod_open(struct fx *f)
{
	struct agg_pconn *pc = agg_recorder.conn_open(f->up, 0);

	assert_non_null(pc);
	return pc;
}

static void prod_turn(struct agg_pconn *pc, const char *req, const char *resp)
{
	if (*req)
		agg_recorder.client_bytes(pc, req, strlen(req));
	agg_recorder.server_bytes(pc, resp, strlen(resp));
}

/* n bytes from the client (answer = 0) or from the upstream (answer = 1). */
static void prod_bytes(struct agg_pconn *pc, size_t n, int answer)
{
	char buf[4096];

	assert_true(n <= sizeof(buf));
	memset(buf, answer ? 'a' : 'q', n);
	if (answer)
		agg_recorder.server_bytes(pc, buf, n);
	else
		agg_recorder.client_bytes(pc, buf, n);
}

/* A turn of req_len + resp_len bytes. */
static void prod_turn_n(struct agg_pconn *pc, size_t req_len, size_t resp_len)
{
	prod_bytes(pc, req_len, 0);
	prod_bytes(pc, resp_len, 1);
}

static void prod_close(struct agg_pconn *pc, int reset)
{
	agg_recorder.conn_close(pc, reset);
}

/* ---- a clone's side: a real client ---- */

static int clone_connect(struct fx *f, unsigned id)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(f->port[id]);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void clone_send(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Run the loop for ms milliseconds (the aggregator's timers included). */
static void pump(struct fx *f, int ms)
{
	uint64_t end = clock_now_ns() + (uint64_t)ms * NSEC_PER_MSEC;

	do {
		struct timespec ts = {0, 2 * 1000 * 1000};

		event_base_loop(f->base, EVLOOP_NONBLOCK);
		nanosleep(&ts, NULL);
	} while (clock_now_ns() < end);
}

enum end { OPEN, ENDED, RESET };

/*
 * Run the loop until the clone has n bytes, or its connection ends, or
 * WAIT_MS pass. buf gets what came (NUL-terminated); returns how it stands.
 */
static enum end clone_recv(struct fx *f, int fd, char *buf, size_t n)
{
	uint64_t end = clock_now_ns() + WAIT_MS * NSEC_PER_MSEC;
	size_t got = 0;

	while (clock_now_ns() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		event_base_loop(f->base, EVLOOP_NONBLOCK);
		if (got == n && n)
			break;
		r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0 && n > got) {
			buf[got] = '\0';
			return ENDED;
		}
		if (r < 0 && errno == ECONNRESET) {
			buf[got] = '\0';
			return RESET;
		}
		poll(&p, 1, 2);
	}
	buf[got] = '\0';
	return OPEN;
}

static void expect_answer(struct fx *f, int fd, const char *want)
{
	char buf[256];

	assert_int_equal(clone_recv(f, fd, buf, strlen(want)), OPEN);
	assert_string_equal(buf, want);
}

/* How the clone's connection ends (after what it was sent), within WAIT_MS. */
static enum end clone_end(struct fx *f, int fd)
{
	char buf[256];

	return clone_recv(f, fd, buf, sizeof(buf) - 1);
}

/* ---- /status ---- */

static long long counter(struct fx *f, int clone_id, const char *name)
{
	struct sbuf sb;
	json_error_t jerr;
	json_t *j, *obj = NULL, *v;
	long long out;

	sbuf_init(&sb);
	agg_status_json(f->a, &sb);
	j = json_loads(sb.buf, 0, &jerr);
	sbuf_free(&sb);
	assert_non_null(j);
	if (clone_id < 0) {
		obj = json_object_get(json_array_get(j, 0), "production");
	} else {
		size_t i;
		json_t *c;

		json_array_foreach(json_object_get(json_array_get(j, 0), "clones"), i,
				   c) if (json_integer_value(json_object_get(c, "clone")) ==
					  clone_id) obj = c;
	}
	assert_non_null(obj);
	v = json_object_get(obj, name);
	assert_true(json_is_integer(v));
	out = json_integer_value(v);
	json_decref(j);
	return out;
}

/* Recorded production connections, oldest first, by their number. */
static void assert_recorded(struct fx *f, const uint64_t *seqs, unsigned n)
{
	unsigned i = 0;

	for (struct agg_pconn *pc = f->up->head; pc; pc = pc->next, i++) {
		assert_true(i < n);
		assert_int_equal(pc->seq, seqs[i]);
	}
	assert_int_equal(i, n);
}

/* ---- rule 1: connection order ---- */

static void turns_of_a_connection_are_replayed_in_order(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct agg_pconn *pc;
	int fd;

	(void)state;
	attach(f, 1);
	pc = prod_open(f);
	prod_turn(pc, "INCR n\n", ":1\n");
	prod_turn(pc, "INCR n\n", ":2\n");
	prod_close(pc, 0);
	fd = clone_connect(f, 1);
	clone_send(fd, "INCR n\n");
	expect_answer(f, fd, ":1\n");
	clone_send(fd, "INCR n\n");
	expect_answer(f, fd, ":2\n");
	assert_int_equal(clone_end(f, fd), ENDED); /* production's connection ended there */
	assert_int_equal(counter(f, 1, "matched_in_order"), 2);
	assert_int_equal(counter(f, 1, "matched_by_content"), 0);
	assert_int_equal(counter(f, 1, "diverged"), 0);
	close(fd);
	fx_free(f);
}

static void the_kth_clone_connection_is_productions_kth(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct agg_pconn *p1, *p2;
	int c0, c1;

	(void)state;
	attach(f, 1);
	p1 = prod_open(f);
	prod_turn(p1, "GET t\n", "first\n");
	p2 = prod_open(f);
	prod_turn(p2, "GET t\n", "second\n");
	c0 = clone_connect(f, 1);
	pump(f, 20); /* accepted in this order: indexes 0 and 1 */
	c1 = clone_connect(f, 1);
	pump(f, 20);
	/* The second connection asks first: it still gets production's second answer. */
	clone_send(c1, "GET t\n");
	expect_answer(f, c1, "second\n");
	clone_send(c0, "GET t\n");
	expect_answer(f, c0, "first\n");
	assert_int_equal(counter(f, 1, "matched_in_order"), 2);
	assert_int_equal(counter(f, 1, "matched_by_content"), 0);
	close(c0);
	close(c1);
	fx_free(f);
}

/* ---- rule 2: content ---- */

static void a_pool_opened_before_the_clone_is_matched_by_content(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct timespec res, later;
	struct agg_pconn *pool;
	int fd;

	(void)state;
	pool = prod_open(f);
	prod_turn(pool, "AUTH x\n", "+OK\n");
	/* Let the coarse clock move on: that turn is older than the clone. */
	clock_getres(CLOCK_MONOTONIC_COARSE, &res);
	later.tv_sec = 0;
	later.tv_nsec = 3 * res.tv_nsec + 1000000;
	nanosleep(&later, NULL);
	attach(f, 1);
	prod_turn(pool, "GET k\n", "$v\n");
	fd = clone_connect(f, 1);
	clone_send(fd, "GET k\n");
	expect_answer(f, fd, "$v\n");
	assert_int_equal(counter(f, 1, "matched_by_content"), 1);
	/* Then in order on that connection. */
	prod_turn(pool, "GET j\n", "$w\n");
	clone_send(fd, "GET j\n");
	expect_answer(f, fd, "$w\n");
	assert_int_equal(counter(f, 1, "matched_in_order"), 1);
	assert_int_equal(counter(f, 1, "diverged"), 0);
	close(fd);
	fx_free(f);
}

static void a_turn_recorded_before_the_clone_is_not_used(void **state)
{
	struct fx *f = fx_new(0, 300 * NSEC_PER_MSEC);
	struct timespec res, later;
	struct agg_pconn *pool;
	int fd;

	(void)state;
	pool = prod_open(f);
	prod_turn(pool, "AUTH x\n", "+OK\n");
	clock_getres(CLOCK_MONOTONIC_COARSE, &res);
	later.tv_sec = 0;
	later.tv_nsec = 3 * res.tv_nsec + 1000000;
	nanosleep(&later, NULL);
	attach(f, 1);
	fd = clone_connect(f, 1);
	clone_send(fd, "AUTH x\n");
	assert_int_equal(clone_end(f, fd), RESET);
	assert_int_equal(counter(f, 1, "requests_answered"), 0);
	assert_int_equal(counter(f, 1, "unanswered"), 1);
	close(fd);
	fx_free(f);
}

static void a_request_unlike_productions_is_diverged_then_found_by_content(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct agg_pconn *p1, *p2;
	int fd;

	(void)state;
	attach(f, 1);
	p1 = prod_open(f);
	prod_turn(p1, "GET x\n", "X\n");
	p2 = prod_open(f);
	prod_turn(p2, "GET y\n", "Y\n");
	fd = clone_connect(f, 1);
	clone_send(fd, "GET y\n"); /* production's first connection asked GET x */
	expect_answer(f, fd, "Y\n");
	assert_int_equal(counter(f, 1, "diverged"), 1);
	assert_int_equal(counter(f, 1, "matched_by_content"), 1);
	assert_int_equal(counter(f, 1, "matched_in_order"), 0);
	close(fd);
	fx_free(f);
}

/* ---- rule 3: waiting, unanswered ---- */

static void a_clone_ahead_of_production_waits_for_it(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct agg_pconn *pc;
	char buf[16];
	int fd;

	(void)state;
	attach(f, 1);
	fd = clone_connect(f, 1);
	clone_send(fd, "GET late\n");
	pump(f, 100);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1); /* nothing yet */
	assert_int_equal(errno, EAGAIN);
	pc = prod_open(f);
	prod_turn(pc, "GET late\n", "L\n");
	expect_answer(f, fd, "L\n");
	assert_int_equal(counter(f, 1, "matched_in_order"), 1);
	assert_int_equal(counter(f, 1, "unanswered"), 0);
	close(fd);
	fx_free(f);
}

static void a_request_production_never_makes_is_reset_after_the_wait(void **state)
{
	struct fx *f = fx_new(0, 300 * NSEC_PER_MSEC);
	uint64_t t0;
	int fd;

	(void)state;
	attach(f, 1);
	fd = clone_connect(f, 1);
	t0 = clock_now_ns();
	clone_send(fd, "NEVER\n");
	assert_int_equal(clone_end(f, fd), RESET);
	assert_true(clock_now_ns() - t0 >= 300 * NSEC_PER_MSEC);
	assert_int_equal(counter(f, 1, "unanswered"), 1);
	assert_int_equal(counter(f, 1, "bytes_dropped"), 6);
	close(fd);
	fx_free(f);
}

static void a_production_reset_is_replayed_as_a_reset(void **state)
{
	struct fx *f = fx_new(0, 0);
	struct agg_pconn *pc;
	int fd;

	(void)state;
	attach(f, 1);
	pc = prod_open(f);
	prod_turn(pc, "Q\n", "partial");
	prod_close(pc, 1);
	fd = clone_connect(f, 1);
	clone_send(fd, "Q\n");
	assert_int_equal(clone_end(f, fd), RESET);
	assert_int_equal(counter(f, 1, "requests_answered"), 1);
	close(fd);
	fx_free(f);
}

/* ---- the budget ---- */

static void eviction_takes_the_oldest_finished_connections_first(void **state)
{
	struct fx *f = fx_new(1000, 0);
	struct agg_pconn *a, *b, *c, *d;

	(void)state;
	a = prod_open(f); /* 1: still open, never evicted */
	prod_turn_n(a, 150, 150);
	b = prod_open(f); /* 2 */
	prod_turn_n(b, 150, 150);
	prod_close(b, 0);
	c = prod_open(f); /* 3 */
	prod_turn_n(c, 150, 150);
	prod_close(c, 0);
	assert_recorded(f, (const uint64_t[]){1, 2, 3}, 3);
	d = prod_open(f); /* 4: its first 150 bytes pass the budget */
	prod_bytes(d, 150, 0);
	assert_recorded(f, (const uint64_t[]){1, 3, 4}, 3);
	assert_int_equal(counter(f, -1, "evicted_connections"), 1);
	prod_bytes(d, 150, 1);
	prod_turn_n(d, 150, 150);
	assert_recorded(f, (const uint64_t[]){1, 4}, 2);
	assert_int_equal(counter(f, -1, "evicted_connections"), 2);
	assert_int_equal(counter(f, -1, "bytes_kept"), 900);
	assert_int_equal(counter(f, -1, "truncated_connections"), 0);
	/* Nothing finished is left: the growing connection drops its older turn, then is
	 * truncated, and counted once. */
	prod_turn_n(d, 500, 10);
	assert_int_equal(counter(f, -1, "truncated_connections"), 1);
	assert_true(d->truncated);
	prod_turn_n(d, 500, 10);
	assert_int_equal(counter(f, -1, "truncated_connections"), 1);
	assert_int_equal(counter(f, -1, "evicted_connections"), 2);
	assert_recorded(f, (const uint64_t[]){1, 4}, 2);
	assert_true(counter(f, -1, "bytes_kept") <= 1000);
	fx_free(f);
}

static void a_long_connection_drops_its_oldest_turns_before_truncation(void **state)
{
	struct fx *f = fx_new(1000, 0);
	struct agg_pconn *pc;

	(void)state;
	pc = prod_open(f);
	for (int i = 0; i < 10; i++)
		prod_turn_n(pc, 50, 50);
	assert_int_equal(pc->nturns, 10);
	assert_int_equal(counter(f, -1, "bytes_kept"), 1000);
	prod_turn_n(pc, 50, 50); /* the older half goes */
	assert_int_equal(pc->nturns, 6);
	assert_int_equal(counter(f, -1, "bytes_kept"), 600);
	assert_int_equal(counter(f, -1, "truncated_connections"), 0);
	assert_false(pc->truncated);
	fx_free(f);
}

static void a_recording_a_clone_replays_is_not_evicted(void **state)
{
	struct fx *f = fx_new(1000, 0);
	struct agg_pconn *p1, *p2;
	int fd;

	(void)state;
	attach(f, 1);
	p1 = prod_open(f);
	prod_turn(p1, "q1\n", "a1\n");
	prod_turn(p1, "q2\n", "a2\n");
	prod_close(p1, 0);
	fd = clone_connect(f, 1);
	clone_send(fd, "q1\n");
	expect_answer(f, fd, "a1\n"); /* the clone is bound to p1 now */
	p2 = prod_open(f);
	prod_turn_n(p2, 600, 600);
	assert_recorded(f, (const uint64_t[]){1, 2}, 2);
	assert_int_equal(counter(f, -1, "evicted_connections"), 0);
	assert_int_equal(counter(f, -1, "truncated_connections"), 1);
	clone_send(fd, "q2\n");
	expect_answer(f, fd, "a2\n");
	close(fd);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(turns_of_a_connection_are_replayed_in_order),
		cmocka_unit_test(the_kth_clone_connection_is_productions_kth),
		cmocka_unit_test(a_pool_opened_before_the_clone_is_matched_by_content),
		cmocka_unit_test(a_turn_recorded_before_the_clone_is_not_used),
		cmocka_unit_test(a_request_unlike_productions_is_diverged_then_found_by_content),
		cmocka_unit_test(a_clone_ahead_of_production_waits_for_it),
		cmocka_unit_test(a_request_production_never_makes_is_reset_after_the_wait),
		cmocka_unit_test(a_production_reset_is_replayed_as_a_reset),
		cmocka_unit_test(eviction_takes_the_oldest_finished_connections_first),
		cmocka_unit_test(a_long_connection_drops_its_oldest_turns_before_truncation),
		cmocka_unit_test(a_recording_a_clone_replays_is_not_evicted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
