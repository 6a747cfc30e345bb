// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadgen: the soak scenarios' traffic (vm-tests/test_soak_*.sh), one epoll loop per process,
 * every buffer fixed at start (nothing allocated per request).
 *
 * loadgen server --name COLOR:ID [--tcp PORT]... [--udp PORT]... [--ready FILE]
 *   Runs in a backend's namespace. Answers every 16-byte request (TCP or UDP) with a 32-byte
 *   reply that echoes its sequence number and names the backend (COLOR:ID). A TCP request
 *   with the close flag is answered and then the server closes (it closes first, so the
 *   client's port is free again at once and the switch sees the backend's FIN).
 *
 * loadgen client --tcp ADDR:PORT [--udp ADDR:PORT] [options]   (ADDR: a.b.c.d or [IPv6])
 *   Runs in the client namespace and keeps, at once, for --duration seconds:
 *   - --long N long-lived TCP connections, each exchanging a request/response every
 *     --min-ms..--max-ms (random) and checking that every reply names the backend its first
 *     reply named (a connection that fails is counted and opened again);
 *   - --rate R new TCP connections per second (one request each), each logged to --log as
 *     "START_US END_US RESULT BACKEND SPORT" (CLOCK_REALTIME microseconds; RESULT ok,
 *     refused, reset, timeout, error; BACKEND COLOR:ID or -) so a scenario can match them
 *     against its own change times;
 *   - --udp-flows F UDP flows sending --udp-rate datagrams per second in all, with sequence
 *     numbers (each flow's backend checked): a datagram unanswered 1 s after it was sent
 *     counts as lost (udp_max_gap: the longest run of those), and if its answer comes later
 *     it moves from udp_lost to udp_late; what is unanswered at the end (1 s after the last
 *     send) stays lost.
 *   At the end it prints one line "loadgen: key=value ..." and, with --json FILE, the same
 *   figures as JSON. --ready FILE is created once every long-lived connection has had its
 *   first reply; --stop FILE ends the run early when it appears. Exit status: 0 when the run
 *   happened (the figures say how it went), 1 on a usage or setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#define REQ_LEN 16
#define REP_LEN 32
#define TAG_LEN 24
#define FLAG_CLOSE 1ULL

#define MAX_LONG 4096	    /* long-lived connections */
#define MAX_NEW 4096	    /* new connections in flight */
#define MAX_UDP 64	    /* UDP flows */
#define MAX_FDS 65536	    /* server: connections indexed by fd */
#define MAX_LISTEN 8	    /* server: ports of each kind */
#define NEW_TIMEOUT_US 3000000 /* a new connection that takes longer is a timeout */
#define LONG_TIMEOUT_US 3000000 /* a long-lived exchange that takes longer is a timeout */
#define UDP_LATE_US 1000000	/* a datagram unanswered that long is lost */
#define UDP_WINDOW 4096		/* datagrams tracked per flow (power of two) */

/* Wire format (host byte order: both ends run on this machine). */
struct req {
	uint64_t seq;
	uint64_t flags;
};
struct rep {
	uint64_t seq;
	char tag[TAG_LEN];
};

static volatile sig_atomic_t stop_sig;
static void on_signal(int sig)
{
	(void)sig;
	stop_sig = 1;
}

static uint64_t now_us(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
static uint64_t mono_us(void) { return now_us(CLOCK_MONOTONIC); }
static uint64_t real_us(void) { return now_us(CLOCK_REALTIME); }

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* HOST:PORT or [HOST6]:PORT. Every socket is AF_INET6 and dual-stack: an IPv4 address is
 * kept v4-mapped (::ffff:a.b.c.d), so the same code carries either family. */
static int parse_addr(const char *s, struct sockaddr_in6 *sa)
{
	char host[INET6_ADDRSTRLEN + 8];
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hl;
	char *end;
	long port;

	if (!colon)
		return -1;
	hl = (size_t)(colon - s);
	if (*s == '[') {
		if (hl < 2 || s[hl - 1] != ']')
			return -1;
		h = s + 1;
		hl -= 2;
	}
	if (hl >= sizeof(host) - 7)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons((uint16_t)port);
	if (h != s) {
		memcpy(host, h, hl);
		host[hl] = 0;
	} else {
		/* IPv4: v4-mapped */
		memcpy(host, "::ffff:", 7);
		memcpy(host + 7, h, hl);
		host[hl + 7] = 0;
	}
	return inet_pton(AF_INET6, host, &sa->sin6_addr) == 1 ? 0 : -1;
}

/* An AF_INET6 socket that also carries IPv4 (v4-mapped). */
static int socket_dual(int type)
{
	int fd = socket(AF_INET6, type, 0), zero = 0;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	return fd;
}

static int parse_num(const char *s, long lo, long hi, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 10);
	return (errno || *end || end == s || *v < lo || *v > hi) ? -1 : 0;
}

static void touch(const char *path)
{
	int fd;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0)
		close(fd);
}

static int ep_add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int ep_mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* ---------------------------------------------------------------- server */

struct sconn {
	uint8_t in[REQ_LEN];
	uint8_t inlen;
	bool used;
};
static struct sconn sconns[MAX_FDS];

enum { S_TCP_LISTEN = 1, S_UDP, S_CONN };
#define SDATA(kind, fd) (((uint64_t)(kind) << 32) | (uint32_t)(fd))

static void server_close(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	sconns[fd].used = false;
}

/* Read what came; answer each whole request. */
static void server_conn(int ep, int fd, const char *tag)
{
	struct sconn *c = &sconns[fd];
	uint8_t buf[4096];
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			server_close(ep, fd);
			return;
		}
		if (n < 0)
			return;
		for (ssize_t i = 0; i < n; i++) {
			c->in[c->inlen++] = buf[i];
			if (c->inlen == REQ_LEN) {
				struct req q;
				struct rep r = { 0 };

				memcpy(&q, c->in, sizeof(q));
				c->inlen = 0;
				r.seq = q.seq;
				strncpy(r.tag, tag, TAG_LEN - 1);
				/* 32 bytes into an empty socket buffer: never short */
				if (write(fd, &r, sizeof(r)) != sizeof(r) || (q.flags & FLAG_CLOSE)) {
					server_close(ep, fd);
					return;
				}
			}
		}
	}
}

static int server_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, 0, 'n' }, { "tcp", required_argument, 0, 't' },
		{ "udp", required_argument, 0, 'u' },  { "ready", required_argument, 0, 'r' },
		{ 0, 0, 0, 0 },
	};
	const char *tag = NULL, *ready = NULL;
	int tcp_ports[MAX_LISTEN], udp_ports[MAX_LISTEN], nt = 0, nu = 0, ep, o;
	struct epoll_event evs[256];
	long v;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			tag = optarg;
			break;
		case 't':
		case 'u':
			if (parse_num(optarg, 1, 65535, &v) || (o == 't' ? nt : nu) >= MAX_LISTEN) {
				fprintf(stderr, "loadgen server: bad port '%s'\n", optarg);
				return 1;
			}
			if (o == 't')
				tcp_ports[nt++] = (int)v;
			else
				udp_ports[nu++] = (int)v;
			break;
		case 'r':
			ready = optarg;
			break;
		default:
			return 1;
		}
	}
	if (!tag || strlen(tag) >= TAG_LEN || (!nt && !nu)) {
		fprintf(stderr, "loadgen server: needs --name COLOR:ID (< %d chars) and a port\n",
			TAG_LEN);
		return 1;
	}
	ep = epoll_create1(0);
	for (int i = 0; i < nt + nu; i++) {
		bool tcp = i < nt;
		int port = tcp ? tcp_ports[i] : udp_ports[i - nt], one = 1;
		int fd = socket_dual((tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK);
		struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || (tcp && listen(fd, 4096))) {
			fprintf(stderr, "loadgen server: port %d: %s\n", port, strerror(errno));
			return 1;
		}
		ep_add(ep, fd, EPOLLIN, SDATA(tcp ? S_TCP_LISTEN : S_UDP, fd));
	}
	touch(ready);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	while (!stop_sig) {
		int n = epoll_wait(ep, evs, 256, 200);

		for (int i = 0; i < n; i++) {
			int kind = (int)(evs[i].data.u64 >> 32), fd = (int)(uint32_t)evs[i].data.u64;

			if (kind == S_TCP_LISTEN) {
				int c;

				while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					if (c >= MAX_FDS) {
						close(c);
						continue;
					}
					sconns[c] = (struct sconn){ .used = true };
					ep_add(ep, c, EPOLLIN, SDATA(S_CONN, c));
				}
			} else if (kind == S_UDP) {
				struct sockaddr_in6 from;
				socklen_t fl = sizeof(from);
				struct req q;
				struct rep r = { 0 };
				ssize_t got;

				strncpy(r.tag, tag, TAG_LEN - 1);
				while ((got = recvfrom(fd, &q, sizeof(q), 0, (struct sockaddr *)&from,
						       &fl)) >= 0) {
					if (got == sizeof(q)) {
						r.seq = q.seq;
						sendto(fd, &r, sizeof(r), 0, (struct sockaddr *)&from,
						       fl);
					}
					fl = sizeof(from);
				}
			} else {
				server_conn(ep, fd, tag);
			}
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- client */

enum conn_state { C_FREE, C_CONNECTING, C_IDLE, C_WAITING };

struct cconn {
	int fd;
	enum conn_state st;
	bool is_long;
	uint64_t t0_mono;  /* connect started / request sent */
	uint64_t t0_real;  /* connect started (new connections' log) */
	uint64_t next_us;  /* long: next request */
	uint64_t seq;
	uint8_t in[REP_LEN];
	uint8_t inlen;
	char tag[TAG_LEN]; /* long: the backend of its first reply */
};

struct udpflow {
	int fd;
	uint64_t sent, recv;
	uint64_t sent_at[UDP_WINDOW]; /* mono us of seq % UDP_WINDOW; 0 answered */
	uint64_t lost_seq[UDP_WINDOW]; /* seq + 1 of the datagram settled as lost there */
	uint64_t checked;	      /* seqs below are settled (answered or lost) */
	char tag[TAG_LEN];
};

struct stats {
	uint64_t n_long, long_opened, long_ready, long_exchanges, long_failed_connects, long_resets,
		long_timeouts, long_wrong_backend, long_reopened;
	uint64_t new_started, new_ok, new_refused, new_reset, new_timeout, new_error,
		new_skipped;
	uint64_t udp_sent, udp_recv, udp_lost, udp_late, udp_wrong_backend;
	uint64_t udp_max_gap; /* longest run of consecutive lost datagrams in a flow */
	double elapsed_s;
};

static struct cconn longs[MAX_LONG];
static struct cconn news[MAX_NEW];
static struct udpflow udps[MAX_UDP];
static int free_new[MAX_NEW], n_free_new;
static struct stats st;
static FILE *conn_log;

/* epoll data: kind in the top bits, index below */
enum { K_LONG = 1, K_NEW, K_UDP };
#define CDATA(kind, i) (((uint64_t)(kind) << 32) | (uint32_t)(i))

struct client_cfg {
	struct sockaddr_in6 tcp, udp;
	bool have_tcp, have_udp;
	long n_long, min_ms, max_ms, rate, udp_flows, udp_rate;
	double duration;
	const char *ready, *stop, *json;
};

static int tcp_connect(int ep, const struct sockaddr_in6 *sa, uint64_t data)
{
	int fd = socket_dual(SOCK_STREAM | SOCK_NONBLOCK), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	ep_add(ep, fd, EPOLLOUT | EPOLLIN, data);
	return fd;
}

static void long_open(int ep, const struct client_cfg *cfg, int i)
{
	struct cconn *c = &longs[i];

	memset(c, 0, sizeof(*c));
	c->is_long = true;
	c->t0_mono = mono_us();
	c->fd = tcp_connect(ep, &cfg->tcp, CDATA(K_LONG, i));
	st.long_opened++;
	if (c->fd < 0) {
		st.long_failed_connects++;
		c->st = C_FREE;
		c->next_us = c->t0_mono + 100000; /* retry later */
		return;
	}
	c->st = C_CONNECTING;
}

/* A long-lived connection failed: count why; it is opened again soon. */
static void long_fail(int i, int why)
{
	struct cconn *c = &longs[i];

	if (why == ETIMEDOUT)
		st.long_timeouts++;
	else if (c->st == C_CONNECTING)
		st.long_failed_connects++;
	else
		st.long_resets++;
	if (c->fd >= 0)
		close(c->fd);
	/* opened again 50 ms later (not in a tight loop while a backend is dead) */
	c->fd = -1;
	c->st = C_FREE;
	c->next_us = mono_us() + 50000;
	st.long_reopened++;
}

static void send_req(struct cconn *c, uint64_t flags)
{
	struct req q = { .seq = ++c->seq, .flags = flags };

	c->inlen = 0;
	c->t0_mono = mono_us();
	if (write(c->fd, &q, sizeof(q)) != sizeof(q))
		c->st = C_FREE; /* the caller sees it */
	else
		c->st = C_WAITING;
}

/* Read the reply; returns 1 when a whole reply is in c->in, 0 not yet, -errno on failure. */
static int read_rep(struct cconn *c)
{
	ssize_t n = read(c->fd, c->in + c->inlen, REP_LEN - c->inlen);

	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	c->inlen += (uint8_t)n;
	return c->inlen == REP_LEN;
}

/* The events an fd has now (poll, no wait): for judging a connection before a timeout. */
static uint32_t ready_events(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	uint32_t ev = 0;

	if (fd < 0 || poll(&pfd, 1, 0) <= 0)
		return 0;
	if (pfd.revents & POLLIN)
		ev |= EPOLLIN;
	if (pfd.revents & POLLOUT)
		ev |= EPOLLOUT;
	if (pfd.revents & POLLERR)
		ev |= EPOLLERR;
	if (pfd.revents & POLLHUP)
		ev |= EPOLLHUP;
	return ev;
}

static int conn_error(int fd)
{
	int err = 0;
	socklen_t l = sizeof(err);

	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
	return err;
}

static void long_event(int ep, const struct client_cfg *cfg, int i, uint32_t events)
{
	struct cconn *c = &longs[i];
	struct rep r;
	int rc;

	if (c->st == C_FREE)
		return;
	if (c->st == C_CONNECTING) {
		int err = conn_error(c->fd);

		if (err || (events & (EPOLLERR | EPOLLHUP))) {
			long_fail(i, err ? err : ECONNREFUSED);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		ep_mod(ep, c->fd, EPOLLIN, CDATA(K_LONG, i));
		send_req(c, 0); /* the first exchange names its backend */
		if (c->st != C_WAITING)
			long_fail(i, ECONNRESET);
		return;
	}
	if (c->st == C_IDLE) {
		/* nothing is expected: data or a close is a failure */
		long_fail(i, ECONNRESET);
		return;
	}
	rc = read_rep(c);
	if (rc < 0) {
		long_fail(i, -rc);
		return;
	}
	if (rc == 0)
		return;
	memcpy(&r, c->in, sizeof(r));
	r.tag[TAG_LEN - 1] = 0;
	if (r.seq != c->seq) {
		long_fail(i, ECONNRESET);
		return;
	}
	if (!c->tag[0]) {
		memcpy(c->tag, r.tag, TAG_LEN);
		st.long_ready++;
	} else if (strcmp(c->tag, r.tag)) {
		st.long_wrong_backend++;
	}
	st.long_exchanges++;
	c->st = C_IDLE;
	c->next_us = mono_us() + 1000 * (uint64_t)(cfg->min_ms +
						   (long)(rnd() % (uint64_t)(cfg->max_ms - cfg->min_ms + 1)));
}

static void new_done(int ep, int i, const char *result, const char *tag)
{
	struct cconn *c = &news[i];

	if (conn_log) {
		struct sockaddr_in6 me = { 0 };
		socklen_t l = sizeof(me);

		if (c->fd >= 0)
			getsockname(c->fd, (struct sockaddr *)&me, &l);
		fprintf(conn_log, "%llu %llu %s %s %u\n", (unsigned long long)c->t0_real,
			(unsigned long long)real_us(), result, tag ? tag : "-", ntohs(me.sin6_port));
	}
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->st = C_FREE;
	free_new[n_free_new++] = i;
}

static void new_fail(int ep, int i, int err)
{
	if (err == ECONNREFUSED) {
		st.new_refused++;
		new_done(ep, i, "refused", NULL);
	} else if (err == ECONNRESET || err == EPIPE) {
		st.new_reset++;
		new_done(ep, i, "reset", NULL);
	} else if (err == ETIMEDOUT) {
		st.new_timeout++;
		new_done(ep, i, "timeout", NULL);
	} else {
		st.new_error++;
		new_done(ep, i, "error", NULL);
	}
}

static void new_start(int ep, const struct client_cfg *cfg)
{
	struct cconn *c;
	int i;

	if (!n_free_new) {
		st.new_skipped++;
		return;
	}
	i = free_new[--n_free_new];
	c = &news[i];
	memset(c, 0, sizeof(*c));
	c->t0_mono = mono_us();
	c->t0_real = real_us();
	st.new_started++;
	c->st = C_CONNECTING;
	c->fd = tcp_connect(ep, &cfg->tcp, CDATA(K_NEW, i));
	if (c->fd < 0)
		new_fail(ep, i, errno);
}

static void new_event(int ep, int i, uint32_t events)
{
	struct cconn *c = &news[i];
	struct rep r;
	int rc;

	if (c->st == C_FREE)
		return;
	if (c->st == C_CONNECTING) {
		int err = conn_error(c->fd);

		if (err || (events & (EPOLLERR | EPOLLHUP))) {
			new_fail(ep, i, err ? err : ECONNREFUSED);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		ep_mod(ep, c->fd, EPOLLIN, CDATA(K_NEW, i));
		send_req(c, FLAG_CLOSE);
		if (c->st != C_WAITING)
			new_fail(ep, i, ECONNRESET);
		return;
	}
	rc = read_rep(c);
	if (rc < 0) {
		new_fail(ep, i, -rc);
		return;
	}
	if (rc == 0)
		return;
	memcpy(&r, c->in, sizeof(r));
	r.tag[TAG_LEN - 1] = 0;
	st.new_ok++;
	new_done(ep, i, "ok", r.tag);
}

static void udp_send(struct udpflow *u)
{
	struct req q = { .seq = u->sent };

	/* the slot is reused only once its datagram is settled (udp_settle runs first) */
	if (send(u->fd, &q, sizeof(q), 0) == sizeof(q)) {
		u->sent_at[u->sent % UDP_WINDOW] = mono_us();
		u->sent++;
		st.udp_sent++;
	}
}

/* Count as lost what has waited UDP_LATE_US (or everything, at the end). */
static void udp_settle(struct udpflow *u, uint64_t now, bool all, uint64_t *run)
{
	while (u->checked < u->sent) {
		uint64_t *t = &u->sent_at[u->checked % UDP_WINDOW];

		if (*t) {
			if (!all && *t + UDP_LATE_US > now && u->sent - u->checked < UDP_WINDOW)
				break;
			st.udp_lost++;
			u->lost_seq[u->checked % UDP_WINDOW] = u->checked + 1;
			*t = 0;
			if (++*run > st.udp_max_gap)
				st.udp_max_gap = *run;
		} else {
			*run = 0;
		}
		u->checked++;
	}
}

static void udp_event(struct udpflow *u)
{
	struct rep r;

	while (recv(u->fd, &r, sizeof(r), 0) == sizeof(r)) {
		r.tag[TAG_LEN - 1] = 0;
		if (!u->tag[0])
			memcpy(u->tag, r.tag, TAG_LEN);
		else if (strcmp(u->tag, r.tag))
			st.udp_wrong_backend++;
		if (r.seq < u->checked && u->lost_seq[r.seq % UDP_WINDOW] == r.seq + 1) {
			/* answered after it was counted lost: late, not lost */
			u->lost_seq[r.seq % UDP_WINDOW] = 0;
			st.udp_lost--;
			st.udp_late++;
			continue;
		}
		if (r.seq < u->checked || r.seq >= u->sent || !u->sent_at[r.seq % UDP_WINDOW])
			continue; /* a duplicate */
		u->sent_at[r.seq % UDP_WINDOW] = 0;
		u->recv++;
		st.udp_recv++;
	}
}

static json_object *stats_json(void)
{
	json_object *o = json_object_new_object();
#define J(f) json_object_object_add(o, #f, json_object_new_int64((int64_t)st.f))
	J(n_long);
	J(long_opened);
	J(long_ready);
	J(long_exchanges);
	J(long_failed_connects);
	J(long_resets);
	J(long_timeouts);
	J(long_wrong_backend);
	J(long_reopened);
	J(new_started);
	J(new_ok);
	J(new_refused);
	J(new_reset);
	J(new_timeout);
	J(new_error);
	J(new_skipped);
	J(udp_sent);
	J(udp_recv);
	J(udp_lost);
	J(udp_late);
	J(udp_wrong_backend);
	J(udp_max_gap);
#undef J
	json_object_object_add(o, "elapsed_s", json_object_new_double(st.elapsed_s));
	json_object_object_add(o, "new_per_s",
			       json_object_new_double(st.elapsed_s > 0 ?
							      (double)st.new_started / st.elapsed_s :
							      0));
	return o;
}

static int client_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", required_argument, 0, 't' },	  { "udp", required_argument, 0, 'u' },
		{ "long", required_argument, 0, 'l' },	  { "min-ms", required_argument, 0, 'a' },
		{ "max-ms", required_argument, 0, 'b' },  { "rate", required_argument, 0, 'r' },
		{ "udp-flows", required_argument, 0, 'f' }, { "udp-rate", required_argument, 0, 'U' },
		{ "duration", required_argument, 0, 'd' }, { "log", required_argument, 0, 'L' },
		{ "ready", required_argument, 0, 'R' },	  { "stop", required_argument, 0, 'S' },
		{ "json", required_argument, 0, 'j' },	  { 0, 0, 0, 0 },
	};
	struct client_cfg cfg = { .n_long = 200, .min_ms = 10, .max_ms = 50, .rate = 500,
				  .udp_flows = 4, .udp_rate = 200, .duration = 10 };
	struct epoll_event evs[512];
	uint64_t start, end, next_new, next_udp, last_sweep = 0, runs[MAX_UDP] = { 0 };
	uint64_t new_period, udp_period, udp_turn = 0;
	bool ready_done = false, draining = false;
	int ep, o;
	long v;
	char *e;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 't':
		case 'u':
			if (parse_addr(optarg, o == 't' ? &cfg.tcp : &cfg.udp)) {
				fprintf(stderr, "loadgen client: bad address '%s' (want A.B.C.D:PORT or [IPV6]:PORT)\n",
					optarg);
				return 1;
			}
			*(o == 't' ? &cfg.have_tcp : &cfg.have_udp) = true;
			break;
		case 'l':
		case 'a':
		case 'b':
		case 'r':
		case 'f':
		case 'U': {
			long *dst = o == 'l' ? &cfg.n_long : o == 'a' ? &cfg.min_ms :
				    o == 'b' ? &cfg.max_ms : o == 'r' ? &cfg.rate :
				    o == 'f' ? &cfg.udp_flows : &cfg.udp_rate;
			long hi = o == 'l' ? MAX_LONG : o == 'f' ? MAX_UDP : 100000;

			if (parse_num(optarg, 0, hi, &v)) {
				fprintf(stderr, "loadgen client: bad number '%s' (0..%ld)\n", optarg,
					hi);
				return 1;
			}
			*dst = v;
			break;
		}
		case 'd':
			cfg.duration = strtod(optarg, &e);
			if (*e || cfg.duration <= 0 || cfg.duration > 3600) {
				fprintf(stderr, "loadgen client: bad duration '%s' (seconds)\n",
					optarg);
				return 1;
			}
			break;
		case 'L':
			conn_log = fopen(optarg, "w");
			if (!conn_log) {
				fprintf(stderr, "loadgen client: %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			break;
		case 'R':
			cfg.ready = optarg;
			break;
		case 'S':
			cfg.stop = optarg;
			break;
		case 'j':
			cfg.json = optarg;
			break;
		default:
			return 1;
		}
	}
	if (!cfg.have_tcp || cfg.min_ms < 1 || cfg.max_ms < cfg.min_ms ||
	    (cfg.udp_flows && !cfg.have_udp)) {
		fprintf(stderr, "loadgen client: needs --tcp ADDR:PORT (and --udp ADDR:PORT for "
				"UDP flows), 1 <= --min-ms <= --max-ms\n");
		return 1;
	}
	if (!cfg.have_udp)
		cfg.udp_flows = 0;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	rng ^= (uint64_t)getpid() << 20 ^ mono_us();
	ep = epoll_create1(0);
	for (int i = 0; i < MAX_NEW; i++)
		free_new[n_free_new++] = MAX_NEW - 1 - i;
	for (int i = 0; i < cfg.udp_flows; i++) {
		struct udpflow *u = &udps[i];

		u->fd = socket_dual(SOCK_DGRAM | SOCK_NONBLOCK);
		if (u->fd < 0 || connect(u->fd, (struct sockaddr *)&cfg.udp, sizeof(cfg.udp))) {
			fprintf(stderr, "loadgen client: udp: %s\n", strerror(errno));
			return 1;
		}
		ep_add(ep, u->fd, EPOLLIN, CDATA(K_UDP, i));
	}
	st.n_long = (uint64_t)cfg.n_long;
	start = mono_us();
	/* the long-lived connections open over the first 200 ms, not in one burst */
	for (int i = 0; i < cfg.n_long; i++) {
		longs[i].st = C_FREE;
		longs[i].fd = -1;
		longs[i].next_us = start + (uint64_t)i * 200000 / (uint64_t)cfg.n_long;
	}
	end = start + (uint64_t)(cfg.duration * 1e6);
	new_period = cfg.rate ? 1000000 / (uint64_t)cfg.rate : 0;
	udp_period = cfg.udp_rate && cfg.udp_flows ? 1000000 / (uint64_t)cfg.udp_rate : 0;
	next_new = next_udp = start;
	for (;;) {
		uint64_t now = mono_us();
		int n;

		if (!draining && (now >= end || stop_sig)) {
			draining = true;
			end = now; /* in-flight work gets NEW_TIMEOUT_US to finish */
		}
		if (draining && (now > end + NEW_TIMEOUT_US || n_free_new == MAX_NEW))
			break;
		if (!draining) {
			for (int i = 0; i < cfg.n_long; i++) {
				struct cconn *c = &longs[i];

				if (c->st == C_FREE && now >= c->next_us)
					long_open(ep, &cfg, i);
				else if (c->st == C_IDLE && now >= c->next_us) {
					send_req(c, 0);
					if (c->st != C_WAITING)
						long_fail(i, ECONNRESET);
				}
			}
			/* new connections at the rate, catching up at most 100 ms behind */
			if (new_period) {
				if (now > next_new + 100000) {
					st.new_skipped += (now - next_new - 100000) / new_period;
					next_new = now - 100000;
				}
				while (next_new <= now) {
					new_start(ep, &cfg);
					next_new += new_period;
				}
			}
			if (udp_period) {
				if (now > next_udp + 100000)
					next_udp = now - 100000;
				while (next_udp <= now) {
					udp_send(&udps[udp_turn++ % (uint64_t)cfg.udp_flows]);
					next_udp += udp_period;
				}
			}
			if (!ready_done && cfg.n_long && st.long_ready >= (uint64_t)cfg.n_long) {
				touch(cfg.ready);
				ready_done = true;
			} else if (!ready_done && !cfg.n_long) {
				touch(cfg.ready);
				ready_done = true;
			}
		}
		if (now - last_sweep >= 50000) {
			struct stat sb;

			last_sweep = now;
			/* Before anything is judged late, what is already there is read: a
			 * process the scheduler kept off the CPU for seconds finds its replies
			 * waiting, and they are not timeouts. */
			for (int i = 0; i < MAX_NEW; i++)
				if (news[i].st != C_FREE && now > news[i].t0_mono + NEW_TIMEOUT_US) {
					new_event(ep, i, ready_events(news[i].fd));
					if (news[i].st != C_FREE)
						new_fail(ep, i, ETIMEDOUT);
				}
			for (int i = 0; i < cfg.n_long; i++) {
				struct cconn *c = &longs[i];

				if (draining || (c->st != C_WAITING && c->st != C_CONNECTING) ||
				    now <= c->t0_mono + LONG_TIMEOUT_US)
					continue;
				long_event(ep, &cfg, i, ready_events(c->fd));
				if (c->st == C_WAITING && now > c->t0_mono + LONG_TIMEOUT_US)
					long_fail(i, ETIMEDOUT);
				else if (c->st == C_CONNECTING)
					long_fail(i, ECONNREFUSED);
			}
			for (int i = 0; i < cfg.udp_flows; i++) {
				udp_event(&udps[i]);
				udp_settle(&udps[i], now, false, &runs[i]);
			}
			if (cfg.stop && !stop_sig && stat(cfg.stop, &sb) == 0)
				stop_sig = 1;
		}
		n = epoll_wait(ep, evs, 512, 1);
		for (int i = 0; i < n; i++) {
			int kind = (int)(evs[i].data.u64 >> 32), idx = (int)(uint32_t)evs[i].data.u64;

			if (kind == K_LONG)
				long_event(ep, &cfg, idx, evs[i].events);
			else if (kind == K_NEW)
				new_event(ep, idx, evs[i].events);
			else
				udp_event(&udps[idx]);
		}
	}
	/* UDP: what is still unanswered 1 s after the last send is lost */
	for (uint64_t t0 = mono_us(); mono_us() - t0 < UDP_LATE_US && cfg.udp_flows;) {
		int n = epoll_wait(ep, evs, 512, 10);

		for (int i = 0; i < n; i++)
			if ((int)(evs[i].data.u64 >> 32) == K_UDP)
				udp_event(&udps[(uint32_t)evs[i].data.u64]);
	}
	for (int i = 0; i < cfg.udp_flows; i++)
		udp_settle(&udps[i], mono_us(), true, &runs[i]);
	/* a long-lived exchange still waiting at the end is no failure (the run stopped) */
	st.elapsed_s = (double)(end - start) / 1e6;
	if (conn_log)
		fclose(conn_log);
	printf("loadgen: long=%ld exchanges=%llu long_failed_connects=%llu long_resets=%llu "
	       "long_timeouts=%llu long_wrong_backend=%llu new=%llu new_ok=%llu new_refused=%llu "
	       "new_reset=%llu new_timeout=%llu new_error=%llu new_skipped=%llu new_per_s=%.1f "
	       "udp_sent=%llu udp_recv=%llu udp_lost=%llu udp_max_gap=%llu udp_late=%llu "
	       "udp_wrong_backend=%llu elapsed_s=%.1f\n",
	       cfg.n_long, (unsigned long long)st.long_exchanges,
	       (unsigned long long)st.long_failed_connects, (unsigned long long)st.long_resets,
	       (unsigned long long)st.long_timeouts, (unsigned long long)st.long_wrong_backend,
	       (unsigned long long)st.new_started, (unsigned long long)st.new_ok,
	       (unsigned long long)st.new_refused, (unsigned long long)st.new_reset,
	       (unsigned long long)st.new_timeout, (unsigned long long)st.new_error,
	       (unsigned long long)st.new_skipped,
	       st.elapsed_s > 0 ? (double)st.new_started / st.elapsed_s : 0,
	       (unsigned long long)st.udp_sent, (unsigned long long)st.udp_recv,
	       (unsigned long long)st.udp_lost, (unsigned long long)st.udp_max_gap,
	       (unsigned long long)st.udp_late, (unsigned long long)st.udp_wrong_backend,
	       st.elapsed_s);
	if (cfg.json) {
		json_object *o = stats_json();

		if (json_object_to_file_ext(cfg.json, o, JSON_C_TO_STRING_PLAIN)) {
			fprintf(stderr, "loadgen client: %s: %s\n", cfg.json, json_util_get_last_err());
			json_object_put(o);
			return 1;
		}
		json_object_put(o);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return server_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client_main(argc - 1, argv + 1);
	fprintf(stderr, "usage: loadgen server --name COLOR:ID [--tcp PORT]... [--udp PORT]... "
			"[--ready FILE]\n"
			"       loadgen client --tcp ADDR:PORT [--udp ADDR:PORT] [--long N] "
			"[--min-ms MS] [--max-ms MS]\n"
			"                      [--rate N] [--udp-flows N] [--udp-rate N] "
			"[--duration S] [--log FILE]\n"
			"                      [--ready FILE] [--stop FILE] [--json FILE]\n");
	return (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) ? 0 : 1;
}
