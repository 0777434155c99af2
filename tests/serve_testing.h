/* serve_testing.h: helpers for the `rwkv7 serve` tests: start the server on 127.0.0.1 with port 0
 * (the port is read from its "listening on" line), raw HTTP/1.1 over loopback sockets (a test
 * client may speak HTTP by hand; the server may not), and stop it with SIGTERM checking its exit
 * code and that its stderr holds no sanitizer report. Include after testing.h and host/json.c. */
#ifndef RWKV7_SERVE_TESTING_H
#define RWKV7_SERVE_TESTING_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct srv {
    pid_t pid;
    int port;
    char err_path[256];
};

static inline double st_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline void st_sleep_ms(int ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Every server started, so none outlives a test that stops early. */
static pid_t st_pids[16];

static void st_kill_all(void) {
    for (int i = 0; i < 16; i++)
        if (st_pids[i] > 0) {
            kill(st_pids[i], SIGKILL);
            waitpid(st_pids[i], NULL, 0);
        }
}

/* Exits 77 when this build has no HTTP support. */
static inline void st_require_serve(void) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' serve -m /nonexistent 2>&1 | grep -q 'no HTTP support'", RWKV7_CLI_PATH);
    if (system(cmd) == 0) TEST_SKIP("rwkv7 was built without libmicrohttpd (no rwkv7 serve)");
}

/* Starts `rwkv7 serve -m model --port 0 args...` (args: NULL-terminated); 0 or -1. */
static inline int st_start(struct srv *s, const char *dir, const char *tag, const char *model, const char *const *args) {
    memset(s, 0, sizeof *s);
    snprintf(s->err_path, sizeof s->err_path, "%s/serve-%s.err", dir, tag);
    const char *argv[64];
    int n = 0;
    argv[n++] = RWKV7_CLI_PATH;
    argv[n++] = "serve";
    argv[n++] = "-m";
    argv[n++] = model;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--backend";
    argv[n++] = "cpu";
    for (int i = 0; args && args[i] && n < 62; i++) argv[n++] = args[i];
    argv[n] = NULL;
    unlink(s->err_path); /* never read the port of an earlier server from a stale file */
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(s->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 2);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) dup2(nul, 0), dup2(nul, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    static bool registered = false;
    if (!registered) atexit(st_kill_all);
    registered = true;
    for (int i = 0; i < 16; i++)
        if (st_pids[i] <= 0) {
            st_pids[i] = pid;
            break;
        }
    /* Wait for the port, then for /health (the model loads after the socket is up). */
    for (double t0 = st_now(); st_now() - t0 < 30;) {
        size_t len = 0;
        char *text = test_read_file(s->err_path, &len);
        if (text) {
            char *t = realloc(text, len + 1);
            if (t) {
                t[len] = 0;
                const char *p = strstr(t, "listening on http://127.0.0.1:");
                if (p) s->port = atoi(p + strlen("listening on http://127.0.0.1:"));
                text = t;
            }
            free(text);
        }
        if (s->port > 0) break;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            for (int i = 0; i < 16; i++)
                if (st_pids[i] == pid) st_pids[i] = 0;
            s->pid = 0;
            return -1;
        }
        st_sleep_ms(20);
    }
    return s->port > 0 ? 0 : -1;
}

/* A connected socket; rcvbuf > 0 shrinks its receive buffer first (a client that reads slowly). */
static inline int st_connect_rcvbuf(const struct srv *s, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int st_connect(const struct srv *s) { return st_connect_rcvbuf(s, 0); }

static inline bool st_send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until the peer closes (or max bytes / timeout); returns a malloc'ed NUL-terminated buffer. */
static inline char *st_read_all(int fd, size_t *n_out, size_t max) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
        }
        ssize_t r = recv(fd, b + n, cap - n, 0);
        if (r <= 0) break;
        n += (size_t)r;
        if (n >= max) break;
    }
    b[n] = 0;
    if (n_out) *n_out = n;
    return b;
}

struct st_resp {
    int status;
    char *raw;        /* whole response */
    const char *body; /* after the header block, de-chunked when chunked */
    size_t body_n;
};

/* Undoes chunked transfer coding in place; false when the framing is broken. */
static inline bool st_dechunk(char *b, size_t *n) {
    size_t in = 0, out = 0, len = *n;
    for (;;) {
        char *end;
        if (in >= len) return false;
        unsigned long sz = strtoul(b + in, &end, 16);
        char *crlf = strstr(b + in, "\r\n");
        if (!crlf || end > crlf) return false;
        in = (size_t)(crlf - b) + 2;
        if (sz == 0) break;
        if (in + sz + 2 > len) return false;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz + 2;
    }
    b[out] = 0;
    *n = out;
    return true;
}

static inline void st_resp_free(struct st_resp *r) {
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* One request on a fresh connection ("Connection: close"), whole response read. */
static inline int st_http(const struct srv *s, const char *method, const char *path, const char *headers, const char *body,
                   struct st_resp *out) {
    memset(out, 0, sizeof *out);
    int fd = st_connect(s);
    if (fd < 0) return -1;
    char head[2048];
    int hn = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%sContent-Length: %zu\r\n\r\n",
                      method, path, headers ? headers : "", body ? "Content-Type: application/json\r\n" : "",
                      body ? strlen(body) : 0);
    bool ok = st_send_all(fd, head, (size_t)hn) && (!body || st_send_all(fd, body, strlen(body)));
    size_t n = 0;
    out->raw = st_read_all(fd, &n, 64u << 20);
    close(fd);
    if (!ok || sscanf(out->raw, "HTTP/1.%*d %d", &out->status) != 1) return -1;
    char *b = strstr(out->raw, "\r\n\r\n");
    if (!b) return -1;
    b += 4;
    size_t bn = n - (size_t)(b - out->raw);
    if (strcasestr(out->raw, "Transfer-Encoding: chunked") && strcasestr(out->raw, "Transfer-Encoding: chunked") < b &&
        !st_dechunk(b, &bn))
        return -1;
    out->body = b;
    out->body_n = bn;
    return 0;
}

/* POST path with a JSON body; parses the response body into *v (caller json_free's when 0). */
static inline int st_post_json(const struct srv *s, const char *path, const char *headers, const char *body, struct json_value *v) {
    struct st_resp r;
    int rc = st_http(s, "POST", path, headers, body, &r);
    int status = rc == 0 ? r.status : -1;
    if (rc == 0 && json_parse(r.body, r.body_n, NULL, v) != RWKV7_OK) status = -2;
    st_resp_free(&r);
    return status;
}

/* The value of a "name value" line of /metrics, or -1. */
static inline double st_metric(const struct srv *s, const char *name) {
    struct st_resp r;
    double v = -1;
    if (st_http(s, "GET", "/metrics", NULL, NULL, &r) == 0 && r.status == 200) {
        char key[256];
        snprintf(key, sizeof key, "\n%s ", name);
        const char *p = strstr(r.body, key);
        if (p) v = atof(p + strlen(key));
    }
    st_resp_free(&r);
    return v;
}

/* st_start, then waits up to 30 s for /health to say the model is loaded. */
static inline int st_start_ready(struct srv *s, const char *dir, const char *tag, const char *model, const char *const *args) {
    if (st_start(s, dir, tag, model, args) != 0) return -1;
    for (double t0 = st_now(); st_now() - t0 < 30; st_sleep_ms(20)) {
        struct st_resp r;
        int rc = st_http(s, "GET", "/health", NULL, NULL, &r);
        int status = r.status;
        st_resp_free(&r);
        if (rc == 0 && status == 200) return 0;
    }
    return -1;
}

/* True when the server's stderr holds a sanitizer report. */
static inline bool st_sanitizer_report(const struct srv *s) {
    size_t n = 0;
    char *t = test_read_file(s->err_path, &n);
    if (!t) return false;
    char *z = realloc(t, n + 1);
    if (!z) {
        free(t);
        return false;
    }
    z[n] = 0;
    bool bad = strstr(z, "AddressSanitizer") || strstr(z, "runtime error:") || strstr(z, "LeakSanitizer");
    if (bad) fprintf(stderr, "--- server stderr (%s) ---\n%s\n---\n", s->err_path, z);
    free(z);
    return bad;
}

/* SIGTERM, then waits up to limit_s; returns the exit code, -1 when it had to be killed. */
static inline int st_stop(struct srv *s, double limit_s) {
    if (s->pid <= 0) return -1;
    for (int i = 0; i < 16; i++)
        if (st_pids[i] == s->pid) st_pids[i] = 0; /* reaped below: never signal its pid again */
    kill(s->pid, SIGTERM);
    int status = 0;
    for (double t0 = st_now(); st_now() - t0 < limit_s;) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        st_sleep_ms(20);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    return -1;
}

/* "text" (completions) or "message.content" (chat) of choices[0], or NULL. */
static inline const char *st_choice_text(const struct json_value *v) {
    const struct json_value *ch = json_get(v, "choices");
    if (!ch || ch->type != JSON_ARRAY || ch->len < 1) return NULL;
    const struct json_value *t = json_get(&ch->items[0], "text");
    if (!t) t = json_get(json_get(&ch->items[0], "message"), "content");
    return t && t->type == JSON_STRING ? t->str : NULL;
}

static inline long long st_usage(const struct json_value *v, const char *key) {
    const struct json_value *u = json_get(v, "usage");
    const struct json_value *x = !strcmp(key, "cached_tokens") ? json_get(json_get(u, "prompt_tokens_details"), key)
                                                               : json_get(u, key);
    return x && x->type == JSON_NUMBER && x->is_int ? (long long)x->i : -1;
}

/* Text, finish_reason and usage of an SSE body; false when the framing is broken. */
struct st_sse {
    char text[65536];
    size_t n;
    char finish[32];
    long long prompt_tokens, completion_tokens, cached_tokens;
    int events;
    bool role_first;
};

static inline bool st_parse_sse(const char *b, size_t n, bool chat, struct st_sse *o) {
    memset(o, 0, sizeof *o);
    o->prompt_tokens = o->completion_tokens = o->cached_tokens = -1;
    size_t a = 0;
    bool done = false;
    while (a < n) {
        const char *end = strstr(b + a, "\n\n");
        if (!end || strncmp(b + a, "data: ", 6) || done) return false;
        size_t len = (size_t)(end - b - a);
        if (len == 12 && !strncmp(b + a, "data: [DONE]", 12)) {
            done = true;
        } else {
            struct json_value v;
            if (json_parse(b + a + 6, len - 6, NULL, &v) != RWKV7_OK) return false;
            const struct json_value *ch = json_get(&v, "choices");
            if (!ch || ch->type != JSON_ARRAY) {
                json_free(&v);
                return false;
            }
            if (ch->len > 0) {
                const struct json_value *c0 = &ch->items[0], *t = chat ? json_get(json_get(c0, "delta"), "content") : json_get(c0, "text");
                if (o->events == 0 && chat) o->role_first = json_get(json_get(c0, "delta"), "role") != NULL;
                if (t && t->type == JSON_STRING && o->n + t->len < sizeof o->text) {
                    memcpy(o->text + o->n, t->str, t->len);
                    o->n += t->len;
                }
                const struct json_value *f = json_get(c0, "finish_reason");
                if (f && f->type == JSON_STRING) snprintf(o->finish, sizeof o->finish, "%s", f->str);
            }
            if (json_get(&v, "usage")) {
                o->prompt_tokens = st_usage(&v, "prompt_tokens");
                o->completion_tokens = st_usage(&v, "completion_tokens");
                o->cached_tokens = st_usage(&v, "cached_tokens");
            }
            json_free(&v);
            o->events++;
        }
        a += len + 2;
    }
    o->text[o->n] = 0;
    return done;
}

#endif
