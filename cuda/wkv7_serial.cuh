/* wkv7_serial.cuh: the per-thread arithmetic of the serial WKV-7 kernel (cuda/wkv7.cu
 * wkv7_f32_kernel), as __host__ __device__ code so tests/test_cuda_wkv7.cu can replay it on the
 * host. A state row of N elements is split over N / WKV7_PART threads; thread p holds elements
 * p*WKV7_PART .. of its row. Per token: each part computes its share of sa = sum_j -kk_j S_j
 * (wkv7s_sa_part), the parts are summed across the row's threads (butterfly shuffles on the
 * device: every lane gets the same value, fp addition being commutative), then each part
 * updates its elements S_j = S_j w_j + v_i k_j + sa kk_j a_j and returns its share of
 * y_i = sum_j S_j r_j (wkv7s_update_part), summed the same way. Token inputs come from shared
 * memory as float4, each part's WKV7_PART floats starting at p * WKV7_PAD (padding: the parts of a
 * warp fall in different banks). Four accumulators per part: dependent chains of 8 adds. */
#ifndef RWKV7_CUDA_WKV7_SERIAL_CUH
#define RWKV7_CUDA_WKV7_SERIAL_CUH

#include <cuda_runtime.h>

#define WKV7_PART 32 /* state elements per thread */
#define WKV7_PAD 36  /* shared-memory floats per part */

__host__ __device__ __forceinline__ float wkv7s_sa_part(const float *S, const float4 *kk) {
    float s4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int j4 = 0; j4 < WKV7_PART / 4; j4++) {
        const float4 e = kk[j4];
        s4[0] -= e.x * S[4 * j4], s4[1] -= e.y * S[4 * j4 + 1];
        s4[2] -= e.z * S[4 * j4 + 2], s4[3] -= e.w * S[4 * j4 + 3];
    }
    return (s4[0] + s4[1]) + (s4[2] + s4[3]);
}

__host__ __device__ __forceinline__ float wkv7s_update_part(float *S, const float4 *r, const float4 *w,
                                                             const float4 *k, const float4 *kk, const float4 *a,
                                                             float vi, float sa) {
    float y4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int j4 = 0; j4 < WKV7_PART / 4; j4++) {
        const float4 wv = w[j4], kv = k[j4], e = kk[j4], av = a[j4], rv = r[j4];
        const float wq[4] = {wv.x, wv.y, wv.z, wv.w}, kq[4] = {kv.x, kv.y, kv.z, kv.w};
        const float eq[4] = {e.x, e.y, e.z, e.w}, aq[4] = {av.x, av.y, av.z, av.w};
        const float rq[4] = {rv.x, rv.y, rv.z, rv.w};
#pragma unroll
        for (int c = 0; c < 4; c++) {
            const float x = S[4 * j4 + c] * wq[c] + vi * kq[c] + sa * (eq[c] * aq[c]);
            S[4 * j4 + c] = x;
            y4[c] += x * rq[c];
        }
    }
    return (y4[0] + y4[1]) + (y4[2] + y4[3]);
}

#endif
