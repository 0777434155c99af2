/* lora_up.cuh: the per-thread arithmetic of the fused LoRA up-projection kernel (cuda/lora_up.cu),
 * __host__ __device__ so tests/test_cuda_lora_up.cu runs exactly this code on the host: the
 * unaries, the shared-memory layout of the staged input, one lane's partial dot products and the
 * order in which a row's lanes are summed. Semantics: backend.h, struct rwkv7_lora_up_args.
 *
 * Layout. A weight row of K = the LoRA rank (32..LU_MAX_K) is K / 8 groups of 8 elements; a row
 * gets LPR = lu_lanes(K) lanes (a power of two, 4..32, so a warp serves 32 / LPR rows at once and
 * LPR consecutive lanes read consecutive groups of one row: 16-byte slices for F16/BF16); lane l
 * takes groups l, l + LPR, ... in that order. The input column (after in_fn) sits in shared memory
 * with each group split in halves: elements 8g..8g+3 at 4g, 8g+4..8g+7 at K/2 + 4g, so the lanes
 * of a row read consecutive 16-byte words (no bank conflicts; 8-float rows would alias 2-way). */
#ifndef RWKV7_CUDA_LORA_UP_CUH
#define RWKV7_CUDA_LORA_UP_CUH

#include <math.h>

#include "dequant.cuh"

extern "C" {
#include "backend.h"
}

#define LU_THREADS  256  /* threads per block: 8 warps */
#define LU_MAX_K    1024 /* ranks up to this fit 8 staged columns in 32 KiB of shared memory */
#define LU_MAX_NCOL 8    /* columns per block; the host composes primitives above 8 (matmul.cu's tiles) */

/* The unaries as cpu/ops.c and cuda/elementwise.cu write them (accurate expf / tanhf). */
__host__ __device__ __forceinline__ float lu_sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }
__host__ __device__ __forceinline__ float lu_unary(int fn, float z) {
    switch (fn) {
    case RWKV7_UNARY_SIGMOID: return lu_sigmoid(z);
    case RWKV7_UNARY_TANH: return tanhf(z);
    case RWKV7_UNARY_RELU_SQR: return z > 0.0f ? z * z : 0.0f;
    default: return expf(-RWKV7_DECAY_SCALE * lu_sigmoid(z)); /* RWKV7_UNARY_DECAY */
    }
}

/* Lanes per row: the smallest power of two >= K / 8 groups, 4..32 (every lane a group while
 * K <= 256; ranks like 96 or 480 leave the last lanes of a row short). Depends on K only. */
__host__ __device__ __forceinline__ int lu_lanes(int K) {
    int ng = K / 8, l = 4;
    while (l < 32 && l < ng) l *= 2;
    return l;
}

/* Shared-memory index of element k (k % 4 == 0 starts 4 contiguous floats) of a staged column. */
__host__ __device__ __forceinline__ int lu_slot(int k, int K) {
    return ((k >> 2) & 1) * (K / 2) + 4 * (k >> 3) + (k & 3);
}

/* Four staged floats at p (16-byte aligned in shared memory on the device). */
__host__ __device__ __forceinline__ void lu_ld4(const float *p, float *o) {
#ifdef __CUDA_ARCH__
    const float4 v = *reinterpret_cast<const float4 *>(p);
    o[0] = v.x, o[1] = v.y, o[2] = v.z, o[3] = v.w;
#else
    o[0] = p[0], o[1] = p[1], o[2] = p[2], o[3] = p[3];
#endif
}

/* Stages elements [4 i, 4 i + 4) of the ncol x K input block (column c = (4 i) / K starting at x +
 * c * K, K % 8 == 0) as in_fn of them (RWKV7_LORA_NO_FN: as they are) into xs. x is not written. */
__host__ __device__ __forceinline__ void lu_stage4(float *xs, const float *x, int K, int i, int in_fn, bool x16) {
    const int c = 4 * i / K, k = 4 * i - c * K;
    const float *src = x + (int64_t)c * K + k;
    float v[4];
#ifdef __CUDA_ARCH__
    if (x16) {
        const float4 q = __ldg(reinterpret_cast<const float4 *>(src));
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
#pragma unroll
        for (int e = 0; e < 4; e++) v[e] = __ldg(src + e);
    }
#else
    (void)x16;
    for (int e = 0; e < 4; e++) v[e] = src[e];
#endif
    if (in_fn != RWKV7_LORA_NO_FN) {
#pragma unroll
        for (int e = 0; e < 4; e++) v[e] = lu_unary(in_fn, v[e]);
    }
    float *dst = xs + c * K + lu_slot(k, K);
#ifdef __CUDA_ARCH__
    *reinterpret_cast<float4 *>(dst) = make_float4(v[0], v[1], v[2], v[3]);
#else
    for (int e = 0; e < 4; e++) dst[e] = v[e];
#endif
}

/* acc[c] += this lane's part of row . column c for c < ncol: groups g = l, l + lpr, ... < K / 8
 * of the row at wrow, each as 8 fmaf in element order (explicit fmaf: the same rounding on the
 * host and in every instantiation, so a column's sum never depends on NCOL: batch invariance). */
template <int TYPE, int NCOL>
__host__ __device__ __forceinline__ void lu_lane_dot(const uint8_t *wrow, const float *xs, int K, int l, int lpr,
                                                     int ncol, float *acc, const dq_tables &tb) {
    const int ng = K / 8;
#pragma unroll 2
    for (int g = l; g < ng; g += lpr) {
        float wv[8];
        dq8_row<TYPE>(wrow, g, wv, tb);
#pragma unroll
        for (int c = 0; c < NCOL; c++) {
            if (c < ncol) {
                float lo[4], hi[4];
                lu_ld4(xs + c * K + 4 * g, lo);
                lu_ld4(xs + c * K + K / 2 + 4 * g, hi);
                float a = acc[c];
#pragma unroll
                for (int e = 0; e < 4; e++) a = fmaf(wv[e], lo[e], a);
#pragma unroll
                for (int e = 0; e < 4; e++) a = fmaf(wv[4 + e], hi[e], a);
                acc[c] = a;
            }
        }
    }
}

/* The epilogue of one output: out_fn(sum + bias) (bias may be NULL), or sum without an out_fn. */
__host__ __device__ __forceinline__ float lu_out(float sum, const float *bias, int64_t row, int out_fn) {
    if (out_fn == RWKV7_LORA_NO_FN) return sum;
    return lu_unary(out_fn, bias ? sum + bias[row] : sum);
}

/* ---- the launcher's plan (host) ---- */

/* Columns per block for T columns: 1, 4 or 8 (a column's sum is the same code in each). */
static inline int lu_ncol(int64_t T) { return T <= 1 ? 1 : T <= 4 ? 4 : 8; }

/* Rows per block of a term with lpr lanes per row when the launch has rows_total rows: about 32,
 * so the staged input is read once per >= 32 rows (rank 512: 2 KiB per column against 32 KiB of
 * BF16 weights), fewer when that leaves under two blocks per SM; at least one row per lane slice
 * (LU_THREADS / lpr). Only which block sums a row depends on this, never how. */
static inline int lu_rows_per_block(int lpr, int64_t rows_total, int n_sm) {
    int target = 32;
    while (target > 8 && rows_total / target < 2 * (int64_t)n_sm) target /= 2;
    const int slots = LU_THREADS / lpr;
    return slots * (target > slots ? target / slots : 1);
}

/* The value-residual mix as the mix op writes it: v + (v_first - v) * t. */
__host__ __device__ __forceinline__ float lu_mix(float v, float vf, float t) { return v + (vf - v) * t; }

#endif
