/* mma_split.cuh: the operand rounding of the tensor-core prefill GEMM (cuda/gemm.cu), as
 * __host__ __device__ code so tests/test_cuda_mma.cu can emulate the kernel's arithmetic bit for
 * bit on the host. An fp32 value v is split into two bf16 values, hi = bf16(v) and lo = bf16(v - hi)
 * (v - hi is exact in fp32; both rounded to nearest even, cvt.rn.bf16x2.f32), and a product is
 * taken as a_lo b_hi + a_hi b_lo + a_hi b_hi, three m16n8k16 bf16 MMAs into one fp32 accumulator
 * ("bf16x3"). Each bf16 x bf16 product is exact in fp32; what is lost is a_lo b_lo and the
 * rounding of lo (at most 2^-16 relative each), so a matmul stays ~6e-6 (max|err| / max|ref|) off
 * the exact product on the fixture shapes, under the 1e-5 per matmul test_cuda_mma asks (the
 * fixtures allow 1e-4 for the whole model). One bf16 x bf16 product loses 2^-9 per operand
 * (~3e-3), far too much. bf16x3 runs at the bf16 tensor rate (twice the tf32 one on sm_80..sm_90),
 * and hi + lo take 4 bytes per value, as fp32 does. */
#ifndef RWKV7_CUDA_MMA_SPLIT_CUH
#define RWKV7_CUDA_MMA_SPLIT_CUH

#include <stdint.h>
#include <string.h>

#include <cuda_runtime.h>

extern "C" {
#include "dtype.h"
}

/* Bits of v rounded to bf16 as cvt.rn.bf16.f32 does it: to nearest, ties to even; NaN stays a
 * (quiet) NaN, Inf stays Inf. The host form used by the emulation; the device uses the instruction
 * (mm_split2 below). */
__host__ __device__ __forceinline__ uint16_t mm_bf16_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN: keep it NaN */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

__host__ __device__ __forceinline__ float mm_bf16_float(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* hi + lo == v to 2^-16 relative; hi and lo are bf16 values (as floats). */
__host__ __device__ __forceinline__ void mm_split(float v, float *hi, float *lo) {
    const float h = mm_bf16_float(mm_bf16_bits(v));
    *hi = h;
    *lo = mm_bf16_float(mm_bf16_bits(v - h));
}

#ifdef __CUDACC__
#include <cuda_bf16.h>
/* Two consecutive values split at once, packed as the MMA operands take them (element k in the
 * low half): the same rounding as mm_split, in two cvt.rn.bf16x2.f32 on sm_80+. */
__host__ __device__ __forceinline__ void mm_split2(float v0, float v1, uint32_t *hi, uint32_t *lo) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    const __nv_bfloat162 h = __floats2bfloat162_rn(v0, v1);
    const __nv_bfloat162 l = __floats2bfloat162_rn(v0 - __low2float(h), v1 - __high2float(h));
    memcpy(hi, &h, 4);
    memcpy(lo, &l, 4);
#else
    float h0, l0, h1, l1;
    mm_split(v0, &h0, &l0), mm_split(v1, &h1, &l1);
    *hi = (uint32_t)mm_bf16_bits(h0) | (uint32_t)mm_bf16_bits(h1) << 16;
    *lo = (uint32_t)mm_bf16_bits(l0) | (uint32_t)mm_bf16_bits(l1) << 16;
#endif
}
#endif

/* Weight types whose decoded values are bf16 values already, so their lo part is zero and the
 * a_lo b_hi product is skipped: 2 MMAs instead of 3. (F16 values need 11 bits: their lo part is
 * exact but not zero.) */
__host__ __device__ constexpr bool mm_weight_bf16_exact(int type) { return type == RWKV7_DTYPE_BF16; }

#endif
