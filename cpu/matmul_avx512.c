/* matmul_avx512.c: the matmul kernels (matmul_kern.h) for AVX-512F/BW, 16 lanes, with the AVX2
 * group code decoders and a 16-lane conversion (mm_cvt16), plus table-lookup (mm_lut16) and
 * pre-assembled (mm_pre256) decoders for the 4-6 bit types. Only this file is compiled for
 * that target (pragma below); matmul.c calls in only when __builtin_cpu_supports reports avx512f,
 * avx512bw, avx2, fma and f16c. The wider FMA doubles the prefill (tile) throughput; F16/Q8_0 decode
 * is bound by memory bandwidth either way, 4-6 bit decode by the ops per weight, which the
 * AVX-512-only decoders cut. Arithmetic and invariants: matmul_simd.h. */
#if defined(__x86_64__) || defined(__i386__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
#endif

#include "matmul_simd.h"
#include "matmul_deq_x86.h"

/* Upper and lower 256-bit halves added, then the AVX2 tree (matmul_avx2.c). */
MM_INLINE float mk_reduce16(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m256 h = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Group g of a float-type row as two 16-float vectors. */
MM_INLINE void mm_float16(int type, const uint8_t *row, int64_t g, __m512 v[2]) {
    if (type == RWKV7_DTYPE_F32) {
        const float *p = (const float *)row + 32 * g; /* F32 rows are 4-byte aligned in GGUF */
        v[0] = _mm512_loadu_ps(p);
        v[1] = _mm512_loadu_ps(p + 16);
        return;
    }
    const uint8_t *p = row + 64 * g;
    for (int i = 0; i < 2; i++) {
        const __m256i h = _mm256_loadu_si256((const __m256i *)(p + 32 * i));
        v[i] = type == RWKV7_DTYPE_F16 ? _mm512_cvtph_ps(h)
                                       : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

/* 32 codes with their scale/bias pair as two 16-float vectors: one 16-lane widen + convert + fma
 * per half, half the conversion work of the 8-lane form (mm_cvt8); same values. */
MM_INLINE void mm_cvt16(__m256i code, const float *s, const float *b, __m512 v[2]) {
    const __m128i c[2] = {_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1)};
    for (int i = 0; i < 2; i++)
        v[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c[i])), _mm512_set1_ps(s[i]), _mm512_set1_ps(b[i]));
}

/* The 4-bit types with one scale (and bias) per 32 weights: Q4_0, Q4_1, IQ4_NL, Q4_K, IQ4_XS. Their
 * weight w = fma(value(code), scale, bias) takes only 16 values per group, so instead of converting
 * every code (widen, int -> float, fma: three ops per 16 weights) the group's 16 values are
 * computed once with one 16-lane fma into a table, and each 16 weights are one vpermps of that
 * table indexed by their codes. vpermps reads only the low 4 bits of each index, so a zero-extended
 * byte of packed nibbles indexes by its low nibble with no mask. Each table entry is the same
 * single-rounded fma the conversion computes, so the weights (and results) are bit-identical. */
MM_INLINE bool mm_lut_type(int type) {
    return type == RWKV7_DTYPE_Q4_0 || type == RWKV7_DTYPE_Q4_1 || type == RWKV7_DTYPE_IQ4_NL ||
           type == RWKV7_DTYPE_Q4_K || type == RWKV7_DTYPE_IQ4_XS;
}

/* 16 bytes at p zero-extended to 16 dwords. */
MM_INLINE __m512i mm_u8x16(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }

/* Group g of a table type (mm_lut_type) with its scale/bias pair s, b as two 16-float vectors. */
MM_INLINE void mm_lut16(int type, const uint8_t *row, int64_t g, const float *s, const float *b, __m512 v[2]) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 val;        /* the 16 code values, before scaling */
    __m512i lo, hi;    /* indices of elements 0..15 and 16..31 (in their low 4 bits) */
    if (type == RWKV7_DTYPE_Q4_K) {
        /* groups 2i and 2i + 1 share 32 bytes: low nibbles, then high nibbles */
        const int jj = (int)(g & 7);
        const uint8_t *q = row + 144 * (g >> 3) + 16 + 32 * (jj >> 1);
        lo = mm_u8x16(q);
        hi = mm_u8x16(q + 16);
        if (jj & 1) {
            lo = _mm512_srli_epi32(lo, 4);
            hi = _mm512_srli_epi32(hi, 4);
        }
        val = iota;
    } else {
        /* 16 bytes: low nibbles are elements 0..15, high nibbles 16..31 */
        const uint8_t *q = type == RWKV7_DTYPE_Q4_0 || type == RWKV7_DTYPE_IQ4_NL ? row + 18 * g + 2
                           : type == RWKV7_DTYPE_Q4_1                            ? row + 20 * g + 4
                                                                                 : row + 136 * (g >> 3) + 8 + 16 * (g & 7);
        lo = mm_u8x16(q);
        hi = _mm512_srli_epi32(lo, 4);
        val = type == RWKV7_DTYPE_Q4_0   ? _mm512_sub_ps(iota, _mm512_set1_ps(8.0f))
              : type == RWKV7_DTYPE_Q4_1 ? iota
                                         : _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                               _mm_loadu_si128((const __m128i *)rwkv7_kvalues_iq4nl)));
    }
    const __m512 tab = _mm512_fmadd_ps(val, _mm512_set1_ps(s[0]), _mm512_set1_ps(b[0]));
    v[0] = _mm512_permutexvar_ps(lo, tab);
    v[1] = _mm512_permutexvar_ps(hi, tab);
}

/* Q4_K groups 2i and 2i + 1 (g even) as four 16-float vectors: the pair shares its 32 code bytes,
 * so they are widened once for both nibbles (the same entries as two mm_lut16 calls). */
MM_INLINE void mm_lut16x2(const uint8_t *row, int64_t g, const float *s, const float *b, __m512 v[4]) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const uint8_t *q = row + 144 * (g >> 3) + 16 + 32 * ((g & 7) >> 1);
    const __m512i d0 = mm_u8x16(q), d1 = mm_u8x16(q + 16);
    const __m512 t0 = _mm512_fmadd_ps(iota, _mm512_set1_ps(s[0]), _mm512_set1_ps(b[0]));
    const __m512 t1 = _mm512_fmadd_ps(iota, _mm512_set1_ps(s[2]), _mm512_set1_ps(b[2]));
    v[0] = _mm512_permutexvar_ps(d0, t0);
    v[1] = _mm512_permutexvar_ps(d1, t0);
    v[2] = _mm512_permutexvar_ps(_mm512_srli_epi32(d0, 4), t1);
    v[3] = _mm512_permutexvar_ps(_mm512_srli_epi32(d1, 4), t1);
}

/* Q5_K and Q6_K: the fused kernel assembles a row's 256 codes per super-block with 64-byte integer
 * ops (AVX512BW) into a stack buffer, about a third of the ops of assembling them 32 at a time
 * (mm_codes) and then splitting the 256-bit vector for the widening; each group then widens its
 * codes straight from that buffer. The codes are the same bytes mm_codes gives (Q6_K unsigned,
 * with its -32 in the bias), so the weights are bit-identical; the tile path keeps mm_codes. */
MM_INLINE bool mm_pre_type(int type) { return type == RWKV7_DTYPE_Q5_K || type == RWKV7_DTYPE_Q6_K; }

/* Two 256-bit halves as one 512-bit vector. */
MM_INLINE __m512i mm_halves(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/* The 256 codes of super-block sb of a Q5_K/Q6_K row into out (layout: mm_pre_off). */
MM_INLINE void mm_pre256(int type, const uint8_t *row, int64_t sb, uint8_t *out) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* ternary-logic 0xE4 = c ? a : b per bit: bits 0-3 from the nibble a, bits 4-7 from b */
    if (type == RWKV7_DTYPE_Q6_K) {
        const uint8_t *b = row + 210 * sb;
        for (int h = 0; h < 2; h++) {
            /* 128 weights: ql bytes 0..31 / 32..63 hold groups 4h, 4h + 1 (low nibbles) and 4h + 2,
             * 4h + 3 (high nibbles); group 4h + qq takes bits 2qq, 2qq + 1 of qh[l] as bits 4, 5 */
            const __m512i l = _mm512_loadu_si512((const void *)(b + 64 * h));
            const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
            const __m512i h01 = _mm512_sllv_epi16(
                _mm512_and_si512(qh, mm_halves(_mm256_set1_epi8(0x03), _mm256_set1_epi8(0x0C))),
                mm_halves(_mm256_set1_epi16(4), _mm256_set1_epi16(2)));
            const __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(qh, mm_halves(_mm256_setzero_si256(), _mm256_set1_epi16(2))),
                                                 _mm512_set1_epi8(0x30));
            _mm512_storeu_si512((void *)(out + 128 * h), _mm512_ternarylogic_epi32(l, h01, m4, 0xE4));
            _mm512_storeu_si512((void *)(out + 128 * h + 64),
                                _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), h23, m4, 0xE4));
        }
    } else {
        const uint8_t *b = row + 176 * sb;
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 16)));
        const __m512i b4 = _mm512_set1_epi8(0x10);
        for (int i = 0; i < 2; i++) {
            /* qs bytes 0..31 / 32..63 hold groups 4i, 4i + 2 (low nibbles) and 4i + 1, 4i + 3 (high
             * nibbles); group j's fifth bit is bit j of qh[l], moved to bit 4 */
            const __m512i q = _mm512_loadu_si512((const void *)(b + 48 + 64 * i));
            __m512i he, ho;
            if (i == 0) { /* j = 0, 2 (shift left 4, 2) and 1, 3 (left 3, 1) */
                he = _mm512_sllv_epi16(qh, mm_halves(_mm256_set1_epi16(4), _mm256_set1_epi16(2)));
                ho = _mm512_sllv_epi16(qh, mm_halves(_mm256_set1_epi16(3), _mm256_set1_epi16(1)));
            } else { /* j = 4, 6 (right 0, 2) and 5, 7 (right 1, 3) */
                he = _mm512_srlv_epi16(qh, mm_halves(_mm256_setzero_si256(), _mm256_set1_epi16(2)));
                ho = _mm512_srlv_epi16(qh, mm_halves(_mm256_set1_epi16(1), _mm256_set1_epi16(3)));
            }
            _mm512_storeu_si512((void *)(out + 128 * i), _mm512_ternarylogic_epi32(q, _mm512_and_si512(he, b4), m4, 0xE4));
            _mm512_storeu_si512((void *)(out + 128 * i + 64),
                                _mm512_ternarylogic_epi32(_mm512_srli_epi16(q, 4), _mm512_and_si512(ho, b4), m4, 0xE4));
        }
    }
}

/* Offset of group jj's 32 codes in mm_pre256's buffer: in order for Q6_K; for Q5_K each 128 holds
 * groups 4i, 4i + 2 (the low nibbles), then 4i + 1, 4i + 3. */
MM_INLINE int mm_pre_off(int type, int jj) {
    return type == RWKV7_DTYPE_Q6_K ? 32 * jj : 128 * (jj >> 2) + 64 * (jj & 1) + 32 * ((jj >> 1) & 1);
}

/* Group jj from mm_pre256's buffer with its scale/bias pair as two 16-float vectors (as mm_cvt16). */
MM_INLINE void mm_pre_cvt(int type, const uint8_t *codes, int jj, const float *s, const float *b, __m512 v[2]) {
    const uint8_t *c = codes + mm_pre_off(type, jj);
    for (int i = 0; i < 2; i++)
        v[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mm_u8x16(c + 16 * i)), _mm512_set1_ps(s[i]), _mm512_set1_ps(b[i]));
}

#define MK_VF __m512
#define MK_W 16
#define MK_COLS 6
#define MK_FCOLS 4
#define MK_ZERO() _mm512_setzero_ps()
#define MK_LOADU(p) _mm512_loadu_ps(p)
#define MK_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define MK_REDUCE(v) mk_reduce16(v)
#define MK_STOREU(p, v) _mm512_storeu_ps(p, v)
#define MK_FLOAT(type, row, g, w) mm_float16(type, row, g, w)
#define MK_CVT(code, s, b, w) mm_cvt16(code, s, b, w)
#define MK_LUT_TYPE(type) mm_lut_type(type)
#define MK_LUT(type, row, g, s, b, w) mm_lut16(type, row, g, s, b, w)
#define MK_PAIR_TYPE(type) ((type) == RWKV7_DTYPE_Q4_K)
#define MK_PAIR(type, row, g, s, b, w) mm_lut16x2(row, g, s, b, w)
#define MK_PRE_TYPE(type) mm_pre_type(type)
#define MK_PRE(type, row, sb, codes) mm_pre256(type, row, sb, codes)
#define MK_PRE_CVT(type, codes, jj, s, b, w) mm_pre_cvt(type, codes, jj, s, b, w)
#define MK_NAME(n) n##_avx512

#include "matmul_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#else
/* Not x86: matmul.c never references the AVX-512 kernels. */
typedef int rwkv7_matmul_avx512_unused;
#endif
