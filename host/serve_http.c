/* serve_http.c: the HTTP side of `rwkv7 serve` on libmicrohttpd (serve.h). One thread per
 * connection: a handler may block waiting for its job (a plain response) or inside the SSE content
 * reader (a stream), while the engine thread runs the model. A waiting thread wakes every 200 ms
 * to look at its socket, so a client that hung up cancels its job within that time and frees its
 * slot. Limits: bodies over --max-body get 413 before they are read (Content-Length) or as soon as
 * they pass it; headers over the connection memory limit get libmicrohttpd's own 431; an idle
 * connection or a client that stops reading is closed after --timeout seconds. */
#define _GNU_SOURCE /* POLLRDHUP */
#ifdef RWKV7_HAVE_MHD /* the whole file: without libmicrohttpd, cmd_serve.c only says so */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netdb.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "serve.h"

/* Appends a string literal (its length known at compile time). */
#define JSON_LIT(b, lit) json_buf_raw((b), "" lit, sizeof(lit) - 1) /* "" lit: literals only */

struct serve_http {
    struct MHD_Daemon *d;
    struct serve *s;
};

enum route { R_NONE, R_COMPLETIONS, R_CHAT, R_MODELS, R_HEALTH, R_METRICS };

/* Per request (libmicrohttpd's con_cls). */
struct conn {
    struct serve *s;
    struct MHD_Connection *c;
    enum route route;
    struct json_buf body;
    bool too_big;
    struct serve_job *job;
    struct json_buf out; /* SSE bytes not yet handed to libmicrohttpd */
    size_t out_off;
    bool stream_over;
};

void serve_job_unref(struct serve_job *j) {
    if (--j->refs == 0) serve_job_free(j);
}

/* The message of a job that ended without a result (caller holds s->mu). */
static const char *job_error(const struct serve_job *j) {
    if (j->status == 503) return "the server is shutting down";
    return j->error ? j->error : "generation failed";
}

static void count_status(struct serve *s, int status) {
    pthread_mutex_lock(&s->mu);
    if (status > 0 && status < SERVE_MAX_STATUS) s->by_status[status]++;
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result send_body(struct conn *k, int status, const char *ctype, const char *p, size_t n,
                                 const char *retry_after, const char *allow) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)p, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    if (allow) MHD_add_response_header(r, "Allow", allow);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ok = MHD_queue_response(k->c, (unsigned)status, r);
    MHD_destroy_response(r);
    count_status(k->s, status);
    return ok;
}

static enum MHD_Result send_json(struct conn *k, int status, struct json_buf *b) {
    if (b->oom) return MHD_NO;
    return send_body(k, status, "application/json", b->p, b->n, NULL, NULL);
}

static enum MHD_Result send_error(struct conn *k, int status, const char *msg, const char *retry_after,
                                  const char *allow) {
    struct json_buf b = {0};
    serve_error_json(&b, status, msg);
    enum MHD_Result ok = b.oom ? MHD_NO : send_body(k, status, "application/json", b.p, b.n, retry_after, allow);
    json_buf_free(&b);
    return ok;
}

/* True when the peer closed or reset the connection. */
static bool client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {ci->connect_fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Waits (s->mu held) up to 200 ms for j's condition variable. */
static void wait_job(struct serve *s, struct serve_job *j) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += 200 * 1000000L;
    if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&j->cv, &s->mu, &t);
}

static void cancel_job(struct serve *s, struct serve_job *j) {
    if (!j->done) {
        j->cancel = true;
        pthread_cond_signal(&s->engine_cv);
    }
}

/* libmicrohttpd's content reader for a stream: blocks until there is text or the end. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    struct conn *k = cls;
    struct serve *s = k->s;
    struct serve_job *j = k->job;
    if (k->out_off == k->out.n) {
        if (k->stream_over) return MHD_CONTENT_READER_END_OF_STREAM;
        k->out.n = k->out_off = 0;
        pthread_mutex_lock(&s->mu);
        for (;;) {
            if (j->sent < j->text.n) {
                serve_chunk_sse(&k->out, s, j, j->text.p + j->sent, j->text.n - j->sent, NULL);
                j->sent = j->text.n;
                break;
            }
            if (j->done) {
                if (j->status) {
                    JSON_LIT(&k->out, "data: ");
                    serve_error_json(&k->out, j->status, job_error(j));
                    JSON_LIT(&k->out, "\n");
                } else {
                    serve_chunk_sse(&k->out, s, j, "", 0, j->finish);
                }
                JSON_LIT(&k->out, "data: [DONE]\n\n");
                k->stream_over = true;
                break;
            }
            wait_job(s, j);
            if (!j->done && client_gone(k->c)) {
                cancel_job(s, j);
                pthread_mutex_unlock(&s->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (k->out.oom) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = k->out.n - k->out_off < max ? k->out.n - k->out_off : max;
    memcpy(buf, k->out.p + k->out_off, n);
    k->out_off += n;
    return (ssize_t)n;
}

/* A completion request whose body is complete. */
static enum MHD_Result run_completion(struct conn *k) {
    struct serve *s = k->s;
    pthread_mutex_lock(&s->mu);
    bool loaded = s->loaded, draining = s->draining;
    long long id = s->next_id++;
    pthread_mutex_unlock(&s->mu);
    if (draining) return send_error(k, 503, "the server is shutting down", "5", NULL);
    if (!loaded) return send_error(k, 503, "the model is loading", "5", NULL);
    struct serve_job *j = calloc(1, sizeof *j);
    if (!j) return send_error(k, 500, "out of memory", NULL, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->id = id;
    j->created = (long long)time(NULL);
    char err[600];
    int status = serve_parse(s, k->route == R_CHAT, k->body.p ? k->body.p : "", k->body.n, id, j, err, sizeof err);
    if (status) {
        serve_job_free(j);
        return send_error(k, status, err, NULL, NULL);
    }
    pthread_mutex_lock(&s->mu);
    if (s->n_waiting >= s->max_queue || s->draining) {
        bool dr = s->draining;
        pthread_mutex_unlock(&s->mu);
        serve_job_free(j);
        return dr ? send_error(k, 503, "the server is shutting down", "5", NULL)
                  : send_error(k, 429, "too many requests are waiting; retry later", "1", NULL);
    }
    struct serve_job **tail = &s->jobs;
    while (*tail) tail = &(*tail)->next;
    *tail = j;
    j->refs = 2; /* this connection and the engine */
    s->n_waiting++;
    k->job = j;
    pthread_cond_signal(&s->engine_cv);

    if (j->stream) {
        pthread_mutex_unlock(&s->mu);
        /* A small send buffer: a client that stops reading blocks the stream (and so reaches
         * --timeout) after 64 KiB instead of after the kernel's megabytes. */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(k->c, MHD_CONNECTION_INFO_CONNECTION_FD);
        int sndbuf = 64 * 1024;
        if (ci) setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, k, NULL);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        enum MHD_Result ok = MHD_queue_response(k->c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        count_status(s, 200);
        return ok;
    }
    while (!j->done) {
        wait_job(s, j);
        if (!j->done && client_gone(k->c)) {
            cancel_job(s, j);
            pthread_mutex_unlock(&s->mu);
            return MHD_NO; /* closes the connection */
        }
    }
    struct json_buf b = {0};
    if (!j->status) serve_result_json(&b, s, j);
    int st = j->status;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", job_error(j));
    pthread_mutex_unlock(&s->mu);
    if (st) return send_error(k, st, msg, NULL, NULL);
    enum MHD_Result ok = send_json(k, 200, &b);
    json_buf_free(&b);
    return ok;
}

/* "Bearer KEY" against the configured key, in time independent of where they differ. */
static bool authorized(struct serve *s, struct MHD_Connection *c) {
    if (!s->api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7)) return false;
    h += 7;
    size_t nh = strlen(h), nk = strlen(s->api_key);
    unsigned char diff = nh != nk;
    for (size_t i = 0; i < nk; i++) diff |= (unsigned char)((i < nh ? h[i] : 0) ^ s->api_key[i]);
    return diff == 0;
}

static enum route route_of(const char *url) {
    if (!strcmp(url, "/v1/completions")) return R_COMPLETIONS;
    if (!strcmp(url, "/v1/chat/completions")) return R_CHAT;
    if (!strcmp(url, "/v1/models")) return R_MODELS;
    if (!strcmp(url, "/health")) return R_HEALTH;
    if (!strcmp(url, "/metrics")) return R_METRICS;
    return R_NONE;
}

static enum MHD_Result on_get(struct conn *k) {
    struct serve *s = k->s;
    struct json_buf b = {0};
    enum MHD_Result ok;
    pthread_mutex_lock(&s->mu);
    bool loaded = s->loaded;
    if (k->route == R_METRICS) serve_metrics_text(&b, s);
    pthread_mutex_unlock(&s->mu);
    if (k->route == R_HEALTH) {
        json_buf_printf(&b, "{\"status\":\"%s\"}\n", loaded ? "ok" : "loading");
        ok = b.oom ? MHD_NO : send_body(k, loaded ? 200 : 503, "application/json", b.p, b.n, loaded ? NULL : "5", NULL);
    } else if (k->route == R_METRICS) {
        ok = b.oom ? MHD_NO : send_body(k, 200, "text/plain; version=0.0.4", b.p, b.n, NULL, NULL);
    } else {
        serve_models_json(&b, s, (long long)time(NULL));
        ok = send_json(k, 200, &b);
    }
    json_buf_free(&b);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    struct serve *s = cls;
    struct conn *k = *con_cls;
    if (!k) {
        /* First call: headers only. Errors that need no body are answered now, so a rejected
         * upload is never read. */
        if (!(k = calloc(1, sizeof *k))) return MHD_NO;
        k->s = s;
        k->c = c;
        k->route = route_of(url);
        *con_cls = k;
        bool post = k->route == R_COMPLETIONS || k->route == R_CHAT;
        bool get_ok = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (k->route == R_NONE) return send_error(k, 404, "no such endpoint", NULL, NULL);
        if (post ? strcmp(method, "POST") : !get_ok)
            return send_error(k, 405, "method not allowed", NULL, post ? "POST" : "GET, HEAD");
        if (!strncmp(url, "/v1/", 4) && !authorized(s, c))
            return send_error(k, 401, "missing or wrong API key (Authorization: Bearer KEY)", NULL, NULL);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (post && cl) {
            char *end;
            errno = 0;
            unsigned long long len = strtoull(cl, &end, 10);
            if (errno || end == cl || *end || len > s->max_body)
                return send_error(k, 413, "the request body is over --max-body", NULL, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!k->too_big && k->body.n + *upload_size <= s->max_body) json_buf_raw(&k->body, upload, *upload_size);
        else k->too_big = true;
        *upload_size = 0;
        if (k->body.oom) return MHD_NO;
        return MHD_YES;
    }
    if (k->job) return MHD_YES; /* already answered */
    if (k->too_big) return send_error(k, 413, "the request body is over --max-body", NULL, NULL);
    if (k->route == R_COMPLETIONS || k->route == R_CHAT) return run_completion(k);
    return on_get(k);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    struct serve *s = cls;
    struct conn *k = *con_cls;
    if (!k) return;
    if (k->job) {
        pthread_mutex_lock(&s->mu);
        cancel_job(s, k->job); /* a no-op when it finished */
        serve_job_unref(k->job);
        pthread_mutex_unlock(&s->mu);
    }
    json_buf_free(&k->body);
    json_buf_free(&k->out);
    free(k);
    *con_cls = NULL;
}

int serve_http_start(struct serve *s, const char *host, int port, struct serve_http **out, int *bound) {
    *out = NULL;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int gai = getaddrinfo(host, ps, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "rwkv7 serve: cannot use --host '%s': %s\n", host, gai_strerror(gai));
        return 2;
    }
    struct serve_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        fprintf(stderr, "rwkv7 serve: out of memory\n");
        return 1;
    }
    h->s = s;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_AUTO;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    /* Connections beyond the slots and the queue only wait to be refused; keep room for /health
     * and /metrics on top. */
    unsigned limit = (unsigned)(s->max_queue + (s->parallel > 0 ? s->parallel : 256) + 32);
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->timeout_s, MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        fprintf(stderr, "rwkv7 serve: cannot listen on %s:%d (in use, or not an address of this machine)\n", host, port);
        free(h);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = di ? di->port : port;
    *out = h;
    return 0;
}

void serve_http_quiesce(struct serve_http *h) {
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void serve_http_stop(struct serve_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
#else
typedef int rwkv7_serve_http_unused; /* ISO C wants a declaration in every file */
#endif
