/*
 * tls.c - TLS termination at the front (and re-encryption towards
 * production) with OpenSSL 3, on the proxy's non-blocking sockets.
 *
 * How it fits: conn.c gives a side a struct tls_conn and then reads and
 * writes through tls_recv/tls_send/tls_segq_write instead of the socket
 * calls; the bytes those return are plaintext, which goes through the same
 * chunks, production writes, replica legs and divergence as plain TCP. So
 * clones always get plaintext and need no certificate.
 *
 * Handshakes run on the event loop: SSL_do_handshake on the non-blocking fd
 * (SSL_set_fd), one step per readiness event, never waiting; a per-connection
 * timer ends a handshake that does not complete in time, so a stalled client
 * costs one idle socket and nothing else. Failures are counted by reason.
 *
 * Certificates: one SSL_CTX per --tls-cert/--tls-key pair; the first is the
 * default. The servername callback picks the context whose certificate covers
 * the SNI host (X509_check_host: SAN and wildcards); a name no certificate
 * covers gets the default certificate and is counted (sni_unknown). Private
 * keys are read once per load by OpenSSL and never logged; a key file that
 * group or others may access is refused.
 */
#define LOG_PREFIX "tls"
#include "proxy/tls.h"

#include "proxy/proxy-int.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"

#define ALPN_MAX 256

/* One load of the certificates (refcounted: the front and handshakes in flight). */
struct tls_certs {
	unsigned refs;
	unsigned n;
	SSL_CTX *ctx[PROXY_TLS_MAX_CERTS];
	struct tls_stats *stats;
	const struct tls_front *tf;
};

struct tls_front {
	struct proxy_tls_config cfg;
	struct tls_stats *stats;
	struct tls_certs *certs;	     /* for new handshakes; NULL without --tls-cert */
	SSL_CTX *backend;		     /* --tls-backend */
	char backend_host[NETADDR_TEXT_MAX]; /* verified when the client sent no SNI */
	unsigned char alpn[ALPN_MAX];	     /* wire format: length-prefixed names */
	size_t alpn_len;
};

struct tls_conn {
	SSL *ssl;
	struct side *side;
	struct tls_front *tf;
	struct tls_certs *certs; /* held during the handshake (server) */
	struct event timer;
	int server, established;
};

/* ---- certificates ---- */

static void certs_put(struct tls_certs *c)
{
	if (!c || --c->refs)
		return;
	for (unsigned i = 0; i < c->n; i++)
		SSL_CTX_free(c->ctx[i]);
	free(c);
}

/* The first OpenSSL error as text (never key material: OpenSSL does not put it there). */
static const char *ssl_errtext(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_certs *c = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (!name || !*name)
		return SSL_TLSEXT_ERR_OK;
	for (unsigned i = 0; i < c->n; i++) {
		X509 *x = SSL_CTX_get0_certificate(c->ctx[i]);

		/* Some clients send an address as SNI: match it with IP subjectAltNames. */
		if (x && (X509_check_host(x, name, 0, 0, NULL) == 1 ||
			  X509_check_ip_asc(x, name, 0) == 1)) {
			if (i)
				SSL_set_SSL_CTX(ssl, c->ctx[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	c->stats->sni_unknown++;
	return SSL_TLSEXT_ERR_OK; /* the default certificate */
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned inlen, void *arg)
{
	const struct tls_front *tf = arg;
	unsigned char *sel;

	(void)ssl;
	if (SSL_select_next_proto(&sel, outlen, tf->alpn, (unsigned)tf->alpn_len, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK; /* no protocol in common: go on without ALPN */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int key_file_check(const char *key, char *err, size_t errlen)
{
	struct stat st;

	if (stat(key, &st) < 0) {
		int rc = -errno;

		snprintf(err, errlen, "--tls-key %s: %s", key, strerror(errno));
		return rc;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "--tls-key %s: the private key file is readable or writable by group "
			 "or others (mode %04o); allow its owner only: chmod 600 %s",
			 key, (unsigned)(st.st_mode & 07777), key);
		return -EPERM;
	}
	return 0;
}

static SSL_CTX *server_ctx(const struct tls_front *tf, unsigned i, char *err, size_t errlen)
{
	const char *cert = tf->cfg.cert[i], *key = tf->cfg.key[i];
	SSL_CTX *ctx;
	char e[256];

	if (key_file_check(key, err, errlen) < 0)
		return NULL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context: %s", ssl_errtext(e, sizeof(e)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
					 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"doppel", 6);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen,
			 "--tls-cert %s: cannot load the certificate: %s (a PEM file: the "
			 "certificate, then its intermediates)",
			 cert, ssl_errtext(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "--tls-key %s: cannot load the private key: %s (a PEM key)",
			 key, ssl_errtext(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen,
			 "--tls-key %s does not match --tls-cert %s: give each certificate "
			 "followed by its own key",
			 key, cert);
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, (void *)tf);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static struct tls_certs *certs_load(struct tls_front *tf, char *err, size_t errlen)
{
	struct tls_certs *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->refs = 1;
	c->stats = tf->stats;
	c->tf = tf;
	for (unsigned i = 0; i < tf->cfg.ncerts; i++) {
		c->ctx[i] = server_ctx(tf, i, err, errlen);
		if (!c->ctx[i]) {
			certs_put(c);
			return NULL;
		}
		c->n++;
		SSL_CTX_set_tlsext_servername_callback(c->ctx[i], servername_cb);
		SSL_CTX_set_tlsext_servername_arg(c->ctx[i], c);
	}
	return c;
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1" */
static int alpn_parse(struct tls_front *tf, const char *list, char *err, size_t errlen)
{
	const char *p = list;

	tf->alpn_len = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n > 255 || tf->alpn_len + 1 + n > sizeof(tf->alpn)) {
			snprintf(err, errlen,
				 "--alpn '%s': give protocol names separated by commas, e.g. "
				 "h2,http/1.1 (each 1 to 255 characters, %d in all)",
				 list, ALPN_MAX);
			return -EINVAL;
		}
		tf->alpn[tf->alpn_len++] = (unsigned char)n;
		memcpy(tf->alpn + tf->alpn_len, p, n);
		tf->alpn_len += n;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int backend_ctx(struct tls_front *tf, const struct net_endpoint *backend, char *err,
		       size_t errlen)
{
	const char *colon;
	char e[256];

	tf->backend = SSL_CTX_new(TLS_client_method());
	if (!tf->backend) {
		snprintf(err, errlen, "cannot create a TLS context: %s", ssl_errtext(e, sizeof(e)));
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(tf->backend, TLS1_2_VERSION);
	SSL_CTX_set_options(tf->backend, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(tf->backend, SSL_MODE_ENABLE_PARTIAL_WRITE |
					      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(tf->backend, SSL_VERIFY_PEER, NULL);
	if (tf->cfg.ca ? SSL_CTX_load_verify_locations(tf->backend, tf->cfg.ca, NULL) != 1
		       : SSL_CTX_set_default_verify_paths(tf->backend) != 1) {
		snprintf(err, errlen, "--tls-ca %s: cannot load the CA certificates: %s",
			 tf->cfg.ca ? tf->cfg.ca : "(system)", ssl_errtext(e, sizeof(e)));
		return -EINVAL;
	}
	if (!backend)
		return 0; /* checking the options only */
	/* The backend's host, without the port (and brackets for IPv6). */
	colon = strrchr(backend->text, ':');
	snprintf(tf->backend_host, sizeof(tf->backend_host), "%.*s",
		 (int)(colon ? colon - backend->text : (long)strlen(backend->text)), backend->text);
	if (tf->backend_host[0] == '[') {
		size_t n = strlen(tf->backend_host);

		memmove(tf->backend_host, tf->backend_host + 1, n);
		if (n >= 2 && tf->backend_host[n - 2] == ']')
			tf->backend_host[n - 2] = 0;
	}
	return 0;
}

int tls_front_new(const struct proxy_tls_config *cfg, struct tls_stats *stats,
		  const struct net_endpoint *backend, struct tls_front **out, char *err,
		  size_t errlen)
{
	struct tls_front *tf;
	int rc;

	*out = NULL;
	if (!cfg->ncerts && !cfg->backend)
		return 0;
	tf = calloc(1, sizeof(*tf));
	if (!tf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	tf->cfg = *cfg;
	tf->stats = stats;
	if (!tf->cfg.handshake_timeout_ns)
		tf->cfg.handshake_timeout_ns = 10 * NSEC_PER_SEC;
	rc = alpn_parse(tf, cfg->alpn ? cfg->alpn : "http/1.1", err, errlen);
	if (rc < 0)
		goto fail;
	if (cfg->ncerts) {
		tf->certs = certs_load(tf, err, errlen);
		if (!tf->certs) {
			rc = -EINVAL;
			goto fail;
		}
	}
	if (cfg->backend && (rc = backend_ctx(tf, backend, err, errlen)) < 0)
		goto fail;
	*out = tf;
	return 0;
fail:
	tls_front_free(tf);
	return rc;
}

void tls_front_free(struct tls_front *tf)
{
	if (!tf)
		return;
	certs_put(tf->certs);
	SSL_CTX_free(tf->backend);
	free(tf);
}

int tls_front_reload(struct tls_front *tf, char *err, size_t errlen)
{
	struct tls_certs *c;

	if (!tf->certs) {
		snprintf(err, errlen, "no --tls-cert to reload");
		return -ENOENT;
	}
	c = certs_load(tf, err, errlen);
	if (!c) {
		tf->stats->reload_failures++;
		return -EINVAL;
	}
	certs_put(tf->certs);
	tf->certs = c;
	tf->stats->reloads++;
	return 0;
}

int tls_front_serves(const struct tls_front *tf)
{
	return tf && tf->certs;
}

int tls_front_backend(const struct tls_front *tf)
{
	return tf && tf->backend;
}

/* ---- one connection ---- */

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tls_conn *t = arg;

	(void)fd;
	(void)what;
	if (t->server)
		t->tf->stats->fail_timeout++;
	else
		t->tf->stats->backend_failures++;
	pr_debug("TLS handshake timed out side=%s", t->server ? "client" : "production");
	conn_tls_timeout(t->side);
}

static struct tls_conn *tlsconn_new(struct tls_front *tf, struct event_base *base, struct side *s,
				    SSL_CTX *ctx, int fd)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	struct timeval tv = {(time_t)(tf->cfg.handshake_timeout_ns / NSEC_PER_SEC),
			     (suseconds_t)(tf->cfg.handshake_timeout_ns % NSEC_PER_SEC / 1000)};

	if (!t)
		return NULL;
	t->ssl = SSL_new(ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
		ERR_clear_error();
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	t->side = s;
	t->tf = tf;
	evtimer_assign(&t->timer, base, timeout_cb, t);
	evtimer_add(&t->timer, &tv);
	return t;
}

struct tls_conn *tls_conn_server(struct tls_front *tf, struct event_base *base, struct side *s)
{
	struct tls_conn *t = tlsconn_new(tf, base, s, tf->certs->ctx[0], s->fd);

	if (!t)
		return NULL;
	t->server = 1;
	t->certs = tf->certs;
	t->certs->refs++;
	SSL_set_accept_state(t->ssl);
	tf->stats->active++;
	return t;
}

struct tls_conn *tls_conn_client(struct tls_front *tf, struct event_base *base, struct side *s,
				 const char *sni)
{
	struct tls_conn *t = tlsconn_new(tf, base, s, tf->backend, s->fd);
	const char *host = sni ? sni : tf->backend_host;
	X509_VERIFY_PARAM *vp;
	int ok;

	if (!t)
		return NULL;
	SSL_set_connect_state(t->ssl);
	vp = SSL_get0_param(t->ssl);
	/*
	 * An address is checked against the certificate's IP SANs (and is not
	 * sent as SNI, which names hosts only), a name against its DNS ones.
	 */
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1) {
		ok = 1;
	} else {
		ok = SSL_set1_host(t->ssl, host) == 1;
		if (ok && sni)
			ok = SSL_set_tlsext_host_name(t->ssl, sni) == 1;
	}
	ERR_clear_error();
	if (!ok) {
		tls_conn_free(t);
		return NULL;
	}
	return t;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	evtimer_del(&t->timer);
	if (t->server)
		t->tf->stats->active--;
	certs_put(t->certs);
	SSL_free(t->ssl);
	free(t);
}

const char *tls_conn_sni(const struct tls_conn *t)
{
	return SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
}

/* Why a client's handshake failed, by the first OpenSSL error. */
static uint64_t *fail_reason(struct tls_conn *t, int serr, const char **why)
{
	struct tls_stats *st = t->tf->stats;
	unsigned long e = ERR_peek_error();
	int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);

	if (serr == SSL_ERROR_SYSCALL || serr == SSL_ERROR_ZERO_RETURN ||
	    (lib == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		*why = "client closed";
		return &st->fail_closed;
	}
	if (lib == ERR_LIB_SSL) {
		switch (reason) {
		case SSL_R_WRONG_VERSION_NUMBER:
		case SSL_R_HTTP_REQUEST:
		case SSL_R_HTTPS_PROXY_REQUEST:
		case SSL_R_UNKNOWN_PROTOCOL:
		case SSL_R_PACKET_LENGTH_TOO_LONG:
		case SSL_R_RECORD_LENGTH_MISMATCH:
		case SSL_R_UNEXPECTED_MESSAGE:
		case SSL_R_UNEXPECTED_RECORD:
		case SSL_R_LENGTH_MISMATCH:
		case SSL_R_BAD_PACKET_LENGTH:
		case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
			*why = "not TLS";
			return &st->fail_not_tls;
		case SSL_R_NO_SHARED_CIPHER:
		case SSL_R_UNSUPPORTED_PROTOCOL:
		case SSL_R_VERSION_TOO_LOW:
		case SSL_R_NO_PROTOCOLS_AVAILABLE:
		case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
		case SSL_R_NO_SUITABLE_KEY_SHARE:
		case SSL_R_NO_CIPHERS_AVAILABLE:
		case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
		case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
			*why = "no shared protocol or cipher";
			return &st->fail_no_shared;
		default:
			break;
		}
	}
	*why = "other";
	return &st->fail_other;
}

int tls_handshake(struct tls_conn *t)
{
	int r, serr;

	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->established = 1;
		evtimer_del(&t->timer);
		if (t->server) {
			t->tf->stats->handshakes++;
			certs_put(t->certs); /* the SSL keeps its SSL_CTX */
			t->certs = NULL;
		} else {
			t->tf->stats->backend_handshakes++;
		}
		return 1;
	}
	serr = SSL_get_error(t->ssl, r);
	if (serr == SSL_ERROR_WANT_READ || serr == SSL_ERROR_WANT_WRITE)
		return 0;
	if (t->server) {
		const char *why;
		char e[256];

		(*fail_reason(t, serr, &why))++;
		pr_debug("client TLS handshake failed reason=\"%s\" error=\"%s\"", why,
			 ssl_errtext(e, sizeof(e)));
	} else {
		long v = SSL_get_verify_result(t->ssl);
		char e[256];

		t->tf->stats->backend_failures++;
		pr_warn("TLS handshake with production failed: %s%s%s; check --tls-ca and "
			"production's certificate",
			ssl_errtext(e, sizeof(e)), v != X509_V_OK ? ": " : "",
			v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
	}
	ERR_clear_error();
	return -1;
}

/* errno for an SSL call that returned r <= 0. */
static ssize_t io_error(struct tls_conn *t, int r)
{
	int serr = SSL_get_error(t->ssl, r);

	switch (serr) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 || errno == EAGAIN)
			errno = ECONNRESET;
		ERR_clear_error();
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

ssize_t tls_recv(struct tls_conn *t, void *buf, size_t n)
{
	size_t got = 0;
	int r;

	ERR_clear_error();
	r = SSL_read_ex(t->ssl, buf, n, &got);
	if (r == 1)
		return (ssize_t)got;
	return io_error(t, r);
}

ssize_t tls_send(struct tls_conn *t, const void *buf, size_t n)
{
	size_t done = 0;

	/* With partial writes, SSL_write_ex returns after each record: loop until EAGAIN. */
	while (done < n) {
		size_t w = 0;
		int r;

		ERR_clear_error();
		r = SSL_write_ex(t->ssl, (const char *)buf + done, n - done, &w);
		if (r != 1) {
			ssize_t e = io_error(t, r);

			if (e < 0 && errno == EAGAIN)
				break;
			if (e == 0)
				errno = EPIPE;
			return -1;
		}
		done += w;
	}
	return (ssize_t)done;
}

ssize_t tls_segq_write(struct tls_conn *t, struct chunk_pool *p, struct segq *q)
{
	ssize_t total = 0;

	/*
	 * A record OpenSSL could not finish writing is retried from the head
	 * segment, which still holds its bytes (they are consumed only once
	 * written), as SSL_write's retry rule requires.
	 */
	while (!segq_empty(q)) {
		struct seg *sg = q->head;
		uint32_t len = sg->len;
		ssize_t w = tls_send(t, sg->ch->data + sg->off, len);

		if (w < 0)
			return errno == EPIPE ? -EPIPE : -ECONNRESET;
		segq_consume(p, q, (uint64_t)w);
		total += w;
		if ((uint32_t)w < len)
			break;
	}
	return total;
}

void tls_close_notify(struct tls_conn *t)
{
	if (!t->established)
		return;
	ERR_clear_error();
	if (SSL_shutdown(t->ssl) < 0)
		ERR_clear_error();
}
