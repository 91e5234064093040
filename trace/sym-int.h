/*
 * sym-int.h - private to trace/: function symbols of ELF files (libelf),
 * for turning the addresses libdoppeltrace records into names.
 */
#ifndef DOPPEL_TRACE_SYM_INT_H
#define DOPPEL_TRACE_SYM_INT_H

#include <stddef.h>
#include <stdint.h>

struct trace_symtab;

/* Loads the functions of an ELF file (.symtab, else .dynsym). */
int trace_symtab_load(const char *path, struct trace_symtab **out, char *err, size_t errlen);
void trace_symtab_free(struct trace_symtab *t);
/* The link-time address of a byte at file offset `off` of the file, for an
 * address found in a mapping of the file: vaddr = addr - start + off_map + bias.
 * Returns the bias (p_vaddr - p_offset of the PT_LOAD holding off). */
int64_t trace_symtab_bias(const struct trace_symtab *t, uint64_t off);
/* Interned name of the function holding vaddr, or NULL. */
const char *trace_symtab_lookup(const struct trace_symtab *t, uint64_t vaddr);
size_t trace_symtab_count(const struct trace_symtab *t);

#endif
