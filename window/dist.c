/*
 * dist.c - the gamma distribution, fitted to a mean and a variance.
 *
 * Used for quantiles when the exact distribution would cost too much. A
 * first-passage time from an empty buffer is a sum of independent
 * exponentials (Keilson), so its coefficient of variation is at most 1 and
 * the fitted gamma's shape at least 1: near 1 it is the exponential of rare
 * overflows (rho < 1), large it is the near-normal of a steadily filling
 * buffer (rho > 1).
 */
#include <math.h>

#include "window/window-int.h"

/* P(a, x) by its series (x < a + 1) or its continued fraction (Numerical Recipes 6.2). */
double dist_gamma_p(double a, double x)
{
	double gln = lgamma(a);

	if (x <= 0)
		return 0;
	if (a > 1e5) {
		/* Wilson-Hilferty: (x/a)^(1/3) is nearly normal. */
		double z = (cbrt(x / a) - (1 - 1 / (9 * a))) / sqrt(1 / (9 * a));

		return 0.5 * erfc(-z / sqrt(2));
	}
	if (x < a + 1) {
		double ap = a, sum = 1 / a, del = sum;

		for (int n = 0; n < 100000; n++) {
			ap += 1;
			del *= x / ap;
			sum += del;
			if (fabs(del) < fabs(sum) * 1e-15)
				break;
		}
		return sum * exp(-x + a * log(x) - gln);
	}
	{
		double b = x + 1 - a, c = 1 / 1e-300, d = 1 / b, h = d;

		for (int i = 1; i < 100000; i++) {
			double an = -i * (i - a), del;

			b += 2;
			d = an * d + b;
			if (fabs(d) < 1e-300)
				d = 1e-300;
			c = b + an / c;
			if (fabs(c) < 1e-300)
				c = 1e-300;
			d = 1 / d;
			del = d * c;
			h *= del;
			if (fabs(del - 1) < 1e-15)
				break;
		}
		return 1 - exp(-x + a * log(x) - gln) * h;
	}
}

double dist_gamma_cdf(double mean, double sd, double t)
{
	double cv, shape, scale;

	if (!isfinite(mean))
		return 0;
	if (!(sd > 0))
		return t >= mean ? 1 : 0;
	/* In ratios: mean and sd may be near the top of the doubles. */
	cv = sd / mean;
	shape = 1 / (cv * cv);
	scale = sd * cv;
	return dist_gamma_p(shape, t / scale);
}

double dist_gamma_quantile(double mean, double sd, double p)
{
	double lo = 0, hi;

	if (!isfinite(mean))
		return INFINITY;
	if (!(sd > 0))
		return mean;
	hi = mean + 60 * sd;
	if (!isfinite(hi))
		hi = 1.7e308;
	for (int it = 0; it < 200 && hi - lo > 1e-12 * hi; it++) {
		double mid = (lo + hi) / 2;

		if (dist_gamma_cdf(mean, sd, mid) >= p)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}
