/* tcpbench: the load generator and sink of bench/proxy.sh. Every connection starts with the bytes
 * of a prefix file (a TLS ClientHello), as a client of a name-checking proxy does.
 *
 *   tcpbench sink PORT                     accepts forever: reads everything; answers the first
 *                                          read with one byte ("rate" clients wait for it)
 *   tcpbench blast ADDR PORT SECONDS FILE  one connection: the prefix, then 256 KiB writes for
 *                                          SECONDS; prints Gbit/s (until the sink closed)
 *   tcpbench rate ADDR PORT SECONDS CONC FILE
 *                                          CONC threads, each: connect, prefix, wait for the
 *                                          byte, close; prints connections/s and p50/p99 ms */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char prefix[65536];
static size_t prefix_len;
static struct sockaddr_in dst;
static double seconds;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *sink_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static char buf[1 << 18];
	bool first = true;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (first) {
			first = false;
			if (write(fd, "k", 1) != 1)
				break;
		}
	close(fd);
	return NULL;
}

static int sink(int port)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096)) {
		perror("sink");
		return 1;
	}
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64 * 1024);
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t t;
		if (pthread_create(&t, &at, sink_conn, (void *)(intptr_t)fd))
			close(fd);
	}
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
		close(fd);
		return -1;
	}
	if (write(fd, prefix, prefix_len) != (ssize_t)prefix_len) {
		close(fd);
		return -1;
	}
	return fd;
}

static int blast(void)
{
	int fd = dial();
	if (fd < 0) {
		perror("connect");
		return 1;
	}
	static char buf[1 << 18];
	memset(buf, 'x', sizeof(buf));
	double t0 = now(), end = t0 + seconds;
	unsigned long long bytes = 0;
	while (now() < end) {
		ssize_t n = write(fd, buf, sizeof(buf));
		if (n <= 0) {
			perror("write");
			return 1;
		}
		bytes += (unsigned long long)n;
	}
	shutdown(fd, SHUT_WR);
	char c;
	while (read(fd, &c, 1) > 0)
		;
	double t = now() - t0;
	printf("%.2f\n", (double)bytes * 8 / t / 1e9);
	return 0;
}

struct rstat {
	unsigned long n, failed;
	double *lat;
	size_t cap;
};

static void *rate_thread(void *arg)
{
	struct rstat *s = arg;
	double end = now() + seconds;
	while (now() < end) {
		double t0 = now();
		int fd = dial();
		char c;
		if (fd < 0 || read(fd, &c, 1) != 1) {
			s->failed++;
			if (fd >= 0)
				close(fd);
			continue;
		}
		close(fd);
		if (s->n < s->cap)
			s->lat[s->n] = (now() - t0) * 1e3;
		s->n++;
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int rate(int conc)
{
	pthread_t t[256];
	struct rstat s[256];
	for (int i = 0; i < conc; i++) {
		s[i] = (struct rstat){.cap = 1 << 20};
		s[i].lat = malloc(s[i].cap * sizeof(double));
		pthread_create(&t[i], NULL, rate_thread, &s[i]);
	}
	unsigned long n = 0, failed = 0;
	size_t k = 0;
	double *all = malloc((size_t)conc * (1 << 20) * sizeof(double));
	if (!all)
		return 1;
	for (int i = 0; i < conc; i++) {
		pthread_join(t[i], NULL);
		n += s[i].n;
		failed += s[i].failed;
		size_t m = s[i].n < s[i].cap ? s[i].n : s[i].cap;
		memcpy(all + k, s[i].lat, m * sizeof(double));
		k += m;
	}
	qsort(all, k, sizeof(double), cmp);
	printf("%.0f %.3f %.3f %lu\n", (double)n / seconds, k ? all[k / 2] : 0,
	       k ? all[k * 99 / 100] : 0, failed);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && strcmp(argv[1], "sink") == 0)
		return sink((int)strtol(argv[2], NULL, 10));
	bool is_blast = argc == 6 && strcmp(argv[1], "blast") == 0;
	bool is_rate = argc == 7 && strcmp(argv[1], "rate") == 0;
	if (!is_blast && !is_rate) {
		fprintf(stderr, "usage: tcpbench sink PORT | blast ADDR PORT SECONDS FILE | "
				"rate ADDR PORT SECONDS CONC FILE\n");
		return 2;
	}
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)(int)strtol(argv[3], NULL, 10));
	inet_pton(AF_INET, argv[2], &dst.sin_addr);
	seconds = strtod(argv[4], NULL);
	FILE *f = fopen(argv[is_blast ? 5 : 6], "rb");
	if (!f) {
		perror("prefix");
		return 2;
	}
	prefix_len = fread(prefix, 1, sizeof(prefix), f);
	fclose(f);
	if (is_blast)
		return blast();
	int conc = (int)strtol(argv[5], NULL, 10);
	return rate(conc < 1 ? 1 : conc > 256 ? 256 : conc);
}
