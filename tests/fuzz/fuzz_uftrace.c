/*
 * fuzz_uftrace.c - libFuzzer target for the uftrace data reader. The input is
 * cut at "\n====\n" into the files of an uftrace.data directory: the info
 * text (after a valid header), task.txt, sid-0.map, the program's .sym file
 * and a task's .dat records; they are written to a private directory and read
 * like a recording.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace/trace.h"

static char dir[64];
static const char *const names[] = {"info", "task.txt", "sid-0.map", "prog.sym", "1.dat"};

static void remove_files(void)
{
	for (int i = 0; i < 5; i++) {
		char path[128];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

/* the fuzzer leaves no directory behind */
static void cleanup(void)
{
	remove_files();
	rmdir(dir);
}

static void put(const char *name, const void *head, size_t hlen, const uint8_t *p, size_t n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return;
	if (hlen)
		fwrite(head, 1, hlen, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* magic, version 4, header size 40, little endian, 64 bit, features, info */
	static const unsigned char hdr[40] = {'F', 't', 'r', 'a', 'c', 'e', '!',  0,	4,
					      0,   0,	0,   40,  0,   1,   2,	  0x7b, 0x07,
					      0,   0,	0,   0,	  0,   0,   0xff, 0x3f};
	struct trace_read_opts ro = {.format = TRACE_FMT_UFTRACE};
	struct trace_reader *r;
	struct trace_event ev;
	const uint8_t *p = data, *end = data + size;
	char err[512];
	int part = 0;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-uftrace-%d", (int)getpid());
		if (mkdir(dir, 0700) < 0 && access(dir, W_OK) < 0)
			return 0;
		atexit(cleanup);
	}
	remove_files();
	while (part < 5) {
		const uint8_t *sep = NULL;

		for (const uint8_t *q = p; q + 6 <= end; q++)
			if (memcmp(q, "\n====\n", 6) == 0) {
				sep = q;
				break;
			}
		if (!sep || part == 4)
			sep = end;
		put(names[part], part == 0 ? hdr : NULL, part == 0 ? sizeof(hdr) : 0, p,
		    (size_t)(sep - p));
		part++;
		if (sep == end)
			break;
		p = sep + 6;
	}
	if (trace_reader_open(dir, &ro, &r, err, sizeof(err)) == 0) {
		while (trace_reader_next(r, &ev) > 0)
			;
		trace_reader_close(r);
	}
	trace_intern_reset();
	return 0;
}
