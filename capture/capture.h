/*
 * capture.h - a passive capture of one TCP service's conversations, given to
 * a sink: libpcap live capture of one TCP port, each connection reassembled
 * in order in both directions, and given to the sink (a struct
 * proxy_observer: opened, client bytes, server bytes, closed).
 *
 * Two sinks use it. `doppel adopt --capture IFACE` feeds clones: every client
 * connection whose SYN was seen is opened towards every clone through the
 * proxy's mirrored connections (proxy_mirror_observer(), proxy/proxy.h), so
 * the same bounded buffers, overflow accounting, debug window and divergence
 * apply. `doppel adopt --upstream` records production's conversations with
 * its upstreams (the aggregator's recorder), where the "client" is
 * production and the "server" the upstream.
 *
 * A connection whose bytes cannot all be known (the kernel dropped packets,
 * the peer acknowledged bytes the capture never saw, the reordering buffer
 * is full: 1 MiB per direction, 64 MiB in all) is closed with a reset on
 * the clone side and counted as a gap:
 * a clone is never fed wrong bytes. Connections already open when the
 * capture started are production's alone (counted as midstream), unless
 * cap_config.midstream: then they are followed from the first client bytes
 * seen (a recording can start at a request; a clone's leg cannot start in
 * the middle of a conversation).
 *
 * A connection can be asked about before it is followed (cap_config.owned):
 * the upstream recorder follows only production's own connections, not
 * those of other processes of the host talking to the same upstream.
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
struct proxy_observer;
struct capture;

/* Whose is the connection from client address cip (IPv4 mapped), port cport? */
enum { CAP_NOT_OURS = 0, CAP_OURS = 1, CAP_OWNER_UNKNOWN = 2 };
typedef int (*cap_owned_fn)(void *arg, const unsigned char cip[16], uint16_t cport);

/* Set in the conn_id given to the sink's conn_open: open before the capture began. */
#define CAP_MIDSTREAM_ID (1ULL << 63)

struct cap_config {
	const char *iface;  /* NULL: the interface that carries addr */
	const char *addr;   /* the service's IPv4 address ("127.0.0.1": lo) */
	int port;	    /* the service's TCP port */
	int match_host;	    /* the BPF filter also names addr (host ADDR) */
	int midstream;	    /* follow connections open before the capture */
	cap_owned_fn owned; /* NULL: every connection; else CAP_NOT_OURS ones are not followed */
	void *owned_arg;
	int immediate;	      /* packets handed over at once, not in 5 ms blocks (fewer per ring) */
	uint64_t buffer;      /* kernel ring size (0: 32 MiB) */
	uint64_t reorder_max; /* out-of-order bytes held per direction (0: 1 MiB) */
	unsigned max_conns;   /* connections followed at once (0: 4096) */
};

struct cap_stats {
	uint64_t packets, bytes;      /* TCP segments seen, their payload bytes */
	uint64_t kernel_drops;	      /* pcap_stats: ps_drop + ps_ifdrop */
	uint64_t conns, conns_active; /* client connections given to the sink */
	uint64_t conns_midstream;     /* open before the capture began (followed if midstream) */
	uint64_t conns_not_ours;      /* cap_config.owned said another process's */
	uint64_t conns_owner_unknown; /* followed: the socket was gone before the check */
	uint64_t conns_gap;	      /* closed on the clone side: bytes missing */
	uint64_t conns_over_cap;      /* not followed: max_conns reached */
	uint64_t retransmitted;	      /* payload bytes seen twice (dropped) */
	uint64_t out_of_order;	      /* segments held until their turn */
	uint64_t client_bytes, server_bytes; /* fed in order */
	uint64_t resets, fins;
};

/*
 * Start capturing into sink (copied; its arg must outlive the capture).
 * 0, or -errno with the cause and a fix in err.
 */
int cap_new(struct event_base *base, const struct proxy_observer *sink,
	    const struct cap_config *cfg, struct capture **out, char *err, size_t errlen);
/*
 * The same without a live capture: packets come from cap_feed() (a link
 * layer of DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2 or DLT_RAW). For tests
 * and captures read from files. 0 or -ENOMEM.
 */
int cap_new_fed(struct event_base *base, const struct proxy_observer *sink,
		const struct cap_config *cfg, struct capture **out);
void cap_feed(struct capture *cap, int linktype, const void *pkt, size_t len);
/* Close every followed connection (reset) and stop. NULL is fine. */
void cap_free(struct capture *cap);
void cap_get_stats(struct capture *cap, struct cap_stats *st);
const char *cap_iface(const struct capture *cap);
/* Status from one field table: a JSON object, a line of text, Prometheus samples. */
void cap_status_json(struct capture *cap, struct sbuf *sb);
void cap_status_text(struct capture *cap, struct sbuf *sb);
void cap_metrics(struct capture *cap, struct sbuf *sb, const char *labels);

/* The interface that carries IPv4 addr (lo for loopback addresses). 0 or -errno. */
int cap_iface_for(const char *addr, char *iface, size_t len);
/*
 * The interface this host's own connections to IPv4 addr go through: lo for
 * any address of this host, else the interface of the source address routed
 * to it. 0 or -errno.
 */
int cap_iface_towards(const char *addr, char *iface, size_t len);

#endif
