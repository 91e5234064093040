/*
 * main.c - doppel's entry point: finds the command in the table and runs it.
 * Also `doppel help [CMD]`, `doppel help --man` (the man page, from the same
 * text as --help) and `doppel version`.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"

static const struct cmd_entry *const commands[] = {
	&cmd_run_entry,	       &cmd_clone_entry,   &cmd_list_entry,   &cmd_status_entry,
	&cmd_destroy_entry,    &cmd_stop_entry,	   &cmd_attach_entry, &cmd_trace_entry,
	&cmd_window_entry,     &cmd_doctor_entry,  &cmd_proxy_entry,  &cmd_demo_entry,
	&cmd_state_sync_entry, &cmd_diverge_entry, &cmd_record_entry, &cmd_replay_entry,
	&cmd_restore_entry,    &cmd_reload_entry,  &cmd_adopt_entry,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char intro[] =
	"doppel sits in front of a service, forwards every client byte to production\n"
	"untouched, and copies the same bytes, through bounded buffers that never block\n"
	"production, to live clones of the service. Debug the clones; users keep being\n"
	"served by production.\n";

static const struct cmd_entry *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static void print_overview(FILE *out)
{
	fprintf(out, "usage: doppel COMMAND [ARGS...]\n\n%s\ncommands:\n", intro);
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!commands[i]->hidden)
			fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(out, "  %-10s %s\n", "help", "show help for a command (doppel help CMD)");
	fprintf(out, "  %-10s %s\n", "version", "print the version");
	fprintf(out, "\n'doppel help CMD' or 'doppel CMD --help' shows a command's options.\n");
}

/*
 * Help text as roff: escaped, one output line per input line. In fill mode
 * (intro, summaries) groff joins the lines into paragraphs; help bodies are
 * printed between .nf and .fi, line for line.
 */
static void man_text(const char *s)
{
	const char *line = s;

	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (len == 0) {
			printf(".PP\n");
		} else {
			if (line[0] == '.' || line[0] == '\'')
				printf("\\&");
			for (size_t i = 0; i < len; i++) {
				if (line[i] == '\\')
					printf("\\e");
				else if (line[i] == '-')
					printf("\\-");
				else
					putchar(line[i]);
			}
			putchar('\n');
		}
		if (!nl)
			break;
		line = nl + 1;
	}
}

static void print_man(void)
{
	printf(".TH DOPPEL 1 \"\" \"doppel %s\" \"User Commands\"\n", DOPPEL_VERSION);
	printf(".SH NAME\ndoppel \\- debug live clones of a production service\n");
	printf(".SH SYNOPSIS\n.B doppel\n.I COMMAND\n[\n.I ARGS...\n]\n");
	printf(".SH DESCRIPTION\n");
	man_text(intro);
	printf(".SH COMMANDS\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (commands[i]->hidden)
			continue;
		printf(".SS doppel %s\n.B doppel %s\n", commands[i]->name, commands[i]->name);
		man_text(commands[i]->usage);
		printf(".PP\n");
		man_text(commands[i]->summary);
		printf(".PP\n.nf\n");
		man_text(commands[i]->help);
		printf(".fi\n");
		for (const struct cmd_entry *const *sub = commands[i]->subs; sub && *sub; sub++) {
			printf(".SS doppel %s\n.B doppel %s\n", (*sub)->name, (*sub)->name);
			man_text((*sub)->usage);
			printf(".PP\n");
			man_text((*sub)->summary);
			printf(".PP\n.nf\n");
			man_text((*sub)->help);
			printf(".fi\n");
		}
	}
	printf(".SH EXIT STATUS\n0 success, 1 runtime failure, 2 usage or configuration error.\n");
}

/* `doppel help [CMD [SUB]]`, `doppel help --man`. */
static int help(int argc, char **argv)
{
	const struct cmd_entry *e;

	if (argc < 3) {
		print_overview(stdout);
		return 0;
	}
	if (strcmp(argv[2], "--man") == 0) {
		print_man();
		return 0;
	}
	e = find_command(argv[2]);
	if (!e) {
		fprintf(stderr, "doppel help: no command '%s'\n", argv[2]);
		print_overview(stderr);
		return EXIT_USAGE;
	}
	if (argc > 3 && e->subs) {
		for (const struct cmd_entry *const *sub = e->subs; *sub; sub++) {
			const char *sp = strchr((*sub)->name, ' ');

			if (sp && strcmp(sp + 1, argv[3]) == 0) {
				cmd_print_help(*sub);
				return 0;
			}
		}
		fprintf(stderr, "doppel help: no command '%s %s'\n", argv[2], argv[3]);
		return EXIT_USAGE;
	}
	cmd_print_help(e);
	return 0;
}

int main(int argc, char **argv)
{
	const struct cmd_entry *e;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		print_overview(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)
		return help(argc, argv);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("doppel %s\n", DOPPEL_VERSION);
		return 0;
	}
	e = find_command(argv[1]);
	if (!e) {
		fprintf(stderr, "doppel: no command '%s'\n\n", argv[1]);
		print_overview(stderr);
		return EXIT_USAGE;
	}
	for (int i = 2; i < argc && !e->subs; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cmd_print_help(e);
			return 0;
		}
	}
	return e->exec(argc - 1, argv + 1);
}
