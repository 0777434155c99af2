/* prefix_cache.c: the prompt prefix cache (prefix_cache.h). Entries live in a plain array scanned
 * linearly: a cache holds tens of multi-megabyte states, so the scan is noise next to one state
 * copy, and no trie is needed. Recency is a counter stamped on every hit and store. */
#include <stdlib.h>
#include <string.h>

#include "prefix_cache.h"
#include "status.h"

struct prefix_entry {
    int32_t *tokens;
    size_t n;
    float *state;
    uint64_t used; /* recency stamp */
};

struct rwkv7_prefix_cache {
    size_t state_floats, max_bytes;
    struct prefix_entry *e;
    size_t n, cap;
    uint64_t clock;
    struct rwkv7_prefix_cache_stats stats;
};

static size_t entry_bytes(const struct rwkv7_prefix_cache *c, size_t n_tokens) {
    return c->state_floats * sizeof(float) + n_tokens * sizeof(int32_t);
}

enum rwkv7_status rwkv7_prefix_cache_init(struct rwkv7_model *model, size_t max_bytes,
                                          struct rwkv7_prefix_cache **out) {
    *out = NULL;
    if (!model) return rwkv7_fail(RWKV7_ERR_ARG, "prefix cache: no model");
    struct rwkv7_prefix_cache *c = calloc(1, sizeof *c);
    if (!c) return rwkv7_fail(RWKV7_ERR_OOM, "prefix cache: out of memory");
    c->state_floats = rwkv7_state_n_floats(rwkv7_model_hparams(model));
    c->max_bytes = max_bytes;
    if (max_bytes < entry_bytes(c, 1)) {
        size_t need = entry_bytes(c, 1);
        free(c);
        return rwkv7_fail(RWKV7_ERR_ARG, "prefix cache: budget of %zu bytes is below one state (%zu)",
                          max_bytes, need);
    }
    *out = c;
    return RWKV7_OK;
}

static void drop(struct rwkv7_prefix_cache *c, size_t i) {
    c->stats.bytes -= entry_bytes(c, c->e[i].n);
    free(c->e[i].tokens);
    free(c->e[i].state);
    c->e[i] = c->e[--c->n];
    c->stats.n_entries = c->n;
}

void rwkv7_prefix_cache_clear(struct rwkv7_prefix_cache *c) {
    if (!c) return;
    while (c->n) drop(c, c->n - 1);
}

void rwkv7_prefix_cache_free(struct rwkv7_prefix_cache *c) {
    if (!c) return;
    rwkv7_prefix_cache_clear(c);
    free(c->e);
    free(c);
}

enum rwkv7_status rwkv7_prefix_cache_lookup(struct rwkv7_prefix_cache *c, struct rwkv7_ctx *ctx,
                                            int slot, const int32_t *tokens, size_t n,
                                            size_t *n_matched) {
    *n_matched = 0;
    if (!c || (n && !tokens)) return rwkv7_fail(RWKV7_ERR_ARG, "prefix cache: lookup without cache or tokens");
    size_t best = 0;
    struct prefix_entry *hit = NULL;
    for (size_t i = 0; i < c->n; i++) {
        struct prefix_entry *e = &c->e[i];
        if (e->n <= n && e->n > best && memcmp(e->tokens, tokens, e->n * sizeof *tokens) == 0) {
            best = e->n;
            hit = e;
        }
    }
    if (!hit) {
        c->stats.misses++;
        return RWKV7_OK;
    }
    RWKV7_TRY(rwkv7_state_set(ctx, slot, hit->state));
    hit->used = ++c->clock;
    c->stats.hits++;
    *n_matched = best;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_prefix_cache_store(struct rwkv7_prefix_cache *c, struct rwkv7_ctx *ctx,
                                           int slot, const int32_t *tokens, size_t n) {
    if (!c || !tokens || n == 0) return rwkv7_fail(RWKV7_ERR_ARG, "prefix cache: store of an empty prefix");
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].n == n && memcmp(c->e[i].tokens, tokens, n * sizeof *tokens) == 0) {
            c->e[i].used = ++c->clock;
            return RWKV7_OK;
        }
    size_t need = entry_bytes(c, n);
    if (need > c->max_bytes) return RWKV7_OK; /* a prefix this long never fits: not an error */
    struct prefix_entry e = {malloc(n * sizeof *tokens), n, malloc(c->state_floats * sizeof(float)), 0};
    enum rwkv7_status st = RWKV7_OK;
    if (!e.tokens || !e.state) st = rwkv7_fail(RWKV7_ERR_OOM, "prefix cache: out of memory for %zu bytes", need);
    if (st == RWKV7_OK) st = rwkv7_state_get(ctx, slot, e.state);
    if (st == RWKV7_OK && c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        struct prefix_entry *ne = realloc(c->e, cap * sizeof *ne);
        if (!ne) st = rwkv7_fail(RWKV7_ERR_OOM, "prefix cache: out of memory");
        else {
            c->e = ne;
            c->cap = cap;
        }
    }
    if (st != RWKV7_OK) {
        free(e.tokens);
        free(e.state);
        return st;
    }
    while (c->n > 0 && c->stats.bytes + need > c->max_bytes) {
        size_t lru = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[lru].used) lru = i;
        drop(c, lru);
        c->stats.evictions++;
    }
    memcpy(e.tokens, tokens, n * sizeof *tokens);
    e.used = ++c->clock;
    c->e[c->n++] = e;
    c->stats.bytes += need;
    c->stats.n_entries = c->n;
    return RWKV7_OK;
}

void rwkv7_prefix_cache_get_stats(const struct rwkv7_prefix_cache *c,
                                  struct rwkv7_prefix_cache_stats *out) {
    if (c) *out = c->stats;
    else memset(out, 0, sizeof *out);
}
