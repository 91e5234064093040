/*
 * window.h - the debug window: how long a replica can keep up before its
 * bounded buffer overflows.
 *
 * window_forecast() is what the proxy's live forecast uses: a fluid model fed
 * by measured rates. The queueing models (M/M/1/K, simulation) of
 * `doppel window` build on the same notions.
 */
#ifndef DOPPEL_WINDOW_H
#define DOPPEL_WINDOW_H

/*
 * Seconds until free_bytes of buffer are used up when bytes arrive at
 * ingress_bps and leave at drain_bps. INFINITY when the buffer is not filling;
 * 0 when it is already full.
 */
double window_forecast(double free_bytes, double ingress_bps, double drain_bps);

#endif
