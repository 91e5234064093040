/*
 * read-uftrace.c - reads an uftrace data directory directly (no `uftrace
 * dump`): the per-task record files (TID.dat) merged in time order, task.txt
 * for thread -> process -> session, sid-*.map and *.sym for symbols, and the
 * info file for argument and return-value specs.
 *
 * Records are 16 bytes (time, then type:2 more:1 magic:3 depth:10 addr:48).
 * A record with `more` set is followed by its arguments or return value,
 * whose layout is not in the file but in the specs (-A / -R / -a) recorded in
 * info; this reader decodes the integer, pointer, char, float, enum and
 * string formats. Data it cannot size (struct arguments, debug-info auto
 * args) stops the reader with a message instead of misreading.
 *
 * Memory: one small read buffer per task file, merged with a heap; uftrace
 * times are its CLOCK_MONOTONIC nanoseconds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace/imap.h"
#include "trace/reader-int.h"

#define MAX_TASKS 8192
#define MAX_SPECS 256
#define MAX_ARGS 16
#define TASK_BUF 65536
#define NO_TS UINT64_MAX
#define FEAT_DEBUG_INFO (1ULL << 10)

enum { UFT_ENTRY = 0, UFT_EXIT = 1, UFT_LOST = 2, UFT_EVENT = 3 };

struct usym {
	uint64_t addr;
	const char *name; /* NULL: an end marker */
};

struct umodule {
	const char *path; /* interned */
	struct usym *syms;
	size_t n;
	int loaded;
};

struct umap {
	uint64_t start, end;
	struct umodule *mod;
};

struct usession {
	char sid[32];
	int32_t pid;
	uint64_t ts;
	struct umap *maps;
	size_t nmaps;
};

struct argfmt {
	int idx;  /* 1.. for args, 0 for retval */
	int size; /* bytes; 0 for strings */
	char fmt; /* d u x c f s p e */
	int fp;	  /* fparg */
};

struct spec {
	regex_t re;
	int is_regex;
	char *glob;
	struct argfmt args[MAX_ARGS];
	int nargs;
};

struct utask {
	int32_t tid, pid;
	int fd;
	unsigned char *buf;
	size_t pos, len;
	int eof;
	struct usession *sess;
	/* the decoded record waiting in the heap */
	uint64_t time, addr;
	unsigned type, depth, more;
	char argtext[1024];
	int64_t retval;
	int has_ret;
	uint64_t *stack; /* entry time by depth */
	unsigned cap;
	uint64_t *bytes; /* the reader's stats.bytes */
};

struct uftrace_reader {
	struct trace_reader base;
	char dir[4096];
	struct usession *sess;
	size_t nsess;
	struct umodule *mods;
	size_t nmods;
	struct spec specs[MAX_SPECS];
	int nspecs;
	int regex_patterns;
	struct utask *tasks;
	size_t ntasks;
	struct utask **heap;
	size_t nheap;
	char args_out[1024];
	const char *unsupported;
};

/* ---------------------------------------------------------------- files */

static char *slurp(const char *path, size_t *len, size_t max)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int path_join(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* ---------------------------------------------------------------- specs */

static int parse_fmt(const char *f, struct argfmt *a)
{
	a->size = 8;
	a->fmt = 'd';
	if (!*f)
		return 0;
	switch (f[0]) {
	case 'd':
	case 'i':
	case 'u':
	case 'x':
	case 'o':
		a->fmt = f[0] == 'i' ? 'd' : (f[0] == 'o' ? 'x' : f[0]);
		if (f[1])
			a->size = atoi(f + 1) / 8;
		break;
	case 'c':
		a->fmt = 'c';
		a->size = 1;
		break;
	case 'f':
		a->fmt = 'f';
		if (f[1])
			a->size = atoi(f + 1) / 8;
		if (a->size == 10)
			a->size = 16;
		break;
	case 's':
	case 'S':
		a->fmt = 's';
		a->size = 0;
		break;
	case 'p':
		a->fmt = 'x';
		break;
	case 'e':
		a->fmt = 'd';
		a->size = 4;
		break;
	default:
		return -EINVAL; /* struct arguments and the like: size unknown */
	}
	if (a->size != 1 && a->size != 2 && a->size != 4 && a->size != 8 && a->size != 16 &&
	    a->fmt != 's')
		return -EINVAL;
	return 0;
}

/* One "PATTERN@arg1/fmt,arg2,retval/fmt" item. */
static void add_spec(struct uftrace_reader *ur, char *item, int regex)
{
	char *at = strchr(item, '@'), *tok, *save = NULL;
	struct spec *sp;

	if (!at || ur->nspecs >= MAX_SPECS)
		return;
	*at = '\0';
	sp = &ur->specs[ur->nspecs];
	memset(sp, 0, sizeof(*sp));
	for (tok = strtok_r(at + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct argfmt a = {0};
		char *slash = strchr(tok, '/');
		const char *f = slash ? slash + 1 : "";

		if (slash)
			*slash = '\0';
		if (strncmp(tok, "arg", 3) == 0 && tok[3] >= '0' && tok[3] <= '9')
			a.idx = atoi(tok + 3);
		else if (strncmp(tok, "fparg", 5) == 0 && tok[5] >= '0' && tok[5] <= '9') {
			a.idx = atoi(tok + 5);
			a.fp = 1;
			f = *f ? f : "f64";
		} else if (strcmp(tok, "retval") == 0)
			a.idx = 0;
		else
			continue; /* other triggers (depth=, trace, ...) carry no data */
		if (parse_fmt(f, &a) < 0) {
			ur->unsupported =
				"an argument format (struct or unknown) whose size is not recorded";
			continue;
		}
		if (sp->nargs < MAX_ARGS)
			sp->args[sp->nargs++] = a;
	}
	if (regex) {
		char pat[512];

		snprintf(pat, sizeof(pat), "^(%s)$", item);
		if (regcomp(&sp->re, pat, REG_EXTENDED | REG_NOSUB) != 0)
			return;
		sp->is_regex = 1;
	} else {
		sp->glob = strdup(item);
		if (!sp->glob)
			return;
	}
	ur->nspecs++;
}

static void add_specs(struct uftrace_reader *ur, const char *list, size_t len, int regex)
{
	char *copy = malloc(len + 1), *item, *save = NULL;

	if (!copy)
		return;
	memcpy(copy, list, len);
	copy[len] = '\0';
	for (item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save))
		if (*item)
			add_spec(ur, item, regex);
	free(copy);
}

static const char *info_value(const char *text, const char *key, size_t *len)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, kl) == 0) {
			const char *e = strchr(p + kl, '\n');

			*len = e ? (size_t)(e - p - kl) : strlen(p + kl);
			return p + kl;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static int load_info(struct uftrace_reader *ur, char *err, size_t errlen)
{
	char path[4200];
	size_t len, n;
	char *text = NULL, *buf;
	const char *v;
	int regex = 1, autoargs;
	uint64_t feat = 0;

	if (path_join(path, sizeof(path), ur->dir, "info") < 0)
		return -ENAMETOOLONG;
	buf = slurp(path, &len, 1 << 22);
	if (!buf) {
		snprintf(err, errlen, "%s: not an uftrace data directory (no info file)", ur->dir);
		return -ENOENT;
	}
	if (len < 40 || memcmp(buf, "Ftrace!", 7) != 0) {
		snprintf(err, errlen, "%s/info: not an uftrace info file", ur->dir);
		free(buf);
		return -EINVAL;
	}
	/* header: magic[8] version:4 header_size:2 endian:1 class:1 ... */
	{
		uint16_t hsize;

		memcpy(&feat, buf + 16, 8);
		unsigned char endian = (unsigned char)buf[14], eclass = (unsigned char)buf[15];

		memcpy(&hsize, buf + 12, 2);
		if (endian != 1 || eclass != 2) {
			snprintf(err, errlen,
				 "%s: only little-endian 64-bit uftrace data is supported",
				 ur->dir);
			free(buf);
			return -ENOTSUP;
		}
		if (hsize < len)
			text = buf + hsize;
	}
	if (!text) {
		free(buf);
		return 0;
	}
	v = info_value(text, "pattern_type:", &n);
	if (v && n >= 4 && strncmp(v, "glob", 4) == 0)
		regex = 0;
	ur->regex_patterns = regex;
	autoargs = strstr(text, "\nauto-args:1") != NULL;
	for (const char *p = text; (p = strstr(p, "\nargspec:")) != NULL; p++) {
		const char *val = p + 9, *e = strchr(val, '\n');

		if (strncmp(val, "lines=", 6) != 0)
			add_specs(ur, val, e ? (size_t)(e - val) : strlen(val), regex);
	}
	v = info_value(text, "retspec:", &n);
	if (v)
		add_specs(ur, v, n, regex);
	if (autoargs) {
		if (feat & FEAT_DEBUG_INFO) {
			/* arguments of every function, laid out from DWARF */
			ur->unsupported = "auto-args from debug info";
		} else {
			v = info_value(text, "argauto:", &n);
			if (v)
				add_specs(ur, v, n, 0);
			v = info_value(text, "retauto:", &n);
			if (v)
				add_specs(ur, v, n, 0);
		}
	}
	free(buf);
	return 0;
}

static int spec_matches(const struct spec *sp, const char *name)
{
	if (sp->is_regex)
		return regexec(&sp->re, name, 0, NULL, 0) == 0;
	return sp->glob && trace_glob_match(sp->glob, name);
}

/* The formats recorded for name's arguments (want_ret 0) or return (1),
 * merged from every matching spec, ordered by index. */
static int formats_for(struct uftrace_reader *ur, const char *name, int want_ret,
		       struct argfmt *out)
{
	int n = 0;

	for (int i = 0; i < ur->nspecs; i++) {
		const struct spec *sp = &ur->specs[i];

		if (!spec_matches(sp, name))
			continue;
		for (int j = 0; j < sp->nargs; j++) {
			const struct argfmt *a = &sp->args[j];
			int dup = 0;

			if ((a->idx == 0) != want_ret)
				continue;
			for (int k = 0; k < n; k++)
				if (out[k].idx == a->idx && out[k].fp == a->fp)
					dup = 1;
			if (!dup && n < MAX_ARGS)
				out[n++] = *a;
		}
	}
	/* insertion sort by index, integer args before float args of an index */
	for (int i = 1; i < n; i++) {
		struct argfmt t = out[i];
		int j = i - 1;

		while (j >= 0 && (out[j].fp > t.fp || (out[j].fp == t.fp && out[j].idx > t.idx))) {
			out[j + 1] = out[j];
			j--;
		}
		out[j + 1] = t;
	}
	return n;
}

/* --------------------------------------------------------- sessions, syms */

static int usym_cmp(const void *a, const void *b)
{
	const struct usym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void load_module(struct uftrace_reader *ur, struct umodule *m)
{
	char path[4200], name[512];
	const char *base = strrchr(m->path, '/') ? strrchr(m->path, '/') + 1 : m->path;
	size_t len, cap = 0;
	char *buf, *p;

	m->loaded = 1;
	snprintf(name, sizeof(name), "%s.sym", base);
	if (path_join(path, sizeof(path), ur->dir, name) < 0)
		return;
	buf = slurp(path, &len, 64u << 20);
	if (!buf)
		return;
	for (p = buf; p && *p;) {
		char *nl = strchr(p, '\n');
		unsigned long long a;
		char type;
		int pos = 0;

		if (nl)
			*nl = '\0';
		if (*p != '#' && sscanf(p, "%llx %c %n", &a, &type, &pos) == 2 && pos > 0) {
			if (m->n == cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct usym *ns = realloc(m->syms, nc * sizeof(*ns));

				if (!ns)
					break;
				m->syms = ns;
				cap = nc;
			}
			m->syms[m->n].addr = a;
			m->syms[m->n].name = (type == 'T' || type == 't' || type == 'W' ||
					      type == 'w' || type == 'P' || type == 'i')
						     ? trace_intern_str(p + pos)
						     : NULL;
			m->n++;
		}
		p = nl ? nl + 1 : NULL;
	}
	free(buf);
	if (m->n)
		qsort(m->syms, m->n, sizeof(*m->syms), usym_cmp);
}

static struct umodule *module_for(struct uftrace_reader *ur, const char *path)
{
	const char *ip = trace_intern_str(path);

	for (size_t i = 0; i < ur->nmods; i++)
		if (ur->mods[i].path == ip)
			return &ur->mods[i];
	return NULL;
}

static int load_sessions(struct uftrace_reader *ur)
{
	char path[4200];
	DIR *d = opendir(ur->dir);
	struct dirent *de;
	size_t len;

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char *buf, *p;
		struct usession *s, *ns;

		if (strncmp(de->d_name, "sid-", 4) != 0 || !strstr(de->d_name, ".map"))
			continue;
		if (path_join(path, sizeof(path), ur->dir, de->d_name) < 0)
			continue;
		buf = slurp(path, &len, 1 << 22);
		if (!buf)
			continue;
		ns = realloc(ur->sess, (ur->nsess + 1) * sizeof(*ns));
		if (!ns) {
			free(buf);
			break;
		}
		ur->sess = ns;
		s = &ur->sess[ur->nsess++];
		memset(s, 0, sizeof(*s));
		snprintf(s->sid, sizeof(s->sid), "%.*s", (int)(strlen(de->d_name) - 8),
			 de->d_name + 4);
		for (p = buf; p && *p;) {
			char *nl = strchr(p, '\n');
			unsigned long long a, b;
			int pos = 0;

			if (nl)
				*nl = '\0';
			if (sscanf(p, "%llx-%llx %*s %*s %*s %*s %n", &a, &b, &pos) == 2 &&
			    pos > 0 && p[pos] == '/') {
				char *sp = strchr(p + pos, ' ');
				struct umodule *m;
				struct umap *nm;

				if (sp)
					*sp = '\0';
				m = module_for(ur, p + pos);
				if (!m && ur->nmods < 4096) {
					struct umodule *mm =
						realloc(ur->mods, (ur->nmods + 1) * sizeof(*mm));

					if (mm) {
						ur->mods = mm;
						m = &ur->mods[ur->nmods++];
						memset(m, 0, sizeof(*m));
						m->path = trace_intern_str(p + pos);
					}
				}
				nm = realloc(s->maps, (s->nmaps + 1) * sizeof(*nm));
				if (nm && m) {
					s->maps = nm;
					s->maps[s->nmaps].start = a;
					s->maps[s->nmaps].end = b;
					s->maps[s->nmaps].mod = NULL;
					/* module pointers may move while mods grows: store index */
					s->maps[s->nmaps].mod =
						(struct umodule *)(uintptr_t)(m - ur->mods + 1);
					s->nmaps++;
				}
			}
			p = nl ? nl + 1 : NULL;
		}
		free(buf);
	}
	closedir(d);
	for (size_t i = 0; i < ur->nsess; i++)
		for (size_t j = 0; j < ur->sess[i].nmaps; j++)
			ur->sess[i].maps[j].mod = &ur->mods[(uintptr_t)ur->sess[i].maps[j].mod - 1];
	return 0;
}

static struct usession *session_by_sid(struct uftrace_reader *ur, const char *sid, size_t n)
{
	for (size_t i = 0; i < ur->nsess; i++)
		if (strlen(ur->sess[i].sid) == n && strncmp(ur->sess[i].sid, sid, n) == 0)
			return &ur->sess[i];
	return NULL;
}

static const char *field(const char *line, const char *key, size_t *n)
{
	const char *p = strstr(line, key);
	const char *e;

	if (!p)
		return NULL;
	p += strlen(key);
	e = p;
	while (*e && *e != ' ')
		e++;
	*n = (size_t)(e - p);
	return p;
}

/* task.txt: SESS (pid, sid), TASK (tid, pid), FORK (pid, ppid) */
static void load_tasks(struct uftrace_reader *ur, struct imap *pid_of, struct imap *sess_of,
		       struct imap *parent_of)
{
	char path[4200], *buf, *p;
	size_t len, n;

	if (path_join(path, sizeof(path), ur->dir, "task.txt") < 0)
		return;
	buf = slurp(path, &len, 1 << 24);
	if (!buf)
		return;
	for (p = buf; p && *p;) {
		char *nl = strchr(p, '\n');
		const char *v;

		if (nl)
			*nl = '\0';
		if (strncmp(p, "SESS ", 5) == 0) {
			const char *sid = field(p, "sid=", &n);
			long pid = (v = field(p, "pid=", &len)) ? strtol(v, NULL, 10) : 0;
			struct usession *s = sid ? session_by_sid(ur, sid, n) : NULL;

			if (s) {
				s->pid = (int32_t)pid;
				/* the last session of a pid wins: an exec replaces the image */
				imap_put(sess_of, (uint64_t)pid, (uint64_t)(uintptr_t)s);
			}
		} else if (strncmp(p, "TASK ", 5) == 0) {
			long tid = (v = field(p, "tid=", &n)) ? strtol(v, NULL, 10) : 0;
			long pid = (v = field(p, "pid=", &n)) ? strtol(v, NULL, 10) : tid;

			imap_put(pid_of, (uint64_t)tid, (uint64_t)pid);
		} else if (strncmp(p, "FORK ", 5) == 0) {
			long pid = (v = field(p, "pid=", &n)) ? strtol(v, NULL, 10) : 0;
			long ppid = (v = field(p, "ppid=", &n)) ? strtol(v, NULL, 10) : 0;

			imap_put(parent_of, (uint64_t)pid, (uint64_t)ppid);
		}
		p = nl ? nl + 1 : NULL;
	}
	free(buf);
}

static const char *resolve(struct uftrace_reader *ur, struct usession *s, uint64_t addr, char *tmp,
			   size_t tmplen)
{
	if (s) {
		for (size_t i = 0; i < s->nmaps; i++) {
			struct umap *m = &s->maps[i];

			if (addr < m->start || addr >= m->end)
				continue;
			if (!m->mod->loaded)
				load_module(ur, m->mod);
			uint64_t rel = addr - m->start;
			size_t lo = 0, hi = m->mod->n;

			if (hi && rel >= m->mod->syms[0].addr) {
				while (hi - lo > 1) {
					size_t mid = (lo + hi) / 2;

					if (m->mod->syms[mid].addr <= rel)
						lo = mid;
					else
						hi = mid;
				}
				if (m->mod->syms[lo].name)
					return m->mod->syms[lo].name;
			}
			const char *base = strrchr(m->mod->path, '/');

			snprintf(tmp, tmplen, "%s+0x%llx", base ? base + 1 : m->mod->path,
				 (unsigned long long)rel);
			ur->base.st.unresolved++;
			return trace_intern_str(tmp);
		}
	}
	snprintf(tmp, tmplen, "0x%llx", (unsigned long long)addr);
	ur->base.st.unresolved++;
	return trace_intern_str(tmp);
}

/* ---------------------------------------------------------------- tasks */

static int task_need(struct utask *t, size_t n)
{
	if (t->len - t->pos >= n)
		return 1;
	if (t->eof)
		return 0;
	memmove(t->buf, t->buf + t->pos, t->len - t->pos);
	t->len -= t->pos;
	t->pos = 0;
	while (t->len < n && !t->eof) {
		ssize_t r = read(t->fd, t->buf + t->len, TASK_BUF - t->len);

		if (r <= 0) {
			t->eof = 1;
		} else {
			t->len += (size_t)r;
			*t->bytes += (uint64_t)r;
		}
	}
	return t->len - t->pos >= n;
}

static int64_t sign_extend(uint64_t v, int size)
{
	if (size >= 8)
		return (int64_t)v;
	uint64_t m = 1ULL << (size * 8 - 1);

	v &= (m << 1) - 1;
	return (int64_t)((v ^ m) - m);
}

/* Reads the data after a `more` record. Returns 0, -EIO (short), -ENOTSUP. */
static int task_read_more(struct uftrace_reader *ur, struct utask *t, const char *name)
{
	struct argfmt fm[MAX_ARGS];
	size_t total = 0, out = 0;
	int n;

	t->argtext[0] = '\0';
	t->has_ret = 0;
	if (t->type == UFT_EVENT) {
		uint16_t len;

		if (!task_need(t, 2))
			return -EIO;
		memcpy(&len, t->buf + t->pos, 2);
		total = 2u + len;
		if (total % 8)
			total += 8 - total % 8;
		if (!task_need(t, total))
			return -EIO;
		t->pos += total;
		return 0;
	}
	n = formats_for(ur, name, t->type == UFT_EXIT, fm);
	if (n == 0)
		return -ENOTSUP;
	for (int i = 0; i < n; i++) {
		size_t size = (size_t)fm[i].size, pre = 0;
		uint64_t v = 0;

		if (fm[i].fmt == 's') {
			uint16_t slen;

			if (!task_need(t, total + 2))
				return -EIO;
			memcpy(&slen, t->buf + t->pos + total, 2);
			pre = 2;
			size = slen;
		}
		if ((total + pre + size) % 4)
			size += 4 - (total + pre + size) % 4;
		if (!task_need(t, total + pre + size))
			return -EIO;
		if (fm[i].fmt == 's') {
			const char *s = (const char *)t->buf + t->pos + total + pre;
			uint16_t slen;

			memcpy(&slen, t->buf + t->pos + total, 2);
			if (out < sizeof(t->argtext) - 8)
				out += (size_t)snprintf(t->argtext + out, sizeof(t->argtext) - out,
							"%s\"%.*s\"", out ? ", " : "",
							(int)(slen < 200 ? slen : 200), s);
		} else {
			size_t k = fm[i].size < 8 ? (size_t)fm[i].size : 8;
			int64_t sv;

			memcpy(&v, t->buf + t->pos + total, k);
			sv = fm[i].fmt == 'd' ? sign_extend(v, fm[i].size) : (int64_t)v;
			if (fm[i].idx == 0) {
				t->retval = fm[i].fmt == 'f' ? 0 : sv;
				t->has_ret = fm[i].fmt != 'f';
			}
			if (out < sizeof(t->argtext) - 32) {
				if (fm[i].fmt == 'x')
					out += (size_t)snprintf(
						t->argtext + out, sizeof(t->argtext) - out,
						"%s0x%llx", out ? ", " : "", (unsigned long long)v);
				else if (fm[i].fmt == 'u')
					out += (size_t)snprintf(
						t->argtext + out, sizeof(t->argtext) - out,
						"%s%llu", out ? ", " : "", (unsigned long long)v);
				else if (fm[i].fmt == 'f' || fm[i].fmt == 'c')
					out += (size_t)snprintf(
						t->argtext + out, sizeof(t->argtext) - out,
						"%s0x%llx", out ? ", " : "", (unsigned long long)v);
				else
					out += (size_t)snprintf(t->argtext + out,
								sizeof(t->argtext) - out, "%s%lld",
								out ? ", " : "", (long long)sv);
			}
		}
		total += pre + size;
	}
	if (total % 8)
		total += 8 - total % 8;
	if (!task_need(t, total))
		return -EIO;
	t->pos += total;
	return 0;
}

/* Decode the task's next record into it. 1 ok, 0 end, <0 error. */
static int task_advance(struct uftrace_reader *ur, struct utask *t)
{
	uint64_t w;
	char tmp[256];

	for (;;) {
		if (!task_need(t, 16))
			return 0;
		memcpy(&t->time, t->buf + t->pos, 8);
		memcpy(&w, t->buf + t->pos + 8, 8);
		t->pos += 16;
		t->type = (unsigned)(w & 3);
		t->more = (unsigned)((w >> 2) & 1);
		t->depth = (unsigned)((w >> 6) & 0x3ff);
		t->addr = (w >> 16) & 0xffffffffffffULL;
		if (((w >> 3) & 7) != 5) {
			ur->base.st.skipped++;
			return 0; /* not a v4 record: the rest of this file is not usable */
		}
		t->argtext[0] = '\0';
		t->has_ret = 0;
		if (t->more) {
			const char *name = t->type == UFT_EVENT ? ""
								: resolve(ur, t->sess, t->addr, tmp,
									  sizeof(tmp));
			int rc = task_read_more(ur, t, name);

			if (rc == -ENOTSUP) {
				snprintf(
					ur->base.err, sizeof(ur->base.err),
					"%.200s: arguments of %.100s are recorded but their layout "
					"is "
					"unknown (%s); read this trace with `uftrace dump` instead",
					ur->dir, name,
					ur->unsupported ? ur->unsupported
							: "no matching -A/-R spec");
				return -ENOTSUP;
			}
			if (rc < 0)
				return 0;
		}
		if (t->type == UFT_EVENT)
			continue;
		return 1;
	}
}

static int task_before(const struct utask *a, const struct utask *b)
{
	if (a->time != b->time)
		return a->time < b->time;
	return a->tid < b->tid;
}

static void heap_up(struct uftrace_reader *ur, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		struct utask *t;

		if (!task_before(ur->heap[i], ur->heap[p]))
			break;
		t = ur->heap[i];
		ur->heap[i] = ur->heap[p];
		ur->heap[p] = t;
		i = p;
	}
}

static void heap_down(struct uftrace_reader *ur, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct utask *t;

		if (l < ur->nheap && task_before(ur->heap[l], ur->heap[m]))
			m = l;
		if (r < ur->nheap && task_before(ur->heap[r], ur->heap[m]))
			m = r;
		if (m == i)
			break;
		t = ur->heap[i];
		ur->heap[i] = ur->heap[m];
		ur->heap[m] = t;
		i = m;
	}
}

static int uft_next(struct trace_reader *r, struct trace_event *ev)
{
	struct uftrace_reader *ur = (struct uftrace_reader *)r;
	struct utask *t;
	char tmp[256];
	int rc;

	if (ur->nheap == 0)
		return 0;
	t = ur->heap[0];
	trace_event_init(ev);
	ev->ts = t->time;
	ev->pid = t->pid;
	ev->tid = t->tid;
	ev->depth = (int32_t)t->depth;
	if (t->type == UFT_LOST) {
		ev->kind = TRACE_LOST;
		ev->name = trace_intern_str("lost");
		ev->count = t->addr;
		r->st.lost += t->addr;
		for (unsigned i = 0; i < t->cap; i++)
			t->stack[i] = NO_TS;
	} else {
		ev->addr = t->addr;
		ev->name = resolve(ur, t->sess, t->addr, tmp, sizeof(tmp));
		if (t->argtext[0]) {
			snprintf(ur->args_out, sizeof(ur->args_out), "%s", t->argtext);
			ev->args = ur->args_out;
		}
		if (t->type == UFT_ENTRY) {
			ev->kind = TRACE_ENTER;
			if (t->depth >= t->cap && t->depth < 65536) {
				unsigned nc = t->cap ? t->cap : 64;
				uint64_t *ns;

				while (nc <= t->depth)
					nc *= 2;
				ns = realloc(t->stack, nc * sizeof(*ns));
				if (ns) {
					for (unsigned i = t->cap; i < nc; i++)
						ns[i] = NO_TS;
					t->stack = ns;
					t->cap = nc;
				}
			}
			if (t->depth < t->cap)
				t->stack[t->depth] = t->time;
		} else {
			ev->kind = TRACE_EXIT;
			if (t->has_ret) {
				ev->ret = t->retval;
				ev->flags |= TRACE_F_RET;
			}
			if (t->depth < t->cap && t->stack[t->depth] != NO_TS &&
			    t->time >= t->stack[t->depth]) {
				ev->dur = t->time - t->stack[t->depth];
				ev->flags |= TRACE_F_DUR;
				t->stack[t->depth] = NO_TS;
			}
		}
	}
	rc = task_advance(ur, t);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		heap_down(ur, 0);
	} else {
		ur->heap[0] = ur->heap[--ur->nheap];
		if (ur->nheap)
			heap_down(ur, 0);
	}
	return 1;
}

static void uft_close(struct trace_reader *r)
{
	struct uftrace_reader *ur = (struct uftrace_reader *)r;

	for (size_t i = 0; i < ur->ntasks; i++) {
		if (ur->tasks[i].fd >= 0)
			close(ur->tasks[i].fd);
		free(ur->tasks[i].buf);
		free(ur->tasks[i].stack);
	}
	free(ur->tasks);
	free(ur->heap);
	for (size_t i = 0; i < ur->nsess; i++)
		free(ur->sess[i].maps);
	free(ur->sess);
	for (size_t i = 0; i < ur->nmods; i++)
		free(ur->mods[i].syms);
	free(ur->mods);
	for (int i = 0; i < ur->nspecs; i++) {
		if (ur->specs[i].is_regex)
			regfree(&ur->specs[i].re);
		free(ur->specs[i].glob);
	}
	free(ur);
}

static const struct trace_reader_ops uft_ops = {uft_next, uft_close};

static void raise_nofile(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want + 64) {
		rl.rlim_cur = want + 64 < rl.rlim_max ? want + 64 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int trace_uftrace_open(const char *dir, const struct trace_read_opts *o, struct trace_reader **out,
		       char *err, size_t errlen)
{
	struct uftrace_reader *ur = calloc(1, sizeof(*ur));
	struct imap pid_of, sess_of, parent_of;
	char path[4200];
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rc;

	(void)o;
	if (!ur) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ur->base.ops = &uft_ops;
	ur->base.format = TRACE_FMT_UFTRACE;
	snprintf(ur->dir, sizeof(ur->dir), "%s", dir);
	/* a directory holding uftrace.data */
	if (path_join(path, sizeof(path), dir, "info") == 0 && stat(path, &st) < 0 &&
	    path_join(path, sizeof(path), dir, "uftrace.data/info") == 0 && stat(path, &st) == 0)
		snprintf(ur->dir, sizeof(ur->dir), "%s/uftrace.data", dir);
	rc = load_info(ur, err, errlen);
	if (rc < 0)
		goto fail;
	load_sessions(ur);
	imap_init(&pid_of, MAX_TASKS);
	imap_init(&sess_of, MAX_TASKS);
	imap_init(&parent_of, MAX_TASKS);
	load_tasks(ur, &pid_of, &sess_of, &parent_of);
	d = opendir(ur->dir);
	if (!d) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", ur->dir, strerror(errno));
		goto fail_maps;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		struct utask *nt, *t;

		if (end == de->d_name || strcmp(end, ".dat") != 0 || tid <= 0)
			continue;
		if (ur->ntasks >= MAX_TASKS) {
			ur->base.st.skipped++;
			continue;
		}
		nt = realloc(ur->tasks, (ur->ntasks + 1) * sizeof(*nt));
		if (!nt) {
			rc = -ENOMEM;
			closedir(d);
			goto fail_maps;
		}
		ur->tasks = nt;
		t = &ur->tasks[ur->ntasks++];
		memset(t, 0, sizeof(*t));
		t->fd = -1;
		t->tid = (int32_t)tid;
		t->bytes = &ur->base.st.bytes;
	}
	closedir(d);
	if (ur->ntasks == 0) {
		snprintf(err, errlen, "%s: no task data (*.dat) in this uftrace directory",
			 ur->dir);
		rc = -ENOENT;
		goto fail_maps;
	}
	raise_nofile(ur->ntasks);
	ur->heap = calloc(ur->ntasks, sizeof(*ur->heap));
	if (!ur->heap) {
		rc = -ENOMEM;
		goto fail_maps;
	}
	for (size_t i = 0; i < ur->ntasks; i++) {
		struct utask *t = &ur->tasks[i];
		uint64_t *v = imap_get(&pid_of, (uint64_t)t->tid);
		char name[64];

		t->pid = v ? (int32_t)*v : t->tid;
		for (int32_t p = t->pid, hops = 0; hops < 64; hops++) {
			uint64_t *s = imap_get(&sess_of, (uint64_t)p), *pp;

			if (s) {
				t->sess = (struct usession *)(uintptr_t)*s;
				break;
			}
			pp = imap_get(&parent_of, (uint64_t)p);
			if (!pp)
				break;
			p = (int32_t)*pp;
		}
		if (!t->sess && ur->nsess)
			t->sess = &ur->sess[0];
		snprintf(name, sizeof(name), "%d.dat", t->tid);
		if (path_join(path, sizeof(path), ur->dir, name) < 0)
			continue;
		t->fd = open(path, O_RDONLY | O_CLOEXEC);
		t->buf = malloc(TASK_BUF);
		if (t->fd < 0 || !t->buf) {
			rc = t->fd < 0 ? -errno : -ENOMEM;
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
			goto fail_maps;
		}
		rc = task_advance(ur, t);
		if (rc < 0) {
			snprintf(err, errlen, "%s", ur->base.err);
			goto fail_maps;
		}
		if (rc > 0) {
			ur->heap[ur->nheap++] = t;
			heap_up(ur, ur->nheap - 1);
		}
	}
	imap_free(&pid_of);
	imap_free(&sess_of);
	imap_free(&parent_of);
	*out = &ur->base;
	return 0;
fail_maps:
	imap_free(&pid_of);
	imap_free(&sess_of);
	imap_free(&parent_of);
fail:
	uft_close(&ur->base);
	return rc;
}
