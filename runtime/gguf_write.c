/* gguf_write.c: the GGUF v3 writer declared in gguf_write.h. Each KV record is serialized when
 * it is added, so writing is a plain walk: header, records, tensor infos, padding, tensor data.
 * One emitter walks the layout three ways (count, memory, FILE*), so the size, the image and the
 * file can never disagree. Layout: docs/spec/quant-formats.md sections 1.1-1.5. */
#define _POSIX_C_SOURCE 200809L

#include "gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dtype.h"
#include "gguf.h"
#include "status.h"

#define WRITER_ALIGNMENT 32u
#define WRITER_MAX_NAME 64

struct writer_kv {
    char *key;
    uint8_t *payload; /* value type (i32) followed by the value, already little-endian */
    size_t payload_size;
};

struct writer_tensor {
    char name[WRITER_MAX_NAME];
    int n_dims;
    int64_t ne[4];
    int type;
    const void *data; /* NULL = zeros */
    void *owned;
    size_t nbytes;
};

struct rwkv7_gguf_writer {
    struct writer_kv *kvs;
    size_t n_kv, cap_kv;
    struct writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
};

enum rwkv7_status rwkv7_gguf_writer_init(struct rwkv7_gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? RWKV7_OK : rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory for a writer");
}

void rwkv7_gguf_writer_free(struct rwkv7_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].payload);
    }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].owned);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* ---- little-endian payload building ---- */

struct bytes {
    uint8_t *p;
    size_t n, cap;
    bool oom;
};

static void b_put(struct bytes *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void le_u32(uint8_t o[4], uint32_t v) {
    for (int i = 0; i < 4; i++) o[i] = (uint8_t)(v >> (8 * i));
}
static void le_u64(uint8_t o[8], uint64_t v) {
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)(v >> (8 * i));
}
static void b_u32(struct bytes *b, uint32_t v) {
    uint8_t o[4];
    le_u32(o, v);
    b_put(b, o, 4);
}
static void b_u64(struct bytes *b, uint64_t v) {
    uint8_t o[8];
    le_u64(o, v);
    b_put(b, o, 8);
}
static void b_str(struct bytes *b, const char *s, size_t n) {
    b_u64(b, n);
    b_put(b, s, n);
}

/* ---- KV records ---- */

static enum rwkv7_status check_key(const struct rwkv7_gguf_writer *w, const char *key) {
    if (!w || !key || !key[0])
        return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer key is NULL or empty");
    /* a linear scan: writers hold a few dozen keys */
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0)
            return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer key '%s' added twice", key);
    return RWKV7_OK;
}

/* Takes ownership of b's buffer. */
static enum rwkv7_status push_kv(struct rwkv7_gguf_writer *w, const char *key, struct bytes *b) {
    if (b->oom) {
        free(b->p);
        return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory for writer key '%s'", key);
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        struct writer_kv *kvs = realloc(w->kvs, cap * sizeof *kvs);
        if (!kvs) {
            free(b->p);
            return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory for writer key '%s'", key);
        }
        w->kvs = kvs;
        w->cap_kv = cap;
    }
    size_t klen = strlen(key);
    char *k = malloc(klen + 1);
    if (!k) {
        free(b->p);
        return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory for writer key '%s'", key);
    }
    memcpy(k, key, klen + 1);
    w->kvs[w->n_kv].key = k;
    w->kvs[w->n_kv].payload = b->p;
    w->kvs[w->n_kv].payload_size = b->n;
    w->n_kv++;
    return RWKV7_OK;
}

static enum rwkv7_status add_scalar(struct rwkv7_gguf_writer *w, const char *key,
                                    enum rwkv7_gguf_type t, uint64_t bits, size_t size) {
    RWKV7_TRY(check_key(w, key));
    struct bytes b = {0};
    uint8_t o[8];
    b_u32(&b, (uint32_t)t);
    le_u64(o, bits);
    b_put(&b, o, size);
    return push_kv(w, key, &b);
}

enum rwkv7_status rwkv7_gguf_writer_add_u32(struct rwkv7_gguf_writer *w, const char *key, uint32_t v) {
    return add_scalar(w, key, RWKV7_GGUF_U32, v, 4);
}

enum rwkv7_status rwkv7_gguf_writer_add_i32(struct rwkv7_gguf_writer *w, const char *key, int32_t v) {
    return add_scalar(w, key, RWKV7_GGUF_I32, (uint32_t)v, 4);
}

enum rwkv7_status rwkv7_gguf_writer_add_u64(struct rwkv7_gguf_writer *w, const char *key, uint64_t v) {
    return add_scalar(w, key, RWKV7_GGUF_U64, v, 8);
}

enum rwkv7_status rwkv7_gguf_writer_add_f32(struct rwkv7_gguf_writer *w, const char *key, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return add_scalar(w, key, RWKV7_GGUF_F32, u, 4);
}

enum rwkv7_status rwkv7_gguf_writer_add_bool(struct rwkv7_gguf_writer *w, const char *key, bool v) {
    return add_scalar(w, key, RWKV7_GGUF_BOOL, v ? 1 : 0, 1);
}

enum rwkv7_status rwkv7_gguf_writer_add_str(struct rwkv7_gguf_writer *w, const char *key, const char *s) {
    RWKV7_TRY(check_key(w, key));
    if (!s) return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer key '%s' given a NULL string", key);
    struct bytes b = {0};
    b_u32(&b, RWKV7_GGUF_STRING);
    b_str(&b, s, strlen(s));
    return push_kv(w, key, &b);
}

enum rwkv7_status rwkv7_gguf_writer_add_str_arr(struct rwkv7_gguf_writer *w, const char *key,
                                                const char *const *strs, const size_t *lens, size_t n) {
    RWKV7_TRY(check_key(w, key));
    if (n && !strs) return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer key '%s' given NULL strings", key);
    struct bytes b = {0};
    b_u32(&b, RWKV7_GGUF_ARRAY);
    b_u32(&b, RWKV7_GGUF_STRING);
    b_u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        if (!strs[i] && (!lens || lens[i])) {
            free(b.p);
            return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer key '%s' string %zu is NULL", key, i);
        }
        size_t len = lens ? lens[i] : strlen(strs[i]);
        b_str(&b, len ? strs[i] : "", len);
    }
    return push_kv(w, key, &b);
}

static enum rwkv7_status add_u32_arr(struct rwkv7_gguf_writer *w, const char *key,
                                     enum rwkv7_gguf_type t, const void *v, size_t n) {
    RWKV7_TRY(check_key(w, key));
    if (n && !v) return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer key '%s' given a NULL array", key);
    struct bytes b = {0};
    b_u32(&b, RWKV7_GGUF_ARRAY);
    b_u32(&b, (uint32_t)t);
    b_u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, (const uint8_t *)v + 4 * i, 4);
        b_u32(&b, u);
    }
    return push_kv(w, key, &b);
}

enum rwkv7_status rwkv7_gguf_writer_add_i32_arr(struct rwkv7_gguf_writer *w, const char *key,
                                                const int32_t *v, size_t n) {
    return add_u32_arr(w, key, RWKV7_GGUF_I32, v, n);
}

enum rwkv7_status rwkv7_gguf_writer_add_f32_arr(struct rwkv7_gguf_writer *w, const char *key,
                                                const float *v, size_t n) {
    return add_u32_arr(w, key, RWKV7_GGUF_F32, v, n);
}

static const unsigned k_scalar_size[RWKV7_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

enum rwkv7_status rwkv7_gguf_writer_copy_kv(struct rwkv7_gguf_writer *w, const struct rwkv7_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= rwkv7_gguf_n_kv(g)) return rwkv7_fail(RWKV7_ERR_ARG, "gguf: copy_kv index %lld out of range", (long long)i);
    const struct rwkv7_gguf_str k = rwkv7_gguf_kv_key(g, i);
    char key[256];
    if (k.len >= sizeof key) return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "gguf: key of %llu bytes is too long to copy", (unsigned long long)k.len);
    memcpy(key, k.ptr, (size_t)k.len);
    key[k.len] = 0;
    RWKV7_TRY(check_key(w, key));
    const enum rwkv7_gguf_type t = rwkv7_gguf_kv_type(g, i);
    struct bytes b = {0};
    b_u32(&b, (uint32_t)t);
    if (t == RWKV7_GGUF_STRING) {
        struct rwkv7_gguf_str s;
        RWKV7_TRY(rwkv7_gguf_get_str(g, key, &s));
        b_str(&b, s.len ? s.ptr : "", (size_t)s.len);
    } else if (t == RWKV7_GGUF_ARRAY) {
        const enum rwkv7_gguf_type et = rwkv7_gguf_kv_arr_type(g, i);
        const uint64_t n = rwkv7_gguf_kv_arr_n(g, i);
        b_u32(&b, (uint32_t)et);
        b_u64(&b, n);
        if (et == RWKV7_GGUF_STRING) {
            for (uint64_t j = 0; j < n; j++) {
                const struct rwkv7_gguf_str s = rwkv7_gguf_kv_arr_str(g, i, j);
                b_str(&b, s.len ? s.ptr : "", (size_t)s.len);
            }
        } else {
            if (n) b_put(&b, rwkv7_gguf_kv_arr_data(g, i), (size_t)n * k_scalar_size[et]);
        }
    } else {
        b_put(&b, rwkv7_gguf_kv_scalar(g, i), k_scalar_size[t]);
    }
    return push_kv(w, key, &b);
}

/* ---- tensors ---- */

static enum rwkv7_status add_tensor(struct rwkv7_gguf_writer *w, const char *name, int n_dims,
                                    const int64_t ne[4], int type, const void *data, size_t nbytes,
                                    bool copy) {
    if (!w || !name || !ne) return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer add_tensor given NULL");
    size_t len = strlen(name);
    if (len == 0 || len >= WRITER_MAX_NAME)
        return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer tensor name '%s' length %zu outside 1..%d",
                          name, len, WRITER_MAX_NAME - 1);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer tensor '%s' added twice", name);
    if (n_dims < 1 || n_dims > 4)
        return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer tensor '%s' n_dims %d outside 1..4", name, n_dims);
    if (!rwkv7_dtype_is_weight(type))
        return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer tensor '%s' type %d cannot hold weights", name,
                          type);
    uint64_t rows = 1;
    for (int d = 1; d < n_dims; d++) {
        if (ne[d] < 1 || rows > UINT64_MAX / (uint64_t)ne[d])
            return rwkv7_fail(RWKV7_ERR_ARG, "gguf: writer tensor '%s' ne[%d] = %lld invalid", name, d,
                              (long long)ne[d]);
        rows *= (uint64_t)ne[d];
    }
    size_t row = ne[0] >= 1 ? rwkv7_dtype_row_bytes(type, ne[0]) : 0;
    if (row == 0 || rows > SIZE_MAX / row || row * rows != nbytes)
        return rwkv7_fail(RWKV7_ERR_ARG,
                          "gguf: writer tensor '%s' given %zu bytes, shape needs %zu x %llu (type %s)",
                          name, nbytes, row, (unsigned long long)rows, rwkv7_dtype_name(type));
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 16;
        struct writer_tensor *ts = realloc(w->tensors, cap * sizeof *ts);
        if (!ts) return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory for writer tensor '%s'", name);
        w->tensors = ts;
        w->cap_tensors = cap;
    }
    struct writer_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, len + 1);
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->type = type;
    t->nbytes = nbytes;
    t->data = data;
    if (copy && data) {
        t->owned = malloc(nbytes);
        if (!t->owned)
            return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory copying %zu bytes of tensor '%s'",
                              nbytes, name);
        memcpy(t->owned, data, nbytes);
        t->data = t->owned;
    }
    w->n_tensors++;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_gguf_writer_add_tensor(struct rwkv7_gguf_writer *w, const char *name,
                                               int n_dims, const int64_t ne[4], int type,
                                               const void *data, size_t nbytes) {
    return add_tensor(w, name, n_dims, ne, type, data, nbytes, true);
}

enum rwkv7_status rwkv7_gguf_writer_add_tensor_ref(struct rwkv7_gguf_writer *w, const char *name,
                                                   int n_dims, const int64_t ne[4], int type,
                                                   const void *data, size_t nbytes) {
    return add_tensor(w, name, n_dims, ne, type, data, nbytes, false);
}

/* ---- emission ---- */

struct emitter {
    uint8_t *mem; /* target image, or NULL */
    FILE *f;      /* target file, or NULL */
    uint64_t pos;
    bool err;
};

static void emit(struct emitter *e, const void *p, size_t n) {
    if (e->mem) memcpy(e->mem + e->pos, p, n);
    if (e->f && !e->err && n && fwrite(p, 1, n, e->f) != n) e->err = true;
    e->pos += n;
}

static void emit_zeros(struct emitter *e, uint64_t n) {
    static const uint8_t zeros[4096];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        emit(e, zeros, k);
        n -= k;
    }
}

static void emit_u32(struct emitter *e, uint32_t v) {
    uint8_t o[4];
    le_u32(o, v);
    emit(e, o, 4);
}

static void emit_u64(struct emitter *e, uint64_t v) {
    uint8_t o[8];
    le_u64(o, v);
    emit(e, o, 8);
}

static uint64_t pad_to(uint64_t n) { return (n + WRITER_ALIGNMENT - 1) / WRITER_ALIGNMENT * WRITER_ALIGNMENT; }

static void emit_all(const struct rwkv7_gguf_writer *w, struct emitter *e) {
    emit(e, "GGUF", 4);
    emit_u32(e, 3);
    emit_u64(e, w->n_tensors);
    emit_u64(e, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        size_t klen = strlen(w->kvs[i].key);
        emit_u64(e, klen);
        emit(e, w->kvs[i].key, klen);
        emit(e, w->kvs[i].payload, w->kvs[i].payload_size);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct writer_tensor *t = &w->tensors[i];
        size_t nlen = strlen(t->name);
        emit_u64(e, nlen);
        emit(e, t->name, nlen);
        emit_u32(e, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) emit_u64(e, (uint64_t)t->ne[d]);
        emit_u32(e, (uint32_t)t->type);
        emit_u64(e, offset);
        offset += pad_to(t->nbytes);
    }
    emit_zeros(e, pad_to(e->pos) - e->pos);
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct writer_tensor *t = &w->tensors[i];
        if (t->data)
            emit(e, t->data, t->nbytes);
        else
            emit_zeros(e, t->nbytes);
        emit_zeros(e, pad_to(t->nbytes) - t->nbytes);
    }
}

uint64_t rwkv7_gguf_writer_size(const struct rwkv7_gguf_writer *w) {
    struct emitter e = {0};
    emit_all(w, &e);
    return e.pos;
}

enum rwkv7_status rwkv7_gguf_writer_write_memory(const struct rwkv7_gguf_writer *w, void **data,
                                                 size_t *size) {
    *data = NULL;
    *size = 0;
    uint64_t n = rwkv7_gguf_writer_size(w);
    if (n > SIZE_MAX) return rwkv7_fail(RWKV7_ERR_OOM, "gguf: image of %llu bytes too large", (unsigned long long)n);
    struct emitter e = {0};
    e.mem = malloc((size_t)n);
    if (!e.mem)
        return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory for a %llu-byte image", (unsigned long long)n);
    emit_all(w, &e);
    *data = e.mem;
    *size = (size_t)n;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_gguf_writer_write_file(const struct rwkv7_gguf_writer *w, const char *path) {
    if (!w || !path) return rwkv7_fail(RWKV7_ERR_ARG, "gguf: write_file given NULL");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory writing '%s'", path);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    struct emitter e = {0};
    e.f = fopen(tmp, "wb");
    if (!e.f) {
        int err = errno;
        free(tmp);
        return rwkv7_fail(RWKV7_ERR_IO, "gguf: cannot write '%s': %s", path, strerror(err));
    }
    errno = 0;
    emit_all(w, &e);
    int err = 0;
    /* fsync before rename: otherwise a crash can leave a renamed but empty file */
    if (e.err || fflush(e.f) != 0 || fsync(fileno(e.f)) != 0) err = errno ? errno : EIO;
    if (fclose(e.f) != 0 && !err) err = errno ? errno : EIO;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        remove(tmp);
        free(tmp);
        return rwkv7_fail(RWKV7_ERR_IO, "gguf: cannot write '%s': %s", path, strerror(err));
    }
    free(tmp);
    return RWKV7_OK;
}
