/*
 * capture.c - passive capture of a TCP service's conversations, reassembled
 * and given to a sink: the clones' mirrored connections, or a recorder
 * (see capture.h).
 *
 * Reassembly, per connection and direction: `next` is the sequence number
 * of the first byte not yet delivered. A segment at or before next is
 * trimmed (a retransmission or an overlap: its new bytes only are kept); a
 * segment after next waits in a sorted, bounded list until the hole before
 * it is filled. Bytes are delivered exactly once and in order. A hole that
 * cannot be filled is a gap: the peer acknowledged bytes the capture never
 * had, or the held bytes pass reorder_max, or a hole stays open longer than
 * HOLE_MAX_NS. The clone side of such a connection is reset and the
 * connection is followed no further.
 */
#define LOG_PREFIX "capture"
#include "capture/capture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <event2/event.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/stats.h"
#include "proxy/proxy.h"

#define NBUCKETS 8192
#define TICK_MS 250
#define HOLE_MAX_NS (2 * NSEC_PER_SEC)
#define IDLE_MAX_NS (600 * NSEC_PER_SEC)
#define SNAPLEN 262144
#define BLOCK_TIMEOUT_MS 5
#define HELD_TOTAL_MAX (64ULL << 20) /* out-of-order bytes held over all connections */

/* A segment waiting for the hole before it (malloc'ed, freed once delivered). */
struct seg {
	struct seg *next;
	uint32_t seq, len;
	unsigned char data[];
};

struct dir {
	int started; /* its SYN was seen: next is known */
	uint32_t next;
	int fin_seen, fin_done;
	uint32_t fin_seq;
	struct seg *held; /* sorted by seq */
	uint64_t held_bytes;
	uint64_t hole_since_ns; /* first held segment's arrival (0: none held) */
};

enum { CC_MIRROR, CC_IGNORED, CC_GAP, CC_CLIENT_DONE };

/* One followed connection. Allocated on its first packet, freed at its end. */
struct cconn {
	struct cconn *hnext;
	struct cconn *prev, *next; /* cap->all */
	unsigned char cip[16], sip[16];
	uint16_t cport;
	int state;
	struct dir c2s, s2c;
	void *m;       /* the sink's connection; NULL unless state == CC_MIRROR */
	int midstream; /* open before the capture: s2c starts at its first bytes */
	uint64_t id;   /* 1, 2, ... for logs */
	uint64_t last_ns;
};

struct capture {
	struct event_base *base;
	struct proxy_observer sink;
	struct cap_config cfg;
	char iface[IF_NAMESIZE + 8];
	pcap_t *pcap;
	int linktype;
	struct event *ev, *tick;
	struct cconn *buckets[NBUCKETS];
	struct cconn *all;
	struct cap_stats st;
	uint64_t nconns;     /* entries followed now (any state) */
	uint64_t held_total; /* bytes in every dir->held */
};

/* ---- the connection table ---- */

static unsigned hash_key(const unsigned char *cip, uint16_t cport)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ cip[i]) * 16777619u;
	h = (h ^ cport) * 16777619u;
	return h % NBUCKETS;
}

static struct cconn *cc_find(struct capture *cap, const unsigned char *cip,
			     const unsigned char *sip, uint16_t cport)
{
	for (struct cconn *k = cap->buckets[hash_key(cip, cport)]; k; k = k->hnext)
		if (k->cport == cport && !memcmp(k->cip, cip, 16) && !memcmp(k->sip, sip, 16))
			return k;
	return NULL;
}

static struct cconn *cc_new(struct capture *cap, const unsigned char *cip, const unsigned char *sip,
			    uint16_t cport, int state)
{
	struct cconn *k;
	unsigned h = hash_key(cip, cport);

	if (cap->nconns >= cap->cfg.max_conns) {
		cap->st.conns_over_cap++;
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	memcpy(k->cip, cip, 16);
	memcpy(k->sip, sip, 16);
	k->cport = cport;
	k->state = state;
	k->hnext = cap->buckets[h];
	cap->buckets[h] = k;
	k->next = cap->all;
	if (cap->all)
		cap->all->prev = k;
	cap->all = k;
	cap->nconns++;
	return k;
}

static void dir_clear(struct capture *cap, struct dir *d)
{
	while (d->held) {
		struct seg *s = d->held;

		d->held = s->next;
		cap->held_total -= s->len;
		free(s);
	}
	d->held_bytes = 0;
	d->hole_since_ns = 0;
}

/* End the clone side (if still open): reset, or FIN. */
static void cc_end_mirror(struct capture *cap, struct cconn *k, int reset)
{
	if (!k->m)
		return;
	cap->sink.conn_close(k->m, reset);
	if (cap->sink.conn_free)
		cap->sink.conn_free(k->m);
	k->m = NULL;
	if (cap->st.conns_active)
		cap->st.conns_active--;
}

static void cc_free(struct capture *cap, struct cconn *k, int reset)
{
	struct cconn **pp = &cap->buckets[hash_key(k->cip, k->cport)];

	cc_end_mirror(cap, k, reset);
	while (*pp && *pp != k)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = k->hnext;
	if (k->prev)
		k->prev->next = k->next;
	else
		cap->all = k->next;
	if (k->next)
		k->next->prev = k->prev;
	dir_clear(cap, &k->c2s);
	dir_clear(cap, &k->s2c);
	cap->nconns--;
	free(k);
}

static void cc_gap(struct capture *cap, struct cconn *k, const char *why)
{
	if (k->state != CC_MIRROR && k->state != CC_CLIENT_DONE)
		return;
	if (k->state == CC_MIRROR) {
		cap->st.conns_gap++;
		pr_warn("gap in captured connection conn=%llu client_port=%u reason=\"%s\": its "
			"clone side is reset, no more of it is fed",
			(unsigned long long)k->id, k->cport, why);
	}
	cc_end_mirror(cap, k, 1);
	k->state = CC_GAP;
	dir_clear(cap, &k->c2s);
	dir_clear(cap, &k->s2c);
}

/* ---- reassembly ---- */

static int seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static void deliver(struct capture *cap, struct cconn *k, int c2s, const unsigned char *p,
		    uint32_t n)
{
	if (!n || !k->m)
		return;
	if (c2s) {
		cap->st.client_bytes += n;
		cap->sink.client_bytes(k->m, p, n);
	} else {
		cap->st.server_bytes += n;
		cap->sink.server_bytes(k->m, p, n);
	}
}

/* In-order bytes at d->next onwards (seg starts at or before next). */
static void take(struct capture *cap, struct cconn *k, struct dir *d, int c2s, uint32_t seq,
		 const unsigned char *p, uint32_t len)
{
	uint32_t off = d->next - seq;

	if (off >= len) {
		cap->st.retransmitted += len;
		return;
	}
	cap->st.retransmitted += off;
	deliver(cap, k, c2s, p + off, len - off);
	d->next += len - off;
}

static void drain_held(struct capture *cap, struct cconn *k, struct dir *d, int c2s)
{
	while (d->held && !seq_lt(d->next, d->held->seq)) {
		struct seg *s = d->held;

		d->held = s->next;
		d->held_bytes -= s->len;
		cap->held_total -= s->len;
		take(cap, k, d, c2s, s->seq, s->data, s->len);
		free(s);
		if (!k->m && k->state != CC_CLIENT_DONE)
			break;
	}
	d->hole_since_ns = d->held ? clock_coarse_ns() : 0;
}

/* Returns -1 when the connection got a gap. */
static int hold(struct capture *cap, struct cconn *k, struct dir *d, uint32_t seq,
		const unsigned char *p, uint32_t len, uint64_t now)
{
	struct seg *s, **pp;

	if (d->held_bytes + len > cap->cfg.reorder_max || cap->held_total + len > HELD_TOTAL_MAX) {
		cc_gap(cap, k, "reordering buffer full");
		return -1;
	}
	s = malloc(sizeof(*s) + len);
	if (!s) {
		cc_gap(cap, k, "out of memory");
		return -1;
	}
	s->seq = seq;
	s->len = len;
	memcpy(s->data, p, len);
	for (pp = &d->held; *pp && seq_lt((*pp)->seq, seq); pp = &(*pp)->next)
		;
	s->next = *pp;
	*pp = s;
	d->held_bytes += len;
	cap->held_total += len;
	if (!d->hole_since_ns)
		d->hole_since_ns = now;
	cap->st.out_of_order++;
	return 0;
}

static void dir_data(struct capture *cap, struct cconn *k, int c2s, uint32_t seq,
		     const unsigned char *p, uint32_t len, uint64_t now)
{
	struct dir *d = c2s ? &k->c2s : &k->s2c;

	if (!d->started && k->midstream && !c2s && len) {
		/* followed from the middle: the answer to the first request seen */
		d->started = 1;
		d->next = seq;
	}
	if (!d->started || !len)
		return;
	if (seq_lt(d->next, seq)) {
		hold(cap, k, d, seq, p, len, now);
		return;
	}
	take(cap, k, d, c2s, seq, p, len);
	drain_held(cap, k, d, c2s);
}

/* The peer acknowledged up to ack: every byte before it must have been seen. */
static void check_ack(struct capture *cap, struct cconn *k, struct dir *d, uint32_t ack)
{
	uint32_t end = d->next;

	if (!d->started || !seq_lt(end, ack))
		return;
	/* A FIN not yet consumed takes one sequence number. */
	if (d->fin_seen && !d->fin_done && d->fin_seq == d->next && ack == d->next + 1)
		return;
	cc_gap(cap, k, "the peer acknowledged bytes the capture did not see");
}

/* ---- packets ---- */

/*
 * A connection to follow, opened in the sink; or one of another process's,
 * remembered as ignored; NULL over the cap or when the sink refused it.
 */
static struct cconn *cc_follow(struct capture *cap, const unsigned char *cip,
			       const unsigned char *sip, uint16_t cport, int midstream)
{
	struct cconn *k;
	int whose = cap->cfg.owned ? cap->cfg.owned(cap->cfg.owned_arg, cip, cport) : CAP_OURS;

	if (whose == CAP_NOT_OURS) {
		cap->st.conns_not_ours++;
		cc_new(cap, cip, sip, cport, CC_IGNORED);
		return NULL;
	}
	if (whose == CAP_OWNER_UNKNOWN)
		cap->st.conns_owner_unknown++;
	k = cc_new(cap, cip, sip, cport, CC_MIRROR);
	if (!k)
		return NULL;
	k->midstream = midstream;
	k->id = cap->st.conns + 1;
	k->m = cap->sink.conn_open(cap->sink.arg, k->id | (midstream ? CAP_MIDSTREAM_ID : 0));
	if (!k->m) {
		cc_free(cap, k, 0);
		return NULL;
	}
	cap->st.conns++;
	cap->st.conns_active++;
	return k;
}

static void client_fin(struct capture *cap, struct cconn *k)
{
	cap->st.fins++;
	if (k->state == CC_MIRROR) {
		cc_end_mirror(cap, k, 0);
		k->state = CC_CLIENT_DONE;
	}
}

static void on_tcp(struct capture *cap, const unsigned char *sa, const unsigned char *da,
		   const unsigned char *tcp, uint32_t tcplen)
{
	uint16_t sport = (uint16_t)(tcp[0] << 8 | tcp[1]), dport = (uint16_t)(tcp[2] << 8 | tcp[3]);
	uint32_t seq =
		(uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
	uint32_t ack =
		(uint32_t)tcp[8] << 24 | (uint32_t)tcp[9] << 16 | (uint32_t)tcp[10] << 8 | tcp[11];
	uint32_t hl = (uint32_t)(tcp[12] >> 4) * 4, len;
	unsigned fl = tcp[13];
	int c2s = dport == cap->cfg.port, syn = fl & 0x02, fin = fl & 0x01, rst = fl & 0x04,
	    has_ack = fl & 0x10;
	uint64_t now = clock_coarse_ns();
	struct cconn *k;
	struct dir *d, *other;

	if (hl < 20 || hl > tcplen || (!c2s && sport != cap->cfg.port))
		return;
	len = tcplen - hl;
	cap->st.packets++;
	cap->st.bytes += len;
	k = c2s ? cc_find(cap, sa, da, sport) : cc_find(cap, da, sa, dport);
	if (c2s && syn && !has_ack) {
		if (k && k->state == CC_MIRROR && k->c2s.started && k->c2s.next == seq + 1)
			return; /* a retransmitted SYN */
		if (k)
			cc_free(cap, k, 1); /* a new connection on the same ports */
		k = cc_follow(cap, sa, da, sport, 0);
		if (k) {
			k->c2s.started = 1;
			k->c2s.next = seq + 1;
			k->last_ns = now;
		}
		return;
	}
	if (!k) {
		/* a connection open before the capture, seen by its data (not by a last ACK) */
		if (rst || fin || !len)
			return;
		if (!cap->cfg.midstream) {
			k = c2s ? cc_new(cap, sa, da, sport, CC_IGNORED)
				: cc_new(cap, da, sa, dport, CC_IGNORED);
			if (k)
				cap->st.conns_midstream++;
			return;
		}
		if (!c2s)
			return; /* followed from the next request */
		cap->st.conns_midstream++;
		k = cc_follow(cap, sa, da, sport, 1);
		if (!k)
			return;
		k->c2s.started = 1;
		k->c2s.next = seq;
	}
	k->last_ns = now;
	if (rst) {
		cap->st.resets++;
		cc_free(cap, k, 1);
		return;
	}
	if (k->state == CC_IGNORED || k->state == CC_GAP) {
		if (fin) {
			struct dir *fd = c2s ? &k->c2s : &k->s2c;

			fd->fin_done = 1;
			if (k->c2s.fin_done && k->s2c.fin_done)
				cc_free(cap, k, 0);
		}
		return;
	}
	d = c2s ? &k->c2s : &k->s2c;
	other = c2s ? &k->s2c : &k->c2s;
	if (syn) { /* SYN-ACK */
		if (!c2s && !d->started) {
			d->started = 1;
			d->next = seq + 1;
		}
		return;
	}
	if (has_ack)
		check_ack(cap, k, other, ack);
	if (k->state == CC_GAP)
		return;
	if (k->state == CC_MIRROR || !c2s)
		dir_data(cap, k, c2s, seq, tcp + hl, len, now);
	if (k->state == CC_GAP)
		return;
	if (fin && d->started) {
		d->fin_seen = 1;
		d->fin_seq = seq + len;
	}
	if (d->fin_seen && !d->fin_done && d->next == d->fin_seq && !d->held) {
		d->fin_done = 1;
		d->next++;
		if (c2s)
			client_fin(cap, k);
	}
	if (k->c2s.fin_done && k->s2c.fin_done)
		cc_free(cap, k, 0);
}

static void v4_mapped(unsigned char out[16], const unsigned char *a4)
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, a4, 4);
}

static void on_ip(struct capture *cap, const unsigned char *p, uint32_t n)
{
	unsigned char sa[16], da[16];

	if (n < 1)
		return;
	if ((p[0] >> 4) == 4) {
		uint32_t ihl = (uint32_t)(p[0] & 15) * 4, tot;

		if (n < 20 || ihl < 20 || p[9] != 6)
			return;
		tot = (uint32_t)(p[2] << 8 | p[3]);
		if (tot < ihl || tot > n)
			return;
		if ((p[6] & 0x3f) || p[7]) /* a fragment: not reassembled */
			return;
		v4_mapped(sa, p + 12);
		v4_mapped(da, p + 16);
		if (tot - ihl >= 20)
			on_tcp(cap, sa, da, p + ihl, tot - ihl);
	} else if ((p[0] >> 4) == 6) {
		uint32_t plen;

		if (n < 40 || p[6] != 6) /* TCP right after the header only */
			return;
		plen = (uint32_t)(p[4] << 8 | p[5]);
		if (plen + 40 > n || plen < 20)
			return;
		memcpy(sa, p + 8, 16);
		memcpy(da, p + 24, 16);
		on_tcp(cap, sa, da, p + 40, plen);
	}
}

static void on_packet(u_char *arg, const struct pcap_pkthdr *h, const u_char *p)
{
	struct capture *cap = (struct capture *)arg;
	uint32_t n = h->caplen, off;
	unsigned proto;

	if (h->caplen < h->len)
		return; /* truncated: never happens with our snaplen */
	switch (cap->linktype) {
	case DLT_EN10MB:
		if (n < 14)
			return;
		off = 14;
		proto = (unsigned)(p[12] << 8 | p[13]);
		while (proto == 0x8100 && n >= off + 4) {
			proto = (unsigned)(p[off + 2] << 8 | p[off + 3]);
			off += 4;
		}
		break;
	case DLT_LINUX_SLL:
		if (n < 16)
			return;
		off = 16;
		proto = (unsigned)(p[14] << 8 | p[15]);
		break;
	case DLT_LINUX_SLL2:
		if (n < 20)
			return;
		off = 20;
		proto = (unsigned)(p[0] << 8 | p[1]);
		break;
	case DLT_RAW:
		off = 0;
		proto = 0;
		break;
	default:
		return;
	}
	if (proto && proto != 0x0800 && proto != 0x86dd)
		return;
	if (n > off)
		on_ip(cap, p + off, n - off);
}

/* ---- events ---- */

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct capture *cap = arg;

	(void)fd;
	(void)what;
	/* a bounded number of batches per wake-up: the loop also serves the admin socket */
	for (int i = 0; i < 64; i++)
		if (pcap_dispatch(cap->pcap, -1, on_packet, (u_char *)cap) <= 0)
			break;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct capture *cap = arg;
	uint64_t now = clock_coarse_ns();
	struct pcap_stat ps;
	struct cconn *k, *next;

	(void)fd;
	(void)what;
	if (pcap_stats(cap->pcap, &ps) == 0) {
		uint64_t drops = (uint64_t)ps.ps_drop + ps.ps_ifdrop;

		if (drops > cap->st.kernel_drops)
			pr_warn("the kernel dropped %llu captured packets (%llu in all): "
				"connections that lost bytes are reset on the clone side; a bigger "
				"--capture-buffer helps",
				(unsigned long long)(drops - cap->st.kernel_drops),
				(unsigned long long)drops);
		cap->st.kernel_drops = drops;
	}
	for (k = cap->all; k; k = next) {
		next = k->next;
		if ((k->c2s.hole_since_ns && now - k->c2s.hole_since_ns > HOLE_MAX_NS) ||
		    (k->s2c.hole_since_ns && now - k->s2c.hole_since_ns > HOLE_MAX_NS))
			cc_gap(cap, k, "a hole stayed open");
		if (now - k->last_ns > IDLE_MAX_NS)
			cc_free(cap, k, 0);
	}
}

/* ---- set-up ---- */

/* Replace *a by the source address this host uses towards it (a connected UDP socket). */
static int route_source(struct in_addr *a)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr = *a};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0)
		rc = -errno;
	else
		*a = sin.sin_addr;
	close(fd);
	return rc;
}

/* The interface that has address a. 0, -ENOENT or -errno. */
static int iface_with_addr(struct in_addr a, char *iface, size_t len)
{
	struct ifaddrs *ifa, *i;
	int rc = -ENOENT;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a.s_addr) {
			snprintf(iface, len, "%s", i->ifa_name);
			rc = 0;
			break;
		}
	freeifaddrs(ifa);
	return rc;
}

int cap_iface_for(const char *addr, char *iface, size_t len)
{
	struct in_addr want;

	if (!strncmp(addr, "127.", 4) || !strcmp(addr, "0.0.0.0")) {
		snprintf(iface, len, "lo");
		return 0;
	}
	if (inet_pton(AF_INET, addr, &want) != 1)
		return -EINVAL;
	return iface_with_addr(want, iface, len);
}

int cap_iface_towards(const char *addr, char *iface, size_t len)
{
	struct in_addr want;
	int rc;

	if (inet_pton(AF_INET, addr, &want) != 1)
		return -EINVAL;
	rc = iface_with_addr(want, iface, len);
	if (rc != -ENOENT) {
		/* this host's own traffic to one of its addresses goes over the loopback */
		if (!rc)
			snprintf(iface, len, "lo");
		return rc;
	}
	rc = route_source(&want);
	return rc < 0 ? rc : iface_with_addr(want, iface, len);
}

static void apply_defaults(struct cap_config *c)
{
	if (!c->buffer)
		c->buffer = 32ULL << 20;
	if (!c->reorder_max)
		c->reorder_max = 1ULL << 20;
	if (!c->max_conns)
		c->max_conns = 4096;
}

int cap_new_fed(struct event_base *base, const struct proxy_observer *sink,
		const struct cap_config *cfg, struct capture **out)
{
	struct capture *cap = calloc(1, sizeof(*cap));

	if (!cap)
		return -ENOMEM;
	cap->base = base;
	cap->sink = *sink;
	cap->cfg = *cfg;
	apply_defaults(&cap->cfg);
	snprintf(cap->iface, sizeof(cap->iface), "fed");
	*out = cap;
	return 0;
}

void cap_feed(struct capture *cap, int linktype, const void *pkt, size_t len)
{
	struct pcap_pkthdr h;

	memset(&h, 0, sizeof(h));
	h.caplen = h.len = (bpf_u_int32)len;
	cap->linktype = linktype;
	on_packet((u_char *)cap, &h, pkt);
}

int cap_new(struct event_base *base, const struct proxy_observer *sink,
	    const struct cap_config *cfg, struct capture **out, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "", filter[256], host[80] = "";
	struct bpf_program prog;
	struct capture *cap = calloc(1, sizeof(*cap));
	struct timeval tv = {0, TICK_MS * 1000};
	int rc, fd;

	if (!cap) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	cap->base = base;
	cap->sink = *sink;
	cap->cfg = *cfg;
	apply_defaults(&cap->cfg);
	if (cfg->iface && *cfg->iface && strcmp(cfg->iface, "auto")) {
		snprintf(cap->iface, sizeof(cap->iface), "%s", cfg->iface);
	} else if ((rc = cap_iface_for(cfg->addr, cap->iface, sizeof(cap->iface))) < 0) {
		snprintf(err, errlen, "no interface carries %s: name one with --capture IFACE",
			 cfg->addr);
		free(cap);
		return rc;
	}
	cap->pcap = pcap_create(cap->iface, ebuf);
	if (!cap->pcap) {
		snprintf(err, errlen, "cannot capture on %s: %s", cap->iface, ebuf);
		free(cap);
		return -ENODEV;
	}
	pcap_set_snaplen(cap->pcap, SNAPLEN);
	pcap_set_promisc(cap->pcap, 0);
	/*
	 * Not immediate mode: libpcap then uses TPACKET_V3, whose blocks pack
	 * packets by their real size (immediate mode falls back to TPACKET_V2,
	 * one snaplen-sized frame per packet: a few hundred packets per ring).
	 * A block is handed over when full or after BLOCK_TIMEOUT_MS: that
	 * delays a clone's copy, never production. Immediate mode where a
	 * connection's owner is checked: its socket must still be there.
	 */
	pcap_set_immediate_mode(cap->pcap, cap->cfg.immediate);
	pcap_set_timeout(cap->pcap, BLOCK_TIMEOUT_MS);
	pcap_set_buffer_size(cap->pcap,
			     (int)(cap->cfg.buffer > (1ULL << 30) ? 1ULL << 30 : cap->cfg.buffer));
	rc = pcap_activate(cap->pcap);
	if (rc < 0) {
		snprintf(err, errlen,
			 "cannot capture on %s: %s (check the interface name with `ip link`; "
			 "capturing needs root or CAP_NET_RAW)",
			 cap->iface, pcap_geterr(cap->pcap));
		goto fail;
	}
	cap->linktype = pcap_datalink(cap->pcap);
	/*
	 * Segments with bytes, or with SYN, FIN or RST: bare ACKs (a third of a
	 * request/response load) are left in the kernel. Gaps are still seen in
	 * the acknowledgements that answers and requests carry.
	 */
	if (cfg->match_host)
		snprintf(host, sizeof(host), "host %s and ", cfg->addr);
	snprintf(filter, sizeof(filter),
		 "%stcp port %d and (tcp[13] & 7 != 0 or ip6 or "
		 "ip[2:2] - ((ip[0] & 15) << 2) - ((tcp[12] & 240) >> 2) != 0)",
		 host, cfg->port);
	if (pcap_compile(cap->pcap, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0 ||
	    pcap_setfilter(cap->pcap, &prog) < 0) {
		snprintf(err, errlen, "cannot filter the capture on %s (%s): %s", cap->iface,
			 filter, pcap_geterr(cap->pcap));
		goto fail;
	}
	pcap_freecode(&prog);
	if (pcap_setnonblock(cap->pcap, 1, ebuf) < 0 ||
	    (fd = pcap_get_selectable_fd(cap->pcap)) < 0) {
		snprintf(err, errlen, "cannot watch the capture on %s: %s", cap->iface, ebuf);
		goto fail;
	}
	cap->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, cap);
	cap->tick = event_new(base, -1, EV_PERSIST, on_tick, cap);
	if (!cap->ev || !cap->tick) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	event_add(cap->ev, NULL);
	event_add(cap->tick, &tv);
	pr_info("capturing iface=%s filter=\"%s\" buffer=%llu linktype=%s", cap->iface, filter,
		(unsigned long long)cap->cfg.buffer, pcap_datalink_val_to_name(cap->linktype));
	*out = cap;
	return 0;
fail:
	if (cap->ev)
		event_free(cap->ev);
	if (cap->tick)
		event_free(cap->tick);
	pcap_close(cap->pcap);
	free(cap);
	return -EIO;
}

void cap_free(struct capture *cap)
{
	if (!cap)
		return;
	if (cap->ev)
		event_free(cap->ev);
	if (cap->tick)
		event_free(cap->tick);
	while (cap->all)
		cc_free(cap, cap->all, 1);
	if (cap->pcap)
		pcap_close(cap->pcap);
	free(cap);
}

void cap_get_stats(struct capture *cap, struct cap_stats *st)
{
	*st = cap->st;
}

const char *cap_iface(const struct capture *cap)
{
	return cap->iface;
}

/* ---- status: one field table, three views ---- */

static int f_iface(const void *o, const void *c, struct stats_val *v)
{
	(void)c;
	v->s = ((const struct capture *)o)->iface;
	return 0;
}

#define CAP_OFF(m) (offsetof(struct capture, st) + offsetof(struct cap_stats, m))
static const struct stats_field cap_fields[] = {
	{.name = "iface", .kind = STATS_STRING, .get = f_iface},
	{.name = "packets",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(packets),
	 .metric = "doppel_capture_packets_total",
	 .help = "TCP segments of the service's port captured."},
	{.name = "bytes",
	 .kind = STATS_COUNTER,
	 .unit = STATS_UNIT_BYTES,
	 .off = CAP_OFF(bytes),
	 .metric = "doppel_capture_payload_bytes_total",
	 .help = "Payload bytes of the captured segments."},
	{.name = "kernel_drops",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(kernel_drops),
	 .metric = "doppel_capture_kernel_drops_total",
	 .help = "Packets the kernel dropped before the capture read them (pcap_stats)."},
	{.name = "connections",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(conns),
	 .metric = "doppel_capture_connections_total",
	 .help = "Connections followed (mirrored to the clones, or recorded)."},
	{.name = "active",
	 .kind = STATS_GAUGE,
	 .off = CAP_OFF(conns_active),
	 .metric = "doppel_capture_connections_active",
	 .help = "Followed connections open now."},
	{.name = "midstream",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(conns_midstream),
	 .metric = "doppel_capture_midstream_total",
	 .help = "Connections open before the capture began (mirrored to no clone; recorded "
		 "from their next request)."},
	{.name = "not_ours",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(conns_not_ours),
	 .metric = "doppel_capture_not_ours_total",
	 .help = "Connections of other processes of the host, not followed."},
	{.name = "owner_unknown",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(conns_owner_unknown),
	 .metric = "doppel_capture_owner_unknown_total",
	 .help = "Connections followed whose socket was gone before its owner was checked."},
	{.name = "gaps",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(conns_gap),
	 .metric = "doppel_capture_gaps_total",
	 .help = "Connections reset on the clone side because captured bytes were missing."},
	{.name = "over_cap",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(conns_over_cap),
	 .metric = "doppel_capture_over_cap_total",
	 .help = "Connections not followed: too many at once."},
	{.name = "retransmitted_bytes",
	 .kind = STATS_COUNTER,
	 .unit = STATS_UNIT_BYTES,
	 .off = CAP_OFF(retransmitted),
	 .metric = "doppel_capture_retransmitted_bytes_total",
	 .help = "Payload bytes seen more than once, given to the clones once."},
	{.name = "out_of_order",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(out_of_order),
	 .metric = "doppel_capture_out_of_order_total",
	 .help = "Segments held until the bytes before them arrived."},
	{.name = "client_bytes",
	 .kind = STATS_COUNTER,
	 .unit = STATS_UNIT_BYTES,
	 .off = CAP_OFF(client_bytes),
	 .metric = "doppel_capture_client_bytes_total",
	 .help = "Client bytes fed to the clones in order."},
	{.name = "server_bytes",
	 .kind = STATS_COUNTER,
	 .unit = STATS_UNIT_BYTES,
	 .off = CAP_OFF(server_bytes),
	 .metric = "doppel_capture_server_bytes_total",
	 .help = "Production's answer bytes given to divergence in order."},
	{.name = "resets",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(resets),
	 .metric = "doppel_capture_resets_total",
	 .help = "Captured connections that ended with a reset."},
	{.name = "fins",
	 .kind = STATS_COUNTER,
	 .off = CAP_OFF(fins),
	 .metric = "doppel_capture_client_fins_total",
	 .help = "Captured connections the client ended with a FIN."},
};
static const struct stats_table cap_table = STATS_TABLE(cap_fields);

void cap_status_json(struct capture *cap, struct sbuf *sb)
{
	stats_json_object(sb, &cap_table, cap, NULL);
}

void cap_status_text(struct capture *cap, struct sbuf *sb)
{
	stats_text(sb, &cap_table, cap, NULL,
		   "capture on {iface}: {packets} packets, {kernel_drops} kernel drops; "
		   "{connections} connections mirrored ({active} active), {gaps} with gaps, "
		   "{midstream} midstream (not mirrored); {client_bytes} from clients, "
		   "{retransmitted_bytes} retransmitted (given once)\n");
}

void cap_metrics(struct capture *cap, struct sbuf *sb, const char *labels)
{
	stats_prom_object(sb, &cap_table, cap, NULL, labels);
}
