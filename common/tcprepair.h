/*
 * tcprepair.h - one end of an established TCP connection, read and made
 * with the kernel's TCP repair mode (TCP_REPAIR, Linux >= 4.17; root).
 *
 * A live clone of a service restores the service's end of each connection
 * that was open at the freeze (CRIU --tcp-established) inside the clone's own
 * network namespace, where the other end (doppel's) does not exist. doppel
 * makes that other end there: a socket put in repair mode, bound to the same
 * address and port as doppel's end in production, its sequence numbers set
 * to continue exactly where the service's end stopped, and connected without
 * a handshake. Once the service's end is restored, repair mode is left and
 * the two ends talk as if nothing had happened.
 *
 * The sequence numbers of a socket only have a meaning against a stream
 * offset: tcprepair_sample() reads, for doppel's own end, which sequence
 * number the first byte of each direction had (its ISN + 1), so that a
 * sequence number read from the service's end (CRIU's image) becomes an
 * offset in the bytes doppel wrote and read.
 */
#ifndef DOPPEL_COMMON_TCPREPAIR_H
#define DOPPEL_COMMON_TCPREPAIR_H

#include <stdint.h>

/* The service's end of a connection, as CRIU dumped it (see clonemgr/tcpimg.c). */
struct tcp_end {
	uint8_t src[4], dst[4]; /* IPv4, network order: the service's end, its peer */
	uint16_t sport, dport;	/* host order */
	uint32_t rcv_nxt;	/* the next byte it expects (CRIU inq_seq) */
	uint32_t snd_una;	/* the first byte its peer has not acknowledged */
	uint32_t snd_nxt;	/* the next byte it will write (CRIU outq_seq) */
	uint32_t mss;
	uint8_t snd_wscale, rcv_wscale;
	uint8_t sack, timestamps;
	uint32_t snd_wnd, rcv_wnd; /* 0: unknown */
};

/* Where the two directions of a socket began, as sequence numbers. */
struct tcp_origin {
	uint32_t snd_first; /* the sequence number of the first byte written */
	uint32_t rcv_first; /* the sequence number of the first byte received */
};

/*
 * Read where fd's two directions began, given how many bytes were written to
 * it (accepted by send) so far: the socket enters repair mode for the reads
 * and leaves it without a window probe. Nothing may be written to fd
 * meanwhile. 0, or -errno (EPERM: no CAP_NET_ADMIN; ENOPROTOOPT: no repair).
 */
int tcprepair_origin(int fd, uint64_t written, struct tcp_origin *out);

/*
 * Make the other end of `end` inside the network namespace netns_fd (-1: the
 * caller's): a non-blocking socket, in repair mode, bound to end->dst and
 * connected to end->src, whose next byte to send is end->rcv_nxt and next
 * byte expected end->snd_nxt: what the service's end had sent but not seen
 * acknowledged (a delayed ACK) counts as received, as it was by the peer it
 * replaces, so the restored end does not send it again. Returns the fd, or
 * -errno.
 */
int tcprepair_peer(int netns_fd, const struct tcp_end *end);

/* Leave repair mode (once the service's end exists): the ends start talking. 0 or -errno. */
int tcprepair_done(int fd);

#endif
