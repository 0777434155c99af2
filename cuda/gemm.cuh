/* gemm.cuh: what cuda/matmul.cu (decode matvec, op entries) and cuda/gemm.cu (prefill tiles) share:
 * the epilogues a product applies to its sums and the prefill entry. */
#ifndef RWKV7_CUDA_GEMM_CUH
#define RWKV7_CUDA_GEMM_CUH

#include "common.cuh"

/* What a product does with its sums: store, add to dst (accumulate), or store max(s, 0)^2 (the
 * channel-mix key, fused: ffn_key). */
enum { MM_EPI_STORE = 0, MM_EPI_ACCUM = 1, MM_EPI_RELU_SQR = 2 };

__device__ __forceinline__ void mm_epilogue(float *d, float s, int epi) {
    if (epi == MM_EPI_ACCUM)
        s += *d;
    else if (epi == MM_EPI_RELU_SQR)
        s = s > 0.0f ? s * s : 0.0f;
    *d = s;
}

/* One product dst (T, M) = W x for the tile path: W (K, M) of type `type` in its GGUF layout. */
struct gemm_prod {
    float *dst;
    const uint8_t *w;
    const float *x;
    int64_t K, M, T;
    size_t row_bytes;
    int epi, type;
};

/* Runs p on the tiles: bf16x3 tensor cores on sm_80+, fp32 SIMT on sm_75 or with
 * RWKV7_CUDA_SIMT_TILES=1. Host guarantees K % 8 == 0. */
enum rwkv7_status rwkv7_cuda_gemm(struct rwkv7_cuda *cu, const struct gemm_prod *p);
/* Copies the IQ tables into gemm.cu's __device__ arrays (init); frees its scratch (backend free). */
cudaError_t rwkv7_cuda_gemm_init(void);
void rwkv7_cuda_gemm_free(struct rwkv7_cuda *cu);

#endif
