/*
 * test_divergence_noise.c - the engine with normalisers, request types, the
 * control replica and excerpts: what differs only in volatile headers
 * matches; with framing a longer answer stays in its turn even when the
 * replica lags; noise measured on the control cancels raw divergence of the
 * same type; an excerpt shows where and how a turn differed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "divergence/divergence.h"

static struct div_rules *make_rules(enum div_protocol p)
{
	struct div_options o;
	struct div_rules *r;
	char err[128];

	div_options_defaults(&o);
	o.protocol = p;
	assert_int_equal(div_rules_new(&o, &r, err, sizeof(err)), 0);
	return r;
}

static void s_client(struct div_conn *dc, const char *s)
{
	div_client_data(dc, s, strlen(s));
}

static void s_server(struct div_conn *dc, const char *s)
{
	div_server_bytes(dc, s, strlen(s));
}

static void s_follow(struct div_conn *dc, unsigned i, const char *s, uint64_t written)
{
	div_follower_bytes(dc, i, s, strlen(s), written);
}

static char *http_answer(const char *date, const char *body)
{
	char *s = malloc(512);

	snprintf(s, 512, "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Length: %zu\r\n\r\n%s", date,
		 strlen(body), body);
	return s;
}

static void http_date_difference_is_not_divergence(void **state)
{
	struct div_rules *r = make_rules(DIV_PROTO_HTTP);
	struct div_types *types = div_types_new();
	struct div_replica *rep = div_replica_new(types, DIV_CANDIDATE, NULL);
	struct div_conn *dc = div_conn_open(r, types, 1, 1);
	static const char req[] = "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
	uint64_t sent = 0;

	(void)state;
	div_follower_attach(dc, 0, rep);
	for (int i = 0; i < 5; i++) {
		char *p = http_answer("Mon, 01 Dec 2026 10:00:00 GMT", "hello");
		char *q = http_answer("Mon, 01 Dec 2026 10:00:01 GMT", "hello");

		s_client(dc, req);
		sent += strlen(req);
		s_server(dc, p);
		s_follow(dc, 0, q, sent);
		free(p);
		free(q);
	}
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	div_conn_free(dc);
	assert_int_equal(div_replica_counts(rep)->turns_compared, 5);
	assert_int_equal(div_replica_counts(rep)->turns_diverged, 0);
	assert_int_equal(div_replica_type(rep, 0)->turns, 5);
	assert_string_equal(div_type_name(types, 0), "GET /a.txt");
	div_replica_free(rep);
	div_types_free(types);
	div_rules_free(r);
}

/*
 * The replica is given every request before it answers (it lags), and its
 * second answer is longer: with RESP framing only that turn diverges.
 */
static void framed_longer_answer_stays_in_its_turn_when_lagging(void **state)
{
	static const char *const reqs[] = {"*2\r\n$3\r\nGET\r\n$1\r\na\r\n",
					   "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n",
					   "*2\r\n$3\r\nGET\r\n$1\r\nc\r\n"};
	static const char *const prod[] = {"$1\r\n1\r\n", "$1\r\n2\r\n", "$1\r\n3\r\n"};
	static const char *const rep_ans[] = {"$1\r\n1\r\n", "$5\r\n22222\r\n", "$1\r\n3\r\n"};
	struct div_rules *r = make_rules(DIV_PROTO_RESP);
	struct div_types *types = div_types_new();
	struct div_replica *rep = div_replica_new(types, DIV_CANDIDATE, NULL);
	struct div_conn *dc = div_conn_open(r, types, 7, 1);
	uint64_t sent = 0;
	char all[256] = "";

	(void)state;
	div_follower_attach(dc, 0, rep);
	for (int i = 0; i < 3; i++) {
		s_client(dc, reqs[i]);
		sent += strlen(reqs[i]);
		s_server(dc, prod[i]);
		strcat(all, rep_ans[i]);
	}
	/* all answers at once, byte by byte, after every request was given */
	for (size_t i = 0; i < strlen(all); i++)
		div_follower_bytes(dc, 0, all + i, 1, sent);
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	div_conn_free(dc);
	assert_int_equal(div_replica_counts(rep)->turns_compared, 3);
	assert_int_equal(div_replica_counts(rep)->turns_diverged, 1);
	div_replica_free(rep);
	div_types_free(types);
	div_rules_free(r);
}

struct exc_list {
	struct div_excerpt e[DIV_EXCERPTS_MAX];
	unsigned n;
};

static void collect(void *arg, const struct div_excerpt *e)
{
	struct exc_list *l = arg;

	l->e[l->n++] = *e;
}

/* One HTTP turn on a connection of its own, production's and the replica's answers given. */
static void one_turn(struct div_rules *r, struct div_types *types, struct div_replica *rep,
		     uint64_t id, const char *req, const char *prod_body, const char *rep_body)
{
	struct div_conn *dc = div_conn_open(r, types, id, 1);
	char *p = http_answer("x", prod_body), *q = http_answer("x", rep_body);

	div_follower_attach(dc, 0, rep);
	s_client(dc, req);
	s_server(dc, p);
	s_follow(dc, 0, q, strlen(req));
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	div_conn_free(dc);
	free(p);
	free(q);
}

static void excerpt_shows_the_first_difference(void **state)
{
	struct div_rules *r = make_rules(DIV_PROTO_HTTP);
	struct div_types *types = div_types_new();
	struct div_replica *rep = div_replica_new(types, DIV_CANDIDATE, NULL);
	static const char req[] = "GET /files/a.txt HTTP/1.1\r\n\r\n";
	struct exc_list l = {.n = 0};
	struct sbuf sb;
	struct div_rule rule;
	const char *hdr = "HTTP/1.1 200 OK\r\ndate: <masked>\r\ncontent-length: 23\r\n\r\n";

	(void)state;
	one_turn(r, types, rep, 42, req, "hello, production world", "hello, candidate world!");
	div_replica_excerpts(rep, collect, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.e[0].conn_id, 42);
	assert_int_equal(l.e[0].turn, 0);
	assert_int_equal(l.e[0].offset, (int64_t)(strlen(hdr) + 7));
	assert_int_equal(l.e[0].before, DIV_EXCERPT_BEFORE);
	assert_memory_equal(l.e[0].prod + l.e[0].before, "production world", 16);
	assert_memory_equal(l.e[0].rep + l.e[0].before, "candidate world!", 16);
	assert_memory_equal(l.e[0].prod, l.e[0].rep, l.e[0].before);
	assert_memory_equal(l.e[0].req, "GET /files/a.txt HTTP/1.1", 25);
	assert_int_equal(l.e[0].control, -1);

	div_rule_defaults(&rule);
	sbuf_init(&sb);
	div_replica_report_text(rep, &rule, &sb);
	sbuf_append(&sb, "", 1);
	assert_non_null(strstr(sb.buf, "GET /files/a.txt"));
	assert_non_null(strstr(sb.buf, "hello, production world"));
	assert_non_null(strstr(sb.buf, "hello, candidate world!"));
	assert_non_null(strstr(sb.buf, "DIVERGED"));
	sbuf_reset(&sb);
	div_replica_report_json(rep, &rule, &sb);
	sbuf_append(&sb, "", 1);
	assert_non_null(strstr(sb.buf, "\"after\":\"candidate world!\""));
	assert_non_null(strstr(sb.buf, "\"turns_net\":1"));
	sbuf_free(&sb);
	div_replica_free(rep);
	div_types_free(types);
	div_rules_free(r);
}

/* The replica answered before production did: the difference is still located. */
static void replica_ahead_of_production_still_locates_difference(void **state)
{
	struct div_rules *r = make_rules(DIV_PROTO_RESP);
	struct div_types *types = div_types_new();
	struct div_replica *rep = div_replica_new(types, DIV_CANDIDATE, NULL);
	struct div_conn *dc = div_conn_open(r, types, 3, 1);
	static const char req[] = "*2\r\n$3\r\nget\r\n$7\r\nspecial\r\n";
	struct exc_list l = {.n = 0};

	(void)state;
	div_follower_attach(dc, 0, rep);
	s_client(dc, req);
	s_follow(dc, 0, "$13\r\nreplica", strlen(req));
	s_server(dc, "$10\r\nprod-");
	s_follow(dc, 0, "-value\r\n", strlen(req));
	s_server(dc, "value\r\n");
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	div_conn_free(dc);
	div_replica_excerpts(rep, collect, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.e[0].offset, 2);
	assert_memory_equal(l.e[0].prod + l.e[0].before, "0\r\nprod-value\r\n", 15);
	assert_memory_equal(l.e[0].rep + l.e[0].before, "3\r\nreplica-value\r\n", 18);
	div_replica_free(rep);
	div_types_free(types);
	div_rules_free(r);
}

static void excerpts_are_bounded_per_type(void **state)
{
	struct div_rules *r = make_rules(DIV_PROTO_RESP);
	struct div_types *types = div_types_new();
	struct div_replica *rep = div_replica_new(types, DIV_CANDIDATE, NULL);
	struct div_conn *dc = div_conn_open(r, types, 1, 1);
	static const char req[] = "*1\r\n$4\r\nTIME\r\n";
	struct exc_list l = {.n = 0};
	uint64_t sent = 0;

	(void)state;
	div_follower_attach(dc, 0, rep);
	for (int i = 0; i < 10; i++) {
		s_client(dc, req);
		sent += strlen(req);
		s_server(dc, ":1\r\n");
		s_follow(dc, 0, ":2\r\n", sent);
	}
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	div_conn_free(dc);
	div_replica_excerpts(rep, collect, &l);
	assert_int_equal(div_replica_counts(rep)->turns_diverged, 10);
	assert_int_equal(l.n, DIV_EXCERPTS_PER_TYPE);
	assert_int_equal(div_replica_excerpts_skipped(rep), 10 - DIV_EXCERPTS_PER_TYPE);
	assert_int_equal(l.e[0].offset, 1);
	div_replica_free(rep);
	div_types_free(types);
	div_rules_free(r);
}

/*
 * Candidate and control on the same connections. Type NOISY differs at
 * random on both (as a clock would); type BUG differs on the candidate only.
 */
static void control_cancels_noise_and_keeps_the_bug(void **state)
{
	struct div_rules *r = make_rules(DIV_PROTO_RESP);
	struct div_types *types = div_types_new();
	struct div_replica *cand = div_replica_new(types, DIV_CANDIDATE, NULL);
	struct div_replica *ctl = div_replica_new(types, DIV_CONTROL, NULL);
	static const char noisy[] = "*1\r\n$5\r\nNOISY\r\n", bug[] = "*1\r\n$3\r\nBUG\r\n";
	struct div_rule rule;
	unsigned seed = 7;
	uint64_t noisy_id, bug_id;
	struct exc_list l = {.n = 0};
	unsigned bug_excerpts = 0, noise_flagged = 0;

	(void)state;
	for (int c = 0; c < 20; c++) {
		struct div_conn *dc = div_conn_open(r, types, (uint64_t)c, 2);
		uint64_t sent = 0;
		char lag[64] = "";

		div_follower_attach(dc, 0, cand);
		div_follower_attach(dc, 1, ctl);
		for (int i = 0; i < 50; i++) {
			int is_bug = i % 10 == 0;
			const char *req = is_bug ? bug : noisy;
			const char *ans_c = ":1\r\n", *ans_k = ":1\r\n";

			if (!is_bug) {
				if (rand_r(&seed) % 10 == 0)
					ans_c = ":2\r\n";
				if (rand_r(&seed) % 10 == 0)
					ans_k = ":2\r\n";
			} else {
				ans_c = ":9\r\n";
			}
			s_client(dc, req);
			sent += strlen(req);
			s_server(dc, ":1\r\n");
			s_follow(dc, 0, ans_c, sent);
			/* the control lags: it answers three requests at a time */
			strcat(lag, ans_k);
			if (i % 3 == 2) {
				s_follow(dc, 1, lag, sent);
				lag[0] = 0;
			}
		}
		s_follow(dc, 1, lag, sent);
		div_server_end(dc);
		div_follower_end(dc, 0, DIV_END_EOF);
		div_follower_end(dc, 1, DIV_END_EOF);
		div_conn_free(dc);
	}
	noisy_id = div_type_intern(types, "NOISY", 5);
	bug_id = div_type_intern(types, "BUG", 3);
	div_rule_defaults(&rule);
	{
		const struct div_type_counts *n = div_replica_type(cand, (unsigned)noisy_id);
		const struct div_type_counts *b = div_replica_type(cand, (unsigned)bug_id);
		struct div_verdict vn, vb;

		assert_int_equal(n->turns, 900);
		assert_int_equal(n->paired, 900);
		assert_true(n->raw > 50);
		assert_true(n->noise > 50);
		assert_int_equal(b->paired_raw, 100);
		assert_int_equal(b->noise, 0);
		assert_int_equal(b->cross, 100);
		div_rule_apply(&rule, n, &vn);
		div_rule_apply(&rule, b, &vb);
		assert_false(vn.reported);
		assert_int_equal(vn.net, 0);
		assert_true(vb.reported);
		assert_int_equal(vb.net, 100);
		assert_int_equal(div_replica_net(cand, &rule), 100);
	}
	div_replica_excerpts(cand, collect, &l);
	for (unsigned i = 0; i < l.n; i++) {
		if (l.e[i].type == bug_id) {
			bug_excerpts++;
			assert_int_equal(l.e[i].control, 1);
		}
		if (l.e[i].type == noisy_id && l.e[i].control == 0)
			noise_flagged++;
	}
	assert_int_equal(bug_excerpts, DIV_EXCERPTS_PER_TYPE);
	div_replica_free(cand);
	div_replica_free(ctl);
	div_types_free(types);
	div_rules_free(r);
	(void)noise_flagged;
}

static void rule_needs_control_noise_to_cancel(void **state)
{
	struct div_rule rule;
	struct div_verdict v;
	struct div_type_counts c = {0};

	(void)state;
	div_rule_defaults(&rule);
	/* without a control every raw difference counts */
	c.turns = 1000;
	c.raw = 1;
	div_rule_apply(&rule, &c, &v);
	assert_true(v.reported);
	assert_int_equal(v.net, 1);
	assert_false(v.has_control);
	/* with one: equal raw and noise is noise */
	c.paired = 1000;
	c.paired_raw = 30;
	c.noise = 28;
	div_rule_apply(&rule, &c, &v);
	assert_true(v.has_control);
	assert_false(v.reported);
	/* a clear excess is reported */
	c.paired_raw = 60;
	c.noise = 20;
	div_rule_apply(&rule, &c, &v);
	assert_true(v.reported);
	assert_int_equal(v.net, 40);
	/* three differences and no noise are not enough evidence at z = 2 */
	c.paired_raw = 3;
	c.noise = 0;
	div_rule_apply(&rule, &c, &v);
	assert_false(v.reported);
	c.paired_raw = 4;
	div_rule_apply(&rule, &c, &v);
	assert_true(v.reported);
}

static void auto_protocol_follows_the_client(void **state)
{
	struct div_options o;
	struct div_rules *r;
	struct div_types *types = div_types_new();
	struct div_replica *rep = div_replica_new(types, DIV_CANDIDATE, NULL);
	struct div_conn *dc;
	char err[64];
	static const char req[] = "GET / HTTP/1.1\r\n\r\n";
	char *p = http_answer("a", "x"), *q = http_answer("bbbb", "x");

	(void)state;
	div_options_defaults(&o);
	o.protocol = DIV_PROTO_AUTO;
	assert_int_equal(div_rules_new(&o, &r, err, sizeof(err)), 0);
	dc = div_conn_open(r, types, 1, 1);
	div_follower_attach(dc, 0, rep);
	s_client(dc, req);
	assert_int_equal(div_conn_protocol(dc), DIV_PROTO_HTTP);
	s_server(dc, p);
	s_follow(dc, 0, q, strlen(req));
	div_server_end(dc);
	div_follower_end(dc, 0, DIV_END_EOF);
	div_conn_free(dc);
	assert_int_equal(div_replica_counts(rep)->turns_diverged, 0);
	free(p);
	free(q);
	div_replica_free(rep);
	div_types_free(types);
	div_rules_free(r);
}

/*
 * Two threads see the same replica, each with its own type table (so a type
 * has another id on each): the merge adds rows by type name, the counts and
 * the excerpts.
 */
static void merge_adds_rows_by_name_counts_and_excerpts(void **state)
{
	struct div_rules *r = make_rules(DIV_PROTO_HTTP);
	struct div_types *ta = div_types_new(), *tb = div_types_new(), *tm = div_types_new();
	struct div_replica *a = div_replica_new(ta, DIV_CANDIDATE, NULL);
	struct div_replica *b = div_replica_new(tb, DIV_CANDIDATE, NULL);
	struct div_replica *m = div_replica_new(tm, DIV_CANDIDATE, NULL);
	static const char get[] = "GET /a HTTP/1.1\r\n\r\n", post[] = "POST /b HTTP/1.1\r\n\r\n";
	struct exc_list l = {.n = 0};
	const char *get_name, *post_name;
	unsigned gid, pid;

	(void)state;
	one_turn(r, ta, a, 1, get, "one", "two"); /* a: GET first (id 0), diverged */
	one_turn(r, ta, a, 3, post, "same", "same");
	one_turn(r, tb, b, 2, post, "same", "same"); /* b: POST first (id 0) */
	one_turn(r, tb, b, 4, post, "same", "same");
	one_turn(r, tb, b, 6, get, "one", "three"); /* diverged */
	get_name = div_type_name(ta, 0);
	post_name = div_type_name(tb, 0);
	assert_string_equal(get_name, div_type_name(tb, 1));
	assert_string_equal(post_name, div_type_name(ta, 1));

	div_replica_merge(m, a);
	div_replica_merge(m, b);
	assert_int_equal(div_replica_counts(m)->turns_compared, 5);
	assert_int_equal(div_replica_counts(m)->turns_diverged, 2);
	assert_int_equal(div_replica_counts(m)->conns_diverged, 2);
	gid = div_type_intern(tm, get_name, strlen(get_name));
	pid = div_type_intern(tm, post_name, strlen(post_name));
	assert_int_equal(div_replica_type(m, gid)->turns, 2);
	assert_int_equal(div_replica_type(m, gid)->raw, 2);
	assert_int_equal(div_replica_type(m, pid)->turns, 3);
	assert_int_equal(div_replica_type(m, pid)->raw, 0);
	div_replica_excerpts(m, collect, &l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.e[0].conn_id, 1);
	assert_int_equal(l.e[1].conn_id, 6);
	assert_int_equal(l.e[0].type, gid);
	assert_int_equal(l.e[1].type, gid);
	assert_int_equal(l.e[0].seq, 1);
	assert_int_equal(l.e[1].seq, 2);
	div_replica_free(a);
	div_replica_free(b);
	div_replica_free(m);
	div_types_free(ta);
	div_types_free(tb);
	div_types_free(tm);
	div_rules_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(http_date_difference_is_not_divergence),
		cmocka_unit_test(framed_longer_answer_stays_in_its_turn_when_lagging),
		cmocka_unit_test(excerpt_shows_the_first_difference),
		cmocka_unit_test(replica_ahead_of_production_still_locates_difference),
		cmocka_unit_test(excerpts_are_bounded_per_type),
		cmocka_unit_test(control_cancels_noise_and_keeps_the_bug),
		cmocka_unit_test(rule_needs_control_noise_to_cancel),
		cmocka_unit_test(auto_protocol_follows_the_client),
		cmocka_unit_test(merge_adds_rows_by_name_counts_and_excerpts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
