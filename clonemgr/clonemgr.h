/*
 * clonemgr.h - run a service so that it can be cloned, and make live clones
 * of it with CRIU (>= 4.2), while it keeps serving.
 *
 * A service runs as the init of fresh pid, net, mount, ipc and uts
 * namespaces (cm_service_launch): loopback up, an empty /dev/shm, each
 * declared state dir bind-mounted onto itself (so CRIU treats it as an
 * external mount and each clone can get its own copy), stdout/stderr a pipe
 * its supervisor reads, every other inherited fd closed, its own session.
 *
 * A clone (cm_clone_make) is made in four steps:
 *   1. copy the state dirs while the service runs;
 *   2. (pre-dump, where the kernel tracks dirty pages: copy memory in passes
 *      while it runs, see predump.c) freeze and dump it (criu dump
 *      --leave-running, only the pages dirtied since the last pass); in CRIU's post-dump
 *      notification, while it is still frozen, copy what changed in the state
 *      dirs since step 1 (the two-phase sync of the Parikshan thesis);
 *   3. unfreeze (CRIU does), and restore the images into new namespaces, with
 *      the clone's copy of each state dir mounted where the service expects it;
 *   4. bring the clone's loopback up and wait until it listens on the port.
 * The clone listens on the same 127.0.0.1:PORT, inside its own network
 * namespace; cm_clone->netns_fd reaches it (see common/netns.h).
 *
 * Blocking calls: cm_clone_make() runs CRIU and copies files; call it from a
 * worker thread, never from an event loop. Ownership: the caller owns the
 * structs and frees them with cm_service_free()/cm_clone_free().
 */
#ifndef DOPPEL_CLONEMGR_H
#define DOPPEL_CLONEMGR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "common/tcprepair.h"

#define CM_MAX_STATE 16
#define CM_PATH_MAX 512

struct cm_service_spec {
	const char *name;
	char *const *argv;	       /* CMD ARGS..., argv[0] looked up in PATH */
	const char *const *state_dirs; /* absolute paths */
	unsigned nstate;
	const char *chdir;	/* NULL: the caller's cwd */
	int keep_cgroup_mounts; /* default: unmount /sys/fs/cgroup in the service (faster dumps) */
	/*
	 * Called once the namespaces exist and before CMD is executed (CMD waits),
	 * with the service's network namespace: for sockets the service must find
	 * from its first instruction on. Returns 0 or -errno with err.
	 */
	int (*prepare)(void *arg, int netns_fd, char *err, size_t errlen);
	void *prepare_arg;
};

struct cm_service {
	pid_t pid;    /* host pid of the namespace's init (the service) */
	int netns_fd; /* /proc/PID/ns/net */
	int log_fd;   /* read end of the service's stdout+stderr */
	char name[64];
	char state_dirs[CM_MAX_STATE][CM_PATH_MAX];
	unsigned nstate;
	/*
	 * An adopted service (cm_service_adopt): a process tree in the host's
	 * namespaces that doppel did not start and never signals. addr is the
	 * IPv4 address it listens on ("127.0.0.1" when it listens on any).
	 */
	int adopted;
	char addr[64];
};

/* Start the service. Returns 0, or -errno with the cause and a fix in err. */
int cm_service_launch(const struct cm_service_spec *spec, struct cm_service *out, char *err,
		      size_t errlen);
/* True while the service process exists (and is not a zombie). */
int cm_service_alive(const struct cm_service *svc);
/*
 * Stop a namespace init: the first of SIGTERM, SIGINT, SIGQUIT it handles
 * (an init ignores signals it has no handler for), then SIGKILL after
 * timeout_ms. Reaps it. Returns the signal that ended it.
 */
int cm_stop_init(pid_t pid, int timeout_ms);
void cm_service_free(struct cm_service *svc);

/*
 * Adopt a running process tree (pid and its descendants) that doppel did not
 * start: it must live in the host's pid, net and mount namespaces and listen
 * on TCP port. Nothing is done to the process; out->pid is not our child.
 * Clones of it (cm_clone_make) are restored into new pid, net, mount, ipc
 * and uts namespaces by an init of doppel's (see adopt.c). 0 or -errno + err.
 */
int cm_service_adopt(pid_t pid, const char *name, const char *const *state_dirs, unsigned nstate,
		     int port, struct cm_service *out, char *err, size_t errlen);
/* The IPv4 address pid's tree listens on for port ("127.0.0.1" for any). 0 or -ENOENT. */
int cm_adopt_listen_addr(pid_t pid, int port, char *addr, size_t len);
/*
 * Is the TCP connection whose local end is addr:port (IPv4, network order)
 * one of pid's tree's sockets? 1 yes, 0 another process's, -1 no such socket
 * (closed already).
 */
int cm_adopt_owns_conn(pid_t pid, const unsigned char addr[4], unsigned port);

/* What `doppel doctor --pid` says about adopting a process, before anything is frozen. */
enum { CM_ADOPT_OK, CM_ADOPT_WARN, CM_ADOPT_FAIL };
#define CM_ADOPT_FINDINGS 48
struct cm_adopt_finding {
	int level;
	char what[400];
	char fix[256];
};
struct cm_adopt_report {
	struct cm_adopt_finding f[CM_ADOPT_FINDINGS];
	unsigned n, fails, dropped;
};
/* Look at pid's tree (fds, limits, namespaces, session, port if > 0). Always 0. */
int cm_adopt_check(pid_t pid, const char *const *state_dirs, unsigned nstate, int port,
		   struct cm_adopt_report *r);

/* Which CRIU, and whether it works here. */
struct cm_criu {
	char path[CM_PATH_MAX];
	char version[32];
};
/*
 * Find criu and require >= 4.2: `path` if given (or $DOPPEL_CRIU), else $PATH,
 * /usr/local/sbin, /usr/sbin. Returns 0 or -errno with the fix in err.
 */
int cm_criu_find(const char *path, struct cm_criu *out, char *err, size_t errlen);

/*
 * Iterative pre-dump (`doppel clone --predump`): copy production's memory in
 * passes while it runs (criu pre-dump --track-mem), so that the final,
 * frozen dump writes only the pages dirtied since the last pass. Needs the
 * kernel's soft-dirty page tracking (CONFIG_MEM_SOFT_DIRTY).
 *   AUTO: when CRIU says the kernel can track dirty memory; else a plain dump,
 *         with the reason in cm_dump_stats.predump_reason;
 *   ON:   required: a clone fails (before production is touched) where it
 *         cannot work;
 *   OFF:  a plain dump.
 */
enum cm_predump { CM_PREDUMP_AUTO = 0, CM_PREDUMP_ON, CM_PREDUMP_OFF };

/* "auto", "on", "off" -> *out; 0 or -EINVAL. */
int cm_predump_parse(const char *text, enum cm_predump *out);
const char *cm_predump_name(enum cm_predump m);

/*
 * Does this kernel let CRIU track dirty memory? Runs `criu check --feature
 * mem_dirty_track` (soft-dirty), and where that fails `criu check --feature
 * mem_written_track` (written pages under async userfaultfd write-protect:
 * a CRIU built with deploy/criu/track-written.patch on Linux >= 6.7), once
 * per CRIU path, and remembers the answer (thread-safe). Returns 1
 * (soft-dirty), 2 (written pages), or 0 with the reason in why.
 */
int cm_criu_dirty_track(const struct cm_criu *criu, char *why, size_t whylen);

/* When to stop pre-dumping and freeze (predump.c; 0 fields: the defaults). */
struct cm_predump_limits {
	unsigned max_passes;	 /* default 5 */
	uint64_t small_pages;	 /* a pass that wrote at most this is enough (2560: 10 MiB) */
	unsigned min_shrink_pct; /* else it must write this % fewer than the one before (10) */
	uint64_t max_total_us;	 /* pre-dump time cap (30 s) */
};

/*
 * The stop rule, after each pass (see predump.c): 1 (stop: the reason in
 * why) or 0 (another pass). Reads st->passes, st->npasses, st->predump_us.
 */
struct cm_dump_stats;
int cm_predump_stop(const struct cm_predump_limits *lim, const struct cm_dump_stats *st, char *why,
		    size_t whylen);

struct cm_clone_opts {
	const struct cm_criu *criu;
	enum cm_predump predump;
	struct cm_predump_limits predump_limits;
	const char *work_dir;	/* per-clone dirs go here (state copies, logs), created 0700 */
	const char *images_dir; /* where images are written (0700, deleted after restore) */
	unsigned count;		/* clones from one dump (scaled mode) */
	int port;		/* the service's TCP port, to wait for in each clone */
	unsigned first_id;	/* id of the first clone; the next ones follow */
	int ready_timeout_ms;
	const char *doppel_exe; /* this program, run by CRIU's action script for the final sync */
	int nice; /* the clone's scheduling priority (0: production's; 10: yields to production) */
	/*
	 * Resource limits (cgroup/cgroup.h): each clone is restored inside a
	 * cgroup of its own, CGROUP_BASE/clone-ID (NULL: no cgroup, as before).
	 * A 0 memory or pids limit is the default rule, from production as it
	 * is just before the dump: 2 x its RSS + 64 MiB, 2 x its tasks + 64.
	 * When the cgroup cannot be made, limits_required fails the clone (the
	 * user asked for limits); otherwise the clone runs without them and the
	 * progress says why.
	 */
	const char *cgroup_base;
	struct cg_limits limits;
	int limits_required;
	/*
	 * External mode: restore on another host, here a network namespace
	 * joined by a network link. CRIU's page server runs on that host
	 * (host_addr) and receives the memory pages over TCP during the dump;
	 * the other image files are copied to host_images_dir; the restore
	 * runs there. host_netns_fd < 0: restore on this host.
	 */
	int host_netns_fd;
	const char *host_addr;
	const char *host_images_dir;
	/*
	 * Called (on the calling thread) with each clone's fresh network
	 * namespace before the clone is restored into it: index is the clone's
	 * position in this call. Returns 0 or -errno with err.
	 */
	int (*prepare_netns)(void *arg, unsigned index, int netns_fd, char *err, size_t errlen);
	void *prepare_arg;
	/*
	 * Optional, on the caller's thread: freezing(arg, 1) just before CRIU
	 * freezes production for the final dump (the freeze waits for it to
	 * return), freezing(arg, 0) once CRIU has returned and production runs.
	 */
	void (*freezing)(void *arg, int frozen_next);
	void *freezing_arg;
	/*
	 * Exact continuation of the connections open at the freeze: production
	 * is dumped with its established TCP connections (CRIU
	 * --tcp-established; without it, they are restored closed), and before
	 * each clone is restored, peers(arg, index, netns_fd, ends, n) is called
	 * with the clone's fresh network namespace and the service's end of
	 * each of those connections as dumped, to make the other ends there
	 * (common/tcprepair.h) before CRIU restores the service's. The clone's
	 * restore keeps them (--tcp-established) only when peers returned > 0
	 * (how many it made); otherwise it restores them closed. Returns >= 0, or
	 * -errno with err (the clone fails). Not for adopted services. When the
	 * restore with them fails, peers(arg, index, -1, NULL, 0, ...) says the
	 * ends made are to be dropped, and the clone is restored again, with its
	 * connections closed (CRIU's log of the failed try: restore-established.log).
	 */
	int (*peers)(void *arg, unsigned index, int netns_fd, const struct tcp_end *ends,
		     unsigned n, char *err, size_t errlen);
	void *peers_arg;
	/*
	 * Staged record and replay: keep the images and the state copies as of
	 * the dump in this directory (images/, state-N/, clone.conf) for
	 * cm_restore_kept(). NULL: nothing is kept. This host only.
	 */
	const char *keep_dir;
};

#define CM_PREDUMP_MAX_PASSES 16

/* One pre-dump pass, from CRIU's --display-stats and our clock. */
struct cm_predump_pass {
	uint64_t pages_written; /* pages copied in this pass (dirtied since the last one) */
	uint64_t pages_scanned;
	uint64_t us;	    /* wall time of the pass */
	uint64_t frozen_us; /* production frozen during the pass (CRIU collects the dirty map) */
};

/* Figures of one dump, from CRIU's --display-stats and our own clocks. */
struct cm_dump_stats {
	/* pre-dump: used or not, why, and each pass */
	int predump_used;
	int track_written;	      /* dirty pages from the written bit (not soft-dirty) */
	enum cm_predump predump_mode; /* what was asked */
	char predump_reason[256];     /* why on or off, and why the passes stopped */
	unsigned npasses;
	struct cm_predump_pass passes[CM_PREDUMP_MAX_PASSES];
	uint64_t predump_us;  /* all passes, wall time */
	uint64_t frozen_us;   /* production frozen (CRIU "Frozen time") */
	uint64_t freezing_us; /* time to freeze it */
	uint64_t memdump_us, memwrite_us;
	uint64_t pages_written; /* by the final dump (frozen) */
	uint64_t pages_scanned, pages_skipped_parent;
	uint64_t image_bytes;
	uint64_t precopy_us, final_sync_us; /* state dir copies: before and while frozen */
	uint64_t final_sync_bytes;
	uint64_t dump_wall_us, total_us;
};

struct cm_clone {
	unsigned id;
	pid_t pid; /* host pid of the clone's init */
	int netns_fd;
	int log_fd; /* read end of the clone's stdout+stderr */
	char dir[CM_PATH_MAX];
	uint64_t restore_us;
	struct cg_group cg; /* its cgroup and limits (version CG_NONE: none) */
};

typedef void (*cm_progress_fn)(void *arg, const char *line);

/*
 * Make opts->count clones of svc. On success fills clones[0..count-1] and
 * stats. progress receives one line per step for a person. On failure
 * nothing is left behind (no process, mount, image or copy) and err says what
 * failed, why, where CRIU's log is, and what to do.
 */
int cm_clone_make(const struct cm_service *svc, const struct cm_clone_opts *opts,
		  struct cm_clone *clones, struct cm_dump_stats *stats, cm_progress_fn progress,
		  void *arg, char *err, size_t errlen);

/* What clone.conf of a kept dump says. */
struct cm_kept {
	char service[64];
	int port;
	unsigned nstate;
	unsigned long pipe_ino;
};
int cm_kept_read(const char *keep_dir, struct cm_kept *out, char *err, size_t errlen);

/*
 * Bring a kept clone back (`doppel restore`): a fresh copy of the kept state
 * under work_dir/restore-ID, the kept images restored into new namespaces
 * as cm_clone_make() does, ready once it listens on the service's port in its
 * network namespace. The kept directory is not changed: restore it as often
 * as needed. Blocking. Returns 0, or -errno with err.
 */
int cm_restore_kept(const struct cm_criu *criu, const char *keep_dir, const char *work_dir,
		    unsigned id, struct cm_clone *c, char *err, size_t errlen);

/* Kill the clone's whole pid namespace, reap it, remove its cgroup and its directory. */
void cm_clone_destroy(struct cm_clone *c);

/*
 * `doppel state-sync`, run by CRIU's action script while the service is
 * frozen: bring dst up to date with src, copying only what changed since the
 * pre-copy. Returns 0 or -errno; *bytes gets what was copied.
 */
int cm_state_sync(const char *src, const char *dst, uint64_t *bytes, char *err, size_t errlen);

/* A new network namespace with lo up; returns an fd to it, or -errno. */
int cm_netns_new(void);
/* Bring `lo` up in the network namespace netns_fd. */
int cm_netns_lo_up(int netns_fd);
/* Wait until something accepts on 127.0.0.1:port inside netns_fd. 0 or -ETIMEDOUT. */
int cm_wait_listen(int netns_fd, int port, int timeout_ms, pid_t pid);

#endif
