/* test_cpu_matmul.c: the CPU matmul (cpu/matmul.c and its SIMD kernels) against a double-precision
 * reference of the exactly dequantized weights (the type table's to_f32), for every weight type
 * and every instruction set this CPU runs (scalar, AVX, AVX2, AVX-512 as available).
 * Checks per (type, K, T, ISA): accuracy (NMSE), bit-identical results with 1 and 2 threads, and
 * bit-identical results for a sequence whatever T is and whatever else shares the call (every
 * column of a T-column call equals a 1-column call on that column alone), plus accumulate mode.
 * K covers 256, 768 and a size that is not a multiple of 256 (not of 32 for the float types,
 * which exercises the scalar tail); M is odd (partial 4-row and 8-row blocks) and big enough that
 * two threads really split it. On a CPU with AVX-512 VNNI the quantized types are also run through
 * the int8-activation kernels (cpu/matmul_q8.c), checked against the same double-precision dot
 * with the inputs quantized as matmul_q8.h documents (re-implemented here), and the fp32 AVX-512
 * kernels are run too with the int8 path forced off. */
#include <math.h>
#include <stdint.h>

#include "backend.h"
#include "cpu.h"
#include "dtype.h"
#include "dtype_random.h"
#include "matmul_q8.h"
#include "matvec_q8.h"
#include "matmul_simd.h"
#include "status.h"
#include "testing.h"

#define M_ROWS 263
#define T_MAX 37

struct host_tensor {
    struct rwkv7_tensor t;
    void *mem;
};

static void host_tensor(struct rwkv7_backend *be, struct host_tensor *h, int type, int64_t ne0, int64_t ne1, size_t bytes) {
    h->mem = calloc(1, bytes + 64);
    memset(&h->t, 0, sizeof h->t);
    h->t.type = type;
    h->t.ne[0] = ne0;
    h->t.ne[1] = ne1;
    h->t.ne[2] = h->t.ne[3] = 1;
    h->t.nbytes = bytes;
    if (be->i->buf_wrap_host(be, h->mem, bytes, &h->t.buf) != RWKV7_OK) abort();
}

static void host_free(struct rwkv7_backend *be, struct host_tensor *h) {
    be->i->buf_free(be, h->t.buf);
    free(h->mem);
}

/* dst (M, T) = W x with the given backend; x holds T_MAX columns, the first T are used. */
static int run_matmul(struct rwkv7_backend *be, int type, const void *w, int64_t K, const float *x, int64_t T,
                      float *dst, bool accumulate) {
    struct host_tensor tw, tx, td;
    size_t wb = rwkv7_dtype_row_bytes(type, K) * M_ROWS;
    host_tensor(be, &tw, type, K, M_ROWS, wb);
    host_tensor(be, &tx, RWKV7_DTYPE_F32, K, T, (size_t)(K * T) * sizeof(float));
    host_tensor(be, &td, RWKV7_DTYPE_F32, M_ROWS, T, (size_t)(M_ROWS * T) * sizeof(float));
    memcpy(tw.mem, w, wb);
    memcpy(tx.mem, x, (size_t)(K * T) * sizeof(float));
    memcpy(td.mem, dst, (size_t)(M_ROWS * T) * sizeof(float));
    enum rwkv7_status st = RWKV7_OP(be, matmul, .dst = &td.t, .w = &tw.t, .x = &tx.t, .accumulate = accumulate);
    memcpy(dst, td.mem, (size_t)(M_ROWS * T) * sizeof(float));
    host_free(be, &tw);
    host_free(be, &tx);
    host_free(be, &td);
    return st == RWKV7_OK;
}

/* matmul_q8.h's input quantization, written out in scalar C: x becomes d * q per block of 32. */
static void quantize_ref(const float *x, int64_t K, float *out) {
    for (int64_t b = 0; b < K / 32; b++) {
        const float *v = x + 32 * b;
        float amax = 0;
        bool bad = false;
        for (int i = 0; i < 32; i++) {
            bad |= !(fabsf(v[i]) <= 3.40282347e38f);
            if (fabsf(v[i]) > amax) amax = fabsf(v[i]);
        }
        const float id = !bad && amax > 0 ? 127.0f / amax : 0.0f, d = bad ? NAN : amax / 127.0f;
        for (int i = 0; i < 32; i++) out[32 * b + i] = d * nearbyintf(v[i] * id);
    }
}

static void test_case(struct rwkv7_backend *be1, struct rwkv7_backend *be2, int type, int64_t K) {
    const struct rwkv7_dtype_info *ti = rwkv7_dtype_get(type);
    const size_t rb = rwkv7_dtype_row_bytes(type, K);
    uint8_t *w = malloc(rb * M_ROWS);
    float *wf = malloc(sizeof(float) * (size_t)(K * M_ROWS));
    float *x = malloc(sizeof(float) * (size_t)(K * T_MAX));
    double *ref = malloc(sizeof(double) * (size_t)(M_ROWS * T_MAX)), *refq = malloc(sizeof(double) * (size_t)(M_ROWS * T_MAX));
    float *xq = malloc(sizeof(float) * (size_t)(K * T_MAX));
    float *d1 = malloc(sizeof(float) * (size_t)(M_ROWS * T_MAX)), *d2 = malloc(sizeof(float) * (size_t)(M_ROWS * T_MAX));
    float *single = malloc(sizeof(float) * M_ROWS);
    rwkv7_dtype_random_rows(type, 77 + (uint64_t)type, w, M_ROWS, K, 0.05f);
    for (int64_t m = 0; m < M_ROWS; m++) ti->to_f32(w + (size_t)m * rb, wf + m * K, K);
    uint64_t s = 0x9E3779B97F4A7C15ull ^ (uint64_t)K;
    for (int64_t i = 0; i < K * T_MAX; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    const bool quant = K % 32 == 0 && ti->block > 1;
    for (int64_t t = 0; t < T_MAX && quant; t++) quantize_ref(x + t * K, K, xq + t * K);
    for (int64_t t = 0; t < T_MAX; t++)
        for (int64_t m = 0; m < M_ROWS; m++) {
            double acc = 0, accq = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)wf[m * K + k] * x[t * K + k];
            for (int64_t k = 0; k < K && quant; k++) accq += (double)wf[m * K + k] * xq[t * K + k];
            ref[t * M_ROWS + m] = acc;
            refq[t * M_ROWS + m] = accq;
        }
    static const int64_t Ts[] = {1, 2, 5, 16, 37};
    const int best = rwkv7_mm_isa();
    for (int run = 0; run <= 2 * best + 1; run++) {
        /* each level with the int8 path off, then on where it exists */
        const int isa = run / 2, q8 = run % 2;
        rwkv7_mm_isa_force(isa);
        rwkv7_mm_q8_force(q8);
        if (q8 && !rwkv7_mm_q8_use(type, isa)) continue;
        const double *want = q8 ? refq : ref;
        for (size_t ti_ = 0; ti_ < sizeof Ts / sizeof Ts[0]; ti_++) {
            const int64_t T = Ts[ti_];
            memset(d1, 0, sizeof(float) * (size_t)(M_ROWS * T));
            memset(d2, 0, sizeof(float) * (size_t)(M_ROWS * T));
            CHECK(run_matmul(be1, type, w, K, x, T, d1, false), "%s K=%lld T=%lld", ti->name, (long long)K, (long long)T);
            CHECK(run_matmul(be2, type, w, K, x, T, d2, false), "%s", ti->name);
            /* Activations stay fp32 and weights are exact, so the only error is fp32 rounding of
             * K <= 1280 products and sums: relative ~ sqrt(K) * 2^-24 per output, NMSE ~ 1e-11.
             * 1e-9 leaves margin yet catches any mis-decoded element (NMSE >= ~1e-4). */
            double num = 0, den = 0;
            for (int64_t i = 0; i < M_ROWS * T; i++) {
                double e = d1[i] - want[i];
                num += e * e;
                den += want[i] * want[i];
            }
            const double nmse = den > 0 ? num / den : num;
            CHECK(nmse < 1e-9, "%s K=%lld T=%lld isa=%d int8=%d: NMSE %.3g", ti->name, (long long)K, (long long)T, isa,
                  q8, nmse);
            CHECK(memcmp(d1, d2, sizeof(float) * (size_t)(M_ROWS * T)) == 0,
                  "%s K=%lld T=%lld isa=%d: 1 and 2 threads differ", ti->name, (long long)K, (long long)T, isa);
            /* each column equals the same column computed alone (T-independence, batching invariance) */
            int diff = 0;
            for (int64_t t = 0; t < T; t++) {
                memset(single, 0, sizeof(float) * M_ROWS);
                run_matmul(be2, type, w, K, x + t * K, 1, single, false);
                diff += memcmp(single, d1 + t * M_ROWS, sizeof(float) * M_ROWS) != 0;
            }
            CHECK(diff == 0, "%s K=%lld T=%lld isa=%d: %d columns differ from a 1-column call", ti->name,
                  (long long)K, (long long)T, isa, diff);
            if (T == 5) { /* accumulate: dst + result, with the result's exact bits */
                float *acc = malloc(sizeof(float) * (size_t)(M_ROWS * T));
                for (int64_t i = 0; i < M_ROWS * T; i++) acc[i] = (float)(i % 7) - 3.0f;
                run_matmul(be1, type, w, K, x, T, acc, true);
                int bad = 0;
                for (int64_t i = 0; i < M_ROWS * T; i++) bad += acc[i] != ((float)(i % 7) - 3.0f) + d1[i];
                CHECK(bad == 0, "%s K=%lld isa=%d: accumulate differs in %d outputs", ti->name, (long long)K, isa, bad);
                free(acc);
            }
        }
    }
    rwkv7_mm_isa_force(-1);
    rwkv7_mm_q8_force(-1);
    /* a non-finite input stays visible in every output of its column (the int8 path gives the
     * block scale NaN rather than a finite rounding of it) */
    memcpy(xq, x, sizeof(float) * (size_t)K);
    xq[K / 2] = NAN;
    for (int i = 0; i < M_ROWS; i++) single[i] = 0;
    run_matmul(be2, type, w, K, xq, 1, single, false);
    int finite = 0;
    for (int i = 0; i < M_ROWS; i++) finite += isfinite(single[i]) != 0;
    CHECK(finite == 0, "%s K=%lld: %d outputs finite with a NaN input", ti->name, (long long)K, finite);
    free(w);
    free(refq);
    free(xq);
    free(wf);
    free(x);
    free(ref);
    free(d1);
    free(d2);
    free(single);
}

/* The int8 decode kernels (cpu/matvec_q8.c, T <= 4) against the int8 path's own kernel: the same
 * arithmetic, so every output must have the same bits, on ragged rows (263 = 16 x 16 + 7), with
 * dst accumulation, and with a NaN input. The reference comparison above covers them too. */
static void test_matvec_q8(struct rwkv7_backend *be1, struct rwkv7_backend *be2, int type, int64_t K) {
    const struct rwkv7_dtype_info *ti = rwkv7_dtype_get(type);
    if (!rwkv7_mv_q8_use(type, 1, rwkv7_mm_isa())) {
        fprintf(stderr, "test_cpu_matmul: %s: int8 decode kernel not in use (needs the AVX-512 level with VNNI, VBMI, BMI2; see RWKV7_CPU_ISA, RWKV7_CPU_MATVEC, RWKV7_CPU_INT8)\n", ti->name);
        return;
    }
    const size_t rb = rwkv7_dtype_row_bytes(type, K);
    uint8_t *w = malloc(rb * M_ROWS);
    float *x = malloc(sizeof(float) * (size_t)(K * 4));
    float *a = malloc(sizeof(float) * M_ROWS * 4), *b = malloc(sizeof(float) * M_ROWS * 4);
    rwkv7_dtype_random_rows(type, 901 + (uint64_t)type, w, M_ROWS, K, 0.05f);
    uint64_t s = 0x2545F4914F6CDD1Dull ^ (uint64_t)K;
    for (int64_t i = 0; i < K * 4; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0) * (i % 97 == 0 ? 40.0f : 1.0f);
    }
    for (int T = 1; T <= 4; T++) {
        for (int acc = 0; acc < 2; acc++) {
            for (int i = 0; i < M_ROWS * T; i++) a[i] = b[i] = acc ? (float)(i % 5) - 2.0f : 0.0f;
            rwkv7_mv_q8_force(0);
            CHECK(run_matmul(be1, type, w, K, x, T, a, acc), "%s", ti->name);
            rwkv7_mv_q8_force(-1);
            CHECK(run_matmul(be2, type, w, K, x, T, b, acc), "%s", ti->name);
            int diff = 0;
            for (int i = 0; i < M_ROWS * T; i++) diff += memcmp(&a[i], &b[i], sizeof(float)) != 0;
            CHECK(diff == 0, "%s K=%lld T=%d accumulate=%d: %d outputs differ from the int8 prefill kernel's", ti->name,
                  (long long)K, T, acc, diff);
        }
    }
    x[K + K / 3] = NAN; /* column 1 only */
    for (int i = 0; i < M_ROWS * 2; i++) b[i] = 0;
    CHECK(run_matmul(be2, type, w, K, x, 2, b, false), "%s", ti->name);
    int bad = 0;
    for (int i = 0; i < M_ROWS; i++) bad += !isfinite(b[i]) + (isfinite(b[M_ROWS + i]) != 0);
    CHECK(bad == 0, "%s K=%lld: a NaN in column 1 gives %d wrong (non-)finite outputs", ti->name, (long long)K, bad);
    free(w);
    free(x);
    free(a);
    free(b);
}

int main(void) {
    struct rwkv7_backend *be1 = NULL, *be2 = NULL;
    if (rwkv7_backend_init("cpu", NULL, 1, true, &be1) != RWKV7_OK ||
        rwkv7_backend_init("cpu", NULL, 2, true, &be2) != RWKV7_OK) {
        fprintf(stderr, "cannot start the CPU backend\n");
        return 1;
    }
    fprintf(stderr, "test_cpu_matmul: best instruction set %d (0 scalar, 1 AVX, 2 AVX2, 3 AVX-512)\n", rwkv7_mm_isa());
    for (int type = 0; type < RWKV7_DTYPE_COUNT; type++) {
        if (!rwkv7_dtype_is_weight(type)) continue;
        const int block = rwkv7_dtype_get(type)->block;
        /* third size: not a multiple of 256; for the float types not even of 32 (scalar tail) */
        const int64_t odd = block == 1 ? 1037 : block == 256 ? 1280 : 1152;
        const int64_t Ks[] = {256, 768, odd};
        for (int i = 0; i < 3; i++) test_case(be1, be2, type, Ks[i]);
    }
    static const int mv_types[] = {RWKV7_DTYPE_Q4_K, RWKV7_DTYPE_Q6_K, RWKV7_DTYPE_IQ3_S, RWKV7_DTYPE_IQ3_XXS};
    for (int i = 0; i < 4; i++)
        for (int64_t K = 256; K <= 1280; K += 512) test_matvec_q8(be1, be2, mv_types[i], K);
    /* the 32-weight block types: also an odd number of blocks (800 = 25 x 32, a lone last block) */
    static const int mv_types32[] = {RWKV7_DTYPE_Q8_0, RWKV7_DTYPE_Q4_0};
    static const int64_t Ks32[] = {256, 800, 1280};
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 3; k++) test_matvec_q8(be1, be2, mv_types32[i], Ks32[k]);
    rwkv7_backend_free(be1);
    rwkv7_backend_free(be2);
    return test_finish("test_cpu_matmul");
}
