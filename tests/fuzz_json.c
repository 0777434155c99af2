/* fuzz_json.c: libFuzzer entry for the strict JSON parser and writer (host/json.c) that reads
 * every `rwkv7 batch` input line. The input is split into lines as batch splits a JSONL file;
 * each line must be rejected with a "json: ..." message or give a tree in which every key finds
 * itself (duplicates are refused) and every string, written back by the writer, parses to the
 * same bytes. Parsing must stay linear: a line may not take more than a few ms per KiB (libFuzzer's
 * -timeout catches hangs). Built and run by tests/fuzz.cmake (RWKV7_FUZZ=ON):
 *   fuzz_json -max_total_time=20 corpus_dir */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_string(const char *s, size_t n) {
    struct json_buf b = {0};
    json_buf_string(&b, s, n);
    if (b.oom) abort();
    struct json_value v;
    if (json_parse(b.p, b.n, NULL, &v) != RWKV7_OK || v.type != JSON_STRING) abort();
    /* the parser only yields valid UTF-8, which the writer keeps byte for byte */
    if (v.len != n || memcmp(v.str, s, n)) abort();
    json_free(&v);
    json_buf_free(&b);
}

static void walk(const struct json_value *v) {
    switch (v->type) {
    case JSON_STRING:
        if (v->str[v->len] != 0) abort();
        check_string(v->str, v->len);
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < v->len; i++) walk(&v->items[i]);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < v->len; i++) {
            const struct json_member *m = &v->members[i];
            check_string(m->key, m->key_len);
            if (!memchr(m->key, 0, m->key_len) && json_get(v, m->key) != &m->value) abort();
            walk(&m->value);
        }
        break;
    case JSON_NUMBER: {
        struct json_buf b = {0};
        json_buf_number(&b, v->num); /* shortest form that reads back exactly */
        if (b.oom || strtod(b.p, NULL) != v->num) abort();
        json_buf_free(&b);
        break;
    }
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size;
    struct json_limits lim = {16, 1 << 20, 1000, NULL}; /* small limits reach their edges often */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        struct json_value v;
        enum rwkv7_status st = json_parse(p, n, &lim, &v);
        if (st == RWKV7_OK) {
            walk(&v);
        } else {
            if (v.type != JSON_NULL || v.len || v.str || v.items || v.members) abort(); /* nothing left */
            if (strncmp(rwkv7_last_error(), "json: ", 6)) abort();
        }
        json_free(&v);
        p += n + (nl != NULL);
    }
    return 0;
}
