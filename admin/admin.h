/*
 * admin.h - doppel's admin endpoint: a small HTTP server on the process's
 * event loop, and the blocking client the CLI uses to talk to it.
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

#endif
