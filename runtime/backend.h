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
#include <stdio.h>

#include "rwkv7.h"
#include "tensor.h"

/* Every op, once: X(ENUM_SUFFIX, name). The enum, the vtable members, the checked wrappers and the
 * backends' declarations are all generated from this list and the argument structs below. */
#define RWKV7_OP_LIST(X)                                                                          \
    X(EMBED, embed)                                                                               \
    X(NORM, norm)                                                                                 \
    X(MATMUL, matmul)                                                                             \
    X(TOKEN_SHIFT, token_shift)                                                                   \
    X(UNARY, unary)                                                                               \
    X(BINARY, binary)                                                                             \
    X(MIX, mix)                                                                                   \
    X(KEY_PREP, key_prep)                                                                         \
    X(WKV7, wkv7)                                                                                 \
    X(WKV_OUT, wkv_out)                                                                           \
    X(LAST_ROWS, last_rows)

/* Fused ops: optional entries (house style 2.3: fused paths are added, never swapped in). A
 * backend that leaves one NULL gets the generic fallback in op_debug.c, which runs the primitive
 * ops it is made of through the door; that composition on the CPU backend is the reference each
 * native fused kernel is checked against (test_ops, RWKV7_CHECK_RESULTS). */
#define RWKV7_FUSED_OP_LIST(X)                                                                    \
    X(MATMUL_N, matmul_n)                                                                         \
    X(NORM_SHIFT, norm_shift)                                                                     \
    X(WKV_BLOCK, wkv_block)                                                                       \
    X(FFN_KEY, ffn_key)                                                                           \
    X(LORA_UP, lora_up)

enum rwkv7_op {
#define RWKV7_X_(U, l) RWKV7_OP_##U,
    RWKV7_OP_LIST(RWKV7_X_)
    RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    RWKV7_OP_COUNT,
};
#define RWKV7_OP_FIRST_FUSED RWKV7_OP_MATMUL_N

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

/* ---- op arguments: one struct per op, the only place each op's parameters are written ----
 * Every backend entry and every checked wrapper takes (backend, const struct rwkv7_<op>_args *).
 * Shapes use tensor.h's (C, T) convention; a tensor pointer NULL means "absent" where allowed. */

/* dst (C, T) = rows tokens[t] of table (C, V), dequantized. tokens: (T) I32, ids < V. */
struct rwkv7_embed_args {
    const struct rwkv7_tensor *dst, *table, *tokens;
};
/* LayerNorm per group of C / n_groups contiguous elements of each row (biased variance, eps
 * inside the sqrt), then * w + b over the whole row. n_groups = 1: LayerNorm; n_groups = H:
 * GroupNorm. dst may equal x. */
struct rwkv7_norm_args {
    const struct rwkv7_tensor *dst, *x, *w, *b; /* (C, T), (C, T), (C), (C) */
    int n_groups;
    float eps;
};
/* dst (M, T) = W x, or dst += W x when accumulate. w (K, M) any weight type, x (K, T).
 * dst must not alias x. Accumulation in fp32. */
struct rwkv7_matmul_args {
    const struct rwkv7_tensor *dst, *w, *x;
    bool accumulate;
};
/* Token shift and lerp for n_seq = slots->ne[0] sequences of n_tok rows each:
 * prev = previous row of the same sequence, or state row slots[s] for its first row;
 * dst[j] (C, T) = x + (prev - x) * mix[j] for j < n_mix = mix->ne[1]; dst is (C, T, n_mix).
 * Then state row slots[s] = the sequence's last row of x. state: (C, n_slots). */
struct rwkv7_token_shift_args {
    const struct rwkv7_tensor *dst, *x, *mix, *state, *slots;
    int n_tok;
};
/* dst = fn(x + bias); bias (C) broadcast over rows, or NULL. dst may equal x. */
struct rwkv7_unary_args {
    const struct rwkv7_tensor *dst, *x, *bias;
    enum rwkv7_unary fn;
};
/* dst = a (op) b; b is either a's shape or one row (C, 1) broadcast. dst may equal a. */
struct rwkv7_binary_args {
    const struct rwkv7_tensor *dst, *a, *b;
    enum rwkv7_binary fn;
};
/* dst = a + (b - a) * t, all (C, T). dst may equal a. (value-residual mix) */
struct rwkv7_mix_args {
    const struct rwkv7_tensor *dst, *a, *b, *t;
};
/* Removal key and modulated key (rwkv7-gguf.md 4.4.9-10), per head of head_size:
 * kk = normalize(k * k_k) with the norm floored at 1e-12; kmod = k * (1 + (a - 1) * k_a).
 * k, a, kk, kmod (C, T); k_k, k_a (C). */
struct rwkv7_key_prep_args {
    const struct rwkv7_tensor *kk, *kmod, *k, *a, *k_k, *k_a;
    int head_size;
};
/* WKV-7 recurrence over n_seq = slots->ne[0] sequences of n_tok rows, per head h, per token:
 *   sa_i = sum_j (-kk_j) S[i][j];  S[i][j] = S[i][j] w_j + v_i k_j + sa_i kk_j a_j;
 *   y_i = sum_j S[i][j] r_j
 * r, w, k (modulated), v, kk, a, y: (C, T); state: (H*N*N, n_slots) laid out [h][i][j],
 * updated in place for rows slots[s]. */
struct rwkv7_wkv7_args {
    const struct rwkv7_tensor *y, *state, *slots, *r, *w, *k, *v, *kk, *a;
    int n_tok, head_size;
};
/* Time-mix output before W_o (rwkv7-gguf.md 4.4.12-14): per head h,
 *   o = GroupNorm(y; eps) * ln_w + ln_b;  o_h += (sum_j r_j k_j r_k[h N + j]) * v_h;  dst = o * g.
 * y, r, k (modulated), v, g, dst: (C, T); r_k, ln_w, ln_b: (C). */
struct rwkv7_wkv_out_args {
    const struct rwkv7_tensor *dst, *y, *r, *k, *v, *g, *r_k, *ln_w, *ln_b;
    int head_size;
    float eps;
};
/* dst (C, n_seq) = row s * n_tok + n_tok - 1 of x (C, n_seq * n_tok), for each s. */
struct rwkv7_last_rows_args {
    const struct rwkv7_tensor *dst, *x;
    int n_tok;
};

/* Fused: n independent matmuls in one call (r/k/v; the LoRA down-projections), each as
 * rwkv7_matmul_args; no m[i].dst may overlap another's x or dst, so they may run at once. */
#define RWKV7_MATMUL_N_MAX 8
struct rwkv7_matmul_n_args {
    int n; /* 1..RWKV7_MATMUL_N_MAX */
    struct rwkv7_matmul_args m[RWKV7_MATMUL_N_MAX];
};
/* Fused: LayerNorm then token shift (time-mix and channel-mix inputs): xn = norm(x) * w + b
 * (C, T); then token_shift(dst, xn, mix, state, slots, n_tok) as above. */
struct rwkv7_norm_shift_args {
    const struct rwkv7_tensor *dst, *xn, *x, *w, *b, *mix, *state, *slots;
    float eps;
    int n_tok;
};
/* Fused: the time-mix core of a layer: kk, kmod = key_prep(k, a, k_k, k_a); y = wkv7(state,
 * slots, r, w, kmod, v, kk, a); dst = wkv_out(y, r, kmod, v, g, r_k, ln_w, ln_b). kk, kmod and y
 * are scratch of the op's (C, T) shape: their contents afterwards are undefined (a native kernel
 * may keep them on chip), so only dst and the state are results. */
struct rwkv7_wkv_block_args {
    const struct rwkv7_tensor *dst, *state, *slots, *r, *w, *k, *v, *a, *g, *k_k, *k_a, *r_k, *ln_w, *ln_b;
    const struct rwkv7_tensor *kk, *kmod, *y; /* scratch */
    int n_tok, head_size;
    float eps;
};
/* Fused: the channel-mix key, dst (F, T) = max(W x, 0)^2. w (C, F) any weight type, x (C, T). */
struct rwkv7_ffn_key_args {
    const struct rwkv7_tensor *dst, *w, *x;
};

/* Fused: the LoRA up-projections of a time-mix layer (rwkv7-gguf.md 4.4.5-8) and the value
 * residual. n independent terms; term i:
 *   h = in_fn(x) (written back into x, which is scratch: undefined afterwards);  dst = W h;
 *   then with an out_fn: dst = out_fn(dst + bias) (bias (M) or NULL; a bias needs an out_fn).
 * in_fn, out_fn: an enum rwkv7_unary or RWKV7_LORA_NO_FN. W (K, M) any weight type (K = the LoRA
 * rank), x (K, T), dst (M, T). Then the value residual, by vres: a term index i: v = v + (v_first
 * - v) * dst_i (all (C, T)); RWKV7_LORA_VRES_RECORD: v_first = v (layer 0 records it);
 * RWKV7_LORA_VRES_NONE: v and v_first are unused. No dst may overlap another term's x or dst. */
#define RWKV7_LORA_UP_MAX 4
#define RWKV7_LORA_NO_FN (-1)
#define RWKV7_LORA_VRES_NONE (-1)
#define RWKV7_LORA_VRES_RECORD (-2)
struct rwkv7_lora_up_term {
    const struct rwkv7_tensor *dst, *w, *x, *bias;
    int in_fn, out_fn;
};
struct rwkv7_lora_up_args {
    int n; /* 1..RWKV7_LORA_UP_MAX */
    struct rwkv7_lora_up_term u[RWKV7_LORA_UP_MAX];
    const struct rwkv7_tensor *v, *v_first;
    int vres;
};

/* The signature of op `l` under the function name `fn`; backends declare their entries with it:
 *   #define X(U, l) RWKV7_OP_SIG(rwkv7_cpu_##l, l);
 *   RWKV7_OP_LIST(X) */
#define RWKV7_OP_SIG(fn, l) enum rwkv7_status fn(struct rwkv7_backend *be, const struct rwkv7_##l##_args *args)

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

    /* Optional: place a weight matrix (w of matmul, table of embed) on the device. dst->buf is
     * already allocated with size dst->nbytes and src holds the tensor's GGUF bytes. A backend
     * may store another layout (interleaved, transposed, padded) as long as its own matmul and
     * embed read it; the weight then never goes back through buf_get. NULL = the GGUF bytes as
     * they are (buf_set), which is what every backend does today. */
    enum rwkv7_status (*weight_prepare)(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                        const void *src);

    /* Optional replay of a recorded step (CUDA graphs, reused Vulkan command buffers). Ops
     * enqueued between graph_begin(key) and graph_end(keep) run as usual AND, when keep, are
     * kept under key; keep = false (the step failed) throws the recording away. graph_launch(key)
     * re-enqueues exactly those ops and returns true, or returns false when nothing is recorded
     * under key. At replay every tensor/buffer must be the same; only buffer contents (tokens,
     * slots, written with buf_set before the launch) may differ. A recording also depends on the
     * backend's own mode (set_row_invariant): the backend keeps that with the recording and does
     * not replay it under another mode. Keys: bits 63..32 name the owner (a context serial that
     * is never reused), bits 31..0 the step shape; graph_drop(owner) forgets all of the owner's
     * recordings (context freed, scratch moved). */
    enum rwkv7_status (*graph_begin)(struct rwkv7_backend *be, uint64_t key);
    enum rwkv7_status (*graph_end)(struct rwkv7_backend *be, bool keep);
    bool (*graph_launch)(struct rwkv7_backend *be, uint64_t key);
    void (*graph_drop)(struct rwkv7_backend *be, uint32_t owner);

    /* ---- compute ops (enqueue only; semantics at the argument structs above) ---- */
#define RWKV7_X_(U, l) RWKV7_OP_SIG((*l), l);
    RWKV7_OP_LIST(RWKV7_X_)
    /* optional fused ops: NULL = the generic fallback composed of the primitives */
    RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
};

struct rwkv7_op_debug; /* backend.c: state of the debug hooks (RWKV7_CHECK_RESULTS, ...) */

/* Every backend struct starts with this header (zero-initialized by the backend's init). */
struct rwkv7_backend {
    const struct rwkv7_backend_i *i;
    char desc[256];             /* device banner: name, memory, features in use */
    struct rwkv7_op_debug *dbg; /* debug hooks at the op door; NULL = none (owned by backend.c) */
    uint64_t n_ops;             /* ops that went through the door (replayed steps included) */
};

/* ---- the backend registry: every backend this project knows, compiled in or not ---- */
struct rwkv7_backend_reg {
    const char *name;          /* --backend name: "cpu", "vulkan", "cuda" */
    const char *device_prefix; /* device names in `rwkv7 devices`: "CPU", "Vulkan0", "CUDA0" */
    bool gpu;                  /* `auto` tries GPU backends in table order, then the CPU */
    const char *auto_device;   /* device `auto` asks for when none is given (Vulkan: "gpu") */
    /* Creates the backend (device NULL = default; n_threads for the CPU). NULL: not compiled in. */
    enum rwkv7_status (*init)(const char *device, int n_threads, struct rwkv7_backend **out);
    /* One line per device, or one line saying why there is none. NULL: not compiled in. */
    void (*print_devices)(FILE *f);
    /* Weight types matmul/embed run, for `rwkv7 devices --types` without a device (NULL: none). */
    bool (*weight_type_ok)(int type);
};

/* Entry i of the registry in `auto` order (GPU backends first), NULL past the end. */
const struct rwkv7_backend_reg *rwkv7_backend_reg_get(int i);
/* Entry by --backend name (case-insensitive) or by device name ("Vulkan1", "CUDA0", "CPU"). */
const struct rwkv7_backend_reg *rwkv7_backend_reg_find(const char *name);

/* Creates a backend by name: "auto" tries the compiled-in GPU backends in registry order, then
 * the CPU, printing a one-line note for each unavailable one unless quiet; a named backend that
 * cannot start is an error. Reads the debug switches (RWKV7_SYNC_EACH_OP, RWKV7_CHECK_RESULTS,
 * RWKV7_TRACE) once. */
enum rwkv7_status rwkv7_backend_init(const char *name, const char *device, int n_threads,
                                     bool quiet, struct rwkv7_backend **out);
/* Frees the backend; prints the RWKV7_TRACE summary first when tracing. */
void rwkv7_backend_free(struct rwkv7_backend *be);
/* Number of physical cores (the CPU backend's default thread count; cpu/topology.c). */
int rwkv7_n_physical_cores(void);

/* ---- debug hooks at the door (backend.c) ----
 * flags: RWKV7_DEBUG_SYNC syncs and checks after every op (an asynchronous fault is reported
 * against the op that caused it); RWKV7_DEBUG_CHECK re-runs every op on a CPU backend from the
 * same inputs and fails (RWKV7_ERR_INTERNAL) at the first op whose output is over its tolerance,
 * naming op, layer, token and error; RWKV7_DEBUG_TRACE times every op (synchronously) and prints
 * a per-op summary when the backend is freed. rwkv7_backend_init sets them from the environment. */
enum { RWKV7_DEBUG_SYNC = 1, RWKV7_DEBUG_CHECK = 2, RWKV7_DEBUG_TRACE = 4 };
enum rwkv7_status rwkv7_backend_set_debug(struct rwkv7_backend *be, unsigned flags);
unsigned rwkv7_backend_debug_flags(const struct rwkv7_backend *be);
/* Where the ops enqueued next come from, for debug messages (layer -1: outside the layers). */
void rwkv7_op_where(struct rwkv7_backend *be, int layer, int64_t token);

/* NMSE an op's output on backend be may have against the CPU reference (sum (dev - ref)^2 /
 * sum ref^2), with the reason in *why when why is not NULL: the one tolerance table
 * (op_debug.c), shared by tests/test_ops.c and the CHECK hook. args: the op's argument struct. */
double rwkv7_op_tolerance(const struct rwkv7_backend *be, enum rwkv7_op op, const void *args, const char **why);
/* Bytes an op moves at the least: every tensor it reads once, every output written once (a tensor
 * both read and written, such as the state, twice). For GB/s in tests/test_ops.c --perf. */
size_t rwkv7_op_bytes(enum rwkv7_op op, const void *args);
/* "matmul", "wkv7", ... */
const char *rwkv7_op_name(enum rwkv7_op op);
/* A fused op (RWKV7_FUSED_OP_LIST) as the generic fallback composes it, on be's own primitive
 * entries (not through the door: the caller's call was already counted and hooked). For a native
 * fused entry to hand the shapes its kernel does not take back to the reference composition. */
enum rwkv7_status rwkv7_op_compose(struct rwkv7_backend *be, enum rwkv7_op op, const void *args);

/* Checked wrappers, the single door to every backend: validate shapes/types, run the debug
 * hooks, then call the backend (RWKV7_ERR_ARG with a message on a mismatch,
 * RWKV7_ERR_UNSUPPORTED when the entry is missing). RWKV7_OP(be, norm, .dst = &y, .x = &x, ...)
 * builds the argument struct in place. */
#define RWKV7_X_(U, l) RWKV7_OP_SIG(rwkv7_op_##l, l);
RWKV7_OP_LIST(RWKV7_X_)
RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
#define RWKV7_OP(be, l, ...) rwkv7_op_##l((be), &(const struct rwkv7_##l##_args){__VA_ARGS__})

#endif
