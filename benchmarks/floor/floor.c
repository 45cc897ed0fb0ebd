/*
 * floor: the C floor for one health check's CPU cost, and a target to check against.
 *
 *   floor check tcp|http|udp|dns HOST PORT N K
 *       Runs N checks, K in flight, on one epoll loop with non-blocking sockets, one
 *       socket per check (as the checkers do). Prints one line:
 *       "cpu_us_per_check=F user_us_per_check=F wall_s=F ok=N fail=N" (CPU is getrusage
 *       user+sys; user is the part spent outside the kernel).
 *   floor serve tcp|http|udp|dns HOST PORT
 *       tcp: accept and close. http: read a request, answer 200 with "ok\n", close.
 *       udp: echo each datagram. dns: answer an A query with 127.0.0.1.
 *       Prints "port=N" once listening (PORT 0 picks one), serves until killed.
 *   floor serve tcp HOST 0 COUNT
 *       The same on COUNT ephemeral ports in one epoll loop, a "port=N" line each.
 *   floor pace tcp|http|udp HOST RATE SECONDS PORT...
 *       The server's load, in C: RATE checks a second for SECONDS, each started at its
 *       own time (evenly spaced; the loop sleeps in epoll_wait until the next is due), on
 *       the PORTs in turn, with the syscalls of the server's checkers (tcp and http read
 *       TCP_INFO's state after SO_ERROR, as their connect does). Prints one line:
 *       "cpu_us_per_check=F user_us_per_check=F sys_us_per_check=F ok=N fail=N".
 *
 * Built by benchmarks/checkers_bench.py: gcc -O2 -o build/floor/floor floor.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum kind { TCP, HTTP, UDP, DNS };

static const char HTTP_RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";

/* A query for "example.com. IN A", id 0x1234, RD set. */
static const unsigned char DNS_QUERY[] = {
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0x00, 0x01, 0x00, 0x01};

static void die(const char *what) {
    perror(what);
    exit(2);
}

static enum kind parse_kind(const char *s) {
    if (!strcmp(s, "tcp")) return TCP;
    if (!strcmp(s, "http")) return HTTP;
    if (!strcmp(s, "udp")) return UDP;
    if (!strcmp(s, "dns")) return DNS;
    fprintf(stderr, "unknown kind %s (tcp, http, udp, dns)\n", s);
    exit(2);
}

static socklen_t make_addr(const char *host, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        return sizeof *in4;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return sizeof *in6;
    }
    fprintf(stderr, "bad IP address %s\n", host);
    exit(2);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double user_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* --- check mode ---------------------------------------------------------------------- */

#define MAX_FD 65536
struct slot {
    int active;
    int sent;
    double started;
};
static struct slot slots[MAX_FD];

static struct sockaddr_storage target;
static socklen_t target_len;
static enum kind kind;
static int ep;
static long started_checks, ok, fail;
static char http_request[512];
static size_t http_request_len;

static void finish(int fd, int success) {
    slots[fd].active = 0;
    close(fd); /* closing removes it from the epoll set */
    if (success) ok++; else fail++;
}

static void start_check(void) {
    int stream = kind == TCP || kind == HTTP;
    int fd = socket(target.ss_family, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (fd >= MAX_FD) { fprintf(stderr, "fd too large\n"); exit(2); }
    started_checks++;
    struct epoll_event ev = {0};
    ev.data.fd = fd;
    slots[fd].active = 1;
    slots[fd].sent = 0;
    slots[fd].started = now_s();
    if (connect(fd, (struct sockaddr *)&target, target_len) < 0 && errno != EINPROGRESS) {
        finish(fd, 0);
        return;
    }
    if (stream) {
        ev.events = EPOLLOUT | EPOLLONESHOT;
    } else {
        const void *msg = kind == DNS ? (const void *)DNS_QUERY : (const void *)"ping";
        size_t len = kind == DNS ? sizeof DNS_QUERY : 4;
        if (send(fd, msg, len, 0) < 0) { finish(fd, 0); return; }
        ev.events = EPOLLIN | EPOLLONESHOT;
    }
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add");
}

static int with_peer_check; /* pace mode: a connect is checked as the server's is */

/* 0 when connected: SO_ERROR, then (pace mode) the TCP state (not SYN_SENT or CLOSE). */
static int connect_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (!err && with_peer_check) {
        unsigned char state = 0;
        socklen_t slen = 1;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &state, &slen) < 0) err = errno;
        else if (state == 2 || state == 7) err = ENOTCONN;
    }
    return err;
}

static void on_event(int fd) {
    char buf[4096];
    if (!slots[fd].active) return;
    if (kind == TCP) {
        finish(fd, connect_error(fd) == 0);
    } else if (kind == HTTP) {
        if (!slots[fd].sent) {
            int err = connect_error(fd);
            if (err || send(fd, http_request, http_request_len, MSG_NOSIGNAL) < 0) {
                finish(fd, 0);
                return;
            }
            slots[fd].sent = 1;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = fd};
            if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl mod");
            return;
        }
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0 && errno == EAGAIN) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
            return;
        }
        /* The test server answers in one write; a real parser is not the point here. */
        finish(fd, n > 12 && !memcmp(buf, "HTTP/1.1 200", 12));
    } else {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        finish(fd, n > 0);
    }
}

static int run_checks(const char *host, int port, long n, int k) {
    target_len = make_addr(host, port, &target);
    char hostport[128];
    if (target.ss_family == AF_INET6) snprintf(hostport, sizeof hostport, "[%s]:%d", host, port);
    else snprintf(hostport, sizeof hostport, "%s:%d", host, port);
    /* The bytes our HTTP checker (and Go's net/http) sends for GET "/": build_request in
     * src/seesaw_healthcheck/checkers/http.py; checkers_bench.py checks they agree. */
    http_request_len = snprintf(http_request, sizeof http_request,
                                "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\n"
                                "Accept-Encoding: gzip\r\n\r\n",
                                hostport);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event events[1024];
    double wall0 = now_s(), cpu0 = cpu_s(), user0 = user_s();
    long in_flight = 0;
    while (started_checks < n && in_flight < k) { start_check(); in_flight = started_checks - ok - fail; }
    double last_scan = now_s();
    while (ok + fail < n) {
        int got = epoll_wait(ep, events, 1024, 100);
        if (got < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < got; i++) on_event(events[i].data.fd);
        double t = now_s();
        if (got > 0) last_scan = t;
        if (got == 0 && t - last_scan > 1.0) { /* idle: give up on checks older than 2 s */
            last_scan = t;
            for (int fd = 0; fd < MAX_FD; fd++)
                if (slots[fd].active && t - slots[fd].started > 2.0) finish(fd, 0);
        }
        while (started_checks < n && started_checks - ok - fail < k) start_check();
    }
    double cpu = cpu_s() - cpu0, user = user_s() - user0, wall = now_s() - wall0;
    printf("cpu_us_per_check=%.3f user_us_per_check=%.3f wall_s=%.3f ok=%ld fail=%ld\n",
           cpu * 1e6 / n, user * 1e6 / n, wall, ok, fail);
    return 0;
}

/* --- pace mode ----------------------------------------------------------------------- */

static double sys_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void set_port(int port) {
    if (target.ss_family == AF_INET6) ((struct sockaddr_in6 *)&target)->sin6_port = htons(port);
    else ((struct sockaddr_in *)&target)->sin_port = htons(port);
}

static int run_paced(const char *host, int rate, double seconds, int nports, char **ports) {
    target_len = make_addr(host, atoi(ports[0]), &target);
    with_peer_check = 1;
    http_request_len = snprintf(http_request, sizeof http_request,
                                "GET / HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: Go-http-client/1.1\r\n"
                                "Accept-Encoding: gzip\r\n\r\n",
                                host, ports[0]);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event events[1024];
    long n = (long)(rate * seconds);
    double spacing = 1.0 / rate;
    double t0 = now_s(), cpu0 = cpu_s(), user0 = user_s(), sys0 = sys_s();
    while (ok + fail < n) {
        double t = now_s();
        while (started_checks < n && t0 + started_checks * spacing <= t) {
            set_port(atoi(ports[started_checks % nports]));
            start_check();
        }
        int timeout_ms = 100;
        if (started_checks < n) {
            double wait = t0 + started_checks * spacing - t;
            timeout_ms = wait <= 0 ? 0 : (int)(wait * 1000) + 1; /* rounded up, as Python's */
        }
        int got = epoll_wait(ep, events, 1024, timeout_ms);
        if (got < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < got; i++) on_event(events[i].data.fd);
        if (started_checks == n && got == 0) { /* the last ones: give up after 2 s */
            double now = now_s();
            for (int fd = 0; fd < MAX_FD; fd++)
                if (slots[fd].active && now - slots[fd].started > 2.0) finish(fd, 0);
        }
    }
    double cpu = cpu_s() - cpu0, user = user_s() - user0, sys = sys_s() - sys0;
    printf("cpu_us_per_check=%.3f user_us_per_check=%.3f sys_us_per_check=%.3f ok=%ld fail=%ld\n",
           cpu * 1e6 / n, user * 1e6 / n, sys * 1e6 / n, ok, fail);
    return 0;
}

/* --- serve mode ---------------------------------------------------------------------- */

static size_t dns_answer(const unsigned char *q, size_t n, unsigned char *out) {
    if (n < 12 || n > 400) return 0;
    memcpy(out, q, n);
    out[2] = 0x81; /* QR, RD */
    out[3] = 0x80; /* RA, NOERROR */
    out[6] = 0; out[7] = 1; /* ANCOUNT 1 */
    out[8] = out[9] = out[10] = out[11] = 0;
    /* Answer: pointer to the question name, A, IN, TTL 60, 127.0.0.1. Drop any EDNS. */
    size_t pos = 12;
    while (pos < n && q[pos]) pos += q[pos] + 1;
    pos += 5; /* zero label, qtype, qclass */
    if (pos > n) return 0;
    static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
    memcpy(out + pos, rr, sizeof rr);
    return pos + sizeof rr;
}

static int serve(const char *host, int port) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(host, port, &ss);
    int stream = kind == TCP || kind == HTTP;
    int flags = kind == HTTP ? SOCK_NONBLOCK : 0; /* http: accepted from an epoll loop */
    int lfd = socket(ss.ss_family, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | flags, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!stream) {
        int size = 8 << 20;
        setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    if (bind(lfd, (struct sockaddr *)&ss, len) < 0) die("bind");
    if (stream && listen(lfd, 4096) < 0) die("listen");
    len = sizeof ss;
    getsockname(lfd, (struct sockaddr *)&ss, &len);
    printf("port=%d\n", ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                       : ((struct sockaddr_in6 *)&ss)->sin6_port));
    fflush(stdout);
    unsigned char buf[4096], out[4096];
    if (!stream) {
        for (;;) {
            struct sockaddr_storage peer;
            socklen_t plen = sizeof peer;
            ssize_t n = recvfrom(lfd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
            if (n < 0) continue;
            if (kind == DNS) {
                size_t m = dns_answer(buf, n, out);
                if (m) sendto(lfd, out, m, 0, (struct sockaddr *)&peer, plen);
            } else {
                sendto(lfd, buf, n, 0, (struct sockaddr *)&peer, plen);
            }
        }
    }
    if (kind == TCP) {
        for (;;) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0) close(c);
        }
    }
    /* http: one epoll loop, each connection answered once its request head is complete. */
    int sep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(sep, EPOLL_CTL_ADD, lfd, &ev);
    static size_t have[MAX_FD];
    struct epoll_event events[256];
    for (;;) {
        int got = epoll_wait(sep, events, 256, -1);
        for (int i = 0; i < got; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    if (c >= MAX_FD) { close(c); continue; }
                    have[c] = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(sep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) { close(fd); continue; }
            /* Health-check requests fit one segment; answer when the head has ended. */
            if (memmem(buf, n, "\r\n\r\n", 4) || have[fd] + n >= 4096) {
                send(fd, HTTP_RESPONSE, sizeof HTTP_RESPONSE - 1, MSG_NOSIGNAL);
                close(fd);
            } else {
                have[fd] += n;
            }
        }
    }
    return 0;
}

/* tcp on COUNT ephemeral ports in one process: one "port=N" line each, then one epoll loop
 * accepting and closing on all of them. Spreading a load over ports spreads the client's
 * TIME_WAIT sockets over as many 4-tuple spaces (one port runs out at ~28,000 / 60 s). */
static int serve_tcp_ports(const char *host, int count) {
    int sep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < count; i++) {
        struct sockaddr_storage ss;
        socklen_t len = make_addr(host, 0, &ss);
        int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (bind(lfd, (struct sockaddr *)&ss, len) < 0) die("bind");
        if (listen(lfd, 4096) < 0) die("listen");
        len = sizeof ss;
        getsockname(lfd, (struct sockaddr *)&ss, &len);
        printf("port=%d\n", ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                           : ((struct sockaddr_in6 *)&ss)->sin6_port));
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
        epoll_ctl(sep, EPOLL_CTL_ADD, lfd, &ev);
    }
    fflush(stdout);
    struct epoll_event events[256];
    for (;;) {
        int got = epoll_wait(sep, events, 256, -1);
        for (int i = 0; i < got; i++) {
            for (;;) {
                int c = accept4(events[i].data.fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0) break;
                close(c);
            }
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "check")) {
        kind = parse_kind(argv[2]);
        return run_checks(argv[3], atoi(argv[4]), atol(argv[5]), atoi(argv[6]));
    }
    if (argc >= 7 && !strcmp(argv[1], "pace")) {
        kind = parse_kind(argv[2]);
        return run_paced(argv[3], atoi(argv[4]), atof(argv[5]), argc - 6, argv + 6);
    }
    if (argc == 6 && !strcmp(argv[1], "serve") && !strcmp(argv[2], "tcp")) {
        kind = TCP;
        return serve_tcp_ports(argv[3], atoi(argv[5]));
    }
    if (argc == 5 && !strcmp(argv[1], "serve")) {
        kind = parse_kind(argv[2]);
        return serve(argv[3], atoi(argv[4]));
    }
    fprintf(stderr,
            "usage: %s check tcp|http|udp|dns HOST PORT N K\n"
            "       %s serve tcp|http|udp|dns HOST PORT\n"
            "       %s serve tcp HOST 0 COUNT\n"
            "       %s pace tcp|http|udp HOST RATE SECONDS PORT...\n",
            argv[0], argv[0], argv[0], argv[0]);
    return 2;
}
