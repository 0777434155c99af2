/* batch_sched.c: continuous batching for `rwkv7 batch` (see batch.h). Each step prefills one
 * chunk of every sequence still reading its prompt (equal-length chunks share an eval call), then
 * decodes all other sequences in ONE eval call with n_tok = 1, so the weights are read once per
 * step. Batch invariance: a prompt is always cut at the same chunk boundaries whatever else runs,
 * and a call never holds more rows than the context's step size, so no sequence's tokens are ever
 * re-split inside rwkv7_ctx_eval; each sequence samples from its own row with its own sampler.
 * The prefix cache keeps states only at whole-chunk boundaries of a prompt, so a sequence that
 * restores one continues at the same boundaries it would have used, from the same bits.
 * `rwkv7 serve` shares this engine: its chat requests also cut (and cache) at turn ends
 * (batch_req.seg_ends), and a finished chat turn may stay in its slot a little longer to feed the
 * rest of its reply's history tokens and cache the state the conversation's next turn starts
 * from (extend_turn). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "check_tensors.h"
#include "chat_segments.h"
#include "prefix_cache.h"
#include "status.h"
#include "tokenizer.h"

struct batch_seq {
    struct batch_req *r; /* NULL: the slot is free */
    size_t pos;          /* prompt tokens evaluated so far */
    bool decoding;       /* prompt done; next_tok is the token to feed */
    bool tail;           /* finished (done was called): feeding the rest of prompt, then cache */
    int32_t next_tok;
    int n_gen;
    int n_fed;           /* generated tokens fed back (all but a last sampled one) */
    int32_t *gen;        /* keep_turn only: the generated tokens, [n_gen] */
    size_t gen_cap;
    struct rwkv7_utf8_stream u8;
    struct json_buf text;
    long long order;     /* admission order: older sequences prefill first */
};

struct batch_sched {
    struct rwkv7_model *m;
    struct rwkv7_ctx *ctx;
    struct rwkv7_prefix_cache *cache; /* NULL: off */
    const struct rwkv7_tokenizer *tok;
    int n_vocab, parallel, chunk, max_rows;
    struct batch_seq *seqs; /* indexed by slot */
    int *slots;             /* scratch: slots of one call */
    int32_t *tokens;        /* scratch: tokens of one call */
    float *logits;          /* scratch: [parallel][V] */
    int *pending, *call_slots; /* scratch: [parallel] */
    bool *used;                /* scratch: [parallel] */
    long long admitted, prompt_tokens, cached_tokens, gen_tokens;
    float *ckpt_state;         /* scratch for batch_sched_checkpoint: one state */
    void *ckpt_sampler;        /* scratch: one sampler blob */
    size_t ckpt_sampler_cap;
    batch_emit_fn emit;
    batch_logprob_fn logprob;
    void *emit_user;
};

enum rwkv7_status batch_sched_init(struct rwkv7_model *m, int parallel, int chunk, size_t cache_bytes,
                                   struct batch_sched **out) {
    *out = NULL;
    struct batch_sched *s = calloc(1, sizeof *s);
    if (!s) return rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory");
    s->m = m;
    s->tok = rwkv7_model_tokenizer(m);
    s->n_vocab = rwkv7_model_hparams(m)->n_vocab;
    s->parallel = parallel;
    s->chunk = chunk;
    /* One internal step must hold a full chunk and a full decode batch (see the file comment). */
    s->max_rows = chunk > parallel ? chunk : parallel;
    if (s->max_rows < 512) s->max_rows = 512;
    s->seqs = calloc((size_t)parallel, sizeof *s->seqs);
    s->slots = calloc((size_t)parallel, sizeof *s->slots);
    s->tokens = calloc((size_t)s->max_rows, sizeof *s->tokens);
    s->logits = malloc((size_t)parallel * (size_t)s->n_vocab * sizeof(float));
    s->pending = calloc((size_t)parallel, sizeof *s->pending);
    s->call_slots = calloc((size_t)parallel, sizeof *s->call_slots);
    s->used = calloc((size_t)parallel, sizeof *s->used);
    enum rwkv7_status st = RWKV7_OK;
    if (!s->seqs || !s->slots || !s->tokens || !s->logits || !s->pending || !s->call_slots || !s->used)
        st = rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory");
    if (st == RWKV7_OK) st = rwkv7_ctx_init(m, parallel, &s->ctx);
    if (st == RWKV7_OK && cache_bytes > 0) st = rwkv7_prefix_cache_init(m, cache_bytes, &s->cache);
    if (st != RWKV7_OK) {
        batch_sched_free(s);
        return st;
    }
    rwkv7_ctx_set_max_rows(s->ctx, s->max_rows);
    *out = s;
    return RWKV7_OK;
}

static void seq_release(struct batch_seq *q) {
    if (q->r) {
        free(q->r->seg_ends);
        batch_req_free(q->r);
        free(q->r);
    }
    json_buf_free(&q->text);
    free(q->gen);
    memset(q, 0, sizeof *q);
}

void batch_sched_free(struct batch_sched *s) {
    if (!s) return;
    for (int i = 0; s->seqs && i < s->parallel; i++) seq_release(&s->seqs[i]);
    rwkv7_prefix_cache_free(s->cache);
    rwkv7_ctx_free(s->ctx);
    free(s->seqs);
    free(s->slots);
    free(s->tokens);
    free(s->logits);
    free(s->pending);
    free(s->call_slots);
    free(s->used);
    free(s->ckpt_state);
    free(s->ckpt_sampler);
    free(s);
}

int batch_sched_running(const struct batch_sched *s) {
    int n = 0;
    for (int i = 0; i < s->parallel; i++) n += s->seqs[i].r != NULL;
    return n;
}

int batch_sched_tails(const struct batch_sched *s) {
    int n = 0;
    for (int i = 0; i < s->parallel; i++) n += s->seqs[i].r && s->seqs[i].tail;
    return n;
}

void batch_sched_set_emit(struct batch_sched *s, batch_emit_fn emit, void *user) {
    s->emit = emit;
    s->emit_user = user;
}

void batch_sched_set_logprob(struct batch_sched *s, batch_logprob_fn fn) { s->logprob = fn; }

/* Log-softmax of row at t and the k most likely tokens (k <= BATCH_MAX_TOP_LOGPROBS): one pass
 * for the maximum, one for the sum (in double) and a small insertion list for the top k, so it
 * costs about what sampling does. */
static void report_logprobs(struct batch_sched *s, const struct batch_req *r, const float *row, int32_t t) {
    int n = s->n_vocab, k = r->n_top_logprobs;
    float mx = row[0];
    for (int i = 1; i < n; i++)
        if (row[i] > mx) mx = row[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)row[i] - mx);
    double lse = mx + log(sum);
    int32_t top[BATCH_MAX_TOP_LOGPROBS];
    float lp[BATCH_MAX_TOP_LOGPROBS];
    int m = 0;
    for (int i = 0; i < n && k > 0; i++) {
        if (m == k && row[i] <= row[top[m - 1]]) continue;
        int j = m < k ? m++ : m - 1;
        while (j > 0 && row[top[j - 1]] < row[i]) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = i;
    }
    for (int i = 0; i < m; i++) lp[i] = (float)(row[top[i]] - lse);
    s->logprob(s->emit_user, r, t, (float)(row[t] - lse), top, lp, m);
}

bool batch_sched_cancel(struct batch_sched *s, const struct batch_req *r) {
    for (int i = 0; i < s->parallel; i++)
        if (s->seqs[i].r == r && !s->seqs[i].tail) {
            seq_release(&s->seqs[i]);
            return true;
        }
    return false;
}

const struct rwkv7_prefix_cache *batch_sched_cache(const struct batch_sched *s) { return s->cache; }

/* Appends output text and hands it to the streaming callback. */
static void put_text(struct batch_sched *s, struct batch_seq *q, const char *t, size_t n) {
    if (n == 0) return;
    json_buf_raw(&q->text, t, n);
    if (s->emit) s->emit(s->emit_user, q->r, t, n);
}

int batch_sched_free_slots(const struct batch_sched *s) { return s->parallel - batch_sched_running(s); }

void batch_sched_counts(const struct batch_sched *s, long long *prompt_tokens, long long *cached_tokens,
                        long long *gen_tokens) {
    *prompt_tokens = s->prompt_tokens;
    *cached_tokens = s->cached_tokens;
    *gen_tokens = s->gen_tokens;
}

enum rwkv7_status batch_sched_add(struct batch_sched *s, struct batch_req *r) {
    for (int i = 0; i < s->parallel; i++) {
        struct batch_seq *q = &s->seqs[i];
        if (q->r) continue;
        RWKV7_TRY(rwkv7_state_reset(s->ctx, i));
        memset(q, 0, sizeof *q);
        q->r = r;
        q->order = s->admitted++;
        rwkv7_utf8_stream_init(&q->u8);
        json_buf_raw(&q->text, "", 0);
        if (s->cache) {
            /* n - 1: at least one token must be evaluated to get logits. */
            size_t got = 0;
            RWKV7_TRY(rwkv7_prefix_cache_lookup(s->cache, s->ctx, i, r->prompt, r->n_prompt - 1, &got));
            q->pos = got;
            r->n_cached = got;
            s->cached_tokens += (long long)got;
        }
        /* Prompt tokens feed the penalties as in `rwkv7 generate`. */
        for (size_t k = 0; k < r->n_prompt; k++) rwkv7_sampler_accept(r->smp, r->prompt[k]);
        return q->text.oom ? rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory") : RWKV7_OK;
    }
    return rwkv7_fail(RWKV7_ERR_INTERNAL, "batch: no free slot");
}

/* After a chat turn ends, the next request of the conversation will carry the reply as an
 * assistant message, tokenized as prompt + chat_reply_tokens(reply). When the tokens fed so far
 * (prompt + the generated ones but the last) are a prefix of that, the slot stays busy as a
 * "tail" that prefills the rest (the "\n\n" that ended the turn, usually one token) and stores
 * the state under those tokens; the next turn then prefills only its new message. A reply whose
 * sampled tokens differ from its retokenization (rare) is not cached. The cached state came from
 * decoding, which agrees with prefilling the same tokens to rounding (test_model), not bit for
 * bit. *keep: the slot stays in use. */
static enum rwkv7_status extend_turn(struct batch_sched *s, int slot, bool *keep) {
    struct batch_seq *q = &s->seqs[slot];
    struct batch_req *r = q->r;
    *keep = false;
    int32_t *h = NULL;
    size_t n_h = 0;
    if (chat_reply_tokens(s->tok, q->text.p, q->text.n, &h, &n_h) != RWKV7_OK) return RWKV7_OK; /* not worth failing */
    bool same = (size_t)q->n_fed <= n_h && n_h > 0 && (q->n_fed == 0 || !memcmp(h, q->gen, (size_t)q->n_fed * sizeof *h));
    int32_t *key = same ? realloc(r->prompt, (r->n_prompt + n_h) * sizeof *key) : NULL;
    if (!key) {
        free(h);
        return RWKV7_OK;
    }
    memcpy(key + r->n_prompt, h, n_h * sizeof *h);
    free(h);
    r->prompt = key;
    q->pos = r->n_prompt + (size_t)q->n_fed;
    r->n_prompt += n_h;
    free(r->seg_ends);
    r->seg_ends = NULL;
    r->n_seg = 0;
    if (q->pos == r->n_prompt) return rwkv7_prefix_cache_store(s->cache, s->ctx, slot, r->prompt, r->n_prompt);
    q->tail = true;
    q->decoding = false;
    *keep = true;
    return RWKV7_OK;
}

static enum rwkv7_status finish(struct batch_sched *s, int slot, const char *reason, batch_done_fn done, void *user) {
    struct batch_seq *q = &s->seqs[slot];
    char out[RWKV7_UTF8_STREAM_EXTRA + 1];
    size_t n_out = rwkv7_utf8_stream_flush(&q->u8, out);
    const char *emit;
    size_t n_emit;
    int matched = -1;
    enum rwkv7_status st = rwkv7_stop_feed(q->r->stop, out, n_out, &matched, &emit, &n_emit);
    if (st == RWKV7_OK) {
        put_text(s, q, emit, n_emit);
        if (matched < 0) {
            rwkv7_stop_flush(q->r->stop, &emit, &n_emit);
            put_text(s, q, emit, n_emit);
        } else {
            reason = "stop";
        }
        st = q->text.oom ? rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory") : done(user, q->r, q->text.p, q->text.n, reason, q->n_gen);
    }
    bool keep = false;
    if (st == RWKV7_OK && q->r->keep_turn && s->cache) st = extend_turn(s, slot, &keep);
    if (!keep) seq_release(q);
    return st;
}

/* Samples the next token of the sequence in slot from its logits row and applies the stop rules:
 * token 0 (unless ignore_eos), a stop token, a stop string, max_tokens. */
static enum rwkv7_status advance(struct batch_sched *s, int slot, const float *row, batch_done_fn done, void *user) {
    struct batch_seq *q = &s->seqs[slot];
    struct batch_req *r = q->r;
    if (q->n_gen >= r->max_tokens) return finish(s, slot, "length", done, user);
    /* A NaN/Inf logit ends this sequence with a 500 record (batch_io.c); the others go on. */
    int64_t bad = rwkv7_logits_first_nonfinite(row, (size_t)s->n_vocab);
    if (bad >= 0) {
        RWKV7_TRY(batch_req_set_error(r, 500, "non-finite logits at token %zu (vocabulary index %lld); run with "
                                      "--check-tensors to look for bad weights", r->n_prompt + (size_t)q->n_gen, (long long)bad));
        return finish(s, slot, "error", done, user);
    }
    int32_t t = rwkv7_sampler_sample(r->smp, row);
    rwkv7_sampler_accept(r->smp, t);
    if (r->keep_turn) {
        if ((size_t)q->n_gen == q->gen_cap) {
            size_t c = q->gen_cap ? 2 * q->gen_cap : 64;
            int32_t *g = realloc(q->gen, c * sizeof *g);
            if (!g) return rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory");
            q->gen = g;
            q->gen_cap = c;
        }
        q->gen[q->n_gen] = t;
    }
    q->n_gen++;
    s->gen_tokens++;
    bool end = t == 0 && !r->ignore_eos;
    for (int i = 0; i < r->n_stop_ids; i++) end |= t == r->stop_ids[i];
    if (end) return finish(s, slot, "stop", done, user);
    if (r->want_logprobs && s->logprob) report_logprobs(s, r, row, t);
    size_t plen = 0;
    const char *piece = rwkv7_token_piece(s->tok, t, &plen);
    int matched = -1;
    char out[64 + RWKV7_UTF8_STREAM_EXTRA];
    while (piece && plen > 0 && matched < 0) {
        size_t take = plen > 64 ? 64 : plen;
        size_t n_out = rwkv7_utf8_stream_feed(&q->u8, piece, take, out);
        piece += take;
        plen -= take;
        const char *emit;
        size_t n_emit;
        RWKV7_TRY(rwkv7_stop_feed(r->stop, out, n_out, &matched, &emit, &n_emit));
        put_text(s, q, emit, n_emit);
    }
    if (matched >= 0) return finish(s, slot, "stop", done, user);
    if (q->n_gen >= r->max_tokens) return finish(s, slot, "length", done, user);
    q->decoding = true;
    q->next_tok = t;
    return RWKV7_OK;
}

/* The length of the next prefill chunk of q: up to --chunk tokens, never across a turn end. */
static int chunk_len(const struct batch_sched *s, const struct batch_seq *q) {
    size_t left = q->r->n_prompt - q->pos, len = left > (size_t)s->chunk ? (size_t)s->chunk : left;
    for (int i = 0; i < q->r->n_seg; i++)
        if (q->r->seg_ends[i] > q->pos) {
            if (q->r->seg_ends[i] - q->pos < len) len = q->r->seg_ends[i] - q->pos;
            break;
        }
    return (int)len;
}

/* Whether to snapshot q's state into the prefix cache now (q->pos tokens in, after a chunk of len):
 * at whole chunks for batch lines, at turn ends for chat requests of the server. */
static bool store_here(const struct batch_sched *s, const struct batch_seq *q, int len) {
    if (q->pos >= q->r->n_prompt || q->tail) return false;
    if (!q->r->seg_ends) return len == s->chunk;
    for (int i = 0; i < q->r->n_seg; i++)
        if (q->r->seg_ends[i] == q->pos) return true;
    return false;
}

/* Prefill: every sequence still in its prompt gets its next chunk this step. Sequences whose
 * chunks have the same length go into one call, at most max_rows / len of them, so the call is a
 * single internal step and each sequence's chunk is evaluated exactly as it would be alone. */
static enum rwkv7_status prefill(struct batch_sched *s, batch_done_fn done, void *user) {
    int *pending = s->pending, n_pending = 0;
    for (int i = 0; i < s->parallel; i++)
        if (s->seqs[i].r && !s->seqs[i].decoding) pending[n_pending++] = i;
    /* Oldest first, so a sequence reaches decoding as early as possible. Insertion sort: the list
     * is at most --parallel long. */
    for (int i = 1; i < n_pending; i++)
        for (int j = i; j > 0 && s->seqs[pending[j]].order < s->seqs[pending[j - 1]].order; j--) {
            int t = pending[j];
            pending[j] = pending[j - 1];
            pending[j - 1] = t;
        }
    bool *used = s->used;
    for (int i = 0; i < n_pending; i++) used[i] = false;
    for (int a = 0; a < n_pending; a++) {
        if (used[a]) continue;
        int len = chunk_len(s, &s->seqs[pending[a]]);
        int cap = s->max_rows / len, n = 0;
        bool any_last = false;
        for (int b = a; b < n_pending && n < cap; b++) {
            if (used[b]) continue; /* also: an earlier group may have finished it (r is NULL) */
            struct batch_seq *qb = &s->seqs[pending[b]];
            if (chunk_len(s, qb) != len) continue;
            used[b] = true;
            s->slots[n] = pending[b];
            memcpy(s->tokens + (size_t)n * len, qb->r->prompt + qb->pos, (size_t)len * sizeof(int32_t));
            any_last |= qb->r->n_prompt - qb->pos == (size_t)len && !qb->tail;
            n++;
        }
        enum rwkv7_logits mode = any_last ? RWKV7_LOGITS_LAST : RWKV7_LOGITS_NONE;
        RWKV7_TRY(rwkv7_ctx_eval(s->ctx, n, s->slots, len, s->tokens, mode, s->logits));
        s->prompt_tokens += (long long)n * len;
        int *call_slots = s->call_slots;
        memcpy(call_slots, s->slots, (size_t)n * sizeof *call_slots);
        for (int k = 0; k < n; k++) {
            struct batch_seq *q = &s->seqs[call_slots[k]];
            q->pos += (size_t)len;
            if (s->cache && store_here(s, q, len))
                RWKV7_TRY(rwkv7_prefix_cache_store(s->cache, s->ctx, call_slots[k], q->r->prompt, q->pos));
            if (q->pos == q->r->n_prompt && q->tail) {
                enum rwkv7_status st = rwkv7_prefix_cache_store(s->cache, s->ctx, call_slots[k], q->r->prompt, q->pos);
                seq_release(q);
                RWKV7_TRY(st);
            } else if (q->pos == q->r->n_prompt) {
                RWKV7_TRY(advance(s, call_slots[k], s->logits + (size_t)k * s->n_vocab, done, user));
            }
        }
    }
    return RWKV7_OK;
}

enum rwkv7_status batch_sched_step(struct batch_sched *s, batch_done_fn done, void *user) {
    /* Decode first the sequences that were already decoding, then prefill: a sequence finishing
     * its prompt this step samples its first token now and joins the decode batch next step. */
    int n = 0;
    for (int i = 0; i < s->parallel; i++)
        if (s->seqs[i].r && s->seqs[i].decoding) {
            s->slots[n] = i;
            s->tokens[n] = s->seqs[i].next_tok;
            s->seqs[i].n_fed++;
            n++;
        }
    if (n > 0) {
        RWKV7_TRY(rwkv7_ctx_eval(s->ctx, n, s->slots, 1, s->tokens, RWKV7_LOGITS_LAST, s->logits));
        int *call_slots = s->call_slots;
        memcpy(call_slots, s->slots, (size_t)n * sizeof *call_slots);
        for (int k = 0; k < n; k++) RWKV7_TRY(advance(s, call_slots[k], s->logits + (size_t)k * s->n_vocab, done, user));
    }
    return prefill(s, done, user);
}


/* ---- checkpoints (see batch.h) ---- */

enum rwkv7_status batch_sched_checkpoint(struct batch_sched *s, batch_ckpt_fn fn, void *user) {
    size_t n_state = rwkv7_state_n_floats(rwkv7_model_hparams(s->m));
    if (!s->ckpt_state && !(s->ckpt_state = malloc(n_state * sizeof(float))))
        return rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory for a checkpoint");
    for (int i = 0; i < s->parallel; i++) {
        struct batch_seq *q = &s->seqs[i];
        /* Nothing evaluated yet: cheaper to start again than to save. */
        if (!q->r || q->tail || (!q->decoding && q->pos == 0)) continue;
        size_t ns = rwkv7_sampler_state_size(q->r->smp);
        if (ns > s->ckpt_sampler_cap) {
            void *b = realloc(s->ckpt_sampler, ns);
            if (!b) return rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory for a checkpoint");
            s->ckpt_sampler = b;
            s->ckpt_sampler_cap = ns;
        }
        rwkv7_sampler_state_get(q->r->smp, s->ckpt_sampler);
        RWKV7_TRY(rwkv7_state_get(s->ctx, i, s->ckpt_state));
        struct batch_ckpt_seq c = {
            .line = q->r->line, .custom_id = q->r->custom_id, .decoding = q->decoding, .pos = q->pos,
            .next_tok = q->next_tok, .n_gen = q->n_gen, .n_fed = q->n_fed, .text = q->text.p ? q->text.p : "",
            .n_text = q->text.n, .u8_n = q->u8.n_pend, .held = rwkv7_stop_held_bytes(q->r->stop),
            .n_held = rwkv7_stop_held(q->r->stop), .sampler = s->ckpt_sampler, .n_sampler = ns,
            .state = s->ckpt_state,
        };
        memcpy(c.u8_pend, q->u8.pend, sizeof c.u8_pend);
        RWKV7_TRY(fn(user, q->r, &c));
    }
    return RWKV7_OK;
}

enum rwkv7_status batch_sched_add_restored(struct batch_sched *s, struct batch_req *r, const struct batch_ckpt_seq *c) {
    /* Checks first, so a refusal leaves r as it was for a fresh start. */
    bool ok = c->line == r->line && c->pos <= r->n_prompt && (c->decoding ? c->pos == r->n_prompt : c->pos < r->n_prompt) &&
              c->n_gen >= 0 && c->n_gen <= r->max_tokens && c->n_fed >= 0 && c->n_fed <= c->n_gen &&
              c->u8_n >= 0 && c->u8_n <= 3 && c->next_tok >= 0 && c->next_tok < s->n_vocab && !r->keep_turn &&
              (c->decoding || c->n_gen == 0);
    if (!ok) return rwkv7_fail(RWKV7_ERR_FORMAT, "checkpoint of line %ld does not fit its request", r->line);
    int slot = -1;
    for (int i = 0; i < s->parallel && slot < 0; i++)
        if (!s->seqs[i].r) slot = i;
    if (slot < 0) return rwkv7_fail(RWKV7_ERR_INTERNAL, "batch: no free slot");
    /* The matcher's whole state is its held tail: fed to a fresh one it is held again. */
    rwkv7_stop_reset(r->stop);
    int matched = -1;
    const char *emit;
    size_t n_emit = 0;
    enum rwkv7_status st = rwkv7_stop_feed(r->stop, c->held, c->n_held, &matched, &emit, &n_emit);
    if (st == RWKV7_OK && (matched >= 0 || n_emit != 0 || rwkv7_stop_held(r->stop) != c->n_held))
        st = rwkv7_fail(RWKV7_ERR_FORMAT, "checkpoint of line %ld: its stop-string tail does not fit", r->line);
    /* Last of the checks: a refused blob leaves the sampler unchanged. */
    if (st == RWKV7_OK) st = rwkv7_sampler_state_set(r->smp, c->sampler, c->n_sampler);
    if (st != RWKV7_OK) {
        rwkv7_stop_reset(r->stop);
        return st == RWKV7_ERR_OOM ? st : RWKV7_ERR_FORMAT;
    }
    RWKV7_TRY(rwkv7_state_set(s->ctx, slot, c->state));
    struct batch_seq *q = &s->seqs[slot];
    memset(q, 0, sizeof *q);
    q->r = r;
    q->order = s->admitted++;
    q->pos = (size_t)c->pos;
    q->decoding = c->decoding;
    q->next_tok = c->next_tok;
    q->n_gen = c->n_gen;
    q->n_fed = c->n_fed;
    rwkv7_utf8_stream_init(&q->u8);
    memcpy(q->u8.pend, c->u8_pend, sizeof q->u8.pend);
    q->u8.n_pend = c->u8_n;
    json_buf_raw(&q->text, c->text, c->n_text);
    return q->text.oom ? rwkv7_fail(RWKV7_ERR_OOM, "batch: out of memory") : RWKV7_OK;
}
