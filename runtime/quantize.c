/* quantize.c: the quantizer table (rwkv7_quantize_rows), the float types, and the scale searches
 * every block writer shares (quantize_impl.h). The searches try candidate scales in steps of a
 * tenth of a level around "extreme value on the extreme level", refit each candidate by least
 * squares for the rounding it produced, round again and keep the lowest squared error. Codes are
 * kept as floats inside the searches so the loops vectorize. */
#include <math.h>
#include <string.h>

#include "dtype.h"
#include "quantize.h"
#include "quantize_impl.h"
#include "status.h"

/* Candidate scales per side of a symmetric search, by number of levels: a fine fan helps few
 * levels and is wasted on many (Q8_0 gains nothing past the least-squares refit). */
static int sym_steps(int levels) { return levels >= 128 ? 0 : levels >= 64 ? 3 : levels >= 32 ? 5 : levels >= 16 ? 7 : 9; }

/* 4-lane GCC/Clang vector types: the compilers will not if-convert the clamps of these loops on
 * their own (float compares may trap), so the searches are written with explicit selects. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
static inline v4f vload(const float *p) { v4f v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f vsel(v4i m, v4f a, v4f b) { return (v4f)((m & (v4i)a) | (~m & (v4i)b)); }
static inline v4f vclamp(v4f v, v4f lo, v4f hi) { v = vsel(v < lo, lo, v); return vsel(v > hi, hi, v); }
static inline float vsum(v4f a) { return (a[0] + a[1]) + (a[2] + a[3]); }
#define V4(x) ((v4f){(x), (x), (x), (x)})
/* Codes are rounded to nearest (even) by adding and subtracting 1.5 * 2^23 (`magic` below): exact
 * for |v| < 2^22, and the inputs are clamped into the level range first, so they are small. */

/* Symmetric rounding into float codes qf (n a multiple of 4); returns the squared error. */
static float round_sym_f(const float *x, int n, float d, float qmin, float qmax, float *qf) {
    v4f acc = V4(0.0f);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const v4f vid = V4(id), vd = V4(d), lo = V4(qmin), hi = V4(qmax), magic = V4(12582912.0f);
    for (int i = 0; i < n; i += 4) {
        const v4f xv = vload(x + i);
        const v4f v = (vclamp(xv * vid, lo, hi) + magic) - magic;
        vstore(qf + i, v);
        const v4f e = xv - vd * v;
        acc += e * e;
    }
    return vsum(acc);
}

float rwkv7_qround_sym(const float *x, int n, float d, int qmin, int qmax, int8_t *q) {
    float qf[256];
    const float err = round_sym_f(x, n, d, (float)qmin, (float)qmax, qf);
    for (int i = 0; i < n; i++) q[i] = (int8_t)qf[i];
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
    float qf[256];
    float best_err = INFINITY, best_d = 0.0f;
    const int steps = sym_steps(qmax - qmin + 1);
    const float step = steps ? 0.6f / (float)steps : 0.0f;
    for (int side = 0; side < 2; side++) {
        const float edge = (float)(side ? qmax : qmin), sgn = side ? 1.0f : -1.0f;
        for (int k = -steps; k <= steps / 2; k++) {
            const float level = edge + sgn * step * (float)k;
            if (fabsf(level) < 0.5f) continue;
            const float d0 = xmax / level;
            round_sym_f(x, n, d0, (float)qmin, (float)qmax, qf);
            float sxq = 0.0f, sqq = 0.0f;
            for (int i = 0; i < n; i++) sxq += x[i] * qf[i], sqq += qf[i] * qf[i];
            const float d = sqq > 0.0f ? sxq / sqq : d0;
            const float err = round_sym_f(x, n, d, (float)qmin, (float)qmax, qf);
            if (err < best_err) best_err = err, best_d = d;
        }
    }
    rwkv7_qround_sym(x, n, best_d, qmin, qmax, q);
    return best_d;
}

static float round_affine_f(const float *x, int n, float s, float m, float qmax, float *qf) {
    v4f acc = V4(0.0f);
    const float is = s > 0.0f ? 1.0f / s : 0.0f;
    const v4f vis = V4(is), vs = V4(s), vm = V4(m), lo = V4(0.0f), hi = V4(qmax), magic = V4(12582912.0f);
    for (int i = 0; i < n; i += 4) {
        const v4f xv = vload(x + i);
        const v4f v = (vclamp((xv - vm) * vis, lo, hi) + magic) - magic;
        vstore(qf + i, v);
        const v4f e = xv - (vs * v + vm);
        acc += e * e;
    }
    return vsum(acc);
}

float rwkv7_qround_affine(const float *x, int n, float s, float m, int qmax, uint8_t *q) {
    float qf[256];
    const float err = round_affine_f(x, n, s, m, (float)qmax, qf);
    for (int i = 0; i < n; i++) q[i] = (uint8_t)qf[i];
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
    float qf[256];
    const float fq = (float)qmax;
    float best_err = INFINITY, best_s = (mx - mn) / fq, best_m = mn;
    const int steps = sym_steps(qmax + 1);
    const float step = 0.6f / (float)(steps ? steps : 1);
    for (int k = -steps; k <= steps / 2; k++) {
        const float s0 = (mx - mn) / (fq + step * (float)k);
        round_affine_f(x, n, s0, mn, fq, qf);
        float sq = 0, sqq = 0, sx = 0, sxq = 0;
        for (int i = 0; i < n; i++) sq += qf[i], sqq += qf[i] * qf[i], sx += x[i], sxq += x[i] * qf[i];
        const float det = (float)n * sqq - sq * sq;
        float s = s0, m = mn;
        if (det > 0.0f) {
            s = ((float)n * sxq - sq * sx) / det;
            m = (sqq * sx - sq * sxq) / det;
        }
        if (min_le0 && m > 0.0f) m = 0.0f, s = sqq > 0.0f ? sxq / sqq : s0;
        if (!(s > 0.0f)) continue;
        const float err = round_affine_f(x, n, s, m, fq, qf);
        if (err < best_err) best_err = err, best_s = s, best_m = m;
    }
    rwkv7_qround_affine(x, n, best_s, best_m, qmax, q);
    *s_out = best_s;
    *m_out = best_m;
}

/* Non-uniform levels: the level index is the count of midpoints at or below t, and the level
 * value is built from the steps between levels, both as float arithmetic so the loop over
 * elements vectorizes (no gathers). */
static float round_table_f(const float *x, int n, float d, const int8_t *vals, int nv, float *idx, float *val) {
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    v4f acc = V4(0.0f);
    for (int i = 0; i < n; i += 4) {
        const v4f xv = vload(x + i), t = xv * V4(id);
        v4f k = V4(0.0f), v = V4((float)vals[0]);
        for (int j = 1; j < nv; j++) {
            const v4f up = vsel(t >= V4(0.5f * ((float)vals[j - 1] + (float)vals[j])), V4(1.0f), V4(0.0f));
            k += up;
            v += up * V4((float)vals[j] - (float)vals[j - 1]);
        }
        vstore(idx + i, k);
        vstore(val + i, v);
        const v4f e = xv - V4(d) * v;
        acc += e * e;
    }
    return vsum(acc);
}

float rwkv7_qround_table(const float *x, int n, float d, const int8_t *vals, int nv, uint8_t *q) {
    float idx[256], val[256];
    const float err = round_table_f(x, n, d, vals, nv, idx, val);
    for (int i = 0; i < n; i++) q[i] = (uint8_t)idx[i];
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
    float idx[256], val[256];
    float best_err = INFINITY, best_d = 0.0f;
    for (int side = 0; side < 2; side++) {
        const float edge = (float)(side ? vals[nv - 1] : vals[0]);
        for (int k = -4; k <= 2; k++) {
            const float d0 = xmax / (edge * (1.0f + 0.04f * (float)k));
            round_table_f(x, n, d0, vals, nv, idx, val);
            float sxv = 0.0f, svv = 0.0f;
            for (int i = 0; i < n; i++) sxv += x[i] * val[i], svv += val[i] * val[i];
            const float d = svv > 0.0f ? sxv / svv : d0;
            const float err = round_table_f(x, n, d, vals, nv, idx, val);
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
