/*
 * page.h - the status page (admin/page.html), embedded at build time by
 * admin/embed.cmake. Private to admin/: others call admin_route_page().
 */
#ifndef DOPPEL_ADMIN_PAGE_H
#define DOPPEL_ADMIN_PAGE_H

#include <stddef.h>

extern const char admin_page_html[];
extern const size_t admin_page_len;

#endif
