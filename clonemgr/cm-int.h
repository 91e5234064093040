/*
 * cm-int.h - clonemgr's private helpers, shared by its .c files only.
 */
#ifndef DOPPEL_CLONEMGR_INT_H
#define DOPPEL_CLONEMGR_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "clonemgr/clonemgr.h"
#include "common/tcprepair.h"

/* rm -rf that stays on one filesystem and never follows symlinks. */
int cm_rmtree(const char *path);

/* Copy src's files into dst, keeping what dst already has (unlike cm_state_sync). */
int cm_copy_into(const char *src, const char *dst, char *err, size_t errlen);

/* Bytes used by the files under path. */
uint64_t cm_du(const char *path);

/* How to run a criu child. */
struct cm_run {
	const int *fds; /* given to criu as fds 3, 4, ... */
	unsigned nfds;
	int netns_fd; /* >= 0: run criu inside this network namespace */
	int timeout_ms;
	const struct cg_group *cgroup; /* non-NULL: criu (and what it restores) runs in it */
};

/*
 * Start criu with argv (argv[0] is replaced by its path), stdout and stderr
 * appended to out_path. Returns the child's pid or -errno.
 */
pid_t cm_criu_spawn(const struct cm_criu *criu, char *const argv[], const char *out_path,
		    const struct cm_run *run);
/* Wait for a criu child (killing it after timeout_ms). Its exit status, or -errno. */
int cm_criu_wait(pid_t pid, int timeout_ms);
/* spawn + wait. */
int cm_criu_run(const struct cm_criu *criu, char *const argv[], const char *out_path,
		const struct cm_run *run);

/*
 * The first few "Error (...)" lines of a CRIU log (the harmless RLIMIT_NOFILE
 * one left out), joined into buf. Returns buf.
 */
char *cm_criu_errors(const char *log_path, char *buf, size_t len);

/* Parse CRIU's --display-stats output (a file) into st. */
void cm_criu_parse_stats(const char *out_path, struct cm_dump_stats *st);

/*
 * Written-page tracking where the kernel has no soft-dirty (wptrack.c):
 * production's private anonymous memory registered for async userfaultfd
 * write-protect, for `criu --track-written`. Holding fds keeps it so.
 */
#define CM_WPTRACK_MAX 64
struct cm_wptrack {
	int fds[CM_WPTRACK_MAX]; /* one userfaultfd per tracked process */
	unsigned n;
	unsigned untracked;	 /* processes left untracked (dumped whole) */
	unsigned ranges;	 /* mappings registered */
	unsigned range_failures; /* mappings that could not be (dumped whole) */
	uint64_t stopped_us;	 /* time the processes' stopped threads were held, summed */
};
/* Track root and its descendants: 0 when at least one process is tracked, or -errno with err. */
int cm_wptrack_arm(struct cm_wptrack *t, pid_t root, char *err, size_t errlen);
/* Stop tracking (closing the userfaultfds unregisters the memory). */
void cm_wptrack_disarm(struct cm_wptrack *t);

/* A CRIU command line being built (clone.c): cm_arg_add appends one printf'd argument. */
#define CM_MAX_ARGS 96
struct cm_argv {
	char *v[CM_MAX_ARGS];
	char store[CM_MAX_ARGS][CM_PATH_MAX + 64];
	int n;
};
void cm_arg_add(struct cm_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Wait until something accepts on HOST:PORT in netns_fd (as cm_wait_listen);
 * -ESRCH once pid (> 0) is gone or a zombie.
 */
int cm_wait_listen_on(int netns_fd, const char *host, int port, int timeout_ms, pid_t pid);

/*
 * Pre-dump or not (predump.c): fills st->predump_mode/used/reason. Returns 1
 * (pre-dump), 0 (plain dump), or -errno with err when --predump on cannot
 * work here (nothing was run against the service).
 */
int cm_predump_decide(const struct cm_clone_opts *o, struct cm_dump_stats *st, char *err,
		      size_t errlen);
/*
 * The passes into IMAGES/pre-K while the service runs, until the stop rule
 * says enough; prev gets the last pass's dir relative to IMAGES ("pre-N"),
 * for the final dump's --prev-images-dir. A failed pass: -errno with err
 * under --predump on; under auto the reason goes to st->predump_reason,
 * prev is left empty (a plain dump follows) and 0 is returned, except for a
 * full image directory (-ENOSPC with err: a plain dump would fail too).
 * With st->track_written, production is first registered for written-page
 * tracking into wt, which the caller disarms after the final dump.
 */
int cm_predump_run(const struct cm_service *svc, const struct cm_clone_opts *o,
		   const char *clone_dir, unsigned long net_ino, struct cm_dump_stats *st,
		   struct cm_wptrack *wt, cm_progress_fn progress, void *arg, char *prev,
		   size_t prevlen, char *err, size_t errlen);
/* adopt.c: an adopted service's session is outside its tree (criu --shell-job). */
int cm_adopt_shell_job(pid_t pid);
/* Restore a clone of an adopted service from images (see adopt.c). */
int cm_adopt_restore(const struct cm_service *svc, const struct cm_clone_opts *o,
		     const char *images, struct cm_clone *c, char *err, size_t errlen);
/* Wait until the clone accepts on the service's address and port. 0, -ESRCH, -ETIMEDOUT. */
int cm_adopt_wait_listen(const struct cm_service *svc, const struct cm_clone *c, int port,
			 int timeout_ms);

/*
 * tcpimg.c: the service's established IPv4 TCP connections in CRIU's images
 * (a dump with --tcp-established). cm_tcp_ends(): up to max of them from
 * images_dir into out; how many, or -errno. The two parsers behind it read
 * one image each from memory: files.img (its established IPv4 TCP sockets,
 * inode and addresses, up to max; how many) and tcp-stream-INO.img (the
 * stream's sequence numbers, options, windows; 0). -EBADMSG when malformed.
 */
/*
 * hold.c: the hold of production's input (cm_clone_opts.freezing) from
 * CRIU's pre-dump action to its post-dump action. cm_hold_open(): the FIFOs
 * in clone_dir (0 or -errno); cm_hold_script(): the action script's lines
 * for them; cm_hold_wait(): wait for CRIU (pid) as cm_criu_wait() does,
 * calling o->freezing when the script says; cm_hold_close(): close and
 * remove the FIFOs. started/ended: what the script said.
 */
struct cm_hold {
	int req, ack;
	int started, ended;
	char dir[CM_PATH_MAX];
};
int cm_hold_open(struct cm_hold *h, const char *clone_dir);
void cm_hold_script(const struct cm_hold *h, FILE *f);
int cm_hold_wait(struct cm_hold *h, pid_t pid, int timeout_ms, const struct cm_clone_opts *o);
void cm_hold_close(struct cm_hold *h);

struct cm_tcp_sock {
	uint32_t ino;
	struct tcp_end end;
};
int cm_tcp_ends(const char *images_dir, struct tcp_end *out, unsigned max);
int cm_tcpimg_files(const uint8_t *buf, size_t n, struct cm_tcp_sock *out, unsigned max);
int cm_tcpimg_stream(const uint8_t *buf, size_t n, struct tcp_end *end);

#endif
