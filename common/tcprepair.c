/*
 * tcprepair.c - see tcprepair.h. The order of the calls in tcprepair_peer()
 * is the kernel's: sequence numbers before connect(), options and window
 * after it (as CRIU's libsoccr restores a socket).
 */
#include "common/tcprepair.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/netns.h"

/* TCP option kinds (RFC 793, 1323, 2018), for TCP_REPAIR_OPTIONS */
#define OPT_MAXSEG 2
#define OPT_WINDOW 3
#define OPT_SACK_PERM 4
#define OPT_TIMESTAMP 8

static int sockopt(int fd, int name, const void *v, socklen_t len)
{
	return setsockopt(fd, IPPROTO_TCP, name, v, len) < 0 ? -errno : 0;
}

static int set_int(int fd, int name, int v)
{
	return sockopt(fd, name, &v, sizeof(v));
}

/* The sequence number of fd's queue q (TCP_SEND_QUEUE: the next byte to write; RECV: expected). */
static int queue_seq(int fd, int q, uint32_t *seq)
{
	socklen_t len = sizeof(*seq);
	int rc = set_int(fd, TCP_REPAIR_QUEUE, q);

	if (rc)
		return rc;
	return getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &len) < 0 ? -errno : 0;
}

static int bytes_received(int fd, uint64_t *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	if (len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return -ENOPROTOOPT;
	*out = ti.tcpi_bytes_received;
	return 0;
}

int tcprepair_origin(int fd, uint64_t written, struct tcp_origin *out)
{
	uint32_t snd, rcv;
	uint64_t before, after;
	int rc = set_int(fd, TCP_REPAIR, TCP_REPAIR_ON);

	if (rc)
		return rc;
	rc = queue_seq(fd, TCP_SEND_QUEUE, &snd);
	/* bytes may arrive between two reads: read until they agree */
	for (int tries = 0; !rc && tries < 8; tries++) {
		if ((rc = bytes_received(fd, &before)) ||
		    (rc = queue_seq(fd, TCP_RECV_QUEUE, &rcv)) || (rc = bytes_received(fd, &after)))
			break;
		if (before == after)
			break;
		rc = tries == 7 ? -EAGAIN : 0;
	}
	set_int(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (set_int(fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) && !rc)
		rc = -EIO;
	if (rc)
		return rc;
	out->snd_first = snd - (uint32_t)written;
	out->rcv_first = rcv - (uint32_t)after;
	return 0;
}

static int peer_setup(int fd, const struct tcp_end *e)
{
	struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(e->dport)};
	struct sockaddr_in remote = {.sin_family = AF_INET, .sin_port = htons(e->sport)};
	struct tcp_repair_opt opts[4];
	unsigned nopts = 0;
	int rc;

	memcpy(&local.sin_addr, e->dst, 4);
	memcpy(&remote.sin_addr, e->src, 4);
	/* repair mode forces the address's reuse: bound next to a listener on it too (no
	 * SO_REUSEADDR, which would turn that off) */
	if ((rc = set_int(fd, TCP_REPAIR, TCP_REPAIR_ON)))
		return rc;
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0)
		return -errno;
	if ((rc = set_int(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)) ||
	    (rc = set_int(fd, TCP_QUEUE_SEQ, (int)e->rcv_nxt)) ||
	    (rc = set_int(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)) ||
	    (rc = set_int(fd, TCP_QUEUE_SEQ, (int)e->snd_nxt)))
		return rc;
	if (connect(fd, (struct sockaddr *)&remote, sizeof(remote)) < 0)
		return -errno;
	opts[nopts++] = (struct tcp_repair_opt){OPT_MAXSEG, e->mss ? e->mss : 536};
	if (e->snd_wscale || e->rcv_wscale)
		/* this end sends with the scale the service's end receives with */
		opts[nopts++] = (struct tcp_repair_opt){
			OPT_WINDOW, (uint32_t)e->rcv_wscale | ((uint32_t)e->snd_wscale << 16)};
	if (e->sack)
		opts[nopts++] = (struct tcp_repair_opt){OPT_SACK_PERM, 0};
	if (e->timestamps)
		opts[nopts++] = (struct tcp_repair_opt){OPT_TIMESTAMP, 0};
	if ((rc = sockopt(fd, TCP_REPAIR_OPTIONS, opts, (socklen_t)(nopts * sizeof(opts[0])))))
		return rc;
	if (e->snd_wnd && e->rcv_wnd) {
		struct tcp_repair_window w = {
			.snd_wl1 = e->snd_nxt,
			.snd_wnd = e->rcv_wnd, /* what the service's end lets this one send */
			.max_window = e->rcv_wnd,
			.rcv_wnd = e->snd_wnd,
			.rcv_wup = e->snd_nxt,
		};

		if ((rc = sockopt(fd, TCP_REPAIR_WINDOW, &w, sizeof(w))))
			return rc;
	}
	return set_int(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
}

int tcprepair_peer(int netns_fd, const struct tcp_end *end)
{
	int fd, rc;

	fd = netns_fd >= 0 ? netns_socket(netns_fd, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)
			   : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return netns_fd >= 0 ? fd : -errno;
	rc = peer_setup(fd, end);
	if (!rc && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		rc = -errno;
	if (rc) {
		close(fd); /* in repair mode: closes without a word to anyone */
		return rc;
	}
	return fd;
}

int tcprepair_done(int fd)
{
	return set_int(fd, TCP_REPAIR, TCP_REPAIR_OFF);
}
