/* test_json.c: host/json.c, the strict JSON parser used for batch input, and its writer.
 * Valid documents must parse to the right values; malformed ones (truncated, bad escapes, deep
 * nesting, invalid UTF-8, trailing garbage, lone surrogates) must fail cleanly with a message.
 * A seeded mutation loop checks that no corruption of a valid document crashes the parser. */
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
    struct json_limits lim = {8, 1000};
    for (int i = 0; i < 8; i++) deep[i] = '[';
    for (int i = 0; i < 8; i++) deep[8 + i] = ']';
    struct json_value d;
    CHECK(json_parse(deep, 16, &lim, &d) == RWKV7_OK, "depth 8 at limit 8: %s", rwkv7_last_error());
    json_free(&d);
    memset(deep, 0, sizeof deep);
    for (int i = 0; i < 9; i++) deep[i] = '[';
    for (int i = 0; i < 9; i++) deep[9 + i] = ']';
    CHECK(json_parse(deep, 18, &lim, &d) == RWKV7_ERR_FORMAT && strstr(rwkv7_last_error(), "deep"), "depth 9 rejected");
    CHECK(json_parse("[1,2,3,4,5]", 11, &(struct json_limits){8, 10}, &d) == RWKV7_ERR_FORMAT, "size limit");
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

int main(void) {
    test_valid();
    test_invalid();
    test_mutations();
    test_writer();
    return test_finish("test_json");
}
