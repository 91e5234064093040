/*
 * sym-int.h - private to trace/: function symbols of ELF files (libelf),
 * for turning the addresses libdoppeltrace records into names.
 */
#ifndef DOPPEL_TRACE_SYM_INT_H
#define DOPPEL_TRACE_SYM_INT_H

#include <stddef.h>
#include <stdint.h>

struct trc_symtab;

/* Loads the functions of an ELF file (.symtab, else .dynsym). */
int trc_symtab_load(const char *path, struct trc_symtab **out, char *err, size_t errlen);
void trc_symtab_free(struct trc_symtab *t);
/* The link-time address of a byte at file offset `off` of the file, for an
 * address found in a mapping of the file: vaddr = addr - start + off_map + bias.
 * Returns the bias (p_vaddr - p_offset of the PT_LOAD holding off). */
int64_t trc_symtab_bias(const struct trc_symtab *t, uint64_t off);
/* Interned name of the function holding vaddr, or NULL. */
const char *trc_symtab_lookup(const struct trc_symtab *t, uint64_t vaddr);
size_t trc_symtab_count(const struct trc_symtab *t);

#endif
