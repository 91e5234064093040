/*
 * clone-info.c - the CLI's reader of a supervisor's GET /clone-info: one
 * clone's JSON object (supervisor/routes.c writes it from the clone's field
 * table) parsed into struct admin_clone_info with jansson.
 */
#include "admin/admin.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* A number member (integer or real); absent or null gives dflt. */
static double num_or(const json_t *o, const char *key, double dflt)
{
	const json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

static uint64_t u64_or(const json_t *o, const char *key, uint64_t dflt)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v)
								: dflt;
}

int admin_clone_info_parse(const char *body, struct admin_clone_info *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *o = json_loads(body ? body : "", 0, &jerr);
	const json_t *pid, *dir;

	if (!o) {
		snprintf(err, errlen, "the clone's description is not JSON: %s (line %d)",
			 jerr.text, jerr.line);
		return -EPROTO;
	}
	pid = json_object_get(o, "pid");
	dir = json_object_get(o, "dir");
	if (!json_is_object(o) || !json_is_integer(pid) || json_integer_value(pid) <= 0 ||
	    !json_is_string(dir)) {
		snprintf(err, errlen, "the clone's description lacks its pid or directory");
		json_decref(o);
		return -EPROTO;
	}
	memset(out, 0, sizeof(*out));
	out->id = (unsigned)u64_or(o, "id", 0);
	out->pid = (int)json_integer_value(pid);
	out->service_pid = (int)num_or(o, "service_pid", 0);
	snprintf(out->dir, sizeof(out->dir), "%s", json_string_value(dir));
	out->occupancy = num_or(o, "occupancy", 0);
	out->debug_window_s = num_or(o, "debug_window_s", 0);
	/* Absent or null: nothing is filling, so no overflow is in sight. */
	out->forecast_s = num_or(o, "forecast_s", INFINITY);
	out->window_open = json_is_true(json_object_get(o, "window_open"));
	out->overflows = u64_or(o, "overflows", 0);
	out->buffer = u64_or(o, "buffer", 0);
	out->budget = u64_or(o, "budget", 0);
	out->buffered = u64_or(o, "buffered", 0);
	out->max_conn_buffered = u64_or(o, "max_conn_buffered", 0);
	json_decref(o);
	return 0;
}

int admin_clone_info(const char *addr, unsigned id, struct admin_clone_info *out, char *err,
		     size_t errlen)
{
	char path[64];
	struct sbuf body;
	int status, rc;

	snprintf(path, sizeof(path), "/clone-info?id=%u", id);
	sbuf_init(&body);
	status = admin_request(addr, "GET", path, NULL, &body, NULL, NULL, 3000, err, errlen);
	if (status < 0) {
		sbuf_free(&body);
		return status;
	}
	if (status != 200) {
		size_t n = body.len;

		while (n && body.buf[n - 1] == '\n')
			n--;
		if (n)
			snprintf(err, errlen, "%.*s", (int)n, body.buf);
		else
			snprintf(err, errlen, "%s answered %d", addr, status);
		sbuf_free(&body);
		return status == 404 || status == 503 ? -ENOENT : -EPROTO;
	}
	rc = admin_clone_info_parse(body.buf, out, err, errlen);
	sbuf_free(&body);
	return rc;
}
