/* matmul_avx.c: the matmul kernels (matmul_kern.h) for CPUs with AVX + FMA + F16C but no AVX2
 * (e.g. some virtualized EPYCs that hide AVX2): 8-lane fp32 math in 256-bit registers, while every
 * integer step of the decoders (nibble split, high-bit merge, sign flip, widening) runs on 128-bit
 * SSE4.1/SSSE3 registers, since 256-bit integer ops are AVX2. Only this file is compiled for that
 * target (pragma below, no global -mavx), so the binary still runs on any x86-64; matmul.c calls
 * in only when the CPU and the OS (XGETBV) support AVX, FMA and F16C.
 *
 * The decoders mirror matmul_deq_x86.h (the AVX2 ones) op for op at half width: the same codes,
 * the same single-rounded scales and biases (mm_scales itself is shared: matmul_scales_x86.h, fed
 * by this file's 128-bit hooks), the same fma(code, scale, bias) per weight, so the
 * weights this level sees equal the AVX2 level's bit for bit; the lane accumulators and their
 * reduction tree are the AVX2 level's too (8 lanes), so results equal the AVX2 path's.
 * Arithmetic and invariants: matmul_simd.h. Layouts: docs/spec/quant-formats.md §3. */
#if defined(__x86_64__) || defined(__i386__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx,fma,f16c,sse4.1,ssse3"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx,fma,f16c,sse4.1,ssse3")
#endif

#include <immintrin.h>

#include "dtype.h"
#include "dtype_dequant.h"
#include "iq_tables.h"
#include "matmul_simd.h"

#define MM_INLINE static inline __attribute__((always_inline))

/* A group's 32 codes (signed bytes, element order) as two 128-bit halves: elements 0..15, 16..31. */
struct mm_c32 {
    __m128i lo, hi;
};

MM_INLINE struct mm_c32 mm_c32(__m128i lo, __m128i hi) {
    struct mm_c32 c = {lo, hi};
    return c;
}

/* 16 packed bytes of nibbles -> 32 codes: low nibbles are elements 0..15, high nibbles 16..31. */
MM_INLINE struct mm_c32 mm_nib16(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    return mm_c32(_mm_and_si128(q, m), _mm_and_si128(_mm_srli_epi16(q, 4), m));
}

/* 32 bytes at p -> their low (j even) or high (j odd) nibbles. */
MM_INLINE struct mm_c32 mm_nib32(const uint8_t *p, int j) {
    __m128i a = _mm_loadu_si128((const __m128i *)p), b = _mm_loadu_si128((const __m128i *)(p + 16));
    if (j & 1) {
        a = _mm_srli_epi16(a, 4);
        b = _mm_srli_epi16(b, 4);
    }
    const __m128i m = _mm_set1_epi8(0x0F);
    return mm_c32(_mm_and_si128(a, m), _mm_and_si128(b, m));
}

/* Bit i of the 32-bit mask as 0xFF (bit set) or 0 in byte i: each byte of the mask is copied to
 * 8 lanes (pshufb), and lane j keeps bit j. */
MM_INLINE struct mm_c32 mm_bits32(uint32_t bits) {
    const __m128i v = _mm_cvtsi32_si128((int)bits);
    const __m128i bit = _mm_set1_epi64x((long long)0x8040201008040201ull);
    const __m128i lo = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    const __m128i hi = _mm_shuffle_epi8(v, _mm_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    return mm_c32(_mm_cmpeq_epi8(_mm_and_si128(lo, bit), bit), _mm_cmpeq_epi8(_mm_and_si128(hi, bit), bit));
}

/* Bit i of the 32-bit qh as 0 or 0x10 in byte i (the fifth bit of Q5_0 / Q5_1 codes). */
MM_INLINE struct mm_c32 mm_qh32(uint32_t qh) {
    const struct mm_c32 m = mm_bits32(qh);
    const __m128i b4 = _mm_set1_epi8(0x10);
    return mm_c32(_mm_and_si128(m.lo, b4), _mm_and_si128(m.hi, b4));
}

MM_INLINE struct mm_c32 mm_or32(struct mm_c32 a, struct mm_c32 b) {
    return mm_c32(_mm_or_si128(a.lo, b.lo), _mm_or_si128(a.hi, b.hi));
}

MM_INLINE struct mm_c32 mm_sub32(struct mm_c32 a, int v) {
    const __m128i s = _mm_set1_epi8((char)v);
    return mm_c32(_mm_sub_epi8(a.lo, s), _mm_sub_epi8(a.hi, s));
}

/* IQ3_XXS / IQ3_S: 8 grid entries of 4 unsigned bytes (idx[k] picks the entry of elements 4k..4k+3),
 * each element negated where its sign bit is set; without AVX2's gather the 8 dwords are scalar
 * table loads inserted 4 per 128-bit register. Values as mm_iq3_codes in matmul_deq_x86.h. */
MM_INLINE struct mm_c32 mm_iq3_codes(const uint32_t *grid, const unsigned idx[8], uint32_t signs) {
    const __m128i lo = _mm_setr_epi32((int)grid[idx[0]], (int)grid[idx[1]], (int)grid[idx[2]], (int)grid[idx[3]]);
    const __m128i hi = _mm_setr_epi32((int)grid[idx[4]], (int)grid[idx[5]], (int)grid[idx[6]], (int)grid[idx[7]]);
    const struct mm_c32 neg = mm_bits32(signs);
    /* (v ^ -1) - (-1) = -v where negative */
    return mm_c32(_mm_sub_epi8(_mm_xor_si128(lo, neg.lo), neg.lo), _mm_sub_epi8(_mm_xor_si128(hi, neg.hi), neg.hi));
}

/* IQ3_XXS sign word of a group: four 7-bit fields, each expanded by ksigns to 8 bits. */
MM_INLINE uint32_t mm_iq3xxs_signs(uint32_t w) {
    return (uint32_t)rwkv7_ksigns_iq2xs[w & 127] | (uint32_t)rwkv7_ksigns_iq2xs[(w >> 7) & 127] << 8 |
           (uint32_t)rwkv7_ksigns_iq2xs[(w >> 14) & 127] << 16 | (uint32_t)rwkv7_ksigns_iq2xs[(w >> 21) & 127] << 24;
}

/* Codes of group g of a quantized row (the same bytes as matmul_deq_x86.h's mm_codes). */
MM_INLINE struct mm_c32 mm_codes(int type, const uint8_t *row, int64_t g) {
    switch (type) {
    case RWKV7_DTYPE_Q8_0: {
        const uint8_t *q = row + 34 * g + 2;
        return mm_c32(_mm_loadu_si128((const __m128i *)q), _mm_loadu_si128((const __m128i *)(q + 16)));
    }
    case RWKV7_DTYPE_Q4_0: return mm_sub32(mm_nib16(row + 18 * g + 2), 8);
    case RWKV7_DTYPE_Q4_1: return mm_nib16(row + 20 * g + 4);
    case RWKV7_DTYPE_Q5_0: {
        const uint8_t *b = row + 22 * g;
        return mm_sub32(mm_or32(mm_nib16(b + 6), mm_qh32(rwkv7_le32(b + 2))), 16);
    }
    case RWKV7_DTYPE_Q5_1: {
        const uint8_t *b = row + 24 * g;
        return mm_or32(mm_nib16(b + 8), mm_qh32(rwkv7_le32(b + 4)));
    }
    case RWKV7_DTYPE_Q4_K: {
        const int j = (int)(g & 7);
        return mm_nib32(row + 144 * (g >> 3) + 16 + 32 * (j >> 1), j);
    }
    case RWKV7_DTYPE_Q5_K: {
        const uint8_t *b = row + 176 * (g >> 3);
        const int j = (int)(g & 7);
        /* bit j of qh[l], moved to bit 4 */
        const __m128i sh = _mm_cvtsi32_si128(j), one = _mm_set1_epi8(1);
        const __m128i h0 = _mm_and_si128(_mm_srl_epi16(_mm_loadu_si128((const __m128i *)(b + 16)), sh), one);
        const __m128i h1 = _mm_and_si128(_mm_srl_epi16(_mm_loadu_si128((const __m128i *)(b + 32)), sh), one);
        return mm_or32(mm_nib32(b + 48 + 32 * (j >> 1), j), mm_c32(_mm_slli_epi16(h0, 4), _mm_slli_epi16(h1, 4)));
    }
    case RWKV7_DTYPE_Q6_K: {
        const uint8_t *b = row + 210 * (g >> 3);
        const int gq = (int)(g & 7), h = gq >> 2, qq = gq & 3;
        const struct mm_c32 lo = mm_nib32(b + 64 * h + 32 * (qq & 1), qq >> 1);
        const __m128i sh = _mm_cvtsi32_si128(2 * qq), three = _mm_set1_epi8(3);
        const uint8_t *qh = b + 128 + 32 * h;
        const __m128i h0 = _mm_and_si128(_mm_srl_epi16(_mm_loadu_si128((const __m128i *)qh), sh), three);
        const __m128i h1 = _mm_and_si128(_mm_srl_epi16(_mm_loadu_si128((const __m128i *)(qh + 16)), sh), three);
        /* unsigned: the -32 is in the bias (mm_scales) */
        return mm_or32(lo, mm_c32(_mm_slli_epi16(h0, 4), _mm_slli_epi16(h1, 4)));
    }
    case RWKV7_DTYPE_IQ3_XXS: {
        const uint8_t *b = row + 98 * (g >> 3);
        const int jj = (int)(g & 7);
        const uint8_t *q = b + 2 + 8 * jj;
        const unsigned idx[8] = {q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]};
        return mm_iq3_codes(rwkv7_iq3xxs_grid, idx, mm_iq3xxs_signs(rwkv7_le32(b + 66 + 4 * jj)));
    }
    case RWKV7_DTYPE_IQ3_S: {
        const uint8_t *b = row + 110 * (g >> 3);
        const int jj = (int)(g & 7);
        /* 9-bit index: qs byte k, with bit k of qh[jj] as bit 8 */
        const uint8_t *q = b + 2 + 8 * jj;
        const unsigned h = b[66 + jj];
        unsigned idx[8];
        for (int k = 0; k < 8; k++) idx[k] = q[k] | ((h >> k) & 1u) << 8;
        return mm_iq3_codes(rwkv7_iq3s_grid, idx, rwkv7_le32(b + 74 + 4 * jj));
    }
    case RWKV7_DTYPE_IQ4_NL:
    case RWKV7_DTYPE_IQ4_XS: {
        const __m128i tab = _mm_loadu_si128((const __m128i *)rwkv7_kvalues_iq4nl);
        const struct mm_c32 n = mm_nib16(type == RWKV7_DTYPE_IQ4_NL ? row + 18 * g + 2
                                                                    : row + 136 * (g >> 3) + 8 + 16 * (g & 7));
        return mm_c32(_mm_shuffle_epi8(tab, n.lo), _mm_shuffle_epi8(tab, n.hi));
    }
    default: return mm_c32(_mm_setzero_si128(), _mm_setzero_si128());
    }
}

/* Two 128-bit integer halves as one 256-bit vector (vinsertf128: AVX, no AVX2 needed). */
MM_INLINE __m256i mm_join(__m128i lo, __m128i hi) { return _mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1); }

/* 8 unsigned bytes (little-endian in u) as 8 floats. */
MM_INLINE __m256 mm_u8x8_ps(uint64_t u) {
    const __m128i v = _mm_cvtsi64_si128((long long)u);
    return _mm256_cvtepi32_ps(mm_join(_mm_cvtepu8_epi32(v), _mm_cvtepu8_epi32(_mm_srli_si128(v, 4))));
}

/* The low 8 signed bytes of v as 8 floats. */
MM_INLINE __m256 mm_i8x8_ps(__m128i v) {
    return _mm256_cvtepi32_ps(mm_join(_mm_cvtepi8_epi32(v), _mm_cvtepi8_epi32(_mm_srli_si128(v, 4))));
}

/* IQ4_XS / IQ3_S integer group scales as floats: AVX2's per-lane variable shifts done in scalar
 * code (once per 256 weights). */
MM_INLINE __m256 mm_iq_ls8(int type, const uint8_t *p) {
    int32_t ls[8];
    if (type == RWKV7_DTYPE_IQ4_XS) {
        /* 6-bit scale: nibble ib of bytes 4-7 | bits 2ib..2ib+1 of the u16 at 2, minus 32 */
        const uint32_t lo = rwkv7_le32(p + 4), hi = rwkv7_le16(p + 2);
        for (int i = 0; i < 8; i++) ls[i] = (int32_t)(((lo >> 4 * i) & 0xF) | ((hi >> 2 * i) & 3) << 4) - 32;
    } else {
        /* 1 + 2 * nibble ib of the 4 scale bytes */
        const uint32_t nib = rwkv7_le32(p + 106);
        for (int i = 0; i < 8; i++) ls[i] = (int32_t)(2 * ((nib >> 4 * i) & 0xF) + 1);
    }
    return _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)ls));
}

/* IQ3_XXS: the 8 sign/scale words' top nibbles (w >> 28) as floats, two 128-bit halves. */
MM_INLINE __m256 mm_iq3xxs_ls8(const uint8_t *p) {
    const __m128i w0 = _mm_srli_epi32(_mm_loadu_si128((const __m128i *)(p + 66)), 28);
    const __m128i w1 = _mm_srli_epi32(_mm_loadu_si128((const __m128i *)(p + 82)), 28);
    return _mm256_cvtepi32_ps(mm_join(w0, w1));
}

#include "matmul_scales_x86.h"

/* Group g of a float-type row as four 8-float vectors (BF16: each 16-bit value moved to the top
 * half of a zeroed dword by interleaving with zeros, the 128-bit form of AVX2's widen + shift). */
MM_INLINE void mm_float8(int type, const uint8_t *row, int64_t g, __m256 v[4]) {
    if (type == RWKV7_DTYPE_F32) {
        const float *p = (const float *)row + 32 * g; /* F32 rows are 4-byte aligned in GGUF */
        for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(p + 8 * i);
        return;
    }
    const uint8_t *p = row + 64 * g;
    const __m128i z = _mm_setzero_si128();
    for (int i = 0; i < 4; i++) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(p + 16 * i));
        v[i] = type == RWKV7_DTYPE_F16 ? _mm256_cvtph_ps(h)
                                       : _mm256_castsi256_ps(mm_join(_mm_unpacklo_epi16(z, h), _mm_unpackhi_epi16(z, h)));
    }
}

/* Codes with their group's two scales/biases (s, b point at the group's pair) as 4 x 8 floats. */
MM_INLINE void mm_cvt8(struct mm_c32 code, const float *s, const float *b, __m256 v[4]) {
    const __m128i c[2] = {code.lo, code.hi};
    for (int i = 0; i < 4; i++) {
        const __m128i q = (i & 1) ? _mm_srli_si128(c[i >> 1], 8) : c[i >> 1];
        v[i] = _mm256_fmadd_ps(mm_i8x8_ps(q), _mm256_set1_ps(s[i >> 1]), _mm256_set1_ps(b[i >> 1]));
    }
}

/* Lanes summed as ((0+4)+(2+6)) + ((1+5)+(3+7)): the AVX2 level's tree. */
MM_INLINE float mk_reduce8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define MK_VF __m256
#define MK_W 8
#define MK_COLS 3
#define MK_FCOLS 2
#define MK_ZERO() _mm256_setzero_ps()
#define MK_LOADU(p) _mm256_loadu_ps(p)
#define MK_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define MK_REDUCE(v) mk_reduce8(v)
#define MK_STOREU(p, v) _mm256_storeu_ps(p, v)
#define MK_FLOAT(type, row, g, w) mm_float8(type, row, g, w)
#define MK_CVT(code, s, b, w) mm_cvt8(code, s, b, w)
#define MK_NAME(n) n##_avx

#include "matmul_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#else
/* Not x86: matmul.c never references the AVX kernels. */
typedef int rwkv7_matmul_avx_unused;
#endif
