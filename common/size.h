/*
 * size.h - byte sizes and durations as people write them on a command line.
 *
 * size_parse("64M") == 64 MiB. Suffixes K, M, G, T (powers of 1024), with an
 * optional "iB" or "B" ("64MiB", "64MB" are both 64 MiB); no suffix means bytes.
 * duration_parse("250ms"), ("2s"), ("1.5s"), ("3m"), ("100us"); no suffix = seconds.
 * number_parse("42", 1, 100): a decimal in a range, nothing after it.
 */
#ifndef DOPPEL_COMMON_SIZE_H
#define DOPPEL_COMMON_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0, or -EINVAL (not a size) / -ERANGE (too large). */
int size_parse(const char *text, uint64_t *out);
/* Formats like "64.0 MiB" / "512 B" into buf; returns buf. */
char *size_format(uint64_t bytes, char *buf, size_t len);
/* Duration in nanoseconds. Returns 0, -EINVAL or -ERANGE. */
int duration_parse(const char *text, uint64_t *out_ns);
/* A decimal integer (strtol's syntax) in [min, max], the whole text. 0 or -EINVAL. */
int number_parse(const char *text, long min, long max, long *out);

#endif
