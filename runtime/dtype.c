/* dtype.c: the GGUF/ggml type table (ids, names, block sizes and bytes per block exactly as
 * ggml.c's type_traits and quant-formats.md section 2), name lookup, row sizes, and the scalar
 * IEEE half / bfloat16 conversions (ggml-impl.h semantics: subnormals kept, round to nearest
 * even, NaN stays NaN). The block dequantizers live in dequant_{legacy,k,iq}.c. */
#include <stdio.h>

#include "dtype.h"
#include "dtype_dequant.h"

/* Ids 4, 5, 31-33 and 36-38 were removed from ggml; their rows stay zero (block 0). */
static const struct rwkv7_dtype_info g_dtypes[RWKV7_DTYPE_COUNT] = {
    [RWKV7_DTYPE_F32] = {"f32", 1, 4, rwkv7_dequant_f32},
    [RWKV7_DTYPE_F16] = {"f16", 1, 2, rwkv7_dequant_f16},
    [RWKV7_DTYPE_Q4_0] = {"q4_0", 32, 18, rwkv7_dequant_q4_0},
    [RWKV7_DTYPE_Q4_1] = {"q4_1", 32, 20, rwkv7_dequant_q4_1},
    [RWKV7_DTYPE_Q5_0] = {"q5_0", 32, 22, rwkv7_dequant_q5_0},
    [RWKV7_DTYPE_Q5_1] = {"q5_1", 32, 24, rwkv7_dequant_q5_1},
    [RWKV7_DTYPE_Q8_0] = {"q8_0", 32, 34, rwkv7_dequant_q8_0},
    [RWKV7_DTYPE_Q8_1] = {"q8_1", 32, 36, NULL},
    [RWKV7_DTYPE_Q2_K] = {"q2_K", 256, 84, rwkv7_dequant_q2_k},
    [RWKV7_DTYPE_Q3_K] = {"q3_K", 256, 110, rwkv7_dequant_q3_k},
    [RWKV7_DTYPE_Q4_K] = {"q4_K", 256, 144, rwkv7_dequant_q4_k},
    [RWKV7_DTYPE_Q5_K] = {"q5_K", 256, 176, rwkv7_dequant_q5_k},
    [RWKV7_DTYPE_Q6_K] = {"q6_K", 256, 210, rwkv7_dequant_q6_k},
    [RWKV7_DTYPE_Q8_K] = {"q8_K", 256, 292, NULL},
    [RWKV7_DTYPE_IQ2_XXS] = {"iq2_xxs", 256, 66, rwkv7_dequant_iq2_xxs},
    [RWKV7_DTYPE_IQ2_XS] = {"iq2_xs", 256, 74, rwkv7_dequant_iq2_xs},
    [RWKV7_DTYPE_IQ3_XXS] = {"iq3_xxs", 256, 98, rwkv7_dequant_iq3_xxs},
    [RWKV7_DTYPE_IQ1_S] = {"iq1_s", 256, 50, rwkv7_dequant_iq1_s},
    [RWKV7_DTYPE_IQ4_NL] = {"iq4_nl", 32, 18, rwkv7_dequant_iq4_nl},
    [RWKV7_DTYPE_IQ3_S] = {"iq3_s", 256, 110, rwkv7_dequant_iq3_s},
    [RWKV7_DTYPE_IQ2_S] = {"iq2_s", 256, 82, rwkv7_dequant_iq2_s},
    [RWKV7_DTYPE_IQ4_XS] = {"iq4_xs", 256, 136, rwkv7_dequant_iq4_xs},
    [RWKV7_DTYPE_I8] = {"i8", 1, 1, NULL},
    [RWKV7_DTYPE_I16] = {"i16", 1, 2, NULL},
    [RWKV7_DTYPE_I32] = {"i32", 1, 4, NULL},
    [RWKV7_DTYPE_I64] = {"i64", 1, 8, NULL},
    [RWKV7_DTYPE_F64] = {"f64", 1, 8, NULL},
    [RWKV7_DTYPE_IQ1_M] = {"iq1_m", 256, 56, rwkv7_dequant_iq1_m},
    [RWKV7_DTYPE_BF16] = {"bf16", 1, 2, rwkv7_dequant_bf16},
    [RWKV7_DTYPE_TQ1_0] = {"tq1_0", 256, 54, rwkv7_dequant_tq1_0},
    [RWKV7_DTYPE_TQ2_0] = {"tq2_0", 256, 66, rwkv7_dequant_tq2_0},
    [RWKV7_DTYPE_MXFP4] = {"mxfp4", 32, 17, rwkv7_dequant_mxfp4},
    [RWKV7_DTYPE_NVFP4] = {"nvfp4", 64, 36, rwkv7_dequant_nvfp4},
    [RWKV7_DTYPE_Q1_0] = {"q1_0", 128, 18, rwkv7_dequant_q1_0},
    [RWKV7_DTYPE_Q2_0] = {"q2_0", 64, 18, rwkv7_dequant_q2_0},
};

const struct rwkv7_dtype_info *rwkv7_dtype_get(int type) {
    if (type < 0 || type >= RWKV7_DTYPE_COUNT || g_dtypes[type].block == 0) return NULL;
    return &g_dtypes[type];
}

bool rwkv7_dtype_is_weight(int type) {
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(type);
    return info && info->to_f32;
}

const char *rwkv7_dtype_name(int type) {
    static _Thread_local char buf[24];
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(type);
    if (info) return info->name;
    snprintf(buf, sizeof buf, "type%d", type);
    return buf;
}

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

int rwkv7_dtype_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < RWKV7_DTYPE_COUNT; t++) {
        const char *a = g_dtypes[t].name, *b = name;
        if (!a) continue;
        while (*a && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) a++, b++;
        if (*a == 0 && *b == 0) return t;
    }
    return -1;
}

size_t rwkv7_dtype_row_bytes(int type, int64_t ne0) {
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(type);
    if (!info || ne0 < 0 || ne0 % info->block != 0) return 0;
    return (size_t)(ne0 / info->block) * (size_t)info->type_size;
}

float rwkv7_f16_to_f32(uint16_t h) { return rwkv7_half_f32(h); }

uint16_t rwkv7_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00 | ((ax >> 13) & 0x3FF)); /* quiet NaN */
    /* 65520 is the midpoint between 65504 (odd mantissa) and 2^16, so it and above go to inf */
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00);
    uint32_t q, rem, half;
    if (ax >= 0x38800000u) { /* normal half: rebias the exponent, round 13 mantissa bits off */
        uint32_t v = ax - 0x38000000u;
        q = v >> 13;
        rem = v & 0x1FFF;
        half = 0x1000;
    } else {
        if (ax <= 0x33000000u) return sign; /* at most 2^-25: ties to the even zero */
        /* subnormal half: count units of 2^-24; a carry into 0x400 yields the smallest normal */
        uint32_t e = ax >> 23, m = (ax & 0x7FFFFF) | 0x800000, shift = 126 - e;
        q = m >> shift;
        rem = m & ((1u << shift) - 1);
        half = 1u << (shift - 1);
    }
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

float rwkv7_bf16_to_f32(uint16_t h) { return rwkv7_bits_f32((uint32_t)h << 16); }

uint16_t rwkv7_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40); /* force quiet */
    return (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

void rwkv7_dequant_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void rwkv7_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = rwkv7_load_half(p + 2 * i);
}

void rwkv7_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = rwkv7_bits_f32((uint32_t)rwkv7_le16(p + 2 * i) << 16);
}
