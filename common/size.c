/*
 * size.c - parsing and formatting of sizes and durations for the CLI.
 */
#include "common/size.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_number(const char *text, double *val, const char **rest)
{
	char *end;

	if (!text || !*text || isspace((unsigned char)text[0]) || text[0] == '-' || text[0] == '+')
		return -EINVAL;
	errno = 0;
	*val = strtod(text, &end);
	if (end == text || errno == ERANGE || !isfinite(*val) || *val < 0)
		return end == text ? -EINVAL : -ERANGE;
	/* Reject hex floats and exponents: people do not write sizes that way. */
	for (const char *p = text; p < end; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return -EINVAL;
	*rest = end;
	return 0;
}

int size_parse(const char *text, uint64_t *out)
{
	static const char units[] = "KMGT";
	const char *rest;
	double val, mult = 1;
	int rc = parse_number(text, &val, &rest);

	if (rc)
		return rc;
	if (*rest) {
		const char *u = strchr(units, toupper((unsigned char)*rest));

		if (u) {
			mult = pow(1024.0, (double)(u - units + 1));
			rest++;
			if (strcasecmp(rest, "ib") == 0 || strcasecmp(rest, "b") == 0)
				rest += strlen(rest);
		} else if (strcasecmp(rest, "b") == 0) {
			rest++;
		}
		if (*rest)
			return -EINVAL;
	}
	val *= mult;
	if (val >= 18446744073709551615.0)
		return -ERANGE;
	if (val != floor(val))
		return -EINVAL; /* fractional bytes */
	*out = (uint64_t)val;
	return 0;
}

char *size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

int duration_parse(const char *text, uint64_t *out_ns)
{
	static const struct {
		const char *suffix;
		double ns;
	} units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
	const char *rest;
	double val;
	int rc = parse_number(text, &val, &rest);

	if (rc)
		return rc;
	if (*rest == '\0') {
		val *= 1e9;
	} else {
		unsigned i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(rest, units[i].suffix) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		val *= units[i].ns;
	}
	if (val >= 9.2e18)
		return -ERANGE;
	*out_ns = (uint64_t)val;
	return 0;
}

int number_parse(const char *text, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (!*text || *end || errno || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}
