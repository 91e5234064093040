/*
 * predump-mode.c - the names of the pre-dump modes (--predump auto|on|off),
 * apart from predump.c so that parsers can be linked without CRIU's driver.
 */
#include <errno.h>
#include <string.h>

#include "clonemgr/clonemgr.h"

int cm_predump_parse(const char *text, enum cm_predump *out)
{
	if (!strcmp(text, "auto"))
		*out = CM_PREDUMP_AUTO;
	else if (!strcmp(text, "on"))
		*out = CM_PREDUMP_ON;
	else if (!strcmp(text, "off"))
		*out = CM_PREDUMP_OFF;
	else
		return -EINVAL;
	return 0;
}

const char *cm_predump_name(enum cm_predump m)
{
	return m == CM_PREDUMP_ON ? "on" : m == CM_PREDUMP_OFF ? "off" : "auto";
}
