/*
 * window.h - the debug window: how long a replica can keep up before its
 * bounded buffer overflows.
 *
 * The replica is a single FIFO server fed by the proxy: requests (messages of
 * some size) arrive at the rate production receives them, wait in a buffer of
 * B bytes, and leave the buffer when the replica starts serving them. The
 * debug window is the time from attach (empty buffer) until the first request
 * that would push the waiting bytes above B: the first overflow.
 *
 * Three ways to answer, chosen by window_solve() (see docs/window.md):
 *   - exact: Poisson arrivals, exponential service, fixed message size is an
 *     M/M/1/K queue; its first-passage time to K+1 waiting requests is known
 *     exactly (mean in closed form, variance by recursion, distribution by
 *     uniformization of the birth-death chain).
 *   - sim: discrete-event simulation for any arrival process (deterministic,
 *     Poisson, Markov-modulated bursts, a recorded trace) and service time
 *     distribution, with byte-exact buffer accounting.
 *   - fluid: the buffer as a fluid with drift (bytes in minus bytes out per
 *     second) and Brownian noise (the arrival and service variability), for
 *     buffers far larger than one request.
 *
 * window_forecast() and window_live_forecast() are what the proxy's live
 * forecast uses: the fluid model fed by measured rates. window_query_run()
 * is `doppel window`: answers and sweeps as text, JSON and SVG.
 *
 * Ownership: plain values in, plain values out (reports into a caller's
 * struct sbuf); the only allocated object is struct window_trace
 * (window_trace_load / window_trace_free). Thread-safe: no global state.
 */
#ifndef DOPPEL_WINDOW_H
#define DOPPEL_WINDOW_H

#include <stddef.h>
#include <stdint.h>

struct sbuf;

/*
 * Seconds until free_bytes of buffer are used up when bytes arrive at
 * ingress_bps and leave at drain_bps. INFINITY when the buffer is not filling;
 * 0 when it is already full.
 */
double window_forecast(double free_bytes, double ingress_bps, double drain_bps);

/* What the proxy knows about one replica when it forecasts its window. */
struct window_live {
	double buffer;		       /* cap of one connection's queue (--buffer) */
	double budget;		       /* cap of all its connections together (--budget) */
	double max_conn_queued;	       /* the fullest connection's queue */
	double queued;		       /* all connections together */
	unsigned backlogged;	       /* connections with bytes queued */
	double ingress_bps, drain_bps; /* measured, all connections together */
};

/*
 * Seconds until the replica's first overflow at the measured rates: the
 * sooner of the fullest connection reaching the buffer (its share of the net
 * inflow is that of one backlogged connection) and all connections reaching
 * the budget. INFINITY when nothing is filling.
 */
double window_live_forecast(const struct window_live *in);

/* ---- the model ---- */

enum window_arrival {
	WINDOW_ARR_POISSON,
	WINDOW_ARR_DET,	  /* evenly spaced */
	WINDOW_ARR_MMPP,  /* Markov-modulated Poisson: bursts */
	WINDOW_ARR_TRACE, /* recorded arrivals (pcap, pcapng, text) */
};

enum window_service {
	WINDOW_SVC_EXP,
	WINDOW_SVC_DET,
};

enum window_method {
	WINDOW_AUTO,
	WINDOW_EXACT,
	WINDOW_SIM,
	WINDOW_FLUID,
};

#define WINDOW_MMPP_MAX 8

/*
 * Markov-modulated Poisson arrivals: in state i requests arrive at rate[i]
 * per second; the state lasts an exponential time of mean dwell[i] seconds,
 * then moves to state i+1 (cyclically). Two states give on/off bursts.
 */
struct window_mmpp {
	unsigned n;
	double rate[WINDOW_MMPP_MAX];
	double dwell[WINDOW_MMPP_MAX];
};

/*
 * Recorded arrivals: n requests, gap[i] seconds after the previous one
 * (gap[0] is the mean gap, used when a replay wraps around), size[i] bytes.
 * Built by window_trace_load()/window_trace_parse(); freed by
 * window_trace_free().
 */
struct window_trace {
	uint64_t n;
	double *gap;
	uint32_t *size;
	double duration; /* first to last arrival, seconds */
	uint64_t bytes;
	/* what the reader saw and skipped */
	const char *format; /* "pcap", "pcapng" or "text" */
	uint16_t port;	    /* destination port counted (pcap/pcapng) */
	uint64_t packets, skipped_other, skipped_empty, skipped_retrans, skipped_bad;
	uint64_t flows, flows_untracked;
	int truncated; /* stopped at the arrivals cap */
};

/* Which packets of a capture are arrivals. */
struct window_trace_filter {
	uint16_t port; /* TCP destination port; 0: the port that received the most payload */
	uint64_t max_arrivals; /* cap (0: WINDOW_TRACE_MAX) */
};

#define WINDOW_TRACE_MAX (64ULL << 20)

/*
 * Parse a capture or text file held in memory. Formats, by their first bytes:
 * pcap (micro- or nanosecond, either byte order), pcapng (any byte order,
 * several interfaces), otherwise text: one arrival per line, "SECONDS
 * [BYTES]", '#' starts a comment. Every TCP segment with payload sent to the
 * chosen port is one arrival (retransmissions are skipped). Link types:
 * Ethernet, Linux cooked (v1, v2), raw IP, BSD loopback.
 * Returns 0, or -EINVAL/-ENOMEM with the reason in err.
 */
int window_trace_parse(const unsigned char *data, size_t len, const struct window_trace_filter *f,
		       struct window_trace **out, char *err, size_t errlen);
/* Same, from a file (mapped read-only). */
int window_trace_load(const char *path, const struct window_trace_filter *f,
		      struct window_trace **out, char *err, size_t errlen);
void window_trace_free(struct window_trace *t);
/* Mean arrivals per second over the trace (0 with fewer than two arrivals). */
double window_trace_rate(const struct window_trace *t);

struct window_params {
	enum window_arrival arrival;
	double rate; /* mean requests per second (MMPP: derived; trace: rescales time) */
	struct window_mmpp mmpp;
	const struct window_trace *trace;
	int trace_from_start; /* replay from the first recorded arrival, not a random offset */
	enum window_service service;
	double service_rate; /* requests per second the replica serves when busy */
	double msg_size;     /* bytes per request; 0 with a trace: its recorded sizes */
	double buffer;	     /* bytes that may wait (--buffer plus any kernel buffering) */
	double horizon;	     /* seconds: report P(first overflow <= horizon) */
	unsigned runs;	     /* simulation runs (0: chosen by cost) */
	uint64_t seed;
	uint64_t sim_budget; /* simulated arrivals allowed in total (0: default) */
	enum window_method method;
};

/* Defaults: Poisson, exponential service, horizon 10 min, seed 1. */
void window_params_defaults(struct window_params *p);

struct window_result {
	enum window_method method;
	char why[320];		 /* which method answered, and why */
	char quantiles_from[96]; /* how the quantiles were obtained */
	double rho;		 /* offered load on the replica: arrival rate / service rate */
	double arrival_rate;	 /* requests per second, as used */
	double mean_size;	 /* bytes per request, as used */
	uint64_t capacity_msgs;	 /* whole requests that fit in the buffer */
	/* time to first overflow, seconds; INFINITY: beyond any reach (never) */
	double mean, sd, median, p10, p90;
	int mean_is_lower_bound;      /* simulation runs hit their time cap */
	double mean_ci95;	      /* simulation: half-width of the mean's 95% interval */
	double p_horizon;	      /* P(first overflow <= horizon) */
	int p_horizon_is_upper_bound; /* no run overflowed: rule-of-three bound */
	double fluid_s;		      /* the plain fluid answer: buffer / net inflow */
	/* simulation bookkeeping */
	unsigned runs, censored;
	double t_cap; /* each run stopped there; censored quantiles lie beyond it */
	uint64_t sim_arrivals;
	double sim_seconds; /* CPU time the simulation took */
};

/*
 * Answer one question. Returns 0, or -EINVAL (inconsistent parameters, or the
 * forced method cannot answer them) with the reason in err.
 */
int window_solve(const struct window_params *p, struct window_result *r, char *err, size_t errlen);

const char *window_method_name(enum window_method m);
const char *window_arrival_name(enum window_arrival a);

/*
 * Parse an arrival process: "poisson", "det", or
 * "mmpp:RATE/DWELL,RATE/DWELL[,...]" (rates per second, dwell times in
 * seconds, e.g. "mmpp:80/0.5,10/2"). Returns 0 or -EINVAL with err.
 */
int window_parse_arrival(const char *text, enum window_arrival *a, struct window_mmpp *m, char *err,
			 size_t errlen);
/* Mean rate of an MMPP (time-weighted). */
double window_mmpp_rate(const struct window_mmpp *m);

/* ---- the simulator, for benchmarks ---- */

/*
 * Simulate exactly `arrivals` arrivals (restarting after each overflow) and
 * return how many overflows were seen; for measuring the simulator's speed.
 */
int window_sim_throughput(const struct window_params *p, uint64_t arrivals, uint64_t *overflows,
			  char *err, size_t errlen);

/* ---- sweeps and plots ---- */

#define WINDOW_SWEEP_MAX_POINTS 400
#define WINDOW_SWEEP_MAX_SERIES 8

/* One curve: the debug window against slowdown for one buffer size. */
struct window_series {
	double buffer; /* bytes, as given (without kernel buffering) */
	unsigned n;
	double x[WINDOW_SWEEP_MAX_POINTS];
	struct window_result r[WINDOW_SWEEP_MAX_POINTS];
};

struct window_plot {
	const char *title;
	const char *xlabel;
	double horizon;
	unsigned nseries;
	const struct window_series *series;
};

/* An SVG line chart (log time axis, p10-p90 band, horizon line). */
void window_plot_svg(const struct window_plot *plot, struct sbuf *out);

/* ---- `doppel window`: answers as text or JSON (report.c) ---- */

/*
 * One question per buffer size, or a sweep over slowdowns for each. Every
 * answer is window_solve() on p with p.buffer = buffers[i] + kernel_buffer
 * and, given a slowdown, p.service_rate = rate / utilization / slowdown
 * (production serves rate / utilization requests per second when busy; the
 * replica takes slowdown times as long).
 */
struct window_query {
	struct window_params p;
	double buffers[WINDOW_SWEEP_MAX_SERIES]; /* bytes, as given */
	unsigned nbuffers;
	double kernel_buffer; /* bytes in front of the replica, added to every buffer */
	double slowdown;      /* > 0: the service rate comes from it; 0: p.service_rate */
	double utilization;   /* production's busy fraction at this rate, (0, 1] */
	int sweep;	      /* over slowdowns sw_from..sw_to by sw_step (slowdown unused) */
	double sw_from, sw_to, sw_step;
	int json;
};

/*
 * Answer a query into out (the text tables, or one JSON document) and, for
 * a sweep with svg non-NULL, its chart into svg. Returns 0, -EINVAL (a point
 * the model cannot answer, or a malformed query; err says which) or -ENOMEM.
 * After an error, out keeps the text built before it (a JSON document is
 * dropped whole).
 */
int window_query_run(const struct window_query *q, struct sbuf *out, struct sbuf *svg, char *err,
		     size_t errlen);
/* One line on what a trace held: file, format, counts, what was skipped. */
void window_trace_describe(const struct window_trace *t, const char *path, struct sbuf *out);

#endif
