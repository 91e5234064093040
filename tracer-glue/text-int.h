/*
 * text-int.h - private to tracer-glue/: pieces of the trace text format that
 * the .dtt writer, the call-tree view and the SVG writer share.
 */
#ifndef DOPPEL_TRACER_GLUE_TEXT_INT_H
#define DOPPEL_TRACER_GLUE_TEXT_INT_H

#include <stdint.h>
#include <stdio.h>

#include "tracer-glue/tracer-glue.h"

/* ns as "SECONDS.NNNNNNNNN" */
void trc_text_secs(FILE *out, uint64_t ns);
/* "[prog:]pid/tid", prog reduced to [A-Za-z0-9_.-] */
void trc_text_proc(FILE *out, const char *prog, int32_t pid, int32_t tid);
/* An event's body after its mark, as in a .dtt line. */
void trc_text_body(FILE *out, const struct trc_event *ev);
char trc_text_mark(int kind);

#endif
