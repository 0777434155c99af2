/* test_cuda_mma.cu: host-only check of the arithmetic of the CUDA tensor-core prefill tile
 * (cuda/matmul.cu matmul_tf32x3_kernel). The kernel splits every weight and activation into tf32
 * hi + lo parts with mm_split (cuda/mma_split.cuh, compiled here for the host) and accumulates, per
 * 8-wide k slice, a_lo b_hi, then a_hi b_lo, then a_hi b_hi into one fp32 accumulator, each an
 * m16n8k8 MMA. This test replays exactly that order on the host on the matrix shapes of the test
 * fixtures (tests/data: rand-c256-l2, tiny-rwkv7-834K, world-c128) and of the 7.2B model, under two
 * models of the MMA's own summation: "rn" (the 8 exact products and the accumulator summed
 * exactly, rounded to nearest once) and "rz" (every term first truncated to 24 bits below the
 * largest one's leading bit, the sum truncated: the pessimistic reading of the tensor-core
 * accumulation studies). Each result is compared with the exact (double) product of the fp32
 * inputs: max|err| / max|ref| must stay within MAX_REL, a tenth of the 1e-4 that
 * tests/model_check.h allows the whole model (prefill vs serial, F32 fixtures), because a token's
 * logits pass through 4-12 matmuls per layer. The single-bf16 product the kernel used before is
 * emulated too and must FAIL that limit (it gives ~2e-3), so the comparison is shown to catch the
 * error it is about. Needs no GPU. Observed (this file's shapes and data, worst of f32 and f16
 * weights): on the fixture shapes (K <= 1024) tf32x3 7.5e-7 (rn) / 3.0e-6 (rz); on the 7.2B
 * shapes 3.8e-6 / 9.2e-6, where a sequential fp32 sum is itself ~3e-6 off; bf16 hi+lo parts
 * (3 bf16 MMAs, half the cost) 6.2e-6; a single bf16 product 3.2e-3. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda/mma_split.cuh"

extern "C" {
#include "testing.h"
}

#define MAX_REL 1e-5 /* per matmul; the fixtures allow 1e-4 for the whole model */

enum scheme { TF32X3, BF16X3, BF16X1 };
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
/* bf16 round to nearest even (__float2bfloat16_rn), finite inputs. */
static float bf16_rn(float v) {
    uint32_t u = f_bits(v);
    u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    return bits_f(u);
}

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

struct split { float *hi, *lo; };

static struct split split_all(const float *v, size_t n, enum scheme sc) {
    struct split s = {(float *)malloc(n * sizeof(float)), (float *)malloc(n * sizeof(float))};
    for (size_t i = 0; i < n; i++) {
        if (sc == TF32X3) {
            mm_split(v[i], &s.hi[i], &s.lo[i]);
        } else {
            s.hi[i] = bf16_rn(v[i]);
            s.lo[i] = sc == BF16X3 ? bf16_rn(v[i] - s.hi[i]) : 0.0f;
        }
    }
    return s;
}

/* The tile's result for output (m, t): W row m (K), X row t (K). w_exact: the weights' lo part is
 * zero by type (F16/BF16), so the kernel skips a_lo b_hi; the emulation does the same. */
static float tile_dot(const struct split *w, const struct split *x, size_t wo, size_t xo, int K, enum scheme sc,
                      enum sum_model model, bool w_exact) {
    float c = 0.0f;
    const int step = sc == BF16X1 ? 16 : 8; /* m16n8k16 bf16, m16n8k8 tf32 / the bf16 hi+lo variant */
    for (int k = 0; k < K; k += step) {
        const int n = K - k < step ? K - k : step;
        if (sc == BF16X1) {
            c = mma_sum(c, w->hi + wo + k, x->hi + xo + k, n, model);
            continue;
        }
        if (!w_exact) c = mma_sum(c, w->lo + wo + k, x->hi + xo + k, n, model);
        c = mma_sum(c, w->hi + wo + k, x->lo + xo + k, n, model);
        c = mma_sum(c, w->hi + wo + k, x->hi + xo + k, n, model);
    }
    return c;
}

struct shape {
    const char *what;
    int K, M, T;
    int act; /* 0: normal (post-norm), 1: relu^2 (channel-mix value input), 2: normal + offset */
};

/* Matrices of the fixture models (rand-c256-l2: C 256, ffn 1024, LoRA 32/64; tiny: C 64, ffn 256;
 * world-c128: C 128, head 65536 rows, here a slice) at the 81-token fixture prefill, and 7.2B
 * shapes (C 4096, ffn 16384) on a slice of rows and 16 tokens. */
static const struct shape k_shapes[] = {
    {"rand att/head 256x256", 256, 256, 81, 0},  {"rand ffn key 256x1024", 256, 1024, 81, 0},
    {"rand ffn value 1024x256", 1024, 256, 81, 1}, {"rand lora down 256x64", 256, 64, 81, 2},
    {"rand lora up 64x256", 64, 256, 81, 0},     {"rand lora up 32x256", 32, 256, 81, 0},
    {"tiny 64x64", 64, 64, 81, 0},               {"tiny ffn value 256x64", 256, 64, 81, 1},
    {"world head 128x(2048 of 65536)", 128, 2048, 24, 0},
    {"7.2B att 4096x(128)", 4096, 128, 16, 0},   {"7.2B ffn value 16384x(64)", 16384, 64, 16, 1},
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

/* max|tile - exact| / max|exact| over one shape. */
static double shape_err(const struct shape *s, const float *W, const float *X, const double *ref, enum scheme sc,
                        enum sum_model model, bool w_exact) {
    struct split w = split_all(W, (size_t)s->M * s->K, sc), x = split_all(X, (size_t)s->T * s->K, sc);
    double md = 0, mr = 0;
    for (int t = 0; t < s->T; t++)
        for (int m = 0; m < s->M; m++) {
            const double r = ref[(size_t)t * s->M + m];
            const double d = fabs(tile_dot(&w, &x, (size_t)m * s->K, (size_t)t * s->K, s->K, sc, model, w_exact) - r);
            md = d > md || isnan(d) ? d : md;
            mr = fabs(r) > mr ? fabs(r) : mr;
        }
    free(w.hi), free(w.lo), free(x.hi), free(x.lo);
    return md / mr;
}

static void check_rounding(void) {
    /* cvt.rna.tf32.f32: nearest, ties away from zero, 10 explicit mantissa bits */
    CHECK(mm_tf32(1.0f + ldexpf(1, -11)) == 1.0f + ldexpf(1, -10), "tf32 tie rounds away from zero");
    CHECK(mm_tf32(-(1.0f + ldexpf(1, -11))) == -(1.0f + ldexpf(1, -10)), "negative tie away from zero");
    CHECK(mm_tf32(1.0f + ldexpf(1, -11) - ldexpf(1, -23)) == 1.0f, "below the tie rounds down");
    CHECK(mm_tf32(1.0f + 3 * ldexpf(1, -11)) == 1.0f + ldexpf(1, -9), "tie at an odd ulp also goes away");
    CHECK(isinf(mm_tf32(INFINITY)) && isnan(mm_tf32(NAN)), "inf and nan pass through");
    CHECK((f_bits(mm_tf32(0.1f)) & 0x1FFFu) == 0, "low 13 bits cleared");
    struct test_rng g = {99};
    double worst = 0;
    for (int i = 0; i < 100000; i++) {
        const float v = test_rng_gauss(&g) * ldexpf(1, (int)(test_rng_next(&g) % 40) - 20);
        float hi, lo;
        mm_split(v, &hi, &lo);
        const double e = fabs(((double)hi + lo) - v) / fabs((double)v);
        worst = e > worst ? e : worst;
        CHECK((f_bits(hi) & 0x1FFFu) == 0 && (f_bits(lo) & 0x1FFFu) == 0, "parts are tf32 values");
    }
    fprintf(stderr, "  split: max |hi + lo - v| / |v| = %.2e (bound 2^-22 = %.2e)\n", worst, ldexp(1, -22));
    CHECK(worst <= ldexp(1, -22), "split error %.3g above 2^-22", worst);
    /* F16 weights are tf32 values, so skipping their lo part is exact */
    for (int i = 0; i < 1000; i++) {
        const float v = rwkv7_f16_to_f32(rwkv7_f32_to_f16(test_rng_gauss(&g)));
        CHECK(mm_tf32(v) == v, "f16 value %g is not a tf32 value", v);
    }
}

int main(void) {
    check_rounding();
    struct test_rng g = {2026};
    double worst[3] = {0, 0, 0};
    for (size_t si = 0; si < sizeof k_shapes / sizeof k_shapes[0]; si++) {
        const struct shape *s = &k_shapes[si];
        float *W = (float *)malloc((size_t)s->M * s->K * sizeof(float));
        float *X = (float *)malloc((size_t)s->T * s->K * sizeof(float));
        double *ref = (double *)malloc((size_t)s->T * s->M * sizeof(double));
        fill(&g, W, (size_t)s->M * s->K, 0, 1.0f / sqrtf((float)s->K));
        fill(&g, X, (size_t)s->T * s->K, s->act, 1.0f);
        for (int wf = 0; wf < 2; wf++) { /* fp32 weights (F32, decoded quants), then F16 weights */
            if (wf == 1)
                for (size_t i = 0; i < (size_t)s->M * s->K; i++) W[i] = rwkv7_f16_to_f32(rwkv7_f32_to_f16(W[i]));
            for (int t = 0; t < s->T; t++)
                for (int m = 0; m < s->M; m++) {
                    double acc = 0;
                    for (int k = 0; k < s->K; k++) acc += (double)W[(size_t)m * s->K + k] * X[(size_t)t * s->K + k];
                    ref[(size_t)t * s->M + m] = acc;
                }
            const bool w_exact = wf == 1;
            const double e_rn = shape_err(s, W, X, ref, TF32X3, SUM_RN, w_exact);
            const double e_rz = shape_err(s, W, X, ref, TF32X3, SUM_RZ, w_exact);
            const double e_b3 = shape_err(s, W, X, ref, BF16X3, SUM_RN, false);
            const double e_b1 = shape_err(s, W, X, ref, BF16X1, SUM_RN, false);
            const double e_f32 = serial_err(s, W, X, ref);
            /* on long rows (K >= 4096) fp32 accumulation itself costs a few 1e-6: there the tile
             * may be as far off as 3 sequential fp32 sums */
            const double lim = fmax(MAX_REL, 3 * e_f32);
            fprintf(stderr, "  %-32s %s  tf32x3 rn %.2e rz %.2e | fp32 serial %.2e | bf16 hi+lo %.2e | bf16 %.2e\n",
                    s->what, wf ? "f16 w" : "f32 w", e_rn, e_rz, e_f32, e_b3, e_b1);
            CHECK(e_rn <= lim && e_rz <= lim, "%s: tf32x3 error %.3g / %.3g above %.2g", s->what, e_rn, e_rz, lim);
            worst[0] = fmax(worst[0], fmax(e_rn, e_rz));
            worst[1] = fmax(worst[1], e_b3);
            worst[2] = fmax(worst[2], e_b1);
        }
        free(W), free(X), free(ref);
    }
    fprintf(stderr, "  worst: tf32x3 %.2e, bf16 hi+lo %.2e, single bf16 %.2e (limit %.0e)\n", worst[0], worst[1],
            worst[2], MAX_REL);
    /* sensitivity: the comparison must reject the single-bf16 product this kernel replaced */
    CHECK(worst[2] > 1e-4, "single bf16 products pass (%.3g): the comparison cannot see the error", worst[2]);
    return test_finish("test_cuda_mma");
}
