/*
 * exact.c - the connections open at a clone's freeze continue on the clone
 * exactly where production's end of each was dumped (proxy.h,
 * proxy_peers_make; the fallback is join.c's join at a turn).
 *
 * Offsets, not sequence numbers. doppel counts, per connection, the client
 * bytes production's socket took (prod_given) and production's bytes it read
 * (prod_answered). At the hold, nothing more is written to production, and
 * one look at doppel's socket in repair mode (tcprepair_origin) gives the
 * sequence number each stream began at. CRIU's image of production's end
 * gives, as sequence numbers, the next client byte it expected (rcv_nxt) and
 * the next byte of its own it would send (snd_nxt; on loopback, everything
 * before it had reached doppel's socket, acknowledged or not). So:
 *   - production had been given everything doppel wrote iff rcv_nxt is
 *     prod_given bytes past the client stream's origin; otherwise bytes were
 *     still in doppel's socket at the freeze, the clone cannot have them, and
 *     the connection is joined at a turn instead;
 *   - production's bytes before the freeze are those before snd_nxt: the
 *     ones read since the hold up to there are skipped (not compared), all
 *     after it are compared with the clone's answers.
 * The clone's end (its leg) is a socket made in the clone's netns with the
 * 4-tuple of doppel's end, sending from rcv_nxt and expecting snd_nxt; it
 * gets the connection's backlog from the hold (including bytes queued for
 * production then), then its live bytes, like any leg.
 */
#define LOG_PREFIX "proxy"
#include "proxy/proxy-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/tcprepair.h"

/* One connection to the service as it was at the hold. */
struct exact_note {
	uint64_t id;
	uint8_t local[4], peer[4]; /* doppel's end in production's netns, the service's */
	uint16_t lport, pport;
	struct tcp_origin org;
	uint64_t given, answered; /* bytes written to the service's end, read from it */
};

struct proxy_peer {
	uint64_t id;
	int fd;
	uint64_t sent, received; /* by the service's end, at the freeze */
	uint64_t skip;		 /* of those sent, read by doppel after the hold */
};

/* The side of c that faces the service doppel clones. */
static struct side *service_side(struct proxy_conn *c)
{
	return c->px->cfg.service_is_client ? &c->cli : &c->be;
}

struct proxy_peers {
	unsigned n;
	struct proxy_peer p[];
};

/* Can c continue exactly? Plain TCP to the service, both ways open, a client's connection. */
static int eligible(struct proxy_conn *c)
{
	const struct side *s = service_side(c);

	return c->cli.fd >= 0 && !c->owner && !c->front_done && !s->tls && (s->flags & SF_OPEN) &&
	       !(s->flags & (SF_CONNECTING | SF_SHUT_OUT | SF_EOF_IN | SF_FIN_PENDING));
}

void exact_hold(struct proxy *px)
{
	struct exact_note *notes;
	unsigned n = 0, cap = 0, failed = 0;
	int why = 0;

	for (struct proxy_conn *c = px->conns; c; c = c->next)
		cap += eligible(c);
	notes = cap ? calloc(cap, sizeof(*notes)) : NULL;
	for (struct proxy_conn *c = px->conns; c && notes && n < cap; c = c->next) {
		int client = px->cfg.service_is_client;
		struct exact_note *e = &notes[n];
		struct sockaddr_in a, b;
		socklen_t alen = sizeof(a), blen = sizeof(b);
		struct side *s;
		int rc;

		if (!eligible(c))
			continue;
		s = service_side(c);
		if (getsockname(s->fd, (struct sockaddr *)&a, &alen) < 0 ||
		    getpeername(s->fd, (struct sockaddr *)&b, &blen) < 0 ||
		    a.sin_family != AF_INET || b.sin_family != AF_INET)
			continue; /* IPv6: joined at a turn */
		e->given = client ? c->cli_given : c->prod_given;
		e->answered = client ? c->cli_read : c->prod_answered;
		rc = tcprepair_origin(s->fd, e->given, &e->org);
		if (rc) {
			failed++;
			why = rc;
			continue;
		}
		if (!client && join_backlog_start(c) < 0)
			continue;
		e->id = c->id;
		memcpy(e->local, &a.sin_addr, 4);
		memcpy(e->peer, &b.sin_addr, 4);
		e->lport = ntohs(a.sin_port);
		e->pport = ntohs(b.sin_port);
		n++;
	}
	if (failed)
		pr_warn("%u connection(s) cannot continue exactly on the next clone (TCP repair: "
			"%s); "
			"they join it at their next turn",
			failed, strerror(-why));
	pthread_mutex_lock(&px->exact_mu);
	free(px->notes);
	px->notes = notes;
	px->nnotes = n;
	pthread_mutex_unlock(&px->exact_mu);
}

void exact_end(struct proxy *px)
{
	pthread_mutex_lock(&px->exact_mu);
	free(px->notes);
	px->notes = NULL;
	px->nnotes = 0;
	pthread_mutex_unlock(&px->exact_mu);
}

/* The note of the connection whose service end e is (the same 4-tuple, seen from there). */
static const struct exact_note *find_note(const struct proxy *px, const struct tcp_end *e)
{
	for (unsigned i = 0; i < px->nnotes; i++) {
		const struct exact_note *n = &px->notes[i];

		if (n->lport == e->dport && n->pport == e->sport && !memcmp(n->local, e->dst, 4) &&
		    !memcmp(n->peer, e->src, 4))
			return n;
	}
	return NULL;
}

struct proxy_peers *proxy_peers_make(struct proxy *px, int netns_fd, const struct tcp_end *ends,
				     unsigned n, unsigned *made)
{
	struct proxy_peers *p = calloc(1, sizeof(*p) + n * sizeof(p->p[0]));
	unsigned unread = 0, failed = 0;
	int why = 0;

	*made = 0;
	if (!p)
		return NULL;
	pthread_mutex_lock(&px->exact_mu);
	for (unsigned i = 0; i < n; i++) {
		const struct tcp_end *e = &ends[i];
		const struct exact_note *note = find_note(px, e);
		int32_t unread_bytes, skip;
		int fd;

		if (!note)
			continue; /* not one of this proxy's connections */
		/* everything doppel wrote was in production's socket at the freeze? */
		unread_bytes = (int32_t)(note->org.snd_first + (uint32_t)note->given - e->rcv_nxt);
		/* production's bytes, since the hold, that were sent before the freeze */
		skip = (int32_t)(e->snd_nxt - (note->org.rcv_first + (uint32_t)note->answered));
		if (unread_bytes != 0 || skip < 0) {
			pr_debug("connection %llu cannot continue exactly: %d client bytes not in "
				 "production's socket, %d of production's bytes to skip",
				 (unsigned long long)note->id, unread_bytes, skip);
			unread++;
			continue;
		}
		fd = tcprepair_peer(netns_fd, e);
		if (fd < 0) {
			failed++;
			why = fd;
			continue;
		}
		p->p[p->n++] = (struct proxy_peer){note->id, fd, note->answered + (uint64_t)skip,
						   note->given, (uint64_t)skip};
	}
	pthread_mutex_unlock(&px->exact_mu);
	if (unread)
		pr_info("%u connection(s) had bytes production had not taken at the freeze: they "
			"join the clone at their next turn",
			unread);
	if (failed)
		pr_warn("cannot make the clone's end of %u connection(s) (TCP repair: %s): they "
			"join "
			"it at their next turn",
			failed, strerror(-why));
	*made = p->n;
	return p;
}

int exact_take(struct proxy_peers *peers, uint64_t id, uint64_t *skip)
{
	if (!peers)
		return -1;
	for (unsigned i = 0; i < peers->n; i++)
		if (peers->p[i].id == id && peers->p[i].fd >= 0) {
			int fd = peers->p[i].fd;

			peers->p[i].fd = -1;
			*skip = peers->p[i].skip;
			return fd;
		}
	return -1;
}

int proxy_peers_take_next(struct proxy_peers *p, uint64_t *conn_id, int *fd, uint64_t *sent,
			  uint64_t *received)
{
	for (unsigned i = 0; p && i < p->n; i++)
		if (p->p[i].fd >= 0) {
			*conn_id = p->p[i].id;
			*fd = p->p[i].fd;
			*sent = p->p[i].sent;
			*received = p->p[i].received;
			p->p[i].fd = -1;
			return 1;
		}
	return 0;
}

void exact_close_rest(struct proxy_peers *peers)
{
	if (!peers)
		return;
	for (unsigned i = 0; i < peers->n; i++)
		if (peers->p[i].fd >= 0) {
			tcprepair_done(peers->p[i].fd); /* so that the clone sees a FIN */
			close(peers->p[i].fd);
			peers->p[i].fd = -1;
		}
}

void proxy_peers_free(struct proxy_peers *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++)
		if (p->p[i].fd >= 0)
			close(p->p[i].fd); /* still in repair mode: gone without a word */
	free(p);
}
