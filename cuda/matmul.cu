/* matmul.cu: dst (M, T) = W x (or dst += W x) for weights W (K, M) in any type of cuda/dequant.cuh,
 * dequantized on the fly from the native GGUF layout. Two paths: a warp-per-row matrix-vector
 * kernel for decode (T <= 8 columns per pass, fp32 activations and accumulation), and a
 * tensor-core tile kernel for prefill / batched decode (bf16 wmma with fp32 accumulation).
 * Reference: performance.md 4.2-4.4 (design), quant-formats.md 3 (formats), cpu/matmul.c. */
#include <mma.h>

#include <cuda_bf16.h>

#include "common.cuh"
#include "dequant.cuh"
#include "ops.cuh"

/* ------------------------------------------------------------------------------------------------
 * kernels */

#define MV_WARPS 4 /* rows per block of the matrix-vector kernel */

/* Matrix-vector: one warp per weight row, NCOL activation columns per pass (the dequantized
 * weights are reused across them). Lane l decodes the groups of 8 elements g = l, l + 32, ...;
 * a final warp reduction gives each column's dot product. Block = MV_WARPS warps = MV_WARPS rows;
 * grid = (ceil(M / MV_WARPS), ceil(T / NCOL)). Host guarantees K % 8 == 0 for block types; float
 * types may have a tail of K % 8 elements, done element-wise. Everything in fp32 (exact inputs).
 * Loads are wide where the layout allows: quants 8 bytes per group (dq_load8), activations as
 * two float4 (decode is bandwidth-bound, and byte loads cap the achieved bandwidth in LSU issue). */
template <int TYPE, int NCOL>
static __global__ void __launch_bounds__(32 * MV_WARPS)
matvec_kernel(float *dst, const uint8_t *w, const float *x, int64_t K, int64_t M, int64_t T, size_t row_bytes,
              bool accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t row = (int64_t)blockIdx.x * MV_WARPS + threadIdx.x / 32;
    if (row >= M) return; /* uniform per warp */
    const int64_t t0 = (int64_t)blockIdx.y * NCOL;
    const int ncol = T - t0 < NCOL ? (int)(T - t0) : NCOL;
    const uint8_t *wr = w + (size_t)row * row_bytes;
    const float *xc = x + t0 * K;
    const dq_tables tb = dq_tab();
    /* Every group's 8 activations are 16-byte aligned when x is and K % 4 == 0 (uniform). */
    const bool x16 = ((reinterpret_cast<uintptr_t>(x) & 15) == 0) && (K & 3) == 0;
    float acc[NCOL];
#pragma unroll
    for (int c = 0; c < NCOL; c++) acc[c] = 0.0f;

    const int64_t n_groups = K / 8;
    for (int64_t g = lane; g < n_groups; g += 32) {
        float wv[8];
        dq8_row<TYPE>(wr, g, wv, tb);
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
    }
    if constexpr (dq_traits<TYPE>::block == 8) {
        constexpr int es = dq_traits<TYPE>::bytes / 8;
        for (int64_t k = 8 * n_groups + lane; k < K; k += 32) {
            const float wv = dq1<TYPE>(wr + es * k);
#pragma unroll
            for (int c = 0; c < NCOL; c++)
                if (c < ncol) acc[c] += wv * __ldg(xc + c * K + k);
        }
    }
#pragma unroll
    for (int c = 0; c < NCOL; c++) {
        const float s = warp_sum(acc[c]);
        if (lane == 0 && c < ncol) {
            float *d = dst + (t0 + c) * M + row;
            *d = accumulate ? *d + s : s;
        }
    }
}

/* Tensor-core tile kernel: block tile MM_BM weight rows x MM_BN tokens, K in steps of MM_BK.
 * 4 warps in a 2 x 2 arrangement, each owning a 32 x 32 output patch = 2 x 2 wmma 16x16x16 bf16
 * fragments with fp32 accumulators. Per K step the block dequantizes the weight tile (8 elements
 * per thread-step, dq8) into shared memory as bf16 and converts the activation tile to bf16.
 * Precision: bf16 keeps 8 mantissa bits, so each weight and activation is rounded to a relative
 * 2^-9; for random data the result NMSE is ~3e-6 (test tolerance 5e-5). bf16 (not f16) because
 * relu^2 activations of the channel mix exceed the f16 range. Host guarantees K % 8 == 0 and an
 * sm_80+ device; rows >= M and tokens >= T are zero-filled and never stored. */
#define MM_BM 64
#define MM_BN 64
#define MM_BK 32
#define MM_LDS (MM_BK + 8) /* bf16 row stride of the A/B tiles: 80 bytes, 32-byte aligned 16-row steps */
#define MM_LDC (MM_BM + 4) /* float stride of the staged output tile */

union mm_smem {
    struct {
        __nv_bfloat16 a[MM_BM][MM_LDS]; /* weight tile, row-major (row m, k) */
        __nv_bfloat16 b[MM_BN][MM_LDS]; /* activation tile, token-major = col-major K x N */
    } in;
    float c[MM_BN * MM_LDC]; /* output tile, (n, m) at c[n * MM_LDC + m] */
};

template <int TYPE>
static __global__ void __launch_bounds__(128)
matmul_bf16_kernel(float *dst, const uint8_t *w, const float *x, int64_t K, int64_t M, int64_t T, size_t row_bytes,
                   bool accumulate) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    __shared__ __align__(32) mm_smem sm;
    const int tid = threadIdx.x, warp = tid / 32;
    const int wm = warp & 1, wn = warp >> 1; /* warp's 32 x 32 patch inside the 64 x 64 tile */
    const int64_t m0 = (int64_t)blockIdx.x * MM_BM, t0 = (int64_t)blockIdx.y * MM_BN;
    const int64_t n_groups = K / 8;
    const dq_tables tb = dq_tab();

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int64_t k0 = 0; k0 < K; k0 += MM_BK) {
        /* weight tile: 64 rows x 4 groups of 8 = 256 groups, 2 per thread */
#pragma unroll
        for (int it = 0; it < 2; it++) {
            const int idx = tid + 128 * it, r = idx >> 2, gk = idx & 3;
            const int64_t row = m0 + r, g = k0 / 8 + gk;
            float v[8];
            if (row < M && g < n_groups) {
                dq8_row<TYPE>(w + (size_t)row * row_bytes, g, v, tb);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] = 0.0f;
            }
            __align__(16) __nv_bfloat162 p[4];
#pragma unroll
            for (int e = 0; e < 4; e++) p[e] = __floats2bfloat162_rn(v[2 * e], v[2 * e + 1]);
            *(uint4 *)&sm.in.a[r][gk * 8] = *(const uint4 *)p;
        }
        /* activation tile: 64 tokens x 32 k, consecutive threads on consecutive k (coalesced) */
#pragma unroll
        for (int it = 0; it < (MM_BN * MM_BK) / 128; it++) {
            const int idx = tid + 128 * it, tt = idx / MM_BK, kk = idx % MM_BK;
            const int64_t t = t0 + tt, k = k0 + kk;
            const float v = t < T && k < K ? __ldg(x + t * K + k) : 0.0f;
            sm.in.b[tt][kk] = __float2bfloat16_rn(v);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < MM_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &sm.in.a[wm * 32 + i * 16][kk], MM_LDS);
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &sm.in.b[wn * 32 + j * 16][kk], MM_LDS);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
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

template <int TYPE>
static void launch_matvec(cudaStream_t s, float *d, const uint8_t *w, const float *x, int64_t K, int64_t M,
                          int64_t T, size_t rb, bool acc) {
    const dim3 block(32 * MV_WARPS);
    if (T <= 1) {
        matvec_kernel<TYPE, 1><<<dim3(ceil_div(M, MV_WARPS), 1), block, 0, s>>>(d, w, x, K, M, T, rb, acc);
    } else if (T <= 2) {
        matvec_kernel<TYPE, 2><<<dim3(ceil_div(M, MV_WARPS), 1), block, 0, s>>>(d, w, x, K, M, T, rb, acc);
    } else if (T <= 4) {
        matvec_kernel<TYPE, 4><<<dim3(ceil_div(M, MV_WARPS), 1), block, 0, s>>>(d, w, x, K, M, T, rb, acc);
    } else {
        matvec_kernel<TYPE, 8><<<dim3(ceil_div(M, MV_WARPS), ceil_div(T, 8)), block, 0, s>>>(d, w, x, K, M, T, rb, acc);
    }
}

template <int TYPE>
static void launch_matmul(cudaStream_t s, float *d, const uint8_t *w, const float *x, int64_t K, int64_t M,
                          int64_t T, size_t rb, bool acc) {
    matmul_bf16_kernel<TYPE><<<dim3(ceil_div(M, MM_BM), ceil_div(T, MM_BN)), 128, 0, s>>>(d, w, x, K, M, T, rb, acc);
}

/* Columns at or below which the matrix-vector kernel wins (weights are streamed once per 8
 * columns; above this the tile kernel's reuse across 64 tokens pays for the bf16 rounding). */
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
    RWKV7_ASSERT(ceil_div(T, 8) <= 65535 && ceil_div(M, MV_WARPS) <= 0x7fffffff);
    /* Batch-invariant mode keeps every column on the matvec kernel: its per-column accumulation
     * is the same code for every NCOL, so a column's bits do not depend on T (the bf16 tiles
     * would round activations only when T > 8). */
    const bool tiles = !cu->row_invariant && T > MATMUL_MATVEC_MAX_T && K % 8 == 0 && cu->prop.major >= 8;
    float *d = tptr<float>(dst);
    const uint8_t *wp = tptr<uint8_t>(w);
    const float *xp = tptr<float>(x);
    switch (w->type) {
#define MATMUL_CASE(T_)                                                                       \
    case RWKV7_DTYPE_##T_:                                                                    \
        if (tiles) launch_matmul<RWKV7_DTYPE_##T_>(cu->stream, d, wp, xp, K, M, T, rb, accumulate); \
        else launch_matvec<RWKV7_DTYPE_##T_>(cu->stream, d, wp, xp, K, M, T, rb, accumulate);      \
        break;
        RWKV7_CUDA_WEIGHT_TYPES(MATMUL_CASE)
#undef MATMUL_CASE
    default:
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: matmul: type %s not supported", rwkv7_dtype_name(w->type));
    }
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}
