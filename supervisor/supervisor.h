/*
 * supervisor.h - `doppel run`: the process that runs a service so it can be
 * cloned, fronts it with the duplicating proxy, makes and destroys live
 * clones on request, and stops everything it started when it exits.
 *
 * It stays in the foreground (systemd Type=notify: READY=1 once the service
 * listens) and answers on an admin socket, /run/doppel/NAME.sock (0600):
 *   GET  /status  /status.txt  /metrics  /row  /clone-info?id=N  /diverge  /record
 *        (/status and /clone-info are JSON, made from routes.c's field tables
 *        like /status.txt, /row and /metrics)
 *   POST /clone?count=N[&buffer=SIZE][&host=NETNS][&images=DIR][&control=1][&keep=DIR]
 *        [&predump=auto|on|off]
 *                                       (progress streamed as text lines)
 *   POST /destroy?id=N    POST /record?action=start|stop[&dir=D]    POST /stop
 *   GET  /  (the status page, polling /status)
 * `--admin HOST:PORT` serves the read-only routes (the page, /status,
 * /status.txt, /metrics) on a TCP address too; the routes that change
 * anything stay on the 0600 socket.
 * The other subcommands (clone, list, status, destroy, stop) are clients of
 * that socket.
 */
#ifndef DOPPEL_SUPERVISOR_H
#define DOPPEL_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aggregator/aggregator.h"
#include "clonemgr/clonemgr.h"
#include "common/netaddr.h"
#include "proxy/proxy.h"
#include "record/record.h"

#define SUP_RUN_DIR "/run/doppel"
#define SUP_WORK_DIR "/var/lib/doppel"
#define SUP_NAME_MAX 32
#define SUP_MAX_CLONES 64		    /* live clones of one service */
#define SUP_MAX_UPSTREAMS AGG_MAX_UPSTREAMS /* --upstream given to one service */
#define SUP_HOST_MAX 64			    /* `doppel clone --host`: a netns name or path, '\0' */

enum sup_overflow {
	SUP_OVERFLOW_DROP,    /* the clone's connection is dropped; the clone stays */
	SUP_OVERFLOW_RECLONE, /* the clone is replaced by a fresh one */
};

struct sup_config {
	char name[SUP_NAME_MAX + 1];
	struct proxy_config proxy; /* listen, buffers; backend is filled in by the supervisor */
	int port;		   /* the service's port inside its namespace */
	char *const *argv;
	const char *state_dirs[CM_MAX_STATE];
	unsigned nstate;
	enum sup_overflow overflow;
	uint64_t ready_timeout_ns;
	uint64_t stop_timeout_ns;
	const char *run_dir;	/* admin sockets; SUP_RUN_DIR */
	const char *admin_addr; /* also serve the read-only routes here (HOST:PORT); NULL: no */
	const char *work_dir;	/* clones' state copies and logs; SUP_WORK_DIR/NAME */
	const char *images_dir; /* NULL: a private tmpfs that vanishes with the supervisor */
	const char *chdir;
	int keep_cgroup_mounts;
	const char *criu; /* NULL: $DOPPEL_CRIU, $PATH, /usr/local/sbin, /usr/sbin */
	int clone_nice;	  /* clones' nice value: they yield the CPU to production */
	/*
	 * Clones' resource limits (a cgroup per clone, cgroup/): 0 is the
	 * default rule (memory 2 x production's RSS + 64 MiB, pids 2 x its
	 * tasks + 64). Given explicitly, a clone that cannot get them is
	 * refused; by default it runs without them, with a warning.
	 */
	uint64_t clone_memory;
	int clone_cpu_weight; /* 1..10000 (default 10; 100 is an ordinary cgroup's) */
	int clone_pids;
	int clone_limits_given;
	int no_clone_limits; /* --no-clone-limits: clones get no cgroup */
	/* upstream isolation (aggregator/): "LISTEN=TARGET" each */
	const char *upstreams[SUP_MAX_UPSTREAMS];
	unsigned nupstreams;
	uint64_t upstream_budget;  /* recorded bytes kept per upstream (0: 256 MiB) */
	uint64_t upstream_wait_ns; /* how long a clone's request waits for production's (0: 5 s) */
	/* recording (record/): limits, and a directory to record into from the start */
	struct rec_config record;
	const char *record_dir;
	/*
	 * doppel adopt: the pid of a running process tree to take as the
	 * service instead of starting argv (argv[0] then only names it). It is
	 * never signalled: stopping the supervisor leaves it running.
	 */
	pid_t adopt_pid;
	/*
	 * doppel adopt --capture: feed the clones from a live capture of the
	 * service's port on this interface ("auto": the one carrying its
	 * address) instead of a front; NULL: no capture.
	 */
	const char *capture_iface;
	uint64_t capture_buffer; /* kernel capture ring (0: 32 MiB) */
};

void sup_config_defaults(struct sup_config *cfg);
/* A name usable in paths: [A-Za-z0-9_.-], 1..32 chars, not starting with '.'. */
int sup_name_valid(const char *name);
/* "unix:/run/doppel/NAME.sock" */
void sup_admin_addr(const char *run_dir, const char *name, char *buf, size_t len);

/*
 * Run until stopped (SIGTERM, SIGINT, POST /stop) or until the service exits
 * (an adopted service: until it is gone; it is watched, not waited for).
 * Returns 0 when stopped on request, 1 when the service exited on its own or
 * a runtime failure happened, 2 for a configuration error; err says why.
 */
int sup_run(const struct sup_config *cfg, char *err, size_t errlen);

#endif
