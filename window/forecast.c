/*
 * forecast.c - fluid forecast of time to overflow.
 */
#include "window/window.h"

#include <math.h>

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
