/* matmul_kern.h: the SIMD matmul kernels, written once for a vector width and included by
 * matmul_avx2.c (W = 8) and matmul_avx512.c (W = 16), which define before including it:
 *   MK_VF             float vector type            MK_W      lanes
 *   MK_ZERO() MK_LOADU(p) MK_STOREU(p, v) MK_FMA(a, b, c) (a*b+c, fused)  MK_REDUCE(v) -> float, fixed tree
 *   MK_FLOAT(type, row, g, w)   group g (32 weights) of a float-type row -> 32 / MK_W vectors
 *   MK_CVT(code, s, b, w)       32 codes (mm_codes) with their scale/bias pair -> 32 / MK_W vectors
 *   MK_LUT_TYPE(type), MK_LUT(type, row, g, s, b, w)   optional: types whose group the ISA decodes
 *                     itself (a table lookup instead of mm_codes + MK_CVT), with the same values
 *   MK_PRE_TYPE(type), MK_PRE(type, row, sb, codes), MK_PRE_CVT(type, codes, jj, s, b, w)   optional:
 *                     super-block types whose fused decode first assembles the 256 codes of super-block
 *                     sb of a row into codes[] (wide byte ops), then converts group jj from there
 *   MK_PAIR_TYPE(type), MK_PAIR(type, row, g, s, b, w)   optional: super-block types whose fused
 *                     decode takes groups g, g + 1 (g even) together (2 * 32 / MK_W vectors in w)
 *   MK_COLS           columns per tile micro-kernel block (register budget)
 *   MK_FCOLS          most input rows (T) the fused kernel takes in one pass: 2 or 4
 *   MK_NAME(n)        the ISA-suffixed name of symbol n
 *
 * Two kernels, same arithmetic (matmul_simd.h): per output, one lane accumulator, one FMA per W
 * elements for k ascending, then a fixed-order lane reduction and the scalar K % 32 tail.
 * - fused (decode, T <= MK_FCOLS): four weight rows are decoded 32 elements at a time into
 *   registers and dotted with all T input rows; nothing is written but the outputs, and the
 *   weights are read once. Larger T would need more accumulators than there are registers (and
 *   the T = 3 two-pass form measured slower than the tile), so the tile takes over.
 * - tile (prefill): four weight rows are decoded once into a per-thread fp32 tile (4 * K floats:
 *   12 KB at K = 768, in L1; 48 KB at K = 3072, in L2), then a 4 x MK_COLS register block of
 *   accumulators sweeps K for each group of MK_COLS input rows, so each weight value loaded feeds
 *   MK_COLS FMAs and each input value four.
 * Rows past the end of a 4-row block alias the last valid row; their results are dropped. */

#define MK_NV (32 / MK_W)
#ifndef MK_LUT_TYPE
#define MK_LUT_TYPE(type) false
#define MK_LUT(type, row, g, s, b, w) ((void)0)
#endif
#ifndef MK_PRE_TYPE
#define MK_PRE_TYPE(type) false
#define MK_PRE(type, row, sb, codes) ((void)0)
#define MK_PRE_CVT(type, codes, jj, s, b, w) ((void)(codes), (void)(s), (void)(b))
#endif
#ifndef MK_PAIR_TYPE
#define MK_PAIR_TYPE(type) false
#define MK_PAIR(type, row, g, s, b, w) ((void)0)
#endif

/* dst[t][m] = (accumulate ? dst : 0) + s, after the float-type tail. */
MM_INLINE void MK_NAME(finish)(const struct rwkv7_mm_job *j, int type, const uint8_t *row, int64_t m,
                               int64_t t, float s) {
    const float *x = j->x + t * j->K;
    for (int64_t k = j->K & ~(int64_t)31; k < j->K; k++) s += mm_tail(type, row, k) * x[k];
    float *d = j->dst + t * j->M + m;
    *d = j->accumulate ? *d + s : s;
}

static inline bool MK_NAME(is_float)(int type) {
    return type == RWKV7_DTYPE_F32 || type == RWKV7_DTYPE_F16 || type == RWKV7_DTYPE_BF16;
}

/* Refreshes a row's scale cache s/b (16 floats each) when group g needs new scales. */
MM_INLINE void MK_NAME(scales)(const int type, const uint8_t *row, int64_t g, float *s, float *b) {
    if (!MK_NAME(is_float)(type) && (!mm_is_k(type) || (g & 7) == 0)) mm_scales(type, row, g, s, b);
}

/* Group g of a row as 32 / MK_W vectors, with the row's scale cache. */
MM_INLINE void MK_NAME(group)(const int type, const uint8_t *row, int64_t g, const float *s, const float *b,
                              MK_VF w[MK_NV]) {
    if (MK_NAME(is_float)(type)) {
        MK_FLOAT(type, row, g, w);
    } else {
        const int64_t gi = mm_is_k(type) ? 2 * (g & 7) : 0;
        if (MK_LUT_TYPE(type))
            MK_LUT(type, row, g, s + gi, b + gi, w);
        else
            MK_CVT(mm_codes(type, row, g), s + gi, b + gi, w);
    }
}

/* Groups g .. g + ng - 1 (ng = 2 only for MK_PAIR types) of the four rows, FMA'd into acc[r][c]
 * for the nc inputs at x (one FMA per MK_W weights, k ascending). */
MM_INLINE void MK_NAME(fused_group)(const struct rwkv7_mm_job *j, const int type, const uint8_t *const rp[4],
                                    const float *x, int64_t g, float sc[4][16], float bi[4][16],
                                    uint8_t pre[4][256], MK_VF acc[4][MK_FCOLS], const int ng, const int nc) {
    /* full unrolling keeps acc[][] in registers (GCC spills a vector array it indexes in a loop) */
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        MK_VF w[2 * MK_NV];
        if (ng == 2) {
            MK_PAIR(type, rp[r], g, sc[r] + 2 * (g & 7), bi[r] + 2 * (g & 7), w);
        } else if (MK_PRE_TYPE(type)) {
            MK_PRE_CVT(type, pre[r], (int)(g & 7), sc[r] + 2 * (g & 7), bi[r] + 2 * (g & 7), w);
        } else {
            MK_NAME(group)(type, rp[r], g, sc[r], bi[r], w);
        }
#pragma GCC unroll 4
        for (int i = 0; i < ng * MK_NV; i++) {
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++)
                acc[r][c] = MK_FMA(w[i], MK_LOADU(x + c * j->K + 32 * g + MK_W * i), acc[r][c]);
        }
    }
}

MM_INLINE void MK_NAME(fused)(const struct rwkv7_mm_job *j, const int type, const uint8_t *const rp[4],
                              int64_t m, int nr, int64_t t0, const int nc) {
    const int64_t G = j->K / 32;
    const float *x = j->x + t0 * j->K;
    MK_VF acc[4][MK_FCOLS];
    float sc[4][16], bi[4][16];
    _Alignas(64) uint8_t pre[4][256]; /* MK_PRE codes of the current super-block, per row */
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < MK_FCOLS; c++) acc[r][c] = MK_ZERO();
    /* The next 4-row block starts 4 rows further (rows are contiguous), so prefetching that far
     * ahead keeps a DRAM stream in flight per row: without it a head-sized Q8_0 matrix streamed at
     * about half the speed (bench/bench_matmul.c). */
    const size_t ahead = 4 * j->row_bytes;
    if (mm_is_k(type)) {
        /* super-block types: one step per 256 weights, with the 8 groups unrolled so that every
         * group's offsets and sub-block choice are constants and the scales unpack once */
        const size_t sbb = j->row_bytes / (size_t)(G / 8);
        for (int64_t sb = 0; sb < G / 8; sb++) {
            for (int r = 0; r < 4; r++) {
                for (size_t o = 0; o < sbb; o += 64) _mm_prefetch((const char *)rp[r] + sbb * (size_t)sb + o + ahead, _MM_HINT_T0);
                mm_scales(type, rp[r], 8 * sb, sc[r], bi[r]);
                if (MK_PRE_TYPE(type)) MK_PRE(type, rp[r], sb, pre[r]);
            }
            if (MK_PAIR_TYPE(type)) {
#pragma GCC unroll 4
                for (int jj = 0; jj < 8; jj += 2) MK_NAME(fused_group)(j, type, rp, x, 8 * sb + jj, sc, bi, pre, acc, 2, nc);
            } else {
#pragma GCC unroll 8
                for (int jj = 0; jj < 8; jj++) MK_NAME(fused_group)(j, type, rp, x, 8 * sb + jj, sc, bi, pre, acc, 1, nc);
            }
        }
    } else {
        /* bytes of one 32-weight group: a constant per type, so the prefetch loop unrolls */
        const size_t gb = type == RWKV7_DTYPE_F32 ? 128 : MK_NAME(is_float)(type) ? 64
                        : type == RWKV7_DTYPE_Q8_0 ? 34 : type == RWKV7_DTYPE_Q4_1 ? 20
                        : type == RWKV7_DTYPE_Q5_0 ? 22 : type == RWKV7_DTYPE_Q5_1 ? 24 : 18;
#pragma GCC unroll 2
        for (int64_t g = 0; g < G; g++) {
            for (int r = 0; r < 4; r++) {
                for (size_t o = 0; o < gb; o += 64) _mm_prefetch((const char *)rp[r] + gb * (size_t)g + o + ahead, _MM_HINT_T0);
                MK_NAME(scales)(type, rp[r], g, sc[r], bi[r]);
            }
            MK_NAME(fused_group)(j, type, rp, x, g, sc, bi, pre, acc, 1, nc);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) MK_NAME(finish)(j, type, rp[r], m + r, t0 + c, MK_REDUCE(acc[r][c]));
}

/* One 4 x nc block of outputs from the tile rows tr[] (32-aligned part of K). */
MM_INLINE void MK_NAME(tile_block)(const struct rwkv7_mm_job *j, const int type, const float *const tr[4],
                                   const uint8_t *const rp[4], int64_t m, int nr, int64_t t0, const int nc) {
    const int64_t K = j->K, K32 = K & ~(int64_t)31;
    const float *x = j->x + t0 * K;
    MK_VF acc[4][MK_COLS];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < nc; c++) acc[r][c] = MK_ZERO();
    for (int64_t k = 0; k < K32; k += MK_W) {
        MK_VF xv[MK_COLS];
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) xv[c] = MK_LOADU(x + c * K + k);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const MK_VF w = MK_LOADU(tr[r] + k);
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) acc[r][c] = MK_FMA(w, xv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) MK_NAME(finish)(j, type, rp[r], m + r, t0 + c, MK_REDUCE(acc[r][c]));
}

/* Rows [m0, m1) for one weight type (a constant after inlining; -1 = no group decoder). */
MM_INLINE void MK_NAME(rows_t)(const struct rwkv7_mm_job *j, int64_t m0, int64_t m1, int ith, const int type) {
    const int64_t K = j->K, K32 = K & ~(int64_t)31, T = j->T;
    const bool fused = type >= 0 && T <= MK_FCOLS;
    for (int64_t m = m0; m < m1; m += 4) {
        const int nr = m1 - m < 4 ? (int)(m1 - m) : 4;
        const uint8_t *rp[4];
        for (int r = 0; r < 4; r++) rp[r] = j->w + (size_t)(m + (r < nr ? r : nr - 1)) * j->row_bytes;
        if (fused) { /* one pass over the weights for all T <= MK_FCOLS inputs */
            switch (T) {
            case 1: MK_NAME(fused)(j, type, rp, m, nr, 0, 1); break;
            case 2: MK_NAME(fused)(j, type, rp, m, nr, 0, 2); break;
#if MK_FCOLS > 2
            case 3: MK_NAME(fused)(j, type, rp, m, nr, 0, 3); break;
            case 4: MK_NAME(fused)(j, type, rp, m, nr, 0, 4); break;
#endif
            default: break;
            }
            continue;
        }
        float *tile = j->tile[ith];
        const float *tr[4];
        for (int r = 0; r < 4; r++) {
            tr[r] = tile + (size_t)(r < nr ? r : nr - 1) * (size_t)K;
            if (r >= nr) continue;
            float *dst = tile + (size_t)r * (size_t)K;
            if (type < 0) {
                j->to_f32(rp[r], dst, K); /* K is a multiple of 32 for every type without a group decoder */
                continue;
            }
            float sc[16], bi[16];
            for (int64_t g = 0; g < K32 / 32; g++) {
                MK_VF w[MK_NV];
                MK_NAME(scales)(type, rp[r], g, sc, bi);
                MK_NAME(group)(type, rp[r], g, sc, bi, w);
                for (int i = 0; i < MK_NV; i++) MK_STOREU(dst + 32 * g + MK_W * i, w[i]);
            }
        }
        int64_t t = 0;
        for (; t + MK_COLS <= T; t += MK_COLS) MK_NAME(tile_block)(j, type, tr, rp, m, nr, t, MK_COLS);
        switch (T - t) {
        case 0: break;
        case 1: MK_NAME(tile_block)(j, type, tr, rp, m, nr, t, 1); break;
        case 2: MK_NAME(tile_block)(j, type, tr, rp, m, nr, t, 2); break;
        case 3: MK_NAME(tile_block)(j, type, tr, rp, m, nr, t, 3); break;
#if MK_COLS > 4
        case 4: MK_NAME(tile_block)(j, type, tr, rp, m, nr, t, 4); break;
        case 5: MK_NAME(tile_block)(j, type, tr, rp, m, nr, t, 5); break;
#endif
        default: break;
        }
    }
}

/* One non-inlined function per type keeps each specialization a separate, modest function. */
#define MK_TYPE_FN(name, T)                                                                            \
    static __attribute__((noinline)) void MK_NAME(rows_##name)(const struct rwkv7_mm_job *j, int64_t m0, \
                                                               int64_t m1, int ith) {                 \
        MK_NAME(rows_t)(j, m0, m1, ith, T);                                                            \
    }
MK_TYPE_FN(f32, RWKV7_DTYPE_F32)
MK_TYPE_FN(f16, RWKV7_DTYPE_F16)
MK_TYPE_FN(bf16, RWKV7_DTYPE_BF16)
MK_TYPE_FN(q8_0, RWKV7_DTYPE_Q8_0)
MK_TYPE_FN(q4_0, RWKV7_DTYPE_Q4_0)
MK_TYPE_FN(q4_1, RWKV7_DTYPE_Q4_1)
MK_TYPE_FN(q5_0, RWKV7_DTYPE_Q5_0)
MK_TYPE_FN(q5_1, RWKV7_DTYPE_Q5_1)
MK_TYPE_FN(q4_k, RWKV7_DTYPE_Q4_K)
MK_TYPE_FN(q5_k, RWKV7_DTYPE_Q5_K)
MK_TYPE_FN(q6_k, RWKV7_DTYPE_Q6_K)
MK_TYPE_FN(iq4_nl, RWKV7_DTYPE_IQ4_NL)
MK_TYPE_FN(iq4_xs, RWKV7_DTYPE_IQ4_XS)
MK_TYPE_FN(iq3_xxs, RWKV7_DTYPE_IQ3_XXS)
MK_TYPE_FN(iq3_s, RWKV7_DTYPE_IQ3_S)
MK_TYPE_FN(generic, -1)

void MK_NAME(rwkv7_mm_rows)(void *job, int64_t m0, int64_t m1, int ith) {
    const struct rwkv7_mm_job *j = job;
    switch (j->fast ? j->type : -1) {
    case RWKV7_DTYPE_F32: MK_NAME(rows_f32)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_F16: MK_NAME(rows_f16)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_BF16: MK_NAME(rows_bf16)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_Q8_0: MK_NAME(rows_q8_0)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_Q4_0: MK_NAME(rows_q4_0)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_Q4_1: MK_NAME(rows_q4_1)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_Q5_0: MK_NAME(rows_q5_0)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_Q5_1: MK_NAME(rows_q5_1)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_Q4_K: MK_NAME(rows_q4_k)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_Q5_K: MK_NAME(rows_q5_k)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_Q6_K: MK_NAME(rows_q6_k)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_IQ4_NL: MK_NAME(rows_iq4_nl)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_IQ4_XS: MK_NAME(rows_iq4_xs)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_IQ3_XXS: MK_NAME(rows_iq3_xxs)(j, m0, m1, ith); break;
    case RWKV7_DTYPE_IQ3_S: MK_NAME(rows_iq3_s)(j, m0, m1, ith); break;
    default: MK_NAME(rows_generic)(j, m0, m1, ith); break;
    }
}

#undef MK_TYPE_FN
#undef MK_NV
#undef MK_LUT_TYPE
#undef MK_LUT
#undef MK_PRE_TYPE
#undef MK_PRE
#undef MK_PRE_CVT
#undef MK_PAIR_TYPE
#undef MK_PAIR
