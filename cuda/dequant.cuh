/* dequant.cuh: __host__ __device__ decoders of every supported GGUF weight type, one group of 8
 * consecutive elements at a time (every format decodes naturally in 8s: a grid entry, 8 nibbles,
 * one scale). Used by embed.cu and matmul.cu; tests/test_cuda_dequant.cu runs the same code on the
 * host against the CPU dequantizers. Fields are assembled from bytes (blocks are only 2-byte, MXFP
 * 1-byte aligned). Formulas: quant-formats.md section 3. The IQ tables live in per-translation-unit
 * __device__ arrays, filled by dq_upload_tables() at backend init; host code reads iq_tables.h. */
#ifndef RWKV7_CUDA_DEQUANT_CUH
#define RWKV7_CUDA_DEQUANT_CUH

#include <stdint.h>
#include <string.h>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

extern "C" {
#include "dtype.h"
#include "iq_tables.h"
}

/* ---- field loads and scalar conversions ---- */

__host__ __device__ __forceinline__ uint32_t dq_le16(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
__host__ __device__ __forceinline__ uint32_t dq_le32(const uint8_t *p) {
    return dq_le16(p) | dq_le16(p + 2) << 16;
}
__host__ __device__ __forceinline__ float dq_bits_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}
/* IEEE half -> float, exact for subnormals, inf and nan. */
__host__ __device__ __forceinline__ float dq_half(uint32_t h) {
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half((unsigned short)h)); /* cvt.f32.f16: exact */
#else
    uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    if (e == 0x1F) return dq_bits_f32(sign | 0x7F800000u | m << 13);
    if (e != 0) return dq_bits_f32(sign | (e + 112) << 23 | m << 13);
    float v = (float)m * 5.9604644775390625e-8f; /* m * 2^-24, exact */
    return sign ? -v : v;
#endif
}
__host__ __device__ __forceinline__ float dq_load_half(const uint8_t *p) { return dq_half(dq_le16(p)); }
/* The 8 quant bytes of a group as one little-endian word, from a 2-byte-aligned address (every
 * group's quants are: blocks are 2-byte aligned and groups start at even offsets). Four 16-bit
 * loads instead of eight byte loads, or one 64-bit load where the address allows it (Q4_K rows
 * of an aligned tensor always do; the branch is then uniform). Byte e is (w >> 8e) & 0xFF. */
__host__ __device__ __forceinline__ uint64_t dq_load8(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    if ((reinterpret_cast<uintptr_t>(p) & 7) == 0) {
        const uint2 v = __ldg(reinterpret_cast<const uint2 *>(p));
        return (uint64_t)v.x | (uint64_t)v.y << 32;
    }
    const unsigned short *h = reinterpret_cast<const unsigned short *>(p);
    return (uint64_t)__ldg(h) | (uint64_t)__ldg(h + 1) << 16 | (uint64_t)__ldg(h + 2) << 32 |
           (uint64_t)__ldg(h + 3) << 48;
#else
    uint64_t v = 0;
    for (int e = 0; e < 4; e++) v |= (uint64_t)dq_le16(p + 2 * e) << (16 * e);
    return v;
#endif
}
/* Q4_K / Q5_K block head: d and dmin (one word) and the 12 packed scale bytes (bytes 0-7 in
 * *lo, 8-11 in *hi), as four 32-bit loads where the block is 4-byte aligned (it is in an aligned
 * tensor: 144- and 176-byte blocks), instead of two 16-bit and two to four byte loads whose
 * addresses depend on the lane's sub-block. Byte i of the scales is (lo >> 8i) for i < 8. */
__host__ __device__ __forceinline__ uint32_t dq_kq_head(const uint8_t *b, uint64_t *lo, uint32_t *hi) {
#ifdef __CUDA_ARCH__
    if ((reinterpret_cast<uintptr_t>(b) & 3) == 0) {
        const unsigned *w = reinterpret_cast<const unsigned *>(b);
        const uint32_t dd = __ldg(w), s0 = __ldg(w + 1), s1 = __ldg(w + 2), s2 = __ldg(w + 3);
        *lo = (uint64_t)s0 | (uint64_t)s1 << 32;
        *hi = s2;
        return dd;
    }
#endif
    *lo = (uint64_t)dq_le32(b + 4) | (uint64_t)dq_le32(b + 8) << 32;
    *hi = dq_le32(b + 12);
    return dq_le32(b);
}
/* Element j of a grid word packing one byte per element. */
__host__ __device__ __forceinline__ uint32_t dq_byte(uint64_t g, int j) {
    return (uint32_t)(g >> (8 * j)) & 0xFF;
}
/* 7 explicit sign bits + parity bit (quant-formats.md 3.0); bit j set = negate element j. */
__host__ __device__ __forceinline__ uint32_t dq_signs7(uint32_t s) {
    uint32_t p = s ^ (s >> 4);
    p ^= p >> 2;
    p ^= p >> 1;
    return s | (p & 1) << 7;
}

/* ---- tables ---- */

static __device__ uint64_t dq_dev_iq2xxs[256];
static __device__ uint64_t dq_dev_iq2xs[512];
static __device__ uint64_t dq_dev_iq2s[1024];
static __device__ uint64_t dq_dev_iq1s[2048];
static __device__ uint32_t dq_dev_iq3xxs[256];
static __device__ uint32_t dq_dev_iq3s[512];
static __device__ int8_t dq_dev_iq4nl[16];

struct dq_tables {
    const uint64_t *iq2xxs, *iq2xs, *iq2s, *iq1s; /* 8 elements per entry */
    const uint32_t *iq3xxs, *iq3s;                /* 4 elements per entry */
    const int8_t *iq4nl;                          /* 16 values */
};

/* The tables visible where the code runs: device copies on the GPU, iq_tables.h on the host. */
__host__ __device__ __forceinline__ dq_tables dq_tab(void) {
#ifdef __CUDA_ARCH__
    return {dq_dev_iq2xxs, dq_dev_iq2xs, dq_dev_iq2s, dq_dev_iq1s, dq_dev_iq3xxs, dq_dev_iq3s, dq_dev_iq4nl};
#else
    return {rwkv7_iq2xxs_grid, rwkv7_iq2xs_grid, rwkv7_iq2s_grid, rwkv7_iq1s_grid,
            rwkv7_iq3xxs_grid, rwkv7_iq3s_grid, rwkv7_kvalues_iq4nl};
#endif
}

/* Copies iq_tables.h into this translation unit's __device__ arrays (current device). */
[[maybe_unused]] static cudaError_t dq_upload_tables(void) {
    cudaError_t e;
    if ((e = cudaMemcpyToSymbol(dq_dev_iq2xxs, rwkv7_iq2xxs_grid, sizeof dq_dev_iq2xxs)) != cudaSuccess) return e;
    if ((e = cudaMemcpyToSymbol(dq_dev_iq2xs, rwkv7_iq2xs_grid, sizeof dq_dev_iq2xs)) != cudaSuccess) return e;
    if ((e = cudaMemcpyToSymbol(dq_dev_iq2s, rwkv7_iq2s_grid, sizeof dq_dev_iq2s)) != cudaSuccess) return e;
    if ((e = cudaMemcpyToSymbol(dq_dev_iq1s, rwkv7_iq1s_grid, sizeof dq_dev_iq1s)) != cudaSuccess) return e;
    if ((e = cudaMemcpyToSymbol(dq_dev_iq3xxs, rwkv7_iq3xxs_grid, sizeof dq_dev_iq3xxs)) != cudaSuccess) return e;
    if ((e = cudaMemcpyToSymbol(dq_dev_iq3s, rwkv7_iq3s_grid, sizeof dq_dev_iq3s)) != cudaSuccess) return e;
    return cudaMemcpyToSymbol(dq_dev_iq4nl, rwkv7_kvalues_iq4nl, sizeof dq_dev_iq4nl);
}

/* ---- per-type traits: elements and bytes per block (float types use blocks of 8) ---- */

template <int TYPE> struct dq_traits;
#define DQ_TRAITS(T, BLK, BYTES)                                      \
    template <> struct dq_traits<RWKV7_DTYPE_##T> {                   \
        static constexpr int block = BLK, bytes = BYTES;              \
    }
DQ_TRAITS(F32, 8, 32);
DQ_TRAITS(F16, 8, 16);
DQ_TRAITS(BF16, 8, 16);
DQ_TRAITS(Q4_0, 32, 18);
DQ_TRAITS(Q4_1, 32, 20);
DQ_TRAITS(Q5_0, 32, 22);
DQ_TRAITS(Q5_1, 32, 24);
DQ_TRAITS(Q8_0, 32, 34);
DQ_TRAITS(Q2_K, 256, 84);
DQ_TRAITS(Q3_K, 256, 110);
DQ_TRAITS(Q4_K, 256, 144);
DQ_TRAITS(Q5_K, 256, 176);
DQ_TRAITS(Q6_K, 256, 210);
DQ_TRAITS(IQ2_XXS, 256, 66);
DQ_TRAITS(IQ2_XS, 256, 74);
DQ_TRAITS(IQ3_XXS, 256, 98);
DQ_TRAITS(IQ1_S, 256, 50);
DQ_TRAITS(IQ4_NL, 32, 18);
DQ_TRAITS(IQ3_S, 256, 110);
DQ_TRAITS(IQ2_S, 256, 82);
DQ_TRAITS(IQ4_XS, 256, 136);
DQ_TRAITS(IQ1_M, 256, 56);
DQ_TRAITS(TQ1_0, 256, 54);
DQ_TRAITS(TQ2_0, 256, 66);
DQ_TRAITS(Q1_0, 128, 18);
DQ_TRAITS(Q2_0, 64, 18);
#undef DQ_TRAITS

/* RWKV7_CUDA_WEIGHT_TYPES(X): every type the CUDA backend decodes (matmul and embed), from the
 * one weight-type list in runtime/dtype.h. */

static inline bool dq_type_supported(int type) {
    switch (type) {
#define DQ_CASE(T) case RWKV7_DTYPE_##T:
        RWKV7_CUDA_WEIGHT_TYPES(DQ_CASE)
#undef DQ_CASE
        return true;
    default:
        return false;
    }
}

/* ---- the decoders ----
 * dq8<TYPE>(b, j, y, tb): y[0..7] = elements 8j..8j+7 of the block at b (j < block / 8).
 * dq1<TYPE>(p): one element at p (float types only; row tails that are not a multiple of 8). */

template <int TYPE>
__host__ __device__ __forceinline__ float dq1(const uint8_t *p) {
    if constexpr (TYPE == RWKV7_DTYPE_F32) return dq_bits_f32(dq_le32(p));
    else if constexpr (TYPE == RWKV7_DTYPE_F16) return dq_half(dq_le16(p));
    else return dq_bits_f32(dq_le16(p) << 16);
}

/* Signed grid entry of 8 unsigned bytes times scale: IQ2_XXS / IQ2_XS / IQ2_S. */
__host__ __device__ __forceinline__ void dq_grid8(uint64_t g, uint32_t signs, float db, float *y) {
#pragma unroll
    for (int e = 0; e < 8; e++) y[e] = db * (float)dq_byte(g, e) * ((signs >> e) & 1 ? -1.0f : 1.0f);
}

template <int TYPE>
__host__ __device__ __forceinline__ void dq8(const uint8_t *b, int j, float *y, const dq_tables &tb) {
    const int i0 = 8 * j; /* first element of the group inside the block */
    if constexpr (TYPE == RWKV7_DTYPE_F32 || TYPE == RWKV7_DTYPE_F16 || TYPE == RWKV7_DTYPE_BF16) {
        constexpr int es = TYPE == RWKV7_DTYPE_F32 ? 4 : 2;
#ifdef __CUDA_ARCH__
        if ((reinterpret_cast<uintptr_t>(b) & 15) == 0) { /* rows of K % 8 == 0 from an aligned tensor */
            if constexpr (TYPE == RWKV7_DTYPE_F32) {
                const float4 p = __ldg(reinterpret_cast<const float4 *>(b));
                const float4 q = __ldg(reinterpret_cast<const float4 *>(b) + 1);
                y[0] = p.x, y[1] = p.y, y[2] = p.z, y[3] = p.w, y[4] = q.x, y[5] = q.y, y[6] = q.z, y[7] = q.w;
            } else {
                const uint4 p = __ldg(reinterpret_cast<const uint4 *>(b));
                const uint32_t u[4] = {p.x, p.y, p.z, p.w};
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    if constexpr (TYPE == RWKV7_DTYPE_F16) {
                        y[2 * e] = dq_half(u[e] & 0xFFFF);
                        y[2 * e + 1] = dq_half(u[e] >> 16);
                    } else {
                        y[2 * e] = __uint_as_float(u[e] << 16);
                        y[2 * e + 1] = __uint_as_float(u[e] & 0xFFFF0000u);
                    }
                }
            }
            return;
        }
#endif
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = dq1<TYPE>(b + es * e);
    } else if constexpr (TYPE == RWKV7_DTYPE_Q4_0 || TYPE == RWKV7_DTYPE_Q4_1 ||
                         TYPE == RWKV7_DTYPE_IQ4_NL) {
        const float d = dq_load_half(b);
        const uint8_t *qs = b + (TYPE == RWKV7_DTYPE_Q4_1 ? 4 : 2) + (i0 & 15);
        const int sh = i0 < 16 ? 0 : 4;
        const uint64_t q8 = dq_load8(qs);
        if constexpr (TYPE == RWKV7_DTYPE_Q4_1) {
            const float m = dq_load_half(b + 2);
#pragma unroll
            for (int e = 0; e < 8; e++) y[e] = (float)((q8 >> (8 * e + sh)) & 0xF) * d + m;
        } else if constexpr (TYPE == RWKV7_DTYPE_Q4_0) {
#pragma unroll
            for (int e = 0; e < 8; e++) y[e] = (float)((int)((q8 >> (8 * e + sh)) & 0xF) - 8) * d;
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) y[e] = d * (float)tb.iq4nl[(q8 >> (8 * e + sh)) & 0xF];
        }
    } else if constexpr (TYPE == RWKV7_DTYPE_Q5_0 || TYPE == RWKV7_DTYPE_Q5_1) {
        constexpr bool one = TYPE == RWKV7_DTYPE_Q5_1;
        const float d = dq_load_half(b);
        const uint32_t qh = dq_le32(b + (one ? 4 : 2));
        const uint8_t *qs = b + (one ? 8 : 6) + (i0 & 15);
        const int sh = i0 < 16 ? 0 : 4;
        const float m = one ? dq_load_half(b + 2) : 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            const int q = (int)(((qs[e] >> sh) & 0xF) | ((qh >> (i0 + e)) & 1) << 4);
            y[e] = one ? (float)q * d + m : (float)(q - 16) * d;
        }
    } else if constexpr (TYPE == RWKV7_DTYPE_Q8_0) {
        const float d = dq_load_half(b);
        const uint64_t q8 = dq_load8(b + 2 + i0);
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = (float)(int8_t)dq_byte(q8, e) * d;
    } else if constexpr (TYPE == RWKV7_DTYPE_Q2_K) {
        const int h = i0 >> 7, g = (i0 & 127) >> 5, l0 = i0 & 31;
        const uint32_t s = b[i0 >> 4];
        const float dl = dq_load_half(b + 80) * (float)(s & 0xF), ml = dq_load_half(b + 82) * (float)(s >> 4);
        const uint8_t *q = b + 16 + 32 * h + l0;
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = dl * (float)((q[e] >> (2 * g)) & 3) - ml;
    } else if constexpr (TYPE == RWKV7_DTYPE_Q3_K) {
        const int h = i0 >> 7, g = (i0 & 127) >> 5, l0 = i0 & 31, k = i0 >> 4;
        const uint8_t *sc = b + 96;
        const uint32_t low4 = k < 8 ? sc[k] & 0xF : sc[k - 8] >> 4;
        const uint32_t high2 = (sc[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
        const float dl = dq_load_half(b + 108) * (float)((int)(low4 | high2 << 4) - 32);
        const uint8_t *q = b + 32 + 32 * h + l0, *hm = b + l0;
        const int hbit = i0 >> 5;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            const int q3 = (int)((q[e] >> (2 * g)) & 3) - ((hm[e] >> hbit) & 1 ? 0 : 4);
            y[e] = dl * (float)q3;
        }
    } else if constexpr (TYPE == RWKV7_DTYPE_Q4_K || TYPE == RWKV7_DTYPE_Q5_K) {
        constexpr bool five = TYPE == RWKV7_DTYPE_Q5_K;
        const int sb = i0 >> 5, c = i0 >> 6, l0 = i0 & 31;
        uint64_t slo;
        uint32_t shi, sc, mn;
        const uint32_t dd = dq_kq_head(b, &slo, &shi);
        const uint32_t s_sb = (uint32_t)(slo >> (8 * sb)) & 0xFF; /* scale byte sb (sb < 8) */
        if (sb < 4) {
            sc = s_sb & 63;
            mn = (uint32_t)(slo >> (8 * (sb + 4))) & 63;
        } else {
            const uint32_t s_hi = (shi >> (8 * (sb - 4))) & 0xFF, s_lo = (uint32_t)(slo >> (8 * (sb - 4))) & 0xFF;
            sc = (s_hi & 0xF) | (s_lo >> 6) << 4;
            mn = (s_hi >> 4) | (s_sb >> 6) << 4;
        }
        const float d = dq_half(dd & 0xFFFF) * (float)sc, m = dq_half(dd >> 16) * (float)mn;
        const uint8_t *q = b + (five ? 48 : 16) + 32 * c + l0, *qh = b + 16 + l0;
        const int sh = (sb & 1) * 4;
        const uint64_t q8 = dq_load8(q), qh8 = five ? dq_load8(qh) : 0;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            uint32_t v = (uint32_t)(q8 >> (8 * e + sh)) & 0xF;
            if (five) v += ((uint32_t)(qh8 >> (8 * e + sb)) & 1) << 4;
            y[e] = d * (float)v - m;
        }
    } else if constexpr (TYPE == RWKV7_DTYPE_Q6_K) {
        const int h = i0 >> 7, g = (i0 & 127) >> 5, l0 = i0 & 31;
        const float dl = dq_load_half(b + 208) * (float)(int8_t)b[192 + (i0 >> 4)];
        const uint8_t *ql = b + 64 * h + 32 * (g & 1) + l0, *qh = b + 128 + 32 * h + l0;
        const int sh = g < 2 ? 0 : 4;
        const uint64_t ql8 = dq_load8(ql), qh8 = dq_load8(qh);
#pragma unroll
        for (int e = 0; e < 8; e++) {
            const int q = (int)(((ql8 >> (8 * e + sh)) & 0xF) | ((qh8 >> (8 * e + 2 * g)) & 3) << 4) - 32;
            y[e] = dl * (float)q;
        }
    } else if constexpr (TYPE == RWKV7_DTYPE_IQ4_XS) {
        const int sb = i0 >> 5, r0 = i0 & 31;
        const uint32_t ls = ((b[4 + (sb >> 1)] >> (4 * (sb & 1))) & 0xF) | ((dq_le16(b + 2) >> (2 * sb)) & 3) << 4;
        const float dl = dq_load_half(b) * (float)((int)ls - 32);
        const uint8_t *qs = b + 8 + 16 * sb + (r0 & 15);
        const int sh = r0 < 16 ? 0 : 4;
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = dl * (float)tb.iq4nl[(qs[e] >> sh) & 0xF];
    } else if constexpr (TYPE == RWKV7_DTYPE_IQ2_XXS) {
        const int sb = i0 >> 5, l = (i0 >> 3) & 3;
        const uint8_t *p = b + 2 + 8 * sb;
        const uint32_t a1 = dq_le32(p + 4);
        const float db = dq_load_half(b) * (0.5f + (float)(a1 >> 28)) * 0.25f;
        dq_grid8(tb.iq2xxs[p[l]], dq_signs7((a1 >> (7 * l)) & 127), db, y);
    } else if constexpr (TYPE == RWKV7_DTYPE_IQ2_XS) {
        const int gi = i0 >> 3, sb = gi >> 2, l = gi & 3;
        const uint32_t v = dq_le16(b + 2 + 2 * gi);
        const uint32_t s = l < 2 ? b[66 + sb] & 0xF : b[66 + sb] >> 4;
        const float db = dq_load_half(b) * (0.5f + (float)s) * 0.25f;
        dq_grid8(tb.iq2xs[v & 511], dq_signs7(v >> 9), db, y);
    } else if constexpr (TYPE == RWKV7_DTYPE_IQ2_S) {
        const int gi = i0 >> 3, sb = gi >> 2, l = gi & 3;
        const uint32_t idx = b[2 + gi] | ((b[66 + sb] >> (2 * l)) & 3) << 8;
        const uint32_t s = l < 2 ? b[74 + sb] & 0xF : b[74 + sb] >> 4;
        const float db = dq_load_half(b) * (0.5f + (float)s) * 0.25f;
        dq_grid8(tb.iq2s[idx], b[34 + gi], db, y);
    } else if constexpr (TYPE == RWKV7_DTYPE_IQ3_XXS) {
        const int sb = i0 >> 5, l = (i0 >> 3) & 3;
        const uint32_t w = dq_le32(b + 66 + 4 * sb);
        const float db = dq_load_half(b) * (0.5f + (float)(w >> 28)) * 0.5f;
        const uint32_t signs = dq_signs7((w >> (7 * l)) & 127);
        const uint32_t g0 = tb.iq3xxs[b[2 + 8 * sb + 2 * l]], g1 = tb.iq3xxs[b[2 + 8 * sb + 2 * l + 1]];
#pragma unroll
        for (int e = 0; e < 4; e++) {
            y[e] = db * (float)dq_byte(g0, e) * ((signs >> e) & 1 ? -1.0f : 1.0f);
            y[e + 4] = db * (float)dq_byte(g1, e) * ((signs >> (e + 4)) & 1 ? -1.0f : 1.0f);
        }
    } else if constexpr (TYPE == RWKV7_DTYPE_IQ3_S) {
        const int sb = i0 >> 5, l = (i0 >> 3) & 3;
        const uint32_t s = (b[106 + (sb >> 1)] >> (4 * (sb & 1))) & 0xF;
        const float db = dq_load_half(b) * (float)(1 + 2 * (int)s);
        const uint32_t qh = b[66 + sb], signs = b[74 + 4 * sb + l];
        const uint32_t i0x = b[2 + 8 * sb + 2 * l] | ((qh >> (2 * l)) & 1) << 8;
        const uint32_t i1x = b[2 + 8 * sb + 2 * l + 1] | ((qh >> (2 * l + 1)) & 1) << 8;
        const uint32_t g0 = tb.iq3s[i0x], g1 = tb.iq3s[i1x];
#pragma unroll
        for (int e = 0; e < 4; e++) {
            y[e] = db * (float)dq_byte(g0, e) * ((signs >> e) & 1 ? -1.0f : 1.0f);
            y[e + 4] = db * (float)dq_byte(g1, e) * ((signs >> (e + 4)) & 1 ? -1.0f : 1.0f);
        }
    } else if constexpr (TYPE == RWKV7_DTYPE_IQ1_S) {
        const int sb = i0 >> 5, l = (i0 >> 3) & 3;
        const uint32_t H = dq_le16(b + 34 + 2 * sb);
        const float dl = dq_load_half(b) * (float)(2 * ((H >> 12) & 7) + 1);
        const float delta = H & 0x8000 ? -0.125f : 0.125f;
        const uint64_t g = tb.iq1s[b[2 + 4 * sb + l] | ((H >> (3 * l)) & 7) << 8];
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = dl * ((float)(int8_t)dq_byte(g, e) + delta);
    } else if constexpr (TYPE == RWKV7_DTYPE_IQ1_M) {
        const int sb = i0 >> 5, l = (i0 >> 3) & 3;
        const uint32_t sc0 = dq_le16(b + 48), sc1 = dq_le16(b + 50), sc2 = dq_le16(b + 52), sc3 = dq_le16(b + 54);
        const float d = dq_half((sc0 >> 12) | (sc1 >> 12) << 4 | (sc2 >> 12) << 8 | (sc3 >> 12) << 12);
        const uint32_t w = dq_le16(b + 48 + 2 * (sb >> 1)) >> (6 * (sb & 1));
        const float dl = d * (float)(2 * (int)(l < 2 ? w & 7 : (w >> 3) & 7) + 1);
        const uint32_t N = (b[32 + 2 * sb + (l >> 1)] >> (4 * (l & 1))) & 0xF;
        const float delta = N & 8 ? -0.125f : 0.125f;
        const uint64_t g = tb.iq1s[b[4 * sb + l] | (N & 7) << 8];
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = dl * ((float)(int8_t)dq_byte(g, e) + delta);
    } else if constexpr (TYPE == RWKV7_DTYPE_TQ2_0) {
        const int h = i0 >> 7, g = (i0 & 127) >> 5, l0 = i0 & 31;
        const float d = dq_load_half(b + 64);
        const uint8_t *q = b + 32 * h + l0;
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = (float)((int)((q[e] >> (2 * g)) & 3) - 1) * d;
    } else if constexpr (TYPE == RWKV7_DTYPE_TQ1_0) {
        /* trit n of byte q: (((q * 3^n) mod 256) * 3) >> 8 */
        const float d = dq_load_half(b + 52);
        const uint8_t *q;
        uint32_t pw;
        int stride = 1;
        if (i0 < 160) {
            q = b + (i0 & 31);
            pw = i0 >> 5;
        } else if (i0 < 240) {
            q = b + 32 + ((i0 - 160) & 15);
            pw = (i0 - 160) >> 4;
        } else {
            q = b + 48; /* elements 240 + 4n + j: j = 0..3 picks qh[j], n the trit */
            pw = 0;
            stride = 0;
        }
        uint32_t p3 = 1;
        for (uint32_t n = 0; n < pw; n++) p3 *= 3;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            uint32_t byte, mul = p3;
            if (stride) {
                byte = q[e];
            } else {
                const int r = i0 - 240 + e; /* 0..15 */
                byte = q[r & 3];
                mul = 1;
                for (int n = 0; n < (r >> 2); n++) mul *= 3;
            }
            const uint32_t t = (((byte * mul) & 0xFF) * 3) >> 8;
            y[e] = (float)((int)t - 1) * d;
        }
    } else if constexpr (TYPE == RWKV7_DTYPE_Q1_0) {
        const float d = dq_load_half(b);
        const uint32_t bits = b[2 + j];
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = (bits >> e) & 1 ? d : -d;
    } else if constexpr (TYPE == RWKV7_DTYPE_Q2_0) {
        const float d = dq_load_half(b);
        const uint8_t *q = b + 2 + 2 * j;
#pragma unroll
        for (int e = 0; e < 8; e++) y[e] = (float)((int)((q[e >> 2] >> (2 * (e & 3))) & 3) - 1) * d;
    } else {
        static_assert(TYPE < 0, "dq8: type without a decoder");
    }
}

/* Elements 8g..8g+7 of a row that starts at row (g counts groups of 8 from the row start). */
template <int TYPE>
__host__ __device__ __forceinline__ void dq8_row(const uint8_t *row, int64_t g, float *y, const dq_tables &tb) {
    constexpr int gpb = dq_traits<TYPE>::block / 8; /* groups per block */
    dq8<TYPE>(row + (g / gpb) * dq_traits<TYPE>::bytes, (int)(g % gpb), y, tb);
}

#endif
