/* worker: one prefork worker process. It waits for a connection with
 * epoll (EPOLLEXCLUSIVE, so one idle worker wakes per connection, not all),
 * accepts it with libfcgi's reentrant API on the non-blocking listen socket,
 * runs the route's handler and writes the whole response in one FCGX_PutStr.
 * Signals stay blocked while a request runs, so SIGTERM lets it finish. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "kiln/http.h"
#include "kiln/log.h"
#include "kiln/router.h"
#include "kiln/util.h"
#include "server_int.h"

#define IDLE_WAKE_MS   1000 /* re-check flags even without traffic */
#define REFUSED_LOG_MS 1000 /* at most one "refused" line per worker this often */

static struct kiln_stats_slot *my_slot;
static sigset_t my_waitmask;
static struct kiln_req the_req;
static struct kiln_buf out;

struct kiln_stats_slot *kiln_server_slot(void)
{
	return my_slot;
}

static int fcgi_read(void *ctx, char *buf, int n)
{
	FCGX_Request *fr = ctx;
	int got = FCGX_GetStr(buf, n, fr->in);

	if (got < n && FCGX_GetError(fr->in) != 0)
		return -1;
	return got;
}

/* Route the request and run its handler; leaves the response in req->resp.
 * Returns the scoreboard route index. */
static int dispatch(struct kiln_req *req)
{
	const struct kiln_app *app = kiln_srv.app;
	int m, rc;

	m = kiln_router_match(app->routes, app->nroutes, req->method, req->path, &req->match);
	if (m >= 0) {
		req->route_index = m;
		req->route = app->routes[m].pattern;
		kiln_stats_begin(my_slot, req->method, req->route);
		rc = app->routes[m].handler(req);
		if (rc >= 400 && rc <= 599)
			kiln_problem(req, rc, NULL, req->errors);
		else if (req->resp.status == 0)
			kiln_problem(req, 500, "the handler produced no response", NULL);
		if (app->after_handler)
			app->after_handler(req);
		kiln_cors_apply(req, kiln_srv.cfg.server.cors_origins, NULL);
		return m < KILN_STATS_MAX_ROUTES ? m : KILN_STATS_ROUTE_OTHER;
	}
	kiln_stats_begin(my_slot, req->method, "unmatched");
	if (m == KILN_ROUTE_METHOD_NOT_ALLOWED) {
		kiln_resp_header(req, "Allow", req->match.allow);
		if (strcmp(req->method, "OPTIONS") == 0)
			kiln_resp_body(req, 204, "", "", 0);
		else
			kiln_problem(req, 405, "this resource does not support the method", NULL);
	} else {
		kiln_problem(req, 404, "no resource at this path", NULL);
	}
	kiln_cors_apply(req, kiln_srv.cfg.server.cors_origins, req->match.allow);
	return KILN_STATS_ROUTE_UNMATCHED;
}

static void access_log(const struct kiln_req *req, int64_t dur_ns, size_t bytes_out)
{
	kiln_info("request", "method=%s path=%s route=%s status=%d ms=%.3f bytes=%zu",
	          req->method ? req->method : "", req->path ? req->path : "", req->route,
	          req->resp.status, (double)dur_ns / 1e6, bytes_out);
}

static void handle(FCGX_Request *fr)
{
	struct kiln_req *req = &the_req;
	int route = KILN_STATS_ROUTE_UNMATCHED, status;
	int64_t dur;

	status = kiln_req_init(req, fr->envp, fcgi_read, fr, kiln_srv.cfg.server.max_body);
	kiln_log_set_request(req->request_id, req->trace_id[0] ? req->trace_id : NULL);
	if (status != 0) {
		kiln_stats_begin(my_slot, req->method ? req->method : "", "unmatched");
		kiln_problem(req, status,
		             status == 413 ? "the request body is larger than the limit" : NULL,
		             NULL);
	} else {
		route = dispatch(req);
	}
	kiln_buf_reset(&out);
	if (kiln_resp_serialize(req, &out) == 0)
		FCGX_PutStr(out.data, (int)out.len, fr->out);
	dur = kiln_now_ns() - req->start_ns;
	kiln_stats_end(my_slot, route, req->resp.status ? req->resp.status : 500, dur,
	               req->body.len, out.len);
	if (kiln_srv.cfg.log.access)
		access_log(req, dur, out.len);
	kiln_log_set_request(NULL, NULL);
}

static int wait_for_connection(int epfd, const sigset_t *waitmask)
{
	struct epoll_event ev;
	int n = epoll_pwait(epfd, &ev, 1, IDLE_WAKE_MS, waitmask);

	if (n < 0 && errno != EINTR) {
		kiln_error("epoll_pwait failed", "error=%s", strerror(errno));
		return -1;
	}
	return n;
}

/* A refused peer: counted every time, logged at most once a second per
 * worker (a scan or a flood must not flood the log), with how many were
 * left out since. */
static void refused(const struct sockaddr_storage *ss)
{
	static int64_t last_ms;
	static uint64_t unlogged;
	char host[INET6_ADDRSTRLEN] = "?";
	int64_t now = kiln_now_ms();

	kiln_stats_count(my_slot, kiln_srv.refused_counter, 1);
	if (last_ms && now - last_ms < REFUSED_LOG_MS) {
		unlogged++;
		return;
	}
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host,
		          sizeof(host));
	kiln_warn("connection refused: peer not in allow_from", "peer=%s unlogged=%llu", host,
	          (unsigned long long)unlogged);
	last_ms = now;
	unlogged = 0;
}

/* Accept one connection ourselves rather than in libfcgi, so that its peer
 * is checked against the allow-list before a byte is read (libfcgi's own
 * FCGI_WEB_SERVER_ADDRS check knows IPv4 only and says nothing). Returns
 * the connected socket (blocking, as libfcgi wants it), or -1 when there
 * was none to take (another worker won it), on an accept error, or when
 * the peer was refused (closed, counted, logged). */
static int accept_allowed(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC), one = 1;

	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED) {
			kiln_warn("accept failed", "error=%s", strerror(errno));
			usleep(10000); /* EMFILE and friends: don't spin */
		}
		return -1;
	}
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return fd;
	if (!kiln_server_allow_ok(&kiln_srv.allow, (struct sockaddr *)&ss, len)) {
		refused(&ss);
		close(fd);
		return -1;
	}
	/* Responses go out in one write; nothing is gained by Nagle's wait. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int setup_worker(int slot, sigset_t *waitmask, int *epfd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};

	/* Die with the master even when it is killed with SIGKILL. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != kiln_srv.master_pid)
		return -1;
	kiln_sig_hup = kiln_sig_chld = kiln_sig_usr1 = 0;
	if (kiln_server_signals(waitmask) < 0)
		return -1;
	signal(SIGHUP, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	my_slot = kiln_stats_slot(&kiln_srv.stats, slot);
	__atomic_store_n(&my_slot->pid, getpid(), __ATOMIC_RELAXED);
	if (kiln_srv.listen_fd >= 0) {
		*epfd = epoll_create1(EPOLL_CLOEXEC);
		if (*epfd < 0 || epoll_ctl(*epfd, EPOLL_CTL_ADD, kiln_srv.listen_fd, &ev) < 0) {
			kiln_error("epoll setup failed", "error=%s", strerror(errno));
			return -1;
		}
	}
	if (kiln_srv.app->worker_init && kiln_srv.app->worker_init(&kiln_srv.cfg) != 0)
		return -1;
	return 0;
}

int kiln_server_stopping(void)
{
	return kiln_sig_term != 0;
}

int kiln_server_wait(int fd, int64_t timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
	int n;

	if (kiln_sig_usr1) {
		kiln_sig_usr1 = 0;
		kiln_log_reopen();
	}
	if (kiln_sig_term)
		return 0;
	n = ppoll(&p, fd >= 0 ? 1 : 0, &ts, &my_waitmask);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	return n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

void kiln_worker_main(int slot)
{
	FCGX_Request fr;
	sigset_t waitmask;
	int64_t served = 0, max = kiln_srv.cfg.server.max_requests;
	int epfd = -1, rc, code = KILN_EXIT_OK;

	if (setup_worker(slot, &waitmask, &epfd) < 0)
		_exit(KILN_EXIT_INIT_FAILED);
	my_waitmask = waitmask;
	__atomic_store_n(&my_slot->state, KILN_WORKER_IDLE, __ATOMIC_RELAXED);
	if (kiln_srv.app->run) {
		code = kiln_srv.app->run(slot);
		goto out;
	}
	/* No listen socket for libfcgi: connections come from accept_allowed,
	 * so libfcgi never accepts one unchecked (after a malformed request it
	 * would try, and fail on fd -1). */
	FCGX_InitRequest(&fr, -1, 0);
	while (!kiln_sig_term) {
		if (kiln_sig_usr1) {
			kiln_sig_usr1 = 0;
			kiln_log_reopen();
		}
		/* A kept-alive FastCGI connection has its next request already. */
		if (fr.ipcFd < 0) {
			if (wait_for_connection(epfd, &waitmask) <= 0)
				continue;
			if ((fr.ipcFd = accept_allowed(kiln_srv.listen_fd)) < 0)
				continue;
			/* FCGX_Accept_r starts by finishing the previous request,
			 * which closes ipcFd unless the connection is kept. */
			fr.keepConnection = 1;
		}
		rc = FCGX_Accept_r(&fr);
		if (rc < 0)
			continue; /* the connection broke before a whole request came */
		handle(&fr);
		FCGX_Finish_r(&fr);
		if (max > 0 && ++served >= max) {
			code = KILN_EXIT_RECYCLE;
			break;
		}
	}
out:
	__atomic_store_n(&my_slot->state, KILN_WORKER_EXITING, __ATOMIC_RELAXED);
	if (kiln_srv.app->worker_exit)
		kiln_srv.app->worker_exit();
	kiln_server_drop_handles();
	_exit(code);
}
