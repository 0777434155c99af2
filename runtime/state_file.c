/* state_file.c: the state file (state_file.h, docs/state-format.md): a GGUF of architecture
 * "rwkv7" and general.type "state" holding, per layer, the two token-shift vectors (C) and the
 * WKV matrices as ne = (N, N, H), i.e. flat index h*N*N + i*N + j exactly as rwkv7_state_get lays
 * them out (rwkv7-gguf.md section 5.1). Loading stages everything in host memory and checks it
 * before rwkv7_state_set, so a refused file never leaves a half-written slot. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "gguf.h"
#include "gguf_write.h"
#include "state_file.h"
#include "status.h"

#define KEY_ARCH "general.architecture"
#define KEY_TYPE "general.type"
#define KEY_VERSION "rwkv7.state.version"
#define KEY_LAYERS "rwkv7.block_count"
#define KEY_EMBD "rwkv7.embedding_length"
#define KEY_HEAD "rwkv7.wkv.head_size"
#define KEY_HASH "rwkv7.state.model_hash"
#define KEY_NTOK "rwkv7.state.n_tokens"
#define KEY_PENDING "rwkv7.state.pending_token"
#define KEY_SAMPLER "rwkv7.state.sampler"
#define KEY_SAMPLER_BYTES "rwkv7.state.sampler_bytes"
#define KEY_NOTE "rwkv7.state.note"
#define T_LOGITS "state.logits"

struct layout {
    int L, C, H, N, V;
    size_t per_layer; /* floats: 2C + H*N*N */
};

static struct layout layout_of(const struct rwkv7_hparams *hp) {
    struct layout l = {hp->n_layer, hp->n_embd, hp->n_head, hp->head_size, hp->n_vocab, 0};
    l.per_layer = 2 * (size_t)l.C + (size_t)l.H * l.N * l.N;
    return l;
}

static enum rwkv7_status add_f32(struct rwkv7_gguf_writer *w, const char *name, int n_dims,
                                 int64_t a, int64_t b, int64_t c, const float *data) {
    const int64_t ne[4] = {a, b, c, 1};
    size_t nbytes = (size_t)(a * b * c) * sizeof(float);
    return rwkv7_gguf_writer_add_tensor_ref(w, name, n_dims, ne, RWKV7_DTYPE_F32, data, nbytes);
}

static enum rwkv7_status build(struct rwkv7_gguf_writer *w, const struct layout *lo,
                               const float *state, uint64_t hash,
                               const struct rwkv7_state_extra *x, const int32_t *sampler_words) {
    RWKV7_TRY(rwkv7_gguf_writer_add_str(w, KEY_ARCH, "rwkv7"));
    RWKV7_TRY(rwkv7_gguf_writer_add_str(w, KEY_TYPE, "state"));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, KEY_VERSION, RWKV7_STATE_FILE_VERSION));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, KEY_LAYERS, (uint32_t)lo->L));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, KEY_EMBD, (uint32_t)lo->C));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, KEY_HEAD, (uint32_t)lo->N));
    RWKV7_TRY(rwkv7_gguf_writer_add_u64(w, KEY_HASH, hash));
    RWKV7_TRY(rwkv7_gguf_writer_add_u64(w, KEY_NTOK, x ? x->n_tokens : 0));
    RWKV7_TRY(rwkv7_gguf_writer_add_i32(w, KEY_PENDING, x ? x->pending_token : -1));
    if (x && x->sampler) {
        RWKV7_TRY(rwkv7_gguf_writer_add_i32_arr(w, KEY_SAMPLER, sampler_words,
                                                (x->sampler_size + 3) / 4));
        RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, KEY_SAMPLER_BYTES, (uint32_t)x->sampler_size));
    }
    if (x && x->note) RWKV7_TRY(rwkv7_gguf_writer_add_str(w, KEY_NOTE, x->note));
    for (int l = 0; l < lo->L; l++) {
        const float *p = state + (size_t)l * lo->per_layer;
        char name[64];
        snprintf(name, sizeof name, "blk.%d.state_att_shift", l);
        RWKV7_TRY(add_f32(w, name, 1, lo->C, 1, 1, p));
        snprintf(name, sizeof name, "blk.%d.state_ffn_shift", l);
        RWKV7_TRY(add_f32(w, name, 1, lo->C, 1, 1, p + lo->C));
        snprintf(name, sizeof name, "blk.%d.state_wkv", l);
        RWKV7_TRY(add_f32(w, name, 3, lo->N, lo->N, lo->H, p + 2 * (size_t)lo->C));
    }
    if (x && x->logits) RWKV7_TRY(add_f32(w, T_LOGITS, 1, lo->V, 1, 1, x->logits));
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_state_save_file(struct rwkv7_model *model, struct rwkv7_ctx *ctx,
                                        int slot, const struct rwkv7_state_extra *extra,
                                        const char *path) {
    if (!model || !ctx || !path) return rwkv7_fail(RWKV7_ERR_ARG, "state: save without model, context or path");
    const struct rwkv7_hparams *hp = rwkv7_model_hparams(model);
    struct layout lo = layout_of(hp);
    if (extra && (extra->pending_token < -1 || extra->pending_token >= lo.V))
        return rwkv7_fail(RWKV7_ERR_ARG, "state: pending token %" PRId32 " outside 0..%d",
                          extra->pending_token, lo.V - 1);
    if (extra && extra->sampler && (extra->sampler_size == 0 || extra->sampler_size > UINT32_MAX))
        return rwkv7_fail(RWKV7_ERR_ARG, "state: sampler state of %zu bytes", extra->sampler_size);
    size_t nf = rwkv7_state_n_floats(hp);
    float *state = malloc(nf * sizeof(float));
    /* GGUF has no byte arrays: the sampler blob travels as zero-padded little int32 words. */
    size_t n_words = extra && extra->sampler ? (extra->sampler_size + 3) / 4 : 0;
    int32_t *words = calloc(n_words ? n_words : 1, sizeof(int32_t));
    struct rwkv7_gguf_writer *w = NULL;
    enum rwkv7_status st = RWKV7_OK;
    if (!state || !words) {
        st = rwkv7_fail(RWKV7_ERR_OOM, "state: out of memory for %zu floats", nf);
        goto done;
    }
    if (n_words) memcpy(words, extra->sampler, extra->sampler_size);
    if ((st = rwkv7_state_get(ctx, slot, state)) != RWKV7_OK) goto done;
    uint64_t hash = rwkv7_model_hash(model);
    if ((st = rwkv7_gguf_writer_init(&w)) != RWKV7_OK) goto done;
    if ((st = build(w, &lo, state, hash, extra, words)) != RWKV7_OK) goto done;
    st = rwkv7_gguf_writer_write_file(w, path);
done:
    rwkv7_gguf_writer_free(w);
    free(words);
    free(state);
    return st;
}

/* ---- loading ---- */

static enum rwkv7_status get_u64(const struct rwkv7_gguf *g, const char *path, const char *key,
                                 uint64_t *out) {
    if (rwkv7_gguf_get_u64(g, key, out) != RWKV7_OK)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s': key '%s' is not an unsigned integer", path, key);
    return RWKV7_OK;
}

static enum rwkv7_status get_u32(const struct rwkv7_gguf *g, const char *path, const char *key,
                                 uint32_t *out) {
    if (rwkv7_gguf_find_kv(g, key) < 0)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s' has no key '%s'", path, key);
    if (rwkv7_gguf_get_u32(g, key, out) != RWKV7_OK)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s': key '%s' is not a u32", path, key);
    return RWKV7_OK;
}

static bool str_is(struct rwkv7_gguf_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* Copies an F32 tensor of the expected shape into dst after checking its values. */
static enum rwkv7_status take_f32(const struct rwkv7_gguf_tensor *t, const char *path,
                                  int n_dims, int64_t a, int64_t b, int64_t c, float *dst) {
    if (t->type != RWKV7_DTYPE_F32 || t->n_dims != n_dims || t->ne[0] != a || t->ne[1] != b ||
        t->ne[2] != c || t->ne[3] != 1)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED,
                          "state: '%s': tensor '%s' is %s [%" PRId64 ", %" PRId64 ", %" PRId64
                          "], this model needs f32 [%" PRId64 ", %" PRId64 ", %" PRId64 "]",
                          path, t->name, rwkv7_dtype_name(t->type), t->ne[0], t->ne[1], t->ne[2],
                          a, b, c);
    size_t n = (size_t)(a * b * c);
    memcpy(dst, t->data, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s': tensor '%s' element %zu is %g", path,
                              t->name, i, (double)dst[i]);
    return RWKV7_OK;
}

/* Which state tensor a name is: kind 0 att shift, 1 ffn shift, 2 wkv, 3 logits; -1 unknown. */
static int classify(const char *name, int *layer) {
    static const char *const suffix[] = {"state_att_shift", "state_ffn_shift", "state_wkv"};
    if (strcmp(name, T_LOGITS) == 0) return 3;
    int l = 0, used = 0;
    if (sscanf(name, "blk.%d.%n", &l, &used) != 1 || used == 0 || l < 0) return -1;
    for (int k = 0; k < 3; k++) {
        char canon[64];
        /* Only the canonical spelling: "blk.03" or "blk.+3" would alias layer 3. */
        snprintf(canon, sizeof canon, "blk.%d.%s", l, suffix[k]);
        if (strcmp(name, canon) == 0) {
            *layer = l;
            return k;
        }
    }
    return -1;
}

struct staged {
    float *state, *logits;
    void *sampler;
    size_t sampler_size;
    char *note;
    uint64_t n_tokens, hash;
    bool has_hash;
    int32_t pending;
};

static enum rwkv7_status check_header(const struct rwkv7_gguf *g, const char *path,
                                      struct rwkv7_model *model, const struct layout *lo,
                                      struct staged *s) {
    struct rwkv7_gguf_str str;
    if (rwkv7_gguf_find_kv(g, KEY_TYPE) < 0 || rwkv7_gguf_get_str(g, KEY_TYPE, &str) != RWKV7_OK ||
        !str_is(str, "state"))
        return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s' is not a state file (general.type is not \"state\")", path);
    if (rwkv7_gguf_find_kv(g, KEY_ARCH) < 0 || rwkv7_gguf_get_str(g, KEY_ARCH, &str) != RWKV7_OK)
        return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s' has no string key '%s'", path, KEY_ARCH);
    if (!str_is(str, "rwkv7"))
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "state: '%s' is for architecture '%.*s', not rwkv7",
                          path, (int)(str.len > 40 ? 40 : str.len), str.ptr);
    uint32_t ver, L, C, N;
    RWKV7_TRY(get_u32(g, path, KEY_VERSION, &ver));
    if (ver != RWKV7_STATE_FILE_VERSION)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "state: '%s' has version %u; this build reads %d",
                          path, (unsigned)ver, RWKV7_STATE_FILE_VERSION);
    RWKV7_TRY(get_u32(g, path, KEY_LAYERS, &L));
    RWKV7_TRY(get_u32(g, path, KEY_EMBD, &C));
    RWKV7_TRY(get_u32(g, path, KEY_HEAD, &N));
    if (L != (uint32_t)lo->L || C != (uint32_t)lo->C || N != (uint32_t)lo->N)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED,
                          "state: '%s' is for %u layers x %u channels, head size %u; this model has "
                          "%d x %d, head size %d", path, (unsigned)L, (unsigned)C, (unsigned)N,
                          lo->L, lo->C, lo->N);
    s->has_hash = rwkv7_gguf_find_kv(g, KEY_HASH) >= 0;
    if (s->has_hash) {
        RWKV7_TRY(get_u64(g, path, KEY_HASH, &s->hash));
        uint64_t mine = rwkv7_model_hash(model);
        if (s->hash != mine)
            return rwkv7_fail(RWKV7_ERR_UNSUPPORTED,
                              "state: '%s' was saved from another model (hash %016" PRIx64
                              ", this model %016" PRIx64 ")", path, s->hash, mine);
    }
    if (rwkv7_gguf_find_kv(g, KEY_NTOK) >= 0) RWKV7_TRY(get_u64(g, path, KEY_NTOK, &s->n_tokens));
    s->pending = -1;
    int64_t ip = rwkv7_gguf_find_kv(g, KEY_PENDING);
    if (ip >= 0) {
        int64_t v;
        if (rwkv7_gguf_kv_type(g, ip) != RWKV7_GGUF_I32 || rwkv7_gguf_get_i64(g, KEY_PENDING, &v) != RWKV7_OK)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s': key '%s' is not an i32", path, KEY_PENDING);
        if (v < -1 || v >= lo->V)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s': pending token %lld outside 0..%d",
                              path, (long long)v, lo->V - 1);
        s->pending = (int32_t)v;
    }
    return RWKV7_OK;
}

static enum rwkv7_status stage_extras(const struct rwkv7_gguf *g, const char *path,
                                      struct staged *s) {
    int64_t is = rwkv7_gguf_find_kv(g, KEY_SAMPLER);
    if (is >= 0) {
        uint32_t nb;
        RWKV7_TRY(get_u32(g, path, KEY_SAMPLER_BYTES, &nb));
        uint64_t nw = rwkv7_gguf_kv_arr_n(g, is);
        if (rwkv7_gguf_kv_type(g, is) != RWKV7_GGUF_ARRAY ||
            rwkv7_gguf_kv_arr_type(g, is) != RWKV7_GGUF_I32 || nb == 0 || (nb + 3u) / 4u != nw)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s': sampler state is not %u bytes in i32 words",
                              path, (unsigned)nb);
        if (!(s->sampler = malloc(nb))) return rwkv7_fail(RWKV7_ERR_OOM, "state: out of memory");
        memcpy(s->sampler, rwkv7_gguf_kv_arr_data(g, is), nb);
        s->sampler_size = nb;
    }
    if (rwkv7_gguf_find_kv(g, KEY_NOTE) >= 0) {
        struct rwkv7_gguf_str str;
        if (rwkv7_gguf_get_str(g, KEY_NOTE, &str) != RWKV7_OK)
            return rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s': key '%s' is not a string", path, KEY_NOTE);
        if (!(s->note = malloc(str.len + 1))) return rwkv7_fail(RWKV7_ERR_OOM, "state: out of memory");
        memcpy(s->note, str.ptr, str.len);
        s->note[str.len] = 0;
    }
    return RWKV7_OK;
}

static enum rwkv7_status stage_tensors(const struct rwkv7_gguf *g, const char *path,
                                       const struct layout *lo, struct staged *s) {
    unsigned char *seen = calloc((size_t)lo->L * 3, 1);
    if (!seen) return rwkv7_fail(RWKV7_ERR_OOM, "state: out of memory");
    enum rwkv7_status st = RWKV7_OK;
    for (int64_t i = 0; i < rwkv7_gguf_n_tensors(g) && st == RWKV7_OK; i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(g, i);
        int layer = 0, kind = classify(t->name, &layer);
        if (kind < 0 || (kind < 3 && layer >= lo->L)) {
            st = rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s' has unexpected tensor '%s'", path, t->name);
        } else if (kind == 3) {
            s->logits = malloc((size_t)lo->V * sizeof(float));
            st = s->logits ? take_f32(t, path, 1, lo->V, 1, 1, s->logits)
                           : rwkv7_fail(RWKV7_ERR_OOM, "state: out of memory");
        } else {
            float *p = s->state + (size_t)layer * lo->per_layer + (kind ? lo->C : 0);
            seen[layer * 3 + kind] = 1;
            st = kind == 2 ? take_f32(t, path, 3, lo->N, lo->N, lo->H, p + lo->C)
                           : take_f32(t, path, 1, lo->C, 1, 1, p);
        }
    }
    /* Token shifts may be absent (initial states start them at zero); the WKV state may not. */
    for (int l = 0; l < lo->L && st == RWKV7_OK; l++)
        if (!seen[l * 3 + 2])
            st = rwkv7_fail(RWKV7_ERR_FORMAT, "state: '%s' has no tensor 'blk.%d.state_wkv'", path, l);
    free(seen);
    return st;
}

enum rwkv7_status rwkv7_state_load_file(struct rwkv7_model *model, struct rwkv7_ctx *ctx,
                                        int slot, const char *path,
                                        struct rwkv7_state_extra *extra) {
    if (extra) {
        memset(extra, 0, sizeof *extra);
        extra->pending_token = -1;
    }
    if (!model || !ctx || !path) return rwkv7_fail(RWKV7_ERR_ARG, "state: load without model, context or path");
    if (slot < 0 || slot >= rwkv7_ctx_n_slots(ctx))
        return rwkv7_fail(RWKV7_ERR_ARG, "state: slot %d outside 0..%d", slot, rwkv7_ctx_n_slots(ctx) - 1);
    struct layout lo = layout_of(rwkv7_model_hparams(model));
    struct rwkv7_gguf *g = NULL;
    enum rwkv7_status st = rwkv7_gguf_open(path, &g);
    if (st != RWKV7_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", rwkv7_last_error());
        return rwkv7_fail(st, "state: cannot read '%s': %s", path, why);
    }
    struct staged s = {0};
    s.state = calloc(rwkv7_state_n_floats(rwkv7_model_hparams(model)), sizeof(float));
    if (!s.state) st = rwkv7_fail(RWKV7_ERR_OOM, "state: out of memory");
    if (st == RWKV7_OK) st = check_header(g, path, model, &lo, &s);
    if (st == RWKV7_OK) st = stage_extras(g, path, &s);
    if (st == RWKV7_OK) st = stage_tensors(g, path, &lo, &s);
    if (st == RWKV7_OK) st = rwkv7_state_set(ctx, slot, s.state);
    rwkv7_gguf_free(g);
    free(s.state);
    if (st == RWKV7_OK && extra) {
        extra->n_tokens = s.n_tokens;
        extra->pending_token = s.pending;
        extra->logits = s.logits;
        extra->sampler = s.sampler;
        extra->sampler_size = s.sampler_size;
        extra->note = s.note;
        extra->has_hash = s.has_hash;
        extra->model_hash = s.hash;
        return RWKV7_OK;
    }
    free(s.logits);
    free(s.sampler);
    free(s.note);
    return st;
}

void rwkv7_state_extra_free(struct rwkv7_state_extra *extra) {
    if (!extra) return;
    /* Loaded parts are malloc'ed copies; the const qualifiers serve the saving side. */
    free((void *)extra->logits);
    free((void *)extra->sampler);
    free((void *)extra->note);
    memset(extra, 0, sizeof *extra);
    extra->pending_token = -1;
}
