/*
 * test_statesync.c - the state dirs' frozen pass: a big file that changed is
 * brought up to date block by block (only the 16 KiB blocks that differ are
 * written, appends and truncations included), a small one is copied whole,
 * and either way the copy ends equal to the source.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "clonemgr/clonemgr.h"

#define MIB (1 << 20)

static char src[64], dst[64], fsrc[96], fdst[96];

static void write_at(const char *path, off_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

static void assert_same(const char *a, const char *b)
{
	struct stat sa, sb;
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int ca, cb;

	assert_non_null(fa);
	assert_non_null(fb);
	assert_int_equal(stat(a, &sa), 0);
	assert_int_equal(stat(b, &sb), 0);
	assert_int_equal(sa.st_size, sb.st_size);
	do {
		ca = fgetc(fa);
		cb = fgetc(fb);
		assert_int_equal(ca, cb);
	} while (ca != EOF);
	fclose(fa);
	fclose(fb);
}

static uint64_t sync_once(void)
{
	uint64_t bytes = 0;
	char err[256] = "";

	assert_int_equal(cm_state_sync(src, dst, &bytes, err, sizeof(err)), 0);
	assert_same(fsrc, fdst);
	return bytes;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* mtimes must differ from the copy's for the pass to look at the file */
static void touch_later(const char *path)
{
	struct timespec ts[2] = {{0, UTIME_NOW}, {time(NULL) + 5, 0}};

	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void a_big_changed_file_gets_only_its_changed_blocks(void **state)
{
	unsigned char *buf = malloc(8 * MIB);

	(void)state;
	snprintf(src, sizeof(src), "/tmp/doppel-sync-src.XXXXXX");
	snprintf(dst, sizeof(dst), "/tmp/doppel-sync-dst.XXXXXX");
	assert_non_null(mkdtemp(src));
	assert_non_null(mkdtemp(dst));
	snprintf(fsrc, sizeof(fsrc), "%s/ibdata", src);
	snprintf(fdst, sizeof(fdst), "%s/ibdata", dst);
	for (size_t i = 0; i < 8 * MIB; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	write_at(fsrc, 0, buf, 8 * MIB);
	assert_int_equal(sync_once(), 8 * MIB); /* the pre-copy: all of it */

	write_at(fsrc, 100, "x", 1);		  /* block 0 */
	write_at(fsrc, 5 * MIB + 20000, "yy", 2); /* one block in the sixth MiB */
	touch_later(fsrc);
	assert_int_equal(sync_once(), 2 * 16384);

	write_at(fsrc, 8 * MIB, "appended", 8); /* a new, short last block */
	touch_later(fsrc);
	assert_int_equal(sync_once(), 8);

	assert_int_equal(truncate(fsrc, 6 * MIB), 0); /* shrunk: cut, nothing written */
	touch_later(fsrc);
	assert_int_equal(sync_once(), 0);

	assert_int_equal(truncate(fsrc, 1000), 0); /* now small: copied whole */
	touch_later(fsrc);
	assert_int_equal(sync_once(), 1000);
	assert_int_equal(nftw(src, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
	assert_int_equal(nftw(dst, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_big_changed_file_gets_only_its_changed_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
