/* test_vk_ops.c: every Vulkan op against the CPU backend through the rwkv7_op_* wrappers, on
 * seeded random inputs over each op's real domain, at decode and prefill shapes (op_cases.h),
 * every weight type for matmul/embed, plus graph capture/replay. Checks: no NaN/inf mismatch,
 * NMSE <= the op's threshold, guard bytes around every Vulkan output untouched; a failure names the
 * case (MATMUL(type=q4_K,k=256,m=64,t=37)) and the first mismatches. Exits 77 without a device. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dtype.h"
#include "dtype_random.h"
#include "op_cases.h"
#include "testing.h"
#ifdef RWKV7_HAVE_VULKAN
#include "abi.h" /* RWKV7_VK_WKV_CHUNK_LEN: which WKV7 cases run the chunked kernel */
#else
#define RWKV7_VK_WKV_CHUNK_LEN(n) (n) /* unused: main() skips without Vulkan */
#endif

/* Odd multiple of 4: tensors start off the device's storage-offset alignment on purpose. */
#define GUARD 1028
#define GUARD_BYTE 0xA5
#define MAX_BUFS 1024

static struct rwkv7_backend *g_cpu, *g_vk;
static struct { struct rwkv7_backend *be; struct rwkv7_buf *buf; } g_bufs[MAX_BUFS];
static int g_n_bufs;
static struct test_rng g_rng = {0x9E3779B97F4A7C15ull};

struct pair {
    struct rwkv7_tensor c, v; /* CPU and Vulkan copies of the same data */
};

static struct rwkv7_tensor mk1(struct rwkv7_backend *be, int type, int64_t ne0, int64_t ne1, const void *data) {
    struct rwkv7_tensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.ne[0] = ne0, t.ne[1] = ne1, t.ne[2] = 1, t.ne[3] = 1;
    t.nbytes = type == RWKV7_DTYPE_I32 ? (size_t)(ne0 * ne1) * 4 : rwkv7_dtype_row_bytes(type, ne0) * (size_t)ne1;
    t.offs = GUARD;
    struct rwkv7_buf *buf = NULL;
    if (be->i->buf_alloc(be, t.nbytes + 2 * GUARD, &buf) != RWKV7_OK || g_n_bufs == MAX_BUFS) {
        fprintf(stderr, "buf_alloc failed: %s\n", rwkv7_last_error());
        exit(1);
    }
    g_bufs[g_n_bufs].be = be;
    g_bufs[g_n_bufs++].buf = buf;
    t.buf = buf;
    unsigned char guard[GUARD];
    memset(guard, GUARD_BYTE, GUARD);
    CHECK(be->i->buf_set(be, buf, 0, guard, GUARD) == RWKV7_OK, "buf_set: %s", rwkv7_last_error());
    CHECK(be->i->buf_set(be, buf, GUARD + t.nbytes, guard, GUARD) == RWKV7_OK, "buf_set: %s", rwkv7_last_error());
    if (data && t.nbytes) CHECK(be->i->buf_set(be, buf, GUARD, data, t.nbytes) == RWKV7_OK, "buf_set: %s", rwkv7_last_error());
    return t;
}

static struct pair mk(int type, int64_t ne0, int64_t ne1, const void *data) {
    struct pair p = {mk1(g_cpu, type, ne0, ne1, data), mk1(g_vk, type, ne0, ne1, data)};
    return p;
}

static float *rnd(int64_t n, float lo, float hi) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = test_rng_uniform(&g_rng, lo, hi);
    return v;
}

static struct pair mk_rand(int64_t ne0, int64_t ne1, float lo, float hi) {
    float *v = rnd(ne0 * ne1, lo, hi);
    struct pair p = mk(RWKV7_DTYPE_F32, ne0, ne1, v);
    free(v);
    return p;
}

static struct pair mk_i32(const int32_t *v, int64_t n) { return mk(RWKV7_DTYPE_I32, n, 1, v); }

static void free_all(void) {
    for (int i = g_n_bufs - 1; i >= 0; i--) g_bufs[i].be->i->buf_free(g_bufs[i].be, g_bufs[i].buf);
    g_n_bufs = 0;
}

static float *get(struct rwkv7_backend *be, const struct rwkv7_tensor *t) {
    float *v = malloc(t->nbytes);
    CHECK(be->i->buf_get(be, t->buf, t->offs, v, t->nbytes) == RWKV7_OK, "buf_get (%s): %s", be->i->name,
          rwkv7_last_error());
    return v;
}

/* Compares the CPU and Vulkan copies of an f32 output; returns the NMSE. */
static double check_out(const char *cas, const char *what, const struct pair *p, double tol) {
    int64_t n = (int64_t)(p->c.nbytes / 4);
    float *ref = get(g_cpu, &p->c), *got = get(g_vk, &p->v);
    double err = 0, norm = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(ref[i])) {
            bad += !(got[i] == ref[i]); /* inf of the same sign is fine; NaN never equals */
            continue;
        }
        double d = (double)got[i] - ref[i];
        err += d * d;
        norm += (double)ref[i] * ref[i];
    }
    double nmse = norm > 0 ? err / norm : err;
    CHECK(bad == 0 && nmse <= tol, "%s %s: nmse %.3g (max %.1g), %lld NaN/inf mismatches", cas, what, nmse, tol,
          (long long)bad);
    if (bad || nmse > tol) {
        int shown = 0;
        for (int64_t i = 0; i < n && shown < 5; i++)
            if (!(fabs((double)got[i] - ref[i]) <= 1e-4 * (fabs(ref[i]) + 1e-3))) {
                fprintf(stderr, "    [%lld] ref %.7g vulkan %.7g\n", (long long)i, ref[i], got[i]);
                shown++;
            }
    }
    unsigned char g[GUARD];
    int intact = 1;
    for (int side = 0; side < 2; side++) {
        CHECK(g_vk->i->buf_get(g_vk, p->v.buf, side ? GUARD + p->v.nbytes : 0, g, GUARD) == RWKV7_OK, "guard read");
        for (int i = 0; i < GUARD; i++) intact &= g[i] == GUARD_BYTE;
    }
    CHECK(intact, "%s %s: bytes around the output were overwritten", cas, what);
    free(ref);
    free(got);
    return nmse;
}

#define BOTH(call_c, call_v, cas)                                                                        \
    do {                                                                                                  \
        enum rwkv7_status st_c = (call_c);                                                                \
        CHECK(st_c == RWKV7_OK, "%s on cpu: %s", cas, rwkv7_last_error());                                \
        enum rwkv7_status st_v = (call_v);                                                                \
        CHECK(st_v == RWKV7_OK, "%s on vulkan: %s", cas, rwkv7_last_error());                             \
    } while (0)

static void test_matmul_type(int type) {
    const char *tn = rwkv7_dtype_name(type);
    const struct rwkv7_dtype_info *di = rwkv7_dtype_get(type);
    int n_cases = (int)(sizeof op_matmul_cases / sizeof op_matmul_cases[0]);
    int n_float = di->block == 1 ? (int)(sizeof op_matmul_float_cases / sizeof op_matmul_float_cases[0]) : 0;
    for (int ci = 0; ci < n_cases + n_float; ci++) {
        const struct op_matmul_case *mc = ci < n_cases ? &op_matmul_cases[ci] : &op_matmul_float_cases[ci - n_cases];
        char cas[128];
        snprintf(cas, sizeof cas, "MATMUL(type=%s,k=%d,m=%d,t=%d%s)", tn, mc->k, mc->m, mc->t,
                 mc->accumulate ? ",acc" : "");
        if (!g_vk->i->supports(g_vk, RWKV7_OP_MATMUL, type)) {
            fprintf(stderr, "SKIP %s: not supported\n", cas);
            continue;
        }
        size_t wbytes = rwkv7_dtype_row_bytes(type, mc->k) * (size_t)mc->m;
        void *wd = malloc(wbytes);
        rwkv7_dtype_random_rows(type, 1000 + (uint64_t)ci, wd, mc->m, mc->k, 0.05f);
        struct pair w = mk(type, mc->k, mc->m, wd);
        free(wd);
        struct pair x = mk_rand(mc->k, mc->t, -1, 1);
        struct pair d = mk_rand(mc->m, mc->t, -1, 1);
        BOTH(rwkv7_op_matmul(g_cpu, &d.c, &w.c, &x.c, mc->accumulate),
             rwkv7_op_matmul(g_vk, &d.v, &w.v, &x.v, mc->accumulate), cas);
        check_out(cas, "dst", &d, OP_TOL_MATMUL);
        free_all();
    }
}

static void test_embed_type(int type) {
    const char *tn = rwkv7_dtype_name(type);
    for (int t = 1; t <= 37; t += 36) {
        char cas[128];
        snprintf(cas, sizeof cas, "EMBED(type=%s,c=%d,v=50,t=%d)", tn, OP_C, t);
        if (!g_vk->i->supports(g_vk, RWKV7_OP_EMBED, type)) {
            fprintf(stderr, "SKIP %s: not supported\n", cas);
            continue;
        }
        size_t bytes = rwkv7_dtype_row_bytes(type, OP_C) * 50;
        void *wd = malloc(bytes);
        rwkv7_dtype_random_rows(type, 77, wd, 50, OP_C, 1.0f);
        struct pair table = mk(type, OP_C, 50, wd);
        free(wd);
        int32_t tok[37];
        for (int i = 0; i < t; i++) tok[i] = (int32_t)(test_rng_next(&g_rng) % 50);
        struct pair tokens = mk_i32(tok, t);
        struct pair d = mk_rand(OP_C, t, 0, 0);
        BOTH(rwkv7_op_embed(g_cpu, &d.c, &table.c, &tokens.c), rwkv7_op_embed(g_vk, &d.v, &table.v, &tokens.v), cas);
        check_out(cas, "dst", &d, 0); /* a copy of exact dequantized values */
        free_all();
    }
}

static void test_elementwise(int n_seq, int n_tok) {
    int rows = n_seq * n_tok, C = OP_C;
    char cas[160];
    /* NORM: LayerNorm and GroupNorm (H groups), also in place. */
    for (int g = 1; g <= C / OP_HEAD; g *= C / OP_HEAD) {
        for (int inplace = 0; inplace < 2; inplace++) {
            snprintf(cas, sizeof cas, "NORM(c=%d,t=%d,groups=%d%s)", C, rows, g, inplace ? ",inplace" : "");
            struct pair x = mk_rand(C, rows, -3, 5), w = mk_rand(C, 1, 0.5f, 1.5f), b = mk_rand(C, 1, -0.2f, 0.2f);
            struct pair d = inplace ? x : mk_rand(C, rows, 0, 0);
            float eps = g == 1 ? 1e-5f : RWKV7_GROUPNORM_EPS;
            BOTH(rwkv7_op_norm(g_cpu, &d.c, &x.c, &w.c, &b.c, g, eps), rwkv7_op_norm(g_vk, &d.v, &x.v, &w.v, &b.v, g, eps),
                 cas);
            check_out(cas, "dst", &d, OP_TOL_NORM);
            free_all();
        }
    }
    /* TOKEN_SHIFT: 6-way and 1-way mix, slots out of order. */
    for (int n_mix = 1; n_mix <= 6; n_mix += 5) {
        snprintf(cas, sizeof cas, "TOKEN_SHIFT(c=%d,n_seq=%d,n_tok=%d,n_mix=%d)", C, n_seq, n_tok, n_mix);
        struct pair x = mk_rand(C, rows, -2, 2), mix = mk_rand(C, n_mix, 0, 1), state = mk_rand(C, 3, -2, 2);
        int32_t sl[2] = {2, 0};
        struct pair slots = mk_i32(sl, n_seq);
        struct pair d = mk_rand(C, rows * n_mix, 0, 0);
        d.c.ne[1] = d.v.ne[1] = rows, d.c.ne[2] = d.v.ne[2] = n_mix;
        BOTH(rwkv7_op_token_shift(g_cpu, &d.c, &x.c, &mix.c, &state.c, &slots.c, n_tok),
             rwkv7_op_token_shift(g_vk, &d.v, &x.v, &mix.v, &state.v, &slots.v, n_tok), cas);
        check_out(cas, "dst", &d, OP_TOL_ELEM);
        check_out(cas, "state", &state, 0);
        free_all();
    }
    /* UNARY: each function, with and without bias, in place once. */
    static const char *const un[] = {"sigmoid", "tanh", "relu_sqr", "decay"};
    for (int fn = 0; fn < 4; fn++) {
        for (int bias = 0; bias < 2; bias++) {
            snprintf(cas, sizeof cas, "UNARY(fn=%s,c=%d,t=%d%s)", un[fn], C, rows, bias ? ",bias" : ",inplace");
            struct pair x = mk_rand(C, rows, -6, 6), b = mk_rand(C, 1, -1, 1);
            struct pair d = bias ? mk_rand(C, rows, 0, 0) : x;
            BOTH(rwkv7_op_unary(g_cpu, &d.c, &x.c, bias ? &b.c : NULL, (enum rwkv7_unary)fn),
                 rwkv7_op_unary(g_vk, &d.v, &x.v, bias ? &b.v : NULL, (enum rwkv7_unary)fn), cas);
            check_out(cas, "dst", &d, OP_TOL_ELEM);
            free_all();
        }
    }
    /* BINARY: add/mul, full and broadcast row. */
    for (int fn = 0; fn < 2; fn++) {
        for (int bc = 0; bc < 2; bc++) {
            snprintf(cas, sizeof cas, "BINARY(fn=%s,c=%d,t=%d%s)", fn ? "mul" : "add", C, rows, bc ? ",row" : "");
            struct pair a = mk_rand(C, rows, -2, 2), b = mk_rand(C, bc ? 1 : rows, -2, 2), d = mk_rand(C, rows, 0, 0);
            BOTH(rwkv7_op_binary(g_cpu, &d.c, &a.c, &b.c, (enum rwkv7_binary)fn),
                 rwkv7_op_binary(g_vk, &d.v, &a.v, &b.v, (enum rwkv7_binary)fn), cas);
            check_out(cas, "dst", &d, OP_TOL_ELEM);
            free_all();
        }
    }
    /* MIX (in place on a). */
    {
        snprintf(cas, sizeof cas, "MIX(c=%d,t=%d,inplace)", C, rows);
        struct pair a = mk_rand(C, rows, -2, 2), b = mk_rand(C, rows, -2, 2), t = mk_rand(C, rows, 0, 1);
        BOTH(rwkv7_op_mix(g_cpu, &a.c, &a.c, &b.c, &t.c), rwkv7_op_mix(g_vk, &a.v, &a.v, &b.v, &t.v), cas);
        check_out(cas, "dst", &a, OP_TOL_ELEM);
        free_all();
    }
    /* KEY_PREP at head sizes 64 and 32. */
    for (int hs = OP_HEAD; hs >= 32; hs /= 2) {
        snprintf(cas, sizeof cas, "KEY_PREP(c=%d,t=%d,head=%d)", C, rows, hs);
        struct pair k = mk_rand(C, rows, -1, 1), a = mk_rand(C, rows, 0, 1), kk = mk_rand(C, rows, 0, 0),
                    km = mk_rand(C, rows, 0, 0), k_k = mk_rand(C, 1, 0.5f, 1.5f), k_a = mk_rand(C, 1, 0, 1);
        BOTH(rwkv7_op_key_prep(g_cpu, &kk.c, &km.c, &k.c, &a.c, &k_k.c, &k_a.c, hs),
             rwkv7_op_key_prep(g_vk, &kk.v, &km.v, &k.v, &a.v, &k_k.v, &k_a.v, hs), cas);
        check_out(cas, "kk", &kk, OP_TOL_NORM);
        check_out(cas, "kmod", &km, OP_TOL_NORM);
        free_all();
    }
    /* WKV_OUT. */
    {
        snprintf(cas, sizeof cas, "WKV_OUT(c=%d,t=%d,head=%d)", C, rows, OP_HEAD);
        struct pair d = mk_rand(C, rows, 0, 0), y = mk_rand(C, rows, -2, 2), r = mk_rand(C, rows, -1, 1),
                    k = mk_rand(C, rows, -1, 1), v = mk_rand(C, rows, -1, 1), g = mk_rand(C, rows, 0, 1),
                    r_k = mk_rand(C, 1, -0.5f, 0.5f), lw = mk_rand(C, 1, 0.5f, 1.5f), lb = mk_rand(C, 1, -0.2f, 0.2f);
        BOTH(rwkv7_op_wkv_out(g_cpu, &d.c, &y.c, &r.c, &k.c, &v.c, &g.c, &r_k.c, &lw.c, &lb.c, OP_HEAD, RWKV7_GROUPNORM_EPS),
             rwkv7_op_wkv_out(g_vk, &d.v, &y.v, &r.v, &k.v, &v.v, &g.v, &r_k.v, &lw.v, &lb.v, OP_HEAD, RWKV7_GROUPNORM_EPS),
             cas);
        check_out(cas, "dst", &d, OP_TOL_NORM);
        free_all();
    }
    /* LAST_ROWS. */
    {
        snprintf(cas, sizeof cas, "LAST_ROWS(c=%d,n_seq=%d,n_tok=%d)", C, n_seq, n_tok);
        struct pair x = mk_rand(C, rows, -2, 2), d = mk_rand(C, n_seq, 0, 0);
        BOTH(rwkv7_op_last_rows(g_cpu, &d.c, &x.c, n_tok), rwkv7_op_last_rows(g_vk, &d.v, &x.v, n_tok), cas);
        check_out(cas, "dst", &d, 0);
        free_all();
    }
}

static float draw_decay(void) { return test_rng_decay(&g_rng); }

static double g_wkv_worst[2]; /* worst NMSE: serial kernel, chunked kernel */

/* WKV7 inputs over the real domain: decay w in [0.545, 1), kk unit-norm per head, a in (0, 1).
 * The CPU reference runs the serial recurrence (RWKV7_CPU_WKV_CHUNK=0, set in main). */
static void test_wkv7(int n_seq, int n_tok, int hs) {
    int C = 2 * hs, rows = n_seq * n_tok, n_slots = 3;
    char cas[128];
    snprintf(cas, sizeof cas, "WKV7(head_size=%d,c=%d,n_seq=%d,n_tok=%d)", hs, C, n_seq, n_tok);
    float *kk = rnd((int64_t)C * rows, -1, 1);
    for (int i = 0; i < rows * 2; i++) {
        double s = 0;
        for (int j = 0; j < hs; j++) s += (double)kk[i * hs + j] * kk[i * hs + j];
        for (int j = 0; j < hs; j++) kk[i * hs + j] = (float)(kk[i * hs + j] / sqrt(s));
    }
    struct pair pkk = mk(RWKV7_DTYPE_F32, C, rows, kk);
    free(kk);
    float *wd = malloc((size_t)C * rows * sizeof(float));
    for (int i = 0; i < C * rows; i++) wd[i] = draw_decay();
    struct pair w = mk(RWKV7_DTYPE_F32, C, rows, wd);
    free(wd);
    struct pair r = mk_rand(C, rows, -1, 1), k = mk_rand(C, rows, -1, 1),
                v = mk_rand(C, rows, -1, 1), a = mk_rand(C, rows, 0.001f, 0.999f), y = mk_rand(C, rows, 0, 0),
                state = mk_rand((int64_t)C * hs, n_slots, -0.5f, 0.5f);
    int32_t sl[2] = {1, 2};
    struct pair slots = mk_i32(sl, n_seq);
    BOTH(rwkv7_op_wkv7(g_cpu, &y.c, &state.c, &slots.c, &r.c, &w.c, &k.c, &v.c, &pkk.c, &a.c, n_tok, hs),
         rwkv7_op_wkv7(g_vk, &y.v, &state.v, &slots.v, &r.v, &w.v, &k.v, &v.v, &pkk.v, &a.v, n_tok, hs), cas);
    /* Same rule as rwkv7_vk_wkv7's kernel choice (the device limit aside: lavapipe has 32 KiB). */
    int chunked = (hs == 64 || hs == 128) && n_tok >= RWKV7_VK_WKV_CHUNK_LEN(hs);
    double tol = chunked ? OP_TOL_WKV_CHUNKED : OP_TOL_WKV;
    double ey = check_out(cas, "y", &y, tol), es = check_out(cas, "state", &state, tol);
    double e = ey > es ? ey : es;
    if (e > g_wkv_worst[chunked]) g_wkv_worst[chunked] = e;
    free_all();
}

/* Graph capture: record norm + matmul under a key, change the input, replay, compare. */
static void test_graph(void) {
    const char *cas = "GRAPH(norm+matmul q4_K,k=256,m=64,t=1)";
    size_t wbytes = rwkv7_dtype_row_bytes(RWKV7_DTYPE_Q4_K, 256) * 64;
    void *wd = malloc(wbytes);
    rwkv7_dtype_random_rows(RWKV7_DTYPE_Q4_K, 5, wd, 64, 256, 0.05f);
    struct pair w = mk(RWKV7_DTYPE_Q4_K, 256, 64, wd);
    free(wd);
    struct pair x = mk_rand(256, 1, -1, 1), h = mk_rand(256, 1, 0, 0), nw = mk_rand(256, 1, 0.5f, 1.5f),
                nb = mk_rand(256, 1, -0.1f, 0.1f), d = mk_rand(64, 1, 0, 0);
    for (int step = 0; step < 3; step++) {
        float *xv = rnd(256, -2, 2);
        CHECK(g_vk->i->buf_set(g_vk, x.v.buf, x.v.offs, xv, 1024) == RWKV7_OK, "buf_set");
        CHECK(g_cpu->i->buf_set(g_cpu, x.c.buf, x.c.offs, xv, 1024) == RWKV7_OK, "buf_set");
        free(xv);
        CHECK(rwkv7_op_norm(g_cpu, &h.c, &x.c, &nw.c, &nb.c, 1, 1e-5f) == RWKV7_OK, "cpu norm");
        CHECK(rwkv7_op_matmul(g_cpu, &d.c, &w.c, &h.c, false) == RWKV7_OK, "cpu matmul");
        bool replayed = g_vk->i->graph_launch && g_vk->i->graph_launch(g_vk, 42);
        /* The banner says whether this device records graphs (push descriptors); otherwise
         * graph_begin/end succeed without recording and launch reports false. */
        bool records = g_vk->i->graph_begin && strstr(g_vk->desc, "graph replay");
        CHECK(replayed == (step > 0 && records), "%s: step %d replayed=%d", cas, step, replayed);
        if (!replayed) {
            if (g_vk->i->graph_begin) CHECK(g_vk->i->graph_begin(g_vk, 42) == RWKV7_OK, "graph_begin: %s", rwkv7_last_error());
            CHECK(rwkv7_op_norm(g_vk, &h.v, &x.v, &nw.v, &nb.v, 1, 1e-5f) == RWKV7_OK, "vk norm");
            CHECK(rwkv7_op_matmul(g_vk, &d.v, &w.v, &h.v, false) == RWKV7_OK, "vk matmul");
            if (g_vk->i->graph_end) CHECK(g_vk->i->graph_end(g_vk) == RWKV7_OK, "graph_end: %s", rwkv7_last_error());
        }
        char c2[160];
        snprintf(c2, sizeof c2, "%s step %d", cas, step);
        check_out(c2, "dst", &d, OP_TOL_MATMUL);
    }
    free_all();
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL; /* substring of a type name, or an op family */
#ifndef RWKV7_HAVE_VULKAN
    (void)filter;
    TEST_SKIP("this build has no Vulkan backend");
#else
    enum rwkv7_status st = rwkv7_backend_vulkan_init(NULL, &g_vk);
    if (st == RWKV7_ERR_UNSUPPORTED) TEST_SKIP("no Vulkan device: %s", rwkv7_last_error());
    if (st != RWKV7_OK) {
        fprintf(stderr, "vulkan init failed: %s\n", rwkv7_last_error());
        return 1;
    }
    fprintf(stderr, "device: %s\n", g_vk->desc);
    setenv("RWKV7_CPU_WKV_CHUNK", "0", 1); /* the WKV7 reference: the serial recurrence */
    if (rwkv7_backend_cpu_init(1, &g_cpu) != RWKV7_OK) {
        fprintf(stderr, "cpu init failed: %s\n", rwkv7_last_error());
        return 1;
    }
    int n_seq_cases = (int)(sizeof op_seq_cases / sizeof op_seq_cases[0]);
    if (!filter || strstr("elementwise", filter))
        for (int i = 0; i < n_seq_cases; i++) test_elementwise(op_seq_cases[i].n_seq, op_seq_cases[i].n_tok);
    if (!filter || strstr("wkv7", filter)) {
        for (int hs = 32; hs <= 128; hs *= 2) {
            test_wkv7(1, 1, hs);
            for (int i = 0; i < OP_N_WKV_TOK; i++) test_wkv7(2, op_wkv_tok_cases[i], hs);
        }
        fprintf(stderr, "WKV7 worst nmse: serial kernel %.3g, chunked kernel %.3g\n", g_wkv_worst[0],
                g_wkv_worst[1]);
    }
    for (int i = 0; i < OP_N_WEIGHT_TYPES; i++) {
        if (filter && !strstr(rwkv7_dtype_name(op_weight_types[i]), filter) && strcmp(filter, "weights")) continue;
        test_embed_type(op_weight_types[i]);
        test_matmul_type(op_weight_types[i]);
    }
    if (!filter || strstr("graph", filter)) test_graph();
    double bw = g_vk->i->copy_bandwidth ? g_vk->i->copy_bandwidth(g_vk) : 0;
    CHECK(bw > 0, "copy_bandwidth returned %.3g", bw);
    fprintf(stderr, "copy bandwidth: %.1f GB/s\n", bw);
    rwkv7_backend_free(g_vk);
    rwkv7_backend_free(g_cpu);
    return test_finish("test_vk_ops");
#endif
}
