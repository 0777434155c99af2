/* matmul.cu: dst (M, T) = W x (or dst += W x) for weights W (K, M) in any type of cuda/dequant.cuh,
 * dequantized on the fly from the native GGUF layout. Two paths: a matrix-vector kernel (1 or 4
 * warps per row) for decode (T <= 8 columns per pass, fp32 activations and accumulation), and a
 * tensor-core tile kernel for prefill / batched decode (3xTF32 wmma, fp32 accuracy).
 * Reference: performance.md 4.2-4.4 (design), quant-formats.md 3 (formats), cpu/matmul.c. */
#include <mma.h>

#include <cuda_bf16.h>

#include "common.cuh"
#include "dequant.cuh"
#include "mma_split.cuh"
#include "ops.cuh"

/* ------------------------------------------------------------------------------------------------
 * kernels */

#define MV_THREADS 128 /* threads per block of the matrix-vector kernel: 4 warps */
/* Blocks per SM the register budget must allow: 6 (<= 80 registers, 24 warps per SM, each with
 * 4 groups in flight per thread) for one column, 4 (<= 128 registers) above; the types listed
 * would spill under 80. Left to ptxas (~106-119 registers) single-column decode ran 16 warps. */
template <int TYPE, int NCOL, int WPR>
constexpr int mv_min_blocks() {
    return NCOL == 1 && !(TYPE == RWKV7_DTYPE_Q6_K && WPR == 4) ? 6 : 4;
}

/* Matrix-vector: WPR warps (1 or 4) per weight row, NCOL activation columns per pass (the
 * dequantized weights are reused across them). Thread l of a row's 32 * WPR decodes the groups of 8
 * elements g = l, l + 32 WPR, ...; U of them per loop trip, all U decoded (their loads issued)
 * before any is consumed, so each thread keeps U independent DRAM requests in flight instead of
 * a chain of K / (256 WPR) dependent ones. Warp sums, then (WPR > 1) a shared-memory sum over the
 * row's warps in warp order. Block = MV_THREADS threads = 4 / WPR rows; grid = (ceil(M / rows),
 * ceil(T / NCOL)). The host picks WPR from M and K only (mv_warps_per_row), never from T, so a
 * column's sum is the same code and order for every column count (batch invariance). Host
 * guarantees K % 8 == 0 for block types; float types may have a tail of K % 8 elements, done
 * element-wise. Everything in fp32 (exact inputs). Activations load as two float4 per group where
 * aligned (decode is bandwidth-bound, and byte loads cap the achieved bandwidth in LSU issue). */
template <int TYPE, int NCOL, int WPR>
static __global__ void __launch_bounds__(MV_THREADS, (mv_min_blocks<TYPE, NCOL, WPR>()))
matvec_kernel(float *dst, const uint8_t *w, const float *x, int64_t K, int64_t M, int64_t T, size_t row_bytes,
              bool accumulate) {
    /* U: 4 groups in flight per thread at one column, 2 above (registers); Q5_K's decode is the
     * one that spills (8 bytes, sm_90) with 4 */
    constexpr int TPR = 32 * WPR, RPB = MV_THREADS / TPR, U = NCOL == 1 && TYPE != RWKV7_DTYPE_Q5_K ? 4 : 2;
    __shared__ float red[WPR > 1 ? MV_THREADS / 32 : 1][NCOL];
    const int l = threadIdx.x % TPR, warp = threadIdx.x / 32;
    const int64_t row = (int64_t)blockIdx.x * RPB + threadIdx.x / TPR;
    const bool live = row < M; /* no early return: the WPR > 1 reduction has a barrier */
    const int64_t t0 = (int64_t)blockIdx.y * NCOL;
    const int ncol = T - t0 < NCOL ? (int)(T - t0) : NCOL;
    const uint8_t *wr = w + (size_t)(live ? row : 0) * row_bytes;
    const float *xc = x + t0 * K;
    const dq_tables tb = dq_tab();
    /* Every group's 8 activations are 16-byte aligned when x is and K % 4 == 0 (uniform). */
    const bool x16 = ((reinterpret_cast<uintptr_t>(x) & 15) == 0) && (K & 3) == 0;
    float acc[NCOL];
#pragma unroll
    for (int c = 0; c < NCOL; c++) acc[c] = 0.0f;

    /* One group's contribution to every column (same order of adds for every NCOL). */
    auto add_group = [&](const float *wv, int64_t g) {
#pragma unroll
        for (int c = 0; c < NCOL; c++) {
            if (c < ncol) {
                const float *xp = xc + c * K + 8 * g;
                if (x16) { /* two 16-byte loads instead of eight 4-byte ones */
                    const float4 p = __ldg(reinterpret_cast<const float4 *>(xp));
                    const float4 q = __ldg(reinterpret_cast<const float4 *>(xp) + 1);
                    acc[c] += wv[0] * p.x + wv[1] * p.y + wv[2] * p.z + wv[3] * p.w;
                    acc[c] += wv[4] * q.x + wv[5] * q.y + wv[6] * q.z + wv[7] * q.w;
                } else {
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[c] += wv[e] * __ldg(xp + e);
                }
            }
        }
    };

    const int64_t n_groups = live ? K / 8 : 0;
    int64_t g = l;
    for (; g + (U - 1) * TPR < n_groups; g += U * TPR) {
        float wv[U][8];
#pragma unroll
        for (int u = 0; u < U; u++) dq8_row<TYPE>(wr, g + u * TPR, wv[u], tb);
#pragma unroll
        for (int u = 0; u < U; u++) add_group(wv[u], g + u * TPR);
    }
    for (; g < n_groups; g += TPR) {
        float wv[8];
        dq8_row<TYPE>(wr, g, wv, tb);
        add_group(wv, g);
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
        for (int c = 0; c < NCOL; c++) {
            if (c < ncol) {
                float *d = dst + (t0 + c) * M + row;
                *d = accumulate ? *d + acc[c] : acc[c];
            }
        }
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
                     size_t row_bytes, bool accumulate) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    constexpr bool w_exact = mm_weight_tf32_exact(TYPE);
    __shared__ __align__(32) mm_smem sm;
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
        if (t < T && m < M) {
            float *d = dst + t * M + m;
            const float s = sm.c[tt * MM_LDC + mm];
            *d = accumulate ? *d + s : s;
        }
    }
#else
    __trap(); /* the host never launches this below sm_80 */
#endif
}

/* ------------------------------------------------------------------------------------------------
 * launchers */

cudaError_t rwkv7_cuda_matmul_init(void) { return dq_upload_tables(); }

bool rwkv7_cuda_weight_type_ok(int type) { return dq_type_supported(type); }

/* Warps per weight row of the matrix-vector kernel: 4 for matrices with few rows (LoRA
 * projections: M = 32..480 rows at one warp each would give 8-120 blocks and leave most SMs idle)
 * when every thread still gets 2 groups of 8 per row (K >= 2048); otherwise 1. Two variants only,
 * to bound the instantiations (26 types x 4 column counts each). Depends on M, K and the SM count
 * only, never on T. */
static int mv_warps_per_row(int64_t M, int64_t K, int n_sm) {
    const int64_t want = (int64_t)(n_sm > 0 ? n_sm : 1) * 16; /* warps: a quarter of an SM's slots each */
    return M < want && K / 8 >= 2 * 128 ? 4 : 1;
}

template <int TYPE, int NCOL, int WPR>
static void launch_matvec_w(cudaStream_t s, float *d, const uint8_t *w, const float *x, int64_t K, int64_t M,
                            int64_t T, size_t rb, bool acc) {
    constexpr int rows = MV_THREADS / (32 * WPR);
    const dim3 grid(ceil_div(M, rows), ceil_div(T, NCOL));
    matvec_kernel<TYPE, NCOL, WPR><<<grid, MV_THREADS, 0, s>>>(d, w, x, K, M, T, rb, acc);
}

template <int TYPE, int NCOL>
static void launch_matvec_n(cudaStream_t s, int wpr, float *d, const uint8_t *w, const float *x, int64_t K,
                            int64_t M, int64_t T, size_t rb, bool acc) {
    if (wpr == 4) launch_matvec_w<TYPE, NCOL, 4>(s, d, w, x, K, M, T, rb, acc);
    else launch_matvec_w<TYPE, NCOL, 1>(s, d, w, x, K, M, T, rb, acc);
}

template <int TYPE>
static void launch_matvec(cudaStream_t s, int n_sm, float *d, const uint8_t *w, const float *x, int64_t K,
                          int64_t M, int64_t T, size_t rb, bool acc) {
    const int wpr = mv_warps_per_row(M, K, n_sm);
    if (T <= 1) launch_matvec_n<TYPE, 1>(s, wpr, d, w, x, K, M, T, rb, acc);
    else if (T <= 2) launch_matvec_n<TYPE, 2>(s, wpr, d, w, x, K, M, T, rb, acc);
    else if (T <= 4) launch_matvec_n<TYPE, 4>(s, wpr, d, w, x, K, M, T, rb, acc);
    else launch_matvec_n<TYPE, 8>(s, wpr, d, w, x, K, M, T, rb, acc);
}

template <int TYPE>
static void launch_matmul(cudaStream_t s, float *d, const uint8_t *w, const float *x, int64_t K, int64_t M,
                          int64_t T, size_t rb, bool acc) {
    const dim3 grid(ceil_div(T, MM_BN), ceil_div(M, MM_BM)); /* token tiles fastest: weight tiles shared in L2 */
    matmul_tf32x3_kernel<TYPE><<<grid, 128, 0, s>>>(d, w, x, K, M, T, rb, acc);
}

/* Columns at or below which the matrix-vector kernel wins (weights are streamed once per 8
 * columns; above this the tile kernel's reuse across 64 tokens pays for its 2-3 MMAs per product). */
#define MATMUL_MATVEC_MAX_T 8

RWKV7_OP_SIG(rwkv7_cuda_matmul, matmul) {
    const struct rwkv7_tensor *dst = args->dst, *w = args->w, *x = args->x;
    bool accumulate = args->accumulate;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t K = w->ne[0], M = w->ne[1], T = rwkv7_tensor_nrows(x);
    const size_t rb = rwkv7_dtype_row_bytes(w->type, K);
    RWKV7_ASSERT(rb > 0);
    if (T == 0 || M == 0) return RWKV7_OK;
    RWKV7_ASSERT(ceil_div(T, 8) <= 65535 && ceil_div(M, MM_BM) <= 65535);
    /* Batch-invariant mode keeps every column on the matvec kernel: its per-column accumulation
     * is the same code for every NCOL, so a column's bits do not depend on T (the tiles sum
     * in another order, and only when T > 8). */
    const bool tiles = !cu->row_invariant && T > MATMUL_MATVEC_MAX_T && K % 8 == 0 && cu->prop.major >= 8;
    float *d = tptr<float>(dst);
    const uint8_t *wp = tptr<uint8_t>(w);
    const float *xp = tptr<float>(x);
    switch (w->type) {
#define MATMUL_CASE(T_)                                                                       \
    case RWKV7_DTYPE_##T_:                                                                    \
        if (tiles) launch_matmul<RWKV7_DTYPE_##T_>(cu->stream, d, wp, xp, K, M, T, rb, accumulate); \
        else launch_matvec<RWKV7_DTYPE_##T_>(cu->stream, cu->prop.multiProcessorCount, d, wp, xp, K, M, T, rb, \
                                                accumulate);                                  \
        break;
        RWKV7_CUDA_WEIGHT_TYPES(MATMUL_CASE)
#undef MATMUL_CASE
    default:
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: matmul: type %s not supported", rwkv7_dtype_name(w->type));
    }
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}
