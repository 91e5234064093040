/*
 * window_load.c - an open-loop Redis client for debug-window measurements.
 *
 * Sends EVAL requests of a fixed size and a fixed CPU cost over one
 * connection, at times drawn from a chosen arrival process (Poisson,
 * evenly spaced, or Markov-modulated bursts), without waiting for answers:
 * the traffic a proxy sees from a busy client, independent of how fast
 * anyone answers. Answers are read and counted on the side.
 *
 *   window-load --connect 127.0.0.1:7301 --rate 400 [--traffic poisson|det|mmpp:R/T,...]
 *               [--duration 60] [--count N] [--size 1000] [--work 100000] [--seed 1]
 *               [--log arrivals.txt]
 *
 * Each request is `EVAL <loop WORK times> 0 WORK <padding>`, padded to
 * --size bytes on the wire, written with one send() (TCP_NODELAY), so one
 * request is one TCP segment. --log writes "SECONDS BYTES" per request
 * (relative to the start), the text format `doppel window --arrivals` reads.
 * SIGTERM or SIGINT stops sending; the summary (JSON on stdout) is printed
 * either way:
 *   {"start_mono":..., "sent":..., "bytes":..., "seconds":..., "rate":...,
 *    "replies":..., "last_reply_s":..., "late_max_ms":..., "late_mean_ms":...}
 * start_mono is CLOCK_MONOTONIC at the first send, for lining up with the
 * proxy's clock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STATES 8

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 88172645463325252ULL;

static double u01(void)
{
	/* xorshift64*: plenty for arrival times */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return ((double)((rng_state * 2685821657736338717ULL) >> 11) + 1) / 9007199254740993.0;
}

static double expo(double mean)
{
	return -log(u01()) * mean;
}

struct traffic {
	int kind; /* 0 poisson, 1 det, 2 mmpp */
	double rate;
	unsigned n, st;
	double r[MAX_STATES], dwell[MAX_STATES], left;
};

static int parse_traffic(const char *s, struct traffic *t)
{
	const char *p;

	if (strcmp(s, "poisson") == 0) {
		t->kind = 0;
		return 0;
	}
	if (strcmp(s, "det") == 0) {
		t->kind = 1;
		return 0;
	}
	if (strncmp(s, "mmpp:", 5) != 0)
		return -1;
	t->kind = 2;
	t->n = 0;
	for (p = s + 5; *p;) {
		char *end;

		if (t->n == MAX_STATES)
			return -1;
		t->r[t->n] = strtod(p, &end);
		if (end == p || *end != '/' || t->r[t->n] < 0)
			return -1;
		p = end + 1;
		t->dwell[t->n] = strtod(p, &end);
		if (end == p || !(t->dwell[t->n] > 0))
			return -1;
		t->n++;
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return t->n ? 0 : -1;
}

static double next_gap(struct traffic *t)
{
	double acc = 0;

	if (t->kind == 0)
		return expo(1 / t->rate);
	if (t->kind == 1)
		return 1 / t->rate;
	for (;;) {
		double lam = t->r[t->st];
		double e = lam > 0 ? expo(1 / lam) : INFINITY;

		if (e < t->left) {
			t->left -= e;
			return acc + e;
		}
		acc += t->left;
		t->st = (t->st + 1) % t->n;
		t->left = expo(t->dwell[t->st]);
	}
}

/* The request, padded so that it is exactly `size` bytes on the wire. */
static int build_request(char *buf, size_t cap, size_t size, unsigned long work)
{
	static const char script[] = "local x=0 for i=1,tonumber(ARGV[1]) do x=x+i end return 1";
	char w[32];
	size_t fixed, pad;
	int n;

	snprintf(w, sizeof(w), "%lu", work);
	/* *5 $4 EVAL $len script $1 0 $len work $len pad */
	fixed = (size_t)snprintf(NULL, 0,
				 "*5\r\n$4\r\nEVAL\r\n$%zu\r\n%s\r\n$1\r\n0\r\n$%zu\r\n%s\r\n",
				 strlen(script), script, strlen(w), w);
	for (pad = 1; pad < size; pad++) {
		size_t total = fixed + (size_t)snprintf(NULL, 0, "$%zu\r\n", pad) + pad + 2;

		if (total == size)
			break;
		if (total > size)
			return -1;
	}
	if (pad >= size || size >= cap)
		return -1;
	n = snprintf(buf, cap,
		     "*5\r\n$4\r\nEVAL\r\n$%zu\r\n%s\r\n$1\r\n0\r\n$%zu\r\n%s\r\n$%zu\r\n",
		     strlen(script), script, strlen(w), w, pad);
	memset(buf + n, 'p', pad);
	memcpy(buf + n + pad, "\r\n", 2);
	return (int)(n + pad + 2) == (int)size ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"connect", required_argument, NULL, 'c'},
		{"rate", required_argument, NULL, 'r'},
		{"traffic", required_argument, NULL, 't'},
		{"duration", required_argument, NULL, 'd'},
		{"count", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{"work", required_argument, NULL, 'w'},
		{"seed", required_argument, NULL, 'S'},
		{"log", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	struct traffic tr = {.kind = 0};
	const char *addr = NULL, *logpath = NULL;
	double duration = 60, t0, next, send_end, late_max = 0, late_sum = 0, last_reply = 0;
	unsigned long long count = 0, sent = 0, replies = 0, bytes = 0;
	unsigned long work = 100000;
	size_t size = 1000;
	char req[65536], rbuf[65536];
	struct sockaddr_in sa;
	FILE *logf = NULL;
	int fd, c, one = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			addr = optarg;
			break;
		case 'r':
			tr.rate = atof(optarg);
			break;
		case 't':
			if (parse_traffic(optarg, &tr) < 0) {
				fprintf(stderr,
					"window-load: --traffic poisson|det|mmpp:R/T,...\n");
				return 2;
			}
			break;
		case 'd':
			duration = atof(optarg);
			break;
		case 'n':
			count = strtoull(optarg, NULL, 10);
			break;
		case 's':
			size = (size_t)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			work = strtoul(optarg, NULL, 10);
			break;
		case 'S':
			rng_state ^= strtoull(optarg, NULL, 10) * 0x9e3779b97f4a7c15ULL;
			if (!rng_state)
				rng_state = 1;
			break;
		case 'l':
			logpath = optarg;
			break;
		default:
			fprintf(stderr,
				"window-load: see the comment at the top of bench/window_load.c\n");
			return 2;
		}
	}
	if (!addr || (tr.kind != 2 && !(tr.rate > 0))) {
		fprintf(stderr, "window-load: --connect HOST:PORT and --rate (or --traffic "
				"mmpp:...) are required\n");
		return 2;
	}
	if (build_request(req, sizeof(req), size, work) < 0) {
		fprintf(stderr,
			"window-load: cannot build a request of %zu bytes (at least ~110)\n", size);
		return 2;
	}
	{
		char host[64];
		const char *colon = strrchr(addr, ':');

		if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
			fprintf(stderr, "window-load: --connect HOST:PORT\n");
			return 2;
		}
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
			fprintf(stderr, "window-load: %s: an IPv4 address is needed\n", host);
			return 2;
		}
	}
	if (logpath) {
		logf = fopen(logpath, "w");
		if (!logf) {
			perror("window-load: --log");
			return 1;
		}
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("window-load: connect");
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (tr.kind == 2) {
		double tot = 0, u;

		for (unsigned i = 0; i < tr.n; i++)
			tot += tr.dwell[i];
		u = u01() * tot;
		for (tr.st = 0; tr.st + 1 < tr.n && u > tr.dwell[tr.st]; tr.st++)
			u -= tr.dwell[tr.st];
		tr.left = expo(tr.dwell[tr.st]);
	}
	t0 = now_s();
	next = t0;
	while (!stopping && (count ? sent < count : next - t0 < duration)) {
		double now = now_s();

		if (now >= next) {
			ssize_t w = send(fd, req, size, MSG_NOSIGNAL);

			if (w != (ssize_t)size) {
				fprintf(stderr, "window-load: send: %s\n",
					w < 0 ? strerror(errno) : "short write");
				break;
			}
			if (now - next > late_max)
				late_max = now - next;
			late_sum += now - next;
			if (logf)
				fprintf(logf, "%.9f %zu\n", now - t0, size);
			sent++;
			bytes += size;
			next += next_gap(&tr);
			continue;
		}
		{
			double wait = next - now;
			struct timespec ts = {(time_t)wait, (long)((wait - floor(wait)) * 1e9)};
			struct pollfd pfd = {fd, POLLIN, 0};

			if (ppoll(&pfd, 1, &ts, NULL) > 0) {
				ssize_t n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);

				if (n == 0) {
					fprintf(stderr,
						"window-load: the server closed the connection\n");
					stopping = 1;
				}
				for (ssize_t i = 0; i < n; i++)
					replies += rbuf[i] == '\n';
				if (n > 0)
					last_reply = now_s() - t0;
			}
		}
	}
	send_end = now_s();
	/* Collect the answers still on their way (a few seconds at most). */
	{
		double until = now_s() + 5;

		while (replies < sent && now_s() < until) {
			struct pollfd pfd = {fd, POLLIN, 0};

			if (poll(&pfd, 1, 100) > 0) {
				ssize_t n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);

				if (n <= 0)
					break;
				for (ssize_t i = 0; i < n; i++)
					replies += rbuf[i] == '\n';
				last_reply = now_s() - t0;
			}
		}
	}
	close(fd);
	if (logf)
		fclose(logf);
	{
		double el = send_end - t0;

		printf("{\"start_mono\":%.6f,\"sent\":%llu,\"bytes\":%llu,\"seconds\":%.6f,"
		       "\"rate\":%.3f,"
		       "\"replies\":%llu,\"last_reply_s\":%.6f,\"late_max_ms\":%.3f,\"late_mean_"
		       "ms\":%.4f}\n",
		       t0, sent, bytes, el, el > 0 ? (double)sent / el : 0, replies, last_reply,
		       late_max * 1e3, sent ? late_sum / (double)sent * 1e3 : 0);
	}
	return 0;
}
