/* gguf_write.h: a minimal GGUF v3 writer for state files, synthetic models and tests. It emits
 * exactly the layout llama.cpp writes (docs/spec/quant-formats.md section 1): header, KV
 * records, tensor infos, zero padding to 32 bytes, then each tensor padded to 32 bytes with
 * offsets equal to the running padded sum. Output is written atomically to a path or into one
 * malloc'ed buffer; whatever it writes, rwkv7_gguf_open accepts. */
#ifndef RWKV7_GGUF_WRITE_H
#define RWKV7_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "rwkv7.h"

struct rwkv7_gguf_writer;

enum rwkv7_status rwkv7_gguf_writer_init(struct rwkv7_gguf_writer **out);
void rwkv7_gguf_writer_free(struct rwkv7_gguf_writer *w);

/* Keys must be non-empty, NUL-free and unique (RWKV7_ERR_ARG otherwise). Values are copied. */
enum rwkv7_status rwkv7_gguf_writer_add_u32(struct rwkv7_gguf_writer *w, const char *key, uint32_t v);
enum rwkv7_status rwkv7_gguf_writer_add_i32(struct rwkv7_gguf_writer *w, const char *key, int32_t v);
enum rwkv7_status rwkv7_gguf_writer_add_u64(struct rwkv7_gguf_writer *w, const char *key, uint64_t v);
enum rwkv7_status rwkv7_gguf_writer_add_f32(struct rwkv7_gguf_writer *w, const char *key, float v);
enum rwkv7_status rwkv7_gguf_writer_add_bool(struct rwkv7_gguf_writer *w, const char *key, bool v);
enum rwkv7_status rwkv7_gguf_writer_add_str(struct rwkv7_gguf_writer *w, const char *key, const char *s);
/* String array; lens may be NULL (then every string is NUL-terminated), else strings may hold
 * any bytes, including NUL. */
enum rwkv7_status rwkv7_gguf_writer_add_str_arr(struct rwkv7_gguf_writer *w, const char *key,
                                                const char *const *strs, const size_t *lens, size_t n);
enum rwkv7_status rwkv7_gguf_writer_add_i32_arr(struct rwkv7_gguf_writer *w, const char *key,
                                                const int32_t *v, size_t n);
enum rwkv7_status rwkv7_gguf_writer_add_f32_arr(struct rwkv7_gguf_writer *w, const char *key,
                                                const float *v, size_t n);

/* Copies key/value record i of a file opened with rwkv7_gguf_open, type and value unchanged
 * (metadata of a file being rewritten, e.g. by `rwkv7 quantize`). */
enum rwkv7_status rwkv7_gguf_writer_copy_kv(struct rwkv7_gguf_writer *w, const struct rwkv7_gguf *g, int64_t i);

/* Tensor of n_dims (1..4) axes ne[0..n_dims-1] (each >= 1) and a weight type (enum rwkv7_dtype).
 * nbytes must equal rwkv7_dtype_row_bytes(type, ne[0]) * ne[1] * ne[2] * ne[3]. add_tensor copies
 * data; add_tensor_ref keeps the pointer, which must stay valid until the last write call. data
 * NULL writes zeros. Names are unique, non-empty and at most 63 bytes. */
enum rwkv7_status rwkv7_gguf_writer_add_tensor(struct rwkv7_gguf_writer *w, const char *name,
                                               int n_dims, const int64_t ne[4], int type,
                                               const void *data, size_t nbytes);
enum rwkv7_status rwkv7_gguf_writer_add_tensor_ref(struct rwkv7_gguf_writer *w, const char *name,
                                                   int n_dims, const int64_t ne[4], int type,
                                                   const void *data, size_t nbytes);

/* Total bytes the file will have. */
uint64_t rwkv7_gguf_writer_size(const struct rwkv7_gguf_writer *w);
/* Writes "<path>.tmp.<pid>", flushes and fsyncs it, then renames it over path. On failure the
 * temporary file is removed and RWKV7_ERR_IO names the path. */
enum rwkv7_status rwkv7_gguf_writer_write_file(const struct rwkv7_gguf_writer *w, const char *path);
/* The whole file image in one malloc'ed block; the caller frees *data with free(). */
enum rwkv7_status rwkv7_gguf_writer_write_memory(const struct rwkv7_gguf_writer *w, void **data,
                                                 size_t *size);

#endif
