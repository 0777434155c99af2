/* json.c: see json.h. Recursive descent over a (pointer, end) pair; depth is bounded by
 * json_limits.max_depth, so the recursion is too. Every error path frees what was built and
 * reports the byte offset, so a bad line in a batch file can be named precisely. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "status.h"

struct parser {
    const char *s, *p, *end;
    int max_depth;
    size_t max_keys;
    const volatile int *stop; /* non-NULL: parsing gives up when *stop becomes non-zero */
};

static enum rwkv7_status perr(const struct parser *ps, const char *what) {
    return rwkv7_fail(RWKV7_ERR_FORMAT, "json: %s at byte %zu", what, (size_t)(ps->p - ps->s));
}

static void skip_ws(struct parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is invalid: overlong forms,
 * surrogates and code points above U+10FFFF are all rejected, as RFC 3629 requires. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if ((size_t)(end - p) < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string at ps->p (which is at the opening quote). The decoded form is never longer
 * than the encoded one (\uXXXX is 6 bytes for at most 3, a surrogate pair 12 for 4), so one
 * allocation of the raw length suffices. */
static enum rwkv7_status parse_string(struct parser *ps, char **out, size_t *out_len) {
    const char *q = ++ps->p;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end) return perr(ps, "unterminated string");
    char *buf = malloc((size_t)(q - ps->p) + 1), *o = buf;
    if (!buf) return rwkv7_fail(RWKV7_ERR_OOM, "json: out of memory");
    enum rwkv7_status st = RWKV7_OK;
    while (*ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) { st = perr(ps, "control character in string"); break; }
        if (c != '\\') {
            size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
            if (!n) { st = perr(ps, "invalid UTF-8 in string"); break; }
            memcpy(o, ps->p, n);
            o += n;
            ps->p += n;
            continue;
        }
        char e = ps->p[1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            *o++ = map[simple - "\"\\/bfnrt"];
            ps->p += 2;
            continue;
        }
        if (e != 'u') { ps->p++; st = perr(ps, "bad escape in string"); break; }
        int cp = (ps->end - ps->p >= 6) ? hex4(ps->p + 2) : -1;
        if (cp < 0) { st = perr(ps, "bad \\u escape"); break; }
        if (cp >= 0xDC00 && cp <= 0xDFFF) { st = perr(ps, "lone low surrogate"); break; }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = (ps->end - ps->p >= 12 && ps->p[6] == '\\' && ps->p[7] == 'u') ? hex4(ps->p + 8) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) { st = perr(ps, "lone high surrogate"); break; }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            ps->p += 6;
        }
        o += put_utf8(o, (unsigned)cp);
        ps->p += 6;
    }
    if (st != RWKV7_OK) {
        free(buf);
        return st;
    }
    ps->p++;
    *o = 0;
    *out = buf;
    *out_len = (size_t)(o - buf);
    return RWKV7_OK;
}

static enum rwkv7_status parse_number(struct parser *ps, struct json_value *v) {
    const char *a = ps->p, *q = a;
    bool integral = true;
    if (q < ps->end && *q == '-') q++;
    if (q < ps->end && *q == '0') q++;
    else if (q < ps->end && *q >= '1' && *q <= '9')
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    else return perr(ps, "bad number");
    if (q < ps->end && *q == '.') {
        integral = false;
        if (++q >= ps->end || *q < '0' || *q > '9') { ps->p = q; return perr(ps, "bad number fraction"); }
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        integral = false;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || *q < '0' || *q > '9') { ps->p = q; return perr(ps, "bad number exponent"); }
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    /* The text need not be NUL-terminated, so strtod reads a bounded copy. */
    char tmp[128];
    size_t n = (size_t)(q - a);
    if (n >= sizeof tmp) return perr(ps, "number too long");
    memcpy(tmp, a, n);
    tmp[n] = 0;
    errno = 0;
    v->num = strtod(tmp, NULL);
    if (errno == ERANGE && isinf(v->num)) return perr(ps, "number out of range");
    if (integral) {
        errno = 0;
        long long x = strtoll(tmp, NULL, 10);
        v->is_int = errno == 0;
        v->i = (int64_t)x;
    }
    v->type = JSON_NUMBER;
    ps->p = q;
    return RWKV7_OK;
}

static enum rwkv7_status parse_value(struct parser *ps, struct json_value *v, int depth);

static enum rwkv7_status parse_array(struct parser *ps, struct json_value *v, int depth) {
    v->type = JSON_ARRAY;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') { ps->p++; return RWKV7_OK; }
    size_t cap = 0;
    for (;;) {
        if (v->len == cap) {
            size_t nc = cap ? 2 * cap : 4;
            struct json_value *ni = realloc(v->items, nc * sizeof *ni);
            if (!ni) return rwkv7_fail(RWKV7_ERR_OOM, "json: out of memory");
            v->items = ni;
            cap = nc;
        }
        memset(&v->items[v->len], 0, sizeof v->items[0]);
        enum rwkv7_status st = parse_value(ps, &v->items[v->len], depth + 1);
        v->len++; /* counted even on failure, so json_free releases the partial item */
        if (st != RWKV7_OK) return st;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == ']') { ps->p++; return RWKV7_OK; }
        return perr(ps, ps->p < ps->end ? "expected ',' or ']'" : "unterminated array");
    }
}

static uint64_t key_hash(const char *k, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return h;
}

/* The duplicate-key index of one object: open addressing over member indices (+1, 0 = empty),
 * kept under half full. Small objects (the common case) skip it and compare linearly; from
 * DUP_LINEAR members on, every key costs O(1) expected, so a line of n keys parses in O(n). */
#define DUP_LINEAR 16
struct key_index {
    uint32_t *slot;
    size_t cap;
};

static bool key_index_insert(struct key_index *ix, const struct json_member *m, size_t i) {
    uint64_t h = key_hash(m[i].key, m[i].key_len);
    size_t j = (size_t)h & (ix->cap - 1);
    while (ix->slot[j]) {
        const struct json_member *o = &m[ix->slot[j] - 1];
        if (o->key_len == m[i].key_len && !memcmp(o->key, m[i].key, o->key_len)) return false;
        j = (j + 1) & (ix->cap - 1);
    }
    ix->slot[j] = (uint32_t)(i + 1);
    return true;
}

/* Adds member i; returns RWKV7_OK, or RWKV7_ERR_FORMAT when its key is already there (message
 * left to the caller), or RWKV7_ERR_OOM. */
static enum rwkv7_status key_index_add(struct key_index *ix, const struct json_member *m, size_t i) {
    if (i + 1 < DUP_LINEAR) {
        for (size_t k = 0; k < i; k++)
            if (m[k].key_len == m[i].key_len && !memcmp(m[k].key, m[i].key, m[i].key_len)) return RWKV7_ERR_FORMAT;
        return RWKV7_OK;
    }
    if (2 * (i + 1) > ix->cap) {
        size_t nc = ix->cap ? 2 * ix->cap : 4 * DUP_LINEAR;
        uint32_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return rwkv7_fail(RWKV7_ERR_OOM, "json: out of memory");
        free(ix->slot);
        ix->slot = ns;
        ix->cap = nc;
        for (size_t k = 0; k < i; k++) key_index_insert(ix, m, k); /* distinct already */
    }
    return key_index_insert(ix, m, i) ? RWKV7_OK : RWKV7_ERR_FORMAT;
}

static enum rwkv7_status parse_object(struct parser *ps, struct json_value *v, int depth) {
    v->type = JSON_OBJECT;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') { ps->p++; return RWKV7_OK; }
    size_t cap = 0;
    struct key_index ix = {NULL, 0};
    enum rwkv7_status st = RWKV7_OK;
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            st = perr(ps, ps->p < ps->end ? "expected a string key" : "unterminated object");
            break;
        }
        if (v->len >= ps->max_keys) {
            st = rwkv7_fail(RWKV7_ERR_FORMAT, "json: object has more than %zu keys (the limit) at byte %zu", ps->max_keys,
                            (size_t)(ps->p - ps->s));
            break;
        }
        if (ps->stop && *ps->stop) {
            st = rwkv7_fail(RWKV7_ERR_FORMAT, "json: interrupted at byte %zu", (size_t)(ps->p - ps->s));
            break;
        }
        if (v->len == cap) {
            size_t nc = cap ? 2 * cap : 4;
            struct json_member *nm = realloc(v->members, nc * sizeof *nm);
            if (!nm) {
                st = rwkv7_fail(RWKV7_ERR_OOM, "json: out of memory");
                break;
            }
            v->members = nm;
            cap = nc;
        }
        struct json_member *m = &v->members[v->len];
        memset(m, 0, sizeof *m);
        const char *key_at = ps->p;
        if ((st = parse_string(ps, &m->key, &m->key_len)) != RWKV7_OK) break;
        v->len++;
        /* Duplicate keys are legal RFC 8259 but ambiguous (parsers disagree on which wins), so a
         * strict reader refuses them rather than guess. */
        if ((st = key_index_add(&ix, v->members, v->len - 1)) != RWKV7_OK) {
            if (st == RWKV7_ERR_FORMAT) {
                ps->p = key_at;
                perr(ps, "duplicate key");
            }
            break;
        }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            st = perr(ps, "expected ':'");
            break;
        }
        ps->p++;
        if ((st = parse_value(ps, &m->value, depth + 1)) != RWKV7_OK) break;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == '}') { ps->p++; break; }
        st = perr(ps, ps->p < ps->end ? "expected ',' or '}'" : "unterminated object");
        break;
    }
    free(ix.slot);
    return st;
}

static bool literal(struct parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) return false;
    ps->p += n;
    return true;
}

static enum rwkv7_status parse_value(struct parser *ps, struct json_value *v, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, "unexpected end of input");
    char c = *ps->p;
    if (c == '{' || c == '[') {
        if (depth >= ps->max_depth)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "json: nesting deeper than %d levels (the limit) at byte %zu", ps->max_depth,
                              (size_t)(ps->p - ps->s));
        return c == '{' ? parse_object(ps, v, depth) : parse_array(ps, v, depth);
    }
    if (c == '"') {
        v->type = JSON_STRING;
        return parse_string(ps, &v->str, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(ps, v);
    if (literal(ps, "true")) { v->type = JSON_BOOL; v->boolean = true; return RWKV7_OK; }
    if (literal(ps, "false")) { v->type = JSON_BOOL; return RWKV7_OK; }
    if (literal(ps, "null")) { v->type = JSON_NULL; return RWKV7_OK; }
    return perr(ps, "unexpected character");
}

enum rwkv7_status json_parse(const char *text, size_t n, const struct json_limits *lim, struct json_value *out) {
    memset(out, 0, sizeof *out);
    struct json_limits dl = {JSON_DEFAULT_MAX_DEPTH, JSON_DEFAULT_MAX_BYTES, JSON_DEFAULT_MAX_KEYS, NULL};
    if (!lim) lim = &dl;
    size_t max_bytes = lim->max_bytes ? lim->max_bytes : JSON_DEFAULT_MAX_BYTES;
    if (n > max_bytes) return rwkv7_fail(RWKV7_ERR_FORMAT, "json: document of %zu bytes exceeds the %zu-byte limit", n, max_bytes);
    struct parser ps = {text, text, text + n, lim->max_depth > 0 ? lim->max_depth : JSON_DEFAULT_MAX_DEPTH,
                        lim->max_keys ? lim->max_keys : JSON_DEFAULT_MAX_KEYS, lim->stop};
    enum rwkv7_status st = parse_value(&ps, out, 0);
    if (st == RWKV7_OK) {
        skip_ws(&ps);
        if (ps.p != ps.end) st = perr(&ps, "trailing characters after the document");
    }
    if (st != RWKV7_OK) json_free(out);
    return st;
}

void json_free(struct json_value *v) {
    if (!v) return;
    if (v->type == JSON_ARRAY)
        for (size_t i = 0; i < v->len; i++) json_free(&v->items[i]);
    if (v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->len; i++) {
            free(v->members[i].key);
            json_free(&v->members[i].value);
        }
    free(v->items);
    free(v->members);
    free(v->str);
    memset(v, 0, sizeof *v);
}

const struct json_value *json_get(const struct json_value *v, const char *key) {
    if (!v || v->type != JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->len; i++)
        if (v->members[i].key_len == n && !memcmp(v->members[i].key, key, n)) return &v->members[i].value;
    return NULL;
}

const char *json_type_name(enum json_type t) {
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static bool buf_reserve(struct json_buf *b, size_t extra) {
    if (b->oom) return false;
    if (b->n + extra + 1 <= b->cap) return true;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + extra + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = nc;
    return true;
}

void json_buf_raw(struct json_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, s, n); /* s may be NULL when n is 0 */
    b->n += n;
    b->p[b->n] = 0;
}

void json_buf_printf(struct json_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int k = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof small) {
        json_buf_raw(b, small, (size_t)k);
        return;
    }
    if (!buf_reserve(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void json_buf_string(struct json_buf *b, const char *s, size_t n) {
    /* Worst case: every byte becomes \u00XX (6 bytes) or U+FFFD (3 bytes). */
    if (!buf_reserve(b, 6 * n + 2)) return;
    char *o = b->p + b->n;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    *o++ = '"';
    while (p < end) {
        unsigned c = *p;
        if (c == '"' || c == '\\') { *o++ = '\\'; *o++ = (char)c; p++; continue; }
        if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            *o++ = '\\';
            switch (c) {
            case '\n': *o++ = 'n'; break;
            case '\t': *o++ = 't'; break;
            case '\r': *o++ = 'r'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default: *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hex[c >> 4]; *o++ = hex[c & 15]; break;
            }
            p++;
            continue;
        }
        size_t k = utf8_len(p, end);
        if (!k) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            p++;
            continue;
        }
        memcpy(o, p, k);
        o += k;
        p += k;
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
    b->p[b->n] = 0;
}

void json_buf_number(struct json_buf *b, double x) {
    if (!isfinite(x)) {
        json_buf_raw(b, "null", 4);
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x) break;
    }
    json_buf_raw(b, tmp, strlen(tmp));
}

void json_buf_free(struct json_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

bool json_write_string(FILE *f, const char *s, size_t n) {
    struct json_buf b = {0};
    json_buf_string(&b, s, n);
    bool ok = !b.oom && fwrite(b.p, 1, b.n, f) == b.n;
    json_buf_free(&b);
    return ok;
}
