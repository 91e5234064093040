/*
 * cm-int.h - clonemgr's private helpers, shared by its .c files only.
 */
#ifndef DOPPEL_CLONEMGR_INT_H
#define DOPPEL_CLONEMGR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "clonemgr/clonemgr.h"

/* rm -rf that stays on one filesystem and never follows symlinks. */
int cm_rmtree(const char *path);

/* Bytes used by the files under path. */
uint64_t cm_du(const char *path);

/*
 * Run criu with argv (argv[0] is ignored and replaced by the path), stdout
 * to out_path, stderr appended to the same file. fds[0..nfds-1] are given to
 * criu as fds 3, 4, ... Kills it after timeout_ms. Returns its exit status
 * (0 ok), or -errno if it could not run.
 */
int cm_criu_run(const struct cm_criu *criu, char *const argv[], const char *out_path,
		const int *fds, unsigned nfds, int timeout_ms);

/*
 * The first few "Error (...)" lines of a CRIU log (the harmless RLIMIT_NOFILE
 * one left out), joined into buf. Returns buf.
 */
char *cm_criu_errors(const char *log_path, char *buf, size_t len);

/* Parse CRIU's --display-stats output (a file) into st. */
void cm_criu_parse_stats(const char *out_path, struct cm_dump_stats *st);

#endif
