/* test_tokenizer.c: the World tokenizer against llama.cpp's ids (fixtures world/
 * tokenizer-cases.jsonl, prompt.txt/.ids, rwkv7-gguf.md section 6.6 vectors), round trips,
 * section 6.2 unescaping, the byte vocabulary of the small fixture models, hand-made vocabularies
 * (duplicates, unmatched bytes) and the streaming UTF-8 assembler. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "testing.h"
#include "tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Parses the JSON string starting at the opening quote *pp into out (UTF-8); returns its length
 * and moves *pp past the closing quote. Handles every escape JSON has, surrogate pairs included. */
static size_t json_string(const char **pp, char *out) {
    const char *p = *pp + 1;
    size_t o = 0;
    while (*p && *p != '"') {
        if (*p != '\\') { out[o++] = *p++; continue; }
        p++;
        char c = *p++;
        switch (c) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            uint32_t cp = hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = hex4(p + 2);
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default: out[o++] = c; break; /* \" \\ \/ */
        }
    }
    *pp = *p ? p + 1 : p;
    return o;
}

static void check_encode(const struct rwkv7_tokenizer *tok, const char *what, const char *text,
                         size_t n, const int32_t *want, size_t n_want) {
    int32_t ids[512];
    size_t n_ids = 0;
    enum rwkv7_status st = rwkv7_tokenize(tok, text, n, ids, 512, &n_ids);
    CHECK(st == RWKV7_OK, "%s: %s", what, rwkv7_last_error());
    int same = n_ids == n_want;
    for (size_t i = 0; same && i < n_ids; i++) same = ids[i] == want[i];
    CHECK(same, "%s: got %zu ids (first %d), want %zu (first %d)", what, n_ids,
          n_ids ? (int)ids[0] : -1, n_want, n_want ? (int)want[0] : -1);
    /* Sizing call: cap 0 must report the same count and write nothing. */
    size_t n_size = 0;
    CHECK(rwkv7_tokenize(tok, text, n, NULL, 0, &n_size) == RWKV7_OK && n_size == n_ids,
          "%s: sizing call gave %zu", what, n_size);
    if (n_ids > 512) return;
    char back[8192];
    size_t len = 0;
    st = rwkv7_detokenize(tok, ids, n_ids, back, sizeof back, &len);
    /* <s> (id 0) detokenizes to nothing, so texts holding it cannot round-trip. */
    int has_s = 0;
    for (size_t i = 0; i + 3 <= n; i++) has_s |= memcmp(text + i, "<s>", 3) == 0;
    if (!has_s)
        CHECK(st == RWKV7_OK && len == n && memcmp(back, text, n) == 0,
              "%s: decode(encode(text)) differs (%zu vs %zu bytes)", what, len, n);
}

static void test_unescape(void) {
    struct { const char *esc, *raw; size_t n; } c[] = {
        {"\\n", "\n", 1}, {"\\t\\r", "\t\r", 2}, {"\\\\", "\\", 1}, {"\\'", "'", 1},
        {"\\xe4\\xbd\\xa0", "\xe4\xbd\xa0", 3}, {"\\x00", "\0", 1}, {"a\\x41b", "aAb", 3},
        {"it's", "it's", 4}, {"\\x4", "", 0}, {"ab\\", "ab", 2}, {"\\q", "q", 1},
        {"\\xff", "\xff", 1},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        unsigned char out[16];
        size_t n = rwkv7_token_unescape(c[i].esc, strlen(c[i].esc), out);
        CHECK(n == c[i].n && memcmp(out, c[i].raw, n) == 0, "unescape '%s' gave %zu bytes",
              c[i].esc, n);
    }
}

static void test_small_vocab(void) {
    /* id 3 duplicates id 1: the later id must win. */
    const char *v[] = {"<s>", "ab", "a", "ab", "abcd", "", "b", "\\xe4\\xbd\\xa0"};
    struct rwkv7_gguf_str s[8];
    for (int i = 0; i < 8; i++) s[i] = (struct rwkv7_gguf_str){v[i], strlen(v[i])};
    struct rwkv7_tokenizer *tok = NULL;
    CHECK(rwkv7_tokenizer_init(s, 8, &tok) == RWKV7_OK, "%s", rwkv7_last_error());
    if (!tok) return;
    const int32_t w1[] = {3, 3, 2, 0, 4, 2};
    check_encode(tok, "small", "ababa<s>abcda", 13, w1, 6);
    const int32_t w2[] = {3, 7, 6};
    check_encode(tok, "small utf8", "ab\xe4\xbd\xa0" "b", 6, w2, 3);
    /* "abc" backs off to "ab" then fails at 'c': the error names the offset. */
    int32_t ids[8];
    size_t n = 99;
    rwkv7_clear_error();
    enum rwkv7_status st = rwkv7_tokenize(tok, "abc", 3, ids, 8, &n);
    CHECK(st == RWKV7_ERR_ARG, "unmatched byte gave status %d", st);
    CHECK(strstr(rwkv7_last_error(), "offset 2") != NULL, "message: %s", rwkv7_last_error());
    CHECK(n == 0, "failed tokenize left n_ids = %zu", n);
    size_t len;
    CHECK(rwkv7_token_piece(tok, 8, &len) == NULL && rwkv7_token_piece(tok, -1, &len) == NULL,
          "out-of-range piece not NULL");
    const char *p = rwkv7_token_piece(tok, 0, &len);
    CHECK(p && len == 0, "id 0 piece has %zu bytes", len);
    p = rwkv7_token_piece(tok, 4, &len);
    CHECK(p && len == 4 && memcmp(p, "abcd", 4) == 0, "piece 4");
    CHECK(rwkv7_tokenizer_n_vocab(tok) == 8, "n_vocab");
    int32_t bad[] = {1, 9};
    char out[8];
    CHECK(rwkv7_detokenize(tok, bad, 2, out, 8, &len) == RWKV7_ERR_ARG, "bad id accepted");
    rwkv7_tokenizer_free(tok);
    CHECK(rwkv7_tokenizer_init(s, 0, &tok) == RWKV7_ERR_ARG && tok == NULL, "empty vocab");
}

static void test_world(void) {
    char path[1024];
    struct rwkv7_gguf *g = NULL;
    test_fixture(path, sizeof path, "world/world-c128-Q8_0.gguf");
    if (rwkv7_gguf_open(path, &g) != RWKV7_OK) {
        CHECK(0, "open %s: %s", path, rwkv7_last_error());
        return;
    }
    struct rwkv7_tokenizer *tok = NULL;
    double t0 = now_s();
    enum rwkv7_status st = rwkv7_tokenizer_from_gguf(g, &tok);
    double t_build = now_s() - t0;
    CHECK(st == RWKV7_OK, "from_gguf: %s", rwkv7_last_error());
    if (!tok) { rwkv7_gguf_free(g); return; }
    fprintf(stderr, "world vocab built in %.1f ms\n", t_build * 1e3);
    CHECK(t_build < 1.0, "building the vocab took %.3f s", t_build);
    CHECK(rwkv7_tokenizer_n_vocab(tok) == 65536, "n_vocab %d", rwkv7_tokenizer_n_vocab(tok));

    size_t len;
    const char *p = rwkv7_token_piece(tok, 10464, &len);
    CHECK(p && len == 3 && memcmp(p, "\xe4\xbd\xa0", 3) == 0, "piece 10464 is not U+4F60");
    p = rwkv7_token_piece(tok, 261, &len);
    CHECK(p && len == 2 && memcmp(p, "\n\n", 2) == 0, "piece 261");
    p = rwkv7_token_piece(tok, 93, &len);
    CHECK(p && len == 1 && p[0] == '\\', "piece 93 is not a backslash");
    p = rwkv7_token_piece(tok, 0, &len);
    CHECK(p && len == 0, "piece 0 has %zu bytes", len);
    CHECK(rwkv7_token_piece(tok, 65536, &len) == NULL, "piece 65536 not NULL");

    /* tokenizer-cases.jsonl */
    size_t n_file = 0;
    char *cases = test_read_file(test_fixture(path, sizeof path, "world/tokenizer-cases.jsonl"),
                                 &n_file);
    CHECK(cases != NULL, "cannot read %s", path);
    int n_cases = 0;
    for (char *line = cases; cases && line < cases + n_file;) {
        char *eol = memchr(line, '\n', (size_t)(cases + n_file - line));
        if (eol) *eol = 0;
        const char *q = strstr(line, "\"text\"");
        const char *r = strstr(line, "\"ids\"");
        if (q && r) {
            q = strchr(q + 6, '"');
            static char text[8192];
            size_t n = json_string(&q, text);
            int32_t want[512];
            size_t n_want = 0;
            for (const char *c = strchr(r, '[') + 1; *c && *c != ']';) {
                if (*c >= '0' && *c <= '9') want[n_want++] = (int32_t)strtol(c, (char **)&c, 10);
                else c++;
            }
            char what[64];
            snprintf(what, sizeof what, "case %d", n_cases);
            check_encode(tok, what, text, n, want, n_want);
            n_cases++;
        }
        line = eol ? eol + 1 : cases + n_file;
    }
    CHECK(n_cases == 18, "read %d cases, README says 18", n_cases);
    free(cases);

    /* prompt.txt -> prompt.ids */
    size_t n_txt = 0, n_idtxt = 0;
    char *txt = test_read_file(test_fixture(path, sizeof path, "world/prompt.txt"), &n_txt);
    char *idtxt = test_read_file(test_fixture(path, sizeof path, "world/prompt.ids"), &n_idtxt);
    CHECK(txt && idtxt, "cannot read prompt fixtures");
    if (txt && idtxt) {
        int32_t want[512];
        size_t n_want = 0;
        char *c = idtxt, *end = idtxt + n_idtxt;
        while (c < end && n_want < 512) {
            if (*c >= '0' && *c <= '9') want[n_want++] = (int32_t)strtol(c, &c, 10);
            else c++;
        }
        CHECK(n_want == 23, "prompt.ids has %zu ids", n_want);
        check_encode(tok, "prompt.txt", txt, n_txt, want, n_want);
    }
    free(txt);
    free(idtxt);

    /* rwkv7-gguf.md section 6.6 */
    static const struct { const char *text; int32_t ids[16]; size_t n; } v[] = {
        {"User: hi\n\nAssistant:", {24281, 59, 4571, 261, 5585, 41693, 59}, 7},
        {"User: What is 1+1?\n\nAssistant: <think",
         {24281, 59, 30031, 4600, 284, 44, 50, 64, 261, 5585, 41693, 59, 295, 35762}, 14},
        {"The Eiffel tower is in the city of",
         {6699, 304, 25740, 109, 39990, 4600, 4596, 22590, 30449, 4706}, 10},
        {"\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c",
         {10464, 11685, 19137, 10267, 14610}, 5},
        {"<s>User: hi", {0, 24281, 59, 4571}, 4},
        {"System: You are helpful.\n\nUser: hi\n\nAssistant:",
         {40812, 59, 21189, 21286, 51922, 47, 261, 24281, 59, 4571, 261, 5585, 41693, 59}, 14},
        {"Assistant: <think>\n</think>", {5585, 41693, 59, 295, 35762, 63, 11, 754, 35762, 63}, 10},
        {"<s>", {0}, 1},
        {"[PAD65535]", {65535}, 1},
        {"\n\n\n", {3328}, 1},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        check_encode(tok, v[i].text, v[i].text, strlen(v[i].text), v[i].ids, v[i].n);

    /* Every byte value alone must encode to token b + 1 (section 6.1). */
    int bytes_ok = 1;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int32_t id;
        size_t n;
        if (rwkv7_tokenize(tok, &c, 1, &id, 1, &n) != RWKV7_OK || n != 1 || id != b + 1)
            bytes_ok = 0;
    }
    CHECK(bytes_ok, "single bytes do not map to b + 1");

    /* Throughput on a few hundred KB of mixed text. */
    size_t big_n = 0, unit = strlen(v[5].text);
    char *big = malloc(400000);
    while (big && big_n + unit + 16 < 400000) {
        memcpy(big + big_n, v[5].text, unit);
        big_n += unit;
        memcpy(big + big_n, v[3].text, 15);
        big_n += 15;
    }
    int32_t *bids = malloc(big_n * sizeof *bids);
    if (big && bids) {
        size_t n_ids = 0;
        t0 = now_s();
        st = rwkv7_tokenize(tok, big, big_n, bids, big_n, &n_ids);
        double dt = now_s() - t0;
        CHECK(st == RWKV7_OK && n_ids > 0, "big tokenize");
        fprintf(stderr, "tokenized %zu bytes into %zu ids at %.1f MB/s\n", big_n, n_ids,
                (double)big_n / dt / 1e6);
        CHECK(dt < 2.0, "tokenizing %zu bytes took %.3f s", big_n, dt);
        char *back = malloc(big_n);
        size_t len2 = 0;
        CHECK(back && rwkv7_detokenize(tok, bids, n_ids, back, big_n, &len2) == RWKV7_OK &&
                  len2 == big_n && memcmp(back, big, big_n) == 0,
              "big round trip");
        free(back);
    }
    free(big);
    free(bids);
    rwkv7_tokenizer_free(tok);
    rwkv7_gguf_free(g);
}

static void test_byte_vocab(void) {
    char path[1024];
    struct rwkv7_gguf *g = NULL;
    test_fixture(path, sizeof path, "rand-c256-l2/rand-c256-l2-F32.gguf");
    if (rwkv7_gguf_open(path, &g) != RWKV7_OK) {
        CHECK(0, "open %s: %s", path, rwkv7_last_error());
        return;
    }
    struct rwkv7_tokenizer *tok = NULL;
    CHECK(rwkv7_tokenizer_from_gguf(g, &tok) == RWKV7_OK, "%s", rwkv7_last_error());
    rwkv7_gguf_free(g); /* the tokenizer copies what it needs */
    if (!tok) return;
    CHECK(rwkv7_tokenizer_n_vocab(tok) == 256, "byte vocab n_vocab");
    size_t n_ids_txt = 0;
    char *idtxt = test_read_file(test_fixture(path, sizeof path, "rand-c256-l2/tokens.txt"),
                                 &n_ids_txt);
    CHECK(idtxt != NULL, "cannot read %s", path);
    if (idtxt) {
        int32_t want[256];
        char text[256];
        size_t n = 0;
        for (char *c = idtxt; c < idtxt + n_ids_txt && n < 256;) {
            if (*c >= '0' && *c <= '9') {
                want[n] = (int32_t)strtol(c, &c, 10);
                text[n] = (char)want[n];
                n++;
            } else {
                c++;
            }
        }
        CHECK(n == 81, "tokens.txt has %zu ids", n);
        check_encode(tok, "byte vocab sentence", text, n, want, n);
    }
    free(idtxt);
    int ok = 1;
    for (int b = 1; b < 256; b++) {
        size_t len;
        const char *p = rwkv7_token_piece(tok, b, &len);
        char c = (char)b;
        int32_t id;
        size_t n;
        ok &= p && len == 1 && (unsigned char)p[0] == b;
        ok &= rwkv7_tokenize(tok, &c, 1, &id, 1, &n) == RWKV7_OK && n == 1 && id == b;
    }
    CHECK(ok, "byte vocab: token b is not byte b");
    rwkv7_tokenizer_free(tok);
}

/* Feeds text in pieces cut at the given points; the output must equal the input. */
static void stream_split(const char *text, size_t n, const size_t *cuts, int n_cuts,
                         const char *what) {
    struct rwkv7_utf8_stream u;
    rwkv7_utf8_stream_init(&u);
    char out[256];
    size_t o = 0, prev = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        size_t w = rwkv7_utf8_stream_feed(&u, text + prev, end - prev, out + o);
        /* Whatever came out must be a run of complete characters or final invalid bytes. */
        o += w;
        prev = end;
    }
    o += rwkv7_utf8_stream_flush(&u, out + o);
    CHECK(o == n && memcmp(out, text, n) == 0, "%s: stream output differs", what);
}

static void test_utf8_stream(void) {
    struct rwkv7_utf8_stream u;
    rwkv7_utf8_stream_init(&u);
    char out[64];
    /* "你" split 1 + 2: nothing until the last byte, then all three. */
    size_t w = rwkv7_utf8_stream_feed(&u, "a\xe4", 2, out);
    CHECK(w == 1 && out[0] == 'a' && u.n_pend == 1, "first piece emitted %zu", w);
    w = rwkv7_utf8_stream_feed(&u, "\xbd", 1, out);
    CHECK(w == 0 && u.n_pend == 2, "middle byte emitted %zu", w);
    w = rwkv7_utf8_stream_feed(&u, "\xa0!", 2, out);
    CHECK(w == 4 && memcmp(out, "\xe4\xbd\xa0!", 4) == 0, "completed char emitted %zu", w);
    /* Emoji one byte at a time. */
    const char *e = "\xf0\x9f\x98\x80";
    size_t tot = 0;
    for (int i = 0; i < 4; i++) {
        w = rwkv7_utf8_stream_feed(&u, e + i, 1, out + tot);
        CHECK(w == (i == 3 ? 4u : 0u), "emoji byte %d emitted %zu", i, w);
        tot += w;
    }
    CHECK(memcmp(out, e, 4) == 0, "emoji bytes");
    /* A broken sequence is released as soon as it can no longer complete. */
    w = rwkv7_utf8_stream_feed(&u, "\xe4\xbd", 2, out);
    CHECK(w == 0, "prefix held");
    w = rwkv7_utf8_stream_feed(&u, "x", 1, out);
    CHECK(w == 3 && memcmp(out, "\xe4\xbdx", 3) == 0, "broken prefix released (%zu)", w);
    /* Stray continuation, invalid leads, overlong and surrogate starts pass at once. */
    w = rwkv7_utf8_stream_feed(&u, "\x80\xc0\xff\xe0\x80\xed\xa0", 7, out);
    CHECK(w == 7 && u.n_pend == 0, "invalid bytes passed %zu, held %d", w, u.n_pend);
    /* A dangling lead at the end comes out on flush. */
    w = rwkv7_utf8_stream_feed(&u, "\xf0\x9f", 2, out);
    CHECK(w == 0, "dangling lead held");
    w = rwkv7_utf8_stream_flush(&u, out);
    CHECK(w == 2 && memcmp(out, "\xf0\x9f", 2) == 0 && u.n_pend == 0, "flush gave %zu", w);

    const char *mixed = "h\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80\xed\x9f\xbf\xf4\x8f\xbf\xbf.";
    size_t n = strlen(mixed);
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++) {
            size_t cuts[2] = {a, b};
            stream_split(mixed, n, cuts, 2, "mixed");
        }
}

int main(void) {
    test_unescape();
    test_small_vocab();
    test_utf8_stream();
    test_world();
    test_byte_vocab();
    return test_finish("test_tokenizer");
}
