/*
 * server.c - the admin HTTP server (libevent evhttp) on TCP or a unix socket.
 */
#define LOG_PREFIX "admin"
#include "admin/admin.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/page.h"
#include "common/log.h"
#include "common/netaddr.h"

#define ADMIN_MAX_HEADERS (64 * 1024) /* request line and headers */
#define ADMIN_MAX_BODY (1024 * 1024)

#define MAX_ROUTES 32

struct route {
	char path[64];
	admin_render_fn render;
	admin_raw_fn raw;
	void *arg;
};

struct admin {
	struct evhttp *http;
	struct evconnlistener *lev;
	struct event *accept_retry; /* re-enables lev after an accept error */
	uint64_t accept_errors;
	struct admin *next; /* admins: libevent hands the error callback evhttp's pointer */
	char unix_path[108];
	struct route routes[MAX_ROUTES];
	unsigned nroutes;
};

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct admin *adm = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;

	if (!path || !*path)
		path = "/";
	for (unsigned i = 0; i < adm->nroutes; i++) {
		struct route *r = &adm->routes[i];
		struct evbuffer *buf;
		struct sbuf sb;
		const char *ctype = "text/plain; charset=utf-8";
		int code;

		if (strcmp(r->path, path) != 0)
			continue;
		if (r->raw) {
			r->raw(req, r->arg);
			return;
		}
		if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
		    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
			evhttp_send_error(req, 405, "use GET");
			return;
		}
		sbuf_init(&sb);
		code = r->render(r->arg, query ? query : "", &sb, &ctype);
		buf = evbuffer_new();
		if (buf && sb.len)
			evbuffer_add(buf, sb.buf, sb.len);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control",
				  "no-store");
		evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", buf);
		if (buf)
			evbuffer_free(buf);
		sbuf_free(&sb);
		return;
	}
	{
		struct evbuffer *buf = evbuffer_new();
		struct sbuf sb;

		sbuf_init(&sb);
		sbuf_printf(&sb, "no such page: %s\npages:", path);
		for (unsigned i = 0; i < adm->nroutes; i++)
			sbuf_printf(&sb, " %s", adm->routes[i].path);
		sbuf_printf(&sb, "\n");
		if (buf)
			evbuffer_add(buf, sb.buf, sb.len);
		evhttp_send_reply(req, 404, "Not Found", buf);
		if (buf)
			evbuffer_free(buf);
		sbuf_free(&sb);
	}
}

static int listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, e;
	mode_t old;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "unix socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "cannot create unix socket: %s", strerror(e));
		return -e;
	}
	/* A socket file nobody listens on is stale: connect() tells. */
	{
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (probe >= 0) {
			if (connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
				close(probe);
				close(fd);
				snprintf(
					err, errlen,
					"%s is in use: another doppel is already running with this "
					"admin socket; stop it first or use another name",
					path);
				return -EADDRINUSE;
			}
			close(probe);
		}
		unlink(path);
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		e = errno;
		umask(old);
		close(fd);
		snprintf(err, errlen, "cannot bind unix socket %s: %s", path, strerror(e));
		return -e;
	}
	umask(old);
	chmod(path, 0600);
	if (listen(fd, 64) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(e));
		return -e;
	}
	return fd;
}

/* Every admin endpoint of the process (created and freed on the main thread). */
static struct admin *admins;

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin *adm = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(adm->lev);
}

/*
 * accept() failed for lack of fds or memory: the listener is level-triggered,
 * so left enabled it would fire again at once and spin. Pause it 100 ms (what
 * HAProxy and evconnlistener users do); status requests wait in the queue.
 */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct admin *adm = admins;
	struct timeval tv = {0, 100 * 1000};
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	while (adm && adm->lev != lev)
		adm = adm->next;
	if (!adm)
		return;
	if (adm->accept_errors++ == 0)
		pr_warn("admin endpoint cannot accept a connection: %s; pausing it 100 ms at a "
			"time "
			"(raise the fd limit, `ulimit -n`, if this is EMFILE)",
			evutil_socket_error_to_string(err));
	evconnlistener_disable(lev);
	evtimer_add(adm->accept_retry, &tv);
}

int admin_new(struct event_base *base, const char *addr, struct admin **out, char *err,
	      size_t errlen)
{
	struct evhttp_bound_socket *bound;
	struct admin *adm = calloc(1, sizeof(*adm));
	int fd;

	if (!adm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (strncmp(addr, "unix:", 5) == 0) {
		fd = listen_unix(addr + 5, err, errlen);
		if (fd >= 0)
			snprintf(adm->unix_path, sizeof(adm->unix_path), "%s", addr + 5);
	} else {
		struct net_endpoint ep;
		char perr[256];

		if (netaddr_parse(addr, &ep, perr, sizeof(perr)) < 0) {
			snprintf(err, errlen, "bad --admin address: %s", perr);
			free(adm);
			return -EINVAL;
		}
		fd = netaddr_listen(&ep, 64, 0, err, errlen);
	}
	if (fd < 0) {
		free(adm);
		return fd;
	}
	adm->http = evhttp_new(base);
	adm->accept_retry = evtimer_new(base, accept_retry_cb, adm);
	bound = adm->http && adm->accept_retry ? evhttp_accept_socket_with_handle(adm->http, fd)
					       : NULL;
	if (!bound) {
		snprintf(err, errlen, "cannot start the admin HTTP server on %s", addr);
		if (adm->http)
			evhttp_free(adm->http);
		if (adm->accept_retry)
			event_free(adm->accept_retry);
		close(fd);
		free(adm);
		return -ENOMEM;
	}
	adm->lev = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(adm->lev, accept_error_cb);
	adm->next = admins;
	admins = adm;
	evhttp_set_allowed_methods(adm->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						      EVHTTP_REQ_DELETE);
	evhttp_set_timeout(adm->http, 3600);
	/*
	 * Bounded cost of a bad request: libevent's default is no limit on the
	 * headers or the body, so one client could make the admin hold gigabytes.
	 * Past these it answers 400 or 413 and closes.
	 */
	evhttp_set_max_headers_size(adm->http, ADMIN_MAX_HEADERS);
	evhttp_set_max_body_size(adm->http, ADMIN_MAX_BODY);
	evhttp_set_gencb(adm->http, dispatch, adm);
	*out = adm;
	return 0;
}

void admin_free(struct admin *adm)
{
	if (!adm)
		return;
	for (struct admin **p = &admins; *p; p = &(*p)->next)
		if (*p == adm) {
			*p = adm->next;
			break;
		}
	evhttp_free(adm->http);
	event_free(adm->accept_retry);
	if (adm->unix_path[0])
		unlink(adm->unix_path);
	free(adm);
}

static struct route *route_add(struct admin *adm, const char *path)
{
	struct route *r;

	if (adm->nroutes == MAX_ROUTES) {
		pr_err("too many admin routes, %s not served", path);
		return NULL;
	}
	r = &adm->routes[adm->nroutes++];
	memset(r, 0, sizeof(*r));
	snprintf(r->path, sizeof(r->path), "%s", path);
	return r;
}

void admin_route(struct admin *adm, const char *path, admin_render_fn fn, void *arg)
{
	struct route *r = route_add(adm, path);

	if (r) {
		r->render = fn;
		r->arg = arg;
	}
}

void admin_route_raw(struct admin *adm, const char *path, admin_raw_fn fn, void *arg)
{
	struct route *r = route_add(adm, path);

	if (r) {
		r->raw = fn;
		r->arg = arg;
	}
}

static int render_page(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	(void)arg;
	(void)query;
	sbuf_append(out, admin_page_html, admin_page_len);
	*ctype = "text/html; charset=utf-8";
	return 200;
}

void admin_route_page(struct admin *adm)
{
	admin_route(adm, "/", render_page, NULL);
	admin_route(adm, "/index.html", render_page, NULL);
}
