/* matmul_avx512.c: the matmul kernels (matmul_kern.h) for AVX-512F, 16 lanes, with the AVX2
 * group code decoders and a 16-lane conversion (mm_cvt16). Only this file is compiled for
 * that target (pragma below); matmul.c calls in only when __builtin_cpu_supports reports avx512f,
 * avx2, fma and f16c. The wider FMA doubles the prefill (tile) throughput; decode is bound by
 * memory bandwidth either way. Arithmetic and invariants: matmul_simd.h. */
#if defined(__x86_64__) || defined(__i386__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")
#endif

#include "matmul_simd.h"
#include "matmul_deq_x86.h"

/* Upper and lower 256-bit halves added, then the AVX2 tree (matmul_avx2.c). */
MM_INLINE float mk_reduce16(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 h = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Group g of a float-type row as two 16-float vectors. */
MM_INLINE void mm_float16(int type, const uint8_t *row, int64_t g, __m512 v[2]) {
    if (type == RWKV7_DTYPE_F32) {
        const float *p = (const float *)row + 32 * g; /* F32 rows are 4-byte aligned in GGUF */
        v[0] = _mm512_loadu_ps(p);
        v[1] = _mm512_loadu_ps(p + 16);
        return;
    }
    const uint8_t *p = row + 64 * g;
    for (int i = 0; i < 2; i++) {
        const __m256i h = _mm256_loadu_si256((const __m256i *)(p + 32 * i));
        v[i] = type == RWKV7_DTYPE_F16 ? _mm512_cvtph_ps(h)
                                       : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

/* 32 codes with their scale/bias pair as two 16-float vectors: one 16-lane widen + convert + fma
 * per half, half the conversion work of the 8-lane form (mm_cvt8); same values. */
MM_INLINE void mm_cvt16(__m256i code, const float *s, const float *b, __m512 v[2]) {
    const __m128i c[2] = {_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1)};
    for (int i = 0; i < 2; i++)
        v[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c[i])), _mm512_set1_ps(s[i]), _mm512_set1_ps(b[i]));
}

/* The 4-bit types with one scale (and bias) per 32 weights: Q4_0, Q4_1, IQ4_NL, Q4_K, IQ4_XS. Their
 * weight w = fma(value(code), scale, bias) takes only 16 values per group, so instead of converting
 * every code (widen, int -> float, fma: three ops per 16 weights) the group's 16 values are
 * computed once with one 16-lane fma into a table, and each 16 weights are one vpermps of that
 * table indexed by their codes. vpermps reads only the low 4 bits of each index, so a zero-extended
 * byte of packed nibbles indexes by its low nibble with no mask. Each table entry is the same
 * single-rounded fma the conversion computes, so the weights (and results) are bit-identical. */
MM_INLINE bool mm_lut_type(int type) {
    return type == RWKV7_DTYPE_Q4_0 || type == RWKV7_DTYPE_Q4_1 || type == RWKV7_DTYPE_IQ4_NL ||
           type == RWKV7_DTYPE_Q4_K || type == RWKV7_DTYPE_IQ4_XS;
}

/* 16 bytes at p zero-extended to 16 dwords. */
MM_INLINE __m512i mm_u8x16(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }

/* Group g of a table type (mm_lut_type) with its scale/bias pair s, b as two 16-float vectors. */
MM_INLINE void mm_lut16(int type, const uint8_t *row, int64_t g, const float *s, const float *b, __m512 v[2]) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 val;        /* the 16 code values, before scaling */
    __m512i lo, hi;    /* indices of elements 0..15 and 16..31 (in their low 4 bits) */
    if (type == RWKV7_DTYPE_Q4_K) {
        /* groups 2i and 2i + 1 share 32 bytes: low nibbles, then high nibbles */
        const int jj = (int)(g & 7);
        const uint8_t *q = row + 144 * (g >> 3) + 16 + 32 * (jj >> 1);
        lo = mm_u8x16(q);
        hi = mm_u8x16(q + 16);
        if (jj & 1) {
            lo = _mm512_srli_epi32(lo, 4);
            hi = _mm512_srli_epi32(hi, 4);
        }
        val = iota;
    } else {
        /* 16 bytes: low nibbles are elements 0..15, high nibbles 16..31 */
        const uint8_t *q = type == RWKV7_DTYPE_Q4_0 || type == RWKV7_DTYPE_IQ4_NL ? row + 18 * g + 2
                           : type == RWKV7_DTYPE_Q4_1                            ? row + 20 * g + 4
                                                                                 : row + 136 * (g >> 3) + 8 + 16 * (g & 7);
        lo = mm_u8x16(q);
        hi = _mm512_srli_epi32(lo, 4);
        val = type == RWKV7_DTYPE_Q4_0   ? _mm512_sub_ps(iota, _mm512_set1_ps(8.0f))
              : type == RWKV7_DTYPE_Q4_1 ? iota
                                         : _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                               _mm_loadu_si128((const __m128i *)rwkv7_kvalues_iq4nl)));
    }
    const __m512 tab = _mm512_fmadd_ps(val, _mm512_set1_ps(s[0]), _mm512_set1_ps(b[0]));
    v[0] = _mm512_permutexvar_ps(lo, tab);
    v[1] = _mm512_permutexvar_ps(hi, tab);
}

#define MK_VF __m512
#define MK_W 16
#define MK_COLS 6
#define MK_FCOLS 4
#define MK_ZERO() _mm512_setzero_ps()
#define MK_LOADU(p) _mm512_loadu_ps(p)
#define MK_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MK_REDUCE(v) mk_reduce16(v)
#define MK_STOREU(p, v) _mm512_storeu_ps(p, v)
#define MK_FLOAT(type, row, g, w) mm_float16(type, row, g, w)
#define MK_CVT(code, s, b, w) mm_cvt16(code, s, b, w)
#define MK_LUT_TYPE(type) mm_lut_type(type)
#define MK_LUT(type, row, g, s, b, w) mm_lut16(type, row, g, s, b, w)
#define MK_NAME(n) n##_avx512

#include "matmul_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#else
/* Not x86: matmul.c never references the AVX-512 kernels. */
typedef int rwkv7_matmul_avx512_unused;
#endif
