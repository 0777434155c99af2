/* matmul_deq_x86.h: AVX2 decoders of one 32-element group of a weight row into four __m256, for
 * the matmul kernels (matmul_kern.h). Included only by files compiled for a target with
 * avx2,fma,f16c (after their target pragma). Group g covers elements [32g, 32g + 32): one block
 * of the 32-block types, one sub-block of the 256 super-block types.
 *
 * Invariant: every value is bit-identical to the type table's to_f32 (runtime/dequant_*.c): the
 * same float operations in the same order (mul then add/sub, never fused), so the fused kernel,
 * the tile kernel and the scalar reference see the same weights. Layouts: quant-formats.md §3. */
#ifndef RWKV7_MATMUL_DEQ_X86_H
#define RWKV7_MATMUL_DEQ_X86_H

#include <immintrin.h>

#include "dtype.h"
#include "dtype_dequant.h"
#include "iq_tables.h"

#define MM_INLINE static inline __attribute__((always_inline))

/* fp16 field -> float with F16C: exact like rwkv7_load_half, but without the software
 * conversion's subnormal float multiply (a ~150-cycle microcode assist per call on x86 whenever a
 * block scale is an fp16 subnormal, common for small-magnitude weights). */
MM_INLINE float mm_half(const uint8_t *p) { return _cvtsh_ss(rwkv7_le16(p)); }

/* A decoded 32-element group: w[i] = fma(code[i], scale[h], bias[h]) with h = i / 16 (only Q6_K
 * has two different halves). code is one signed byte per element in element order. The fma
 * rounds once, so Q4_1, Q5_1, Q4_K and Q5_K weights (code * scale + bias) can differ from the
 * table's to_f32 (mul, then add) in the last bit; symmetric types (bias 0) are exact. */
struct mm_grp {
    __m256i code;
    float scale[2], bias[2];
};

MM_INLINE void mm_grp_set(struct mm_grp *q, __m256i code, float scale, float bias) {
    q->code = code;
    q->scale[0] = q->scale[1] = scale;
    q->bias[0] = q->bias[1] = bias;
}

/* 16 packed bytes of nibbles -> 32 codes: low nibbles are elements 0..15, high nibbles 16..31. */
MM_INLINE __m256i mm_nib16(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

/* 32 bytes at p -> their low (j even) or high (j odd) nibbles. */
MM_INLINE __m256i mm_nib32(const uint8_t *p, int j) {
    const __m256i raw = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_and_si256((j & 1) ? _mm256_srli_epi16(raw, 4) : raw, _mm256_set1_epi8(0x0F));
}

/* Bit i of the 32-bit qh as 0 or 0x10 in byte i. */
MM_INLINE __m256i mm_qh32(uint32_t qh) {
    const __m256i rep = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
                                            _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll,
                                                               0x0303030303030303ll));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(rep, bit), bit), _mm256_set1_epi8(0x10));
}

/* Sub-block j's 6-bit scale and min of a Q4_K/Q5_K super-block (ggml's get_scale_min_k4). */
MM_INLINE void mm_k4_scale_min(int j, const uint8_t *s, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Group g of a quantized row (types with codes; not the float types). */
MM_INLINE void mm_grp(int type, const uint8_t *row, int64_t g, struct mm_grp *q) {
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rwkv7_kvalues_iq4nl));
    switch (type) {
    case RWKV7_DTYPE_Q8_0: {
        const uint8_t *b = row + 34 * g;
        mm_grp_set(q, _mm256_loadu_si256((const __m256i *)(b + 2)), mm_half(b), 0.0f);
        break;
    }
    case RWKV7_DTYPE_Q4_0: {
        const uint8_t *b = row + 18 * g;
        mm_grp_set(q, _mm256_sub_epi8(mm_nib16(b + 2), _mm256_set1_epi8(8)), mm_half(b), 0.0f);
        break;
    }
    case RWKV7_DTYPE_Q4_1: {
        const uint8_t *b = row + 20 * g;
        mm_grp_set(q, mm_nib16(b + 4), mm_half(b), mm_half(b + 2));
        break;
    }
    case RWKV7_DTYPE_Q5_0: {
        const uint8_t *b = row + 22 * g;
        const __m256i c = _mm256_or_si256(mm_nib16(b + 6), mm_qh32(rwkv7_le32(b + 2)));
        mm_grp_set(q, _mm256_sub_epi8(c, _mm256_set1_epi8(16)), mm_half(b), 0.0f);
        break;
    }
    case RWKV7_DTYPE_Q5_1: {
        const uint8_t *b = row + 24 * g;
        mm_grp_set(q, _mm256_or_si256(mm_nib16(b + 8), mm_qh32(rwkv7_le32(b + 4))), mm_half(b), mm_half(b + 2));
        break;
    }
    case RWKV7_DTYPE_Q4_K:
    case RWKV7_DTYPE_Q5_K: {
        const bool k5 = type == RWKV7_DTYPE_Q5_K;
        const uint8_t *b = row + (k5 ? 176 : 144) * (g >> 3);
        const int j = (int)(g & 7);
        int sc, mn;
        mm_k4_scale_min(j, b + 4, &sc, &mn);
        __m256i c = mm_nib32(b + (k5 ? 48 : 16) + 32 * (j >> 1), j);
        if (k5) { /* bit j of qh[l], as 16 */
            const __m256i hb = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(b + 16)), _mm_cvtsi32_si128(j));
            c = _mm256_or_si256(c, _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(1)), 4));
        }
        /* d1 * q - m1 as fma(q, d1, -m1) */
        mm_grp_set(q, c, mm_half(b) * (float)sc, -(mm_half(b + 2) * (float)mn));
        break;
    }
    case RWKV7_DTYPE_Q6_K: {
        const uint8_t *b = row + 210 * (g >> 3);
        const int gq = (int)(g & 7), h = gq >> 2, qq = gq & 3;
        const uint8_t *ql = b + 64 * h + 32 * (qq & 1), *qh = b + 128 + 32 * h, *sc = b + 192 + 8 * h;
        const float d = mm_half(b + 208);
        const __m256i lraw = _mm256_loadu_si256((const __m256i *)ql);
        const __m256i lo = _mm256_and_si256((qq >> 1) ? _mm256_srli_epi16(lraw, 4) : lraw, _mm256_set1_epi8(0x0F));
        const __m256i hraw = _mm256_loadu_si256((const __m256i *)qh);
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(hraw, _mm_cvtsi32_si128(2 * qq)), _mm256_set1_epi8(3));
        q->code = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
        /* (d * sc) * q in ggml's order; elements 0..15 use scale 2qq, 16..31 scale 2qq + 1 */
        q->scale[0] = d * (float)(int8_t)sc[2 * qq];
        q->scale[1] = d * (float)(int8_t)sc[2 * qq + 1];
        q->bias[0] = q->bias[1] = 0.0f;
        break;
    }
    case RWKV7_DTYPE_IQ4_NL: {
        const uint8_t *b = row + 18 * g;
        mm_grp_set(q, _mm256_shuffle_epi8(tab, mm_nib16(b + 2)), mm_half(b), 0.0f);
        break;
    }
    case RWKV7_DTYPE_IQ4_XS: {
        const uint8_t *b = row + 136 * (g >> 3);
        const int ib = (int)(g & 7);
        const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | ((rwkv7_le16(b + 2) >> (2 * ib)) & 3) << 4;
        mm_grp_set(q, _mm256_shuffle_epi8(tab, mm_nib16(b + 8 + 16 * ib)), mm_half(b) * (float)(ls - 32), 0.0f);
        break;
    }
    default:
        mm_grp_set(q, _mm256_setzero_si256(), 0.0f, 0.0f);
        break;
    }
}

/* Group g as four 8-float vectors (AVX2 width). */
MM_INLINE void mm_deq8(int type, const uint8_t *row, int64_t g, __m256 v[4]) {
    if (type == RWKV7_DTYPE_F32) {
        const float *p = (const float *)row + 32 * g; /* F32 rows are 4-byte aligned in GGUF */
        for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(p + 8 * i);
        return;
    }
    if (type == RWKV7_DTYPE_F16 || type == RWKV7_DTYPE_BF16) {
        const uint8_t *p = row + 64 * g;
        for (int i = 0; i < 4; i++) {
            const __m128i h = _mm_loadu_si128((const __m128i *)(p + 16 * i));
            v[i] = type == RWKV7_DTYPE_F16 ? _mm256_cvtph_ps(h)
                                           : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
        }
        return;
    }
    struct mm_grp q;
    mm_grp(type, row, g, &q);
    const __m128i c[2] = {_mm256_castsi256_si128(q.code), _mm256_extracti128_si256(q.code, 1)};
    for (int i = 0; i < 4; i++) {
        const __m128i b = (i & 1) ? _mm_srli_si128(c[i >> 1], 8) : c[i >> 1];
        v[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), _mm256_set1_ps(q.scale[i >> 1]),
                               _mm256_set1_ps(q.bias[i >> 1]));
    }
}

/* Element k of a float-type row (the K % 32 leftovers; exact conversions). */
MM_INLINE float mm_tail(int type, const uint8_t *row, int64_t k) {
    if (type == RWKV7_DTYPE_F32) return ((const float *)row)[k];
    if (type == RWKV7_DTYPE_F16) return mm_half(row + 2 * k);
    return rwkv7_bf16_to_f32(rwkv7_le16(row + 2 * k));
}

#endif
