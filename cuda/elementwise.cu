/* elementwise.cu: the small fp32 ops of the forward pass: token_shift (lerp with the previous row
 * and state update), unary (+bias), binary (row broadcast), mix, key_prep, wkv_out and last_rows.
 * Invariants: tensors are contiguous fp32 (C, T) as backend.h defines them; the rwkv7_op_* wrappers
 * checked every shape. Math follows cpu/ops.c expression by expression (fp32 with fp32/warp sums
 * where the CPU sums in double: NMSE ~1e-12, well inside the 1e-7 test tolerance). */
#include "common.cuh"
#include "ops.cuh"

/* ------------------------------------------------------------------------------------------------
 * kernels */

/* One thread per (row, channel): dst[m][row][c] = x + (prev - x) * mix[m][c], prev = the previous
 * row of the same sequence or the state row of its slot. The state is rewritten afterwards by
 * token_shift_state_f32_kernel (stream order), so every thread reads the old state. */
static __global__ void token_shift_f32_kernel(float *dst, const float *x, const float *mix, const float *state,
                                       const int32_t *slots, int64_t C, int64_t rows, int n_tok, int n_mix,
                                       int64_t n_slots) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * C) return;
    const int64_t row = i / C, c = i % C;
    const int t = (int)(row % n_tok);
    const float cur = x[i];
    float prev;
    if (t > 0) {
        prev = x[i - C];
    } else {
        const int32_t slot = slots[row / n_tok];
        prev = slot >= 0 && slot < n_slots ? state[(int64_t)slot * C + c] : 0.0f;
    }
    const float d = prev - cur;
    for (int m = 0; m < n_mix; m++) dst[((int64_t)m * rows + row) * C + c] = cur + d * mix[(int64_t)m * C + c];
}

/* One thread per (sequence, channel): state[slots[s]][c] = x[last row of s][c]. */
static __global__ void token_shift_state_f32_kernel(float *state, const float *x, const int32_t *slots, int64_t C,
                                             int64_t n_seq, int n_tok, int64_t n_slots) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_seq * C) return;
    const int64_t s = i / C, c = i % C;
    const int32_t slot = slots[s];
    if (slot < 0 || slot >= n_slots) return;
    state[(int64_t)slot * C + c] = x[(s * n_tok + n_tok - 1) * C + c];
}

__device__ __forceinline__ float sigmoid_f32(float z) { return 1.0f / (1.0f + expf(-z)); }

/* One thread per element; bias (C) broadcast over rows or NULL. dst may equal x. */
static __global__ void unary_f32_kernel(float *dst, const float *x, const float *bias, int64_t C, int64_t n, int fn) {
    rwkv7_pdl_wait(); /* launched with rwkv7_cuda_launch */
    rwkv7_pdl_trigger();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float z = x[i] + (bias ? bias[i % C] : 0.0f);
    switch (fn) {
    case RWKV7_UNARY_SIGMOID: z = sigmoid_f32(z); break;
    case RWKV7_UNARY_TANH: z = tanhf(z); break;
    case RWKV7_UNARY_RELU_SQR: z = z > 0.0f ? z * z : 0.0f; break;
    default: z = expf(-RWKV7_DECAY_SCALE * sigmoid_f32(z)); break;
    }
    dst[i] = z;
}

/* One thread per element; b is either a's shape (b_n == n) or one row (b_n == C). */
static __global__ void binary_f32_kernel(float *dst, const float *a, const float *b, int64_t C, int64_t n, int64_t b_n,
                                  int fn) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float bv = b[b_n == n ? i : i % C];
    dst[i] = fn == RWKV7_BINARY_ADD ? a[i] + bv : a[i] * bv;
}

static __global__ void mix_f32_kernel(float *dst, const float *a, const float *b, const float *t, int64_t n) {
    rwkv7_pdl_wait(); /* launched with rwkv7_cuda_launch */
    rwkv7_pdl_trigger();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    dst[i] = a[i] + (b[i] - a[i]) * t[i];
}

/* One warp per (row, head); lane j handles channels j, j + 32, ... of the head (any N). */
static __global__ void key_prep_f32_kernel(float *kk, float *kmod, const float *k, const float *a, const float *k_k,
                                    const float *k_a, int64_t C, int N, int64_t n_items) {
    const int64_t item = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x & 31;
    if (item >= n_items) return; /* whole warps exit together: item is uniform per warp */
    const int64_t H = C / N, row = item / H, h = item % H;
    const int64_t o = row * C + h * N;
    float ss = 0.0f;
    for (int n = lane; n < N; n += 32) {
        const float v = k[o + n] * k_k[h * N + n];
        ss += v * v;
    }
    ss = warp_sum(ss);
    const float norm = sqrtf(ss);
    const float inv = 1.0f / (norm > RWKV7_L2NORM_EPS ? norm : RWKV7_L2NORM_EPS);
    for (int n = lane; n < N; n += 32) {
        const int64_t c = h * N + n;
        const float kv = k[o + n];
        kk[o + n] = kv * k_k[c] * inv;
        kmod[o + n] = kv * (1.0f + (a[o + n] - 1.0f) * k_a[c]);
    }
}

/* One warp per (row, head): GroupNorm of y over the head (two-pass variance), plus the bonus
 * (sum_j r_j k_j r_k[j]) * v, times the gate. */
static __global__ void wkv_out_f32_kernel(float *dst, const float *y, const float *r, const float *k, const float *v,
                                   const float *g, const float *r_k, const float *ln_w, const float *ln_b,
                                   int64_t C, int N, float eps, int64_t n_items) {
    const int64_t item = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x & 31;
    if (item >= n_items) return;
    const int64_t H = C / N, row = item / H, h = item % H;
    const int64_t o = row * C + h * N;
    float sum = 0.0f, bonus = 0.0f;
    for (int n = lane; n < N; n += 32) {
        sum += y[o + n];
        bonus += r[o + n] * k[o + n] * r_k[h * N + n];
    }
    sum = warp_sum(sum);
    bonus = warp_sum(bonus);
    const float mean = sum / (float)N;
    float var = 0.0f;
    for (int n = lane; n < N; n += 32) {
        const float c = y[o + n] - mean;
        var += c * c;
    }
    var = warp_sum(var);
    const float scale = 1.0f / sqrtf(var / (float)N + eps);
    for (int n = lane; n < N; n += 32) {
        const int64_t c = h * N + n;
        const float val = (y[o + n] - mean) * scale * ln_w[c] + ln_b[c] + bonus * v[o + n];
        dst[o + n] = val * g[o + n];
    }
}

/* ------------------------------------------------------------------------------------------------
 * launchers */

static const int k_block = 256;

RWKV7_OP_SIG(rwkv7_cuda_token_shift, token_shift) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *mix = args->mix,
                              *state = args->state, *slots = args->slots;
    int n_tok = args->n_tok;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t C = x->ne[0], rows = rwkv7_tensor_nrows(x), n_seq = slots->ne[0];
    const int n_mix = (int)rwkv7_tensor_nrows(mix);
    const int64_t n_slots = rwkv7_tensor_nrows(state);
    token_shift_f32_kernel<<<ceil_div(rows * C, k_block), k_block, 0, cu->stream>>>(
        tptr<float>(dst), tptr<float>(x), tptr<float>(mix), tptr<float>(state), tptr<int32_t>(slots), C, rows,
        n_tok, n_mix, n_slots);
    CUDA_LAUNCHED(cu);
    token_shift_state_f32_kernel<<<ceil_div(n_seq * C, k_block), k_block, 0, cu->stream>>>(
        tptr<float>(state), tptr<float>(x), tptr<int32_t>(slots), C, n_seq, n_tok, n_slots);
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_cuda_unary, unary) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *bias = args->bias;
    enum rwkv7_unary fn = args->fn;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t n = rwkv7_tensor_nelem(x);
    CUDA_CHECK(rwkv7_cuda_launch(cu, unary_f32_kernel, dim3(ceil_div(n, k_block)), dim3(k_block), 0, tptr<float>(dst),
                                 tptr<float>(x), bias ? tptr<float>(bias) : (float *)NULL, x->ne[0], n, (int)fn));
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_cuda_binary, binary) {
    const struct rwkv7_tensor *dst = args->dst, *a = args->a, *b = args->b;
    enum rwkv7_binary fn = args->fn;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t n = rwkv7_tensor_nelem(a);
    binary_f32_kernel<<<ceil_div(n, k_block), k_block, 0, cu->stream>>>(
        tptr<float>(dst), tptr<float>(a), tptr<float>(b), a->ne[0], n, rwkv7_tensor_nelem(b), (int)fn);
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_cuda_mix, mix) {
    const struct rwkv7_tensor *dst = args->dst, *a = args->a, *b = args->b, *t = args->t;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t n = rwkv7_tensor_nelem(a);
    CUDA_CHECK(rwkv7_cuda_launch(cu, mix_f32_kernel, dim3(ceil_div(n, k_block)), dim3(k_block), 0, tptr<float>(dst),
                                 tptr<float>(a), tptr<float>(b), tptr<float>(t), n));
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_cuda_key_prep, key_prep) {
    const struct rwkv7_tensor *kk = args->kk, *kmod = args->kmod, *k = args->k, *a = args->a,
                              *k_k = args->k_k, *k_a = args->k_a;
    int head_size = args->head_size;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t C = k->ne[0], n_items = rwkv7_tensor_nrows(k) * (C / head_size);
    const int warps = 4;
    key_prep_f32_kernel<<<ceil_div(n_items, warps), 32 * warps, 0, cu->stream>>>(
        tptr<float>(kk), tptr<float>(kmod), tptr<float>(k), tptr<float>(a), tptr<float>(k_k), tptr<float>(k_a), C,
        head_size, n_items);
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_cuda_wkv_out, wkv_out) {
    const struct rwkv7_tensor *dst = args->dst, *y = args->y, *r = args->r, *k = args->k,
                              *v = args->v, *g = args->g, *r_k = args->r_k, *ln_w = args->ln_w,
                              *ln_b = args->ln_b;
    int head_size = args->head_size;
    float eps = args->eps;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t C = y->ne[0], n_items = rwkv7_tensor_nrows(y) * (C / head_size);
    const int warps = 4;
    wkv_out_f32_kernel<<<ceil_div(n_items, warps), 32 * warps, 0, cu->stream>>>(
        tptr<float>(dst), tptr<float>(y), tptr<float>(r), tptr<float>(k), tptr<float>(v), tptr<float>(g),
        tptr<float>(r_k), tptr<float>(ln_w), tptr<float>(ln_b), C, head_size, eps, n_items);
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}

/* A strided 2-D copy (one row every n_tok rows): no kernel needed, and graph capture records it. */
RWKV7_OP_SIG(rwkv7_cuda_last_rows, last_rows) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x;
    int n_tok = args->n_tok;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const size_t row_bytes = (size_t)x->ne[0] * sizeof(float);
    const int64_t n_seq = rwkv7_tensor_nrows(x) / n_tok;
    const char *src = (const char *)tptr<float>(x) + (size_t)(n_tok - 1) * row_bytes;
    CUDA_CHECK(cudaMemcpy2DAsync(tptr<float>(dst), row_bytes, src, row_bytes * (size_t)n_tok, row_bytes,
                                 (size_t)n_seq, cudaMemcpyDeviceToDevice, cu->stream));
    return RWKV7_OK;
}
