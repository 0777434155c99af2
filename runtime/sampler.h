/* sampler.h: next-token sampling and stop-string matching for generation.
 * Parameters use llama.cpp's names and "off" values (ecosystem.md section 2.1) plus the RWKV
 * decayed presence/frequency penalty of ChatRWKV (alpha_decay) and ai00 (penalty_decay).
 * Fixed order: penalties -> greedy when temperature <= 0 -> top-k -> temperature -> softmax ->
 * top-p -> min-p -> draw. Draws come from a private xoshiro256** stream, so a seed gives the same
 * tokens on every platform, and the whole mutable state can be saved and restored exactly. */
#ifndef RWKV7_SAMPLER_H
#define RWKV7_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "rwkv7.h"

/* llama.cpp's "pick a random seed" value; rwkv7_sampler_seed() then reports the one chosen. */
#define RWKV7_SEED_RANDOM 0xFFFFFFFFull

struct rwkv7_sampler_params {
    float temperature;       /* <= 0: greedy (argmax after penalties); default 0.8 */
    int top_k;               /* keep the k most likely; 0 = off; default 40 */
    float top_p;             /* nucleus mass in [0, 1]; >= 1 = off; default 0.95 */
    float min_p;             /* drop p < min_p * p_max; 0 = off; default 0.05 */
    float repeat_penalty;    /* > 0; 1 = off. llama.cpp: logit / rp if > 0, else * rp, once per
                                distinct token among the last repeat_last_n accepted; default 1 */
    int repeat_last_n;       /* window of repeat_penalty in tokens; 0 = off; default 64 */
    float presence_penalty;  /* OpenAI: logit -= presence once a token has occurred; default 0 */
    float frequency_penalty; /* OpenAI: logit -= frequency * count; default 0 */
    float penalty_decay;     /* RWKV: every count is multiplied by this before each accepted token
                                is added, so old tokens weigh less; 1 = plain OpenAI counts;
                                default 0.996 (ChatRWKV alpha_decay) */
    uint64_t seed;           /* RWKV7_SEED_RANDOM = choose one; default RWKV7_SEED_RANDOM */
};

/* llama.cpp defaults for the llama.cpp knobs (temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no
 * repeat/presence/frequency penalty, window 64), ChatRWKV's 0.996 decay, random seed. The RWKV
 * chat preset (API_DEMO_CHAT) is temperature 1, top_p 0.3, presence 0.5, frequency 0.5. */
void rwkv7_sampler_params_default(struct rwkv7_sampler_params *p);

struct rwkv7_sampler;

/* Allocates a sampler for n_vocab logits: all scratch is allocated here, never per draw.
 * RWKV7_ERR_ARG (message names the parameter) for out-of-range parameters, RWKV7_ERR_OOM. */
enum rwkv7_status rwkv7_sampler_init(const struct rwkv7_sampler_params *p, int n_vocab,
                                     struct rwkv7_sampler **out);
void rwkv7_sampler_free(struct rwkv7_sampler *s);
/* The seed in use (the chosen one when the params asked for RWKV7_SEED_RANDOM). */
uint64_t rwkv7_sampler_seed(const struct rwkv7_sampler *s);
/* Forgets every accepted token and restarts the random stream from the seed. */
void rwkv7_sampler_reset(struct rwkv7_sampler *s);

/* Picks a token from n_vocab logits; the logits are read only. Does not update penalty state:
 * call rwkv7_sampler_accept with the token actually used. NaN logits count as -inf. */
int32_t rwkv7_sampler_sample(struct rwkv7_sampler *s, const float *logits);
/* Records a token for the penalties (decays all counts, then counts it; pushes it into the
 * repeat window). Feed generated tokens; feeding prompt tokens too penalises copying the prompt.
 * Ids outside 0..n_vocab-1 are ignored. */
void rwkv7_sampler_accept(struct rwkv7_sampler *s, int32_t token);

/* Applies the penalties alone to logits (in place), as rwkv7_sampler_sample does first; for
 * callers that show or post-process the penalised distribution, and for tests. */
void rwkv7_sampler_apply_penalties(const struct rwkv7_sampler *s, float *logits);

/* Snapshot of the mutable state (random stream, decayed counts, repeat window) for exact resume:
 * a sampler restored with _state_set into a sampler made with the same params and n_vocab draws
 * the same tokens as the original would have. The blob is host-endian. */
size_t rwkv7_sampler_state_size(const struct rwkv7_sampler *s);
void rwkv7_sampler_state_get(const struct rwkv7_sampler *s, void *dst);
/* RWKV7_ERR_FORMAT when the blob has the wrong size, header, vocabulary size or window size, or
 * holds impossible values; the sampler is unchanged then. */
enum rwkv7_status rwkv7_sampler_state_set(struct rwkv7_sampler *s, const void *src, size_t n);

/* ---- stop strings ----
 * Matches stop strings over streamed decoded text and holds back any tail that could still grow
 * into one, so the caller never prints part of a stop string. Typical loop: piece -> UTF-8
 * stream -> rwkv7_stop_feed -> print what it releases; at the end without a match, print what
 * rwkv7_stop_flush releases. When several stop strings complete in the same feed, the one that
 * completes first in the text wins (then the longest). */
struct rwkv7_stop;

/* Copies n_stops NUL-terminated, non-empty strings. n_stops may be 0 (everything passes). */
enum rwkv7_status rwkv7_stop_init(const char *const *stops, int n_stops, struct rwkv7_stop **out);
void rwkv7_stop_free(struct rwkv7_stop *s);
/* Empties the held text and clears a match, for the next generation. */
void rwkv7_stop_reset(struct rwkv7_stop *s);
/* Appends n bytes of text. *matched receives the index of the stop string that completed, or -1.
 * *emit / *n_emit receive the text that is now safe to print: with a match, everything before the
 * stop string (the stop string and anything after it are dropped); without, everything except
 * the held tail. *emit stays valid until the next call on s. After a match, further feeds report
 * the same index and release nothing until rwkv7_stop_reset. */
enum rwkv7_status rwkv7_stop_feed(struct rwkv7_stop *s, const char *text, size_t n, int *matched,
                                  const char **emit, size_t *n_emit);
/* Bytes currently held back because they could begin a stop string. */
size_t rwkv7_stop_held(const struct rwkv7_stop *s);
/* The held bytes themselves (rwkv7_stop_held of them), valid until the next call on s: all the
 * matcher's state between feeds, so a checkpoint saves them and a fresh matcher fed them (after
 * rwkv7_stop_reset) holds the same tail and releases nothing. */
const char *rwkv7_stop_held_bytes(const struct rwkv7_stop *s);
/* End of generation without a match: releases the held tail. */
void rwkv7_stop_flush(struct rwkv7_stop *s, const char **emit, size_t *n_emit);

#endif
