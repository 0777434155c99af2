/* matmul_simd.h: the contract between matmul.c (dispatch, threading) and the x86 SIMD matmul
 * kernels (matmul_avx.c, matmul_avx2.c, matmul_avx512.c, all built from matmul_kern.h).
 *
 * Arithmetic (all paths, all T): every output dst[t][m] is one fp32 dot product of weight row m,
 * dequantized to fp32, with the fp32 input row t. Weights are the type table's to_f32 values,
 * except that for the types with a min or bias (Q4_1, Q5_1, Q4_K, Q5_K) code * scale + bias is
 * one fma, so a weight may differ from to_f32 in its last bit. The dot keeps one W-lane
 * accumulator (W = 8 for AVX and AVX2, 16 for AVX-512), adds w[k..k+W) * x[k..k+W) with one FMA per step
 * for k ascending over the 32-aligned part of K, reduces the lanes in a fixed tree, then adds the
 * leftover elements (float types only, K % 32) one by one. The path that produced w (fused in
 * registers for small T, via an L1/L2 tile for large T) does not change any value, so a result
 * depends only on (weight row, input row, ISA): never on T, on the thread count, or on which
 * other rows or sequences share the call. These kernels never quantize activations (quantized
 * types are decoded to fp32 in registers); on CPUs with AVX-512 VNNI the quantized types take the
 * int8-activation kernels of matmul_q8.h instead, with the same invariants. */
#ifndef RWKV7_MATMUL_SIMD_H
#define RWKV7_MATMUL_SIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

/* Weight rows handled together by one kernel call. */
#define RWKV7_MM_ROWS 4

struct rwkv7_mm_job {
    float *dst;                /* (M, T): dst[t * M + m] */
    const uint8_t *w;          /* M rows of row_bytes */
    const float *x;            /* (K, T): x[t * K + k] */
    int64_t K, M, T;
    size_t row_bytes;
    int type;                  /* weight type */
    bool fast;                 /* type has a SIMD group decoder (rwkv7_mm_simd_type) */
    bool accumulate;           /* dst += result instead of dst = result */
    rwkv7_to_f32_fn to_f32;    /* tile fill for types without a group decoder */
    float **tile;              /* per thread: RWKV7_MM_ROWS * K floats */
};

/* Instruction sets, best last. */
enum rwkv7_mm_isa { RWKV7_MM_SCALAR = 0, RWKV7_MM_AVX = 1, RWKV7_MM_AVX2 = 2, RWKV7_MM_AVX512 = 3 };

/* True for the types with a SIMD group decoder: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
 * Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S. Other types use the tile path with the exact to_f32. */
bool rwkv7_mm_simd_type(int type);

/* Threadpool tasks over rows [m0, m1) of a struct rwkv7_mm_job. Only defined on x86; call only
 * when the CPU supports the instruction set (matmul.c checks with __builtin_cpu_supports). */
void rwkv7_mm_rows_avx(void *job, int64_t m0, int64_t m1, int ith);
void rwkv7_mm_rows_avx2(void *job, int64_t m0, int64_t m1, int ith);
void rwkv7_mm_rows_avx512(void *job, int64_t m0, int64_t m1, int ith);

/* The instruction set matmul uses: the best the CPU supports, capped by the environment variable
 * RWKV7_CPU_ISA=avx512|avx2|avx|scalar (read once), unless forced (tests and the
 * microbenchmark compare paths). Forcing one the CPU lacks falls back to the best supported.
 * rwkv7_mm_isa_force(-1) returns to automatic choice. Not thread-safe against running matmuls. */
int rwkv7_mm_isa(void);
void rwkv7_mm_isa_force(int isa);
/* "AVX-512", "AVX2", "AVX" or "scalar": the name `rwkv7 devices` and the backend banner show. */
const char *rwkv7_mm_isa_name(int isa);

#endif
