/*
 * cmd-divopts.c - the divergence and recording options that `doppel proxy`
 * and `doppel run` share: --protocol, --mask, --mask-header, --record,
 * --record-file-size, --record-total.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"

void cli_div_opts_init(struct cli_div_opts *o)
{
	memset(o, 0, sizeof(*o));
	div_options_defaults(&o->div);
	rec_config_defaults(&o->rec);
}

int cli_div_opt(const struct cmd_entry *e, const char *name, const char *arg,
		struct cli_div_opts *o)
{
	if (!strcmp(name, "protocol")) {
		if (div_protocol_parse(arg, &o->div.protocol) < 0) {
			cmd_usage_error(e, "--protocol is http, resp, raw or auto, not '%s'", arg);
			return -1;
		}
	} else if (!strcmp(name, "mask")) {
		if (o->div.nmasks == DIV_MAX_MASKS) {
			cmd_usage_error(e, "at most %d --mask", DIV_MAX_MASKS);
			return -1;
		}
		o->div.masks[o->div.nmasks++] = arg;
	} else if (!strcmp(name, "mask-header")) {
		if (o->div.nheaders == DIV_MAX_HEADERS) {
			cmd_usage_error(e, "at most %d --mask-header", DIV_MAX_HEADERS);
			return -1;
		}
		o->div.headers[o->div.nheaders++] = arg;
	} else if (!strcmp(name, "record")) {
		o->record_dir = arg;
	} else if (!strcmp(name, "record-file-size")) {
		if (cli_parse_size(e, "--record-file-size", arg, &o->rec.file_size))
			return -1;
	} else if (!strcmp(name, "record-total")) {
		if (cli_parse_size(e, "--record-total", arg, &o->rec.total))
			return -1;
	} else {
		return 0;
	}
	return 1;
}

int cli_div_rules(const struct cmd_entry *e, struct cli_div_opts *o, unsigned max_turns,
		  struct div_rules **out)
{
	char err[512];

	if (max_turns)
		o->div.max_turns = max_turns;
	if (div_rules_new(&o->div, out, err, sizeof(err)) < 0) {
		cmd_usage_error(e, "%s", err);
		return -1;
	}
	return 0;
}
