/*
 * sup-int.h - the supervisor's private state, shared by supervisor.c
 * (lifecycle, service, signals), clones.c (the live clones and the overflow
 * policy), jobs.c (clone jobs on a worker thread) and routes.c (admin HTTP
 * handlers).
 *
 * Threads: everything here is owned by the thread running sup->base, except
 * a running job's input (read-only for the worker) and its result, which the
 * worker hands back through job->pipe[1] before it exits.
 */
#ifndef DOPPEL_SUPERVISOR_INT_H
#define DOPPEL_SUPERVISOR_INT_H

#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>

#include "admin/admin.h"
#include "aggregator/aggregator.h"
#include "capture/capture.h"
#include "clonemgr/clonemgr.h"
#include "proxy/proxy.h"
#include "record/routes.h"
#include "record/tap.h"
#include "supervisor/supervisor.h"

#define SUP_CLONE_LOG_CAP (64ULL << 20) /* bytes of a clone's output kept in its log */
#define SUP_PAST_WINDOWS 64		/* ended debug windows kept for /status */
#define SUP_ENDED_CLONES 32		/* clones that ended on their own, kept for /status */

/* Limits asked for one clone job (POST /clone); 0: the supervisor's. */
struct sup_limits {
	uint64_t memory;
	int cpu_weight;
	int pids;
};

struct evhttp_request;
struct evkeyvalq;

/* POST /clone's query (`doppel clone`'s options), checked (clone-request.c). */
struct sup_clone_request {
	unsigned count;	 /* 1 to SUP_MAX_CLONES */
	uint64_t buffer; /* 0: the supervisor's */
	struct sup_limits limits;
	enum cm_predump predump;
	const char *host, *images, *keep; /* into the query's pairs, or NULL */
	int control;
};
/*
 * Fill r from q (evhttp_parse_query_str's pairs). 0, or -EINVAL with the
 * sentence for a 400 answer in err (it names the bad value).
 */
int sup_clone_request_parse(const struct evkeyvalq *q, struct sup_clone_request *r, char *err,
			    size_t errlen);

/*
 * A live clone. Allocated by sup_clone_attach(), freed by sup_clone_remove();
 * listed in supervisor.clones; loop thread only.
 */
struct sup_clone {
	struct cm_clone cm;
	unsigned replica_id;
	int alive;
	uint64_t created_ns;
	struct cm_dump_stats dump; /* of the dump it came from */
	struct event *log_ev;
	int log_file;
	uint64_t log_bytes, log_dropped;
	uint64_t buffer;
	/* external mode: the clone runs on another host, reached through a relay there */
	struct proxy *relay;
	char host[SUP_HOST_MAX];
	char address[NETADDR_TEXT_MAX]; /* where the proxy sends its copy */
	int control;			/* an unmodified clone: measures noise */
	int kept;			/* recorded on its own for staged replay */
	struct sup_limits asked;	/* limits asked for it (a re-clone asks the same) */
};

/* A clone that ended on its own (exited, or killed by its memory limit). */
struct sup_ended {
	unsigned clone_id;
	char reason[96];     /* "killed by its memory limit", "exited: exit status 1" */
	int killed_by_limit; /* the OOM killer ended it, inside its cgroup */
	double age_s;	     /* how long it lived */
	double debug_window_s;
	int window_open; /* no overflow yet when it ended */
	uint64_t memory_limit, memory_peak;
};

/* One clone job: made on the loop thread, run by a worker thread. */
struct sup_job {
	struct supervisor *sup;
	pthread_t thread;
	int pipe[2]; /* worker -> loop: progress lines, then "\n" + result marker */
	int ack[2];  /* loop -> worker: production's input is held, the freeze may go on */
	struct event *ev;
	struct evhttp_request *req; /* streamed progress; NULL when nobody listens */
	struct cm_clone_opts opts;
	char images[CM_PATH_MAX + 32];
	unsigned count;
	uint64_t buffer;		     /* per-clone replica buffer (0: the proxy's) */
	int reclone;			     /* started by the overflow policy */
	int control;			     /* the clones are controls (doppel clone --control) */
	struct sup_limits asked;	     /* limits asked for by the request */
	char keep[CM_PATH_MAX];		     /* --keep-images DIR, or "" */
	char cgroup_base[SUP_NAME_MAX + 16]; /* doppel/NAME */
	char host[SUP_HOST_MAX]; /* external mode: the other host's netns name ("" here) */
	int host_fd;
	char host_addr[SUP_HOST_MAX];
	char host_images[CM_PATH_MAX + 32];
	int agg_fds[SUP_MAX_CLONES][AGG_MAX_UPSTREAMS]; /* clones' upstream listeners */
	unsigned agg_ready; /* clones whose listeners exist (agg_fds[0..agg_ready-1]) */
	/* each clone's ends of the connections open at the freeze (--join-open) */
	struct proxy_peers *peers[SUP_MAX_CLONES];
	struct agg_peers *agg_peers[SUP_MAX_CLONES]; /* and of its upstream connections */
	/* results, valid once the worker is done */
	int rc;
	char err[1024];
	struct cm_clone clones[SUP_MAX_CLONES];
	struct cm_dump_stats stats;
	char partial[1024];
	size_t partial_len;
};

/* A debug window that ended (recorded for --overflow reclone). */
struct sup_window {
	unsigned clone_id;
	double seconds;
};

/*
 * leftovers.c: before anything starts, kill the clones an earlier supervisor
 * of this name left in their cgroups, and refuse (-EEXIST, err says how to
 * fix it) while the service it left still runs. record/forget keep the
 * running service's pid in RUN_DIR/NAME.service.
 */
int sup_leftovers_check(const struct sup_config *cfg, char *err, size_t errlen);
void sup_service_record(const struct sup_config *cfg, pid_t pid);
void sup_service_forget(const struct sup_config *cfg);

struct supervisor {
	struct sup_config cfg;
	int svc_recorded; /* sup_service_record was called: forget it at the end */
	struct event_base *base;
	struct cm_service svc;
	struct cm_criu criu;
	int have_criu;
	char criu_err[512];
	struct proxy *px;
	struct rec_tap *tap; /* records production and clones (doppel record) */
	struct rec_routes *rroutes;
	struct agg *agg;     /* NULL without --upstream */
	struct capture *cap; /* doppel adopt --capture; NULL without */
	struct admin *adm;
	struct admin *adm_tcp; /* --admin ADDR: read-only routes; NULL without */
	char admin_path[CM_PATH_MAX + 16];
	char work_dir[CM_PATH_MAX];
	char images_base[CM_PATH_MAX];
	int images_tmpfs;
	char exe[CM_PATH_MAX];
	struct event *sigint, *sigterm, *sigchld, *sighup, *svc_log_ev, *ready_timer;
	uint64_t start_ns, ready_ns;
	int ready;
	int stopping;
	int exit_code;
	char stop_reason[512];
	struct sup_clone *clones[SUP_MAX_CLONES];
	unsigned nclones, next_clone_id;
	struct sup_job *job;
	struct sup_window windows[SUP_PAST_WINDOWS]; /* a ring: nwindows % SUP_PAST_WINDOWS */
	unsigned nwindows;
	struct sup_ended ended[SUP_ENDED_CLONES]; /* a ring: nended % SUP_ENDED_CLONES */
	unsigned nended;
	uint64_t reclones;
	char svc_line[1024];
	size_t svc_line_len;
	char svc_last[256]; /* the service's last complete line of output */
};

/* supervisor.c */
void sup_shutdown(struct supervisor *sup, int code, const char *why);
/* "exit status N" / "killed by SIGNAL" from a waitpid() status. */
void sup_describe_status(int st, char *buf, size_t len);

/* clones.c */
/* A freshly restored clone and how to attach it, handed back by its job. */
struct sup_clone_spec {
	struct cm_clone *cm; /* taken over: destroyed when it cannot be attached */
	struct cm_dump_stats dump;
	uint64_t buffer;	 /* per-connection replica buffer (0: the proxy's) */
	const char *host;	 /* external mode: the other host's netns name; "" here */
	int host_fd;		 /* that host's netns (-1 here) */
	const char *host_addr;	 /* its IPv4 address */
	int control;		 /* an unmodified clone that measures noise (--control) */
	const char *keep;	 /* record what it receives into this directory; NULL: no */
	struct sup_limits asked; /* the limits its job was asked for */
	void (*report)(void *arg, const char *line); /* warnings for the requester; may be NULL */
	void *report_arg;
	int *agg_fds;		      /* its upstream listeners (AGG_MAX_UPSTREAMS; NULL without
				       * --upstream): taken over (set to -1) on success, left to the
				       * caller otherwise */
	struct proxy_peers **peers;   /* its ends of the open connections: taken over (NULL) */
	struct agg_peers **agg_peers; /* of production's upstream connections: taken over */
};
/*
 * Put a clone behind the proxy (through a relay on its host in external
 * mode), serve its upstreams, log its output, and list it. 0, or -errno
 * with the sentence in err (the clone is then destroyed).
 */
int sup_clone_attach(struct supervisor *sup, const struct sup_clone_spec *spec, char *err,
		     size_t errlen);
struct sup_clone *sup_clone_find(struct supervisor *sup, unsigned id);
/* Detach and destroy c, and unlist it. */
void sup_clone_remove(struct supervisor *sup, struct sup_clone *c, const char *why);
void sup_clones_remove_all(struct supervisor *sup, const char *why);
/* Remove the clones that exited (SIGCHLD). */
void sup_clones_reap(struct supervisor *sup);
/* The proxy's overflow hook: --overflow reclone replaces the clone. */
void sup_on_overflow(void *arg, unsigned replica_id, uint64_t overflows);

/* jobs.c */
/* Start a clone job; req may be NULL. 0, or -EBUSY/-errno with err. */
int sup_job_start(struct supervisor *sup, unsigned count, uint64_t buffer, int reclone,
		  const char *host, const char *images, struct evhttp_request *req, char *err,
		  size_t errlen);
/*
 * The same for a control clone, or one kept for staged replay (keep: a
 * directory), with resource limits (NULL: the supervisor's) and a pre-dump mode
 * (`doppel clone --predump`).
 */
int sup_job_start_ex(struct supervisor *sup, unsigned count, uint64_t buffer, int reclone,
		     const char *host, const char *images, int control, const char *keep,
		     const struct sup_limits *limits, enum cm_predump predump,
		     struct evhttp_request *req, char *err, size_t errlen);
/* Wait for a running job (shutdown) and discard what it made. */
void sup_job_abandon(struct supervisor *sup);

/* routes.c */
void sup_routes_install(struct supervisor *sup);
/* The read-only routes (page, status, metrics) on another listener. */
void sup_routes_install_readonly(struct supervisor *sup, struct admin *adm);
void sup_status_json(struct supervisor *sup, struct sbuf *sb);

#endif
