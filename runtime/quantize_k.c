/* quantize_k.c: block writers for the 256-element K-quants (Q2_K..Q6_K) and the ternary types
 * (TQ1_0, TQ2_0), the inverses of dequant_k.c (quant-formats.md 3.5-3.6). K-quants fit each
 * sub-block's scale (and min) on floats, quantize those against one fp16 super-scale, then try the
 * neighbouring integer sub-scales and keep the one whose requantized sub-block has the lowest
 * squared error: the super-scale quantization is where most of the K-quant error beyond plain
 * rounding comes from. */
#include <stdlib.h>
#include <string.h>

#include "quantize_impl.h"

/* Symmetric sub-blocks y = (d * sc[j]) * q, sc in [scmin, scmax], q in [qmin, qmax]. Writes q
 * (256 codes, unbiased), sc and the fp16 d. */
static void k_sym(const float *x, int nsub, int len, int qmin, int qmax, int scmin, int scmax, int8_t *q,
                  int *sc, uint16_t *dh) {
    float s[16], smax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        s[j] = rwkv7_qfit_sym(x + j * len, len, qmin, qmax, q + j * len);
        if (fabsf(s[j]) > fabsf(smax)) smax = s[j];
    }
    *dh = rwkv7_f32_to_f16(smax / (float)scmin);
    const float d = rwkv7_f16_to_f32(*dh);
    int8_t tq[32];
    for (int j = 0; j < nsub; j++) {
        const float *xj = x + j * len;
        const int c = d != 0.0f ? rwkv7_qclamp(rwkv7_qround(s[j] / d), scmin, scmax) : 0;
        float best = INFINITY;
        sc[j] = c;
        for (int t = c - 1; t <= c + 1; t++) {
            if (t < scmin || t > scmax) continue;
            const float err = rwkv7_qround_sym(xj, len, d * (float)t, qmin, qmax, tq);
            if (err < best) best = err, sc[j] = t, memcpy(q + j * len, tq, (size_t)len);
        }
    }
}

/* Affine sub-blocks y = (d * sc[j]) * q - dmin * mn[j], sc and mn in [0, scmax], q in [0, qmax]. */
static void k_affine(const float *x, int nsub, int len, int qmax, int scmax, uint8_t *q, int *sc, int *mn,
                     uint16_t *dh, uint16_t *mh) {
    float s[16], m[16], smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        rwkv7_qfit_affine(x + j * len, len, qmax, 1, q + j * len, &s[j], &m[j]);
        m[j] = -m[j];
        if (s[j] > smax) smax = s[j];
        if (m[j] > mmax) mmax = m[j];
    }
    *dh = rwkv7_f32_to_f16(smax / (float)scmax);
    *mh = rwkv7_f32_to_f16(mmax / (float)scmax);
    const float d = rwkv7_f16_to_f32(*dh), dmin = rwkv7_f16_to_f32(*mh);
    uint8_t tq[32];
    for (int j = 0; j < nsub; j++) {
        const float *xj = x + j * len;
        const int c = d > 0.0f ? rwkv7_qclamp(rwkv7_qround(s[j] / d), 0, scmax) : 0;
        const int cm = dmin > 0.0f ? rwkv7_qclamp(rwkv7_qround(m[j] / dmin), 0, scmax) : 0;
        float best = INFINITY;
        sc[j] = c, mn[j] = cm;
        for (int t = c - 1; t <= c + 1; t++) {
            for (int u = cm - 1; u <= cm + 1; u++) {
                if (t < 0 || t > scmax || u < 0 || u > scmax) continue;
                const float err = rwkv7_qround_affine(xj, len, d * (float)t, -(dmin * (float)u), qmax, tq);
                if (err < best) best = err, sc[j] = t, mn[j] = u, memcpy(q + j * len, tq, (size_t)len);
            }
        }
    }
}

void rwkv7_quant_q2_k(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 84) {
        uint8_t q[256];
        int sc[16], mn[16];
        uint16_t dh, mh;
        k_affine(x, 16, 16, 3, 15, q, sc, mn, &dh, &mh);
        for (int j = 0; j < 16; j++) b[j] = (uint8_t)(sc[j] | mn[j] << 4);
        /* element e: byte 32 * (e / 128) + e % 32, bits 2 * ((e / 32) % 4) */
        memset(b + 16, 0, 64);
        for (int e = 0; e < 256; e++) b[16 + 32 * (e / 128) + e % 32] |= (uint8_t)(q[e] << 2 * ((e / 32) % 4));
        rwkv7_put16(b + 80, dh);
        rwkv7_put16(b + 82, mh);
    }
}

void rwkv7_quant_q3_k(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 110) {
        int8_t q[256];
        int sc[16];
        uint16_t dh;
        k_sym(x, 16, 16, -4, 3, -32, 31, q, sc, &dh);
        memset(b, 0, 108);
        uint8_t *hmask = b, *qs = b + 32, *s = b + 96;
        for (int e = 0; e < 256; e++) {
            const int u = q[e] + 4, l = e % 32, g = (e / 32) % 4, h = e / 128;
            qs[32 * h + l] |= (uint8_t)((u & 3) << 2 * g);
            hmask[l] |= (uint8_t)((u >> 2) << (4 * h + g));
        }
        for (int k = 0; k < 16; k++) {
            const int v = sc[k] + 32;
            s[k % 8] |= (uint8_t)((v & 0xF) << 4 * (k / 8));
            s[8 + (k & 3)] |= (uint8_t)((v >> 4) << 2 * (k >> 2));
        }
        rwkv7_put16(b + 108, dh);
    }
}

/* The 12-byte 6-bit scale/min packing of Q4_K and Q5_K (inverse of ggml's get_scale_min_k4). */
static void k4_pack_scales(const int sc[8], const int mn[8], uint8_t s[12]) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
    }
}

void rwkv7_quant_q4_k(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 144) {
        uint8_t q[256];
        int sc[8], mn[8];
        uint16_t dh, mh;
        k_affine(x, 8, 32, 15, 63, q, sc, mn, &dh, &mh);
        rwkv7_put16(b, dh);
        rwkv7_put16(b + 2, mh);
        k4_pack_scales(sc, mn, b + 4);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) b[16 + 32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
    }
}

void rwkv7_quant_q5_k(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 176) {
        uint8_t q[256];
        int sc[8], mn[8];
        uint16_t dh, mh;
        k_affine(x, 8, 32, 31, 63, q, sc, mn, &dh, &mh);
        rwkv7_put16(b, dh);
        rwkv7_put16(b + 2, mh);
        k4_pack_scales(sc, mn, b + 4);
        uint8_t *qh = b + 16, *qs = b + 48;
        memset(qh, 0, 32);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
                qs[32 * c + l] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
                qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
            }
        }
    }
}

void rwkv7_quant_q6_k(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 210) {
        int8_t q[256];
        int sc[16];
        uint16_t dh;
        k_sym(x, 16, 16, -32, 31, -128, 127, q, sc, &dh);
        uint8_t *ql = b, *qh = b + 128, *sb = b + 192;
        memset(b, 0, 192);
        /* element 128h + 32g + l: low nibble in ql[64h + l + 32 (g & 1)] (high half when g >= 2),
         * two high bits at qh[32h + l] bits 2g */
        for (int e = 0; e < 256; e++) {
            const int u = q[e] + 32, h = e / 128, g = (e / 32) % 4, l = e % 32;
            ql[64 * h + l + 32 * (g & 1)] |= (uint8_t)((u & 0xF) << 4 * (g >> 1));
            qh[32 * h + l] |= (uint8_t)((u >> 4) << 2 * g);
        }
        for (int j = 0; j < 16; j++) sb[j] = (uint8_t)(int8_t)sc[j];
        rwkv7_put16(b + 208, dh);
    }
}

/* Ternary: the best scale for q in {-1, 0, 1} keeps the k largest magnitudes (k chosen to
 * maximise (sum of them)^2 / k, which is the error reduction) at +-d, d their mean. */
static int cmp_desc(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

static float ternary_fit(const float *x, int8_t q[256]) {
    float a[256];
    for (int i = 0; i < 256; i++) a[i] = fabsf(x[i]);
    qsort(a, 256, sizeof a[0], cmp_desc);
    double sum = 0.0, best = 0.0;
    float d = 0.0f;
    for (int k = 1; k <= 256; k++) {
        sum += a[k - 1];
        if (sum * sum / k > best) best = sum * sum / k, d = (float)(sum / k);
    }
    const float ds = rwkv7_fp16_round(d);
    for (int i = 0; i < 256; i++) q[i] = ds > 0.0f && fabsf(x[i]) > 0.5f * ds ? (x[i] > 0 ? 1 : -1) : 0;
    return d;
}

/* TQ1_0 packs 5 trits per byte as a base-3 fixed-point fraction: byte = ceil(v * 256 / 243) for
 * v = sum t_n 3^(4-n), which the decoder's multiply-by-3^n reads back digit by digit. */
static uint8_t tq1_pack(const int *t, int nt) {
    int v = 0;
    for (int k = 0; k < 5; k++) v = 3 * v + (k < nt ? t[k] : 0);
    return (uint8_t)((v * 256 + 242) / 243);
}

void rwkv7_quant_tq1_0(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 54) {
        int8_t q[256];
        const float d = ternary_fit(x, q);
        int t[5];
        for (int m = 0; m < 32; m++) {
            for (int k = 0; k < 5; k++) t[k] = q[32 * k + m] + 1;
            b[m] = tq1_pack(t, 5);
        }
        for (int m = 0; m < 16; m++) {
            for (int k = 0; k < 5; k++) t[k] = q[160 + 16 * k + m] + 1;
            b[32 + m] = tq1_pack(t, 5);
        }
        for (int j = 0; j < 4; j++) {
            for (int k = 0; k < 4; k++) t[k] = q[240 + 4 * k + j] + 1;
            b[48 + j] = tq1_pack(t, 4);
        }
        rwkv7_put16(b + 52, rwkv7_f32_to_f16(d));
    }
}

void rwkv7_quant_tq2_0(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 66) {
        int8_t q[256];
        const float d = ternary_fit(x, q);
        memset(b, 0, 64);
        for (int e = 0; e < 256; e++) b[32 * (e / 128) + e % 32] |= (uint8_t)((q[e] + 1) << 2 * ((e / 32) % 4));
        rwkv7_put16(b + 64, rwkv7_f32_to_f16(d));
    }
}
