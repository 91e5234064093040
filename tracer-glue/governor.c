/*
 * governor.c - the budget governor's decisions (attach.h). Pure logic: the
 * session applies the steps to the tool (session.c).
 *
 * Hysteresis between a high and a low mark of the clone's buffer occupancy:
 * above high, tracing is cut (whatever the method); it comes back only below
 * low, so one burst does not make it flap. Past the low mark, a forecast of
 * overflow within the horizon cuts too: the fill rate, not only the level.
 */
#include "tracer-glue/attach.h"

#include <string.h>

enum trc_gov_method trc_gov_method_for(char *const *argv)
{
	const char *tool = argv[0], *slash = strrchr(tool, '/');

	if (slash)
		tool = slash + 1;
	if (strncmp(tool, "perf", 4) == 0)
		return argv[1] && strcmp(argv[1], "record") == 0 ? TRC_GOV_CONTROL
								 : TRC_GOV_RESTART;
	if (strcmp(tool, "gdb") == 0)
		return TRC_GOV_OFF; /* a person is at the controls */
	/* ptrace and kprobe tools: stopping them would stall the clone, not free it */
	return TRC_GOV_RESTART;
}

const char *trc_gov_method_name(enum trc_gov_method m)
{
	switch (m) {
	case TRC_GOV_CONTROL:
		return "control";
	case TRC_GOV_RESTART:
		return "restart";
	case TRC_GOV_PAUSE:
		return "pause";
	default:
		return "off";
	}
}

void trc_gov_init(struct trc_governor *g, double high, double low, double horizon_s,
		  uint64_t now_ns)
{
	memset(g, 0, sizeof(*g));
	g->high = high;
	g->low = low < high ? low : high / 2;
	g->horizon_s = horizon_s > 0 ? horizon_s : 0;
	g->started_ns = g->last_ns = now_ns;
}

enum trc_gov_step trc_gov_tick(struct trc_governor *g, double occupancy, double forecast_s,
			       uint64_t now_ns)
{
	uint64_t dt = now_ns > g->last_ns ? now_ns - g->last_ns : 0;
	int soon = g->horizon_s > 0 && forecast_s >= 0 && forecast_s < g->horizon_s;

	if (g->lowered)
		g->lowered_ns += dt;
	else
		g->full_ns += dt;
	g->last_ns = now_ns;
	if (!g->lowered && (occupancy > g->high || (soon && occupancy >= g->low))) {
		g->lowered = 1;
		g->by_forecast = occupancy <= g->high;
		g->lowers++;
		return TRC_GOV_LOWER;
	}
	if (g->lowered && occupancy < g->low && !soon) {
		g->lowered = 0;
		g->restores++;
		return TRC_GOV_RESTORE;
	}
	return TRC_GOV_KEEP;
}

double trc_gov_full_share(const struct trc_governor *g)
{
	uint64_t total = g->full_ns + g->lowered_ns;

	return total ? (double)g->full_ns / (double)total : 1.0;
}
