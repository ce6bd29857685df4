/* hiscore.c: blocking C99 client for the Hiscore wire protocol v1. See include/hiscore.h. */
#define _POSIX_C_SOURCE 200809L

#include "hiscore.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "hiscore/v1/hiscore.pb-c.h"
#include "tls.h"

typedef Hiscore__V1__Request Request;
typedef Hiscore__V1__Response Response;

const uint8_t HISCORE_PREFACE[HISCORE_PREFACE_SIZE] = {'H', 'I', 'S', 'C', 'O', 'R', 'E', 1};

/* Refuse absurd frames from a broken peer (the server's own limit is hello.max_frame_bytes). */
#define MAX_INBOUND_FRAME (64u * 1024u * 1024u)

struct hiscore_queued_frame {
    struct hiscore_queued_frame *next;
    Response *resp;
};

/* ------------------------------------------------------------------------------------------ */
/* Status and error helpers */

static const char *const STATUS_NAMES[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
static const char *const LOCAL_NAMES[] = {"ERR_IO", "ERR_TIMEOUT", "ERR_CLOSED", "ERR_PROTOCOL",
                                          "ERR_ARG", "ERR_NOMEM", "ERR_NO_EVENT", "ERR_TLS"};

const char *hiscore_status_name(int status) {
    if (status >= 0 && status <= 16) return STATUS_NAMES[status];
    if (status <= -1 && status >= -8) return LOCAL_NAMES[-status - 1];
    return "UNKNOWN_STATUS";
}

static int set_status(hiscore_client *c, int status, const char *fmt, ...) {
    va_list ap;
    c->last_status = status;
    if (fmt == NULL) {
        c->error[0] = '\0';
        return status;
    }
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return status;
}

static int ok(hiscore_client *c) { return set_status(c, HISCORE_OK, NULL); }

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline in monotonic ms from a timeout (<= 0 or negative = none: -1). */
static int64_t deadline_after(int timeout_ms) { return timeout_ms > 0 ? now_ms() + timeout_ms : -1; }

static int remaining_ms(int64_t deadline) {
    int64_t left;
    if (deadline < 0) return -1;
    left = deadline - now_ms();
    if (left < 0) return 0;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static void free_queue(hiscore_client *c) {
    struct hiscore_queued_frame *q = c->queue_head;
    while (q != NULL) {
        struct hiscore_queued_frame *next = q->next;
        hiscore__v1__response__free_unpacked(q->resp, NULL);
        free(q);
        q = next;
    }
    c->queue_head = c->queue_tail = NULL;
    c->queue_len = 0;
}

/* The connection is unusable: close the socket (keeps c->error). */
static int conn_fail(hiscore_client *c, int status, const char *fmt, ...) {
    va_list ap;
    tls_close(c);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->last_status = status;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return status;
}

/* ------------------------------------------------------------------------------------------ */
/* Framing */

void hiscore_frame_header_encode(uint8_t out[HISCORE_FRAME_HEADER_SIZE], uint32_t body_len) {
    out[0] = 0;
    out[1] = (uint8_t)(body_len >> 24);
    out[2] = (uint8_t)(body_len >> 16);
    out[3] = (uint8_t)(body_len >> 8);
    out[4] = (uint8_t)body_len;
}

int hiscore_frame_header_decode(const uint8_t in[HISCORE_FRAME_HEADER_SIZE], uint32_t max,
                                uint32_t *body_len) {
    uint32_t len = ((uint32_t)in[1] << 24) | ((uint32_t)in[2] << 16) | ((uint32_t)in[3] << 8) |
                   (uint32_t)in[4];
    if (in[0] != 0 || len > max) return HISCORE_ERR_PROTOCOL;
    *body_len = len;
    return HISCORE_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Transport: plain TCP or TLS (tls.c), both on the non-blocking socket c->fd. Results are bytes
 * moved (> 0) or the TLS_* codes of tls.h. */

static long io_send(hiscore_client *c, const uint8_t *buf, size_t len, char *err, size_t errlen) {
    ssize_t n;
    if (c->tls != NULL) return tls_send(c, buf, len, err, errlen);
    do {
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n > 0) return (long)n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return TLS_WANT_WRITE;
    snprintf(err, errlen, "send: %s", n < 0 ? strerror(errno) : "no progress");
    return TLS_FAILED;
}

static long io_recv(hiscore_client *c, uint8_t *buf, size_t len, char *err, size_t errlen) {
    ssize_t n;
    if (c->tls != NULL) return tls_recv(c, buf, len, err, errlen);
    do {
        n = recv(c->fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) return (long)n; /* 0 = TLS_CLOSED */
    if (errno == EAGAIN || errno == EWOULDBLOCK) return TLS_WANT_READ;
    snprintf(err, errlen, "recv: %s", strerror(errno));
    return TLS_FAILED;
}

/* Polls c->fd for what `want` (TLS_WANT_READ/WRITE) asks: 1 ready, 0 timed out, -1 error. */
static int io_wait(hiscore_client *c, long want, int64_t deadline) {
    struct pollfd p;
    int r;
    p.fd = c->fd;
    p.events = want == TLS_WANT_WRITE ? POLLOUT : POLLIN;
    p.revents = 0;
    do {
        r = poll(&p, 1, remaining_ms(deadline));
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : r > 0;
}

static int write_all(hiscore_client *c, const uint8_t *buf, size_t len, int64_t deadline) {
    char err[HISCORE_ERROR_SIZE];
    while (len > 0) {
        long n = io_send(c, buf, len, err, sizeof err);
        int r;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n == TLS_FAILED) return conn_fail(c, c->tls != NULL ? HISCORE_ERR_TLS : HISCORE_ERR_IO, "%s", err);
        if (n == TLS_CLOSED) return conn_fail(c, HISCORE_ERR_IO, "connection closed by the server");
        r = io_wait(c, n, deadline);
        if (r < 0) return conn_fail(c, HISCORE_ERR_IO, "poll: %s", strerror(errno));
        if (r == 0) return conn_fail(c, HISCORE_ERR_TIMEOUT, "timed out writing a request");
    }
    return HISCORE_OK;
}

/* Make sure rbuf starts with one complete frame; body and len point into rbuf. A timeout returns
 * HISCORE_ERR_TIMEOUT and keeps the connection (partial bytes stay buffered). */
static int read_frame(hiscore_client *c, int64_t deadline, const uint8_t **body, uint32_t *len) {
    char err[HISCORE_ERROR_SIZE];
    for (;;) {
        long n;
        int r;
        size_t need = HISCORE_FRAME_HEADER_SIZE;
        if (c->rlen >= HISCORE_FRAME_HEADER_SIZE) {
            uint32_t blen;
            if (hiscore_frame_header_decode(c->rbuf, MAX_INBOUND_FRAME, &blen) != HISCORE_OK)
                return conn_fail(c, HISCORE_ERR_PROTOCOL, "bad frame header from the server (flag %u)%s",
                                 (unsigned)c->rbuf[0],
                                 c->tls == NULL && (c->rbuf[0] == 0x15 || c->rbuf[0] == 0x16)
                                     ? ": that is a TLS record; connect with hiscore_connect_tls"
                                 : c->rbuf[0] == 'H'
                                     ? ": 'H', the peer answers as an HTTP server does (hiscored's admin port?)"
                                     : "");
            need = HISCORE_FRAME_HEADER_SIZE + (size_t)blen;
            if (c->rlen >= need) {
                *body = c->rbuf + HISCORE_FRAME_HEADER_SIZE;
                *len = blen;
                return HISCORE_OK;
            }
        }
        if (c->rcap < need || c->rcap - c->rlen < 4096) {
            size_t cap = c->rcap ? c->rcap : 65536;
            uint8_t *nb;
            while (cap < need || cap - c->rlen < 4096) cap *= 2;
            nb = (uint8_t *)realloc(c->rbuf, cap);
            if (nb == NULL) return conn_fail(c, HISCORE_ERR_NOMEM, "out of memory (read buffer)");
            c->rbuf = nb;
            c->rcap = cap;
        }
        n = io_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen, err, sizeof err);
        if (n > 0) {
            c->rlen += (size_t)n;
            continue;
        }
        if (n == TLS_CLOSED) return conn_fail(c, HISCORE_ERR_IO, "connection closed by the server");
        if (n == TLS_FAILED) return conn_fail(c, c->tls != NULL ? HISCORE_ERR_TLS : HISCORE_ERR_IO, "%s", err);
        r = io_wait(c, n, deadline);
        if (r < 0) return conn_fail(c, HISCORE_ERR_IO, "poll: %s", strerror(errno));
        if (r == 0) return set_status(c, HISCORE_ERR_TIMEOUT, "timed out waiting for the server");
    }
}

static void consume_frame(hiscore_client *c, uint32_t body_len) {
    size_t total = HISCORE_FRAME_HEADER_SIZE + (size_t)body_len;
    memmove(c->rbuf, c->rbuf + total, c->rlen - total);
    c->rlen -= total;
}

/* Read and decode the next frame. */
static int next_response(hiscore_client *c, int64_t deadline, Response **out) {
    const uint8_t *body = NULL;
    uint32_t len = 0;
    int st = read_frame(c, deadline, &body, &len);
    if (st != HISCORE_OK) return st;
    *out = hiscore__v1__response__unpack(NULL, len, body);
    consume_frame(c, len);
    if (*out == NULL) return conn_fail(c, HISCORE_ERR_PROTOCOL, "undecodable Response frame (%u bytes)", len);
    return HISCORE_OK;
}

static int response_code(const Response *r) { return r->status != NULL ? (int)r->status->code : 0; }
static const char *response_message(const Response *r) {
    return r->status != NULL && r->status->message != NULL ? r->status->message : "";
}

/* A connection-level frame (call_id 0) after the hello: the server closes next. */
static int connection_error(hiscore_client *c, Response *r) {
    int code = response_code(r);
    char msg[HISCORE_ERROR_SIZE - 64];
    snprintf(msg, sizeof msg, "%s", response_message(r));
    hiscore__v1__response__free_unpacked(r, NULL);
    if (code == 0) code = HISCORE_UNAVAILABLE;
    return conn_fail(c, code, "connection-level error %s: %s", hiscore_status_name(code), msg);
}

static int is_subscription(const hiscore_client *c, uint64_t id) {
    size_t i;
    for (i = 0; i < c->n_subs; i++)
        if (c->subs[i] == id) return 1;
    return 0;
}

static void forget_subscription(hiscore_client *c, uint64_t id) {
    size_t i;
    for (i = 0; i < c->n_subs; i++) {
        if (c->subs[i] == id) {
            c->subs[i] = c->subs[--c->n_subs];
            return;
        }
    }
}

static int enqueue(hiscore_client *c, Response *r) {
    struct hiscore_queued_frame *q;
    if (c->queue_len >= HISCORE_MAX_QUEUED_EVENTS) {
        hiscore__v1__response__free_unpacked(r, NULL);
        return conn_fail(c, HISCORE_ERR_NOMEM, "more than %d subscription events queued; call "
                         "hiscore_poll_event", HISCORE_MAX_QUEUED_EVENTS);
    }
    q = (struct hiscore_queued_frame *)malloc(sizeof *q);
    if (q == NULL) {
        hiscore__v1__response__free_unpacked(r, NULL);
        return conn_fail(c, HISCORE_ERR_NOMEM, "out of memory (event queue)");
    }
    q->next = NULL;
    q->resp = r;
    if (c->queue_tail != NULL) c->queue_tail->next = q;
    else c->queue_head = q;
    c->queue_tail = q;
    c->queue_len++;
    return HISCORE_OK;
}

/* Read frames until the one for call_id; queue subscription frames, drop unknown ones. */
static int wait_for(hiscore_client *c, uint64_t call_id, int64_t deadline, Response **out) {
    for (;;) {
        Response *r;
        int st = next_response(c, deadline, &r);
        if (st != HISCORE_OK) return st;
        if (r->call_id == call_id) {
            *out = r;
            return HISCORE_OK;
        }
        if (r->call_id == 0) return connection_error(c, r);
        if (is_subscription(c, r->call_id)) {
            st = enqueue(c, r);
            if (st != HISCORE_OK) return st;
        } else {
            hiscore__v1__response__free_unpacked(r, NULL); /* a call we gave up on */
        }
    }
}

static uint64_t alloc_call_id(hiscore_client *c) {
    uint64_t id;
    do {
        id = c->next_call_id++;
        if (c->next_call_id == 0) c->next_call_id = 1;
    } while (id == 0 || is_subscription(c, id));
    return id;
}

static int send_request(hiscore_client *c, Request *req, int64_t deadline) {
    size_t size;
    uint8_t *buf;
    int st;
    req->call_id = alloc_call_id(c);
    req->deadline_ms = c->deadline_ms;
    req->auth_token = c->auth_token;
    size = hiscore__v1__request__get_packed_size(req);
    if (size > c->hello.max_frame_bytes)
        return set_status(c, HISCORE_RESOURCE_EXHAUSTED,
                          "request of %zu bytes exceeds max_frame_bytes (%u); not sent", size,
                          (unsigned)c->hello.max_frame_bytes);
    buf = (uint8_t *)malloc(HISCORE_FRAME_HEADER_SIZE + size);
    if (buf == NULL) return set_status(c, HISCORE_ERR_NOMEM, "out of memory (request)");
    hiscore_frame_header_encode(buf, (uint32_t)size);
    hiscore__v1__request__pack(req, buf + HISCORE_FRAME_HEADER_SIZE);
    st = write_all(c, buf, HISCORE_FRAME_HEADER_SIZE + size, deadline);
    free(buf);
    return st;
}

static int check_connected(hiscore_client *c) {
    if (c == NULL) return HISCORE_ERR_ARG;
    if (c->fd < 0) return set_status(c, HISCORE_ERR_CLOSED, "not connected");
    return HISCORE_OK;
}

/* Best effort: ask the server to cancel call_id without waiting for the answer. */
static void send_cancel_nowait(hiscore_client *c, uint64_t call_id) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__CancelRequest cancel = HISCORE__V1__CANCEL_REQUEST__INIT;
    char saved[HISCORE_ERROR_SIZE];
    int saved_status = c->last_status;
    memcpy(saved, c->error, sizeof saved);
    cancel.call_id = call_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_CANCEL;
    req.cancel = &cancel;
    (void)send_request(c, &req, deadline_after(1000));
    memcpy(c->error, saved, sizeof saved);
    c->last_status = saved_status;
}

/* One unary call. On HISCORE_OK or a server status, *out holds the response (caller frees). */
static int unary(hiscore_client *c, Request *req, Response **out) {
    int64_t deadline;
    int st = check_connected(c);
    *out = NULL;
    if (st != HISCORE_OK) return st;
    deadline = deadline_after(c->timeout_ms);
    st = send_request(c, req, deadline);
    if (st != HISCORE_OK) return st;
    st = wait_for(c, req->call_id, deadline, out);
    if (st == HISCORE_ERR_TIMEOUT && c->fd >= 0) {
        send_cancel_nowait(c, req->call_id);
        return set_status(c, HISCORE_ERR_TIMEOUT, "no answer within %d ms (call %llu cancelled)",
                          c->timeout_ms, (unsigned long long)req->call_id);
    }
    if (st != HISCORE_OK) return st;
    st = response_code(*out);
    if (st != HISCORE_OK)
        return set_status(c, st, "%s: %s", hiscore_status_name(st), response_message(*out));
    return ok(c);
}

/* unary + checks the result kind; on failure frees the response and returns the status. */
static int unary_expect(hiscore_client *c, Request *req, Hiscore__V1__Response__ResultCase want,
                        Response **out) {
    int st = unary(c, req, out);
    if (st != HISCORE_OK) {
        if (*out != NULL) hiscore__v1__response__free_unpacked(*out, NULL);
        *out = NULL;
        return st;
    }
    if ((*out)->result_case != want && (*out)->result_case != HISCORE__V1__RESPONSE__RESULT__NOT_SET) {
        hiscore__v1__response__free_unpacked(*out, NULL);
        *out = NULL;
        return set_status(c, HISCORE_ERR_PROTOCOL, "unexpected result kind in the answer");
    }
    return HISCORE_OK;
}

static void copy_cstr(char *dst, size_t cap, const char *src) {
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= cap) n = cap - 1;
    if (n > 0) memcpy(dst, src, n);
    dst[n] = '\0';
}

static void copy_entry(hiscore_entry *dst, const Hiscore__V1__Entry *src) {
    size_t n;
    memset(dst, 0, sizeof *dst);
    if (src == NULL) return;
    copy_cstr(dst->player_id, sizeof dst->player_id, src->player_id);
    dst->score = src->score;
    dst->subscore = src->subscore;
    dst->rank = src->rank;
    dst->reached_at_us = src->reached_at_us;
    dst->metadata_len = src->metadata.len;
    n = src->metadata.len < HISCORE_ENTRY_METADATA_MAX ? src->metadata.len : HISCORE_ENTRY_METADATA_MAX;
    if (n > 0) memcpy(dst->metadata, src->metadata.data, n);
}

/* ------------------------------------------------------------------------------------------ */
/* Connection */

static int open_socket(hiscore_client *c, const char *host, uint16_t port, int64_t deadline) {
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[8];
    int gai, last_err = 0, timed_out = 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) return set_status(c, HISCORE_ERR_IO, "resolve %s: %s", host, gai_strerror(gai));
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        int flags, one = 1;
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        flags = fcntl(fd, F_GETFL, 0);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
            last_err = errno;
            close(fd);
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            struct pollfd p;
            int r, soerr = 0;
            socklen_t slen = sizeof soerr;
            if (errno != EINPROGRESS) {
                last_err = errno;
                close(fd);
                continue;
            }
            p.fd = fd;
            p.events = POLLOUT;
            p.revents = 0;
            do {
                r = poll(&p, 1, remaining_ms(deadline));
            } while (r < 0 && errno == EINTR);
            if (r == 0) {
                timed_out = 1;
                close(fd);
                continue;
            }
            if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0) {
                last_err = r < 0 ? errno : soerr;
                close(fd);
                continue;
            }
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        freeaddrinfo(res);
        return HISCORE_OK;
    }
    freeaddrinfo(res);
    if (timed_out) return set_status(c, HISCORE_ERR_TIMEOUT, "connect to %s:%u timed out", host, (unsigned)port);
    return set_status(c, HISCORE_ERR_IO, "connect to %s:%u: %s", host, (unsigned)port,
                      last_err ? strerror(last_err) : "no address");
}

/* The TLS handshake on the connected socket, within the connect deadline. */
static int start_tls(hiscore_client *c, const char *host, const hiscore_tls_options *tls, int64_t deadline) {
    char err[HISCORE_ERROR_SIZE];
    if (tls_open(c, host, tls, err, sizeof err) != 1) return conn_fail(c, HISCORE_ERR_TLS, "%s", err);
    for (;;) {
        int r = tls_handshake(c, err, sizeof err);
        if (r == 1) return HISCORE_OK;
        if (r == TLS_FAILED || r == TLS_CLOSED) return conn_fail(c, HISCORE_ERR_TLS, "%s", err);
        r = io_wait(c, r, deadline);
        if (r < 0) return conn_fail(c, HISCORE_ERR_IO, "poll: %s", strerror(errno));
        if (r == 0) return conn_fail(c, HISCORE_ERR_TIMEOUT, "TLS handshake with %s timed out", host);
    }
}

/* hiscore_connect and hiscore_connect_tls; tls NULL = plain TCP. */
static int connect_client(hiscore_client *c, const char *host, uint16_t port, int timeout_ms,
                          const hiscore_tls_options *tls) {
    int64_t deadline;
    Response *r = NULL;
    int st;
    if (c == NULL) return HISCORE_ERR_ARG;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    c->next_call_id = 1;
    c->hello.max_frame_bytes = 1048576;
    if (host == NULL) return set_status(c, HISCORE_ERR_ARG, "host is NULL");
    deadline = deadline_after(timeout_ms);
    st = open_socket(c, host, port, deadline);
    if (st != HISCORE_OK) return st;
    if (tls != NULL) {
        st = start_tls(c, host, tls, deadline);
        if (st != HISCORE_OK) return st;
    }
    st = write_all(c, HISCORE_PREFACE, HISCORE_PREFACE_SIZE, deadline);
    if (st != HISCORE_OK) return st;
    st = next_response(c, deadline, &r);
    if (st == HISCORE_ERR_TIMEOUT) return conn_fail(c, st, "no hello from the server within %d ms", timeout_ms);
    if (st != HISCORE_OK) return st;
    if (r->call_id != 0) {
        hiscore__v1__response__free_unpacked(r, NULL);
        return conn_fail(c, HISCORE_ERR_PROTOCOL, "first frame is not the hello");
    }
    if (r->result_case != HISCORE__V1__RESPONSE__RESULT_HELLO) return connection_error(c, r);
    c->hello.protocol_version = r->hello->protocol_version;
    copy_cstr(c->hello.server_version, sizeof c->hello.server_version, r->hello->server_version);
    c->hello.max_frame_bytes = r->hello->max_frame_bytes ? r->hello->max_frame_bytes : 1048576;
    c->hello.max_inflight_calls = r->hello->max_inflight_calls;
    c->hello.max_batch_submits = r->hello->max_batch_submits;
    c->hello.max_page_entries = r->hello->max_page_entries;
    c->hello.max_players_per_query = r->hello->max_players_per_query;
    c->hello.max_subscriptions = r->hello->max_subscriptions;
    c->hello.max_metadata_bytes = r->hello->max_metadata_bytes;
    hiscore__v1__response__free_unpacked(r, NULL);
    return ok(c);
}

int hiscore_connect(hiscore_client *c, const char *host, uint16_t port, int timeout_ms) {
    return connect_client(c, host, port, timeout_ms, NULL);
}

int hiscore_connect_tls(hiscore_client *c, const char *host, uint16_t port, int timeout_ms,
                        const hiscore_tls_options *tls) {
    static const hiscore_tls_options defaults = {NULL, NULL, NULL, NULL};
    return connect_client(c, host, port, timeout_ms, tls != NULL ? tls : &defaults);
}

int hiscore_close(hiscore_client *c) {
    if (c == NULL) return HISCORE_OK;
    tls_close(c);
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    free_queue(c);
    c->n_subs = 0;
    return HISCORE_OK;
}

int hiscore_set_auth_token(hiscore_client *c, const char *token) {
    if (c == NULL) return HISCORE_ERR_ARG;
    if (token == NULL) token = "";
    if (strlen(token) >= sizeof c->auth_token)
        return set_status(c, HISCORE_ERR_ARG, "auth token longer than %zu bytes", sizeof c->auth_token - 1);
    copy_cstr(c->auth_token, sizeof c->auth_token, token);
    return ok(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Calls */

int hiscore_call(hiscore_client *c, struct Hiscore__V1__Request *req,
                 struct Hiscore__V1__Response **resp_out) {
    if (c == NULL) return HISCORE_ERR_ARG;
    if (req == NULL || resp_out == NULL) return set_status(c, HISCORE_ERR_ARG, "NULL argument");
    *resp_out = NULL;
    if (req->method_case == HISCORE__V1__REQUEST__METHOD_SUBSCRIBE)
        return set_status(c, HISCORE_ERR_ARG, "subscribe is a stream, not a unary call: use hiscore_subscribe");
    return unary(c, req, resp_out);
}

void hiscore_free_response(struct Hiscore__V1__Response *resp) {
    if (resp != NULL) hiscore__v1__response__free_unpacked(resp, NULL);
}

#define REQUIRE(cond, what)                                                                      \
    do {                                                                                         \
        if (c == NULL) return HISCORE_ERR_ARG;                                                   \
        if (!(cond)) return set_status(c, HISCORE_ERR_ARG, "%s", what);                          \
    } while (0)

int hiscore_ping(hiscore_client *c, const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                 size_t *out_len) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__PingRequest ping = HISCORE__V1__PING_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(payload != NULL || len == 0, "payload is NULL");
    ping.payload.data = (uint8_t *)payload;
    ping.payload.len = len;
    req.method_case = HISCORE__V1__REQUEST__METHOD_PING;
    req.ping = &ping;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_PING, &r);
    if (st != HISCORE_OK) return st;
    {
        size_t n = r->ping != NULL ? r->ping->payload.len : 0;
        if (out_len != NULL) *out_len = n;
        if (n > 0 && (out == NULL || n > cap)) {
            hiscore__v1__response__free_unpacked(r, NULL);
            return set_status(c, HISCORE_ERR_ARG, "ping answer of %zu bytes does not fit", n);
        }
        if (n > 0) memcpy(out, r->ping->payload.data, n);
    }
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

/* hiscore_submit and hiscore_submit_unranked (skip_ranks != 0). */
static int submit_call(hiscore_client *c, const char *board_id, const char *player_id,
                       int64_t score, int64_t subscore, const uint8_t *metadata,
                       size_t metadata_len, int skip_ranks, hiscore_submit_result *out) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__SubmitRequest sub = HISCORE__V1__SUBMIT_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(board_id != NULL && player_id != NULL, "board_id and player_id are required");
    sub.board_id = (char *)board_id;
    sub.player_id = (char *)player_id;
    sub.score = score;
    sub.subscore = subscore;
    sub.skip_ranks = skip_ranks != 0;
    if (metadata != NULL) {
        sub.metadata_value_case = HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE_METADATA;
        sub.metadata.data = (uint8_t *)metadata;
        sub.metadata.len = metadata_len;
    }
    req.method_case = HISCORE__V1__REQUEST__METHOD_SUBMIT;
    req.submit = &sub;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_SUBMIT, &r);
    if (st != HISCORE_OK) return st;
    if (out != NULL) {
        memset(out, 0, sizeof *out);
        if (r->submit != NULL) {
            copy_entry(&out->entry, r->submit->entry);
            out->previous_rank = r->submit->previous_rank;
            out->changed = r->submit->changed != 0;
            out->created = r->submit->created != 0;
        }
    }
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_submit(hiscore_client *c, const char *board_id, const char *player_id, int64_t score,
                   int64_t subscore, const uint8_t *metadata, size_t metadata_len,
                   hiscore_submit_result *out) {
    return submit_call(c, board_id, player_id, score, subscore, metadata, metadata_len, 0, out);
}

int hiscore_submit_unranked(hiscore_client *c, const char *board_id, const char *player_id,
                            int64_t score, int64_t subscore, const uint8_t *metadata,
                            size_t metadata_len, hiscore_submit_result *out) {
    return submit_call(c, board_id, player_id, score, subscore, metadata, metadata_len, 1, out);
}

int hiscore_submit_batch(hiscore_client *c, const hiscore_batch_item *items, size_t n,
                         hiscore_batch_result *results, size_t *n_refused) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__SubmitBatchRequest batch = HISCORE__V1__SUBMIT_BATCH_REQUEST__INIT;
    Hiscore__V1__SubmitRequest *subs = NULL, **ptrs = NULL;
    Response *r;
    size_t i, refused = 0;
    int st;
    REQUIRE((items != NULL && results != NULL) || n == 0, "items and results are required");
    for (i = 0; i < n; i++)
        REQUIRE(items[i].board_id != NULL && items[i].player_id != NULL,
                "an item has no board_id or player_id");
    if (n_refused != NULL) *n_refused = 0;
    if (c->hello.max_batch_submits != 0 && n > c->hello.max_batch_submits)
        return set_status(c, HISCORE_RESOURCE_EXHAUSTED,
                          "batch of %zu items exceeds max_batch_submits (%u); not sent", n,
                          (unsigned)c->hello.max_batch_submits);
    if (n > 0) {
        subs = (Hiscore__V1__SubmitRequest *)malloc(n * sizeof *subs);
        ptrs = (Hiscore__V1__SubmitRequest **)malloc(n * sizeof *ptrs);
        if (subs == NULL || ptrs == NULL) {
            free(subs);
            free(ptrs);
            return set_status(c, HISCORE_ERR_NOMEM, "out of memory (batch of %zu)", n);
        }
    }
    for (i = 0; i < n; i++) {
        Hiscore__V1__SubmitRequest init = HISCORE__V1__SUBMIT_REQUEST__INIT;
        subs[i] = init;
        subs[i].board_id = (char *)items[i].board_id;
        subs[i].player_id = (char *)items[i].player_id;
        subs[i].score = items[i].score;
        subs[i].subscore = items[i].subscore;
        subs[i].skip_ranks = items[i].skip_ranks != 0;
        if (items[i].metadata != NULL) {
            subs[i].metadata_value_case = HISCORE__V1__SUBMIT_REQUEST__METADATA_VALUE_METADATA;
            subs[i].metadata.data = (uint8_t *)items[i].metadata;
            subs[i].metadata.len = items[i].metadata_len;
        }
        ptrs[i] = &subs[i];
    }
    batch.n_submits = n;
    batch.submits = ptrs;
    req.method_case = HISCORE__V1__REQUEST__METHOD_SUBMIT_BATCH;
    req.submit_batch = &batch;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_SUBMIT_BATCH, &r);
    free(subs);
    free(ptrs);
    if (st != HISCORE_OK) return st;
    if ((r->submit_batch != NULL ? r->submit_batch->n_results : 0) != n) {
        size_t got = r->submit_batch != NULL ? r->submit_batch->n_results : 0;
        hiscore__v1__response__free_unpacked(r, NULL);
        return set_status(c, HISCORE_ERR_PROTOCOL, "server answered %zu results for %zu items", got, n);
    }
    for (i = 0; i < n; i++) {
        const Hiscore__V1__SubmitResult *sr = r->submit_batch->results[i];
        hiscore_batch_result *out = &results[i];
        memset(out, 0, sizeof *out);
        out->status = sr->status != NULL ? (int)sr->status->code : HISCORE_OK;
        if (out->status != HISCORE_OK) {
            refused++;
            copy_cstr(out->message, sizeof out->message,
                      sr->status->message != NULL ? sr->status->message : "");
        } else if (sr->result != NULL) {
            copy_entry(&out->result.entry, sr->result->entry);
            out->result.previous_rank = sr->result->previous_rank;
            out->result.changed = sr->result->changed != 0;
            out->result.created = sr->result->created != 0;
        }
    }
    if (n_refused != NULL) *n_refused = refused;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_rank(hiscore_client *c, const char *board_id, const char *player_id, int rank_mode,
                 hiscore_entry *out, uint64_t *board_size) {
    return hiscore_rank_in_period(c, board_id, player_id, rank_mode, 0, out, board_size);
}

int hiscore_rank_in_period(hiscore_client *c, const char *board_id, const char *player_id,
                           int rank_mode, uint64_t period_id, hiscore_entry *out,
                           uint64_t *board_size) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__GetRankRequest q = HISCORE__V1__GET_RANK_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(board_id != NULL && player_id != NULL, "board_id and player_id are required");
    q.board_id = (char *)board_id;
    q.player_id = (char *)player_id;
    q.rank_mode = (Hiscore__V1__RankMode)rank_mode;
    q.period_id = period_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_GET_RANK;
    req.get_rank = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_GET_RANK, &r);
    if (st != HISCORE_OK) return st;
    if (out != NULL) copy_entry(out, r->get_rank != NULL ? r->get_rank->entry : NULL);
    if (board_size != NULL) *board_size = r->get_rank != NULL ? r->get_rank->board_size : 0;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

static int copy_entries(hiscore_client *c, Hiscore__V1__Entry **src, size_t n, hiscore_entry *dst,
                        size_t cap, size_t *count) {
    size_t i;
    if (n > cap) n = cap;
    for (i = 0; i < n; i++) copy_entry(&dst[i], src[i]);
    if (count != NULL) *count = n;
    (void)c;
    return HISCORE_OK;
}

int hiscore_top(hiscore_client *c, const hiscore_top_query *q, hiscore_entry *entries, size_t cap,
                size_t *count, hiscore_page *page) {
    return hiscore_top_in_period(c, q, 0, entries, cap, count, page);
}

int hiscore_top_in_period(hiscore_client *c, const hiscore_top_query *q, uint64_t period_id,
                          hiscore_entry *entries, size_t cap, size_t *count, hiscore_page *page) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__TopRequest top = HISCORE__V1__TOP_REQUEST__INIT;
    Response *r;
    int st;
    size_t n;
    REQUIRE(q != NULL && q->board_id != NULL, "query and board_id are required");
    REQUIRE((q->limit == 0 ? 10u : q->limit) <= cap && entries != NULL,
            "entries array smaller than the limit (0 means 10)");
    REQUIRE(q->cursor != NULL || q->cursor_len == 0, "cursor is NULL");
    if (count != NULL) *count = 0;
    top.board_id = (char *)q->board_id;
    top.limit = q->limit;
    top.rank_mode = (Hiscore__V1__RankMode)q->rank_mode;
    top.period_id = period_id;
    if (q->has_offset) {
        top.start_case = HISCORE__V1__TOP_REQUEST__START_OFFSET;
        top.offset = q->offset;
    } else if (q->cursor_len > 0) {
        top.start_case = HISCORE__V1__TOP_REQUEST__START_CURSOR;
        top.cursor.data = (uint8_t *)q->cursor;
        top.cursor.len = q->cursor_len;
    }
    req.method_case = HISCORE__V1__REQUEST__METHOD_TOP;
    req.top = &top;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_TOP, &r);
    if (st != HISCORE_OK) return st;
    n = r->top != NULL ? r->top->n_entries : 0;
    if (n > cap) {
        hiscore__v1__response__free_unpacked(r, NULL);
        return set_status(c, HISCORE_ERR_PROTOCOL, "server returned %zu entries for a limit of %zu", n, cap);
    }
    if (n > 0) copy_entries(c, r->top->entries, n, entries, cap, count);
    if (page != NULL) {
        memset(page, 0, sizeof *page);
        if (r->top != NULL) {
            page->board_size = r->top->board_size;
            if (r->top->next_cursor.len > HISCORE_CURSOR_MAX) {
                hiscore__v1__response__free_unpacked(r, NULL);
                return set_status(c, HISCORE_ERR_NOMEM, "cursor longer than HISCORE_CURSOR_MAX");
            }
            page->next_cursor_len = r->top->next_cursor.len;
            if (page->next_cursor_len > 0)
                memcpy(page->next_cursor, r->top->next_cursor.data, page->next_cursor_len);
        }
    }
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_around(hiscore_client *c, const char *board_id, const char *player_id, uint32_t before,
                   uint32_t after, int rank_mode, hiscore_entry *entries, size_t cap,
                   size_t *count, uint64_t *board_size) {
    return hiscore_around_in_period(c, board_id, player_id, before, after, rank_mode, 0, entries,
                                    cap, count, board_size);
}

int hiscore_around_in_period(hiscore_client *c, const char *board_id, const char *player_id,
                             uint32_t before, uint32_t after, int rank_mode, uint64_t period_id,
                             hiscore_entry *entries, size_t cap, size_t *count,
                             uint64_t *board_size) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__AroundRequest q = HISCORE__V1__AROUND_REQUEST__INIT;
    Response *r;
    int st;
    size_t n;
    REQUIRE(board_id != NULL && player_id != NULL && entries != NULL, "NULL argument");
    REQUIRE((uint64_t)before + after + 1 <= cap, "entries array smaller than before + after + 1");
    if (count != NULL) *count = 0;
    q.board_id = (char *)board_id;
    q.player_id = (char *)player_id;
    q.before = before;
    q.after = after;
    q.rank_mode = (Hiscore__V1__RankMode)rank_mode;
    q.period_id = period_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_AROUND;
    req.around = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_AROUND, &r);
    if (st != HISCORE_OK) return st;
    n = r->around != NULL ? r->around->n_entries : 0;
    if (n > cap) {
        hiscore__v1__response__free_unpacked(r, NULL);
        return set_status(c, HISCORE_ERR_PROTOCOL, "server returned %zu entries for %zu slots", n, cap);
    }
    if (n > 0) copy_entries(c, r->around->entries, n, entries, cap, count);
    if (board_size != NULL) *board_size = r->around != NULL ? r->around->board_size : 0;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_count(hiscore_client *c, const char *board_id, const int64_t *min_score,
                  const int64_t *max_score, uint64_t *count, uint64_t *board_size) {
    return hiscore_count_in_period(c, board_id, min_score, max_score, 0, count, board_size);
}

int hiscore_count_in_period(hiscore_client *c, const char *board_id, const int64_t *min_score,
                            const int64_t *max_score, uint64_t period_id, uint64_t *count,
                            uint64_t *board_size) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__CountRequest q = HISCORE__V1__COUNT_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(board_id != NULL, "board_id is required");
    q.board_id = (char *)board_id;
    q.period_id = period_id;
    if (min_score != NULL) {
        q.min_case = HISCORE__V1__COUNT_REQUEST__MIN_MIN_SCORE;
        q.min_score = *min_score;
    }
    if (max_score != NULL) {
        q.max_case = HISCORE__V1__COUNT_REQUEST__MAX_MAX_SCORE;
        q.max_score = *max_score;
    }
    req.method_case = HISCORE__V1__REQUEST__METHOD_COUNT;
    req.count = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_COUNT, &r);
    if (st != HISCORE_OK) return st;
    if (count != NULL) *count = r->count != NULL ? r->count->count : 0;
    if (board_size != NULL) *board_size = r->count != NULL ? r->count->board_size : 0;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_create_board(hiscore_client *c, const hiscore_board_config *cfg) {
    return hiscore_create_board_with(c, cfg, NULL);
}

int hiscore_create_board_with(hiscore_client *c, const hiscore_board_config *cfg,
                              const hiscore_board_options *opts) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__CreateBoardRequest q = HISCORE__V1__CREATE_BOARD_REQUEST__INIT;
    Hiscore__V1__BoardConfig config = HISCORE__V1__BOARD_CONFIG__INIT;
    Hiscore__V1__BoardLimits limits = HISCORE__V1__BOARD_LIMITS__INIT;
    Hiscore__V1__ResetSchedule reset = HISCORE__V1__RESET_SCHEDULE__INIT;
    Response *r;
    int st;
    REQUIRE(cfg != NULL && cfg->board_id != NULL, "config and board_id are required");
    if (opts != NULL) {
        config.client_writes = opts->client_writes != 0;
        if (opts->reset_period != HISCORE_RESET_NONE) {
            reset.period = (Hiscore__V1__ResetPeriod)opts->reset_period;
            reset.minute_of_day = opts->minute_of_day;
            reset.weekday = opts->weekday;
            reset.day_of_month = opts->day_of_month;
            reset.keep_periods = opts->keep_periods;
            config.reset = &reset;
        }
    }
    config.board_id = (char *)cfg->board_id;
    config.score_order = (Hiscore__V1__SortOrder)cfg->score_order;
    config.subscore_order = (Hiscore__V1__SortOrder)cfg->subscore_order;
    config.write_operator = (Hiscore__V1__WriteOperator)cfg->write_operator;
    config.rank_mode = (Hiscore__V1__RankMode)cfg->rank_mode;
    limits.max_entries = cfg->max_entries;
    limits.max_metadata_bytes = cfg->max_metadata_bytes;
    config.limits = &limits;
    q.config = &config;
    req.method_case = HISCORE__V1__REQUEST__METHOD_CREATE_BOARD;
    req.create_board = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_CREATE_BOARD, &r);
    if (st != HISCORE_OK) return st;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

/* BoardInfo -> hiscore_board_info (periods are copied by describe_call). */
static void fill_board_info(hiscore_board_info *info, const Hiscore__V1__BoardInfo *b) {
    memset(info, 0, sizeof *info);
    if (b == NULL) return;
    info->size = b->size;
    info->version = b->version;
    info->current_period_id = b->current_period_id;
    info->current_period_started_at_us = b->current_period_started_at_us;
    if (b->config != NULL) {
        info->client_writes = b->config->client_writes ? 1 : 0;
        info->reset_period = b->config->reset != NULL ? (int)b->config->reset->period : 0;
    }
    info->n_periods = b->n_periods;
}

static void fill_board_details(hiscore_board_details *d, const Hiscore__V1__BoardInfo *b) {
    const Hiscore__V1__BoardConfig *cfg = b != NULL ? b->config : NULL;
    memset(d, 0, sizeof *d);
    fill_board_info(&d->info, b);
    if (cfg == NULL) return;
    copy_cstr(d->board_id, sizeof d->board_id, cfg->board_id);
    d->score_order = (int)cfg->score_order;
    d->subscore_order = (int)cfg->subscore_order;
    d->write_operator = (int)cfg->write_operator;
    d->rank_mode = (int)cfg->rank_mode;
    if (cfg->limits != NULL) {
        d->max_entries = cfg->limits->max_entries;
        d->max_metadata_bytes = cfg->limits->max_metadata_bytes;
    }
    d->options.client_writes = cfg->client_writes ? 1 : 0;
    if (cfg->reset != NULL) {
        d->options.reset_period = (int)cfg->reset->period;
        d->options.minute_of_day = cfg->reset->minute_of_day;
        d->options.weekday = cfg->reset->weekday;
        d->options.day_of_month = cfg->reset->day_of_month;
        d->options.keep_periods = cfg->reset->keep_periods;
    }
}

/* hiscore_describe_board (details NULL) and hiscore_describe_board_details. */
static int describe_call(hiscore_client *c, const char *board_id, hiscore_board_info *info,
                         hiscore_board_details *details, hiscore_period *periods, size_t cap) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__DescribeBoardRequest q = HISCORE__V1__DESCRIBE_BOARD_REQUEST__INIT;
    const Hiscore__V1__BoardInfo *b;
    Response *r;
    size_t i;
    int st;
    REQUIRE(board_id != NULL && (info != NULL || details != NULL), "board_id and info are required");
    REQUIRE(periods != NULL || cap == 0, "periods is NULL");
    if (details != NULL) {
        memset(details, 0, sizeof *details);
        info = &details->info;
    }
    memset(info, 0, sizeof *info);
    q.board_id = (char *)board_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_DESCRIBE_BOARD;
    req.describe_board = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_DESCRIBE_BOARD, &r);
    if (st != HISCORE_OK) return st;
    b = r->describe_board != NULL ? r->describe_board->board : NULL;
    if (details != NULL) fill_board_details(details, b);
    else fill_board_info(info, b);
    if (b != NULL) {
        for (i = 0; i < b->n_periods && i < cap; i++) {
            periods[i].period_id = b->periods[i]->period_id;
            periods[i].started_at_us = b->periods[i]->started_at_us;
            periods[i].ended_at_us = b->periods[i]->ended_at_us;
            periods[i].size = b->periods[i]->size;
        }
    }
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_describe_board(hiscore_client *c, const char *board_id, hiscore_board_info *info,
                           hiscore_period *periods, size_t cap) {
    return describe_call(c, board_id, info, NULL, periods, cap);
}

int hiscore_describe_board_details(hiscore_client *c, const char *board_id,
                                   hiscore_board_details *out, hiscore_period *periods,
                                   size_t cap) {
    return describe_call(c, board_id, NULL, out, periods, cap);
}

/* Server limit defaults (docs/protocol.md) for a hello that leaves them 0. */
#define DEFAULT_LIST_LIMIT 100u

int hiscore_list_boards(hiscore_client *c, const char *after_board_id, uint32_t limit,
                        hiscore_board_details *boards, size_t cap, size_t *count, int *more) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__ListBoardsRequest q = HISCORE__V1__LIST_BOARDS_REQUEST__INIT;
    Response *r;
    uint32_t effective = limit;
    size_t i, n;
    int st;
    REQUIRE(1, "");
    if (effective == 0) {
        uint32_t page_max = c->hello.max_page_entries;
        effective = page_max != 0 && page_max < DEFAULT_LIST_LIMIT ? page_max : DEFAULT_LIST_LIMIT;
    }
    REQUIRE(boards != NULL && effective <= cap,
            "boards array smaller than the limit (0 means min(100, max_page_entries))");
    if (count != NULL) *count = 0;
    if (more != NULL) *more = 0;
    q.after_board_id = (char *)(after_board_id != NULL ? after_board_id : "");
    q.limit = limit;
    req.method_case = HISCORE__V1__REQUEST__METHOD_LIST_BOARDS;
    req.list_boards = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_LIST_BOARDS, &r);
    if (st != HISCORE_OK) return st;
    n = r->list_boards != NULL ? r->list_boards->n_boards : 0;
    if (n > effective) {
        hiscore__v1__response__free_unpacked(r, NULL);
        return set_status(c, HISCORE_ERR_PROTOCOL, "server returned %zu boards for a limit of %u", n,
                          (unsigned)effective);
    }
    for (i = 0; i < n; i++) fill_board_details(&boards[i], r->list_boards->boards[i]);
    if (count != NULL) *count = n;
    if (more != NULL) *more = r->list_boards != NULL && r->list_boards->more;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_reset_board(hiscore_client *c, const char *board_id, uint64_t *archived_period_id,
                        uint64_t *archived_entries) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__ResetBoardRequest q = HISCORE__V1__RESET_BOARD_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(board_id != NULL, "board_id is required");
    q.board_id = (char *)board_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_RESET_BOARD;
    req.reset_board = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_RESET_BOARD, &r);
    if (st != HISCORE_OK) return st;
    if (archived_period_id != NULL)
        *archived_period_id = r->reset_board != NULL ? r->reset_board->archived_period_id : 0;
    if (archived_entries != NULL)
        *archived_entries = r->reset_board != NULL ? r->reset_board->archived_entries : 0;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

/* hiscore_entries and hiscore_entries_with_missing (missing NULL, cap 0: not asked). */
static int entries_call(hiscore_client *c, const char *board_id, const char *const *player_ids,
                        size_t n_players, int rank_mode, uint64_t period_id, hiscore_entry *entries,
                        size_t cap, size_t *count, uint64_t *board_size, hiscore_id *missing,
                        size_t missing_cap, size_t *n_missing) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__EntriesRequest q = HISCORE__V1__ENTRIES_REQUEST__INIT;
    Response *r;
    size_t i, n, m;
    int st;
    REQUIRE(board_id != NULL && (player_ids != NULL || n_players == 0), "NULL argument");
    REQUIRE(entries != NULL || cap == 0, "entries is NULL");
    REQUIRE(n_players <= cap, "entries array smaller than n_players");
    REQUIRE(missing != NULL || missing_cap == 0, "missing is NULL");
    for (i = 0; i < n_players; i++) REQUIRE(player_ids[i] != NULL, "a player id is NULL");
    if (count != NULL) *count = 0;
    if (n_missing != NULL) *n_missing = 0;
    q.board_id = (char *)board_id;
    q.n_player_ids = n_players;
    q.player_ids = (char **)player_ids;
    q.rank_mode = (Hiscore__V1__RankMode)rank_mode;
    q.period_id = period_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_ENTRIES;
    req.entries = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_ENTRIES, &r);
    if (st != HISCORE_OK) return st;
    n = r->entries != NULL ? r->entries->n_entries : 0;
    m = r->entries != NULL ? r->entries->n_missing_player_ids : 0;
    if (n > cap || m > n_players) {
        hiscore__v1__response__free_unpacked(r, NULL);
        return set_status(c, HISCORE_ERR_PROTOCOL,
                          "server returned %zu entries and %zu missing ids for %zu players", n, m,
                          n_players);
    }
    for (i = 0; i < m && i < missing_cap; i++) {
        const char *id = r->entries->missing_player_ids[i];
        if (id == NULL || strlen(id) > HISCORE_MAX_ID_BYTES) {
            hiscore__v1__response__free_unpacked(r, NULL);
            return set_status(c, HISCORE_ERR_PROTOCOL, "missing player id longer than %d bytes",
                              HISCORE_MAX_ID_BYTES);
        }
        copy_cstr(missing[i].id, sizeof missing[i].id, id);
    }
    if (n_missing != NULL) *n_missing = m;
    if (n > 0) copy_entries(c, r->entries->entries, n, entries, cap, count);
    if (board_size != NULL) *board_size = r->entries != NULL ? r->entries->board_size : 0;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_entries(hiscore_client *c, const char *board_id, const char *const *player_ids,
                    size_t n_players, int rank_mode, uint64_t period_id, hiscore_entry *entries,
                    size_t cap, size_t *count, uint64_t *board_size) {
    return entries_call(c, board_id, player_ids, n_players, rank_mode, period_id, entries, cap,
                        count, board_size, NULL, 0, NULL);
}

int hiscore_entries_with_missing(hiscore_client *c, const char *board_id,
                                 const char *const *player_ids, size_t n_players, int rank_mode,
                                 uint64_t period_id, hiscore_entry *entries, size_t cap,
                                 size_t *count, uint64_t *board_size, hiscore_id *missing,
                                 size_t missing_cap, size_t *n_missing) {
    return entries_call(c, board_id, player_ids, n_players, rank_mode, period_id, entries, cap,
                        count, board_size, missing, missing_cap, n_missing);
}

int hiscore_delete_board(hiscore_client *c, const char *board_id, uint64_t *removed_entries) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__DeleteBoardRequest q = HISCORE__V1__DELETE_BOARD_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(board_id != NULL, "board_id is required");
    q.board_id = (char *)board_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_DELETE_BOARD;
    req.delete_board = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_DELETE_BOARD, &r);
    if (st != HISCORE_OK) return st;
    if (removed_entries != NULL)
        *removed_entries = r->delete_board != NULL ? r->delete_board->removed_entries : 0;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_erase_player(hiscore_client *c, const char *player_id, uint64_t *removed_entries) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__ErasePlayerRequest q = HISCORE__V1__ERASE_PLAYER_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(player_id != NULL, "player_id is required");
    q.player_id = (char *)player_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_ERASE_PLAYER;
    req.erase_player = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_ERASE_PLAYER, &r);
    if (st != HISCORE_OK) return st;
    if (removed_entries != NULL)
        *removed_entries = r->erase_player != NULL ? r->erase_player->removed_entries : 0;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_remove_player(hiscore_client *c, const char *board_id, const char *player_id,
                          hiscore_entry *removed) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__RemovePlayerRequest q = HISCORE__V1__REMOVE_PLAYER_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(board_id != NULL && player_id != NULL, "board_id and player_id are required");
    q.board_id = (char *)board_id;
    q.player_id = (char *)player_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_REMOVE_PLAYER;
    req.remove_player = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_REMOVE_PLAYER, &r);
    if (st != HISCORE_OK) return st;
    if (removed != NULL) copy_entry(removed, r->remove_player != NULL ? r->remove_player->entry : NULL);
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_authenticate(hiscore_client *c, const char *token, hiscore_auth_info *out,
                         hiscore_id *boards, size_t cap) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__AuthenticateRequest q = HISCORE__V1__AUTHENTICATE_REQUEST__INIT;
    const Hiscore__V1__AuthenticateResponse *a;
    Response *r;
    size_t i;
    int st;
    REQUIRE(token != NULL, "token is required");
    REQUIRE(strlen(token) <= HISCORE_MAX_TOKEN_BYTES, "token longer than HISCORE_MAX_TOKEN_BYTES");
    REQUIRE(boards != NULL || cap == 0, "boards is NULL");
    if (out != NULL) memset(out, 0, sizeof *out);
    q.token = (char *)token;
    req.method_case = HISCORE__V1__REQUEST__METHOD_AUTHENTICATE;
    req.authenticate = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_AUTHENTICATE, &r);
    if (st != HISCORE_OK) return st;
    a = r->authenticate;
    if (out != NULL && a != NULL) {
        out->role = (int)a->role;
        copy_cstr(out->player_id, sizeof out->player_id, a->player_id);
        out->expires_at = a->expires_at;
        out->n_boards = a->n_boards;
        for (i = 0; i < a->n_boards && i < cap; i++)
            copy_cstr(boards[i].id, sizeof boards[i].id, a->boards[i]);
    }
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_backup(hiscore_client *c, const char *destination, uint64_t *files,
                   uint64_t *linked_files, uint64_t *copied_bytes) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__BackupRequest q = HISCORE__V1__BACKUP_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(destination != NULL, "destination is required");
    q.destination = (char *)destination;
    req.method_case = HISCORE__V1__REQUEST__METHOD_BACKUP;
    req.backup = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_BACKUP, &r);
    if (st != HISCORE_OK) return st;
    if (files != NULL) *files = r->backup != NULL ? r->backup->files : 0;
    if (linked_files != NULL) *linked_files = r->backup != NULL ? r->backup->linked_files : 0;
    if (copied_bytes != NULL) *copied_bytes = r->backup != NULL ? r->backup->copied_bytes : 0;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

int hiscore_cancel(hiscore_client *c, uint64_t call_id, int *cancelled) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__CancelRequest q = HISCORE__V1__CANCEL_REQUEST__INIT;
    Response *r;
    int st;
    REQUIRE(1, "");
    q.call_id = call_id;
    req.method_case = HISCORE__V1__REQUEST__METHOD_CANCEL;
    req.cancel = &q;
    st = unary_expect(c, &req, HISCORE__V1__RESPONSE__RESULT_CANCEL, &r);
    if (st != HISCORE_OK) return st;
    if (cancelled != NULL) *cancelled = r->cancel != NULL && r->cancel->cancelled;
    hiscore__v1__response__free_unpacked(r, NULL);
    return HISCORE_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Subscriptions */

int hiscore_subscribe(hiscore_client *c, const hiscore_subscribe_query *q, uint64_t *subscription_id) {
    Request req = HISCORE__V1__REQUEST__INIT;
    Hiscore__V1__SubscribeRequest s = HISCORE__V1__SUBSCRIBE_REQUEST__INIT;
    Hiscore__V1__SubscribeAround around = HISCORE__V1__SUBSCRIBE_AROUND__INIT;
    Hiscore__V1__SubscribeFeed feed = HISCORE__V1__SUBSCRIBE_FEED__INIT;
    Response *r = NULL;
    int64_t deadline;
    int st;
    REQUIRE(q != NULL && q->board_id != NULL && subscription_id != NULL, "NULL argument");
    st = check_connected(c);
    if (st != HISCORE_OK) return st;
    if (c->n_subs >= HISCORE_MAX_SUBSCRIPTIONS)
        return set_status(c, HISCORE_RESOURCE_EXHAUSTED,
                          "at most %d subscriptions per connection (HISCORE_MAX_SUBSCRIPTIONS, the "
                          "server's default max_subscriptions); not sent. A slot frees when "
                          "hiscore_poll_event returns its stream's END event",
                          HISCORE_MAX_SUBSCRIPTIONS);
    s.board_id = (char *)q->board_id;
    s.min_interval_ms = q->min_interval_ms;
    s.rank_mode = (Hiscore__V1__RankMode)q->rank_mode;
    switch (q->target) {
    case HISCORE_SUB_PLAYER:
        REQUIRE(q->player_id != NULL, "player_id is required");
        s.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_PLAYER_ID;
        s.player_id = (char *)q->player_id;
        break;
    case HISCORE_SUB_TOP:
        s.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_TOP;
        s.top = q->top;
        break;
    case HISCORE_SUB_AROUND:
        REQUIRE(q->player_id != NULL, "player_id is required");
        around.player_id = (char *)q->player_id;
        around.before = q->before;
        around.after = q->after;
        s.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_AROUND;
        s.around = &around;
        break;
    case HISCORE_SUB_FEED:
        s.target_case = HISCORE__V1__SUBSCRIBE_REQUEST__TARGET_FEED;
        s.feed = &feed;
        break;
    default:
        return set_status(c, HISCORE_ERR_ARG, "unknown subscription target %d", q->target);
    }
    req.method_case = HISCORE__V1__REQUEST__METHOD_SUBSCRIBE;
    req.subscribe = &s;
    deadline = deadline_after(c->timeout_ms);
    st = send_request(c, &req, deadline);
    if (st != HISCORE_OK) return st;
    *subscription_id = req.call_id;
    c->subs[c->n_subs++] = req.call_id;
    st = wait_for(c, req.call_id, deadline, &r);
    if (st == HISCORE_ERR_TIMEOUT && c->fd >= 0) {
        forget_subscription(c, req.call_id);
        send_cancel_nowait(c, req.call_id);
        return set_status(c, HISCORE_ERR_TIMEOUT, "no first event within %d ms (cancelled)", c->timeout_ms);
    }
    if (st != HISCORE_OK) {
        forget_subscription(c, req.call_id);
        return st;
    }
    if (r->result_case == HISCORE__V1__RESPONSE__RESULT_EVENT) {
        /* The stream is live: hand the snapshot to hiscore_poll_event. */
        return enqueue(c, r) == HISCORE_OK ? ok(c) : c->last_status;
    }
    forget_subscription(c, req.call_id);
    st = response_code(r);
    if (st == HISCORE_OK) {
        hiscore__v1__response__free_unpacked(r, NULL);
        return set_status(c, HISCORE_ERR_PROTOCOL, "stream ended before its first event");
    }
    set_status(c, st, "%s: %s", hiscore_status_name(st), response_message(r));
    hiscore__v1__response__free_unpacked(r, NULL);
    return st;
}

static void fill_event(hiscore_client *c, const Response *r, hiscore_event *ev) {
    hiscore_event_item *items = ev->items;
    size_t cap = ev->items_cap, i;
    memset(ev, 0, sizeof *ev);
    ev->items = items;
    ev->items_cap = cap;
    ev->subscription_id = r->call_id;
    if (r->result_case != HISCORE__V1__RESPONSE__RESULT_EVENT) {
        ev->type = HISCORE_EVENT_END;
        ev->final_status = response_code(r);
        copy_cstr(ev->final_message, sizeof ev->final_message, response_message(r));
        forget_subscription(c, r->call_id);
        return;
    }
    ev->board_version = r->event->board_version;
    ev->snapshot = r->event->snapshot != 0;
    switch (r->event->change_case) {
    case HISCORE__V1__RANK_EVENT__CHANGE_PLAYER:
        ev->type = HISCORE_EVENT_PLAYER;
        copy_entry(&ev->entry, r->event->player->entry);
        ev->previous_rank = r->event->player->previous_rank;
        ev->present = r->event->player->present != 0;
        break;
    case HISCORE__V1__RANK_EVENT__CHANGE_WINDOW: {
        const Hiscore__V1__WindowUpdate *w = r->event->window;
        ev->type = HISCORE_EVENT_WINDOW;
        ev->window_size = w->window_size;
        ev->total_items = w->n_entries + w->n_changes;
        for (i = 0; i < w->n_entries && ev->n_items < cap; i++) {
            hiscore_event_item *it = &items[ev->n_items++];
            memset(it, 0, sizeof *it);
            copy_entry(&it->entry, w->entries[i]);
            it->position = (uint32_t)i;
        }
        for (i = 0; i < w->n_changes && ev->n_items < cap; i++) {
            hiscore_event_item *it = &items[ev->n_items++];
            memset(it, 0, sizeof *it);
            it->kind = (int)w->changes[i]->kind;
            copy_entry(&it->entry, w->changes[i]->entry);
            it->position = w->changes[i]->position;
            it->previous_position = w->changes[i]->previous_position;
        }
        break;
    }
    case HISCORE__V1__RANK_EVENT__CHANGE_FEED: {
        const Hiscore__V1__FeedBatch *f = r->event->feed;
        ev->type = HISCORE_EVENT_FEED;
        ev->total_items = f->n_items;
        for (i = 0; i < f->n_items && ev->n_items < cap; i++) {
            hiscore_event_item *it = &items[ev->n_items++];
            memset(it, 0, sizeof *it);
            copy_entry(&it->entry, f->items[i]->entry);
            it->previous_rank = f->items[i]->previous_rank;
            it->created = f->items[i]->created != 0;
            it->removed = f->items[i]->removed != 0;
            it->board_version = f->items[i]->board_version;
        }
        break;
    }
    default:
        ev->type = HISCORE_EVENT_EMPTY;
        break;
    }
}

int hiscore_poll_event(hiscore_client *c, int timeout_ms, hiscore_event *ev) {
    int64_t deadline;
    REQUIRE(ev != NULL, "ev is NULL");
    REQUIRE(ev->items != NULL || ev->items_cap == 0, "ev->items is NULL");
    if (c->queue_head != NULL) {
        struct hiscore_queued_frame *q = c->queue_head;
        c->queue_head = q->next;
        if (c->queue_head == NULL) c->queue_tail = NULL;
        c->queue_len--;
        fill_event(c, q->resp, ev);
        hiscore__v1__response__free_unpacked(q->resp, NULL);
        free(q);
        return ok(c);
    }
    if (c->fd < 0) return set_status(c, HISCORE_ERR_CLOSED, "not connected");
    deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        Response *r;
        int st;
        if (timeout_ms == 0) deadline = now_ms(); /* just check what is readable */
        st = next_response(c, deadline, &r);
        if (st == HISCORE_ERR_TIMEOUT) return set_status(c, HISCORE_ERR_NO_EVENT, "no event");
        if (st != HISCORE_OK) return st;
        if (r->call_id == 0) return connection_error(c, r);
        if (is_subscription(c, r->call_id)) {
            fill_event(c, r, ev);
            hiscore__v1__response__free_unpacked(r, NULL);
            return ok(c);
        }
        hiscore__v1__response__free_unpacked(r, NULL);
    }
}

int hiscore_unsubscribe(hiscore_client *c, uint64_t subscription_id) {
    int cancelled = 0;
    REQUIRE(1, "");
    if (!is_subscription(c, subscription_id))
        return set_status(c, HISCORE_ERR_ARG, "no live subscription %llu", (unsigned long long)subscription_id);
    return hiscore_cancel(c, subscription_id, &cancelled);
}
