// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Health checks, all on the agent's one sd-event loop, none blocking it:
 *  - tcp: a non-blocking connect, its completion read from SO_ERROR;
 *  - http/https: libcurl's multi interface, its sockets and timer driven by the loop;
 *  - exec: a child in its own process group (BACKEND_ADDR, BACKEND_PORT, BACKEND_COLOR,
 *    SERVICE in its environment), the whole group killed on timeout.
 * Each backend has one timer: the start of its next check, or while a check is in flight
 * its timeout. Checks run at a fixed rate from a start spread over the interval, so that
 * many backends do not all connect at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "agent_priv.h"

static uint64_t mono_us(sd_event *ev)
{
	uint64_t t = 0;

	sd_event_now(ev, CLOCK_MONOTONIC, &t);
	return t;
}

static int on_timer(sd_event_source *src, uint64_t usec, void *arg);

/* How late a check may start: timers within this window fire in one wake-up of the loop
 * (a thousand checks a second would otherwise be a thousand wake-ups). */
static uint64_t slack_us(const struct be_rt *be)
{
	uint64_t s = be->svc->cfg->check.interval_ms * 1000 / 50;

	return s < 1000 ? 1000 : s > 20000 ? 20000 : s;
}

static void arm(struct be_rt *be, uint64_t at_us)
{
	if (!be->timer) {
		if (sd_event_add_time(be->ag->ev, &be->timer, CLOCK_MONOTONIC, at_us, slack_us(be),
				      on_timer, be) < 0)
			agent_log(LOG_E, "%s %s: cannot arm a timer", be->svc->name, be->label);
		return;
	}
	sd_event_source_set_time(be->timer, at_us);
	sd_event_source_set_enabled(be->timer, SD_EVENT_ONESHOT);
}

/* Kill an exec check's command with its whole process group (a probe script's own children
 * go too) and reap it now: it is SIGKILLed, so the wait is short, and the next check never
 * finds it still there. Its child source goes first, so sd-event does not reap it too. */
static void kill_child(struct be_rt *be)
{
	if (be->pid <= 0)
		return;
	be->child = sd_event_source_disable_unref(be->child);
	kill(-be->pid, SIGKILL);
	while (waitpid(be->pid, NULL, 0) < 0 && errno == EINTR)
		;
	be->pid = 0;
}

/* Release what the check in flight holds (not the timer). */
static void cleanup_inflight(struct be_rt *be)
{
	be->io = sd_event_source_disable_unref(be->io);
	if (be->fd >= 0)
		close(be->fd);
	be->fd = -1;
	if (be->easy && be->in_flight)
		curl_multi_remove_handle(be->ag->curlm, be->easy);
	kill_child(be);
	be->in_flight = false;
}

static void finish(struct be_rt *be, enum check_result r, const char *why)
{
	const struct cfg_check *ck = &be->svc->cfg->check;

	cleanup_inflight(be);
	arm(be, be->started_us + ck->interval_ms * 1000);
	agent_check_done(be, r, why);
}

/* ---- tcp ---- */

static void to_sockaddr(const struct be_rt *be, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (be->ip.family == BGS_AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(be->check_port);
		sin->sin_addr.s_addr = be->ip.addr[0];
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(be->check_port);
		memcpy(&sin6->sin6_addr, be->ip.addr, 16);
		*len = sizeof(*sin6);
	}
}

static int on_tcp(sd_event_source *src, int fd, uint32_t revents, void *arg)
{
	struct be_rt *be = arg;
	int soerr = 0;
	socklen_t l = sizeof(soerr);

	(void)src;
	(void)revents;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0)
		soerr = errno;
	if (soerr)
		finish(be, CR_FAIL, strerror(soerr));
	else
		finish(be, CR_OK, NULL);
	return 0;
}

static void start_tcp(struct be_rt *be)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	to_sockaddr(be, &ss, &len);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return finish(be, CR_FAIL, strerror(errno));
	/* close with a reset: thousands of checks a second leave no TIME_WAIT behind */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	be->fd = fd;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0)
		return finish(be, CR_OK, NULL);
	if (errno != EINPROGRESS)
		return finish(be, CR_FAIL, strerror(errno));
	if (sd_event_add_io(be->ag->ev, &be->io, fd, EPOLLOUT, on_tcp, be) < 0)
		finish(be, CR_FAIL, "cannot watch the socket");
}

/* ---- http / https through libcurl multi ---- */

static void curl_check_done(struct agent *ag)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(ag->curlm, &left))) {
		struct be_rt *be = NULL;
		long code = 0;
		char why[160];

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&be);
		if (!be || !be->in_flight)
			continue;
		if (m->data.result != CURLE_OK) {
			snprintf(why, sizeof(why), "%s", curl_easy_strerror(m->data.result));
			finish(be, m->data.result == CURLE_OPERATION_TIMEDOUT ? CR_TIMEOUT :
										 CR_FAIL,
			       why);
			continue;
		}
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		if ((unsigned long)code == be->svc->cfg->check.status) {
			finish(be, CR_OK, NULL);
		} else {
			snprintf(why, sizeof(why), "HTTP status %ld, expected %u", code,
				 be->svc->cfg->check.status);
			finish(be, CR_FAIL, why);
		}
	}
}

/*
 * libcurl's sockets, by fd. A kept-alive connection is watched by libcurl only while a check
 * runs on it; its io source stays registered between checks (no epoll_ctl and no allocation
 * per check: the events asked are the same every time). A socket that becomes readable while
 * libcurl does not watch it (the server closed it) is taken out of epoll until libcurl asks
 * again; the source goes when libcurl closes the socket (CURLOPT_CLOSESOCKETFUNCTION), before
 * its fd can be reused.
 */
struct curl_sock {
	sd_event_source *src;
	bool watched; /* libcurl asked for events on it */
	bool off;     /* taken out of epoll while not watched */
};

static struct curl_sock *csock_get(struct agent *ag, curl_socket_t fd, bool grow)
{
	if (fd < 0)
		return NULL;
	if ((unsigned int)fd >= ag->ncsock) {
		unsigned int n = ag->ncsock ? ag->ncsock : 256;
		struct curl_sock *cs;

		if (!grow)
			return NULL;
		while (n <= (unsigned int)fd)
			n *= 2;
		cs = realloc(ag->csock, n * sizeof(*cs));
		if (!cs)
			return NULL;
		memset(cs + ag->ncsock, 0, (n - ag->ncsock) * sizeof(*cs));
		ag->csock = cs;
		ag->ncsock = n;
	}
	return &ag->csock[fd];
}

static int on_curl_io(sd_event_source *src, int fd, uint32_t revents, void *arg)
{
	struct agent *ag = arg;
	struct curl_sock *cs = csock_get(ag, fd, false);
	int flags = 0, running;

	if (cs && !cs->watched) {
		/* an idle kept-alive connection closed by its server: libcurl finds it dead
		 * when it next takes it from its cache */
		sd_event_source_set_enabled(src, SD_EVENT_OFF);
		cs->off = true;
		return 0;
	}
	if (revents & (EPOLLIN | EPOLLHUP))
		flags |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & EPOLLERR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(ag->curlm, fd, flags, &running);
	curl_check_done(ag);
	return 0;
}

static int on_curl_timer(sd_event_source *src, uint64_t usec, void *arg)
{
	struct agent *ag = arg;
	int running;

	(void)src;
	(void)usec;
	curl_multi_socket_action(ag->curlm, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_check_done(ag);
	return 0;
}

/* libcurl tells which sockets to watch for what */
static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct agent *ag = userp;
	struct curl_sock *cs = csock_get(ag, s, what != CURL_POLL_REMOVE);
	uint32_t ev = 0;

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		if (cs)
			cs->watched = false; /* its source stays until the socket is closed */
		return 0;
	}
	if (!cs)
		return -1;
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	cs->watched = true;
	if (cs->src) {
		/* the same events as last time: no system call */
		if (sd_event_source_set_io_events(cs->src, ev) >= 0 &&
		    (!cs->off || sd_event_source_set_enabled(cs->src, SD_EVENT_ON) >= 0)) {
			cs->off = false;
			return 0;
		}
		/* not what epoll holds (a socket closed without curl_close_cb): anew */
		cs->src = sd_event_source_disable_unref(cs->src);
	}
	if (sd_event_add_io(ag->ev, &cs->src, s, ev, on_curl_io, ag) < 0) {
		cs->src = NULL;
		return -1;
	}
	cs->off = false;
	return 0;
}

/* libcurl closes a socket: its source leaves epoll first (the fd may be reused at once) */
static int curl_close_cb(void *arg, curl_socket_t s)
{
	struct agent *ag = arg;
	struct curl_sock *cs = csock_get(ag, s, false);

	if (cs) {
		cs->src = sd_event_source_disable_unref(cs->src);
		cs->watched = cs->off = false;
	}
	return close(s);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct agent *ag = userp;

	(void)multi;
	if (timeout_ms < 0)
		return sd_event_source_set_enabled(ag->curl_timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	sd_event_source_set_time_relative(ag->curl_timer, (uint64_t)timeout_ms * 1000);
	sd_event_source_set_enabled(ag->curl_timer, SD_EVENT_ONESHOT);
	return 0;
}

/* libcurl's sockets are not close-on-exec: without this, every exec check's command would
 * hold the agent's http connections for its whole life, and a socket closed by the agent
 * would stay registered in sd-event's epoll (events for a source already freed). */
static int cloexec_socket(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	int fl = fcntl(fd, F_GETFD);

	(void)arg;
	(void)purpose;
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return CURL_SOCKOPT_ERROR;
	return CURL_SOCKOPT_OK;
}

/* The body is not looked at (libcurl would print it on stdout). */
static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

static void start_http(struct be_rt *be)
{
	const struct cfg_check *ck = &be->svc->cfg->check;

	if (!be->easy) {
		char a[64];

		be->easy = curl_easy_init();
		bgs_ip_str(&be->ip, a, sizeof(a));
		if (!be->easy ||
		    asprintf(&be->url, be->ip.family == BGS_AF_INET6 ? "%s://[%s]:%u%s" :
								      "%s://%s:%u%s",
			     ck->type == CHECK_HTTPS ? "https" : "http", a, be->check_port,
			     ck->path) < 0) {
			be->url = NULL;
			return finish(be, CR_FAIL, "out of memory");
		}
		curl_easy_setopt(be->easy, CURLOPT_URL, be->url);
		curl_easy_setopt(be->easy, CURLOPT_PRIVATE, be);
		curl_easy_setopt(be->easy, CURLOPT_WRITEFUNCTION, discard_body);
		curl_easy_setopt(be->easy, CURLOPT_SOCKOPTFUNCTION, cloexec_socket);
		curl_easy_setopt(be->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(be->easy, CURLOPT_TIMEOUT_MS, (long)ck->timeout_ms);
		curl_easy_setopt(be->easy, CURLOPT_USERAGENT, "bgagent health check");
		/* backends are checked by address: their certificates name hosts, not it */
		curl_easy_setopt(be->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(be->easy, CURLOPT_SSL_VERIFYHOST, 0L);
		curl_easy_setopt(be->easy, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(be->easy, CURLOPT_CLOSESOCKETFUNCTION, curl_close_cb);
		curl_easy_setopt(be->easy, CURLOPT_CLOSESOCKETDATA, be->ag);
	}
	if (curl_multi_add_handle(be->ag->curlm, be->easy) != CURLM_OK)
		finish(be, CR_FAIL, "libcurl refused the request");
}

/* ---- exec ---- */

static int on_child(sd_event_source *src, const siginfo_t *si, void *arg)
{
	struct be_rt *be = arg;
	bool mine = be->in_flight && be->pid == si->si_pid;
	char why[96];

	/* sd-event reaps the child after this returns */
	be->child = sd_event_source_unref(src);
	be->pid = 0;
	if (!mine)
		return 0;
	if (si->si_code == CLD_EXITED && si->si_status == 0)
		return finish(be, CR_OK, NULL), 0;
	if (si->si_code == CLD_EXITED)
		snprintf(why, sizeof(why), "command exited with status %d", si->si_status);
	else
		snprintf(why, sizeof(why), "command killed by signal %d", si->si_status);
	finish(be, CR_FAIL, why);
	return 0;
}

static void start_exec(struct be_rt *be)
{
	const struct cfg_check *ck = &be->svc->cfg->check;
	char a[64], port[8];
	pid_t pid;

	if (be->pid > 0)
		return finish(be, CR_FAIL, "the previous command has not exited yet");
	bgs_ip_str(&be->ip, a, sizeof(a));
	snprintf(port, sizeof(port), "%u", be->check_port);
	{
		const char *env[][2] = {
			{ "BACKEND_ADDR", a },
			{ "BACKEND_PORT", port },
			{ "BACKEND_COLOR", color_str(be->color) },
			{ "SERVICE", be->svc->name },
		};

		pid = spawn_sh(ck->command, env, 4);
	}
	if (pid < 0)
		return finish(be, CR_FAIL, strerror(-pid));
	be->pid = pid;
	if (sd_event_add_child(be->ag->ev, &be->child, pid, WEXITED, on_child, be) < 0) {
		agent_log(LOG_E, "%s %s: cannot watch the check command", be->svc->name,
			  be->label);
		finish(be, CR_FAIL, "cannot watch the command");
	}
}

/*
 * Run `/bin/sh -c cmd` in a process group of its own, stdin and stdout on /dev/null, with
 * the agent's environment plus env[n][2] (NAME, VALUE). The environment is built before the
 * fork: the agent has threads, so the child calls nothing but async-signal-safe functions
 * until exec. Returns the pid or a negative errno.
 */
pid_t spawn_sh(const char *cmd, const char *const env[][2], unsigned int n)
{
	extern char **environ;
	unsigned int ne = 0, k = 0;
	char **envp, *argv[] = { "sh", "-c", (char *)cmd, NULL };
	sigset_t none;
	pid_t pid;

	while (environ[ne])
		ne++;
	envp = calloc(ne + n + 1, sizeof(*envp));
	if (!envp)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++)
		if (asprintf(&envp[k], "%s=%s", env[i][0], env[i][1]) >= 0)
			k++;
	for (unsigned int i = 0; i < ne; i++) {
		bool ours = false;

		for (unsigned int j = 0; j < n && !ours; j++) {
			size_t l = strlen(env[j][0]);

			ours = !strncmp(environ[i], env[j][0], l) && environ[i][l] == '=';
		}
		if (!ours)
			envp[k++] = environ[i];
	}
	sigemptyset(&none);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	if (pid > 0)
		setpgid(pid, pid); /* from here too: kill(-pid) must find the group at once */
	for (unsigned int i = 0; i < n; i++)
		free(envp[i]);
	free(envp);
	return pid < 0 ? -errno : pid;
}

/* ---- scheduling ---- */

static void start_check(struct be_rt *be)
{
	const struct cfg_check *ck = &be->svc->cfg->check;

	be->started_us = mono_us(be->ag->ev);
	be->in_flight = true;
	arm(be, be->started_us + ck->timeout_ms * 1000);
	switch (ck->type) {
	case CHECK_TCP:
		start_tcp(be);
		break;
	case CHECK_HTTP:
	case CHECK_HTTPS:
		start_http(be);
		break;
	case CHECK_EXEC:
		start_exec(be);
		break;
	default:
		finish(be, CR_FAIL, "unknown check type");
	}
}

static int on_timer(sd_event_source *src, uint64_t usec, void *arg)
{
	struct be_rt *be = arg;

	(void)src;
	(void)usec;
	if (be->in_flight) {
		char why[64];

		snprintf(why, sizeof(why), "no answer within %llums",
			 (unsigned long long)be->svc->cfg->check.timeout_ms);
		finish(be, CR_TIMEOUT, why);
	} else {
		start_check(be);
	}
	return 0;
}

void checks_start(struct agent *ag)
{
	uint64_t now = mono_us(ag->ev);
	unsigned int total = 0, k = 0;

	for (unsigned int i = 0; i < ag->nsvc; i++)
		total += ag->svc[i].nbe;
	/* one kept-alive connection per http(s) backend: libcurl's cache would otherwise keep
	 * only a few of them (4 per transfer running), and every check would connect anew */
	curl_multi_setopt(ag->curlm, CURLMOPT_MAXCONNECTS, (long)total + 16);
	for (unsigned int i = 0; i < ag->nsvc; i++) {
		struct svc_rt *s = &ag->svc[i];
		uint64_t iv = s->cfg->check.interval_ms * 1000;

		for (unsigned int j = 0; j < s->nbe; j++, k++)
			arm(&s->be[j], now + (total ? iv * k / total : 0));
	}
}

void checks_stop_backend(struct be_rt *be)
{
	if (be->in_flight)
		cleanup_inflight(be);
	be->timer = sd_event_source_disable_unref(be->timer);
	kill_child(be);
	if (be->easy)
		curl_easy_cleanup(be->easy);
	be->easy = NULL;
	free(be->url);
	be->url = NULL;
}

int checks_init(struct agent *ag)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return -ENOMEM;
	ag->curlm = curl_multi_init();
	if (!ag->curlm)
		return -ENOMEM;
	curl_multi_setopt(ag->curlm, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(ag->curlm, CURLMOPT_SOCKETDATA, ag);
	curl_multi_setopt(ag->curlm, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(ag->curlm, CURLMOPT_TIMERDATA, ag);
	if (sd_event_add_time(ag->ev, &ag->curl_timer, CLOCK_MONOTONIC, 0, 1000, on_curl_timer,
			      ag) < 0)
		return -ENOMEM;
	return sd_event_source_set_enabled(ag->curl_timer, SD_EVENT_OFF);
}

void checks_fini(struct agent *ag)
{
	if (ag->curlm)
		curl_multi_cleanup(ag->curlm);
	ag->curlm = NULL;
	/* sockets libcurl did not close through curl_close_cb */
	for (unsigned int i = 0; i < ag->ncsock; i++)
		sd_event_source_disable_unref(ag->csock[i].src);
	free(ag->csock);
	ag->csock = NULL;
	ag->ncsock = 0;
	ag->curl_timer = sd_event_source_disable_unref(ag->curl_timer);
	curl_global_cleanup();
}
