/* rwkv7.h: the public interface of librwkv7, a runtime for RWKV-7 models stored as GGUF.
 * Opaque handles, status codes, load / eval / state / free. Every function that can fail returns
 * enum rwkv7_status and writes results through out-parameters; rwkv7_last_error() then holds a
 * one-line message naming the problem. Handles are not thread-safe: use one context per thread. */
#ifndef RWKV7_H
#define RWKV7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rwkv7_status {
    RWKV7_OK = 0,
    RWKV7_ERR_ARG = -1,         /* a caller passed something invalid */
    RWKV7_ERR_IO = -2,          /* open/read/mmap/write failed */
    RWKV7_ERR_FORMAT = -3,      /* a file is malformed */
    RWKV7_ERR_UNSUPPORTED = -4, /* well-formed but not something we run (type, arch, head size) */
    RWKV7_ERR_OOM = -5,         /* host or device memory exhausted */
    RWKV7_ERR_DEVICE = -6,      /* driver / kernel failure; the backend is dead after this */
    RWKV7_ERR_INTERNAL = -7,
};

/* Fixed text of a status ("malformed file"). Never NULL. */
const char *rwkv7_status_str(enum rwkv7_status st);
/* Detail of the last failure on this thread ("gguf: tensor 'x' data ends at 81234 beyond file
 * size 80000"). Valid until the next failing call on the same thread. Never NULL. */
const char *rwkv7_last_error(void);
void rwkv7_clear_error(void);

/* ---- model ---- */

struct rwkv7_model;
struct rwkv7_ctx;
struct rwkv7_tokenizer;

struct rwkv7_hparams {
    int n_vocab;      /* V */
    int n_embd;       /* C */
    int n_layer;      /* L */
    int n_ff;         /* F */
    int head_size;    /* N */
    int n_head;       /* H = C / N */
    int lora_decay;   /* D_w */
    int lora_iclr;    /* D_a */
    int lora_vres;    /* D_v */
    int lora_gate;    /* D_g */
    float norm_eps;   /* LayerNorm epsilon (ln0, ln1, ln2, ln_out) */
};

struct rwkv7_model_params {
    const char *backend; /* "auto" (default when NULL), "cpu", "vulkan", "cuda" */
    const char *device;  /* e.g. "Vulkan0", "CUDA0"; NULL = the backend's best device */
    int n_threads;       /* CPU threads; <= 0 = all physical cores */
    bool progress;       /* print upload progress on stderr for large models */
    bool quiet;          /* no informational lines on stderr (banner, fallback notes) */
};

/* Loads a GGUF file of architecture "rwkv7", checks every tensor and uploads the weights to the
 * chosen backend. On failure *out is NULL and rwkv7_last_error() says why. */
enum rwkv7_status rwkv7_model_load(const char *path, const struct rwkv7_model_params *params,
                                   struct rwkv7_model **out);
/* Same, from a GGUF image in memory that the caller keeps alive until rwkv7_model_free (used by
 * `rwkv7 bench --synthetic`, which builds a llama.cpp-layout file image without touching disk). */
enum rwkv7_status rwkv7_model_load_memory(const void *data, size_t size,
                                          const struct rwkv7_model_params *params,
                                          struct rwkv7_model **out);
void rwkv7_model_free(struct rwkv7_model *model);

const struct rwkv7_hparams *rwkv7_model_hparams(const struct rwkv7_model *model);
/* The tokenizer built from the file's vocabulary; owned by the model. */
const struct rwkv7_tokenizer *rwkv7_model_tokenizer(const struct rwkv7_model *model);
/* "cpu", "vulkan" or "cuda", and a human-readable device description. */
const char *rwkv7_model_backend_name(const struct rwkv7_model *model);
const char *rwkv7_model_device_desc(const struct rwkv7_model *model);
/* Backend ops enqueued for this model's contexts so far (replayed recorded steps count the ops
 * they recorded): `rwkv7 bench` divides it into dispatches per decoded token. */
uint64_t rwkv7_model_n_ops(const struct rwkv7_model *model);
/* Bytes of weights (as stored) and parameter count. */
uint64_t rwkv7_model_weight_bytes(const struct rwkv7_model *model);
uint64_t rwkv7_model_n_params(const struct rwkv7_model *model);
/* Weight bytes a decode step reads per token (all weights except the embedding table, plus one
 * embedding row). */
uint64_t rwkv7_model_bytes_per_token(const struct rwkv7_model *model);
/* Batch invariance: when on, every row of a batched call is computed exactly as if it ran alone
 * (bit-identical), so a request's tokens never depend on its neighbours. The CPU backend always
 * is; GPU backends then use their matrix-vector kernels for every matmul, which costs batched
 * and prefill throughput. Off by default; `rwkv7 batch` turns it on. */
void rwkv7_model_set_batch_invariant(struct rwkv7_model *model, bool on);
/* Free and total memory of the model's device (host RAM for the CPU backend), for sizing batches.
 * RWKV7_ERR_UNSUPPORTED when the backend cannot tell. */
enum rwkv7_status rwkv7_model_device_memory(const struct rwkv7_model *model, uint64_t *free_bytes,
                                            uint64_t *total_bytes);
/* 64-bit FNV-1a over hyper-parameters and every tensor's name, type, shape and bytes; identifies
 * the model for state files. Computed lazily once (it reads the whole file). */
uint64_t rwkv7_model_hash(struct rwkv7_model *model);

/* ---- context and state ---- */

enum rwkv7_logits {
    RWKV7_LOGITS_NONE = 0, /* no head at all (pure prefill) */
    RWKV7_LOGITS_LAST = 1, /* one row per sequence: after its last token */
    RWKV7_LOGITS_ALL = 2,  /* one row per token */
};

/* A context owns n_slots recurrent-state slots (fp32 token shifts + WKV matrices), all zero
 * at start, and the activation scratch. */
enum rwkv7_status rwkv7_ctx_init(struct rwkv7_model *model, int n_slots, struct rwkv7_ctx **out);
void rwkv7_ctx_free(struct rwkv7_ctx *ctx);
int rwkv7_ctx_n_slots(const struct rwkv7_ctx *ctx);

/* Evaluates n_seq sequences of n_tok tokens each. tokens is [n_seq][n_tok]; sequence i reads and
 * updates state slot slots[i] (slots must be distinct). logits receives, for LAST, [n_seq][V],
 * for ALL, [n_seq][n_tok][V]; it may be NULL only with RWKV7_LOGITS_NONE. Long inputs are split
 * into chunks internally; the result equals feeding the tokens one by one. */
enum rwkv7_status rwkv7_ctx_eval(struct rwkv7_ctx *ctx, int n_seq, const int *slots, int n_tok,
                                 const int32_t *tokens, enum rwkv7_logits mode, float *logits);
/* Largest number of token rows (n_seq * n_tok) one internal step processes; longer calls are
 * chunked. Default 512. */
void rwkv7_ctx_set_max_rows(struct rwkv7_ctx *ctx, int max_rows);

/* Floats in one slot's state: n_layer * (2 * C + H * N * N). Layout per layer:
 * [att shift (C) | ffn shift (C) | wkv (H, N, N) as [h][i][j]]. */
size_t rwkv7_state_n_floats(const struct rwkv7_hparams *hp);
enum rwkv7_status rwkv7_state_reset(struct rwkv7_ctx *ctx, int slot);
enum rwkv7_status rwkv7_state_get(struct rwkv7_ctx *ctx, int slot, float *dst);
enum rwkv7_status rwkv7_state_set(struct rwkv7_ctx *ctx, int slot, const float *src);

/* ---- tokenizer (runtime/tokenizer.c) ---- */

/* Greedy longest-match encoding of n bytes of text. Writes at most cap ids and returns the
 * number needed through *n_ids (call with cap = 0 to size). */
enum rwkv7_status rwkv7_tokenize(const struct rwkv7_tokenizer *tok, const char *text, size_t n,
                                 int32_t *ids, size_t cap, size_t *n_ids);
/* Raw bytes of one token (not NUL-terminated); id 0 gives an empty piece. NULL for ids out of
 * range. */
const char *rwkv7_token_piece(const struct rwkv7_tokenizer *tok, int32_t id, size_t *len);
int rwkv7_tokenizer_n_vocab(const struct rwkv7_tokenizer *tok);

#ifdef __cplusplus
}
#endif
#endif
