/*
 * proxy.h - the duplicating TCP proxy: production gets every client byte at
 * once; each replica gets the same bytes through a bounded buffer and is
 * dropped, never waited for, when it cannot keep up.
 *
 * One struct proxy is one listener and its connections, run by one libevent
 * event loop (one thread), or by several (proxy_config.threads). Replicas may be added and removed
 * at any time (a clone attached or destroyed); a replica added later receives the connections
 * accepted after that.
 *
 * Ownership: the caller creates the event_base and the proxy, and calls every
 * function here from the thread that runs that base. proxy_free() closes every
 * connection and socket the proxy opened.
 */
#ifndef DOPPEL_PROXY_H
#define DOPPEL_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "common/netaddr.h"
#include "common/sbuf.h"
#include "divergence/divergence.h"

struct event_base;
struct proxy;

/*
 * TLS at the front (--tls-cert/--tls-key pairs) and towards production
 * (--tls-backend). Strings are the caller's and must outlive the proxy (they
 * are read again on proxy_tls_reload).
 */
#define PROXY_TLS_MAX_CERTS 16
struct proxy_tls_config {
	unsigned ncerts;		       /* 0: clients speak plain TCP */
	const char *cert[PROXY_TLS_MAX_CERTS]; /* PEM chain; the first pair is the default */
	const char *key[PROXY_TLS_MAX_CERTS];  /* PEM key, mode 0600 or stricter */
	const char *alpn; /* protocols offered, comma-separated (NULL: "http/1.1") */
	int backend;	  /* TLS towards production too, verifying its certificate */
	const char *ca;	  /* CA bundle production's certificate is checked with (NULL: system's) */
	uint64_t handshake_timeout_ns; /* a client's handshake must complete within this */
};

struct proxy_config {
	struct net_endpoint listen;
	int listen_fd; /* an already listening socket to use instead (-1: bind listen) */
	struct net_endpoint backend; /* production; backend.netns_fd is dup'ed */
	uint64_t buffer;      /* bytes queued per connection per replica before it is dropped */
	uint64_t budget;      /* bytes queued per replica over all connections (0: 64 x buffer) */
	uint64_t pass_buffer; /* bytes queued toward client or production before reads pause */
	uint64_t linger_ns;   /* how long a replica may lag once its client has gone */
	/*
	 * Open replica legs (one socket each) allowed in total and per replica;
	 * 0: derived from the fd limit (proxy_leg_cap_auto). The per-replica
	 * default is an equal share of the total among the replicas attached.
	 * Past a cap, the replica's oldest lingering leg is closed to make room,
	 * or, when it has none, the new connection skips that replica.
	 */
	unsigned max_legs;
	unsigned max_replica_legs;
	unsigned max_turns; /* production turns kept per connection for lagging replicas */
	/*
	 * Replica writes are gathered for this long and sent in one batch per
	 * connection (0: write at once). Cheaper for the proxy and for the
	 * replica, which then reads several requests at a time.
	 */
	uint64_t replica_flush_ns;
	/*
	 * Kernel send buffer of replica sockets. Left to autotuning, loopback
	 * TCP would hide megabytes per connection in the kernel, out of --buffer's
	 * reach. Fixed small, what the kernel holds in front of a replica stays
	 * bounded (about 200 KiB with a redis replica on loopback: this buffer,
	 * the replica's receive buffer, what it has read but not yet run) and
	 * `doppel window --kernel-buffer` can account for it.
	 */
	int replica_sndbuf;
	/*
	 * How answers are compared: protocol normaliser, masks (NULL: raw bytes).
	 * Owned by the caller; must outlive the proxy.
	 */
	const struct div_rules *div_rules;
	struct div_rule div_rule; /* when a request type diverges beyond the noise */
	struct proxy_tls_config tls;
	/*
	 * A replica attached while client connections are open joins each of
	 * them: exactly, from the freeze, when it is a clone restored with
	 * production's ends (proxy_peers_make, exact.c); otherwise at its next
	 * turn (production has answered all the client sent), after a replay of
	 * the connection's RESP state commands (AUTH, SELECT, HELLO, CLIENT,
	 * READONLY) if it began with any (proxy/join.c). 0: such connections stay
	 * production's alone. join_no_exact: never exactly.
	 */
	int join_open;
	int join_no_exact;
	/*
	 * The service doppel clones is this proxy's client, not its backend (the
	 * aggregator's relay of the service's own upstream connections):
	 * proxy_hold() holds what goes to the clients, and proxy_peers_make()
	 * makes the clone's ends of client connections. Nothing is recorded for
	 * joins.
	 */
	int service_is_client;
	/*
	 * Event loops (--threads; 0 or 1: one, the caller's). Worker 0 runs on
	 * the caller's event_base; each other worker is a thread of its own
	 * with its own listener (SO_REUSEPORT on cfg.listen, or the shared
	 * listen_fd), connections, chunk pool and legs. Every function here is
	 * still called from the caller's thread: it reaches the other workers
	 * itself, and its counters are their sums. Not with join_open or
	 * service_is_client (proxy_new refuses them).
	 */
	unsigned threads;
};
#define PROXY_THREADS_MAX 64

/*
 * Fills defaults: 4 MiB buffer, 256 KiB pass buffer, 60 s linger, 4096 turns,
 * 10 ms replica flush, 64 KiB replica socket send buffer, raw comparison with
 * Diffy's noise thresholds, no TLS (10 s handshake timeout once enabled).
 */
void proxy_config_defaults(struct proxy_config *cfg);

/* What a replica's owner hears about it (callbacks run on the proxy's thread). */
struct proxy_hooks {
	/* The replica's buffer overflowed on a connection (the first and every later one). */
	void (*on_overflow)(void *arg, unsigned replica_id, uint64_t overflows);
	void *arg;
};

/*
 * Someone who watches every byte of every connection (the aggregator records
 * production's upstream traffic this way). Called on the proxy's thread,
 * inside the data path: they must not block and must not call back into the
 * proxy. conn_open's result is passed to the others.
 */
struct proxy_observer {
	void *(*conn_open)(void *arg, uint64_t conn_id);
	void (*client_bytes)(void *conn, const void *buf, size_t n);
	void (*server_bytes)(void *conn, const void *buf, size_t n);
	/* The front is over; reset: it ended with a reset (either side) */
	void (*conn_close)(void *conn, int reset);
	/*
	 * Optional: bytes a replica leg was sent (to_replica) or answered; the
	 * leg's end. A replica's bytes never reach a client.
	 */
	void (*replica_bytes)(void *conn, unsigned replica_id, const char *name, int to_replica,
			      const void *buf, size_t n);
	void (*replica_close)(void *conn, unsigned replica_id, int reset);
	/* Optional: the connection is gone; nothing more is said about it. */
	void (*conn_free)(void *conn);
	void *arg;
};

/*
 * Replica legs allowed by an fd limit of nofile descriptors: half of what is
 * left once PROXY_FD_RESERVE descriptors are kept for the listener, the event
 * loop, admin connections, logs and recordings. The other half is kept for
 * client and production sockets (two per connection), so that replicas at
 * their cap still leave (nofile - PROXY_FD_RESERVE) / 4 client connections
 * their fds. A quarter of nofile when nofile is below 2 x PROXY_FD_RESERVE.
 */
#define PROXY_FD_RESERVE 64
unsigned proxy_leg_cap_auto(uint64_t nofile);

/*
 * Raise this process's soft RLIMIT_NOFILE to its hard limit, as HAProxy and
 * nginx do at start, so the fd table is as large as the host allows. before
 * and after (either may be NULL) get the soft limit. Returns 0 or -errno
 * (then the limit is unchanged). Call it before proxy_new: caps are derived
 * from the limit then.
 */
int proxy_raise_fd_limit(uint64_t *before, uint64_t *after);

/* Returns 0, or -errno with the cause and a fix in err. */
int proxy_new(struct event_base *base, const struct proxy_config *cfg, struct proxy **out,
	      char *err, size_t errlen);
void proxy_free(struct proxy *px);
void proxy_set_hooks(struct proxy *px, const struct proxy_hooks *hooks);
/* Set before the first connection is accepted. */
void proxy_set_observer(struct proxy *px, const struct proxy_observer *ob);

/*
 * Read the certificates and keys again (SIGHUP): new handshakes use them,
 * connections already made keep theirs. On error (cause and fix in err) the
 * loaded ones stay. Returns 0, -ENOENT without TLS, or -errno.
 */
int proxy_tls_reload(struct proxy *px, char *err, size_t errlen);

/*
 * Load the TLS certificates, keys and CA as proxy_new would, and let them go:
 * options checked before anything starts. Returns 0 or -errno, why in err.
 */
int proxy_tls_check(const struct proxy_tls_config *cfg, char *err, size_t errlen);

/* Stop accepting new connections (the listener is closed); existing ones carry on. */
void proxy_stop_accepting(struct proxy *px);
/* Number of client connections still open. */
unsigned proxy_active_connections(const struct proxy *px);

/* Per-replica settings; 0 means the proxy's own (cfg.buffer, cfg.budget). */
struct proxy_peers;
struct proxy_replica_opts {
	uint64_t buffer;
	uint64_t budget;
	int control; /* an unmodified replica: its differences measure the noise */
	/*
	 * join_open: the replica's ends of the connections open at its freeze
	 * (proxy_peers_make), taken by proxy_replica_add (freed there, also on
	 * failure): those connections continue on it exactly.
	 */
	struct proxy_peers *peers;
};

/*
 * Add a replica at ep (ep->netns_fd, if any, is dup'ed). name labels it in
 * status output; opts may be NULL. Returns 0 and the replica's id, or -errno.
 */
int proxy_replica_add(struct proxy *px, const struct net_endpoint *ep, const char *name,
		      const struct proxy_replica_opts *opts, unsigned *id_out, char *err,
		      size_t errlen);
/* Drop the replica and all its connections. Returns 0 or -ENOENT. */
int proxy_replica_remove(struct proxy *px, unsigned id);

/* A replica's buffer state, for budget governors and reclone decisions. */
struct proxy_replica_info {
	uint64_t buffered;	    /* bytes queued now, all connections */
	uint64_t max_conn_buffered; /* the fullest connection's queue */
	uint64_t buffer_cap, budget;
	double ingress_bps, drain_bps;
	double occupancy; /* 0..1: the fuller of max_conn_buffered/buffer_cap and buffered/budget */
	double forecast_s; /* seconds to overflow at current rates; INFINITY if not filling */
	uint64_t overflows;
	double debug_window_s; /* attach to first overflow, or to now if none yet */
	int window_open;       /* no overflow yet */
};
int proxy_replica_info(struct proxy *px, unsigned id, struct proxy_replica_info *out);

/*
 * The divergence report (`doppel diverge`): per replica, request types with
 * raw divergence, noise and the verdict, and excerpts. JSON or text.
 */
void proxy_diverge_report(struct proxy *px, int json, struct sbuf *sb);
/* Net diverged turns of a replica (what exceeds the noise). */
uint64_t proxy_replica_net_turns(struct proxy *px, unsigned id);

/*
 * Mirrored connections: a conversation the proxy did not carry (a passive
 * capture of production's traffic) fed to the replicas as if a client had
 * connected here. proxy_mirror_open() opens a leg to every replica; the
 * client's bytes go through the same bounded per-replica buffers, overflow
 * accounting, debug window and recording as accepted connections', and
 * production's answers (proxy_mirror_server) into divergence. End it with
 * proxy_mirror_close() (reset: the legs end with RST, as after a client
 * reset; otherwise with a FIN once each replica has answered as much as
 * production had); the handle is invalid afterwards, and after proxy_free().
 * Returns NULL when out of memory.
 */
struct proxy_conn;
struct proxy_conn *proxy_mirror_open(struct proxy *px);
void proxy_mirror_client(struct proxy_conn *c, const void *buf, size_t n);
void proxy_mirror_server(struct proxy_conn *c, const void *buf, size_t n);
void proxy_mirror_close(struct proxy_conn *c, int reset);
/* The same four calls as an observer's (conn_open opens a mirror on px): a capture's sink. */
void proxy_mirror_observer(struct proxy *px, struct proxy_observer *out);

/*
 * A clone is about to be made (join_open only; no-ops otherwise).
 * proxy_hold(px, 1), just before production is frozen: client bytes for
 * production are queued, not written (reading a client pauses once
 * pass_buffer is queued), so production's frozen state holds exactly what it
 * was given; and each connection's conversation is recorded from its next
 * turn on (its backlog, bounded by buffer), so that the replicas attached
 * next join it from that point, with nothing missed or doubled.
 * proxy_hold(px, 0), once production runs again: the queued bytes go out.
 * proxy_backlog_end(), once the new replicas are attached (or the clone
 * failed): recording stops and backlogs are freed.
 */
void proxy_hold(struct proxy *px, int hold);
void proxy_backlog_end(struct proxy *px);

/*
 * Exact continuation (proxy/exact.c). At proxy_hold(px, 1) the proxy notes,
 * for each connection to production (plain TCP, both ways open), where its
 * two byte streams began in sequence numbers (TCP repair mode), and records
 * its conversation from that moment. A clone restored with production's
 * established connections (clonemgr's peers hook) gets, from
 * proxy_peers_make() on the clone's worker thread, the other end of each of
 * those that are this proxy's, made in the clone's network namespace
 * (netns_fd) so as to continue exactly where production's end was dumped:
 * every byte production had not been given at the freeze goes to the clone,
 * production's answers sent after the freeze are what the clone's are
 * compared with. A connection production had not read everything of is
 * joined at its next turn instead (join.c). Thread-safe against the loop
 * (between proxy_hold(px, 1) and proxy_backlog_end()). *made: how many ends
 * were made. NULL when out of memory. Hand the result to proxy_replica_add
 * (proxy_replica_opts.peers) or free it.
 */
struct tcp_end;
struct proxy_peers *proxy_peers_make(struct proxy *px, int netns_fd, const struct tcp_end *ends,
				     unsigned n, unsigned *made);
void proxy_peers_free(struct proxy_peers *p);
/*
 * service_is_client proxies (the aggregator): take the next end in p: its
 * connection's id, its fd (still in repair mode: tcprepair_done() once the
 * clone is restored), and how many bytes the service's end had sent and
 * received on that connection at the freeze. 1, or 0 when none is left.
 */
int proxy_peers_take_next(struct proxy_peers *p, uint64_t *conn_id, int *fd, uint64_t *sent,
			  uint64_t *received);

/* Status for people and machines: JSON object, aligned text, Prometheus text. */
void proxy_status_json(struct proxy *px, struct sbuf *sb);
void proxy_status_text(struct proxy *px, struct sbuf *sb);
void proxy_metrics(struct proxy *px, struct sbuf *sb, const char *labels);

#endif
