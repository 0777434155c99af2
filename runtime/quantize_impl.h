/* quantize_impl.h: internal to the quantizers: the per-family block writers that quantize.c
 * dispatches to, and the scale-fitting searches they share. Every search minimises the plain
 * squared error sum (x - y)^2 of one group: it tries a fan of candidate scales around the one that
 * maps the extreme value to the extreme level, refits each by least squares for the rounding it
 * gives, and keeps the best. */
#ifndef RWKV7_QUANTIZE_IMPL_H
#define RWKV7_QUANTIZE_IMPL_H

#include <math.h>
#include <stdint.h>

#include "dtype.h"

/* One block writer: n elements (a multiple of the type's block) from x to dst. */
typedef void (*rwkv7_quant_fn)(const float *x, void *dst, int64_t n);

static inline int rwkv7_qround(float v) { return (int)lrintf(v); }
static inline int rwkv7_qclamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
/* Value of a float after a trip through fp16 storage. */
static inline float rwkv7_fp16_round(float v) { return rwkv7_f16_to_f32(rwkv7_f32_to_f16(v)); }
static inline void rwkv7_put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Symmetric fit y = d * q, q integer in [qmin, qmax] (qmin < 0 < qmax): returns d (may be
 * negative, which puts the largest magnitude on the longer side) and writes q. d = 0 for an
 * all-zero group. */
float rwkv7_qfit_sym(const float *x, int n, int qmin, int qmax, int8_t *q);
/* Squared error of x against d * q for the rounding that d gives, writing q. */
float rwkv7_qround_sym(const float *x, int n, float d, int qmin, int qmax, int8_t *q);

/* Affine fit y = s * q + m, q in [0, qmax], s >= 0. With min_le0 the offset m is kept <= 0 (the
 * K-quants store -m as an unsigned 6/4-bit multiple of dmin). Writes q, *s, *m. */
void rwkv7_qfit_affine(const float *x, int n, int qmax, int min_le0, uint8_t *q, float *s, float *m);
/* Rounding and squared error for a given (s, m). */
float rwkv7_qround_affine(const float *x, int n, float s, float m, int qmax, uint8_t *q);

/* Non-uniform levels (IQ4_NL): y = d * vals[q], vals sorted ascending, nv <= 16. */
float rwkv7_qfit_table(const float *x, int n, const int8_t *vals, int nv, uint8_t *q);
float rwkv7_qround_table(const float *x, int n, float d, const int8_t *vals, int nv, uint8_t *q);

/* legacy 32-blocks and IQ4_NL (quantize_legacy.c) */
void rwkv7_quant_q4_0(const float *x, void *dst, int64_t n);
void rwkv7_quant_q4_1(const float *x, void *dst, int64_t n);
void rwkv7_quant_q5_0(const float *x, void *dst, int64_t n);
void rwkv7_quant_q5_1(const float *x, void *dst, int64_t n);
void rwkv7_quant_q8_0(const float *x, void *dst, int64_t n);
void rwkv7_quant_iq4_nl(const float *x, void *dst, int64_t n);
/* K-quants and ternary (quantize_k.c) */
void rwkv7_quant_q2_k(const float *x, void *dst, int64_t n);
void rwkv7_quant_q3_k(const float *x, void *dst, int64_t n);
void rwkv7_quant_q4_k(const float *x, void *dst, int64_t n);
void rwkv7_quant_q5_k(const float *x, void *dst, int64_t n);
void rwkv7_quant_q6_k(const float *x, void *dst, int64_t n);
void rwkv7_quant_tq1_0(const float *x, void *dst, int64_t n);
void rwkv7_quant_tq2_0(const float *x, void *dst, int64_t n);
/* IQ super-block types (quantize_iq.c) */
void rwkv7_quant_iq4_xs(const float *x, void *dst, int64_t n);
void rwkv7_quant_iq3_s(const float *x, void *dst, int64_t n);
void rwkv7_quant_iq3_xxs(const float *x, void *dst, int64_t n);

#endif
