/* test_ops.c: every op of every backend against the CPU reference backend, through the op door
 * (rwkv7_op_*), over one case table (op_cases.h): every op, every weight type the backend claims,
 * decode shapes (T = 1..8) and prefill shapes, ragged sizes. Inputs are seeded and drawn over each
 * op's real domain; outputs must have no NaN/inf mismatch, an NMSE within the one tolerance table
 * (rwkv7_op_tolerance, which gives the reason for each value), and untouched guard bytes on both
 * sides. Also: graph record/replay/discard/drop, and the RWKV7_CHECK_RESULTS hook catching a
 * deliberately broken op. The reference CPU backend runs the serial WKV-7 recurrence.
 *   test_ops [-b BACKEND] [-o OP] [-p REGEX] [--perf]
 * -b: one backend (default: every one that starts here, the CPU included; -b of one that cannot
 * start exits 77). -o: one op ("matmul"). -p: cases whose name matches the extended regex.
 * --perf: per case the time (us), GB/s and % of the device's copy bandwidth (ggml's perf mode). */
#define _POSIX_C_SOURCE 200809L /* setenv, clock_gettime */
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "dtype.h"
#include "dtype_random.h"
#include "op_cases.h"
#include "testing.h"

/* Odd multiple of 4: tensors start off the device's storage-offset alignment on purpose. */
#define GUARD      1028
#define GUARD_BYTE 0xA5
/* The start of the model-shape perf cases' tensors: a multiple of 64 past the guard, as the
 * tensors of a loaded model are (GGUF data is 32-byte aligned), so they time the kernels a model
 * runs (the Vulkan matvec's aligned specialization among them). */
#define ALIGNED_OFFS 1088
static size_t g_offs = GUARD; /* where mk1 puts a tensor: GUARD, or ALIGNED_OFFS */
#define MAX_BUFS   64

static struct rwkv7_backend *g_ref, *g_dev;
static struct {
    struct rwkv7_backend *be;
    struct rwkv7_buf *buf;
} g_bufs[MAX_BUFS];
static int g_n_bufs;
static struct test_rng g_rng = {0x9E3779B97F4A7C15ull};
static bool g_perf;
static double g_copy_gbs; /* device copy bandwidth, for --perf */

struct pair {
    struct rwkv7_tensor c, d; /* reference (CPU) and device copies of the same data */
};

static struct rwkv7_tensor mk1(struct rwkv7_backend *be, int type, int64_t ne0, int64_t ne1, const void *data) {
    struct rwkv7_tensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.ne[0] = ne0, t.ne[1] = ne1, t.ne[2] = 1, t.ne[3] = 1;
    t.nbytes = type == RWKV7_DTYPE_I32 ? (size_t)(ne0 * ne1) * 4 : rwkv7_dtype_row_bytes(type, ne0) * (size_t)ne1;
    t.offs = g_offs;
    struct rwkv7_buf *buf = NULL;
    if (g_n_bufs == MAX_BUFS || be->i->buf_alloc(be, t.offs + t.nbytes + GUARD, &buf) != RWKV7_OK) {
        fprintf(stderr, "buf_alloc failed: %s\n", rwkv7_last_error());
        exit(1);
    }
    g_bufs[g_n_bufs].be = be;
    g_bufs[g_n_bufs++].buf = buf;
    t.buf = buf;
    unsigned char guard[ALIGNED_OFFS];
    memset(guard, GUARD_BYTE, sizeof guard);
    CHECK(be->i->buf_set(be, buf, 0, guard, t.offs) == RWKV7_OK, "buf_set: %s", rwkv7_last_error());
    CHECK(be->i->buf_set(be, buf, t.offs + t.nbytes, guard, GUARD) == RWKV7_OK, "buf_set: %s", rwkv7_last_error());
    if (data && t.nbytes)
        CHECK(be->i->buf_set(be, buf, t.offs, data, t.nbytes) == RWKV7_OK, "buf_set: %s", rwkv7_last_error());
    return t;
}

static struct pair mk(int type, int64_t ne0, int64_t ne1, const void *data) {
    struct pair p = {mk1(g_ref, type, ne0, ne1, data), mk1(g_dev, type, ne0, ne1, data)};
    return p;
}

static float *rnd(int64_t n, float lo, float hi) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
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

static struct pair mk_weight(int type, int k, int m, uint64_t seed, float scale) {
    void *wd = malloc(rwkv7_dtype_row_bytes(type, k) * (size_t)m);
    rwkv7_dtype_random_rows(type, seed, wd, m, k, scale);
    struct pair w = mk(type, k, m, wd);
    free(wd);
    return w;
}

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

/* Compares the reference and device copies of an f32 output against tol; guard bytes too. */
static void check_out(const char *cas, const char *what, const struct pair *p, double tol, const char *why) {
    int64_t n = (int64_t)(p->c.nbytes / 4);
    float *ref = get(g_ref, &p->c), *got = get(g_dev, &p->d);
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
    CHECK(bad == 0 && nmse <= tol, "%s on %s, %s: nmse %.3g (max %.1g: %s), %lld NaN/inf mismatches", cas,
          g_dev->i->name, what, nmse, tol, why, (long long)bad);
    if (bad || nmse > tol) {
        int shown = 0;
        for (int64_t i = 0; i < n && shown < 5; i++)
            if (!(fabs((double)got[i] - ref[i]) <= 1e-4 * (fabs(ref[i]) + 1e-3))) {
                fprintf(stderr, "    [%lld] ref %.7g %s %.7g\n", (long long)i, ref[i], g_dev->i->name, got[i]);
                shown++;
            }
    }
    unsigned char g[GUARD];
    int intact = 1;
    for (int side = 0; side < 2; side++) {
        CHECK(g_dev->i->buf_get(g_dev, p->d.buf, side ? p->d.offs + p->d.nbytes : 0, g, GUARD) == RWKV7_OK, "guard read");
        for (int i = 0; i < GUARD; i++) intact &= g[i] == GUARD_BYTE;
    }
    CHECK(intact, "%s on %s, %s: bytes around the output were overwritten", cas, g_dev->i->name, what);
    free(ref);
    free(got);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The op on the reference, then on the device; with --perf the device op again, timed (repeated
 * until 0.2 s or 1000 runs, synced at the end) and reported with its GB/s. Outputs of in-place
 * ops drift during timing: checks run before it. */
#define RUN(l, cas, ref_args, dev_args, checks)                                                                        \
    do {                                                                                                               \
        const struct rwkv7_##l##_args ra_ = ref_args, da_ = dev_args;                                                  \
        CHECK(rwkv7_op_##l(g_ref, &ra_) == RWKV7_OK, "%s on cpu: %s", cas, rwkv7_last_error());                        \
        CHECK(rwkv7_op_##l(g_dev, &da_) == RWKV7_OK, "%s on %s: %s", cas, g_dev->i->name, rwkv7_last_error());         \
        const char *why_ = NULL;                                                                                       \
        double tol_ = rwkv7_op_tolerance(g_dev, (enum rwkv7_op)RWKV7_OP_##l##_ID, &da_, &why_);                                       \
        (void)tol_;                                                                                                    \
        checks;                                                                                                        \
        if (g_perf) perf(cas, (enum rwkv7_op)RWKV7_OP_##l##_ID, &da_);                                                                \
    } while (0)
/* RWKV7_OP_<name>_ID: the enum value of op <name>, for RUN. */
enum {
#define RWKV7_X_(U, l) RWKV7_OP_##l##_ID = RWKV7_OP_##U,
    RWKV7_OP_LIST(RWKV7_X_) RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
};

static enum rwkv7_status call_op(enum rwkv7_op op, const void *a) {
    switch (op) {
#define RWKV7_X_(U, l)                                                                                                 \
    case RWKV7_OP_##U: return rwkv7_op_##l(g_dev, (const struct rwkv7_##l##_args *)a);
        RWKV7_OP_LIST(RWKV7_X_)
        RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    default: return RWKV7_ERR_ARG;
    }
}

static void perf(const char *cas, enum rwkv7_op op, const void *a) {
    CHECK(g_dev->i->sync(g_dev) == RWKV7_OK, "sync: %s", rwkv7_last_error());
    int n = 0;
    double t0 = now_s(), dt = 0;
    while (n < 1000 && dt < 0.2) {
        int batch = n < 4 ? 1 : n; /* double the count between clock reads */
        for (int i = 0; i < batch; i++) CHECK(call_op(op, a) == RWKV7_OK, "%s: %s", cas, rwkv7_last_error());
        CHECK(g_dev->i->sync(g_dev) == RWKV7_OK, "sync: %s", rwkv7_last_error());
        n += batch;
        dt = now_s() - t0;
    }
    double us = dt * 1e6 / n, gbs = (double)rwkv7_op_bytes(op, a) / (us * 1e-6) / 1e9;
    printf("%-8s %-58s %10.2f us %9.2f GB/s", g_dev->i->name, cas, us, gbs);
    if (g_copy_gbs > 0) printf(" %6.1f%% of copy BW", 100.0 * gbs / g_copy_gbs);
    printf("\n");
}

/* ---- the case table ---- */

struct op_case {
    enum rwkv7_op op;
    int type; /* weight type (matmul, embed) */
    int p[4]; /* op-specific: see build_cases */
    char name[96];
};
#define MAX_CASES 4096
static struct op_case g_cases[MAX_CASES];
static int g_n_cases;

static struct op_case *add_case(enum rwkv7_op op, int type, int p0, int p1, int p2, int p3) {
    if (g_n_cases == MAX_CASES) abort(); /* the table outgrew MAX_CASES */
    struct op_case *c = &g_cases[g_n_cases++];
    *c = (struct op_case){op, type, {p0, p1, p2, p3}, ""};
    return c;
}

static const char *const k_unary[] = {"sigmoid", "tanh", "relu_sqr", "decay"};

static void build_cases(void) {
    struct op_case *c;
    /* The one weight-type list is every type the library can dequantize, and nothing else. */
    static const int types[] = {
#define RWKV7_X_(T) RWKV7_DTYPE_##T,
        RWKV7_WEIGHT_TYPES(RWKV7_X_)
#undef RWKV7_X_
    };
    int n_weight = 0;
    for (int t = 0; t < RWKV7_DTYPE_COUNT; t++) n_weight += rwkv7_dtype_is_weight(t);
    CHECK(n_weight == (int)(sizeof types / sizeof types[0]), "dtype.h lists %d weight types, the type table has %d",
          (int)(sizeof types / sizeof types[0]), n_weight);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        int t = types[ti];
        CHECK(rwkv7_dtype_is_weight(t), "listed weight type %s has no dequantizer", rwkv7_dtype_name(t));
        const char *tn = rwkv7_dtype_name(t);
        int n_float = rwkv7_dtype_get(t)->block == 1 ? OP_N_MATMUL_FLOAT : 0;
        for (int i = 0; i < OP_N_MATMUL + n_float; i++) {
            const struct op_matmul_case *m =
                i < OP_N_MATMUL ? &op_matmul_cases[i] : &op_matmul_float_cases[i - OP_N_MATMUL];
            c = add_case(RWKV7_OP_MATMUL, t, m->k, m->m, m->t, m->accumulate);
            snprintf(c->name, sizeof c->name, "MATMUL(type=%s,k=%d,m=%d,t=%d%s)", tn, m->k, m->m, m->t,
                     m->accumulate ? ",acc" : "");
        }
        bool aligned_type = false;
        for (size_t ai = 0; ai < sizeof op_matvec_aligned_types / sizeof op_matvec_aligned_types[0]; ai++)
            aligned_type = aligned_type || op_matvec_aligned_types[ai] == t;
        for (int i = 0; aligned_type && i < OP_N_MATVEC_ALIGNED; i++) {
            const struct op_matmul_case *m = &op_matvec_aligned_cases[i];
            c = add_case(RWKV7_OP_MATMUL, t, m->k, m->m, m->t, 2 | m->accumulate);
            snprintf(c->name, sizeof c->name, "MATMUL(type=%s,k=%d,m=%d,t=%d%s,aligned)", tn, m->k, m->m, m->t,
                     m->accumulate ? ",acc" : "");
        }
        /* LoRA up-projections: rank = the type's block (at least 32), T = 1..8 and a prefill, a
         * ragged width; 4 terms with the value-residual mix, and 3 terms recording v_first. */
        static const int lora_t[] = {1, 2, 3, 5, 8, 37};
        int rank = (int)rwkv7_dtype_get(t)->block < 32 ? 32 : (int)rwkv7_dtype_get(t)->block;
        for (size_t li = 0; li < sizeof lora_t / sizeof lora_t[0]; li++)
            for (int rec = 0; rec < 2; rec++) {
                c = add_case(RWKV7_OP_LORA_UP, t, rank, lora_t[li], rec, 200);
                snprintf(c->name, sizeof c->name, "LORA_UP(type=%s,rank=%d,c=200,t=%d,%s)", tn, rank, lora_t[li],
                         rec ? "record" : "mix");
            }
        for (int tok = 1; tok <= 37; tok += 36) {
            c = add_case(RWKV7_OP_EMBED, t, OP_C, 50, tok, 0);
            snprintf(c->name, sizeof c->name, "EMBED(type=%s,c=%d,v=50,t=%d)", tn, OP_C, tok);
        }
    }
    for (int s = 0; s < OP_N_SEQ; s++) {
        int n_seq = op_seq_cases[s].n_seq, n_tok = op_seq_cases[s].n_tok, rows = n_seq * n_tok, C = OP_C;
        for (int g = 1; g <= C / OP_HEAD; g *= C / OP_HEAD)
            for (int inplace = 0; inplace < 2; inplace++) {
                c = add_case(RWKV7_OP_NORM, 0, C, rows, g, inplace);
                snprintf(c->name, sizeof c->name, "NORM(c=%d,t=%d,groups=%d%s)", C, rows, g, inplace ? ",inplace" : "");
            }
        for (int n_mix = 1; n_mix <= 6; n_mix += 5) {
            c = add_case(RWKV7_OP_TOKEN_SHIFT, 0, C, n_seq, n_tok, n_mix);
            snprintf(c->name, sizeof c->name, "TOKEN_SHIFT(c=%d,n_seq=%d,n_tok=%d,n_mix=%d)", C, n_seq, n_tok, n_mix);
        }
        for (int fn = 0; fn < 4; fn++)
            for (int bias = 0; bias < 2; bias++) {
                c = add_case(RWKV7_OP_UNARY, 0, fn, C, rows, bias);
                snprintf(c->name, sizeof c->name, "UNARY(fn=%s,c=%d,t=%d%s)", k_unary[fn], C, rows,
                         bias ? ",bias" : ",inplace");
            }
        for (int fn = 0; fn < 2; fn++)
            for (int bc = 0; bc < 2; bc++) {
                c = add_case(RWKV7_OP_BINARY, 0, fn, C, rows, bc);
                snprintf(c->name, sizeof c->name, "BINARY(fn=%s,c=%d,t=%d%s)", fn ? "mul" : "add", C, rows,
                         bc ? ",row" : "");
            }
        c = add_case(RWKV7_OP_MIX, 0, C, rows, 0, 0);
        snprintf(c->name, sizeof c->name, "MIX(c=%d,t=%d,inplace)", C, rows);
        for (int hs = OP_HEAD; hs >= 32; hs /= 2) {
            c = add_case(RWKV7_OP_KEY_PREP, 0, C, rows, hs, 0);
            snprintf(c->name, sizeof c->name, "KEY_PREP(c=%d,t=%d,head=%d)", C, rows, hs);
        }
        c = add_case(RWKV7_OP_WKV_OUT, 0, C, rows, OP_HEAD, 0);
        snprintf(c->name, sizeof c->name, "WKV_OUT(c=%d,t=%d,head=%d)", C, rows, OP_HEAD);
        c = add_case(RWKV7_OP_LAST_ROWS, 0, C, n_seq, n_tok, 0);
        snprintf(c->name, sizeof c->name, "LAST_ROWS(c=%d,n_seq=%d,n_tok=%d)", C, n_seq, n_tok);
        /* fused ops (native where a backend has them, the generic fallback otherwise) */
        for (int n_mix = 1; n_mix <= 6; n_mix += 5) {
            c = add_case(RWKV7_OP_NORM_SHIFT, 0, C, n_seq, n_tok, n_mix);
            snprintf(c->name, sizeof c->name, "NORM_SHIFT(c=%d,n_seq=%d,n_tok=%d,n_mix=%d)", C, n_seq, n_tok, n_mix);
        }
        static const int ffn_types[] = {RWKV7_DTYPE_F16, RWKV7_DTYPE_Q8_0, RWKV7_DTYPE_Q4_K};
        /* q4_K / f16: up to four products per Vulkan matvec dispatch; q3_K: one per dispatch;
         * k = 2048: narrow rows long enough for the split-K path. */
        static const int mmn_types[] = {RWKV7_DTYPE_Q4_K, RWKV7_DTYPE_F16, RWKV7_DTYPE_Q3_K};
        for (int ti = 0; ti < 3; ti++)
            for (int n = 1; n <= 4; n += 3)
                for (int kk = C; kk <= 2048; kk *= 8) {
                    if (kk > C && (s > 0 || n == 1)) continue; /* one long case per type */
                    int ty = mmn_types[ti];
                    c = add_case(RWKV7_OP_MATMUL_N, ty, kk, n, rows, 0);
                    snprintf(c->name, sizeof c->name, "MATMUL_N(type=%s,k=%d,n=%d,t=%d)", rwkv7_dtype_name(ty), kk, n,
                             rows);
                }
        /* ... and on model-aligned tensors (p[3] bit 1): every product slot of the Vulkan matvec's
         * aligned (and, for T > 1, activation-staging) pipelines. */
        if (rows > 1 && rows <= 8)
            for (int ti = 0; ti < 2; ti++) {
                c = add_case(RWKV7_OP_MATMUL_N, mmn_types[ti], 512, 4, rows, 2);
                snprintf(c->name, sizeof c->name, "MATMUL_N(type=%s,k=512,n=4,t=%d,aligned)", rwkv7_dtype_name(mmn_types[ti]),
                         rows);
            }
        for (int i = 0; i < 3; i++) {
            c = add_case(RWKV7_OP_FFN_KEY, ffn_types[i], C, 4 * C + 32, rows, 0);
            snprintf(c->name, sizeof c->name, "FFN_KEY(type=%s,c=%d,f=%d,t=%d)", rwkv7_dtype_name(ffn_types[i]), C,
                     4 * C + 32, rows);
        }
    }
    for (int hs = 32; hs <= 128; hs *= 2) {
        c = add_case(RWKV7_OP_WKV7, 0, hs, 1, 1, 0);
        snprintf(c->name, sizeof c->name, "WKV7(head_size=%d,c=%d,n_seq=1,n_tok=1)", hs, 2 * hs);
        for (int i = 0; i < OP_N_WKV_TOK; i++) {
            c = add_case(RWKV7_OP_WKV7, 0, hs, 2, op_wkv_tok_cases[i], 0);
            snprintf(c->name, sizeof c->name, "WKV7(head_size=%d,c=%d,n_seq=2,n_tok=%d)", hs, 2 * hs,
                     op_wkv_tok_cases[i]);
            c = add_case(RWKV7_OP_WKV_BLOCK, 0, hs, 2, op_wkv_tok_cases[i], 0);
            snprintf(c->name, sizeof c->name, "WKV_BLOCK(head_size=%d,c=%d,n_seq=2,n_tok=%d)", hs, 2 * hs,
                     op_wkv_tok_cases[i]);
        }
    }
    /* Wide WKV7 runs (p[3] heads): one longer than the Vulkan chunked kernel's scratch holds, so it
     * runs in two windows with a ragged last chunk; with --perf, model shapes (op_cases.h). */
    c = add_case(RWKV7_OP_WKV7, 0, 128, 2, 500, 16);
    snprintf(c->name, sizeof c->name, "WKV7(head_size=128,c=2048,n_seq=2,n_tok=500)");
    /* With --perf, decode matvecs of model shapes on model-aligned tensors (op_cases.h; p[3] bit 1). */
    for (int i = 0; g_perf && i < OP_N_MATVEC_PERF; i++)
        for (size_t ti = 0; ti < sizeof op_matvec_perf_types / sizeof op_matvec_perf_types[0]; ti++) {
            const struct op_matmul_case *m = &op_matvec_perf_cases[i];
            int t = op_matvec_perf_types[ti];
            c = add_case(RWKV7_OP_MATMUL, t, m->k, m->m, m->t, 2);
            snprintf(c->name, sizeof c->name, "MATMUL(type=%s,k=%d,m=%d,t=%d,model-aligned)", rwkv7_dtype_name(t),
                     m->k, m->m, m->t);
        }
    for (int i = 0; g_perf && i < OP_N_WKV_PERF; i++) {
        const struct op_wkv_perf_case *w = &op_wkv_perf_cases[i];
        c = add_case(RWKV7_OP_WKV7, 0, w->head_size, w->n_seq, w->n_tok, w->n_head);
        snprintf(c->name, sizeof c->name, "WKV7(head_size=%d,c=%d,n_seq=%d,n_tok=%d)", w->head_size,
                 w->head_size * w->n_head, w->n_seq, w->n_tok);
    }
}

/* ---- one case ---- */

static void run_case(const struct op_case *k) {
    const char *cas = k->name;
    const int *p = k->p;
    enum rwkv7_op wop = k->op == RWKV7_OP_FFN_KEY || k->op == RWKV7_OP_MATMUL_N || k->op == RWKV7_OP_LORA_UP
                            ? RWKV7_OP_MATMUL
                            : k->op;
    if ((wop == RWKV7_OP_MATMUL || wop == RWKV7_OP_EMBED) && !g_dev->i->supports(g_dev, wop, k->type)) {
        fprintf(stderr, "SKIP %s on %s: type not supported\n", cas, g_dev->i->name);
        return;
    }
    switch (k->op) {
    case RWKV7_OP_MATMUL: {
        if (p[3] & 2) g_offs = ALIGNED_OFFS; /* model-aligned tensors (op_cases.h) */
        struct pair w = mk_weight(k->type, p[0], p[1], 1000 + (uint64_t)p[0] * 7 + (uint64_t)p[2], 0.05f);
        struct pair x = mk_rand(p[0], p[2], -1, 1), d = mk_rand(p[1], p[2], -1, 1);
        g_offs = GUARD;
        RUN(matmul, cas, ((struct rwkv7_matmul_args){&d.c, &w.c, &x.c, (p[3] & 1) != 0}),
            ((struct rwkv7_matmul_args){&d.d, &w.d, &x.d, (p[3] & 1) != 0}), check_out(cas, "dst", &d, tol_, why_));
        break;
    }
    case RWKV7_OP_EMBED: {
        struct pair table = mk_weight(k->type, p[0], p[1], 77, 1.0f);
        int32_t tok[64];
        for (int i = 0; i < p[2]; i++) tok[i] = (int32_t)(test_rng_next(&g_rng) % (unsigned)p[1]);
        struct pair tokens = mk_i32(tok, p[2]), d = mk_rand(p[0], p[2], 0, 0);
        RUN(embed, cas, ((struct rwkv7_embed_args){&d.c, &table.c, &tokens.c}),
            ((struct rwkv7_embed_args){&d.d, &table.d, &tokens.d}), check_out(cas, "dst", &d, tol_, why_));
        break;
    }
    case RWKV7_OP_NORM: {
        struct pair x = mk_rand(p[0], p[1], -3, 5), w = mk_rand(p[0], 1, 0.5f, 1.5f), b = mk_rand(p[0], 1, -0.2f, 0.2f);
        struct pair d = p[3] ? x : mk_rand(p[0], p[1], 0, 0);
        float eps = p[2] == 1 ? 1e-5f : RWKV7_GROUPNORM_EPS;
        RUN(norm, cas, ((struct rwkv7_norm_args){&d.c, &x.c, &w.c, &b.c, p[2], eps}),
            ((struct rwkv7_norm_args){&d.d, &x.d, &w.d, &b.d, p[2], eps}), check_out(cas, "dst", &d, tol_, why_));
        break;
    }
    case RWKV7_OP_TOKEN_SHIFT: {
        int C = p[0], n_seq = p[1], n_tok = p[2], n_mix = p[3], rows = n_seq * n_tok;
        struct pair x = mk_rand(C, rows, -2, 2), mix = mk_rand(C, n_mix, 0, 1), state = mk_rand(C, 4, -2, 2);
        int32_t sl[3] = {2, 0, 3};
        struct pair slots = mk_i32(sl, n_seq), d = mk_rand(C, rows * n_mix, 0, 0);
        d.c.ne[1] = d.d.ne[1] = rows, d.c.ne[2] = d.d.ne[2] = n_mix;
        RUN(token_shift, cas, ((struct rwkv7_token_shift_args){&d.c, &x.c, &mix.c, &state.c, &slots.c, n_tok}),
            ((struct rwkv7_token_shift_args){&d.d, &x.d, &mix.d, &state.d, &slots.d, n_tok}),
            (check_out(cas, "dst", &d, tol_, why_), check_out(cas, "state", &state, 0, "a copy of rows")));
        break;
    }
    case RWKV7_OP_UNARY: {
        struct pair x = mk_rand(p[1], p[2], -6, 6), b = mk_rand(p[1], 1, -1, 1);
        struct pair d = p[3] ? mk_rand(p[1], p[2], 0, 0) : x;
        RUN(unary, cas, ((struct rwkv7_unary_args){&d.c, &x.c, p[3] ? &b.c : NULL, (enum rwkv7_unary)p[0]}),
            ((struct rwkv7_unary_args){&d.d, &x.d, p[3] ? &b.d : NULL, (enum rwkv7_unary)p[0]}),
            check_out(cas, "dst", &d, tol_, why_));
        break;
    }
    case RWKV7_OP_BINARY: {
        struct pair a = mk_rand(p[1], p[2], -2, 2), b = mk_rand(p[1], p[3] ? 1 : p[2], -2, 2),
                    d = mk_rand(p[1], p[2], 0, 0);
        RUN(binary, cas, ((struct rwkv7_binary_args){&d.c, &a.c, &b.c, (enum rwkv7_binary)p[0]}),
            ((struct rwkv7_binary_args){&d.d, &a.d, &b.d, (enum rwkv7_binary)p[0]}),
            check_out(cas, "dst", &d, tol_, why_));
        break;
    }
    case RWKV7_OP_MIX: {
        struct pair a = mk_rand(p[0], p[1], -2, 2), b = mk_rand(p[0], p[1], -2, 2), t = mk_rand(p[0], p[1], 0, 1);
        RUN(mix, cas, ((struct rwkv7_mix_args){&a.c, &a.c, &b.c, &t.c}),
            ((struct rwkv7_mix_args){&a.d, &a.d, &b.d, &t.d}), check_out(cas, "dst", &a, tol_, why_));
        break;
    }
    case RWKV7_OP_KEY_PREP: {
        int C = p[0], rows = p[1];
        struct pair kx = mk_rand(C, rows, -1, 1), a = mk_rand(C, rows, 0, 1), kk = mk_rand(C, rows, 0, 0),
                    km = mk_rand(C, rows, 0, 0), k_k = mk_rand(C, 1, 0.5f, 1.5f), k_a = mk_rand(C, 1, 0, 1);
        RUN(key_prep, cas, ((struct rwkv7_key_prep_args){&kk.c, &km.c, &kx.c, &a.c, &k_k.c, &k_a.c, p[2]}),
            ((struct rwkv7_key_prep_args){&kk.d, &km.d, &kx.d, &a.d, &k_k.d, &k_a.d, p[2]}),
            (check_out(cas, "kk", &kk, tol_, why_), check_out(cas, "kmod", &km, tol_, why_)));
        break;
    }
    case RWKV7_OP_WKV_OUT: {
        int C = p[0], rows = p[1];
        struct pair d = mk_rand(C, rows, 0, 0), y = mk_rand(C, rows, -2, 2), r = mk_rand(C, rows, -1, 1),
                    kx = mk_rand(C, rows, -1, 1), v = mk_rand(C, rows, -1, 1), g = mk_rand(C, rows, 0, 1),
                    r_k = mk_rand(C, 1, -0.5f, 0.5f), lw = mk_rand(C, 1, 0.5f, 1.5f), lb = mk_rand(C, 1, -0.2f, 0.2f);
        RUN(wkv_out, cas,
            ((struct rwkv7_wkv_out_args){&d.c, &y.c, &r.c, &kx.c, &v.c, &g.c, &r_k.c, &lw.c, &lb.c, p[2],
                                         RWKV7_GROUPNORM_EPS}),
            ((struct rwkv7_wkv_out_args){&d.d, &y.d, &r.d, &kx.d, &v.d, &g.d, &r_k.d, &lw.d, &lb.d, p[2],
                                         RWKV7_GROUPNORM_EPS}),
            check_out(cas, "dst", &d, tol_, why_));
        break;
    }
    case RWKV7_OP_LAST_ROWS: {
        struct pair x = mk_rand(p[0], p[1] * p[2], -2, 2), d = mk_rand(p[0], p[1], 0, 0);
        RUN(last_rows, cas, ((struct rwkv7_last_rows_args){&d.c, &x.c, p[2]}),
            ((struct rwkv7_last_rows_args){&d.d, &x.d, p[2]}), check_out(cas, "dst", &d, tol_, why_));
        break;
    }
    case RWKV7_OP_NORM_SHIFT: {
        int C = p[0], n_seq = p[1], n_tok = p[2], n_mix = p[3], rows = n_seq * n_tok;
        struct pair x = mk_rand(C, rows, -3, 5), w = mk_rand(C, 1, 0.5f, 1.5f), b = mk_rand(C, 1, -0.2f, 0.2f);
        struct pair xn = mk_rand(C, rows, 0, 0), mix = mk_rand(C, n_mix, 0, 1), state = mk_rand(C, 4, -2, 2);
        int32_t sl[3] = {3, 1, 0};
        struct pair slots = mk_i32(sl, n_seq), d = mk_rand(C, rows * n_mix, 0, 0);
        d.c.ne[1] = d.d.ne[1] = rows, d.c.ne[2] = d.d.ne[2] = n_mix;
        RUN(norm_shift, cas,
            ((struct rwkv7_norm_shift_args){&d.c, &xn.c, &x.c, &w.c, &b.c, &mix.c, &state.c, &slots.c, 1e-5f, n_tok}),
            ((struct rwkv7_norm_shift_args){&d.d, &xn.d, &x.d, &w.d, &b.d, &mix.d, &state.d, &slots.d, 1e-5f, n_tok}),
            (check_out(cas, "dst", &d, tol_, why_), check_out(cas, "xn", &xn, tol_, why_),
             check_out(cas, "state", &state, tol_, why_)));
        break;
    }
    case RWKV7_OP_MATMUL_N: {
        /* n products of different widths (LoRA-like and full), every other one accumulating */
        struct rwkv7_matmul_n_args ra = {.n = p[1]}, da = {.n = p[1]};
        struct pair w[4], x[4], d[4];
        for (int i = 0; i < p[1]; i++) {
            int m = i == 0 ? 64 : 32 + 48 * i;
            if (p[3] & 2) g_offs = ALIGNED_OFFS;
            w[i] = mk_weight(k->type, p[0], m, 50 + (uint64_t)i, 0.05f);
            x[i] = mk_rand(p[0], p[2], -1, 1);
            d[i] = mk_rand(m, p[2], -1, 1);
            g_offs = GUARD;
            ra.m[i] = (struct rwkv7_matmul_args){&d[i].c, &w[i].c, &x[i].c, i % 2 == 1};
            da.m[i] = (struct rwkv7_matmul_args){&d[i].d, &w[i].d, &x[i].d, i % 2 == 1};
        }
        RUN(matmul_n, cas, ra, da, for (int i = 0; i < p[1]; i++) check_out(cas, "dst", &d[i], tol_, why_));
        break;
    }
    case RWKV7_OP_FFN_KEY: {
        struct pair w = mk_weight(k->type, p[0], p[1], 31, 0.05f);
        struct pair x = mk_rand(p[0], p[2], -1, 1), d = mk_rand(p[1], p[2], 0, 0);
        RUN(ffn_key, cas, ((struct rwkv7_ffn_key_args){&d.c, &w.c, &x.c}),
            ((struct rwkv7_ffn_key_args){&d.d, &w.d, &x.d}), check_out(cas, "dst", &d, tol_, why_));
        break;
    }
    case RWKV7_OP_LORA_UP: {
        /* The layer's four terms (decay, learning rate, gate, value residual), ranks rank and 2 rank */
        int rank = p[0], T = p[1], rec = p[2], C = p[3], n = rec ? 3 : 4;
        static const int in_fn[4] = {RWKV7_UNARY_TANH, RWKV7_LORA_NO_FN, RWKV7_UNARY_SIGMOID, RWKV7_LORA_NO_FN};
        static const int out_fn[4] = {RWKV7_UNARY_DECAY, RWKV7_UNARY_SIGMOID, RWKV7_LORA_NO_FN, RWKV7_UNARY_SIGMOID};
        struct rwkv7_lora_up_args ra = {.n = n, .vres = rec ? RWKV7_LORA_VRES_RECORD : 3}, da = ra;
        struct pair w[4], x[4], d[4], b[4];
        for (int i = 0; i < n; i++) {
            int K = i == 2 ? 2 * rank : rank;
            /* term 0 in f32, as models keep the decay LoRA: a kernel must mix it with the type */
            w[i] = mk_weight(i == 0 ? RWKV7_DTYPE_F32 : k->type, K, C, 60 + (uint64_t)i, 0.2f);
            x[i] = mk_rand(K, T, -2, 2);
            d[i] = mk_rand(C, T, -1, 1);
            b[i] = mk_rand(C, 1, -1, 1);
            bool bias = out_fn[i] != RWKV7_LORA_NO_FN;
            ra.u[i] = (struct rwkv7_lora_up_term){&d[i].c, &w[i].c, &x[i].c, bias ? &b[i].c : NULL, in_fn[i], out_fn[i]};
            da.u[i] = (struct rwkv7_lora_up_term){&d[i].d, &w[i].d, &x[i].d, bias ? &b[i].d : NULL, in_fn[i], out_fn[i]};
        }
        struct pair v = mk_rand(C, T, -1, 1), vf = mk_rand(C, T, -1, 1);
        ra.v = &v.c, ra.v_first = &vf.c, da.v = &v.d, da.v_first = &vf.d;
        RUN(lora_up, cas, ra, da,
            for (int i = 0; i < n + 2; i++)
                check_out(cas, i < n ? "dst" : i == n ? "v" : "v_first", i < n ? &d[i] : i == n ? &v : &vf, tol_, why_));
        break;
    }
    case RWKV7_OP_WKV7: {
        /* Real domain: decay w in [0.545, 1), kk unit-norm per head, a in (0, 1). */
        int hs = p[0], n_seq = p[1], n_tok = p[2], nh = p[3] ? p[3] : 2, C = nh * hs, rows = n_seq * n_tok;
        float *kk = rnd((int64_t)C * rows, -1, 1);
        for (int i = 0; i < rows * nh; i++) {
            double s = 0;
            for (int j = 0; j < hs; j++) s += (double)kk[i * hs + j] * kk[i * hs + j];
            for (int j = 0; j < hs; j++) kk[i * hs + j] = (float)(kk[i * hs + j] / sqrt(s));
        }
        struct pair pkk = mk(RWKV7_DTYPE_F32, C, rows, kk);
        free(kk);
        float *wd = malloc((size_t)C * rows * sizeof(float));
        for (int i = 0; i < C * rows; i++) wd[i] = test_rng_decay(&g_rng);
        struct pair w = mk(RWKV7_DTYPE_F32, C, rows, wd);
        free(wd);
        struct pair r = mk_rand(C, rows, -1, 1), kx = mk_rand(C, rows, -1, 1), v = mk_rand(C, rows, -1, 1),
                    a = mk_rand(C, rows, 0.001f, 0.999f), y = mk_rand(C, rows, 0, 0),
                    state = mk_rand((int64_t)C * hs, n_seq + 1 > 3 ? n_seq + 1 : 3, -0.5f, 0.5f);
        int32_t sl[8] = {1, 2, 3, 4, 5, 6, 7, 8}; /* slot 0 stays untouched */
        CHECK(n_seq <= 8, "%s: at most 8 sequences", cas);
        struct pair slots = mk_i32(sl, n_seq);
        RUN(wkv7, cas,
            ((struct rwkv7_wkv7_args){&y.c, &state.c, &slots.c, &r.c, &w.c, &kx.c, &v.c, &pkk.c, &a.c, n_tok, hs}),
            ((struct rwkv7_wkv7_args){&y.d, &state.d, &slots.d, &r.d, &w.d, &kx.d, &v.d, &pkk.d, &a.d, n_tok, hs}),
            (check_out(cas, "y", &y, tol_, why_), check_out(cas, "state", &state, tol_, why_)));
        break;
    }
    case RWKV7_OP_WKV_BLOCK: {
        int hs = p[0], n_seq = p[1], n_tok = p[2], C = 2 * hs, rows = n_seq * n_tok;
        float *wd = malloc((size_t)C * rows * sizeof(float));
        for (int i = 0; i < C * rows; i++) wd[i] = test_rng_decay(&g_rng);
        struct pair w = mk(RWKV7_DTYPE_F32, C, rows, wd);
        free(wd);
        struct pair d = mk_rand(C, rows, 0, 0), r = mk_rand(C, rows, -1, 1), kx = mk_rand(C, rows, -1, 1),
                    v = mk_rand(C, rows, -1, 1), a = mk_rand(C, rows, 0.001f, 0.999f), g = mk_rand(C, rows, 0, 1),
                    k_k = mk_rand(C, 1, 0.5f, 1.5f), k_a = mk_rand(C, 1, 0, 1), r_k = mk_rand(C, 1, -0.5f, 0.5f),
                    lw = mk_rand(C, 1, 0.5f, 1.5f), lb = mk_rand(C, 1, -0.2f, 0.2f),
                    state = mk_rand((int64_t)C * hs, 3, -0.5f, 0.5f), kk = mk_rand(C, rows, 0, 0),
                    km = mk_rand(C, rows, 0, 0), y = mk_rand(C, rows, 0, 0);
        int32_t sl[2] = {2, 0};
        struct pair slots = mk_i32(sl, n_seq);
        RUN(wkv_block, cas,
            ((struct rwkv7_wkv_block_args){&d.c, &state.c, &slots.c, &r.c, &w.c, &kx.c, &v.c, &a.c, &g.c, &k_k.c, &k_a.c,
                                           &r_k.c, &lw.c, &lb.c, &kk.c, &km.c, &y.c, n_tok, hs, RWKV7_GROUPNORM_EPS}),
            ((struct rwkv7_wkv_block_args){&d.d, &state.d, &slots.d, &r.d, &w.d, &kx.d, &v.d, &a.d, &g.d, &k_k.d, &k_a.d,
                                           &r_k.d, &lw.d, &lb.d, &kk.d, &km.d, &y.d, n_tok, hs, RWKV7_GROUPNORM_EPS}),
            (check_out(cas, "dst", &d, tol_, why_), check_out(cas, "state", &state, tol_, why_)));
        break;
    }
    default: break;
    }
    free_all();
}

/* ---- graphs: record, replay, discard, drop, mode ---- */

static void test_graph(void) {
    if (!g_dev->i->graph_begin) return;
    const char *cas = "GRAPH(norm+matmul q4_K,k=256,m=64,t=1)";
    const uint64_t key = ((uint64_t)7 << 32) | 42, key_bad = ((uint64_t)8 << 32) | 42;
    struct pair w = mk_weight(RWKV7_DTYPE_Q4_K, 256, 64, 5, 0.05f);
    struct pair x = mk_rand(256, 1, -1, 1), h = mk_rand(256, 1, 0, 0), nw = mk_rand(256, 1, 0.5f, 1.5f),
                nb = mk_rand(256, 1, -0.1f, 0.1f), d = mk_rand(64, 1, 0, 0);
    /* The banner says whether this device records (Vulkan needs push descriptors); otherwise
     * graph_begin/end succeed without recording and launch reports false. */
    bool records = strstr(g_dev->desc, "descriptor pool") == NULL;
    for (int step = 0; step < 4; step++) {
        float *xv = rnd(256, -2, 2);
        CHECK(g_dev->i->buf_set(g_dev, x.d.buf, x.d.offs, xv, 1024) == RWKV7_OK, "buf_set");
        CHECK(g_ref->i->buf_set(g_ref, x.c.buf, x.c.offs, xv, 1024) == RWKV7_OK, "buf_set");
        free(xv);
        CHECK(RWKV7_OP(g_ref, norm, .dst = &h.c, .x = &x.c, .w = &nw.c, .b = &nb.c, .n_groups = 1, .eps = 1e-5f) ==
                  RWKV7_OK,
              "cpu norm");
        CHECK(RWKV7_OP(g_ref, matmul, .dst = &d.c, .w = &w.c, .x = &h.c) == RWKV7_OK, "cpu matmul");
        if (step == 3 && g_dev->i->set_row_invariant) g_dev->i->set_row_invariant(g_dev, true);
        bool replayed = g_dev->i->graph_launch(g_dev, key);
        /* step 3 runs in the other matmul mode: the recording must not be replayed */
        bool want = step > 0 && records && !(step == 3 && g_dev->i->set_row_invariant);
        CHECK(replayed == want, "%s: step %d replayed=%d, expected %d", cas, step, replayed, want);
        if (!replayed) {
            CHECK(g_dev->i->graph_begin(g_dev, key) == RWKV7_OK, "graph_begin: %s", rwkv7_last_error());
            CHECK(RWKV7_OP(g_dev, norm, .dst = &h.d, .x = &x.d, .w = &nw.d, .b = &nb.d, .n_groups = 1, .eps = 1e-5f) ==
                      RWKV7_OK,
                  "norm");
            CHECK(RWKV7_OP(g_dev, matmul, .dst = &d.d, .w = &w.d, .x = &h.d) == RWKV7_OK, "matmul");
            CHECK(g_dev->i->graph_end(g_dev, true) == RWKV7_OK, "graph_end: %s", rwkv7_last_error());
        }
        char c2[160];
        snprintf(c2, sizeof c2, "%s step %d", cas, step);
        check_out(c2, "dst", &d, 1e-8, "fp32 matvec");
    }
    if (g_dev->i->set_row_invariant) g_dev->i->set_row_invariant(g_dev, false);
    /* A failed step's recording is thrown away. */
    CHECK(g_dev->i->graph_begin(g_dev, key_bad) == RWKV7_OK, "graph_begin: %s", rwkv7_last_error());
    CHECK(RWKV7_OP(g_dev, norm, .dst = &h.d, .x = &x.d, .w = &nw.d, .b = &nb.d, .n_groups = 1, .eps = 1e-5f) ==
              RWKV7_OK,
          "norm");
    CHECK(g_dev->i->graph_end(g_dev, false) == RWKV7_OK, "graph_end(discard): %s", rwkv7_last_error());
    CHECK(!g_dev->i->graph_launch(g_dev, key_bad), "%s: a discarded recording was replayed", cas);
    /* Dropping an owner forgets its recordings. */
    g_dev->i->graph_drop(g_dev, 7);
    CHECK(!g_dev->i->graph_launch(g_dev, key), "%s: a dropped recording was replayed", cas);
    CHECK(g_dev->i->sync(g_dev) == RWKV7_OK, "sync: %s", rwkv7_last_error());
    free_all();
}

/* ---- the CHECK hook names a deliberately broken op ---- */

static const struct rwkv7_backend_i *g_real_i;
static RWKV7_OP_SIG(broken_unary, unary) {
    struct rwkv7_unary_args wrong = *args; /* the wrong function: sigmoid instead of tanh, ... */
    wrong.fn = args->fn == RWKV7_UNARY_SIGMOID ? RWKV7_UNARY_TANH : RWKV7_UNARY_SIGMOID;
    return g_real_i->unary(be, &wrong);
}

static void test_check_hook(void) {
    struct pair x = mk_rand(OP_C, 3, -2, 2), d = mk_rand(OP_C, 3, 0, 0);
    CHECK(rwkv7_backend_set_debug(g_dev, RWKV7_DEBUG_CHECK) == RWKV7_OK, "set_debug: %s", rwkv7_last_error());
    rwkv7_op_where(g_dev, 3, 5);
    CHECK(RWKV7_OP(g_dev, unary, .dst = &d.d, .x = &x.d, .fn = RWKV7_UNARY_TANH) == RWKV7_OK, "checked unary: %s",
          rwkv7_last_error());
    static struct rwkv7_backend_i broken;
    g_real_i = g_dev->i;
    broken = *g_dev->i;
    broken.unary = broken_unary;
    g_dev->i = &broken;
    enum rwkv7_status st = RWKV7_OP(g_dev, unary, .dst = &d.d, .x = &x.d, .fn = RWKV7_UNARY_TANH);
    const char *msg = rwkv7_last_error();
    CHECK(st == RWKV7_ERR_INTERNAL && strstr(msg, "op unary") && strstr(msg, "layer 3, token 5") && strstr(msg, "nmse"),
          "CHECK_RESULTS on %s did not name the broken op: status %d, '%s'", g_real_i->name, (int)st, msg);
    g_dev->i = g_real_i;
    CHECK(rwkv7_backend_set_debug(g_dev, 0) == RWKV7_OK, "set_debug off");
    free_all();
}

/* ---- main ---- */

static int usage(void) {
    fprintf(stderr, "usage: test_ops [-b BACKEND] [-o OP] [-p REGEX] [--perf]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *only_be = NULL, *only_op = NULL, *pattern = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--perf"))
            g_perf = true;
        else if (!strcmp(argv[i], "-b") && i + 1 < argc)
            only_be = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            only_op = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc)
            pattern = argv[++i];
        else
            return usage();
    }
    regex_t re;
    if (pattern && regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "test_ops: bad regex '%s'\n", pattern);
        return 2;
    }
    if (only_op) {
        bool known = false;
        for (int op = 0; op < RWKV7_OP_COUNT; op++) known |= !strcmp(only_op, rwkv7_op_name((enum rwkv7_op)op));
        if (!known) {
            fprintf(stderr, "test_ops: unknown op '%s'\n", only_op);
            return 2;
        }
    }
    if (only_be && (!rwkv7_backend_reg_find(only_be) || strcmp(rwkv7_backend_reg_find(only_be)->name, only_be))) {
        fprintf(stderr, "test_ops: unknown backend '%s'\n", only_be);
        return 2;
    }
    build_cases();
    /* The backends under test start first, the CPU one with 16-token WKV chunks (its default is
     * the serial form); the reference then reads RWKV7_CPU_WKV_CHUNK=0 and runs the serial
     * recurrence, so the CPU backend's chunked form is tested against it too. */
    setenv("RWKV7_CPU_WKV_CHUNK", "16", 1);
    struct rwkv7_backend *devs[8];
    int n_dev = 0;
    const struct rwkv7_backend_reg *r;
    for (int b = 0; (r = rwkv7_backend_reg_get(b)) != NULL && n_dev < 8; b++) {
        if (only_be && strcmp(only_be, r->name)) continue;
        if (!r->init) {
            fprintf(stderr, "%s: not compiled into this build\n", r->name);
            continue;
        }
        struct rwkv7_backend *be = NULL;
        /* The CPU under test keeps fp32 activations too ("exact"): its int8-activation matmul
         * rounds inputs on purpose and is checked by test_cpu_matmul against a reference that
         * rounds them the same way (cpu/matmul_q8.h). */
        if (r->init(!strcmp(r->name, "cpu") ? "exact" : NULL, 2, &be) != RWKV7_OK) {
            fprintf(stderr, "%s: not available: %s\n", r->name, rwkv7_last_error());
            continue;
        }
        devs[n_dev++] = be;
    }
    if (n_dev == 0) TEST_SKIP("backend %s cannot start here", only_be ? only_be : "(any)");
    setenv("RWKV7_CPU_WKV_CHUNK", "0", 1);
    CHECK(rwkv7_backend_init("cpu", "exact", 1, true, &g_ref) == RWKV7_OK, "reference cpu: %s", rwkv7_last_error());
    for (int b = 0; b < n_dev; b++) {
        g_dev = devs[b];
        fprintf(stderr, "backend %s: %s\n", g_dev->i->name, g_dev->desc);
        g_copy_gbs = g_perf && g_dev->i->copy_bandwidth ? g_dev->i->copy_bandwidth(g_dev) : 0;
        if (g_perf) printf("# %s: %s; copy bandwidth %.1f GB/s\n", g_dev->i->name, g_dev->desc, g_copy_gbs);
        int ran = 0;
        for (int i = 0; i < g_n_cases; i++) {
            const struct op_case *k = &g_cases[i];
            if (only_op && strcmp(only_op, rwkv7_op_name(k->op))) continue;
            if (pattern && regexec(&re, k->name, 0, NULL, 0) != 0) continue;
            run_case(k);
            ran++;
        }
        if (!only_op && !pattern) {
            test_graph();
            test_check_hook();
        }
        fprintf(stderr, "%s: %d cases\n", g_dev->i->name, ran);
        rwkv7_backend_free(g_dev);
    }
    rwkv7_backend_free(g_ref);
    if (pattern) regfree(&re);
    return test_finish("test_ops");
}
