/* op_cases.h: the shapes of tests/test_ops.c's case table: decode (T = 1..8) and prefill shapes,
 * ragged sizes. Every weight type a backend claims is tested; the NMSE tolerances (with their
 * reasons) are the library's one table, rwkv7_op_tolerance (runtime/op_debug.c). Data only. */
#ifndef RWKV7_OP_CASES_H
#define RWKV7_OP_CASES_H

/* Matmul shapes: k (multiple of 256 so every type fits), m (not a tile multiple), t rows
 * (1..8 take the matrix-vector paths, 37 and up the tiled ones: 65 and 130 are one row past a
 * 64-row tile with m one past a 64-feature tile; 768 x 192 x 128 is a 0.1B prefill shape),
 * accumulate. The narrow long rows (k 2048 / 4096, m 40 / 48) take the Vulkan matvec's split-K
 * path (several workgroups per row and a reduce pass). */
struct op_matmul_case {
    int k, m, t;
    int accumulate;
};
static const struct op_matmul_case op_matmul_cases[] = {
    {256, 64, 1, 0}, {256, 33, 2, 0}, {512, 70, 3, 1}, {256, 64, 4, 0}, {512, 70, 5, 1}, {256, 97, 8, 0},
    {256, 64, 37, 0}, {256, 130, 70, 1}, {256, 65, 65, 0}, {512, 129, 130, 1}, {768, 192, 128, 0},
    {2048, 40, 1, 1}, {4096, 48, 3, 0},
};
#define OP_N_MATMUL ((int)(sizeof op_matmul_cases / sizeof op_matmul_cases[0]))
/* Decode shapes on tensors aligned as a loaded model's (p[3] bit 1): what the Vulkan matvec's
 * aligned pipelines run (the cases above are misaligned on purpose), T > 1 among them, whose
 * activations that kernel stages in shared memory on GPUs (test_ops_vk_matvec_staged forces it on
 * lavapipe): k = 768 walks Q4_K / Q5_K in one-word units, 2048 x 24 splits K in four. */
static const struct op_matmul_case op_matvec_aligned_cases[] = {{512, 70, 3, 1}, {768, 40, 2, 0}, {2048, 24, 8, 0}};
#define OP_N_MATVEC_ALIGNED ((int)(sizeof op_matvec_aligned_cases / sizeof op_matvec_aligned_cases[0]))
/* ... for one type of each lane-unit family of that kernel (float 16-byte units, Q8_0 quarters,
 * the 32-blocks' words, the two-word K-quants, Q6_K, the 32-weight dq32 decoders): each aligned
 * pipeline is compiled per type and row count, which costs lavapipe seconds apiece. */
static const int op_matvec_aligned_types[] = {RWKV7_DTYPE_F32,  RWKV7_DTYPE_F16,  RWKV7_DTYPE_BF16, RWKV7_DTYPE_Q8_0,
                                              RWKV7_DTYPE_Q4_0, RWKV7_DTYPE_Q5_1, RWKV7_DTYPE_IQ4_NL, RWKV7_DTYPE_Q4_K,
                                              RWKV7_DTYPE_Q5_K, RWKV7_DTYPE_Q6_K, RWKV7_DTYPE_Q3_K, RWKV7_DTYPE_IQ3_S};
/* Extra shapes for float weights only: k not a multiple of 32 (LoRA-like ranks), nor of 8 (a
 * vector unit of the matvec crosses the end of the row; 37 and 70 also end inside an 8-element
 * slice of the tiled kernel's decode). */
static const struct op_matmul_case op_matmul_float_cases[] = {{40, 33, 1, 0}, {40, 33, 37, 1}, {42, 17, 2, 1},
                                                              {37, 67, 66, 0}, {70, 64, 64, 1}};
#define OP_N_MATMUL_FLOAT ((int)(sizeof op_matmul_float_cases / sizeof op_matmul_float_cases[0]))

/* Activation shapes: (n_seq, n_tok) pairs: decode of 1, 2 and 3 sequences, a short and a ragged
 * prefill over 2 sequences. C = 256, head size 64 unless a case says otherwise. */
struct op_seq_case {
    int n_seq, n_tok;
};
static const struct op_seq_case op_seq_cases[] = {{1, 1}, {2, 1}, {3, 1}, {2, 8}, {2, 37}};
#define OP_N_SEQ ((int)(sizeof op_seq_cases / sizeof op_seq_cases[0]))
/* WKV7 token counts (2 sequences each): decode, one below / at / above one chunk of the
 * chunked kernel (16 tokens at head size 64, 8 at 128), several chunks, a ragged tail. */
static const int op_wkv_tok_cases[] = {1, 15, 16, 17, 64, 100};
#define OP_N_WKV_TOK ((int)(sizeof op_wkv_tok_cases / sizeof op_wkv_tok_cases[0]))
/* WKV7 model shapes, with --perf only (the serial vs chunked measurements of bench/RESULTS.md):
 * 0.1B (12 heads of 64) and 1.5B (32 heads of 64) prefills of one sequence, and a batch of 4. */
struct op_wkv_perf_case {
    int head_size, n_head, n_seq, n_tok;
};
static const struct op_wkv_perf_case op_wkv_perf_cases[] = {
    {64, 12, 1, 16}, {64, 12, 1, 32},  {64, 12, 1, 64},  {64, 12, 1, 128}, {64, 12, 1, 256}, {64, 12, 1, 512},
    {64, 32, 1, 16}, {64, 32, 1, 32},  {64, 32, 1, 64},  {64, 32, 1, 128}, {64, 32, 1, 256}, {64, 32, 1, 512},
    {64, 12, 4, 64}, {128, 16, 1, 128},
};
#define OP_N_WKV_PERF ((int)(sizeof op_wkv_perf_cases / sizeof op_wkv_perf_cases[0]))
/* Decode matvec model shapes, with --perf only, on tensors aligned as a loaded model's are: the
 * 0.1B FFN key (768 -> 3072) and value (3072 -> 768) and a 1.5B projection (2048 -> 2048) and FFN
 * key (2048 -> 8192), one token and four; per-kernel GB/s for bench/RESULTS.md. */
static const struct op_matmul_case op_matvec_perf_cases[] = {
    {768, 3072, 1, 0}, {3072, 768, 1, 0}, {2048, 2048, 1, 0}, {2048, 8192, 1, 0}, {2048, 2048, 4, 0},
};
#define OP_N_MATVEC_PERF ((int)(sizeof op_matvec_perf_cases / sizeof op_matvec_perf_cases[0]))
static const int op_matvec_perf_types[] = {RWKV7_DTYPE_F16, RWKV7_DTYPE_BF16, RWKV7_DTYPE_Q8_0,
                                           RWKV7_DTYPE_Q6_K, RWKV7_DTYPE_Q4_K, RWKV7_DTYPE_Q4_0};
#define OP_C 256
#define OP_HEAD 64

#endif
