/* forward.c: the RWKV-7 forward pass, written once against the backend ops (rwkv7-gguf.md 4.3-4.7),
 * and the context that owns state slots and activation scratch. A step evaluates n_seq sequences
 * x n_tok tokens as (C, n_seq * n_tok) activations; long inputs are cut into steps of at most
 * max_rows rows. State per layer lives on the backend as three (., n_slots) tensors: attention
 * shift, FFN shift and WKV matrices, so a sequence's slot is a row index and batches can mix any
 * slots. */
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "model.h"
#include "status.h"

enum { S_X, S_XA, S_MIX, S_R, S_K, S_V, S_W, S_A, S_G, S_KK, S_KM, S_VF, S_Y, S_O, S_LORA, S_LORA2, S_H, S_LAST,
       S_LOGITS, S_TOK, S_SLOTS, S_COUNT };

struct rwkv7_ctx {
    struct rwkv7_model *m;
    struct rwkv7_backend *be;
    int n_slots;
    struct rwkv7_tensor *att_shift, *ffn_shift, *wkv; /* per layer: (C, n_slots), (C, n_slots), (H N N, n_slots) */
    struct rwkv7_buf **state_bufs;                     /* 3 per layer */
    int max_rows;     /* requested step size in rows */
    int cap_rows;     /* rows the scratch holds now */
    int cap_logits;   /* logits rows the scratch holds */
    struct rwkv7_tensor s[S_COUNT];
    struct rwkv7_buf *sbuf[S_COUNT];
    int32_t *host_tok; /* cap_rows */
    uint32_t graph_gen; /* bumped whenever scratch moves, which invalidates recorded steps */
    bool use_graphs;    /* replay recorded decode steps when the backend can (RWKV7_NO_GRAPHS=1: never) */
};

size_t rwkv7_state_n_floats(const struct rwkv7_hparams *hp) {
    return (size_t)hp->n_layer * (2 * (size_t)hp->n_embd + (size_t)hp->n_head * hp->head_size * hp->head_size);
}

static void set_tensor(struct rwkv7_tensor *t, int type, int64_t ne0, int64_t ne1, int64_t ne2, struct rwkv7_buf *b, size_t offs) {
    memset(t, 0, sizeof *t);
    t->type = type;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->ne[3] = 1;
    t->buf = b;
    t->offs = offs;
    t->nbytes = rwkv7_dtype_row_bytes(type, ne0) * (size_t)(ne1 * ne2);
}

/* A view of the first rows of a scratch tensor, reshaped to (ne0, rows). */
static struct rwkv7_tensor view(const struct rwkv7_tensor *t, int64_t ne0, int64_t rows) {
    struct rwkv7_tensor v = *t;
    v.ne[0] = ne0;
    v.ne[1] = rows;
    v.ne[2] = v.ne[3] = 1;
    v.nbytes = (size_t)(ne0 * rows) * sizeof(float);
    return v;
}

/* Row j (of n_mix) of the token-shift output, viewed as (C, rows). */
static struct rwkv7_tensor mix_slice(const struct rwkv7_tensor *t, int64_t C, int64_t rows, int j) {
    struct rwkv7_tensor v = view(t, C, rows);
    v.offs += (size_t)(j * C * rows) * sizeof(float);
    return v;
}

static void free_scratch(struct rwkv7_ctx *c) {
    for (int i = 0; i < S_COUNT; i++) {
        if (c->sbuf[i]) c->be->i->buf_free(c->be, c->sbuf[i]);
        c->sbuf[i] = NULL;
    }
    free(c->host_tok);
    c->host_tok = NULL;
    c->cap_rows = c->cap_logits = 0;
}

static enum rwkv7_status alloc_scratch(struct rwkv7_ctx *c, int rows, int logit_rows) {
    if (rows <= c->cap_rows && logit_rows <= c->cap_logits) return RWKV7_OK;
    if (rows < c->cap_rows) rows = c->cap_rows;
    if (logit_rows < c->cap_logits) logit_rows = c->cap_logits;
    free_scratch(c);
    const struct rwkv7_hparams *hp = &c->m->hp;
    int64_t C = hp->n_embd, R = rows;
    int64_t lora = hp->lora_decay;
    if (hp->lora_iclr > lora) lora = hp->lora_iclr;
    if (hp->lora_vres > lora) lora = hp->lora_vres;
    if (hp->lora_gate > lora) lora = hp->lora_gate;
    struct { int id; int type; int64_t ne0, ne1, ne2; } plan[] = {
        {S_X, RWKV7_DTYPE_F32, C, R, 1}, {S_XA, RWKV7_DTYPE_F32, C, R, 1}, {S_MIX, RWKV7_DTYPE_F32, C, R, 6},
        {S_R, RWKV7_DTYPE_F32, C, R, 1}, {S_K, RWKV7_DTYPE_F32, C, R, 1}, {S_V, RWKV7_DTYPE_F32, C, R, 1},
        {S_W, RWKV7_DTYPE_F32, C, R, 1}, {S_A, RWKV7_DTYPE_F32, C, R, 1}, {S_G, RWKV7_DTYPE_F32, C, R, 1},
        {S_KK, RWKV7_DTYPE_F32, C, R, 1}, {S_KM, RWKV7_DTYPE_F32, C, R, 1}, {S_VF, RWKV7_DTYPE_F32, C, R, 1},
        {S_Y, RWKV7_DTYPE_F32, C, R, 1}, {S_O, RWKV7_DTYPE_F32, C, R, 1}, {S_LORA, RWKV7_DTYPE_F32, lora, R, 1},
        {S_LORA2, RWKV7_DTYPE_F32, C, R, 1}, {S_H, RWKV7_DTYPE_F32, hp->n_ff, R, 1},
        {S_LAST, RWKV7_DTYPE_F32, C, R, 1}, {S_LOGITS, RWKV7_DTYPE_F32, hp->n_vocab, logit_rows, 1},
        {S_TOK, RWKV7_DTYPE_I32, R, 1, 1}, {S_SLOTS, RWKV7_DTYPE_I32, c->n_slots, 1, 1},
    };
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
        struct rwkv7_tensor *t = &c->s[plan[i].id];
        set_tensor(t, plan[i].type, plan[i].ne0, plan[i].ne1, plan[i].ne2, NULL, 0);
        RWKV7_TRY(c->be->i->buf_alloc(c->be, t->nbytes, &c->sbuf[plan[i].id]));
        t->buf = c->sbuf[plan[i].id];
    }
    c->host_tok = malloc((size_t)R * sizeof(int32_t));
    if (!c->host_tok) return rwkv7_fail(RWKV7_ERR_OOM, "ctx: out of memory");
    c->cap_rows = rows;
    c->cap_logits = logit_rows;
    c->graph_gen++;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_ctx_init(struct rwkv7_model *m, int n_slots, struct rwkv7_ctx **out) {
    *out = NULL;
    if (n_slots < 1 || n_slots > (1 << 20)) return rwkv7_fail(RWKV7_ERR_ARG, "ctx: bad slot count %d", n_slots);
    struct rwkv7_ctx *c = calloc(1, sizeof *c);
    if (!c) return rwkv7_fail(RWKV7_ERR_OOM, "ctx: out of memory");
    c->m = m;
    c->be = m->be;
    c->n_slots = n_slots;
    c->max_rows = 512;
    const char *no_graphs = getenv("RWKV7_NO_GRAPHS");
    c->use_graphs = m->be->i->graph_launch && !(no_graphs && atoi(no_graphs) != 0);
    const struct rwkv7_hparams *hp = &m->hp;
    int L = hp->n_layer;
    int64_t C = hp->n_embd, S = (int64_t)hp->n_head * hp->head_size * hp->head_size;
    c->att_shift = calloc((size_t)L, sizeof *c->att_shift);
    c->ffn_shift = calloc((size_t)L, sizeof *c->ffn_shift);
    c->wkv = calloc((size_t)L, sizeof *c->wkv);
    c->state_bufs = calloc((size_t)L * 3, sizeof *c->state_bufs);
    enum rwkv7_status st = RWKV7_OK;
    if (!c->att_shift || !c->ffn_shift || !c->wkv || !c->state_bufs) st = rwkv7_fail(RWKV7_ERR_OOM, "ctx: out of memory");
    for (int l = 0; l < L && st == RWKV7_OK; l++) {
        struct rwkv7_tensor *ts[3] = {&c->att_shift[l], &c->ffn_shift[l], &c->wkv[l]};
        int64_t widths[3] = {C, C, S};
        for (int k = 0; k < 3 && st == RWKV7_OK; k++) {
            set_tensor(ts[k], RWKV7_DTYPE_F32, widths[k], n_slots, 1, NULL, 0);
            st = c->be->i->buf_alloc(c->be, ts[k]->nbytes, &c->state_bufs[l * 3 + k]);
            ts[k]->buf = c->state_bufs[l * 3 + k];
        }
    }
    for (int s = 0; s < n_slots && st == RWKV7_OK; s++) st = rwkv7_state_reset(c, s);
    if (st == RWKV7_OK) st = alloc_scratch(c, 1, 1);
    if (st != RWKV7_OK) {
        rwkv7_ctx_free(c);
        return st;
    }
    *out = c;
    return RWKV7_OK;
}

void rwkv7_ctx_free(struct rwkv7_ctx *c) {
    if (!c) return;
    free_scratch(c);
    if (c->state_bufs)
        for (int i = 0; i < c->m->hp.n_layer * 3; i++)
            if (c->state_bufs[i]) c->be->i->buf_free(c->be, c->state_bufs[i]);
    free(c->state_bufs);
    free(c->att_shift);
    free(c->ffn_shift);
    free(c->wkv);
    free(c);
}

int rwkv7_ctx_n_slots(const struct rwkv7_ctx *c) { return c->n_slots; }

void rwkv7_ctx_set_max_rows(struct rwkv7_ctx *c, int max_rows) { c->max_rows = max_rows < 1 ? 1 : max_rows; }

/* ---- state slots ---- */

static enum rwkv7_status slot_check(const struct rwkv7_ctx *c, int slot) {
    if (slot < 0 || slot >= c->n_slots)
        return rwkv7_fail(RWKV7_ERR_ARG, "state: slot %d out of range (context has %d)", slot, c->n_slots);
    return RWKV7_OK;
}

/* Copies one slot between the backend and a host vector in the public layout. dir 0: get. */
static enum rwkv7_status slot_copy(struct rwkv7_ctx *c, int slot, float *host, int set) {
    RWKV7_TRY(slot_check(c, slot));
    float *p = host;
    for (int l = 0; l < c->m->hp.n_layer; l++) {
        struct rwkv7_tensor *ts[3] = {&c->att_shift[l], &c->ffn_shift[l], &c->wkv[l]};
        for (int k = 0; k < 3; k++) {
            size_t n = (size_t)ts[k]->ne[0];
            size_t offs = (size_t)slot * n * sizeof(float);
            if (set) RWKV7_TRY(c->be->i->buf_set(c->be, ts[k]->buf, offs, p, n * sizeof(float)));
            else RWKV7_TRY(c->be->i->buf_get(c->be, ts[k]->buf, offs, p, n * sizeof(float)));
            p += n;
        }
    }
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_state_get(struct rwkv7_ctx *c, int slot, float *dst) { return slot_copy(c, slot, dst, 0); }
enum rwkv7_status rwkv7_state_set(struct rwkv7_ctx *c, int slot, const float *src) { return slot_copy(c, slot, (float *)src, 1); }

enum rwkv7_status rwkv7_state_reset(struct rwkv7_ctx *c, int slot) {
    RWKV7_TRY(slot_check(c, slot));
    size_t n = rwkv7_state_n_floats(&c->m->hp);
    float *zero = calloc(n, sizeof(float));
    if (!zero) return rwkv7_fail(RWKV7_ERR_OOM, "state: out of memory");
    enum rwkv7_status st = slot_copy(c, slot, zero, 1);
    free(zero);
    return st;
}

/* ---- the layer ---- */

static enum rwkv7_status time_mix(struct rwkv7_ctx *c, int l, int64_t rows, int n_tok, const struct rwkv7_tensor *slots) {
    struct rwkv7_backend *be = c->be;
    const struct rwkv7_hparams *hp = &c->m->hp;
    const struct rwkv7_layer *L = &c->m->layers[l];
    int64_t C = hp->n_embd;
    struct rwkv7_tensor x = view(&c->s[S_X], C, rows), xa = view(&c->s[S_XA], C, rows);
    struct rwkv7_tensor r = view(&c->s[S_R], C, rows), k = view(&c->s[S_K], C, rows), v = view(&c->s[S_V], C, rows);
    struct rwkv7_tensor w = view(&c->s[S_W], C, rows), a = view(&c->s[S_A], C, rows), g = view(&c->s[S_G], C, rows);
    struct rwkv7_tensor kk = view(&c->s[S_KK], C, rows), km = view(&c->s[S_KM], C, rows);
    struct rwkv7_tensor vf = view(&c->s[S_VF], C, rows), y = view(&c->s[S_Y], C, rows), o = view(&c->s[S_O], C, rows);
    struct rwkv7_tensor t2 = view(&c->s[S_LORA2], C, rows);
    struct rwkv7_tensor mixv = view(&c->s[S_MIX], C, rows * 6);
    struct rwkv7_tensor xr = mix_slice(&mixv, C, rows, 0), xw = mix_slice(&mixv, C, rows, 1);
    struct rwkv7_tensor xk = mix_slice(&mixv, C, rows, 2), xv = mix_slice(&mixv, C, rows, 3);
    struct rwkv7_tensor xa_ = mix_slice(&mixv, C, rows, 4), xg = mix_slice(&mixv, C, rows, 5);

    RWKV7_TRY(rwkv7_op_norm(be, &xa, &x, &L->attn_norm_w, &L->attn_norm_b, 1, hp->norm_eps));
    RWKV7_TRY(rwkv7_op_token_shift(be, &mixv, &xa, &L->lerp, &c->att_shift[l], slots, n_tok));
    RWKV7_TRY(rwkv7_op_matmul(be, &r, &L->wr, &xr, false));
    RWKV7_TRY(rwkv7_op_matmul(be, &k, &L->wk, &xk, false));
    RWKV7_TRY(rwkv7_op_matmul(be, &v, &L->wv, &xv, false));
    /* decay: w = exp(-0.606531 * sigmoid(w0 + W2 tanh(W1 x_w))) */
    struct rwkv7_tensor lw = view(&c->s[S_LORA], hp->lora_decay, rows);
    RWKV7_TRY(rwkv7_op_matmul(be, &lw, &L->w1, &xw, false));
    RWKV7_TRY(rwkv7_op_unary(be, &lw, &lw, NULL, RWKV7_UNARY_TANH));
    RWKV7_TRY(rwkv7_op_matmul(be, &w, &L->w2, &lw, false));
    RWKV7_TRY(rwkv7_op_unary(be, &w, &w, &L->w0, RWKV7_UNARY_DECAY));
    /* value residual: layer 0 records v_first; later layers pull v toward it */
    if (l == 0) {
        /* v_first = v. last_rows with n_tok = 1 copies every row: a plain copy without a new op. */
        RWKV7_TRY(rwkv7_op_last_rows(be, &vf, &v, 1));
    } else {
        struct rwkv7_tensor lv = view(&c->s[S_LORA], hp->lora_vres, rows);
        RWKV7_TRY(rwkv7_op_matmul(be, &lv, &L->v1, &xv, false));
        RWKV7_TRY(rwkv7_op_matmul(be, &t2, &L->v2, &lv, false));
        RWKV7_TRY(rwkv7_op_unary(be, &t2, &t2, &L->v0, RWKV7_UNARY_SIGMOID));
        RWKV7_TRY(rwkv7_op_mix(be, &v, &v, &vf, &t2));
    }
    /* in-context learning rate: a = sigmoid(a0 + A2 A1 x_a) */
    struct rwkv7_tensor la = view(&c->s[S_LORA], hp->lora_iclr, rows);
    RWKV7_TRY(rwkv7_op_matmul(be, &la, &L->a1, &xa_, false));
    RWKV7_TRY(rwkv7_op_matmul(be, &a, &L->a2, &la, false));
    RWKV7_TRY(rwkv7_op_unary(be, &a, &a, &L->a0, RWKV7_UNARY_SIGMOID));
    /* gate: g = G2 sigmoid(G1 x_g) */
    struct rwkv7_tensor lg = view(&c->s[S_LORA], hp->lora_gate, rows);
    RWKV7_TRY(rwkv7_op_matmul(be, &lg, &L->g1, &xg, false));
    RWKV7_TRY(rwkv7_op_unary(be, &lg, &lg, NULL, RWKV7_UNARY_SIGMOID));
    RWKV7_TRY(rwkv7_op_matmul(be, &g, &L->g2, &lg, false));
    RWKV7_TRY(rwkv7_op_key_prep(be, &kk, &km, &k, &a, &L->k_k, &L->k_a, hp->head_size));
    RWKV7_TRY(rwkv7_op_wkv7(be, &y, &c->wkv[l], slots, &r, &w, &km, &v, &kk, &a, n_tok, hp->head_size));
    RWKV7_TRY(rwkv7_op_wkv_out(be, &o, &y, &r, &km, &v, &g, &L->r_k, &L->lnx_w, &L->lnx_b, hp->head_size,
                               RWKV7_GROUPNORM_EPS));
    return rwkv7_op_matmul(be, &x, &L->wo, &o, true);
}

static enum rwkv7_status channel_mix(struct rwkv7_ctx *c, int l, int64_t rows, int n_tok, const struct rwkv7_tensor *slots) {
    struct rwkv7_backend *be = c->be;
    const struct rwkv7_hparams *hp = &c->m->hp;
    const struct rwkv7_layer *L = &c->m->layers[l];
    int64_t C = hp->n_embd;
    struct rwkv7_tensor x = view(&c->s[S_X], C, rows), xf = view(&c->s[S_XA], C, rows);
    struct rwkv7_tensor xk = view(&c->s[S_MIX], C, rows), h = view(&c->s[S_H], hp->n_ff, rows);
    struct rwkv7_tensor mix = view(&L->ffn_lerp, C, 1);
    RWKV7_TRY(rwkv7_op_norm(be, &xf, &x, &L->ffn_norm_w, &L->ffn_norm_b, 1, hp->norm_eps));
    RWKV7_TRY(rwkv7_op_token_shift(be, &xk, &xf, &mix, &c->ffn_shift[l], slots, n_tok));
    RWKV7_TRY(rwkv7_op_matmul(be, &h, &L->ffn_key, &xk, false));
    RWKV7_TRY(rwkv7_op_unary(be, &h, &h, NULL, RWKV7_UNARY_RELU_SQR));
    return rwkv7_op_matmul(be, &x, &L->ffn_value, &h, true);
}

/* One step: n_seq sequences x n_tok tokens already uploaded to S_TOK; slots uploaded. */
static enum rwkv7_status step(struct rwkv7_ctx *c, int n_seq, int n_tok, enum rwkv7_logits mode) {
    struct rwkv7_backend *be = c->be;
    struct rwkv7_model *m = c->m;
    const struct rwkv7_hparams *hp = &m->hp;
    int64_t rows = (int64_t)n_seq * n_tok, C = hp->n_embd;
    struct rwkv7_tensor x = view(&c->s[S_X], C, rows);
    struct rwkv7_tensor tok = c->s[S_TOK];
    tok.ne[0] = rows;
    tok.nbytes = (size_t)rows * sizeof(int32_t);
    struct rwkv7_tensor slots = c->s[S_SLOTS];
    slots.ne[0] = n_seq;
    slots.nbytes = (size_t)n_seq * sizeof(int32_t);
    RWKV7_TRY(rwkv7_op_embed(be, &x, &m->tok_embd, &tok));
    RWKV7_TRY(rwkv7_op_norm(be, &x, &x, &m->ln0_w, &m->ln0_b, 1, hp->norm_eps));
    for (int l = 0; l < hp->n_layer; l++) {
        RWKV7_TRY(time_mix(c, l, rows, n_tok, &slots));
        RWKV7_TRY(channel_mix(c, l, rows, n_tok, &slots));
    }
    if (mode == RWKV7_LOGITS_NONE) return RWKV7_OK;
    struct rwkv7_tensor xo = view(&c->s[S_XA], C, rows);
    int64_t out_rows = rows;
    if (mode == RWKV7_LOGITS_LAST) {
        out_rows = n_seq;
        xo = view(&c->s[S_LAST], C, n_seq);
        RWKV7_TRY(rwkv7_op_last_rows(be, &xo, &x, n_tok));
        RWKV7_TRY(rwkv7_op_norm(be, &xo, &xo, &m->out_norm_w, &m->out_norm_b, 1, hp->norm_eps));
    } else {
        RWKV7_TRY(rwkv7_op_norm(be, &xo, &x, &m->out_norm_w, &m->out_norm_b, 1, hp->norm_eps));
    }
    struct rwkv7_tensor logits = view(&c->s[S_LOGITS], hp->n_vocab, out_rows);
    return rwkv7_op_matmul(be, &logits, &m->head, &xo, false);
}

/* A decode step (one token per sequence) is the same sequence of ops every time for a given
 * batch size and logits mode: only the uploaded tokens and slots differ. Backends that can record
 * (CUDA graphs, Vulkan command buffers) record it once and replay it, which removes the per-op
 * launch cost that dominates small-batch decode. Prefill steps vary in length and are run
 * directly. */
static enum rwkv7_status run_step(struct rwkv7_ctx *c, int n_seq, int n_tok, enum rwkv7_logits mode) {
    struct rwkv7_backend *be = c->be;
    if (n_tok != 1 || !c->use_graphs) return step(c, n_seq, n_tok, mode);
    uint64_t key = (uint64_t)(uintptr_t)c * 0x9E3779B97F4A7C15ull;
    key ^= ((uint64_t)c->graph_gen << 40) ^ ((uint64_t)n_seq << 2) ^ (uint64_t)mode;
    if (be->i->graph_launch(be, key)) return RWKV7_OK;
    RWKV7_TRY(be->i->graph_begin(be, key));
    enum rwkv7_status st = step(c, n_seq, n_tok, mode);
    enum rwkv7_status st_end = be->i->graph_end(be);
    return st != RWKV7_OK ? st : st_end;
}

enum rwkv7_status rwkv7_ctx_eval(struct rwkv7_ctx *c, int n_seq, const int *slots, int n_tok, const int32_t *tokens,
                                 enum rwkv7_logits mode, float *logits) {
    const struct rwkv7_hparams *hp = &c->m->hp;
    if (n_seq < 1 || n_seq > c->n_slots || n_tok < 1 || !slots || !tokens)
        return rwkv7_fail(RWKV7_ERR_ARG, "eval: bad batch (%d sequences of %d tokens, %d slots)", n_seq, n_tok, c->n_slots);
    if (mode != RWKV7_LOGITS_NONE && !logits) return rwkv7_fail(RWKV7_ERR_ARG, "eval: no logits buffer");
    for (int s = 0; s < n_seq; s++) {
        RWKV7_TRY(slot_check(c, slots[s]));
        for (int s2 = 0; s2 < s; s2++)
            if (slots[s2] == slots[s]) return rwkv7_fail(RWKV7_ERR_ARG, "eval: slot %d appears twice", slots[s]);
    }
    for (int64_t i = 0; i < (int64_t)n_seq * n_tok; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return rwkv7_fail(RWKV7_ERR_ARG, "eval: token %d out of range (vocabulary of %d)", tokens[i], hp->n_vocab);
    int step_tok = c->max_rows / n_seq;
    if (step_tok < 1) step_tok = 1;
    if (step_tok > n_tok) step_tok = n_tok;
    int rows = n_seq * step_tok;
    int logit_rows = mode == RWKV7_LOGITS_ALL ? rows : n_seq;
    RWKV7_TRY(alloc_scratch(c, rows, logit_rows));
    int32_t *slot32 = c->host_tok; /* reuse the token staging for the slot upload */
    if (n_seq > c->cap_rows) return rwkv7_fail(RWKV7_ERR_INTERNAL, "eval: scratch too small");
    for (int s = 0; s < n_seq; s++) slot32[s] = slots[s];
    RWKV7_TRY(c->be->i->buf_set(c->be, c->s[S_SLOTS].buf, 0, slot32, (size_t)n_seq * sizeof(int32_t)));
    size_t V = (size_t)hp->n_vocab;
    for (int t0 = 0; t0 < n_tok; t0 += step_tok) {
        int nt = n_tok - t0 < step_tok ? n_tok - t0 : step_tok;
        for (int s = 0; s < n_seq; s++)
            memcpy(c->host_tok + (size_t)s * nt, tokens + (size_t)s * n_tok + t0, (size_t)nt * sizeof(int32_t));
        RWKV7_TRY(c->be->i->buf_set(c->be, c->s[S_TOK].buf, 0, c->host_tok, (size_t)n_seq * nt * sizeof(int32_t)));
        bool last = t0 + nt == n_tok;
        enum rwkv7_logits m = mode == RWKV7_LOGITS_ALL ? mode : (last ? mode : RWKV7_LOGITS_NONE);
        RWKV7_TRY(run_step(c, n_seq, nt, m));
        if (m == RWKV7_LOGITS_ALL) {
            for (int s = 0; s < n_seq; s++)
                RWKV7_TRY(c->be->i->buf_get(c->be, c->s[S_LOGITS].buf, (size_t)s * nt * V * sizeof(float),
                                            logits + ((size_t)s * n_tok + t0) * V, (size_t)nt * V * sizeof(float)));
        } else if (m == RWKV7_LOGITS_LAST) {
            RWKV7_TRY(c->be->i->buf_get(c->be, c->s[S_LOGITS].buf, 0, logits, (size_t)n_seq * V * sizeof(float)));
        }
    }
    return c->be->i->sync(c->be);
}
