/*
 * record.h - traffic on disk: what passed through doppel written as pcap
 * files (libpcap's dump API) that tshark's "follow TCP stream" reads back
 * byte for byte, captures read back into TCP streams (doppel's, or any
 * tcpdump capture of a TCP service), and replay of a capture's client streams
 * into a server, with the answers compared to the recorded ones.
 *
 * Writing. A recorder owns a directory. Each *side* is one series of pcap
 * files (NAME-0001.pcap, NAME-0002.pcap, ... rotated past file_size): the
 * proxy uses "production" for client <-> production and "replica-NAME" for
 * what a replica received (client direction) and answered (server
 * direction). A *flow* is one TCP connection of a side: rec_flow_open writes
 * the handshake, rec_flow_data the bytes as segments with the right sequence
 * and acknowledgement numbers, rec_flow_close the FINs (or a reset). Headers
 * (Ethernet, IPv4, TCP with checksums) are synthesised. Over the recorder's
 * total cap nothing more is written and every packet left out is counted.
 *
 * Ownership: the caller owns the recorder; sides belong to it, flows to their
 * side (rec_close frees all). One thread uses a recorder. Writing never
 * blocks on anything but the local file system (buffered stdio).
 */
#ifndef DOPPEL_RECORD_H
#define DOPPEL_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/netaddr.h"
#include "common/sbuf.h"
#include "divergence/divergence.h"

struct rec_config {
	const char *dir;    /* created if missing */
	uint64_t file_size; /* rotate a side's file past this (default 64 MiB) */
	uint64_t total;	    /* all files together at most (default 1 GiB) */
};
void rec_config_defaults(struct rec_config *c);

struct rec_stats {
	uint64_t files;		  /* pcap files opened */
	uint64_t bytes;		  /* written to them */
	uint64_t packets;	  /* packets written */
	uint64_t flows;		  /* TCP connections recorded */
	uint64_t dropped_packets; /* left out to stay under the total cap */
	uint64_t dropped_bytes;	  /* payload bytes in them */
};

struct rec;
struct rec_side;
struct rec_flow;

/* Returns 0, or -errno with what failed in err. */
int rec_open(const struct rec_config *c, struct rec **out, char *err, size_t errlen);
/* Closes every flow (FIN) and file. */
void rec_close(struct rec *r);
void rec_get_stats(const struct rec *r, struct rec_stats *out);
const char *rec_dir(const struct rec *r);

/* The side called name (created on first use; NULL when out of memory). */
struct rec_side *rec_side_get(struct rec *r, const char *name);

/*
 * A connection from client to server (IPv4 addresses are used as they are,
 * others are replaced by 10.x.y.z addresses derived from conn_id). Writes
 * SYN, SYN-ACK, ACK.
 */
struct rec_flow *rec_flow_open(struct rec_side *s, uint64_t conn_id,
			       const struct net_endpoint *client,
			       const struct net_endpoint *server);
/* Bytes sent by the client (from_client) or the server. */
void rec_flow_data(struct rec_flow *f, int from_client, const void *buf, size_t n);
/* One side finished sending (FIN). */
void rec_flow_fin(struct rec_flow *f, int from_client);
/* The connection is over: FINs not sent yet are written (or one RST); f is freed. */
void rec_flow_close(struct rec_flow *f, int reset);

/* ---- reading captures ---- */

/* One direction's bytes, in the order of the capture, with when they were sent. */
struct rec_seg {
	uint64_t ts_ns; /* capture time of the packet that completed them */
	int from_client;
	uint32_t len;
	unsigned char *data;
};

/* One TCP connection found in a capture. */
struct rec_stream {
	char client[64], server[64]; /* "ADDR:PORT" */
	uint16_t server_port;
	uint64_t start_ns; /* first packet */
	int syn_seen, client_fin, reset;
	uint64_t client_bytes, server_bytes;
	uint64_t gaps;	      /* bytes missing (never captured) */
	uint64_t retransmits; /* bytes seen twice */
	unsigned nsegs, capsegs;
	struct rec_seg *segs;
};

struct rec_capture {
	unsigned nstreams;
	struct rec_stream *streams; /* in the order their first packet came */
	uint64_t packets, non_tcp, truncated;
	uint64_t bytes; /* payload kept */
};

/*
 * Reads FILE (pcap or pcapng, through libpcap) and reassembles the TCP
 * connections of service port `port` (0: the side that answered a SYN is the
 * server, or the lower port when the handshake was not captured). At most
 * max_bytes of payload are kept. Returns 0, or -errno with why in err.
 */
int rec_capture_read(const char *path, uint16_t port, uint64_t max_bytes, struct rec_capture *out,
		     char *err, size_t errlen);
/* The same from an open stream (closed when done); for tests and fuzzing. */
int rec_capture_read_fp(FILE *fp, uint16_t port, uint64_t max_bytes, struct rec_capture *out,
			char *err, size_t errlen);
void rec_capture_free(struct rec_capture *c);

/* ---- replay ---- */

struct rec_replay_opts {
	struct net_endpoint to;
	double speed;	     /* 1.0: recorded timing; 0: as fast as possible */
	uint64_t quiet_ns;   /* an answer shorter than recorded is over after this silence */
	uint64_t timeout_ns; /* connecting, and the whole wait for one answer */
	const struct div_rules *rules;
};
void rec_replay_opts_defaults(struct rec_replay_opts *o);

struct rec_replay_result {
	uint64_t connections, connect_failures;
	uint64_t requests; /* requests sent (protocol requests, or client sends for raw) */
	uint64_t bytes_sent, bytes_answered, bytes_recorded;
	struct div_types *types;
	struct div_replica *rep; /* the server's answers against the recorded ones */
};

/*
 * Sends every client stream of cap to opts->to: connections open in capture
 * order, and every client send waits until all sends before it (in capture
 * time, over every connection) were answered as long as recorded (or went
 * quiet), and with speed > 0 until its recorded time. Answers are compared with
 * the recorded ones through the normaliser of opts->rules. Returns 0, or
 * -errno with why in err; res must be freed with rec_replay_result_free.
 */
int rec_replay(const struct rec_capture *cap, const struct rec_replay_opts *opts,
	       struct rec_replay_result *res, char *err, size_t errlen);
void rec_replay_result_free(struct rec_replay_result *res);
void rec_replay_report(const struct rec_replay_result *res, int json, struct sbuf *sb);

#endif
