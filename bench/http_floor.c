// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench/http_floor CONNS ADDRS SECONDS: the floor under bgagent's HTTP checks.
 *
 * The least a process can spend on CONNS HTTP health checks a second: CONNS keep-alive
 * connections to 10.201.0.1..ADDRS port 8080 (bench/agent_idle.sh's responders), one
 * "GET /healthz" on each per second spread over the second, one epoll loop waking at most
 * every millisecond, no allocation, no parsing beyond the status line. Prints its own CPU
 * time (getrusage) over SECONDS, after one second of warm-up, as % of one core and per
 * check. bgagent's checks do more (libcurl, timeouts, the health state machine); this is the
 * kernel's loopback TCP work plus a minimal client: what no checker can go below.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage r;

	getrusage(RUSAGE_SELF, &r);
	return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec +
	       r.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n";
	int n, naddr, secs, ep, *fd;
	long sent = 0, answered = 0, failed = 0;
	double t0, m0 = 0, c0 = 0, slot;
	char buf[4096];

	if (argc != 4 || (n = atoi(argv[1])) <= 0 || (naddr = atoi(argv[2])) <= 0 ||
	    naddr > 250 || (secs = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: http_floor CONNS ADDRS(1-250) SECONDS\n");
		return 2;
	}
	fd = calloc(n, sizeof(*fd));
	ep = epoll_create1(0);
	if (!fd || ep < 0) {
		perror("http_floor");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080) };
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };
		char ip[32];

		snprintf(ip, sizeof(ip), "10.201.0.%d", i % naddr + 1);
		inet_pton(AF_INET, ip, &a.sin_addr);
		fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&a, sizeof(a)) ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &e)) {
			fprintf(stderr, "http_floor: %s:8080: ", ip);
			perror("");
			return 1;
		}
	}
	slot = 1.0 / n;
	t0 = now();
	while (now() - t0 < secs + 1) {
		struct epoll_event ev[64];
		double wait = t0 + sent * slot - now();
		int k;

		if (!m0 && now() - t0 >= 1) {
			m0 = now();
			c0 = cpu_seconds();
			answered = 0;
		}
		k = epoll_wait(ep, ev, 64, wait > 0 ? (int)(wait * 1000) + 1 : 1);
		for (int j = 0; j < k; j++) {
			ssize_t r = read(fd[ev[j].data.u32], buf, sizeof(buf));

			if (r >= 7 && !memcmp(buf, "HTTP/1.", 7))
				answered++;
			else if (r <= 0)
				failed++;
		}
		for (double t = now(); t >= t0 + sent * slot; sent++)
			if (write(fd[sent % n], req, sizeof(req) - 1) < 0)
				failed++;
	}
	{
		double wall = now() - m0, cpu = cpu_seconds() - c0;

		printf("http_floor: %d connections, %.0f checks/s answered, %ld failed: "
		       "%.2f%% of one core, %.1f us of CPU per check\n",
		       n, answered / wall, failed, 100 * cpu / wall,
		       answered ? 1e6 * cpu / answered : 0);
	}
	return failed ? 1 : 0;
}
