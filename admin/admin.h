/*
 * admin.h - doppel's admin endpoint: a small HTTP server on the process's
 * event loop, and the blocking client the CLI uses to talk to it, with typed
 * readers of the JSON it serves.
 *
 * Addresses are "HOST:PORT" (TCP) or "unix:/path" (a unix socket, created
 * 0600). Routes render text into an sbuf; the server sets Content-Type and
 * the status code. Routes needing more (streamed progress, POST bodies) take
 * the raw libevent request.
 *
 * Ownership: created and used on the thread that runs its event_base.
 */
#ifndef DOPPEL_ADMIN_H
#define DOPPEL_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"

struct event_base;
struct evhttp_request;
struct admin;

/*
 * Renders a page. query is the raw query string ("" when none). Returns an
 * HTTP status (200, 404, ...); sets *content_type to a static string.
 */
typedef int (*admin_render_fn)(void *arg, const char *query, struct sbuf *out,
			       const char **content_type);
typedef void (*admin_raw_fn)(struct evhttp_request *req, void *arg);

int admin_new(struct event_base *base, const char *addr, struct admin **out, char *err,
	      size_t errlen);
void admin_free(struct admin *adm);
/* GET path -> fn. */
void admin_route(struct admin *adm, const char *path, admin_render_fn fn, void *arg);
/* Any method on path -> fn, which must reply to req itself. */
void admin_route_raw(struct admin *adm, const char *path, admin_raw_fn fn, void *arg);
/*
 * GET / (and /index.html): the status page (admin/page.html), which polls
 * ./status, the JSON route the caller installs.
 */
void admin_route_page(struct admin *adm);

/*
 * Blocking client: send METHOD path (with an optional body) to addr and read
 * the whole reply. on_chunk, when set, receives the body as it arrives
 * (progress streams); otherwise the body is collected in *body.
 * Returns the HTTP status, or -errno with the cause and a fix in err.
 */
int admin_request(const char *addr, const char *method, const char *path, const char *req_body,
		  struct sbuf *body, void (*on_chunk)(const char *data, size_t len, void *arg),
		  void *chunk_arg, int timeout_ms, char *err, size_t errlen);

/* One clone as a supervisor's GET /clone-info?id=N describes it. */
struct admin_clone_info {
	unsigned id;
	int pid;	  /* host pid of the clone's first process */
	int service_pid;  /* production's: never to be traced */
	char dir[4096];	  /* the clone's directory */
	double occupancy; /* 0..1: the fuller of its fullest connection's buffer and its budget */
	double debug_window_s; /* attach to first overflow, or to now */
	double forecast_s;     /* seconds to the next overflow; INFINITY when nothing fills */
	int window_open;       /* no overflow yet */
	uint64_t overflows;
	uint64_t buffer, budget;	      /* the caps: per connection, over all of them */
	uint64_t buffered, max_conn_buffered; /* queued now: in all, on the fullest connection */
};

/*
 * Asks the supervisor at addr about clone id (blocking, 3 s at most).
 * Returns 0; -ENOENT when it has no such clone or the proxy does not know
 * it (err quotes the supervisor); -EPROTO when the answer is not the JSON
 * expected; or admin_request()'s -errno.
 */
int admin_clone_info(const char *addr, unsigned id, struct admin_clone_info *out, char *err,
		     size_t errlen);
/* Parses a /clone-info body. 0, or -EPROTO with the reason in err. */
int admin_clone_info_parse(const char *body, struct admin_clone_info *out, char *err,
			   size_t errlen);

#endif
