/*
 * rank.c - statistical debugging over many runs labelled pass or fail
 * (Liblit et al., "Scalable Statistical Bug Isolation", PLDI 2005, as the
 * Parikshan thesis ch. 6 applies it to clones): which facts about a run
 * predict its failure?
 *
 * Predicates, each observed at a *site* (the run observes the site when the
 * predicate could have been true or false there):
 *   called f            f (or syscall f) was reached; site: the run itself
 *   f -> g              f called g directly (the branch f took); site: f ran
 *   f() < 0 | == 0 | > 0  a return value's sign (uftrace -R, strace); site:
 *                       f returned a value
 *   s() failed [with E] syscall s returned an error (any, and each errno);
 *                       site: s was made
 *
 * For a predicate P over the runs: F(P), S(P) failing and passing runs where
 * P was true; F(P obs), S(P obs) where its site was observed; NumF failing
 * runs in all.
 *   Failure(P)    = F(P) / (S(P) + F(P))
 *   Context(P)    = F(P obs) / (S(P obs) + F(P obs))
 *   Increase(P)   = Failure(P) - Context(P)
 *   Importance(P) = 2 / (1/Increase(P) + 1/(log F(P) / log NumF))
 * Predicates whose Increase is not above zero with 95% confidence (normal
 * approximation of both proportions) are set aside. Then Liblit's iterative
 * elimination: take the most important predicate, drop every run where it
 * was true (those failures are explained), score again, until no failing run
 * is left; each round names one bug predictor.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/sbuf.h"
#include "trace/imap.h"
#include "trace/trace.h"

#define MAX_PREDS (1u << 20)
#define MAX_STACK 4096

struct pred {
	char *desc;
	uint32_t site;
	int family;
	uint64_t F, S, Fo, So;
	double failure, context, increase, importance, lower;
};

struct run {
	uint32_t *preds; /* sorted ids of predicates true in this run */
	size_t npreds;
	uint32_t *sites; /* sorted ids of sites observed */
	size_t nsites;
	int failed;
	int alive; /* not yet explained by an earlier predictor */
};

struct rank {
	struct pred *preds;
	size_t npreds, cap;
	struct imap pred_ids; /* key -> id */
	struct imap site_ids;
	uint32_t nsites;
	uint64_t dropped;
	struct run *runs;
	size_t nruns;
	int families;
};

static uint64_t hstr(uint64_t seed, const char *s)
{
	return XXH3_64bits_withSeed(s, strlen(s), seed);
}

static uint32_t site_id(struct rank *R, uint64_t key)
{
	uint64_t *v = imap_get(&R->site_ids, key);

	if (v)
		return (uint32_t)*v;
	imap_put(&R->site_ids, key, R->nsites);
	return R->nsites++;
}

/* id of the predicate (created on first sight), or UINT32_MAX when full */
static uint32_t pred_id(struct rank *R, uint64_t key, int family, uint32_t site, const char *fmt,
			const char *a, const char *b)
{
	uint64_t *v = imap_get(&R->pred_ids, key);
	struct pred *p;
	char desc[512];

	if (v)
		return (uint32_t)*v;
	if (R->npreds >= MAX_PREDS) {
		R->dropped++;
		return UINT32_MAX;
	}
	if (R->npreds == R->cap) {
		size_t nc = R->cap ? R->cap * 2 : 1024;
		struct pred *np = realloc(R->preds, nc * sizeof(*np));

		if (!np)
			return UINT32_MAX;
		R->preds = np;
		R->cap = nc;
	}
	snprintf(desc, sizeof(desc), fmt, a, b);
	p = &R->preds[R->npreds];
	memset(p, 0, sizeof(*p));
	p->desc = strdup(desc);
	p->site = site;
	p->family = family;
	imap_put(&R->pred_ids, key, R->npreds);
	return (uint32_t)R->npreds++;
}

struct runsets {
	struct imap preds, sites;
};

static void set_add(struct imap *m, uint32_t id)
{
	if (id != UINT32_MAX)
		imap_put(m, id, 1);
}

struct rstack {
	const char *names[MAX_STACK];
	uint32_t depth;
};

static void observe(struct rank *R, struct runsets *rs, struct imap *stacks,
		    const struct trace_event *ev)
{
	uint64_t tk = (uint64_t)(uint32_t)ev->tid | ((uint64_t)(uint32_t)ev->pid << 32);
	uint64_t *sv = imap_get(stacks, tk);
	struct rstack *st = sv ? (struct rstack *)(uintptr_t)*sv : NULL;
	const char *parent;

	if (!st &&
	    (ev->kind == TRACE_ENTER || ev->kind == TRACE_EXIT || ev->kind == TRACE_SYSCALL)) {
		st = calloc(1, sizeof(*st));
		if (!st || imap_put(stacks, tk, (uint64_t)(uintptr_t)st) < 0) {
			free(st);
			st = NULL;
		}
	}
	parent = st && st->depth && st->depth <= MAX_STACK ? st->names[st->depth - 1] : NULL;
	if (ev->kind == TRACE_ENTER || ev->kind == TRACE_SYSCALL) {
		const char *fmt = ev->kind == TRACE_SYSCALL ? "called %s()%s" : "called %s%s";

		if (R->families & TRACE_PRED_CALLED) {
			set_add(&rs->sites, site_id(R, 1));
			set_add(&rs->preds, pred_id(R, hstr(11, ev->name), TRACE_PRED_CALLED,
						    site_id(R, 1), fmt, ev->name, ""));
		}
		if ((R->families & TRACE_PRED_EDGE) && parent) {
			uint32_t s = site_id(R, hstr(12, parent));

			set_add(&rs->sites, s);
			set_add(&rs->preds,
				pred_id(R, hstr(hstr(13, parent), ev->name), TRACE_PRED_EDGE, s,
					"%s -> %s", parent, ev->name));
		}
	}
	if (ev->kind == TRACE_ENTER && st) {
		if (st->depth < MAX_STACK)
			st->names[st->depth] = ev->name;
		st->depth++;
	} else if (ev->kind == TRACE_EXIT && st && st->depth) {
		st->depth--;
	}
	if ((R->families & TRACE_PRED_RETURN) && (ev->flags & TRACE_F_RET) &&
	    (ev->kind == TRACE_EXIT || (ev->kind == TRACE_SYSCALL && !ev->errname))) {
		uint32_t s = site_id(R, hstr(14, ev->name));
		const char *sign = ev->ret < 0	  ? "%s() < 0%s"
				   : ev->ret == 0 ? "%s() == 0%s"
						  : "%s() > 0%s";

		set_add(&rs->sites, s);
		set_add(&rs->preds, pred_id(R,
					    hstr(15 + (ev->ret < 0    ? 0
						       : ev->ret == 0 ? 1
								      : 2),
						 ev->name),
					    TRACE_PRED_RETURN, s, sign, ev->name, ""));
	}
	if ((R->families & TRACE_PRED_SYSERR) && ev->kind == TRACE_SYSCALL) {
		uint32_t s = site_id(R, hstr(20, ev->name));

		set_add(&rs->sites, s);
		if (ev->errname) {
			set_add(&rs->preds, pred_id(R, hstr(21, ev->name), TRACE_PRED_SYSERR, s,
						    "%s() failed%s", ev->name, ""));
			set_add(&rs->preds,
				pred_id(R, hstr(hstr(22, ev->name), ev->errname), TRACE_PRED_SYSERR,
					s, "%s() failed with %s", ev->name, ev->errname));
		}
	}
}

static int u32cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t *set_array(struct imap *m, size_t *n)
{
	uint32_t *v = malloc((m->count + 1) * sizeof(*v));
	uint64_t k, val;

	*n = 0;
	if (!v)
		return NULL;
	for (size_t it = 0; imap_next(m, &it, &k, &val);)
		v[(*n)++] = (uint32_t)k;
	qsort(v, *n, sizeof(*v), u32cmp);
	return v;
}

static int read_run(struct rank *R, const struct trace_rank_run *in, struct run *out,
		    const struct trace_read_opts *ro, char *err, size_t errlen)
{
	struct trace_reader *r;
	struct runsets rs;
	struct imap stacks;
	struct trace_event ev;
	uint64_t k, v;
	int rc;

	rc = trace_reader_open(in->path, ro, &r, err, errlen);
	if (rc < 0)
		return rc;
	imap_init(&rs.preds, MAX_PREDS);
	imap_init(&rs.sites, MAX_PREDS);
	imap_init(&stacks, 1u << 16);
	while ((rc = trace_reader_next(r, &ev)) > 0)
		observe(R, &rs, &stacks, &ev);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", in->path, trace_reader_error(r));
	trace_reader_close(r);
	for (size_t it = 0; imap_next(&stacks, &it, &k, &v);)
		free((void *)(uintptr_t)v);
	imap_free(&stacks);
	if (rc == 0) {
		out->preds = set_array(&rs.preds, &out->npreds);
		out->sites = set_array(&rs.sites, &out->nsites);
		out->failed = in->failed;
		out->alive = 1;
		if (!out->preds || !out->sites)
			rc = -ENOMEM;
	}
	imap_free(&rs.preds);
	imap_free(&rs.sites);
	return rc;
}

static int has(const uint32_t *v, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid] == id)
			return 1;
		if (v[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Liblit's scores over the runs still alive. Returns NumF. */
static uint64_t score(struct rank *R)
{
	uint64_t numf = 0;
	uint32_t *site_f = calloc(R->nsites + 1, sizeof(*site_f));
	uint32_t *site_s = calloc(R->nsites + 1, sizeof(*site_s));

	for (size_t i = 0; i < R->npreds; i++)
		R->preds[i].F = R->preds[i].S = R->preds[i].Fo = R->preds[i].So = 0;
	if (!site_f || !site_s) {
		free(site_f);
		free(site_s);
		return 0;
	}
	for (size_t r = 0; r < R->nruns; r++) {
		struct run *run = &R->runs[r];

		if (!run->alive)
			continue;
		numf += run->failed != 0;
		for (size_t i = 0; i < run->npreds; i++) {
			if (run->failed)
				R->preds[run->preds[i]].F++;
			else
				R->preds[run->preds[i]].S++;
		}
		for (size_t i = 0; i < run->nsites; i++) {
			if (run->failed)
				site_f[run->sites[i]]++;
			else
				site_s[run->sites[i]]++;
		}
	}
	for (size_t i = 0; i < R->npreds; i++) {
		struct pred *p = &R->preds[i];
		double nt = (double)(p->F + p->S), no;
		double sens, vf, vc;

		p->Fo = site_f[p->site];
		p->So = site_s[p->site];
		no = (double)(p->Fo + p->So);
		p->failure = nt > 0 ? (double)p->F / nt : 0;
		p->context = no > 0 ? (double)p->Fo / no : 0;
		p->increase = p->failure - p->context;
		vf = nt > 0 ? p->failure * (1 - p->failure) / nt : 0;
		vc = no > 0 ? p->context * (1 - p->context) / no : 0;
		p->lower = p->increase - 1.96 * sqrt(vf + vc);
		if (numf > 1 && p->F > 0)
			sens = log((double)p->F) / log((double)numf);
		else
			sens = p->F > 0 && p->F == numf ? 1.0 : 0.0;
		p->importance =
			p->increase > 0 && sens > 0 ? 2.0 / (1.0 / p->increase + 1.0 / sens) : 0.0;
	}
	free(site_f);
	free(site_s);
	return numf;
}

static int pred_rank_cmp(const void *a, const void *b, void *ctx)
{
	const struct rank *R = ctx;
	const struct pred *x = &R->preds[*(const uint32_t *)a],
			  *y = &R->preds[*(const uint32_t *)b];

	if (x->importance != y->importance)
		return x->importance > y->importance ? -1 : 1;
	if (x->increase != y->increase)
		return x->increase > y->increase ? -1 : 1;
	if (x->F != y->F)
		return x->F > y->F ? -1 : 1;
	/* the simplest fact first: called, then edges, returns, errors */
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return strcmp(x->desc, y->desc);
}

static void row(struct sbuf *sb, const struct pred *p, size_t rank, int json)
{
	if (json) {
		sbuf_printf(sb, "{\"rank\":%zu,\"predicate\":", rank);
		sbuf_json_str(sb, p->desc);
		sbuf_printf(sb, ",\"importance\":");
		sbuf_json_num(sb, p->importance);
		sbuf_printf(sb, ",\"increase\":");
		sbuf_json_num(sb, p->increase);
		sbuf_printf(sb, ",\"context\":");
		sbuf_json_num(sb, p->context);
		sbuf_printf(sb, ",\"failure\":");
		sbuf_json_num(sb, p->failure);
		sbuf_printf(sb, ",\"F\":%llu,\"S\":%llu,\"F_obs\":%llu,\"S_obs\":%llu}",
			    (unsigned long long)p->F, (unsigned long long)p->S,
			    (unsigned long long)p->Fo, (unsigned long long)p->So);
		return;
	}
	sbuf_printf(sb, "%4zu %10.3f %8.3f %8.3f %8.3f %5llu %5llu %5llu %5llu  %s\n", rank,
		    p->importance, p->increase, p->context, p->failure, (unsigned long long)p->F,
		    (unsigned long long)p->S, (unsigned long long)p->Fo, (unsigned long long)p->So,
		    p->desc);
}

int trace_rank_parse_families(const char *text, int *out)
{
	char *copy = strdup(text), *tok, *save = NULL;
	int f = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "called") == 0)
			f |= TRACE_PRED_CALLED;
		else if (strcmp(tok, "edge") == 0 || strcmp(tok, "branch") == 0)
			f |= TRACE_PRED_EDGE;
		else if (strcmp(tok, "return") == 0)
			f |= TRACE_PRED_RETURN;
		else if (strcmp(tok, "syserr") == 0)
			f |= TRACE_PRED_SYSERR;
		else {
			free(copy);
			return -EINVAL;
		}
	}
	free(copy);
	*out = f;
	return f ? 0 : -EINVAL;
}

int trace_rank(const struct trace_rank_run *runs, size_t nruns, const struct trace_rank_opts *o,
	       struct trace_rank_result *res, char **out, size_t *outlen, char *err, size_t errlen)
{
	struct rank R;
	struct sbuf sb;
	uint32_t *order = NULL;
	size_t top = o->top ? o->top : 10, listed = 0;
	uint64_t numf;
	int rc = 0;

	memset(&R, 0, sizeof(R));
	memset(res, 0, sizeof(*res));
	sbuf_init(&sb);
	R.families = o->families ? o->families
				 : TRACE_PRED_CALLED | TRACE_PRED_EDGE | TRACE_PRED_RETURN |
					   TRACE_PRED_SYSERR;
	imap_init(&R.pred_ids, MAX_PREDS);
	imap_init(&R.site_ids, MAX_PREDS);
	R.runs = calloc(nruns ? nruns : 1, sizeof(*R.runs));
	if (!R.runs) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nruns; i++) {
		rc = read_run(&R, &runs[i], &R.runs[i], o->read, err, errlen);
		if (rc < 0)
			goto out;
		R.nruns++;
	}
	numf = score(&R);
	res->runs = nruns;
	res->failed = numf;
	res->predicates = R.npreds;
	if (numf == 0 || numf == nruns) {
		snprintf(err, errlen,
			 "%s: ranking needs both passing and failing runs (%llu of %zu failed)",
			 numf == 0 ? "no failing run" : "no passing run", (unsigned long long)numf,
			 nruns);
		rc = -EINVAL;
		goto out;
	}
	order = malloc((R.npreds + 1) * sizeof(*order));
	if (!order) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < R.npreds; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, R.npreds, sizeof(*order), pred_rank_cmp, &R);
	if (o->json)
		sbuf_printf(&sb, "{\"runs\":%zu,\"failed\":%llu,\"predicates\":%zu,\"ranking\":[",
			    nruns, (unsigned long long)numf, R.npreds);
	else
		sbuf_printf(&sb,
			    "%zu runs, %llu failed, %zu predicates\n"
			    "RANK IMPORTANCE INCREASE  CONTEXT  FAILURE     F     S F_OBS S_OBS  "
			    "PREDICATE\n",
			    nruns, (unsigned long long)numf, R.npreds);
	for (size_t i = 0; i < R.npreds && listed < top; i++) {
		struct pred *p = &R.preds[order[i]];

		if (!o->all && (p->increase <= 0 || p->lower <= 0))
			continue;
		if (o->json && listed)
			sbuf_printf(&sb, ",");
		row(&sb, p, ++listed, o->json);
		if (listed == 1) {
			snprintf(res->top, sizeof(res->top), "%s", p->desc);
			res->top_importance = p->importance;
		}
	}
	if (!listed && !o->json)
		sbuf_printf(&sb, "   (no predicate's Increase is significantly above zero)\n");
	if (!o->no_elimination) {
		unsigned round = 0;

		sbuf_printf(&sb, o->json ? "],\"predictors\":["
					 : "bug predictors (iterative elimination):\n");
		for (;;) {
			uint32_t best = UINT32_MAX;
			uint64_t left = score(&R), explained = 0;

			if (left == 0)
				break;
			for (size_t i = 0; i < R.npreds; i++) {
				struct pred *p = &R.preds[i];

				if (p->importance <= 0 || p->lower <= 0)
					continue;
				if (best == UINT32_MAX) {
					best = (uint32_t)i;
					continue;
				}
				uint32_t pair[2] = {(uint32_t)i, best};

				if (pred_rank_cmp(&pair[0], &pair[1], &R) < 0)
					best = (uint32_t)i;
			}
			if (best == UINT32_MAX)
				break;
			for (size_t r = 0; r < R.nruns; r++) {
				struct run *run = &R.runs[r];

				if (run->alive && has(run->preds, run->npreds, best)) {
					explained += run->failed != 0;
					run->alive = 0;
				}
			}
			round++;
			if (o->json) {
				sbuf_printf(
					&sb,
					"%s{\"round\":%u,\"explains\":%llu,\"of\":%llu,\"row\":",
					round > 1 ? "," : "", round, (unsigned long long)explained,
					(unsigned long long)left);
				row(&sb, &R.preds[best], round, 1);
				sbuf_printf(&sb, "}");
			} else {
				sbuf_printf(&sb,
					    "  %u. %s  (importance %.3f; explains %llu of %llu "
					    "remaining failures)\n",
					    round, R.preds[best].desc, R.preds[best].importance,
					    (unsigned long long)explained,
					    (unsigned long long)left);
			}
			if (explained == 0)
				break;
		}
		if (!round && !o->json)
			sbuf_printf(&sb, "  (none)\n");
	}
	if (o->json)
		sbuf_printf(&sb, "]}\n");
	else if (R.dropped)
		sbuf_printf(&sb, "(%llu predicates over the table's limit were not kept)\n",
			    (unsigned long long)R.dropped);
	*out = sb.buf;
	*outlen = sb.len;
	sb.buf = NULL;
out:
	free(order);
	for (size_t i = 0; i < R.nruns; i++) {
		free(R.runs[i].preds);
		free(R.runs[i].sites);
	}
	free(R.runs);
	for (size_t i = 0; i < R.npreds; i++)
		free(R.preds[i].desc);
	free(R.preds);
	imap_free(&R.pred_ids);
	imap_free(&R.site_ids);
	sbuf_free(&sb);
	return rc;
}
