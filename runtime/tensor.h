/* tensor.h: a tensor handle as the backends see it. Shapes follow ggml/GGUF order: ne[0] is the
 * contiguous (fastest) axis. Activations are F32 with shape (C, T): ne[0] = C features, ne[1] = T
 * rows (tokens, sequence-major: row s * n_tok + t). A weight of ne (K, M) holds M rows of K
 * elements and maps a K-vector to an M-vector. Symbols: C = n_embd, H = heads, N = head size,
 * F = n_ff, V = n_vocab, T = rows in the current step. */
#ifndef RWKV7_TENSOR_H
#define RWKV7_TENSOR_H

#include <stddef.h>
#include <stdint.h>

struct rwkv7_buf; /* backend-owned memory; opaque outside the backend that made it */

struct rwkv7_tensor {
    int type;              /* enum rwkv7_dtype */
    int64_t ne[4];         /* elements per axis; unused axes are 1 */
    struct rwkv7_buf *buf; /* where the bytes live */
    size_t offs;           /* byte offset of element 0 inside buf */
    size_t nbytes;         /* bytes of the whole (contiguous) tensor */
    const char *name;      /* for messages; may be NULL for scratch */
};

static inline int64_t rwkv7_tensor_nelem(const struct rwkv7_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}
/* Rows = product of all axes but the first. */
static inline int64_t rwkv7_tensor_nrows(const struct rwkv7_tensor *t) {
    return t->ne[1] * t->ne[2] * t->ne[3];
}

#endif
