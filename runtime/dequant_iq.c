/* dequant_iq.c: row dequantizers for the IQ types (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
 * IQ3_S, IQ4_NL, IQ4_XS). Bit-exact with ggml-quants.c dequantize_row_iq*: quant-formats.md
 * section 3.7, grids from iq_tables.c. Scale factors are formed in ggml's order, e.g.
 * d * (0.5f + s) * 0.25f, and each element is (scale * grid) * sign, so rounding matches. */
#include "dtype_dequant.h"
#include "iq_tables.h"

/* Byte j of a packed grid entry. */
#define GRID_U8(entry, j) ((float)(uint8_t)((entry) >> (8 * (j))))
#define GRID_I8(entry, j) ((float)(int8_t)(uint8_t)((entry) >> (8 * (j))))

/* +1 or -1 from sign bit j, without a branch (random signs defeat branch prediction); the
 * product with it is exact, so the result equals ggml's select. */
static inline float sign_of(unsigned signs, int j) { return 1.0f - 2.0f * (float)((signs >> j) & 1); }

void rwkv7_dequant_iq2_xxs(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 66) {
        const float d = rwkv7_load_half(b);
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *idx = b + 2 + 8 * ib;
            const uint32_t a1 = rwkv7_le32(idx + 4);
            const float db = d * (0.5f + (float)(a1 >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint64_t g = rwkv7_iq2xxs_grid[idx[l]];
                const unsigned signs = rwkv7_ksigns_iq2xs[(a1 >> (7 * l)) & 127];
                for (int j = 0; j < 8; j++) dst[j] = db * GRID_U8(g, j) * sign_of(signs, j);
            }
        }
    }
}

void rwkv7_dequant_iq2_xs(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 74) {
        const float d = rwkv7_load_half(b);
        const uint8_t *scales = b + 66;
        for (int ib = 0; ib < 8; ib++) {
            const float db[2] = {d * (0.5f + (float)(scales[ib] & 0xF)) * 0.25f,
                                 d * (0.5f + (float)(scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint16_t q = rwkv7_le16(b + 2 + 2 * (4 * ib + l));
                const uint64_t g = rwkv7_iq2xs_grid[q & 511];
                const unsigned signs = rwkv7_ksigns_iq2xs[q >> 9];
                for (int j = 0; j < 8; j++) dst[j] = db[l / 2] * GRID_U8(g, j) * sign_of(signs, j);
            }
        }
    }
}

void rwkv7_dequant_iq2_s(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 82) {
        const float d = rwkv7_load_half(b);
        const uint8_t *qs = b + 2, *signs = b + 34, *qh = b + 66, *scales = b + 74;
        for (int ib = 0; ib < 8; ib++) {
            const float db[2] = {d * (0.5f + (float)(scales[ib] & 0xF)) * 0.25f,
                                 d * (0.5f + (float)(scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++, dst += 8) {
                const unsigned index = qs[4 * ib + l] | ((qh[ib] >> (2 * l)) & 3u) << 8;
                const uint64_t g = rwkv7_iq2s_grid[index];
                const unsigned s = signs[4 * ib + l];
                for (int j = 0; j < 8; j++) dst[j] = db[l / 2] * GRID_U8(g, j) * sign_of(s, j);
            }
        }
    }
}

void rwkv7_dequant_iq3_xxs(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 98) {
        const float d = rwkv7_load_half(b);
        const uint8_t *qs = b + 2;
        for (int ib = 0; ib < 8; ib++, qs += 8) {
            const uint32_t w = rwkv7_le32(b + 66 + 4 * ib);
            const float db = d * (0.5f + (float)(w >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint32_t g1 = rwkv7_iq3xxs_grid[qs[2 * l]], g2 = rwkv7_iq3xxs_grid[qs[2 * l + 1]];
                const unsigned signs = rwkv7_ksigns_iq2xs[(w >> (7 * l)) & 127];
                for (int j = 0; j < 4; j++) {
                    dst[j] = db * GRID_U8(g1, j) * sign_of(signs, j);
                    dst[j + 4] = db * GRID_U8(g2, j) * sign_of(signs, j + 4);
                }
            }
        }
    }
}

void rwkv7_dequant_iq3_s(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 110) {
        const float d = rwkv7_load_half(b);
        const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *scales = b + 106;
        for (int ib = 0; ib < 8; ib++) {
            const float db = d * (float)(1 + 2 * ((scales[ib / 2] >> (4 * (ib % 2))) & 0xF));
            for (int l = 0; l < 4; l++, dst += 8) {
                const unsigned i1 = qs[8 * ib + 2 * l] | ((qh[ib] >> (2 * l)) & 1u) << 8;
                const unsigned i2 = qs[8 * ib + 2 * l + 1] | ((qh[ib] >> (2 * l + 1)) & 1u) << 8;
                const uint32_t g1 = rwkv7_iq3s_grid[i1], g2 = rwkv7_iq3s_grid[i2];
                const unsigned s = signs[4 * ib + l];
                for (int j = 0; j < 4; j++) {
                    dst[j] = db * GRID_U8(g1, j) * sign_of(s, j);
                    dst[j + 4] = db * GRID_U8(g2, j) * sign_of(s, j + 4);
                }
            }
        }
    }
}

/* IQ1S_DELTA of ggml-common.h: the grid's {-1, 0, 1} are shifted by +-1/8. */
#define IQ1_DELTA 0.125f

void rwkv7_dequant_iq1_s(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 50) {
        const float d = rwkv7_load_half(b);
        const uint8_t *qs = b + 2;
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t h = rwkv7_le16(b + 34 + 2 * ib);
            const float dl = d * (float)(2 * ((h >> 12) & 7) + 1);
            const float delta = h & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
            for (int l = 0; l < 4; l++, dst += 8) {
                const uint64_t g = rwkv7_iq1s_grid[qs[4 * ib + l] | ((h >> (3 * l)) & 7u) << 8];
                for (int j = 0; j < 8; j++) dst[j] = dl * (GRID_I8(g, j) + delta);
            }
        }
    }
}

void rwkv7_dequant_iq1_m(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 56) {
        const uint8_t *qs = b, *qh = b + 32;
        uint16_t sc[4];
        for (int k = 0; k < 4; k++) sc[k] = rwkv7_le16(b + 48 + 2 * k);
        /* the fp16 super-scale is spread over the top nibbles of the four scale words */
        const float d = rwkv7_half_f32((uint16_t)((sc[0] >> 12) | (sc[1] >> 12) << 4 |
                                                  (sc[2] >> 12) << 8 | (sc[3] >> 12) << 12));
        for (int ib = 0; ib < 8; ib++) {
            const unsigned w = sc[ib / 2] >> (6 * (ib % 2));
            const float dl[2] = {d * (float)(2 * (w & 7) + 1), d * (float)(2 * ((w >> 3) & 7) + 1)};
            for (int l = 0; l < 4; l++, dst += 8) {
                const unsigned nib = (qh[2 * ib + l / 2] >> (4 * (l % 2))) & 0xF;
                const uint64_t g = rwkv7_iq1s_grid[qs[4 * ib + l] | (nib & 7) << 8];
                const float delta = nib & 8 ? -IQ1_DELTA : IQ1_DELTA;
                for (int j = 0; j < 8; j++) dst[j] = dl[l / 2] * (GRID_I8(g, j) + delta);
            }
        }
    }
}

void rwkv7_dequant_iq4_nl(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 18, dst += 32) {
        const float d = rwkv7_load_half(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = d * (float)rwkv7_kvalues_iq4nl[qs[j] & 0xF];
            dst[j + 16] = d * (float)rwkv7_kvalues_iq4nl[qs[j] >> 4];
        }
    }
}

void rwkv7_dequant_iq4_xs(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 136) {
        const float d = rwkv7_load_half(b);
        const uint16_t scales_h = rwkv7_le16(b + 2);
        const uint8_t *scales_l = b + 4, *qs = b + 8;
        for (int ib = 0; ib < 8; ib++, qs += 16, dst += 32) {
            const int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | ((scales_h >> (2 * ib)) & 3) << 4;
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                dst[j] = dl * (float)rwkv7_kvalues_iq4nl[qs[j] & 0xF];
                dst[j + 16] = dl * (float)rwkv7_kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}
