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
