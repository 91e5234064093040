/*
 * test_capture.c - TCP reassembly of captured conversations: a replica gets
 * each client byte once and in order whatever the capture shows
 * (retransmissions, overlaps, reordering), a connection with missing bytes
 * is reset on the replica side and counted, and a connection whose SYN was
 * not seen is not mirrored. Packets are built here (DLT_RAW, IPv4) and fed
 * to the capture; the replica is a socket of this test behind a real proxy.
 * With a recording sink (as the upstream recorder), a connection older than
 * the capture is followed from its next request, and another process's
 * connections are not followed at all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "capture/capture.h"
#include "common/netaddr.h"
#include "proxy/proxy.h"

#define SPORT 6379
#define CPORT 40000

struct rig {
	struct event_base *base;
	struct proxy *px;
	struct proxy_observer sink;
	struct capture *cap;
	int lfd;     /* the replica's listener */
	int replica; /* its accepted connection */
};

static void rig_up(struct rig *r)
{
	struct proxy_config pc;
	struct net_endpoint ep;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct cap_config cc = {.addr = "10.0.0.2", .port = SPORT};
	char err[256], text[64];
	unsigned id;

	memset(r, 0, sizeof(*r));
	r->replica = -1;
	r->base = event_base_new();
	assert_non_null(r->base);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(r->lfd, 8), 0);
	getsockname(r->lfd, (struct sockaddr *)&sin, &len);
	proxy_config_defaults(&pc);
	pc.replica_flush_ns = 0;
	assert_int_equal(netaddr_parse("127.0.0.1:1", &pc.listen, err, sizeof(err)), 0);
	((struct sockaddr_in *)&pc.listen.ss)->sin_port = 0;
	assert_int_equal(netaddr_parse("127.0.0.1:1", &pc.backend, err, sizeof(err)), 0);
	assert_int_equal(proxy_new(r->base, &pc, &r->px, err, sizeof(err)), 0);
	snprintf(text, sizeof(text), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(netaddr_parse(text, &ep, err, sizeof(err)), 0);
	assert_int_equal(proxy_replica_add(r->px, &ep, "r", NULL, &id, err, sizeof(err)), 0);
	proxy_mirror_observer(r->px, &r->sink);
	assert_int_equal(cap_new_fed(r->base, &r->sink, &cc, &r->cap), 0);
}

static void rig_down(struct rig *r)
{
	cap_free(r->cap);
	proxy_free(r->px);
	event_base_free(r->base);
	if (r->replica >= 0)
		close(r->replica);
	close(r->lfd);
}

/* One IPv4 TCP segment. c2s: client 10.0.0.1:CPORT -> server 10.0.0.2:SPORT. */
static void seg(struct rig *r, int c2s, unsigned flags, uint32_t seq, uint32_t ack,
		const char *data)
{
	unsigned char p[1500];
	size_t n = data ? strlen(data) : 0, tot = 40 + n;
	uint16_t cp = CPORT, sp = SPORT;

	memset(p, 0, 40);
	p[0] = 0x45;
	p[2] = (unsigned char)(tot >> 8);
	p[3] = (unsigned char)tot;
	p[8] = 64;
	p[9] = 6;
	p[12] = 10, p[15] = c2s ? 1 : 2;
	p[16] = 10, p[19] = c2s ? 2 : 1;
	p[20] = (unsigned char)((c2s ? cp : sp) >> 8), p[21] = (unsigned char)(c2s ? cp : sp);
	p[22] = (unsigned char)((c2s ? sp : cp) >> 8), p[23] = (unsigned char)(c2s ? sp : cp);
	for (int i = 0; i < 4; i++) {
		p[24 + i] = (unsigned char)(seq >> (24 - 8 * i));
		p[28 + i] = (unsigned char)(ack >> (24 - 8 * i));
	}
	p[32] = 5 << 4;
	p[33] = (unsigned char)flags;
	if (n)
		memcpy(p + 40, data, n);
	cap_feed(r->cap, DLT_RAW, p, tot);
	event_base_loop(r->base, EVLOOP_NONBLOCK);
}

enum { FIN = 1, SYN = 2, RST = 4, ACK = 16 };

/*
 * Run the loop and read what the replica got until it ends or wait_ms
 * pass. Returns the bytes read; *end: 0 open, 1 EOF, -1 reset.
 */
static size_t replica_read(struct rig *r, char *buf, size_t cap, int wait_ms, int *end)
{
	size_t got = 0;

	*end = 0;
	for (int t = 0; t < wait_ms; t += 5) {
		struct pollfd pfd;
		ssize_t n;

		event_base_loop(r->base, EVLOOP_NONBLOCK);
		if (r->replica < 0) {
			r->replica = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK);
			if (r->replica < 0) {
				usleep(5000);
				continue;
			}
		}
		pfd.fd = r->replica;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 5) != 1)
			continue;
		n = recv(r->replica, buf + got, cap - got - 1, 0);
		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0) {
			*end = 1;
			break;
		} else if (errno == ECONNRESET) {
			*end = -1;
			break;
		}
	}
	buf[got] = '\0';
	return got;
}

static void reordered_and_repeated_bytes_arrive_once_in_order(void **state)
{
	struct rig r;
	struct cap_stats st;
	char got[256];
	int end;

	(void)state;
	rig_up(&r);
	seg(&r, 1, SYN, 1000, 0, NULL);
	seg(&r, 1, SYN, 1000, 0, NULL); /* SYN retransmitted */
	seg(&r, 0, SYN | ACK, 5000, 1001, NULL);
	seg(&r, 1, ACK, 1001, 5001, "hello ");
	seg(&r, 1, ACK, 1001, 5001, "hello "); /* retransmission */
	seg(&r, 1, ACK, 1013, 5001, "world!"); /* before the hole is filled */
	seg(&r, 1, ACK, 1007, 5001, "the");    /* fills part of the hole */
	seg(&r, 1, ACK, 1008, 5001, "here ");  /* overlaps what came, fills the rest */
	seg(&r, 0, ACK, 5001, 1019, "+OK\r\n");
	seg(&r, 1, FIN | ACK, 1019, 5006, NULL);
	replica_read(&r, got, sizeof(got), 3000, &end);
	assert_string_equal(got, "hello there world!");
	assert_int_equal(end, 1);
	cap_get_stats(r.cap, &st);
	assert_int_equal(st.conns, 1);
	assert_int_equal(st.conns_gap, 0);
	assert_int_equal(st.client_bytes, 18);
	assert_int_equal(st.server_bytes, 5);
	assert_int_equal(st.retransmitted, 6 + 2); /* "hello ", and "he" of "here " */
	assert_int_equal(st.out_of_order, 1);
	rig_down(&r);
}

static void bytes_acknowledged_but_never_seen_reset_the_replica(void **state)
{
	struct rig r;
	struct cap_stats st;
	char got[256];
	int end;

	(void)state;
	rig_up(&r);
	seg(&r, 1, SYN, 1000, 0, NULL);
	seg(&r, 0, SYN | ACK, 5000, 1001, NULL);
	seg(&r, 1, ACK, 1001, 5001, "abc");
	replica_read(&r, got, sizeof(got), 300, &end);
	assert_string_equal(got, "abc");
	/* the server acknowledges 1004..1010, which the capture lost */
	seg(&r, 0, ACK, 5001, 1010, "+OK\r\n");
	seg(&r, 1, ACK, 1010, 5006, "later");
	replica_read(&r, got, sizeof(got), 3000, &end);
	assert_string_equal(got, "");
	assert_int_equal(end, -1);
	cap_get_stats(r.cap, &st);
	assert_int_equal(st.conns_gap, 1);
	assert_int_equal(st.client_bytes, 3);
	rig_down(&r);
}

static void a_full_reordering_buffer_is_a_gap(void **state)
{
	struct rig r;
	struct cap_stats st;
	struct cap_config cc = {.addr = "10.0.0.2", .port = SPORT, .reorder_max = 8};
	char got[64];
	int end;

	(void)state;
	rig_up(&r);
	cap_free(r.cap);
	assert_int_equal(cap_new_fed(r.base, &r.sink, &cc, &r.cap), 0);
	seg(&r, 1, SYN, 1000, 0, NULL);
	seg(&r, 1, ACK, 1011, 0, "0123456789"); /* a hole of 10 bytes, more than 8 held */
	replica_read(&r, got, sizeof(got), 3000, &end);
	assert_int_equal(end, -1);
	cap_get_stats(r.cap, &st);
	assert_int_equal(st.conns_gap, 1);
	assert_int_equal(st.client_bytes, 0);
	rig_down(&r);
}

static void a_connection_older_than_the_capture_is_not_mirrored(void **state)
{
	struct rig r;
	struct cap_stats st;
	char got[64];
	int end;

	(void)state;
	rig_up(&r);
	seg(&r, 1, ACK, 7000, 9000, "GET x\r\n");
	seg(&r, 1, ACK, 7007, 9000, "GET y\r\n");
	replica_read(&r, got, sizeof(got), 200, &end);
	assert_int_equal(r.replica, -1); /* the replica was never connected */
	cap_get_stats(r.cap, &st);
	assert_int_equal(st.conns, 0);
	assert_int_equal(st.conns_midstream, 1);
	rig_down(&r);
}

static void a_reset_resets_the_replica(void **state)
{
	struct rig r;
	struct cap_stats st;
	char got[64];
	int end;

	(void)state;
	rig_up(&r);
	seg(&r, 1, SYN, 1000, 0, NULL);
	seg(&r, 0, SYN | ACK, 5000, 1001, NULL);
	seg(&r, 1, ACK, 1001, 5001, "ping");
	replica_read(&r, got, sizeof(got), 300, &end);
	assert_string_equal(got, "ping");
	seg(&r, 1, RST, 1005, 0, NULL);
	replica_read(&r, got, sizeof(got), 3000, &end);
	assert_int_equal(end, -1);
	cap_get_stats(r.cap, &st);
	assert_int_equal(st.resets, 1);
	assert_int_equal(st.conns_gap, 0);
	rig_down(&r);
}

/* A recording sink, as the aggregator's recorder is one. */
struct rec {
	int opened, closed, reset;
	char c[64], s[64];
};

static void *rec_open(void *arg, uint64_t id)
{
	struct rec *k = arg;

	(void)id;
	k->opened++;
	return k;
}

static void rec_add(char *dst, const void *buf, size_t n)
{
	size_t l = strlen(dst);

	assert_true(l + n < 64);
	memcpy(dst + l, buf, n);
	dst[l + n] = 0;
}

static void rec_client(void *c, const void *buf, size_t n)
{
	rec_add(((struct rec *)c)->c, buf, n);
}

static void rec_server(void *c, const void *buf, size_t n)
{
	rec_add(((struct rec *)c)->s, buf, n);
}

static void rec_close(void *c, int reset)
{
	((struct rec *)c)->closed++;
	((struct rec *)c)->reset = reset;
}

static int whose;
static int owned(void *arg, const unsigned char cip[16], uint16_t cport)
{
	(void)arg;
	assert_int_equal(cip[15], 1); /* 10.0.0.1, the client */
	assert_int_equal(cport, CPORT);
	return whose;
}

static void a_recording_follows_an_older_connection_of_ours_only(void **state)
{
	struct rig r;
	struct rec k;
	struct proxy_observer sink = {.conn_open = rec_open,
				      .client_bytes = rec_client,
				      .server_bytes = rec_server,
				      .conn_close = rec_close,
				      .arg = &k};
	struct cap_config cc = {.addr = "10.0.0.2", .port = SPORT, .midstream = 1, .owned = owned};
	struct cap_stats st;

	(void)state;
	rig_up(&r);
	/* another process's connection: never followed */
	memset(&k, 0, sizeof(k));
	whose = CAP_NOT_OURS;
	cap_free(r.cap);
	assert_int_equal(cap_new_fed(r.base, &sink, &cc, &r.cap), 0);
	seg(&r, 1, ACK, 2000, 7000, "GET k\r\n");
	seg(&r, 0, ACK, 7000, 2007, "VAL\r\n");
	cap_get_stats(r.cap, &st);
	assert_int_equal(k.opened, 0);
	assert_int_equal(st.conns_not_ours, 1);
	assert_int_equal(st.conns, 0);

	/* ours, open before the capture: followed from the next request */
	whose = CAP_OURS;
	cap_free(r.cap);
	assert_int_equal(cap_new_fed(r.base, &sink, &cc, &r.cap), 0);
	seg(&r, 0, ACK, 6990, 1990, "stale\r\n"); /* the end of an answer: skipped */
	assert_int_equal(k.opened, 0);
	seg(&r, 1, ACK, 2000, 6997, "GET k\r\n");
	seg(&r, 0, ACK, 7000, 2007, "VAL\r\n");
	seg(&r, 1, ACK, 2007, 7005, "GET j\r\n");
	seg(&r, 0, ACK, 7005, 2014, "V2\r\n");
	seg(&r, 1, FIN | ACK, 2014, 7009, NULL);
	seg(&r, 0, FIN | ACK, 7009, 2015, NULL);
	assert_int_equal(k.opened, 1);
	assert_string_equal(k.c, "GET k\r\nGET j\r\n");
	assert_string_equal(k.s, "VAL\r\nV2\r\n");
	assert_int_equal(k.closed, 1);
	assert_int_equal(k.reset, 0);
	cap_get_stats(r.cap, &st);
	assert_int_equal(st.conns, 1);
	assert_int_equal(st.conns_midstream, 1);
	assert_int_equal(st.conns_gap, 0);
	rig_down(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reordered_and_repeated_bytes_arrive_once_in_order),
		cmocka_unit_test(bytes_acknowledged_but_never_seen_reset_the_replica),
		cmocka_unit_test(a_full_reordering_buffer_is_a_gap),
		cmocka_unit_test(a_connection_older_than_the_capture_is_not_mirrored),
		cmocka_unit_test(a_reset_resets_the_replica),
		cmocka_unit_test(a_recording_follows_an_older_connection_of_ours_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
