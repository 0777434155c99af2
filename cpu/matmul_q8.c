/* matmul_q8.c: the int8-activation matmul for the quantized weight types on AVX-512 VNNI
 * (arithmetic and invariants: matmul_q8.h). The fp32 kernels decode every weight to a float and
 * spend one FMA per 16 weight x input products; here one vpdpbusd does 64 such products.
 *
 * Layout: 16 weight rows at a time are decoded (mm_codes, mm_scales: the same decoders as the
 * fp32 kernels) into a per-thread tile in which the 16 lanes of a vector are the 16 rows: for
 * every 4 consecutive weights k..k+3, one 64-byte vector holds those 4 codes of each row, so one
 * vpdpbusd against the input's 4 quantized values (broadcast) adds 4 products to each row's
 * integer sum. Codes are unsigned bytes in the tile (the signed types are stored + 128, and the
 * 128 * sum(q) they add is subtracted up front). Per sub-block the 16 integer sums are converted
 * and scaled with three vector ops, for up to 8 inputs at once (each weight vector loaded feeds 8
 * vpdpbusd). Lanes never mix, so each output's arithmetic is the scalar sequence of matmul_q8.h
 * whatever T is: decode (T = 1) uses the same kernel as prefill, it only amortizes the tile less.
 * Only this file's kernel part is compiled for the VNNI target (pragma below); the driver at the
 * top is plain C and calls in only when __builtin_cpu_supports reports avx512vnni. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_q8.h"
#include "status.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define Q8_X86 1
#endif

/* Weight rows per tile (vector lanes) and inputs per register block. */
#define Q8_ROWS 16
#define Q8_COLS 8

/* The quantized inputs of one call: T rows of K values. */
struct q8_act {
    const int32_t *q;   /* (K / 4, T): 4 int8 values per word, element order */
    const float *d;     /* (K / 32, T): block scales */
    const float *ds;    /* (K / 32, T): d * (float)(sum of the block's 32 q) */
    const int32_t *s16; /* (K / 16, T): sums of each 16 q */
    const int32_t *s32; /* (K / 32, T): sums of each 32 q */
};

struct q8_job {
    const struct rwkv7_mm_job *j;
    struct q8_act a;
    float **tile;       /* per thread, q8_tile_bytes(K) (the CPU's row scratch) */
};

/* The types with a vpdpbusd kernel: every quantized type with a SIMD group decoder. */
static bool q8_type(int type) {
    switch (type) {
    case RWKV7_DTYPE_Q8_0: case RWKV7_DTYPE_Q4_0: case RWKV7_DTYPE_Q4_1:
    case RWKV7_DTYPE_Q5_0: case RWKV7_DTYPE_Q5_1: case RWKV7_DTYPE_Q4_K:
    case RWKV7_DTYPE_Q5_K: case RWKV7_DTYPE_Q6_K: case RWKV7_DTYPE_IQ4_NL:
    case RWKV7_DTYPE_IQ4_XS: case RWKV7_DTYPE_IQ3_XXS: case RWKV7_DTYPE_IQ3_S:
        return true;
    default:
        return false;
    }
}

/* Tile: codes (Kp / 4 vectors of 64 bytes, Kp = K rounded up to 64), the row-major staging copy
 * of the codes (16 x Kp bytes), scales (16 floats per 16 weights) and biases (16 per 32). */
static size_t q8_kp(int64_t K) { return (size_t)((K + 63) & ~(int64_t)63); }
static size_t q8_tile_bytes(int64_t K) { return 64 + 32 * q8_kp(K) + (size_t)K * 4 + (size_t)K * 2; }

static int q8_forced = -1;
static int q8_cpu = -1; /* CPU has AVX-512 VNNI and RWKV7_CPU_INT8 does not turn it off */

void rwkv7_mm_q8_force(int on) { q8_forced = on; }

bool rwkv7_mm_q8_use(int type, int isa) {
    if (isa != RWKV7_MM_AVX512 || !q8_type(type) || q8_forced == 0) return false;
    if (q8_cpu < 0) { /* a benign race: every thread computes the same value */
        int ok = 0;
#ifdef Q8_X86
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
#endif
        const char *e = getenv("RWKV7_CPU_INT8");
        if (e && !strcmp(e, "0")) ok = 0;
        q8_cpu = ok;
    }
    return q8_cpu == 1;
}

#ifdef Q8_X86

static void q8_quantize_rows(void *p, int64_t t0, int64_t t1, int ith);
static void q8_rows(void *p, int64_t m0, int64_t m1, int ith);

enum rwkv7_status rwkv7_mm_q8_matmul(struct rwkv7_cpu *cpu, const struct rwkv7_mm_job *j) {
    const int64_t K = j->K, T = j->T, nb = K / 32;
    /* The int8 rounding of the inputs is discontinuous: the chunked WKV's ~1e-6 differences from
     * the serial recurrence flip roundings and grow to ~5e-3 in the logits of the 2-layer random
     * fixtures, so prefill would no longer equal serial decoding (tests/model_check.h, 1e-4).
     * With the serial recurrence every op is T-independent and the two are bit-identical; the
     * chunked form's gain is small next to the int8 matmul's (bench/RESULTS.md). */
    if (!cpu->wkv_chunk_env) cpu->wkv_chunk = 0;
    /* activations: q, then d, ds, s32 (nb per row each), then s16 (2 nb per row) */
    const size_t act = (size_t)T * ((size_t)K + 4 * 3 * (size_t)nb + 4 * 2 * (size_t)nb);
    RWKV7_TRY(rwkv7_cpu_reserve(&cpu->q8_act, &cpu->q8_act_n, 1, (act + 3) / 4));
    RWKV7_TRY(rwkv7_cpu_reserve(&cpu->row_scratch, &cpu->row_scratch_n, cpu->n_threads, (q8_tile_bytes(K) + 3) / 4));
    char *base = (char *)cpu->q8_act[0];
    struct q8_job q = {.j = j, .tile = cpu->row_scratch};
    q.a.q = (const int32_t *)base;
    q.a.d = (const float *)(base + (size_t)T * (size_t)K);
    q.a.ds = q.a.d + (size_t)T * (size_t)nb;
    q.a.s32 = (const int32_t *)(q.a.ds + (size_t)T * (size_t)nb);
    q.a.s16 = q.a.s32 + (size_t)T * (size_t)nb;
    rwkv7_threadpool_run(cpu->pool, T, 8, q8_quantize_rows, &q);
    /* at least ~64K weights x inputs per part, in whole 16-row tiles where the matrix allows */
    int64_t work_per_row = K * (T < 8 ? T : 8);
    int64_t min_chunk = work_per_row >= 65536 ? Q8_ROWS : 65536 / work_per_row;
    if (min_chunk < Q8_ROWS) min_chunk = Q8_ROWS;
    rwkv7_threadpool_run(cpu->pool, j->M, min_chunk, q8_rows, &q);
    return RWKV7_OK;
}

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#endif

#include <immintrin.h>

#include "matmul_deq_x86.h"
#include "q8_act_x86.h"

/* Input rows [t0, t1) quantized as matmul_q8.h says. */
static void q8_quantize_rows(void *p, int64_t t0, int64_t t1, int ith) {
    (void)ith;
    const struct q8_job *q = p;
    const int64_t K = q->j->K, nb = K / 32;
    for (int64_t t = t0; t < t1; t++) {
        const float *x = q->j->x + t * K;
        int8_t *qo = (int8_t *)(q->a.q + t * (K / 4));
        float *d = (float *)q->a.d + t * nb, *ds = (float *)q->a.ds + t * nb;
        int32_t *s32 = (int32_t *)q->a.s32 + t * nb, *s16 = (int32_t *)q->a.s16 + t * 2 * nb;
        rwkv7_q8_quantize_row(x, K, qo, d, ds, s32, s16);
    }
}

/* Per type: codes signed (stored + 128), the offset subtracted from the integer sums (128 for
 * those; Q4_0's and Q6_K's codes are stored unsigned, + 8 and + 32), sub-block size (16 for Q6_K),
 * and whether there is a bias. */
MM_INLINE bool q8_signed(int type) {
    return type == RWKV7_DTYPE_Q8_0 || type == RWKV7_DTYPE_Q5_0 ||
           type == RWKV7_DTYPE_IQ4_NL || type == RWKV7_DTYPE_IQ4_XS || type == RWKV7_DTYPE_IQ3_XXS ||
           type == RWKV7_DTYPE_IQ3_S;
}
MM_INLINE int q8_off(int type) {
    return q8_signed(type) ? 128 : type == RWKV7_DTYPE_Q6_K ? 32 : type == RWKV7_DTYPE_Q4_0 ? 8 : 0;
}
MM_INLINE int q8_sub(int type) { return type == RWKV7_DTYPE_Q6_K ? 16 : 32; }
MM_INLINE bool q8_bias(int type) {
    return type == RWKV7_DTYPE_Q4_1 || type == RWKV7_DTYPE_Q5_1 || type == RWKV7_DTYPE_Q4_K || type == RWKV7_DTYPE_Q5_K;
}

/* 16 x 16 dwords: out[j] = dword j of each of the 16 rows in[0..15] (lane r = row r). */
MM_INLINE void q8_transpose16(const __m512i in[16], __m512i out[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(in[2 * i], in[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(in[2 * i], in[2 * i + 1]);
    }
    /* u[4q + e], 128-bit lane L: dword 4L + e of rows 4q..4q+3 */
    for (int qd = 0; qd < 4; qd++) {
        u[4 * qd + 0] = _mm512_unpacklo_epi64(t[4 * qd], t[4 * qd + 2]);
        u[4 * qd + 1] = _mm512_unpackhi_epi64(t[4 * qd], t[4 * qd + 2]);
        u[4 * qd + 2] = _mm512_unpacklo_epi64(t[4 * qd + 1], t[4 * qd + 3]);
        u[4 * qd + 3] = _mm512_unpackhi_epi64(t[4 * qd + 1], t[4 * qd + 3]);
    }
    for (int e = 0; e < 4; e++) { /* a 4 x 4 transpose of 128-bit lanes */
        const __m512i v0 = _mm512_shuffle_i32x4(u[e], u[4 + e], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i v1 = _mm512_shuffle_i32x4(u[e], u[4 + e], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i v2 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i v3 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], _MM_SHUFFLE(3, 2, 3, 2));
        out[0 + e] = _mm512_shuffle_i32x4(v0, v2, _MM_SHUFFLE(2, 0, 2, 0));
        out[4 + e] = _mm512_shuffle_i32x4(v0, v2, _MM_SHUFFLE(3, 1, 3, 1));
        out[8 + e] = _mm512_shuffle_i32x4(v1, v3, _MM_SHUFFLE(2, 0, 2, 0));
        out[12 + e] = _mm512_shuffle_i32x4(v1, v3, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* The 16 rows' scales (and biases) into sc / bi, lane r = row r. */
MM_INLINE void q8_fill_scales(const struct rwkv7_mm_job *j, const int type, const uint8_t *const rp[Q8_ROWS], float *sc,
                              float *bi) {
    const int64_t G = j->K / 32;
    for (int r = 0; r < Q8_ROWS; r++) {
        float s[16], b[16];
        for (int64_t g = 0; g < G; g++) {
            if (!mm_is_k(type) || (g & 7) == 0) mm_scales(type, rp[r], g, s, b);
            const int gi = mm_is_k(type) ? 2 * (int)(g & 7) : 0;
            if (q8_sub(type) == 16) {
                sc[(2 * g) * Q8_ROWS + r] = s[gi];
                sc[(2 * g + 1) * Q8_ROWS + r] = s[gi + 1];
            } else {
                sc[g * Q8_ROWS + r] = s[gi];
            }
            if (q8_bias(type)) bi[g * Q8_ROWS + r] = b[gi];
        }
    }
}

/* The unsigned tile codes of group g of a row (signed types + 128). */
MM_INLINE __m256i q8_codes(const int type, const uint8_t *row, int64_t g) {
    if (type == RWKV7_DTYPE_Q4_0) return mm_nib16(row + 18 * g + 2);
    const __m256i c = mm_codes(type, row, g);
    return q8_signed(type) ? _mm256_xor_si256(c, _mm256_set1_epi8((char)0x80)) : c;
}

/* Decodes the 16 rows rp[] into the tile (layout above). */
MM_INLINE void q8_fill(const struct rwkv7_mm_job *j, const int type, const uint8_t *const rp[Q8_ROWS], uint8_t *codes,
                       uint8_t *stage, float *sc, float *bi) {
    const int64_t K = j->K, G = K / 32;
    const size_t Kp = q8_kp(K);
    q8_fill_scales(j, type, rp, sc, bi);
    for (int r = 0; r < Q8_ROWS; r++) {
        uint8_t *st = stage + (size_t)r * Kp;
        for (int64_t g = 0; g < G; g++) _mm256_storeu_si256((__m256i *)(st + 32 * g), q8_codes(type, rp[r], g));
        if ((size_t)K < Kp) memset(st + K, 0, Kp - (size_t)K);
    }
    for (size_t kk = 0; kk < Kp / 64; kk++) {
        __m512i in[16], out[16];
        for (int r = 0; r < Q8_ROWS; r++) in[r] = _mm512_loadu_si512((const void *)(stage + (size_t)r * Kp + 64 * kk));
        q8_transpose16(in, out);
        for (int i = 0; i < 16; i++) _mm512_storeu_si512((void *)(codes + 1024 * kk + 64 * i), out[i]);
    }
}

/* Codes of groups g, g + 1 of a row as one vector (g + 1 < G). */
MM_INLINE __m512i q8_codes64(const int type, const uint8_t *row, int64_t g) {
    if (type == RWKV7_DTYPE_Q4_K) { /* g even: one 32-byte run, low nibbles then high */
        const __m512i raw = _mm512_broadcast_i64x4(
            _mm256_loadu_si256((const __m256i *)(row + 144 * (g >> 3) + 16 + 32 * ((g & 7) >> 1))));
        const __m512i sh = _mm512_srlv_epi16(raw, _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1));
        return _mm512_and_si512(sh, _mm512_set1_epi8(0x0F));
    }
    if (type == RWKV7_DTYPE_Q4_0) { /* two blocks' 16 bytes, each twice: low nibbles, high nibbles */
        const __m256i b0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(row + 18 * g + 2)));
        const __m256i b1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(row + 18 * g + 20)));
        const __m512i cnt = _mm512_setr_epi64(0, 0, 0x0004000400040004ll, 0x0004000400040004ll, 0, 0,
                                              0x0004000400040004ll, 0x0004000400040004ll);
        return _mm512_and_si512(_mm512_srlv_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(b0), b1, 1), cnt),
                                _mm512_set1_epi8(0x0F));
    }
    if (type == RWKV7_DTYPE_Q6_K) { /* g even: groups 4h + qq, qq + 1 share ql bytes 64h..64h+63 */
        const uint8_t *b = row + 210 * (g >> 3);
        const int gq = (int)(g & 7), h = gq >> 2, qq = gq & 3;
        __m512i lo = _mm512_loadu_si512((const void *)(b + 64 * h));
        if (qq >> 1) lo = _mm512_srli_epi16(lo, 4);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
        const __m512i cnt = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)(2 * qq))),
                                               _mm256_set1_epi16((short)(2 * qq + 2)), 1);
        const __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qh, cnt), _mm512_set1_epi8(0x03));
        return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi8(0x0F)), _mm512_slli_epi16(hi, 4));
    }
    return _mm512_inserti64x4(_mm512_castsi256_si512(q8_codes(type, row, g)), q8_codes(type, row, g + 1), 1);
}

/* Few inputs (T <= Q8_VEC_COLS, decode): the rows' codes stay in k order; vpdpbusd against each
 * input gives 4-byte partial sums per lane, and a transposing add tree turns the 16 rows'
 * partials into one vector of per-row sums per 16 weights. The sums are the same exact integers
 * as the tile kernel's and the float steps the same lane-wise ops, so the outputs are
 * bit-identical to q8_block's; the codes are decoded once for all nc inputs, with no tile. */
#define Q8_VEC_COLS 4
MM_INLINE void q8_vec(const struct q8_job *q, const int type, const uint8_t *const rp[Q8_ROWS], float *sc, float *bi,
                      int64_t m, int nr, const int nc) {
    const struct rwkv7_mm_job *j = q->j;
    const int64_t K = j->K, G = K / 32, nb = G;
    const int off = q8_off(type);
    q8_fill_scales(j, type, rp, sc, bi);
    const size_t ahead = Q8_ROWS * j->row_bytes, gbytes = j->row_bytes / (size_t)G;
    __m512 acc[Q8_VEC_COLS];
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t g = 0; g < G; g += 2) {
        const bool two = g + 1 < G;
        __m512i p[Q8_VEC_COLS][16], xv[Q8_VEC_COLS];
        for (int c = 0; c < nc; c++) {
            const uint8_t *xq = (const uint8_t *)(q->a.q + c * (K / 4)) + 32 * g;
            xv[c] = two ? _mm512_loadu_si512((const void *)xq) : _mm512_maskz_loadu_epi8((__mmask64)0xFFFFFFFFull, xq);
        }
#pragma GCC unroll 16
        for (int r = 0; r < Q8_ROWS; r++) {
            _mm_prefetch((const char *)rp[r] + gbytes * (size_t)g + ahead, _MM_HINT_T0);
            const __m512i w = two ? q8_codes64(type, rp[r], g) : _mm512_zextsi256_si512(q8_codes(type, rp[r], g));
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) p[c][r] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xv[c]);
        }
        for (int c = 0; c < nc; c++) {
            /* p[c][r], 128-bit lane e: partials of weights 16e .. 16e + 15 of the pair; h[e] = the
             * 16 rows' sums of those 16 weights */
            __m512i h[4];
            rwkv7_q8_tree16(p[c], h);
            const float *xd = q->a.d + c * nb, *xds = q->a.ds + c * nb;
            const int32_t *x16 = q->a.s16 + c * 2 * nb, *x32 = q->a.s32 + c * nb;
            for (int e = 0; e < (two ? 2 : 1); e++) {
                const int64_t gg = g + e;
                if (q8_sub(type) == 16) {
                    for (int hh = 0; hh < 2; hh++) {
                        const int64_t sub = 2 * gg + hh;
                        const __m512i ia = _mm512_sub_epi32(h[2 * e + hh], _mm512_set1_epi32(off * x16[sub]));
                        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia),
                                                 _mm512_mul_ps(_mm512_loadu_ps(sc + Q8_ROWS * sub), _mm512_set1_ps(xd[gg])),
                                                 acc[c]);
                    }
                } else {
                    __m512i ia = _mm512_add_epi32(h[2 * e], h[2 * e + 1]);
                    if (off) ia = _mm512_sub_epi32(ia, _mm512_set1_epi32(off * x32[gg]));
                    acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia),
                                             _mm512_mul_ps(_mm512_loadu_ps(sc + Q8_ROWS * gg), _mm512_set1_ps(xd[gg])), acc[c]);
                }
                if (q8_bias(type))
                    acc[c] = _mm512_fmadd_ps(_mm512_loadu_ps(bi + Q8_ROWS * gg), _mm512_set1_ps(xds[gg]), acc[c]);
            }
        }
    }
    rwkv7_q8_store16(j->dst, j->M, j->accumulate, m, nr, nc, acc);
}

/* Outputs of the tile's rows m .. m + nr - 1 for inputs t0 .. t0 + nc - 1. */
MM_INLINE void q8_block(const struct q8_job *q, const int type, const uint8_t *codes, const float *sc, const float *bi,
                        int64_t m, int nr, int64_t t0, const int nc) {
    const struct rwkv7_mm_job *j = q->j;
    const int64_t K = j->K, nb = K / 32;
    const int S = q8_sub(type), n4 = S / 4, off = q8_off(type);
    const int64_t nsub = K / S;
    const int32_t *xq[Q8_COLS];
    const float *xd[Q8_COLS], *xds[Q8_COLS];
    const int32_t *xs[Q8_COLS];
    for (int c = 0; c < nc; c++) {
        xq[c] = q->a.q + (t0 + c) * (K / 4);
        xd[c] = q->a.d + (t0 + c) * nb;
        xds[c] = q->a.ds + (t0 + c) * nb;
        xs[c] = S == 16 ? q->a.s16 + (t0 + c) * 2 * nb : q->a.s32 + (t0 + c) * nb;
    }
    __m512 acc[Q8_COLS];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t s = 0; s < nsub; s++) {
        __m512i ia[Q8_COLS];
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) ia[c] = off ? _mm512_set1_epi32(-off * xs[c][s]) : _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int k = 0; k < n4; k++) {
            const __m512i w = _mm512_loadu_si512((const void *)(codes + 64 * (s * n4 + k)));
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) ia[c] = _mm512_dpbusd_epi32(ia[c], w, _mm512_set1_epi32(xq[c][s * n4 + k]));
        }
        const __m512 sv = _mm512_loadu_ps(sc + Q8_ROWS * s);
        const int64_t b = S == 16 ? s >> 1 : s;
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[c]), _mm512_mul_ps(sv, _mm512_set1_ps(xd[c][b])), acc[c]);
        if (q8_bias(type)) {
            const __m512 bv = _mm512_loadu_ps(bi + Q8_ROWS * s);
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) acc[c] = _mm512_fmadd_ps(bv, _mm512_set1_ps(xds[c][s]), acc[c]);
        }
    }
    rwkv7_q8_store16(j->dst + t0 * j->M, j->M, j->accumulate, m, nr, nc, acc);
}

MM_INLINE void q8_rows_t(const struct q8_job *q, int64_t m0, int64_t m1, int ith, const int type) {
    const struct rwkv7_mm_job *j = q->j;
    const int64_t K = j->K, T = j->T;
    uint8_t *codes = (uint8_t *)(((uintptr_t)q->tile[ith] + 63) & ~(uintptr_t)63);
    uint8_t *stage = codes + 16 * q8_kp(K);
    float *sc = (float *)(stage + 16 * q8_kp(K)), *bi = sc + K;
    for (int64_t m = m0; m < m1; m += Q8_ROWS) {
        const int nr = m1 - m < Q8_ROWS ? (int)(m1 - m) : Q8_ROWS;
        const uint8_t *rp[Q8_ROWS];
        for (int r = 0; r < Q8_ROWS; r++) rp[r] = j->w + (size_t)(m + (r < nr ? r : nr - 1)) * j->row_bytes;
        switch (T) {
        case 1: q8_vec(q, type, rp, sc, bi, m, nr, 1); continue;
        case 2: q8_vec(q, type, rp, sc, bi, m, nr, 2); continue;
        case 3: q8_vec(q, type, rp, sc, bi, m, nr, 3); continue;
        case 4: q8_vec(q, type, rp, sc, bi, m, nr, 4); continue;
        default: break;
        }
        q8_fill(j, type, rp, codes, stage, sc, bi);
        int64_t t = 0;
        for (; t + Q8_COLS <= T; t += Q8_COLS) q8_block(q, type, codes, sc, bi, m, nr, t, Q8_COLS);
        switch (T - t) {
        case 1: q8_block(q, type, codes, sc, bi, m, nr, t, 1); break;
        case 2: q8_block(q, type, codes, sc, bi, m, nr, t, 2); break;
        case 3: q8_block(q, type, codes, sc, bi, m, nr, t, 3); break;
        case 4: q8_block(q, type, codes, sc, bi, m, nr, t, 4); break;
        case 5: q8_block(q, type, codes, sc, bi, m, nr, t, 5); break;
        case 6: q8_block(q, type, codes, sc, bi, m, nr, t, 6); break;
        case 7: q8_block(q, type, codes, sc, bi, m, nr, t, 7); break;
        default: break;
        }
    }
}

#define Q8_TYPE_FN(name, T)                                                                                        \
    static __attribute__((noinline)) void q8_rows_##name(const struct q8_job *q, int64_t m0, int64_t m1, int ith) { \
        q8_rows_t(q, m0, m1, ith, T);                                                                              \
    }
Q8_TYPE_FN(q8_0, RWKV7_DTYPE_Q8_0)
Q8_TYPE_FN(q4_0, RWKV7_DTYPE_Q4_0)
Q8_TYPE_FN(q4_1, RWKV7_DTYPE_Q4_1)
Q8_TYPE_FN(q5_0, RWKV7_DTYPE_Q5_0)
Q8_TYPE_FN(q5_1, RWKV7_DTYPE_Q5_1)
Q8_TYPE_FN(q4_k, RWKV7_DTYPE_Q4_K)
Q8_TYPE_FN(q5_k, RWKV7_DTYPE_Q5_K)
Q8_TYPE_FN(q6_k, RWKV7_DTYPE_Q6_K)
Q8_TYPE_FN(iq4_nl, RWKV7_DTYPE_IQ4_NL)
Q8_TYPE_FN(iq4_xs, RWKV7_DTYPE_IQ4_XS)
Q8_TYPE_FN(iq3_xxs, RWKV7_DTYPE_IQ3_XXS)
Q8_TYPE_FN(iq3_s, RWKV7_DTYPE_IQ3_S)

static void q8_rows(void *p, int64_t m0, int64_t m1, int ith) {
    const struct q8_job *q = p;
    switch (q->j->type) {
    case RWKV7_DTYPE_Q8_0: q8_rows_q8_0(q, m0, m1, ith); break;
    case RWKV7_DTYPE_Q4_0: q8_rows_q4_0(q, m0, m1, ith); break;
    case RWKV7_DTYPE_Q4_1: q8_rows_q4_1(q, m0, m1, ith); break;
    case RWKV7_DTYPE_Q5_0: q8_rows_q5_0(q, m0, m1, ith); break;
    case RWKV7_DTYPE_Q5_1: q8_rows_q5_1(q, m0, m1, ith); break;
    case RWKV7_DTYPE_Q4_K: q8_rows_q4_k(q, m0, m1, ith); break;
    case RWKV7_DTYPE_Q5_K: q8_rows_q5_k(q, m0, m1, ith); break;
    case RWKV7_DTYPE_Q6_K: q8_rows_q6_k(q, m0, m1, ith); break;
    case RWKV7_DTYPE_IQ4_NL: q8_rows_iq4_nl(q, m0, m1, ith); break;
    case RWKV7_DTYPE_IQ4_XS: q8_rows_iq4_xs(q, m0, m1, ith); break;
    case RWKV7_DTYPE_IQ3_XXS: q8_rows_iq3_xxs(q, m0, m1, ith); break;
    case RWKV7_DTYPE_IQ3_S: q8_rows_iq3_s(q, m0, m1, ith); break;
    default: break;
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#else
/* Not x86: rwkv7_mm_q8_use is always false, so this is never called. */
enum rwkv7_status rwkv7_mm_q8_matmul(struct rwkv7_cpu *cpu, const struct rwkv7_mm_job *job) {
    (void)cpu;
    (void)job;
    return rwkv7_fail(RWKV7_ERR_INTERNAL, "cpu: int8 matmul called without AVX-512 VNNI");
}
#endif
