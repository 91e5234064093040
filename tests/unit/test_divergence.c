/*
 * test_divergence.c - turn hashing: an identical replica matches however its
 * answers are delayed or chunked; a different answer diverges on its own turn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "divergence/divergence.h"

static const char *const req[] = {"GET a\r\n", "SET b 1\r\n", "GET b\r\n", "DEL a\r\n", "PING\r\n"};
static const char *const ans[] = {"$1\r\nx\r\n", "+OK\r\n", "$1\r\n1\r\n", ":1\r\n", "+PONG\r\n"};
#define NT 5

static void str_bytes(struct div_conn *dc, const char *s)
{
	div_server_bytes(dc, s, strlen(s));
}

/* Production conversation: request i, then answer i. */
static uint64_t run_production(struct div_conn *dc, uint64_t *ends)
{
	uint64_t sent = 0;

	for (int i = 0; i < NT; i++) {
		div_client_bytes(dc, strlen(req[i]));
		sent += strlen(req[i]);
		ends[i] = sent;
		str_bytes(dc, ans[i]);
	}
	return sent;
}

static void lockstep_identical_replica_matches(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);
	uint64_t sent = 0;

	(void)state;
	div_follower_start(dc, 0, &cnt);
	for (int i = 0; i < NT; i++) {
		div_client_bytes(dc, strlen(req[i]));
		sent += strlen(req[i]);
		div_follower_bytes(dc, 0, ans[i], strlen(ans[i]), sent);
		str_bytes(dc, ans[i]);
	}
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	assert_int_equal(cnt.turns_compared, NT);
	assert_int_equal(cnt.turns_diverged, 0);
	assert_int_equal(cnt.conns_diverged, 0);
	div_conn_free(dc);
}

static void late_pipelined_bytewise_replica_matches(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);
	uint64_t ends[NT], total;

	(void)state;
	div_follower_start(dc, 0, &cnt);
	total = run_production(dc, ends);
	/* The replica got every request in one batch and answers a byte at a time. */
	for (int i = 0; i < NT; i++)
		for (size_t j = 0; j < strlen(ans[i]); j++)
			div_follower_bytes(dc, 0, ans[i] + j, 1, total);
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	assert_int_equal(cnt.turns_compared, NT);
	assert_int_equal(cnt.turns_diverged, 0);
	div_conn_free(dc);
}

static void same_length_different_answer_diverges_once(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);
	uint64_t ends[NT], total;

	(void)state;
	div_follower_start(dc, 0, &cnt);
	total = run_production(dc, ends);
	for (int i = 0; i < NT; i++) {
		const char *a = i == 2 ? "$1\r\n2\r\n" : ans[i];

		div_follower_bytes(dc, 0, a, strlen(a), total);
	}
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	assert_int_equal(cnt.turns_compared, NT);
	assert_int_equal(cnt.turns_diverged, 1);
	assert_int_equal(cnt.conns_diverged, 1);
	div_conn_free(dc);
}

static void longer_answer_stays_in_its_turn_when_replica_keeps_up(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);
	uint64_t ends[NT];

	(void)state;
	div_follower_start(dc, 0, &cnt);
	run_production(dc, ends);
	/* Replica answers each turn before it is given the next request. */
	for (int i = 0; i < NT; i++) {
		const char *a = i == 1 ? "-ERR something much longer\r\n" : ans[i];

		div_follower_bytes(dc, 0, a, strlen(a), ends[i]);
	}
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	assert_int_equal(cnt.turns_compared, NT);
	assert_int_equal(cnt.turns_diverged, 1);
	div_conn_free(dc);
}

static void server_greeting_is_a_turn(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);

	(void)state;
	div_follower_start(dc, 0, &cnt);
	str_bytes(dc, "220 hello\r\n");
	div_client_bytes(dc, 6);
	str_bytes(dc, "250 ok\r\n");
	div_follower_bytes(dc, 0, "220 hello\r\n250 ok\r\n", 19, 6);
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	assert_int_equal(div_turns(dc), 2);
	assert_int_equal(cnt.turns_compared, 2);
	assert_int_equal(cnt.turns_diverged, 0);
	div_conn_free(dc);
}

static void replica_ahead_of_production_matches(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);

	(void)state;
	div_follower_start(dc, 0, &cnt);
	div_client_bytes(dc, 7);
	/* The replica answers before production does. */
	div_follower_bytes(dc, 0, "$1\r\n", 4, 7);
	str_bytes(dc, "$1\r");
	div_follower_bytes(dc, 0, "x\r\n", 3, 7);
	str_bytes(dc, "\nx\r\n");
	div_client_bytes(dc, 6);
	div_follower_bytes(dc, 0, "+PONG\r\n", 7, 13);
	str_bytes(dc, "+PONG\r\n");
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	assert_int_equal(cnt.turns_compared, 2);
	assert_int_equal(cnt.turns_diverged, 0);
	div_conn_free(dc);
}

static void missing_last_answer_diverges(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);
	uint64_t ends[NT], total;

	(void)state;
	div_follower_start(dc, 0, &cnt);
	total = run_production(dc, ends);
	for (int i = 0; i < NT - 1; i++)
		div_follower_bytes(dc, 0, ans[i], strlen(ans[i]), total);
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	assert_int_equal(cnt.turns_compared, NT);
	assert_int_equal(cnt.turns_diverged, 1);
	div_conn_free(dc);
}

static void dropped_replica_leaves_turns_unchecked(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);
	uint64_t ends[NT], total;

	(void)state;
	div_follower_start(dc, 0, &cnt);
	total = run_production(dc, ends);
	/* It answered the first turn, then was dropped. */
	div_follower_bytes(dc, 0, ans[0], strlen(ans[0]), total);
	div_follower_end(dc, 0, DIV_END_DROPPED);
	assert_int_equal(cnt.turns_compared, 1);
	assert_int_equal(cnt.turns_unchecked, NT - 1);
	/* Production goes on: two more turns, both unchecked for this replica. */
	div_client_bytes(dc, 6);
	str_bytes(dc, "+PONG\r\n");
	div_client_bytes(dc, 6);
	str_bytes(dc, "+PONG\r\n");
	div_server_end(dc);
	assert_int_equal(cnt.turns_unchecked, NT + 1);
	assert_int_equal(cnt.turns_diverged, 0);
	/* Detached (the replica is gone): nothing more is counted. */
	div_follower_detach(dc, 0);
	div_client_bytes(dc, 6);
	str_bytes(dc, "+PONG\r\n");
	assert_int_equal(cnt.turns_unchecked, NT + 1);
	div_conn_free(dc);
}

static void replica_too_far_behind_stops_comparing(void **state)
{
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(2, 8);
	struct div_counts cnt2 = {0};
	uint64_t sent = 0;

	(void)state;
	div_follower_start(dc, 0, &cnt);
	div_follower_start(dc, 1, &cnt2);
	for (int i = 0; i < 100; i++) {
		div_client_bytes(dc, 6);
		sent += 6;
		str_bytes(dc, "+PONG\r\n");
		/* follower 1 keeps up, follower 0 says nothing */
		div_follower_bytes(dc, 1, "+PONG\r\n", 7, sent);
	}
	div_follower_bytes(dc, 0, "+PONG\r\n", 7, sent);
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	div_follower_end(dc, 1, DIV_END_EOF);
	/* Every turn it never answered is unchecked, none is called diverged. */
	assert_int_equal(cnt.turns_unchecked, 100);
	assert_int_equal(cnt.turns_compared, 0);
	assert_int_equal(cnt.turns_diverged, 0);
	assert_int_equal(cnt2.turns_compared, 100);
	assert_int_equal(cnt2.turns_diverged, 0);
	div_conn_free(dc);
}

static void large_turns_hash_the_same_streamed_or_whole(void **state)
{
	static unsigned char big[200000];
	struct div_counts cnt = {0};
	struct div_conn *dc = div_conn_new(1, 64);

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 31 + 7);
	div_follower_start(dc, 0, &cnt);
	div_client_bytes(dc, 10);
	for (size_t off = 0; off < sizeof(big); off += 1000)
		div_server_bytes(dc, big + off, 1000);
	div_client_bytes(dc, 10);
	div_follower_bytes(dc, 0, big, 30, 20);
	div_follower_bytes(dc, 0, big + 30, sizeof(big) - 30, 20);
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	assert_int_equal(cnt.turns_compared, 1);
	assert_int_equal(cnt.turns_diverged, 0);
	div_conn_free(dc);
}

/* One exchange on dc: request, production's answer, the replica's (differing when bad). */
static void exchange(struct div_conn *dc, const char *q, const char *a, int bad, uint64_t *sent)
{
	div_client_data(dc, q, strlen(q));
	*sent += strlen(q);
	div_server_bytes(dc, a, strlen(a));
	if (bad) {
		char b[128];

		snprintf(b, sizeof(b), "%s", a);
		b[strlen(b) / 2] ^= 1;
		div_follower_bytes(dc, 0, b, strlen(b), *sent);
	} else {
		div_follower_bytes(dc, 0, a, strlen(a), *sent);
	}
}

static void resting_twin(enum div_protocol proto, const char *const *qs, const char *const *as,
			 unsigned n)
{
	struct div_options o;
	struct div_rules *r;
	struct div_types *t[2];
	struct div_replica *rep[2];
	struct div_conn *dc[2];
	uint64_t sent[2] = {0, 0};
	char err[64];

	div_options_defaults(&o);
	o.protocol = proto;
	assert_int_equal(div_rules_new(&o, &r, err, sizeof(err)), 0);
	for (int k = 0; k < 2; k++) {
		t[k] = div_types_new();
		rep[k] = div_replica_new(t[k], DIV_CANDIDATE, NULL);
		dc[k] = div_conn_open(r, t[k], 1, 1);
		div_follower_attach(dc[k], 0, rep[k]);
	}
	div_conn_never_rest(dc[0]);
	for (unsigned i = 0; i < n; i++) {
		for (int k = 0; k < 2; k++)
			exchange(dc[k], qs[i], as[i], i == 1, &sent[k]);
		/*
		 * The first sweep only notes the connection was fed; the second
		 * rests it, unless a difference found in the open turn is still
		 * being recorded (its turn ends with the next request).
		 */
		assert_int_equal(div_conn_sweep(dc[1]), 0);
		assert_int_equal(div_conn_sweep(dc[1]), i != 1);
		if (i == 1)
			continue;
		/* the connection, one follower, a one-turn ring: no normaliser, window or typer */
		assert_true(div_conn_footprint(dc[1]) < 800);
		assert_true(div_conn_footprint(dc[0]) > div_conn_footprint(dc[1]) + 1000);
		assert_int_equal(div_conn_requests(dc[1]), div_conn_requests(dc[0]));
	}
	/* half an answer is a message on its way: no rest */
	for (int k = 0; k < 2; k++) {
		div_client_data(dc[k], qs[0], strlen(qs[0]));
		div_server_bytes(dc[k], as[0], strlen(as[0]) - 1);
	}
	div_conn_sweep(dc[1]);
	assert_int_equal(div_conn_sweep(dc[1]), proto == DIV_PROTO_RAW); /* raw has no messages */
	for (int k = 0; k < 2; k++) {
		div_server_bytes(dc[k], as[0] + strlen(as[0]) - 1, 1);
		div_server_end(dc[k]);
		div_follower_end(dc[k], 0, DIV_END_EOF);
		div_conn_free(dc[k]);
	}
	/* the rested connection counted and showed what the other did */
	assert_memory_equal(div_replica_counts(rep[0]), div_replica_counts(rep[1]),
			    sizeof(struct div_counts));
	assert_int_equal(div_replica_counts(rep[1])->turns_diverged, 2);
	assert_int_equal(div_types_count(t[0]), div_types_count(t[1]));
	for (unsigned id = 0; id < div_types_count(t[0]); id++)
		assert_memory_equal(div_replica_type(rep[0], id), div_replica_type(rep[1], id),
				    sizeof(struct div_type_counts));
	for (int k = 0; k < 2; k++) {
		div_replica_free(rep[k]);
		div_types_free(t[k]);
	}
	div_rules_free(r);
}

static void idle_connections_rest_and_count_the_same(void **state)
{
	static const char *const rq[] = {"*1\r\n$4\r\nPING\r\n", "GET k\r\n",
					 "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"};
	static const char *const ra[] = {"+PONG\r\n", "$5\r\nvalue\r\n", "*2\r\n:1\r\n+x\r\n"};
	static const char *const hq[] = {"GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
					 "HEAD /b HTTP/1.1\r\n\r\n", "GET /c/12 HTTP/1.1\r\n\r\n"};
	static const char *const ha[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
		"HTTP/1.1 404 No\r\nContent-Length: 60\r\n\r\n"
		"012345678901234567890123456789012345678901234567890123456789"};

	(void)state;
	resting_twin(DIV_PROTO_RESP, rq, ra, 3);
	resting_twin(DIV_PROTO_HTTP, hq, ha, 3);
	resting_twin(DIV_PROTO_RAW, rq, ra, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lockstep_identical_replica_matches),
		cmocka_unit_test(late_pipelined_bytewise_replica_matches),
		cmocka_unit_test(same_length_different_answer_diverges_once),
		cmocka_unit_test(longer_answer_stays_in_its_turn_when_replica_keeps_up),
		cmocka_unit_test(server_greeting_is_a_turn),
		cmocka_unit_test(replica_ahead_of_production_matches),
		cmocka_unit_test(missing_last_answer_diverges),
		cmocka_unit_test(dropped_replica_leaves_turns_unchecked),
		cmocka_unit_test(replica_too_far_behind_stops_comparing),
		cmocka_unit_test(large_turns_hash_the_same_streamed_or_whole),
		cmocka_unit_test(idle_connections_rest_and_count_the_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
