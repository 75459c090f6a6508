/* dnslat: sequential DNS queries over UDP, one at a time, each timed; prints the median, p99 and
 * mean round trip in milliseconds and how many got no answer within a second.
 *   dnslat ADDR NAME COUNT          (the query is for NAME, type A, a new ID each time) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: dnslat ADDR NAME COUNT\n");
		return 2;
	}
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
	inet_pton(AF_INET, argv[1], &a.sin_addr);
	long n = strtol(argv[3], NULL, 10);
	uint8_t q[300];
	size_t len = 12;
	memset(q, 0, 12);
	q[2] = 1; /* RD */
	q[5] = 1; /* one question */
	for (const char *p = argv[2]; *p;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || len + l + 6 > sizeof(q))
			return 2;
		q[len++] = (uint8_t)l;
		memcpy(q + len, p, l);
		len += l;
		p += l + (dot ? 1 : 0);
	}
	q[len++] = 0;
	q[len++] = 0;
	q[len++] = 1; /* A */
	q[len++] = 0;
	q[len++] = 1; /* IN */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return 1;
	double *rtt = malloc((size_t)n * sizeof(double));
	if (!rtt)
		return 1;
	long got = 0, lost = 0;
	for (long i = 0; i < n; i++) {
		q[0] = (uint8_t)(i >> 8);
		q[1] = (uint8_t)i;
		double t0 = now();
		if (send(fd, q, len, 0) != (ssize_t)len)
			return 1;
		uint8_t r[4096];
		for (;;) {
			ssize_t k = recv(fd, r, sizeof(r), 0);
			if (k < 0) {
				lost++;
				break;
			}
			if (k >= 2 && r[0] == q[0] && r[1] == q[1]) {
				rtt[got++] = now() - t0;
				break;
			}
		}
	}
	qsort(rtt, (size_t)got, sizeof(double), cmp);
	double sum = 0;
	for (long i = 0; i < got; i++)
		sum += rtt[i];
	printf("%.4f %.4f %.4f %ld\n", got ? rtt[got / 2] : 0, got ? rtt[got * 99 / 100] : 0,
	       got ? sum / (double)got : 0, lost);
	return 0;
}
