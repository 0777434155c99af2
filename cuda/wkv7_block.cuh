/* wkv7_block.cuh: the per-lane / per-thread arithmetic of the fused time-mix core (backend.h
 * wkv_block = key_prep + wkv7 + wkv_out; cuda/wkv7.cu wkv_block_kernel), as __host__ __device__
 * code so tests/test_cuda_wkv7.cu can run the very same functions on the host, driving the lanes
 * and threads between the kernel's barriers and warp reductions as the kernel does.
 *
 * One block per (sequence, head) holds the whole head: thread tid = P i + p owns part p (elements
 * p*32 .. p*32+31) of state row i, P = N / 32, so the block has N P = N^2 / 32 threads (32, 128,
 * 512 for N = 32, 64, 128). Tokens go in chunks of TC = 1024 / N; per chunk, three steps separated
 * by __syncthreads:
 *   A  key_prep, one warp per token: lane partials of |k * k_k|^2 (wkvb_a1), a warp sum, then
 *      kk = k k_k / max(|k k_k|, 1e-12) and kmod = k (1 + (a - 1) k_a) written with r, w, a into
 *      the serial kernel's padded shared layout (part p of a token at p * WKV7_PAD) and v (wkvb_a2);
 *   B  the recurrence, every thread its row part (wkv7_serial.cuh), sa and y summed over the row's
 *      P threads by butterfly shuffles; part 0 writes y_i to shared memory;
 *   C  wkv_out, one warp per token: lane partials of sum y and of the bonus sum r kmod r_k
 *      (wkvb_c1), warp sums, lane partials of the variance (wkvb_c2), a warp sum, then
 *      dst = ((y - mean) / sqrt(var + eps) ln_w + ln_b + bonus v) g (wkvb_c3).
 * The expressions are those of the unfused kernels (elementwise.cu key_prep / wkv_out, wkv7.cu
 * serial), so the fused op differs from the composition only in summation order. kk, kmod and y
 * never leave shared memory (backend.h: the scratch tensors' contents are undefined after the op). */
#ifndef RWKV7_CUDA_WKV7_BLOCK_CUH
#define RWKV7_CUDA_WKV7_BLOCK_CUH

#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "wkv7_serial.cuh"

#define WKVB_L2NORM_EPS 1e-12f /* backend.h RWKV7_L2NORM_EPS */

/* Shared memory of one block (about 31 KiB for every N). in[q]: r, w, kmod, kk, a. */
template <int N>
struct wkvb_smem {
    static constexpr int P = N / WKV7_PART, TC = 1024 / N, ROW = P * WKV7_PAD;
    float in[5][TC][ROW];
    float v[TC][N];
    float y[TC][N];
};

/* The op's tensors; activations (C, T) with token row stride C, head parameters (C). */
struct wkvb_io {
    const float *r, *w, *k, *v, *a, *g;
    float *dst;
    const float *k_k, *k_a, *r_k, *ln_w, *ln_b;
    int64_t C;
    float eps;
};

/* Offset of element j in a token's padded row. */
__host__ __device__ __forceinline__ int wkvb_pad(int j) { return (j / WKV7_PART) * WKV7_PAD + j % WKV7_PART; }

/* A: lane's partial of |k * k_k|^2 over the head; o: the token's offset of this head, hN = h N. */
template <int N>
__host__ __device__ __forceinline__ float wkvb_a1(const wkvb_io &io, int64_t o, int64_t hN, int lane) {
    float ss = 0.0f;
    for (int n = lane; n < N; n += 32) {
        const float v = io.k[o + n] * io.k_k[hN + n];
        ss += v * v;
    }
    return ss;
}

/* A: with ss the head's sum, the lane's elements of token tt into shared memory. */
template <int N>
__host__ __device__ __forceinline__ void wkvb_a2(wkvb_smem<N> &sm, const wkvb_io &io, int64_t o, int64_t hN, int tt,
                                                 int lane, float ss) {
    const float norm = sqrtf(ss);
    const float inv = 1.0f / (norm > WKVB_L2NORM_EPS ? norm : WKVB_L2NORM_EPS);
    for (int n = lane; n < N; n += 32) {
        const int64_t c = hN + n;
        const int x = wkvb_pad(n);
        const float kv = io.k[o + n], av = io.a[o + n];
        sm.in[0][tt][x] = io.r[o + n];
        sm.in[1][tt][x] = io.w[o + n];
        sm.in[2][tt][x] = kv * (1.0f + (av - 1.0f) * io.k_a[c]);
        sm.in[3][tt][x] = kv * io.k_k[c] * inv;
        sm.in[4][tt][x] = av;
        sm.v[tt][n] = io.v[o + n];
    }
}

/* B: part p's share of sa for token tt (S: the part's 32 state elements). */
template <int N>
__host__ __device__ __forceinline__ float wkvb_b_sa(const wkvb_smem<N> &sm, const float *S, int tt, int p) {
    return wkv7s_sa_part(S, reinterpret_cast<const float4 *>(&sm.in[3][tt][p * WKV7_PAD]));
}

/* B: with sa summed over the row, the part's update and its share of y_i. */
template <int N>
__host__ __device__ __forceinline__ float wkvb_b_update(const wkvb_smem<N> &sm, float *S, int tt, int p, int i,
                                                        float sa) {
    return wkv7s_update_part(S, reinterpret_cast<const float4 *>(&sm.in[0][tt][p * WKV7_PAD]),
                             reinterpret_cast<const float4 *>(&sm.in[1][tt][p * WKV7_PAD]),
                             reinterpret_cast<const float4 *>(&sm.in[2][tt][p * WKV7_PAD]),
                             reinterpret_cast<const float4 *>(&sm.in[3][tt][p * WKV7_PAD]),
                             reinterpret_cast<const float4 *>(&sm.in[4][tt][p * WKV7_PAD]), sm.v[tt][i], sa);
}

/* C: lane's partials of sum y (x) and of the bonus sum r kmod r_k (y). */
template <int N>
__host__ __device__ __forceinline__ float2 wkvb_c1(const wkvb_smem<N> &sm, const wkvb_io &io, int64_t hN, int tt,
                                                   int lane) {
    float sum = 0.0f, bonus = 0.0f;
    for (int n = lane; n < N; n += 32) {
        const int x = wkvb_pad(n);
        sum += sm.y[tt][n];
        bonus += sm.in[0][tt][x] * sm.in[2][tt][x] * io.r_k[hN + n];
    }
    return make_float2(sum, bonus);
}

/* C: lane's partial of the sum of squared deviations. */
template <int N>
__host__ __device__ __forceinline__ float wkvb_c2(const wkvb_smem<N> &sm, int tt, int lane, float mean) {
    float var = 0.0f;
    for (int n = lane; n < N; n += 32) {
        const float c = sm.y[tt][n] - mean;
        var += c * c;
    }
    return var;
}

/* C: the lane's outputs of token tt (var: the head's sum of squared deviations). */
template <int N>
__host__ __device__ __forceinline__ void wkvb_c3(const wkvb_smem<N> &sm, const wkvb_io &io, int64_t o, int64_t hN,
                                                 int tt, int lane, float mean, float var, float bonus) {
    const float scale = 1.0f / sqrtf(var / (float)N + io.eps);
    for (int n = lane; n < N; n += 32) {
        const int64_t c = hN + n;
        const float val = (sm.y[tt][n] - mean) * scale * io.ln_w[c] + io.ln_b[c] + bonus * sm.v[tt][n];
        io.dst[o + n] = val * io.g[o + n];
    }
}

#endif
