/* embed.cu: dst (C, T) = rows tokens[t] of the embedding table (C, V), dequantized from any type of
 * cuda/dequant.cuh. Token ids are read on the device (they may come from a graph replay), so an id
 * outside [0, V) cannot be rejected by the host: that row is written as zeros. Reference: cpu/ops.c
 * embed, quant-formats.md section 3. */
#include "common.cuh"
#include "dequant.cuh"
#include "ops.cuh"

/* ------------------------------------------------------------------------------------------------
 * kernels */

/* One block per token; thread i decodes groups of 8 elements g = i, i + blockDim.x, ... of the row
 * (C % 8 == 0 for block types; float types with a C tail finish it element by element). */
template <int TYPE>
static __global__ void embed_kernel(float *dst, const uint8_t *table, const int32_t *tokens, int64_t C,
                                    int64_t V, size_t row_bytes) {
    const int64_t t = blockIdx.x;
    const int32_t id = tokens[t];
    float *out = dst + t * C;
    const int64_t n_groups = C / 8;
    if (id < 0 || id >= V) {
        for (int64_t i = threadIdx.x; i < C; i += blockDim.x) out[i] = 0.0f;
        return;
    }
    const uint8_t *row = table + (size_t)id * row_bytes;
    const dq_tables tb = dq_tab();
    for (int64_t g = threadIdx.x; g < n_groups; g += blockDim.x) {
        float y[8];
        dq8_row<TYPE>(row, g, y, tb);
#pragma unroll
        for (int e = 0; e < 8; e++) out[8 * g + e] = y[e];
    }
    if constexpr (dq_traits<TYPE>::block == 8) {
        constexpr int es = dq_traits<TYPE>::bytes / 8;
        for (int64_t i = 8 * n_groups + threadIdx.x; i < C; i += blockDim.x) out[i] = dq1<TYPE>(row + es * i);
    }
}

/* ------------------------------------------------------------------------------------------------
 * launchers */

cudaError_t rwkv7_cuda_embed_init(void) { return dq_upload_tables(); }

RWKV7_OP_SIG(rwkv7_cuda_embed, embed) {
    const struct rwkv7_tensor *dst = args->dst, *table = args->table, *tokens = args->tokens;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t C = table->ne[0], V = rwkv7_tensor_nrows(table), T = tokens->ne[0];
    const size_t row_bytes = rwkv7_dtype_row_bytes(table->type, C);
    RWKV7_ASSERT(row_bytes > 0 && T <= 0x7fffffff);
    if (T == 0) return RWKV7_OK;
    const int threads = 128;
    float *d = tptr<float>(dst);
    const uint8_t *w = tptr<uint8_t>(table);
    const int32_t *ids = tptr<int32_t>(tokens);
    switch (table->type) {
#define EMBED_CASE(T_)                                                                                    \
    case RWKV7_DTYPE_##T_:                                                                                \
        embed_kernel<RWKV7_DTYPE_##T_><<<(unsigned)T, threads, 0, cu->stream>>>(d, w, ids, C, V, row_bytes); \
        break;
        RWKV7_CUDA_WEIGHT_TYPES(EMBED_CASE)
#undef EMBED_CASE
    default:
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: embed: type %s not supported", rwkv7_dtype_name(table->type));
    }
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}
