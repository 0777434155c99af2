/* mma_split.cuh: the operand rounding of the tensor-core prefill tile (cuda/matmul.cu), as
 * __host__ __device__ code so tests/test_cuda_mma.cu can emulate the tile's arithmetic bit for bit
 * on the host. An fp32 value v is split into two tf32 values, hi = tf32(v) and lo = tf32(v - hi)
 * (v - hi is exact in fp32), and a product is taken as a_lo b_hi + a_hi b_lo + a_hi b_hi ("3xTF32"):
 * each tf32 x tf32 product is exact in fp32 and only a_lo b_lo (2^-22 relative) and the rounding of
 * lo (2^-22) are lost, so a dot product is as accurate as an fp32 one. One bf16 x bf16 product loses
 * 2^-9 per operand (max|err|/max|ref| ~2e-3 on the fixture shapes), twenty times the 1e-4 the
 * fixtures allow; bf16 hi + lo parts still lose 2^-17 per operand (~1e-5). The measured errors of
 * all three are printed by test_cuda_mma. */
#ifndef RWKV7_CUDA_MMA_SPLIT_CUH
#define RWKV7_CUDA_MMA_SPLIT_CUH

#include <stdint.h>
#include <string.h>

#include <cuda_runtime.h>

extern "C" {
#include "dtype.h"
}

/* v rounded to tf32 (10 explicit mantissa bits) as cvt.rna.tf32.f32 does it: to nearest, ties away
 * from zero; the result is an fp32 with its low 13 bits zero. Inf and NaN pass through. */
__host__ __device__ __forceinline__ float mm_tf32(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return __uint_as_float(r);
#else
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0x1000u) & 0xFFFFE000u; /* magnitude: add half, cut */
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
#endif
}

/* hi + lo == v to 2^-22 relative; hi and lo are tf32 values. */
__host__ __device__ __forceinline__ void mm_split(float v, float *hi, float *lo) {
    const float h = mm_tf32(v);
    *hi = h;
    *lo = mm_tf32(v - h);
}

/* Weight types whose decoded values are tf32 values already (11 significant bits or fewer), so
 * their lo part is zero and the a_lo b_hi product is skipped: 2 MMAs instead of 3. */
__host__ __device__ constexpr bool mm_weight_tf32_exact(int type) {
    return type == RWKV7_DTYPE_F16 || type == RWKV7_DTYPE_BF16;
}

#endif
