/*
 * tap.h - recording what passes through a proxy (record/tap.c): a proxy
 * observer that writes production's and every replica leg's conversations
 * as pcap files (record.h) and forwards every call to the observer it wraps.
 *
 * Ownership: the caller creates the tap, installs rec_tap_observer()'s
 * observer with proxy_set_observer() before the first connection, and frees
 * the tap after the proxy. The observer may be called from every thread of
 * a proxy with several (proxy_config.threads); the other functions from the
 * proxy's owner.
 */
#ifndef DOPPEL_RECORD_TAP_H
#define DOPPEL_RECORD_TAP_H

#include "proxy/proxy.h"
#include "record/record.h"

struct rec_tap;

/* next (may be NULL) is the observer the tap forwards to; backend names production's side. */
struct rec_tap *rec_tap_new(const struct proxy_observer *next, const struct net_endpoint *backend);
void rec_tap_free(struct rec_tap *t);
/* The observer to give the proxy. */
void rec_tap_observer(struct rec_tap *t, struct proxy_observer *out);

/* Start recording into c->dir; -EALREADY when recording, or rec_open's error. */
int rec_tap_start(struct rec_tap *t, const struct rec_config *c, char *err, size_t errlen);
/* Stop: every flow gets its FIN, every file is closed. */
void rec_tap_stop(struct rec_tap *t);
/*
 * Also record replica replica_id's legs on their own, into c->dir (side
 * "received": what it was sent, and its answers), from its next bytes until
 * rec_tap_keep_stop() (a clone kept for staged replay).
 */
int rec_tap_keep_replica(struct rec_tap *t, unsigned replica_id, const struct rec_config *c,
			 char *err, size_t errlen);
void rec_tap_keep_stop(struct rec_tap *t, unsigned replica_id);
/* 1 and the stats and directory while recording, else 0. */
int rec_tap_status(const struct rec_tap *t, struct rec_stats *st, const char **dir);

#endif
