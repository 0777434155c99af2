/* q8_act_x86.h: the int8 activation quantizer shared by the int8 prefill tile (matmul_q8.c) and
 * the int8 decode kernels (matvec_q8.c). One definition, because the two paths must round inputs
 * to the same bits for prefill to equal serial decoding (test_cpu_matmul compares them bitwise).
 * Included only by files compiled for avx512f/bw/vl (after their target pragma) that include
 * matmul_deq_x86.h first (MM_INLINE). The rule (matmul_q8.h): per block of 32 inputs,
 * d = max|x| / 127, q = round(x * 127 / max|x|); a block holding a NaN or an infinity gets q = 0
 * and d = NaN, so the NaN reaches every output that reads it. */
#ifndef RWKV7_Q8_ACT_X86_H
#define RWKV7_Q8_ACT_X86_H

#include <math.h>
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

#endif
