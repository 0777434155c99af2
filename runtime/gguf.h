/* gguf.h: bounds-checked, read-only GGUF reader (versions 2 and 3) over an mmap'd file or a
 * caller-owned memory block. Every check of quant-formats.md section 1.10 is applied at open
 * time, so once rwkv7_gguf_open succeeds every accessor below is safe: all strings, arrays and
 * tensor byte ranges lie inside the file. Failures return RWKV7_ERR_FORMAT (or _IO / _OOM) with
 * one message naming the field and the values, e.g.
 *   "gguf: tensor 'blk.3.time_mix_key.weight' data ends at 81234 beyond file size 80000". */
#ifndef RWKV7_GGUF_H
#define RWKV7_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rwkv7.h"

enum rwkv7_gguf_type {
    RWKV7_GGUF_U8 = 0,
    RWKV7_GGUF_I8 = 1,
    RWKV7_GGUF_U16 = 2,
    RWKV7_GGUF_I16 = 3,
    RWKV7_GGUF_U32 = 4,
    RWKV7_GGUF_I32 = 5,
    RWKV7_GGUF_F32 = 6,
    RWKV7_GGUF_BOOL = 7,
    RWKV7_GGUF_STRING = 8,
    RWKV7_GGUF_ARRAY = 9,
    RWKV7_GGUF_U64 = 10,
    RWKV7_GGUF_I64 = 11,
    RWKV7_GGUF_F64 = 12,
    RWKV7_GGUF_TYPE_COUNT = 13,
};

struct rwkv7_gguf_str {
    const char *ptr; /* points into the file; NOT NUL-terminated */
    uint64_t len;
};

struct rwkv7_gguf_tensor {
    char name[64];       /* NUL-terminated copy (GGUF names are < 64 bytes, no embedded NUL) */
    int n_dims;          /* 1..4 */
    int64_t ne[4];       /* unused axes are 1 */
    int type;            /* enum rwkv7_dtype */
    uint64_t offset;     /* relative to the data blob */
    uint64_t nbytes;     /* exact bytes of the tensor */
    const void *data;    /* inside the mapping: data_start + offset */
};

struct rwkv7_gguf;

/* Maps and validates a file. */
enum rwkv7_status rwkv7_gguf_open(const char *path, struct rwkv7_gguf **out);
/* Validates a memory block the caller keeps alive (tests, fuzzing); nothing is copied. */
enum rwkv7_status rwkv7_gguf_open_memory(const void *data, size_t size, struct rwkv7_gguf **out);
void rwkv7_gguf_free(struct rwkv7_gguf *g);

uint32_t rwkv7_gguf_version(const struct rwkv7_gguf *g);
uint32_t rwkv7_gguf_alignment(const struct rwkv7_gguf *g);
uint64_t rwkv7_gguf_file_size(const struct rwkv7_gguf *g);
uint64_t rwkv7_gguf_data_offset(const struct rwkv7_gguf *g); /* file offset of the data blob */
const void *rwkv7_gguf_base(const struct rwkv7_gguf *g);    /* start of the mapping */

/* ---- key/value pairs ---- */
int64_t rwkv7_gguf_n_kv(const struct rwkv7_gguf *g);
/* Index of key, or -1. */
int64_t rwkv7_gguf_find_kv(const struct rwkv7_gguf *g, const char *key);
struct rwkv7_gguf_str rwkv7_gguf_kv_key(const struct rwkv7_gguf *g, int64_t i);
enum rwkv7_gguf_type rwkv7_gguf_kv_type(const struct rwkv7_gguf *g, int64_t i);
/* For arrays: element type and count (0 / RWKV7_GGUF_TYPE_COUNT for non-arrays). */
enum rwkv7_gguf_type rwkv7_gguf_kv_arr_type(const struct rwkv7_gguf *g, int64_t i);
uint64_t rwkv7_gguf_kv_arr_n(const struct rwkv7_gguf *g, int64_t i);
/* Raw little-endian elements of a non-string array (n * element size bytes). */
const void *rwkv7_gguf_kv_arr_data(const struct rwkv7_gguf *g, int64_t i);
/* Raw little-endian bytes of a scalar value that is not a string (size by type: 1, 2, 4 or 8);
 * NULL for strings and arrays. */
const void *rwkv7_gguf_kv_scalar(const struct rwkv7_gguf *g, int64_t i);
/* Element j of a string array. */
struct rwkv7_gguf_str rwkv7_gguf_kv_arr_str(const struct rwkv7_gguf *g, int64_t i, uint64_t j);
/* Human-readable value for `rwkv7 info` (arrays abbreviated: "[string x 65536]"); writes at most
 * cap bytes including the NUL. */
void rwkv7_gguf_kv_format(const struct rwkv7_gguf *g, int64_t i, char *buf, size_t cap);

/* Typed getters by key. Integers of any integer GGUF type convert when the value fits.
 * Return RWKV7_OK; RWKV7_ERR_FORMAT with a message when the key is missing or of the wrong type
 * ("gguf: key 'rwkv7.block_count' has type string, expected an integer"). */
enum rwkv7_status rwkv7_gguf_get_u32(const struct rwkv7_gguf *g, const char *key, uint32_t *out);
enum rwkv7_status rwkv7_gguf_get_u64(const struct rwkv7_gguf *g, const char *key, uint64_t *out);
enum rwkv7_status rwkv7_gguf_get_i64(const struct rwkv7_gguf *g, const char *key, int64_t *out);
enum rwkv7_status rwkv7_gguf_get_f32(const struct rwkv7_gguf *g, const char *key, float *out);
enum rwkv7_status rwkv7_gguf_get_str(const struct rwkv7_gguf *g, const char *key,
                                     struct rwkv7_gguf_str *out);

/* ---- tensors ---- */
int64_t rwkv7_gguf_n_tensors(const struct rwkv7_gguf *g);
const struct rwkv7_gguf_tensor *rwkv7_gguf_tensor(const struct rwkv7_gguf *g, int64_t i);
/* NULL when absent. */
const struct rwkv7_gguf_tensor *rwkv7_gguf_find_tensor(const struct rwkv7_gguf *g, const char *name);

#endif
