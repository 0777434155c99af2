/* model_check.h: end-to-end checks of one model file on one backend, shared by test_model.c
 * (CPU) and test_gpu_model.c (Vulkan, CUDA): reference logits within the fixtures README limits
 * for prefill and token-by-token decoding, prefill == serial (logits and final state), batching
 * and step-size invariance. */
#ifndef RWKV7_MODEL_CHECK_H
#define RWKV7_MODEL_CHECK_H

#include "rwkv7.h"
#include "testing.h"

struct limits { double rel, kl, top1; };

/* The fixtures README's limits by file type (taken from the file name's suffix). */
static inline struct limits limits_for(const char *path) {
    struct limits f32 = {1e-4, 1e-7, 1.0}, f16 = {2e-2, 2e-5, 0.97}, q = {0.15, 5e-4, 0.90};
    if (strstr(path, "-F32.")) return f32;
    if (strstr(path, "-F16.") || strstr(path, "-BF16.")) return f16;
    return q;
}

static inline int32_t *read_ids(const char *path, int *n) {
    size_t sz;
    char *text = test_read_file(path, &sz);
    if (!text) return NULL;
    text = realloc(text, sz + 1);
    text[sz] = 0;
    int32_t *ids = malloc((sz / 2 + 2) * sizeof *ids);
    int k = 0;
    char *p = text, *end;
    for (;;) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        ids[k++] = (int32_t)v;
        p = end;
    }
    free(text);
    *n = k;
    return ids;
}

static inline double max_rel(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

/* Runs every check for one GGUF with a reference logits file (rows x V) for the ids. */
static inline void check_model(const char *backend, const char *gguf, const char *ref_path, const int32_t *ids, int n) {
    struct rwkv7_model_params mp = {backend, NULL, 2, false, true};
    struct rwkv7_model *m = NULL;
    enum rwkv7_status st = rwkv7_model_load(gguf, &mp, &m);
    CHECK(st == RWKV7_OK, "%s: load failed: %s", gguf, rwkv7_last_error());
    if (st != RWKV7_OK) return;
    int V = rwkv7_model_hparams(m)->n_vocab;
    size_t ref_n = 0;
    float *ref = test_read_file(ref_path, &ref_n);
    CHECK(ref && ref_n == (size_t)n * V * sizeof(float), "%s: reference %s has %zu bytes", gguf, ref_path, ref_n);
    size_t sn = rwkv7_state_n_floats(rwkv7_model_hparams(m));
    float *pre = malloc((size_t)n * V * sizeof(float)), *ser = malloc((size_t)n * V * sizeof(float));
    float *st_pre = malloc(sn * sizeof(float)), *st_ser = malloc(sn * sizeof(float));
    struct rwkv7_ctx *ctx = NULL;
    CHECK(rwkv7_ctx_init(m, 3, &ctx) == RWKV7_OK, "ctx: %s", rwkv7_last_error());
    int slot = 0;
    CHECK(rwkv7_ctx_eval(ctx, 1, &slot, n, ids, RWKV7_LOGITS_ALL, pre) == RWKV7_OK, "prefill: %s", rwkv7_last_error());
    CHECK(rwkv7_state_get(ctx, 0, st_pre) == RWKV7_OK, "state_get");
    slot = 1;
    for (int i = 0; i < n; i++)
        CHECK(rwkv7_ctx_eval(ctx, 1, &slot, 1, ids + i, RWKV7_LOGITS_LAST, ser + (size_t)i * V) == RWKV7_OK,
              "serial: %s", rwkv7_last_error());
    CHECK(rwkv7_state_get(ctx, 1, st_ser) == RWKV7_OK, "state_get");
    struct limits lim = limits_for(gguf);
    if (ref && ref_n == (size_t)n * V * sizeof(float)) {
        const char *mode[2] = {"prefill", "serial"};
        float *res[2] = {pre, ser};
        for (int k = 0; k < 2; k++) {
            struct test_logit_cmp c = test_compare_logits(res[k], ref, n, V);
            fprintf(stderr, "  %-8s %-7s %-40s rel %.2e kl %.2e top1 %.3f\n", backend, mode[k], strrchr(gguf, '/') + 1,
                    c.rel_maxdiff, c.mean_kl, c.top1);
            CHECK(c.rel_maxdiff <= lim.rel && c.mean_kl <= lim.kl && c.top1 >= lim.top1,
                  "%s %s: rel %.3g (limit %.3g) kl %.3g (limit %.3g) top1 %.3f (limit %.2f)", gguf, mode[k],
                  c.rel_maxdiff, lim.rel, c.mean_kl, lim.kl, c.top1, lim.top1);
        }
    }
    /* Prefill and serial compute the same function; they differ only by the chunked WKV's
     * summation order (~1e-6 relative, tests/test_wkv7.c), amplified a little by 12 layers. */
    double d_logits = max_rel(pre, ser, (size_t)n * V), d_state = max_rel(st_pre, st_ser, sn);
    CHECK(d_logits <= 1e-4, "%s: prefill vs serial logits differ by %.3g", gguf, d_logits);
    CHECK(d_state <= 1e-4, "%s: prefill vs serial state differ by %.3g", gguf, d_state);

    /* Batching: two sequences in one call (slot 2 runs the ids reversed) give each sequence's
     * solo result, and a small step size (chunking inside eval) changes nothing but rounding. */
    int half = n / 2;
    int32_t *two = malloc(2 * (size_t)half * sizeof *two);
    for (int i = 0; i < half; i++) {
        two[i] = ids[i];
        two[half + i] = ids[n - 1 - i];
    }
    float *bl = malloc(2 * (size_t)V * sizeof(float)), *solo = malloc((size_t)V * sizeof(float));
    int slots2[2] = {0, 2};
    CHECK(rwkv7_state_reset(ctx, 0) == RWKV7_OK && rwkv7_state_reset(ctx, 2) == RWKV7_OK, "reset");
    CHECK(rwkv7_ctx_eval(ctx, 2, slots2, half, two, RWKV7_LOGITS_LAST, bl) == RWKV7_OK, "batch: %s", rwkv7_last_error());
    CHECK(rwkv7_state_reset(ctx, 1) == RWKV7_OK, "reset");
    slot = 1;
    CHECK(rwkv7_ctx_eval(ctx, 1, &slot, half, two + half, RWKV7_LOGITS_LAST, solo) == RWKV7_OK, "solo");
    double d_batch = max_rel(bl + V, solo, (size_t)V);
    CHECK(d_batch <= 1e-5, "%s: batched sequence differs from solo run by %.3g", gguf, d_batch);
    CHECK(max_rel(bl, pre + (size_t)(half - 1) * V, (size_t)V) <= 1e-4, "%s: batched sequence 0 differs from prefill", gguf);
    rwkv7_ctx_set_max_rows(ctx, 7);
    CHECK(rwkv7_state_reset(ctx, 1) == RWKV7_OK, "reset");
    CHECK(rwkv7_ctx_eval(ctx, 1, &slot, n, ids, RWKV7_LOGITS_LAST, solo) == RWKV7_OK, "steps");
    double d_step = max_rel(solo, pre + (size_t)(n - 1) * V, (size_t)V);
    CHECK(d_step <= 1e-4, "%s: 7-row steps differ from one prefill by %.3g", gguf, d_step);

    free(two);
    free(bl);
    free(solo);
    rwkv7_ctx_free(ctx);
    free(pre);
    free(ser);
    free(st_pre);
    free(st_ser);
    free(ref);
    rwkv7_model_free(m);
}

/* One fixture folder: <dir>/<name>-<type>.gguf against <name>-<type>.exact.logits.f32 for the
 * ids in <dir>/<ids_file>. */
static inline void check_family(const char *backend, const char *dir_rel, const char *name, const char *ids_file,
                                const char *const *types, size_t n_types) {
    char dir[512], ids_path[600], g[700], r[700];
    int n = 0;
    test_fixture(dir, sizeof dir, dir_rel);
    snprintf(ids_path, sizeof ids_path, "%s/%s", dir, ids_file);
    int32_t *ids = read_ids(ids_path, &n);
    CHECK(ids && n > 0, "%s", ids_path);
    for (size_t i = 0; ids && i < n_types; i++) {
        snprintf(g, sizeof g, "%s/%s-%s.gguf", dir, name, types[i]);
        snprintf(r, sizeof r, "%s/%s-%s.exact.logits.f32", dir, name, types[i]);
        check_model(backend, g, r, ids, n);
    }
    free(ids);
}

/* Every fixture GGUF with its reference, in the order the README lists them. */
static inline void check_all_fixtures(const char *backend) {
    static const char *const rand_types[] = {"F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S",
                                             "Q5_0", "Q5_1", "Q4_K_M", "Q4_K_S", "Q4_0", "Q4_1", "IQ4_NL",
                                             "IQ4_XS", "Q3_K_M", "Q3_K_S", "Q2_K", "IQ3_M", "IQ3_XS", "IQ3_S"};
    static const char *const tiny_types[] = {"F32", "F16", "Q8_0", "Q5_1", "Q4_0"};
    static const char *const world_types[] = {"Q8_0"};
    check_family(backend, "rand-c256-l2", "rand-c256-l2", "tokens.txt", rand_types, 21);
    check_family(backend, "tiny-rwkv7-834K", "tiny-rwkv7-834K", "tokens.txt", tiny_types, 5);
    check_family(backend, "world", "world-c128", "prompt.ids", world_types, 1);
}

/* Batch invariance (issue 7): with rwkv7_model_set_batch_invariant on, a sequence decoded and
 * prefilled among 15 others gives bit-identical logits to the same sequence alone. */
static inline void check_invariance(const char *backend) {
    char g[600];
    test_fixture(g, sizeof g, "rand-c256-l2/rand-c256-l2-Q4_K_M.gguf");
    struct rwkv7_model_params mp = {backend, NULL, 1, false, true};
    struct rwkv7_model *m = NULL;
    CHECK(rwkv7_model_load(g, &mp, &m) == RWKV7_OK, "%s: load: %s", backend, rwkv7_last_error());
    if (!m) return;
    rwkv7_model_set_batch_invariant(m, true);
    enum { B = 16, P = 12, STEPS = 6 };
    int V = rwkv7_model_hparams(m)->n_vocab;
    struct rwkv7_ctx *ctx = NULL;
    CHECK(rwkv7_ctx_init(m, B + 1, &ctx) == RWKV7_OK, "ctx: %s", rwkv7_last_error());
    float *solo = malloc((size_t)V * sizeof(float)), *bat = malloc((size_t)B * V * sizeof(float));
    int32_t prompt[B * P], tok[B];
    int slots[B], solo_slot = B, differ = 0;
    for (int i = 0; i < B; i++) slots[i] = i;
    for (int i = 0; i < B * P; i++) prompt[i] = 32 + (i % P) * 7 % 90; /* every sequence: the same prompt */
    if (ctx) {
        CHECK(rwkv7_ctx_eval(ctx, 1, &solo_slot, P, prompt, RWKV7_LOGITS_LAST, solo) == RWKV7_OK, "solo prefill");
        CHECK(rwkv7_ctx_eval(ctx, B, slots, P, prompt, RWKV7_LOGITS_LAST, bat) == RWKV7_OK, "batched prefill");
        for (int i = 0; i < B; i++) differ += memcmp(solo, bat + (size_t)i * V, (size_t)V * sizeof(float)) != 0;
        for (int step = 0; step < STEPS; step++) {
            int32_t t = 40 + step;
            for (int i = 0; i < B; i++) tok[i] = t;
            CHECK(rwkv7_ctx_eval(ctx, 1, &solo_slot, 1, &t, RWKV7_LOGITS_LAST, solo) == RWKV7_OK, "solo decode");
            CHECK(rwkv7_ctx_eval(ctx, B, slots, 1, tok, RWKV7_LOGITS_LAST, bat) == RWKV7_OK, "batched decode");
            for (int i = 0; i < B; i++) differ += memcmp(solo, bat + (size_t)i * V, (size_t)V * sizeof(float)) != 0;
        }
    }
    fprintf(stderr, "  %s batch invariance: %d of %d rows differ from the solo run\n", backend, differ, B * (STEPS + 1));
    CHECK(differ == 0, "%s: %d batched rows are not bit-identical to the solo run", backend, differ);
    free(solo);
    free(bat);
    rwkv7_ctx_free(ctx);
    rwkv7_model_free(m);
}

#endif
