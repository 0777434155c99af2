/* norm.cu: LayerNorm / GroupNorm over groups of G = C / n_groups contiguous elements of each row,
 * biased variance with eps inside the sqrt, then * w + b over the whole row (backend.h). Two-pass
 * mean/variance in fp32 block reductions (cpu/ops.c sums in double; difference ~1e-7 relative).
 * dst may equal x: every thread rewrites only the elements it read. */
#include "common.cuh"
#include "ops.cuh"

/* ------------------------------------------------------------------------------------------------
 * kernels */

/* One block per (row, group); thread i handles elements i, i + blockDim.x, ... of the group. The
 * host picks blockDim.x as a multiple of 32 in [32, 256]. */
static __global__ void norm_f32_kernel(float *dst, const float *x, const float *w, const float *b, int64_t C,
                                       int G, int n_groups, float eps) {
    __shared__ float scratch[32];
    const int64_t row = blockIdx.x / n_groups;
    const int g = blockIdx.x % n_groups;
    const int64_t o = row * C + (int64_t)g * G;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < G; i += blockDim.x) sum += x[o + i];
    const float mean = block_sum(sum, scratch) / (float)G;
    float var = 0.0f;
    for (int i = threadIdx.x; i < G; i += blockDim.x) {
        const float c = x[o + i] - mean;
        var += c * c;
    }
    const float scale = 1.0f / sqrtf(block_sum(var, scratch) / (float)G + eps);
    for (int i = threadIdx.x; i < G; i += blockDim.x) {
        const int c = g * G + i;
        dst[o + i] = (x[o + i] - mean) * scale * w[c] + b[c];
    }
}

/* ------------------------------------------------------------------------------------------------
 * launchers */

RWKV7_OP_SIG(rwkv7_cuda_norm, norm) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *w = args->w, *b = args->b;
    int n_groups = args->n_groups;
    float eps = args->eps;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t C = x->ne[0], rows = rwkv7_tensor_nrows(x);
    const int G = (int)(C / n_groups);
    int threads = ((G + 31) / 32) * 32;
    if (threads > 256) threads = 256;
    const int64_t n_blocks = rows * n_groups;
    RWKV7_ASSERT(n_blocks <= 0x7fffffff);
    norm_f32_kernel<<<(unsigned)n_blocks, threads, 0, cu->stream>>>(tptr<float>(dst), tptr<float>(x), tptr<float>(w),
                                                                     tptr<float>(b), C, G, n_groups, eps);
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}
