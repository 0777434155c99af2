/* test_cuda_lora_up.cu: host-only check of the fused LoRA up-projection kernel (cuda/lora_up.cu,
 * lora_up_kernel). Its per-thread arithmetic (cuda/lora_up.cuh) is compiled for the host and
 * driven here as the kernel drives it: the launcher's plan (rows per block, lanes per row, column
 * chunks), the staged input in its split-group shared-memory layout (poisoned with NaN first, so
 * a lane that reads a slot nobody wrote shows), every lane's partial sums, the butterfly shuffles
 * in their order, the epilogue, the value-residual mix and the record copy split over blocks.
 * Compared with a double-precision reference built on the CPU dequantizers (dtype.h), for every
 * CUDA weight type at ranks where a row's lanes are all busy and where some are short, T = 1..11
 * (11: two column chunks, the batch-invariant path), and four terms with the mix or three that
 * record v_first. Batch invariance: a column's outputs are bit-identical whether it was computed
 * alone (NCOL 1) or inside 4- or 8-column blocks. Needs no GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda/lora_up.cuh"

extern "C" {
#include "dtype_random.h"
#include "testing.h"
}

/* Limits per (case, tensor): max|d| / max|ref| and sum d^2 / sum ref^2 against the double
 * reference. fp32 sums of <= 768 products land near 1e-7 / 1e-14; a dropped or doubled group
 * costs ~1e-2 (check_sensitivity). */
#define MAX_REL  2e-6
#define MAX_NMSE 1e-12

static int g_sabotage; /* check_sensitivity: lanes skip every other group */

struct term {
    int type, K, M, in_fn, out_fn;
    uint8_t *w;      /* M rows of K */
    float *x, *bias; /* (K, T), (M) or NULL */
    float *dst;      /* (M, T) */
};

struct worst {
    double rel, nmse;
};
static struct worst g_worst;

/* One term's blocks as the kernel runs them (grid x from block0, grid y over column chunks). */
template <int TYPE, int NCOL>
static void emulate_term(const struct term *u, int64_t T, int rpb, bool mix, float *v, const float *vf) {
    const int K = u->K, lpr = lu_lanes(K), slots = LU_THREADS / lpr;
    const size_t rb = rwkv7_dtype_row_bytes(TYPE, K);
    const dq_tables tb = dq_tab();
    float *xs = (float *)malloc(sizeof(float) * NCOL * K);
    float acc[32][NCOL], nxt[32][NCOL];
    const int64_t n_bx = (u->M + rpb - 1) / rpb, n_by = (T + NCOL - 1) / NCOL;
    for (int64_t by = 0; by < n_by; by++)
        for (int64_t bx = 0; bx < n_bx; bx++) {
            const int64_t t0 = by * NCOL;
            const int ncol = T - t0 < NCOL ? (int)(T - t0) : NCOL;
            for (int i = 0; i < NCOL * K; i++) xs[i] = NAN;
            for (int tid = 0; tid < LU_THREADS; tid++)
                for (int i = tid; i < ncol * K / 4; i += LU_THREADS) lu_stage4(xs, u->x + t0 * K, K, i, u->in_fn, true);
            for (int sub = 0; sub < slots; sub++)
                for (int r = sub; r < rpb; r += slots) {
                    const int64_t row = bx * rpb + r;
                    const bool live = row < u->M;
                    for (int l = 0; l < lpr; l++) {
                        for (int c = 0; c < NCOL; c++) acc[l][c] = 0.0f;
                        if (live)
                            lu_lane_dot<TYPE, NCOL>(u->w + (size_t)row * rb, xs, K, l, g_sabotage ? 2 * lpr : lpr, ncol,
                                                    acc[l], tb);
                    }
                    for (int o = lpr / 2; o > 0; o /= 2) { /* acc += __shfl_xor_sync(acc, o), all lanes at once */
                        for (int l = 0; l < lpr; l++)
                            for (int c = 0; c < NCOL; c++) nxt[l][c] = acc[l][c] + acc[l ^ o][c];
                        memcpy(acc, nxt, sizeof acc);
                    }
                    if (!live) continue;
                    for (int c = 0; c < ncol; c++) {
                        const int64_t at = (t0 + c) * u->M + row;
                        const float d = lu_out(acc[c % lpr][c], u->bias, row, u->out_fn);
                        u->dst[at] = d;
                        if (mix) v[at] = lu_mix(v[at], vf[at], d);
                    }
                }
        }
    free(xs);
}

template <int TYPE>
static void emulate_type(const struct term *u, int64_t T, int rpb, bool mix, float *v, const float *vf) {
    switch (lu_ncol(T)) {
    case 1: emulate_term<TYPE, 1>(u, T, rpb, mix, v, vf); break;
    case 4: emulate_term<TYPE, 4>(u, T, rpb, mix, v, vf); break;
    default: emulate_term<TYPE, 8>(u, T, rpb, mix, v, vf); break;
    }
}

static void emulate(const struct term *u, int64_t T, int rpb, bool mix, float *v, const float *vf) {
    switch (u->type) {
#define EMU_CASE(T_)                                                                                                   \
    case RWKV7_DTYPE_##T_: emulate_type<RWKV7_DTYPE_##T_>(u, T, rpb, mix, v, vf); break;
        RWKV7_CUDA_WEIGHT_TYPES(EMU_CASE)
#undef EMU_CASE
    default: CHECK(0, "type %d has no emulation", u->type);
    }
}

/* The record copy as the kernel splits it: block b's threads take elements b * 256 + tid + k nb 256. */
static void emulate_record(float *vf, const float *v, int64_t n, int64_t nb) {
    for (int64_t b = 0; b < nb; b++)
        for (int tid = 0; tid < LU_THREADS; tid++)
            for (int64_t i = b * LU_THREADS + tid; i < n; i += nb * LU_THREADS) vf[i] = v[i];
}

static void compare(const char *what, const char *cas, const float *got, const double *ref, int64_t n) {
    double dmax = 0, rmax = 0, e = 0, s = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) bad++;
        const double d = fabs(got[i] - ref[i]);
        dmax = d > dmax ? d : dmax;
        rmax = fabs(ref[i]) > rmax ? fabs(ref[i]) : rmax;
        e += d * d, s += ref[i] * ref[i];
    }
    const double rel = dmax / (rmax > 0 ? rmax : 1), nmse = e / (s > 0 ? s : 1);
    if (!g_sabotage) {
        g_worst.rel = rel > g_worst.rel ? rel : g_worst.rel;
        g_worst.nmse = nmse > g_worst.nmse ? nmse : g_worst.nmse;
    }
    CHECK(bad == 0 && rel <= MAX_REL && nmse <= MAX_NMSE, "%s %s: %d non-finite, rel %.3g nmse %.3g", cas, what, bad,
          rel, nmse);
}

/* One call: n terms (4 with the mix on term 3, or 3 recording v_first) of one weight type, the
 * layer's functions (decay, learning rate, gate, value residual), ranks K and 2K for the gate;
 * planned for n_sm SMs. Returns the failures it added. */
static int check_case(int type, int K, int M, int64_t T, bool record, int n_sm, unsigned long long seed) {
    static const int in_fn[4] = {RWKV7_UNARY_TANH, RWKV7_LORA_NO_FN, RWKV7_UNARY_SIGMOID, RWKV7_LORA_NO_FN};
    static const int out_fn[4] = {RWKV7_UNARY_DECAY, RWKV7_UNARY_SIGMOID, RWKV7_LORA_NO_FN, RWKV7_UNARY_SIGMOID};
    const int before = g_test_failures, n = record ? 3 : 4;
    char cas[128];
    snprintf(cas, sizeof cas, "LORA_UP(type=%s,rank=%d,m=%d,t=%lld,%s,sm=%d)", rwkv7_dtype_name(type), K, M,
             (long long)T, record ? "record" : "mix", n_sm);
    struct test_rng g = {seed};
    struct term u[4];
    int64_t rows_total = 0;
    for (int i = 0; i < n; i++) {
        struct term *t = &u[i];
        t->type = type, t->K = i == 2 && 2 * K <= LU_MAX_K ? 2 * K : K, t->M = M;
        t->in_fn = in_fn[i], t->out_fn = out_fn[i];
        const size_t rb = rwkv7_dtype_row_bytes(type, t->K);
        t->w = (uint8_t *)malloc(rb * M);
        rwkv7_dtype_random_rows(type, seed * 8 + i, t->w, M, t->K, 0.2f);
        t->x = (float *)malloc(sizeof(float) * t->K * T);
        for (int64_t e = 0; e < t->K * T; e++) t->x[e] = test_rng_uniform(&g, -2, 2);
        t->bias = NULL;
        if (out_fn[i] != RWKV7_LORA_NO_FN) {
            t->bias = (float *)malloc(sizeof(float) * M);
            for (int e = 0; e < M; e++) t->bias[e] = test_rng_uniform(&g, -1, 1);
        }
        t->dst = (float *)malloc(sizeof(float) * M * T);
        for (int64_t e = 0; e < M * T; e++) t->dst[e] = NAN; /* every element must be written */
        rows_total += M;
    }
    float *v = (float *)malloc(sizeof(float) * M * T), *vf = (float *)malloc(sizeof(float) * M * T);
    double *ref = (double *)malloc(sizeof(double) * M * T), *ref_v = (double *)malloc(sizeof(double) * M * T);
    for (int64_t e = 0; e < M * T; e++) v[e] = test_rng_uniform(&g, -1, 1), vf[e] = test_rng_uniform(&g, -1, 1);
    float *v0 = (float *)malloc(sizeof(float) * M * T);
    memcpy(v0, v, sizeof(float) * M * T);

    /* the kernel, emulated: record copy over the launch's blocks, then every term's blocks */
    int64_t gx = 0;
    int rpb[4];
    for (int i = 0; i < n; i++) {
        rpb[i] = lu_rows_per_block(lu_lanes(u[i].K), rows_total, n_sm);
        gx += (M + rpb[i] - 1) / rpb[i];
    }
    float *vf_out = (float *)malloc(sizeof(float) * M * T);
    memcpy(vf_out, vf, sizeof(float) * M * T);
    if (record) {
        for (int64_t e = 0; e < M * T; e++) vf_out[e] = NAN;
        emulate_record(vf_out, v, M * T, gx * ((T + lu_ncol(T) - 1) / lu_ncol(T)));
    }
    for (int i = 0; i < n; i++) emulate(&u[i], T, rpb[i], !record && i == 3, v, vf);

    /* the reference: in_fn in float as the unary op, sums in double, epilogue and mix in float */
    float *wf = (float *)malloc(sizeof(float) * 2 * K);
    for (int i = 0; i < n; i++) {
        const struct term *t = &u[i];
        const size_t rb = rwkv7_dtype_row_bytes(type, t->K);
        float *h = (float *)malloc(sizeof(float) * t->K * T);
        for (int64_t e = 0; e < t->K * T; e++)
            h[e] = t->in_fn == RWKV7_LORA_NO_FN ? t->x[e] : lu_unary(t->in_fn, t->x[e]);
        wf = (float *)realloc(wf, sizeof(float) * t->K);
        for (int m = 0; m < M; m++) {
            rwkv7_dtype_get(type)->to_f32(t->w + (size_t)m * rb, wf, t->K);
            for (int64_t c = 0; c < T; c++) {
                double s = 0;
                for (int k = 0; k < t->K; k++) s += (double)wf[k] * h[c * t->K + k];
                const int64_t at = c * M + m;
                ref[at] = lu_out((float)s, t->bias, m, t->out_fn);
                if (!record && i == 3) ref_v[at] = lu_mix(v0[at], vf[at], (float)ref[at]);
            }
        }
        free(h);
        char what[32];
        snprintf(what, sizeof what, "dst[%d]", i);
        compare(what, cas, t->dst, ref, M * T);
    }
    if (record) {
        for (int64_t e = 0; e < M * T; e++) ref_v[e] = v0[e];
        compare("v_first", cas, vf_out, ref_v, M * T);
        CHECK(memcmp(v, v0, sizeof(float) * M * T) == 0, "%s: v changed while recording", cas);
    } else {
        compare("v", cas, v, ref_v, M * T);
    }

    /* batch invariance: each column alone (NCOL 1) gives the same bits as inside its block */
    if (T > 1 && !g_sabotage) {
        for (int i = 0; i < n; i++) {
            struct term one = u[i];
            one.dst = (float *)malloc(sizeof(float) * M);
            int diff = 0;
            for (int64_t c = 0; c < T; c++) {
                one.x = u[i].x + c * u[i].K;
                emulate(&one, 1, rpb[i], false, NULL, NULL);
                diff += memcmp(one.dst, u[i].dst + c * M, sizeof(float) * M) != 0;
            }
            CHECK(diff == 0, "%s: term %d: %d of %lld columns differ from the same column run alone", cas, i, diff,
                  (long long)T);
            free(one.dst);
        }
    }
    for (int i = 0; i < n; i++) free(u[i].w), free(u[i].x), free(u[i].bias), free(u[i].dst);
    free(v), free(vf), free(v0), free(vf_out), free(ref), free(ref_v), free(wf);
    return g_test_failures - before;
}

/* The comparison must notice a kernel whose lanes skip every other group of their row (rank 512:
 * each of 32 lanes owns 2 of the 64 groups, so half of the products go missing). */
static void check_sensitivity(void) {
    const int before_f = g_test_failures, before_c = g_test_checks;
    fprintf(stderr, "sensitivity: the FAIL lines of the sabotaged case below are expected\n");
    g_sabotage = 1;
    const int failed = check_case(RWKV7_DTYPE_BF16, 512, 40, 2, false, 132, 99); /* 64 groups, 32 lanes */
    g_sabotage = 0;
    g_test_failures = before_f, g_test_checks = before_c; /* expected failures are not failures */
    CHECK(failed > 0, "a kernel that skips every other group passed the comparison");
}

int main(void) {
    unsigned long long seed = 1;
    static const int64_t Ts[] = {1, 3, 8, 11};
#define TYPE_CASES(T_)                                                                                                 \
    {                                                                                                                  \
        const int type = RWKV7_DTYPE_##T_, b = rwkv7_dtype_get(type)->block, k1 = b < 32 ? 32 : b;                     \
        for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)                                                       \
            for (int rec = 0; rec < 2; rec++) check_case(type, k1, 200, Ts[ti], rec, ti & 1 ? 1 : 132, seed++);        \
        check_case(type, 3 * k1 <= LU_MAX_K ? 3 * k1 : 2 * k1, 130, 2, false, 132, seed++);                            \
    }
    RWKV7_CUDA_WEIGHT_TYPES(TYPE_CASES)
#undef TYPE_CASES
    /* the model's ranks on float weights: lanes short in the last slice (96, 480), 4 lanes (32) */
    check_case(RWKV7_DTYPE_BF16, 480, 300, 1, false, 132, seed++);
    check_case(RWKV7_DTYPE_F16, 96, 257, 5, false, 8, seed++);
    check_case(RWKV7_DTYPE_F32, 1024, 64, 8, true, 132, seed++);
    check_sensitivity();
    fprintf(stderr, "worst lora_up kernel (host) vs double reference: rel %.3g nmse %.3g (limits %.0e, %.0e)\n",
            g_worst.rel, g_worst.nmse, MAX_REL, MAX_NMSE);
    return test_finish("test_cuda_lora_up");
}
