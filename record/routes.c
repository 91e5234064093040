/*
 * routes.c - the admin routes for divergence and recording, shared by
 * `doppel proxy` and `doppel run`:
 *   GET  /diverge[?format=json]       the divergence report (proxy_diverge_report)
 *   GET  /record                      whether and where it records, with counts
 *   POST /record?action=start[&dir=D] start recording (into D, or the default dir)
 *   POST /record?action=stop          stop: flows get their FIN, files are closed
 */
#define LOG_PREFIX "record: "
#include "record/routes.h"
#include "common/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec_routes {
	struct proxy *px;
	struct rec_tap *tap;
	struct rec_config defaults;
	char default_dir[4096];
};

static int render_diverge(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	struct rec_routes *rr = arg;
	int json = query && strstr(query, "format=json") != NULL;

	proxy_diverge_report(rr->px, json, out);
	if (json)
		*ctype = "application/json";
	return 200;
}

static void reply(struct evhttp_request *req, int code, const char *ctype, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply(struct evhttp_request *req, int code, const char *ctype, const char *fmt, ...)
{
	struct evbuffer *b = evbuffer_new();
	va_list ap;

	if (b) {
		va_start(ap, fmt);
		evbuffer_add_vprintf(b, fmt, ap);
		va_end(ap);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	if (b)
		evbuffer_free(b);
}

static void record_status(struct rec_routes *rr, struct evhttp_request *req)
{
	struct rec_stats st;
	const char *dir;
	struct sbuf sb;

	sbuf_init(&sb);
	if (rec_tap_status(rr->tap, &st, &dir)) {
		sbuf_append(&sb, "{\"recording\":true,\"dir\":", 24);
		sbuf_json_str(&sb, dir);
	} else {
		sbuf_append(&sb, "{\"recording\":false,\"dir\":null", 29);
	}
	sbuf_printf(&sb,
		    ",\"files\":%llu,\"bytes\":%llu,\"packets\":%llu,\"flows\":%llu,"
		    "\"dropped_packets\":%llu,\"dropped_bytes\":%llu}\n",
		    (unsigned long long)st.files, (unsigned long long)st.bytes,
		    (unsigned long long)st.packets, (unsigned long long)st.flows,
		    (unsigned long long)st.dropped_packets, (unsigned long long)st.dropped_bytes);
	sbuf_append(&sb, "", 1);
	reply(req, 200, "application/json", "%s", sb.buf);
	sbuf_free(&sb);
}

static void route_record(struct evhttp_request *req, void *arg)
{
	struct rec_routes *rr = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	const char *action, *dir;
	char err[512];

	TAILQ_INIT(&q);
	if (qs)
		evhttp_parse_query_str(qs, &q);
	action = evhttp_find_header(&q, "action");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST || !action) {
		record_status(rr, req);
		goto out;
	}
	if (!strcmp(action, "stop")) {
		rec_tap_stop(rr->tap);
		reply(req, 200, "text/plain; charset=utf-8", "recording stopped\n");
	} else if (!strcmp(action, "start")) {
		struct rec_config c = rr->defaults;
		int rc;

		dir = evhttp_find_header(&q, "dir");
		c.dir = dir && *dir ? dir : rr->default_dir;
		rc = rec_tap_start(rr->tap, &c, err, sizeof(err));
		if (rc < 0)
			reply(req, rc == -EALREADY ? 409 : 500, "text/plain; charset=utf-8", "%s\n",
			      err);
		else
			reply(req, 200, "text/plain; charset=utf-8", "recording into %s\n", c.dir);
	} else {
		reply(req, 400, "text/plain; charset=utf-8", "action is start or stop, not '%s'\n",
		      action);
	}
out:
	evhttp_clear_headers(&q);
}

struct rec_routes *rec_routes_add(struct admin *adm, struct proxy *px, struct rec_tap *tap,
				  const struct rec_config *defaults, const char *default_dir)
{
	struct rec_routes *rr = calloc(1, sizeof(*rr));

	if (!rr)
		return NULL;
	rr->px = px;
	rr->tap = tap;
	if (defaults)
		rr->defaults = *defaults;
	else
		rec_config_defaults(&rr->defaults);
	snprintf(rr->default_dir, sizeof(rr->default_dir), "%s", default_dir ? default_dir : ".");
	admin_route(adm, "/diverge", render_diverge, rr);
	if (tap)
		admin_route_raw(adm, "/record", route_record, rr);
	return rr;
}

void rec_routes_free(struct rec_routes *rr)
{
	free(rr);
}
