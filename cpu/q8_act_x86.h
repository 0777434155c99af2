/* q8_act_x86.h: what the int8 prefill tile (matmul_q8.c) and the int8 decode kernels
 * (matvec_q8.c) share: the activation quantizer, the 16-row sum tree and the 16-row store. One
 * definition, because the two paths must round inputs to the same bits and sum them in the same
 * order for prefill to equal serial decoding (test_cpu_matmul compares them bitwise).
 * Included only by files compiled for avx512f/bw/vl (after their target pragma) that include
 * matmul_deq_x86.h first (MM_INLINE). The rule (matmul_q8.h): per block of 32 inputs,
 * d = max|x| / 127, q = round(x * 127 / max|x|); a block holding a NaN or an infinity gets q = 0
 * and d = NaN, so the NaN reaches every output that reads it. */
#ifndef RWKV7_Q8_ACT_X86_H
#define RWKV7_Q8_ACT_X86_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include <immintrin.h>

/* One row of K inputs (K % 32 == 0): codes qo[K], per block the scale d, d * sum(q) (ds), the
 * code sum (s32) and the two 16-halves' code sums (s16, two per block). */
MM_INLINE void rwkv7_q8_quantize_row(const float *x, int64_t K, int8_t *qo, float *d, float *ds, int32_t *s32,
                                     int32_t *s16) {
    for (int64_t b = 0; b < K / 32; b++) {
        const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        const __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
        /* NaN or infinity: not <= FLT_MAX (unordered compares true) */
        const __mmask16 bad = _mm512_cmp_ps_mask(a0, _mm512_set1_ps(3.40282347e38f), _CMP_NLE_UQ) |
                              _mm512_cmp_ps_mask(a1, _mm512_set1_ps(3.40282347e38f), _CMP_NLE_UQ);
        const float amax = bad ? 0.0f : _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        const __m512i q0 = bad ? _mm512_setzero_si512() : _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));
        const __m512i q1 = bad ? _mm512_setzero_si512() : _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
        _mm_storeu_si128((__m128i *)(qo + 32 * b), _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(qo + 32 * b + 16), _mm512_cvtepi32_epi8(q1));
        const int32_t h0 = _mm512_reduce_add_epi32(q0), h1 = _mm512_reduce_add_epi32(q1);
        d[b] = bad ? NAN : amax / 127.0f;
        s16[2 * b] = h0;
        s16[2 * b + 1] = h1;
        s32[b] = h0 + h1;
        ds[b] = d[b] * (float)(h0 + h1);
    }
}

/* p[r] (row r's 16 partial sums: 128-bit lane e = weights 16e .. 16e + 15 of a 64-weight run) ->
 * h[e], lane r = row r's sum of those 16 weights: a transposing add tree over 16 rows. */
MM_INLINE void rwkv7_q8_tree16(const __m512i p[16], __m512i h[4]) {
    __m512i t[8], u[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        t[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2 * i], p[2 * i + 1]), _mm512_unpackhi_epi32(p[2 * i], p[2 * i + 1]));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        u[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * i], t[2 * i + 1]), _mm512_unpackhi_epi64(t[2 * i], t[2 * i + 1]));
    const __m512i v0 = _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i v1 = _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i v2 = _mm512_shuffle_i32x4(u[2], u[3], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i v3 = _mm512_shuffle_i32x4(u[2], u[3], _MM_SHUFFLE(3, 2, 3, 2));
    h[0] = _mm512_shuffle_i32x4(v0, v2, _MM_SHUFFLE(2, 0, 2, 0));
    h[1] = _mm512_shuffle_i32x4(v0, v2, _MM_SHUFFLE(3, 1, 3, 1));
    h[2] = _mm512_shuffle_i32x4(v1, v3, _MM_SHUFFLE(2, 0, 2, 0));
    h[3] = _mm512_shuffle_i32x4(v1, v3, _MM_SHUFFLE(3, 1, 3, 1));
}

/* Outputs m .. m + nr - 1 (nr <= 16) of inputs 0 .. nc - 1 from acc[c] into dst (M outputs per
 * input), added to what is there when accumulate. */
MM_INLINE void rwkv7_q8_store16(float *dst, int64_t M, bool accumulate, int64_t m, int nr, int nc, const __m512 *acc) {
    const __mmask16 mask = (__mmask16)((1u << nr) - 1);
    for (int c = 0; c < nc; c++) {
        float *d = dst + c * M + m;
        __m512 v = acc[c];
        if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, d), v);
        _mm512_mask_storeu_ps(d, mask, v);
    }
}

#endif
