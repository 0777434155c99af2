/* op_cases.h: the op-test case table shared by the GPU op tests (test_vk_ops.c; a CUDA or bench
 * harness can include it too): weight types, shapes at decode (T = 1) and prefill, and the NMSE
 * threshold of each op family with the reason for its size. Header-only, data only. */
#ifndef RWKV7_OP_CASES_H
#define RWKV7_OP_CASES_H

#include "dtype.h"

/* NMSE thresholds (sum (dev - ref)^2 / sum ref^2). */
#define OP_TOL_ELEM 1e-10  /* elementwise: same fp32 formula, only exp/tanh ulps differ */
#define OP_TOL_NORM 1e-8   /* norm/key_prep/wkv_out: fp32 reductions in another summation order */
#define OP_TOL_MATMUL 1e-8 /* exact fp32 dequant on both sides; fp32 dot, other summation order */
#define OP_TOL_WKV 1e-7    /* fp32 state over 37 tokens: order differences compound (ggml's 1e-7) */
/* Chunked kernel vs the serial CPU recurrence. tests/test_wkv7.c measures the CPU chunked form at
 * nmse 8.5e-14 from the serial one; the Vulkan kernel measured 1.1e-13 on lavapipe (its decays
 * are exp2 of log2-cumsums, ~1e-6 relative each). 1e-11 leaves ~100x for GPUs' approximate
 * exp2/log2 and still fails on any algebra slip (dropping A_rb's diagonal gives 0.2-0.3). */
#define OP_TOL_WKV_CHUNKED 1e-11

/* Weight types every GPU backend is expected to run for matmul and embed. */
static const int op_weight_types[] = {
    RWKV7_DTYPE_F32,     RWKV7_DTYPE_F16,    RWKV7_DTYPE_BF16,    RWKV7_DTYPE_Q4_0,   RWKV7_DTYPE_Q4_1,
    RWKV7_DTYPE_Q5_0,    RWKV7_DTYPE_Q5_1,   RWKV7_DTYPE_Q8_0,    RWKV7_DTYPE_Q2_K,   RWKV7_DTYPE_Q3_K,
    RWKV7_DTYPE_Q4_K,    RWKV7_DTYPE_Q5_K,   RWKV7_DTYPE_Q6_K,    RWKV7_DTYPE_IQ4_NL, RWKV7_DTYPE_IQ4_XS,
    RWKV7_DTYPE_IQ3_XXS, RWKV7_DTYPE_IQ3_S,  RWKV7_DTYPE_IQ2_XXS, RWKV7_DTYPE_IQ2_XS, RWKV7_DTYPE_IQ2_S,
    RWKV7_DTYPE_IQ1_S,   RWKV7_DTYPE_IQ1_M,
};
#define OP_N_WEIGHT_TYPES ((int)(sizeof op_weight_types / sizeof op_weight_types[0]))

/* Matmul shapes: k (multiple of 256 so every type fits), m (not a tile multiple), t rows
 * (1 and 5 take the matrix-vector path, 37 and 70 the tiled one), accumulate. */
struct op_matmul_case {
    int k, m, t;
    int accumulate;
};
static const struct op_matmul_case op_matmul_cases[] = {
    {256, 64, 1, 0}, {512, 70, 5, 1}, {256, 64, 37, 0}, {256, 130, 70, 1},
};
/* Extra shapes for float weights only: k not a multiple of 32 (LoRA-like ranks). */
static const struct op_matmul_case op_matmul_float_cases[] = {{40, 33, 1, 0}, {40, 33, 37, 1}};

/* Activation shapes: (n_seq, n_tok) pairs: decode of 1 and 2 sequences, prefill of 37 tokens
 * over 2 sequences. C = 256, head size 64 unless a case says otherwise. */
struct op_seq_case {
    int n_seq, n_tok;
};
static const struct op_seq_case op_seq_cases[] = {{1, 1}, {2, 1}, {2, 37}};
/* WKV7 token counts (2 sequences each): decode, one below / at / above one chunk of the
 * chunked kernel (16 tokens at head size 64, 8 at 128), several chunks, a ragged tail. */
static const int op_wkv_tok_cases[] = {1, 15, 16, 17, 64, 100};
#define OP_N_WKV_TOK ((int)(sizeof op_wkv_tok_cases / sizeof op_wkv_tok_cases[0]))
#define OP_C 256
#define OP_HEAD 64

#endif
