/*
 * elfsym.c - function symbols of an ELF file, sorted by address, read with
 * libelf: .symtab when the file has one (unstripped programs), else .dynsym.
 * Names are interned. A lookup finds the function whose [value, value+size)
 * holds the address (or, for size 0, the nearest one below it).
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/sym-int.h"
#include "trace/trace.h"

#define MAX_LOADS 32

struct sym {
	uint64_t addr, size;
	const char *name;
};

struct trace_symtab {
	struct sym *syms;
	size_t n;
	struct {
		uint64_t off, filesz;
		int64_t bias;
	} loads[MAX_LOADS];
	size_t nloads;
};

static int sym_cmp(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* bigger first, so that dedup keeps the sized symbol */
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return 0;
}

static int read_symbols(Elf *elf, Elf_Scn *scn, GElf_Shdr *sh, struct trace_symtab *t, size_t *cap)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count;

	if (!data || sh->sh_entsize == 0)
		return 0;
	count = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym s;
		const char *name;
		int type;

		if (!gelf_getsym(data, (int)i, &s))
			break;
		type = GELF_ST_TYPE(s.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_value == 0 ||
		    s.st_shndx == SHN_UNDEF)
			continue;
		name = elf_strptr(elf, sh->sh_link, s.st_name);
		if (!name || !*name)
			continue;
		if (t->n == *cap) {
			size_t nc = *cap ? *cap * 2 : 1024;
			struct sym *ns = realloc(t->syms, nc * sizeof(*ns));

			if (!ns)
				return -ENOMEM;
			t->syms = ns;
			*cap = nc;
		}
		t->syms[t->n].addr = s.st_value;
		t->syms[t->n].size = s.st_size;
		t->syms[t->n].name = trace_intern_str(name);
		t->n++;
	}
	return 0;
}

int trace_symtab_load(const char *path, struct trace_symtab **out, char *err, size_t errlen)
{
	struct trace_symtab *t;
	Elf *elf = NULL;
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr sh_symtab, sh_dynsym;
	size_t cap = 0, nph = 0;
	int fd, rc = 0;

	*out = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		return -ENOMEM;
	}
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		snprintf(err, errlen, "%s: not an ELF file", path);
		rc = -EINVAL;
		goto fail;
	}
	if (elf_getphdrnum(elf, &nph) == 0) {
		for (size_t i = 0; i < nph && t->nloads < MAX_LOADS; i++) {
			GElf_Phdr ph;

			if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
				continue;
			t->loads[t->nloads].off = ph.p_offset;
			t->loads[t->nloads].filesz = ph.p_filesz;
			t->loads[t->nloads].bias = (int64_t)ph.p_vaddr - (int64_t)ph.p_offset;
			t->nloads++;
		}
	}
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB) {
			symtab = scn;
			sh_symtab = sh;
		} else if (sh.sh_type == SHT_DYNSYM) {
			dynsym = scn;
			sh_dynsym = sh;
		}
	}
	if (symtab)
		rc = read_symbols(elf, symtab, &sh_symtab, t, &cap);
	if (rc == 0 && dynsym)
		rc = read_symbols(elf, dynsym, &sh_dynsym, t, &cap);
	if (rc < 0) {
		snprintf(err, errlen, "%s: out of memory reading symbols", path);
		goto fail;
	}
	if (t->n) {
		size_t w = 1;

		qsort(t->syms, t->n, sizeof(*t->syms), sym_cmp);
		for (size_t i = 1; i < t->n; i++)
			if (t->syms[i].addr != t->syms[w - 1].addr)
				t->syms[w++] = t->syms[i];
		t->n = w;
	}
	elf_end(elf);
	close(fd);
	*out = t;
	return 0;
fail:
	if (elf)
		elf_end(elf);
	close(fd);
	trace_symtab_free(t);
	return rc;
}

void trace_symtab_free(struct trace_symtab *t)
{
	if (!t)
		return;
	free(t->syms);
	free(t);
}

int64_t trace_symtab_bias(const struct trace_symtab *t, uint64_t off)
{
	for (size_t i = 0; i < t->nloads; i++)
		if (off >= t->loads[i].off && off < t->loads[i].off + t->loads[i].filesz)
			return t->loads[i].bias;
	/* a mapping offset is page aligned and may precede p_offset: nearest below */
	for (size_t i = t->nloads; i-- > 0;)
		if (off <= t->loads[i].off + t->loads[i].filesz && t->loads[i].filesz)
			if (i == 0 || off >= t->loads[i - 1].off + t->loads[i - 1].filesz)
				return t->loads[i].bias;
	return 0;
}

const char *trace_symtab_lookup(const struct trace_symtab *t, uint64_t vaddr)
{
	size_t lo = 0, hi = t->n;

	if (!t->n || vaddr < t->syms[0].addr)
		return NULL;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (t->syms[mid].addr <= vaddr)
			lo = mid;
		else
			hi = mid;
	}
	if (t->syms[lo].size && vaddr >= t->syms[lo].addr + t->syms[lo].size)
		return NULL;
	return t->syms[lo].name;
}

size_t trace_symtab_count(const struct trace_symtab *t)
{
	return t->n;
}
