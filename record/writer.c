/*
 * writer.c - pcap files from the bytes doppel saw: synthesised Ethernet,
 * IPv4 and TCP headers (checksums included) around each piece of payload,
 * sequence and acknowledgement numbers that follow the bytes, a handshake
 * and FINs, written with libpcap's dump API. Files rotate by size; over the
 * total cap packets are left out and counted.
 */
#define LOG_PREFIX "record: "
#include "record/record.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ETH_LEN 14
#define IP_LEN 20
#define TCP_LEN 20
#define HDR_LEN (ETH_LEN + IP_LEN + TCP_LEN)
#define MAX_PAYLOAD 32768
#define SNAPLEN (HDR_LEN + MAX_PAYLOAD)

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

struct rec_flow {
	struct rec_side *side;
	struct rec_flow *prev, *next;
	uint32_t cip, sip; /* network order */
	uint16_t cport, sport;
	uint32_t cseq, sseq; /* next sequence number of each direction */
	uint16_t ip_id;
	int cfin, sfin;
};

struct rec_side {
	struct rec *r;
	char name[64];
	pcap_dumper_t *d;
	unsigned fileno;
	uint64_t file_bytes;
	struct rec_flow *flows;
	struct rec_side *next;
};

struct rec {
	struct rec_config cfg;
	char dir[4096];
	pcap_t *dead;
	struct rec_side *sides;
	struct rec_stats st;
	unsigned char pkt[SNAPLEN];
	int warned_full;
};

void rec_config_defaults(struct rec_config *c)
{
	memset(c, 0, sizeof(*c));
	c->file_size = 64ull << 20;
	c->total = 1ull << 30;
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] == '/' || buf[i] == 0) {
			char c = buf[i];

			buf[i] = 0;
			if (mkdir(buf, 0750) < 0 && errno != EEXIST)
				return -errno;
			buf[i] = c;
		}
	}
	return 0;
}

int rec_open(const struct rec_config *c, struct rec **out, char *err, size_t errlen)
{
	struct rec *r;
	int rc;

	*out = NULL;
	if (!c->dir || !*c->dir) {
		snprintf(err, errlen, "no directory to record into");
		return -EINVAL;
	}
	if (strlen(c->dir) >= sizeof(r->dir) - 80) {
		snprintf(err, errlen, "record directory name too long");
		return -ENAMETOOLONG;
	}
	rc = mkdir_p(c->dir);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create %s: %s", c->dir, strerror(-rc));
		return rc;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *c;
	if (!r->cfg.file_size)
		r->cfg.file_size = 64ull << 20;
	if (!r->cfg.total)
		r->cfg.total = 1ull << 30;
	snprintf(r->dir, sizeof(r->dir), "%s", c->dir);
	r->cfg.dir = r->dir;
	r->dead = pcap_open_dead(DLT_EN10MB, SNAPLEN);
	if (!r->dead) {
		free(r);
		snprintf(err, errlen, "libpcap: pcap_open_dead failed");
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void rec_get_stats(const struct rec *r, struct rec_stats *out)
{
	*out = r->st;
}

const char *rec_dir(const struct rec *r)
{
	return r->dir;
}

static void side_close_file(struct rec_side *s)
{
	if (!s->d)
		return;
	pcap_dump_close(s->d);
	s->d = NULL;
}

void rec_close(struct rec *r)
{
	if (!r)
		return;
	while (r->sides) {
		struct rec_side *s = r->sides;

		while (s->flows)
			rec_flow_close(s->flows, 0);
		side_close_file(s);
		r->sides = s->next;
		free(s);
	}
	pcap_close(r->dead);
	free(r);
}

struct rec_side *rec_side_get(struct rec *r, const char *name)
{
	struct rec_side *s;

	for (s = r->sides; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->r = r;
	snprintf(s->name, sizeof(s->name), "%s", name);
	for (char *p = s->name; *p; p++)
		if (*p == '/' || *p == ' ')
			*p = '_';
	s->next = r->sides;
	r->sides = s;
	return s;
}

/* Opens the side's next file when there is none or the current one is full. */
static int side_file(struct rec_side *s, size_t need)
{
	struct rec *r = s->r;
	char path[4200];

	if (s->d && s->file_bytes + need <= r->cfg.file_size)
		return 0;
	side_close_file(s);
	snprintf(path, sizeof(path), "%s/%s-%04u.pcap", r->dir, s->name, ++s->fileno);
	s->d = pcap_dump_open(r->dead, path);
	if (!s->d) {
		pr_err("cannot write %s: %s", path, pcap_geterr(r->dead));
		return -EIO;
	}
	s->file_bytes = 24; /* the file header */
	r->st.files++;
	r->st.bytes += 24;
	pr_info("recording side=%s file=%s", s->name, path);
	return 0;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < n)
		sum += (uint32_t)(p[i] << 8);
	return sum;
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* One packet of flow f in the given direction. */
static void write_packet(struct rec_flow *f, int from_client, unsigned flags,
			 const unsigned char *payload, size_t n)
{
	struct rec_side *s = f->side;
	struct rec *r = s->r;
	unsigned char *p = r->pkt, *ip = p + ETH_LEN, *tcp = ip + IP_LEN;
	size_t len = HDR_LEN + n;
	struct pcap_pkthdr h;
	struct timespec ts;
	uint32_t sum;

	/* room for the packet, its record header, and a new file's header */
	int full = r->st.bytes + len + 16 + 24 > r->cfg.total;

	if (full || side_file(s, len + 16) < 0) {
		if (!r->warned_full && full) {
			pr_warn("recording stopped: total cap reached dir=%s cap=%llu", r->dir,
				(unsigned long long)r->cfg.total);
			r->warned_full = 1;
		}
		r->st.dropped_packets++;
		r->st.dropped_bytes += n;
		return;
	}
	/* Ethernet: locally administered addresses, one per direction */
	memcpy(p, from_client ? "\x02\x00\x00\x00\x00\x02" : "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(p + 6, from_client ? "\x02\x00\x00\x00\x00\x01" : "\x02\x00\x00\x00\x00\x02", 6);
	put16(p + 12, 0x0800);
	/* IPv4 */
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(IP_LEN + TCP_LEN + n));
	put16(ip + 4, f->ip_id++);
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = 6;
	put16(ip + 10, 0);
	memcpy(ip + 12, from_client ? &f->cip : &f->sip, 4);
	memcpy(ip + 16, from_client ? &f->sip : &f->cip, 4);
	put16(ip + 10, csum_fold(csum_add(0, ip, IP_LEN)));
	/* TCP */
	put16(tcp, from_client ? f->cport : f->sport);
	put16(tcp + 2, from_client ? f->sport : f->cport);
	put32(tcp + 4, from_client ? f->cseq : f->sseq);
	put32(tcp + 8, (flags & TH_ACK) ? (from_client ? f->sseq : f->cseq) : 0);
	tcp[12] = (TCP_LEN / 4) << 4;
	tcp[13] = (unsigned char)flags;
	put16(tcp + 14, 65535);
	put16(tcp + 16, 0);
	put16(tcp + 18, 0);
	if (n)
		memcpy(tcp + TCP_LEN, payload, n);
	/* pseudo-header: addresses, protocol, TCP length */
	sum = csum_add(0, ip + 12, 8);
	sum += 6 + (uint32_t)(TCP_LEN + n);
	sum = csum_add(sum, tcp, TCP_LEN + n);
	put16(tcp + 16, csum_fold(sum));

	clock_gettime(CLOCK_REALTIME, &ts);
	h.ts.tv_sec = ts.tv_sec;
	h.ts.tv_usec = ts.tv_nsec / 1000;
	h.caplen = h.len = (bpf_u_int32)len;
	pcap_dump((u_char *)s->d, &h, p);
	s->file_bytes += len + 16;
	r->st.bytes += len + 16;
	r->st.packets++;
}

static uint32_t endpoint_ip(const struct net_endpoint *ep, uint64_t conn_id, int client,
			    uint16_t *port)
{
	if (ep && ep->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ep->ss;

		*port = ntohs(sin->sin_port);
		return sin->sin_addr.s_addr;
	}
	if (ep && ep->ss.ss_family == AF_INET6)
		*port = ntohs(((const struct sockaddr_in6 *)&ep->ss)->sin6_port);
	else
		*port = client ? (uint16_t)(1024 + conn_id % 64000) : 1;
	/* 10.C.x.y: C = 1 for clients, 2 for servers */
	return htonl((10u << 24) | ((client ? 1u : 2u) << 16) | (uint32_t)(conn_id % 65534 + 1));
}

struct rec_flow *rec_flow_open(struct rec_side *s, uint64_t conn_id,
			       const struct net_endpoint *client, const struct net_endpoint *server)
{
	struct rec_flow *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->side = s;
	f->cip = endpoint_ip(client, conn_id, 1, &f->cport);
	f->sip = endpoint_ip(server, conn_id, 0, &f->sport);
	if (f->cip == f->sip && f->cport == f->sport)
		f->cport++;
	/* initial sequence numbers, distinct per flow */
	f->cseq = (uint32_t)(conn_id * 2654435761u + 1000);
	f->sseq = (uint32_t)(conn_id * 40503u + 5000000);
	f->next = s->flows;
	if (s->flows)
		s->flows->prev = f;
	s->flows = f;
	s->r->st.flows++;
	write_packet(f, 1, TH_SYN, NULL, 0);
	f->cseq++;
	write_packet(f, 0, TH_SYN | TH_ACK, NULL, 0);
	f->sseq++;
	write_packet(f, 1, TH_ACK, NULL, 0);
	return f;
}

void rec_flow_data(struct rec_flow *f, int from_client, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	if (!f)
		return;
	while (n) {
		size_t c = n < MAX_PAYLOAD ? n : MAX_PAYLOAD;

		write_packet(f, from_client, TH_ACK | TH_PSH, p, c);
		if (from_client)
			f->cseq += (uint32_t)c;
		else
			f->sseq += (uint32_t)c;
		p += c;
		n -= c;
	}
}

void rec_flow_fin(struct rec_flow *f, int from_client)
{
	if (!f || (from_client ? f->cfin : f->sfin))
		return;
	write_packet(f, from_client, TH_FIN | TH_ACK, NULL, 0);
	if (from_client) {
		f->cseq++;
		f->cfin = 1;
	} else {
		f->sseq++;
		f->sfin = 1;
	}
}

void rec_flow_close(struct rec_flow *f, int reset)
{
	struct rec_side *s;

	if (!f)
		return;
	s = f->side;
	if (reset && !(f->cfin && f->sfin)) {
		write_packet(f, 1, TH_RST | TH_ACK, NULL, 0);
	} else {
		rec_flow_fin(f, 1);
		rec_flow_fin(f, 0);
		write_packet(f, 1, TH_ACK, NULL, 0);
	}
	if (s->d)
		pcap_dump_flush(s->d);
	if (f->prev)
		f->prev->next = f->next;
	else
		s->flows = f->next;
	if (f->next)
		f->next->prev = f->prev;
	free(f);
}
