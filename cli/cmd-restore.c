/*
 * cmd-restore.c - `doppel restore DIR`: bring a clone kept with `doppel
 * clone NAME --keep-images DIR` back, offline, in new namespaces
 * (clonemgr's cm_restore_kept), so that `doppel replay` can feed it the
 * traffic it received, as often as needed.
 */
#define LOG_PREFIX "restore: "
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "clonemgr/clonemgr.h"
#include "common/log.h"

static int cmd_restore_exec(int argc, char **argv);

const struct cmd_entry cmd_restore_entry = {
	.name = "restore",
	.usage = "DIR [--work-dir DIR] [--criu PATH] [--json] [--log-level LEVEL]",
	.summary = "bring back a clone kept with `doppel clone --keep-images`, offline",
	.help = "Restores the clone kept in DIR (its CRIU images and its state as of the dump)\n"
		"into new pid, net, mount, ipc and uts namespaces, like a clone restore, with a\n"
		"fresh copy of the kept state: DIR itself is not changed, so the same clone can\n"
		"be restored as often as needed (the thesis' staged record and replay). The\n"
		"restored clone runs detached; it listens on the service's port on 127.0.0.1\n"
		"inside its own network namespace, and its output goes to WORK/restore-ID/log.\n"
		"Feed it what the clone received while it was live:\n"
		"\n"
		"  doppel replay DIR/received-0001.pcap --to 127.0.0.1:PORT --netns PID\n"
		"\n"
		"and stop it with `kill PID` (it is the init of its pid namespace).\n"
		"\n"
		"options:\n"
		"  --work-dir DIR   where the restored state copy and logs go (default:\n"
		"                   DIR/restores)\n"
		"  --criu PATH      the CRIU binary (default: $DOPPEL_CRIU, else criu in $PATH,\n"
		"                   /usr/local/sbin or /usr/sbin)\n"
		"  --json           print {\"pid\":...,\"port\":...,\"dir\":...}\n"
		"  --log-level LEVEL  error, warn, info (default) or debug\n",
	.exec = cmd_restore_exec,
};

/* The clone's stdout and stderr, to its log file until it exits. */
static void pump_log(int fd, const char *dir)
{
	char path[CM_PATH_MAX + 16], buf[65536];
	pid_t pid = fork();
	int out;
	ssize_t n;

	if (pid != 0) {
		close(fd);
		return;
	}
	setsid();
	snprintf(path, sizeof(path), "%s/log", dir);
	out = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	for (int i = 0; i < 1024; i++)
		if (i != fd && i != out)
			close(i);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (out >= 0 && write(out, buf, (size_t)n) < 0)
			break;
	_exit(0);
}

static int cmd_restore_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{"work-dir", required_argument, NULL, 'w'},
		{"criu", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"log-level", required_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	const struct cmd_entry *e = &cmd_restore_entry;
	char dir[PATH_MAX], work[PATH_MAX + 16] = "", err[1024];
	const char *criu_path = NULL;
	struct cm_criu criu;
	struct cm_kept k;
	struct cm_clone c;
	int json = 0, ch;

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			snprintf(work, sizeof(work), "%s", optarg);
			break;
		case 'c':
			criu_path = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'v':
			if (cli_parse_log_level(e, optarg))
				return EXIT_USAGE;
			break;
		default:
			return cmd_usage_error(e, "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(e, "give the DIR of a kept clone");
	if (!realpath(argv[optind], dir))
		return cmd_usage_error(e, "%s: %s", argv[optind], strerror(errno));
	if (cm_kept_read(dir, &k, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel restore: %s\n", err);
		return EXIT_USAGE;
	}
	if (cm_criu_find(criu_path, &criu, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel restore: %s\n", err);
		return EXIT_RUNTIME;
	}
	if (!work[0])
		snprintf(work, sizeof(work), "%s/restores", dir);
	if (cm_restore_kept(&criu, dir, work, (unsigned)getpid(), &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "doppel restore: %s\n", err);
		return EXIT_RUNTIME;
	}
	if (c.log_fd >= 0)
		pump_log(c.log_fd, c.dir);
	if (c.netns_fd >= 0)
		close(c.netns_fd);
	if (json) {
		printf("{\"pid\":%d,\"port\":%d,\"dir\":\"%s\",\"service\":\"%s\"}\n", (int)c.pid,
		       k.port, c.dir, k.service);
	} else {
		printf("restored %s (pid %d) in %.0f ms; it listens on 127.0.0.1:%d in its own "
		       "network namespace\n"
		       "feed it:  doppel replay %s/received-0001.pcap --to 127.0.0.1:%d --netns "
		       "%d\n"
		       "stop it:  kill %d\n",
		       k.service, (int)c.pid, (double)c.restore_us / 1000, k.port, dir, k.port,
		       (int)c.pid, (int)c.pid);
	}
	return 0;
}
