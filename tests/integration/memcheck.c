/*
 * memcheck.c - a service whose memory checks itself, for clone tests.
 *
 *   memcheck PORT [MIB]
 *
 * It keeps writing its memory the way allocators and caches do, all the time:
 * a page of a MIB-sized (default 64) anonymous region, half of it in huge
 * pages where the kernel allows (MADV_HUGEPAGE), gets a new generation
 * number (written at both ends of the page), a page is dropped with
 * MADV_DONTNEED (it reads as zeroes again), a small region is unmapped and a
 * new one mapped, a region is moved with mremap. The generation of every page
 * is also kept in a table in other memory. A connection that sends "check"
 * gets "ok PAGES WRITES" when every page holds what the table says, else
 * "bad PAGE want W got G": a clone whose dump missed a page written before
 * the freeze (an untracked write) answers "bad".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAGE 4096UL
#define SMALL (16 * PAGE)

static uint64_t *gen; /* per page of the big region */
static unsigned char *big;
static size_t npages;
static unsigned char *small; /* remapped now and then: a new mapping */
static uint64_t small_gen;
static unsigned char *moving; /* moved with mremap now and then */
static uint64_t moving_gen;
static uint64_t writes;
static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void stamp(unsigned char *p, uint64_t g)
{
	memcpy(p, &g, sizeof(g));
	memcpy(p + PAGE - sizeof(g), &g, sizeof(g));
}

static uint64_t read_stamp(const unsigned char *p, int *torn)
{
	uint64_t a, b;

	memcpy(&a, p, sizeof(a));
	memcpy(&b, p + PAGE - sizeof(b), sizeof(b));
	*torn = a != b;
	return a;
}

static void *map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static void stamp_all(unsigned char *p, size_t n, uint64_t g)
{
	for (size_t off = 0; off < n; off += PAGE)
		stamp(p + off, g);
}

/* One step of the churn. */
static void churn(void)
{
	uint64_t r = next();
	size_t i = (size_t)(r >> 16) % npages;

	switch (r % 64) {
	case 0: /* drop a page: it reads as zeroes, generation 0 */
		madvise(big + i * PAGE, PAGE, MADV_DONTNEED);
		gen[i] = 0;
		break;
	case 1: /* a new small mapping in place of the old one */
		munmap(small, SMALL);
		small = map(SMALL);
		stamp_all(small, SMALL, ++small_gen);
		break;
	case 2: { /* move a region */
		void *to = mmap(NULL, SMALL, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *p = mremap(moving, SMALL, SMALL, MREMAP_MAYMOVE | MREMAP_FIXED, to);

		if (p == MAP_FAILED) {
			perror("mremap");
			exit(1);
		}
		moving = p;
		stamp_all(moving, SMALL, ++moving_gen);
		break;
	}
	default:
		/* the table keeps the count; the page holds count + (i << 32) */
		stamp(big + i * PAGE, ++gen[i] + ((uint64_t)i << 32));
		break;
	}
	writes++;
}

/* "ok ..." or "bad ..." into out. */
static void check(char *out, size_t len)
{
	int torn;

	for (size_t i = 0; i < npages; i++) {
		uint64_t want = gen[i] ? gen[i] + ((uint64_t)i << 32) : 0;
		uint64_t got = read_stamp(big + i * PAGE, &torn);

		if (torn || got != want) {
			snprintf(out, len, "bad page %zu want %llu got %llu%s\n", i,
				 (unsigned long long)want, (unsigned long long)got,
				 torn ? " (torn)" : "");
			return;
		}
	}
	for (size_t off = 0; off < SMALL; off += PAGE)
		if (read_stamp(small + off, &torn) != small_gen || torn) {
			snprintf(out, len, "bad small mapping at %zu\n", off / PAGE);
			return;
		}
	for (size_t off = 0; off < SMALL; off += PAGE)
		if (read_stamp(moving + off, &torn) != moving_gen || torn) {
			snprintf(out, len, "bad moved mapping at %zu\n", off / PAGE);
			return;
		}
	snprintf(out, len, "ok %zu %llu\n", npages, (unsigned long long)writes);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
	int one = 1, lfd;

	if (argc < 2) {
		fprintf(stderr, "usage: memcheck PORT [MIB]\n");
		return 2;
	}
	npages = mib * 1024 * 1024 / PAGE;
	big = map(npages * PAGE);
	/* half of it in transparent huge pages where the kernel gives them */
	madvise(big, npages * PAGE / 2, MADV_HUGEPAGE);
	gen = calloc(npages, sizeof(*gen));
	small = map(SMALL);
	moving = map(SMALL);
	stamp_all(small, SMALL, small_gen = 1);
	stamp_all(moving, SMALL, moving_gen = 1);
	if (!gen)
		return 1;
	for (size_t i = 0; i < npages; i++)
		stamp(big + i * PAGE, ++gen[i] + ((uint64_t)i << 32));
	a.sin_port = htons((uint16_t)atoi(argv[1]));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 16)) {
		perror("bind/listen");
		return 1;
	}
	for (;;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};

		for (int k = 0; k < 20; k++)
			churn(); /* about 20,000 writes a second */
		if (poll(&p, 1, 1) == 1) {
			char buf[64], out[128];
			int c = accept(lfd, NULL, NULL);
			ssize_t n;

			if (c < 0)
				continue;
			n = read(c, buf, sizeof(buf) - 1);
			if (n > 0 && !strncmp(buf, "check", 5)) {
				check(out, sizeof(out));
				if (write(c, out, strlen(out)) < 0)
					perror("write");
			}
			close(c);
		}
	}
}
