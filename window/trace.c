/*
 * trace.c - recorded arrivals for trace-driven simulation: pcap, pcapng (both
 * read by libpcap) or a text list of times.
 *
 * Input is untrusted (a capture from anywhere), so every read is checked
 * against the bytes that are there, every loop is bounded by the input, and
 * every table has a cap: the flow table (retransmission detection) holds
 * TRACE_FLOWS flows, later flows are counted as untracked; arrivals stop at
 * filter->max_arrivals. tests/fuzz/fuzz_window_capture.c runs this file under
 * libFuzzer with AddressSanitizer.
 *
 * An arrival is one TCP segment with payload toward the chosen port. Its size
 * is the payload length from the IP header, so captures cut short by a
 * snaplen still count every byte. A segment that ends at or before the
 * highest sequence number seen on its flow is a retransmission and skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "window/window.h"

#define TRACE_FLOWS 4096
#define TEXT_LINE_MAX 256

struct flow {
	uint8_t used;
	uint8_t key[37]; /* src, dst (16 bytes each), sport, dport, family */
	uint32_t next_seq;
};

struct arrival_buf {
	double *t;
	uint32_t *size;
	uint64_t n, cap, max;
	int truncated;
};

struct parse {
	const struct window_trace_filter *f;
	uint16_t port;	      /* the port counted in the collect pass */
	int collect;	      /* 0: count bytes per port, 1: collect arrivals */
	uint64_t *port_bytes; /* pass 0 */
	struct flow *flows;
	struct arrival_buf ab;
	struct window_trace *tr;
	/*
	 * Times are kept relative to the first frame: seconds since 1970 in a
	 * double would round every arrival to a quarter of a microsecond.
	 */
	int have_base;
	long double base;
};

static double rel_time(struct parse *ps, long double abs_s)
{
	if (!ps->have_base) {
		ps->have_base = 1;
		ps->base = abs_s;
	}
	return (double)(abs_s - ps->base);
}

static uint16_t rd16(const unsigned char *p, int be)
{
	return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t rd32(const unsigned char *p, int be)
{
	return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
		  : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int ab_push(struct arrival_buf *ab, double t, uint32_t size)
{
	if (ab->n >= ab->max) {
		ab->truncated = 1;
		return 0;
	}
	if (ab->n == ab->cap) {
		uint64_t ncap = ab->cap ? ab->cap * 2 : 4096;
		double *nt;
		uint32_t *ns;

		if (ncap > ab->max)
			ncap = ab->max;
		nt = realloc(ab->t, ncap * sizeof(double));
		if (!nt)
			return -ENOMEM;
		ab->t = nt;
		ns = realloc(ab->size, ncap * sizeof(uint32_t));
		if (!ns)
			return -ENOMEM;
		ab->size = ns;
		ab->cap = ncap;
	}
	ab->t[ab->n] = t;
	ab->size[ab->n] = size;
	ab->n++;
	return 0;
}

static uint32_t flow_hash(const uint8_t *key)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 37; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

/* 1: new data, 0: a retransmission (or nothing new). */
static int flow_new_data(struct parse *ps, const uint8_t *key, uint32_t seq, uint32_t len)
{
	uint32_t h = flow_hash(key) & (TRACE_FLOWS - 1);
	uint32_t end = seq + len;

	for (unsigned probe = 0; probe < TRACE_FLOWS; probe++) {
		struct flow *fl = &ps->flows[(h + probe) & (TRACE_FLOWS - 1)];

		if (!fl->used) {
			fl->used = 1;
			memcpy(fl->key, key, sizeof(fl->key));
			fl->next_seq = end;
			ps->tr->flows++;
			return 1;
		}
		if (memcmp(fl->key, key, sizeof(fl->key)) == 0) {
			/* Serial-number arithmetic: end must be after what we have. */
			if ((int32_t)(end - fl->next_seq) <= 0)
				return 0;
			fl->next_seq = end;
			return 1;
		}
	}
	ps->tr->flows_untracked++;
	return 1;
}

/* A TCP segment: src/dst addresses of alen bytes, the TCP header and payload length. */
static int on_tcp(struct parse *ps, double ts, const unsigned char *src, const unsigned char *dst,
		  unsigned alen, const unsigned char *tcp, size_t tcp_caplen, uint32_t tcp_len)
{
	uint16_t sport, dport;
	uint32_t hlen, payload, seq;
	uint8_t key[37];

	if (tcp_caplen < 20 || tcp_len < 20) {
		ps->tr->skipped_bad++;
		return 0;
	}
	sport = rd16(tcp, 1);
	dport = rd16(tcp + 2, 1);
	seq = rd32(tcp + 4, 1);
	hlen = (uint32_t)(tcp[12] >> 4) * 4;
	if (hlen < 20 || hlen > tcp_len) {
		ps->tr->skipped_bad++;
		return 0;
	}
	payload = tcp_len - hlen;
	if (!ps->collect) {
		ps->port_bytes[dport] += payload;
		return 0;
	}
	if (dport != ps->port) {
		ps->tr->skipped_other++;
		return 0;
	}
	if (payload == 0) {
		ps->tr->skipped_empty++;
		return 0;
	}
	memset(key, 0, sizeof(key));
	memcpy(key, src, alen);
	memcpy(key + 16, dst, alen);
	key[32] = (uint8_t)(sport >> 8);
	key[33] = (uint8_t)sport;
	key[34] = (uint8_t)(dport >> 8);
	key[35] = (uint8_t)dport;
	key[36] = (uint8_t)alen;
	if (!flow_new_data(ps, key, seq, payload)) {
		ps->tr->skipped_retrans++;
		return 0;
	}
	return ab_push(&ps->ab, ts, payload);
}

static int on_ip(struct parse *ps, double ts, const unsigned char *p, size_t caplen)
{
	if (caplen < 1) {
		ps->tr->skipped_bad++;
		return 0;
	}
	if ((p[0] >> 4) == 4) {
		uint32_t ihl = (uint32_t)(p[0] & 15) * 4, tot;

		if (caplen < 20 || ihl < 20 || caplen < ihl) {
			ps->tr->skipped_bad++;
			return 0;
		}
		tot = rd16(p + 2, 1);
		if (tot < ihl) {
			ps->tr->skipped_bad++;
			return 0;
		}
		if (p[9] != 6 || (rd16(p + 6, 1) & 0x3fff)) {
			/* Not TCP, or a fragment (fragments carry no usable TCP header). */
			ps->tr->skipped_other++;
			return 0;
		}
		return on_tcp(ps, ts, p + 12, p + 16, 4, p + ihl, caplen - ihl, tot - ihl);
	}
	if ((p[0] >> 4) == 6) {
		uint32_t plen, off = 40;
		uint8_t nh;

		if (caplen < 40) {
			ps->tr->skipped_bad++;
			return 0;
		}
		plen = rd16(p + 4, 1);
		nh = p[6];
		/* Hop-by-hop, routing and destination options may precede TCP. */
		for (int i = 0; i < 8 && (nh == 0 || nh == 43 || nh == 60); i++) {
			uint32_t elen;

			if (caplen < off + 8 || plen < off - 40 + 8) {
				ps->tr->skipped_bad++;
				return 0;
			}
			elen = ((uint32_t)p[off + 1] + 1) * 8;
			nh = p[off];
			off += elen;
		}
		if (nh != 6) {
			ps->tr->skipped_other++;
			return 0;
		}
		if (caplen < off || plen < off - 40) {
			ps->tr->skipped_bad++;
			return 0;
		}
		return on_tcp(ps, ts, p + 8, p + 24, 16, p + off, caplen - off, plen - (off - 40));
	}
	ps->tr->skipped_other++;
	return 0;
}

/* One captured frame of the given link type. */
static int on_frame(struct parse *ps, double ts, uint32_t linktype, const unsigned char *p,
		    size_t caplen)
{
	uint16_t etype;
	size_t off;

	ps->tr->packets++;
	switch (linktype) {
	case 1: /* Ethernet, with up to two VLAN tags */
		if (caplen < 14)
			break;
		etype = rd16(p + 12, 1);
		off = 14;
		for (int i = 0; i < 2 && (etype == 0x8100 || etype == 0x88a8); i++) {
			if (caplen < off + 4)
				goto bad;
			etype = rd16(p + off + 2, 1);
			off += 4;
		}
		if (etype != 0x0800 && etype != 0x86dd) {
			ps->tr->skipped_other++;
			return 0;
		}
		return on_ip(ps, ts, p + off, caplen - off);
	case 113: /* Linux cooked v1 */
		if (caplen < 16)
			break;
		etype = rd16(p + 14, 1);
		if (etype != 0x0800 && etype != 0x86dd) {
			ps->tr->skipped_other++;
			return 0;
		}
		return on_ip(ps, ts, p + 16, caplen - 16);
	case 276: /* Linux cooked v2 */
		if (caplen < 20)
			break;
		etype = rd16(p, 1);
		if (etype != 0x0800 && etype != 0x86dd) {
			ps->tr->skipped_other++;
			return 0;
		}
		return on_ip(ps, ts, p + 20, caplen - 20);
	case 101: /* raw IP */
	case 12:
	case 14:
	case 228:
	case 229:
		return on_ip(ps, ts, p, caplen);
	case 0: /* BSD loopback: a 4-byte address family */
	case 108:
		if (caplen < 4)
			break;
		return on_ip(ps, ts, p + 4, caplen - 4);
	default:
		ps->tr->skipped_other++;
		return 0;
	}
bad:
	ps->tr->skipped_bad++;
	return 0;
}

/*
 * A pcap or pcapng capture held in memory, read by libpcap (either byte
 * order, micro- or nanosecond pcap; pcapng time resolutions and offsets). A
 * capture cut short keeps what came before the cut.
 */
static int parse_libpcap(struct parse *ps, const unsigned char *d, size_t len, char *err,
			 size_t errlen)
{
	char perr[PCAP_ERRBUF_SIZE] = "";
	FILE *fp = fmemopen((void *)d, len, "rb");
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *pc;
	int linktype, rc;

	if (!fp) {
		snprintf(err, errlen, "out of memory reading the capture");
		return -ENOMEM;
	}
	pc = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, perr);
	if (!pc) {
		fclose(fp);
		snprintf(err, errlen, "not a capture libpcap can read: %s", perr);
		return -EINVAL;
	}
	linktype = pcap_datalink(pc);
	while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
		double ts = rel_time(ps, (long double)h->ts.tv_sec +
						 (long double)h->ts.tv_usec * 1e-9L);

		if (on_frame(ps, ts, (uint32_t)linktype, data, h->caplen) < 0) {
			pcap_close(pc);
			snprintf(err, errlen, "out of memory reading the capture");
			return -ENOMEM;
		}
		if (ps->ab.truncated)
			break;
	}
	if (rc == PCAP_ERROR)
		ps->tr->skipped_bad++; /* cut short: the capture was interrupted */
	pcap_close(pc);
	return 0;
}

static int parse_text(struct parse *ps, const unsigned char *d, size_t len, char *err,
		      size_t errlen)
{
	size_t off = 0;
	uint64_t lineno = 0;

	while (off < len) {
		char line[TEXT_LINE_MAX + 1];
		size_t n = 0, start = off;
		char *p, *end;
		double t, sz = 0;
		int rc;

		while (off < len && d[off] != '\n')
			off++;
		lineno++;
		n = off - start;
		if (off < len)
			off++;
		if (n > TEXT_LINE_MAX) {
			snprintf(err, errlen, "line %llu: longer than %d characters",
				 (unsigned long long)lineno, TEXT_LINE_MAX);
			return -EINVAL;
		}
		memcpy(line, d + start, n);
		line[n] = '\0';
		if (memchr(line, '\0', n)) {
			snprintf(err, errlen, "line %llu: not text (a NUL byte)",
				 (unsigned long long)lineno);
			return -EINVAL;
		}
		p = strchr(line, '#');
		if (p)
			*p = '\0';
		p = line;
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (!*p)
			continue;
		t = strtod(p, &end);
		if (end == p || !isfinite(t) || t < 0) {
			snprintf(err, errlen,
				 "line %llu: expected 'SECONDS [BYTES]' (a time, then optionally a "
				 "size)",
				 (unsigned long long)lineno);
			return -EINVAL;
		}
		p = end;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p && *p != '\r') {
			sz = strtod(p, &end);
			if (end == p || !(sz >= 0) || sz > 4294967295.0 || sz != floor(sz)) {
				snprintf(err, errlen, "line %llu: the size must be whole bytes",
					 (unsigned long long)lineno);
				return -EINVAL;
			}
			p = end;
			while (*p == ' ' || *p == '\t' || *p == '\r')
				p++;
			if (*p) {
				snprintf(err, errlen, "line %llu: unexpected '%.20s'",
					 (unsigned long long)lineno, p);
				return -EINVAL;
			}
		}
		ps->tr->packets++;
		rc = ab_push(&ps->ab, t, (uint32_t)sz);
		if (rc < 0) {
			snprintf(err, errlen, "out of memory reading arrivals");
			return rc;
		}
		if (ps->ab.truncated)
			break;
	}
	return 0;
}

static int cmp_arrival(const void *a, const void *b)
{
	const double *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

static int run_pass(struct parse *ps, int kind, const unsigned char *data, size_t len, char *err,
		    size_t errlen)
{
	ps->have_base = 0;
	if (kind)
		return parse_libpcap(ps, data, len, err, errlen);
	return parse_text(ps, data, len, err, errlen);
}

int window_trace_parse(const unsigned char *data, size_t len, const struct window_trace_filter *f,
		       struct window_trace **out, char *err, size_t errlen)
{
	struct window_trace_filter deflt = {0, 0};
	struct parse ps;
	struct window_trace *tr;
	int kind = 0, rc = 0;
	uint32_t magic = len >= 4 ? (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
					    (uint32_t)data[2] << 8 | data[3]
				  : 0;

	*out = NULL;
	if (!f)
		f = &deflt;
	if (magic == 0xa1b2c3d4 || magic == 0xd4c3b2a1 || magic == 0xa1b23c4d ||
	    magic == 0x4d3cb2a1)
		kind = 1;
	else if (magic == 0x0A0D0D0A)
		kind = 2;
	tr = calloc(1, sizeof(*tr));
	if (!tr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	tr->format = kind == 1 ? "pcap" : kind == 2 ? "pcapng" : "text";
	memset(&ps, 0, sizeof(ps));
	ps.f = f;
	ps.tr = tr;
	ps.ab.max = f->max_arrivals ? f->max_arrivals : WINDOW_TRACE_MAX;
	if (kind) {
		ps.flows = calloc(TRACE_FLOWS, sizeof(struct flow));
		if (!ps.flows) {
			rc = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		ps.port = f->port;
		if (!ps.port) {
			/* First pass: the port that received the most payload. */
			uint64_t best = 0;

			ps.port_bytes = calloc(65536, sizeof(uint64_t));
			if (!ps.port_bytes) {
				rc = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			rc = run_pass(&ps, kind, data, len, err, errlen);
			if (rc < 0)
				goto fail;
			for (unsigned port = 1; port < 65536; port++)
				if (ps.port_bytes[port] > best) {
					best = ps.port_bytes[port];
					ps.port = (uint16_t)port;
				}
			free(ps.port_bytes);
			ps.port_bytes = NULL;
			memset(tr, 0, sizeof(*tr));
			tr->format = kind == 1 ? "pcap" : "pcapng";
			if (!ps.port) {
				rc = -EINVAL;
				snprintf(err, errlen, "the capture holds no TCP payload");
				goto fail;
			}
		}
		tr->port = ps.port;
		ps.collect = 1;
	}
	rc = run_pass(&ps, kind, data, len, err, errlen);
	if (rc < 0)
		goto fail;
	if (ps.ab.n == 0) {
		rc = -EINVAL;
		if (kind)
			snprintf(
				err, errlen,
				"no TCP payload toward port %u in %llu packets (--port chooses the "
				"server's port)",
				ps.port, (unsigned long long)tr->packets);
		else
			snprintf(err, errlen, "no arrivals (expected lines of 'SECONDS [BYTES]')");
		goto fail;
	}
	{
		/* Captures from several queues may be slightly out of order. */
		int sorted = 1;

		for (uint64_t i = 1; i < ps.ab.n; i++)
			if (ps.ab.t[i] < ps.ab.t[i - 1]) {
				sorted = 0;
				break;
			}
		if (!sorted) {
			struct {
				double t;
				uint32_t s;
			} *tmp = malloc(ps.ab.n * sizeof(*tmp));

			if (!tmp) {
				rc = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			for (uint64_t i = 0; i < ps.ab.n; i++) {
				tmp[i].t = ps.ab.t[i];
				tmp[i].s = ps.ab.size[i];
			}
			qsort(tmp, ps.ab.n, sizeof(*tmp), cmp_arrival);
			for (uint64_t i = 0; i < ps.ab.n; i++) {
				ps.ab.t[i] = tmp[i].t;
				ps.ab.size[i] = tmp[i].s;
			}
			free(tmp);
		}
	}
	tr->n = ps.ab.n;
	tr->size = ps.ab.size;
	tr->gap = ps.ab.t; /* converted in place: gap[i] = t[i] - t[i-1] */
	tr->duration = ps.ab.t[ps.ab.n - 1] - ps.ab.t[0];
	for (uint64_t i = ps.ab.n - 1; i > 0; i--)
		tr->gap[i] = tr->gap[i] - tr->gap[i - 1];
	tr->gap[0] = tr->n > 1 ? tr->duration / (double)(tr->n - 1) : 0;
	for (uint64_t i = 0; i < tr->n; i++)
		tr->bytes += tr->size[i];
	tr->truncated = ps.ab.truncated;
	free(ps.flows);
	*out = tr;
	return 0;
fail:
	free(ps.flows);
	free(ps.port_bytes);
	free(ps.ab.t);
	free(ps.ab.size);
	free(tr);
	return rc;
}

int window_trace_load(const char *path, const struct window_trace_filter *f,
		      struct window_trace **out, char *err, size_t errlen)
{
	struct stat st;
	void *map;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		close(fd);
		snprintf(err, errlen, "%s is empty", path);
		return -EINVAL;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return rc;
	}
	rc = window_trace_parse(map, (size_t)st.st_size, f, out, err, errlen);
	munmap(map, (size_t)st.st_size);
	return rc;
}

void window_trace_free(struct window_trace *t)
{
	if (!t)
		return;
	free(t->gap);
	free(t->size);
	free(t);
}

double window_trace_rate(const struct window_trace *t)
{
	if (!t || t->n < 2 || !(t->duration > 0))
		return 0;
	return (double)(t->n - 1) / t->duration;
}
