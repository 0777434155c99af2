/* test_gguf.c: the GGUF reader (runtime/gguf.c) and writer (runtime/gguf_write.c).
 * A writer round trip, every fixture model, and handcrafted malformed images covering the
 * checklist of docs/spec/quant-formats.md section 1.10: each must fail with
 * RWKV7_ERR_FORMAT and a message naming the problem, and truncating or corrupting a valid image
 * anywhere must never crash (run under ASan: every image sits in an exact-size allocation). */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "dtype.h"
#include "gguf.h"
#include "gguf_write.h"
#include "status.h"
#include "testing.h"

/* ---- a little-endian byte builder for handcrafted images ---- */

struct bb {
    uint8_t *p;
    size_t n, cap;
};

static void bb_raw(struct bb *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void bb_u32(struct bb *b, uint32_t v) {
    uint8_t o[4];
    for (int i = 0; i < 4; i++) o[i] = (uint8_t)(v >> (8 * i));
    bb_raw(b, o, 4);
}
static void bb_u64(struct bb *b, uint64_t v) {
    bb_u32(b, (uint32_t)v);
    bb_u32(b, (uint32_t)(v >> 32));
}
static void bb_strn(struct bb *b, const char *s, size_t n) {
    bb_u64(b, n);
    bb_raw(b, s, n);
}
static void bb_str(struct bb *b, const char *s) { bb_strn(b, s, strlen(s)); }
static void bb_zeros(struct bb *b, size_t n) {
    for (size_t i = 0; i < n; i++) bb_raw(b, "", 1);
}
static void bb_pad(struct bb *b, size_t a) { bb_zeros(b, (a - b->n % a) % a); }
static void bb_hdr(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bb_raw(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
static void bb_kv_u32(struct bb *b, const char *key, uint32_t v) {
    bb_str(b, key);
    bb_u32(b, RWKV7_GGUF_U32);
    bb_u32(b, v);
}
static void bb_kv_str(struct bb *b, const char *key, const char *s) {
    bb_str(b, key);
    bb_u32(b, RWKV7_GGUF_STRING);
    bb_str(b, s);
}

struct tspec {
    const char *name;
    size_t name_len; /* 0 = strlen(name) */
    uint32_t n_dims;
    int64_t ne[4];
    int32_t type;
    uint64_t offset;
};

static void bb_tinfo(struct bb *b, const struct tspec *t) {
    bb_strn(b, t->name, t->name_len ? t->name_len : strlen(t->name));
    bb_u32(b, t->n_dims);
    for (uint32_t d = 0; d < t->n_dims && d < 8; d++) bb_u64(b, d < 4 ? (uint64_t)t->ne[d] : 1);
    bb_u32(b, (uint32_t)t->type);
    bb_u64(b, t->offset);
}

/* A one-KV image with the given tensor infos followed by data_bytes of zeros after padding. */
static void bb_model(struct bb *b, const struct tspec *ts, int n, size_t data_bytes) {
    bb_hdr(b, 3, (uint64_t)n, 1);
    bb_kv_str(b, "general.architecture", "rwkv7");
    for (int i = 0; i < n; i++) bb_tinfo(b, &ts[i]);
    bb_pad(b, 32);
    bb_zeros(b, data_bytes);
}

/* The default tensor: 2 rows of 32 f32 = 256 bytes. */
static struct tspec t_default(void) {
    struct tspec t = {"w", 0, 2, {32, 2, 1, 1}, RWKV7_DTYPE_F32, 0};
    return t;
}

/* ---- expectations ---- */

/* Reads everything an accessor can reach, so ASan sees any pointer the reader got wrong. */
static unsigned touch_all(const struct rwkv7_gguf *g) {
    unsigned h = 0;
    char buf[96];
    for (int64_t i = 0; i < rwkv7_gguf_n_kv(g); i++) {
        struct rwkv7_gguf_str k = rwkv7_gguf_kv_key(g, i);
        for (uint64_t j = 0; j < k.len; j++) h += (unsigned char)k.ptr[j];
        rwkv7_gguf_kv_format(g, i, buf, sizeof buf);
        h += (unsigned)strlen(buf);
        uint64_t n = rwkv7_gguf_kv_arr_n(g, i);
        for (uint64_t j = 0; j < n && rwkv7_gguf_kv_arr_type(g, i) == RWKV7_GGUF_STRING; j++) {
            struct rwkv7_gguf_str s = rwkv7_gguf_kv_arr_str(g, i, j);
            if (s.len) h += (unsigned char)s.ptr[0] + (unsigned char)s.ptr[s.len - 1];
        }
        const uint8_t *raw = rwkv7_gguf_kv_arr_data(g, i);
        static const unsigned esize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        if (raw && n) h += raw[n * esize[rwkv7_gguf_kv_arr_type(g, i)] - 1];
    }
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(g); i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(g, i);
        h += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
        h += rwkv7_gguf_find_tensor(g, t->name) == t;
    }
    return h;
}

/* Opens a private exact-size copy so ASan flags any read past the end. */
static enum rwkv7_status open_copy(const void *data, size_t n) {
    void *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, data, n);
    struct rwkv7_gguf *g = (struct rwkv7_gguf *)1;
    enum rwkv7_status st = rwkv7_gguf_open_memory(n ? copy : NULL, n, &g);
    if (st == RWKV7_OK) {
        touch_all(g);
        rwkv7_gguf_free(g);
    } else {
        CHECK(g == NULL, "output handle not cleared on failure");
    }
    free(copy);
    return st;
}

static void expect_fail_raw(const char *what, const void *data, size_t n, const char *substr) {
    rwkv7_clear_error();
    enum rwkv7_status st = open_copy(data, n);
    const char *msg = rwkv7_last_error();
    if (getenv("TEST_GGUF_VERBOSE")) fprintf(stderr, "%-40s %s\n", what, msg);
    CHECK(st == RWKV7_ERR_FORMAT, "%s: status %d (%s), expected a format error", what, st,
          st ? msg : "accepted");
    if (st != RWKV7_OK) {
        CHECK(strstr(msg, substr) != NULL, "%s: message '%s' lacks '%s'", what, msg, substr);
        CHECK(strncmp(msg, "gguf: ", 6) == 0 && !strchr(msg, '\n'), "%s: message '%s' malformed",
              what, msg);
    }
}

static void expect_fail(const char *what, struct bb *b, const char *substr) {
    expect_fail_raw(what, b->p, b->n, substr);
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void expect_ok(const char *what, struct bb *b) {
    enum rwkv7_status st = open_copy(b->p, b->n);
    CHECK(st == RWKV7_OK, "%s: rejected: %s", what, rwkv7_last_error());
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- header and KV cases ---- */

static void test_header(void) {
    struct bb b = {0};
    struct tspec t = t_default();

    bb_model(&b, &t, 1, 256);
    expect_ok("baseline", &b);

    bb_model(&b, &t, 1, 256);
    b.p[0] = 'X';
    expect_fail("bad magic", &b, "magic");

    bb_raw(&b, "GGU", 3);
    expect_fail("3-byte file", &b, "too small");

    bb_raw(&b, "GGUF", 4);
    bb_u32(&b, 3);
    bb_u32(&b, 0);
    expect_fail("truncated header", &b, "header");

    const uint32_t bad_versions[] = {0, 1, 4, 0xffffffffu};
    for (int i = 0; i < 4; i++) {
        bb_model(&b, &t, 1, 256);
        b.p[4] = (uint8_t)bad_versions[i];
        b.p[5] = b.p[6] = b.p[7] = (uint8_t)(bad_versions[i] >> 24);
        char what[32];
        snprintf(what, sizeof what, "version %u", bad_versions[i]);
        expect_fail(what, &b, "version");
    }

    bb_model(&b, &t, 1, 256);
    b.p[4] = 0;
    b.p[7] = 3; /* version 3 written big-endian */
    expect_fail("byte-swapped version", &b, "byte-swapped");

    bb_model(&b, &t, 1, 256);
    b.p[4] = 2;
    expect_ok("version 2", &b);

    bb_hdr(&b, 3, (uint64_t)1 << 40, 0);
    bb_zeros(&b, 64);
    expect_fail("huge n_tensors", &b, "n_tensors");

    bb_hdr(&b, 3, UINT64_MAX, 0);
    bb_zeros(&b, 64);
    expect_fail("negative n_tensors", &b, "n_tensors");

    bb_hdr(&b, 3, 0, (uint64_t)1 << 40);
    bb_zeros(&b, 64);
    expect_fail("huge n_kv", &b, "n_kv");

    /* n_kv that fits the remaining bytes but leaves no room for the tensors */
    bb_hdr(&b, 3, 3, 1);
    bb_kv_str(&b, "general.architecture", "rwkv7");
    bb_zeros(&b, 40);
    expect_fail("n_tensors after kvs", &b, "n_tensors");

    bb_hdr(&b, 3, 0, 0);
    expect_ok("empty file (no kv, no tensors)", &b);
}

static void test_kvs(void) {
    struct bb b = {0};

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "general.name");
    bb_u32(&b, RWKV7_GGUF_STRING);
    bb_u64(&b, 1000);
    bb_raw(&b, "abc", 3);
    expect_fail("string length past EOF", &b, "beyond file size");

    bb_hdr(&b, 3, 0, 1);
    bb_u64(&b, (uint64_t)1 << 40);
    bb_zeros(&b, 32);
    expect_fail("huge key length", &b, "1 GiB");

    bb_hdr(&b, 3, 0, 1);
    bb_u64(&b, 100);
    bb_zeros(&b, 32);
    expect_fail("key length past EOF", &b, "beyond file size");

    bb_hdr(&b, 3, 0, 1);
    bb_kv_u32(&b, "", 1);
    expect_fail("empty key", &b, "empty");

    bb_hdr(&b, 3, 0, 1);
    bb_strn(&b, "a\0b", 3);
    bb_u32(&b, RWKV7_GGUF_U32);
    bb_u32(&b, 1);
    expect_fail("key with NUL", &b, "NUL");

    bb_hdr(&b, 3, 0, 3);
    bb_kv_u32(&b, "x.a", 1);
    bb_kv_u32(&b, "x.b", 2);
    bb_kv_u32(&b, "x.a", 3);
    expect_fail("duplicate key", &b, "duplicate key 'x.a'");

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, 13);
    bb_u32(&b, 0);
    expect_fail("unknown kv type", &b, "unknown value type 13");

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, RWKV7_GGUF_ARRAY);
    bb_u32(&b, RWKV7_GGUF_ARRAY);
    bb_u64(&b, 1);
    bb_zeros(&b, 16);
    expect_fail("array of arrays", &b, "array of arrays");

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, RWKV7_GGUF_ARRAY);
    bb_u32(&b, 99);
    bb_u64(&b, 1);
    bb_zeros(&b, 16);
    expect_fail("array of unknown type", &b, "unknown element type");

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, RWKV7_GGUF_ARRAY);
    bb_u32(&b, RWKV7_GGUF_U8);
    bb_u64(&b, (uint64_t)1 << 31);
    bb_zeros(&b, 16);
    expect_fail("huge array count", &b, "exceeds the limit");

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, RWKV7_GGUF_ARRAY);
    bb_u32(&b, RWKV7_GGUF_U64);
    bb_u64(&b, 1000);
    bb_zeros(&b, 16);
    expect_fail("array past EOF", &b, "beyond file size");

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, RWKV7_GGUF_ARRAY);
    bb_u32(&b, RWKV7_GGUF_STRING);
    bb_u64(&b, 3);
    bb_str(&b, "a");
    bb_u64(&b, 50);
    bb_zeros(&b, 10);
    expect_fail("string array element past EOF", &b, "beyond file size");

    bb_hdr(&b, 3, 0, 1);
    bb_kv_str(&b, "general.alignment", "32");
    expect_fail("alignment string", &b, "key 'general.alignment' has type string, expected u32");

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_u32(&b, RWKV7_GGUF_U64);
    bb_u64(&b, 32);
    expect_fail("alignment u64", &b, "has type u64, expected u32");

    const uint32_t bad_align[] = {0, 3, 48};
    for (int i = 0; i < 3; i++) {
        bb_hdr(&b, 3, 0, 1);
        bb_kv_u32(&b, "general.alignment", bad_align[i]);
        expect_fail("alignment not a power of two", &b, "power of two");
    }

    bb_hdr(&b, 3, 0, 1);
    bb_kv_u32(&b, "general.alignment", 1u << 21);
    expect_fail("alignment 2 MiB", &b, "exceeds 1 MiB");

    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, RWKV7_GGUF_U64);
    bb_u32(&b, 0);
    expect_fail("truncated scalar", &b, "beyond file size");
}

/* ---- tensor info and layout cases ---- */

static void test_tensors(void) {
    struct bb b = {0};
    struct tspec t = t_default(), ts[2];

    char long_name[65];
    memset(long_name, 'n', 64);
    long_name[64] = 0;
    t = t_default();
    t.name = long_name;
    bb_model(&b, &t, 1, 256);
    expect_fail("64-byte name", &b, "limit is 63");
    t.name_len = 63;
    bb_model(&b, &t, 1, 256);
    expect_ok("63-byte name", &b);

    t = t_default();
    t.name = "ab\0c";
    t.name_len = 4;
    bb_model(&b, &t, 1, 256);
    expect_fail("name with NUL", &b, "NUL");

    ts[0] = ts[1] = t_default();
    ts[1].offset = 256;
    bb_model(&b, ts, 2, 512);
    expect_fail("duplicate tensor name", &b, "duplicate tensor name 'w'");

    const uint32_t bad_dims[] = {0, 5};
    for (int i = 0; i < 2; i++) {
        t = t_default();
        t.n_dims = bad_dims[i];
        bb_model(&b, &t, 1, 256);
        expect_fail("bad n_dims", &b, "n_dims");
    }

    t = t_default();
    t.ne[1] = 0;
    bb_model(&b, &t, 1, 256);
    expect_fail("ne 0", &b, "ne[1] = 0");

    t = t_default();
    t.ne[0] = -32;
    bb_model(&b, &t, 1, 256);
    expect_fail("ne negative", &b, "ne[0] = -32");

    t = t_default();
    t.n_dims = 4;
    t.ne[0] = (int64_t)1 << 20;
    t.ne[1] = t.ne[2] = t.ne[3] = (int64_t)1 << 20;
    bb_model(&b, &t, 1, 256);
    expect_fail("ne product overflow", &b, "overflows int64");

    t = t_default();
    t.n_dims = 1;
    t.ne[0] = (int64_t)1 << 62;
    bb_model(&b, &t, 1, 256);
    expect_fail("byte size overflow", &b, "byte size overflows");

    t = t_default();
    t.n_dims = 2;
    t.ne[0] = (int64_t)1 << 40;
    t.ne[1] = 4;
    bb_model(&b, &t, 1, 256);
    expect_fail("huge tensor", &b, "beyond file size");

    const int32_t unknown[] = {43, 1000, -1};
    for (int i = 0; i < 3; i++) {
        t = t_default();
        t.type = unknown[i];
        bb_model(&b, &t, 1, 256);
        expect_fail("unknown type", &b, "unknown type");
    }

    const int32_t removed[] = {4, 5, 31, 33, 36, 38};
    for (int i = 0; i < 6; i++) {
        t = t_default();
        t.type = removed[i];
        bb_model(&b, &t, 1, 256);
        expect_fail("removed type", &b, "removed type");
    }

    const int32_t not_weight[] = {RWKV7_DTYPE_Q8_1, RWKV7_DTYPE_Q8_K, RWKV7_DTYPE_I8,
                                  RWKV7_DTYPE_I32, RWKV7_DTYPE_I64, RWKV7_DTYPE_F64};
    for (int i = 0; i < 6; i++) {
        t = t_default();
        t.type = not_weight[i];
        t.ne[0] = 256;
        bb_model(&b, &t, 1, 8192);
        expect_fail("non-weight type", &b, "cannot hold weights");
    }

    t = t_default();
    t.type = RWKV7_DTYPE_Q4_0;
    t.ne[0] = 48;
    bb_model(&b, &t, 1, 256);
    expect_fail("ne0 not a multiple of the block", &b, "not a multiple of the q4_0 block size 32");

    t = t_default();
    t.type = RWKV7_DTYPE_Q4_K;
    t.ne[0] = 128;
    bb_model(&b, &t, 1, 512);
    expect_fail("ne0 below a k-quant block", &b, "block size 256");

    /* layout: first tensor 256 bytes, so the second must sit at 256 */
    ts[0] = ts[1] = t_default();
    ts[1].name = "v";
    ts[1].offset = 256;
    bb_model(&b, ts, 2, 512);
    expect_ok("two tensors", &b);

    ts[1].offset = 260;
    bb_model(&b, ts, 2, 1024);
    expect_fail("offset misaligned", &b, "misaligned");

    ts[1].offset = 0;
    bb_model(&b, ts, 2, 1024);
    expect_fail("offsets out of order", &b, "overlaps");

    ts[1].offset = 224;
    bb_model(&b, ts, 2, 1024);
    expect_fail("overlapping tensors", &b, "overlaps");

    ts[1].offset = 512;
    bb_model(&b, ts, 2, 1024);
    expect_fail("gap between tensors", &b, "gap");

    t = t_default();
    t.offset = 32;
    bb_model(&b, &t, 1, 1024);
    expect_fail("first offset not 0", &b, "expected 0");

    /* a padded second tensor: 2 rows of 8 f32 = 64 bytes, then 34 bytes of q8_0 padded to 64 */
    ts[0] = ts[1] = t_default();
    ts[0].ne[0] = 17;
    ts[0].ne[1] = 1; /* 68 bytes, padded to 96 */
    ts[1].name = "q";
    ts[1].type = RWKV7_DTYPE_Q8_0;
    ts[1].ne[1] = 1;
    ts[1].offset = 96;
    bb_model(&b, ts, 2, 96 + 34);
    expect_ok("padded layout", &b);
    ts[1].offset = 68;
    bb_model(&b, ts, 2, 200);
    expect_fail("unpadded offset", &b, "misaligned");

    t = t_default();
    bb_model(&b, &t, 1, 100);
    expect_fail("data past EOF", &b, "data ends at");

    /* infos end mid-alignment and the file stops there: the data blob cannot start */
    t = t_default();
    bb_hdr(&b, 3, 1, 0);
    bb_tinfo(&b, &t);
    expect_fail("data start past EOF", &b, "data start");

    /* alignment 64 moves both the data start and the padding between tensors */
    ts[0] = ts[1] = t_default();
    ts[0].ne[0] = 8; /* 64 bytes */
    ts[0].ne[1] = 3; /* 96 bytes, padded to 128 */
    ts[1].name = "v";
    ts[1].offset = 128;
    bb_hdr(&b, 3, 2, 1);
    bb_kv_u32(&b, "general.alignment", 64);
    bb_tinfo(&b, &ts[0]);
    bb_tinfo(&b, &ts[1]);
    bb_pad(&b, 64);
    size_t start = b.n;
    bb_zeros(&b, 128 + 256);
    {
        struct rwkv7_gguf *g = NULL;
        enum rwkv7_status st = rwkv7_gguf_open_memory(b.p, b.n, &g);
        CHECK(st == RWKV7_OK, "alignment 64: %s", rwkv7_last_error());
        if (st == RWKV7_OK) {
            CHECK(rwkv7_gguf_alignment(g) == 64, "alignment %u", rwkv7_gguf_alignment(g));
            CHECK(rwkv7_gguf_data_offset(g) == start, "data offset %llu, expected %zu",
                  (unsigned long long)rwkv7_gguf_data_offset(g), start);
            CHECK(rwkv7_gguf_tensor(g, 1)->data == b.p + start + 128, "second tensor data pointer");
            rwkv7_gguf_free(g);
        }
    }
    free(b.p);
    memset(&b, 0, sizeof b);
    ts[1].offset = 96; /* right for alignment 32, wrong for 64 */
    bb_hdr(&b, 3, 2, 1);
    bb_kv_u32(&b, "general.alignment", 64);
    bb_tinfo(&b, &ts[0]);
    bb_tinfo(&b, &ts[1]);
    bb_pad(&b, 64);
    bb_zeros(&b, 128 + 256);
    expect_fail("offset aligned to 32 under alignment 64", &b, "misaligned");
}

/* ---- memory interface and missing files ---- */

static void test_edges(void) {
    struct rwkv7_gguf *g = (struct rwkv7_gguf *)1;
    CHECK(rwkv7_gguf_open_memory(NULL, 0, &g) == RWKV7_ERR_FORMAT, "NULL/0 image accepted");
    CHECK(g == NULL, "handle not cleared");
    static const uint8_t one = 0;
    CHECK(rwkv7_gguf_open_memory(&one, 0, &g) == RWKV7_ERR_FORMAT, "size 0 image accepted");
    CHECK(strstr(rwkv7_last_error(), "too small") != NULL, "size 0 message: %s", rwkv7_last_error());
    CHECK(rwkv7_gguf_open_memory(NULL, 16, &g) == RWKV7_ERR_ARG, "NULL data of size 16 accepted");

    CHECK(rwkv7_gguf_open("/nonexistent/dir/model.gguf", &g) == RWKV7_ERR_IO, "missing file");
    CHECK(strstr(rwkv7_last_error(), "gguf: cannot open '/nonexistent/dir/model.gguf': ") != NULL,
          "missing file message: %s", rwkv7_last_error());

    char path[64];
    snprintf(path, sizeof path, "/tmp/test_gguf_empty_%ld.gguf", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (f) {
        fclose(f);
        CHECK(rwkv7_gguf_open(path, &g) == RWKV7_ERR_FORMAT, "empty file accepted");
        CHECK(strstr(rwkv7_last_error(), path) != NULL, "message lacks the path: %s",
              rwkv7_last_error());
        remove(path);
    }
}

/* ---- writer round trip ---- */

static size_t find_bytes(const void *hay, size_t n, const char *needle, size_t k) {
    const uint8_t *p = hay;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, needle, k) == 0) return i;
    return n;
}

static enum rwkv7_status build_writer(struct rwkv7_gguf_writer *w, const float *f32data,
                                      const uint8_t *q8data) {
    static const char *const strs[] = {"hello", "", "a\0b", "\xe4\xb8\xad"};
    static const size_t lens[] = {5, 0, 3, 3};
    int32_t ids[10];
    for (int i = 0; i < 10; i++) ids[i] = i * 3 - 5;
    float fl[3] = {1.5f, -2.0f, 0.25f};
    static const char long_str[] = "0123456789012345678901234567890123456789012345678901234567890123456789";
    RWKV7_TRY(rwkv7_gguf_writer_add_str(w, "general.architecture", "rwkv7"));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.block_count", 7));
    RWKV7_TRY(rwkv7_gguf_writer_add_i32(w, "t.i32", -42));
    RWKV7_TRY(rwkv7_gguf_writer_add_i32(w, "t.i32pos", 42));
    RWKV7_TRY(rwkv7_gguf_writer_add_u64(w, "t.u64", 0x123456789abcull));
    RWKV7_TRY(rwkv7_gguf_writer_add_f32(w, "t.f32", 1e-5f));
    RWKV7_TRY(rwkv7_gguf_writer_add_bool(w, "t.bool", true));
    RWKV7_TRY(rwkv7_gguf_writer_add_str(w, "t.long", long_str));
    RWKV7_TRY(rwkv7_gguf_writer_add_str_arr(w, "t.strs", strs, lens, 4));
    RWKV7_TRY(rwkv7_gguf_writer_add_i32_arr(w, "t.ids", ids, 10));
    RWKV7_TRY(rwkv7_gguf_writer_add_f32_arr(w, "t.fl", fl, 3));
    int64_t ne_a[4] = {4, 3, 2, 1}, ne_q[4] = {64, 3, 1, 1}, ne_z[4] = {8, 1, 1, 5};
    RWKV7_TRY(rwkv7_gguf_writer_add_tensor(w, "a.weight", 3, ne_a, RWKV7_DTYPE_F32, f32data, 96));
    RWKV7_TRY(rwkv7_gguf_writer_add_tensor_ref(w, "q.weight", 2, ne_q, RWKV7_DTYPE_Q8_0, q8data,
                                               2 * 34 * 3));
    RWKV7_TRY(rwkv7_gguf_writer_add_tensor(w, "z.weight", 4, ne_z, RWKV7_DTYPE_F16, NULL, 80));
    return RWKV7_OK;
}

static void check_round_trip(const struct rwkv7_gguf *g, const float *f32data, const uint8_t *q8data) {
    CHECK(rwkv7_gguf_version(g) == 3, "version %u", rwkv7_gguf_version(g));
    CHECK(rwkv7_gguf_alignment(g) == 32, "alignment %u", rwkv7_gguf_alignment(g));
    CHECK(rwkv7_gguf_n_kv(g) == 11, "n_kv %lld", (long long)rwkv7_gguf_n_kv(g));
    CHECK(rwkv7_gguf_n_tensors(g) == 3, "n_tensors %lld", (long long)rwkv7_gguf_n_tensors(g));
    CHECK(rwkv7_gguf_data_offset(g) % 32 == 0, "data offset unaligned");

    struct rwkv7_gguf_str s;
    CHECK(rwkv7_gguf_get_str(g, "general.architecture", &s) == RWKV7_OK && s.len == 5 &&
              memcmp(s.ptr, "rwkv7", 5) == 0, "architecture");
    uint32_t u = 0;
    CHECK(rwkv7_gguf_get_u32(g, "rwkv7.block_count", &u) == RWKV7_OK && u == 7, "block_count %u", u);
    CHECK(rwkv7_gguf_get_u32(g, "t.i32pos", &u) == RWKV7_OK && u == 42, "i32 -> u32 %u", u);
    CHECK(rwkv7_gguf_get_u32(g, "t.i32", &u) == RWKV7_ERR_FORMAT &&
              strstr(rwkv7_last_error(), "does not fit in u32"), "negative i32 -> u32: %s",
          rwkv7_last_error());
    CHECK(rwkv7_gguf_get_u32(g, "t.u64", &u) == RWKV7_ERR_FORMAT, "big u64 -> u32 accepted");
    uint64_t u64 = 0;
    int64_t i64 = 0;
    CHECK(rwkv7_gguf_get_u64(g, "t.u64", &u64) == RWKV7_OK && u64 == 0x123456789abcull, "u64 %llx", (unsigned long long)u64);
    CHECK(rwkv7_gguf_get_u64(g, "t.i32", &u64) == RWKV7_ERR_FORMAT, "negative i32 -> u64 accepted");
    CHECK(rwkv7_gguf_get_i64(g, "t.i32", &i64) == RWKV7_OK && i64 < 0, "i32 -> i64 %lld", (long long)i64);
    CHECK(rwkv7_gguf_get_i64(g, "t.u64", &i64) == RWKV7_OK && i64 == 0x123456789abcll, "u64 -> i64");
    CHECK(rwkv7_gguf_get_u32(g, "general.architecture", &u) == RWKV7_ERR_FORMAT &&
              strstr(rwkv7_last_error(), "has type string, expected an integer"),
          "string -> u32: %s", rwkv7_last_error());
    CHECK(rwkv7_gguf_get_u32(g, "no.such.key", &u) == RWKV7_ERR_FORMAT &&
              strstr(rwkv7_last_error(), "'no.such.key' is missing"), "missing key: %s",
          rwkv7_last_error());
    CHECK(rwkv7_gguf_get_str(g, "t.bool", &s) == RWKV7_ERR_FORMAT, "bool -> string accepted");
    float f = 0;
    CHECK(rwkv7_gguf_get_f32(g, "t.f32", &f) == RWKV7_OK && f == 1e-5f, "f32 %g", (double)f);
    CHECK(rwkv7_gguf_get_f32(g, "rwkv7.block_count", &f) == RWKV7_OK && f == 7.0f, "u32 -> f32");

    int64_t i = rwkv7_gguf_find_kv(g, "t.u64");
    CHECK(i >= 0 && rwkv7_gguf_kv_type(g, i) == RWKV7_GGUF_U64, "u64 type");
    CHECK(rwkv7_gguf_find_kv(g, "t.u6") == -1 && rwkv7_gguf_find_kv(g, "") == -1, "find_kv prefix");
    char buf[128];
    rwkv7_gguf_kv_format(g, i, buf, sizeof buf);
    CHECK(strcmp(buf, "20015998343868") == 0, "u64 format '%s'", buf);
    rwkv7_gguf_kv_format(g, rwkv7_gguf_find_kv(g, "t.bool"), buf, sizeof buf);
    CHECK(strcmp(buf, "true") == 0, "bool format '%s'", buf);
    rwkv7_gguf_kv_format(g, rwkv7_gguf_find_kv(g, "general.architecture"), buf, sizeof buf);
    CHECK(strcmp(buf, "\"rwkv7\"") == 0, "string format '%s'", buf);
    rwkv7_gguf_kv_format(g, rwkv7_gguf_find_kv(g, "t.long"), buf, sizeof buf);
    CHECK(strlen(buf) < 72 && strstr(buf, "...") != NULL, "long string format '%s'", buf);
    rwkv7_gguf_kv_format(g, rwkv7_gguf_find_kv(g, "t.strs"), buf, sizeof buf);
    CHECK(strcmp(buf, "[string x 4]") == 0, "string array format '%s'", buf);
    rwkv7_gguf_kv_format(g, rwkv7_gguf_find_kv(g, "t.ids"), buf, sizeof buf);
    CHECK(strncmp(buf, "[i32 x 10: -5, -2, 1, ", 22) == 0, "i32 array format '%s'", buf);
    rwkv7_gguf_kv_format(g, rwkv7_gguf_find_kv(g, "t.fl"), buf, sizeof buf);
    CHECK(strcmp(buf, "[1.5, -2, 0.25]") == 0, "f32 array format '%s'", buf);
    rwkv7_gguf_kv_format(g, rwkv7_gguf_find_kv(g, "t.ids"), buf, 8);
    CHECK(strlen(buf) == 7, "format must honour cap: '%s'", buf);

    i = rwkv7_gguf_find_kv(g, "t.strs");
    CHECK(rwkv7_gguf_kv_type(g, i) == RWKV7_GGUF_ARRAY &&
              rwkv7_gguf_kv_arr_type(g, i) == RWKV7_GGUF_STRING && rwkv7_gguf_kv_arr_n(g, i) == 4,
          "string array meta");
    CHECK(rwkv7_gguf_kv_arr_data(g, i) == NULL, "string array must have no raw data");
    s = rwkv7_gguf_kv_arr_str(g, i, 2);
    CHECK(s.len == 3 && memcmp(s.ptr, "a\0b", 3) == 0, "string element with NUL");
    s = rwkv7_gguf_kv_arr_str(g, i, 1);
    CHECK(s.len == 0, "empty string element");
    s = rwkv7_gguf_kv_arr_str(g, i, 3);
    CHECK(s.len == 3 && memcmp(s.ptr, "\xe4\xb8\xad", 3) == 0, "utf-8 element");
    i = rwkv7_gguf_find_kv(g, "t.ids");
    const uint8_t *raw = rwkv7_gguf_kv_arr_data(g, i);
    CHECK(raw && rwkv7_gguf_kv_arr_type(g, i) == RWKV7_GGUF_I32 && rwkv7_gguf_kv_arr_n(g, i) == 10,
          "i32 array meta");
    if (raw) {
        int32_t v;
        memcpy(&v, raw + 4 * 9, 4);
        CHECK(v == 22, "ids[9] = %d", v);
    }

    const struct rwkv7_gguf_tensor *t = rwkv7_gguf_find_tensor(g, "a.weight");
    CHECK(t && t->n_dims == 3 && t->ne[0] == 4 && t->ne[1] == 3 && t->ne[2] == 2 && t->ne[3] == 1 &&
              t->type == RWKV7_DTYPE_F32 && t->nbytes == 96 && t->offset == 0 &&
              memcmp(t->data, f32data, 96) == 0, "tensor a");
    t = rwkv7_gguf_find_tensor(g, "q.weight");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 3 && t->type == RWKV7_DTYPE_Q8_0 &&
              t->nbytes == 204 && t->offset == 96 && memcmp(t->data, q8data, 204) == 0, "tensor q");
    t = rwkv7_gguf_find_tensor(g, "z.weight");
    CHECK(t && t->n_dims == 4 && t->ne[3] == 5 && t->nbytes == 80 && t->offset == 96 + 224,
          "tensor z");
    if (t) {
        int zero = 1;
        for (size_t k = 0; k < 80; k++) zero &= ((const uint8_t *)t->data)[k] == 0;
        CHECK(zero, "NULL data must write zeros");
    }
    CHECK(rwkv7_gguf_tensor(g, 1) == rwkv7_gguf_find_tensor(g, "q.weight"), "tensor order");
    CHECK(rwkv7_gguf_find_tensor(g, "q.weigh") == NULL && rwkv7_gguf_tensor(g, 3) == NULL,
          "absent tensors");
}

static void test_writer(void) {
    float f32data[24];
    uint8_t q8data[204];
    for (int i = 0; i < 24; i++) f32data[i] = (float)i * 0.5f - 3.0f;
    for (int i = 0; i < 204; i++) q8data[i] = (uint8_t)(i * 37 + 11);

    struct rwkv7_gguf_writer *w = NULL;
    CHECK(rwkv7_gguf_writer_init(&w) == RWKV7_OK, "writer init");
    if (!w) return;
    enum rwkv7_status st = build_writer(w, f32data, q8data);
    CHECK(st == RWKV7_OK, "writer build: %s", rwkv7_last_error());

    /* refused inputs */
    int64_t ne[4] = {32, 1, 1, 1};
    CHECK(rwkv7_gguf_writer_add_u32(w, "t.u64", 1) == RWKV7_ERR_ARG, "duplicate key accepted");
    CHECK(rwkv7_gguf_writer_add_u32(w, "", 1) == RWKV7_ERR_ARG, "empty key accepted");
    CHECK(rwkv7_gguf_writer_add_tensor(w, "x", 1, ne, RWKV7_DTYPE_F32, f32data, 100) ==
              RWKV7_ERR_ARG, "wrong byte count accepted");
    CHECK(rwkv7_gguf_writer_add_tensor(w, "a.weight", 1, ne, RWKV7_DTYPE_F32, NULL, 128) ==
              RWKV7_ERR_ARG, "duplicate tensor accepted");
    ne[0] = 16;
    CHECK(rwkv7_gguf_writer_add_tensor(w, "x", 1, ne, RWKV7_DTYPE_Q4_0, NULL, 9) == RWKV7_ERR_ARG,
          "partial block accepted");
    CHECK(rwkv7_gguf_writer_add_tensor(w, "x", 1, ne, RWKV7_DTYPE_Q8_K, NULL, 0) == RWKV7_ERR_ARG,
          "non-weight type accepted");

    void *img = NULL;
    size_t n = 0;
    CHECK(rwkv7_gguf_writer_write_memory(w, &img, &n) == RWKV7_OK, "write_memory: %s",
          rwkv7_last_error());
    CHECK(n == rwkv7_gguf_writer_size(w), "size %zu vs %llu", n,
          (unsigned long long)rwkv7_gguf_writer_size(w));
    /* last tensor (80 bytes) is padded to 96 */
    struct rwkv7_gguf *g = NULL;
    if (img) {
        CHECK(rwkv7_gguf_open_memory(img, n, &g) == RWKV7_OK, "memory image rejected: %s",
              rwkv7_last_error());
        if (g) {
            CHECK(n == rwkv7_gguf_data_offset(g) + 96 + 224 + 96, "image size %zu", n);
            check_round_trip(g, f32data, q8data);
            rwkv7_gguf_free(g);
            g = NULL;
        }
    }

    char path[64];
    snprintf(path, sizeof path, "/tmp/test_gguf_rt_%ld.gguf", (long)getpid());
    CHECK(rwkv7_gguf_writer_write_file(w, path) == RWKV7_OK, "write_file: %s", rwkv7_last_error());
    size_t fn = 0;
    void *fdata = test_read_file(path, &fn);
    CHECK(fdata && img && fn == n && memcmp(fdata, img, n) == 0, "file and memory images differ");
    free(fdata);
    CHECK(rwkv7_gguf_open(path, &g) == RWKV7_OK, "file rejected: %s", rwkv7_last_error());
    if (g) {
        check_round_trip(g, f32data, q8data);
        rwkv7_gguf_free(g);
    }
    remove(path);
    /* a failed write leaves nothing behind and names the path */
    CHECK(rwkv7_gguf_writer_write_file(w, "/nonexistent/dir/x.gguf") == RWKV7_ERR_IO &&
              strstr(rwkv7_last_error(), "'/nonexistent/dir/x.gguf'"), "bad path: %s",
          rwkv7_last_error());

    /* patched writer images: duplicates the writer itself refuses to produce */
    if (img) {
        size_t at = find_bytes(img, n, "t.u64", 5);
        CHECK(at < n, "key not found in image");
        if (at < n) {
            memcpy((uint8_t *)img + at, "t.i32", 5);
            expect_fail_raw("patched duplicate key", img, n, "duplicate key 't.i32'");
            memcpy((uint8_t *)img + at, "t.u64", 5);
        }
        at = find_bytes(img, n, "z.weight", 8);
        CHECK(at < n, "tensor name not found in image");
        if (at < n) {
            memcpy((uint8_t *)img + at, "a", 1);
            expect_fail_raw("patched duplicate tensor", img, n, "duplicate tensor name 'a.weight'");
            memcpy((uint8_t *)img + at, "z", 1);
        }
        CHECK(open_copy(img, n) == RWKV7_OK, "image not restored");
    }
    free(img);
    rwkv7_gguf_writer_free(w);
}


/* ---- truncation and corruption of a small valid image ---- */

static void test_truncation(void) {
    struct rwkv7_gguf_writer *w = NULL;
    CHECK(rwkv7_gguf_writer_init(&w) == RWKV7_OK, "writer init");
    if (!w) return;
    static const char *const toks[] = {"a", "bc", "", "def"};
    int32_t types[4] = {1, 1, 3, 1};
    float ones[16];
    for (int i = 0; i < 16; i++) ones[i] = 1.0f + (float)i;
    int64_t ne1[4] = {8, 1, 1, 1}, ne2[4] = {32, 1, 1, 1}, ne3[4] = {8, 2, 1, 1};
    enum rwkv7_status st = RWKV7_OK;
    if (!st) st = rwkv7_gguf_writer_add_str(w, "general.architecture", "rwkv7");
    if (!st) st = rwkv7_gguf_writer_add_u32(w, "rwkv7.block_count", 1);
    if (!st) st = rwkv7_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", toks, NULL, 4);
    if (!st) st = rwkv7_gguf_writer_add_i32_arr(w, "tokenizer.ggml.token_type", types, 4);
    if (!st) st = rwkv7_gguf_writer_add_f32(w, "eps", 1e-5f);
    if (!st) st = rwkv7_gguf_writer_add_tensor(w, "t1", 1, ne1, RWKV7_DTYPE_F32, ones, 32);
    if (!st) st = rwkv7_gguf_writer_add_tensor(w, "t2", 1, ne2, RWKV7_DTYPE_Q8_0, NULL, 34);
    /* the last tensor is a multiple of 32 bytes, so no trailing padding makes a cut valid */
    if (!st) st = rwkv7_gguf_writer_add_tensor(w, "t3", 2, ne3, RWKV7_DTYPE_F32, ones, 64);
    void *img = NULL;
    size_t n = 0;
    if (!st) st = rwkv7_gguf_writer_write_memory(w, &img, &n);
    CHECK(st == RWKV7_OK, "truncation image: %s", rwkv7_last_error());
    rwkv7_gguf_writer_free(w);
    if (!img) return;
    CHECK(open_copy(img, n) == RWKV7_OK, "full image rejected: %s", rwkv7_last_error());

    int accepted = 0, wrong_status = 0;
    for (size_t len = 0; len < n; len++) {
        enum rwkv7_status s = open_copy(img, len);
        accepted += s == RWKV7_OK;
        wrong_status += s != RWKV7_OK && s != RWKV7_ERR_FORMAT;
    }
    CHECK(accepted == 0, "%d truncations of a %zu-byte image accepted", accepted, n);
    CHECK(wrong_status == 0, "%d truncations failed without a format error", wrong_status);

    /* single-byte corruption anywhere: any status is fine, a crash or ASan report is not */
    uint8_t *p = img;
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    int rejected = 0;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++) {
            p[i] ^= flips[k];
            rejected += open_copy(img, n) != RWKV7_OK;
            p[i] ^= flips[k];
        }
    }
    CHECK(rejected > 0, "no corruption was ever rejected");
    free(img);
}

/* ---- the fixture models ---- */

static int is_gguf(const char *name) {
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".gguf") == 0;
}

static void check_fixture(const char *path) {
    struct rwkv7_gguf *g = NULL;
    enum rwkv7_status st = rwkv7_gguf_open(path, &g);
    CHECK(st == RWKV7_OK, "%s rejected: %s", path, rwkv7_last_error());
    if (st != RWKV7_OK) return;
    struct rwkv7_gguf_str arch = {"", 0};
    CHECK(rwkv7_gguf_get_str(g, "general.architecture", &arch) == RWKV7_OK && arch.len == 5 &&
              memcmp(arch.ptr, "rwkv7", 5) == 0, "%s: architecture", path);
    uint32_t L = 0, C = 0;
    CHECK(rwkv7_gguf_get_u32(g, "rwkv7.block_count", &L) == RWKV7_OK, "%s: %s", path,
          rwkv7_last_error());
    CHECK(rwkv7_gguf_get_u32(g, "rwkv7.embedding_length", &C) == RWKV7_OK, "%s: %s", path,
          rwkv7_last_error());
    CHECK(rwkv7_gguf_n_tensors(g) == 6 + 28 * (int64_t)L, "%s: %lld tensors for %u layers", path,
          (long long)rwkv7_gguf_n_tensors(g), L);
    const struct rwkv7_gguf_tensor *emb = rwkv7_gguf_find_tensor(g, "token_embd.weight");
    CHECK(emb && emb->ne[0] == (int64_t)C, "%s: token_embd.weight", path);
    const uint8_t *base = rwkv7_gguf_base(g);
    uint64_t size = rwkv7_gguf_file_size(g), end = 0;
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(g); i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(g, i);
        uint64_t at = (uint64_t)((const uint8_t *)t->data - base);
        CHECK(at == rwkv7_gguf_data_offset(g) + t->offset && at % 32 == 0 && at + t->nbytes <= size,
              "%s: tensor %s placement", path, t->name);
        end = at + t->nbytes;
    }
    CHECK(end <= size && size - end < 32, "%s: %llu bytes after the last tensor", path,
          (unsigned long long)(size - end));
    int64_t k = rwkv7_gguf_find_kv(g, "tokenizer.ggml.tokens");
    CHECK(k >= 0 && rwkv7_gguf_kv_arr_type(g, k) == RWKV7_GGUF_STRING, "%s: tokens", path);
    if (strstr(path, "world-c128")) {
        char buf[64];
        rwkv7_gguf_kv_format(g, k, buf, sizeof buf);
        CHECK(rwkv7_gguf_kv_arr_n(g, k) == 65536 && strcmp(buf, "[string x 65536]") == 0,
              "%s: vocabulary '%s'", path, buf);
        uint64_t total = 0;
        for (uint64_t j = 0; j < rwkv7_gguf_kv_arr_n(g, k); j++)
            total += rwkv7_gguf_kv_arr_str(g, k, j).len;
        CHECK(total > 65536, "%s: vocabulary bytes %llu", path, (unsigned long long)total);
    }
    touch_all(g);
    rwkv7_gguf_free(g);
}

static void test_fixtures(void) {
    static const char *const dirs[] = {"rand-c256-l2", "tiny-rwkv7-834K", "world"};
    int seen = 0;
    char dir[1024], path[2048];
    for (int d = 0; d < 3; d++) {
        test_fixture(dir, sizeof dir, dirs[d]);
        DIR *dh = opendir(dir);
        CHECK(dh != NULL, "cannot list %s", dir);
        if (!dh) continue;
        struct dirent *e;
        while ((e = readdir(dh)) != NULL) {
            if (!is_gguf(e->d_name)) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            check_fixture(path);
            seen++;
        }
        closedir(dh);
    }
    CHECK(seen >= 27, "only %d fixture models found", seen);

    /* the memory interface gives the same view as the mapping */
    test_fixture(path, sizeof path, "rand-c256-l2/rand-c256-l2-Q4_K_M.gguf");
    size_t n = 0;
    void *img = test_read_file(path, &n);
    CHECK(img != NULL, "cannot read %s", path);
    if (img) {
        CHECK(open_copy(img, n) == RWKV7_OK, "memory open of %s: %s", path, rwkv7_last_error());
        /* cutting off the last byte must be caught by the data-range check */
        expect_fail_raw("fixture minus one byte", img, n - 1, "beyond file size");
        free(img);
    }
}

int main(void) {
    test_header();
    test_kvs();
    test_tensors();
    test_edges();
    test_writer();
    test_truncation();
    test_fixtures();
    return test_finish("test_gguf");
}
