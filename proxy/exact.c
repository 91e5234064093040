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

/* One connection to production as it was at the hold. */
struct exact_note {
	uint64_t id;
	uint8_t addr[4]; /* doppel's end in production's netns */
	uint16_t port;
	struct tcp_origin org;
	uint64_t given, answered; /* prod_given and prod_answered at the hold */
};

struct proxy_peer {
	uint64_t id;
	int fd;
	uint64_t skip;
};

struct proxy_peers {
	unsigned n;
	struct proxy_peer p[];
};

/* Can c continue exactly? Plain TCP to production, both ways open, a client's connection. */
static int eligible(const struct proxy_conn *c)
{
	return c->cli.fd >= 0 && !c->owner && !c->front_done && !c->be.tls &&
	       (c->be.flags & SF_OPEN) &&
	       !(c->be.flags & (SF_CONNECTING | SF_SHUT_OUT | SF_EOF_IN | SF_FIN_PENDING));
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
		struct exact_note *e = &notes[n];
		struct sockaddr_in a;
		socklen_t len = sizeof(a);
		int rc;

		if (!eligible(c))
			continue;
		if (getsockname(c->be.fd, (struct sockaddr *)&a, &len) < 0 ||
		    a.sin_family != AF_INET)
			continue; /* IPv6 production: joined at a turn */
		rc = tcprepair_origin(c->be.fd, c->prod_given, &e->org);
		if (rc) {
			failed++;
			why = rc;
			continue;
		}
		if (join_backlog_start(c) < 0)
			continue;
		e->id = c->id;
		memcpy(e->addr, &a.sin_addr, 4);
		e->port = ntohs(a.sin_port);
		e->given = c->prod_given;
		e->answered = c->prod_answered;
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

static const struct exact_note *find_note(const struct proxy *px, const struct tcp_end *e)
{
	for (unsigned i = 0; i < px->nnotes; i++)
		if (px->notes[i].port == e->dport && !memcmp(px->notes[i].addr, e->dst, 4))
			return &px->notes[i];
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
		p->p[p->n++] = (struct proxy_peer){note->id, fd, (uint64_t)skip};
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
