/* matmul_deq_x86.h: AVX2 decoders of one 32-element group of a weight row, for the matmul
 * kernels (matmul_kern.h): mm_codes (32 int8 codes), mm_scales (their scales and biases, unpacked
 * once per 256 weights for the super-block types; shared with the AVX level in
 * matmul_scales_x86.h, fed by the AVX2 hooks below), mm_cvt8 (to 4 x 8 floats), mm_float8 (float
 * types). Included only by files compiled for a target with avx2,fma,f16c (after their target
 * pragma). Group g covers elements [32g, 32g + 32): one block of the 32-block types, one sub-block
 * of the 256 super-block types.
 *
 * Invariant: the fused and the tile kernel decode through these same functions, so they see the
 * same weights; the AVX-512-only decoders (matmul_avx512.c: table lookup, pre-assembled Q5_K/Q6_K
 * codes, Q4_K pairs) produce exactly these codes and fma(code, scale, bias) values. Values equal the type table's to_f32 (runtime/dequant_*.c) except the last-bit
 * rounding of the types with a min/bias (see mm_codes). Layouts: quant-formats.md §3. */
#ifndef RWKV7_MATMUL_DEQ_X86_H
#define RWKV7_MATMUL_DEQ_X86_H

#include <immintrin.h>

#include "dtype.h"
#include "dtype_dequant.h"
#include "iq_tables.h"

#define MM_INLINE static inline __attribute__((always_inline))

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

/* Bit i of the 32-bit mask as 0xFF (bit set) or 0 in byte i. */
MM_INLINE __m256i mm_bits32(uint32_t bits) {
    const __m256i rep = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                            _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll,
                                                               0x0303030303030303ll));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(rep, bit), bit);
}

/* IQ3_XXS / IQ3_S: a group's 32 weights are 8 grid entries of 4 unsigned bytes (byte j = element j,
 * so on little-endian x86 the 8 gathered dwords are the 32 elements in order), each element
 * negated where its sign bit is set. The grid value times the sign is the signed code, and
 * fma(code, db, 0) rounds exactly like the table's (db * grid) * sign (rounding is symmetric in
 * the sign). One vpgatherdd per 32 weights replaces 8 scalar table loads and inserts. */
MM_INLINE __m256i mm_iq3_codes(const uint32_t *grid, __m256i idx, uint32_t signs) {
    const __m256i v = _mm256_i32gather_epi32((const int *)grid, idx, 4);
    const __m256i neg = mm_bits32(signs);
    return _mm256_sub_epi8(_mm256_xor_si256(v, neg), neg); /* (v ^ -1) - (-1) = -v where negative */
}

/* IQ3_XXS sign word of group jj: four 7-bit fields, each expanded by ksigns to 8 bits (the 8th is
 * the parity), one byte per 8 weights. */
MM_INLINE uint32_t mm_iq3xxs_signs(uint32_t w) {
    return (uint32_t)rwkv7_ksigns_iq2xs[w & 127] | (uint32_t)rwkv7_ksigns_iq2xs[(w >> 7) & 127] << 8 |
           (uint32_t)rwkv7_ksigns_iq2xs[(w >> 14) & 127] << 16 | (uint32_t)rwkv7_ksigns_iq2xs[(w >> 21) & 127] << 24;
}

/* Codes of group g of a quantized row. */
MM_INLINE __m256i mm_codes(int type, const uint8_t *row, int64_t g) {
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)rwkv7_kvalues_iq4nl));
    switch (type) {
    case RWKV7_DTYPE_Q8_0: return _mm256_loadu_si256((const __m256i *)(row + 34 * g + 2));
    case RWKV7_DTYPE_Q4_0: return _mm256_sub_epi8(mm_nib16(row + 18 * g + 2), _mm256_set1_epi8(8));
    case RWKV7_DTYPE_Q4_1: return mm_nib16(row + 20 * g + 4);
    case RWKV7_DTYPE_Q5_0: {
        const uint8_t *b = row + 22 * g;
        return _mm256_sub_epi8(_mm256_or_si256(mm_nib16(b + 6), mm_qh32(rwkv7_le32(b + 2))), _mm256_set1_epi8(16));
    }
    case RWKV7_DTYPE_Q5_1: {
        const uint8_t *b = row + 24 * g;
        return _mm256_or_si256(mm_nib16(b + 8), mm_qh32(rwkv7_le32(b + 4)));
    }
    case RWKV7_DTYPE_Q4_K: {
        const int j = (int)(g & 7);
        return mm_nib32(row + 144 * (g >> 3) + 16 + 32 * (j >> 1), j);
    }
    case RWKV7_DTYPE_Q5_K: {
        const uint8_t *b = row + 176 * (g >> 3);
        const int j = (int)(g & 7);
        /* bit j of qh[l], as 16 */
        const __m256i hb = _mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(b + 16)), _mm_cvtsi32_si128(j));
        return _mm256_or_si256(mm_nib32(b + 48 + 32 * (j >> 1), j),
                               _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(1)), 4));
    }
    case RWKV7_DTYPE_Q6_K: {
        const uint8_t *b = row + 210 * (g >> 3);
        const int gq = (int)(g & 7), h = gq >> 2, qq = gq & 3;
        const __m256i lraw = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32 * (qq & 1)));
        const __m256i lo = _mm256_and_si256((qq >> 1) ? _mm256_srli_epi16(lraw, 4) : lraw, _mm256_set1_epi8(0x0F));
        const __m256i hraw = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(hraw, _mm_cvtsi32_si128(2 * qq)), _mm256_set1_epi8(3));
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)); /* unsigned: the -32 is in the bias */
    }
    case RWKV7_DTYPE_IQ3_XXS: {
        const uint8_t *b = row + 98 * (g >> 3);
        const int jj = (int)(g & 7);
        const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * jj)));
        return mm_iq3_codes(rwkv7_iq3xxs_grid, idx, mm_iq3xxs_signs(rwkv7_le32(b + 66 + 4 * jj)));
    }
    case RWKV7_DTYPE_IQ3_S: {
        const uint8_t *b = row + 110 * (g >> 3);
        const int jj = (int)(g & 7);
        /* 9-bit index: qs byte k, with bit k of qh[jj] as bit 8 */
        const __m256i hi = _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32(b[66 + jj]),
                                                              _mm256_setr_epi32(8, 7, 6, 5, 4, 3, 2, 1)),
                                            _mm256_set1_epi32(0x100));
        const __m256i idx = _mm256_or_si256(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * jj))), hi);
        return mm_iq3_codes(rwkv7_iq3s_grid, idx, rwkv7_le32(b + 74 + 4 * jj));
    }
    case RWKV7_DTYPE_IQ4_NL: return _mm256_shuffle_epi8(tab, mm_nib16(row + 18 * g + 2));
    case RWKV7_DTYPE_IQ4_XS: return _mm256_shuffle_epi8(tab, mm_nib16(row + 136 * (g >> 3) + 8 + 16 * (g & 7)));
    default: return _mm256_setzero_si256();
    }
}

/* 8 unsigned bytes (little-endian in u) as 8 floats. */
MM_INLINE __m256 mm_u8x8_ps(uint64_t u) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)u)));
}

/* The low 8 signed bytes of v as 8 floats. */
MM_INLINE __m256 mm_i8x8_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

/* IQ4_XS / IQ3_S integer group scales as floats, with AVX2's per-lane variable shifts. */
MM_INLINE __m256 mm_iq_ls8(int type, const uint8_t *p) {
    const __m256i sh4 = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), nib = _mm256_set1_epi32(0xF);
    if (type == RWKV7_DTYPE_IQ4_XS) {
        /* group ib's 6-bit scale: nibble ib of bytes 4-7 | bits 2ib..2ib+1 of the u16 at 2, minus 32 */
        const __m256i lo = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)rwkv7_le32(p + 4)), sh4), nib);
        const __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(rwkv7_le16(p + 2)),
                                                              _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                            _mm256_set1_epi32(3));
        return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32)));
    }
    /* IQ3_S: group ib's scale 1 + 2 * nibble ib of the 4 scale bytes */
    const __m256i n = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)rwkv7_le32(p + 106)), sh4), nib);
    return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(n, n), _mm256_set1_epi32(1)));
}

/* IQ3_XXS: the 8 sign/scale words' top nibbles (w >> 28) as floats. */
MM_INLINE __m256 mm_iq3xxs_ls8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(p + 66)), 28));
}

#include "matmul_scales_x86.h"

/* Group g of a float-type row as four 8-float vectors. */
MM_INLINE void mm_float8(int type, const uint8_t *row, int64_t g, __m256 v[4]) {
    if (type == RWKV7_DTYPE_F32) {
        const float *p = (const float *)row + 32 * g; /* F32 rows are 4-byte aligned in GGUF */
        for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(p + 8 * i);
        return;
    }
    const uint8_t *p = row + 64 * g;
    for (int i = 0; i < 4; i++) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(p + 16 * i));
        v[i] = type == RWKV7_DTYPE_F16 ? _mm256_cvtph_ps(h)
                                       : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
}

/* Codes with their group's two scales/biases (s, b point at the group's pair) as 4 x 8 floats. */
MM_INLINE void mm_cvt8(__m256i code, const float *s, const float *b, __m256 v[4]) {
    const __m128i c[2] = {_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1)};
    for (int i = 0; i < 4; i++) {
        const __m128i q = (i & 1) ? _mm_srli_si128(c[i >> 1], 8) : c[i >> 1];
        v[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_set1_ps(s[i >> 1]),
                               _mm256_set1_ps(b[i >> 1]));
    }
}

#endif
