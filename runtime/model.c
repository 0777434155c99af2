/* model.c: binds a GGUF of architecture "rwkv7" to the model struct (rwkv7-gguf.md sections 2-3):
 * hyper-parameters from the metadata, all 6 global and 28 per-layer tensors with shape checks that
 * name the tensor, the expected and the found shape; then uploads every weight to the backend.
 * Any tensor may be stored in any weight type; none is assumed quantized or not. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "model.h"
#include "status.h"
#include "tokenizer.h"

static enum rwkv7_status keep_buf(struct rwkv7_model *m, struct rwkv7_buf *b) {
    if (m->n_bufs == m->cap_bufs) {
        int cap = m->cap_bufs ? 2 * m->cap_bufs : 64;
        struct rwkv7_buf **p = realloc(m->bufs, (size_t)cap * sizeof *p);
        if (!p) {
            m->be->i->buf_free(m->be, b);
            return rwkv7_fail(RWKV7_ERR_OOM, "model: out of memory");
        }
        m->bufs = p;
        m->cap_bufs = cap;
    }
    m->bufs[m->n_bufs++] = b;
    return RWKV7_OK;
}

static void fmt_shape(char *buf, size_t cap, const int64_t *ne, int n) {
    int o = snprintf(buf, cap, "(");
    for (int i = 0; i < n && o < (int)cap; i++) o += snprintf(buf + o, cap - (size_t)o, i ? ", %lld" : "%lld", (long long)ne[i]);
    if (o < (int)cap) snprintf(buf + o, cap - (size_t)o, ")");
}

/* Loader state shared by the bind helpers. */
struct loader {
    struct rwkv7_model *m;
    bool progress;
    uint64_t total, done; /* matrix bytes to upload, for the progress line */
    int last_pct;
};

static enum rwkv7_status find(struct loader *ld, const char *name, const struct rwkv7_gguf_tensor **out) {
    *out = rwkv7_gguf_find_tensor(ld->m->gguf, name);
    if (!*out) return rwkv7_fail(RWKV7_ERR_FORMAT, "model: tensor '%s' is missing", name);
    return RWKV7_OK;
}

static void progress(struct loader *ld, uint64_t add) {
    ld->done += add;
    if (!ld->progress || ld->total < (256u << 20)) return;
    int pct = (int)(100.0 * (double)ld->done / (double)ld->total);
    if (pct == ld->last_pct) return;
    ld->last_pct = pct;
    fprintf(stderr, "\rrwkv7: uploading weights %3d%% (%.2f / %.2f GiB)", pct, ld->done / 1073741824.0,
            ld->total / 1073741824.0);
    if (ld->done >= ld->total) fprintf(stderr, "\n");
}

/* A matrix (K, M) kept in its file type. */
static enum rwkv7_status bind_matrix(struct loader *ld, struct rwkv7_tensor *t, const char *name, int64_t K, int64_t M) {
    struct rwkv7_model *m = ld->m;
    const struct rwkv7_gguf_tensor *gt;
    RWKV7_TRY(find(ld, name, &gt));
    if (gt->ne[0] != K || gt->ne[1] != M || gt->ne[2] != 1 || gt->ne[3] != 1) {
        char want[64], got[96];
        int64_t ne[2] = {K, M};
        fmt_shape(want, sizeof want, ne, 2);
        fmt_shape(got, sizeof got, gt->ne, gt->n_dims);
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: tensor '%s' has shape %s, expected %s", name, got, want);
    }
    if (!m->be->i->supports(m->be, RWKV7_OP_MATMUL, gt->type))
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, which the %s backend cannot use",
                          name, rwkv7_dtype_name(gt->type), m->be->i->name);
    memset(t, 0, sizeof *t);
    t->type = gt->type;
    t->ne[0] = K;
    t->ne[1] = M;
    t->ne[2] = t->ne[3] = 1;
    t->nbytes = gt->nbytes;
    t->name = gt->name;
    struct rwkv7_buf *b = NULL;
    if (m->be->i->weight_prepare) {
        /* The backend places the matrix in its own layout (backend.h: weight_prepare). */
        RWKV7_TRY(m->be->i->buf_alloc(m->be, gt->nbytes, &b));
        RWKV7_TRY(keep_buf(m, b));
        t->buf = b;
        RWKV7_TRY(m->be->i->weight_prepare(m->be, t, gt->data));
    } else if (m->be->i->buf_wrap_host) {
        RWKV7_TRY(m->be->i->buf_wrap_host(m->be, (void *)gt->data, gt->nbytes, &b));
        RWKV7_TRY(keep_buf(m, b));
    } else {
        RWKV7_TRY(m->be->i->buf_alloc(m->be, gt->nbytes, &b));
        RWKV7_TRY(keep_buf(m, b));
        RWKV7_TRY(m->be->i->buf_set(m->be, b, 0, gt->data, gt->nbytes));
    }
    t->buf = b;
    t->offs = 0;
    progress(ld, gt->nbytes);
    return RWKV7_OK;
}

/* A vector of n_rows x C values widened to F32: (C) or, for the lerp block, (C, 6). The file may
 * spell the trailing axes differently ((C), (C,1,1), (C,1,1,6)); only the element count past C
 * matters. */
static enum rwkv7_status bind_vector(struct loader *ld, struct rwkv7_tensor *t, const char *name, int64_t C, int64_t n_rows) {
    struct rwkv7_model *m = ld->m;
    const struct rwkv7_gguf_tensor *gt;
    RWKV7_TRY(find(ld, name, &gt));
    int64_t rows = gt->ne[1] * gt->ne[2] * gt->ne[3];
    if (gt->ne[0] != C || rows != n_rows) {
        char want[64], got[96];
        int64_t ne[4] = {C, 1, 1, n_rows};
        fmt_shape(want, sizeof want, ne, n_rows == 1 ? 1 : 4);
        fmt_shape(got, sizeof got, gt->ne, gt->n_dims);
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: tensor '%s' has shape %s, expected %s", name, got, want);
    }
    const struct rwkv7_dtype_info *ti = rwkv7_dtype_get(gt->type);
    size_t n = (size_t)(C * n_rows);
    float *host = malloc(n * sizeof(float));
    if (!host) return rwkv7_fail(RWKV7_ERR_OOM, "model: out of memory");
    ti->to_f32(gt->data, host, (int64_t)n);
    memset(t, 0, sizeof *t);
    t->type = RWKV7_DTYPE_F32;
    t->ne[0] = C;
    t->ne[1] = n_rows;
    t->ne[2] = t->ne[3] = 1;
    t->nbytes = n * sizeof(float);
    t->name = gt->name;
    struct rwkv7_buf *b = NULL;
    enum rwkv7_status st = m->be->i->buf_alloc(m->be, t->nbytes, &b);
    if (st == RWKV7_OK) st = keep_buf(m, b);
    if (st == RWKV7_OK) st = m->be->i->buf_set(m->be, b, 0, host, t->nbytes);
    free(host);
    t->buf = b;
    return st;
}

static enum rwkv7_status get_u32(const struct rwkv7_gguf *g, const char *key, int *out, int dflt) {
    if (rwkv7_gguf_find_kv(g, key) < 0 && dflt >= 0) {
        *out = dflt;
        return RWKV7_OK;
    }
    uint32_t v;
    RWKV7_TRY(rwkv7_gguf_get_u32(g, key, &v));
    if (v > (1u << 30)) return rwkv7_fail(RWKV7_ERR_FORMAT, "model: key '%s' = %u is out of range", key, v);
    *out = (int)v;
    return RWKV7_OK;
}

static enum rwkv7_status read_hparams(struct rwkv7_model *m) {
    const struct rwkv7_gguf *g = m->gguf;
    struct rwkv7_hparams *hp = &m->hp;
    struct rwkv7_gguf_str arch;
    if (rwkv7_gguf_find_kv(g, "general.architecture") < 0)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: key 'general.architecture' is missing");
    RWKV7_TRY(rwkv7_gguf_get_str(g, "general.architecture", &arch));
    if (arch.len != 5 || memcmp(arch.ptr, "rwkv7", 5) != 0)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "model: architecture '%.*s' is not supported (expected rwkv7)",
                          (int)(arch.len > 40 ? 40 : arch.len), arch.ptr);
    RWKV7_TRY(get_u32(g, "rwkv7.embedding_length", &hp->n_embd, -1));
    RWKV7_TRY(get_u32(g, "rwkv7.block_count", &hp->n_layer, -1));
    RWKV7_TRY(get_u32(g, "rwkv7.wkv.head_size", &hp->head_size, -1));
    RWKV7_TRY(get_u32(g, "rwkv7.feed_forward_length", &hp->n_ff, 0));
    RWKV7_TRY(get_u32(g, "rwkv7.attention.decay_lora_rank", &hp->lora_decay, -1));
    RWKV7_TRY(get_u32(g, "rwkv7.attention.iclr_lora_rank", &hp->lora_iclr, -1));
    RWKV7_TRY(get_u32(g, "rwkv7.attention.value_residual_mix_lora_rank", &hp->lora_vres, -1));
    RWKV7_TRY(get_u32(g, "rwkv7.attention.gate_lora_rank", &hp->lora_gate, 0));
    int shift_count = 2;
    RWKV7_TRY(get_u32(g, "rwkv7.token_shift_count", &shift_count, 2));
    if (shift_count != 2)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "model: rwkv7.token_shift_count is %d, expected 2", shift_count);
    hp->norm_eps = 1e-5f;
    if (rwkv7_gguf_find_kv(g, "rwkv7.attention.layer_norm_epsilon") >= 0)
        RWKV7_TRY(rwkv7_gguf_get_f32(g, "rwkv7.attention.layer_norm_epsilon", &hp->norm_eps));
    if (!(hp->norm_eps >= 0 && hp->norm_eps < 1))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: layer_norm_epsilon %g is out of range", (double)hp->norm_eps);
    if (hp->n_embd < 1 || hp->n_layer < 1 || hp->head_size < 1 || hp->lora_decay < 1 || hp->lora_iclr < 1 ||
        hp->lora_vres < 1)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: hyper-parameters must be positive (n_embd %d, n_layer %d, head_size %d, lora ranks %d/%d/%d)",
                          hp->n_embd, hp->n_layer, hp->head_size, hp->lora_decay, hp->lora_iclr, hp->lora_vres);
    if (hp->n_embd % hp->head_size)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: head size %d does not divide n_embd %d", hp->head_size, hp->n_embd);
    hp->n_head = hp->n_embd / hp->head_size;
    /* Bound what the metadata can make us allocate before any tensor is looked at: every layer
     * has 28 tensors (25 for a layer 0 without the dummy v-LoRA), and a head's N x N state must
     * stay sane. */
    if ((int64_t)hp->n_layer * 25 + 6 > rwkv7_gguf_n_tensors(g) + 3)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: block_count %d needs at least %lld tensors, the file has %lld",
                          hp->n_layer, (long long)hp->n_layer * 25 + 3, (long long)rwkv7_gguf_n_tensors(g));
    if (hp->head_size > 1024)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "model: head size %d is not supported (at most 1024)", hp->head_size);
    const struct rwkv7_gguf_tensor *emb = rwkv7_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return rwkv7_fail(RWKV7_ERR_FORMAT, "model: tensor 'token_embd.weight' is missing");
    if (emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: vocabulary of %lld tokens is out of range", (long long)emb->ne[1]);
    hp->n_vocab = (int)emb->ne[1];
    if (hp->n_ff == 0) {
        const struct rwkv7_gguf_tensor *fk = rwkv7_gguf_find_tensor(g, "blk.0.channel_mix_key.weight");
        hp->n_ff = fk ? (int)fk->ne[1] : 4 * hp->n_embd;
    }
    if (hp->lora_gate == 0) {
        const struct rwkv7_gguf_tensor *g1 = rwkv7_gguf_find_tensor(g, "blk.0.time_mix_g1.weight");
        if (!g1) return rwkv7_fail(RWKV7_ERR_FORMAT, "model: tensor 'blk.0.time_mix_g1.weight' is missing");
        hp->lora_gate = (int)g1->ne[1];
    }
    return RWKV7_OK;
}

static enum rwkv7_status bind_all(struct loader *ld) {
    struct rwkv7_model *m = ld->m;
    const struct rwkv7_hparams *hp = &m->hp;
    int64_t C = hp->n_embd, V = hp->n_vocab, F = hp->n_ff;
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(m->gguf); i++) ld->total += rwkv7_gguf_tensor(m->gguf, i)->nbytes;
    RWKV7_TRY(bind_matrix(ld, &m->tok_embd, "token_embd.weight", C, V));
    if (!m->be->i->supports(m->be, RWKV7_OP_EMBED, m->tok_embd.type))
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "model: the %s backend cannot embed type %s", m->be->i->name,
                          rwkv7_dtype_name(m->tok_embd.type));
    RWKV7_TRY(bind_vector(ld, &m->ln0_w, "token_embd_norm.weight", C, 1));
    RWKV7_TRY(bind_vector(ld, &m->ln0_b, "token_embd_norm.bias", C, 1));
    RWKV7_TRY(bind_vector(ld, &m->out_norm_w, "output_norm.weight", C, 1));
    RWKV7_TRY(bind_vector(ld, &m->out_norm_b, "output_norm.bias", C, 1));
    RWKV7_TRY(bind_matrix(ld, &m->head, "output.weight", C, V));
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return rwkv7_fail(RWKV7_ERR_OOM, "model: out of memory");
    for (int l = 0; l < hp->n_layer; l++) {
        struct rwkv7_layer *L = &m->layers[l];
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
        RWKV7_TRY(bind_vector(ld, &L->attn_norm_w, NAME("attn_norm.weight"), C, 1));
        RWKV7_TRY(bind_vector(ld, &L->attn_norm_b, NAME("attn_norm.bias"), C, 1));
        RWKV7_TRY(bind_vector(ld, &L->ffn_norm_w, NAME("attn_norm_2.weight"), C, 1));
        RWKV7_TRY(bind_vector(ld, &L->ffn_norm_b, NAME("attn_norm_2.bias"), C, 1));
        RWKV7_TRY(bind_vector(ld, &L->lerp, NAME("time_mix_lerp_fused.weight"), C, 6));
        RWKV7_TRY(bind_vector(ld, &L->w0, NAME("time_mix_w0.weight"), C, 1));
        RWKV7_TRY(bind_matrix(ld, &L->w1, NAME("time_mix_w1.weight"), C, hp->lora_decay));
        RWKV7_TRY(bind_matrix(ld, &L->w2, NAME("time_mix_w2.weight"), hp->lora_decay, C));
        RWKV7_TRY(bind_vector(ld, &L->a0, NAME("time_mix_a0.weight"), C, 1));
        RWKV7_TRY(bind_matrix(ld, &L->a1, NAME("time_mix_a1.weight"), C, hp->lora_iclr));
        RWKV7_TRY(bind_matrix(ld, &L->a2, NAME("time_mix_a2.weight"), hp->lora_iclr, C));
        /* Layer 0's v0/v1/v2 are converter dummies with the a-rank shapes: never read them. */
        if (l > 0) {
            RWKV7_TRY(bind_vector(ld, &L->v0, NAME("time_mix_v0.weight"), C, 1));
            RWKV7_TRY(bind_matrix(ld, &L->v1, NAME("time_mix_v1.weight"), C, hp->lora_vres));
            RWKV7_TRY(bind_matrix(ld, &L->v2, NAME("time_mix_v2.weight"), hp->lora_vres, C));
        }
        RWKV7_TRY(bind_matrix(ld, &L->g1, NAME("time_mix_g1.weight"), C, hp->lora_gate));
        RWKV7_TRY(bind_matrix(ld, &L->g2, NAME("time_mix_g2.weight"), hp->lora_gate, C));
        RWKV7_TRY(bind_vector(ld, &L->k_k, NAME("time_mix_k_k.weight"), C, 1));
        RWKV7_TRY(bind_vector(ld, &L->k_a, NAME("time_mix_k_a.weight"), C, 1));
        RWKV7_TRY(bind_vector(ld, &L->r_k, NAME("time_mix_r_k.weight"), C, 1));
        RWKV7_TRY(bind_matrix(ld, &L->wr, NAME("time_mix_receptance.weight"), C, C));
        RWKV7_TRY(bind_matrix(ld, &L->wk, NAME("time_mix_key.weight"), C, C));
        RWKV7_TRY(bind_matrix(ld, &L->wv, NAME("time_mix_value.weight"), C, C));
        RWKV7_TRY(bind_matrix(ld, &L->wo, NAME("time_mix_output.weight"), C, C));
        RWKV7_TRY(bind_vector(ld, &L->lnx_w, NAME("time_mix_ln.weight"), C, 1));
        RWKV7_TRY(bind_vector(ld, &L->lnx_b, NAME("time_mix_ln.bias"), C, 1));
        RWKV7_TRY(bind_vector(ld, &L->ffn_lerp, NAME("channel_mix_lerp_k.weight"), C, 1));
        RWKV7_TRY(bind_matrix(ld, &L->ffn_key, NAME("channel_mix_key.weight"), C, F));
        RWKV7_TRY(bind_matrix(ld, &L->ffn_value, NAME("channel_mix_value.weight"), F, C));
#undef NAME
    }
    if (ld->progress && ld->total >= (256u << 20) && ld->done < ld->total) {
        ld->done = ld->total;
        progress(ld, 0);
    }
    return RWKV7_OK;
}

static void compute_sizes(struct rwkv7_model *m) {
    const struct rwkv7_gguf *g = m->gguf;
    const struct rwkv7_gguf_tensor *emb = rwkv7_gguf_find_tensor(g, "token_embd.weight");
    m->weight_bytes = m->n_params = 0;
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(g); i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(g, i);
        m->weight_bytes += t->nbytes;
        m->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    /* A decode step reads every weight once except the embedding table, of which one row. Layer
     * 0's unused v-LoRA dummies are not read either. */
    m->bytes_per_token = m->weight_bytes - emb->nbytes + emb->nbytes / (uint64_t)emb->ne[1];
    const char *dummies[] = {"blk.0.time_mix_v0.weight", "blk.0.time_mix_v1.weight", "blk.0.time_mix_v2.weight"};
    for (int i = 0; i < 3; i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_find_tensor(g, dummies[i]);
        if (t) m->bytes_per_token -= t->nbytes;
    }
}

static enum rwkv7_status load_common(struct rwkv7_model *m, const struct rwkv7_model_params *params) {
    struct rwkv7_model_params dflt = {0};
    if (!params) params = &dflt;
    RWKV7_TRY(read_hparams(m));
    RWKV7_TRY(rwkv7_tokenizer_from_gguf(m->gguf, &m->tok));
    if (rwkv7_tokenizer_n_vocab(m->tok) != m->hp.n_vocab)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "model: tokenizer has %d tokens but token_embd.weight has %d rows",
                          rwkv7_tokenizer_n_vocab(m->tok), m->hp.n_vocab);
    RWKV7_TRY(rwkv7_backend_init(params->backend, params->device, params->n_threads, params->quiet, &m->be));
    struct loader ld = {m, params->progress, 0, 0, -1};
    RWKV7_TRY(bind_all(&ld));
    compute_sizes(m);
    RWKV7_TRY(m->be->i->sync(m->be));
    snprintf(m->desc, sizeof m->desc, "%s", m->be->desc);
    return RWKV7_OK;
}

static enum rwkv7_status finish(struct rwkv7_model *m, enum rwkv7_status st, struct rwkv7_model **out) {
    if (st != RWKV7_OK) {
        /* Keep the message of the first failure: freeing can not fail, but be explicit. */
        rwkv7_model_free(m);
        return st;
    }
    *out = m;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_model_load(const char *path, const struct rwkv7_model_params *params, struct rwkv7_model **out) {
    if (!out || !path) return rwkv7_fail(RWKV7_ERR_ARG, "model: no path given");
    *out = NULL;
    struct rwkv7_model *m = calloc(1, sizeof *m);
    if (!m) return rwkv7_fail(RWKV7_ERR_OOM, "model: out of memory");
    enum rwkv7_status st = rwkv7_gguf_open(path, &m->gguf);
    if (st == RWKV7_OK) st = load_common(m, params);
    return finish(m, st, out);
}

enum rwkv7_status rwkv7_model_load_memory(const void *data, size_t size, const struct rwkv7_model_params *params,
                                          struct rwkv7_model **out) {
    if (!out || !data) return rwkv7_fail(RWKV7_ERR_ARG, "model: no data given");
    *out = NULL;
    struct rwkv7_model *m = calloc(1, sizeof *m);
    if (!m) return rwkv7_fail(RWKV7_ERR_OOM, "model: out of memory");
    enum rwkv7_status st = rwkv7_gguf_open_memory(data, size, &m->gguf);
    if (st == RWKV7_OK) st = load_common(m, params);
    return finish(m, st, out);
}

void rwkv7_model_free(struct rwkv7_model *m) {
    if (!m) return;
    if (m->be) {
        for (int i = 0; i < m->n_bufs; i++) m->be->i->buf_free(m->be, m->bufs[i]);
        rwkv7_backend_free(m->be);
    }
    free(m->bufs);
    free(m->layers);
    if (m->tok) rwkv7_tokenizer_free(m->tok);
    if (m->gguf) rwkv7_gguf_free(m->gguf);
    free(m);
}

const struct rwkv7_hparams *rwkv7_model_hparams(const struct rwkv7_model *m) { return &m->hp; }
const struct rwkv7_tokenizer *rwkv7_model_tokenizer(const struct rwkv7_model *m) { return m->tok; }
const char *rwkv7_model_backend_name(const struct rwkv7_model *m) { return m->be->i->name; }
const char *rwkv7_model_device_desc(const struct rwkv7_model *m) { return m->desc; }
uint64_t rwkv7_model_n_ops(const struct rwkv7_model *m) { return m->be->n_ops; }

uint64_t rwkv7_model_weight_bytes(const struct rwkv7_model *m) { return m->weight_bytes; }
uint64_t rwkv7_model_n_params(const struct rwkv7_model *m) { return m->n_params; }
uint64_t rwkv7_model_bytes_per_token(const struct rwkv7_model *m) { return m->bytes_per_token; }

void rwkv7_model_set_batch_invariant(struct rwkv7_model *m, bool on) {
    if (m->be->i->set_row_invariant) m->be->i->set_row_invariant(m->be, on);
}

enum rwkv7_status rwkv7_model_device_memory(const struct rwkv7_model *m, uint64_t *free_bytes, uint64_t *total_bytes) {
    if (!m->be->i->mem_info)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "model: the %s backend does not report its memory", m->be->i->name);
    return m->be->i->mem_info(m->be, free_bytes, total_bytes);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

uint64_t rwkv7_model_hash(struct rwkv7_model *m) {
    if (m->hash_done) return m->hash;
    uint64_t h = 14695981039346656037ull;
    int32_t hp[] = {m->hp.n_vocab, m->hp.n_embd, m->hp.n_layer, m->hp.n_ff, m->hp.head_size,
                    m->hp.lora_decay, m->hp.lora_iclr, m->hp.lora_vres, m->hp.lora_gate};
    h = fnv1a(h, hp, sizeof hp);
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(m->gguf); i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(m->gguf, i);
        h = fnv1a(h, t->name, strlen(t->name));
        h = fnv1a(h, &t->type, sizeof t->type);
        h = fnv1a(h, t->ne, sizeof t->ne);
        h = fnv1a(h, t->data, t->nbytes);
    }
    m->hash = h;
    m->hash_done = true;
    return h;
}
