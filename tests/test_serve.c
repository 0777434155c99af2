/* test_serve.c: `rwkv7 serve` end to end over loopback with a raw HTTP client: health, models,
 * metrics; completions and chat with usage numbers, seed determinism, stop strings, logprobs; SSE framing
 * (every event "data: {json}\n\n", the last "data: [DONE]", text equal to the plain response);
 * OpenAI error objects for bad bodies and fields; 401/404/405/413/429; hostile HTTP (garbage
 * request lines, huge headers, bad lengths, binary junk, half-sent requests, a slow client) after
 * which the server still answers; clients that vanish or stop reading free their slots; batch
 * invariance (a seeded request alone == among others); state reuse over a 5-turn conversation
 * (each turn prefills only its new text, replies equal full-history prefill without a cache); and
 * SIGTERM draining (exit 0 within the bound). Every server must exit 0 and its stderr must hold
 * no sanitizer report (the ASan build of tools/test.sh runs this too). Bounded: about a minute. */
#define _GNU_SOURCE /* strcasestr */
#include <pthread.h>

#include "testing.h"

#include "json.h"
#include "serve_testing.h"

static char g_dir[200], g_model[512];

static void test_basics(const struct srv *s) {
    struct st_resp r;
    CHECK(st_http(s, "GET", "/health", NULL, NULL, &r) == 0 && r.status == 200 && strstr(r.body, "\"ok\""), "health: %s", r.raw);
    st_resp_free(&r);
    struct json_value v;
    CHECK(st_http(s, "GET", "/v1/models", NULL, NULL, &r) == 0 && r.status == 200, "models");
    if (r.body && json_parse(r.body, r.body_n, NULL, &v) == RWKV7_OK) {
        const struct json_value *d = json_get(&v, "data");
        const struct json_value *id = d && d->type == JSON_ARRAY && d->len == 1 ? json_get(&d->items[0], "id") : NULL;
        CHECK(id && id->type == JSON_STRING && !strcmp(id->str, "tiny-rwkv7-834K-F32.gguf"), "models id");
        json_free(&v);
    } else {
        CHECK(0, "models body is not JSON: %s", r.raw);
    }
    st_resp_free(&r);
    CHECK(st_metric(s, "rwkv7_model_loaded") == 1, "metrics: model_loaded");
    CHECK(st_metric(s, "rwkv7_slots") == 4, "metrics: slots");
}

/* Plain completion; returns the text (malloc'ed) or NULL. */
static char *complete(const struct srv *s, const char *body, struct json_value *keep) {
    struct json_value v;
    int st = st_post_json(s, "/v1/completions", NULL, body, &v);
    CHECK(st == 200, "POST %s -> %d", body, st);
    if (st < 0 || st == -2) return NULL;
    const char *t = st_choice_text(&v);
    char *out = t ? strdup(t) : NULL;
    if (keep) *keep = v;
    else json_free(&v);
    return out;
}

static void test_completions(const struct srv *s) {
    struct json_value v;
    char *t = complete(s, "{\"prompt\":\"Hello\",\"max_tokens\":12,\"temperature\":0,\"ignore_eos\":true}", &v);
    CHECK(t && strlen(t) > 0, "greedy text");
    CHECK(st_usage(&v, "prompt_tokens") == 5 && st_usage(&v, "completion_tokens") == 12 && st_usage(&v, "total_tokens") == 17,
          "usage numbers");
    const struct json_value *obj = json_get(&v, "object");
    CHECK(obj && obj->type == JSON_STRING && !strcmp(obj->str, "text_completion"), "object");
    json_free(&v);
    /* seed determinism */
    char *a = complete(s, "{\"prompt\":\"Once\",\"max_tokens\":24,\"temperature\":1,\"seed\":42,\"ignore_eos\":true}", NULL);
    char *b = complete(s, "{\"prompt\":\"Once\",\"max_tokens\":24,\"temperature\":1,\"seed\":42,\"ignore_eos\":true}", NULL);
    CHECK(a && b && !strcmp(a, b), "same seed, same text: '%s' vs '%s'", a ? a : "", b ? b : "");
    bool differs = false;
    for (int seed = 43; seed < 47 && a; seed++) {
        char body[256];
        snprintf(body, sizeof body, "{\"prompt\":\"Once\",\"max_tokens\":24,\"temperature\":1,\"seed\":%d,\"ignore_eos\":true}", seed);
        char *c = complete(s, body, NULL);
        differs |= c && strcmp(a, c);
        free(c);
    }
    CHECK(differs, "other seeds give other texts");
    /* stop string: cut the greedy text at a piece of it */
    if (t && strlen(t) >= 6) {
        char stop[4] = {t[3], t[4], t[5], 0}, body[256];
        snprintf(body, sizeof body, "{\"prompt\":\"Hello\",\"max_tokens\":12,\"temperature\":0,\"ignore_eos\":true,\"stop\":[\"%s\"]}", stop);
        char *c = complete(s, body, &v);
        size_t cut = (size_t)(strstr(t, stop) - t);
        CHECK(c && strlen(c) == cut && !strncmp(c, t, cut), "stop '%s': '%s' from '%s'", stop, c ? c : "", t);
        const struct json_value *ch = json_get(&v, "choices");
        const struct json_value *f = ch && ch->len ? json_get(&ch->items[0], "finish_reason") : NULL;
        CHECK(f && f->type == JSON_STRING && !strcmp(f->str, "stop"), "finish_reason stop");
        json_free(&v);
        free(c);
    }
    free(a);
    free(b);
    free(t);
}

static void test_sse(const struct srv *s) {
    static const char *const bodies[2] = {
        "{\"prompt\":\"The \",\"max_tokens\":40,\"temperature\":0.7,\"seed\":5,\"ignore_eos\":true%s}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"}],\"max_tokens\":40,\"temperature\":0.7,\"seed\":5%s}",
    };
    for (int chat = 0; chat < 2; chat++) {
        const char *path = chat ? "/v1/chat/completions" : "/v1/completions";
        char plain[512], streamed[512];
        snprintf(plain, sizeof plain, bodies[chat], "");
        snprintf(streamed, sizeof streamed, bodies[chat], ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
        struct json_value v;
        int st = st_post_json(s, path, NULL, plain, &v);
        CHECK(st == 200, "%s plain -> %d", path, st);
        if (st != 200) continue;
        struct st_resp r;
        CHECK(st_http(s, "POST", path, NULL, streamed, &r) == 0 && r.status == 200, "%s stream", path);
        CHECK(r.raw && strcasestr(r.raw, "Content-Type: text/event-stream"), "event-stream content type");
        struct st_sse e;
        bool ok = r.body && st_parse_sse(r.body, r.body_n, chat, &e);
        CHECK(ok, "SSE framing of %s: %s", path, r.raw ? r.raw : "");
        const char *t = st_choice_text(&v);
        if (ok) {
            CHECK(t && !strcmp(e.text, t), "stream text == plain text: '%s' vs '%s'", e.text, t ? t : "");
            CHECK(e.finish[0] && e.completion_tokens == st_usage(&v, "completion_tokens") &&
                      e.prompt_tokens == st_usage(&v, "prompt_tokens"),
                  "final chunk: finish '%s', usage %lld/%lld", e.finish, e.prompt_tokens, e.completion_tokens);
            CHECK(!chat || e.role_first, "first chat chunk carries the role");
        }
        st_resp_free(&r);
        json_free(&v);
    }
}

/* logprobs: one entry per generated token; under greedy sampling the chosen token is the most
 * likely alternative; alternatives come most likely first; every value is a log-probability. */
static void test_logprobs(const struct srv *s) {
    struct json_value v;
    int st = st_post_json(s, "/v1/completions", NULL,
                          "{\"prompt\":\"Hello\",\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true,\"logprobs\":3}", &v);
    CHECK(st == 200, "completion with logprobs -> %d", st);
    if (st == 200) {
        const struct json_value *ch = json_get(&v, "choices"), *lp = json_get(&ch->items[0], "logprobs");
        const struct json_value *toks = json_get(lp, "tokens"), *tlp = json_get(lp, "token_logprobs"),
                                *top = json_get(lp, "top_logprobs"), *off = json_get(lp, "text_offset");
        bool ok = toks && tlp && top && off && toks->len == 8 && tlp->len == 8 && top->len == 8 && off->len == 8;
        CHECK(ok, "completion logprobs: 8 entries in each list");
        size_t pos = 0;
        for (size_t i = 0; ok && i < 8; i++) {
            const struct json_value *t = &top->items[i];
            double best = -INFINITY, prev = INFINITY;
            for (size_t k = 0; k < t->len; k++) {
                best = fmax(best, t->members[k].value.num);
                CHECK(t->members[k].value.num <= prev && t->members[k].value.num <= 0, "alternatives sorted, <= 0");
                prev = t->members[k].value.num;
            }
            CHECK(t->len >= 1 && t->len <= 3 && fabs(best - tlp->items[i].num) < 1e-6,
                  "greedy token %zu is the most likely (%g vs %g)", i, tlp->items[i].num, best);
            CHECK(off->items[i].i == (int64_t)pos, "text_offset %zu", i);
            pos += toks->items[i].len;
        }
        json_free(&v);
    }
    st = st_post_json(s, "/v1/chat/completions", NULL,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":6,\"seed\":3,\"logprobs\":true,"
                      "\"top_logprobs\":2}", &v);
    CHECK(st == 200, "chat with logprobs -> %d", st);
    if (st == 200) {
        const struct json_value *ch = json_get(&v, "choices");
        const struct json_value *c = json_get(json_get(&ch->items[0], "logprobs"), "content");
        /* every generated token but an end-of-text token 0, which has no text */
        long long ct = st_usage(&v, "completion_tokens");
        CHECK(c && c->type == JSON_ARRAY && ((long long)c->len == ct || (long long)c->len + 1 == ct),
              "chat logprobs: one entry per token (%zu of %lld)", c ? c->len : 0, ct);
        for (size_t i = 0; c && i < c->len; i++) {
            const struct json_value *e = &c->items[i], *tl = json_get(e, "top_logprobs");
            CHECK(json_get(e, "token") && json_get(e, "bytes") && json_get(e, "logprob") && tl && tl->len == 2,
                  "chat logprob entry %zu", i);
        }
        json_free(&v);
    }
}

static void check_error(const struct srv *s, const char *method, const char *path, const char *headers, const char *body,
                        int want) {
    struct st_resp r;
    int rc = st_http(s, method, path, headers, body, &r);
    CHECK(rc == 0 && r.status == want, "%s %s %.60s -> %d, want %d", method, path, body ? body : "", r.status, want);
    struct json_value v;
    if (rc == 0 && strcmp(method, "HEAD")) {
        bool ok = json_parse(r.body, r.body_n, NULL, &v) == RWKV7_OK;
        const struct json_value *e = ok ? json_get(&v, "error") : NULL, *m = json_get(e, "message"), *t = json_get(e, "type");
        CHECK(m && m->type == JSON_STRING && t && t->type == JSON_STRING, "OpenAI error object for %d: %s", want, r.body);
        if (ok) json_free(&v);
    }
    st_resp_free(&r);
}

static void test_errors(const struct srv *s) {
    static const struct {
        const char *path, *body;
    } bad[] = {
        {"/v1/completions", "{"},
        {"/v1/completions", "[]"},
        {"/v1/completions", ""},
        {"/v1/completions", "{\"prompt\":\"\xff\xfe\"}"},
        {"/v1/completions", "{\"prompt\":\"a\",\"prompt\":\"b\"}"},
        {"/v1/completions", "{\"prompt\":5}"},
        {"/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":-1}"},
        {"/v1/completions", "{\"prompt\":\"a\",\"temperature\":\"hot\"}"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stream\":\"yes\"}"},
        {"/v1/completions", "{\"prompt\":\"a\",\"stream_options\":3}"},
        {"/v1/completions", "{\"prompt\":\"a\",\"n\":2}"},
        {"/v1/completions", "{\"prompt\":[99999999]}"},
        {"/v1/completions", "{\"prompt\":\"a\",\"logprobs\":99}"},
        {"/v1/completions", "{\"prompt\":\"a\",\"logprobs\":true}"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":1}"},
        {"/v1/chat/completions", "{\"messages\":[]}"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":7}]}"},
        {"/v1/chat/completions", "{\"messages\":\"hi\"}"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"think\":\"maybe\"}"},
        {"/v1/chat/completions", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) check_error(s, "POST", bad[i].path, NULL, bad[i].body, 400);
    check_error(s, "GET", "/v1/completions", NULL, NULL, 405);
    check_error(s, "DELETE", "/v1/models", NULL, NULL, 405);
    check_error(s, "POST", "/health", NULL, "{}", 405);
    check_error(s, "GET", "/v2/whatever", NULL, NULL, 404);
    check_error(s, "GET", "/", NULL, NULL, 404);
    check_error(s, "POST", "/v1/completions", "Content-Length: 999999999999\r\n", NULL, 413);
    /* a body over --max-body (64 KiB here) sent in full */
    size_t big = 80 * 1024;
    char *body = malloc(big + 32);
    memset(body, ' ', big);
    memcpy(body, "{\"prompt\":\"", 11);
    strcpy(body + big - 3, "\"}");
    for (size_t i = 11; i < big - 3; i++) body[i] = 'a';
    check_error(s, "POST", "/v1/completions", NULL, body, 413);
    free(body);
}

/* Sends raw bytes; returns the status of the answer, 0 when the server closed without one. */
static int raw_exchange(const struct srv *s, const char *bytes, size_t n, bool half_close) {
    int fd = st_connect(s);
    if (fd < 0) return -1;
    st_send_all(fd, bytes, n);
    if (half_close) shutdown(fd, SHUT_WR);
    size_t got = 0;
    char *r = st_read_all(fd, &got, 1 << 20);
    close(fd);
    int status = 0;
    if (got && sscanf(r, "HTTP/1.%*d %d", &status) != 1) status = -2;
    free(r);
    return status;
}

static void test_hostile(const struct srv *s) {
    static const char *const raws[] = {
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\n{}",
        "GET /he\0alth HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\n\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        size_t n = i == 8 ? 34 : strlen(raws[i]);
        int st = raw_exchange(s, raws[i], n, true);
        CHECK(st == 0 || (st >= 400 && st < 500) || st == 505, "raw request %zu answered %d (want 4xx, 505 or a close)", i, st);
    }
    /* a header block over the connection memory limit */
    size_t hn = 200 * 1024;
    char *h = malloc(hn + 64);
    int o = sprintf(h, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(h + o, 'a', hn);
    strcpy(h + o + hn, "\r\n\r\n");
    int st = raw_exchange(s, h, strlen(h), false);
    CHECK(st == 0 || (st >= 400 && st < 500), "huge header answered %d", st);
    /* many small headers */
    o = sprintf(h, "GET /health HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 5000 && o < (int)hn; i++) o += sprintf(h + o, "X-H%d: v\r\n", i);
    strcpy(h + o, "\r\n");
    st = raw_exchange(s, h, strlen(h), false);
    CHECK(st == 0 || (st >= 400 && st < 500), "many headers answered %d", st);
    /* binary junk */
    uint32_t x = 12345;
    for (size_t i = 0; i < 8192; i++) {
        x = x * 1103515245u + 12345u;
        h[i] = (char)(x >> 16);
    }
    st = raw_exchange(s, h, 8192, true);
    CHECK(st == 0 || (st >= 400 && st < 500), "binary junk answered %d", st);
    free(h);
    /* vanish mid-request: half the headers, then a reset */
    int fd = st_connect(s);
    if (fd >= 0) {
        st_send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le", 50);
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    }
    /* vanish mid-body */
    fd = st_connect(s);
    if (fd >= 0) {
        const char *p = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\":";
        st_send_all(fd, p, strlen(p));
        close(fd);
    }
    /* a slow client: headers never finished; --timeout 2 closes it */
    fd = st_connect(s);
    if (fd >= 0) {
        st_send_all(fd, "GET /health HTTP/1.1\r\nHo", 24);
        double t0 = st_now();
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        double dt = st_now() - t0;
        CHECK(r <= 0 && dt < 10, "slow client closed after %.1f s (recv %zd)", dt, r);
        close(fd);
    }
    struct st_resp rr;
    CHECK(st_http(s, "GET", "/health", NULL, NULL, &rr) == 0 && rr.status == 200, "still serving after hostile input");
    st_resp_free(&rr);
}

/* Waits up to limit_s for /metrics running_sequences and queue_depth to be 0. */
static bool wait_idle(const struct srv *s, double limit_s) {
    for (double t0 = st_now(); st_now() - t0 < limit_s; st_sleep_ms(50))
        if (st_metric(s, "rwkv7_running_sequences") == 0 && st_metric(s, "rwkv7_queue_depth") == 0) return true;
    return false;
}

/* Sends a request on a new socket and returns it without reading. */
static int send_only(const struct srv *s, const char *path, const char *headers, const char *body) {
    int fd = st_connect(s);
    if (fd < 0) return -1;
    char head[1024];
    int n = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n", path,
                     headers ? headers : "", strlen(body));
    st_send_all(fd, head, (size_t)n);
    st_send_all(fd, body, strlen(body));
    return fd;
}

static const char *k_endless = "{\"prompt\":\"x\",\"max_tokens\":100000000,\"ignore_eos\":true,\"stream\":true}";
static const char *k_endless_plain = "{\"prompt\":\"x\",\"max_tokens\":100000000,\"ignore_eos\":true}";

static void test_disconnects(const struct srv *s) {
    /* a stream read a little, then dropped */
    int fd = send_only(s, "/v1/completions", NULL, k_endless);
    char buf[2048];
    CHECK(fd >= 0 && recv(fd, buf, sizeof buf, 0) > 0, "endless stream starts");
    bool running = false;
    for (double t0 = st_now(); !running && st_now() - t0 < 5; st_sleep_ms(20))
        running = st_metric(s, "rwkv7_running_sequences") == 1;
    CHECK(running, "one running");
    close(fd);
    CHECK(wait_idle(s, 5), "a dropped stream frees its slot");
    /* a plain request dropped while it runs */
    fd = send_only(s, "/v1/completions", NULL, k_endless_plain);
    st_sleep_ms(300);
    CHECK(st_metric(s, "rwkv7_running_sequences") == 1, "plain request running");
    close(fd);
    CHECK(wait_idle(s, 5), "a dropped plain request frees its slot");
    /* a client that never reads: its socket fills, --timeout 2 ends it */
    fd = st_connect_rcvbuf(s, 4096);
    if (fd >= 0) {
        char head[512];
        int n = snprintf(head, sizeof head, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen(k_endless), k_endless);
        st_send_all(fd, head, (size_t)n);
        CHECK(wait_idle(s, 30), "a client that stops reading is dropped");
        close(fd);
    }
}

static void test_invariance(const struct srv *s) {
    const char *x = "{\"prompt\":\"The king\",\"max_tokens\":32,\"temperature\":1,\"seed\":7,\"ignore_eos\":true}";
    char *alone = complete(s, x, NULL);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":1,\"seed\":%d,\"ignore_eos\":true}",
                 i % 2 ? "Friends, Romans" : "To be", 20 + 5 * i, 100 + i);
        fds[i] = send_only(s, "/v1/completions", "Connection: close\r\n", i == 5 ? x : body);
    }
    for (int i = 0; i < 8; i++) {
        if (fds[i] < 0) continue;
        size_t n = 0;
        char *r = st_read_all(fds[i], &n, 1 << 20);
        close(fds[i]);
        if (i != 5) {
            free(r);
            continue;
        }
        char *b = strstr(r, "\r\n\r\n");
        struct json_value v;
        bool ok = b && json_parse(b + 4, strlen(b + 4), NULL, &v) == RWKV7_OK;
        const char *t = ok ? st_choice_text(&v) : NULL;
        CHECK(alone && t && !strcmp(alone, t), "alone == among 8: '%s' vs '%s'", alone ? alone : "", t ? t : "");
        if (ok) json_free(&v);
        free(r);
    }
    free(alone);
}

static void test_queue_and_key(const char *dir) {
    struct srv s;
    const char *args[] = {"-np", "1", "--max-queue", "1", "--api-key", "k3y", NULL};
    CHECK(st_start_ready(&s, dir, "queue", g_model, args) == 0, "server with -np 1 --max-queue 1 starts");
    if (!s.pid) return;
    const char *auth = "Authorization: Bearer k3y\r\n";
    check_error(&s, "POST", "/v1/completions", NULL, "{\"prompt\":\"a\"}", 401);
    check_error(&s, "POST", "/v1/completions", "Authorization: Bearer k3z\r\n", "{\"prompt\":\"a\"}", 401);
    check_error(&s, "POST", "/v1/completions", "Authorization: Bearer k3y4\r\n", "{\"prompt\":\"a\"}", 401);
    check_error(&s, "GET", "/v1/models", "Authorization: k3y\r\n", NULL, 401);
    struct st_resp r;
    CHECK(st_http(&s, "GET", "/v1/models", auth, NULL, &r) == 0 && r.status == 200, "right key: 200");
    st_resp_free(&r);
    CHECK(st_http(&s, "GET", "/health", NULL, NULL, &r) == 0 && r.status == 200, "/health needs no key");
    st_resp_free(&r);
    int a = send_only(&s, "/v1/completions", auth, k_endless);
    char buf[512];
    CHECK(a >= 0 && recv(a, buf, sizeof buf, 0) > 0, "first request answers");
    /* Its headers go out when it is queued; wait until it holds the slot. */
    bool running = false;
    for (double t0 = st_now(); !running && st_now() - t0 < 5; st_sleep_ms(20)) running = st_metric(&s, "rwkv7_running_sequences") == 1;
    CHECK(running, "first request runs");
    int b = send_only(&s, "/v1/completions", auth, k_endless_plain);
    bool queued = false;
    for (double t0 = st_now(); !queued && st_now() - t0 < 5; st_sleep_ms(20)) queued = st_metric(&s, "rwkv7_queue_depth") == 1;
    CHECK(queued, "second request waits");
    CHECK(st_http(&s, "POST", "/v1/completions", auth, "{\"prompt\":\"a\"}", &r) == 0 && r.status == 429 &&
              strcasestr(r.raw, "Retry-After:"),
          "third request: 429 with Retry-After: %s", r.raw ? r.raw : "");
    st_resp_free(&r);
    close(a);
    close(b);
    CHECK(wait_idle(&s, 5), "queue drains when its clients leave");
    CHECK(st_metric(&s, "rwkv7_requests_total{status=\"429\"}") == 1, "429 counted in /metrics");
    CHECK(st_stop(&s, 20) == 0, "queue server exits 0");
    CHECK(!st_sanitizer_report(&s), "no sanitizer report");
}

/* Sends a chat request; the reply text goes to reply (malloc'ed). Returns the parsed body. */
static int chat_turn(const struct srv *s, const char *const *users, char **replies, int turn, struct json_value *v) {
    struct json_buf b = {0};
    json_buf_printf(&b, "{\"max_tokens\":24,\"temperature\":0,\"seed\":11,\"messages\":[");
    for (int i = 0; i <= turn; i++) {
        json_buf_printf(&b, "%s{\"role\":\"user\",\"content\":", i ? "," : "");
        json_buf_string(&b, users[i], strlen(users[i]));
        json_buf_printf(&b, "}");
        if (i < turn) {
            json_buf_printf(&b, ",{\"role\":\"assistant\",\"content\":");
            json_buf_string(&b, replies[i], strlen(replies[i]));
            json_buf_printf(&b, "}");
        }
    }
    json_buf_printf(&b, "]}");
    json_buf_raw(&b, "", 1);
    int st = st_post_json(s, "/v1/chat/completions", NULL, b.p, v);
    json_buf_free(&b);
    return st;
}

static void test_state_reuse(const char *dir) {
    static const char *const users[5] = {"Hello, who art thou?", "What is thy name?", "Where dost thou live?",
                                         "Tell me of the king.", "Farewell, friend."};
    struct srv a, b;
    const char *none[] = {"--state-cache", "0", NULL};
    CHECK(st_start_ready(&a, dir, "reuse", g_model, NULL) == 0, "reuse server starts");
    CHECK(st_start_ready(&b, dir, "nocache", g_model, none) == 0, "no-cache server starts");
    if (!a.pid || !b.pid) return;
    char *replies[5] = {0};
    long long cached_sum = 0;
    for (int k = 0; k < 5; k++) {
        struct json_value v, w;
        int st = chat_turn(&a, users, replies, k, &v);
        CHECK(st == 200, "turn %d -> %d", k, st);
        if (st != 200) break;
        const char *t = st_choice_text(&v);
        replies[k] = strdup(t ? t : "");
        long long pt = st_usage(&v, "prompt_tokens"), ct = st_usage(&v, "cached_tokens");
        /* The byte-vocabulary model has one token per byte: the new text is "User: u\n\nAssistant:". */
        long long fresh = (long long)(strlen("User: ") + strlen(users[k]) + strlen("\n\nAssistant:"));
        CHECK(pt - ct == fresh, "turn %d prefills only its new text: prompt %lld, cached %lld, new %lld", k, pt, ct, fresh);
        cached_sum += ct;
        st = chat_turn(&b, users, replies, k, &w);
        const char *u = st == 200 ? st_choice_text(&w) : NULL;
        CHECK(u && !strcmp(u, replies[k]), "turn %d: reply with reuse == full-history prefill: '%s' vs '%s'", k, replies[k],
              u ? u : "");
        CHECK(st != 200 || st_usage(&w, "cached_tokens") == 0, "no cache, nothing cached");
        json_free(&v);
        if (st == 200) json_free(&w);
    }
    CHECK(st_metric(&a, "rwkv7_prompt_tokens_cached_total") == (double)cached_sum && cached_sum > 0,
          "/metrics counts the cached tokens (%lld)", cached_sum);
    CHECK(st_metric(&a, "rwkv7_state_cache_hits_total") >= 4, "state cache hits in /metrics");
    for (int k = 0; k < 5; k++) free(replies[k]);
    CHECK(st_stop(&a, 20) == 0 && st_stop(&b, 20) == 0, "reuse servers exit 0");
    CHECK(!st_sanitizer_report(&a) && !st_sanitizer_report(&b), "no sanitizer report");
}

/* SIGTERM with a short request and an endless one in flight: the short one completes, the
 * endless one is cancelled after --drain-timeout, the process exits 0 in time. */
static void test_sigterm(struct srv *s) {
    int longfd = send_only(s, "/v1/completions", NULL, k_endless);
    char buf[256];
    CHECK(longfd >= 0 && recv(longfd, buf, sizeof buf, 0) > 0, "endless stream before SIGTERM");
    int shortfd = send_only(s, "/v1/completions", "Connection: close\r\n",
                            "{\"prompt\":\"a\",\"max_tokens\":60,\"ignore_eos\":true,\"temperature\":0}");
    bool both = false;
    for (double t = st_now(); !both && st_now() - t < 5; st_sleep_ms(10)) {
        struct pollfd p = {shortfd, POLLIN, 0};
        both = st_metric(s, "rwkv7_running_sequences") == 2 || poll(&p, 1, 0) > 0; /* running, or done already */
    }
    CHECK(both, "both requests reached the engine before SIGTERM");
    double t0 = st_now();
    int rc = st_stop(s, 20);
    double dt = st_now() - t0;
    CHECK(rc == 0 && dt < 8, "SIGTERM: exit %d after %.1f s (drain 2 s)", rc, dt);
    size_t n = 0;
    char *r = st_read_all(shortfd, &n, 1 << 22);
    CHECK(strstr(r, "HTTP/1.1 200") && strstr(r, "\"completion_tokens\":60,"), "the short request finished during the drain: %.300s", r);
    free(r);
    r = st_read_all(longfd, &n, 64u << 20);
    CHECK(n > 0, "the endless stream ended");
    free(r);
    close(shortfd);
    close(longfd);
    CHECK(!st_sanitizer_report(s), "no sanitizer report");
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    st_require_serve();
    test_fixture(g_model, sizeof g_model, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    snprintf(g_dir, sizeof g_dir, "/tmp/rwkv7-test-serve-%d", (int)getpid());
    mkdir(g_dir, 0755);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' serve -m '%s/missing.gguf' 2>/dev/null", RWKV7_CLI_PATH, g_dir);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "a missing model: exit 2 before listening");
    snprintf(cmd, sizeof cmd, "'%s' serve -m '%s' --max-body 0 2>/dev/null", RWKV7_CLI_PATH, g_model);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "a bad flag value: exit 2");
    struct srv s;
    const char *args[] = {"-np", "4", "--max-body", "64", "--timeout", "2", "--drain-timeout", "2", NULL};
    CHECK(st_start_ready(&s, g_dir, "main", g_model, args) == 0, "server starts");
    if (s.pid) {
        test_basics(&s);
        test_completions(&s);
        test_sse(&s);
        test_logprobs(&s);
        test_errors(&s);
        test_hostile(&s);
        test_disconnects(&s);
        test_invariance(&s);
        test_sigterm(&s);
    }
    test_queue_and_key(g_dir);
    test_state_reuse(g_dir);
    return test_finish("test_serve");
}
