/* state_file.h: saves and loads one context slot's recurrent state as a small GGUF file, with
 * what a generation needs to resume exactly (docs/state-format.md): token count, the token that
 * was sampled but not yet fed, the logits when nothing is pending, the sampler's state, a note.
 * Loading validates everything (type, shapes, model hash, finite values) before touching the
 * slot, so a refused file leaves the slot as it was. Writes are atomic (temporary file + rename). */
#ifndef RWKV7_STATE_FILE_H
#define RWKV7_STATE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rwkv7.h"

#define RWKV7_STATE_FILE_VERSION 1

/* What a state file carries besides the recurrent state. For saving, the caller fills it and
 * keeps ownership (NULL / 0 / -1 = absent). After loading, the pointers are malloc'ed copies (or
 * NULL when the file has no such part): release them with rwkv7_state_extra_free. */
struct rwkv7_state_extra {
    uint64_t n_tokens;       /* tokens the state has consumed; informational */
    int32_t pending_token;   /* sampled and already shown, not yet fed to the model; -1 = none */
    const float *logits;     /* n_vocab logits after the last fed token; NULL = none. Only useful
                                when no token is pending: the next token is sampled from them */
    const void *sampler;     /* rwkv7_sampler_state_get blob; NULL = none */
    size_t sampler_size;
    const char *note;        /* free UTF-8 text; NULL = none */
    /* Set by load, ignored by save (save always writes the model's hash). */
    bool has_hash;           /* false: an initial state (converted, state-tuned) naming no model */
    uint64_t model_hash;
};

/* Writes slot's state of ctx (a context of model) and extra to path. RWKV7_ERR_ARG for a bad
 * slot, pending token or logits without a model vocabulary, RWKV7_ERR_IO naming the path. */
enum rwkv7_status rwkv7_state_save_file(struct rwkv7_model *model, struct rwkv7_ctx *ctx,
                                        int slot, const struct rwkv7_state_extra *extra,
                                        const char *path);

/* Reads path, checks it against model and, only when every check passes, writes the state into
 * slot and fills *extra (which may be NULL). Refusals, each with a one-line message naming the
 * file: RWKV7_ERR_IO (cannot open), RWKV7_ERR_FORMAT (truncated or malformed, not a state file,
 * non-finite values), RWKV7_ERR_UNSUPPORTED (another architecture, shapes of another model, or a
 * model hash that is not this model's). A file without a model hash is accepted when its shapes
 * match (extra->has_hash is then false, so the caller can say so). Missing token-shift tensors
 * load as zeros, as in state-tuned initial states. */
enum rwkv7_status rwkv7_state_load_file(struct rwkv7_model *model, struct rwkv7_ctx *ctx,
                                        int slot, const char *path,
                                        struct rwkv7_state_extra *extra);

/* Frees what rwkv7_state_load_file allocated and clears *extra (pending_token becomes -1). */
void rwkv7_state_extra_free(struct rwkv7_state_extra *extra);

#endif
