/* forward.c: the RWKV-7 forward pass, written once against the backend ops (rwkv7-gguf.md 4.3-4.7),
 * and the context that owns state slots and activation scratch. A step evaluates n_seq sequences
 * x n_tok tokens as (C, n_seq * n_tok) activations; long inputs are cut into steps of at most
 * max_rows rows. State per layer lives on the backend as three (., n_slots) tensors: attention
 * shift, FFN shift and WKV matrices, so a sequence's slot is a row index and batches can mix any
 * slots. */
#include <stdatomic.h>
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
    uint32_t serial;    /* never reused in the process: owner of this context's recorded steps */
    uint64_t graph_ops[4]; /* ops in a recorded decode step, per logits mode (counted at recording) */
    int64_t step_t0;       /* first token of the step in the current eval call (debug messages) */
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

/* LoRA hidden j (0 decay, 1 in-context rate, 2 gate, 3 value residual) of width ne0: the four
 * down-projections run in one matmul_n, so each has its own slice of S_LORA (lora, cap_rows, 4). */
static struct rwkv7_tensor lora_slice(const struct rwkv7_ctx *c, int j, int64_t ne0, int64_t rows) {
    struct rwkv7_tensor v = view(&c->s[S_LORA], ne0, rows);
    v.offs += (size_t)j * (size_t)(c->s[S_LORA].ne[0] * c->cap_rows) * sizeof(float);
    return v;
}

/* Row j (of n_mix) of the token-shift output, viewed as (C, rows). */
static struct rwkv7_tensor mix_slice(const struct rwkv7_tensor *t, int64_t C, int64_t rows, int j) {
    struct rwkv7_tensor v = view(t, C, rows);
    v.offs += (size_t)(j * C * rows) * sizeof(float);
    return v;
}

/* Recorded steps point at this context's buffers: forget them before the buffers go. */
static void drop_graphs(struct rwkv7_ctx *c) {
    if (c->use_graphs && c->be->i->graph_drop) c->be->i->graph_drop(c->be, c->serial);
}

static void free_scratch(struct rwkv7_ctx *c) {
    drop_graphs(c);
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
        {S_Y, RWKV7_DTYPE_F32, C, R, 1}, {S_O, RWKV7_DTYPE_F32, C, R, 1}, {S_LORA, RWKV7_DTYPE_F32, lora, R, 4},
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
    /* Serials start at 1 and are never reused, so a context created where a freed one lived (same
     * address) can never replay the other's recordings. 2^32 contexts per process is the limit. */
    static atomic_uint_fast32_t next_serial = 1;
    c->serial = (uint32_t)atomic_fetch_add(&next_serial, 1);
    const char *no_graphs = getenv("RWKV7_NO_GRAPHS");
    /* The debug hooks work at the op door, which a replayed step bypasses. */
    c->use_graphs = m->be->i->graph_launch && m->be->i->graph_drop && !(no_graphs && atoi(no_graphs) != 0) &&
                    rwkv7_backend_debug_flags(m->be) == 0;
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

    RWKV7_TRY(RWKV7_OP(be, norm_shift, .dst = &mixv, .xn = &xa, .x = &x, .w = &L->attn_norm_w, .b = &L->attn_norm_b,
                       .mix = &L->lerp, .state = &c->att_shift[l], .slots = slots, .eps = hp->norm_eps,
                       .n_tok = n_tok));
    /* r, k, v, then the LoRA down-projections (value residual from layer 1 on), each from its
     * token-shifted rows: independent products, one call each group. */
    RWKV7_TRY(RWKV7_OP(be, matmul_n, .n = 3,
                       .m = {{.dst = &r, .w = &L->wr, .x = &xr}, {.dst = &k, .w = &L->wk, .x = &xk},
                             {.dst = &v, .w = &L->wv, .x = &xv}}));
    struct rwkv7_tensor lw = lora_slice(c, 0, hp->lora_decay, rows), la = lora_slice(c, 1, hp->lora_iclr, rows);
    struct rwkv7_tensor lg = lora_slice(c, 2, hp->lora_gate, rows), lv = lora_slice(c, 3, hp->lora_vres, rows);
    RWKV7_TRY(RWKV7_OP(be, matmul_n, .n = l == 0 ? 3 : 4,
                       .m = {{.dst = &lw, .w = &L->w1, .x = &xw}, {.dst = &la, .w = &L->a1, .x = &xa_},
                             {.dst = &lg, .w = &L->g1, .x = &xg}, {.dst = &lv, .w = &L->v1, .x = &xv}}));
    /* The LoRA up-projections, one call: decay w = exp(-0.606531 * sigmoid(w0 + W2 tanh(W1 x_w)));
     * in-context learning rate a = sigmoid(a0 + A2 A1 x_a); gate g = G2 sigmoid(G1 x_g); value
     * residual: layer 0 records v_first, later layers pull v toward it by sigmoid(v0 + V2 V1 x_v). */
    const int none = RWKV7_LORA_NO_FN;
    RWKV7_TRY(RWKV7_OP(be, lora_up, .n = l == 0 ? 3 : 4,
                       .u = {{&w, &L->w2, &lw, &L->w0, RWKV7_UNARY_TANH, RWKV7_UNARY_DECAY},
                             {&a, &L->a2, &la, &L->a0, none, RWKV7_UNARY_SIGMOID},
                             {&g, &L->g2, &lg, NULL, RWKV7_UNARY_SIGMOID, none},
                             {&t2, &L->v2, &lv, &L->v0, none, RWKV7_UNARY_SIGMOID}},
                       .v = &v, .v_first = &vf, .vres = l == 0 ? RWKV7_LORA_VRES_RECORD : 3));
    RWKV7_TRY(RWKV7_OP(be, wkv_block, .dst = &o, .state = &c->wkv[l], .slots = slots, .r = &r, .w = &w, .k = &k,
                       .v = &v, .a = &a, .g = &g, .k_k = &L->k_k, .k_a = &L->k_a, .r_k = &L->r_k, .ln_w = &L->lnx_w,
                       .ln_b = &L->lnx_b, .kk = &kk, .kmod = &km, .y = &y, .n_tok = n_tok, .head_size = hp->head_size,
                       .eps = RWKV7_GROUPNORM_EPS));
    return RWKV7_OP(be, matmul, .dst = &x, .w = &L->wo, .x = &o, .accumulate = true);
}

static enum rwkv7_status channel_mix(struct rwkv7_ctx *c, int l, int64_t rows, int n_tok, const struct rwkv7_tensor *slots) {
    struct rwkv7_backend *be = c->be;
    const struct rwkv7_hparams *hp = &c->m->hp;
    const struct rwkv7_layer *L = &c->m->layers[l];
    int64_t C = hp->n_embd;
    struct rwkv7_tensor x = view(&c->s[S_X], C, rows), xf = view(&c->s[S_XA], C, rows);
    struct rwkv7_tensor xk = view(&c->s[S_MIX], C, rows), h = view(&c->s[S_H], hp->n_ff, rows);
    struct rwkv7_tensor mix = view(&L->ffn_lerp, C, 1);
    RWKV7_TRY(RWKV7_OP(be, norm_shift, .dst = &xk, .xn = &xf, .x = &x, .w = &L->ffn_norm_w, .b = &L->ffn_norm_b,
                       .mix = &mix, .state = &c->ffn_shift[l], .slots = slots, .eps = hp->norm_eps, .n_tok = n_tok));
    RWKV7_TRY(RWKV7_OP(be, ffn_key, .dst = &h, .w = &L->ffn_key, .x = &xk));
    return RWKV7_OP(be, matmul, .dst = &x, .w = &L->ffn_value, .x = &h, .accumulate = true);
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
    RWKV7_TRY(RWKV7_OP(be, embed, .dst = &x, .table = &m->tok_embd, .tokens = &tok));
    RWKV7_TRY(RWKV7_OP(be, norm, .dst = &x, .x = &x, .w = &m->ln0_w, .b = &m->ln0_b, .n_groups = 1,
                       .eps = hp->norm_eps));
    for (int l = 0; l < hp->n_layer; l++) {
        rwkv7_op_where(be, l, c->step_t0);
        RWKV7_TRY(time_mix(c, l, rows, n_tok, &slots));
        RWKV7_TRY(channel_mix(c, l, rows, n_tok, &slots));
    }
    rwkv7_op_where(be, -1, c->step_t0);
    if (mode == RWKV7_LOGITS_NONE) return RWKV7_OK;
    struct rwkv7_tensor xo = view(&c->s[S_XA], C, rows);
    int64_t out_rows = rows;
    if (mode == RWKV7_LOGITS_LAST) {
        out_rows = n_seq;
        xo = view(&c->s[S_LAST], C, n_seq);
        RWKV7_TRY(RWKV7_OP(be, last_rows, .dst = &xo, .x = &x, .n_tok = n_tok));
        RWKV7_TRY(RWKV7_OP(be, norm, .dst = &xo, .x = &xo, .w = &m->out_norm_w, .b = &m->out_norm_b, .n_groups = 1,
                           .eps = hp->norm_eps));
    } else {
        RWKV7_TRY(RWKV7_OP(be, norm, .dst = &xo, .x = &x, .w = &m->out_norm_w, .b = &m->out_norm_b, .n_groups = 1,
                           .eps = hp->norm_eps));
    }
    struct rwkv7_tensor logits = view(&c->s[S_LOGITS], hp->n_vocab, out_rows);
    return RWKV7_OP(be, matmul, .dst = &logits, .w = &m->head, .x = &xo);
}

/* A decode step (one token per sequence) is the same sequence of ops every time for a given
 * batch size and logits mode: only the uploaded tokens and slots differ. Backends that can record
 * (CUDA graphs, Vulkan command buffers) record it once and replay it, which removes the per-op
 * launch cost that dominates small-batch decode. Prefill steps vary in length and are run
 * directly. */
static enum rwkv7_status run_step(struct rwkv7_ctx *c, int n_seq, int n_tok, enum rwkv7_logits mode) {
    struct rwkv7_backend *be = c->be;
    if (n_tok != 1 || !c->use_graphs) return step(c, n_seq, n_tok, mode);
    /* Owner in the high half (backend.h); the shape: n_seq <= n_slots <= 2^20, mode < 4. */
    uint64_t key = ((uint64_t)c->serial << 32) | ((uint64_t)n_seq << 2) | (uint64_t)mode;
    uint64_t n_ops = be->n_ops;
    if (be->i->graph_launch(be, key)) {
        be->n_ops += c->graph_ops[mode & 3]; /* what the replay ran, for dispatches_per_token */
        return RWKV7_OK;
    }
    RWKV7_TRY(be->i->graph_begin(be, key));
    enum rwkv7_status st = step(c, n_seq, n_tok, mode);
    /* A step that failed part-way leaves a partial recording: never keep it. */
    enum rwkv7_status st_end = be->i->graph_end(be, st == RWKV7_OK);
    c->graph_ops[mode & 3] = be->n_ops - n_ops;
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
        c->step_t0 = t0;
        rwkv7_op_where(c->be, -1, t0);
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
