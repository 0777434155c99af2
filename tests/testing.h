/* testing.h: tiny test harness shared by tests/test_*.c. CHECK records a failure and goes on
 * (late abort, so one run shows every broken case); TEST_SKIP exits with CTest's skip code 77.
 * Logit comparison helpers implement the fixtures README metric: rel_maxdiff, mean KL, top-1. */
#ifndef RWKV7_TESTING_H
#define RWKV7_TESTING_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int g_test_failures = 0;
static int g_test_checks = 0;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        g_test_checks++;                                                   \
        if (!(cond)) {                                                     \
            g_test_failures++;                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

#define TEST_SKIP(...)                          \
    do {                                        \
        fprintf(stderr, "SKIP: ");              \
        fprintf(stderr, __VA_ARGS__);           \
        fprintf(stderr, "\n");                  \
        exit(77);                               \
    } while (0)

/* Call at the end of main: prints a summary and returns the exit code. A test that ran no
 * check at all fails: it cannot have tested anything. */
static inline int test_finish(const char *name) {
    if (g_test_checks == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    fprintf(stderr, "%s: %d checks, %d failed\n", name, g_test_checks, g_test_failures);
    return g_test_failures ? 1 : 0;
}

static inline int test_path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Path of a file in tests/data. The data is part of the repository, so a missing file is a
 * failure of the checkout, never a reason to skip. RWKV7_TEST_DATA overrides the folder compiled
 * in, for test programs run from another copy of the repository (tools/gpu-check.sh --from-pack). */
static inline const char *test_fixture(char *buf, size_t cap, const char *rel) {
    const char *dir = getenv("RWKV7_TEST_DATA");
    snprintf(buf, cap, "%s/%s", dir && *dir ? dir : RWKV7_FIXTURES_DIR, rel);
    if (!test_path_exists(buf)) {
        fprintf(stderr, "FAIL: test data %s is missing from the checkout\n", buf);
        exit(1);
    }
    return buf;
}

/* Reads a whole file; returns NULL if it cannot. *n receives the byte count. */
static inline void *test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(sz > 0 ? (size_t)sz : 1);
    if (buf && sz > 0 && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (n) *n = (size_t)sz;
    return buf;
}

struct test_logit_cmp {
    double rel_maxdiff, mean_kl, top1;
};

/* Compares n_rows x n_vocab logits against a reference (fixtures README "How to compare"). */
static inline struct test_logit_cmp test_compare_logits(const float *ours, const float *ref,
                                                        int n_rows, int n_vocab) {
    struct test_logit_cmp c = {0, 0, 0};
    double maxdiff = 0, maxref = 0;
    int agree = 0;
    for (int r = 0; r < n_rows; r++) {
        const float *o = ours + (size_t)r * n_vocab, *q = ref + (size_t)r * n_vocab;
        double mo = -INFINITY, mq = -INFINITY;
        int ao = 0, aq = 0;
        for (int i = 0; i < n_vocab; i++) {
            double d = fabs((double)o[i] - q[i]);
            if (!(d <= maxdiff)) maxdiff = isnan(d) ? INFINITY : d;
            if (fabs(q[i]) > maxref) maxref = fabs(q[i]);
            if (o[i] > mo) { mo = o[i]; ao = i; }
            if (q[i] > mq) { mq = q[i]; aq = i; }
        }
        double so = 0, sq = 0;
        for (int i = 0; i < n_vocab; i++) {
            so += exp(o[i] - mo);
            sq += exp(q[i] - mq);
        }
        double kl = 0;
        for (int i = 0; i < n_vocab; i++) {
            double lq = q[i] - mq - log(sq), lo = o[i] - mo - log(so);
            kl += exp(lq) * (lq - lo);
        }
        c.mean_kl += isfinite(kl) ? kl : INFINITY;
        agree += ao == aq;
    }
    c.rel_maxdiff = maxref > 0 ? maxdiff / maxref : maxdiff;
    c.mean_kl /= n_rows;
    c.top1 = (double)agree / n_rows;
    return c;
}

/* Deterministic xorshift RNG for seeded random inputs. */
struct test_rng { unsigned long long s; };
static inline unsigned long long test_rng_next(struct test_rng *r) {
    r->s ^= r->s << 13; r->s ^= r->s >> 7; r->s ^= r->s << 17;
    return r->s;
}
/* Uniform in [lo, hi). */
static inline float test_rng_uniform(struct test_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((test_rng_next(r) >> 40) * (1.0 / 16777216.0));
}

/* Standard normal (Box-Muller). */
static inline float test_rng_gauss(struct test_rng *r) {
    float u1 = test_rng_uniform(r, 1e-7f, 1.0f), u2 = test_rng_uniform(r, 0.0f, 1.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* An RWKV-7 decay as the model makes it, w = exp(-0.606531 sigmoid(z)) in [0.545, 0.9999]: ~60%
 * of the channels at 0.99..0.9999 (long memory, where chunk-boundary errors would persist), ~20%
 * near the floor and the rest spread. Shared by the CPU, Vulkan and CUDA WKV-7 tests. */
static inline float test_rng_decay(struct test_rng *r) {
    float pick = test_rng_uniform(r, 0.0f, 1.0f), z;
    if (pick < 0.6f)
        z = test_rng_uniform(r, -9.0f, -4.0f);
    else if (pick < 0.8f)
        z = test_rng_uniform(r, 3.0f, 9.0f);
    else
        z = test_rng_uniform(r, -4.0f, 3.0f);
    float w = expf(-0.606531f * (1.0f / (1.0f + expf(-z))));
    return w < 0.9999f ? w : 0.9999f;
}

#endif
