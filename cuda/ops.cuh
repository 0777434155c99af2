/* ops.cuh: the compute-op launchers of the CUDA backend (the vtable entries; semantics in
 * backend.h) and the per-file init hooks. C++ linkage: only backend.cu takes their addresses. */
#ifndef RWKV7_CUDA_OPS_CUH
#define RWKV7_CUDA_OPS_CUH

#include "common.cuh"

/* embed.cu / matmul.cu: copy the IQ tables into that file's __device__ arrays (once, at init). */
cudaError_t rwkv7_cuda_embed_init(void);
cudaError_t rwkv7_cuda_matmul_init(void);
/* Weight types matmul and embed decode (cuda/dequant.cuh). */
bool rwkv7_cuda_weight_type_ok(int type);

enum rwkv7_status rwkv7_cuda_embed(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *table, const struct rwkv7_tensor *tokens);
enum rwkv7_status rwkv7_cuda_norm(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                  const struct rwkv7_tensor *x, const struct rwkv7_tensor *w,
                                  const struct rwkv7_tensor *b, int n_groups, float eps);
enum rwkv7_status rwkv7_cuda_matmul(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                    const struct rwkv7_tensor *w, const struct rwkv7_tensor *x,
                                    bool accumulate);
enum rwkv7_status rwkv7_cuda_token_shift(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                         const struct rwkv7_tensor *x, const struct rwkv7_tensor *mix,
                                         const struct rwkv7_tensor *state,
                                         const struct rwkv7_tensor *slots, int n_tok);
enum rwkv7_status rwkv7_cuda_unary(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *x, const struct rwkv7_tensor *bias,
                                   enum rwkv7_unary fn);
enum rwkv7_status rwkv7_cuda_binary(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                    const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                                    enum rwkv7_binary fn);
enum rwkv7_status rwkv7_cuda_mix(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                 const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                                 const struct rwkv7_tensor *t);
enum rwkv7_status rwkv7_cuda_key_prep(struct rwkv7_backend *be, const struct rwkv7_tensor *kk,
                                      const struct rwkv7_tensor *kmod, const struct rwkv7_tensor *k,
                                      const struct rwkv7_tensor *a, const struct rwkv7_tensor *k_k,
                                      const struct rwkv7_tensor *k_a, int head_size);
enum rwkv7_status rwkv7_cuda_wkv7(struct rwkv7_backend *be, const struct rwkv7_tensor *y,
                                  const struct rwkv7_tensor *state, const struct rwkv7_tensor *slots,
                                  const struct rwkv7_tensor *r, const struct rwkv7_tensor *w,
                                  const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                  const struct rwkv7_tensor *kk, const struct rwkv7_tensor *a,
                                  int n_tok, int head_size);
enum rwkv7_status rwkv7_cuda_wkv_out(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                     const struct rwkv7_tensor *y, const struct rwkv7_tensor *r,
                                     const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                     const struct rwkv7_tensor *g, const struct rwkv7_tensor *r_k,
                                     const struct rwkv7_tensor *ln_w, const struct rwkv7_tensor *ln_b,
                                     int head_size, float eps);
enum rwkv7_status rwkv7_cuda_last_rows(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                       const struct rwkv7_tensor *x, int n_tok);

#endif
