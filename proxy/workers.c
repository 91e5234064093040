/*
 * workers.c - the proxy's other event loops (--threads N). The proxy the
 * caller made is worker 0 and runs on the caller's event_base; workers 1 to
 * N-1 are proxies of their own, each with its own thread, event_base,
 * listener (SO_REUSEPORT: the kernel spreads connections over them),
 * connections, chunk pool and replica legs. Nothing on the data path is
 * shared between threads but each replica's struct replica_share (atomics:
 * one budget, one first overflow).
 *
 * The caller's thread (the control thread) reaches a worker only through
 * workers_each(): the function runs on the worker's own thread while the
 * caller waits, so a worker's state is never read or changed from two
 * threads at once. A worker's overflow reaches the caller's hooks through an
 * eventfd watched on worker 0's base (proxy.c, notify_cb).
 */
#define LOG_PREFIX "proxy"
#include "proxy/proxy-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/netns.h"

struct worker {
	struct proxy *px;
	struct event_base *base;
	pthread_t thread;
	int started;
	int mail_fd; /* eventfd: a call is waiting */
	struct event mail;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(struct proxy *px, void *arg); /* the call, until done */
	void *arg;
	int done;
};

struct proxy_workers {
	unsigned n; /* workers besides worker 0 */
	struct worker *w;
	pthread_mutex_t calls_mu; /* one workers_each at a time */
};

static void mail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_perror("worker mailbox read");
	pthread_mutex_lock(&w->mu);
	if (w->fn && !w->done) {
		w->fn(w->px, w->arg);
		w->fn = NULL;
		w->done = 1;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	/* stop_fn freed the worker's proxy: what the thread kept goes too */
	div_thread_exit();
	netns_thread_exit();
	return NULL;
}

/* Run fn(w->px, arg) on w's thread and wait for it. */
static void worker_call(struct worker *w, void (*fn)(struct proxy *, void *), void *arg)
{
	uint64_t one = 1;

	pthread_mutex_lock(&w->mu);
	w->fn = fn;
	w->arg = arg;
	w->done = 0;
	if (write(w->mail_fd, &one, sizeof(one)) < 0)
		pr_perror("worker mailbox write");
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* On the worker's thread: its proxy goes (its connections with it), then its loop. */
static void stop_fn(struct proxy *px, void *arg)
{
	struct worker *w = arg;
	struct event_base *base = px->base;

	proxy_free_one(px);
	w->px = NULL;
	event_base_loopbreak(base);
}

static void worker_destroy(struct worker *w)
{
	if (w->started) {
		worker_call(w, stop_fn, w);
		pthread_join(w->thread, NULL);
	}
	if (w->px)
		proxy_free_one(w->px);
	if (w->mail_fd >= 0) {
		event_del(&w->mail);
		close(w->mail_fd);
	}
	if (w->base)
		event_base_free(w->base);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

int workers_start(struct proxy *px, unsigned threads, char *err, size_t errlen)
{
	struct proxy_workers *ws;
	int rc = 0;

	if (threads <= 1)
		return 0;
	ws = calloc(1, sizeof(*ws));
	if (!ws || !(ws->w = calloc(threads - 1, sizeof(*ws->w)))) {
		free(ws);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&ws->calls_mu, NULL);
	px->workers = ws;
	for (unsigned i = 0; i < threads - 1; i++) {
		struct worker *w = &ws->w[i];

		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
		w->mail_fd = -1;
		ws->n++;
		w->base = event_base_new();
		if (!w->base) {
			snprintf(err, errlen, "cannot create event loop %u of %u", i + 2, threads);
			rc = -ENOMEM;
			break;
		}
		rc = proxy_new_one(w->base, &px->cfg, px, i + 1, &w->px, err, errlen);
		if (rc < 0)
			break;
		w->mail_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->mail_fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			break;
		}
		event_assign(&w->mail, w->base, w->mail_fd, EV_READ | EV_PERSIST, mail_cb, w);
		event_add(&w->mail, NULL);
		rc = -pthread_create(&w->thread, NULL, worker_main, w);
		if (rc < 0) {
			snprintf(err, errlen, "cannot start thread %u of %u: %s", i + 2, threads,
				 strerror(-rc));
			break;
		}
		w->started = 1;
	}
	if (rc < 0)
		workers_stop(px);
	return rc;
}

void workers_stop(struct proxy *px)
{
	struct proxy_workers *ws = px->workers;

	if (!ws)
		return;
	for (unsigned i = 0; i < ws->n; i++)
		worker_destroy(&ws->w[i]);
	pthread_mutex_destroy(&ws->calls_mu);
	free(ws->w);
	free(ws);
	px->workers = NULL;
}

unsigned workers_count(const struct proxy *px)
{
	return px->workers ? px->workers->n + 1 : 1;
}

void workers_each_other(struct proxy *px, void (*fn)(struct proxy *px, void *arg), void *arg)
{
	struct proxy_workers *ws = px->workers;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->calls_mu);
	for (unsigned i = 0; i < ws->n; i++)
		worker_call(&ws->w[i], fn, arg);
	pthread_mutex_unlock(&ws->calls_mu);
}

void workers_each(struct proxy *px, void (*fn)(struct proxy *px, void *arg), void *arg)
{
	fn(px, arg);
	workers_each_other(px, fn, arg);
}
