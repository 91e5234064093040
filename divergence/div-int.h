/*
 * div-int.h - divergence/'s private pieces: the block pool, the normalisers
 * (framing + header masks + user masks), the request typer and the replica
 * internals shared by turns.c and report.c. Private to divergence/.
 *
 * Threads: everything here is used by the one thread that feeds a div_conn;
 * the block pool and the mask scratch buffers are per thread.
 */
#ifndef DOPPEL_DIVERGENCE_INT_H
#define DOPPEL_DIVERGENCE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "divergence/divergence.h"

/* ---- pool.c: 4 KiB blocks from a per-thread free list ---- */

#define DIV_BLOCK 4096
unsigned char *div_block_get(void);
void div_block_put(unsigned char *b);
/* A piece of size bytes, not zeroed (a working state, a window, a short block). */
void *div_piece_get(size_t size);
void div_piece_put(void *p, size_t size);

/* ---- rules.c ---- */

struct div_rules {
	struct div_options o;
	char *mask_src[DIV_MAX_MASKS];
	void *mask_code[DIV_MAX_MASKS]; /* pcre2_code_8 */
	void *mctx;			/* pcre2_match_context_8: match limits */
	char *headers[DIV_MAX_HEADERS];
	unsigned nheaders;
};

/* The placeholder a masked value becomes. */
#define DIV_MASKED "<masked>"
#define DIV_MASKED_LEN 8

/* Applies the user masks to one record; *out points to thread-local storage. */
size_t div_rules_apply_masks(const struct div_rules *r, const unsigned char *in, size_t n,
			     const unsigned char **out);
/* 1 when the HTTP header name (n bytes, any case) has its value masked. */
int div_rules_masks_header(const struct div_rules *r, const unsigned char *name, size_t n);

/* ---- norm.c: normalisers ---- */

/* Where a normaliser's output goes. */
struct div_sink {
	void (*bytes)(void *ctx, const unsigned char *p, size_t n);
	void (*boundary)(void *ctx); /* a protocol message ended */
	void *ctx;
};

/* Which HTTP requests were HEAD (their responses have no body), by request number. */
#define DIV_REQLOG 1024
struct div_reqlog {
	uint64_t nreq; /* requests seen */
	uint8_t head[DIV_REQLOG / 8];
};
int div_reqlog_is_head(const struct div_reqlog *l, uint64_t idx);

#define DIV_RESP_DEPTH 32
#define DIV_HNAME_MAX 64

struct div_norm {
	const struct div_rules *rules;
	const struct div_reqlog *reqs;
	struct div_sink out;
	enum div_protocol proto; /* raw, http or resp */
	uint8_t state;
	uint8_t masks; /* user masks apply */
	/* the user-mask stage: one record (line) held */
	unsigned char *rec;
	unsigned rec_len;
	/* HTTP */
	uint64_t remaining; /* body or chunk bytes left */
	uint64_t clen;
	uint64_t responses; /* final responses completed (for HEAD) */
	unsigned status;
	uint8_t has_clen, chunked, hdr, skip_value, trailer;
	unsigned tok_len;
	unsigned char tok[DIV_HNAME_MAX]; /* header name, status line start, chunk size */
	unsigned val_len;
	unsigned char val[32]; /* value of Content-Length / Transfer-Encoding */
	/* RESP */
	unsigned depth;
	int64_t left[DIV_RESP_DEPTH]; /* elements left in each open aggregate */
	uint8_t attr[DIV_RESP_DEPTH]; /* that aggregate is an attribute (|) */
	uint8_t kind;		      /* type byte of the element being read */
};

void div_norm_init(struct div_norm *n, const struct div_rules *r, enum div_protocol proto,
		   const struct div_reqlog *reqs, const struct div_sink *out);
void div_norm_feed(struct div_norm *n, const unsigned char *p, size_t len);
/* The stream is over: emit what is held. */
void div_norm_finish(struct div_norm *n);
/* Give back any buffer (no output). */
void div_norm_release(struct div_norm *n);

/*
 * A normaliser between two messages is fully described by this: rest
 * fills it and returns 1 (0: a message is on its way), wake makes the
 * same normaliser again (div_norm_init's arguments, then the rest).
 */
struct div_norm_rest {
	uint64_t responses : 63;
	uint64_t raw : 1; /* passing bytes on as they are, to the end */
};
int div_norm_rest(const struct div_norm *n, struct div_norm_rest *r);
void div_norm_wake(struct div_norm *n, const struct div_rules *rules, enum div_protocol proto,
		   const struct div_reqlog *reqs, const struct div_sink *out,
		   const struct div_norm_rest *r);

/* ---- reqtype.c: request types from the client stream ---- */

struct div_typer {
	enum div_protocol proto;
	struct div_types *types;
	struct div_reqlog *log;
	uint8_t state;
	uint8_t chunked, has_clen, hdr, raw_new;
	int cur;		 /* type of the request being sent, -1 none yet */
	int pending;		 /* first request type started since the last take, -1 none */
	uint64_t reqs, pend_req; /* requests typed so far; which one is pending */
	uint64_t remaining;
	int64_t nargs; /* RESP: bulk strings left in the command */
	uint64_t bulk; /* RESP: bytes left in the current bulk string */
	unsigned argi; /* RESP: index of that bulk string */
	unsigned name_len, val_len;
	char name[DIV_TYPE_NAME_MAX + 192]; /* request line, command name or raw head */
	char val[32];
	unsigned head_len, pend_head_len;
	unsigned char head[DIV_EXCERPT_REQ];	  /* the request being read */
	unsigned char pend_head[DIV_EXCERPT_REQ]; /* the pending one */
};

void div_typer_init(struct div_typer *t, enum div_protocol proto, struct div_types *types,
		    struct div_reqlog *log);
/* `turn_started`: production answered since the previous client bytes. */
void div_typer_feed(struct div_typer *t, const unsigned char *p, size_t n, int turn_started);
/* The type of a turn that starts now, and the start of its request. */
unsigned div_typer_take(struct div_typer *t, unsigned char *head, unsigned *head_len);
/*
 * The same for the typer between two requests (at most the latest waiting
 * for its turn), with its head (t->head, t->head_len) kept by the caller.
 */
struct div_typer_rest {
	uint64_t reqs;
	int cur, pending;
	uint8_t state, raw_new;
};
int div_typer_rest(const struct div_typer *t, struct div_typer_rest *r);
void div_typer_wake(struct div_typer *t, enum div_protocol proto, struct div_types *types,
		    struct div_reqlog *log, const struct div_typer_rest *r,
		    const unsigned char *head, unsigned head_len);
/* auto: which protocol these first client bytes speak. */
enum div_protocol div_sniff_protocol(const unsigned char *p, size_t n);

/* ---- report.c: the replica ---- */

struct div_replica {
	struct div_types *types;
	enum div_role role;
	struct div_counts own;
	struct div_counts *counts; /* &own, or the caller's */
	struct div_type_counts rows[DIV_TYPES_MAX + 1];
	uint64_t exc_next; /* seq of the next excerpt */
	uint64_t exc_skipped;
	struct div_excerpt exc[DIV_EXCERPTS_MAX];
};

/* Records an excerpt; returns its seq (0 when skipped). */
uint64_t div_replica_add_excerpt(struct div_replica *r, const struct div_excerpt *e);
/* The control's verdict on excerpt seq became known. */
void div_replica_excerpt_control(struct div_replica *r, uint64_t seq, int agreed);

/* rules.c: this thread's match data goes (div_thread_exit) */
void div_rules_thread_exit(void);

#endif
