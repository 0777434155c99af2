/* matvec_q8.c: int8-activation decode (T <= 4) for Q4_K, Q6_K, IQ3_S, IQ3_XXS, Q8_0 and Q4_0 on
 * AVX-512 VNNI (contract: matvec_q8.h; arithmetic: matmul_q8.h). At 0.1B these types hold nearly
 * every weight of the Q4_K_M/S, IQ3_M/XS, Q8_0 and Q4_0 files (the head is Q6_K), and decode is
 * bound by the instructions per weight, not by memory, so this file spends as few as it can:
 * - 16 rows at a time, a super-block (256 weights) at a time, in 64-weight chunks: one vpdpbusd
 *   per row and chunk, then matmul_q8.c's transposing add tree turns the 16 rows' partial sums
 *   into per-row sub-block sums (the float steps need each sub-block's exact integer sum).
 * - Codes from whole 64-byte loads: Q4_K's 64 bytes are 4 groups (low nibbles = groups 4h, 4h+2,
 *   high = 4h+1, 4h+3; the inputs are assembled to match), Q6_K's 2 ops per 64 weights with
 *   vpternlog, IQ3 one 16-lane vpgatherdd per 64 weights with bit 8 of IQ3_S's index set by a
 *   mask (the qh bits are that mask as they are stored).
 * - IQ3 signs go to the inputs, not to the codes: |w| x (-q) = (-|w|) x q, so one masked byte
 *   negate per row and input (the stored sign bits are the mask; IQ3_XXS's parity bit is
 *   rebuilt with pdep and three xor-shifts) and the codes stay unsigned, with no +128 offset.
 * - Q8_0 / Q4_0 (mv_tile32): 2 blocks per 64-byte vector (Q8_0 two 32-byte loads, xor 0x80;
 *   Q4_0 two 16-byte broadcasts, a shift, a mask), one scale gather per block for the 16 rows;
 *   the general kernel spent more on its per-row scalar scale fill than on the dot products.
 * - Scales: the 16 rows' scale fields of a super-block come in with a few 16-lane gathers and
 *   are unpacked lane-wise with the same float operations as mm_scales, so the values are the
 *   same bits as the int8 prefill kernel's.
 * The integer sums equal matmul_q8.c's exactly and the float steps are the same lane-wise ops in
 * the same order, so outputs are bit-identical to it for every T. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul_q8.h"
#include "matvec_q8.h"
#include "iq_tables.h"
#include "status.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define MV_X86 1
#endif

#define MV_ROWS 16
#define MV_COLS 4

static int mv_forced = -1;
static int mv_cpu = -1;

void rwkv7_mv_q8_force(int on) { mv_forced = on; }

static bool mv_type(int type) {
    return type == RWKV7_DTYPE_Q4_K || type == RWKV7_DTYPE_Q6_K || type == RWKV7_DTYPE_IQ3_S ||
           type == RWKV7_DTYPE_IQ3_XXS || type == RWKV7_DTYPE_Q8_0 || type == RWKV7_DTYPE_Q4_0;
}

bool rwkv7_mv_q8_use(int type, int64_t T, int isa) {
    if (mv_forced == 0 || T < 1 || T > MV_COLS || !mv_type(type) || !rwkv7_mm_q8_use(type, isa)) return false;
    /* Q6_K at T = 4 runs out of vector registers here (measured 2x slower than matmul_q8.c's) */
    if (type == RWKV7_DTYPE_Q6_K && T == 4) return false;
    if (mv_cpu < 0) { /* a benign race: every thread computes the same value */
        int ok = 0;
#ifdef MV_X86
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("avx512vbmi");
#endif
        const char *e = getenv("RWKV7_CPU_MATVEC");
        if (e && !strcmp(e, "0")) ok = 0;
        mv_cpu = ok;
    }
    return mv_cpu == 1;
}

#ifdef MV_X86

/* The quantized inputs: column c's K codes at q + c * K, its per-32 scales d, d * sum, sums of
 * each 32 and each 16 codes (matmul_q8.h). */
struct mv_act {
    const int8_t *q;
    const float *d, *ds;
    const int32_t *s32, *s16;
};

struct mv_job {
    const struct rwkv7_mm_job *j;
    struct mv_act a;
};

/* The IQ3 grids packed for a register lookup (mv_iq3_codes): an entry's 4 bytes take 8 values
 * each (IQ3_S: 1, 3, ..., 15; IQ3_XXS: 4, 12, ..., 52, 62), so an entry is 4 3-bit level numbers
 * in one 16-bit word, looked up with vpermi2w 64 entries at a time and expanded with
 * vpmultishiftqb and a vpermb table of the 8 values. 64-byte aligned: 32 entries per vector. */
static _Alignas(64) uint16_t mv_grid_xxs[256];
static _Alignas(64) uint16_t mv_grid_s[512];
static pthread_once_t mv_grid_once = PTHREAD_ONCE_INIT;

/* The level number of a grid byte: IQ3_S (b - 1) / 2, IQ3_XXS (b - 4) / 8 with 62 as level 7. */
static void mv_grid_init(void) {
    for (int i = 0; i < 512; i++) {
        unsigned v = 0;
        for (int b = 0; b < 4; b++) v |= ((rwkv7_iq3s_grid[i] >> (8 * b) & 0xFF) - 1) / 2 << (3 * b);
        mv_grid_s[i] = (uint16_t)v;
    }
    for (int i = 0; i < 256; i++) {
        unsigned v = 0;
        for (int b = 0; b < 4; b++) {
            const unsigned x = rwkv7_iq3xxs_grid[i] >> (8 * b) & 0xFF;
            v |= (x == 62 ? 7 : (x - 4) / 8) << (3 * b);
        }
        mv_grid_xxs[i] = (uint16_t)v;
    }
}

static void mv_rows(void *p, int64_t m0, int64_t m1, int ith);
static void mv_quantize(const float *x, int64_t K, int8_t *qo, float *d, float *ds, int32_t *s32, int32_t *s16);

enum rwkv7_status rwkv7_mv_q8_matmul(struct rwkv7_cpu *cpu, const struct rwkv7_mm_job *j) {
    const int64_t K = j->K, T = j->T, nb = K / 32;
    /* the same rule as matmul_q8.c (see there): with int8 matmuls the serial WKV keeps prefill
     * equal to serial decoding */
    if (!cpu->wkv_chunk_env) cpu->wkv_chunk = 0;
    if (j->type == RWKV7_DTYPE_IQ3_S || j->type == RWKV7_DTYPE_IQ3_XXS) pthread_once(&mv_grid_once, mv_grid_init);
    const size_t bytes = 64 + (size_t)T * ((size_t)K + 4 * 5 * (size_t)nb);
    RWKV7_TRY(rwkv7_cpu_reserve(&cpu->q8_act, &cpu->q8_act_n, 1, (bytes + 3) / 4));
    char *base = (char *)(((uintptr_t)cpu->q8_act[0] + 63) & ~(uintptr_t)63);
    struct mv_job q = {.j = j};
    int8_t *qq = (int8_t *)base;
    float *d = (float *)(base + (size_t)T * (size_t)K), *ds = d + T * nb;
    int32_t *s32 = (int32_t *)(ds + T * nb), *s16 = s32 + T * nb;
    for (int64_t t = 0; t < T; t++)
        mv_quantize(j->x + t * K, K, qq + t * K, d + t * nb, ds + t * nb, s32 + t * nb, s16 + t * 2 * nb);
    q.a = (struct mv_act){.q = qq, .d = d, .ds = ds, .s32 = s32, .s16 = s16};
    /* at least ~64K weights x inputs per part, in whole 16-row tiles */
    int64_t work_per_row = K * T;
    int64_t min_chunk = work_per_row >= 65536 ? MV_ROWS : 65536 / work_per_row;
    min_chunk = (min_chunk + MV_ROWS - 1) / MV_ROWS * MV_ROWS;
    rwkv7_threadpool_run(cpu->pool, j->M, min_chunk, mv_rows, &q);
    return RWKV7_OK;
}

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c,bmi2"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c,bmi2")
#endif

#include <immintrin.h>

#include "matmul_deq_x86.h"
#include "q8_act_x86.h"

/* One input row, with the prefill kernel's own quantizer (compiled here for this file's target). */
static void mv_quantize(const float *x, int64_t K, int8_t *qo, float *d, float *ds, int32_t *s32, int32_t *s16) {
    rwkv7_q8_quantize_row(x, K, qo, d, ds, s32, s16);
}

/* Per type: super-block bytes; sub-block size 16 (Q6_K) or 32; offset of the unsigned codes
 * (Q6_K's are q + 32); whether there is a bias (Q4_K's min); IQ3 signs on the inputs. */
MM_INLINE size_t mv_bb(int type) {
    return type == RWKV7_DTYPE_Q4_K ? 144 : type == RWKV7_DTYPE_Q6_K ? 210 : type == RWKV7_DTYPE_IQ3_S ? 110 : 98;
}
MM_INLINE bool mv_iq3(int type) { return type == RWKV7_DTYPE_IQ3_S || type == RWKV7_DTYPE_IQ3_XXS; }

/* 16-lane gather of the dword at byte off of each row's super-block (vrow: row offsets). */
MM_INLINE __m512i mv_g32(const uint8_t *blk, __m512i vrow, int off) {
    return _mm512_i32gather_epi32(vrow, (const void *)(blk + off), 1);
}

/* fp16 in the low 16 bits of each lane -> float */
MM_INLINE __m512 mv_half_lo(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }

/* The 16 rows' scales (sc[s], one per sub-block) and biases (bi[g]) of one super-block, lane r =
 * row r; each value is the product mm_scales computes, with the same float operations. */
MM_INLINE void mv_scales(const int type, const uint8_t *blk, __m512i vrow, __m512 *sc, __m512 *bi) {
    const __m512i m6 = _mm512_set1_epi32(0x3F), m4 = _mm512_set1_epi32(0x0F), m30 = _mm512_set1_epi32(0x30);
    if (type == RWKV7_DTYPE_Q4_K) {
        const __m512i dd = mv_g32(blk, vrow, 0), a = mv_g32(blk, vrow, 4), m = mv_g32(blk, vrow, 8), c = mv_g32(blk, vrow, 12);
        const __m512 d = mv_half_lo(dd), dmin = mv_half_lo(_mm512_srli_epi32(dd, 16));
        for (int g = 0; g < 8; g++) {
            __m512i s, mn;
            if (g < 4) {
                s = _mm512_and_si512(_mm512_srli_epi32(a, 8 * g), m6);
                mn = _mm512_and_si512(_mm512_srli_epi32(m, 8 * g), m6);
            } else {
                const int k = 8 * (g - 4);
                s = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(c, k), m4),
                                    _mm512_and_si512(_mm512_srli_epi32(a, k + 2), m30));
                mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(c, k + 4), m4),
                                     _mm512_and_si512(_mm512_srli_epi32(m, k + 2), m30));
            }
            sc[g] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(s));
            bi[g] = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn))),
                                                          _mm512_set1_epi32((int)0x80000000u)));
        }
    } else if (type == RWKV7_DTYPE_Q6_K) {
        /* d is the u16 at 208: read the dword at 206 (the block ends at 210) */
        const __m512 d = mv_half_lo(_mm512_srli_epi32(mv_g32(blk, vrow, 206), 16));
        for (int w = 0; w < 4; w++) {
            const __m512i v = mv_g32(blk, vrow, 192 + 4 * w);
            for (int k = 0; k < 4; k++)
                sc[4 * w + k] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * k), 24)));
        }
    } else if (type == RWKV7_DTYPE_IQ3_S) {
        const __m512 d = mv_half_lo(mv_g32(blk, vrow, 0));
        const __m512i v = mv_g32(blk, vrow, 106);
        for (int g = 0; g < 8; g++) {
            const __m512i nib = _mm512_and_si512(_mm512_srli_epi32(v, 4 * g), m4);
            const __m512i odd = _mm512_add_epi32(_mm512_add_epi32(nib, nib), _mm512_set1_epi32(1));
            sc[g] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(odd));
        }
    } else { /* IQ3_XXS */
        const __m512 d = mv_half_lo(mv_g32(blk, vrow, 0));
        for (int g = 0; g < 8; g++) {
            const __m512 ls = _mm512_cvtepi32_ps(_mm512_srli_epi32(mv_g32(blk, vrow, 66 + 4 * g), 28));
            sc[g] = _mm512_mul_ps(_mm512_mul_ps(d, _mm512_add_ps(_mm512_set1_ps(0.5f), ls)), _mm512_set1_ps(0.5f));
        }
    }
}

/* Q4_K, Q6_K: chunk ch (0..3) of a row's super-block b as 64 unsigned codes. */
MM_INLINE __m512i mv_codes(const int type, const uint8_t *b, const int ch) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if (type == RWKV7_DTYPE_Q4_K) { /* low nibbles: groups 4h, 4h + 2; high: 4h + 1, 4h + 3 */
        const __m512i raw = _mm512_loadu_si512((const void *)(b + 16 + 64 * (ch >> 1)));
        return _mm512_and_si512((ch & 1) ? _mm512_srli_epi16(raw, 4) : raw, m4);
    }
    if (type == RWKV7_DTYPE_Q6_K) { /* elements 64 ch .. 64 ch + 63, in order */
        const int h = ch >> 1;
        const __m512i ql = _mm512_loadu_si512((const void *)(b + 64 * h));
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
        __m512i hi, lo = ql;
        if (ch & 1) { /* groups 4h + 2, 4h + 3: high nibbles, qh bits 4-5 and 6-7 */
            lo = _mm512_srli_epi16(ql, 4);
            hi = _mm512_srlv_epi16(qh, _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1));
        } else { /* groups 4h, 4h + 1: low nibbles, qh bits 0-1 and 2-3 */
            hi = _mm512_sllv_epi16(qh, _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1));
        }
        /* (lo & 0x0F) | (hi & 0x30) */
        return _mm512_ternarylogic_epi32(lo, _mm512_and_si512(hi, _mm512_set1_epi8(0x30)), m4, 0xEC);
    }
    return _mm512_setzero_si512();
}

/* 32 grid indices (16-bit lanes) -> the 16-bit half tab[] of their grid entries: one vpermi2w
 * per 64 entries, then blends on the index bits above 6 (n = 256 or 512 entries). */
MM_INLINE __m512i mv_grid16(const uint16_t *tab, const int n, __m512i w) {
    __m512i r[8];
#pragma GCC unroll 8
    for (int t = 0; t < n / 64; t++)
        r[t] = _mm512_permutex2var_epi16(_mm512_load_si512((const void *)(tab + 64 * t)), w,
                                         _mm512_load_si512((const void *)(tab + 64 * t + 32)));
    const __mmask32 k6 = _mm512_test_epi16_mask(w, _mm512_set1_epi16(0x40));
    const __mmask32 k7 = _mm512_test_epi16_mask(w, _mm512_set1_epi16(0x80));
    const __m512i a = _mm512_mask_mov_epi16(_mm512_mask_mov_epi16(r[0], k6, r[1]), k7, _mm512_mask_mov_epi16(r[2], k6, r[3]));
    if (n == 256) return a;
    const __mmask32 k8 = _mm512_test_epi16_mask(w, _mm512_set1_epi16(0x100));
    const __m512i b = _mm512_mask_mov_epi16(_mm512_mask_mov_epi16(r[4], k6, r[5]), k7, _mm512_mask_mov_epi16(r[6], k6, r[7]));
    return _mm512_mask_mov_epi16(a, k8, b);
}

/* IQ3_XXS: the 8 sign bytes of the two groups whose sign words are w0, w1: four 7-bit fields per
 * word, the 8th sign of each 8 their parity. */
MM_INLINE uint64_t mv_xxs_signs(uint32_t w0, uint32_t w1) {
    const uint64_t f = (uint64_t)(w0 & 0x0FFFFFFFu) | (uint64_t)(w1 & 0x0FFFFFFFu) << 28;
    const uint64_t x = _pdep_u64(f, 0x7F7F7F7F7F7F7F7Full);
    uint64_t p = (x ^ (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    p ^= p >> 2;
    p ^= p >> 1;
    return x | (p & 0x0101010101010101ull) << 7;
}

/* IQ3, weights 128 c2 .. 128 c2 + 127 of a row's super-block b (groups 4 c2 + e, e = 0..3):
 * lo's 128-bit lane e = the first 16 codes of group e, hi's = its last 16, both unsigned, with
 * the sign masks of those bytes. A row's partial sums then need one add tree per 128 weights. */
MM_INLINE void mv_iq3_codes(const int type, const uint8_t *b, const int c2, __m512i *lo, __m512i *hi, __mmask64 *nlo,
                            __mmask64 *nhi) {
    __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(b + 2 + 32 * c2)));
    uint64_t s0, s1;
    if (type == RWKV7_DTYPE_IQ3_S) { /* bit k of qh[g] is bit 8 of index k of group g */
        w = _mm512_mask_add_epi16(w, (__mmask32)rwkv7_le32(b + 66 + 4 * c2), w, _mm512_set1_epi16(0x100));
        memcpy(&s0, b + 74 + 16 * c2, 8);
        memcpy(&s1, b + 82 + 16 * c2, 8);
    } else {
        const uint8_t *sw = b + 66 + 16 * c2;
        s0 = mv_xxs_signs(rwkv7_le32(sw), rwkv7_le32(sw + 4));
        s1 = mv_xxs_signs(rwkv7_le32(sw + 8), rwkv7_le32(sw + 12));
    }
    /* 128-bit lane e of pk: packed entries 8e .. 8e + 7 = group e; qword 0 of a lane holds
     * entries 0-3: copied to both halves, each byte picks its 3 bits (+ garbage above, which the
     * 64-entry vpermb table ignores: entry i = the value of level i & 7) */
    const bool s3 = type == RWKV7_DTYPE_IQ3_S;
    const __m512i pk = s3 ? mv_grid16(mv_grid_s, 512, w) : mv_grid16(mv_grid_xxs, 256, w);
    const long long e01 = 0x1916131009060300ll, e23 = 0x3936333029262320ll; /* bit offsets 3b + 16 entry */
    const __m512i ctl = _mm512_setr_epi64(e01, e23, e01, e23, e01, e23, e01, e23);
    const __m512i lut = _mm512_set1_epi64(s3 ? 0x0F0D0B0907050301ll : 0x3E342C241C140C04ll);
    *lo = _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(ctl, _mm512_unpacklo_epi64(pk, pk)), lut);
    *hi = _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(ctl, _mm512_unpackhi_epi64(pk, pk)), lut);
    const uint64_t m0 = 0x0000FFFF0000FFFFull, m1 = 0xFFFF0000FFFF0000ull;
    *nlo = (__mmask64)(_pext_u64(s0, m0) | _pext_u64(s1, m0) << 32);
    *nhi = (__mmask64)(_pext_u64(s0, m1) | _pext_u64(s1, m1) << 32);
}

/* The input bytes of chunk ch of super-block sb, matching mv_codes' element order. */
MM_INLINE __m512i mv_x(const int type, const int8_t *xq, int64_t sb, int ch) {
    const int8_t *p = xq + 256 * sb;
    if (type == RWKV7_DTYPE_Q4_K) {
        const int ga = 4 * (ch >> 1) + (ch & 1);
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 32 * ga))),
                                  _mm256_loadu_si256((const __m256i *)(p + 32 * ga + 64)), 1);
    }
    return _mm512_loadu_si512((const void *)(p + 64 * ch));
}

/* What one 16-row tile's chunk needs: the rows (rp[], or evenly spaced from blk when full), the
 * inputs, and where the rows' sub-block sums go. */
struct mv_tile_ctx {
    const struct mv_job *q;
    const uint8_t *blk;         /* row 0's super-block */
    const uint8_t *const *rp;   /* rows (clamped to the last real one) */
    size_t rb, ahead, boff;     /* row bytes, prefetch distance, super-block offset in a row */
    int64_t K, sb;
    int nr;
};

/* A tile's rows from w0 (rows past nr repeat the last real one): their pointers, and their byte
 * offsets as a vector for the scale gathers. */
MM_INLINE __m512i mv_tile_rows(const uint8_t *w0, size_t rb, int nr, const uint8_t **rp) {
    for (int r = 0; r < MV_ROWS; r++) rp[r] = w0 + (size_t)(r < nr ? r : nr - 1) * rb;
    return _mm512_mullo_epi32(_mm512_min_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(nr - 1)),
                              _mm512_set1_epi32((int)rb));
}

MM_INLINE const uint8_t *mv_row(const struct mv_tile_ctx *t, int r) {
    /* a full tile's rows are evenly spaced: no pointer table to keep in registers */
    return t->nr == MV_ROWS ? t->blk + (size_t)r * t->rb : t->rp[r] + t->boff;
}

/* IQ3: weights 128 c2 .. 128 c2 + 127 of the super-block -> sums[c][2 g], g = 4 c2 + e (whole groups). */
MM_INLINE void mv_chunk_iq3(const struct mv_tile_ctx *t, const int type, const int c2, const int nc,
                            __m512i sums[MV_COLS][16]) {
    __m512i xl[MV_COLS], xh[MV_COLS], p[MV_COLS][16];
    for (int c = 0; c < nc; c++) { /* lane e of xl / xh: first / last 16 inputs of group e */
        const int8_t *xp = t->q->a.q + c * t->K + 256 * t->sb + 128 * c2;
        const __m512i x0 = _mm512_loadu_si512((const void *)xp), x1 = _mm512_loadu_si512((const void *)(xp + 64));
        xl[c] = _mm512_shuffle_i32x4(x0, x1, _MM_SHUFFLE(2, 0, 2, 0));
        xh[c] = _mm512_shuffle_i32x4(x0, x1, _MM_SHUFFLE(3, 1, 3, 1));
    }
#pragma GCC unroll 16
    for (int r = 0; r < MV_ROWS; r++) {
        const uint8_t *b = mv_row(t, r);
        _mm_prefetch((const char *)b + t->ahead + 64 * c2, _MM_HINT_T0);
        __m512i lo, hi;
        __mmask64 nlo, nhi;
        mv_iq3_codes(type, b, c2, &lo, &hi, &nlo, &nhi);
        const __m512i z = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            p[c][r] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, lo, _mm512_mask_sub_epi8(xl[c], nlo, z, xl[c])), hi,
                                          _mm512_mask_sub_epi8(xh[c], nhi, z, xh[c]));
    }
    for (int c = 0; c < nc; c++) {
        __m512i h[4];
        rwkv7_q8_tree16(p[c], h);
        for (int e = 0; e < 4; e++) sums[c][2 * (4 * c2 + e)] = h[e];
    }
}

/* Q4_K, Q6_K: 64-weight chunk ch of the super-block -> sums[c][s] per 16 weights, in k order. */
MM_INLINE void mv_chunk_k(const struct mv_tile_ctx *t, const int type, const int ch, const int nc,
                          __m512i sums[MV_COLS][16]) {
    __m512i xv[MV_COLS], p[MV_COLS][16];
    for (int c = 0; c < nc; c++) xv[c] = mv_x(type, t->q->a.q + c * t->K, t->sb, ch);
#pragma GCC unroll 16
    for (int r = 0; r < MV_ROWS; r++) {
        const uint8_t *b = mv_row(t, r);
        _mm_prefetch((const char *)b + t->ahead + (mv_bb(type) * (size_t)ch) / 4, _MM_HINT_T0);
        const __m512i w = mv_codes(type, b, ch);
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) p[c][r] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xv[c]);
    }
    for (int c = 0; c < nc; c++) {
        __m512i h[4];
        rwkv7_q8_tree16(p[c], h);
        if (type == RWKV7_DTYPE_Q4_K) { /* groups ga and ga + 2 */
            const int ga = 4 * (ch >> 1) + (ch & 1);
            sums[c][2 * ga] = h[0];
            sums[c][2 * ga + 1] = h[1];
            sums[c][2 * ga + 4] = h[2];
            sums[c][2 * ga + 5] = h[3];
        } else {
            for (int e = 0; e < 4; e++) sums[c][4 * ch + e] = h[e];
        }
    }
}

/* Q8_0, Q4_0 (32-weight blocks, one fp16 scale each): blocks g, g + 1 of a row as 64 unsigned
 * codes in element order (two false: block g only, the upper half is ignored, its inputs are 0).
 * Q8_0's signed codes get + 128 (one xor), Q4_0's nibbles keep their + 8; mv_tile32 subtracts
 * 128 or 8 times the inputs' sum, as matmul_q8.c does. Q4_0's 16 bytes hold weights 0-15 in the
 * low nibbles and 16-31 in the high: each block's bytes go to two 128-bit lanes, shifted apart. */
MM_INLINE __m512i mv_codes32(const int type, const uint8_t *row, int64_t g, const bool two) {
    if (type == RWKV7_DTYPE_Q8_0) {
        const uint8_t *b = row + 34 * g + 2;
        const __m512i a = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b));
        const __m512i v = two ? _mm512_inserti64x4(a, _mm256_loadu_si256((const __m256i *)(b + 34)), 1) : a;
        return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    }
    const uint8_t *b = row + 18 * g + 2;
    const __m512i lo = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)b));
    const __m512i v = two ? _mm512_mask_broadcast_i32x4(lo, (__mmask16)0xFF00, _mm_loadu_si128((const __m128i *)(b + 18))) : lo;
    const __m512i cnt = _mm512_setr_epi64(0, 0, 0x0004000400040004ll, 0x0004000400040004ll, 0, 0, 0x0004000400040004ll,
                                          0x0004000400040004ll);
    return _mm512_and_si512(_mm512_srlv_epi16(v, cnt), _mm512_set1_epi8(0x0F));
}

/* Q8_0, Q4_0: outputs of rows m .. m + nr - 1 for the nc inputs, 2 blocks (64 weights) at a time;
 * the 16 rows' scales of a block are one gather. Per block and in block order: the exact integer
 * sum, minus the offset times the inputs' sum, then the same two float ops as matmul_q8.c's q8_vec. */
MM_INLINE void mv_tile32(const struct mv_job *q, const int type, int64_t m, int nr, const int nc) {
    const struct rwkv7_mm_job *j = q->j;
    const int64_t K = j->K, G = K / 32;
    const size_t rb = j->row_bytes, BB = type == RWKV7_DTYPE_Q8_0 ? 34 : 18;
    const int32_t off = type == RWKV7_DTYPE_Q8_0 ? 128 : 8;
    const uint8_t *w0 = j->w + (size_t)m * rb;
    const uint8_t *rp[MV_ROWS];
    const __m512i vrow = mv_tile_rows(w0, rb, nr, rp);
    struct mv_tile_ctx t = {.q = q, .rp = rp, .rb = rb, .K = K, .nr = nr};
    const size_t ahead = 2 * MV_ROWS * rb;
    __m512 acc[MV_COLS];
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t g = 0; g < G; g += 2) {
        const bool two = g + 1 < G;
        t.boff = BB * (size_t)g;
        t.blk = w0 + t.boff;
        const __m512 s0 = mv_half_lo(mv_g32(t.blk, vrow, 0));
        const __m512 s1 = two ? mv_half_lo(mv_g32(t.blk, vrow, (int)BB)) : _mm512_setzero_ps();
        __m512i xv[MV_COLS], p[MV_COLS][16];
        for (int c = 0; c < nc; c++) {
            const int8_t *xq = q->a.q + c * K + 32 * g;
            xv[c] = two ? _mm512_loadu_si512((const void *)xq) : _mm512_maskz_loadu_epi8((__mmask64)0xFFFFFFFFull, xq);
        }
#pragma GCC unroll 16
        for (int r = 0; r < MV_ROWS; r++) {
            const uint8_t *b = mv_row(&t, r);
            _mm_prefetch((const char *)b + ahead, _MM_HINT_T0);
            const __m512i w = mv_codes32(type, b - t.boff, g, two);
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) p[c][r] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xv[c]);
        }
        for (int c = 0; c < nc; c++) {
            __m512i h[4];
            rwkv7_q8_tree16(p[c], h);
            const float *xd = q->a.d + c * G;
            const int32_t *x32 = q->a.s32 + c * G;
            for (int e = 0; e < (two ? 2 : 1); e++) {
                const int64_t gg = g + e;
                const __m512i ia = _mm512_sub_epi32(_mm512_add_epi32(h[2 * e], h[2 * e + 1]), _mm512_set1_epi32(off * x32[gg]));
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(e ? s1 : s0, _mm512_set1_ps(xd[gg])), acc[c]);
            }
        }
    }
    rwkv7_q8_store16(j->dst, j->M, j->accumulate, m, nr, nc, acc);
}

/* Outputs of rows m .. m + nr - 1 (nr <= 16) for the nc inputs. */
MM_INLINE void mv_tile(const struct mv_job *q, const int type, int64_t m, int nr, const int nc) {
    const struct rwkv7_mm_job *j = q->j;
    const int64_t K = j->K, nb = K / 32, NS = K / 256;
    const size_t rb = j->row_bytes, BB = mv_bb(type);
    const uint8_t *w0 = j->w + (size_t)m * rb;
    const uint8_t *rp[MV_ROWS];
    const __m512i vrow = mv_tile_rows(w0, rb, nr, rp);
    struct mv_tile_ctx t = {.q = q, .rp = rp, .rb = rb, .ahead = 2 * MV_ROWS * rb, .K = K, .nr = nr};
    __m512 acc[MV_COLS];
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < NS; sb++) {
        t.sb = sb;
        t.boff = BB * (size_t)sb;
        t.blk = w0 + t.boff;
        __m512 sc[16], bi[8];
        mv_scales(type, t.blk, vrow, sc, bi);
        __m512i sums[MV_COLS][16]; /* per input: the 16 rows' integer sums per 16 weights (IQ3: per 32) */
        if (mv_iq3(type)) {
            mv_chunk_iq3(&t, type, 0, nc, sums);
            mv_chunk_iq3(&t, type, 1, nc, sums);
        } else {
            mv_chunk_k(&t, type, 0, nc, sums);
            mv_chunk_k(&t, type, 1, nc, sums);
            mv_chunk_k(&t, type, 2, nc, sums);
            mv_chunk_k(&t, type, 3, nc, sums);
        }
        /* the float steps, sub-blocks ascending, as matmul_q8.c does them */
        for (int c = 0; c < nc; c++) {
            const float *xd = q->a.d + c * nb + 8 * sb, *xds = q->a.ds + c * nb + 8 * sb;
            const int32_t *x16 = q->a.s16 + c * 2 * nb + 16 * sb;
            for (int g = 0; g < 8; g++) {
                if (type == RWKV7_DTYPE_Q6_K) {
                    for (int hh = 0; hh < 2; hh++) {
                        const int s = 2 * g + hh;
                        const __m512i ia = _mm512_sub_epi32(sums[c][s], _mm512_set1_epi32(32 * x16[s]));
                        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(sc[s], _mm512_set1_ps(xd[g])), acc[c]);
                    }
                } else {
                    const __m512i ia = mv_iq3(type) ? sums[c][2 * g] : _mm512_add_epi32(sums[c][2 * g], sums[c][2 * g + 1]);
                    acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), _mm512_mul_ps(sc[g], _mm512_set1_ps(xd[g])), acc[c]);
                    if (type == RWKV7_DTYPE_Q4_K) acc[c] = _mm512_fmadd_ps(bi[g], _mm512_set1_ps(xds[g]), acc[c]);
                }
            }
        }
    }
    rwkv7_q8_store16(j->dst, j->M, j->accumulate, m, nr, nc, acc);
}

/* Rows [m0, m1) in tiles of MV_ROWS, with the column count (and a full tile at T = 1) as
 * compile-time constants of the tile function, so each case is its own specialized loop. */
#define MV_WALK(tile)                                                                 \
    for (int64_t m = m0; m < m1; m += MV_ROWS) {                                      \
        const int nr = m1 - m < MV_ROWS ? (int)(m1 - m) : MV_ROWS;                    \
        switch (q->j->T) {                                                            \
        case 1:                                                                       \
            if (nr == MV_ROWS) tile(q, type, m, MV_ROWS, 1);                          \
            else tile(q, type, m, nr, 1);                                             \
            break;                                                                    \
        case 2: tile(q, type, m, nr, 2); break;                                       \
        case 3: tile(q, type, m, nr, 3); break;                                       \
        default: tile(q, type, m, nr, 4); break;                                      \
        }                                                                             \
    }

MM_INLINE void mv_rows_t(const struct mv_job *q, int64_t m0, int64_t m1, const int type) {
    if (type == RWKV7_DTYPE_Q8_0 || type == RWKV7_DTYPE_Q4_0) {
        MV_WALK(mv_tile32)
    } else {
        MV_WALK(mv_tile)
    }
}
#undef MV_WALK

#define MV_TYPE_FN(name, T)                                                                              \
    static __attribute__((noinline)) void mv_rows_##name(const struct mv_job *q, int64_t m0, int64_t m1) { \
        mv_rows_t(q, m0, m1, T);                                                                         \
    }
MV_TYPE_FN(q4_k, RWKV7_DTYPE_Q4_K)
MV_TYPE_FN(q6_k, RWKV7_DTYPE_Q6_K)
MV_TYPE_FN(iq3_s, RWKV7_DTYPE_IQ3_S)
MV_TYPE_FN(iq3_xxs, RWKV7_DTYPE_IQ3_XXS)
MV_TYPE_FN(q8_0, RWKV7_DTYPE_Q8_0)
MV_TYPE_FN(q4_0, RWKV7_DTYPE_Q4_0)

static void mv_rows(void *p, int64_t m0, int64_t m1, int ith) {
    (void)ith;
    const struct mv_job *q = p;
    switch (q->j->type) {
    case RWKV7_DTYPE_Q4_K: mv_rows_q4_k(q, m0, m1); break;
    case RWKV7_DTYPE_Q6_K: mv_rows_q6_k(q, m0, m1); break;
    case RWKV7_DTYPE_IQ3_S: mv_rows_iq3_s(q, m0, m1); break;
    case RWKV7_DTYPE_IQ3_XXS: mv_rows_iq3_xxs(q, m0, m1); break;
    case RWKV7_DTYPE_Q8_0: mv_rows_q8_0(q, m0, m1); break;
    case RWKV7_DTYPE_Q4_0: mv_rows_q4_0(q, m0, m1); break;
    default: break;
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

#else
/* Not x86: rwkv7_mv_q8_use is always false, so this is never called. */
enum rwkv7_status rwkv7_mv_q8_matmul(struct rwkv7_cpu *cpu, const struct rwkv7_mm_job *job) {
    (void)cpu;
    (void)job;
    return rwkv7_fail(RWKV7_ERR_INTERNAL, "cpu: int8 decode called without AVX-512 VNNI");
}
#endif
