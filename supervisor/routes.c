/*
 * routes.c - the supervisor's admin endpoint (see supervisor.h for the list).
 */
#define LOG_PREFIX "admin"
#include "supervisor/sup-int.h"

#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"

static const char *service_state(struct supervisor *sup)
{
	if (sup->stopping)
		return "stopping";
	if (!sup->ready)
		return "starting";
	return sup->svc.pid > 0 ? "running" : "exited";
}

void sup_status_json(struct supervisor *sup, struct sbuf *sb)
{
	uint64_t now = clock_coarse_ns();

	sbuf_printf(sb, "{\"name\":");
	sbuf_json_str(sb, sup->cfg.name);
	sbuf_printf(sb, ",\"supervisor_pid\":%d,\"uptime_s\":", (int)getpid());
	sbuf_json_num(sb, (double)(now - sup->start_ns) / 1e9);
	sbuf_printf(sb, ",\"service\":{\"pid\":%d,\"port\":%d,\"state\":", sup->svc.pid,
		    sup->cfg.port);
	sbuf_json_str(sb, service_state(sup));
	sbuf_printf(sb, ",\"command\":");
	sbuf_json_str(sb, sup->cfg.argv[0]);
	sbuf_printf(sb, ",\"state_dirs\":[");
	for (unsigned i = 0; i < sup->svc.nstate; i++) {
		sbuf_printf(sb, i ? "," : "");
		sbuf_json_str(sb, sup->svc.state_dirs[i]);
	}
	sbuf_printf(sb, "]},\"listen\":");
	sbuf_json_str(sb, sup->cfg.proxy.listen.text);
	sbuf_printf(sb, ",\"overflow\":\"%s\",\"criu\":",
		    sup->cfg.overflow == SUP_OVERFLOW_RECLONE ? "reclone" : "drop");
	sbuf_json_str(sb, sup->have_criu ? sup->criu.version : "");
	sbuf_printf(sb, ",\"clone_in_progress\":%s,\"reclones\":%llu,\"clones\":[",
		    sup->job ? "true" : "false", (unsigned long long)sup->reclones);
	for (unsigned i = 0; i < sup->nclones; i++) {
		struct sup_clone *c = sup->clones[i];
		struct proxy_replica_info info;
		int have = sup->px && proxy_replica_info(sup->px, c->replica_id, &info) == 0;

		sbuf_printf(sb,
			    "%s{\"id\":%u,\"pid\":%d,\"replica_id\":%u,\"age_s\":%.1f,\"frozen_"
			    "ms\":%.1f,"
			    "\"memdump_ms\":%.1f,\"memwrite_ms\":%.1f,\"final_sync_ms\":%.1f,"
			    "\"precopy_ms\":%.1f,\"dump_ms\":%.1f,\"clone_total_ms\":%.1f,"
			    "\"restore_ms\":%.1f,\"image_bytes\":%llu,\"buffer\":%llu,\"log_"
			    "bytes\":%llu,"
			    "\"log_dropped\":%llu,\"dir\":",
			    i ? "," : "", c->cm.id, c->cm.pid, c->replica_id,
			    (double)(now - c->created_ns) / 1e9, (double)c->dump.frozen_us / 1000,
			    (double)c->dump.memdump_us / 1000, (double)c->dump.memwrite_us / 1000,
			    (double)c->dump.final_sync_us / 1000, (double)c->dump.precopy_us / 1000,
			    (double)c->dump.dump_wall_us / 1000, (double)c->dump.total_us / 1000,
			    (double)c->cm.restore_us / 1000,
			    (unsigned long long)c->dump.image_bytes, (unsigned long long)c->buffer,
			    (unsigned long long)c->log_bytes, (unsigned long long)c->log_dropped);
		sbuf_json_str(sb, c->cm.dir);
		sbuf_printf(sb, ",\"host\":");
		sbuf_json_str(sb, c->host);
		sbuf_printf(sb, ",\"address\":");
		sbuf_json_str(sb, c->address);
		if (have) {
			sbuf_printf(sb, ",\"debug_window_s\":");
			sbuf_json_num(sb, info.debug_window_s);
			sbuf_printf(sb, ",\"window_open\":%s,\"forecast_s\":",
				    info.window_open ? "true" : "false");
			sbuf_json_num(sb, info.forecast_s);
			sbuf_printf(sb, ",\"overflows\":%llu", (unsigned long long)info.overflows);
		}
		sbuf_printf(sb, "}");
	}
	sbuf_printf(sb, "],\"past_windows\":[");
	for (unsigned i = 0; i < sup->nwindows && i < 64; i++) {
		const struct sup_window *w = &sup->windows[i];

		sbuf_printf(sb, "%s{\"clone\":%u,\"debug_window_s\":", i ? "," : "", w->clone_id);
		sbuf_json_num(sb, w->seconds);
		sbuf_printf(sb, "}");
	}
	sbuf_printf(sb, "],\"upstreams\":");
	if (sup->agg)
		agg_status_json(sup->agg, sb);
	else
		sbuf_printf(sb, "[]");
	sbuf_printf(sb, ",\"proxy\":");
	if (sup->px)
		proxy_status_json(sup->px, sb);
	else
		sbuf_printf(sb, "null\n");
	sbuf_printf(sb, "}\n");
}

static int render_status(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	(void)query;
	sup_status_json(arg, out);
	*ctype = "application/json";
	return 200;
}

static int render_status_text(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	struct supervisor *sup = arg;
	uint64_t now = clock_coarse_ns();
	char sz[32];

	(void)query;
	(void)ctype;
	sbuf_printf(out,
		    "%s: service %s (pid %d, %s), port %d in its own namespaces; clients on %s\n",
		    sup->cfg.name, sup->cfg.argv[0], sup->svc.pid, service_state(sup),
		    sup->cfg.port, sup->cfg.proxy.listen.text);
	sbuf_printf(out,
		    "supervisor pid %d, up %.0f s, CRIU %s, overflow policy %s, %llu re-clones%s\n",
		    (int)getpid(), (double)(now - sup->start_ns) / 1e9,
		    sup->have_criu ? sup->criu.version : "missing",
		    sup->cfg.overflow == SUP_OVERFLOW_RECLONE ? "reclone" : "drop",
		    (unsigned long long)sup->reclones, sup->job ? "; a clone is being made" : "");
	if (sup->nclones) {
		sbuf_printf(out, "%-6s %-8s %-10s %-11s %-10s %s\n", "CLONE", "PID", "AGE",
			    "FROZEN", "IMAGE", "DIR");
		for (unsigned i = 0; i < sup->nclones; i++) {
			struct sup_clone *c = sup->clones[i];
			char frozen[24], age[24];

			snprintf(frozen, sizeof(frozen), "%.1f ms",
				 (double)c->dump.frozen_us / 1000);
			snprintf(age, sizeof(age), "%.0f s", (double)(now - c->created_ns) / 1e9);
			sbuf_printf(out, "%-6u %-8d %-10s %-11s %-10s %s\n", c->cm.id, c->cm.pid,
				    age, frozen, size_format(c->dump.image_bytes, sz, sizeof(sz)),
				    c->cm.dir);
		}
	} else {
		sbuf_printf(out, "no clones (make one with `doppel clone %s`)\n", sup->cfg.name);
	}
	for (unsigned i = 0; i < sup->nwindows && i < 64; i++)
		sbuf_printf(out, "past debug window: clone %u kept up for %.2f s\n",
			    sup->windows[i].clone_id, sup->windows[i].seconds);
	if (sup->agg)
		agg_status_text(sup->agg, out);
	sbuf_printf(out, "\n");
	if (sup->px)
		proxy_status_text(sup->px, out);
	return 200;
}

static int render_metrics(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	struct supervisor *sup = arg;
	char labels[64];

	(void)query;
	*ctype = "text/plain; version=0.0.4";
	snprintf(labels, sizeof(labels), "service=\"%s\"", sup->cfg.name);
	if (sup->px)
		proxy_metrics(sup->px, out, labels);
	sbuf_printf(out,
		    "# HELP doppel_clones Live clones.\n# TYPE doppel_clones "
		    "gauge\ndoppel_clones{%s} %u\n",
		    labels, sup->nclones);
	sbuf_printf(out,
		    "# HELP doppel_reclones_total Clones replaced after an overflow.\n"
		    "# TYPE doppel_reclones_total counter\ndoppel_reclones_total{%s} %llu\n",
		    labels, (unsigned long long)sup->reclones);
	return 200;
}

/* One tab-separated line for `doppel list`. */
static int render_row(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	struct supervisor *sup = arg;

	(void)query;
	(void)ctype;
	sbuf_printf(out, "%s\t%d\t%d\t%s\t%s\t%d\t%u\t%.0f\n", sup->cfg.name, (int)getpid(),
		    sup->svc.pid, service_state(sup), sup->cfg.proxy.listen.text, sup->cfg.port,
		    sup->nclones, (double)(clock_coarse_ns() - sup->start_ns) / 1e9);
	return 200;
}

static void send_text(struct evhttp_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void send_text(struct evhttp_request *req, int code, const char *fmt, ...)
{
	struct evbuffer *b = evbuffer_new();
	va_list ap;

	if (b) {
		va_start(ap, fmt);
		evbuffer_add_vprintf(b, fmt, ap);
		va_end(ap);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; charset=utf-8");
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	if (b)
		evbuffer_free(b);
}

static int post_only(struct evhttp_request *req)
{
	if (evhttp_request_get_command(req) == EVHTTP_REQ_POST)
		return 1;
	send_text(req, 405, "use POST\n");
	return 0;
}

static const char *query_param(struct evhttp_request *req, struct evkeyvalq *q, const char *key)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;

	if (!q->tqh_first && qs)
		evhttp_parse_query_str(qs, q);
	return evhttp_find_header(q, key);
}

static void route_clone(struct evhttp_request *req, void *arg)
{
	struct supervisor *sup = arg;
	struct evkeyvalq q = {0};
	const char *v;
	unsigned long count = 1;
	uint64_t buffer = 0;
	char err[512];
	int rc;

	if (!post_only(req))
		return;
	TAILQ_INIT(&q);
	if ((v = query_param(req, &q, "count"))) {
		char *end;

		count = strtoul(v, &end, 10);
		if (*end || count == 0 || count > SUP_MAX_CLONES) {
			send_text(req, 400, "bad count '%s': 1 to %d\n", v, SUP_MAX_CLONES);
			goto out;
		}
	}
	if ((v = query_param(req, &q, "buffer")) && (size_parse(v, &buffer) < 0 || !buffer)) {
		send_text(req, 400, "bad buffer '%s': write bytes or K/M/G, e.g. 64M\n", v);
		goto out;
	}
	v = query_param(req, &q, "keep");
	if (v && (v[0] != '/' || count != 1)) {
		send_text(req, 400, "keep=DIR: an absolute path, and one clone\n");
		goto out;
	}
	rc = sup_job_start_ex(sup, (unsigned)count, buffer, 0, query_param(req, &q, "host"),
			      query_param(req, &q, "images"),
			      query_param(req, &q, "control") != NULL, v, req, err, sizeof(err));
	if (rc)
		send_text(req, rc == -EBUSY ? 409 : rc == -EAGAIN ? 503 : 500, "%s\n", err);
out:
	evhttp_clear_headers(&q);
}

static void route_destroy(struct evhttp_request *req, void *arg)
{
	struct supervisor *sup = arg;
	struct evkeyvalq q = {0};
	struct sup_clone *c;
	const char *v;
	char *end;
	unsigned long id;

	if (!post_only(req))
		return;
	TAILQ_INIT(&q);
	v = query_param(req, &q, "id");
	id = v ? strtoul(v, &end, 10) : 0;
	if (!v || *end || !id) {
		send_text(req, 400, "give the clone's id: /destroy?id=N\n");
	} else if (!(c = sup_clone_find(sup, (unsigned)id))) {
		send_text(req, 404, "%s has no clone %lu (see `doppel status %s`)\n", sup->cfg.name,
			  id, sup->cfg.name);
	} else {
		sup_clone_remove(sup, c, "destroy requested");
		send_text(req, 200, "clone %lu destroyed\n", id);
	}
	evhttp_clear_headers(&q);
}

static void route_stop(struct evhttp_request *req, void *arg)
{
	struct supervisor *sup = arg;

	if (!post_only(req))
		return;
	send_text(req, 200, "stopping %s\n", sup->cfg.name);
	sup_shutdown(sup, 0, "stop requested");
}

/*
 * GET /clone?id=N: one clone as "key=value" lines, for `doppel attach` (which
 * polls it to govern a tracer) and for scripts.
 */
static void route_clone_info(struct evhttp_request *req, void *arg)
{
	struct supervisor *sup = arg;
	struct evkeyvalq q = {0};
	struct proxy_replica_info info;
	struct sup_clone *c;
	const char *v;
	char *end;
	unsigned long id;

	TAILQ_INIT(&q);
	v = query_param(req, &q, "id");
	id = v ? strtoul(v, &end, 10) : 0;
	if (!v || *end || !id) {
		send_text(req, 400, "give the clone's id: /clone?id=N\n");
	} else if (!(c = sup_clone_find(sup, (unsigned)id))) {
		send_text(req, 404, "%s has no clone %lu (see `doppel status %s`)\n", sup->cfg.name,
			  id, sup->cfg.name);
	} else if (!sup->px || proxy_replica_info(sup->px, c->replica_id, &info) < 0) {
		send_text(req, 503, "clone %lu is not attached to the proxy\n", id);
	} else {
		send_text(req, 200,
			  "id=%u\npid=%d\ndir=%s\nservice_pid=%d\noccupancy=%.4f\nbuffered=%llu\n"
			  "max_conn_buffered=%llu\nbuffer=%llu\nbudget=%llu\noverflows=%llu\n"
			  "debug_window_s=%.3f\nwindow_open=%d\nforecast_s=%.3f\n",
			  c->cm.id, c->cm.pid, c->cm.dir, sup->svc.pid, info.occupancy,
			  (unsigned long long)info.buffered,
			  (unsigned long long)info.max_conn_buffered,
			  (unsigned long long)info.buffer_cap, (unsigned long long)info.budget,
			  (unsigned long long)info.overflows, info.debug_window_s, info.window_open,
			  isfinite(info.forecast_s) ? info.forecast_s : -1.0);
	}
	evhttp_clear_headers(&q);
}

void sup_routes_install_readonly(struct supervisor *sup, struct admin *adm)
{
	admin_route(adm, "/status", render_status, sup);
	admin_route(adm, "/status.txt", render_status_text, sup);
	admin_route(adm, "/metrics", render_metrics, sup);
	admin_route_page(adm);
}

void sup_routes_install(struct supervisor *sup)
{
	sup_routes_install_readonly(sup, sup->adm);
	admin_route(sup->adm, "/row", render_row, sup);
	admin_route_raw(sup->adm, "/clone", route_clone, sup);
	admin_route_raw(sup->adm, "/clone-info", route_clone_info, sup);
	admin_route_raw(sup->adm, "/destroy", route_destroy, sup);
	admin_route_raw(sup->adm, "/stop", route_stop, sup);
}
