/* test_serve_load.c: 64 concurrent streaming requests against one `rwkv7 serve` on the CPU
 * backend (World fixture model, 64 slots): every stream complete and well-formed, each text equal
 * to what `rwkv7 batch` gives for the same request (same seed), and aggregate generated tokens/s
 * at least 90% of `rwkv7 batch` on the same requests (its own "generated tok/s"). The machine may
 * be shared, so each side runs up to three times and the best rate of each is compared. Skipped
 * under sanitizers, where timings mean nothing. About half a minute. */
#define _GNU_SOURCE
#include "testing.h"

#include "json.h"
#include "serve_testing.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

#define N_REQ 64
#define MAX_TOKENS 64

static char g_dir[200], g_model[512];

static void body_of(int i, char *b, size_t cap) {
    snprintf(b, cap, "{\"prompt\":\"Request %d: tell me a story about the number %d.\",\"max_tokens\":%d,\"temperature\":0.8,"
                     "\"seed\":%d,\"ignore_eos\":true%s}", i, i, MAX_TOKENS, i, "");
}

/* rwkv7 batch over the same requests; returns its generated tok/s (0 on failure), texts in out[]. */
static double run_batch(char **texts) {
    char p[512], cmd[2048], body[512];
    snprintf(p, sizeof p, "%s/in.jsonl", g_dir);
    FILE *f = fopen(p, "w");
    if (!f) return 0;
    for (int i = 0; i < N_REQ; i++) {
        body_of(i, body, sizeof body);
        fprintf(f, "{\"custom_id\":\"%d\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":%s}\n", i, body);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' batch -m '%s' --backend cpu -np %d -i '%s/in.jsonl' -o '%s/out.jsonl' --overwrite "
                              "--no-progress 2> '%s/batch.err'",
             RWKV7_CLI_PATH, g_model, N_REQ, g_dir, g_dir, g_dir);
    if (system(cmd) != 0) return 0;
    snprintf(p, sizeof p, "%s/batch.err", g_dir);
    size_t n = 0;
    char *err = test_read_file(p, &n), *e = err ? realloc(err, n + 1) : NULL;
    if (!e) return free(err), 0;
    e[n] = 0;
    const char *q = strstr(e, "generated tok/s");
    double rate = 0;
    if (q) {
        while (q > e && q[-1] != ';') q--;
        rate = atof(q);
    }
    free(e);
    snprintf(p, sizeof p, "%s/out.jsonl", g_dir);
    char *out = test_read_file(p, &n), *o = out ? realloc(out, n + 1) : NULL;
    if (!o) return free(out), 0;
    o[n] = 0;
    for (char *line = strtok(o, "\n"); line; line = strtok(NULL, "\n")) {
        struct json_value v;
        if (json_parse(line, strlen(line), NULL, &v) != RWKV7_OK) continue;
        const struct json_value *id = json_get(&v, "custom_id");
        const char *t = st_choice_text(json_get(json_get(&v, "response"), "body"));
        int i = id && id->type == JSON_STRING ? atoi(id->str) : -1;
        if (i >= 0 && i < N_REQ && t && !texts[i]) texts[i] = strdup(t);
        json_free(&v);
    }
    free(o);
    return rate;
}

/* All requests at once as streams; returns generated tok/s (0 when any stream is broken). */
static double run_serve(const struct srv *s, char **const ref) {
    int fds[N_REQ];
    char *buf[N_REQ];
    size_t len[N_REQ], cap[N_REQ];
    char body[512], head[512];
    double t0 = st_now();
    for (int i = 0; i < N_REQ; i++) {
        body_of(i, body, sizeof body);
        size_t bl = strlen(body) - 1;
        body[bl] = 0;
        strcat(body, ",\"stream\":true}");
        fds[i] = st_connect(s);
        int hn = snprintf(head, sizeof head, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
                          strlen(body));
        if (fds[i] < 0 || !st_send_all(fds[i], head, (size_t)hn) || !st_send_all(fds[i], body, strlen(body))) return 0;
        cap[i] = 1 << 16;
        len[i] = 0;
        buf[i] = malloc(cap[i] + 1);
    }
    int open_n = N_REQ;
    struct pollfd p[N_REQ];
    while (open_n > 0 && st_now() - t0 < 300) {
        for (int i = 0; i < N_REQ; i++) p[i] = (struct pollfd){fds[i], POLLIN, 0};
        if (poll(p, N_REQ, 1000) <= 0) continue;
        for (int i = 0; i < N_REQ; i++) {
            if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (len[i] == cap[i]) buf[i] = realloc(buf[i], (cap[i] *= 2) + 1);
            ssize_t r = recv(fds[i], buf[i] + len[i], cap[i] - len[i], 0);
            if (r > 0) len[i] += (size_t)r;
            else {
                close(fds[i]);
                fds[i] = -1;
                open_n--;
            }
        }
    }
    double dt = st_now() - t0;
    long long tokens = 0;
    bool all_ok = open_n == 0;
    for (int i = 0; i < N_REQ; i++) {
        if (fds[i] >= 0) close(fds[i]);
        buf[i][len[i]] = 0;
        char *b = strstr(buf[i], "\r\n\r\n");
        size_t bn = b ? len[i] - (size_t)(b + 4 - buf[i]) : 0;
        struct st_sse *e = malloc(sizeof *e);
        bool ok = b && !strncmp(buf[i], "HTTP/1.1 200", 12) && st_dechunk(b + 4, &bn) && st_parse_sse(b + 4, bn, false, e);
        ok = ok && e->completion_tokens == MAX_TOKENS && !strcmp(e->finish, "length");
        CHECK(ok, "stream %d complete and well-formed", i);
        if (ok) {
            CHECK(ref[i] && !strcmp(ref[i], e->text), "stream %d == rwkv7 batch: '%s' vs '%s'", i, e->text, ref[i] ? ref[i] : "");
            tokens += e->completion_tokens;
        }
        all_ok &= ok;
        free(e);
        free(buf[i]);
    }
    return all_ok && dt > 0 ? (double)tokens / dt : 0;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
#ifdef UNDER_SANITIZER
    TEST_SKIP("throughput is not measured under sanitizers");
#endif
    st_require_serve();
    test_fixture(g_model, sizeof g_model, "world/world-c128-Q8_0.gguf");
    snprintf(g_dir, sizeof g_dir, "/tmp/rwkv7-test-serve-load-%d", (int)getpid());
    mkdir(g_dir, 0755);
    char *ref[N_REQ] = {0};
    struct srv s;
    char np[16];
    snprintf(np, sizeof np, "%d", N_REQ);
    const char *args[] = {"-np", np, "--state-cache", "0", NULL};
    CHECK(st_start_ready(&s, g_dir, "load", g_model, args) == 0, "server starts");
    double best_batch = 0, best_serve = 0;
    for (int round = 0; round < 3 && s.pid; round++) {
        double b = run_batch(ref), v = run_serve(&s, ref);
        CHECK(b > 0 && v > 0, "round %d ran (batch %.1f, serve %.1f tok/s)", round, b, v);
        if (b > best_batch) best_batch = b;
        if (v > best_serve) best_serve = v;
        fprintf(stderr, "round %d: rwkv7 batch %.1f generated tok/s, rwkv7 serve (%d streams) %.1f tok/s\n", round, b, N_REQ, v);
        if (best_serve >= 0.9 * best_batch || g_test_failures) break;
    }
    fprintf(stderr, "best: batch %.1f tok/s, serve %.1f tok/s (%.0f%%)\n", best_batch, best_serve,
            best_batch > 0 ? 100 * best_serve / best_batch : 0);
    CHECK(best_serve >= 0.9 * best_batch, "serve reaches 90%% of batch: %.1f vs %.1f tok/s", best_serve, best_batch);
    if (s.pid) {
        CHECK(st_stop(&s, 30) == 0, "server exits 0");
        CHECK(!st_sanitizer_report(&s), "no sanitizer report");
    }
    for (int i = 0; i < N_REQ; i++) free(ref[i]);
    return test_finish("test_serve_load");
}
