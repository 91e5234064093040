/*
 * tcpimg.c - the service's established TCP connections, read from CRIU's
 * images of a dump made with --tcp-established.
 *
 * Two images say it all (CRIU 4.x, images/fdinfo.proto, sk-inet.proto,
 * tcp-stream.proto): files.img holds one file_entry per open file, an
 * inet_sk_entry (isk, field 4) for each socket, with its inode, family,
 * protocol, state and both addresses; tcp-stream-INO.img holds, for each
 * established TCP socket, one tcp_stream_entry (sequence numbers, options,
 * windows) followed by the bytes of its queues. An image is two 32-bit magic
 * numbers, then entries, each a 32-bit length and a protobuf message.
 *
 * Only what is needed is decoded (a protobuf reader of a few lines: varints
 * and length-delimited fields; other wire types skipped); anything malformed
 * is refused as a whole (-EBADMSG), never read past its end.
 */
#include "clonemgr/cm-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMG_COMMON_MAGIC 0x54564319u
#define FILES_MAGIC 0x56303138u
#define TCP_STREAM_MAGIC 0x51465506u
#define IMG_MAX (64u << 20) /* files.img of a service with very many fds */

enum { FD_INETSK = 4, FAMILY_INET = 2, PROTO_TCP = 6, STATE_ESTABLISHED = 1 };

/* ---- protobuf, as much as needed ---- */

struct pb {
	const uint8_t *p, *end;
};

static int pb_varint(struct pb *b, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (b->p >= b->end)
			return -EBADMSG;
		x |= (uint64_t)(*b->p & 0x7f) << shift;
		if (!(*b->p++ & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EBADMSG;
}

/*
 * The next field: its number, and either its value (varint, fixed) or its
 * bytes (length-delimited, in sub). 1: a field; 0: the end; -EBADMSG.
 */
static int pb_next(struct pb *b, unsigned *field, uint64_t *v, struct pb *sub)
{
	uint64_t key, len;

	if (b->p == b->end)
		return 0;
	if (pb_varint(b, &key))
		return -EBADMSG;
	*field = (unsigned)(key >> 3);
	*v = 0;
	sub->p = sub->end = NULL; /* a field of the wrong wire type carries no bytes */
	switch (key & 7) {
	case 0:
		return pb_varint(b, v) ? -EBADMSG : 1;
	case 1:
	case 5: {
		size_t n = (key & 7) == 1 ? 8 : 4;

		if ((size_t)(b->end - b->p) < n)
			return -EBADMSG;
		for (size_t i = 0; i < n; i++)
			*v |= (uint64_t)b->p[i] << (8 * i);
		b->p += n;
		return 1;
	}
	case 2:
		if (pb_varint(b, &len) || len > (uint64_t)(b->end - b->p))
			return -EBADMSG;
		sub->p = b->p;
		sub->end = b->p + len;
		b->p += len;
		return 1;
	default:
		return -EBADMSG; /* groups: not in CRIU's images */
	}
}

/* Each entry of an image in buf: fn(arg, entry); stops at fn's non-zero. */
static int img_entries(const uint8_t *buf, size_t n, uint32_t magic,
		       int (*fn)(void *arg, struct pb *entry), void *arg)
{
	size_t off = 8;
	uint32_t m0, m1;

	if (n < 8)
		return -EBADMSG;
	memcpy(&m0, buf, 4);
	memcpy(&m1, buf + 4, 4);
	if (m0 != IMG_COMMON_MAGIC || m1 != magic)
		return -EBADMSG;
	while (off < n) {
		uint32_t len;
		struct pb e;
		int rc;

		if (n - off < 4)
			return -EBADMSG;
		memcpy(&len, buf + off, 4);
		off += 4;
		if (len > n - off)
			return -EBADMSG;
		e.p = buf + off;
		e.end = buf + off + len;
		off += len;
		if ((rc = fn(arg, &e)))
			return rc < 0 ? rc : 0;
	}
	return 0;
}

/* ---- files.img: established IPv4 TCP sockets ---- */

struct files_ctx {
	struct cm_tcp_sock *out;
	unsigned max, n;
};

static int inet_sk(struct pb *b, struct cm_tcp_sock *s, int *wanted)
{
	uint64_t family = 0, proto = 0, state = 0, v;
	unsigned field, nsrc = 0, ndst = 0;
	struct pb sub;
	int rc;

	while ((rc = pb_next(b, &field, &v, &sub)) > 0) {
		switch (field) {
		case 2:
			s->ino = (uint32_t)v;
			break;
		case 3:
			family = v;
			break;
		case 5:
			proto = v;
			break;
		case 6:
			state = v;
			break;
		case 7:
			s->end.sport = (uint16_t)v;
			break;
		case 8:
			s->end.dport = (uint16_t)v;
			break;
		case 11:
		case 12: {
			/* an address word as CRIU wrote it: the bytes in network order */
			uint32_t w = (uint32_t)v;

			if (field == 11 && nsrc++ == 0)
				memcpy(s->end.src, &w, 4);
			if (field == 12 && ndst++ == 0)
				memcpy(s->end.dst, &w, 4);
			break;
		}
		}
	}
	if (rc < 0)
		return rc;
	*wanted = family == FAMILY_INET && proto == PROTO_TCP && state == STATE_ESTABLISHED &&
		  nsrc == 1 && ndst == 1;
	return 0;
}

static int files_entry(void *arg, struct pb *e)
{
	struct files_ctx *ctx = arg;
	uint64_t v, type = 0;
	unsigned field;
	struct pb sub, isk = {NULL, NULL};
	int rc, wanted = 0;

	while ((rc = pb_next(e, &field, &v, &sub)) > 0) {
		if (field == 1)
			type = v;
		else if (field == 4)
			isk = sub;
	}
	if (rc < 0)
		return rc;
	if (type != FD_INETSK || !isk.p)
		return 0;
	if (ctx->n == ctx->max)
		return 1; /* as many as the caller can take */
	memset(&ctx->out[ctx->n], 0, sizeof(ctx->out[0]));
	if ((rc = inet_sk(&isk, &ctx->out[ctx->n], &wanted)))
		return rc;
	ctx->n += (unsigned)wanted;
	return 0;
}

int cm_tcpimg_files(const uint8_t *buf, size_t n, struct cm_tcp_sock *out, unsigned max)
{
	struct files_ctx ctx = {out, max, 0};
	int rc = img_entries(buf, n, FILES_MAGIC, files_entry, &ctx);

	return rc < 0 ? rc : (int)ctx.n;
}

/* ---- tcp-stream-INO.img ---- */

static int stream_entry(void *arg, struct pb *e)
{
	struct tcp_end *end = arg;
	uint64_t v, outq_len = 0, opt_mask = 0;
	unsigned field, seen = 0;
	struct pb sub;
	int rc;

	while ((rc = pb_next(e, &field, &v, &sub)) > 0) {
		switch (field) {
		case 2:
			end->rcv_nxt = (uint32_t)v;
			seen |= 1;
			break;
		case 3:
			outq_len = v;
			break;
		case 4:
			end->snd_nxt = (uint32_t)v;
			seen |= 2;
			break;
		case 5:
			opt_mask = v;
			break;
		case 6:
			end->snd_wscale = (uint8_t)(v > 14 ? 14 : v);
			break;
		case 7:
			end->mss = (uint32_t)v;
			break;
		case 8:
			end->rcv_wscale = (uint8_t)(v > 14 ? 14 : v);
			break;
		case 14:
			end->snd_wnd = (uint32_t)v;
			break;
		case 16:
			end->rcv_wnd = (uint32_t)v;
			break;
		}
	}
	if (rc < 0)
		return rc;
	if (seen != 3)
		return -EBADMSG; /* required fields missing */
	end->snd_una = end->snd_nxt - (uint32_t)outq_len;
	end->sack = !!(opt_mask & 2);	    /* TCPI_OPT_SACK */
	end->timestamps = !!(opt_mask & 1); /* TCPI_OPT_TIMESTAMPS */
	if (!(opt_mask & 4))		    /* TCPI_OPT_WSCALE */
		end->snd_wscale = end->rcv_wscale = 0;
	return 1; /* the first entry is the stream; the queues' bytes follow */
}

int cm_tcpimg_stream(const uint8_t *buf, size_t n, struct tcp_end *end)
{
	/* after the entry come the queues' raw bytes: parse the first entry only */
	uint32_t len;

	if (n < 12)
		return -EBADMSG;
	memcpy(&len, buf + 8, 4);
	if (len > n - 12)
		return -EBADMSG;
	return img_entries(buf, 12 + (size_t)len, TCP_STREAM_MAGIC, stream_entry, end);
}

/* ---- from a directory ---- */

static int slurp(const char *path, uint8_t **buf, size_t *n)
{
	FILE *f = fopen(path, "re");
	size_t cap = 0, len = 0;
	uint8_t *b = NULL;
	int rc = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (len == cap) {
			uint8_t *nb;

			if (cap >= IMG_MAX) {
				rc = -EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 4096;
			nb = realloc(b, cap);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			b = nb;
		}
		size_t got = fread(b + len, 1, cap - len, f);

		len += got;
		if (got == 0) {
			if (ferror(f))
				rc = -EIO;
			break;
		}
	}
	fclose(f);
	if (rc) {
		free(b);
		return rc;
	}
	*buf = b;
	*n = len;
	return 0;
}

int cm_tcp_ends(const char *images_dir, struct tcp_end *out, unsigned max)
{
	char path[CM_PATH_MAX + 64];
	struct cm_tcp_sock *socks;
	uint8_t *buf;
	size_t n;
	int rc, count = 0;

	if (!max)
		return 0;
	socks = calloc(max, sizeof(*socks));
	if (!socks)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/files.img", images_dir);
	rc = slurp(path, &buf, &n);
	if (rc) {
		free(socks);
		return rc;
	}
	rc = cm_tcpimg_files(buf, n, socks, max);
	free(buf);
	for (int i = 0; i < rc; i++) {
		snprintf(path, sizeof(path), "%s/tcp-stream-%x.img", images_dir, socks[i].ino);
		if (slurp(path, &buf, &n))
			continue; /* not dumped as established: restored closed */
		socks[i].end.snd_wnd = socks[i].end.rcv_wnd = 0;
		if (cm_tcpimg_stream(buf, n, &socks[i].end) >= 0)
			out[count++] = socks[i].end;
		free(buf);
	}
	free(socks);
	return rc < 0 ? rc : count;
}
