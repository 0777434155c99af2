/* test_sampler.c: sampler semantics (greedy, seeds, top-k, top-p, min-p, temperature against the
 * softmax over many draws, llama.cpp repeat penalty, OpenAI presence/frequency with RWKV decay),
 * exact state save/restore, speed at V = 65536, and the stop-string matcher. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "sampler.h"
#include "testing.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Params with every filter and penalty off. */
static struct rwkv7_sampler_params plain(float temp, uint64_t seed) {
    struct rwkv7_sampler_params p;
    rwkv7_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    return p;
}

static struct rwkv7_sampler *make(const struct rwkv7_sampler_params *p, int n_vocab) {
    struct rwkv7_sampler *s = NULL;
    enum rwkv7_status st = rwkv7_sampler_init(p, n_vocab, &s);
    CHECK(st == RWKV7_OK, "sampler_init: %s", rwkv7_last_error());
    if (!s) exit(1);
    return s;
}

static void random_logits(float *x, int n, unsigned long long seed) {
    struct test_rng r = {seed};
    for (int i = 0; i < n; i++) x[i] = test_rng_uniform(&r, -4.0f, 4.0f);
}

static void test_greedy_and_seeds(void) {
    enum { V = 1000 };
    static float x[V];
    random_logits(x, V, 7);
    int am = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[am]) am = i;
    float keep[V];
    memcpy(keep, x, sizeof keep);

    struct rwkv7_sampler_params p = plain(0.0f, 1);
    struct rwkv7_sampler *s = make(&p, V);
    CHECK(rwkv7_sampler_sample(s, x) == am, "temperature 0 is not argmax");
    CHECK(memcmp(keep, x, sizeof keep) == 0, "sample modified the caller's logits");
    rwkv7_sampler_free(s);

    p = plain(-1.0f, 1);
    s = make(&p, 4);
    float tie[4] = {1, 3, 3, 2};
    CHECK(rwkv7_sampler_sample(s, tie) == 1, "greedy tie does not pick the lowest id");
    rwkv7_sampler_free(s);

    p = plain(1.0f, 1);
    p.top_k = 1;
    s = make(&p, V);
    int ok = 1;
    for (int i = 0; i < 50; i++) ok &= rwkv7_sampler_sample(s, x) == am;
    CHECK(ok, "top_k 1 is not greedy");
    rwkv7_sampler_free(s);

    p = plain(1.0f, 1);
    p.top_p = 1e-6f;
    s = make(&p, V);
    ok = 1;
    for (int i = 0; i < 50; i++) ok &= rwkv7_sampler_sample(s, x) == am;
    CHECK(ok, "tiny top_p is not greedy");
    rwkv7_sampler_free(s);

    /* Same seed, same sequence; another seed, another sequence. */
    int32_t a[200], b[200], c[200];
    struct rwkv7_sampler_params pa = plain(1.0f, 1234), pc = plain(1.0f, 1235);
    struct rwkv7_sampler *sa = make(&pa, V), *sb = make(&pa, V), *sc = make(&pc, V);
    for (int i = 0; i < 200; i++) {
        a[i] = rwkv7_sampler_sample(sa, x);
        b[i] = rwkv7_sampler_sample(sb, x);
        c[i] = rwkv7_sampler_sample(sc, x);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed gave different tokens");
    CHECK(memcmp(a, c, sizeof a) != 0, "different seeds gave the same 200 tokens");
    rwkv7_sampler_reset(sa);
    for (int i = 0; i < 200; i++) b[i] = rwkv7_sampler_sample(sa, x);
    CHECK(memcmp(a, b, sizeof a) == 0, "reset does not restart the random stream");
    CHECK(rwkv7_sampler_seed(sa) == 1234, "seed");
    rwkv7_sampler_free(sa);
    rwkv7_sampler_free(sb);
    rwkv7_sampler_free(sc);

    p = plain(1.0f, RWKV7_SEED_RANDOM);
    s = make(&p, V);
    CHECK(rwkv7_sampler_seed(s) != RWKV7_SEED_RANDOM, "random seed was not chosen");
    rwkv7_sampler_free(s);

    p = plain(1.0f, 1);
    p.top_p = -0.5f;
    s = NULL;
    CHECK(rwkv7_sampler_init(&p, V, &s) == RWKV7_ERR_ARG && !s, "negative top_p accepted");
    p = plain(1.0f, 1);
    p.repeat_penalty = 0.0f;
    CHECK(rwkv7_sampler_init(&p, V, &s) == RWKV7_ERR_ARG, "repeat_penalty 0 accepted");
}

/* Draws n tokens and compares frequencies with the expected probabilities (0 = never drawn). */
static void check_freq(const char *what, struct rwkv7_sampler *s, const float *x, int V,
                       const double *want, int n) {
    int count[16] = {0};
    for (int i = 0; i < n; i++) {
        int32_t t = rwkv7_sampler_sample(s, x);
        if (t >= 0 && t < V) count[t]++;
    }
    for (int i = 0; i < V; i++) {
        double f = (double)count[i] / n, sd = sqrt(want[i] * (1 - want[i]) / n);
        if (want[i] == 0) CHECK(count[i] == 0, "%s: token %d drawn %d times", what, i, count[i]);
        else CHECK(fabs(f - want[i]) < 5 * sd + 1e-3, "%s: token %d freq %.4f want %.4f", what,
                   i, f, want[i]);
    }
}

static void test_distributions(void) {
    enum { V = 8, N = 100000 };
    const float x[V] = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, -3.0f};
    const float T = 0.7f;
    double p[V], z = 0;
    for (int i = 0; i < V; i++) z += p[i] = exp((double)x[i] / T);
    for (int i = 0; i < V; i++) p[i] /= z;

    struct rwkv7_sampler_params pp = plain(T, 42);
    struct rwkv7_sampler *s = make(&pp, V);
    check_freq("temperature", s, x, V, p, N);
    rwkv7_sampler_free(s);

    /* top-k 3 keeps tokens 4, 5, 1, renormalised. */
    double w[V] = {0};
    double zk = p[4] + p[5] + p[1];
    w[4] = p[4] / zk;
    w[5] = p[5] / zk;
    w[1] = p[1] / zk;
    pp = plain(T, 43);
    pp.top_k = 3;
    s = make(&pp, V);
    check_freq("top_k 3", s, x, V, w, N);
    rwkv7_sampler_free(s);

    /* top-p: the smallest best-first prefix whose mass reaches top_p (heap path, no top-k). */
    int order[V] = {4, 5, 1, 0, 2, 6, 3, 7};
    double cum = 0;
    int m = 0;
    while (m < V) {
        cum += p[order[m++]];
        if (cum >= 0.8) break;
    }
    memset(w, 0, sizeof w);
    for (int i = 0; i < m; i++) w[order[i]] = p[order[i]] / cum;
    pp = plain(T, 44);
    pp.top_p = 0.8f;
    s = make(&pp, V);
    check_freq("top_p 0.8", s, x, V, w, N);
    rwkv7_sampler_free(s);
    /* The same through the sorted (top-k) path. */
    pp.top_k = 6;
    s = make(&pp, V);
    check_freq("top_k 6 + top_p 0.8", s, x, V, w, N);
    rwkv7_sampler_free(s);

    /* min-p 0.3: keep p >= 0.3 * p_max. */
    memset(w, 0, sizeof w);
    double zm = 0;
    for (int i = 0; i < V; i++)
        if (p[i] >= 0.3 * p[4]) zm += p[i];
    for (int i = 0; i < V; i++)
        if (p[i] >= 0.3 * p[4]) w[i] = p[i] / zm;
    CHECK(w[1] == 0 && w[5] > 0, "min-p test setup");
    pp = plain(T, 45);
    pp.min_p = 0.3f;
    s = make(&pp, V);
    check_freq("min_p 0.3", s, x, V, w, N);
    rwkv7_sampler_free(s);

    /* -inf and NaN logits are never drawn. */
    float y[V] = {-INFINITY, 0.0f, NAN, 0.0f, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    double wy[V] = {0, 0.5, 0, 0.5, 0, 0, 0, 0};
    pp = plain(1.0f, 46);
    s = make(&pp, V);
    check_freq("inf/nan", s, y, V, wy, 20000);
    rwkv7_sampler_free(s);
}

static int cmp_desc(const void *a, const void *b) {
    const float *x = a, *y = b;
    return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : x[1] > y[1] ? 1 : x[1] < y[1] ? -1 : 0;
}

/* A wide nucleus over heavily tied logits: every draw must lie in the exact best-first prefix
 * (ties ordered by id), computed here by a full sort. */
static void test_nucleus_ties(void) {
    enum { V = 5000 };
    static float x[V], pairs[V][2];
    static unsigned char in[V];
    struct test_rng r = {3};
    double z = 0;
    for (int i = 0; i < V; i++) {
        x[i] = 0.25f * (float)(test_rng_next(&r) % 20);
        pairs[i][0] = x[i];
        pairs[i][1] = (float)i;
        z += exp(x[i]);
    }
    qsort(pairs, V, sizeof pairs[0], cmp_desc);
    double cum = 0;
    int m = 0;
    while (m < V) {
        cum += exp(pairs[m][0]);
        in[(int)pairs[m++][1]] = 1;
        if (cum >= 0.5 * z) break;
    }
    struct rwkv7_sampler_params pp = plain(1.0f, 8);
    pp.top_p = 0.5f;
    struct rwkv7_sampler *s = make(&pp, V);
    int outside = 0;
    for (int i = 0; i < 3000; i++) outside += !in[rwkv7_sampler_sample(s, x)];
    CHECK(outside == 0, "%d of 3000 draws outside the %d-token nucleus", outside, m);
    rwkv7_sampler_free(s);
}

static void test_penalties(void) {
    enum { V = 10 };
    float x[V], y[V];
    for (int i = 0; i < V; i++) x[i] = (float)(i % 2 ? i : -i);
    struct rwkv7_sampler_params pp = plain(1.0f, 1);
    pp.repeat_penalty = 2.0f;
    pp.repeat_last_n = 2;
    pp.penalty_decay = 1.0f;
    struct rwkv7_sampler *s = make(&pp, V);
    rwkv7_sampler_accept(s, 3);
    rwkv7_sampler_accept(s, 1);
    rwkv7_sampler_accept(s, 2);
    rwkv7_sampler_accept(s, 2); /* window now {2, 2}: token 2 once, 1 and 3 have left */
    memcpy(y, x, sizeof y);
    rwkv7_sampler_apply_penalties(s, y);
    CHECK(y[2] == -4.0f, "repeat penalty on negative logit gave %g", (double)y[2]);
    CHECK(y[1] == 1.0f && y[3] == 3.0f, "tokens outside the window penalised");
    rwkv7_sampler_accept(s, 5);
    memcpy(y, x, sizeof y);
    rwkv7_sampler_apply_penalties(s, y);
    CHECK(y[5] == 2.5f && y[2] == -4.0f, "repeat penalty on positive logit gave %g", (double)y[5]);
    rwkv7_sampler_free(s);

    /* Presence 0.25 + frequency 1 with decay 0.5: accept 5, 5, 6 -> counts 5: 0.75, 6: 1. */
    pp = plain(1.0f, 1);
    pp.presence_penalty = 0.25f;
    pp.frequency_penalty = 1.0f;
    pp.penalty_decay = 0.5f;
    s = make(&pp, V);
    rwkv7_sampler_accept(s, 5);
    rwkv7_sampler_accept(s, 5);
    rwkv7_sampler_accept(s, 6);
    rwkv7_sampler_accept(s, 99); /* out of range: ignored, no decay step */
    memcpy(y, x, sizeof y);
    rwkv7_sampler_apply_penalties(s, y);
    CHECK(fabsf(y[5] - (5.0f - 1.0f)) < 1e-6f, "decayed penalty on 5 gave %g", (double)y[5]);
    CHECK(fabsf(y[6] - (-6.0f - 1.25f)) < 1e-6f, "decayed penalty on 6 gave %g", (double)y[6]);
    CHECK(y[4] == x[4] && y[0] == x[0], "unseen tokens penalised");
    rwkv7_sampler_free(s);

    /* Without decay the counts are plain OpenAI counts. */
    pp.penalty_decay = 1.0f;
    s = make(&pp, V);
    for (int i = 0; i < 3; i++) rwkv7_sampler_accept(s, 7);
    memcpy(y, x, sizeof y);
    rwkv7_sampler_apply_penalties(s, y);
    CHECK(fabsf(y[7] - (7.0f - 3.25f)) < 1e-6f, "undecayed penalty on 7 gave %g", (double)y[7]);

    /* The penalties steer greedy choice: 9 wins until penalised below 7. */
    pp = plain(0.0f, 1);
    pp.frequency_penalty = 3.0f;
    pp.penalty_decay = 1.0f;
    rwkv7_sampler_free(s);
    s = make(&pp, V);
    CHECK(rwkv7_sampler_sample(s, x) == 9, "greedy before penalty");
    rwkv7_sampler_accept(s, 9);
    CHECK(rwkv7_sampler_sample(s, x) == 7, "greedy after penalty");
    rwkv7_sampler_reset(s);
    CHECK(rwkv7_sampler_sample(s, x) == 9, "reset kept penalty counts");
    rwkv7_sampler_free(s);
}

static void test_state(void) {
    enum { V = 300 };
    static float x[V];
    random_logits(x, V, 99);
    struct rwkv7_sampler_params pp = plain(1.0f, 777);
    pp.repeat_penalty = 1.3f;
    pp.repeat_last_n = 16;
    pp.presence_penalty = 0.5f;
    pp.frequency_penalty = 0.5f;
    pp.penalty_decay = 0.996f;
    pp.top_p = 0.9f;
    struct rwkv7_sampler *a = make(&pp, V), *b = make(&pp, V);
    for (int i = 0; i < 37; i++) rwkv7_sampler_accept(a, rwkv7_sampler_sample(a, x));
    size_t n = rwkv7_sampler_state_size(a);
    unsigned char *blob = malloc(n);
    rwkv7_sampler_state_get(a, blob);
    int32_t ta[60], tb[60];
    for (int i = 0; i < 60; i++) rwkv7_sampler_accept(a, ta[i] = rwkv7_sampler_sample(a, x));
    CHECK(rwkv7_sampler_state_set(b, blob, n) == RWKV7_OK, "%s", rwkv7_last_error());
    for (int i = 0; i < 60; i++) rwkv7_sampler_accept(b, tb[i] = rwkv7_sampler_sample(b, x));
    CHECK(memcmp(ta, tb, sizeof ta) == 0, "restored sampler drew different tokens");
    /* Restoring into the first one rewinds it too. */
    CHECK(rwkv7_sampler_state_set(a, blob, n) == RWKV7_OK, "rewind");
    for (int i = 0; i < 60; i++) rwkv7_sampler_accept(a, tb[i] = rwkv7_sampler_sample(a, x));
    CHECK(memcmp(ta, tb, sizeof ta) == 0, "rewound sampler drew different tokens");

    CHECK(rwkv7_sampler_state_set(b, blob, n - 1) == RWKV7_ERR_FORMAT, "short blob accepted");
    blob[0] ^= 1;
    CHECK(rwkv7_sampler_state_set(b, blob, n) == RWKV7_ERR_FORMAT, "bad magic accepted");
    blob[0] ^= 1;
    struct rwkv7_sampler_params other = pp;
    other.repeat_last_n = 8;
    struct rwkv7_sampler *c = make(&other, V);
    CHECK(rwkv7_sampler_state_set(c, blob, n) == RWKV7_ERR_FORMAT, "window mismatch accepted");
    rwkv7_sampler_free(c);
    free(blob);
    rwkv7_sampler_free(a);
    rwkv7_sampler_free(b);
}

static void test_speed(void) {
    enum { V = 65536, N = 100 };
    float *x = malloc(V * sizeof *x);
    random_logits(x, V, 5);
    struct rwkv7_sampler_params cfg[3];
    rwkv7_sampler_params_default(&cfg[0]);
    cfg[0].seed = 1;
    cfg[1] = plain(1.0f, 1);
    cfg[1].top_p = 0.95f;
    cfg[2] = cfg[1];
    cfg[2].top_p = 1.0f;
    cfg[2].presence_penalty = 0.5f;
    for (int k = 0; k < 3; k++) {
        struct rwkv7_sampler *s = make(&cfg[k], V);
        double t0 = now_s();
        for (int i = 0; i < N; i++) rwkv7_sampler_accept(s, rwkv7_sampler_sample(s, x));
        double dt = (now_s() - t0) / N;
        fprintf(stderr, "config %d: %.3f ms per draw at V = %d\n", k, dt * 1e3, V);
        CHECK(dt < 0.05, "config %d: %.3f ms per draw", k, dt * 1e3);
        rwkv7_sampler_free(s);
    }
    free(x);
}

/* Feeds text in chunks of `step` bytes and returns what was printed, the match and held bytes. */
static int run_stop(struct rwkv7_stop *st, const char *text, size_t step, char *printed,
                    size_t *n_printed) {
    size_t o = 0, n = strlen(text);
    int matched = -1;
    rwkv7_stop_reset(st);
    for (size_t i = 0; i < n && matched < 0; i += step) {
        size_t k = n - i < step ? n - i : step;
        const char *e;
        size_t ne;
        CHECK(rwkv7_stop_feed(st, text + i, k, &matched, &e, &ne) == RWKV7_OK, "feed");
        memcpy(printed + o, e, ne);
        o += ne;
    }
    if (matched < 0) {
        const char *e;
        size_t ne;
        rwkv7_stop_flush(st, &e, &ne);
        memcpy(printed + o, e, ne);
        o += ne;
    }
    printed[o] = 0;
    *n_printed = o;
    return matched;
}

static void test_stop(void) {
    const char *stops[] = {"\n\n", "\nUser:", "</answer>"};
    struct rwkv7_stop *st = NULL;
    CHECK(rwkv7_stop_init(stops, 3, &st) == RWKV7_OK, "%s", rwkv7_last_error());
    if (!st) return;
    static const struct { const char *text, *printed; int matched; } c[] = {
        {"Hello there.\n\nUser: again", "Hello there.", 0},
        {"one\nUser: two", "one", 1},
        {"a\nUse b\n\n", "a\nUse b", 0},
        {"x</answ y</answer> z", "x</answ y", 2},
        {"no stop here\n", "no stop here\n", -1},
        {"\n", "\n", -1},
        {"\n\n", "", 0},
        {"tail </ans", "tail </ans", -1},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        for (size_t step = 1; step <= 7; step++) {
            char out[128];
            size_t n;
            int m = run_stop(st, c[i].text, step, out, &n);
            CHECK(m == c[i].matched && strcmp(out, c[i].printed) == 0,
                  "case %zu step %zu: matched %d printed '%s'", i, step, m, out);
        }

    /* Held bytes: "\nUs" could still become "\nUser:", so nothing of it is released. */
    rwkv7_stop_reset(st);
    int m;
    const char *e;
    size_t ne;
    rwkv7_stop_feed(st, "ok\nUs", 5, &m, &e, &ne);
    CHECK(m == -1 && ne == 2 && memcmp(e, "ok", 2) == 0, "released %zu", ne);
    CHECK(rwkv7_stop_held(st) == 3, "held %zu", rwkv7_stop_held(st));
    rwkv7_stop_feed(st, "e", 1, &m, &e, &ne);
    CHECK(m == -1 && ne == 0 && rwkv7_stop_held(st) == 4, "still held");
    rwkv7_stop_feed(st, "d", 1, &m, &e, &ne);
    CHECK(m == -1 && ne == 5 && memcmp(e, "\nUsed", 5) == 0, "released after mismatch");
    CHECK(rwkv7_stop_held(st) == 0, "held after mismatch");
    rwkv7_stop_feed(st, "\n\nmore", 6, &m, &e, &ne);
    CHECK(m == 0 && ne == 0, "match in one feed");
    rwkv7_stop_feed(st, "later", 5, &m, &e, &ne);
    CHECK(m == 0 && ne == 0, "feed after a match released %zu", ne);
    rwkv7_stop_free(st);

    const char *bad[] = {"ok", ""};
    st = NULL;
    CHECK(rwkv7_stop_init(bad, 2, &st) == RWKV7_ERR_ARG && !st, "empty stop string accepted");
    CHECK(rwkv7_stop_init(NULL, 0, &st) == RWKV7_OK, "no stop strings");
    if (st) {
        rwkv7_stop_feed(st, "abc", 3, &m, &e, &ne);
        CHECK(m == -1 && ne == 3 && rwkv7_stop_held(st) == 0, "pass-through");
        rwkv7_stop_free(st);
    }
}

int main(void) {
    test_greedy_and_seeds();
    test_distributions();
    test_nucleus_ties();
    test_penalties();
    test_state();
    test_speed();
    test_stop();
    return test_finish("test_sampler");
}
