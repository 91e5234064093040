/*
 * statesync.c - give a clone its own copy of the service's state dirs.
 *
 * One routine serves both phases of the copy (Parikshan thesis, Algorithm 1):
 * before the freeze it copies everything into an empty destination; while the
 * service is frozen (CRIU post-dump) it runs again on the same destination
 * and copies only files whose size or mtime changed, creates what is new and
 * removes what is gone. Because copies keep the source's mtime, the frozen
 * pass touches only what the service wrote since the first pass.
 *
 * Regular files are copied with copy_file_range (in-kernel; a reflink on
 * filesystems that share extents), falling back to read/write. A big file
 * that changed and that dst already has (a database's tablespace, written
 * all the time) is brought up to date block by block instead: both copies
 * are read and only the 16 KiB blocks that differ are written, so the frozen
 * pass writes what the service wrote since the pre-copy, not the whole file
 * (reading both copies from the page cache costs far less than copying).
 * Sockets are
 * skipped (a restored service binds its own), FIFOs recreated, hard links
 * copied as separate files. Depth is bounded.
 */
#define LOG_PREFIX "statesync"
#include "clonemgr/clonemgr.h"
#include "clonemgr/cm-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/log.h"

#define MAX_DEPTH 64

struct sync_ctx {
	uint64_t bytes;
	int prune; /* remove what dst has and src does not (a mirror), or only add */
	char *err;
	size_t errlen;
};

static int pwrite_all(int fd, const unsigned char *p, size_t n, off_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n, off);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t)k;
		off += k;
	}
	return 0;
}

static int copy_data(int in, int out, off_t size, uint64_t *bytes)
{
	off_t done = 0;
	int use_read = 0;

	while (done < size) {
		ssize_t n;

		if (!use_read) {
			n = copy_file_range(in, NULL, out, NULL, (size_t)(size - done), 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP)) {
				use_read = 1;
				continue;
			}
		} else {
			char buf[65536];

			n = read(in, buf, sizeof(buf));
			if (n > 0) {
				int rc = pwrite_all(out, (unsigned char *)buf, (size_t)n, done);

				if (rc)
					return rc;
			}
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break; /* the file shrank while we copied it */
		done += n;
		*bytes += (uint64_t)n;
	}
	return 0;
}

static void keep_meta(const char *dst, const struct stat *st, int is_link)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};

	if (lchown(dst, st->st_uid, st->st_gid) < 0)
		pr_debug("cannot chown %s: %s", dst, strerror(errno));
	if (!is_link && chmod(dst, st->st_mode & 07777) < 0)
		pr_debug("cannot chmod %s: %s", dst, strerror(errno));
	utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW);
}

static int copy_file(const char *src, const char *dst, const struct stat *st, struct sync_ctx *cx)
{
	int in, out, rc;

	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		if (errno == ENOENT)
			return 0; /* removed meanwhile */
		rc = -errno;
		snprintf(cx->err, cx->errlen, "cannot read %s: %s", src, strerror(errno));
		return rc;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		rc = -errno;
		snprintf(cx->err, cx->errlen, "cannot write %s: %s", dst, strerror(errno));
		close(in);
		return rc;
	}
	rc = copy_data(in, out, st->st_size, &cx->bytes);
	close(in);
	if (close(out) < 0 && !rc)
		rc = -errno;
	if (rc) {
		snprintf(cx->err, cx->errlen, "copying %s to %s: %s", src, dst, strerror(-rc));
		return rc;
	}
	keep_meta(dst, st, 0);
	return 0;
}

#define DELTA_MIN (4 << 20)    /* smaller files are copied whole */
#define DELTA_READ (1 << 20)   /* bytes read from each copy at once */
#define DELTA_BLOCK (16 << 10) /* compared and written in blocks this big */

/* dst has an older copy of src: write the blocks that differ, cut it to src's size. */
static int update_file(const char *src, const char *dst, const struct stat *st, struct sync_ctx *cx)
{
	unsigned char *a = malloc(DELTA_READ), *b = malloc(DELTA_READ);
	int in = -1, out = -1, rc = 0;
	off_t off = 0;

	if (!a || !b) {
		rc = -ENOMEM;
		goto out;
	}
	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		rc = errno == ENOENT ? 0 : -errno; /* removed meanwhile: nothing to do */
		goto out;
	}
	out = open(dst, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	while (off < st->st_size) {
		ssize_t n = pread(in, a, DELTA_READ, off), m;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0; /* 0: the file shrank meanwhile */
			break;
		}
		m = pread(out, b, (size_t)n, off);
		if (m < 0)
			m = 0;
		for (ssize_t i = 0; i < n && !rc; i += DELTA_BLOCK) {
			size_t len = (size_t)(n - i < DELTA_BLOCK ? n - i : DELTA_BLOCK);

			if (i + (ssize_t)len <= m && !memcmp(a + i, b + i, len))
				continue;
			rc = pwrite_all(out, a + i, len, off + i);
			cx->bytes += len;
		}
		if (rc)
			break;
		off += n;
	}
	if (!rc && ftruncate(out, st->st_size) < 0)
		rc = -errno;
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && !rc)
		rc = -errno;
	free(a);
	free(b);
	if (rc) {
		snprintf(cx->err, cx->errlen, "updating %s from %s: %s", dst, src, strerror(-rc));
		return rc;
	}
	keep_meta(dst, st, 0);
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP ? rmdir(path) : unlink(path))
		if (errno != ENOENT)
			pr_warn("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

int cm_rmtree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	return nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 ? -errno : 0;
}

static int sync_dir(const char *src, const char *dst, int depth, struct sync_ctx *cx);

static int sync_entry(const char *src, const char *dst, int depth, struct sync_ctx *cx)
{
	struct stat ss, ds;
	int have_dst, rc;

	if (lstat(src, &ss) < 0)
		return errno == ENOENT ? 0 : -errno;
	have_dst = lstat(dst, &ds) == 0;
	if (have_dst && (ds.st_mode & S_IFMT) != (ss.st_mode & S_IFMT)) {
		cm_rmtree(dst);
		have_dst = 0;
	}
	switch (ss.st_mode & S_IFMT) {
	case S_IFDIR:
		if (!have_dst && mkdir(dst, 0700) < 0) {
			rc = -errno;
			snprintf(cx->err, cx->errlen, "cannot create %s: %s", dst, strerror(errno));
			return rc;
		}
		rc = sync_dir(src, dst, depth + 1, cx);
		if (!rc)
			keep_meta(dst, &ss, 0);
		return rc;
	case S_IFREG:
		if (have_dst && ds.st_size == ss.st_size &&
		    ds.st_mtim.tv_sec == ss.st_mtim.tv_sec &&
		    ds.st_mtim.tv_nsec == ss.st_mtim.tv_nsec)
			return 0;
		if (have_dst && ss.st_size >= DELTA_MIN && ds.st_size >= DELTA_MIN)
			return update_file(src, dst, &ss, cx);
		return copy_file(src, dst, &ss, cx);
	case S_IFLNK: {
		char a[PATH_MAX], b[PATH_MAX];
		ssize_t na = readlink(src, a, sizeof(a) - 1), nb = -1;

		if (na < 0)
			return 0;
		a[na] = '\0';
		if (have_dst) {
			nb = readlink(dst, b, sizeof(b) - 1);
			if (nb >= 0)
				b[nb] = '\0';
			if (nb == na && strcmp(a, b) == 0)
				return 0;
			unlink(dst);
		}
		if (symlink(a, dst) < 0) {
			rc = -errno;
			snprintf(cx->err, cx->errlen, "cannot create symlink %s: %s", dst,
				 strerror(errno));
			return rc;
		}
		keep_meta(dst, &ss, 1);
		return 0;
	}
	case S_IFIFO:
		if (!have_dst && mkfifo(dst, ss.st_mode & 07777) < 0)
			return -errno;
		return 0;
	default:
		return 0; /* sockets, devices: not state a clone can use */
	}
}

/* Remove what dst has and src no longer has. */
static void prune(const char *src, const char *dst)
{
	DIR *d = opendir(dst);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char sp[PATH_MAX], dp[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sp, sizeof(sp), "%s/%s", src, de->d_name) >= (int)sizeof(sp) ||
		    snprintf(dp, sizeof(dp), "%s/%s", dst, de->d_name) >= (int)sizeof(dp))
			continue;
		if (lstat(sp, &st) < 0 && errno == ENOENT)
			cm_rmtree(dp);
	}
	closedir(d);
}

static int sync_dir(const char *src, const char *dst, int depth, struct sync_ctx *cx)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > MAX_DEPTH) {
		snprintf(cx->err, cx->errlen, "%s: more than %d levels of directories", src,
			 MAX_DEPTH);
		return -ELOOP;
	}
	d = opendir(src);
	if (!d) {
		rc = -errno;
		snprintf(cx->err, cx->errlen, "cannot read directory %s: %s", src, strerror(errno));
		return rc;
	}
	while (!rc && (de = readdir(d))) {
		char sp[PATH_MAX], dp[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sp, sizeof(sp), "%s/%s", src, de->d_name) >= (int)sizeof(sp) ||
		    snprintf(dp, sizeof(dp), "%s/%s", dst, de->d_name) >= (int)sizeof(dp)) {
			snprintf(cx->err, cx->errlen, "path too long under %s", src);
			rc = -ENAMETOOLONG;
			break;
		}
		rc = sync_entry(sp, dp, depth, cx);
	}
	closedir(d);
	if (!rc && cx->prune)
		prune(src, dst);
	return rc;
}

static int sync_tree(const char *src, const char *dst, int prune_dst, uint64_t *bytes, char *err,
		     size_t errlen)
{
	struct sync_ctx cx = {0, prune_dst, err, errlen};
	struct stat st;
	int rc;

	if (stat(src, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "state dir %s is not a directory", src);
		return -ENOTDIR;
	}
	if (mkdir(dst, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", dst, strerror(errno));
		return rc;
	}
	rc = sync_dir(src, dst, 0, &cx);
	if (!rc)
		keep_meta(dst, &st, 0);
	if (bytes)
		*bytes = cx.bytes;
	return rc;
}

int cm_state_sync(const char *src, const char *dst, uint64_t *bytes, char *err, size_t errlen)
{
	return sync_tree(src, dst, 1, bytes, err, errlen);
}

int cm_copy_into(const char *src, const char *dst, char *err, size_t errlen)
{
	return sync_tree(src, dst, 0, NULL, err, errlen);
}
