/* matmul.cu: dst (M, T) = W x (or dst += W x) for weights W (K, M) in any type of cuda/dequant.cuh,
 * dequantized on the fly from the native GGUF layout. Two paths: a matrix-vector kernel (1 or 4
 * warps per row) for decode (T <= 8 columns per pass, fp32 activations and accumulation; several
 * products in one launch for matmul_n); above 8 columns (prefill, batched decode) the products go
 * to the tiles of cuda/gemm.cu. Also the fused matmul_n and ffn_key.
 * Reference: performance.md 4.2-4.4 (design), quant-formats.md 3 (formats), cpu/matmul.c. */
#include <string.h>

#include "common.cuh"
#include "dequant.cuh"
#include "gemm.cuh"
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
     * registers (8 bytes), the float types and TQ1_0 at 8 columns under 128 (4-56 bytes), F32 at
     * 8 columns under 170 (sm_90: 168 registers and 4 bytes spilled; F32 weight matrices are rare,
     * so 2 blocks per SM cost little) */
    if (NCOL == 1 && TYPE == RWKV7_DTYPE_Q6_K && WPR == 4) return 3;
    if (NCOL == 8 && TYPE == RWKV7_DTYPE_F32) return 2;
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
 * depend on T (the tiles sum in another order, and only when T > 8). */
static bool mm_tiles(const struct rwkv7_cuda *cu, const struct mm_prod *p) {
    return !cu->row_invariant && p->T > MATMUL_MATVEC_MAX_T && p->job.K % 8 == 0;
}

/* Runs n products: tile products one launch each; matrix-vector products in as few launches as
 * their types and column counts allow (one for a layer's r/k/v or LoRA downs, which share both). */
static enum rwkv7_status mm_run(struct rwkv7_cuda *cu, struct mm_prod *p, int n) {
    bool done[RWKV7_MATMUL_N_MAX] = {false};
    for (int i = 0; i < n; i++) {
        RWKV7_ASSERT(p[i].job.row_bytes > 0);
        RWKV7_ASSERT(ceil_div(p[i].T, 8) <= 65535);
        if (p[i].T == 0 || p[i].job.M == 0) done[i] = true;
    }
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        if (mm_tiles(cu, &p[i])) {
            const struct gemm_prod g = {p[i].job.dst, p[i].job.w, p[i].job.x, p[i].job.K, p[i].job.M,
                                        p[i].T,       p[i].job.row_bytes, p[i].job.epi, p[i].type};
            done[i] = true;
            const enum rwkv7_status st = rwkv7_cuda_gemm(cu, &g);
            if (st != RWKV7_OK) return st;
            continue;
        }
        mv_jobs jobs;
        memset(&jobs, 0, sizeof jobs);
        jobs.T = p[i].T;
        jobs.j[jobs.n++] = p[i].job;
        done[i] = true;
        for (int k = i + 1; k < n; k++) { /* later products the same launch can take */
            if (done[k] || p[k].type != p[i].type || p[k].T != p[i].T || mm_tiles(cu, &p[k])) continue;
            jobs.j[jobs.n++] = p[k].job;
            done[k] = true;
        }
        cudaError_t e = cudaSuccess;
        switch (p[i].type) {
#define MATMUL_CASE(T_)                                                                                \
    case RWKV7_DTYPE_##T_:                                                                             \
        e = launch_matvec<RWKV7_DTYPE_##T_>(cu, jobs);                                                 \
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
