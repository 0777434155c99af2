/* backend.h: the backend interface (a vtable of device entries and compute ops) that the forward
 * pass is written against once. CPU, Vulkan and CUDA each fill one static const table.
 *
 * Contract for every backend:
 * - Compute ops only enqueue; they may run asynchronously. buf_get and sync wait. A backend that
 *   hits a device fault returns RWKV7_ERR_DEVICE from then on (sticky).
 * - The rwkv7_op_* wrappers in backend.c check shapes and types before a backend sees a call, so
 *   backends only assert their own kernel limits.
 * - Activations, norms, mix vectors and state are F32. Weights (matmul w, embed table) may be any
 *   type for which supports(op, type) is true.
 * - Shapes use tensor.h's convention: (C, T) = T rows of C floats, rows ordered sequence-major.
 * - A NULL compute entry means "not supported"; supports() must then say false.
 * Fused entries may be added later as new optional members; forward.c falls back to composing the
 * primitives when they are NULL (house style section 2.3). */
#ifndef RWKV7_BACKEND_H
#define RWKV7_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rwkv7.h"
#include "tensor.h"

enum rwkv7_op {
    RWKV7_OP_EMBED,
    RWKV7_OP_NORM,
    RWKV7_OP_MATMUL,
    RWKV7_OP_TOKEN_SHIFT,
    RWKV7_OP_UNARY,
    RWKV7_OP_BINARY,
    RWKV7_OP_MIX,
    RWKV7_OP_KEY_PREP,
    RWKV7_OP_WKV7,
    RWKV7_OP_WKV_OUT,
    RWKV7_OP_LAST_ROWS,
    RWKV7_OP_COUNT,
};

enum rwkv7_unary {
    RWKV7_UNARY_SIGMOID,  /* 1 / (1 + e^-z) */
    RWKV7_UNARY_TANH,
    RWKV7_UNARY_RELU_SQR, /* max(z, 0)^2: channel-mix hidden */
    RWKV7_UNARY_DECAY,    /* exp(-0.606531 * sigmoid(z)): RWKV-7 multiplicative decay (rwkv7-gguf.md 4.4.5) */
};

enum rwkv7_binary {
    RWKV7_BINARY_ADD,
    RWKV7_BINARY_MUL,
};

/* The RWKV-7 decay constant e^-0.5 as llama.cpp and rwkv.cpp write it. */
#define RWKV7_DECAY_SCALE 0.606531f
/* GroupNorm epsilon of ln_x and the floor of the per-head L2 norm (hard-coded in llama.cpp). */
#define RWKV7_GROUPNORM_EPS 64e-5f
#define RWKV7_L2NORM_EPS 1e-12f

struct rwkv7_backend;

struct rwkv7_backend_i {
    const char *name; /* "cpu", "vulkan", "cuda" */

    /* ---- device entries ---- */
    void (*free)(struct rwkv7_backend *be);
    /* Device memory of size bytes (contents undefined). RWKV7_ERR_OOM names needed/available. */
    enum rwkv7_status (*buf_alloc)(struct rwkv7_backend *be, size_t size, struct rwkv7_buf **out);
    void (*buf_free)(struct rwkv7_backend *be, struct rwkv7_buf *buf);
    /* Optional: use host memory in place (the CPU backend maps the GGUF file zero-copy). The
     * memory must outlive the buffer. NULL = the caller uploads with buf_set. */
    enum rwkv7_status (*buf_wrap_host)(struct rwkv7_backend *be, void *ptr, size_t size,
                                       struct rwkv7_buf **out);
    /* Copy host -> device. May be asynchronous only if src can be reused at return. */
    enum rwkv7_status (*buf_set)(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs,
                                 const void *src, size_t n);
    /* Copy device -> host after all enqueued work finished. */
    enum rwkv7_status (*buf_get)(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs,
                                 void *dst, size_t n);
    /* Wait for all enqueued work; surfaces asynchronous errors. */
    enum rwkv7_status (*sync)(struct rwkv7_backend *be);
    /* Whether op can run with weight type wtype (ignored for ops without weights). */
    bool (*supports)(struct rwkv7_backend *be, enum rwkv7_op op, int wtype);

    /* Optional: measured device-to-device copy bandwidth in GB/s (read + write bytes / s), for
     * benchmark banners; 0 when unknown. May take a fraction of a second. */
    double (*copy_bandwidth)(struct rwkv7_backend *be);
    /* Optional: when on, matmul computes every output row with the same operations whatever the
     * number of rows in the call (e.g. always the matrix-vector kernel, in slices of rows), so a
     * sequence's results do not depend on what else is batched with it. Costs batched and prefill
     * throughput on GPUs. NULL = the backend is always row-invariant (the CPU). */
    void (*set_row_invariant)(struct rwkv7_backend *be, bool on);
    /* Optional: bytes of device memory free now and in total (host RAM for the CPU), to size
     * batches; NULL or an error = unknown. */
    enum rwkv7_status (*mem_info)(struct rwkv7_backend *be, uint64_t *free_bytes, uint64_t *total_bytes);

    /* Optional replay of a recorded step (CUDA graphs, reused Vulkan command buffers). Ops
     * enqueued between graph_begin(key) and graph_end() run as usual AND are kept under key;
     * graph_launch(key) then re-enqueues exactly those ops and returns true, or returns false when
     * nothing is recorded under key. At replay every tensor/buffer must be the same; only buffer
     * contents (tokens, slots, written with buf_set before the launch) may differ. */
    enum rwkv7_status (*graph_begin)(struct rwkv7_backend *be, uint64_t key);
    enum rwkv7_status (*graph_end)(struct rwkv7_backend *be);
    bool (*graph_launch)(struct rwkv7_backend *be, uint64_t key);

    /* ---- compute ops (enqueue only) ---- */

    /* dst (C, T) = rows tokens[t] of table (C, V), dequantized. tokens: (T) I32, ids < V. */
    enum rwkv7_status (*embed)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                               const struct rwkv7_tensor *table, const struct rwkv7_tensor *tokens);
    /* LayerNorm per group of C / n_groups contiguous elements of each row (biased variance, eps
     * inside the sqrt), then * w + b over the whole row. n_groups = 1: LayerNorm; n_groups = H:
     * GroupNorm. dst may equal x. */
    enum rwkv7_status (*norm)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                              const struct rwkv7_tensor *x, const struct rwkv7_tensor *w,
                              const struct rwkv7_tensor *b, int n_groups, float eps);
    /* dst (M, T) = W x, or dst += W x when accumulate. w (K, M) any weight type, x (K, T).
     * dst must not alias x. Accumulation in fp32. */
    enum rwkv7_status (*matmul)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                const struct rwkv7_tensor *w, const struct rwkv7_tensor *x,
                                bool accumulate);
    /* Token shift and lerp for n_seq = slots->ne[0] sequences of n_tok rows each:
     * prev = previous row of the same sequence, or state row slots[s] for its first row;
     * dst[j] (C, T) = x + (prev - x) * mix[j] for j < n_mix = mix->ne[1]; dst is (C, T, n_mix).
     * Then state row slots[s] = the sequence's last row of x. state: (C, n_slots). */
    enum rwkv7_status (*token_shift)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                     const struct rwkv7_tensor *x, const struct rwkv7_tensor *mix,
                                     const struct rwkv7_tensor *state,
                                     const struct rwkv7_tensor *slots, int n_tok);
    /* dst = fn(x + bias); bias (C) broadcast over rows, or NULL. dst may equal x. */
    enum rwkv7_status (*unary)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                               const struct rwkv7_tensor *x, const struct rwkv7_tensor *bias,
                               enum rwkv7_unary fn);
    /* dst = a (op) b; b is either a's shape or one row (C, 1) broadcast. dst may equal a. */
    enum rwkv7_status (*binary)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                                enum rwkv7_binary fn);
    /* dst = a + (b - a) * t, all (C, T). dst may equal a. (value-residual mix) */
    enum rwkv7_status (*mix)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                             const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                             const struct rwkv7_tensor *t);
    /* Removal key and modulated key (rwkv7-gguf.md 4.4.9-10), per head of head_size:
     * kk = normalize(k * k_k) with the norm floored at 1e-12; kmod = k * (1 + (a - 1) * k_a).
     * k, a, kk, kmod (C, T); k_k, k_a (C). */
    enum rwkv7_status (*key_prep)(struct rwkv7_backend *be, const struct rwkv7_tensor *kk,
                                  const struct rwkv7_tensor *kmod, const struct rwkv7_tensor *k,
                                  const struct rwkv7_tensor *a, const struct rwkv7_tensor *k_k,
                                  const struct rwkv7_tensor *k_a, int head_size);
    /* WKV-7 recurrence over n_seq = slots->ne[0] sequences of n_tok rows, per head h, per token:
     *   sa_i = sum_j (-kk_j) S[i][j];  S[i][j] = S[i][j] w_j + v_i k_j + sa_i kk_j a_j;
     *   y_i = sum_j S[i][j] r_j
     * r, w, k (modulated), v, kk, a, y: (C, T); state: (H*N*N, n_slots) laid out [h][i][j],
     * updated in place for rows slots[s]. */
    enum rwkv7_status (*wkv7)(struct rwkv7_backend *be, const struct rwkv7_tensor *y,
                              const struct rwkv7_tensor *state, const struct rwkv7_tensor *slots,
                              const struct rwkv7_tensor *r, const struct rwkv7_tensor *w,
                              const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                              const struct rwkv7_tensor *kk, const struct rwkv7_tensor *a,
                              int n_tok, int head_size);
    /* Time-mix output before W_o (rwkv7-gguf.md 4.4.12-14): per head h,
     *   o = GroupNorm(y; eps) * ln_w + ln_b;  o_h += (sum_j r_j k_j r_k[h N + j]) * v_h;  dst = o * g.
     * y, r, k (modulated), v, g, dst: (C, T); r_k, ln_w, ln_b: (C). */
    enum rwkv7_status (*wkv_out)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                 const struct rwkv7_tensor *y, const struct rwkv7_tensor *r,
                                 const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                 const struct rwkv7_tensor *g, const struct rwkv7_tensor *r_k,
                                 const struct rwkv7_tensor *ln_w, const struct rwkv7_tensor *ln_b,
                                 int head_size, float eps);
    /* dst (C, n_seq) = row s * n_tok + n_tok - 1 of x (C, n_seq * n_tok), for each s. */
    enum rwkv7_status (*last_rows)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *x, int n_tok);
};

/* Every backend struct starts with this header. */
struct rwkv7_backend {
    const struct rwkv7_backend_i *i;
    char desc[256]; /* device banner: name, memory, features in use */
};

/* Backend constructors (each defined only when compiled in; see backend.c). */
enum rwkv7_status rwkv7_backend_cpu_init(int n_threads, struct rwkv7_backend **out);
#ifdef RWKV7_HAVE_VULKAN
enum rwkv7_status rwkv7_backend_vulkan_init(const char *device, struct rwkv7_backend **out);
#endif
#ifdef RWKV7_HAVE_CUDA
enum rwkv7_status rwkv7_backend_cuda_init(const char *device, struct rwkv7_backend **out);
#endif

/* Creates a backend by name: "auto" tries CUDA, then Vulkan, then CPU, printing a one-line note
 * for each unavailable one unless quiet; a named backend that cannot start is an error. */
enum rwkv7_status rwkv7_backend_init(const char *name, const char *device, int n_threads,
                                     bool quiet, struct rwkv7_backend **out);
void rwkv7_backend_free(struct rwkv7_backend *be);
/* Number of physical cores (for the CPU default). */
int rwkv7_n_physical_cores(void);

/* Checked wrappers: validate shapes/types, then call the backend (RWKV7_ERR_ARG with a message on
 * a mismatch, RWKV7_ERR_UNSUPPORTED when the entry is missing). */
enum rwkv7_status rwkv7_op_embed(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                 const struct rwkv7_tensor *table, const struct rwkv7_tensor *tokens);
enum rwkv7_status rwkv7_op_norm(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                const struct rwkv7_tensor *x, const struct rwkv7_tensor *w,
                                const struct rwkv7_tensor *b, int n_groups, float eps);
enum rwkv7_status rwkv7_op_matmul(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                  const struct rwkv7_tensor *w, const struct rwkv7_tensor *x,
                                  bool accumulate);
enum rwkv7_status rwkv7_op_token_shift(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                       const struct rwkv7_tensor *x, const struct rwkv7_tensor *mix,
                                       const struct rwkv7_tensor *state,
                                       const struct rwkv7_tensor *slots, int n_tok);
enum rwkv7_status rwkv7_op_unary(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                 const struct rwkv7_tensor *x, const struct rwkv7_tensor *bias,
                                 enum rwkv7_unary fn);
enum rwkv7_status rwkv7_op_binary(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                  const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                                  enum rwkv7_binary fn);
enum rwkv7_status rwkv7_op_mix(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                               const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                               const struct rwkv7_tensor *t);
enum rwkv7_status rwkv7_op_key_prep(struct rwkv7_backend *be, const struct rwkv7_tensor *kk,
                                    const struct rwkv7_tensor *kmod, const struct rwkv7_tensor *k,
                                    const struct rwkv7_tensor *a, const struct rwkv7_tensor *k_k,
                                    const struct rwkv7_tensor *k_a, int head_size);
enum rwkv7_status rwkv7_op_wkv7(struct rwkv7_backend *be, const struct rwkv7_tensor *y,
                                const struct rwkv7_tensor *state, const struct rwkv7_tensor *slots,
                                const struct rwkv7_tensor *r, const struct rwkv7_tensor *w,
                                const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                const struct rwkv7_tensor *kk, const struct rwkv7_tensor *a,
                                int n_tok, int head_size);
enum rwkv7_status rwkv7_op_wkv_out(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *y, const struct rwkv7_tensor *r,
                                   const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                   const struct rwkv7_tensor *g, const struct rwkv7_tensor *r_k,
                                   const struct rwkv7_tensor *ln_w, const struct rwkv7_tensor *ln_b,
                                   int head_size, float eps);
enum rwkv7_status rwkv7_op_last_rows(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                     const struct rwkv7_tensor *x, int n_tok);

#endif
