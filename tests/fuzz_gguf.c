/* fuzz_gguf.c: libFuzzer entry for the GGUF reader (runtime/gguf.c). Any input must either be
 * rejected with a one-line message or yield a handle whose every accessor stays inside the
 * image (ASan/UBSan catch the rest). Built and run by tests/fuzz.cmake (RWKV7_FUZZ=ON):
 *   fuzz_gguf -max_total_time=30 corpus_dir */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Volatile sink so reads of the image are not optimised away. */
static volatile unsigned g_sink;

static const unsigned k_elem_size[RWKV7_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static void touch_kvs(const struct rwkv7_gguf *g) {
    char buf[128];
    for (int64_t i = 0; i < rwkv7_gguf_n_kv(g); i++) {
        struct rwkv7_gguf_str k = rwkv7_gguf_kv_key(g, i);
        if (k.len) g_sink += (unsigned char)k.ptr[0] + (unsigned char)k.ptr[k.len - 1];
        rwkv7_gguf_kv_format(g, i, buf, sizeof buf);
        if (strlen(buf) >= sizeof buf) abort();
        /* the key must find itself (keys are NUL-free, so a C-string copy is exact) */
        char key[256];
        if (k.len < sizeof key) {
            memcpy(key, k.ptr, (size_t)k.len);
            key[k.len] = 0;
            if (rwkv7_gguf_find_kv(g, key) != i) abort();
        }
        enum rwkv7_gguf_type t = rwkv7_gguf_kv_type(g, i), at = rwkv7_gguf_kv_arr_type(g, i);
        uint64_t n = rwkv7_gguf_kv_arr_n(g, i);
        if (t == RWKV7_GGUF_ARRAY && at == RWKV7_GGUF_STRING) {
            for (uint64_t j = 0; j < n; j++) {
                struct rwkv7_gguf_str s = rwkv7_gguf_kv_arr_str(g, i, j);
                if (s.len) g_sink += (unsigned char)s.ptr[s.len - 1];
            }
        } else if (t == RWKV7_GGUF_ARRAY && n) {
            const uint8_t *raw = rwkv7_gguf_kv_arr_data(g, i);
            if (!raw || at >= RWKV7_GGUF_TYPE_COUNT) abort();
            g_sink += raw[0] + raw[n * k_elem_size[at] - 1];
        }
        if (k.len < sizeof key) {
            uint32_t u;
            float f;
            struct rwkv7_gguf_str s;
            if (rwkv7_gguf_get_u32(g, key, &u) == RWKV7_OK) g_sink += u;
            if (rwkv7_gguf_get_f32(g, key, &f) == RWKV7_OK) g_sink += (unsigned)(f == f);
            if (rwkv7_gguf_get_str(g, key, &s) == RWKV7_OK && s.len)
                g_sink += (unsigned char)s.ptr[s.len - 1];
        }
    }
}

static void touch_tensors(const struct rwkv7_gguf *g) {
    const uint8_t *base = rwkv7_gguf_base(g);
    uint64_t size = rwkv7_gguf_file_size(g);
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(g); i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(g, i);
        if (!t || t->n_dims < 1 || t->n_dims > 4 || t->nbytes == 0) abort();
        const uint8_t *p = t->data;
        if (p < base || (uint64_t)(p - base) + t->nbytes > size) abort();
        g_sink += p[0] + p[t->nbytes - 1];
        if (rwkv7_gguf_find_tensor(g, t->name) != t) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct rwkv7_gguf *g = NULL;
    if (rwkv7_gguf_open_memory(data, size, &g) != RWKV7_OK) {
        if (g) abort();
        return 0;
    }
    g_sink += rwkv7_gguf_version(g) + rwkv7_gguf_alignment(g);
    if (rwkv7_gguf_data_offset(g) > size && rwkv7_gguf_n_tensors(g) > 0) abort();
    touch_kvs(g);
    touch_tensors(g);
    rwkv7_gguf_free(g);
    return 0;
}
