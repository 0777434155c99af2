/* test_json.c: host/json.c, the strict JSON parser used for batch input, and its writer.
 * Valid documents must parse to the right values; malformed ones (truncated, bad escapes, deep
 * nesting, invalid UTF-8, trailing garbage, lone surrogates) must fail cleanly with a message.
 * A seeded mutation loop checks that no corruption of a valid document crashes the parser. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "testing.h"

#include "json.h"

static bool parses(const char *s) {
    struct json_value v;
    enum rwkv7_status st = json_parse(s, strlen(s), NULL, &v);
    json_free(&v);
    return st == RWKV7_OK;
}

static void check_rejects(const char *s) {
    struct json_value v;
    enum rwkv7_status st = json_parse(s, strlen(s), NULL, &v);
    CHECK(st == RWKV7_ERR_FORMAT, "accepted malformed %s", s);
    CHECK(st != RWKV7_OK || v.type == JSON_NULL, "left a value behind for %s", s);
    CHECK(!strncmp(rwkv7_last_error(), "json: ", 6), "message '%s'", rwkv7_last_error());
    json_free(&v);
}

static void test_valid(void) {
    const char *doc = " {\"custom_id\": \"r-1\", \"n\": -12, \"f\": 0.5e1, \"big\": 1e308, \"t\": true, \"x\": null,"
                      " \"a\": [1, [2, []], {}], \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000z\", "
                      "\"u\": \"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}\r\n";
    struct json_value v;
    CHECK(json_parse(doc, strlen(doc), NULL, &v) == RWKV7_OK, "valid document: %s", rwkv7_last_error());
    CHECK(v.type == JSON_OBJECT && v.len == 9, "object with 9 members");
    const struct json_value *id = json_get(&v, "custom_id");
    CHECK(id && id->type == JSON_STRING && !strcmp(id->str, "r-1"), "custom_id");
    const struct json_value *n = json_get(&v, "n");
    CHECK(n && n->type == JSON_NUMBER && n->is_int && n->i == -12 && n->num == -12.0, "integer");
    const struct json_value *f = json_get(&v, "f");
    CHECK(f && !f->is_int && f->num == 5.0, "float with exponent");
    CHECK(json_get(&v, "t")->boolean, "true");
    CHECK(json_get(&v, "x")->type == JSON_NULL, "null");
    const struct json_value *a = json_get(&v, "a");
    CHECK(a && a->type == JSON_ARRAY && a->len == 3 && a->items[1].len == 2 && a->items[2].type == JSON_OBJECT, "nesting");
    const struct json_value *s = json_get(&v, "s");
    static const char want[] = "q\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\0z";
    CHECK(s && s->len == sizeof want - 1 && !memcmp(s->str, want, sizeof want - 1), "escapes decode (len %zu)", s ? s->len : 0);
    CHECK(!strcmp(json_get(&v, "u")->str, "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "raw UTF-8 kept");
    CHECK(json_get(&v, "missing") == NULL, "absent key");
    json_free(&v);

    CHECK(parses("0") && parses("-0") && parses("\"\"") && parses("[]") && parses("{}") && parses("  null  "), "scalars");
    CHECK(parses("9223372036854775807") && parses("1E-400"), "integer limit, underflow");
    struct json_value big;
    CHECK(json_parse("92233720368547758070", 20, NULL, &big) == RWKV7_OK && !big.is_int && big.num > 9e19, "huge integer is a double");
    json_free(&big);

    /* Depth exactly at the limit passes; one more fails. */
    char deep[200] = {0};
    struct json_limits lim = {8, 1000, 0, NULL};
    for (int i = 0; i < 8; i++) deep[i] = '[';
    for (int i = 0; i < 8; i++) deep[8 + i] = ']';
    struct json_value d;
    CHECK(json_parse(deep, 16, &lim, &d) == RWKV7_OK, "depth 8 at limit 8: %s", rwkv7_last_error());
    json_free(&d);
    memset(deep, 0, sizeof deep);
    for (int i = 0; i < 9; i++) deep[i] = '[';
    for (int i = 0; i < 9; i++) deep[9 + i] = ']';
    CHECK(json_parse(deep, 18, &lim, &d) == RWKV7_ERR_FORMAT && strstr(rwkv7_last_error(), "deep"), "depth 9 rejected");
    CHECK(json_parse("[1,2,3,4,5]", 11, &(struct json_limits){8, 10, 0, NULL}, &d) == RWKV7_ERR_FORMAT, "size limit");
    /* Length-bounded: a prefix of a longer buffer is parsed without reading past n. */
    CHECK(json_parse("[1]xyz", 3, NULL, &d) == RWKV7_OK, "prefix");
    json_free(&d);
}

static void test_invalid(void) {
    static const char *bad[] = {
        "", "   ", "{", "[", "[1,", "{\"a\"", "{\"a\":", "{\"a\":1", "\"abc", "tru", "nul", "[1 2]", "{\"a\" 1}",
        "{a:1}", "{'a':1}", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "1e", "1e+", "+1", "-", "--1", "0x10", "NaN",
        "Infinity", "1e999", "\"\\x41\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"a\nb\"", "\"tab\there\"", "\"\xff\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"",
        "\xef\xbb\xbf{}", "{} x", "[] []", "{\"a\":1,\"a\":2}", "[1]\x01", "// c\n{}", "\"\\", "{\"a\":[}", "[\"a\":1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) check_rejects(bad[i]);
    char deep[10001];
    memset(deep, '[', 10000);
    deep[10000] = 0;
    check_rejects(deep);
    memset(deep, '{', 1);
    check_rejects(deep);
}

/* Random byte mutations and truncations of valid documents: each must parse or fail, never
 * crash or leak (ASan builds check the latter). */
static void test_mutations(void) {
    const char *seed_docs[] = {
        "{\"custom_id\":\"a\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9\\ud83d\\ude00\"}],\"stop\":[\"\\n\"]}}",
        "[1.5e-3,-0,true,false,null,{\"k\":[[[]]]},\"\\\"\"]",
    };
    struct test_rng r = {0x9e3779b97f4a7c15ull};
    int ok = 0, rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const char *src = seed_docs[iter & 1];
        size_t n = strlen(src);
        char buf[256];
        memcpy(buf, src, n);
        int muts = 1 + (int)(test_rng_next(&r) % 3);
        for (int k = 0; k < muts; k++) buf[test_rng_next(&r) % n] = (char)(test_rng_next(&r) & 0xff);
        size_t len = (iter % 5 == 0) ? test_rng_next(&r) % (n + 1) : n;
        struct json_value v;
        enum rwkv7_status st = json_parse(buf, len, NULL, &v);
        if (st == RWKV7_OK) ok++;
        else rejected++;
        json_free(&v);
    }
    CHECK(ok > 0 && rejected > 0, "mutations: %d parsed, %d rejected", ok, rejected);
}

static void test_writer(void) {
    struct json_buf b = {0};
    json_buf_string(&b, "a\"b\\c\n\t\x01\x7f\xc3\xa9\xff\xe2\x82 \xf0\x9f\x98\x80", 19);
    const char *want = "\"a\\\"b\\\\c\\n\\t\\u0001\x7f\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xf0\x9f\x98\x80\"";
    CHECK(!strcmp(b.p, want), "escaped string: %s", b.p);
    /* The writer's output always parses back: here the invalid bytes became U+FFFD. */
    struct json_value v;
    CHECK(json_parse(b.p, b.n, NULL, &v) == RWKV7_OK && v.type == JSON_STRING, "round trip: %s", rwkv7_last_error());
    json_free(&v);
    json_buf_free(&b);
    json_buf_raw(&b, "[", 1);
    json_buf_number(&b, 0.1);
    json_buf_raw(&b, ",", 1);
    json_buf_number(&b, 1e300 * 1e300);
    json_buf_raw(&b, ",", 1);
    json_buf_number(&b, -3);
    json_buf_printf(&b, ",%d]", 42);
    CHECK(!strcmp(b.p, "[0.1,null,-3,42]"), "numbers: %s", b.p);
    json_buf_free(&b);
    /* Long printf output takes the slow path. */
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    json_buf_printf(&b, "%s%s", big, big);
    CHECK(b.n == 2 * (sizeof big - 1) && !b.oom, "long printf");
    json_buf_free(&b);
}

/* CPU time of this process: the limits below are about the parser's work, not about what else
 * the (shared) machine runs meanwhile. */
static double ms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* "Within a second" holds for an optimised build; sanitizer builds run the same code several
 * times slower. The quadratic parser this guards against took 37 s for 200,000 keys. */
#if defined(__SANITIZE_ADDRESS__)
#define LIMIT_MS 4000.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LIMIT_MS 4000.0
#endif
#endif
#ifndef LIMIT_MS
#define LIMIT_MS 1000.0
#endif

/* One object of n keys "k0".."k{n-1}" (plus, with dup, a last key equal to the first). */
static char *many_keys(size_t n, bool dup, size_t *len) {
    char *b = malloc(n * 24 + 64), *p = b;
    if (!b) return NULL;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) p += sprintf(p, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    if (dup) p += sprintf(p, ",\"k0\":1");
    *p++ = '}';
    *len = (size_t)(p - b);
    return b;
}

/* Issue 16: the duplicate-key check was quadratic (200,000 keys took 37 s, a 10 MB line more than
 * 20 minutes). Now keys go through a hash index and an object has at most max_keys members. */
static void test_linear_time_keys(void) {
    size_t n;
    char *doc = many_keys(100000, false, &n);
    double t0 = ms_now();
    struct json_value v;
    enum rwkv7_status st = json_parse(doc, n, NULL, &v);
    double ms = ms_now() - t0;
    CHECK(st == RWKV7_OK && v.len == 100000, "100,000 keys parse: %s", rwkv7_last_error());
    CHECK(ms < LIMIT_MS, "100,000 keys took %.0f ms", ms);
    const struct json_value *last = json_get(&v, "k99999");
    CHECK(last && last->i == 99999, "last key found");
    json_free(&v);
    free(doc);
    doc = many_keys(99999, true, &n);
    CHECK(json_parse(doc, n, NULL, &v) == RWKV7_ERR_FORMAT && strstr(rwkv7_last_error(), "duplicate key"),
          "a duplicate 99,999 keys apart is found: %s", rwkv7_last_error());
    free(doc);
    doc = many_keys(200000, false, &n);
    t0 = ms_now();
    st = json_parse(doc, n, NULL, &v);
    ms = ms_now() - t0;
    CHECK(st == RWKV7_ERR_FORMAT && strstr(rwkv7_last_error(), "100000 keys (the limit)"), "200,000 keys: %s",
          rwkv7_last_error());
    CHECK(ms < LIMIT_MS, "200,000 keys took %.0f ms", ms);
    free(doc);
    /* Small objects: duplicates on the linear path and right after the switch to the index. */
    for (size_t k = 2; k < 40; k++) {
        doc = many_keys(k, true, &n);
        CHECK(json_parse(doc, n, NULL, &v) == RWKV7_ERR_FORMAT, "duplicate among %zu keys", k);
        free(doc);
        doc = many_keys(k, false, &n);
        CHECK(json_parse(doc, n, NULL, &v) == RWKV7_OK && v.len == k, "%zu distinct keys", k);
        json_free(&v);
        free(doc);
    }
    /* A 10 MB line (one long string) parses well within a second; the key limit is settable. */
    size_t big = 10u << 20;
    doc = malloc(big + 32);
    if (doc) {
        memcpy(doc, "{\"s\":\"", 6);
        memset(doc + 6, 'a', big);
        memcpy(doc + 6 + big, "\"}", 2);
        t0 = ms_now();
        st = json_parse(doc, big + 8, NULL, &v);
        ms = ms_now() - t0;
        CHECK(st == RWKV7_OK && json_get(&v, "s")->len == big, "10 MB string: %s", rwkv7_last_error());
        CHECK(ms < LIMIT_MS, "10 MB line took %.0f ms", ms);
        json_free(&v);
        free(doc);
    }
    struct json_limits lim = {0, 0, 3, NULL};
    CHECK(json_parse("{\"a\":1,\"b\":2,\"c\":3}", 19, &lim, &v) == RWKV7_OK, "3 keys at limit 3");
    json_free(&v);
    CHECK(json_parse("{\"a\":1,\"b\":2,\"c\":3,\"d\":4}", 25, &lim, &v) == RWKV7_ERR_FORMAT, "4 keys over limit 3");
    volatile int stop = 1;
    struct json_limits ls = {0, 0, 0, &stop};
    CHECK(json_parse("{\"a\":1}", 7, &ls, &v) == RWKV7_ERR_FORMAT && strstr(rwkv7_last_error(), "interrupted"),
          "a raised stop flag ends parsing: %s", rwkv7_last_error());
}

int main(void) {
    test_valid();
    test_linear_time_keys();
    test_invalid();
    test_mutations();
    test_writer();
    return test_finish("test_json");
}
