/* norm.cu: LayerNorm / GroupNorm over groups of G = C / n_groups contiguous elements of each row,
 * biased variance with eps inside the sqrt, then * w + b over the whole row (backend.h). Two-pass
 * mean/variance in fp32 block reductions (cpu/ops.c sums in double; difference ~1e-7 relative).
 * dst may equal x: every thread rewrites only the elements it read. Also the fused norm_shift
 * (LayerNorm + token shift + lerps + shift-state update in one kernel). */
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

/* Mean and 1 / sqrt(var + eps) of the C floats at x (two passes), for the whole block. */
__device__ __forceinline__ float2 row_stats(const float *x, int64_t C, float eps, float *scratch) {
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) sum += x[i];
    const float mean = block_sum(sum, scratch) / (float)C;
    float var = 0.0f;
    for (int64_t i = threadIdx.x; i < C; i += blockDim.x) {
        const float c = x[i] - mean;
        var += c * c;
    }
    return make_float2(mean, 1.0f / sqrtf(block_sum(var, scratch) / (float)C + eps));
}

/* Fused norm_shift: one block per row (sequence s, token t). The row's LayerNorm goes to xn; prev
 * is the LayerNorm of row t - 1, recomputed here from x (no other block's output is read, so one
 * kernel needs no grid-wide ordering), or for t = 0 the shift state of the sequence's slot; then
 * dst[m] = xn + (prev - xn) mix[m]. The t = 0 block, the only reader of the state row, also writes
 * it afterwards: the LayerNorm of the sequence's last row (its own row at decode). Norm arithmetic
 * as norm_f32_kernel, lerp as token_shift_f32_kernel. Host: xn does not overlap x when n_tok > 1. */
static __global__ void norm_shift_kernel(float *dst, float *xn, const float *x, const float *w, const float *b,
                                         const float *mix, float *state, const int32_t *slots, int64_t C,
                                         int64_t rows, int n_tok, int n_mix, int64_t n_slots, float eps) {
    __shared__ float scratch[32];
    rwkv7_pdl_wait();
    rwkv7_pdl_trigger();
    const int64_t row = blockIdx.x, s = row / n_tok;
    const int t = (int)(row % n_tok);
    const int32_t slot = slots[s];
    const bool slot_ok = slot >= 0 && slot < n_slots;
    const float *xr = x + row * C;
    const float2 cur_st = row_stats(xr, C, eps, scratch);
    float2 prev_st = make_float2(0.0f, 0.0f);
    if (t > 0) prev_st = row_stats(xr - C, C, eps, scratch); /* uniform per block */
    float *srow = state + (int64_t)(slot_ok ? slot : 0) * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float cur = (xr[c] - cur_st.x) * cur_st.y * w[c] + b[c];
        float prev;
        if (t > 0) prev = (xr[c - C] - prev_st.x) * prev_st.y * w[c] + b[c];
        else prev = slot_ok ? srow[c] : 0.0f;
        xn[row * C + c] = cur;
        const float d = prev - cur;
        for (int m = 0; m < n_mix; m++) dst[((int64_t)m * rows + row) * C + c] = cur + d * mix[(int64_t)m * C + c];
        if (t == 0 && n_tok == 1 && slot_ok) srow[c] = cur; /* read above by this thread only */
    }
    if (t == 0 && n_tok > 1 && slot_ok) {
        const float *xl = xr + (int64_t)(n_tok - 1) * C;
        const float2 st = row_stats(xl, C, eps, scratch); /* its barriers: every read of srow is done */
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) srow[c] = (xl[c] - st.x) * st.y * w[c] + b[c];
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

/* Fused: LayerNorm + token shift in one kernel. An xn that overlaps x with several tokens per
 * sequence would be overwritten while other blocks recompute their previous row from x: that
 * (unused by forward.c) case runs the two ops. */
RWKV7_OP_SIG(rwkv7_cuda_norm_shift, norm_shift) {
    const struct rwkv7_norm_shift_args *a = args;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t C = a->x->ne[0], rows = rwkv7_tensor_nrows(a->x);
    const bool overlap = a->xn->buf == a->x->buf && a->xn->offs < a->x->offs + a->x->nbytes &&
                         a->x->offs < a->xn->offs + a->xn->nbytes;
    if (overlap && a->n_tok > 1) return rwkv7_op_compose(be, RWKV7_OP_NORM_SHIFT, a);
    RWKV7_ASSERT(rows <= 0x7fffffff);
    if (rows == 0) return RWKV7_OK;
    int threads = (int)((C + 31) / 32) * 32;
    if (threads > 512) threads = 512;
    CUDA_CHECK(rwkv7_cuda_launch(cu, norm_shift_kernel, dim3((unsigned)rows), dim3(threads), 0, tptr<float>(a->dst),
                                 tptr<float>(a->xn), tptr<float>(a->x), tptr<float>(a->w), tptr<float>(a->b),
                                 tptr<float>(a->mix), tptr<float>(a->state), tptr<int32_t>(a->slots), C, rows,
                                 a->n_tok, (int)rwkv7_tensor_nrows(a->mix), rwkv7_tensor_nrows(a->state), a->eps));
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}
