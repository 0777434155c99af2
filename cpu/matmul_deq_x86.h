/* matmul_deq_x86.h: AVX2 decoders of one 32-element group of a weight row into four __m256, for
 * the matmul kernels (matmul_kern.h). Included only by files compiled for a target with
 * avx2,fma,f16c (after their target pragma). Group g covers elements [32g, 32g + 32): one block
 * of the 32-block types, one sub-block of the 256 super-block types.
 *
 * Invariant: every value is bit-identical to the type table's to_f32 (runtime/dequant_*.c): the
 * same float operations in the same order (mul then add/sub, never fused), so the fused kernel,
 * the tile kernel and the scalar reference see the same weights. Layouts: quant-formats.md §3. */
#ifndef RWKV7_MATMUL_DEQ_X86_H
#define RWKV7_MATMUL_DEQ_X86_H

#include <immintrin.h>

#include "dtype.h"
#include "dtype_dequant.h"
#include "iq_tables.h"

#define MM_INLINE static inline __attribute__((always_inline))

/* 8 bytes (low half of b) to 8 floats. */
MM_INLINE __m256 mm_u8_ps(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)); }
MM_INLINE __m256 mm_i8_ps(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)); }

/* 16 packed bytes of nibbles: low nibbles are elements 0..15, high nibbles 16..31. */
MM_INLINE void mm_nibbles(const uint8_t *qs, __m128i *lo, __m128i *hi) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    *lo = _mm_and_si128(q, m);
    *hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
}

/* Bits j0..j0+7 of qh, each as 0 or 16 in an int32 lane. */
MM_INLINE __m256i mm_qh_bits(uint32_t qh, int j0) {
    const __m256i sh = _mm256_add_epi32(_mm256_set1_epi32(j0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i b = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)qh), sh), _mm256_set1_epi32(1));
    return _mm256_slli_epi32(b, 4);
}

MM_INLINE void deq_f32(const uint8_t *row, int64_t g, __m256 v[4]) {
    const float *p = (const float *)row + 32 * g; /* F32 rows are 4-byte aligned in GGUF */
    for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(p + 8 * i);
}

MM_INLINE void deq_f16(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *p = row + 64 * g;
    for (int i = 0; i < 4; i++) v[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * i)));
}

MM_INLINE void deq_bf16(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *p = row + 64 * g;
    for (int i = 0; i < 4; i++) {
        __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 16 * i)));
        v[i] = _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
}

MM_INLINE void deq_q8_0(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 34 * g;
    const __m256 d = _mm256_set1_ps(rwkv7_load_half(b));
    for (int i = 0; i < 4; i++)
        v[i] = _mm256_mul_ps(mm_i8_ps(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * i))), d);
}

/* Unsigned nibble/5-bit codes of a 32-block (hb = 0 for 4-bit types) as four int32 vectors. */
MM_INLINE void mm_codes(__m128i lo, __m128i hi, uint32_t qh, bool has_qh, __m256i q[4]) {
    q[0] = _mm256_cvtepu8_epi32(lo);
    q[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8));
    q[2] = _mm256_cvtepu8_epi32(hi);
    q[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8));
    if (has_qh)
        for (int i = 0; i < 4; i++) q[i] = _mm256_or_si256(q[i], mm_qh_bits(qh, 8 * i));
}

/* (q - off) * d, the symmetric legacy types. */
MM_INLINE void mm_sym(const __m256i q[4], int off, float d, __m256 v[4]) {
    const __m256i o = _mm256_set1_epi32(off);
    const __m256 dv = _mm256_set1_ps(d);
    for (int i = 0; i < 4; i++) v[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q[i], o)), dv);
}

/* q * d + m, the asymmetric legacy types. */
MM_INLINE void mm_asym(const __m256i q[4], float d, float m, __m256 v[4]) {
    const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    for (int i = 0; i < 4; i++) v[i] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q[i]), dv), mv);
}

MM_INLINE void deq_q4_0(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 18 * g;
    __m128i lo, hi;
    __m256i q[4];
    mm_nibbles(b + 2, &lo, &hi);
    mm_codes(lo, hi, 0, false, q);
    mm_sym(q, 8, rwkv7_load_half(b), v);
}

MM_INLINE void deq_q4_1(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 20 * g;
    __m128i lo, hi;
    __m256i q[4];
    mm_nibbles(b + 4, &lo, &hi);
    mm_codes(lo, hi, 0, false, q);
    mm_asym(q, rwkv7_load_half(b), rwkv7_load_half(b + 2), v);
}

MM_INLINE void deq_q5_0(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 22 * g;
    __m128i lo, hi;
    __m256i q[4];
    mm_nibbles(b + 6, &lo, &hi);
    mm_codes(lo, hi, rwkv7_le32(b + 2), true, q);
    mm_sym(q, 16, rwkv7_load_half(b), v);
}

MM_INLINE void deq_q5_1(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 24 * g;
    __m128i lo, hi;
    __m256i q[4];
    mm_nibbles(b + 8, &lo, &hi);
    mm_codes(lo, hi, rwkv7_le32(b + 4), true, q);
    mm_asym(q, rwkv7_load_half(b), rwkv7_load_half(b + 2), v);
}

/* Sub-block j's 6-bit scale and min of a Q4_K/Q5_K super-block (ggml's get_scale_min_k4). */
MM_INLINE void mm_k4_scale_min(int j, const uint8_t *s, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* 32 bytes at p: the low (j even) or high (j odd) nibbles, as four int32 vectors. */
MM_INLINE void mm_nib32(const uint8_t *p, int j, __m256i q[4]) {
    const __m256i raw = _mm256_loadu_si256((const __m256i *)p);
    const __m256i n = _mm256_and_si256((j & 1) ? _mm256_srli_epi16(raw, 4) : raw, _mm256_set1_epi8(0x0F));
    const __m128i a = _mm256_castsi256_si128(n), c = _mm256_extracti128_si256(n, 1);
    q[0] = _mm256_cvtepu8_epi32(a);
    q[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(a, 8));
    q[2] = _mm256_cvtepu8_epi32(c);
    q[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(c, 8));
}

/* d1 * q - m1 for the K-quant sub-blocks with a min. */
MM_INLINE void mm_kmin(const __m256i q[4], float d1, float m1, __m256 v[4]) {
    const __m256 dv = _mm256_set1_ps(d1), mv = _mm256_set1_ps(m1);
    for (int i = 0; i < 4; i++) v[i] = _mm256_sub_ps(_mm256_mul_ps(dv, _mm256_cvtepi32_ps(q[i])), mv);
}

MM_INLINE void deq_q4_k(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 144 * (g >> 3);
    const int j = (int)(g & 7);
    int sc, mn;
    mm_k4_scale_min(j, b + 4, &sc, &mn);
    const float d1 = rwkv7_load_half(b) * (float)sc, m1 = rwkv7_load_half(b + 2) * (float)mn;
    __m256i q[4];
    mm_nib32(b + 16 + 32 * (j >> 1), j, q);
    mm_kmin(q, d1, m1, v);
}

MM_INLINE void deq_q5_k(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 176 * (g >> 3);
    const int j = (int)(g & 7);
    int sc, mn;
    mm_k4_scale_min(j, b + 4, &sc, &mn);
    const float d1 = rwkv7_load_half(b) * (float)sc, m1 = rwkv7_load_half(b + 2) * (float)mn;
    __m256i q[4];
    mm_nib32(b + 48 + 32 * (j >> 1), j, q);
    /* high bit j of qh[l], as 16 */
    const __m256i hb = _mm256_loadu_si256((const __m256i *)(b + 16));
    const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(hb, _mm_cvtsi32_si128(j)), _mm256_set1_epi8(1));
    const __m128i a = _mm256_castsi256_si128(bit), c = _mm256_extracti128_si256(bit, 1);
    const __m256i h[4] = {_mm256_cvtepu8_epi32(a), _mm256_cvtepu8_epi32(_mm_srli_si128(a, 8)),
                          _mm256_cvtepu8_epi32(c), _mm256_cvtepu8_epi32(_mm_srli_si128(c, 8))};
    for (int i = 0; i < 4; i++) q[i] = _mm256_add_epi32(q[i], _mm256_slli_epi32(h[i], 4));
    mm_kmin(q, d1, m1, v);
}

MM_INLINE void deq_q6_k(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 210 * (g >> 3);
    const int gq = (int)(g & 7), h = gq >> 2, qq = gq & 3;
    const uint8_t *ql = b + 64 * h + 32 * (qq & 1), *qh = b + 128 + 32 * h, *sc = b + 192 + 8 * h;
    const float d = rwkv7_load_half(b + 208);
    const __m256i lraw = _mm256_loadu_si256((const __m256i *)ql);
    const __m256i lo = _mm256_and_si256((qq >> 1) ? _mm256_srli_epi16(lraw, 4) : lraw, _mm256_set1_epi8(0x0F));
    const __m256i hraw = _mm256_loadu_si256((const __m256i *)qh);
    const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(hraw, _mm_cvtsi32_si128(2 * qq)), _mm256_set1_epi8(3));
    /* codes 0..63 in bytes; the -32 offset is applied in int32 */
    const __m256i code = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    const __m128i a = _mm256_castsi256_si128(code), c = _mm256_extracti128_si256(code, 1);
    const __m256i q[4] = {_mm256_cvtepu8_epi32(a), _mm256_cvtepu8_epi32(_mm_srli_si128(a, 8)),
                          _mm256_cvtepu8_epi32(c), _mm256_cvtepu8_epi32(_mm_srli_si128(c, 8))};
    /* (d * sc) * q in ggml's order; elements 0..15 use scale 2qq, 16..31 scale 2qq + 1 */
    const __m256 s0 = _mm256_set1_ps(d * (float)(int8_t)sc[2 * qq]);
    const __m256 s1 = _mm256_set1_ps(d * (float)(int8_t)sc[2 * qq + 1]);
    const __m256i o = _mm256_set1_epi32(32);
    for (int i = 0; i < 4; i++)
        v[i] = _mm256_mul_ps(i < 2 ? s0 : s1, _mm256_cvtepi32_ps(_mm256_sub_epi32(q[i], o)));
}

/* d * kvalues[nibble] for the 16 bytes of nibbles at qs. */
MM_INLINE void mm_iq4(const uint8_t *qs, float d, __m256 v[4]) {
    const __m128i tab = _mm_loadu_si128((const __m128i *)rwkv7_kvalues_iq4nl);
    __m128i lo, hi;
    mm_nibbles(qs, &lo, &hi);
    lo = _mm_shuffle_epi8(tab, lo);
    hi = _mm_shuffle_epi8(tab, hi);
    const __m256 dv = _mm256_set1_ps(d);
    v[0] = _mm256_mul_ps(dv, mm_i8_ps(lo));
    v[1] = _mm256_mul_ps(dv, mm_i8_ps(_mm_srli_si128(lo, 8)));
    v[2] = _mm256_mul_ps(dv, mm_i8_ps(hi));
    v[3] = _mm256_mul_ps(dv, mm_i8_ps(_mm_srli_si128(hi, 8)));
}

MM_INLINE void deq_iq4_nl(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 18 * g;
    mm_iq4(b + 2, rwkv7_load_half(b), v);
}

MM_INLINE void deq_iq4_xs(const uint8_t *row, int64_t g, __m256 v[4]) {
    const uint8_t *b = row + 136 * (g >> 3);
    const int ib = (int)(g & 7);
    const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | ((rwkv7_le16(b + 2) >> (2 * ib)) & 3) << 4;
    mm_iq4(b + 8 + 16 * ib, rwkv7_load_half(b) * (float)(ls - 32), v);
}

/* Group decoder by type; with a constant type (the kernels are instantiated per type) the switch
 * folds away. */
MM_INLINE void mm_deq(int type, const uint8_t *row, int64_t g, __m256 v[4]) {
    switch (type) {
    case RWKV7_DTYPE_F32: deq_f32(row, g, v); break;
    case RWKV7_DTYPE_F16: deq_f16(row, g, v); break;
    case RWKV7_DTYPE_BF16: deq_bf16(row, g, v); break;
    case RWKV7_DTYPE_Q8_0: deq_q8_0(row, g, v); break;
    case RWKV7_DTYPE_Q4_0: deq_q4_0(row, g, v); break;
    case RWKV7_DTYPE_Q4_1: deq_q4_1(row, g, v); break;
    case RWKV7_DTYPE_Q5_0: deq_q5_0(row, g, v); break;
    case RWKV7_DTYPE_Q5_1: deq_q5_1(row, g, v); break;
    case RWKV7_DTYPE_Q4_K: deq_q4_k(row, g, v); break;
    case RWKV7_DTYPE_Q5_K: deq_q5_k(row, g, v); break;
    case RWKV7_DTYPE_Q6_K: deq_q6_k(row, g, v); break;
    case RWKV7_DTYPE_IQ4_NL: deq_iq4_nl(row, g, v); break;
    case RWKV7_DTYPE_IQ4_XS: deq_iq4_xs(row, g, v); break;
    default: for (int i = 0; i < 4; i++) v[i] = _mm256_setzero_ps(); break;
    }
}

/* Element k of a float-type row (the K % 32 leftovers; exact conversions). */
MM_INLINE float mm_tail(int type, const uint8_t *row, int64_t k) {
    if (type == RWKV7_DTYPE_F32) return ((const float *)row)[k];
    if (type == RWKV7_DTYPE_F16) return rwkv7_load_half(row + 2 * k);
    return rwkv7_bf16_to_f32(rwkv7_le16(row + 2 * k));
}

#endif
