/*
 * plot.c - an SVG chart of the debug window against slowdown, one curve per
 * buffer size (the shape of the Parikshan thesis' figures): mean time to
 * first overflow on a log axis, the p10-p90 band shaded, the horizon dashed.
 * Points whose overflow lies beyond the top of the chart (or never comes)
 * are drawn as open circles on the top edge.
 *
 * Plain SVG 1.1, no scripts or external references, so any viewer (and
 * rsvg-convert in the tests) renders it.
 */
#include <math.h>
#include <stdio.h>

#include "common/sbuf.h"
#include "common/size.h"
#include "window/window.h"

#define W 780
#define H 480
#define ML 80
#define MR 180
#define MT 50
#define MB 60

static const char *const colours[WINDOW_SWEEP_MAX_SERIES] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
};

static void xml_text(struct sbuf *sb, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			sbuf_printf(sb, "&lt;");
			break;
		case '>':
			sbuf_printf(sb, "&gt;");
			break;
		case '&':
			sbuf_printf(sb, "&amp;");
			break;
		case '"':
			sbuf_printf(sb, "&quot;");
			break;
		default:
			sbuf_append(sb, s, 1);
		}
	}
}

static void decade_label(int k, char *buf, size_t len)
{
	if (k >= -2 && k <= 3)
		snprintf(buf, len, "%g s", pow(10, k));
	else
		snprintf(buf, len, "1e%d s", k);
}

struct axes {
	double x0, x1; /* data range */
	int d0, d1;    /* log10 decades */
};

static double px(const struct axes *a, double x)
{
	double span = a->x1 > a->x0 ? a->x1 - a->x0 : 1;

	return ML + (x - a->x0) / span * (W - ML - MR);
}

/* y pixel of t seconds, clamped to the chart. */
static double py(const struct axes *a, double t)
{
	double l = t > 0 ? log10(t) : a->d0;

	if (l < a->d0)
		l = a->d0;
	if (l > a->d1)
		l = a->d1;
	return MT + (a->d1 - l) / (a->d1 - a->d0) * (H - MT - MB);
}

void window_plot_svg(const struct window_plot *plot, struct sbuf *out)
{
	struct axes a = {INFINITY, -INFINITY, 0, 0};
	double lo = INFINITY, hi = plot->horizon > 0 ? plot->horizon : 1, xstep;
	char buf[64];

	for (unsigned s = 0; s < plot->nseries; s++) {
		const struct window_series *se = &plot->series[s];

		for (unsigned i = 0; i < se->n; i++) {
			const struct window_result *r = &se->r[i];

			a.x0 = fmin(a.x0, se->x[i]);
			a.x1 = fmax(a.x1, se->x[i]);
			if (isfinite(r->p10) && r->p10 > 0)
				lo = fmin(lo, r->p10);
			if (isfinite(r->mean) && r->mean > 0)
				lo = fmin(lo, r->mean);
		}
	}
	if (!isfinite(a.x0)) {
		a.x0 = 0;
		a.x1 = 1;
	}
	if (!isfinite(lo))
		lo = hi / 10;
	a.d0 = (int)floor(log10(lo));
	a.d1 = (int)ceil(log10(hi)) + 1;
	if (a.d1 - a.d0 < 2)
		a.d0 = a.d1 - 2;
	{
		/* x ticks every 1, 2 or 5 times a power of ten, about 4 to 10 of them. */
		double span = a.x1 > a.x0 ? a.x1 - a.x0 : 1;
		double mag = pow(10, floor(log10(span / 5)));

		xstep = mag;
		if (span / xstep > 10)
			xstep = 2 * mag;
		if (span / xstep > 10)
			xstep = 5 * mag;
		if (span / xstep > 10)
			xstep = 10 * mag;
	}

	sbuf_printf(
		out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
		"font-size=\"12\">\n"
		"<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
		W, H, W, H, W, H);
	sbuf_printf(out, "<text x=\"%d\" y=\"28\" font-size=\"15\" font-weight=\"bold\">", ML);
	xml_text(out, plot->title ? plot->title : "debug window");
	sbuf_printf(out, "</text>\n");

	/* Grid and axes. */
	for (int k = a.d0; k <= a.d1; k++) {
		double y = py(&a, pow(10, k));

		decade_label(k, buf, sizeof(buf));
		sbuf_printf(
			out,
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n"
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			ML, y, W - MR, y, ML - 6, y + 4, buf);
	}
	for (long i = (long)ceil(a.x0 / xstep - 1e-9); i * xstep <= a.x1 + 1e-9 * xstep; i++) {
		double x = (double)i * xstep;

		sbuf_printf(
			out,
			"<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eeeeee\"/>\n"
			"<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3g</text>\n",
			px(&a, x), MT, px(&a, x), H - MB, px(&a, x), H - MB + 16, x);
	}
	sbuf_printf(out,
		    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
		    "stroke=\"#333\"/>\n",
		    ML, MT, W - ML - MR, H - MT - MB);
	sbuf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + W - MR) / 2,
		    H - 18);
	xml_text(out, plot->xlabel ? plot->xlabel : "slowdown");
	sbuf_printf(out,
		    "</text>\n<text transform=\"translate(18,%d) rotate(-90)\" "
		    "text-anchor=\"middle\">time to first overflow (log scale)</text>\n",
		    (MT + H - MB) / 2);
	if (plot->horizon > 0) {
		double y = py(&a, plot->horizon);

		sbuf_printf(out,
			    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#555\" "
			    "stroke-dasharray=\"6,4\"/>\n<text x=\"%d\" y=\"%.1f\" "
			    "fill=\"#555\">horizon</text>\n",
			    ML, y, W - MR, y, W - MR + 4, y + 4);
	}

	for (unsigned s = 0; s < plot->nseries; s++) {
		const struct window_series *se = &plot->series[s];
		const char *col = colours[s % WINDOW_SWEEP_MAX_SERIES];
		int pen = 0;

		/* p10-p90 band over the points where both are finite. */
		sbuf_printf(out,
			    "<polygon fill=\"%s\" fill-opacity=\"0.15\" stroke=\"none\" points=\"",
			    col);
		for (unsigned i = 0; i < se->n; i++)
			if (isfinite(se->r[i].p10) && isfinite(se->r[i].p90))
				sbuf_printf(out, "%.1f,%.1f ", px(&a, se->x[i]),
					    py(&a, se->r[i].p90));
		for (unsigned i = se->n; i-- > 0;)
			if (isfinite(se->r[i].p10) && isfinite(se->r[i].p90))
				sbuf_printf(out, "%.1f,%.1f ", px(&a, se->x[i]),
					    py(&a, se->r[i].p10));
		sbuf_printf(out, "\"/>\n<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" d=\"",
			    col);
		for (unsigned i = 0; i < se->n; i++) {
			double t = se->r[i].mean;

			if (!isfinite(t) || t > pow(10, a.d1)) {
				pen = 0;
				continue;
			}
			sbuf_printf(out, "%s%.1f,%.1f ", pen ? "L" : "M", px(&a, se->x[i]),
				    py(&a, t));
			pen = 1;
		}
		sbuf_printf(out, "\"/>\n");
		for (unsigned i = 0; i < se->n; i++) {
			double t = se->r[i].mean;
			int off = !isfinite(t) || t > pow(10, a.d1);

			sbuf_printf(out,
				    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" "
				    "stroke=\"%s\"/>\n",
				    px(&a, se->x[i]), off ? (double)MT : py(&a, t),
				    off ? "white" : col, col);
		}
		size_format((uint64_t)se->buffer, buf, sizeof(buf));
		sbuf_printf(out,
			    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
			    "stroke-width=\"2\"/>\n"
			    "<text x=\"%d\" y=\"%d\">buffer %s</text>\n",
			    W - MR + 10, MT + 30 + 20 * (int)s, W - MR + 34, MT + 30 + 20 * (int)s,
			    col, W - MR + 40, MT + 34 + 20 * (int)s, buf);
	}
	sbuf_printf(out,
		    "<text x=\"%d\" y=\"%d\" fill=\"#555\" font-size=\"10\">line: mean; band: "
		    "p10-p90;</text>\n"
		    "<text x=\"%d\" y=\"%d\" fill=\"#555\" font-size=\"10\">open circle: off the "
		    "chart</text>\n"
		    "</svg>\n",
		    W - MR + 10, MT + 50 + 20 * (int)plot->nseries, W - MR + 10,
		    MT + 64 + 20 * (int)plot->nseries);
}
