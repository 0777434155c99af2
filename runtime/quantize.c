/* quantize.c: the quantizer table (rwkv7_quantize_rows), the float types, and the scale searches
 * every block writer shares (quantize_impl.h). The searches try candidate scales in steps of a
 * tenth of a level around "extreme value on the extreme level", refit each candidate by least
 * squares for the rounding it produced, round again and keep the lowest squared error. Rounding is
 * half away from zero, written so loops vectorize. */
#include <math.h>
#include <string.h>

#include "dtype.h"
#include "quantize.h"
#include "quantize_impl.h"
#include "status.h"

/* Half-away-from-zero rounding without a libm call. */
static inline int qnear(float v) { return (int)(v + (v >= 0.0f ? 0.5f : -0.5f)); }

float rwkv7_qround_sym(const float *x, int n, float d, int qmin, int qmax, int8_t *q) {
    float err = 0.0f;
    if (d == 0.0f) {
        for (int i = 0; i < n; i++) q[i] = 0, err += x[i] * x[i];
        return err;
    }
    const float id = 1.0f / d;
    for (int i = 0; i < n; i++) {
        int v = qnear(x[i] * id);
        v = v < qmin ? qmin : v > qmax ? qmax : v;
        q[i] = (int8_t)v;
        const float e = x[i] - d * (float)v;
        err += e * e;
    }
    return err;
}

float rwkv7_qfit_sym(const float *x, int n, int qmin, int qmax, int8_t *q) {
    float amax = 0.0f, xmax = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), xmax = x[i];
    if (amax == 0.0f) {
        memset(q, 0, (size_t)n);
        return 0.0f;
    }
    int8_t tq[256];
    float best_err = INFINITY, best_d = 0.0f;
    for (int side = 0; side < 2; side++) {
        const float edge = (float)(side ? qmax : qmin), sgn = side ? 1.0f : -1.0f;
        for (int k = -10; k <= 6; k++) {
            const float level = edge + sgn * 0.1f * (float)k;
            if (fabsf(level) < 0.5f) continue;
            const float d0 = xmax / level;
            rwkv7_qround_sym(x, n, d0, qmin, qmax, tq);
            float sxq = 0.0f, sqq = 0.0f;
            for (int i = 0; i < n; i++) sxq += x[i] * (float)tq[i], sqq += (float)tq[i] * (float)tq[i];
            const float d = sqq > 0.0f ? sxq / sqq : d0;
            const float err = rwkv7_qround_sym(x, n, d, qmin, qmax, tq);
            if (err < best_err) best_err = err, best_d = d;
        }
    }
    rwkv7_qround_sym(x, n, best_d, qmin, qmax, q);
    return best_d;
}

float rwkv7_qround_affine(const float *x, int n, float s, float m, int qmax, uint8_t *q) {
    float err = 0.0f;
    const float is = s > 0.0f ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++) {
        int v = qnear((x[i] - m) * is);
        v = v < 0 ? 0 : v > qmax ? qmax : v;
        q[i] = (uint8_t)v;
        const float e = x[i] - (s * (float)v + m);
        err += e * e;
    }
    return err;
}

void rwkv7_qfit_affine(const float *x, int n, int qmax, int min_le0, uint8_t *q, float *s_out, float *m_out) {
    float mn = x[0], mx = x[0];
    for (int i = 1; i < n; i++) mn = x[i] < mn ? x[i] : mn, mx = x[i] > mx ? x[i] : mx;
    if (min_le0 && mn > 0.0f) mn = 0.0f;
    if (mx <= mn) {
        memset(q, 0, (size_t)n);
        *s_out = 0.0f;
        *m_out = mn;
        return;
    }
    uint8_t tq[256];
    float best_err = INFINITY, best_s = (mx - mn) / (float)qmax, best_m = mn;
    const int kmin = qmax >= 7 ? -10 : -5;
    for (int k = kmin; k <= 5; k++) {
        const float s0 = (mx - mn) / ((float)qmax + 0.1f * (float)k);
        rwkv7_qround_affine(x, n, s0, mn, qmax, tq);
        float sq = 0, sqq = 0, sx = 0, sxq = 0;
        for (int i = 0; i < n; i++) {
            const float v = (float)tq[i];
            sq += v, sqq += v * v, sx += x[i], sxq += x[i] * v;
        }
        const float det = (float)n * sqq - sq * sq;
        float s = s0, m = mn;
        if (det > 0.0f) {
            s = ((float)n * sxq - sq * sx) / det;
            m = (sqq * sx - sq * sxq) / det;
        }
        if (min_le0 && m > 0.0f) m = 0.0f, s = sqq > 0.0f ? sxq / sqq : s0;
        if (!(s > 0.0f)) continue;
        const float err = rwkv7_qround_affine(x, n, s, m, qmax, tq);
        if (err < best_err) best_err = err, best_s = s, best_m = m;
    }
    rwkv7_qround_affine(x, n, best_s, best_m, qmax, q);
    *s_out = best_s;
    *m_out = best_m;
}

/* Index of the level nearest t among nv ascending levels. */
static inline int table_nearest(float t, const int8_t *vals, int nv) {
    int lo = 0;
    for (int k = 1; k < nv; k++) lo += t >= 0.5f * ((float)vals[k - 1] + (float)vals[k]);
    return lo;
}

float rwkv7_qround_table(const float *x, int n, float d, const int8_t *vals, int nv, uint8_t *q) {
    float err = 0.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++) {
        const int k = d != 0.0f ? table_nearest(x[i] * id, vals, nv) : 0;
        q[i] = (uint8_t)k;
        const float e = x[i] - d * (float)vals[k];
        err += e * e;
    }
    return err;
}

float rwkv7_qfit_table(const float *x, int n, const int8_t *vals, int nv, uint8_t *q) {
    float amax = 0.0f, xmax = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), xmax = x[i];
    if (amax == 0.0f) {
        rwkv7_qround_table(x, n, 0.0f, vals, nv, q);
        return 0.0f;
    }
    uint8_t tq[256];
    float best_err = INFINITY, best_d = 0.0f;
    for (int side = 0; side < 2; side++) {
        const float edge = (float)(side ? vals[nv - 1] : vals[0]);
        for (int k = -6; k <= 4; k++) {
            const float d0 = xmax / (edge * (1.0f + 0.03f * (float)k));
            rwkv7_qround_table(x, n, d0, vals, nv, tq);
            float sxv = 0.0f, svv = 0.0f;
            for (int i = 0; i < n; i++) {
                const float v = (float)vals[tq[i]];
                sxv += x[i] * v, svv += v * v;
            }
            const float d = svv > 0.0f ? sxv / svv : d0;
            const float err = rwkv7_qround_table(x, n, d, vals, nv, tq);
            if (err < best_err) best_err = err, best_d = d;
        }
    }
    rwkv7_qround_table(x, n, best_d, vals, nv, q);
    return best_d;
}

/* ---- float types ---- */

static void quant_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * sizeof(float)); }

static void quant_f16(const float *x, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) rwkv7_put16(p + 2 * i, rwkv7_f32_to_f16(x[i]));
}

static void quant_bf16(const float *x, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) rwkv7_put16(p + 2 * i, rwkv7_f32_to_bf16(x[i]));
}

static rwkv7_quant_fn quant_fn(int type) {
    switch (type) {
    case RWKV7_DTYPE_F32: return quant_f32;
    case RWKV7_DTYPE_F16: return quant_f16;
    case RWKV7_DTYPE_BF16: return quant_bf16;
    case RWKV7_DTYPE_Q4_0: return rwkv7_quant_q4_0;
    case RWKV7_DTYPE_Q4_1: return rwkv7_quant_q4_1;
    case RWKV7_DTYPE_Q5_0: return rwkv7_quant_q5_0;
    case RWKV7_DTYPE_Q5_1: return rwkv7_quant_q5_1;
    case RWKV7_DTYPE_Q8_0: return rwkv7_quant_q8_0;
    case RWKV7_DTYPE_IQ4_NL: return rwkv7_quant_iq4_nl;
    case RWKV7_DTYPE_Q2_K: return rwkv7_quant_q2_k;
    case RWKV7_DTYPE_Q3_K: return rwkv7_quant_q3_k;
    case RWKV7_DTYPE_Q4_K: return rwkv7_quant_q4_k;
    case RWKV7_DTYPE_Q5_K: return rwkv7_quant_q5_k;
    case RWKV7_DTYPE_Q6_K: return rwkv7_quant_q6_k;
    case RWKV7_DTYPE_TQ1_0: return rwkv7_quant_tq1_0;
    case RWKV7_DTYPE_TQ2_0: return rwkv7_quant_tq2_0;
    case RWKV7_DTYPE_IQ4_XS: return rwkv7_quant_iq4_xs;
    case RWKV7_DTYPE_IQ3_S: return rwkv7_quant_iq3_s;
    case RWKV7_DTYPE_IQ3_XXS: return rwkv7_quant_iq3_xxs;
    default: return NULL;
    }
}

bool rwkv7_quantize_supported(int type) { return quant_fn(type) != NULL; }

enum rwkv7_status rwkv7_quantize_rows(int type, const float *src, void *dst, int64_t n_rows, int64_t ne0) {
    rwkv7_quant_fn fn = quant_fn(type);
    if (!fn) return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "quantize: no quantizer for type %s", rwkv7_dtype_name(type));
    const size_t row = rwkv7_dtype_row_bytes(type, ne0);
    if (row == 0 || n_rows < 0)
        return rwkv7_fail(RWKV7_ERR_ARG, "quantize: row of %lld elements does not fit %s blocks of %d",
                          (long long)ne0, rwkv7_dtype_name(type), rwkv7_dtype_get(type)->block);
    const bool is_float = type == RWKV7_DTYPE_F32 || type == RWKV7_DTYPE_F16 || type == RWKV7_DTYPE_BF16;
    float buf[256];
    const int blk = rwkv7_dtype_get(type)->block;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = src + r * ne0;
        uint8_t *out = (uint8_t *)dst + (size_t)r * row;
        if (is_float) {
            fn(x, out, ne0);
            continue;
        }
        /* one block at a time, non-finite values replaced by 0 so no scale becomes NaN */
        const size_t bytes = (size_t)rwkv7_dtype_get(type)->type_size;
        for (int64_t b = 0; b < ne0 / blk; b++) {
            const float *xb = x + b * blk;
            int bad = 0;
            for (int i = 0; i < blk; i++) bad |= !isfinite(xb[i]);
            if (bad) {
                for (int i = 0; i < blk; i++) buf[i] = isfinite(xb[i]) ? xb[i] : 0.0f;
                xb = buf;
            }
            fn(xb, out + (size_t)b * bytes, blk);
        }
    }
    return RWKV7_OK;
}
