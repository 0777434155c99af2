/* matmul_avx512.c: the matmul kernels (matmul_kern.h) for AVX-512F, 16 lanes, with the AVX2
 * group decoders (two 8-float halves joined per 16-lane vector). Only this file is compiled for
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

MM_INLINE __m512 mk_join(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

#define MK_VF __m512
#define MK_W 16
#define MK_COLS 6
#define MK_ZERO() _mm512_setzero_ps()
#define MK_LOADU(p) _mm512_loadu_ps(p)
#define MK_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MK_REDUCE(v) mk_reduce16(v)
#define MK_FROM8(w8, w) \
    do { (w)[0] = mk_join((w8)[0], (w8)[1]); (w)[1] = mk_join((w8)[2], (w8)[3]); } while (0)
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
