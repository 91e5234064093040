/*
 * routes.c - the supervisor's admin endpoint (see supervisor.h for the list)
 * and the field tables its status pages are made from (common/stats.h): the
 * supervisor and its service, a clone, a past debug window.
 */
#define LOG_PREFIX "admin"
#include "supervisor/sup-int.h"

#include <errno.h>
#include <stdarg.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/size.h"
#include "common/stats.h"

/* ---- the clone table ---- */

/* What a clone's row is read with, besides the clone itself. */
struct clone_ctx {
	uint64_t now;
	pid_t service_pid;
	int have; /* the proxy knows its replica: info is valid */
	struct proxy_replica_info info;
	int have_usage; /* the clone has a cgroup: usage is valid */
	struct cg_usage usage;
	char passes[256]; /* "; passes of N, M pages in X ms" or "", for the text view */
};

struct clone_rows {
	struct supervisor *sup;
	uint64_t now;
	struct clone_ctx cur;
};

static void clone_ctx_fill(struct supervisor *sup, const struct sup_clone *c, uint64_t now,
			   struct clone_ctx *cx)
{
	memset(cx, 0, sizeof(*cx));
	cx->now = now;
	cx->service_pid = sup->svc.pid;
	cx->have = sup->px && proxy_replica_info(sup->px, c->replica_id, &cx->info) == 0;
	cx->have_usage = cg_usage_read(&c->cm.cg, &cx->usage) == 0;
	cx->passes[0] = '\0';
	for (unsigned i = 0, off = 0; i < c->dump.npasses && off < sizeof(cx->passes); i++)
		off += (unsigned)snprintf(cx->passes + off, sizeof(cx->passes) - off, "%s%llu",
					  i ? ", " : "; passes of ",
					  (unsigned long long)c->dump.passes[i].pages_written);
	if (c->dump.npasses) {
		size_t off = strlen(cx->passes);

		snprintf(cx->passes + off, sizeof(cx->passes) - off, " pages in %.1f ms",
			 (double)c->dump.predump_us / 1000);
	}
}

static const void *clone_row(void *arg, unsigned i, const void **ctx)
{
	struct clone_rows *cr = arg;

	clone_ctx_fill(cr->sup, cr->sup->clones[i], cr->now, &cr->cur);
	*ctx = &cr->cur;
	return cr->sup->clones[i];
}

static void clone_rows_init(struct clone_rows *cr, struct stats_rows *rows, struct supervisor *sup,
			    uint64_t now)
{
	cr->sup = sup;
	cr->now = now;
	rows->n = sup->nclones;
	rows->row = clone_row;
	rows->arg = cr;
}

#define CL(o) ((const struct sup_clone *)(o))
#define CCTX(c) ((const struct clone_ctx *)(c))

static int cl_id(const void *o, const void *c, struct stats_val *v)
{
	v->u = CL(o)->cm.id;
	return 0;
}

static int cl_pid(const void *o, const void *c, struct stats_val *v)
{
	v->i = CL(o)->cm.pid;
	return 0;
}

static int cl_replica_id(const void *o, const void *c, struct stats_val *v)
{
	v->u = CL(o)->replica_id;
	return 0;
}

static int cl_age(const void *o, const void *c, struct stats_val *v)
{
	v->d = (double)(CCTX(c)->now - CL(o)->created_ns) / 1e9;
	return 0;
}

static int cl_dir(const void *o, const void *c, struct stats_val *v)
{
	v->s = CL(o)->cm.dir;
	return 0;
}

static int cl_host(const void *o, const void *c, struct stats_val *v)
{
	v->s = CL(o)->host;
	return 0;
}

static int cl_address(const void *o, const void *c, struct stats_val *v)
{
	v->s = CL(o)->address;
	return 0;
}

static int cl_debug_window(const void *o, const void *c, struct stats_val *v)
{
	if (!CCTX(c)->have)
		return -ENODATA;
	v->d = CCTX(c)->info.debug_window_s;
	return 0;
}

static int cl_window_open(const void *o, const void *c, struct stats_val *v)
{
	if (!CCTX(c)->have)
		return -ENODATA;
	v->b = CCTX(c)->info.window_open;
	return 0;
}

static int cl_forecast(const void *o, const void *c, struct stats_val *v)
{
	if (!CCTX(c)->have)
		return -ENODATA;
	v->d = CCTX(c)->info.forecast_s;
	return 0;
}

static int cl_overflows(const void *o, const void *c, struct stats_val *v)
{
	if (!CCTX(c)->have)
		return -ENODATA;
	v->u = CCTX(c)->info.overflows;
	return 0;
}

/* Its cgroup (cgroup/): where, the limits it got, what it uses now. */
static int cl_cgroup(const void *o, const void *c, struct stats_val *v)
{
	if (CL(o)->cm.cg.version == CG_NONE)
		return -ENODATA;
	v->s = CL(o)->cm.cg.rel;
	return 0;
}

static int cl_cgroup_version(const void *o, const void *c, struct stats_val *v)
{
	if (CL(o)->cm.cg.version == CG_NONE)
		return -ENODATA;
	v->s = CL(o)->cm.cg.version == CG_V2 ? "v2" : "v1";
	return 0;
}

static int cl_limit_memory(const void *o, const void *c, struct stats_val *v)
{
	v->u = CL(o)->cm.cg.limits.memory;
	return v->u ? 0 : -ENODATA;
}

static int cl_limit_cpu_weight(const void *o, const void *c, struct stats_val *v)
{
	v->u = CL(o)->cm.cg.limits.cpu_weight;
	return v->u ? 0 : -ENODATA;
}

static int cl_limit_pids(const void *o, const void *c, struct stats_val *v)
{
	v->u = CL(o)->cm.cg.limits.pids;
	return v->u ? 0 : -ENODATA;
}

#define CUSE(f)                                                                  \
	static int cl_use_##f(const void *o, const void *c, struct stats_val *v) \
	{                                                                        \
		if (!CCTX(c)->have_usage)                                        \
			return -ENODATA;                                         \
		v->u = CCTX(c)->usage.f;                                         \
		return 0;                                                        \
	}
CUSE(memory)
CUSE(memory_peak)
CUSE(pids)
CUSE(oom_kills)
static int cl_predump(const void *o, const void *c, struct stats_val *v)
{
	v->s = CL(o)->dump.predump_used ? "on" : "off";
	return 0;
}

static int cl_predump_asked(const void *o, const void *c, struct stats_val *v)
{
	v->s = cm_predump_name(CL(o)->dump.predump_mode);
	return 0;
}

static int cl_predump_reason(const void *o, const void *c, struct stats_val *v)
{
	v->s = CL(o)->dump.predump_reason;
	return 0;
}

static int cl_predump_npasses(const void *o, const void *c, struct stats_val *v)
{
	v->u = CL(o)->dump.npasses;
	return 0;
}

static int cl_predump_passes_text(const void *o, const void *c, struct stats_val *v)
{
	v->s = CCTX(c)->passes;
	return 0;
}

/* [{"pages":N,"pages_scanned":N,"ms":X,"frozen_ms":Y},...]: one object per pre-dump pass */
static void cl_predump_passes_json(struct sbuf *sb, const void *o, const void *c)
{
	const struct cm_dump_stats *d = &CL(o)->dump;

	sbuf_printf(sb, "[");
	for (unsigned i = 0; i < d->npasses; i++)
		sbuf_printf(
			sb,
			"%s{\"pages\":%llu,\"pages_scanned\":%llu,\"ms\":%.1f,\"frozen_ms\":%.1f}",
			i ? "," : "", (unsigned long long)d->passes[i].pages_written,
			(unsigned long long)d->passes[i].pages_scanned,
			(double)d->passes[i].us / 1000, (double)d->passes[i].frozen_us / 1000);
	sbuf_printf(sb, "]");
}

/* A duration the clone's making took, kept in microseconds, shown in milliseconds. */
#define CMS(n, f, m, h)                                                                        \
	{                                                                                      \
		.name = n, .kind = STATS_NUMBER, .off = offsetof(struct sup_clone, f),         \
		.div = 1000, .json_fmt = "%.1f", .text_fmt = "%.1f ms", .metric = m, .help = h \
	}

static const struct stats_field clone_fields[] = {
	{.name = "id",
	 .kind = STATS_GAUGE,
	 .flags = STATS_F_LABEL,
	 .metric = "clone",
	 .get = cl_id},
	{.name = "pid", .kind = STATS_INT, .get = cl_pid},
	{.name = "replica_id", .kind = STATS_GAUGE, .get = cl_replica_id},
	{.name = "age_s",
	 .kind = STATS_NUMBER,
	 .get = cl_age,
	 .json_fmt = "%.1f",
	 .text_fmt = "%.0f s",
	 .metric = "doppel_clone_age_seconds",
	 .help = "Seconds since the clone was made."},
	CMS("frozen_ms", dump.frozen_us, "doppel_clone_frozen_milliseconds",
	    "How long production was frozen to make the clone."),
	{.name = "freezing_ms",
	 .kind = STATS_NUMBER,
	 .off = offsetof(struct sup_clone, dump.freezing_us),
	 .div = 1000,
	 .json_fmt = "%.1f",
	 .text_fmt = "%.1f ms",
	 .metric = "doppel_clone_freezing_milliseconds",
	 .help = "How long CRIU took to freeze production (before frozen_ms)."},
	{.name = "predump", .kind = STATS_STRING, .get = cl_predump},
	{.name = "predump_asked", .kind = STATS_STRING, .get = cl_predump_asked},
	{.name = "predump_reason", .kind = STATS_STRING, .get = cl_predump_reason},
	{.name = "predump_passes",
	 .kind = STATS_LIST,
	 .get = cl_predump_npasses,
	 .json = cl_predump_passes_json,
	 .metric = "doppel_clone_predump_passes",
	 .help = "Pre-dump passes made while production ran."},
	{.name = "predump_passes_text",
	 .kind = STATS_STRING,
	 .flags = STATS_F_NO_JSON,
	 .none = "",
	 .get = cl_predump_passes_text},
	CMS("predump_ms", dump.predump_us, "doppel_clone_predump_milliseconds",
	    "Wall time of the pre-dump passes, production running."),
	{.name = "final_pages",
	 .kind = STATS_GAUGE,
	 .off = offsetof(struct sup_clone, dump.pages_written),
	 .metric = "doppel_clone_final_dump_pages",
	 .help = "Memory pages written by the frozen dump."},
	CMS("memdump_ms", dump.memdump_us, "doppel_clone_memdump_milliseconds",
	    "CRIU's memory dump time for the clone."),
	CMS("memwrite_ms", dump.memwrite_us, "doppel_clone_memwrite_milliseconds",
	    "CRIU's memory write time for the clone."),
	CMS("final_sync_ms", dump.final_sync_us, "doppel_clone_final_sync_milliseconds",
	    "State dir copy made while production was frozen."),
	CMS("precopy_ms", dump.precopy_us, "doppel_clone_precopy_milliseconds",
	    "State dir copy made before production was frozen."),
	CMS("dump_ms", dump.dump_wall_us, "doppel_clone_dump_milliseconds",
	    "Wall time of production's dump."),
	CMS("clone_total_ms", dump.total_us, "doppel_clone_total_milliseconds",
	    "Wall time of the whole clone job."),
	CMS("restore_ms", cm.restore_us, "doppel_clone_restore_milliseconds",
	    "Time to restore the clone from its image."),
	{.name = "image_bytes",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .off = offsetof(struct sup_clone, dump.image_bytes),
	 .metric = "doppel_clone_image_bytes",
	 .help = "Size of the image the clone was restored from."},
	{.name = "buffer",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .off = offsetof(struct sup_clone, buffer),
	 .metric = "doppel_clone_buffer_bytes",
	 .help = "Bytes queued per connection to the clone before the connection is dropped."},
	{.name = "log_bytes",
	 .kind = STATS_COUNTER,
	 .unit = STATS_UNIT_BYTES,
	 .off = offsetof(struct sup_clone, log_bytes),
	 .metric = "doppel_clone_log_bytes_total",
	 .help = "Bytes the clone wrote to its output, kept in its log."},
	{.name = "log_dropped",
	 .kind = STATS_COUNTER,
	 .unit = STATS_UNIT_BYTES,
	 .off = offsetof(struct sup_clone, log_dropped),
	 .metric = "doppel_clone_log_dropped_bytes_total",
	 .help = "Bytes of the clone's output dropped because its log was full."},
	{.name = "dir", .kind = STATS_STRING, .get = cl_dir},
	{.name = "host", .kind = STATS_STRING, .get = cl_host},
	{.name = "address", .kind = STATS_STRING, .get = cl_address},
	/* The proxy's view of the clone's replica (left out when it has none). */
	{.name = "debug_window_s",
	 .kind = STATS_NUMBER,
	 .unit = STATS_UNIT_SECONDS,
	 .get = cl_debug_window},
	{.name = "window_open", .kind = STATS_BOOL, .get = cl_window_open},
	{.name = "forecast_s",
	 .kind = STATS_NUMBER,
	 .unit = STATS_UNIT_SECONDS,
	 .get = cl_forecast},
	{.name = "overflows", .kind = STATS_COUNTER, .get = cl_overflows},
	/* Its cgroup (left out when it has none: no limits). */
	{.name = "cgroup", .kind = STATS_STRING, .get = cl_cgroup},
	{.name = "cgroup_version", .kind = STATS_STRING, .get = cl_cgroup_version},
	{.name = "limits.memory",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .get = cl_limit_memory,
	 .metric = "doppel_clone_memory_limit_bytes",
	 .help = "The clone's memory limit: past it the kernel kills the clone, never production."},
	{.name = "limits.cpu_weight",
	 .kind = STATS_GAUGE,
	 .get = cl_limit_cpu_weight,
	 .metric = "doppel_clone_cpu_weight",
	 .help = "The clone's CPU weight (cgroup v2 scale; 100 is an ordinary cgroup's)."},
	{.name = "limits.pids",
	 .kind = STATS_GAUGE,
	 .get = cl_limit_pids,
	 .metric = "doppel_clone_pids_limit",
	 .help = "The most tasks the clone may have."},
	{.name = "usage.memory",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .get = cl_use_memory,
	 .metric = "doppel_clone_memory_bytes",
	 .help = "Memory charged to the clone's cgroup now."},
	{.name = "usage.memory_peak",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .get = cl_use_memory_peak,
	 .metric = "doppel_clone_memory_peak_bytes",
	 .help = "Most memory the clone's cgroup was charged so far."},
	{.name = "usage.pids",
	 .kind = STATS_GAUGE,
	 .get = cl_use_pids,
	 .metric = "doppel_clone_pids",
	 .help = "Tasks in the clone's cgroup now."},
	{.name = "usage.oom_kills",
	 .kind = STATS_COUNTER,
	 .get = cl_use_oom_kills,
	 .metric = "doppel_clone_oom_kills_total",
	 .help = "Processes of the clone the kernel killed at its memory limit."},
};

static const struct stats_table clone_table = STATS_TABLE(clone_fields);

static const struct stats_col clone_cols[] = {
	{"CLONE", -6, "{id}"},
	{"PID", -8, "{pid}"},
	{"AGE", -10, "{age_s}"},
	{"FROZEN", -11, "{frozen_ms}"},
	{"IMAGE", -10, "{image_bytes}"},
	{"MEMORY/LIMIT", -22, "{usage.memory}/{limits.memory}"},
	{"PIDS", -9, "{usage.pids}/{limits.pids}"},
	{"CPU", -4, "{limits.cpu_weight}"},
	{"PRE-DUMP", -9, "{predump}"},
	{"DIR", 0, "{dir}"},
};

/* What `doppel attach` needs besides the clone's fields (GET /clone-info). */
static int cl_service_pid(const void *o, const void *c, struct stats_val *v)
{
	v->i = CCTX(c)->service_pid;
	return 0;
}

static int cl_occupancy(const void *o, const void *c, struct stats_val *v)
{
	v->d = CCTX(c)->info.occupancy;
	return 0;
}

static int cl_buffered(const void *o, const void *c, struct stats_val *v)
{
	v->u = CCTX(c)->info.buffered;
	return 0;
}

static int cl_max_conn_buffered(const void *o, const void *c, struct stats_val *v)
{
	v->u = CCTX(c)->info.max_conn_buffered;
	return 0;
}

static int cl_budget(const void *o, const void *c, struct stats_val *v)
{
	v->u = CCTX(c)->info.budget;
	return 0;
}

static const struct stats_field clone_info_fields[] = {
	{.name = "service_pid", .kind = STATS_INT, .get = cl_service_pid},
	{.name = "occupancy", .kind = STATS_NUMBER, .json_fmt = "%.4f", .get = cl_occupancy},
	{.name = "buffered", .kind = STATS_GAUGE, .get = cl_buffered},
	{.name = "max_conn_buffered", .kind = STATS_GAUGE, .get = cl_max_conn_buffered},
	{.name = "budget", .kind = STATS_GAUGE, .get = cl_budget},
};

static const struct stats_table clone_info_table = STATS_TABLE(clone_info_fields);

/* ---- past debug windows (--overflow reclone) ---- */

#define WIN(o) ((const struct sup_window *)(o))

static int win_clone(const void *o, const void *c, struct stats_val *v)
{
	v->u = WIN(o)->clone_id;
	return 0;
}

static int win_seconds(const void *o, const void *c, struct stats_val *v)
{
	v->d = WIN(o)->seconds;
	return 0;
}

static const struct stats_field window_fields[] = {
	{.name = "clone",
	 .kind = STATS_GAUGE,
	 .flags = STATS_F_LABEL,
	 .metric = "clone",
	 .get = win_clone},
	{.name = "debug_window_s",
	 .kind = STATS_NUMBER,
	 .text_fmt = "%.2f s",
	 .get = win_seconds,
	 .metric = "doppel_past_debug_window_seconds",
	 .help = "How long a clone that was replaced kept up, attach to first overflow."},
};

static const struct stats_table window_table = STATS_TABLE(window_fields);

static const void *window_row(void *arg, unsigned i, const void **ctx)
{
	const struct supervisor *sup = arg;

	*ctx = NULL;
	return &sup->windows[i];
}

static void window_rows_init(struct stats_rows *rows, struct supervisor *sup)
{
	rows->n = sup->nwindows < SUP_PAST_WINDOWS ? sup->nwindows : SUP_PAST_WINDOWS;
	rows->row = window_row;
	rows->arg = sup;
}

/* ---- clones that ended on their own ---- */

#define END(o) ((const struct sup_ended *)(o))

static int end_clone(const void *o, const void *c, struct stats_val *v)
{
	v->u = END(o)->clone_id;
	return 0;
}

static int end_reason(const void *o, const void *c, struct stats_val *v)
{
	v->s = END(o)->reason;
	return 0;
}

static int end_by_limit(const void *o, const void *c, struct stats_val *v)
{
	v->b = END(o)->killed_by_limit;
	return 0;
}

static int end_age(const void *o, const void *c, struct stats_val *v)
{
	v->d = END(o)->age_s;
	return 0;
}

static int end_window(const void *o, const void *c, struct stats_val *v)
{
	v->d = END(o)->debug_window_s;
	return 0;
}

static int end_window_open(const void *o, const void *c, struct stats_val *v)
{
	v->b = END(o)->window_open;
	return 0;
}

static int end_memory_limit(const void *o, const void *c, struct stats_val *v)
{
	v->u = END(o)->memory_limit;
	return v->u ? 0 : -ENODATA;
}

static int end_memory_peak(const void *o, const void *c, struct stats_val *v)
{
	v->u = END(o)->memory_peak;
	return v->u ? 0 : -ENODATA;
}

static const struct stats_field ended_fields[] = {
	{.name = "clone",
	 .kind = STATS_GAUGE,
	 .flags = STATS_F_LABEL,
	 .metric = "clone",
	 .get = end_clone},
	{.name = "reason", .kind = STATS_STRING, .get = end_reason},
	{.name = "killed_by_limit",
	 .kind = STATS_BOOL,
	 .get = end_by_limit,
	 .metric = "doppel_clone_killed_by_memory_limit",
	 .help = "1 when the clone that ended was killed by its memory limit."},
	{.name = "age_s", .kind = STATS_NUMBER, .json_fmt = "%.1f", .get = end_age},
	{.name = "debug_window_s",
	 .kind = STATS_NUMBER,
	 .unit = STATS_UNIT_SECONDS,
	 .json_fmt = "%.2f",
	 .get = end_window},
	{.name = "window_open", .kind = STATS_BOOL, .get = end_window_open},
	{.name = "memory_limit",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .get = end_memory_limit},
	{.name = "memory_peak",
	 .kind = STATS_GAUGE,
	 .unit = STATS_UNIT_BYTES,
	 .get = end_memory_peak},
};

static const struct stats_table ended_table = STATS_TABLE(ended_fields);

static const void *ended_row(void *arg, unsigned i, const void **ctx)
{
	const struct supervisor *sup = arg;

	*ctx = NULL;
	return &sup->ended[i];
}

static void ended_rows_init(struct stats_rows *rows, struct supervisor *sup)
{
	rows->n = sup->nended < SUP_ENDED_CLONES ? sup->nended : SUP_ENDED_CLONES;
	rows->row = ended_row;
	rows->arg = sup;
}

/* ---- the supervisor table (the service) ---- */

#define SUP(o) ((struct supervisor *)(o))

static const char *service_state(const struct supervisor *sup)
{
	if (sup->stopping)
		return "stopping";
	if (!sup->ready)
		return "starting";
	return sup->svc.pid > 0 ? "running" : "exited";
}

static int sup_name(const void *o, const void *c, struct stats_val *v)
{
	v->s = SUP(o)->cfg.name;
	return 0;
}

static int sup_pid(const void *o, const void *c, struct stats_val *v)
{
	v->i = getpid();
	return 0;
}

static int sup_uptime(const void *o, const void *c, struct stats_val *v)
{
	v->d = (double)(*(const uint64_t *)c - SUP(o)->start_ns) / 1e9;
	return 0;
}

static int svc_pid(const void *o, const void *c, struct stats_val *v)
{
	v->i = SUP(o)->svc.pid;
	return 0;
}

static int svc_port(const void *o, const void *c, struct stats_val *v)
{
	v->i = SUP(o)->cfg.port;
	return 0;
}

static int svc_state(const void *o, const void *c, struct stats_val *v)
{
	v->s = service_state(SUP(o));
	return 0;
}

static int svc_command(const void *o, const void *c, struct stats_val *v)
{
	v->s = SUP(o)->cfg.argv[0];
	return 0;
}

static int svc_adopted(const void *o, const void *c, struct stats_val *v)
{
	v->i = SUP(o)->svc.adopted;
	return 0;
}

static int svc_where(const void *o, const void *c, struct stats_val *v)
{
	v->s = SUP(o)->svc.adopted ? "the host's namespaces (adopted)" : "its own namespaces";
	return 0;
}

static void svc_state_dirs_json(struct sbuf *sb, const void *o, const void *c)
{
	sbuf_append(sb, "[", 1);
	for (unsigned i = 0; i < SUP(o)->svc.nstate; i++) {
		if (i)
			sbuf_append(sb, ",", 1);
		sbuf_json_str(sb, SUP(o)->svc.state_dirs[i]);
	}
	sbuf_append(sb, "]", 1);
}

static int sup_listen(const void *o, const void *c, struct stats_val *v)
{
	v->s = SUP(o)->cfg.proxy.listen.text;
	return 0;
}

static int sup_overflow(const void *o, const void *c, struct stats_val *v)
{
	v->s = SUP(o)->cfg.overflow == SUP_OVERFLOW_RECLONE ? "reclone" : "drop";
	return 0;
}

static int sup_criu(const void *o, const void *c, struct stats_val *v)
{
	v->s = SUP(o)->have_criu ? SUP(o)->criu.version : "";
	return 0;
}

static int sup_cloning(const void *o, const void *c, struct stats_val *v)
{
	v->b = SUP(o)->job != NULL;
	return 0;
}

static int sup_nclones(const void *o, const void *c, struct stats_val *v)
{
	v->u = SUP(o)->nclones;
	return 0;
}

static void sup_clones_json(struct sbuf *sb, const void *o, const void *c)
{
	struct clone_rows cr;
	struct stats_rows rows;

	clone_rows_init(&cr, &rows, SUP(o), *(const uint64_t *)c);
	stats_json_array(sb, &clone_table, &rows);
}

static void sup_windows_json(struct sbuf *sb, const void *o, const void *c)
{
	struct stats_rows rows;

	window_rows_init(&rows, SUP(o));
	stats_json_array(sb, &window_table, &rows);
}

static void sup_ended_json(struct sbuf *sb, const void *o, const void *c)
{
	struct stats_rows rows;

	ended_rows_init(&rows, SUP(o));
	stats_json_array(sb, &ended_table, &rows);
}

static void sup_upstreams_json(struct sbuf *sb, const void *o, const void *c)
{
	if (SUP(o)->agg)
		agg_status_json(SUP(o)->agg, sb);
	else
		sbuf_append(sb, "[]", 2);
}

static void sup_proxy_json(struct sbuf *sb, const void *o, const void *c)
{
	if (SUP(o)->px)
		proxy_status_json(SUP(o)->px, sb);
	else
		sbuf_printf(sb, "null\n");
}

static void sup_capture_json(struct sbuf *sb, const void *o, const void *c)
{
	if (!SUP(o)->cap) {
		sbuf_printf(sb, "null");
		return;
	}
	cap_status_json(SUP(o)->cap, sb);
}

/* The object is the supervisor; the context, the uint64_t time of the reading. */
static const struct stats_field sup_fields[] = {
	{.name = "name", .kind = STATS_STRING, .get = sup_name},
	{.name = "supervisor_pid", .kind = STATS_INT, .get = sup_pid},
	{.name = "uptime_s",
	 .kind = STATS_NUMBER,
	 .text_fmt = "%.0f s",
	 .get = sup_uptime,
	 .metric = "doppel_supervisor_uptime_seconds",
	 .help = "Seconds since the supervisor started."},
	{.name = "service.pid", .kind = STATS_INT, .get = svc_pid},
	{.name = "service.port", .kind = STATS_INT, .get = svc_port},
	{.name = "service.state", .kind = STATS_STRING, .get = svc_state},
	{.name = "service.command", .kind = STATS_STRING, .get = svc_command},
	{.name = "service.adopted", .kind = STATS_INT, .get = svc_adopted},
	{.name = "service.namespaces", .kind = STATS_STRING, .get = svc_where},
	{.name = "service.state_dirs", .kind = STATS_LIST, .json = svc_state_dirs_json},
	{.name = "listen", .kind = STATS_STRING, .get = sup_listen},
	{.name = "overflow", .kind = STATS_STRING, .get = sup_overflow},
	{.name = "criu", .kind = STATS_STRING, .none = "missing", .get = sup_criu},
	{.name = "clone_in_progress",
	 .kind = STATS_BOOL,
	 .get = sup_cloning,
	 .metric = "doppel_clone_in_progress",
	 .help = "1 while a clone is being made."},
	{.name = "reclones",
	 .kind = STATS_COUNTER,
	 .off = offsetof(struct supervisor, reclones),
	 .metric = "doppel_reclones_total",
	 .help = "Clones replaced after an overflow."},
	{.name = "clones",
	 .kind = STATS_LIST,
	 .get = sup_nclones,
	 .json = sup_clones_json,
	 .metric = "doppel_clones",
	 .help = "Live clones."},
	{.name = "past_windows", .kind = STATS_LIST, .json = sup_windows_json},
	{.name = "ended_clones", .kind = STATS_LIST, .json = sup_ended_json},
	{.name = "upstreams", .kind = STATS_LIST, .json = sup_upstreams_json},
	{.name = "proxy", .kind = STATS_LIST, .json = sup_proxy_json},
	{.name = "capture", .kind = STATS_LIST, .json = sup_capture_json},
};

static const struct stats_table sup_table = STATS_TABLE(sup_fields);

/* ---- the views ---- */

void sup_status_json(struct supervisor *sup, struct sbuf *sb)
{
	uint64_t now = clock_coarse_ns();

	stats_json_object(sb, &sup_table, sup, &now);
	sbuf_append(sb, "\n", 1);
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
	struct stats_rows rows;

	(void)query;
	(void)ctype;
	stats_text(
		out, &sup_table, sup, &now,
		"{name}: service {service.command} (pid {service.pid}, {service.state}), port "
		"{service.port} in {service.namespaces}; clients on {listen}\n"
		"supervisor pid {supervisor_pid}, up {uptime_s}, CRIU {criu}, overflow policy "
		"{overflow}, {reclones} re-clones{?clone_in_progress ; a clone is being made}\n");
	if (sup->nclones) {
		struct clone_rows cr;

		clone_rows_init(&cr, &rows, sup, now);
		stats_text_table(out, &clone_table, &rows, clone_cols,
				 sizeof(clone_cols) / sizeof(clone_cols[0]));
		for (unsigned i = 0; i < rows.n; i++) {
			const void *cx, *c = rows.row(rows.arg, i, &cx);

			stats_text(out, &clone_table, c, cx,
				   "clone {id}: pre-dump {predump} ({predump_reason})"
				   "{predump_passes_text}; frozen dump {final_pages} pages, "
				   "production frozen {frozen_ms} after {freezing_ms} freezing\n");
		}
	} else {
		stats_text(out, &sup_table, sup, &now,
			   "no clones (make one with `doppel clone {name}`)\n");
	}
	window_rows_init(&rows, sup);
	for (unsigned i = 0; i < rows.n; i++)
		stats_text(out, &window_table, &sup->windows[i], NULL,
			   "past debug window: clone {clone} kept up for {debug_window_s}\n");
	ended_rows_init(&rows, sup);
	for (unsigned i = 0; i < rows.n; i++)
		stats_text(out, &ended_table, &sup->ended[i], NULL,
			   "clone {clone} {reason} after {age_s:%.1f s} (memory limit "
			   "{memory_limit}, peak {memory_peak}); its debug window: "
			   "{debug_window_s}{?window_open , still open when it ended}\n");
	if (sup->agg)
		agg_status_text(sup->agg, out);
	sbuf_printf(out, "\n");
	if (sup->px)
		proxy_status_text(sup->px, out);
	if (sup->cap)
		cap_status_text(sup->cap, out);
	return 200;
}

static int render_metrics(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	struct supervisor *sup = arg;
	uint64_t now = clock_coarse_ns();
	struct clone_rows cr;
	struct stats_rows rows;
	struct sbuf labels;

	(void)query;
	*ctype = "text/plain; version=0.0.4";
	sbuf_init(&labels);
	stats_prom_label(&labels, "service", sup->cfg.name);
	if (sup->px)
		proxy_metrics(sup->px, out, labels.buf);
	stats_prom_object(out, &sup_table, sup, &now, labels.buf);
	clone_rows_init(&cr, &rows, sup, now);
	stats_prom(out, &clone_table, &rows, labels.buf);
	window_rows_init(&rows, sup);
	stats_prom(out, &window_table, &rows, labels.buf);
	ended_rows_init(&rows, sup);
	stats_prom(out, &ended_table, &rows, labels.buf);
	if (sup->agg)
		agg_metrics(sup->agg, out, labels.buf);
	if (sup->cap)
		cap_metrics(sup->cap, out, labels.buf);
	sbuf_free(&labels);
	return 200;
}

/* One tab-separated line for scripts (`doppel list` reads /status). */
static int render_row(void *arg, const char *query, struct sbuf *out, const char **ctype)
{
	uint64_t now = clock_coarse_ns();

	(void)query;
	(void)ctype;
	stats_text(out, &sup_table, arg, &now,
		   "{name}\t{supervisor_pid}\t{service.pid}\t{service.state}\t{listen}\t"
		   "{service.port}\t{clones}\t{uptime_s:%.0f}\n");
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

static void send_json(struct evhttp_request *req, const struct sbuf *sb)
{
	struct evbuffer *b = evbuffer_new();

	if (b)
		evbuffer_add(b, sb->buf, sb->len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evhttp_send_reply(req, 200, "OK", b);
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

/* The request's query into q (an empty q: no query). */
static void parse_query(struct evhttp_request *req, struct evkeyvalq *q)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;

	if (qs)
		evhttp_parse_query_str(qs, q);
}

static const char *query_param(struct evhttp_request *req, struct evkeyvalq *q, const char *key)
{
	if (!q->tqh_first)
		parse_query(req, q);
	return evhttp_find_header(q, key);
}

static void route_clone(struct evhttp_request *req, void *arg)
{
	struct supervisor *sup = arg;
	struct evkeyvalq q = {0};
	struct sup_clone_request r;
	char err[512];
	int rc;

	if (!post_only(req))
		return;
	TAILQ_INIT(&q);
	parse_query(req, &q);
	if (sup_clone_request_parse(&q, &r, err, sizeof(err)) < 0) {
		send_text(req, 400, "%s\n", err);
	} else {
		rc = sup_job_start_ex(sup, r.count, r.buffer, 0, r.host, r.images, r.control,
				      r.keep, &r.limits, r.predump, req, err, sizeof(err));
		if (rc)
			send_text(req, rc == -EBUSY ? 409 : rc == -EAGAIN ? 503 : 500, "%s\n", err);
	}
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

/* POST /reload: the TLS certificates and keys, read again (`doppel reload`, SIGHUP). */
static void route_reload(struct evhttp_request *req, void *arg)
{
	struct supervisor *sup = arg;
	char err[512];
	int rc;

	if (!post_only(req))
		return;
	if (!sup->px) {
		send_text(req, 503, "%s is not ready yet; try again once it is\n", sup->cfg.name);
		return;
	}
	rc = proxy_tls_reload(sup->px, err, sizeof(err));
	if (rc == 0)
		send_text(req, 200, "%s: certificates reloaded; new handshakes use them\n",
			  sup->cfg.name);
	else
		send_text(req, rc == -ENOENT ? 404 : 422, "%s: %s; the loaded certificates stay\n",
			  sup->cfg.name, err);
}

/*
 * GET /clone-info?id=N: one clone as a JSON object, the fields of /status's
 * clones plus what `doppel attach` governs a tracer with (admin_clone_info()
 * reads it). 503 while the proxy does not know the clone's replica.
 */
static void route_clone_info(struct evhttp_request *req, void *arg)
{
	struct supervisor *sup = arg;
	struct evkeyvalq q = {0};
	struct clone_ctx cx;
	struct sup_clone *c;
	const char *v;
	char *end;
	unsigned long id;

	TAILQ_INIT(&q);
	v = query_param(req, &q, "id");
	id = v ? strtoul(v, &end, 10) : 0;
	if (!v || *end || !id) {
		send_text(req, 400, "give the clone's id: /clone-info?id=N\n");
	} else if (!(c = sup_clone_find(sup, (unsigned)id))) {
		send_text(req, 404, "%s has no clone %lu (see `doppel status %s`)\n", sup->cfg.name,
			  id, sup->cfg.name);
	} else {
		clone_ctx_fill(sup, c, clock_coarse_ns(), &cx);
		if (cx.have) {
			struct sbuf sb;
			int first = 1;

			sbuf_init(&sb);
			sbuf_append(&sb, "{", 1);
			stats_json_members(&sb, &clone_table, c, &cx, &first);
			stats_json_members(&sb, &clone_info_table, c, &cx, &first);
			sbuf_append(&sb, "}\n", 2);
			send_json(req, &sb);
			sbuf_free(&sb);
		} else {
			send_text(req, 503, "clone %lu is not attached to the proxy\n", id);
		}
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
	admin_route_raw(sup->adm, "/reload", route_reload, sup);
}
