/* dtype_dequant.h: internal to the dtype table: the per-type row dequantizers that dtype.c puts
 * in its table, and the little-endian field loads they share. Each dequantizer matches ggml's
 * dequantize_row_<type> bit for bit (same float operations in the same order; the library is
 * built with -ffp-contract=off so no FMA is fused in). Block layouts: quant-formats.md section 3.
 * Blocks are mostly only 2-byte aligned, so fields are assembled from bytes, never cast-loaded. */
#ifndef RWKV7_DTYPE_DEQUANT_H
#define RWKV7_DTYPE_DEQUANT_H

#include <stdint.h>
#include <string.h>

static inline uint16_t rwkv7_le16(const uint8_t *p) {
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t rwkv7_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline float rwkv7_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half -> float, exact (subnormals, inf, nan); the hot path of every block decoder. */
static inline uint32_t rwkv7_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float rwkv7_half_f32(uint16_t h) {
    /* Branch-free so row loops vectorize, and without subnormal float arithmetic (which costs a
     * microcode assist of ~150 cycles on x86): normals rebias the exponent with an integer add,
     * inf/nan get exponent 255, subnormals are man * 2^-24 computed from an exact int -> float
     * conversion. Each case is selected with a mask. */
    uint32_t exp = h & 0x7C00, em = (uint32_t)(h & 0x7FFF) << 13;
    uint32_t normal = em + (112u << 23);
    uint32_t inf_nan = em | 0x7F800000u;
    uint32_t sub = rwkv7_f32_bits((float)(h & 0x3FF) * 0x1p-24f);
    uint32_t is_max = 0u - ((exp + 0x0400) >> 15); /* all ones iff exponent 31 */
    uint32_t is_zero = 0u - (uint32_t)(exp == 0);  /* all ones iff exponent 0 */
    uint32_t bits = (normal & ~(is_max | is_zero)) | (inf_nan & is_max) | (sub & is_zero);
    return rwkv7_bits_f32(bits | (uint32_t)(h & 0x8000) << 16);
}

static inline float rwkv7_load_half(const uint8_t *p) { return rwkv7_half_f32(rwkv7_le16(p)); }

/* float, half and bfloat16 rows (dtype.c) */
void rwkv7_dequant_f32(const void *src, float *dst, int64_t n);
void rwkv7_dequant_f16(const void *src, float *dst, int64_t n);
void rwkv7_dequant_bf16(const void *src, float *dst, int64_t n);
/* legacy 32-blocks, linear low-bit and FP4 types (dequant_legacy.c) */
void rwkv7_dequant_q4_0(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q4_1(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q5_0(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q5_1(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q8_0(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q1_0(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q2_0(const void *src, float *dst, int64_t n);
void rwkv7_dequant_mxfp4(const void *src, float *dst, int64_t n);
void rwkv7_dequant_nvfp4(const void *src, float *dst, int64_t n);
/* K-quants and ternary (dequant_k.c) */
void rwkv7_dequant_q2_k(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q3_k(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q4_k(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q5_k(const void *src, float *dst, int64_t n);
void rwkv7_dequant_q6_k(const void *src, float *dst, int64_t n);
void rwkv7_dequant_tq1_0(const void *src, float *dst, int64_t n);
void rwkv7_dequant_tq2_0(const void *src, float *dst, int64_t n);
/* IQ types (dequant_iq.c) */
void rwkv7_dequant_iq1_s(const void *src, float *dst, int64_t n);
void rwkv7_dequant_iq1_m(const void *src, float *dst, int64_t n);
void rwkv7_dequant_iq2_xxs(const void *src, float *dst, int64_t n);
void rwkv7_dequant_iq2_xs(const void *src, float *dst, int64_t n);
void rwkv7_dequant_iq2_s(const void *src, float *dst, int64_t n);
void rwkv7_dequant_iq3_xxs(const void *src, float *dst, int64_t n);
void rwkv7_dequant_iq3_s(const void *src, float *dst, int64_t n);
void rwkv7_dequant_iq4_nl(const void *src, float *dst, int64_t n);
void rwkv7_dequant_iq4_xs(const void *src, float *dst, int64_t n);

#endif
