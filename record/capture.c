/*
 * capture.c - TCP streams out of a capture file (pcap or pcapng, read by
 * libpcap): Ethernet (with VLAN tags), Linux cooked (v1, v2), raw IP and
 * loopback link types; IPv4 and IPv6. Each direction is reassembled by
 * sequence number: retransmitted bytes are taken once, out-of-order
 * segments wait (up to 1 MiB per direction) for the gap to fill, and a gap
 * that never fills is skipped and counted. A port reused after a finished
 * connection starts a new stream.
 */
#include "record/record.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OOO_MAX (1u << 20)

struct ooo {
	uint32_t seq, len;
	uint64_t ts;
	struct ooo *next;
	unsigned char data[];
};

struct dir {
	int init, fin;
	uint32_t next; /* next sequence number expected */
	struct ooo *q; /* out of order, by sequence */
	uint64_t qbytes;
};

struct flow {
	int family;
	unsigned char a[16], b[16]; /* a: the client */
	uint16_t pa, pb;
	int stream;	 /* index in the capture */
	struct dir d[2]; /* 0: client -> server, 1: server -> client */
	int used;
};

struct reader {
	struct rec_capture *cap;
	uint16_t port;
	uint64_t max_bytes;
	struct flow *flows;
	unsigned nflows, capflows;
	int over;
};

static uint64_t ts_ns(const struct pcap_pkthdr *h, int nano)
{
	return (uint64_t)h->ts.tv_sec * 1000000000ull +
	       (uint64_t)h->ts.tv_usec * (nano ? 1ull : 1000ull);
}

static void fmt_ep(char *buf, size_t len, int family, const unsigned char *ip, uint16_t port)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, ip, a, sizeof(a));
	if (family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, port);
	else
		snprintf(buf, len, "%s:%u", a, port);
}

static struct rec_stream *new_stream(struct reader *rd, struct flow *f, uint64_t ts)
{
	struct rec_capture *c = rd->cap;
	struct rec_stream *s, *ns;

	if (c->nstreams % 64 == 0) {
		ns = realloc(c->streams, (c->nstreams + 64) * sizeof(*ns));
		if (!ns)
			return NULL;
		c->streams = ns;
	}
	s = &c->streams[c->nstreams];
	memset(s, 0, sizeof(*s));
	fmt_ep(s->client, sizeof(s->client), f->family, f->a, f->pa);
	fmt_ep(s->server, sizeof(s->server), f->family, f->b, f->pb);
	s->server_port = f->pb;
	s->start_ns = ts;
	f->stream = (int)c->nstreams++;
	return s;
}

static void free_queue(struct dir *d)
{
	while (d->q) {
		struct ooo *o = d->q;

		d->q = o->next;
		free(o);
	}
	d->qbytes = 0;
}

/* In-order bytes of one direction: a new send when the direction changes. */
static void deliver(struct reader *rd, struct rec_stream *s, int from_client,
		    const unsigned char *p, uint32_t n, uint64_t ts)
{
	struct rec_seg *g = s->nsegs ? &s->segs[s->nsegs - 1] : NULL;
	unsigned char *nd;

	if (!n)
		return;
	if (rd->cap->bytes + n > rd->max_bytes) {
		rd->over = 1;
		return;
	}
	if (!g || g->from_client != from_client) {
		if (s->nsegs == s->capsegs) {
			unsigned nc = s->capsegs ? s->capsegs * 2 : 16;
			struct rec_seg *ns = realloc(s->segs, nc * sizeof(*ns));

			if (!ns) {
				rd->over = 1;
				return;
			}
			s->segs = ns;
			s->capsegs = nc;
		}
		g = &s->segs[s->nsegs++];
		memset(g, 0, sizeof(*g));
		g->from_client = from_client;
		g->ts_ns = ts;
	}
	nd = realloc(g->data, (size_t)g->len + n);
	if (!nd) {
		rd->over = 1;
		return;
	}
	memcpy(nd + g->len, p, n);
	g->data = nd;
	g->len += n;
	if (from_client)
		s->client_bytes += n;
	else
		s->server_bytes += n;
	rd->cap->bytes += n;
}

/* Deliver what is contiguous at the head of the queue. */
static void drain(struct reader *rd, struct rec_stream *s, struct dir *d, int from_client,
		  int force)
{
	while (d->q) {
		struct ooo *o = d->q;
		int32_t off = (int32_t)(o->seq - d->next);

		if (off > 0) {
			if (!force && d->qbytes <= OOO_MAX)
				return;
			s->gaps += (uint32_t)off; /* never captured: skip it */
			d->next = o->seq;
			off = 0;
		}
		d->q = o->next;
		d->qbytes -= o->len;
		if (d->next - o->seq < o->len) {
			uint32_t skip = d->next - o->seq;

			s->retransmits += skip;
			deliver(rd, s, from_client, o->data + skip, o->len - skip, o->ts);
			d->next = o->seq + o->len;
		} else {
			s->retransmits += o->len;
		}
		free(o);
	}
}

static void on_data(struct reader *rd, struct rec_stream *s, struct dir *d, int from_client,
		    uint32_t seq, const unsigned char *p, uint32_t n, uint64_t ts)
{
	int32_t off;
	struct ooo *o, **pp;

	if (!d->init) {
		d->init = 1;
		d->next = seq;
	}
	off = (int32_t)(seq - d->next);
	if (off <= 0) {
		uint32_t skip = d->next - seq;

		if (skip >= n) {
			s->retransmits += n;
			return;
		}
		s->retransmits += skip;
		deliver(rd, s, from_client, p + skip, n - skip, ts);
		d->next = seq + n;
		drain(rd, s, d, from_client, 0);
		return;
	}
	o = malloc(sizeof(*o) + n);
	if (!o) {
		rd->over = 1;
		return;
	}
	o->seq = seq;
	o->len = n;
	o->ts = ts;
	memcpy(o->data, p, n);
	for (pp = &d->q; *pp && (int32_t)((*pp)->seq - seq) < 0; pp = &(*pp)->next)
		;
	o->next = *pp;
	*pp = o;
	d->qbytes += n;
	drain(rd, s, d, from_client, 0);
}

static struct flow *find_flow(struct reader *rd, int family, const unsigned char *src,
			      const unsigned char *dst, uint16_t sp, uint16_t dp, int *from_client)
{
	size_t al = family == AF_INET6 ? 16 : 4;

	for (unsigned i = 0; i < rd->nflows; i++) {
		struct flow *f = &rd->flows[i];

		if (f->family != family)
			continue;
		if (f->pa == sp && f->pb == dp && !memcmp(f->a, src, al) &&
		    !memcmp(f->b, dst, al)) {
			*from_client = 1;
			return f;
		}
		if (f->pa == dp && f->pb == sp && !memcmp(f->a, dst, al) &&
		    !memcmp(f->b, src, al)) {
			*from_client = 0;
			return f;
		}
	}
	return NULL;
}

static void on_tcp(struct reader *rd, int family, const unsigned char *src,
		   const unsigned char *dst, const unsigned char *tcp, size_t len, uint64_t ts)
{
	uint16_t sp, dp;
	uint32_t seq;
	unsigned hl, flags;
	int from_client = 1;
	struct flow *f;
	struct rec_stream *s;
	size_t al = family == AF_INET6 ? 16 : 4;

	if (len < 20)
		return;
	sp = (uint16_t)(tcp[0] << 8 | tcp[1]);
	dp = (uint16_t)(tcp[2] << 8 | tcp[3]);
	seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
	hl = (unsigned)(tcp[12] >> 4) * 4;
	flags = tcp[13];
	if (hl < 20 || hl > len)
		return;
	if (rd->port && sp != rd->port && dp != rd->port)
		return;
	f = find_flow(rd, family, src, dst, sp, dp, &from_client);
	/* a new SYN on a finished (or used) connection's ports: a new connection */
	if (f && (flags & 0x02) && !(flags & 0x10) && f->used &&
	    (int32_t)(seq - f->d[0].next) != -1) {
		free_queue(&f->d[0]);
		free_queue(&f->d[1]);
		memset(f->d, 0, sizeof(f->d));
		f->used = 0;
		if (!new_stream(rd, f, ts))
			return;
	}
	if (!f) {
		int client_is_src;
		struct flow *nf;

		if (flags & 0x04)
			return; /* a reset of a connection never seen */
		if ((flags & 0x02) && !(flags & 0x10))
			client_is_src = 1; /* SYN */
		else if ((flags & 0x02) && (flags & 0x10))
			client_is_src = 0; /* SYN-ACK */
		else if (rd->port)
			client_is_src = dp == rd->port;
		else
			client_is_src = sp > dp;
		if (rd->nflows == rd->capflows) {
			unsigned nc = rd->capflows ? rd->capflows * 2 : 64;

			nf = realloc(rd->flows, nc * sizeof(*nf));
			if (!nf) {
				rd->over = 1;
				return;
			}
			rd->flows = nf;
			rd->capflows = nc;
		}
		f = &rd->flows[rd->nflows++];
		memset(f, 0, sizeof(*f));
		f->family = family;
		memcpy(f->a, client_is_src ? src : dst, al);
		memcpy(f->b, client_is_src ? dst : src, al);
		f->pa = client_is_src ? sp : dp;
		f->pb = client_is_src ? dp : sp;
		from_client = client_is_src;
		if (!new_stream(rd, f, ts))
			return;
	}
	s = &rd->cap->streams[f->stream];
	if (flags & 0x02) {
		struct dir *d = &f->d[from_client ? 0 : 1];

		d->init = 1;
		d->next = seq + 1;
		if (from_client)
			s->syn_seen = 1;
		f->used = 1;
	}
	if (len > hl) {
		f->used = 1;
		on_data(rd, s, &f->d[from_client ? 0 : 1], from_client,
			seq + ((flags & 0x02) ? 1 : 0), tcp + hl, (uint32_t)(len - hl), ts);
	}
	if (flags & 0x01) {
		f->d[from_client ? 0 : 1].fin = 1;
		if (from_client)
			s->client_fin = 1;
	}
	if (flags & 0x04)
		s->reset = 1;
}

static void on_ip(struct reader *rd, const unsigned char *p, size_t n, uint64_t ts)
{
	if (n >= 20 && (p[0] >> 4) == 4) {
		unsigned ihl = (unsigned)(p[0] & 15) * 4;
		size_t tot = (size_t)(p[2] << 8 | p[3]);
		unsigned frag = (unsigned)((p[6] & 0x3f) << 8 | p[7]);

		if (ihl < 20 || p[9] != 6 || frag) {
			rd->cap->non_tcp++;
			return;
		}
		if (tot > n) {
			rd->cap->truncated++;
			return;
		}
		if (tot < ihl)
			return;
		on_tcp(rd, AF_INET, p + 12, p + 16, p + ihl, tot - ihl, ts);
	} else if (n >= 40 && (p[0] >> 4) == 6) {
		size_t pl = (size_t)(p[4] << 8 | p[5]);

		if (p[6] != 6) {
			rd->cap->non_tcp++;
			return;
		}
		if (40 + pl > n) {
			rd->cap->truncated++;
			return;
		}
		on_tcp(rd, AF_INET6, p + 8, p + 24, p + 40, pl, ts);
	} else {
		rd->cap->non_tcp++;
	}
}

static void on_packet(struct reader *rd, int dlt, const struct pcap_pkthdr *h,
		      const unsigned char *p, int nano)
{
	size_t n = h->caplen;
	uint64_t ts = ts_ns(h, nano);
	unsigned proto;

	rd->cap->packets++;
	if (h->caplen < h->len) {
		rd->cap->truncated++;
		return;
	}
	switch (dlt) {
	case DLT_EN10MB:
		if (n < 14)
			return;
		proto = (unsigned)(p[12] << 8 | p[13]);
		p += 14;
		n -= 14;
		while ((proto == 0x8100 || proto == 0x88a8) && n >= 4) {
			proto = (unsigned)(p[2] << 8 | p[3]);
			p += 4;
			n -= 4;
		}
		break;
	case DLT_LINUX_SLL:
		if (n < 16)
			return;
		proto = (unsigned)(p[14] << 8 | p[15]);
		p += 16;
		n -= 16;
		break;
#ifdef DLT_LINUX_SLL2
	case DLT_LINUX_SLL2:
		if (n < 20)
			return;
		proto = (unsigned)(p[0] << 8 | p[1]);
		p += 20;
		n -= 20;
		break;
#endif
	case DLT_NULL:
	case DLT_LOOP:
		if (n < 4)
			return;
		p += 4;
		n -= 4;
		proto = 0; /* look at the IP version */
		break;
	case DLT_RAW:
#ifdef DLT_IPV4
	case DLT_IPV4:
	case DLT_IPV6:
#endif
	case 101: /* LINKTYPE_RAW */
		proto = 0;
		break;
	default:
		rd->cap->non_tcp++;
		return;
	}
	if (proto && proto != 0x0800 && proto != 0x86dd) {
		rd->cap->non_tcp++;
		return;
	}
	on_ip(rd, p, n, ts);
}

static int read_all(pcap_t *pc, const char *path, uint16_t port, uint64_t max_bytes,
		    struct rec_capture *out, char *err, size_t errlen);

int rec_capture_read(const char *path, uint16_t port, uint64_t max_bytes, struct rec_capture *out,
		     char *err, size_t errlen)
{
	char perr[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc;

	memset(out, 0, sizeof(*out));
	pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, perr);
	if (!pc) {
		snprintf(err, errlen, "cannot read %s: %s", path, perr);
		return -EINVAL;
	}
	return read_all(pc, path, port, max_bytes, out, err, errlen);
}

int rec_capture_read_fp(FILE *fp, uint16_t port, uint64_t max_bytes, struct rec_capture *out,
			char *err, size_t errlen)
{
	char perr[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc;

	memset(out, 0, sizeof(*out));
	pc = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, perr);
	if (!pc) {
		snprintf(err, errlen, "cannot read the capture: %s", perr);
		fclose(fp);
		return -EINVAL;
	}
	return read_all(pc, "the capture", port, max_bytes, out, err, errlen);
}

/* Reads every packet of pc and closes it. */
static int read_all(pcap_t *pc, const char *path, uint16_t port, uint64_t max_bytes,
		    struct rec_capture *out, char *err, size_t errlen)
{
	struct reader rd;
	struct pcap_pkthdr *h;
	const u_char *data;
	int dlt, nano, rc;

	nano = pcap_get_tstamp_precision(pc) == PCAP_TSTAMP_PRECISION_NANO;
	dlt = pcap_datalink(pc);
	memset(&rd, 0, sizeof(rd));
	rd.cap = out;
	rd.port = port;
	rd.max_bytes = max_bytes ? max_bytes : UINT64_MAX;
	while ((rc = pcap_next_ex(pc, &h, &data)) == 1 && !rd.over)
		on_packet(&rd, dlt, h, data, nano);
	if (rc == PCAP_ERROR) {
		snprintf(err, errlen, "reading %s: %s", path, pcap_geterr(pc));
		pcap_close(pc);
		for (unsigned i = 0; i < rd.nflows; i++) {
			free_queue(&rd.flows[i].d[0]);
			free_queue(&rd.flows[i].d[1]);
		}
		free(rd.flows);
		rec_capture_free(out);
		return -EIO;
	}
	pcap_close(pc);
	/* gaps that never filled */
	for (unsigned i = 0; i < rd.nflows; i++) {
		struct flow *f = &rd.flows[i];

		if (f->stream >= 0 && (unsigned)f->stream < out->nstreams) {
			drain(&rd, &out->streams[f->stream], &f->d[0], 1, 1);
			drain(&rd, &out->streams[f->stream], &f->d[1], 0, 1);
		}
		free_queue(&f->d[0]);
		free_queue(&f->d[1]);
	}
	free(rd.flows);
	if (rd.over) {
		snprintf(err, errlen, "%s holds more than %llu bytes of payload (--max-bytes)",
			 path, (unsigned long long)rd.max_bytes);
		rec_capture_free(out);
		return -EFBIG;
	}
	return 0;
}

void rec_capture_free(struct rec_capture *c)
{
	for (unsigned i = 0; i < c->nstreams; i++) {
		for (unsigned j = 0; j < c->streams[i].nsegs; j++)
			free(c->streams[i].segs[j].data);
		free(c->streams[i].segs);
	}
	free(c->streams);
	memset(c, 0, sizeof(*c));
}
