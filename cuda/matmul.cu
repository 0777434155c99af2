/* matmul.cu: dst (M, T) = W x (or dst += W x) for weights W (K, M) in any type of cuda/dequant.cuh,
 * dequantized on the fly from the native GGUF layout. Two paths: a matrix-vector kernel (1 or 4
 * warps per row) for decode (T <= 8 columns per pass, fp32 activations and accumulation; several
 * products in one launch for matmul_n), and a tile kernel for prefill / batched decode (3xTF32
 * wmma on sm_80+, fp32 accuracy; fp32 SIMT on sm_75). Also the fused matmul_n and ffn_key.
 * Reference: performance.md 4.2-4.4 (design), quant-formats.md 3 (formats), cpu/matmul.c. */
#include <string.h>

#include <mma.h>

#include <cuda_bf16.h>

#include "common.cuh"
#include "dequant.cuh"
#include "mma_split.cuh"
#include "ops.cuh"

/* ------------------------------------------------------------------------------------------------
 * kernels */

#define MV_THREADS 128 /* threads per block of the matrix-vector kernel: 4 warps */
/* Floats of activations a block stages in shared memory per K chunk when it computes 2..8 columns
 * (32 KiB): KC = MV_STAGE / NCOL of each column. KC / 8 groups is a multiple of 32 WPR, so every
 * chunk starts at a group index that is a multiple of the threads per row. */
#define MV_STAGE 8192
/* Blocks per SM the register budget must allow: 6 (<= 80 registers, 24 warps per SM, each with
 * 4 groups in flight per thread) for one column, 4 (<= 128 registers) above; the types listed
 * would spill under 80. Left to ptxas (~106-119 registers) single-column decode ran 16 warps. */
template <int TYPE, int NCOL, int WPR>
constexpr int mv_min_blocks() {
    /* ptxas spills (sm_75 / sm_90) without these exceptions: Q6_K at 4 warps per row under 128
     * registers (8 bytes), the float types and TQ1_0 at 8 columns under 128 (4-56 bytes) */
    if (NCOL == 1 && TYPE == RWKV7_DTYPE_Q6_K && WPR == 4) return 3;
    if (NCOL == 1) return TYPE == RWKV7_DTYPE_Q3_K && WPR == 4 ? 4 : 6;
    return NCOL == 8 && (dq_traits<TYPE>::block == 8 || TYPE == RWKV7_DTYPE_TQ1_0) ? 3 : 4;
}

/* Groups in flight per thread and loop trip: 4 at one column, 2 above (registers). Q5_K's decode
 * spills (8 bytes, sm_90) with 4 at one column; at 8 columns the float types and TQ1_0 spilled
 * (36-48 bytes, sm_75) with 2, the compiler hoisting all 8 columns' staged loads. The order in
 * which a thread adds its groups does not depend on U. */
template <int TYPE, int NCOL>
constexpr int mv_unroll() {
    if (NCOL == 1) return TYPE == RWKV7_DTYPE_Q5_K ? 2 : 4;
    return NCOL == 8 && (dq_traits<TYPE>::block == 8 || TYPE == RWKV7_DTYPE_TQ1_0) ? 1 : 2;
}

/* What a product does with its sums: store, add to dst (accumulate), or store max(s, 0)^2 (the
 * channel-mix key, fused: ffn_key). */
enum { MM_EPI_STORE = 0, MM_EPI_ACCUM = 1, MM_EPI_RELU_SQR = 2 };

__device__ __forceinline__ void mm_epilogue(float *d, float s, int epi) {
    if (epi == MM_EPI_ACCUM) s += *d;
    else if (epi == MM_EPI_RELU_SQR) s = s > 0.0f ? s * s : 0.0f;
    *d = s;
}

/* One product of a matrix-vector launch; a launch runs up to RWKV7_MATMUL_N_MAX of them (matmul_n:
 * r/k/v, the LoRA down-projections) of one weight type and column count T, its blocks numbered
 * consecutively: product i owns blocks block0[i] .. block0[i + 1] - 1. */
struct mv_job {
    float *dst;
    const uint8_t *w;
    const float *x;
    int64_t K, M;
    size_t row_bytes;
    int epi;
    unsigned block0;
};
struct mv_jobs {
    mv_job j[RWKV7_MATMUL_N_MAX];
    int n;
    int64_t T;
};

__device__ __forceinline__ void mv_prefetch_l2(const void *p) {
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/* Matrix-vector: WPR warps (1 or 4) per weight row, NCOL activation columns per pass (the
 * dequantized weights are reused across them). Thread l of a row's 32 * WPR decodes the groups of 8
 * elements g = l, l + 32 WPR, ...; U of them per loop trip, all U decoded (their loads issued)
 * before any is consumed, so each thread keeps U independent DRAM requests in flight instead of
 * a chain of K / (256 WPR) dependent ones. Warp sums, then (WPR > 1) a shared-memory sum over the
 * row's warps in warp order. Block = MV_THREADS threads = 4 / WPR rows of one product (jobs: the
 * block finds its product by block0); grid = (blocks of all products, ceil(T / NCOL)). The host
 * picks WPR from the products' M and K only (mv_warps_per_row), never from T, and every NCOL adds
 * a thread's groups in the same (ascending) order with the same expression, reading the same
 * values (from shared memory or global), so a column's sum is the same for every column count
 * (batch invariance). For NCOL > 1 the block stages the columns' activations in shared memory,
 * MV_STAGE floats per K chunk, once for its 4 / WPR rows instead of every warp reading them from
 * L1/L2. Host guarantees K % 8 == 0 for block types; float types may have a tail of K % 8
 * elements, done element-wise. Everything in fp32 (exact inputs). Weights are prefetched into L2
 * before rwkv7_pdl_wait (no kernel writes them), so on sm_90 their first DRAM trips overlap the
 * previous kernel's tail. */
template <int TYPE, int NCOL, int WPR>
static __global__ void __launch_bounds__(MV_THREADS, (mv_min_blocks<TYPE, NCOL, WPR>()))
matvec_kernel(const __grid_constant__ mv_jobs jobs) {
    constexpr int TPR = 32 * WPR, RPB = MV_THREADS / TPR, U = mv_unroll<TYPE, NCOL>();
    constexpr int KC = NCOL > 1 ? MV_STAGE / NCOL : 1; /* staged floats per column and chunk */
    static_assert(NCOL == 1 || (KC / 8) % TPR == 0, "chunks must start at a multiple of the row's threads");
    __shared__ __align__(16) float xs[NCOL > 1 ? MV_STAGE : 4];
    __shared__ float red[WPR > 1 ? MV_THREADS / 32 : 1][NCOL];
    int ji = 0;
#pragma unroll
    for (int i = 1; i < RWKV7_MATMUL_N_MAX; i++)
        if (i < jobs.n && blockIdx.x >= jobs.j[i].block0) ji = i;
    const mv_job &jb = jobs.j[ji];
    const int64_t K = jb.K, M = jb.M, T = jobs.T;
    const int l = threadIdx.x % TPR, warp = threadIdx.x / 32;
    const int64_t row = (int64_t)(blockIdx.x - jb.block0) * RPB + threadIdx.x / TPR;
    const bool live = row < M; /* no early return: the reductions and staging have barriers */
    const uint8_t *wr = jb.w + (size_t)(live ? row : 0) * jb.row_bytes;
    if (live)
        for (size_t o = (size_t)l * 128; o < jb.row_bytes; o += (size_t)TPR * 128) mv_prefetch_l2(wr + o);
    rwkv7_pdl_wait();
    rwkv7_pdl_trigger();
    const int64_t t0 = (int64_t)blockIdx.y * NCOL;
    const int ncol = T - t0 < NCOL ? (int)(T - t0) : NCOL;
    const float *xc = jb.x + t0 * K;
    const dq_tables tb = dq_tab();
    /* Every group's 8 activations are 16-byte aligned when x is and K % 4 == 0 (uniform); the
     * staged copy is then read as float4 too, else element-wise in both (the same expression). */
    const bool x16 = ((reinterpret_cast<uintptr_t>(jb.x) & 15) == 0) && (K & 3) == 0;
    float acc[NCOL];
#pragma unroll
    for (int c = 0; c < NCOL; c++) acc[c] = 0.0f;

    /* One group's contribution to every column: 8 activations of column c at xg + c * stride. */
    auto add_group = [&](const float *wv, const float *xg, int64_t stride) {
#pragma unroll
        for (int c = 0; c < NCOL; c++) {
            if (c < ncol) {
                const float *xp = xg + c * stride;
                if (x16) { /* two 16-byte loads instead of eight 4-byte ones */
                    float4 p, q;
                    if constexpr (NCOL == 1) { /* global: the read-only path */
                        p = __ldg(reinterpret_cast<const float4 *>(xp)), q = __ldg(reinterpret_cast<const float4 *>(xp) + 1);
                    } else { /* staged in shared memory */
                        p = reinterpret_cast<const float4 *>(xp)[0], q = reinterpret_cast<const float4 *>(xp)[1];
                    }
                    acc[c] += wv[0] * p.x + wv[1] * p.y + wv[2] * p.z + wv[3] * p.w;
                    acc[c] += wv[4] * q.x + wv[5] * q.y + wv[6] * q.z + wv[7] * q.w;
                } else {
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[c] += wv[e] * (NCOL == 1 ? __ldg(xp + e) : xp[e]);
                }
            }
        }
    };

    const int64_t n_groups = live ? K / 8 : 0;
    if constexpr (NCOL == 1) {
        int64_t g = l;
        for (; g + (U - 1) * TPR < n_groups; g += U * TPR) {
            float wv[U][8];
#pragma unroll
            for (int u = 0; u < U; u++) dq8_row<TYPE>(wr, g + u * TPR, wv[u], tb);
#pragma unroll
            for (int u = 0; u < U; u++) add_group(wv[u], xc + 8 * (g + u * TPR), K);
        }
        for (; g < n_groups; g += TPR) {
            float wv[8];
            dq8_row<TYPE>(wr, g, wv, tb);
            add_group(wv, xc + 8 * g, K);
        }
    } else {
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int kc = K - k0 < KC ? (int)(K - k0) : KC;
            __syncthreads(); /* the previous chunk is consumed */
#pragma unroll
            for (int c = 0; c < NCOL; c++) {
                const float *src = xc + c * K + k0;
                if (x16) { /* kc % 4 == 0: K % 4 == 0 and KC % 4 == 0 */
                    for (int e = 4 * threadIdx.x; e < kc; e += 4 * MV_THREADS)
                        *reinterpret_cast<float4 *>(&xs[c * KC + e]) =
                            c < ncol ? __ldg(reinterpret_cast<const float4 *>(src + e)) : make_float4(0, 0, 0, 0);
                } else {
                    for (int e = threadIdx.x; e < kc; e += MV_THREADS) xs[c * KC + e] = c < ncol ? __ldg(src + e) : 0.0f;
                }
            }
            __syncthreads();
            const int64_t g0 = k0 / 8, g_end = min(n_groups, (k0 + kc) / 8);
            int64_t g = g0 + l;
            for (; g + (U - 1) * TPR < g_end; g += U * TPR) {
                float wv[U][8];
#pragma unroll
                for (int u = 0; u < U; u++) dq8_row<TYPE>(wr, g + u * TPR, wv[u], tb);
#pragma unroll
                for (int u = 0; u < U; u++) add_group(wv[u], xs + 8 * (g + u * TPR - g0), KC);
            }
            for (; g < g_end; g += TPR) {
                float wv[8];
                dq8_row<TYPE>(wr, g, wv, tb);
                add_group(wv, xs + 8 * (g - g0), KC);
            }
        }
    }
    if constexpr (dq_traits<TYPE>::block == 8) {
        constexpr int es = dq_traits<TYPE>::bytes / 8;
        for (int64_t k = 8 * n_groups + l; live && k < K; k += TPR) {
            const float wv = dq1<TYPE>(wr + es * k);
#pragma unroll
            for (int c = 0; c < NCOL; c++)
                if (c < ncol) acc[c] += wv * __ldg(xc + c * K + k);
        }
    }
#pragma unroll
    for (int c = 0; c < NCOL; c++) acc[c] = warp_sum(acc[c]);
    if constexpr (WPR > 1) {
        if ((threadIdx.x & 31) == 0) {
#pragma unroll
            for (int c = 0; c < NCOL; c++) red[warp][c] = acc[c];
        }
        __syncthreads();
        if (l == 0) {
#pragma unroll
            for (int c = 0; c < NCOL; c++) {
                float s = red[warp][c];
#pragma unroll
                for (int v = 1; v < WPR; v++) s += red[warp + v][c];
                acc[c] = s;
            }
        }
    }
    if (l == 0 && live) {
#pragma unroll
        for (int c = 0; c < NCOL; c++)
            if (c < ncol) mm_epilogue(jb.dst + (t0 + c) * M + row, acc[c], jb.epi);
    }
}

/* Tensor-core tile kernel for prefill and batched decode: block tile MM_BM weight rows x MM_BN
 * tokens, K in steps of MM_BK; 4 warps in a 2 x 2 arrangement, each owning a 32 x 32 output patch
 * = 2 x 2 wmma 16x16x8 tf32 fragments with fp32 accumulators. Per K step the block dequantizes the
 * weight tile (8 elements per thread-step, dq8) and loads the activation tile, splits every value
 * into tf32 hi + lo parts (cuda/mma_split.cuh) and stores both in shared memory; each 8-wide k
 * slice then takes a_lo b_hi + a_hi b_lo + a_hi b_hi into one accumulator (a_lo b_hi skipped for
 * F16/BF16 weights, exact in tf32). Precision: an fp32 dot product's (tests/test_cuda_mma.cu
 * emulates this order and rounding on the fixture shapes: max|err|/max|ref| <= 1.1e-6 against the
 * 1e-4 of tests/model_check.h; one bf16 product gives 2e-3). Grid x runs over token tiles, so the
 * blocks in flight together share a weight tile and each weight tile streams from DRAM about once
 * per call (L2 serves the other token tiles). Host guarantees K % 8 == 0 and an sm_80+ device;
 * rows >= M and tokens >= T are zero-filled and never stored. */
#define MM_BM 64
#define MM_BN 64
#define MM_BK 32
#define MM_LDS (MM_BK + 4) /* float row stride of the A/B tiles: 144 B; 16-row steps are 32-byte aligned */
#define MM_LDC (MM_BM + 4) /* float stride of the staged output tile */

union mm_smem {
    struct {
        float a_hi[MM_BM][MM_LDS], a_lo[MM_BM][MM_LDS]; /* weight tile, row-major (row m, k) */
        float b_hi[MM_BN][MM_LDS], b_lo[MM_BN][MM_LDS]; /* activation tile, token-major = col-major K x N */
    } in;
    float c[MM_BN * MM_LDC]; /* output tile, (n, m) at c[n * MM_LDC + m] */
};

template <int TYPE>
static __global__ void __launch_bounds__(128)
matmul_tf32x3_kernel(float *dst, const uint8_t *w, const float *x, int64_t K, int64_t M, int64_t T,
                     size_t row_bytes, int epi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    constexpr bool w_exact = mm_weight_tf32_exact(TYPE);
    __shared__ __align__(32) mm_smem sm;
    rwkv7_pdl_wait();
    rwkv7_pdl_trigger();
    const int tid = threadIdx.x, warp = tid / 32;
    const int wm = warp & 1, wn = warp >> 1; /* warp's 32 x 32 patch inside the 64 x 64 tile */
    const int64_t t0 = (int64_t)blockIdx.x * MM_BN, m0 = (int64_t)blockIdx.y * MM_BM;
    const int n_groups = (int)(K / 8);
    const dq_tables tb = dq_tab();
    /* Per-thread sources, fixed for the whole K loop (few 64-bit values live: registers). Weight
     * groups: rows tid / 4 and tid / 4 + 32, group column tid % 4 of each 4-group step. Activations:
     * tokens tid / 8 + 16 it (it < 4), k offset 4 (tid % 8) of each 32-wide step. */
    const int wr0 = tid >> 2, wgk = tid & 3, xt0 = tid >> 3, xk = (tid & 7) * 4;
    const bool wlive0 = m0 + wr0 < M, wlive1 = m0 + wr0 + 32 < M;
    const uint8_t *wrow0 = w + (size_t)(wlive0 ? m0 + wr0 : 0) * row_bytes;
    const uint8_t *wrow1 = w + (size_t)(wlive1 ? m0 + wr0 + 32 : 0) * row_bytes;
    const float *xrow = x + (t0 + xt0) * K + xk;
    const int x_rows = T - t0 - xt0 > 0 ? (int)min(T - t0 - xt0, (int64_t)64) : 0; /* tokens it with 16 it < x_rows */
    const bool x16 = ((reinterpret_cast<uintptr_t>(x) & 15) == 0); /* K % 8 == 0: every row aligned */

    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int k0 = 0; k0 < K; k0 += MM_BK) {
        /* weight tile: 64 rows x 4 groups of 8 = 256 groups, 2 per thread */
#pragma unroll
        for (int it = 0; it < 2; it++) {
            const int g = k0 / 8 + wgk, r = wr0 + 32 * it;
            float v[8];
            if ((it ? wlive1 : wlive0) && g < n_groups) { /* selects, not a local array */
                dq8_row<TYPE>(it ? wrow1 : wrow0, g, v, tb);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] = 0.0f;
            }
            __align__(16) float hi[8], lo[8];
#pragma unroll
            for (int e = 0; e < 8; e++) mm_split(v[e], &hi[e], &lo[e]);
            float4 *ph = reinterpret_cast<float4 *>(&sm.in.a_hi[r][wgk * 8]);
            ph[0] = *reinterpret_cast<const float4 *>(hi), ph[1] = *reinterpret_cast<const float4 *>(hi + 4);
            if constexpr (!w_exact) {
                float4 *pl = reinterpret_cast<float4 *>(&sm.in.a_lo[r][wgk * 8]);
                pl[0] = *reinterpret_cast<const float4 *>(lo), pl[1] = *reinterpret_cast<const float4 *>(lo + 4);
            }
        }
        /* activation tile: 64 tokens x 32 k as 512 float4, 8 consecutive threads per token row */
#pragma unroll
        for (int it = 0; it < (MM_BN * MM_BK / 4) / 128; it++) {
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (16 * it < x_rows && k0 + xk < K) { /* k % 4 == 0 and K % 8 == 0: all four in range */
                const float *xp = xrow + (size_t)(16 * it) * K + k0;
                if (x16) v = __ldg(reinterpret_cast<const float4 *>(xp));
                else v = make_float4(__ldg(xp), __ldg(xp + 1), __ldg(xp + 2), __ldg(xp + 3));
            }
            float4 h, o;
            mm_split(v.x, &h.x, &o.x), mm_split(v.y, &h.y, &o.y), mm_split(v.z, &h.z, &o.z), mm_split(v.w, &h.w, &o.w);
            *reinterpret_cast<float4 *>(&sm.in.b_hi[xt0 + 16 * it][xk]) = h;
            *reinterpret_cast<float4 *>(&sm.in.b_lo[xt0 + 16 * it][xk]) = o;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < MM_BK; kk += 8) {
            wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> bh[2], bl[2];
#pragma unroll
            for (int j = 0; j < 2; j++) {
                wmma::load_matrix_sync(bh[j], &sm.in.b_hi[wn * 32 + j * 16][kk], MM_LDS);
                wmma::load_matrix_sync(bl[j], &sm.in.b_lo[wn * 32 + j * 16][kk], MM_LDS);
            }
            /* one A row-fragment pair live at a time (registers); small terms first, in the order
             * test_cuda_mma emulates */
#pragma unroll
            for (int i = 0; i < 2; i++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> ah, al;
                wmma::load_matrix_sync(ah, &sm.in.a_hi[wm * 32 + i * 16][kk], MM_LDS);
                if constexpr (!w_exact) wmma::load_matrix_sync(al, &sm.in.a_lo[wm * 32 + i * 16][kk], MM_LDS);
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    if constexpr (!w_exact) wmma::mma_sync(acc[i][j], al, bh[j], acc[i][j]);
                    wmma::mma_sync(acc[i][j], ah, bl[j], acc[i][j]);
                    wmma::mma_sync(acc[i][j], ah, bh[j], acc[i][j]);
                }
            }
        }
        __syncthreads(); /* tiles are overwritten by the next step (and by c below) */
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&sm.c[(wn * 32 + j * 16) * MM_LDC + wm * 32 + i * 16], acc[i][j], MM_LDC,
                                    wmma::mem_col_major);
    __syncthreads();
    /* 64 x 64 outputs, consecutive threads on consecutive rows m (coalesced along dst rows) */
    for (int idx = tid; idx < MM_BM * MM_BN; idx += 128) {
        const int tt = idx / MM_BM, mm = idx % MM_BM;
        const int64_t t = t0 + tt, m = m0 + mm;
        if (t < T && m < M) mm_epilogue(dst + t * M + m, sm.c[tt * MM_LDC + mm], epi);
    }
#else
    rwkv7_pdl_wait();
    __trap(); /* the host never launches this below sm_80 */
#endif
}

/* fp32 SIMT tile kernel for T > 8 where tf32 MMAs are missing (sm_75) or turned off
 * (RWKV7_CUDA_SIMT_TILES=1, so a newer GPU can test this path): block tile 64 weight rows x 64
 * tokens, K in steps of 32, 256 threads each owning a 4 x 4 patch of outputs in registers. Each
 * weight tile is dequantized once per 64 tokens (the matvec kernel would stream the weights once
 * per 8), token tiles run fastest in the grid so the blocks in flight share a weight tile in L2.
 * Plain fp32 FMAs in k order: a sequential fp32 dot product, the CPU's precision. Host guarantees
 * K % 8 == 0. */
#define ST_BM 64
#define ST_BN 64
#define ST_BK 32
#define ST_LD (ST_BM + 4) /* floats per k row of the transposed tiles: float4-aligned, banks spread */

template <int TYPE>
static __global__ void __launch_bounds__(256)
matmul_simt_kernel(float *dst, const uint8_t *w, const float *x, int64_t K, int64_t M, int64_t T, size_t row_bytes,
                   int epi) {
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

cudaError_t rwkv7_cuda_matmul_init(void) { return dq_upload_tables(); }

bool rwkv7_cuda_weight_type_ok(int type) { return dq_type_supported(type); }

/* Warps per weight row of the matrix-vector kernel: 4 for launches with few rows in all (LoRA
 * projections: M = 32..480 rows at one warp each would give 8-120 blocks and leave most SMs idle)
 * when every thread still gets 2 groups of 8 per row (K >= 2048); otherwise 1. Two variants only,
 * to bound the instantiations (26 types x 4 column counts each). Depends on the products' M and K
 * and the SM count only, never on T. */
static int mv_warps_per_row(int64_t M, int64_t K, int n_sm) {
    const int64_t want = (int64_t)(n_sm > 0 ? n_sm : 1) * 16; /* warps: a quarter of an SM's slots each */
    return M < want && K / 8 >= 2 * 128 ? 4 : 1;
}

template <int TYPE, int NCOL, int WPR>
static cudaError_t launch_matvec_w(const struct rwkv7_cuda *cu, mv_jobs &jobs) {
    constexpr int rows = MV_THREADS / (32 * WPR);
    unsigned blocks = 0;
    for (int i = 0; i < jobs.n; i++) {
        jobs.j[i].block0 = blocks;
        blocks += ceil_div(jobs.j[i].M, rows);
    }
    return rwkv7_cuda_launch(cu, matvec_kernel<TYPE, NCOL, WPR>, dim3(blocks, ceil_div(jobs.T, NCOL)),
                             dim3(MV_THREADS), 0, jobs);
}

template <int TYPE, int NCOL>
static cudaError_t launch_matvec_n(const struct rwkv7_cuda *cu, int wpr, mv_jobs &jobs) {
    return wpr == 4 ? launch_matvec_w<TYPE, NCOL, 4>(cu, jobs) : launch_matvec_w<TYPE, NCOL, 1>(cu, jobs);
}

/* One launch for all jobs (one weight type, one T). */
template <int TYPE>
static cudaError_t launch_matvec(const struct rwkv7_cuda *cu, mv_jobs &jobs) {
    int64_t M = 0, K = INT64_MAX;
    for (int i = 0; i < jobs.n; i++) M += jobs.j[i].M, K = jobs.j[i].K < K ? jobs.j[i].K : K;
    const int wpr = mv_warps_per_row(M, K, cu->prop.multiProcessorCount);
    const int64_t T = jobs.T;
    if (T <= 1) return launch_matvec_n<TYPE, 1>(cu, wpr, jobs);
    if (T <= 2) return launch_matvec_n<TYPE, 2>(cu, wpr, jobs);
    if (T <= 4) return launch_matvec_n<TYPE, 4>(cu, wpr, jobs);
    return launch_matvec_n<TYPE, 8>(cu, wpr, jobs);
}

template <int TYPE>
static cudaError_t launch_matmul(const struct rwkv7_cuda *cu, const mv_job &jb, int64_t T) {
    const dim3 grid(ceil_div(T, MM_BN), ceil_div(jb.M, MM_BM)); /* token tiles fastest: weight tiles shared in L2 */
    return rwkv7_cuda_launch(cu, matmul_tf32x3_kernel<TYPE>, grid, dim3(128), 0, jb.dst, jb.w, jb.x, jb.K, jb.M, T,
                             jb.row_bytes, jb.epi);
}

template <int TYPE>
static cudaError_t launch_matmul_simt(const struct rwkv7_cuda *cu, const mv_job &jb, int64_t T) {
    const dim3 grid(ceil_div(T, ST_BN), ceil_div(jb.M, ST_BM)); /* token tiles fastest, as above */
    return rwkv7_cuda_launch(cu, matmul_simt_kernel<TYPE>, grid, dim3(256), 0, jb.dst, jb.w, jb.x, jb.K, jb.M, T,
                             jb.row_bytes, jb.epi);
}

/* Columns at or below which the matrix-vector kernel wins (weights are streamed once per 8
 * columns; above this the tile kernel's reuse across 64 tokens pays for its 2-3 MMAs per product). */
#define MATMUL_MATVEC_MAX_T 8

/* A product as the launchers take it. */
struct mm_prod {
    mv_job job;
    int type;
    int64_t T;
};

static struct mm_prod mm_prod_of(const struct rwkv7_matmul_args *a, int epi) {
    struct mm_prod p;
    memset(&p, 0, sizeof p);
    p.job.dst = tptr<float>(a->dst);
    p.job.w = tptr<uint8_t>(a->w);
    p.job.x = tptr<float>(a->x);
    p.job.K = a->w->ne[0];
    p.job.M = a->w->ne[1];
    p.job.row_bytes = rwkv7_dtype_row_bytes(a->w->type, p.job.K);
    p.job.epi = epi;
    p.type = a->w->type;
    p.T = rwkv7_tensor_nrows(a->x);
    return p;
}

/* Whether a product takes the tile kernel. Batch-invariant mode keeps every column on the matvec
 * kernel: its per-column accumulation is the same code for every NCOL, so a column's bits do not
 * depend on T (the tiles sum in another order, and only when T > 8). sm_75 has no tf32 MMA: it
 * takes the fp32 SIMT tiles. */
static bool mm_tiles(const struct rwkv7_cuda *cu, const struct mm_prod *p) {
    return !cu->row_invariant && p->T > MATMUL_MATVEC_MAX_T && p->job.K % 8 == 0;
}

/* Tiles in fp32 SIMT arithmetic: no tf32 MMA below sm_80, or RWKV7_CUDA_SIMT_TILES=1. */
static bool mm_simt(const struct rwkv7_cuda *cu) { return cu->prop.major < 8 || cu->simt_tiles; }

/* Runs n products: tile products one launch each; matrix-vector products in as few launches as
 * their types and column counts allow (one for a layer's r/k/v or LoRA downs, which share both). */
static enum rwkv7_status mm_run(struct rwkv7_cuda *cu, struct mm_prod *p, int n) {
    bool done[RWKV7_MATMUL_N_MAX] = {false};
    for (int i = 0; i < n; i++) {
        RWKV7_ASSERT(p[i].job.row_bytes > 0);
        RWKV7_ASSERT(ceil_div(p[i].T, 8) <= 65535 && ceil_div(p[i].job.M, MM_BM) <= 65535);
        if (p[i].T == 0 || p[i].job.M == 0) done[i] = true;
    }
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        const bool tiles = mm_tiles(cu, &p[i]);
        mv_jobs jobs;
        memset(&jobs, 0, sizeof jobs);
        jobs.T = p[i].T;
        jobs.j[jobs.n++] = p[i].job;
        done[i] = true;
        for (int k = i + 1; k < n && !tiles; k++) { /* later products the same launch can take */
            if (done[k] || p[k].type != p[i].type || p[k].T != p[i].T || mm_tiles(cu, &p[k])) continue;
            jobs.j[jobs.n++] = p[k].job;
            done[k] = true;
        }
        cudaError_t e = cudaSuccess;
        switch (p[i].type) {
#define MATMUL_CASE(T_)                                                                                \
    case RWKV7_DTYPE_##T_:                                                                             \
        e = !tiles          ? launch_matvec<RWKV7_DTYPE_##T_>(cu, jobs)                                 \
            : mm_simt(cu) ? launch_matmul_simt<RWKV7_DTYPE_##T_>(cu, jobs.j[0], jobs.T)                 \
                          : launch_matmul<RWKV7_DTYPE_##T_>(cu, jobs.j[0], jobs.T);                     \
        break;
            RWKV7_CUDA_WEIGHT_TYPES(MATMUL_CASE)
#undef MATMUL_CASE
        default:
            return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: matmul: type %s not supported", rwkv7_dtype_name(p[i].type));
        }
        CUDA_CHECK(e);
        CUDA_LAUNCHED(cu);
    }
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_cuda_matmul, matmul) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    struct mm_prod p = mm_prod_of(args, args->accumulate ? MM_EPI_ACCUM : MM_EPI_STORE);
    return mm_run(cu, &p, 1);
}

/* Fused: the n products in one matrix-vector launch at decode (backend.h: no output overlaps
 * another product's input or output, so they may run at once). */
RWKV7_OP_SIG(rwkv7_cuda_matmul_n, matmul_n) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    struct mm_prod p[RWKV7_MATMUL_N_MAX];
    for (int i = 0; i < args->n; i++) p[i] = mm_prod_of(&args->m[i], args->m[i].accumulate ? MM_EPI_ACCUM : MM_EPI_STORE);
    return mm_run(cu, p, args->n);
}

/* Fused: dst = max(W x, 0)^2, the square in the matmul's store (one kernel). */
RWKV7_OP_SIG(rwkv7_cuda_ffn_key, ffn_key) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const struct rwkv7_matmul_args m = {args->dst, args->w, args->x, false};
    struct mm_prod p = mm_prod_of(&m, MM_EPI_RELU_SQR);
    return mm_run(cu, &p, 1);
}
