/* gguf.c: the GGUF v2/v3 reader declared in gguf.h. Parses the header, key/value records and
 * tensor infos of a read-only mapping (or a caller-owned block) and applies every check of
 * docs/spec/quant-formats.md section 1.10 before returning, so the accessors never need to
 * validate again. Layout and limits follow section 1 (the llama.cpp gguf.cpp container). */
#define _POSIX_C_SOURCE 200809L

#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"
#include "status.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as little-endian u32 */
#define GGUF_HEADER_BYTES 24u
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_ALIGNMENT (1u << 20)
#define GGUF_MAX_STRING ((uint64_t)1 << 30)
#define GGUF_MAX_ARRAY ((uint64_t)1 << 30)
#define GGUF_MAX_NAME 64
/* Smallest possible records, used to bound counts before anything is allocated:
 * key = u64 len + 1 byte, i32 type, 1-byte payload; tensor info = u64 len, u32 n_dims, i32 type,
 * u64 offset (an empty name and zero dims are the smallest encodings, even though we reject them
 * later). */
#define GGUF_MIN_KV_BYTES 14u
#define GGUF_MIN_TENSOR_BYTES 24u

struct rwkv7_gguf_kv {
    struct rwkv7_gguf_str key;
    enum rwkv7_gguf_type type;
    enum rwkv7_gguf_type arr_type; /* RWKV7_GGUF_TYPE_COUNT unless type is ARRAY */
    uint64_t arr_n;
    const uint8_t *val;            /* scalar payload, or the first array element */
    struct rwkv7_gguf_str str;     /* STRING value */
    struct rwkv7_gguf_str *strs;   /* per-element index of a string array (O(1) lookup) */
};

struct rwkv7_gguf {
    const uint8_t *base;
    size_t size;
    bool mapped;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    int64_t n_tensors;
    struct rwkv7_gguf_kv *kvs;
    struct rwkv7_gguf_tensor *tensors;
    /* open-addressing hash sets holding index + 1 (0 = empty); capacity is a power of two */
    int64_t *kv_set;
    int64_t *tensor_set;
    uint64_t kv_set_cap;
    uint64_t tensor_set_cap;
};

struct gguf_cursor {
    const uint8_t *p;
    size_t size;
    size_t pos;
};

static const char *const k_type_names[RWKV7_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const unsigned k_type_size[RWKV7_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static const char *type_name(int t) {
    return t >= 0 && t < RWKV7_GGUF_TYPE_COUNT ? k_type_names[t] : "unknown";
}

/* ---- little-endian loads (byte-wise, so alignment and host order never matter) ---- */

static uint16_t ld_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t ld_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t ld_u64(const uint8_t *p) { return ld_u32(p) | ((uint64_t)ld_u32(p + 4) << 32); }
static float ld_f32(const uint8_t *p) {
    uint32_t u = ld_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static double ld_f64(const uint8_t *p) {
    uint64_t u = ld_u64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

/* Escaped, truncated copy of a file string for messages: they must stay one printable line. */
static const char *quote(char *buf, size_t cap, const char *s, uint64_t len) {
    size_t o = 0;
    for (uint64_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= cap) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = 0;
    return buf;
}

/* ---- cursor reads; each names the field it was reading when the file ends ---- */

static enum rwkv7_status need(const struct gguf_cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: %s at offset %zu needs %" PRIu64 " bytes beyond file size %zu",
                          what, c->pos, n, c->size);
    return RWKV7_OK;
}

static enum rwkv7_status rd_u32(struct gguf_cursor *c, uint32_t *v, const char *what) {
    RWKV7_TRY(need(c, 4, what));
    *v = ld_u32(c->p + c->pos);
    c->pos += 4;
    return RWKV7_OK;
}

static enum rwkv7_status rd_u64(struct gguf_cursor *c, uint64_t *v, const char *what) {
    RWKV7_TRY(need(c, 8, what));
    *v = ld_u64(c->p + c->pos);
    c->pos += 8;
    return RWKV7_OK;
}

static enum rwkv7_status rd_str(struct gguf_cursor *c, struct rwkv7_gguf_str *s, const char *what) {
    uint64_t len = 0;
    RWKV7_TRY(rd_u64(c, &len, what));
    if (len > GGUF_MAX_STRING)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: %s length %" PRIu64 " at offset %zu exceeds the 1 GiB string limit",
                          what, len, c->pos - 8);
    if (len > c->size - c->pos)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: %s length %" PRIu64 " at offset %zu runs beyond file size %zu", what,
                          len, c->pos - 8, c->size);
    s->ptr = (const char *)(c->p + c->pos);
    s->len = len;
    c->pos += (size_t)len;
    return RWKV7_OK;
}

/* ---- hash sets over (ptr, len) names ---- */

static uint64_t hash_bytes(const char *s, uint64_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t set_cap_for(int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    return cap;
}

static struct rwkv7_gguf_str kv_name(const struct rwkv7_gguf *g, int64_t i) { return g->kvs[i].key; }
static struct rwkv7_gguf_str tensor_name(const struct rwkv7_gguf *g, int64_t i) {
    struct rwkv7_gguf_str s = {g->tensors[i].name, strlen(g->tensors[i].name)};
    return s;
}

/* Index of the entry named (s, len), or -1; *slot receives the empty slot it would occupy. */
static int64_t set_find(const struct rwkv7_gguf *g, const int64_t *set, uint64_t cap,
                        struct rwkv7_gguf_str (*name_of)(const struct rwkv7_gguf *, int64_t),
                        const char *s, uint64_t len, uint64_t *slot) {
    uint64_t h = hash_bytes(s, len) & (cap - 1);
    for (;;) {
        int64_t e = set[h];
        if (e == 0) {
            if (slot) *slot = h;
            return -1;
        }
        struct rwkv7_gguf_str n = name_of(g, e - 1);
        if (n.len == len && memcmp(n.ptr, s, (size_t)len) == 0) return e - 1;
        h = (h + 1) & (cap - 1);
    }
}

/* ---- key/value records ---- */

static enum rwkv7_status check_alignment(struct rwkv7_gguf *g, const struct rwkv7_gguf_kv *kv) {
    if (kv->type != RWKV7_GGUF_U32)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key 'general.alignment' has type %s, expected u32",
                          type_name(kv->type));
    uint32_t a = ld_u32(kv->val);
    if (a == 0 || (a & (a - 1)) != 0)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: general.alignment %" PRIu32 " is not a nonzero power of two", a);
    if (a > GGUF_MAX_ALIGNMENT)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: general.alignment %" PRIu32 " exceeds 1 MiB", a);
    g->alignment = a;
    return RWKV7_OK;
}

static enum rwkv7_status parse_array(struct gguf_cursor *c, struct rwkv7_gguf_kv *kv,
                                     const char *qk) {
    uint32_t et = 0;
    uint64_t n = 0;
    RWKV7_TRY(rd_u32(c, &et, "array element type"));
    if ((int32_t)et == RWKV7_GGUF_ARRAY)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' is an array of arrays (nested arrays are not allowed)", qk);
    if (et >= RWKV7_GGUF_TYPE_COUNT)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' array has unknown element type %" PRId32,
                          qk, (int32_t)et);
    RWKV7_TRY(rd_u64(c, &n, "array count"));
    if (n > GGUF_MAX_ARRAY)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: key '%s' array count %" PRIu64 " exceeds the limit %" PRIu64, qk, n,
                          GGUF_MAX_ARRAY);
    kv->arr_type = (enum rwkv7_gguf_type)et;
    kv->arr_n = n;
    size_t left = c->size - c->pos;
    /* a string element takes at least its 8-byte length */
    uint64_t esize = et == RWKV7_GGUF_STRING ? 8 : k_type_size[et], total;
    if (!mul_u64(n, esize, &total) || total > left)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: key '%s' array of %" PRIu64 " %s elements at offset %zu runs beyond file size %zu",
                          qk, n, type_name((int)et), c->pos, c->size);
    kv->val = c->p + c->pos;
    if (et != RWKV7_GGUF_STRING) {
        c->pos += (size_t)total;
        return RWKV7_OK;
    }
    kv->strs = malloc(n ? (size_t)n * sizeof *kv->strs : 1);
    if (!kv->strs)
        return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory indexing %" PRIu64 " strings of key '%s'",
                          n, qk);
    char what[128];
    snprintf(what, sizeof what, "key '%s' string element", qk);
    for (uint64_t j = 0; j < n; j++) RWKV7_TRY(rd_str(c, &kv->strs[j], what));
    return RWKV7_OK;
}

static enum rwkv7_status parse_kvs(struct rwkv7_gguf *g, struct gguf_cursor *c) {
    char qk[96];
    for (int64_t i = 0; i < g->n_kv; i++) {
        struct rwkv7_gguf_kv *kv = &g->kvs[i];
        kv->arr_type = RWKV7_GGUF_TYPE_COUNT;
        RWKV7_TRY(rd_str(c, &kv->key, "key"));
        if (kv->key.len == 0)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key #%" PRId64 " at offset %zu is empty", i,
                              c->pos - 8);
        quote(qk, sizeof qk, kv->key.ptr, kv->key.len);
        if (memchr(kv->key.ptr, 0, (size_t)kv->key.len))
            return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' contains a NUL byte", qk);
        uint64_t slot = 0;
        int64_t prev = set_find(g, g->kv_set, g->kv_set_cap, kv_name, kv->key.ptr, kv->key.len, &slot);
        if (prev >= 0)
            return rwkv7_fail(RWKV7_ERR_FORMAT,
                              "gguf: duplicate key '%s' (records #%" PRId64 " and #%" PRId64 ")", qk,
                              prev, i);
        g->kv_set[slot] = i + 1;

        uint32_t t = 0;
        RWKV7_TRY(rd_u32(c, &t, "value type"));
        if (t >= RWKV7_GGUF_TYPE_COUNT)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' has unknown value type %" PRId32, qk,
                              (int32_t)t);
        kv->type = (enum rwkv7_gguf_type)t;
        if (t == RWKV7_GGUF_ARRAY) {
            RWKV7_TRY(parse_array(c, kv, qk));
        } else if (t == RWKV7_GGUF_STRING) {
            RWKV7_TRY(rd_str(c, &kv->str, "string value"));
        } else {
            RWKV7_TRY(need(c, k_type_size[t], "value"));
            kv->val = c->p + c->pos;
            c->pos += k_type_size[t];
        }
        if (kv->key.len == 17 && memcmp(kv->key.ptr, "general.alignment", 17) == 0)
            RWKV7_TRY(check_alignment(g, kv));
    }
    return RWKV7_OK;
}

/* ---- tensor infos ---- */

static enum rwkv7_status parse_tensor(struct rwkv7_gguf *g, struct gguf_cursor *c, int64_t i) {
    struct rwkv7_gguf_tensor *t = &g->tensors[i];
    struct rwkv7_gguf_str name;
    char qn[96];
    RWKV7_TRY(rd_str(c, &name, "tensor name"));
    quote(qn, sizeof qn, name.ptr, name.len);
    if (name.len >= GGUF_MAX_NAME)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: tensor #%" PRId64 " name '%s' is %" PRIu64 " bytes, limit is %d", i,
                          qn, name.len, GGUF_MAX_NAME - 1);
    if (memchr(name.ptr, 0, (size_t)name.len))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: tensor #%" PRId64 " name '%s' contains a NUL byte",
                          i, qn);
    memcpy(t->name, name.ptr, (size_t)name.len);
    t->name[name.len] = 0;
    uint64_t slot = 0;
    int64_t prev = set_find(g, g->tensor_set, g->tensor_set_cap, tensor_name, name.ptr, name.len, &slot);
    if (prev >= 0)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: duplicate tensor name '%s' (infos #%" PRId64 " and #%" PRId64 ")", qn,
                          prev, i);
    g->tensor_set[slot] = i + 1;

    uint32_t n_dims = 0;
    RWKV7_TRY(rd_u32(c, &n_dims, "tensor n_dims"));
    if (n_dims < 1 || n_dims > 4)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: tensor '%s' n_dims %" PRIu32 " outside 1..4", qn,
                          n_dims);
    t->n_dims = (int)n_dims;
    uint64_t nelem = 1;
    for (int d = 0; d < 4; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims) continue;
        uint64_t v = 0;
        RWKV7_TRY(rd_u64(c, &v, "tensor ne"));
        if ((int64_t)v < 1)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: tensor '%s' ne[%d] = %" PRId64 ", expected >= 1",
                              qn, d, (int64_t)v);
        t->ne[d] = (int64_t)v;
        if (!mul_u64(nelem, v, &nelem) || nelem > (uint64_t)INT64_MAX)
            return rwkv7_fail(RWKV7_ERR_FORMAT,
                              "gguf: tensor '%s' element count overflows int64 at ne[%d] = %" PRId64,
                              qn, d, t->ne[d]);
    }

    uint32_t type = 0;
    RWKV7_TRY(rd_u32(c, &type, "tensor type"));
    t->type = (int32_t)type;
    if (t->type < 0 || t->type >= RWKV7_DTYPE_COUNT)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: tensor '%s' has unknown type %d (known: 0..%d)", qn,
                          t->type, RWKV7_DTYPE_COUNT - 1);
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(t->type);
    if (!info || info->block <= 0)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: tensor '%s' has removed type %d", qn, t->type);
    if (!rwkv7_dtype_is_weight(t->type))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: tensor '%s' has type %s (%d), which cannot hold weights",
                          qn, info->name, t->type);
    if (t->ne[0] % info->block != 0)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: tensor '%s' ne[0] = %" PRId64 " is not a multiple of the %s block size %d",
                          qn, t->ne[0], info->name, info->block);
    uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]), row_bytes, nbytes;
    if (!mul_u64((uint64_t)(t->ne[0] / info->block), (uint64_t)info->type_size, &row_bytes) ||
        !mul_u64(row_bytes, rows, &nbytes) || nbytes > SIZE_MAX)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: tensor '%s' byte size overflows (ne = %" PRId64
                          " x %" PRId64 " x %" PRId64 " x %" PRId64 ", type %s)",
                          qn, t->ne[0], t->ne[1], t->ne[2], t->ne[3], info->name);
    t->nbytes = nbytes;
    RWKV7_TRY(rd_u64(c, &t->offset, "tensor offset"));
    return RWKV7_OK;
}

/* Offsets must be exactly the running padded sum in info order, as gguf.cpp demands; together
 * with the range check this rules out overlap, gaps and misalignment. */
static enum rwkv7_status check_layout(struct rwkv7_gguf *g) {
    uint64_t expect = 0, a = g->alignment;
    uint64_t avail = g->size - g->data_offset;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        struct rwkv7_gguf_tensor *t = &g->tensors[i];
        if (t->offset != expect) {
            const char *why = t->offset % a ? "is misaligned" :
                              t->offset < expect ? "overlaps the previous tensor" : "leaves a gap";
            return rwkv7_fail(RWKV7_ERR_FORMAT,
                              "gguf: tensor '%s' offset %" PRIu64 " %s (expected %" PRIu64
                              ", alignment %" PRIu64 ")",
                              t->name, t->offset, why, expect, a);
        }
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            uint64_t end = g->data_offset + t->offset, e2;
            e2 = end + t->nbytes < end ? UINT64_MAX : end + t->nbytes;
            return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: tensor '%s' data ends at %" PRIu64
                              " beyond file size %zu", t->name, e2, g->size);
        }
        t->data = g->base + g->data_offset + t->offset;
        /* nbytes <= avail < 2^63 here, so the padded sum cannot overflow */
        expect += (t->nbytes + a - 1) / a * a;
    }
    return RWKV7_OK;
}

static enum rwkv7_status parse(struct rwkv7_gguf *g) {
    struct gguf_cursor c = {g->base, g->size, 0};
    if (g->size < 4)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: file size %zu too small for the magic", g->size);
    uint32_t magic = ld_u32(g->base);
    if (magic != GGUF_MAGIC)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: bad magic 0x%08" PRIx32 ", expected 0x%08x (\"GGUF\")",
                          magic, GGUF_MAGIC);
    if (g->size < GGUF_HEADER_BYTES)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: file size %zu smaller than the %u-byte header",
                          g->size, GGUF_HEADER_BYTES);
    c.pos = 4;
    uint32_t v = 0;
    RWKV7_TRY(rd_u32(&c, &v, "version"));
    if (v == 0 || v == 1 || (v > 3 && (v & 0xFFFFu) != 0))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: version %" PRIu32 " unsupported (expected 2 or 3)", v);
    if ((v & 0xFFFFu) == 0)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: version 0x%08" PRIx32 " looks byte-swapped (big-endian file); only little-endian is supported",
                          v);
    g->version = v;
    uint64_t nt = 0, nk = 0;
    RWKV7_TRY(rd_u64(&c, &nt, "n_tensors"));
    RWKV7_TRY(rd_u64(&c, &nk, "n_kv"));
    size_t left = c.size - c.pos;
    if ((int64_t)nt < 0 || nt > left / GGUF_MIN_TENSOR_BYTES)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: n_tensors %" PRId64 " impossible for the %zu bytes after the header (>= %u bytes each)",
                          (int64_t)nt, left, GGUF_MIN_TENSOR_BYTES);
    if ((int64_t)nk < 0 || nk > left / GGUF_MIN_KV_BYTES)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: n_kv %" PRId64 " impossible for the %zu bytes after the header (>= %u bytes each)",
                          (int64_t)nk, left, GGUF_MIN_KV_BYTES);
    g->n_kv = (int64_t)nk;
    g->n_tensors = (int64_t)nt;

    g->kv_set_cap = set_cap_for(g->n_kv);
    g->kvs = calloc(nk ? (size_t)nk : 1, sizeof *g->kvs);
    g->kv_set = calloc((size_t)g->kv_set_cap, sizeof *g->kv_set);
    if (!g->kvs || !g->kv_set)
        return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory for %" PRIu64 " key/value records", nk);
    RWKV7_TRY(parse_kvs(g, &c));

    left = c.size - c.pos;
    if (nt > left / GGUF_MIN_TENSOR_BYTES)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: n_tensors %" PRIu64 " impossible for the %zu bytes after the key/values at offset %zu",
                          nt, left, c.pos);
    g->tensor_set_cap = set_cap_for(g->n_tensors);
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    g->tensor_set = calloc((size_t)g->tensor_set_cap, sizeof *g->tensor_set);
    if (!g->tensors || !g->tensor_set)
        return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory for %" PRIu64 " tensor infos", nt);
    for (int64_t i = 0; i < g->n_tensors; i++) RWKV7_TRY(parse_tensor(g, &c, i));

    uint64_t a = g->alignment;
    g->data_offset = ((uint64_t)c.pos + a - 1) / a * a;
    if (g->n_tensors == 0) return RWKV7_OK; /* nothing lives in the data blob */
    if (g->data_offset > g->size)
        return rwkv7_fail(RWKV7_ERR_FORMAT,
                          "gguf: data start %" PRIu64 " (tensor infos end at %zu) beyond file size %zu",
                          g->data_offset, c.pos, g->size);
    return check_layout(g);
}

static enum rwkv7_status open_common(struct rwkv7_gguf *g, struct rwkv7_gguf **out) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    enum rwkv7_status st = parse(g);
    if (st != RWKV7_OK) {
        rwkv7_gguf_free(g);
        return st;
    }
    *out = g;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_gguf_open_memory(const void *data, size_t size, struct rwkv7_gguf **out) {
    if (!out) return rwkv7_fail(RWKV7_ERR_ARG, "gguf: open_memory called without an output pointer");
    *out = NULL;
    if (!data && size)
        return rwkv7_fail(RWKV7_ERR_ARG, "gguf: open_memory given NULL data of size %zu", size);
    struct rwkv7_gguf *g = calloc(1, sizeof *g);
    if (!g) return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory");
    g->base = data;
    g->size = data ? size : 0;
    return open_common(g, out);
}

enum rwkv7_status rwkv7_gguf_open(const char *path, struct rwkv7_gguf **out) {
    if (!out || !path) return rwkv7_fail(RWKV7_ERR_ARG, "gguf: open called with a NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rwkv7_fail(RWKV7_ERR_IO, "gguf: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return rwkv7_fail(RWKV7_ERR_IO, "gguf: cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return rwkv7_fail(RWKV7_ERR_IO, "gguf: cannot open '%s': not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) { /* mmap refuses length 0; an empty file then fails the magic check */
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            /* No address space or memory (ulimit -v) is a runtime failure, not a bad file. */
            return rwkv7_fail(e == ENOMEM ? RWKV7_ERR_OOM : RWKV7_ERR_IO, "gguf: cannot map '%s' (%zu bytes): %s", path,
                              size, strerror(e));
        }
    }
    close(fd); /* the mapping keeps the file alive */
    struct rwkv7_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (map) munmap(map, size);
        return rwkv7_fail(RWKV7_ERR_OOM, "gguf: out of memory");
    }
    g->base = map;
    g->size = size;
    g->mapped = map != NULL;
    enum rwkv7_status s = open_common(g, out);
    if (s == RWKV7_ERR_FORMAT) {
        /* name the file too: the loader may open several */
        char msg[900];
        snprintf(msg, sizeof msg, "%s", rwkv7_last_error());
        rwkv7_fail(s, "%s (in '%s')", msg, path);
    }
    return s;
}

void rwkv7_gguf_free(struct rwkv7_gguf *g) {
    if (!g) return;
    if (g->kvs)
        for (int64_t i = 0; i < g->n_kv; i++) free(g->kvs[i].strs);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_set);
    free(g->tensor_set);
    if (g->mapped) munmap((void *)g->base, g->size);
    free(g);
}

uint32_t rwkv7_gguf_version(const struct rwkv7_gguf *g) { return g->version; }
uint32_t rwkv7_gguf_alignment(const struct rwkv7_gguf *g) { return g->alignment; }
uint64_t rwkv7_gguf_file_size(const struct rwkv7_gguf *g) { return g->size; }
uint64_t rwkv7_gguf_data_offset(const struct rwkv7_gguf *g) { return g->data_offset; }
const void *rwkv7_gguf_base(const struct rwkv7_gguf *g) { return g->base; }

/* ---- key/value accessors ---- */

static bool kv_ok(const struct rwkv7_gguf *g, int64_t i) { return i >= 0 && i < g->n_kv; }

int64_t rwkv7_gguf_n_kv(const struct rwkv7_gguf *g) { return g->n_kv; }

int64_t rwkv7_gguf_find_kv(const struct rwkv7_gguf *g, const char *key) {
    if (!key) return -1;
    return set_find(g, g->kv_set, g->kv_set_cap, kv_name, key, strlen(key), NULL);
}

struct rwkv7_gguf_str rwkv7_gguf_kv_key(const struct rwkv7_gguf *g, int64_t i) {
    struct rwkv7_gguf_str none = {"", 0};
    return kv_ok(g, i) ? g->kvs[i].key : none;
}

enum rwkv7_gguf_type rwkv7_gguf_kv_type(const struct rwkv7_gguf *g, int64_t i) {
    return kv_ok(g, i) ? g->kvs[i].type : RWKV7_GGUF_TYPE_COUNT;
}

enum rwkv7_gguf_type rwkv7_gguf_kv_arr_type(const struct rwkv7_gguf *g, int64_t i) {
    return kv_ok(g, i) ? g->kvs[i].arr_type : RWKV7_GGUF_TYPE_COUNT;
}

uint64_t rwkv7_gguf_kv_arr_n(const struct rwkv7_gguf *g, int64_t i) {
    return kv_ok(g, i) ? g->kvs[i].arr_n : 0;
}

const void *rwkv7_gguf_kv_arr_data(const struct rwkv7_gguf *g, int64_t i) {
    if (!kv_ok(g, i) || g->kvs[i].type != RWKV7_GGUF_ARRAY ||
        g->kvs[i].arr_type == RWKV7_GGUF_STRING)
        return NULL;
    return g->kvs[i].val;
}

const void *rwkv7_gguf_kv_scalar(const struct rwkv7_gguf *g, int64_t i) {
    if (!kv_ok(g, i) || g->kvs[i].type == RWKV7_GGUF_ARRAY || g->kvs[i].type == RWKV7_GGUF_STRING) return NULL;
    return g->kvs[i].val;
}

struct rwkv7_gguf_str rwkv7_gguf_kv_arr_str(const struct rwkv7_gguf *g, int64_t i, uint64_t j) {
    struct rwkv7_gguf_str none = {"", 0};
    if (!kv_ok(g, i) || !g->kvs[i].strs || j >= g->kvs[i].arr_n) return none;
    return g->kvs[i].strs[j];
}

/* Integer value of a scalar of any integer type; false for non-integers. Values are held as a
 * sign flag plus magnitude so both u64 and i64 fit. */
static bool kv_int(const struct rwkv7_gguf_kv *kv, bool *neg, uint64_t *mag) {
    const uint8_t *p = kv->val;
    int64_t s;
    *neg = false;
    switch (kv->type) {
    case RWKV7_GGUF_U8: *mag = p[0]; return true;
    case RWKV7_GGUF_U16: *mag = ld_u16(p); return true;
    case RWKV7_GGUF_U32: *mag = ld_u32(p); return true;
    case RWKV7_GGUF_U64: *mag = ld_u64(p); return true;
    case RWKV7_GGUF_I8: s = (int8_t)p[0]; break;
    case RWKV7_GGUF_I16: s = (int16_t)ld_u16(p); break;
    case RWKV7_GGUF_I32: s = (int32_t)ld_u32(p); break;
    case RWKV7_GGUF_I64: s = (int64_t)ld_u64(p); break;
    default: return false;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return true;
}

static enum rwkv7_status find_typed(const struct rwkv7_gguf *g, const char *key,
                                    const struct rwkv7_gguf_kv **out) {
    int64_t i = rwkv7_gguf_find_kv(g, key);
    if (i < 0) return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' is missing", key);
    *out = &g->kvs[i];
    return RWKV7_OK;
}

/* Any integer key as sign + magnitude, then range-checked against each getter's bounds:
 * one place for the lookup, the type check and the message. */
static enum rwkv7_status get_int(const struct rwkv7_gguf *g, const char *key, const char *want,
                                 uint64_t max_neg, uint64_t max_pos, bool *neg, uint64_t *mag) {
    const struct rwkv7_gguf_kv *kv = NULL;
    RWKV7_TRY(find_typed(g, key, &kv));
    if (!kv_int(kv, neg, mag))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' has type %s, expected an integer", key,
                          type_name(kv->type));
    if (*mag > (*neg ? max_neg : max_pos))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' value %s%" PRIu64 " does not fit in %s", key,
                          *neg ? "-" : "", *mag, want);
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_gguf_get_u32(const struct rwkv7_gguf *g, const char *key, uint32_t *out) {
    bool neg = false;
    uint64_t mag = 0;
    RWKV7_TRY(get_int(g, key, "u32", 0, UINT32_MAX, &neg, &mag));
    *out = (uint32_t)mag;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_gguf_get_u64(const struct rwkv7_gguf *g, const char *key, uint64_t *out) {
    bool neg = false;
    uint64_t mag = 0;
    RWKV7_TRY(get_int(g, key, "u64", 0, UINT64_MAX, &neg, &mag));
    *out = mag;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_gguf_get_i64(const struct rwkv7_gguf *g, const char *key, int64_t *out) {
    bool neg = false;
    uint64_t mag = 0;
    RWKV7_TRY(get_int(g, key, "i64", (uint64_t)INT64_MAX + 1, (uint64_t)INT64_MAX, &neg, &mag));
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_gguf_get_f32(const struct rwkv7_gguf *g, const char *key, float *out) {
    const struct rwkv7_gguf_kv *kv = NULL;
    RWKV7_TRY(find_typed(g, key, &kv));
    bool neg;
    uint64_t mag;
    if (kv->type == RWKV7_GGUF_F32)
        *out = ld_f32(kv->val);
    else if (kv->type == RWKV7_GGUF_F64)
        *out = (float)ld_f64(kv->val);
    else if (kv_int(kv, &neg, &mag))
        *out = neg ? -(float)mag : (float)mag;
    else
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' has type %s, expected f32", key,
                          type_name(kv->type));
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_gguf_get_str(const struct rwkv7_gguf *g, const char *key,
                                     struct rwkv7_gguf_str *out) {
    const struct rwkv7_gguf_kv *kv = NULL;
    RWKV7_TRY(find_typed(g, key, &kv));
    if (kv->type != RWKV7_GGUF_STRING)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "gguf: key '%s' has type %s, expected string", key,
                          type_name(kv->type));
    *out = kv->str;
    return RWKV7_OK;
}

/* ---- value formatting for `rwkv7 info` ---- */

struct fmt_buf {
    char *p;
    size_t cap;
    size_t n;
};

static void put(struct fmt_buf *b, const char *fmt, ...) RWKV7_PRINTF(2, 3);
static void put(struct fmt_buf *b, const char *fmt, ...) {
    if (b->n + 1 >= b->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (w > 0) b->n = b->n + (size_t)w < b->cap ? b->n + (size_t)w : b->cap - 1;
}

static void put_scalar(struct fmt_buf *b, enum rwkv7_gguf_type t, const uint8_t *p) {
    switch (t) {
    case RWKV7_GGUF_U8: put(b, "%u", p[0]); break;
    case RWKV7_GGUF_I8: put(b, "%d", (int8_t)p[0]); break;
    case RWKV7_GGUF_U16: put(b, "%u", ld_u16(p)); break;
    case RWKV7_GGUF_I16: put(b, "%d", (int16_t)ld_u16(p)); break;
    case RWKV7_GGUF_U32: put(b, "%" PRIu32, ld_u32(p)); break;
    case RWKV7_GGUF_I32: put(b, "%" PRId32, (int32_t)ld_u32(p)); break;
    case RWKV7_GGUF_U64: put(b, "%" PRIu64, ld_u64(p)); break;
    case RWKV7_GGUF_I64: put(b, "%" PRId64, (int64_t)ld_u64(p)); break;
    case RWKV7_GGUF_F32: put(b, "%g", (double)ld_f32(p)); break;
    case RWKV7_GGUF_F64: put(b, "%g", ld_f64(p)); break;
    case RWKV7_GGUF_BOOL: put(b, "%s", p[0] ? "true" : "false"); break;
    default: put(b, "?"); break;
    }
}

void rwkv7_gguf_kv_format(const struct rwkv7_gguf *g, int64_t i, char *buf, size_t cap) {
    if (!buf || cap == 0) return;
    buf[0] = 0;
    if (!kv_ok(g, i)) return;
    const struct rwkv7_gguf_kv *kv = &g->kvs[i];
    struct fmt_buf b = {buf, cap, 0};
    if (kv->type == RWKV7_GGUF_STRING) {
        char q[96];
        put(&b, "\"%s\"", quote(q, 64 + 8, kv->str.ptr, kv->str.len));
    } else if (kv->type != RWKV7_GGUF_ARRAY) {
        put_scalar(&b, kv->type, kv->val);
    } else if (kv->arr_type == RWKV7_GGUF_STRING) {
        put(&b, "[string x %" PRIu64 "]", kv->arr_n);
    } else {
        /* short arrays in full, long ones as a typed count plus a prefix */
        uint64_t n = kv->arr_n, shown = n <= 8 ? n : 6;
        put(&b, "[");
        if (n > 8) put(&b, "%s x %" PRIu64 ": ", type_name(kv->arr_type), n);
        for (uint64_t j = 0; j < shown; j++) {
            if (j) put(&b, ", ");
            put_scalar(&b, kv->arr_type, kv->val + j * k_type_size[kv->arr_type]);
        }
        put(&b, n > 8 ? ", ...]" : "]");
    }
}

/* ---- tensors ---- */

int64_t rwkv7_gguf_n_tensors(const struct rwkv7_gguf *g) { return g->n_tensors; }

const struct rwkv7_gguf_tensor *rwkv7_gguf_tensor(const struct rwkv7_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct rwkv7_gguf_tensor *rwkv7_gguf_find_tensor(const struct rwkv7_gguf *g, const char *name) {
    if (!name) return NULL;
    size_t len = strlen(name);
    if (len >= GGUF_MAX_NAME) return NULL;
    int64_t i = set_find(g, g->tensor_set, g->tensor_set_cap, tensor_name, name, len, NULL);
    return i >= 0 ? &g->tensors[i] : NULL;
}
