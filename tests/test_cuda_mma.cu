/* test_cuda_mma.cu: host-only check of the CUDA tensor-core prefill GEMM (cuda/gemm.cu
 * gemm_bf16x3_kernel). Three parts:
 * 1. Rounding: mm_bf16_bits / mm_split (cuda/mma_split.cuh, compiled here for the host) round to
 *    nearest even like cvt.rn.bf16x2.f32; hi + lo is within 2^-16 of v; BF16 weights split with a
 *    zero lo part (the kernel skips their a_lo b_hi), F16 weights exactly; mm_split2's host form
 *    packs the same bits.
 * 2. Fragments: the ldmatrix sources and accumulator positions of cuda/gemm_tile.cuh, run through
 *    an emulation of ldmatrix.x4, must give every lane exactly the elements the PTX ISA's
 *    mma.m16n8k16 .bf16 fragment tables assign it (A, B and C), so the tile multiplies what it
 *    means to.
 * 3. Arithmetic: the kernel's sums replayed on the host on the matrix shapes of the test fixtures
 *    (tests/data: rand-c256-l2, tiny-rwkv7-834K, world-c128) and of the 7.2B model: the launch plan
 *    of gemm_tile.cuh (token chunks, split-K for M <= 512 at 132 and 108 SMs), per k16 slice
 *    a_lo b_hi, a_hi b_lo, a_hi b_hi into one fp32 accumulator (a_lo b_hi skipped for BF16
 *    weights), k past K zero-filled, split partials added in split order. The MMA's own summation
 *    under two models: "rn" (16 exact products and the accumulator summed exactly, rounded to
 *    nearest once) and "rz" (every term truncated to 24 bits below the largest one's leading bit,
 *    the sum truncated: the pessimistic reading of the tensor-core accumulation studies). Against
 *    the exact (double) product of the fp32 inputs, max|err| / max|ref| must stay within MAX_REL, a
 *    tenth of the 1e-4 that tests/model_check.h allows the whole model (prefill vs serial, F32
 *    fixtures): a token's logits pass through 4-12 matmuls per layer. Where K >= 4096 a sequential
 *    fp32 sum is itself a few 1e-6 off; there the limit is 3 such sums.
 * Sensitivity: a single bf16 product, and bf16x3 without a_lo b_hi on fp32 weights, must FAIL the
 * limit, so the comparison is shown to catch the errors it is about. Needs no GPU. Observed (this
 * file's shapes and data, worst of f32, f16 and bf16 weights): printed per shape. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda/gemm_tile.cuh"
#include "../cuda/mma_split.cuh"

extern "C" {
#include "testing.h"
}

#define MAX_REL 1e-5 /* per matmul; the fixtures allow 1e-4 for the whole model */

/* BF16X3: the kernel; BF16X3_NOAL: without a_lo b_hi (wrong for fp32 weights); BF16X1: one bf16
 * product (the kernel before 3xTF32); TF32X3: the 3xTF32 wmma tile this kernel replaced, for
 * comparison. */
enum scheme { BF16X3, BF16X3_NOAL, BF16X1, TF32X3 };
enum sum_model { SUM_RN, SUM_RZ };

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static uint32_t f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
/* tf32 as cvt.rna.tf32.f32 (nearest, ties away), finite inputs: the comparison scheme only */
static float tf32_rna(float v) { return bits_f((f_bits(v) + 0x1000u) & 0xFFFFE000u); }
static float bf16_rn(float v) { return mm_bf16_float(mm_bf16_bits(v)); }

/* One MMA's update of one output: c + sum_i a[i] b[i] over n terms, rounded per the model. */
static float mma_sum(float c, const float *a, const float *b, int n, enum sum_model model) {
    long double t[17];
    int nt = 0;
    t[nt++] = c;
    for (int i = 0; i < n; i++) t[nt++] = (long double)a[i] * b[i]; /* exact: <= 2 x 11 bits */
    if (model == SUM_RN) {
        long double s = 0;
        for (int i = 0; i < nt; i++) s += t[i];
        return (float)s;
    }
    long double mx = 0;
    for (int i = 0; i < nt; i++) mx = fabsl(t[i]) > mx ? fabsl(t[i]) : mx;
    if (mx == 0) return 0.0f;
    const long double q = ldexpl(1.0L, ilogbl(mx) - 23); /* 24 bits below the largest leading bit */
    long double s = 0;
    for (int i = 0; i < nt; i++) s += truncl(t[i] / q) * q;
    float f = (float)s; /* then toward zero */
    if (fabsl((long double)f) > fabsl(s)) f = nextafterf(f, 0.0f);
    return f;
}

struct split {
    float *hi, *lo;
};

static struct split split_all(const float *v, size_t n, enum scheme sc) {
    struct split s = {(float *)malloc(n * sizeof(float)), (float *)malloc(n * sizeof(float))};
    for (size_t i = 0; i < n; i++) {
        if (sc == TF32X3) {
            s.hi[i] = tf32_rna(v[i]);
            s.lo[i] = tf32_rna(v[i] - s.hi[i]);
        } else if (sc == BF16X1) {
            s.hi[i] = bf16_rn(v[i]);
            s.lo[i] = 0.0f;
        } else {
            mm_split(v[i], &s.hi[i], &s.lo[i]);
        }
    }
    return s;
}

/* The kernel's result for output (m, t) of a product whose plan is p: W row m (K), X row t (K),
 * split z's k16 slices from its fp32 zero, the partials added in split order. w_exact: the
 * weights' lo part is zero by type (BF16), so the kernel skips a_lo b_hi; so does this. */
static float tile_dot(const struct split *w, const struct split *x, size_t wo, size_t xo, int K, const gm_plan *p,
                      enum scheme sc, enum sum_model model, bool w_exact) {
    const int step = sc == TF32X3 ? 8 : 16; /* m16n8k8 tf32, m16n8k16 bf16 */
    float total = 0.0f;
    for (int z = 0; z < p->splits; z++) {
        const int k0 = z * p->steps * GM_BK, k1 = (z + 1) * p->steps * GM_BK < K ? (z + 1) * p->steps * GM_BK : K;
        float c = 0.0f;
        for (int k = k0; k < k1; k += step) {
            const int n = k1 - k < step ? k1 - k : step; /* the rest of the slice is zero-filled */
            if (sc == BF16X1) {
                c = mma_sum(c, w->hi + wo + k, x->hi + xo + k, n, model);
                continue;
            }
            if (!w_exact && sc != BF16X3_NOAL) c = mma_sum(c, w->lo + wo + k, x->hi + xo + k, n, model);
            c = mma_sum(c, w->hi + wo + k, x->lo + xo + k, n, model);
            c = mma_sum(c, w->hi + wo + k, x->hi + xo + k, n, model);
        }
        total = z == 0 ? c : total + c; /* gemm_reduce_kernel: fp32 adds in z order */
    }
    return total;
}

struct shape {
    const char *what;
    int K, M, T;
    int act;    /* 0: normal (post-norm), 1: relu^2 (channel-mix value input), 2: normal + offset */
    int plan_m; /* rows and tokens of the whole product the slice is planned as (0: the slice's) */
    int plan_t;
};

/* Matrices of the fixture models (rand-c256-l2: C 256, ffn 1024, LoRA 32/64; tiny: C 64, ffn 256;
 * world-c128: C 128, head 65536 rows, here a slice) at the 81-token fixture prefill, a prefill
 * longer than one token chunk, and 7.2B shapes (C 4096, ffn 16384; slices of rows and tokens are
 * planned as the whole 16-token product). */
static const struct shape k_shapes[] = {
    {"rand att/head 256x256", 256, 256, 81, 0, 0, 0},
    {"rand ffn key 256x1024", 256, 1024, 81, 0, 0, 0},
    {"rand ffn value 1024x256", 1024, 256, 81, 1, 0, 0},
    {"rand lora down 256x64", 256, 64, 81, 2, 0, 0},
    {"rand lora up 64x256", 64, 256, 81, 0, 0, 0},
    {"rand lora up 32x256", 32, 256, 81, 0, 0, 0},
    {"tiny 64x64", 64, 64, 81, 0, 0, 0},
    {"tiny ffn value 256x64", 256, 64, 81, 1, 0, 0},
    {"tiny 64x64, 1100 tokens", 64, 64, 1100, 0, 0, 0},
    {"world head 128x(2048 of 65536)", 128, 2048, 24, 0, 65536, 0},
    {"7.2B att 4096x(64 of 4096)", 4096, 64, 8, 0, 4096, 16},
    {"7.2B lora down 4096x96", 4096, 96, 16, 2, 0, 0},
    {"7.2B ffn value 16384x(32 of 4096)", 16384, 32, 8, 1, 4096, 16},
};

static void fill(struct test_rng *g, float *v, size_t n, int act, float scale) {
    for (size_t i = 0; i < n; i++) {
        float z = test_rng_gauss(g);
        if (act == 1) z = z > 0 ? z * z : 0.0f;
        if (act == 2) z += 3.0f;
        v[i] = z * scale;
    }
}

/* max|fp32 sequential dot - exact| / max|exact|: what the matrix-vector kernel and the CPU backend
 * get (one fp32 accumulator), the baseline the tile is held to on long rows. */
static double serial_err(const struct shape *s, const float *W, const float *X, const double *ref) {
    double md = 0, mr = 0;
    for (int t = 0; t < s->T; t++)
        for (int m = 0; m < s->M; m++) {
            float acc = 0.0f;
            for (int k = 0; k < s->K; k++) acc = fmaf(W[(size_t)m * s->K + k], X[(size_t)t * s->K + k], acc);
            const double r = ref[(size_t)t * s->M + m];
            md = fmax(md, fabs(acc - r));
            mr = fmax(mr, fabs(r));
        }
    return md / mr;
}

/* max|kernel - exact| / max|exact| over one shape, token chunks planned as gemm_mma does. */
static double shape_err(const struct shape *s, const float *W, const float *X, const double *ref, enum scheme sc,
                        enum sum_model model, bool w_exact, int n_sm, int *max_splits) {
    struct split w = split_all(W, (size_t)s->M * s->K, sc), x = split_all(X, (size_t)s->T * s->K, sc);
    double md = 0, mr = 0;
    for (int c0 = 0; c0 < s->T; c0 += GM_TCHUNK) {
        const int tc = s->T - c0 < GM_TCHUNK ? s->T - c0 : GM_TCHUNK;
        const gm_plan p = gm_plan_of(s->plan_m ? s->plan_m : s->M, s->K, s->plan_t ? s->plan_t : tc, n_sm);
        if (max_splits && p.splits > *max_splits) *max_splits = p.splits;
        for (int t = c0; t < c0 + tc; t++)
            for (int m = 0; m < s->M; m++) {
                const double r = ref[(size_t)t * s->M + m];
                const double d =
                    fabs(tile_dot(&w, &x, (size_t)m * s->K, (size_t)t * s->K, s->K, &p, sc, model, w_exact) - r);
                md = d > md || isnan(d) ? d : md;
                mr = fabs(r) > mr ? fabs(r) : mr;
            }
    }
    free(w.hi), free(w.lo), free(x.hi), free(x.lo);
    return md / mr;
}

/* Whether two SM counts plan every chunk of s alike. */
static bool same_plans(const struct shape *s, int sm_a, int sm_b) {
    for (int c0 = 0; c0 < s->T; c0 += GM_TCHUNK) {
        const int tc = s->T - c0 < GM_TCHUNK ? s->T - c0 : GM_TCHUNK;
        const gm_plan a = gm_plan_of(s->plan_m ? s->plan_m : s->M, s->K, s->plan_t ? s->plan_t : tc, sm_a);
        const gm_plan b = gm_plan_of(s->plan_m ? s->plan_m : s->M, s->K, s->plan_t ? s->plan_t : tc, sm_b);
        if (a.splits != b.splits || a.steps != b.steps) return false;
    }
    return true;
}

static void check_rounding(void) {
    /* cvt.rn.bf16.f32: nearest, ties to even, 7 explicit mantissa bits */
    CHECK(bf16_rn(1.0f + ldexpf(1, -8)) == 1.0f, "tie at an even ulp stays");
    CHECK(bf16_rn(1.0f + 3 * ldexpf(1, -8)) == 1.0f + ldexpf(1, -6), "tie at an odd ulp goes up");
    CHECK(bf16_rn(-(1.0f + 3 * ldexpf(1, -8))) == -(1.0f + ldexpf(1, -6)), "negative tie to even");
    CHECK(bf16_rn(1.0f + ldexpf(1, -8) + ldexpf(1, -20)) == 1.0f + ldexpf(1, -7), "above the tie rounds up");
    CHECK(isinf(bf16_rn(INFINITY)) && isnan(bf16_rn(NAN)) && isnan(bf16_rn(bits_f(0x7F800001u))),
          "inf and nan pass through (a low-payload nan stays nan)");
    CHECK(isinf(bf16_rn(3.4e38f)), "above the largest bf16 rounds to inf");
    struct test_rng g = {99};
    double worst = 0;
    for (int i = 0; i < 100000; i++) {
        const float v = test_rng_gauss(&g) * ldexpf(1, (int)(test_rng_next(&g) % 40) - 20);
        float hi, lo;
        mm_split(v, &hi, &lo);
        const double e = fabs(((double)hi + lo) - v) / fabs((double)v);
        worst = e > worst ? e : worst;
        CHECK((f_bits(hi) & 0xFFFFu) == 0 && (f_bits(lo) & 0xFFFFu) == 0, "parts are bf16 values");
        uint32_t h2, l2; /* the kernel's packed pair: element 0 in the low half */
        const float v1 = test_rng_gauss(&g);
        float hi1, lo1;
        mm_split(v1, &hi1, &lo1);
        mm_split2(v, v1, &h2, &l2);
        CHECK(h2 == (f_bits(hi) >> 16 | (f_bits(hi1) & 0xFFFF0000u)) &&
                  l2 == (f_bits(lo) >> 16 | (f_bits(lo1) & 0xFFFF0000u)),
              "mm_split2 packs %g, %g differently", v, v1);
    }
    fprintf(stderr, "  split: max |hi + lo - v| / |v| = %.2e (bound 2^-16 = %.2e)\n", worst, ldexp(1, -16));
    CHECK(worst <= ldexp(1, -16), "split error %.3g above 2^-16", worst);
    for (int i = 0; i < 1000; i++) {
        const float z = test_rng_gauss(&g) * ldexpf(1, (int)(test_rng_next(&g) % 30) - 20);
        const float f16 = rwkv7_f16_to_f32(rwkv7_f32_to_f16(z)), b16 = bf16_rn(z);
        float hi, lo;
        mm_split(f16, &hi, &lo);
        CHECK(hi + lo == f16, "f16 value %g not split exactly", f16);
        mm_split(b16, &hi, &lo);
        CHECK(hi == b16 && lo == 0.0f, "bf16 value %g has a lo part", b16);
    }
    CHECK(mm_weight_bf16_exact(RWKV7_DTYPE_BF16) && !mm_weight_bf16_exact(RWKV7_DTYPE_F16) &&
              !mm_weight_bf16_exact(RWKV7_DTYPE_F32) && !mm_weight_bf16_exact(RWKV7_DTYPE_Q8_0),
          "only BF16 weights skip a_lo b_hi");
}

/* ldmatrix.x4 emulation: lane l's register r = the two 16-bit elements at columns 2 (l % 4), +1
 * of row l / 4 of matrix r, whose 8 row addresses come from lanes 8 r .. 8 r + 7; elements are
 * coded as row * 256 + column of a 16 x 16 slice. */
static void ldmatrix_x4(int (*row_of)(int), int (*col_of)(int), int lane, int r, int out[2]) {
    const int src = 8 * r + lane / 4;
    for (int e = 0; e < 2; e++) out[e] = row_of(src) * 256 + col_of(src) + 2 * (lane % 4) + e;
}

static void check_fragments(void) {
    int bad = 0;
    for (int lane = 0; lane < 32; lane++) {
        const int g = lane / 4, q = lane % 4;
        for (int r = 0; r < 4; r++) {
            int got[2];
            /* A (16 x 16 row-major, rows = weights): PTX a0..a7 = (g, 2q..), (g+8, 2q..), (g, 2q+8..), (g+8, 2q+8..) */
            ldmatrix_x4(gm_a_row, gm_a_col, lane, r, got);
            for (int e = 0; e < 2; e++) bad += got[e] != (g + 8 * (r & 1)) * 256 + 2 * q + 8 * (r >> 1) + e;
            /* B: two 16 x 8 slices stored token-major; slice r / 2, reg r % 2 holds k = 2q + 8 (r % 2) + e
             * of token g: the element at (token 8 (r / 2) + g, k) */
            ldmatrix_x4(gm_b_row, gm_b_col, lane, r, got);
            for (int e = 0; e < 2; e++) bad += got[e] != (8 * (r >> 1) + g) * 256 + 2 * q + 8 * (r & 1) + e;
            /* C: c0..c3 = (g, 2q), (g, 2q+1), (g+8, 2q), (g+8, 2q+1) */
            bad += gm_c_row(lane, r) != g + 8 * (r >> 1) || gm_c_col(lane, r) != 2 * q + (r & 1);
        }
    }
    CHECK(bad == 0, "%d fragment elements differ from the mma.m16n8k16 tables", bad);
    /* every output of the 64 x 64 tile is owned by exactly one (warp, i, j, lane, r) */
    static int owned[GM_BM][GM_BN];
    memset(owned, 0, sizeof owned);
    for (int warp = 0; warp < GM_THREADS / 32; warp++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++)
                for (int lane = 0; lane < 32; lane++)
                    for (int r = 0; r < 4; r++)
                        owned[gm_warp_row(warp) + 16 * i + gm_c_row(lane, r)]
                             [gm_warp_tok(warp) + 8 * j + gm_c_col(lane, r)]++;
    int wrong = 0;
    for (int m = 0; m < GM_BM; m++)
        for (int n = 0; n < GM_BN; n++) wrong += owned[m][n] != 1;
    CHECK(wrong == 0, "%d outputs of the tile not owned exactly once", wrong);
    /* shared rows: 16-byte aligned (cp.async, uint4 stores, ldmatrix rows); the 8 rows one
     * ldmatrix phase reads fall in distinct bank quads */
    CHECK((GM_LDS * 2) % 16 == 0, "shared row stride %d B not 16-byte aligned", GM_LDS * 2);
    int quads = 0;
    for (int a = 0; a < 8; a++) quads |= 1 << ((a * GM_LDS * 2 / 16) % 8);
    CHECK(quads == 0xFF, "ldmatrix rows conflict in shared memory (quads %02x)", quads);
}

static void check_plans(void) {
    /* split-K only for narrow matrices with few tiles, no empty split, every k step covered once */
    const gm_plan a = gm_plan_of(4096, 4096, 1024, 132), b = gm_plan_of(64, 4096, 16, 132);
    CHECK(a.splits == 1, "a wide matrix split %d ways", a.splits);
    CHECK(b.splits > 1 && b.splits <= GM_SPLIT_MAX, "LoRA down at 16 tokens: %d splits", b.splits);
    for (int64_t M : {32, 64, 480, 512, 513, 4096})
        for (int64_t K : {32, 64, 256, 1024, 4096, 16384})
            for (int64_t T : {9, 64, 81, 1024})
                for (int sm : {1, 108, 132}) {
                    const gm_plan p = gm_plan_of(M, K, T, sm);
                    CHECK(p.splits >= 1 && (p.splits - 1) * p.steps < p.ksteps && p.splits * p.steps >= p.ksteps,
                          "plan M %lld K %lld T %lld: %d splits of %d steps for %d", (long long)M, (long long)K,
                          (long long)T, p.splits, p.steps, p.ksteps);
                    CHECK(p.splits == 1 || (M <= GM_SPLIT_M && p.steps >= GM_SPLIT_MIN_STEPS), "plan splits too far");
                }
}

int main(void) {
    check_rounding();
    check_fragments();
    check_plans();
    struct test_rng g = {2026};
    double worst[4] = {0, 0, 0, 0};
    for (size_t si = 0; si < sizeof k_shapes / sizeof k_shapes[0]; si++) {
        const struct shape *s = &k_shapes[si];
        float *W = (float *)malloc((size_t)s->M * s->K * sizeof(float));
        float *X = (float *)malloc((size_t)s->T * s->K * sizeof(float));
        double *ref = (double *)malloc((size_t)s->T * s->M * sizeof(double));
        fill(&g, W, (size_t)s->M * s->K, 0, 1.0f / sqrtf((float)s->K));
        fill(&g, X, (size_t)s->T * s->K, s->act, 1.0f);
        for (int wf = 0; wf < 3; wf++) { /* fp32 weights (F32, decoded quants), then F16, then BF16 */
            for (size_t i = 0; wf > 0 && i < (size_t)s->M * s->K; i++)
                W[i] = wf == 1 ? rwkv7_f16_to_f32(rwkv7_f32_to_f16(W[i])) : bf16_rn(W[i]);
            for (int t = 0; t < s->T; t++)
                for (int m = 0; m < s->M; m++) {
                    double acc = 0;
                    for (int k = 0; k < s->K; k++) acc += (double)W[(size_t)m * s->K + k] * X[(size_t)t * s->K + k];
                    ref[(size_t)t * s->M + m] = acc;
                }
            const bool w_exact = wf == 2;
            int splits = 1;
            /* the kernel under both MMA models with the H100's plan; the A100's plan and no split
             * where they differ from it; the other schemes (comparison, sensitivity) on fp32 weights */
            const double e_rn = shape_err(s, W, X, ref, BF16X3, SUM_RN, w_exact, 132, &splits);
            const double e_rz = shape_err(s, W, X, ref, BF16X3, SUM_RZ, w_exact, 132, &splits);
            const bool other_plan = !same_plans(s, 132, 108);
            const double e_a = other_plan ? shape_err(s, W, X, ref, BF16X3, SUM_RZ, w_exact, 108, &splits) : e_rz;
            const double e_1 = splits > 1 ? shape_err(s, W, X, ref, BF16X3, SUM_RN, w_exact, 1, NULL) : e_rn;
            const double e_t = wf == 0 ? shape_err(s, W, X, ref, TF32X3, SUM_RN, false, 132, NULL) : 0;
            const double e_b1 = wf == 0 ? shape_err(s, W, X, ref, BF16X1, SUM_RN, false, 132, NULL) : 0;
            const double e_na = wf == 0 ? shape_err(s, W, X, ref, BF16X3_NOAL, SUM_RN, false, 132, NULL) : 0;
            const double e_f32 = serial_err(s, W, X, ref);
            const double lim = fmax(MAX_REL, 3 * e_f32);
            fprintf(stderr,
                    "  %-34s %s  bf16x3 rn %.2e rz %.2e (108 SMs %.2e, 1 split %.2e; %2d splits) | fp32 serial %.2e",
                    s->what,
                    wf == 0   ? "f32 "
                    : wf == 1 ? "f16 "
                              : "bf16",
                    e_rn, e_rz, e_a, e_1, splits, e_f32);
            if (wf == 0) fprintf(stderr, " | tf32x3 %.2e | bf16 %.2e | no a_lo b_hi %.2e", e_t, e_b1, e_na);
            fprintf(stderr, "\n");
            CHECK(e_rn <= lim && e_rz <= lim && e_a <= lim && e_1 <= lim,
                  "%s: bf16x3 error %.3g / %.3g / %.3g / %.3g above %.2g", s->what, e_rn, e_rz, e_a, e_1, lim);
            worst[0] = fmax(worst[0], fmax(fmax(e_rn, e_rz), fmax(e_a, e_1)));
            worst[1] = fmax(worst[1], e_t);
            worst[2] = fmax(worst[2], e_b1);
            worst[3] = fmax(worst[3], e_na);
        }
        free(W), free(X), free(ref);
    }
    fprintf(stderr, "  worst: bf16x3 %.2e, tf32x3 %.2e, single bf16 %.2e, bf16x3 without a_lo b_hi %.2e (limit %.0e)\n",
            worst[0], worst[1], worst[2], worst[3], MAX_REL);
    /* sensitivity: the comparison must reject the errors the split exists to avoid */
    CHECK(worst[2] > 1e-4, "single bf16 products pass (%.3g): the comparison cannot see the error", worst[2]);
    CHECK(worst[3] > 1e-4, "dropping a_lo b_hi passes (%.3g): the comparison cannot see the error", worst[3]);
    return test_finish("test_cuda_mma");
}
