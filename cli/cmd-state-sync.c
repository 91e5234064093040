/*
 * cmd-state-sync.c - internal: run by CRIU's action script while production
 * is frozen, to bring each clone's copy of a state dir up to date.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "clonemgr/clonemgr.h"
#include "common/clock.h"

static int cmd_state_sync_exec(int argc, char **argv);

const struct cmd_entry cmd_state_sync_entry = {
	.name = "state-sync",
	.usage = "[--stats FILE] SRC DST [SRC DST]...",
	.summary = "internal: copy what changed in SRC to DST (used while production is frozen)",
	.help = "Brings DST up to date with SRC, copying only files whose size or mtime\n"
		"changed. Writes \"bytes=N us=M\" to FILE.\n",
	.exec = cmd_state_sync_exec,
	.hidden = 1,
};

static int cmd_state_sync_exec(int argc, char **argv)
{
	const char *stats = NULL;
	uint64_t t0 = clock_now_ns(), total = 0;
	int i = 1;

	if (argc > 2 && strcmp(argv[1], "--stats") == 0) {
		stats = argv[2];
		i = 3;
	}
	if ((argc - i) < 2 || (argc - i) % 2)
		return cmd_usage_error(&cmd_state_sync_entry, "give pairs of SRC DST");
	for (; i + 1 < argc; i += 2) {
		char err[512];
		uint64_t bytes = 0;

		if (cm_state_sync(argv[i], argv[i + 1], &bytes, err, sizeof(err)) < 0) {
			fprintf(stderr, "doppel state-sync: %s\n", err);
			return EXIT_RUNTIME;
		}
		total += bytes;
	}
	if (stats) {
		FILE *f = fopen(stats, "we");

		if (f) {
			fprintf(f, "bytes=%llu us=%llu\n", (unsigned long long)total,
				(unsigned long long)((clock_now_ns() - t0) / 1000));
			fclose(f);
		}
	}
	return 0;
}
