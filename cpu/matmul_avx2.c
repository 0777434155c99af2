/* matmul_avx2.c: the matmul kernels (matmul_kern.h) for AVX2 + FMA + F16C, 8 lanes. Only this
 * file is compiled for that target (pragma below, no global -mavx2), so the binary still runs on
 * any x86-64; matmul.c calls in only when __builtin_cpu_supports says the CPU has all three.
 * Arithmetic and invariants: matmul_simd.h. */
#if defined(__x86_64__) || defined(__i386__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include "matmul_simd.h"
#include "matmul_deq_x86.h"

/* Lanes summed as ((0+4)+(2+6)) + ((1+5)+(3+7)): a fixed tree, so results are reproducible. */
MM_INLINE float mk_reduce8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define MK_VF __m256
#define MK_W 8
#define MK_COLS 3
#define MK_FCOLS 2
#define MK_ZERO() _mm256_setzero_ps()
#define MK_LOADU(p) _mm256_loadu_ps(p)
#define MK_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define MK_REDUCE(v) mk_reduce8(v)
#define MK_STOREU(p, v) _mm256_storeu_ps(p, v)
#define MK_FLOAT(type, row, g, w) mm_float8(type, row, g, w)
#define MK_CVT(code, s, b, w) mm_cvt8(code, s, b, w)
#define MK_NAME(n) n##_avx2

#include "matmul_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#else
/* Not x86: matmul.c never references the AVX2 kernels. */
typedef int rwkv7_matmul_avx2_unused;
#endif
