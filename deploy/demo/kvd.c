/*
 * kvd.c - a small profile store, the service of doppel's guided demo
 * (deploy/demo/bug.sh). It has a real, latent bug that shows only under
 * particular traffic.
 *
 *   kvd --port 8080 --data DIR
 *   GET /user/N          200 and the record, 404 when there is none
 *   PUT /user/N  BODY    204; the record becomes BODY
 *
 * HTTP/1.0, one request per connection. Records are files DIR/user-N, written
 * by PUT and, in real life, by other jobs too (imports, an admin tool). So a
 * GET never trusts its cache blindly: it stat()s the file and serves the
 * cached copy only when the file has the same modification time and size as
 * when it was read.
 *
 * The bug: that check compares st_mtime, whole seconds. A record rewritten
 * within the same second as the copy in the cache, with a value of the same
 * length (records here are fixed-width), looks unchanged, and every GET
 * serves the old value until the file changes again in a later second: a
 * user who updates a record twice within a second (a retry, a double click)
 * and reads it in between keeps seeing the first update. Git calls this the
 * "racy" file problem; the fix is to compare st_mtim with its nanoseconds
 * (and to distrust a copy taken in the same second as the file's mtime).
 *
 * Single-threaded, blocking: accept, read, answer, close.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_USERS 10000
#define MAX_VALUE 256

struct cache_entry {
	int valid;
	time_t mtime; /* st_mtime of the file when it was read: whole seconds */
	off_t size;
	char value[MAX_VALUE];
};

static struct cache_entry cache[MAX_USERS];
static int data_dir = -1;
static unsigned long requests_served, cache_hits, file_reads;

static void reply(int fd, const char *status, const char *body, size_t len)
{
	char head[128];
	int n = snprintf(head, sizeof(head), "HTTP/1.0 %s\r\nContent-Length: %zu\r\n\r\n", status,
			 len);
	char out[sizeof(head) + MAX_VALUE];

	memcpy(out, head, (size_t)n);
	memcpy(out + n, body, len);
	if (write(fd, out, (size_t)n + len) < 0)
		return;
}

/* Is the cached copy of user u still what the file holds? */
static int cache_fresh(const struct cache_entry *e, const struct stat *st)
{
	return e->valid && e->mtime == st->st_mtime && e->size == st->st_size;
}

static void get_user(int fd, int u)
{
	struct cache_entry *e = &cache[u];
	char name[32];
	struct stat st;
	ssize_t n;
	int f;

	snprintf(name, sizeof(name), "user-%d", u);
	if (fstatat(data_dir, name, &st, 0) < 0) {
		reply(fd, "404 Not Found", "", 0);
		return;
	}
	if (cache_fresh(e, &st)) {
		cache_hits++;
		reply(fd, "200 OK", e->value, (size_t)e->size);
		return;
	}
	f = openat(data_dir, name, O_RDONLY | O_CLOEXEC);
	if (f < 0) {
		reply(fd, "404 Not Found", "", 0);
		return;
	}
	n = read(f, e->value, sizeof(e->value));
	close(f);
	if (n < 0) {
		reply(fd, "500 Internal Server Error", "", 0);
		return;
	}
	file_reads++;
	e->valid = 1;
	e->mtime = st.st_mtime;
	e->size = n;
	reply(fd, "200 OK", e->value, (size_t)n);
}

static void put_user(int fd, int u, const char *body, size_t len)
{
	char name[32];
	int f;

	if (len > MAX_VALUE) {
		reply(fd, "413 Payload Too Large", "", 0);
		return;
	}
	snprintf(name, sizeof(name), "user-%d", u);
	f = openat(data_dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f < 0 || write(f, body, len) != (ssize_t)len) {
		if (f >= 0)
			close(f);
		reply(fd, "500 Internal Server Error", "", 0);
		return;
	}
	close(f);
	reply(fd, "204 No Content", "", 0);
}

static void serve(int fd)
{
	char buf[4096];
	size_t have = 0;
	char *end = NULL, *body;
	size_t want = 0;
	int u;

	while (have < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			char *cl = strcasestr(buf, "\r\nContent-Length:");

			want = (size_t)(end + 4 - buf) +
			       (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (end && have >= want)
			break;
	}
	if (!end)
		return;
	body = end + 4;
	requests_served++;
	if (sscanf(buf, "GET /user/%d ", &u) == 1 && u >= 0 && u < MAX_USERS)
		get_user(fd, u);
	else if (sscanf(buf, "PUT /user/%d ", &u) == 1 && u >= 0 && u < MAX_USERS)
		put_user(fd, u, body, have - (size_t)(body - buf));
	else
		reply(fd, "400 Bad Request", "", 0);
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	const char *dir = NULL;
	int port = 0, one = 1, lfd;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--data") == 0)
			dir = argv[i + 1];
	}
	if (!port || !dir) {
		fprintf(stderr, "usage: kvd --port PORT --data DIR\n");
		return 2;
	}
	data_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (data_dir < 0) {
		perror(dir);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* As the init of its pid namespace it would ignore SIGTERM without a handler. */
	signal(SIGTERM, on_term);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin.sin_port = htons((unsigned short)port);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 128) < 0) {
		perror("listen");
		return 1;
	}
	printf("kvd: serving %s on 127.0.0.1:%d\n", dir, port);
	fflush(stdout);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("accept4");
			return 1;
		}
		serve(fd);
		close(fd);
	}
}
