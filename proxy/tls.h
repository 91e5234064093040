/*
 * tls.h - TLS on a side of a connection (private to proxy/): the server
 * contexts a client's handshake is made with (certificates chosen by SNI),
 * the client context towards production (--tls-backend), and a non-blocking
 * SSL_read/SSL_write state machine on a side's socket.
 *
 * conn.c calls these in place of recv/send/segq_write when side->tls is set;
 * everything after decryption (production, replica legs, divergence) sees
 * plaintext in the chunks, exactly as for a plain TCP client.
 *
 * Ownership and threads: struct tls_front belongs to struct proxy (created by
 * proxy_new, freed by proxy_free). A certificate set (struct tls_certs) is
 * reference-counted: the front holds the current one, and each handshaking
 * connection holds the one it started with, so a reload (SIGHUP) swaps the
 * set for new handshakes while old connections finish with theirs (their
 * SSL objects hold OpenSSL's own references on the SSL_CTX). A struct
 * tls_conn belongs to its side: created at accept (client) or at connect
 * (production), freed by side_close(). All on the proxy's thread.
 */
#ifndef DOPPEL_PROXY_TLS_H
#define DOPPEL_PROXY_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/chunk.h"
#include "proxy/proxy.h"

struct proxy;
struct side;
struct tls_front;
struct tls_conn;

/* Counters, shown in /status and /metrics (status.c). */
struct tls_stats {
	uint64_t handshakes;	 /* client handshakes completed */
	uint64_t active;	 /* client connections with TLS (handshaking or established) */
	uint64_t fail_timeout;	 /* no complete handshake within the handshake timeout */
	uint64_t fail_no_shared; /* no protocol version, cipher or group in common */
	uint64_t fail_not_tls;	 /* the client did not speak TLS (plain HTTP, garbage) */
	uint64_t fail_closed;	 /* the client closed or reset mid-handshake */
	uint64_t fail_other;  /* anything else (a client alert: unknown CA, bad certificate...) */
	uint64_t sni_unknown; /* handshakes naming a host no certificate covers (default used) */
	uint64_t reloads, reload_failures;
	uint64_t backend_handshakes, backend_failures; /* --tls-backend */
};

/* Loads cfg's certificates and keys; *out stays NULL when TLS is not asked for. */
int tls_front_new(const struct proxy_tls_config *cfg, struct tls_stats *stats,
		  const struct net_endpoint *backend, struct tls_front **out, char *err,
		  size_t errlen);
void tls_front_free(struct tls_front *tf);
/* New certificates for new handshakes; on error the current ones stay. */
int tls_front_reload(struct tls_front *tf, char *err, size_t errlen);
int tls_front_serves(const struct tls_front *tf);  /* terminates client TLS */
int tls_front_backend(const struct tls_front *tf); /* re-encrypts towards production */

/*
 * A server (client side of a connection) or client (production side) TLS
 * session on s->fd, non-blocking. The handshake timeout starts now; when it
 * fires, conn_tls_timeout(s) is called.
 */
struct tls_conn *tls_conn_server(struct tls_front *tf, struct event_base *base, struct side *s);
/* sni: the name the client asked for (NULL: none); also the name verified */
struct tls_conn *tls_conn_client(struct tls_front *tf, struct event_base *base, struct side *s,
				 const char *sni);
void tls_conn_free(struct tls_conn *t);
/* The SNI the client sent (NULL if none or not yet known). */
const char *tls_conn_sni(const struct tls_conn *t);

/* One step of the handshake: 1 done, 0 wants more I/O, -1 failed (counted by reason). */
int tls_handshake(struct tls_conn *t);
/* Like recv/send on a non-blocking socket: >= 0, or -1 with errno (EAGAIN: try later). */
ssize_t tls_recv(struct tls_conn *t, void *buf, size_t n);
ssize_t tls_send(struct tls_conn *t, const void *buf, size_t n);
/* Like segq_write: bytes written (>= 0) or -errno. */
ssize_t tls_segq_write(struct tls_conn *t, struct chunk_pool *p, struct segq *q);
/* Send close_notify (best effort) before the socket's FIN. */
void tls_close_notify(struct tls_conn *t);

/* conn.c: the handshake on s did not complete in time (already counted). */
void conn_tls_timeout(struct side *s);

#endif
