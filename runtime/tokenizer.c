/* tokenizer.c: the RWKV World tokenizer (rwkv7-gguf.md section 6, llama.cpp llama-vocab.cpp
 * LLM_VOCAB_TYPE_RWKV): section 6.2 unescaping, a byte trie over all V tokens with greedy
 * longest match, detokenization, and the streaming UTF-8 assembler.
 * The trie keeps the root's 256 children in a direct table (every step starts there) and all
 * deeper edges in one open-addressing hash keyed by parent * 256 + byte, so a 65536-token vocab
 * builds in a few milliseconds without per-node allocations and matching costs one probe per byte. */
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "tokenizer.h"

#define RWKV7_TRIE_MAX_NODES (1u << 24) /* keeps parent * 256 + byte inside 32 bits */

struct rwkv7_tokenizer {
    int n_vocab;                  /* V */
    uint32_t *piece_off;          /* (V + 1) byte offsets of each unescaped token in piece_bytes */
    unsigned char *piece_bytes;   /* all unescaped tokens back to back */
    uint32_t root_child[256];     /* node reached from the root by each byte; 0 = none */
    int32_t *node_token;          /* (n_nodes) id of the token ending at the node, or -1 */
    uint32_t n_nodes;             /* node 0 is the root */
    uint32_t *edge_key;           /* (edge_mask + 1) parent * 256 + byte; 0 = empty slot */
    uint32_t *edge_child;         /* (edge_mask + 1) child node of that edge */
    uint32_t edge_mask;           /* table size - 1 (power of two) */
    int edge_shift;               /* 32 - log2(table size), for the multiplicative hash */
};

size_t rwkv7_token_unescape(const char *s, size_t n, unsigned char *dst) {
    size_t o = 0;
    int escaping = 0, hex_left = 0;
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (hex_left) {
            /* llama.cpp's nibble rule, wrap-around included: only lowercase hex is ever written. */
            unsigned char v = (unsigned char)(c >= 'a' ? c - 'a' + 10 : c - '0');
            acc = (unsigned char)((acc << 4) + v);
            if (--hex_left == 0) {
                dst[o++] = acc;
                acc = 0;
            }
            continue;
        }
        if (escaping) {
            escaping = 0;
            if (c == 't') dst[o++] = '\t';
            else if (c == 'n') dst[o++] = '\n';
            else if (c == 'r') dst[o++] = '\r';
            else if (c == 'x') hex_left = 2;
            else dst[o++] = c;
            continue;
        }
        if (c == '\\') {
            escaping = 1;
            continue;
        }
        dst[o++] = c;
    }
    return o;
}

static inline uint32_t edge_slot(const struct rwkv7_tokenizer *t, uint32_t key) {
    return (key * 0x9E3779B1u) >> t->edge_shift;
}

static inline uint32_t trie_child(const struct rwkv7_tokenizer *t, uint32_t node, unsigned char b) {
    if (node == 0) return t->root_child[b];
    uint32_t key = node * 256u + b;
    for (uint32_t s = edge_slot(t, key);; s = (s + 1) & t->edge_mask) {
        uint32_t k = t->edge_key[s];
        if (k == key) return t->edge_child[s];
        if (k == 0) return 0;
    }
}

/* Walks/extends the trie along one token's bytes; the caller sized the tables for every byte. */
static void trie_insert(struct rwkv7_tokenizer *t, const unsigned char *p, size_t n, int32_t id) {
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        if (node == 0) {
            if (!t->root_child[p[i]]) {
                t->node_token[t->n_nodes] = -1;
                t->root_child[p[i]] = t->n_nodes++;
            }
            node = t->root_child[p[i]];
            continue;
        }
        uint32_t key = node * 256u + p[i];
        uint32_t s = edge_slot(t, key);
        while (t->edge_key[s] != 0 && t->edge_key[s] != key) s = (s + 1) & t->edge_mask;
        if (t->edge_key[s] == 0) {
            t->edge_key[s] = key;
            t->node_token[t->n_nodes] = -1;
            t->edge_child[s] = t->n_nodes++;
        }
        node = t->edge_child[s];
    }
    if (node != 0) t->node_token[node] = id; /* later ids overwrite: llama.cpp's duplicate rule */
}

void rwkv7_tokenizer_free(struct rwkv7_tokenizer *t) {
    if (!t) return;
    free(t->piece_off);
    free(t->piece_bytes);
    free(t->node_token);
    free(t->edge_key);
    free(t->edge_child);
    free(t);
}

enum rwkv7_status rwkv7_tokenizer_init(const struct rwkv7_gguf_str *escaped, int n_vocab,
                                       struct rwkv7_tokenizer **out) {
    *out = NULL;
    if (!escaped || n_vocab < 1)
        return rwkv7_fail(RWKV7_ERR_ARG, "tokenizer: vocabulary of %d tokens", n_vocab);
    uint64_t total = 0;
    for (int i = 0; i < n_vocab; i++) total += escaped[i].len;
    /* Unescaped tokens are never longer than escaped ones, so total bounds bytes and nodes. */
    if (total >= RWKV7_TRIE_MAX_NODES)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED,
                          "tokenizer: vocabulary holds %llu bytes of token text, limit %u",
                          (unsigned long long)total, RWKV7_TRIE_MAX_NODES - 1);
    uint32_t max_nodes = (uint32_t)total + 1;
    uint32_t cap = 1024;
    int bits = 10;
    while (cap < 2 * max_nodes) {
        cap <<= 1;
        bits++;
    }
    struct rwkv7_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return rwkv7_fail(RWKV7_ERR_OOM, "tokenizer: out of memory");
    t->n_vocab = n_vocab;
    t->piece_off = malloc(((size_t)n_vocab + 1) * sizeof *t->piece_off);
    t->piece_bytes = malloc(total ? (size_t)total : 1);
    t->node_token = malloc((size_t)max_nodes * sizeof *t->node_token);
    t->edge_key = calloc(cap, sizeof *t->edge_key);
    t->edge_child = malloc((size_t)cap * sizeof *t->edge_child);
    if (!t->piece_off || !t->piece_bytes || !t->node_token || !t->edge_key || !t->edge_child) {
        rwkv7_tokenizer_free(t);
        return rwkv7_fail(RWKV7_ERR_OOM, "tokenizer: out of memory for %d tokens", n_vocab);
    }
    t->edge_mask = cap - 1;
    t->edge_shift = 32 - bits;
    t->node_token[0] = -1;
    t->n_nodes = 1;
    uint32_t off = 0;
    for (int i = 0; i < n_vocab; i++) {
        t->piece_off[i] = off;
        const char *s = escaped[i].ptr;
        size_t n = (size_t)escaped[i].len;
        if (n && !s) {
            rwkv7_tokenizer_free(t);
            return rwkv7_fail(RWKV7_ERR_ARG, "tokenizer: token %d has no text", i);
        }
        size_t m = rwkv7_token_unescape(s, n, t->piece_bytes + off);
        trie_insert(t, t->piece_bytes + off, m, i);
        off += (uint32_t)m;
    }
    t->piece_off[n_vocab] = off;
    *out = t;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_tokenizer_from_gguf(const struct rwkv7_gguf *g,
                                            struct rwkv7_tokenizer **out) {
    *out = NULL;
    const char *key = "tokenizer.ggml.tokens";
    int64_t kv = rwkv7_gguf_find_kv(g, key);
    if (kv < 0) return rwkv7_fail(RWKV7_ERR_FORMAT, "tokenizer: key '%s' is missing", key);
    if (rwkv7_gguf_kv_type(g, kv) != RWKV7_GGUF_ARRAY ||
        rwkv7_gguf_kv_arr_type(g, kv) != RWKV7_GGUF_STRING)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "tokenizer: key '%s' is not an array of strings", key);
    uint64_t n = rwkv7_gguf_kv_arr_n(g, kv);
    if (n == 0 || n > (uint64_t)INT32_MAX)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "tokenizer: key '%s' holds %llu tokens", key,
                          (unsigned long long)n);
    struct rwkv7_gguf_str *strs = malloc((size_t)n * sizeof *strs);
    if (!strs) return rwkv7_fail(RWKV7_ERR_OOM, "tokenizer: out of memory for %llu tokens",
                                 (unsigned long long)n);
    for (uint64_t j = 0; j < n; j++) strs[j] = rwkv7_gguf_kv_arr_str(g, kv, j);
    enum rwkv7_status st = rwkv7_tokenizer_init(strs, (int)n, out);
    free(strs);
    return st;
}

int rwkv7_tokenizer_n_vocab(const struct rwkv7_tokenizer *tok) { return tok->n_vocab; }

const char *rwkv7_token_piece(const struct rwkv7_tokenizer *tok, int32_t id, size_t *len) {
    if (id < 0 || id >= tok->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    /* Id 0 is <s> (CONTROL) in World vocabularies and the end-of-text byte in byte vocabularies;
     * neither is printable text, so it detokenizes to nothing (llama.cpp with special = false). */
    uint32_t a = tok->piece_off[id], b = id == 0 ? a : tok->piece_off[id + 1];
    if (len) *len = b - a;
    return (const char *)tok->piece_bytes + a;
}

enum rwkv7_status rwkv7_tokenize(const struct rwkv7_tokenizer *tok, const char *text, size_t n,
                                 int32_t *ids, size_t cap, size_t *n_ids) {
    *n_ids = 0;
    if (n && !text) return rwkv7_fail(RWKV7_ERR_ARG, "tokenizer: NULL text of %zu bytes", n);
    const unsigned char *p = (const unsigned char *)text;
    size_t count = 0, pos = 0;
    while (pos < n) {
        uint32_t node = 0;
        int32_t best = -1;
        size_t best_end = pos;
        for (size_t i = pos; i < n; i++) {
            node = trie_child(tok, node, p[i]);
            if (!node) break;
            if (tok->node_token[node] >= 0) {
                best = tok->node_token[node];
                best_end = i + 1;
            }
        }
        if (best < 0)
            return rwkv7_fail(RWKV7_ERR_ARG,
                              "tokenizer: no token matches byte 0x%02x at offset %zu", p[pos], pos);
        if (count < cap) ids[count] = best;
        count++;
        pos = best_end;
    }
    *n_ids = count;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_detokenize(const struct rwkv7_tokenizer *tok, const int32_t *ids,
                                   size_t n, char *out, size_t cap, size_t *len) {
    size_t o = 0;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t m;
        const char *s = rwkv7_token_piece(tok, ids[i], &m);
        if (!s)
            return rwkv7_fail(RWKV7_ERR_ARG, "tokenizer: id %d at position %zu is outside 0..%d",
                              (int)ids[i], i, tok->n_vocab - 1);
        if (o < cap) memcpy(out + o, s, m <= cap - o ? m : cap - o);
        o += m;
    }
    *len = o;
    return RWKV7_OK;
}

/* ---- streaming UTF-8 ---- */

/* Length of the sequence a lead byte starts, or 0 when it cannot start one (RFC 3629). */
static int utf8_len(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

/* Whether c is a valid k-th byte (k >= 1) after lead; the second byte carries the extra limits
 * that exclude overlongs, surrogates and code points above U+10FFFF. */
static int utf8_cont_ok(unsigned char lead, int k, unsigned char c) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (k == 1) {
        if (lead == 0xE0) lo = 0xA0;
        else if (lead == 0xED) hi = 0x9F;
        else if (lead == 0xF0) lo = 0x90;
        else if (lead == 0xF4) hi = 0x8F;
    }
    return c >= lo && c <= hi;
}

void rwkv7_utf8_stream_init(struct rwkv7_utf8_stream *u) { memset(u, 0, sizeof *u); }

size_t rwkv7_utf8_stream_feed(struct rwkv7_utf8_stream *u, const char *in, size_t n, char *out) {
    const unsigned char *src = (const unsigned char *)in;
    unsigned char pend[4];
    size_t np = (size_t)u->n_pend, total = np + n, i = 0, o = 0;
    memcpy(pend, u->pend, sizeof pend);
#define AT(j) ((j) < np ? pend[(j)] : src[(j) - np])
    u->n_pend = 0;
    while (i < total) {
        unsigned char b = AT(i);
        int len = utf8_len(b);
        if (len <= 1) {
            out[o++] = (char)b;
            i++;
            continue;
        }
        int k = 1;
        while (k < len && i + (size_t)k < total && utf8_cont_ok(b, k, AT(i + (size_t)k))) k++;
        if (k < len && i + (size_t)k == total) {
            /* Still a valid prefix: hold it for the next piece. */
            for (int j = 0; j < k; j++) u->pend[j] = AT(i + (size_t)j);
            u->n_pend = k;
            break;
        }
        /* Complete, or broken at byte k: either way these k bytes are final. */
        for (int j = 0; j < k; j++) out[o++] = (char)AT(i + (size_t)j);
        i += (size_t)k;
    }
#undef AT
    return o;
}

size_t rwkv7_utf8_stream_flush(struct rwkv7_utf8_stream *u, char *out) {
    size_t n = (size_t)u->n_pend;
    memcpy(out, u->pend, n);
    u->n_pend = 0;
    return n;
}
