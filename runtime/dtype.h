/* dtype.h: the GGUF/ggml tensor type table (ids as in ggml.h) and host dequantization.
 * One table row per type: name, block size, bytes per block, and a row dequantizer that is
 * bit-exact with ggml's dequantize_row_* (checked by tests/test_dequant.c against
 * tests/data/dequant). Block layouts: docs/spec/quant-formats.md section 3. */
#ifndef RWKV7_DTYPE_H
#define RWKV7_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rwkv7_dtype {
    RWKV7_DTYPE_F32 = 0,
    RWKV7_DTYPE_F16 = 1,
    RWKV7_DTYPE_Q4_0 = 2,
    RWKV7_DTYPE_Q4_1 = 3,
    RWKV7_DTYPE_Q5_0 = 6,
    RWKV7_DTYPE_Q5_1 = 7,
    RWKV7_DTYPE_Q8_0 = 8,
    RWKV7_DTYPE_Q8_1 = 9,
    RWKV7_DTYPE_Q2_K = 10,
    RWKV7_DTYPE_Q3_K = 11,
    RWKV7_DTYPE_Q4_K = 12,
    RWKV7_DTYPE_Q5_K = 13,
    RWKV7_DTYPE_Q6_K = 14,
    RWKV7_DTYPE_Q8_K = 15,
    RWKV7_DTYPE_IQ2_XXS = 16,
    RWKV7_DTYPE_IQ2_XS = 17,
    RWKV7_DTYPE_IQ3_XXS = 18,
    RWKV7_DTYPE_IQ1_S = 19,
    RWKV7_DTYPE_IQ4_NL = 20,
    RWKV7_DTYPE_IQ3_S = 21,
    RWKV7_DTYPE_IQ2_S = 22,
    RWKV7_DTYPE_IQ4_XS = 23,
    RWKV7_DTYPE_I8 = 24,
    RWKV7_DTYPE_I16 = 25,
    RWKV7_DTYPE_I32 = 26,
    RWKV7_DTYPE_I64 = 27,
    RWKV7_DTYPE_F64 = 28,
    RWKV7_DTYPE_IQ1_M = 29,
    RWKV7_DTYPE_BF16 = 30,
    RWKV7_DTYPE_TQ1_0 = 34,
    RWKV7_DTYPE_TQ2_0 = 35,
    RWKV7_DTYPE_MXFP4 = 39,
    RWKV7_DTYPE_NVFP4 = 40,
    RWKV7_DTYPE_Q1_0 = 41,
    RWKV7_DTYPE_Q2_0 = 42,
    RWKV7_DTYPE_COUNT = 43,
};

/* Every weight type, once, with the GPU backends that run it (1) or not (0) in matmul and embed;
 * the CPU runs all of them. Fed to the CPU and CUDA support checks, CUDA's kernel instantiations
 * (cuda/dequant.cuh), the Vulkan shader variants (vulkan/vulkan.cmake parses these lines: keep one
 * entry per line), tests/test_ops.c and `rwkv7 devices --types`. Why a backend lacks a type:
 * README.md, "Weight types". Columns: M(TYPE, name, cuda, vulkan, a); a is passed through. */
#define RWKV7_WEIGHT_TYPE_LIST(M, a) \
    M(F32, f32, 1, 1, a) \
    M(F16, f16, 1, 1, a) \
    M(BF16, bf16, 1, 1, a) \
    M(Q4_0, q4_0, 1, 1, a) \
    M(Q4_1, q4_1, 1, 1, a) \
    M(Q5_0, q5_0, 1, 1, a) \
    M(Q5_1, q5_1, 1, 1, a) \
    M(Q8_0, q8_0, 1, 1, a) \
    M(Q2_K, q2_k, 1, 1, a) \
    M(Q3_K, q3_k, 1, 1, a) \
    M(Q4_K, q4_k, 1, 1, a) \
    M(Q5_K, q5_k, 1, 1, a) \
    M(Q6_K, q6_k, 1, 1, a) \
    M(IQ4_NL, iq4_nl, 1, 1, a) \
    M(IQ4_XS, iq4_xs, 1, 1, a) \
    M(IQ3_XXS, iq3_xxs, 1, 1, a) \
    M(IQ3_S, iq3_s, 1, 1, a) \
    M(IQ2_XXS, iq2_xxs, 1, 1, a) \
    M(IQ2_XS, iq2_xs, 1, 1, a) \
    M(IQ2_S, iq2_s, 1, 1, a) \
    M(IQ1_S, iq1_s, 1, 1, a) \
    M(IQ1_M, iq1_m, 1, 1, a) \
    M(TQ1_0, tq1_0, 1, 0, a) \
    M(TQ2_0, tq2_0, 1, 0, a) \
    M(Q1_0, q1_0, 1, 0, a) \
    M(Q2_0, q2_0, 1, 0, a) \
    M(MXFP4, mxfp4, 0, 0, a) \
    M(NVFP4, nvfp4, 0, 0, a)

/* X(TYPE) for every weight type / for those a GPU backend runs. */
#define RWKV7_WEIGHT_ALL_(T, n, cu, vk, X) X(T)
#define RWKV7_WEIGHT_CUDA_(T, n, cu, vk, X) RWKV7_WEIGHT_IF_##cu(X, T)
#define RWKV7_WEIGHT_VULKAN_(T, n, cu, vk, X) RWKV7_WEIGHT_IF_##vk(X, T)
#define RWKV7_WEIGHT_IF_1(X, T) X(T)
#define RWKV7_WEIGHT_IF_0(X, T)
#define RWKV7_WEIGHT_TYPES(X) RWKV7_WEIGHT_TYPE_LIST(RWKV7_WEIGHT_ALL_, X)
#define RWKV7_CUDA_WEIGHT_TYPES(X) RWKV7_WEIGHT_TYPE_LIST(RWKV7_WEIGHT_CUDA_, X)
#define RWKV7_VULKAN_WEIGHT_TYPES(X) RWKV7_WEIGHT_TYPE_LIST(RWKV7_WEIGHT_VULKAN_, X)

/* Dequantize n elements (a multiple of the block size) starting at a block boundary. */
typedef void (*rwkv7_to_f32_fn)(const void *src, float *dst, int64_t n);

struct rwkv7_dtype_info {
    const char *name;       /* ggml's name: "f32", "q4_K", "iq3_s" */
    int block;              /* elements per block; 0 for removed ids */
    int type_size;          /* bytes per block */
    rwkv7_to_f32_fn to_f32; /* NULL for types that cannot hold weights (Q8_1, Q8_K, I*, F64) */
};

/* Row of the table for a GGUF type id, or NULL for ids that are unknown (>= COUNT) or removed
 * (block size 0: 4, 5, 31-33, 36-38). */
const struct rwkv7_dtype_info *rwkv7_dtype_get(int type);
/* True when the type can be a weight: known, not removed, and has a dequantizer. */
bool rwkv7_dtype_is_weight(int type);
/* Name for messages; "type<N>" style text for unknown ids (static buffer per thread). */
const char *rwkv7_dtype_name(int type);
/* Lookup by ggml name, case-insensitive ("q4_k" == "q4_K"); -1 when unknown. */
int rwkv7_dtype_from_name(const char *name);
/* Bytes of a row of ne0 elements; 0 when ne0 is not a multiple of the block. */
size_t rwkv7_dtype_row_bytes(int type, int64_t ne0);

/* Scalar conversions (IEEE half with subnormals/inf/nan; bf16 = upper half of f32). */
float rwkv7_f16_to_f32(uint16_t h);
uint16_t rwkv7_f32_to_f16(float f);    /* round to nearest even */
float rwkv7_bf16_to_f32(uint16_t h);
uint16_t rwkv7_f32_to_bf16(float f);   /* round to nearest even, NaN kept quiet */

#endif
