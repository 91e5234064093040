/*
 * divergence.h - does a replica answer like production? Normalised per-turn
 * comparison, request types, noise cancellation with a control replica, and
 * excerpts of what differed.
 *
 * A *turn* is what a server sends between two sends of the client. For each
 * client connection, a struct div_conn records production's turns (length,
 * XXH3 hash, how many client bytes had been sent when the turn ended, how many
 * protocol messages it held, its request type) in a bounded ring. Each replica
 * of that connection is a *follower*: its answer stream is cut into the same
 * turns and each turn is compared with production's.
 *
 * Normalisers. Before hashing, every side's answer stream goes through the
 * normaliser of the connection's protocol (struct div_rules): HTTP/1.x
 * responses are framed (status line, headers, content-length, chunked and
 * read-to-close bodies; chunked bodies are de-chunked) and the values of
 * volatile headers (Date, Server, Expires, Last-Modified, ETag, Set-Cookie,
 * X-Request-Id and any configured) are replaced by "<masked>"; RESP replies
 * are framed (nested aggregates, bulk strings); user masks (PCRE2 regexes)
 * replace what they match in each line (at most DIV_RECORD_MAX bytes) with
 * "<masked>" in any protocol; raw bytes pass unchanged. Normalisers see the
 * stream in arbitrary pieces and keep bounded state; their output does not
 * depend on how the stream was cut into reads.
 *
 * How a replica's bytes are assigned to turns. Replica bytes can be late (the
 * replica runs behind, from a buffer) and chunked differently, so arrival time
 * alone cannot cut them. Three facts do:
 *   1. a replica cannot answer turn k+1 before it was given the client bytes
 *      that start turn k+1 (the caller passes `written`, the client bytes given
 *      to the replica so far); while written <= end_client(k), every byte the
 *      replica sends belongs to turn k or earlier;
 *   2. with a framing protocol (HTTP, RESP), turn k holds as many whole
 *      messages as production's turn k, plus as many bytes of an unfinished
 *      message: a longer or shorter answer stays in its own turn;
 *   3. otherwise (raw bytes) the turn is cut at production's length.
 * Limit (raw protocol only): a *shorter* answer given while the replica is
 * more than one turn behind shifts the cut, and later turns of that connection
 * count as diverged too.
 *
 * Noise cancellation (docs/divergence.md has the rule): one follower of a
 * connection may be the *control*, an unmodified replica. Each turn, once
 * every follower has compared it, is *settled*: per request type, each
 * candidate replica counts its raw divergence (candidate vs production), the
 * noise (control vs production) and candidate vs control on the same turns.
 * div_rule_apply() says which types diverge beyond the noise.
 *
 * Ownership: struct div_rules and struct div_types are made once (per proxy)
 * and outlive every div_conn using them; div_types and div_replica are written
 * from the event-loop thread that feeds the connections (one thread). The
 * proxy allocates one div_conn per client connection (with room for its
 * followers), feeds it from that thread only, and frees it once production
 * and every follower are finished.
 */
#ifndef DOPPEL_DIVERGENCE_H
#define DOPPEL_DIVERGENCE_H

#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"

/* ---- rules: protocol, masks ---- */

enum div_protocol {
	DIV_PROTO_RAW = 0,
	DIV_PROTO_HTTP,
	DIV_PROTO_RESP,
	DIV_PROTO_AUTO, /* per connection, from the client's first bytes */
};

#define DIV_MAX_MASKS 16
#define DIV_MAX_HEADERS 16
/* User masks match within one line (or one piece of a longer line) of at most this size. */
#define DIV_RECORD_MAX 4096

struct div_options {
	enum div_protocol protocol;
	const char *masks[DIV_MAX_MASKS]; /* PCRE2 patterns (copied by div_rules_new) */
	unsigned nmasks;
	const char *headers[DIV_MAX_HEADERS]; /* more HTTP header names whose values are masked */
	unsigned nheaders;
	unsigned max_turns; /* production turns kept per connection for lagging replicas */
	/*
	 * Production's normalised bytes kept per connection while a replica has
	 * not compared them, to locate the first differing byte and show it.
	 */
	uint64_t window;
};

/* raw protocol, no masks, 4096 turns, 64 KiB window. */
void div_options_defaults(struct div_options *o);
/* "http", "resp", "raw", "auto"; returns 0 or -EINVAL. */
int div_protocol_parse(const char *s, enum div_protocol *out);
const char *div_protocol_name(enum div_protocol p);

struct div_rules;
/* Compiles the masks; returns 0, or -EINVAL with the bad pattern and why in err. */
int div_rules_new(const struct div_options *o, struct div_rules **out, char *err, size_t errlen);
void div_rules_free(struct div_rules *r);
const struct div_options *div_rules_options(const struct div_rules *r);

/* ---- request types ---- */

/* At most this many distinct request types per table; the rest count as "(other)". */
#define DIV_TYPES_MAX 256
#define DIV_TYPE_NAME_MAX 64

struct div_types;
struct div_types *div_types_new(void);
void div_types_free(struct div_types *t);
unsigned div_types_count(const struct div_types *t);
const char *div_type_name(const struct div_types *t, unsigned id);
/* Id of name (len bytes), added if new; "(other)" once the table is full. */
unsigned div_type_intern(struct div_types *t, const char *name, size_t len);
/* Requests whose type fell into "(other)" because the table was full. */
uint64_t div_types_overflow(const struct div_types *t);

/*
 * An HTTP path as a template: the query is dropped, and path segments that
 * are numbers, UUIDs or hex ids become {n}, {uuid}, {hex}. Returns the length
 * written to out (NUL-terminated, truncated to outlen - 1).
 */
size_t div_path_template(const char *path, size_t n, char *out, size_t outlen);

/* ---- one replica's counts ---- */

/* Live counters of one replica, summed over its connections. */
struct div_counts {
	uint64_t turns_compared;  /* turns with both answers complete */
	uint64_t turns_diverged;  /* ... whose normalised bytes differed */
	uint64_t turns_unchecked; /* production turns the replica never got to answer */
	uint64_t conns_diverged;  /* connections with at least one diverged turn */
};

/* Per request type, counted when a turn is settled. */
struct div_type_counts {
	uint64_t turns;	    /* turns this replica compared */
	uint64_t raw;	    /* ... that differed from production */
	uint64_t unchecked; /* turns it never answered */
	/* candidates only: the turns the control compared too */
	uint64_t paired;
	uint64_t paired_raw; /* ... where this replica differed from production */
	uint64_t noise;	     /* ... where the control differed from production */
	uint64_t cross;	     /* ... where this replica differed from the control */
};

enum div_role {
	DIV_CANDIDATE = 0,
	DIV_CONTROL, /* an unmodified replica: its differences are noise */
};

/* Excerpt bytes kept on each side of the first difference. */
#define DIV_EXCERPT_BEFORE 24
#define DIV_EXCERPT_AFTER 40
#define DIV_EXCERPT_REQ 48
#define DIV_EXCERPTS_MAX 64
#define DIV_EXCERPTS_PER_TYPE 4

/* One diverged turn, as the report shows it. */
struct div_excerpt {
	uint64_t seq; /* 1, 2, ... in the order recorded */
	uint64_t conn_id;
	uint64_t turn; /* production's turn number on that connection, from 0 */
	unsigned type;
	int64_t offset;	       /* first differing byte in the turn's normalised bytes; -1 unknown */
	int64_t stream_offset; /* the same, in production's normalised stream; -1 unknown */
	uint64_t prod_len, rep_len;	/* normalised lengths of the turn */
	int control;			/* 1 the control agreed with production, 0 it differed too,
					   -1 no control verdict */
	unsigned prod_n, rep_n, before; /* bytes kept; `before` of them precede offset */
	unsigned char prod[DIV_EXCERPT_BEFORE + DIV_EXCERPT_AFTER];
	unsigned char rep[DIV_EXCERPT_BEFORE + DIV_EXCERPT_AFTER];
	unsigned req_n;
	unsigned char req[DIV_EXCERPT_REQ]; /* the start of the request */
};

struct div_replica;
/*
 * One replica's divergence: overall counts, a row per request type of
 * `types` (which must outlive it), and a ring of excerpts (DIV_EXCERPTS_MAX,
 * at most DIV_EXCERPTS_PER_TYPE per type, so one noisy type cannot evict the
 * others). The overall counts go to *counts when given (it must outlive the
 * replica), else into the replica.
 */
struct div_replica *div_replica_new(struct div_types *types, enum div_role role,
				    struct div_counts *counts);
void div_replica_free(struct div_replica *r);
enum div_role div_replica_role(const struct div_replica *r);
const struct div_counts *div_replica_counts(const struct div_replica *r);
/* Row of type id (zeroes when the replica never saw it). */
const struct div_type_counts *div_replica_type(const struct div_replica *r, unsigned id);
/* Excerpts, oldest first: calls fn for each. */
void div_replica_excerpts(const struct div_replica *r,
			  void (*fn)(void *arg, const struct div_excerpt *e), void *arg);
uint64_t div_replica_excerpts_skipped(const struct div_replica *r);
/*
 * Add src's counts, rows and excerpts to dst (the same replica seen by
 * another thread): rows are matched by type name (dst's types get src's
 * names), excerpts are added after dst's own, oldest first.
 */
void div_replica_merge(struct div_replica *dst, const struct div_replica *src);

/* ---- the noise rule ---- */

struct div_rule {
	double relative_pct; /* (raw - noise) / (raw + noise), in % */
	double absolute_pct; /* (raw - noise) / turns compared, in % */
	double z;	     /* raw - noise must exceed z standard deviations of the noise */
};
/* Diffy's thresholds: 20 % relative, 0.03 % absolute; z = 2. */
void div_rule_defaults(struct div_rule *r);

struct div_verdict {
	int has_control; /* noise was measured (paired turns > 0) */
	uint64_t raw, noise, turns;
	uint64_t net; /* turns counted as diverged: raw - noise when reported, else 0 */
	double relative, absolute; /* in % */
	int reported;
};
void div_rule_apply(const struct div_rule *rule, const struct div_type_counts *c,
		    struct div_verdict *out);

/*
 * The report of one replica: overall counts, each request type with its
 * verdict, and the excerpts. JSON: an object; text: lines for people.
 */
void div_replica_report_json(const struct div_replica *r, const struct div_rule *rule,
			     struct sbuf *sb);
void div_replica_report_text(const struct div_replica *r, const struct div_rule *rule,
			     struct sbuf *sb);
/* Net diverged turns over every type (what exceeds the noise). */
uint64_t div_replica_net(const struct div_replica *r, const struct div_rule *rule);
/* Appends bytes escaped C-style (\r \n \t \\ \" \xNN). */
void div_escape(struct sbuf *sb, const unsigned char *p, size_t n);

/* ---- one connection ---- */

/* How a follower ended. */
enum div_end {
	DIV_END_EOF,	 /* the replica finished: turns it did not answer diverged */
	DIV_END_DROPPED, /* doppel dropped the replica (overflow): the rest, and every
			    later production turn, is unchecked */
};

struct div_conn;

/*
 * rules and types must outlive the connection; types may be NULL (no
 * request typing). nfollowers is the number of follower slots.
 */
struct div_conn *div_conn_open(const struct div_rules *rules, struct div_types *types,
			       uint64_t conn_id, unsigned nfollowers);
/* Raw bytes, no types: the same as div_conn_open with default rules. */
struct div_conn *div_conn_new(unsigned nfollowers, unsigned max_turns);
void div_conn_free(struct div_conn *dc);

/*
 * The four calls below accept dc == NULL and do nothing: a connection with
 * no follower has nothing to compare and keeps no divergence state.
 */
/* The client sent these bytes (to production and every follower). */
void div_client_data(struct div_conn *dc, const void *buf, size_t n);
/* The client sent n bytes that are not shown (no request typing). */
void div_client_bytes(struct div_conn *dc, size_t n);
/* Production sent these bytes to the client. */
void div_server_bytes(struct div_conn *dc, const void *buf, size_t n);
/* Production's side is over: its last turn is complete. */
void div_server_end(struct div_conn *dc);

/* Start comparing follower idx; counts go to *sink (owned by the caller, must outlive dc). */
void div_follower_start(struct div_conn *dc, unsigned idx, struct div_counts *sink);
/*
 * The same for a replica with per-type counts and excerpts (rep must outlive
 * dc, or be detached first). At most one follower of a connection is a control.
 */
void div_follower_attach(struct div_conn *dc, unsigned idx, struct div_replica *rep);
/*
 * Follower idx sent these bytes; `written` is the number of client bytes
 * given to it so far.
 */
void div_follower_bytes(struct div_conn *dc, unsigned idx, const void *buf, size_t n,
			uint64_t written);
/* Follower idx is over; settle its remaining turns according to `how`. */
void div_follower_end(struct div_conn *dc, unsigned idx, enum div_end how);

/* Stop counting anything for follower idx (its sink is going away). */
void div_follower_detach(struct div_conn *dc, unsigned idx);

/*
 * A connection gives back what it holds only while a request or an answer
 * is on its way (the request typer, the normalisers, production's bytes
 * every follower has compared) after each call that leaves nothing on its
 * way. Call this now and then (the proxy: every second) for every
 * connection: one fed nothing since the previous call also lets go of the
 * turns every follower has settled, down to a one-turn ring, and keeps about
 * 330 bytes plus 110 per follower until bytes come again. Results do not
 * change. Returns 1 when the connection rests. Accepts NULL.
 */
int div_conn_sweep(struct div_conn *dc);
/* Keep the working state always (to compare with a connection that rests). */
void div_conn_never_rest(struct div_conn *dc);
/* Heap bytes the connection holds (without the allocator's overhead). */
size_t div_conn_footprint(const struct div_conn *dc);

/* Number of production turns seen so far on this connection. */
uint64_t div_turns(const struct div_conn *dc);
/* Requests the client started (HTTP and RESP requests; raw: sends that start a turn). */
uint64_t div_conn_requests(const struct div_conn *dc);
/* The protocol in use (auto resolves on the client's first bytes). */
enum div_protocol div_conn_protocol(const struct div_conn *dc);

/* One-shot XXH3 of a buffer, the hash used for every turn. */
uint64_t div_hash(const void *buf, size_t n);

/*
 * A thread that compared answers is about to end: free what the engine keeps
 * per thread (its free blocks, its regex match data). Call it last, once the
 * thread's connections are all freed.
 */
void div_thread_exit(void);

#endif
