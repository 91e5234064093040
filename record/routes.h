/*
 * routes.h - admin routes for `doppel diverge` and `doppel record`
 * (record/routes.c), for any admin server that fronts a proxy.
 *
 * Ownership: the caller frees the routes (rec_routes_free) after the admin
 * server; px and tap must outlive both. Event-loop thread only.
 */
#ifndef DOPPEL_RECORD_ROUTES_H
#define DOPPEL_RECORD_ROUTES_H

#include "admin/admin.h"
#include "proxy/proxy.h"
#include "record/record.h"
#include "record/tap.h"

struct rec_routes;

/*
 * GET /diverge, and with a tap GET|POST /record; recordings started without a
 * dir go to default_dir with the limits of defaults (NULL: rec_config_defaults).
 */
struct rec_routes *rec_routes_add(struct admin *adm, struct proxy *px, struct rec_tap *tap,
				  const struct rec_config *defaults, const char *default_dir);
void rec_routes_free(struct rec_routes *rr);

#endif
