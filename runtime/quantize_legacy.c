/* quantize_legacy.c: block writers for the 32-element types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and
 * IQ4_NL, the inverses of dequant_legacy.c / dequant_iq.c (quant-formats.md 3.2, 3.7). Scales are
 * fitted on floats, stored as fp16, and the codes are then rounded again against the stored fp16
 * value so the block decodes to the closest values its own scale can give. */
#include <string.h>

#include "iq_tables.h"
#include "quantize_impl.h"

/* Symmetric 32-blocks: fp16 d, then codes biased by -qmin, packed by pack(). */
static float sym_block(const float *x, int qmin, int qmax, int8_t q[32], uint16_t *dh) {
    const float d = rwkv7_qfit_sym(x, 32, qmin, qmax, q);
    *dh = rwkv7_f32_to_f16(d);
    const float ds = rwkv7_f16_to_f32(*dh);
    return rwkv7_qround_sym(x, 32, ds, qmin, qmax, q);
}

static void affine_block(const float *x, int qmax, uint8_t q[32], uint16_t *dh, uint16_t *mh) {
    float s, m;
    rwkv7_qfit_affine(x, 32, qmax, 0, q, &s, &m);
    *dh = rwkv7_f32_to_f16(s);
    *mh = rwkv7_f32_to_f16(m);
    rwkv7_qround_affine(x, 32, rwkv7_f16_to_f32(*dh), rwkv7_f16_to_f32(*mh), qmax, q);
}

/* Element j in the low nibble of byte j, element j + 16 in the high nibble. */
static void pack_nibbles(const uint8_t u[32], uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((u[j] & 0xF) | (u[j + 16] & 0xF) << 4);
}

/* Fifth bits: bit j of qh is element j's. */
static void put_high_bits(const uint8_t u[32], uint8_t *qh) {
    uint32_t h = 0;
    for (int j = 0; j < 32; j++) h |= (uint32_t)((u[j] >> 4) & 1) << j;
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
}

void rwkv7_quant_q4_0(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, b += 18) {
        int8_t q[32];
        uint8_t u[32];
        uint16_t dh;
        sym_block(x, -8, 7, q, &dh);
        for (int j = 0; j < 32; j++) u[j] = (uint8_t)(q[j] + 8);
        rwkv7_put16(b, dh);
        pack_nibbles(u, b + 2);
    }
}

void rwkv7_quant_q4_1(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, b += 20) {
        uint8_t u[32];
        uint16_t dh, mh;
        affine_block(x, 15, u, &dh, &mh);
        rwkv7_put16(b, dh);
        rwkv7_put16(b + 2, mh);
        pack_nibbles(u, b + 4);
    }
}

void rwkv7_quant_q5_0(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, b += 22) {
        int8_t q[32];
        uint8_t u[32];
        uint16_t dh;
        sym_block(x, -16, 15, q, &dh);
        for (int j = 0; j < 32; j++) u[j] = (uint8_t)(q[j] + 16);
        rwkv7_put16(b, dh);
        put_high_bits(u, b + 2);
        pack_nibbles(u, b + 6);
    }
}

void rwkv7_quant_q5_1(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, b += 24) {
        uint8_t u[32];
        uint16_t dh, mh;
        affine_block(x, 31, u, &dh, &mh);
        rwkv7_put16(b, dh);
        rwkv7_put16(b + 2, mh);
        put_high_bits(u, b + 4);
        pack_nibbles(u, b + 8);
    }
}

void rwkv7_quant_q8_0(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, b += 34) {
        int8_t q[32];
        uint16_t dh;
        sym_block(x, -128, 127, q, &dh);
        rwkv7_put16(b, dh);
        memcpy(b + 2, q, 32);
    }
}

void rwkv7_quant_iq4_nl(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, x += 32, b += 18) {
        uint8_t u[32];
        const float d = rwkv7_qfit_table(x, 32, rwkv7_kvalues_iq4nl, 16, u);
        const uint16_t dh = rwkv7_f32_to_f16(d);
        rwkv7_qround_table(x, 32, rwkv7_f16_to_f32(dh), rwkv7_kvalues_iq4nl, 16, u);
        rwkv7_put16(b, dh);
        pack_nibbles(u, b + 2);
    }
}
