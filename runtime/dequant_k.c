/* dequant_k.c: row dequantizers for the 256-element K-quant super-blocks (Q2_K..Q6_K) and the
 * ternary blocks (TQ1_0, TQ2_0). Bit-exact with ggml-quants.c dequantize_row_*: quant-formats.md
 * sections 3.5-3.6. The per-sub-block factors (d*sc, dmin*mn) are rounded to float first and
 * then applied, as ggml does, so the result is the same bits. */
#include "dtype_dequant.h"

void rwkv7_dequant_q2_k(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 84) {
        const uint8_t *scales = b, *q = b + 16;
        const float d = rwkv7_load_half(b + 80), dmin = rwkv7_load_half(b + 82);
        for (int h = 0; h < 2; h++, q += 32) {
            for (int g = 0; g < 4; g++) {
                for (int half = 0; half < 2; half++) {
                    const uint8_t sc = *scales++;
                    const float dl = d * (float)(sc & 0xF), ml = dmin * (float)(sc >> 4);
                    const uint8_t *qq = q + 16 * half;
                    for (int l = 0; l < 16; l++) *dst++ = dl * (float)((qq[l] >> 2 * g) & 3) - ml;
                }
            }
        }
    }
}

/* The 16 signed 6-bit Q3_K scales: low nibbles in bytes 0-7, two high bits each in bytes 8-11. */
static inline void q3_k_scales(const uint8_t *s, int out[16]) {
    for (int k = 0; k < 16; k++) {
        const int low4 = k < 8 ? s[k] & 0xF : s[k - 8] >> 4;
        const int high2 = (s[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
        out[k] = (low4 | high2 << 4) - 32;
    }
}

void rwkv7_dequant_q3_k(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 110) {
        const uint8_t *hmask = b, *q = b + 32;
        const float d = rwkv7_load_half(b + 108);
        int sc[16];
        q3_k_scales(b + 96, sc);
        int is = 0;
        unsigned bit = 0;
        for (int h = 0; h < 2; h++, q += 32) {
            for (int g = 0; g < 4; g++, bit++) {
                for (int half = 0; half < 2; half++) {
                    const float dl = d * (float)sc[is++];
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        const int q2 = (q[l] >> 2 * g) & 3;
                        *dst++ = dl * (float)(q2 - ((hmask[l] >> bit) & 1 ? 0 : 4));
                    }
                }
            }
        }
    }
}

/* 6-bit scale and min of sub-block j (ggml's get_scale_min_k4). */
static inline void k4_scale_min(int j, const uint8_t *s, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

void rwkv7_dequant_q4_k(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 144) {
        const float d = rwkv7_load_half(b), dmin = rwkv7_load_half(b + 2);
        const uint8_t *scales = b + 4, *q = b + 16;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc, mn;
            k4_scale_min(2 * c, scales, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(2 * c + 1, scales, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void rwkv7_dequant_q5_k(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 176) {
        const float d = rwkv7_load_half(b), dmin = rwkv7_load_half(b + 2);
        const uint8_t *scales = b + 4, *qh = b + 16, *q = b + 48;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc, mn;
            k4_scale_min(2 * c, scales, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(2 * c + 1, scales, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * (float)((q[l] & 0xF) + ((qh[l] >> (2 * c)) & 1) * 16) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * (float)((q[l] >> 4) + ((qh[l] >> (2 * c + 1)) & 1) * 16) - m2;
        }
    }
}

void rwkv7_dequant_q6_k(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 210, dst += 256) {
        const uint8_t *ql = b, *qh = b + 128, *sb = b + 192;
        const float d = rwkv7_load_half(b + 208);
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sb += 8) {
            float *y = dst + 128 * h;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                /* (d * sc) * q, in ggml's left-to-right order */
                y[l] = d * (float)(int8_t)sb[is] * (float)q1;
                y[l + 32] = d * (float)(int8_t)sb[is + 2] * (float)q2;
                y[l + 64] = d * (float)(int8_t)sb[is + 4] * (float)q3;
                y[l + 96] = d * (float)(int8_t)sb[is + 6] * (float)q4;
            }
        }
    }
}

/* Trit n of a base-3 fixed-point byte: multiply by 3^n (mod 256) to bring it to the top, then
 * scale the top by 3. */
static inline int tq1_trit(uint8_t byte, int n) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t q = (uint8_t)(byte * pow3[n]);
    return (q * 3) >> 8;
}

void rwkv7_dequant_tq1_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 54) {
        const uint8_t *qs = b, *qh = b + 48;
        const float d = rwkv7_load_half(b + 52);
        for (int t = 0; t < 5; t++)
            for (int m = 0; m < 32; m++) *dst++ = (float)(tq1_trit(qs[m], t) - 1) * d;
        for (int t = 0; t < 5; t++)
            for (int m = 0; m < 16; m++) *dst++ = (float)(tq1_trit(qs[32 + m], t) - 1) * d;
        for (int t = 0; t < 4; t++)
            for (int j = 0; j < 4; j++) *dst++ = (float)(tq1_trit(qh[j], t) - 1) * d;
    }
}

void rwkv7_dequant_tq2_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 66) {
        const float d = rwkv7_load_half(b + 64);
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 4; g++)
                for (int l = 0; l < 32; l++)
                    *dst++ = (float)((int)((b[32 * h + l] >> 2 * g) & 3) - 1) * d;
    }
}
