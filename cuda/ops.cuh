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

/* The compute entries of the vtable; semantics at backend.h's argument structs. */
#define RWKV7_X_(U, l) RWKV7_OP_SIG(rwkv7_cuda_##l, l);
RWKV7_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
/* Fused entries this backend implements natively (the others take op_debug.c's fallback). */
RWKV7_OP_SIG(rwkv7_cuda_lora_up, lora_up); /* lora_up.cu */

#endif
