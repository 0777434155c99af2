/* dtype_random.c: the random weight-block generator (dtype_random.h). Every block is filled with
 * random bytes, then the fields that carry meaning (scales, mins, ternary codes) are written so the
 * block is one ggml could have produced: finite fp16 scales, TQ1_0 bytes in base-3 form, unused
 * IQ1_S bits clear. The unit spread of each type is measured once by dequantizing a calibration
 * sample with scale 1, then the block scale is set to scale / unit spread. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "dtype.h"
#include "dtype_random.h"
#include "status.h"

struct rng {
    uint64_t s; /* splitmix64 state */
};

static uint64_t rng_next(struct rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned rng_below(struct rng *r, unsigned n) { return (unsigned)((rng_next(r) >> 32) * n >> 32); }

static void rng_fill(struct rng *r, uint8_t *p, size_t n) {
    while (n >= 8) {
        uint64_t v = rng_next(r);
        for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i);
        p += 8, n -= 8;
    }
    if (n) {
        uint64_t v = rng_next(r);
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> 8 * i);
    }
}

/* Largest finite half: F16 rows are clamped there so every value stays finite. */
#define HALF_MAX 65504.0f

/* Approximately standard normal: the sum of four uniforms (variance 1/3), centred and scaled. */
static float rng_normal(struct rng *r) {
    uint64_t v = rng_next(r);
    float s = 0;
    for (int i = 0; i < 4; i++) s += (float)((v >> 16 * i) & 0xFFFF) * (1.0f / 65536.0f);
    return (s - 2.0f) * 1.7320508f;
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_half(uint8_t *p, float v) { put_u16(p, rwkv7_f32_to_f16(v)); }

/* The scale of one call, pre-encoded for the block formats that are not fp16. */
struct scale_codes {
    float d;       /* multiplier of the unit block */
    uint8_t e8m0;  /* MXFP4: 2^(e-128) <= d, the lower of the two powers of two around d */
    uint32_t e8m0_up; /* MXFP4: chance (of 2^32) that a block takes the next exponent up */
    uint8_t ue4m3; /* NVFP4: code whose halved value is nearest to d in log terms */
};

static float ue4m3_half_value(unsigned u) {
    const unsigned e = (u >> 3) & 0xF, m = u & 7;
    return e == 0 ? (float)m * 0x1p-10f : ldexpf(1.0f + (float)m / 8.0f, (int)e - 8);
}

static struct scale_codes encode_scale(float d) {
    struct scale_codes c = {d, 128, 0, 0x40};
    /* A power of two can miss d by up to sqrt(2); mixing blocks at 2^(e-1) and 2^e with chance
     * p of the upper one, p*4 + (1-p) = (d / 2^(e-1))^2, makes the mean square exact. */
    int ex;
    float mant = frexpf(d, &ex); /* d = mant * 2^ex, mant in [0.5, 1) */
    int e = 128 + ex - 1;
    if (e < 1) e = 1, mant = 0.5f;
    if (e > 253) e = 253, mant = 1.0f;
    c.e8m0 = (uint8_t)e;
    double p = ((double)(2 * mant) * (2 * mant) - 1.0) / 3.0;
    c.e8m0_up = (uint32_t)(p * 4294967295.0);
    float best = INFINITY;
    for (unsigned u = 1; u < 0x7F; u++) {
        float v = ue4m3_half_value(u), err = fabsf(logf(v / d));
        if (err < best) best = err, c.ue4m3 = (uint8_t)u;
    }
    return c;
}

/* Sub-block scale and min (6 bits each) into the 12-byte Q4_K/Q5_K scales field, the inverse of
 * ggml's get_scale_min_k4. */
static void put_k4_scale_min(uint8_t *s, int j, unsigned sc, unsigned mn) {
    if (j < 4) {
        s[j] = (uint8_t)((s[j] & 0xC0) | sc);
        s[j + 4] = (uint8_t)((s[j + 4] & 0xC0) | mn);
    } else {
        s[j + 4] = (uint8_t)((sc & 0xF) | (mn & 0xF) << 4);
        s[j - 4] = (uint8_t)((s[j - 4] & 0x3F) | (sc >> 4) << 6);
        s[j] = (uint8_t)((s[j] & 0x3F) | (mn >> 4) << 6);
    }
}

/* K-quant scales are drawn from the upper half of their range, as ggml's quantizer produces
 * (the largest sub-block scale always sits near the top), which keeps d well inside fp16. The min
 * centres each sub-block: dmin*mn = d*sc*mean(q), i.e. mn = sc*num/den rounded. */
static void gen_k4_scales(struct rng *r, uint8_t *s, unsigned num, unsigned den) {
    memset(s, 0, 12);
    for (int j = 0; j < 8; j++) {
        unsigned sc = 32 + rng_below(r, 32);
        put_k4_scale_min(s, j, sc, (sc * num + den / 2) / den);
    }
}

static void gen_tq1_0(struct rng *r, uint8_t *b) {
    for (int i = 0; i < 52; i++) {
        unsigned v = 0, trits = i < 48 ? 5 : 4;
        for (unsigned k = 0; k < 5; k++) v = v * 3 + (k < trits ? rng_below(r, 3) : 0);
        b[i] = (uint8_t)((v * 256 + 242) / 243); /* ceil(256 v / 243): base-3 fixed point */
    }
}

static void gen_block(int type, struct rng *r, uint8_t *b, const struct scale_codes *c) {
    const float d = c->d;
    switch (type) {
    case RWKV7_DTYPE_Q4_0: rng_fill(r, b + 2, 16); put_half(b, d); break;
    case RWKV7_DTYPE_Q4_1: rng_fill(r, b + 4, 16); put_half(b, d); put_half(b + 2, -7.5f * d); break;
    case RWKV7_DTYPE_Q5_0: rng_fill(r, b + 2, 20); put_half(b, d); break;
    case RWKV7_DTYPE_Q5_1: rng_fill(r, b + 4, 20); put_half(b, d); put_half(b + 2, -15.5f * d); break;
    case RWKV7_DTYPE_Q8_0:
        rng_fill(r, b + 2, 32);
        for (int j = 2; j < 34; j++) b[j] = b[j] == 0x80 ? 0x81 : b[j]; /* ggml never emits -128 */
        put_half(b, d);
        break;
    case RWKV7_DTYPE_Q1_0:
    case RWKV7_DTYPE_Q2_0:
    case RWKV7_DTYPE_IQ4_NL: rng_fill(r, b + 2, 16); put_half(b, d); break;
    case RWKV7_DTYPE_MXFP4:
        rng_fill(r, b + 1, 16);
        b[0] = (uint8_t)(c->e8m0 + ((uint32_t)rng_next(r) < c->e8m0_up));
        break;
    case RWKV7_DTYPE_NVFP4: rng_fill(r, b + 4, 32); memset(b, c->ue4m3, 4); break;
    case RWKV7_DTYPE_Q2_K:
        rng_fill(r, b + 16, 64);
        for (int k = 0; k < 16; k++) { /* sc in 8..15; dmin = 2d, so mn = 0.75 sc centres q in 0..3 */
            unsigned sc = 8 + rng_below(r, 8);
            b[k] = (uint8_t)(sc | ((3 * sc + 2) / 4) << 4);
        }
        put_half(b + 80, d);
        put_half(b + 82, 2.0f * d);
        break;
    case RWKV7_DTYPE_Q3_K: rng_fill(r, b, 108); put_half(b + 108, d); break;
    case RWKV7_DTYPE_Q4_K:
        rng_fill(r, b + 16, 128);
        gen_k4_scales(r, b + 4, 15, 16); /* mean nibble 7.5, dmin = 8d */
        put_half(b, d);
        put_half(b + 2, 8.0f * d);
        break;
    case RWKV7_DTYPE_Q5_K:
        rng_fill(r, b + 16, 160);
        gen_k4_scales(r, b + 4, 31, 32); /* mean 15.5, dmin = 16d */
        put_half(b, d);
        put_half(b + 2, 16.0f * d);
        break;
    case RWKV7_DTYPE_Q6_K:
        rng_fill(r, b, 192);
        for (int k = 0; k < 16; k++) {
            int sc = 32 + (int)rng_below(r, 96);
            b[192 + k] = (uint8_t)(int8_t)(rng_next(r) & 1 ? -sc : sc);
        }
        put_half(b + 208, d);
        break;
    case RWKV7_DTYPE_TQ1_0: gen_tq1_0(r, b); put_half(b + 52, d); break;
    case RWKV7_DTYPE_TQ2_0:
        for (int i = 0; i < 64; i++) { /* codes 0..2 only: 3 (+2d) is never emitted by ggml */
            unsigned v = 0;
            for (int k = 0; k < 4; k++) v |= rng_below(r, 3) << 2 * k;
            b[i] = (uint8_t)v;
        }
        put_half(b + 64, d);
        break;
    case RWKV7_DTYPE_IQ2_XXS: rng_fill(r, b + 2, 64); put_half(b, d); break;
    case RWKV7_DTYPE_IQ2_XS: rng_fill(r, b + 2, 72); put_half(b, d); break;
    case RWKV7_DTYPE_IQ2_S: rng_fill(r, b + 2, 80); put_half(b, d); break;
    case RWKV7_DTYPE_IQ3_XXS: rng_fill(r, b + 2, 96); put_half(b, d); break;
    case RWKV7_DTYPE_IQ3_S:
        rng_fill(r, b + 2, 108);
        put_half(b, d);
        break;
    case RWKV7_DTYPE_IQ1_S:
        rng_fill(r, b + 2, 48);
        for (int k = 0; k < 8; k++) { /* bits 9-11 of each qh word are unused by the format */
            uint16_t h = (uint16_t)((b[34 + 2 * k] | b[35 + 2 * k] << 8) & 0xF1FF);
            put_u16(b + 34 + 2 * k, h);
        }
        put_half(b, d);
        break;
    case RWKV7_DTYPE_IQ1_M: {
        rng_fill(r, b, 56);
        /* the fp16 super-scale lives in the top nibbles of the four scale words */
        uint16_t h = rwkv7_f32_to_f16(d);
        for (int k = 0; k < 4; k++) {
            uint16_t w = (uint16_t)((b[48 + 2 * k] | b[49 + 2 * k] << 8) & 0x0FFF);
            put_u16(b + 48 + 2 * k, (uint16_t)(w | ((h >> 4 * k) & 0xF) << 12));
        }
        break;
    }
    case RWKV7_DTYPE_IQ4_XS: rng_fill(r, b + 2, 134); put_half(b, d); break;
    default: RWKV7_ASSERT(!"rwkv7_dtype_random_rows: not a block weight type");
    }
}

static struct rng row_rng(uint64_t seed, uint64_t row) {
    struct rng r = {seed ^ (row + 1) * 0xD1B54A32D192ED03ull};
    rng_next(&r);
    return r;
}

static void gen_rows(int type, uint64_t seed, uint8_t *dst, int64_t n_rows, int64_t ne0,
                     const struct scale_codes *c) {
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(type);
    const int64_t nb = ne0 / info->block;
    for (int64_t row = 0; row < n_rows; row++) {
        struct rng r = row_rng(seed, (uint64_t)row);
        for (int64_t i = 0; i < nb; i++, dst += info->type_size) gen_block(type, &r, dst, c);
    }
}

/* Calibration sample size; the largest weight block is 34 bytes per 32 elements (Q8_0). */
#define CALIB_ELEMS 8192

/* Standard deviation of the dequantized values of a type at d = 1, from a fixed sample. Cached
 * per type as float bits; concurrent first calls compute the same value, so the race is benign. */
static float unit_std(int type) {
    static _Atomic uint32_t cache[RWKV7_DTYPE_COUNT];
    uint32_t bits = atomic_load_explicit(&cache[type], memory_order_relaxed);
    float sd;
    if (bits) {
        memcpy(&sd, &bits, sizeof sd);
        return sd;
    }
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(type);
    const int64_t ne0 = CALIB_ELEMS;
    uint8_t blocks[CALIB_ELEMS / 32 * 34];
    float x[CALIB_ELEMS];
    /* scale 1 is exact in every encoding (fp16, e8m0 128, ue4m3 0x40) */
    struct scale_codes unit = encode_scale(1.0f);
    gen_rows(type, 0x5EEDCA1Bull, blocks, 1, ne0, &unit);
    info->to_f32(blocks, x, ne0);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < ne0; i++) s += x[i], s2 += (double)x[i] * x[i];
    double mean = s / (double)ne0;
    sd = (float)sqrt(s2 / (double)ne0 - mean * mean);
    memcpy(&bits, &sd, sizeof bits);
    atomic_store_explicit(&cache[type], bits, memory_order_relaxed);
    return sd;
}

void rwkv7_dtype_random_rows(int type, uint64_t seed, void *dst, int64_t n_rows, int64_t ne0,
                             float scale) {
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(type);
    RWKV7_ASSERT(info && info->to_f32 && ne0 % info->block == 0 && n_rows >= 0);
    RWKV7_ASSERT(isfinite(scale) && scale > 0);
    uint8_t *out = dst;
    if (info->block == 1) {
        for (int64_t row = 0; row < n_rows; row++) {
            struct rng r = row_rng(seed, (uint64_t)row);
            for (int64_t i = 0; i < ne0; i++, out += info->type_size) {
                float v = rng_normal(&r) * scale;
                if (type == RWKV7_DTYPE_F16) v = v > HALF_MAX ? HALF_MAX : v < -HALF_MAX ? -HALF_MAX : v;
                if (type == RWKV7_DTYPE_F32) memcpy(out, &v, sizeof v);
                else put_u16(out, type == RWKV7_DTYPE_F16 ? rwkv7_f32_to_f16(v) : rwkv7_f32_to_bf16(v));
            }
        }
        return;
    }
    struct scale_codes c = encode_scale(scale / unit_std(type));
    gen_rows(type, seed, out, n_rows, ne0, &c);
}
