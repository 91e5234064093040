/*
 * test_record.c - record/: what the pcap writer writes reads back as the
 * same bytes in the same turns; files rotate and the total cap counts what it
 * leaves out; the reader reassembles out-of-order and retransmitted segments,
 * skips and counts gaps, and reads Linux cooked captures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include "record/record.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/doppel-test-record.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void ep(struct net_endpoint *e, const char *text)
{
	char err[128];

	assert_int_equal(netaddr_parse(text, e, err, sizeof(err)), 0);
}

static void written_streams_read_back_byte_for_byte(void **state)
{
	struct rec_config c;
	struct rec *r;
	struct rec_side *s;
	struct rec_flow *f;
	struct net_endpoint cli, srv;
	struct rec_capture cap;
	struct rec_stats st;
	char err[256], path[128];
	static unsigned char big[70000];

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + i / 251);
	rec_config_defaults(&c);
	c.dir = dir;
	assert_int_equal(rec_open(&c, &r, err, sizeof(err)), 0);
	s = rec_side_get(r, "production");
	ep(&cli, "127.0.0.1:40000");
	ep(&srv, "127.0.0.1:6379");
	f = rec_flow_open(s, 1, &cli, &srv);
	rec_flow_data(f, 1, "abc", 3);
	rec_flow_data(f, 0, "defg", 4);
	rec_flow_data(f, 1, big, sizeof(big));
	rec_flow_data(f, 0, "ok", 2);
	rec_flow_fin(f, 1);
	rec_flow_close(f, 0);
	/* a second connection from an IPv6 client gets a synthesised address */
	ep(&cli, "[::1]:40001");
	f = rec_flow_open(s, 2, &cli, &srv);
	rec_flow_data(f, 1, "x", 1);
	rec_flow_close(f, 1);
	rec_get_stats(r, &st);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.flows, 2);
	assert_int_equal(st.dropped_packets, 0);
	rec_close(r);

	snprintf(path, sizeof(path), "%s/production-0001.pcap", dir);
	assert_int_equal(rec_capture_read(path, 0, 0, &cap, err, sizeof(err)), 0);
	assert_int_equal(cap.nstreams, 2);
	assert_string_equal(cap.streams[0].client, "127.0.0.1:40000");
	assert_string_equal(cap.streams[0].server, "127.0.0.1:6379");
	assert_true(cap.streams[0].syn_seen);
	assert_true(cap.streams[0].client_fin);
	assert_int_equal(cap.streams[0].nsegs, 4);
	assert_int_equal(cap.streams[0].segs[0].len, 3);
	assert_memory_equal(cap.streams[0].segs[0].data, "abc", 3);
	assert_false(cap.streams[0].segs[1].from_client);
	assert_memory_equal(cap.streams[0].segs[1].data, "defg", 4);
	assert_int_equal(cap.streams[0].segs[2].len, sizeof(big));
	assert_memory_equal(cap.streams[0].segs[2].data, big, sizeof(big));
	assert_int_equal(cap.streams[0].gaps, 0);
	assert_int_equal(cap.streams[0].retransmits, 0);
	assert_int_equal(cap.streams[1].server_port, 6379);
	assert_true(cap.streams[1].reset);
	rec_capture_free(&cap);
}

static void files_rotate_and_the_cap_counts_drops(void **state)
{
	struct rec_config c;
	struct rec *r;
	struct rec_side *s;
	struct rec_flow *f;
	struct rec_stats st;
	char err[256], path[128];
	unsigned char chunk[1000] = {0};

	(void)state;
	rec_config_defaults(&c);
	c.dir = dir;
	c.file_size = 4096;
	c.total = 20000;
	assert_int_equal(rec_open(&c, &r, err, sizeof(err)), 0);
	s = rec_side_get(r, "replica-a");
	f = rec_flow_open(s, 9, NULL, NULL);
	for (int i = 0; i < 40; i++)
		rec_flow_data(f, i % 2, chunk, sizeof(chunk));
	rec_flow_close(f, 0);
	rec_get_stats(r, &st);
	assert_true(st.files >= 4);
	assert_true(st.bytes <= c.total);
	assert_true(st.dropped_packets > 0);
	assert_int_equal(st.dropped_bytes % 1000, 0);
	assert_true(st.dropped_bytes >= 20000);
	rec_close(r);
	snprintf(path, sizeof(path), "%s/replica-a-0002.pcap", dir);
	assert_int_equal(access(path, R_OK), 0);
}

/* A hand-made Linux cooked capture with reordering, a retransmission and a gap. */
static void write_sll_packet(pcap_dumper_t *d, int from_client, uint32_t seq, unsigned flags,
			     const char *payload, unsigned sec)
{
	unsigned char p[200] = {0};
	size_t n = payload ? strlen(payload) : 0, len = 16 + 20 + 20 + n;
	unsigned char *ip = p + 16, *tcp = ip + 20;
	struct pcap_pkthdr h = {{sec, 0}, (bpf_u_int32)len, (bpf_u_int32)len};

	p[14] = 0x08; /* IPv4 */
	ip[0] = 0x45;
	ip[2] = (unsigned char)((40 + n) >> 8);
	ip[3] = (unsigned char)(40 + n);
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, from_client ? "\x0a\x00\x00\x01" : "\x0a\x00\x00\x02", 4);
	memcpy(ip + 16, from_client ? "\x0a\x00\x00\x02" : "\x0a\x00\x00\x01", 4);
	tcp[0] = from_client ? 0xc3 : 0x1f; /* 50000 or 8080 */
	tcp[1] = from_client ? 0x50 : 0x90;
	tcp[2] = from_client ? 0x1f : 0xc3;
	tcp[3] = from_client ? 0x90 : 0x50;
	tcp[4] = (unsigned char)(seq >> 24);
	tcp[5] = (unsigned char)(seq >> 16);
	tcp[6] = (unsigned char)(seq >> 8);
	tcp[7] = (unsigned char)seq;
	tcp[12] = 5 << 4;
	tcp[13] = (unsigned char)flags;
	memcpy(tcp + 20, payload ? payload : "", n);
	pcap_dump((u_char *)d, &h, p);
}

static void reassembly_takes_bytes_once_in_order(void **state)
{
	char path[128], err[256];
	pcap_t *dead = pcap_open_dead(DLT_LINUX_SLL, 65535);
	pcap_dumper_t *d;
	struct rec_capture cap;
	const uint32_t c0 = 0xfffffff0u; /* client ISN: sequence numbers wrap */

	(void)state;
	snprintf(path, sizeof(path), "%s/sll.pcap", dir);
	d = pcap_dump_open(dead, path);
	assert_non_null(d);
	/* no SYN seen: the capture starts mid-connection; the server port is lower */
	write_sll_packet(d, 1, c0, 0x18, "hello", 1);
	write_sll_packet(d, 1, c0 + 10, 0x18, "world", 2); /* ahead of " big " */
	write_sll_packet(d, 1, c0, 0x18, "hello", 3);	   /* retransmitted */
	write_sll_packet(d, 1, c0 + 5, 0x18, " big ", 4);  /* fills the hole */
	write_sll_packet(d, 0, 7000, 0x18, "ANSWER", 5);
	write_sll_packet(d, 1, c0 + 15, 0x18, "tail", 6);
	write_sll_packet(d, 1, c0 + 25, 0x18, "after-gap", 7); /* 6 bytes never captured */
	write_sll_packet(d, 1, c0 + 34, 0x11, NULL, 8);	       /* FIN */
	pcap_dump_close(d);
	pcap_close(dead);

	assert_int_equal(rec_capture_read(path, 0, 0, &cap, err, sizeof(err)), 0);
	assert_int_equal(cap.nstreams, 1);
	assert_string_equal(cap.streams[0].server, "10.0.0.2:8080");
	assert_false(cap.streams[0].syn_seen);
	assert_int_equal(cap.streams[0].nsegs, 3);
	assert_int_equal(cap.streams[0].segs[0].len, 15);
	assert_memory_equal(cap.streams[0].segs[0].data, "hello big world", 15);
	assert_memory_equal(cap.streams[0].segs[1].data, "ANSWER", 6);
	assert_int_equal(cap.streams[0].segs[2].len, 13);
	assert_memory_equal(cap.streams[0].segs[2].data, "tailafter-gap", 13);
	assert_int_equal(cap.streams[0].retransmits, 5);
	assert_int_equal(cap.streams[0].gaps, 6);
	assert_true(cap.streams[0].client_fin);
	rec_capture_free(&cap);

	/* the port filter keeps only that service */
	assert_int_equal(rec_capture_read(path, 6379, 0, &cap, err, sizeof(err)), 0);
	assert_int_equal(cap.nstreams, 0);
	rec_capture_free(&cap);
	/* and the payload cap is an error, not a silent cut */
	assert_int_equal(rec_capture_read(path, 0, 10, &cap, err, sizeof(err)), -27);
	assert_non_null(strstr(err, "--max-bytes"));
}

static void unreadable_capture_says_why(void **state)
{
	struct rec_capture cap;
	char err[256] = "";

	(void)state;
	assert_true(rec_capture_read("/nonexistent.pcap", 0, 0, &cap, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "/nonexistent.pcap"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(written_streams_read_back_byte_for_byte, setup,
						teardown),
		cmocka_unit_test_setup_teardown(files_rotate_and_the_cap_counts_drops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(reassembly_takes_bytes_once_in_order, setup,
						teardown),
		cmocka_unit_test(unreadable_capture_says_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
