/*
 * live.c - the proxy's live forecast: the fluid model fed by measured rates.
 *
 * At the time scale of a status page a buffer is a tank: it fills at ingress
 * minus drain. This is the deterministic part of the fluid method of
 * `doppel window` (fluid.c adds the noise of individual requests, which the
 * proxy does not measure), so the live forecast and the model agree whenever
 * the buffer is large compared with one request.
 */
#include <math.h>

#include "window/window.h"

double window_forecast(double free_bytes, double ingress_bps, double drain_bps)
{
	double net = ingress_bps - drain_bps;

	if (free_bytes <= 0)
		return 0;
	/* Below one byte per second of net growth the forecast means nothing. */
	if (!(net > 1.0))
		return INFINITY;
	return free_bytes / net;
}

double window_live_forecast(const struct window_live *in)
{
	double share = in->backlogged ? 1.0 / in->backlogged : 1.0;
	double f_tot = window_forecast(in->budget - in->queued, in->ingress_bps, in->drain_bps);
	/*
	 * The replica's net inflow is shared by the connections that have a
	 * backlog; the fullest one overflows first at its share.
	 */
	double f_conn = window_forecast(in->buffer - in->max_conn_queued, in->ingress_bps * share,
					in->drain_bps * share);

	return f_conn < f_tot ? f_conn : f_tot;
}
