/* matmul_scales_x86.h: what the AVX2 (matmul_deq_x86.h) and the AVX (matmul_avx.c) decoders share
 * word for word: the fp16 field read, the super-block test, the per-group scales and biases
 * (mm_scales) and the float-row tail. Each includer defines first, for its instruction set (the
 * values must be the same bits at every level):
 *   MM_INLINE;
 *   __m256 mm_u8x8_ps(uint64_t u)          8 unsigned bytes (little-endian in u) as 8 floats;
 *   __m256 mm_i8x8_ps(__m128i v)           the low 8 signed bytes of v as 8 floats;
 *   __m256 mm_iq_ls8(int type, const uint8_t *p)  the 8 integer group scales of an IQ4_XS
 *       (6-bit scale - 32) or IQ3_S (1 + 2 * nibble) super-block at p, as floats;
 *   __m256 mm_iq3xxs_ls8(const uint8_t *p) the 8 (w >> 28) of an IQ3_XXS super-block's sign/scale
 *       words, as floats.
 * Shared because a fix to one level's scale arithmetic must reach the other (they mirror each
 * other bit for bit; test_cpu_matmul runs every type at every level). */
#ifndef RWKV7_MATMUL_SCALES_X86_H
#define RWKV7_MATMUL_SCALES_X86_H

/* fp16 field -> float with F16C: exact like rwkv7_load_half, but without the software
 * conversion's subnormal float multiply (a ~150-cycle microcode assist per call on x86 whenever a
 * block scale is an fp16 subnormal, common for small-magnitude weights). */
MM_INLINE float mm_half(const uint8_t *p) { return _cvtsh_ss(rwkv7_le16(p)); }

/* A quantized 32-weight group decodes as w[i] = fma(code[i], scale[h], bias[h]), h = i / 16 (only
 * Q6_K has two different halves): mm_codes gives the codes (one signed byte per weight, in element
 * order), mm_scales the scales and biases. The fma rounds once, so Q4_1, Q5_1, Q4_K and Q5_K
 * weights (code * scale + bias) can differ from the table's to_f32 (mul, then add) in the last
 * bit; the symmetric types are exact (bias 0, or for Q6_K the exact -32 * scale of its unsigned
 * codes, see mm_scales). */

/* True for the 256-weight super-block types, whose scales mm_scales decodes 8 groups at a time. */
MM_INLINE bool mm_is_k(int type) {
    return type == RWKV7_DTYPE_Q4_K || type == RWKV7_DTYPE_Q5_K || type == RWKV7_DTYPE_Q6_K ||
           type == RWKV7_DTYPE_IQ4_XS || type == RWKV7_DTYPE_IQ3_XXS || type == RWKV7_DTYPE_IQ3_S;
}

/* 8 per-group floats v[j] -> s[2j] = s[2j + 1] = v[j] (the cache holds one value per 16 weights). */
MM_INLINE void mm_store_pairs(float *s, __m256 v) {
    const __m256 lo = _mm256_unpacklo_ps(v, v), hi = _mm256_unpackhi_ps(v, v); /* v0v0v1v1 v4v4v5v5 | v2v2v3v3 v6v6v7v7 */
    _mm256_storeu_ps(s, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(s + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* Scales and biases, two per group (one per 16 weights): for a 32-block type those of group g
 * (s[0..1], b[0..1]); for a super-block type (mm_is_k) those of all 8 groups of the super-block
 * holding g (s[0..15], b[0..15]), unpacked with vector integer ops once per 256 weights. Every
 * value is the single-rounded product the scalar formula gives (d * sc, -(dmin * mn),
 * d * (ls - 32)), so the vector unpacking changes no bit. */
MM_INLINE void mm_scales(int type, const uint8_t *row, int64_t g, float *s, float *b) {
    switch (type) {
    case RWKV7_DTYPE_Q8_0: s[0] = s[1] = mm_half(row + 34 * g); b[0] = b[1] = 0.0f; break;
    case RWKV7_DTYPE_Q4_0: s[0] = s[1] = mm_half(row + 18 * g); b[0] = b[1] = 0.0f; break;
    case RWKV7_DTYPE_Q5_0: s[0] = s[1] = mm_half(row + 22 * g); b[0] = b[1] = 0.0f; break;
    case RWKV7_DTYPE_IQ4_NL: s[0] = s[1] = mm_half(row + 18 * g); b[0] = b[1] = 0.0f; break;
    case RWKV7_DTYPE_Q4_1: s[0] = s[1] = mm_half(row + 20 * g); b[0] = b[1] = mm_half(row + 20 * g + 2); break;
    case RWKV7_DTYPE_Q5_1: s[0] = s[1] = mm_half(row + 24 * g); b[0] = b[1] = mm_half(row + 24 * g + 2); break;
    case RWKV7_DTYPE_Q4_K:
    case RWKV7_DTYPE_Q5_K: {
        const uint8_t *p = row + (type == RWKV7_DTYPE_Q5_K ? 176 : 144) * (g >> 3);
        /* the 12 scale bytes hold 8 6-bit scales and 8 6-bit mins (ggml's get_scale_min_k4):
         * sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 in the
         * nibbles of bytes 8-11 with their top 2 bits in the high bits of bytes 0-3 / 4-7 */
        const uint32_t a = rwkv7_le32(p + 4), m = rwkv7_le32(p + 8), c = rwkv7_le32(p + 12);
        const uint64_t sc = (a & 0x3F3F3F3Fu) | (uint64_t)((c & 0x0F0F0F0Fu) | ((a >> 2) & 0x30303030u)) << 32;
        const uint64_t mn = (m & 0x3F3F3F3Fu) | (uint64_t)(((c >> 4) & 0x0F0F0F0Fu) | ((m >> 2) & 0x30303030u)) << 32;
        /* d1 * q - m1 as fma(q, d1, -m1); the negation is a sign flip, exact like the scalar -x */
        mm_store_pairs(s, _mm256_mul_ps(_mm256_set1_ps(mm_half(p)), mm_u8x8_ps(sc)));
        mm_store_pairs(b, _mm256_xor_ps(_mm256_mul_ps(_mm256_set1_ps(mm_half(p + 2)), mm_u8x8_ps(mn)),
                                        _mm256_set1_ps(-0.0f)));
        break;
    }
    case RWKV7_DTYPE_Q6_K: {
        const uint8_t *p = row + 210 * (g >> 3);
        const __m256 d = _mm256_set1_ps(mm_half(p + 208));
        /* (d * sc) * q in ggml's order; group gq's halves use scales 8h + 2qq and 8h + 2qq + 1,
         * h = gq / 4, qq = gq % 4: that is simply scale byte 2 * gq + half */
        const __m128i raw = _mm_loadu_si128((const __m128i *)(p + 192));
        const __m256 s0 = _mm256_mul_ps(d, mm_i8x8_ps(raw));
        const __m256 s1 = _mm256_mul_ps(d, mm_i8x8_ps(_mm_srli_si128(raw, 8)));
        /* mm_codes gives the unsigned code c = q + 32, so w = fma(c, s, -32 s): -32 s is exact
         * (a power-of-two multiple), so the fma rounds (c - 32) s once, exactly like the
         * symmetric q * s (an exact zero is +0 in both); one byte subtraction less per group */
        _mm256_storeu_ps(s, s0);
        _mm256_storeu_ps(s + 8, s1);
        _mm256_storeu_ps(b, _mm256_mul_ps(s0, _mm256_set1_ps(-32.0f)));
        _mm256_storeu_ps(b + 8, _mm256_mul_ps(s1, _mm256_set1_ps(-32.0f)));
        break;
    }
    case RWKV7_DTYPE_IQ4_XS:
    case RWKV7_DTYPE_IQ3_S: {
        const uint8_t *p = row + (type == RWKV7_DTYPE_IQ4_XS ? 136 : 110) * (g >> 3);
        /* the 8 integer scales (mm_iq_ls8) times d; exact integers, one rounding */
        mm_store_pairs(s, _mm256_mul_ps(_mm256_set1_ps(mm_half(p)), mm_iq_ls8(type, p)));
        _mm256_storeu_ps(b, _mm256_setzero_ps());
        _mm256_storeu_ps(b + 8, _mm256_setzero_ps());
        break;
    }
    case RWKV7_DTYPE_IQ3_XXS: {
        const uint8_t *p = row + 98 * (g >> 3);
        /* group ib's scale: d * (0.5 + (w >> 28)) * 0.5, w the ib-th sign/scale word, in that order */
        const __m256 ls = mm_iq3xxs_ls8(p);
        mm_store_pairs(s, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(mm_half(p)), _mm256_add_ps(_mm256_set1_ps(0.5f), ls)),
                                        _mm256_set1_ps(0.5f)));
        _mm256_storeu_ps(b, _mm256_setzero_ps());
        _mm256_storeu_ps(b + 8, _mm256_setzero_ps());
        break;
    }
    default:
        s[0] = s[1] = b[0] = b[1] = 0.0f;
        break;
    }
}

/* Element k of a float-type row (the K % 32 leftovers; exact conversions). */
MM_INLINE float mm_tail(int type, const uint8_t *row, int64_t k) {
    if (type == RWKV7_DTYPE_F32) return ((const float *)row)[k];
    if (type == RWKV7_DTYPE_F16) return mm_half(row + 2 * k);
    return rwkv7_bf16_to_f32(rwkv7_le16(row + 2 * k));
}

#endif
