/* test_cuda_ops.c: every CUDA op against the CPU backend through the rwkv7_op_* wrappers, on
 * seeded random inputs over each op's real domain, at decode (T = 1) and prefill shapes, every
 * weight type for embed/matmul; plus graph record/replay and the sticky-free error paths. NMSE
 * thresholds carry their reason; 1 KiB guards around every CUDA output must stay untouched.
 * Exits 77 ("no CUDA device") where rwkv7_backend_cuda_init returns RWKV7_ERR_UNSUPPORTED. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dtype.h"
#include "dtype_random.h"
#include "testing.h"

#define GUARD 1024
#define GUARD_BYTE 0x5A
#define MAX_BUFS 4096

/* NMSE thresholds. */
#define TOL_F32 1e-7      /* fp32 elementwise/norm/wkv7: only summation order differs (ggml's default); the
                             chunked wkv7 prefill adds exp2/log2 decays, ~1e-13 (tests/test_cuda_wkv7.cu) */
#define TOL_MATVEC 1e-8   /* fp32 dequant + fp32 dot on both sides: FMA contraction and sum order only */
#define TOL_MMA 5e-5      /* bf16 tensor-core path: weights and activations rounded to 8 mantissa bits
                             (~3e-6 expected for random data; margin for unlucky rows) */

static struct rwkv7_backend *g_cpu, *g_gpu;
static struct { struct rwkv7_backend *be; struct rwkv7_buf *buf; } g_bufs[MAX_BUFS];
static int g_n_bufs;
static struct test_rng g_rng = {0x243F6A8885A308D3ull};

/* Same data on both backends. */
struct pair {
    struct rwkv7_tensor c, g;
};

static struct rwkv7_tensor mk1(struct rwkv7_backend *be, int type, int64_t ne0, int64_t ne1, int64_t ne2,
                               const void *data, const char *name) {
    struct rwkv7_tensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.ne[0] = ne0, t.ne[1] = ne1, t.ne[2] = ne2, t.ne[3] = 1;
    t.nbytes = rwkv7_dtype_row_bytes(type, ne0) * (size_t)(ne1 * ne2);
    t.name = name;
    t.offs = GUARD;
    struct rwkv7_buf *buf = NULL;
    enum rwkv7_status st = be->i->buf_alloc(be, t.nbytes + 2 * GUARD, &buf);
    if (st != RWKV7_OK || g_n_bufs == MAX_BUFS) {
        fprintf(stderr, "buf_alloc failed: %s\n", rwkv7_last_error());
        exit(1);
    }
    g_bufs[g_n_bufs].be = be;
    g_bufs[g_n_bufs++].buf = buf;
    t.buf = buf;
    unsigned char *guard = malloc(GUARD);
    memset(guard, GUARD_BYTE, GUARD);
    be->i->buf_set(be, buf, 0, guard, GUARD);
    be->i->buf_set(be, buf, GUARD + t.nbytes, guard, GUARD);
    free(guard);
    if (data && t.nbytes) be->i->buf_set(be, buf, GUARD, data, t.nbytes);
    return t;
}

static struct pair mk(int type, int64_t ne0, int64_t ne1, int64_t ne2, const void *data, const char *name) {
    struct pair p = {mk1(g_cpu, type, ne0, ne1, ne2, data, name), mk1(g_gpu, type, ne0, ne1, ne2, data, name)};
    return p;
}

static float *rand_f32(int64_t n, float lo, float hi) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = test_rng_uniform(&g_rng, lo, hi);
    return v;
}

static struct pair mk_rand(int64_t ne0, int64_t ne1, float lo, float hi, const char *name) {
    float *v = rand_f32(ne0 * ne1, lo, hi);
    struct pair p = mk(RWKV7_DTYPE_F32, ne0, ne1, 1, v, name);
    free(v);
    return p;
}

static float *read_back(struct rwkv7_backend *be, const struct rwkv7_tensor *t) {
    float *v = malloc(t->nbytes ? t->nbytes : 1);
    enum rwkv7_status st = be->i->buf_get(be, t->buf, t->offs, v, t->nbytes);
    CHECK(st == RWKV7_OK, "buf_get on %s: %s", be->i->name, rwkv7_last_error());
    return v;
}

static int guards_intact(const struct rwkv7_tensor *t) {
    unsigned char g[GUARD];
    int ok = 1;
    for (int side = 0; side < 2; side++) {
        size_t offs = side ? GUARD + t->nbytes : 0;
        if (g_gpu->i->buf_get(g_gpu, t->buf, offs, g, GUARD) != RWKV7_OK) return 0;
        for (int i = 0; i < GUARD; i++) ok &= g[i] == GUARD_BYTE;
    }
    return ok;
}

/* Compares the two sides of an F32 output: no NaN/inf mismatch, NMSE <= tol, guards intact. */
static void check_out(const char *cas, const struct pair *p, double tol) {
    const int64_t n = (int64_t)(p->c.nbytes / sizeof(float));
    float *ref = read_back(g_cpu, &p->c), *got = read_back(g_gpu, &p->g);
    double err = 0, norm = 0;
    int shown = 0, bad_inf = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(ref[i]) || isinf(got[i]) || isinf(ref[i])) {
            if (!(isinf(got[i]) && isinf(ref[i]) && (got[i] > 0) == (ref[i] > 0))) bad_inf++;
            continue;
        }
        double d = (double)got[i] - ref[i];
        err += d * d;
        norm += (double)ref[i] * ref[i];
    }
    double nmse = norm > 0 ? err / norm : err;
    int ok = bad_inf == 0 && nmse <= tol;
    if (!ok) {
        for (int64_t i = 0; i < n && shown < 5; i++) {
            double d = fabs((double)got[i] - ref[i]);
            if (d > 1e-3 * (fabs(ref[i]) + 1e-3) || isnan(got[i]) != isnan(ref[i])) {
                fprintf(stderr, "  %s [%lld] cpu %.8g cuda %.8g\n", cas, (long long)i, ref[i], got[i]);
                shown++;
            }
        }
    }
    CHECK(ok, "%s: nmse %.3g (max %.1g), %d nan/inf mismatches", cas, nmse, tol, bad_inf);
    CHECK(guards_intact(&p->g), "%s: guard bytes around the CUDA output changed", cas);
    free(ref);
    free(got);
}

#define BOTH(call_c, call_g)                                                                     \
    do {                                                                                         \
        enum rwkv7_status st_c_ = (call_c), st_g_ = (call_g);                                    \
        CHECK(st_c_ == RWKV7_OK && st_g_ == RWKV7_OK, "%s: cpu %d, cuda %d: %s", cas, st_c_, st_g_, \
              rwkv7_last_error());                                                               \
    } while (0)

/* ---- cases ---- */

static void test_embed(int type, int64_t T) {
    const int64_t C = 256, V = 37;
    char cas[96];
    snprintf(cas, sizeof cas, "EMBED(type=%s,C=%lld,T=%lld)", rwkv7_dtype_name(type), (long long)C, (long long)T);
    size_t nb = rwkv7_dtype_row_bytes(type, C) * V;
    void *w = malloc(nb);
    rwkv7_dtype_random_rows(type, 11 + (uint64_t)type, w, V, C, 0.5f);
    int32_t *ids = malloc((size_t)T * sizeof(int32_t));
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)(test_rng_next(&g_rng) % V);
    struct pair tab = mk(type, C, V, 1, w, "table"), tok = mk(RWKV7_DTYPE_I32, T, 1, 1, ids, "tokens");
    struct pair dst = mk(RWKV7_DTYPE_F32, C, T, 1, NULL, "dst");
    BOTH(rwkv7_op_embed(g_cpu, &dst.c, &tab.c, &tok.c), rwkv7_op_embed(g_gpu, &dst.g, &tab.g, &tok.g));
    check_out(cas, &dst, 1e-12); /* the same dequantization: exact up to FMA in the scale */
    free(w);
    free(ids);
}

static void test_matmul(int type, int64_t K, int64_t M, int64_t T, bool acc) {
    char cas[128];
    const bool tiles = T > 8 && K % 8 == 0;
    snprintf(cas, sizeof cas, "MATMUL(type=%s,K=%lld,M=%lld,T=%lld,acc=%d,path=%s)", rwkv7_dtype_name(type),
             (long long)K, (long long)M, (long long)T, acc, tiles ? "mma" : "matvec");
    size_t nb = rwkv7_dtype_row_bytes(type, K) * M;
    void *w = malloc(nb);
    rwkv7_dtype_random_rows(type, 1000 + (uint64_t)type * 7 + (uint64_t)K, w, M, K, 0.05f);
    struct pair W = mk(type, K, M, 1, w, "w");
    struct pair x = mk_rand(K, T, -1.0f, 1.0f, "x");
    struct pair d = mk_rand(M, T, -1.0f, 1.0f, "dst"); /* prior contents matter when acc */
    BOTH(rwkv7_op_matmul(g_cpu, &d.c, &W.c, &x.c, acc), rwkv7_op_matmul(g_gpu, &d.g, &W.g, &x.g, acc));
    check_out(cas, &d, tiles ? TOL_MMA : TOL_MATVEC);
    free(w);
}

static void test_norm(int64_t C, int64_t T, int n_groups, bool in_place) {
    char cas[96];
    snprintf(cas, sizeof cas, "NORM(C=%lld,T=%lld,groups=%d,in_place=%d)", (long long)C, (long long)T, n_groups, in_place);
    struct pair x = mk_rand(C, T, -3.0f, 5.0f, "x"), w = mk_rand(C, 1, 0.5f, 1.5f, "w"), b = mk_rand(C, 1, -0.5f, 0.5f, "b");
    struct pair dst = in_place ? x : mk(RWKV7_DTYPE_F32, C, T, 1, NULL, "dst");
    const float eps = n_groups > 1 ? RWKV7_GROUPNORM_EPS : 1e-5f;
    BOTH(rwkv7_op_norm(g_cpu, &dst.c, &x.c, &w.c, &b.c, n_groups, eps),
         rwkv7_op_norm(g_gpu, &dst.g, &x.g, &w.g, &b.g, n_groups, eps));
    check_out(cas, &dst, TOL_F32);
}

static void test_token_shift(int64_t C, int n_seq, int n_tok, int n_mix) {
    char cas[96];
    snprintf(cas, sizeof cas, "TOKEN_SHIFT(C=%lld,n_seq=%d,n_tok=%d,n_mix=%d)", (long long)C, n_seq, n_tok, n_mix);
    const int n_slots = n_seq + 1;
    int32_t slots[8];
    for (int s = 0; s < n_seq; s++) slots[s] = n_slots - 1 - s; /* reversed: slot != sequence index */
    struct pair x = mk_rand(C, (int64_t)n_seq * n_tok, -1.0f, 1.0f, "x");
    struct pair mix = mk_rand(C, n_mix, 0.0f, 1.0f, "mix");
    struct pair state = mk_rand(C, n_slots, -1.0f, 1.0f, "state");
    struct pair sl = mk(RWKV7_DTYPE_I32, n_seq, 1, 1, slots, "slots");
    struct pair dst = mk(RWKV7_DTYPE_F32, C, (int64_t)n_seq * n_tok, n_mix, NULL, "dst");
    BOTH(rwkv7_op_token_shift(g_cpu, &dst.c, &x.c, &mix.c, &state.c, &sl.c, n_tok),
         rwkv7_op_token_shift(g_gpu, &dst.g, &x.g, &mix.g, &state.g, &sl.g, n_tok));
    check_out(cas, &dst, TOL_F32);
    check_out(cas, &state, 0.0); /* state rows are copies: exact */
}

static void test_unary(int64_t C, int64_t T, enum rwkv7_unary fn, bool bias, bool in_place) {
    static const char *names[] = {"sigmoid", "tanh", "relu_sqr", "decay"};
    char cas[96];
    snprintf(cas, sizeof cas, "UNARY(fn=%s,C=%lld,T=%lld,bias=%d,in_place=%d)", names[fn], (long long)C, (long long)T,
             bias, in_place);
    struct pair x = mk_rand(C, T, -6.0f, 6.0f, "x"), b = mk_rand(C, 1, -1.0f, 1.0f, "bias");
    struct pair dst = in_place ? x : mk(RWKV7_DTYPE_F32, C, T, 1, NULL, "dst");
    BOTH(rwkv7_op_unary(g_cpu, &dst.c, &x.c, bias ? &b.c : NULL, fn),
         rwkv7_op_unary(g_gpu, &dst.g, &x.g, bias ? &b.g : NULL, fn));
    check_out(cas, &dst, TOL_F32);
}

static void test_binary(int64_t C, int64_t T, enum rwkv7_binary fn, bool bcast, bool in_place) {
    char cas[96];
    snprintf(cas, sizeof cas, "BINARY(fn=%s,C=%lld,T=%lld,broadcast=%d,in_place=%d)", fn == RWKV7_BINARY_ADD ? "add" : "mul",
             (long long)C, (long long)T, bcast, in_place);
    struct pair a = mk_rand(C, T, -2.0f, 2.0f, "a"), b = mk_rand(C, bcast ? 1 : T, -2.0f, 2.0f, "b");
    struct pair dst = in_place ? a : mk(RWKV7_DTYPE_F32, C, T, 1, NULL, "dst");
    BOTH(rwkv7_op_binary(g_cpu, &dst.c, &a.c, &b.c, fn), rwkv7_op_binary(g_gpu, &dst.g, &a.g, &b.g, fn));
    check_out(cas, &dst, TOL_F32);
}

static void test_mix(int64_t C, int64_t T) {
    char cas[64];
    snprintf(cas, sizeof cas, "MIX(C=%lld,T=%lld)", (long long)C, (long long)T);
    struct pair a = mk_rand(C, T, -2.0f, 2.0f, "a"), b = mk_rand(C, T, -2.0f, 2.0f, "b"), t = mk_rand(C, T, 0.0f, 1.0f, "t");
    struct pair dst = mk(RWKV7_DTYPE_F32, C, T, 1, NULL, "dst");
    BOTH(rwkv7_op_mix(g_cpu, &dst.c, &a.c, &b.c, &t.c), rwkv7_op_mix(g_gpu, &dst.g, &a.g, &b.g, &t.g));
    check_out(cas, &dst, TOL_F32);
}

static void test_key_prep(int64_t C, int64_t T, int N) {
    char cas[64];
    snprintf(cas, sizeof cas, "KEY_PREP(C=%lld,T=%lld,N=%d)", (long long)C, (long long)T, N);
    struct pair k = mk_rand(C, T, -1.0f, 1.0f, "k"), a = mk_rand(C, T, 0.0f, 1.0f, "a");
    struct pair kk_ = mk_rand(C, 1, 0.5f, 1.5f, "k_k"), ka = mk_rand(C, 1, 0.0f, 1.0f, "k_a");
    struct pair kk = mk(RWKV7_DTYPE_F32, C, T, 1, NULL, "kk"), km = mk(RWKV7_DTYPE_F32, C, T, 1, NULL, "kmod");
    BOTH(rwkv7_op_key_prep(g_cpu, &kk.c, &km.c, &k.c, &a.c, &kk_.c, &ka.c, N),
         rwkv7_op_key_prep(g_gpu, &kk.g, &km.g, &k.g, &a.g, &kk_.g, &ka.g, N));
    check_out(cas, &kk, TOL_F32);
    check_out(cas, &km, TOL_F32);
}

/* Real domain: w = exp(-0.606531 sigmoid(z)) in (0.545, 1); kk unit-norm per head; a in (0, 1). */
static void test_wkv7(int N, int H, int n_seq, int n_tok) {
    char cas[96];
    snprintf(cas, sizeof cas, "WKV7(N=%d,H=%d,n_seq=%d,n_tok=%d)", N, H, n_seq, n_tok);
    const int64_t C = (int64_t)N * H, rows = (int64_t)n_seq * n_tok;
    const int n_slots = n_seq + 1;
    int32_t slots[8];
    for (int s = 0; s < n_seq; s++) slots[s] = (s + 1) % n_slots;
    float *kkv = rand_f32(C * rows, -1.0f, 1.0f);
    for (int64_t r = 0; r < rows * H; r++) {
        double ss = 0;
        for (int j = 0; j < N; j++) ss += (double)kkv[r * N + j] * kkv[r * N + j];
        for (int j = 0; j < N; j++) kkv[r * N + j] = (float)(kkv[r * N + j] / sqrt(ss));
    }
    float *wv = rand_f32(C * rows, -4.0f, 4.0f);
    for (int64_t i = 0; i < C * rows; i++) wv[i] = expf(-RWKV7_DECAY_SCALE / (1.0f + expf(-wv[i])));
    struct pair r = mk_rand(C, rows, -1.0f, 1.0f, "r"), k = mk_rand(C, rows, -0.5f, 0.5f, "k");
    struct pair v = mk_rand(C, rows, -1.0f, 1.0f, "v"), a = mk_rand(C, rows, 0.0f, 1.0f, "a");
    struct pair w = mk(RWKV7_DTYPE_F32, C, rows, 1, wv, "w"), kk = mk(RWKV7_DTYPE_F32, C, rows, 1, kkv, "kk");
    struct pair state = mk_rand(C * N, n_slots, -0.3f, 0.3f, "state");
    struct pair sl = mk(RWKV7_DTYPE_I32, n_seq, 1, 1, slots, "slots");
    struct pair y = mk(RWKV7_DTYPE_F32, C, rows, 1, NULL, "y");
    BOTH(rwkv7_op_wkv7(g_cpu, &y.c, &state.c, &sl.c, &r.c, &w.c, &k.c, &v.c, &kk.c, &a.c, n_tok, N),
         rwkv7_op_wkv7(g_gpu, &y.g, &state.g, &sl.g, &r.g, &w.g, &k.g, &v.g, &kk.g, &a.g, n_tok, N));
    check_out(cas, &y, TOL_F32);
    check_out(cas, &state, TOL_F32);
    free(kkv);
    free(wv);
}

static void test_wkv_out(int64_t C, int64_t T, int N) {
    char cas[64];
    snprintf(cas, sizeof cas, "WKV_OUT(C=%lld,T=%lld,N=%d)", (long long)C, (long long)T, N);
    struct pair y = mk_rand(C, T, -2.0f, 3.0f, "y"), r = mk_rand(C, T, -1.0f, 1.0f, "r"), k = mk_rand(C, T, -1.0f, 1.0f, "k");
    struct pair v = mk_rand(C, T, -1.0f, 1.0f, "v"), g = mk_rand(C, T, 0.0f, 1.0f, "g");
    struct pair rk = mk_rand(C, 1, -1.0f, 1.0f, "r_k"), lw = mk_rand(C, 1, 0.5f, 1.5f, "ln_w"), lb = mk_rand(C, 1, -0.5f, 0.5f, "ln_b");
    struct pair dst = mk(RWKV7_DTYPE_F32, C, T, 1, NULL, "dst");
    BOTH(rwkv7_op_wkv_out(g_cpu, &dst.c, &y.c, &r.c, &k.c, &v.c, &g.c, &rk.c, &lw.c, &lb.c, N, RWKV7_GROUPNORM_EPS),
         rwkv7_op_wkv_out(g_gpu, &dst.g, &y.g, &r.g, &k.g, &v.g, &g.g, &rk.g, &lw.g, &lb.g, N, RWKV7_GROUPNORM_EPS));
    check_out(cas, &dst, TOL_F32);
}

static void test_last_rows(int64_t C, int n_seq, int n_tok) {
    char cas[64];
    snprintf(cas, sizeof cas, "LAST_ROWS(C=%lld,n_seq=%d,n_tok=%d)", (long long)C, n_seq, n_tok);
    struct pair x = mk_rand(C, (int64_t)n_seq * n_tok, -1.0f, 1.0f, "x");
    struct pair dst = mk(RWKV7_DTYPE_F32, C, n_seq, 1, NULL, "dst");
    BOTH(rwkv7_op_last_rows(g_cpu, &dst.c, &x.c, n_tok), rwkv7_op_last_rows(g_gpu, &dst.g, &x.g, n_tok));
    check_out(cas, &dst, 0.0);
}

/* Record unary + matmul under a key, change the input with buf_set, replay, compare with the CPU. */
static void test_graph(void) {
    const char *cas = "GRAPH(unary+matmul,replay)";
    const int64_t K = 128, M = 64, T = 1;
    void *w = malloc(rwkv7_dtype_row_bytes(RWKV7_DTYPE_Q4_K, K) * M);
    rwkv7_dtype_random_rows(RWKV7_DTYPE_Q4_K, 5, w, M, K, 0.1f);
    struct pair W = mk(RWKV7_DTYPE_Q4_K, K, M, 1, w, "w"), x = mk_rand(K, T, -1.0f, 1.0f, "x");
    struct pair h = mk(RWKV7_DTYPE_F32, K, T, 1, NULL, "h"), d = mk(RWKV7_DTYPE_F32, M, T, 1, NULL, "d");
    CHECK(g_gpu->i->graph_launch && !g_gpu->i->graph_launch(g_gpu, 42), "%s: nothing recorded under 42", cas);
    CHECK(g_gpu->i->graph_begin(g_gpu, 42) == RWKV7_OK, "%s: graph_begin: %s", cas, rwkv7_last_error());
    BOTH(rwkv7_op_unary(g_cpu, &h.c, &x.c, NULL, RWKV7_UNARY_TANH), rwkv7_op_unary(g_gpu, &h.g, &x.g, NULL, RWKV7_UNARY_TANH));
    BOTH(rwkv7_op_matmul(g_cpu, &d.c, &W.c, &h.c, false), rwkv7_op_matmul(g_gpu, &d.g, &W.g, &h.g, false));
    CHECK(g_gpu->i->graph_end(g_gpu) == RWKV7_OK, "%s: graph_end: %s", cas, rwkv7_last_error());
    check_out(cas, &d, TOL_MATVEC); /* the recorded ops also ran */
    for (int rep = 0; rep < 3; rep++) {
        float *nx = rand_f32(K * T, -1.0f, 1.0f);
        g_cpu->i->buf_set(g_cpu, x.c.buf, x.c.offs, nx, x.c.nbytes);
        g_gpu->i->buf_set(g_gpu, x.g.buf, x.g.offs, nx, x.g.nbytes);
        free(nx);
        BOTH(rwkv7_op_unary(g_cpu, &h.c, &x.c, NULL, RWKV7_UNARY_TANH), RWKV7_OK);
        BOTH(rwkv7_op_matmul(g_cpu, &d.c, &W.c, &h.c, false), RWKV7_OK);
        CHECK(g_gpu->i->graph_launch(g_gpu, 42), "%s: replay %d", cas, rep);
        check_out(cas, &d, TOL_MATVEC);
    }
    free(w);
}

int main(void) {
    enum rwkv7_status st = rwkv7_backend_cuda_init(NULL, &g_gpu);
    if (st == RWKV7_ERR_UNSUPPORTED) TEST_SKIP("no CUDA device (%s)", rwkv7_last_error());
    if (st != RWKV7_OK) {
        fprintf(stderr, "rwkv7_backend_cuda_init: %s\n", rwkv7_last_error());
        return 1;
    }
    if (rwkv7_backend_cpu_init(1, &g_cpu) != RWKV7_OK) {
        fprintf(stderr, "rwkv7_backend_cpu_init: %s\n", rwkv7_last_error());
        return 1;
    }
    fprintf(stderr, "device: %s\n", g_gpu->desc);

    for (int type = 0; type < RWKV7_DTYPE_COUNT; type++) {
        if (!rwkv7_dtype_is_weight(type)) continue;
        const bool ok = g_gpu->i->supports(g_gpu, RWKV7_OP_MATMUL, type);
        if (!ok) {
            fprintf(stderr, "SKIP matmul/embed type %s (not supported by cuda)\n", rwkv7_dtype_name(type));
            continue;
        }
        CHECK(g_gpu->i->supports(g_gpu, RWKV7_OP_EMBED, type), "embed supports %s", rwkv7_dtype_name(type));
        test_embed(type, 1);
        test_embed(type, 19);
        test_matmul(type, 512, 96, 1, false);  /* decode */
        test_matmul(type, 512, 96, 3, true);   /* batched decode, accumulate */
        test_matmul(type, 512, 96, 8, false);  /* largest matvec batch */
        test_matmul(type, 512, 130, 77, false); /* prefill: partial tiles in both M and T */
        test_matmul(type, 1024, 64, 64, true);  /* prefill, accumulate, exact tiles */
    }
    test_matmul(RWKV7_DTYPE_F32, 36, 20, 1, false); /* K % 8 != 0: element tail */
    test_matmul(RWKV7_DTYPE_F16, 36, 20, 20, true); /* tail with T > 8: matvec in column chunks */
    test_matmul(RWKV7_DTYPE_BF16, 64, 2000, 1, false);

    const int64_t Ts[2] = {1, 45};
    for (int ti = 0; ti < 2; ti++) {
        const int64_t T = Ts[ti];
        test_norm(256, T, 1, false);
        test_norm(256, T, 4, false);
        test_norm(768, T, 1, true);
        test_norm(2048, T, 32, true);
        for (int fn = 0; fn <= RWKV7_UNARY_DECAY; fn++) {
            test_unary(256, T, (enum rwkv7_unary)fn, false, false);
            test_unary(256, T, (enum rwkv7_unary)fn, true, fn == RWKV7_UNARY_TANH);
        }
        test_binary(256, T, RWKV7_BINARY_ADD, false, false);
        test_binary(256, T, RWKV7_BINARY_MUL, true, false);
        test_binary(256, T, RWKV7_BINARY_ADD, true, true);
        test_mix(256, T);
        test_key_prep(256, T, 64);
        test_key_prep(256, T, 128);
        test_wkv_out(256, T, 64);
        test_wkv_out(384, T, 128);
    }
    test_token_shift(256, 1, 1, 6);
    test_token_shift(256, 3, 1, 1);
    test_token_shift(256, 2, 17, 6);
    test_last_rows(256, 1, 1);
    test_last_rows(256, 3, 9);
    test_wkv7(64, 4, 1, 1);
    test_wkv7(64, 4, 3, 1);
    test_wkv7(64, 2, 2, 40);
    test_wkv7(128, 2, 2, 33);
    test_wkv7(32, 3, 1, 70);
    /* Around the chunked prefill kernel (cuda/wkv7.cu, chunks of 16, used from 32 tokens at
     * N = 64 / 128): decode, ragged and exact chunk tails below the switch, and chunked runs. */
    static const int wkv7_toks[] = {1, 15, 16, 17, 64, 100};
    for (int i = 0; i < 6; i++) {
        test_wkv7(64, 3, 2, wkv7_toks[i]);
        test_wkv7(128, 2, 1, wkv7_toks[i]);
    }
    test_wkv7(128, 1, 3, 512); /* long prefill, several slots */
    test_graph();

    double bw = g_gpu->i->copy_bandwidth ? g_gpu->i->copy_bandwidth(g_gpu) : 0.0;
    CHECK(bw > 0.0, "copy_bandwidth %.1f GB/s", bw);
    fprintf(stderr, "copy bandwidth: %.1f GB/s\n", bw);
    CHECK(g_gpu->i->sync(g_gpu) == RWKV7_OK, "final sync: %s", rwkv7_last_error());

    for (int i = g_n_bufs - 1; i >= 0; i--) g_bufs[i].be->i->buf_free(g_bufs[i].be, g_bufs[i].buf);
    rwkv7_backend_free(g_gpu);
    rwkv7_backend_free(g_cpu);
    return test_finish("test_cuda_ops");
}
