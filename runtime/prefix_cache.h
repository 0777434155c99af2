/* prefix_cache.h: a prompt prefix cache: host-memory snapshots of the recurrent state after
 * common token prefixes (a shared system prompt, a few-shot header), so each is prefilled once.
 * RWKV state has a fixed size, so an entry costs the same whatever the prefix length; entries are
 * evicted least-recently-used first to stay within a byte budget. Keys are token sequences only:
 * states prefilled from a non-zero starting state (an initial-state file) need a cache of their
 * own. Not thread-safe; one cache may serve several contexts of the same model.
 *
 * Typical use for one prompt in slot s:
 *     size_t m = 0;
 *     rwkv7_prefix_cache_lookup(cache, ctx, s, toks, n - 1, &m);  // n - 1: keep one token to eval
 *     if (m == 0) rwkv7_state_reset(ctx, s);                      // a miss leaves the slot alone
 *     rwkv7_ctx_eval(ctx, 1, &s, (int)(n - m), toks + m, RWKV7_LOGITS_LAST, logits);
 * and after prefilling a shared prefix of p tokens (alone, so the state is exactly "after p"):
 *     rwkv7_prefix_cache_store(cache, ctx, s, toks, p); */
#ifndef RWKV7_PREFIX_CACHE_H
#define RWKV7_PREFIX_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "rwkv7.h"

struct rwkv7_prefix_cache;

struct rwkv7_prefix_cache_stats {
    size_t n_entries;
    size_t bytes;     /* state snapshots + token copies held now */
    uint64_t hits;    /* lookups that restored a state */
    uint64_t misses;  /* lookups that found no cached prefix */
    uint64_t evictions;
};

/* A cache for states of model (any context of it) holding at most max_bytes of snapshots and
 * tokens; one entry takes rwkv7_state_n_floats() * 4 bytes plus 4 per token. RWKV7_ERR_ARG when
 * max_bytes cannot hold a single entry. */
enum rwkv7_status rwkv7_prefix_cache_init(struct rwkv7_model *model, size_t max_bytes,
                                          struct rwkv7_prefix_cache **out);
void rwkv7_prefix_cache_free(struct rwkv7_prefix_cache *cache);

/* Finds the longest cached sequence that is a prefix of tokens[0..n) (length 1..n) and copies its
 * state into slot of ctx; *n_matched receives its length. On a miss *n_matched is 0 and the slot
 * is left unchanged. To get logits for the whole prompt, pass n - 1 so at least one token remains
 * to evaluate. Errors only from rwkv7_state_set (a bad slot, a device failure). */
enum rwkv7_status rwkv7_prefix_cache_lookup(struct rwkv7_prefix_cache *cache, struct rwkv7_ctx *ctx,
                                            int slot, const int32_t *tokens, size_t n,
                                            size_t *n_matched);

/* Snapshots slot's current state as the state after tokens[0..n) (n >= 1): the caller promises
 * the slot holds exactly that. An existing entry for the same tokens is only marked recently
 * used. Evicts least-recently-used entries to make room. */
enum rwkv7_status rwkv7_prefix_cache_store(struct rwkv7_prefix_cache *cache, struct rwkv7_ctx *ctx,
                                           int slot, const int32_t *tokens, size_t n);

/* Drops every entry (statistics are kept). */
void rwkv7_prefix_cache_clear(struct rwkv7_prefix_cache *cache);
void rwkv7_prefix_cache_get_stats(const struct rwkv7_prefix_cache *cache,
                                  struct rwkv7_prefix_cache_stats *out);

#endif
