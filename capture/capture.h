/*
 * capture.h - feed clones from a passive capture of production's traffic
 * (`doppel adopt --capture IFACE`): libpcap live capture of one TCP port,
 * each connection reassembled in order in both directions, and every client
 * connection whose SYN was seen opened towards every clone through the
 * proxy's mirrored connections (proxy/proxy.h), so the same bounded
 * buffers, overflow accounting, debug window and divergence apply.
 *
 * A connection whose bytes cannot all be known (the kernel dropped packets,
 * the peer acknowledged bytes the capture never saw, the reordering buffer
 * is full: 1 MiB per direction, 64 MiB in all) is closed with a reset on
 * the clone side and counted as a gap:
 * a clone is never fed wrong bytes. Connections already open when the
 * capture started are production's alone (counted as midstream).
 *
 * Ownership and threads: the caller owns the struct capture and the proxy;
 * everything runs on the thread of the event_base given to cap_new(), and
 * cap_free() must run before proxy_free().
 */
#ifndef DOPPEL_CAPTURE_H
#define DOPPEL_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"

struct event_base;
struct proxy;
struct capture;

struct cap_config {
	const char *iface;    /* NULL: the interface that carries addr */
	const char *addr;     /* the service's IPv4 address ("127.0.0.1": lo) */
	int port;	      /* the service's TCP port */
	uint64_t buffer;      /* kernel ring size (0: 32 MiB) */
	uint64_t reorder_max; /* out-of-order bytes held per direction (0: 1 MiB) */
	unsigned max_conns;   /* connections followed at once (0: 4096) */
};

struct cap_stats {
	uint64_t packets, bytes;	     /* TCP segments seen, their payload bytes */
	uint64_t kernel_drops;		     /* pcap_stats: ps_drop + ps_ifdrop */
	uint64_t conns, conns_active;	     /* client connections mirrored */
	uint64_t conns_midstream;	     /* open before the capture began: not mirrored */
	uint64_t conns_gap;		     /* closed on the clone side: bytes missing */
	uint64_t conns_over_cap;	     /* not followed: max_conns reached */
	uint64_t retransmitted;		     /* payload bytes seen twice (dropped) */
	uint64_t out_of_order;		     /* segments held until their turn */
	uint64_t client_bytes, server_bytes; /* fed in order */
	uint64_t resets, fins;
};

/* Start capturing. 0, or -errno with the cause and a fix in err. */
int cap_new(struct event_base *base, struct proxy *px, const struct cap_config *cfg,
	    struct capture **out, char *err, size_t errlen);
/*
 * The same without a live capture: packets come from cap_feed() (a link
 * layer of DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2 or DLT_RAW). For tests
 * and captures read from files. 0 or -ENOMEM.
 */
int cap_new_fed(struct event_base *base, struct proxy *px, const struct cap_config *cfg,
		struct capture **out);
void cap_feed(struct capture *cap, int linktype, const void *pkt, size_t len);
/* Close every mirrored connection (reset) and stop. NULL is fine. */
void cap_free(struct capture *cap);
void cap_get_stats(struct capture *cap, struct cap_stats *st);
const char *cap_iface(const struct capture *cap);
/* Status from one field table: a JSON object, a line of text, Prometheus samples. */
void cap_status_json(struct capture *cap, struct sbuf *sb);
void cap_status_text(struct capture *cap, struct sbuf *sb);
void cap_metrics(struct capture *cap, struct sbuf *sb, const char *labels);

/* The interface that carries IPv4 addr (lo for loopback addresses). 0 or -errno. */
int cap_iface_for(const char *addr, char *iface, size_t len);

#endif
