/* gemm.cu: prefill / batched-decode products dst (T, M) = W x (T > 8 columns) for weights W (K, M)
 * in any type of cuda/dequant.cuh. sm_80+: bf16x3 tensor-core tiles (cuda/mma_split.cuh: fp32
 * operands split into bf16 hi + lo parts, 2-3 m16n8k16 MMAs per product) fed by a cp.async double
 * buffer, the activations split once per op into a scratch buffer, split-K for narrow matrices.
 * sm_75 (or RWKV7_CUDA_SIMT_TILES=1): fp32 SIMT tiles. Geometry in cuda/gemm_tile.cuh (shared with
 * tests/test_cuda_mma.cu, which replays the arithmetic on the host). Reference: performance.md 4.3. */
#include <string.h>

#include <cuda_bf16.h>

#include "common.cuh"
#include "dequant.cuh"
#include "gemm.cuh"
#include "gemm_tile.cuh"
#include "mma_split.cuh"

/* ------------------------------------------------------------------------------------------------
 * the split pass: x (T, K) fp32 -> hi, lo (T, K) bf16, once per op (the tiles read them with
 * cp.async, no conversion per tile). n8 = T K / 8 groups of 8; K % 8 == 0 keeps every group in
 * one row and every output group 16-byte aligned. */
static __global__ void __launch_bounds__(256) gemm_split_kernel(const float *x, uint4 *hi, uint4 *lo, int64_t n8) {
    rwkv7_pdl_wait();
    rwkv7_pdl_trigger();
    const bool x16 = (reinterpret_cast<uintptr_t>(x) & 15) == 0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n8; i += (int64_t)gridDim.x * blockDim.x) {
        float v[8];
        if (x16) {
            const float4 p = __ldg(reinterpret_cast<const float4 *>(x) + 2 * i);
            const float4 q = __ldg(reinterpret_cast<const float4 *>(x) + 2 * i + 1);
            v[0] = p.x, v[1] = p.y, v[2] = p.z, v[3] = p.w, v[4] = q.x, v[5] = q.y, v[6] = q.z, v[7] = q.w;
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) v[e] = __ldg(x + 8 * i + e);
        }
        uint4 h, l;
        mm_split2(v[0], v[1], &h.x, &l.x), mm_split2(v[2], v[3], &h.y, &l.y);
        mm_split2(v[4], v[5], &h.z, &l.z), mm_split2(v[6], v[7], &h.w, &l.w);
        hi[i] = h, lo[i] = l;
    }
}

/* Split-K: dst[t M + m] = epilogue(part[0] + part[1] + ... + part[splits - 1]), in z order. */
static __global__ void __launch_bounds__(256)
    gemm_reduce_kernel(float *dst, const float *part, int64_t n, int splits, int epi) {
    rwkv7_pdl_wait();
    rwkv7_pdl_trigger();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float s = part[i];
        for (int z = 1; z < splits; z++) s += part[(size_t)z * n + i];
        mm_epilogue(dst + i, s, epi);
    }
}

/* ------------------------------------------------------------------------------------------------
 * the bf16x3 tile: 128 threads, 64 weight rows x 64 tokens, GM_BK = 32 k per stage, two stages.
 * Per stage the block holds the weight tile's hi and lo parts (dequantized by the threads, 2 groups
 * of 8 each, split with mm_split2, stored as 16-byte words) and the activation tile's (cp.async
 * from the split pass's output, zero-filled past T and K). While stage s is multiplied, the
 * activations of the next step are in flight (cp.async) and the next weight groups' loads are
 * issued (dq8_row into registers, stored into the other stage after the MMAs). Warp w owns a
 * 32 x 32 patch (gemm_tile.cuh): 2 x 4 MMA tiles of 16 x 8, 32 fp32 accumulators per thread; per
 * k16 slice it takes each tile's a_lo b_hi, a_hi b_lo, a_hi b_hi in that order (a_lo b_hi skipped
 * for BF16 weights), the order tests/test_cuda_mma.cu replays. Grid: x token tiles (fastest: the
 * blocks resident together share a weight tile, so each weight tile streams from DRAM about once
 * per chunk of tokens), y weight tiles, z splits; part != NULL: store raw partials at
 * part[(z T + t) M + m] for gemm_reduce_kernel. Output: staged through shared memory, written
 * along m (coalesced). Host guarantees K % 8 == 0 and an sm_80+ device. */
struct gm_stage {
    __nv_bfloat16 ah[GM_BM][GM_LDS], al[GM_BM][GM_LDS]; /* weights (row m, k) */
    __nv_bfloat16 bh[GM_BN][GM_LDS], bl[GM_BN][GM_LDS]; /* activations (token n, k) */
};
union gm_smem {
    gm_stage st[2];
    float c[GM_BN * GM_LDC]; /* output tile, (n, m) at c[n GM_LDC + m] */
};

__device__ __forceinline__ uint32_t gm_saddr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void gm_ldm4(uint32_t r[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void gm_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* 16 bytes global -> shared, zero-filled when !ok (src then only needs to be a valid address). */
__device__ __forceinline__ void gm_cp16(uint32_t dst, const void *src, bool ok) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0) : "memory");
}
__device__ __forceinline__ void gm_cp_commit(void) { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void gm_cp_wait(void) {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

template <int TYPE>
static __global__ void __launch_bounds__(GM_THREADS, 4)
    gemm_bf16x3_kernel(float *dst, float *part, const uint8_t *w, const __nv_bfloat16 *xh, const __nv_bfloat16 *xl,
                       int64_t K, int64_t M, int T, size_t row_bytes, int epi, int ksteps, int steps) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    constexpr bool w_exact = mm_weight_bf16_exact(TYPE);
    __shared__ __align__(16) gm_smem sm;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int t0 = blockIdx.x * GM_BN;
    const int64_t m0 = (int64_t)blockIdx.y * GM_BM;
    const int ks0 = blockIdx.z * steps, ks1 = min(ksteps, ks0 + steps);
    const int n_groups = (int)(K / 8);
    const dq_tables tb = dq_tab();
    /* weight groups of this thread: rows wr and wr + 32, group column wg of each 4-group step */
    const int wr = tid >> 2, wg = tid & 3;
    const bool wlive0 = m0 + wr < M, wlive1 = m0 + wr + 32 < M;
    const uint8_t *wrow0 = w + (size_t)(wlive0 ? m0 + wr : 0) * row_bytes;
    const uint8_t *wrow1 = w + (size_t)(wlive1 ? m0 + wr + 32 : 0) * row_bytes;
    /* activation chunks of this thread: tokens tid / 4 + 32 i (i < 2), 8 k at 8 (tid % 4), hi and lo */
    const int xn = tid >> 2, xc = (tid & 3) * 8;
    const bool xlive0 = t0 + xn < T, xlive1 = t0 + xn + 32 < T;
    const size_t xo0 = (size_t)(xlive0 ? t0 + xn : 0) * K + xc, xo1 = (size_t)(xlive1 ? t0 + xn + 32 : 0) * K + xc;

    auto load_x = [&](int ks, gm_stage &s) {
        const int k = ks * GM_BK + xc;
        const bool kin = k < K; /* K % 8 == 0: a chunk is all in or all out */
        gm_cp16(gm_saddr(&s.bh[xn][xc]), xh + (kin ? xo0 + ks * GM_BK : 0), kin && xlive0);
        gm_cp16(gm_saddr(&s.bl[xn][xc]), xl + (kin ? xo0 + ks * GM_BK : 0), kin && xlive0);
        gm_cp16(gm_saddr(&s.bh[xn + 32][xc]), xh + (kin ? xo1 + ks * GM_BK : 0), kin && xlive1);
        gm_cp16(gm_saddr(&s.bl[xn + 32][xc]), xl + (kin ? xo1 + ks * GM_BK : 0), kin && xlive1);
        gm_cp_commit();
    };
    auto load_w = [&](int ks, float v[2][8]) {
        const int g = ks * (GM_BK / 8) + wg;
#pragma unroll
        for (int it = 0; it < 2; it++) {
            if ((it ? wlive1 : wlive0) && g < n_groups) {
                dq8_row<TYPE>(it ? wrow1 : wrow0, g, v[it], tb);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) v[it][e] = 0.0f;
            }
        }
    };
    auto store_w = [&](const float v[2][8], gm_stage &s) {
#pragma unroll
        for (int it = 0; it < 2; it++) {
            uint4 h, l;
            mm_split2(v[it][0], v[it][1], &h.x, &l.x), mm_split2(v[it][2], v[it][3], &h.y, &l.y);
            mm_split2(v[it][4], v[it][5], &h.z, &l.z), mm_split2(v[it][6], v[it][7], &h.w, &l.w);
            *reinterpret_cast<uint4 *>(&s.ah[wr + 32 * it][wg * 8]) = h;
            if constexpr (!w_exact) *reinterpret_cast<uint4 *>(&s.al[wr + 32 * it][wg * 8]) = l;
        }
    };

    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;
    const int wm = gm_warp_row(warp), wn = gm_warp_tok(warp);

    /* the weights are never written by a kernel: their first loads may precede the wait (PDL) */
    float wv[2][8];
    if (ks0 < ks1) load_w(ks0, wv);
    rwkv7_pdl_wait();
    rwkv7_pdl_trigger();
    if (ks0 < ks1) {
        load_x(ks0, sm.st[0]);
        store_w(wv, sm.st[0]);
    }
    for (int ks = ks0; ks < ks1; ks++) {
        gm_stage &cur = sm.st[(ks - ks0) & 1], &nxt = sm.st[(ks - ks0 + 1) & 1];
        const bool more = ks + 1 < ks1;
        if (more) {
            load_x(ks + 1, nxt); /* nxt was released by the barrier that ended the previous step */
            load_w(ks + 1, wv);
            gm_cp_wait<1>();
        } else {
            gm_cp_wait<0>();
        }
        __syncthreads(); /* cur complete: its cp.async and the weight stores of the previous step */
#pragma unroll
        for (int kk = 0; kk < GM_BK; kk += 16) {
            uint32_t ah[2][4];
            [[maybe_unused]] uint32_t al[2][4];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                gm_ldm4(ah[i], gm_saddr(&cur.ah[wm + 16 * i + gm_a_row(lane)][kk + gm_a_col(lane)]));
                if constexpr (!w_exact)
                    gm_ldm4(al[i], gm_saddr(&cur.al[wm + 16 * i + gm_a_row(lane)][kk + gm_a_col(lane)]));
            }
#pragma unroll
            for (int jp = 0; jp < 2; jp++) { /* token slices 2 jp and 2 jp + 1 */
                uint32_t bh[4], bl[4];
                gm_ldm4(bh, gm_saddr(&cur.bh[wn + 16 * jp + gm_b_row(lane)][kk + gm_b_col(lane)]));
                gm_ldm4(bl, gm_saddr(&cur.bl[wn + 16 * jp + gm_b_row(lane)][kk + gm_b_col(lane)]));
#pragma unroll
                for (int i = 0; i < 2; i++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        float *c = acc[i][2 * jp + h];
                        if constexpr (!w_exact) gm_mma(c, al[i], bh[2 * h], bh[2 * h + 1]);
                        gm_mma(c, ah[i], bl[2 * h], bl[2 * h + 1]);
                        gm_mma(c, ah[i], bh[2 * h], bh[2 * h + 1]);
                    }
            }
        }
        if (more) store_w(wv, nxt);
        __syncthreads(); /* cur is read by everyone before the next step refills it */
    }
    /* stage the 64 x 64 outputs (the stages are free: the loop ended on a barrier) */
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int r = 0; r < 4; r++)
                sm.c[(wn + 8 * j + gm_c_col(lane, r)) * GM_LDC + wm + 16 * i + gm_c_row(lane, r)] = acc[i][j][r];
    __syncthreads();
    float *out = part ? part + (size_t)blockIdx.z * T * M : dst;
    for (int idx = tid; idx < GM_BM * GM_BN; idx += GM_THREADS) {
        const int tt = idx / GM_BM, mm = idx % GM_BM;
        const int64_t t = t0 + tt, m = m0 + mm;
        if (t >= T || m >= M) continue;
        if (part)
            out[t * M + m] = sm.c[tt * GM_LDC + mm];
        else
            mm_epilogue(out + t * M + m, sm.c[tt * GM_LDC + mm], epi);
    }
#else
    rwkv7_pdl_wait();
    __trap(); /* the host never launches this below sm_80 */
#endif
}

/* ------------------------------------------------------------------------------------------------
 * fp32 SIMT tile kernel for sm_75 (no bf16 MMA) and RWKV7_CUDA_SIMT_TILES=1: block tile 64 weight
 * rows x 64 tokens, K in steps of 32, 256 threads each owning a 4 x 4 patch of outputs in
 * registers. Each weight tile is dequantized once per 64 tokens (the matvec kernel would stream the
 * weights once per 8 columns), token tiles run fastest in the grid so the blocks in flight share a
 * weight tile in L2. Plain fp32 FMAs in k order: a sequential fp32 dot product, the CPU's
 * precision. Host guarantees K % 8 == 0. */
#define ST_BM 64
#define ST_BN 64
#define ST_BK 32
#define ST_LD (ST_BM + 4) /* floats per k row of the transposed tiles: float4-aligned, banks spread */

template <int TYPE>
static __global__ void __launch_bounds__(256) gemm_simt_kernel(float *dst, const uint8_t *w, const float *x, int64_t K,
                                                               int64_t M, int64_t T, size_t row_bytes, int epi) {
    __shared__ __align__(16) float ws[ST_BK][ST_LD]; /* [k][m] */
    __shared__ __align__(16) float xs[ST_BK][ST_LD]; /* [k][t] */
    rwkv7_pdl_wait();
    rwkv7_pdl_trigger();
    const int tid = threadIdx.x, tm = tid % 16, tn = tid / 16;
    const int64_t t0 = (int64_t)blockIdx.x * ST_BN, m0 = (int64_t)blockIdx.y * ST_BM;
    const int n_groups = (int)(K / 8);
    const dq_tables tb = dq_tab();
    /* loads: weight group (row tid / 4, group column tid % 4); activations token tid / 8 + 32 it,
     * k offset 4 (tid % 8) */
    const int wr = tid >> 2, wg = tid & 3, xt = tid >> 3, xk = (tid & 7) * 4;
    const bool wlive = m0 + wr < M;
    const uint8_t *wrow = w + (size_t)(wlive ? m0 + wr : 0) * row_bytes;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += ST_BK) {
        {
            const int g = k0 / 8 + wg;
            float v[8];
            if (wlive && g < n_groups) {
                dq8_row<TYPE>(wrow, g, v, tb);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] = 0.0f;
            }
#pragma unroll
            for (int e = 0; e < 8; e++) ws[wg * 8 + e][wr] = v[e];
        }
#pragma unroll
        for (int it = 0; it < 2; it++) {
            const int64_t t = t0 + xt + 32 * it;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (t < T && k0 + xk < K) {
                const float *xp = x + t * K + k0 + xk;
                v = make_float4(__ldg(xp), __ldg(xp + 1), __ldg(xp + 2), __ldg(xp + 3));
            }
            xs[xk][xt + 32 * it] = v.x, xs[xk + 1][xt + 32 * it] = v.y;
            xs[xk + 2][xt + 32 * it] = v.z, xs[xk + 3][xt + 32 * it] = v.w;
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < ST_BK; k++) {
            const float4 a = *reinterpret_cast<const float4 *>(&ws[k][tm * 4]);
            const float4 b = *reinterpret_cast<const float4 *>(&xs[k][tn * 4]);
            const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int64_t t = t0 + tn * 4 + j;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int64_t m = m0 + tm * 4 + i;
            if (t < T && m < M) mm_epilogue(dst + t * M + m, acc[i][j], epi);
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * launchers */

cudaError_t rwkv7_cuda_gemm_init(void) { return dq_upload_tables(); }

/* Scratch of the split pass and the split-K partials, grown geometrically. Outside a recording the
 * old buffer is freed, so every recorded graph (which may point into it) is dropped and recorded
 * again; inside one it is kept until the backend is freed (the recording and earlier graphs may
 * still point into it). */
#define GM_RETIRED_MAX ((int)(sizeof(((struct rwkv7_cuda *)0)->gemm_retired) / sizeof(void *)))

static enum rwkv7_status gemm_scratch(struct rwkv7_cuda *cu, size_t need, char **out) {
    if (need <= cu->gemm_scratch_size) {
        *out = (char *)cu->gemm_scratch;
        return RWKV7_OK;
    }
    size_t size = cu->gemm_scratch_size ? 2 * cu->gemm_scratch_size : (size_t)8 << 20;
    while (size < need) size *= 2;
    if (cu->gemm_scratch) {
        if (cu->capturing) {
            if (cu->gemm_n_retired == GM_RETIRED_MAX)
                return rwkv7_fail(RWKV7_ERR_OOM, "cuda: gemm scratch regrown %d times while recording", GM_RETIRED_MAX);
            cu->gemm_retired[cu->gemm_n_retired++] = cu->gemm_scratch;
        } else {
            CUDA_CHECK(cudaStreamSynchronize(cu->stream));
            for (int i = 0; i < RWKV7_CUDA_MAX_GRAPHS; i++)
                if (cu->graphs[i].exec) {
                    CUDA_CHECK(cudaGraphExecDestroy(cu->graphs[i].exec));
                    cu->graphs[i].exec = NULL;
                }
            CUDA_CHECK(cudaFree(cu->gemm_scratch));
            cu->allocated -= cu->gemm_scratch_size;
        }
        cu->gemm_scratch = NULL;
        cu->gemm_scratch_size = 0;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        return rwkv7_fail(RWKV7_ERR_OOM, "cuda: cannot allocate %zu bytes of matmul scratch on %s", size,
                          cu->prop.name);
    }
    CUDA_CHECK(e);
    cu->gemm_scratch = p;
    cu->gemm_scratch_size = size;
    cu->allocated += size;
    *out = (char *)p;
    return RWKV7_OK;
}

void rwkv7_cuda_gemm_free(struct rwkv7_cuda *cu) {
    if (cu->gemm_scratch) (void)cudaFree(cu->gemm_scratch);
    for (int i = 0; i < cu->gemm_n_retired; i++) (void)cudaFree(cu->gemm_retired[i]);
    cu->gemm_scratch = NULL;
    cu->gemm_n_retired = 0;
}

static unsigned gm_stream_blocks(const struct rwkv7_cuda *cu, int64_t n) {
    const int64_t cap = (int64_t)(cu->prop.multiProcessorCount > 0 ? cu->prop.multiProcessorCount : 1) * 8;
    const int64_t b = (n + 255) / 256;
    return (unsigned)(b < cap ? (b > 0 ? b : 1) : cap);
}

template <int TYPE> static enum rwkv7_status gemm_mma(struct rwkv7_cuda *cu, const struct gemm_prod *p) {
    /* token chunks of GM_TCHUNK: split pass, tiles, (split-K) reduction, one after another */
    const int64_t tc_max = p->T < GM_TCHUNK ? p->T : GM_TCHUNK, tc_last = p->T - (p->T - 1) / GM_TCHUNK * GM_TCHUNK;
    const size_t xbytes = (size_t)tc_max * p->K * sizeof(__nv_bfloat16); /* each of hi, lo */
    size_t pbytes = 0; /* partials: full chunks and the last one may split differently */
    for (int64_t tc : {tc_max, tc_last}) {
        const gm_plan q = gm_plan_of(p->M, p->K, tc, cu->prop.multiProcessorCount);
        const size_t b = q.splits > 1 ? (size_t)q.splits * tc * p->M * sizeof(float) : 0;
        pbytes = b > pbytes ? b : pbytes;
    }
    const size_t need = 2 * xbytes + pbytes;
    char *scratch = NULL;
    enum rwkv7_status st = gemm_scratch(cu, need, &scratch);
    if (st != RWKV7_OK) return st;
    __nv_bfloat16 *xh = (__nv_bfloat16 *)scratch, *xl = (__nv_bfloat16 *)(scratch + xbytes);
    float *part = (float *)(scratch + 2 * xbytes);
    for (int64_t c0 = 0; c0 < p->T; c0 += GM_TCHUNK) {
        const int tc = (int)(p->T - c0 < GM_TCHUNK ? p->T - c0 : GM_TCHUNK);
        const gm_plan q = gm_plan_of(p->M, p->K, tc, cu->prop.multiProcessorCount);
        const int64_t n8 = (int64_t)tc * p->K / 8;
        CUDA_CHECK(rwkv7_cuda_launch(cu, gemm_split_kernel, dim3(gm_stream_blocks(cu, n8)), dim3(256), 0,
                                     p->x + c0 * p->K, reinterpret_cast<uint4 *>(xh), reinterpret_cast<uint4 *>(xl),
                                     n8));
        CUDA_LAUNCHED(cu);
        float *dst = p->dst + c0 * p->M;
        const dim3 grid(ceil_div(tc, GM_BN), ceil_div(p->M, GM_BM), q.splits);
        CUDA_CHECK(rwkv7_cuda_launch(cu, gemm_bf16x3_kernel<TYPE>, grid, dim3(GM_THREADS), 0, dst,
                                     q.splits > 1 ? part : (float *)NULL, p->w, (const __nv_bfloat16 *)xh,
                                     (const __nv_bfloat16 *)xl, p->K, p->M, tc, p->row_bytes, p->epi, q.ksteps,
                                     q.steps));
        CUDA_LAUNCHED(cu);
        if (q.splits > 1) {
            const int64_t n = (int64_t)tc * p->M;
            CUDA_CHECK(rwkv7_cuda_launch(cu, gemm_reduce_kernel, dim3(gm_stream_blocks(cu, n)), dim3(256), 0, dst,
                                         (const float *)part, n, q.splits, p->epi));
            CUDA_LAUNCHED(cu);
        }
    }
    return RWKV7_OK;
}

template <int TYPE> static enum rwkv7_status gemm_simt(struct rwkv7_cuda *cu, const struct gemm_prod *p) {
    const dim3 grid(ceil_div(p->T, ST_BN), ceil_div(p->M, ST_BM)); /* token tiles fastest, as above */
    CUDA_CHECK(rwkv7_cuda_launch(cu, gemm_simt_kernel<TYPE>, grid, dim3(256), 0, p->dst, p->w, p->x, p->K, p->M, p->T,
                                 p->row_bytes, p->epi));
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_cuda_gemm(struct rwkv7_cuda *cu, const struct gemm_prod *p) {
    RWKV7_ASSERT(p->K % 8 == 0 && ceil_div(p->M, GM_BM) <= 65535);
    const bool simt = cu->prop.major < 8 || cu->simt_tiles;
    switch (p->type) {
#define GEMM_CASE(T_)                                                                                                  \
    case RWKV7_DTYPE_##T_: return simt ? gemm_simt<RWKV7_DTYPE_##T_>(cu, p) : gemm_mma<RWKV7_DTYPE_##T_>(cu, p);
        RWKV7_CUDA_WEIGHT_TYPES(GEMM_CASE)
#undef GEMM_CASE
    default: return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: matmul: type %s not supported", rwkv7_dtype_name(p->type));
    }
}
