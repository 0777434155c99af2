/* dequant_legacy.c: row dequantizers for the 32-element legacy blocks (Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0), the linear low-bit blocks (Q1_0, Q2_0) and the microscaled FP4 blocks (MXFP4, NVFP4).
 * Bit-exact with ggml-quants.c dequantize_row_*: quant-formats.md sections 3.2-3.4. Each product
 * is written in ggml's operand order so the float rounding is the same. */
#include "dtype_dequant.h"
#include "iq_tables.h"

void rwkv7_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 18, dst += 32) {
        const float d = rwkv7_load_half(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((qs[j] & 0xF) - 8) * d;
            dst[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

void rwkv7_dequant_q4_1(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 20, dst += 32) {
        const float d = rwkv7_load_half(b), m = rwkv7_load_half(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)(qs[j] & 0xF) * d + m;
            dst[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

void rwkv7_dequant_q5_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 22, dst += 32) {
        const float d = rwkv7_load_half(b);
        const uint32_t qh = rwkv7_le32(b + 2);
        const uint8_t *qs = b + 6;
        for (int j = 0; j < 16; j++) {
            const int lo = (int)((qs[j] & 0xF) | ((qh >> j) & 1) << 4);
            const int hi = (int)((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
            dst[j] = (float)(lo - 16) * d;
            dst[j + 16] = (float)(hi - 16) * d;
        }
    }
}

void rwkv7_dequant_q5_1(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 24, dst += 32) {
        const float d = rwkv7_load_half(b), m = rwkv7_load_half(b + 2);
        const uint32_t qh = rwkv7_le32(b + 4);
        const uint8_t *qs = b + 8;
        for (int j = 0; j < 16; j++) {
            const unsigned lo = (qs[j] & 0xFu) | ((qh >> j) & 1) << 4;
            const unsigned hi = (qs[j] >> 4u) | ((qh >> (j + 16)) & 1) << 4;
            dst[j] = (float)lo * d + m;
            dst[j + 16] = (float)hi * d + m;
        }
    }
}

void rwkv7_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 34, dst += 32) {
        const float d = rwkv7_load_half(b);
        for (int j = 0; j < 32; j++) dst[j] = (float)(int8_t)b[2 + j] * d;
    }
}

/* Q1_0 and Q2_0 pack elements LSB-first in sequence, unlike the half-split nibble order above. */
void rwkv7_dequant_q1_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 128; i++, b += 18, dst += 128) {
        /* +d or -d by flipping the sign bit when the bit is clear: branch-free, same bits */
        uint32_t dbits;
        const float d = rwkv7_load_half(b);
        memcpy(&dbits, &d, sizeof dbits);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 128; j++)
            dst[j] = rwkv7_bits_f32(dbits ^ (uint32_t)(~(qs[j >> 3] >> (j & 7)) & 1) << 31);
    }
}

void rwkv7_dequant_q2_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 64; i++, b += 18, dst += 64) {
        const float d = rwkv7_load_half(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 64; j++) dst[j] = (float)((int)((qs[j >> 2] >> 2 * (j & 3)) & 3) - 1) * d;
    }
}

/* E8M0 scale, halved to pair with the doubled FP4 table: 2^(e-128). e = 0 and 1 give the float
 * subnormals 2^-128 and 2^-127; 0xFF is not NaN here, as in ggml. */
static inline float e8m0_half(uint8_t e) {
    return rwkv7_bits_f32(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

void rwkv7_dequant_mxfp4(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 17, dst += 32) {
        const float d = e8m0_half(b[0]);
        const uint8_t *qs = b + 1;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)rwkv7_kvalues_mxfp4[qs[j] & 0xF] * d;
            dst[j + 16] = (float)rwkv7_kvalues_mxfp4[qs[j] >> 4] * d;
        }
    }
}

/* UE4M3 scale halved (pairs with the doubled FP4 table). 0 and the NaN code 0x7F decode to 0 and
 * bit 7 is ignored, as in ggml; every value is exact in float. */
static inline float ue4m3_half(uint8_t u) {
    const unsigned e = (u >> 3) & 0xF, m = u & 7;
    if (u == 0 || u == 0x7F) return 0.0f;
    if (e == 0) return (float)m * 0x1p-10f;
    return rwkv7_bits_f32((e + 119) << 23 | m << 20);
}

void rwkv7_dequant_nvfp4(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 64; i++, b += 36, dst += 64) {
        for (int s = 0; s < 4; s++) {
            const float d = ue4m3_half(b[s]);
            const uint8_t *qs = b + 4 + 8 * s;
            float *y = dst + 16 * s;
            for (int j = 0; j < 8; j++) {
                y[j] = (float)rwkv7_kvalues_mxfp4[qs[j] & 0xF] * d;
                y[j + 8] = (float)rwkv7_kvalues_mxfp4[qs[j] >> 4] * d;
            }
        }
    }
}
