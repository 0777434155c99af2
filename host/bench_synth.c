/* bench_synth.c: see bench_synth.h. The image is written once with zero tensor data, then each
 * tensor is filled in place at the offset the GGUF reader reports, so a 7.2B model needs one copy
 * of its bytes, not two. Types follow quant-formats.md 4.2-4.3 (never-quantized LoRA and mix
 * tensors, output/token_embd rules, fallback for rows a block does not divide). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bench_synth.h"
#include "dtype.h"
#include "dtype_random.h"
#include "gguf.h"
#include "gguf_write.h"
#include "status.h"

static const struct bench_geometry geometries[] = {
    {"0.1B", 12, 768, 3072, 64, 64, 64, 32, 128, 65536},
    {"0.4B", 24, 1024, 4096, 64, 64, 64, 32, 128, 65536},
    {"1.5B", 24, 2048, 8192, 64, 96, 96, 64, 256, 65536},
    {"2.9B", 32, 2560, 10240, 64, 96, 96, 64, 320, 65536},
    {"7.2B", 32, 4096, 16384, 64, 128, 128, 96, 480, 65536},
    {"13.3B", 61, 4096, 16384, 64, 192, 192, 128, 384, 65536},
};

const struct bench_geometry *bench_geometry_find(const char *name) {
    if (!strcasecmp(name, "191M") || !strcasecmp(name, "0.2B")) name = "0.1B";
    for (size_t i = 0; i < sizeof geometries / sizeof geometries[0]; i++)
        if (!strcasecmp(name, geometries[i].name)) return &geometries[i];
    return NULL;
}

/* quant-formats.md 4.3. Order matters for lookup by weight type: the first row whose body is
 * that type wins (q4_k -> Q4_K_M, iq3_s -> IQ3_S, iq2_s -> IQ2_M). */
#define T(x) RWKV7_DTYPE_##x
static const struct bench_ftype ftypes[] = {
    {"F32", 0, T(F32), T(F32), T(F32)},
    {"F16", 1, T(F16), T(F16), T(F16)},
    {"BF16", 32, T(BF16), T(BF16), T(BF16)},
    {"Q8_0", 7, T(Q8_0), T(Q8_0), T(Q8_0)},
    {"Q6_K", 18, T(Q6_K), T(Q6_K), T(Q6_K)},
    {"Q5_K_M", 17, T(Q5_K), T(Q5_K), T(Q6_K)},
    {"Q5_K_S", 16, T(Q5_K), T(Q5_K), T(Q6_K)},
    {"Q5_1", 9, T(Q5_1), T(Q5_1), T(Q6_K)},
    {"Q5_0", 8, T(Q5_0), T(Q5_0), T(Q6_K)},
    {"Q4_K_M", 15, T(Q4_K), T(Q4_K), T(Q6_K)},
    {"Q4_K_S", 14, T(Q4_K), T(Q4_K), T(Q6_K)},
    {"Q4_1", 3, T(Q4_1), T(Q4_1), T(Q6_K)},
    {"Q4_0", 2, T(Q4_0), T(Q4_0), T(Q6_K)},
    {"IQ4_NL", 25, T(IQ4_NL), T(IQ4_NL), T(Q6_K)},
    {"IQ4_XS", 30, T(IQ4_XS), T(IQ4_XS), T(Q6_K)},
    {"Q3_K_M", 12, T(Q3_K), T(Q3_K), T(Q6_K)},
    {"Q3_K_L", 13, T(Q3_K), T(Q3_K), T(Q6_K)},
    {"Q3_K_S", 11, T(Q3_K), T(Q3_K), T(Q6_K)},
    {"IQ3_S", 26, T(IQ3_S), T(IQ3_S), T(Q6_K)},
    {"IQ3_M", 27, T(IQ3_S), T(IQ3_S), T(Q6_K)},
    {"IQ3_XS", 22, T(IQ3_S), T(IQ3_S), T(Q6_K)},
    {"IQ3_XXS", 23, T(IQ3_XXS), T(IQ3_S), T(Q5_K)},
    {"Q2_K", 10, T(Q2_K), T(Q2_K), T(Q6_K)},
    {"Q2_K_S", 21, T(Q2_K), T(Q2_K), T(Q6_K)},
    {"IQ2_M", 29, T(IQ2_S), T(IQ3_S), T(Q5_K)},
    {"IQ2_XS", 20, T(IQ2_XS), T(Q2_K), T(Q5_K)},
    {"IQ2_S", 28, T(IQ2_XS), T(IQ3_S), T(Q5_K)},
    {"IQ2_XXS", 19, T(IQ2_XXS), T(Q2_K), T(Q5_K)},
    {"IQ1_M", 31, T(IQ1_M), T(Q2_K), T(Q5_K)},
    {"IQ1_S", 24, T(IQ1_S), T(Q2_K), T(Q5_K)},
    {"TQ2_0", 37, T(TQ2_0), T(Q4_K), T(Q6_K)},
    {"TQ1_0", 36, T(TQ1_0), T(Q4_K), T(Q6_K)},
    {"Q2_0", 41, T(Q2_0), T(Q4_K), T(Q6_K)},
    {"Q1_0", 40, T(Q1_0), T(Q1_0), T(Q6_K)},
};

const struct bench_ftype *bench_ftype_find(const char *name) {
    size_t n = sizeof ftypes / sizeof ftypes[0];
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(name, ftypes[i].name)) return &ftypes[i];
    int t = rwkv7_dtype_from_name(name);
    for (size_t i = 0; t >= 0 && i < n; i++)
        if (ftypes[i].body == t) return &ftypes[i];
    return NULL;
}

static bool is_float_type(int t) { return t == T(F32) || t == T(F16) || t == T(BF16); }

/* llama-quantize's tensor_type_fallback (quant-formats.md 4.2 item 6): -1 when llama.cpp would
 * abort on this row length. */
static int fallback_type(int t, int64_t ne0) {
    if (ne0 % rwkv7_dtype_get(t)->block == 0) return t;
    int f;
    switch (t) {
    case T(IQ1_S): case T(IQ1_M): case T(IQ2_XXS): case T(IQ2_XS): case T(IQ2_S):
    case T(IQ3_XXS): case T(IQ3_S): case T(IQ4_XS): f = T(IQ4_NL); break;
    case T(Q2_0): case T(Q2_K): case T(Q3_K): case T(TQ1_0): case T(TQ2_0): f = T(Q4_0); break;
    case T(Q4_K): f = T(Q5_0); break;
    case T(Q5_K): f = T(Q5_1); break;
    case T(Q6_K): f = T(Q8_0); break;
    default:
        /* 32-element types keep their type in llama.cpp and cannot be written; F16 can. */
        return rwkv7_dtype_get(t)->block <= 32 ? T(F16) : -1;
    }
    return ne0 % rwkv7_dtype_get(f)->block == 0 ? f : T(F16);
}
#undef T

int bench_ftype_tensor_type(const struct bench_ftype *ft, const char *name, int64_t ne0) {
    if (is_float_type(ft->body)) return ft->body;
    if (!strcmp(name, "token_embd.weight")) return fallback_type(ft->embd, ne0);
    if (!strcmp(name, "output.weight")) {
        int t = ne0 % rwkv7_dtype_get(ft->body)->block ? RWKV7_DTYPE_Q8_0 : ft->output;
        return fallback_type(t, ne0);
    }
    return fallback_type(ft->body, ne0);
}

static bool ends_with(const char *s, const char *suffix);

bool bench_tensor_quantizable(const char *name, int n_dims) {
    static const char *const keep[] = {"time_mix_first", "time_mix_w0", "time_mix_w1", "time_mix_w2",
                                       "time_mix_v0", "time_mix_v1", "time_mix_v2", "time_mix_a0",
                                       "time_mix_a1", "time_mix_a2", "time_mix_g1", "time_mix_g2",
                                       "time_mix_decay_w1", "time_mix_decay_w2", "time_mix_lerp_fused"};
    if (n_dims < 2 || !ends_with(name, "weight") || ends_with(name, "_norm.weight")) return false;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (strstr(name, keep[i])) return false;
    return true;
}

const struct bench_ftype *bench_ftype_list(int *n) {
    *n = (int)(sizeof ftypes / sizeof ftypes[0]);
    return ftypes;
}

struct spec_list {
    struct bench_tensor_spec *v;
    int n;
};

static void add(struct spec_list *l, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne3, int type) {
    struct bench_tensor_spec *s = &l->v[l->n++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_dims = n_dims;
    s->ne[0] = ne0;
    s->ne[1] = ne1;
    s->ne[2] = 1;
    s->ne[3] = ne3;
    s->type = type;
}

enum rwkv7_status bench_synth_tensors(const struct bench_geometry *g, const struct bench_ftype *ft,
                                      struct bench_tensor_spec **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    if (g->n_layer < 1 || g->n_embd < 1 || g->head_size < 1 || g->n_embd % g->head_size || g->n_vocab < 1)
        return rwkv7_fail(RWKV7_ERR_ARG, "synthetic: bad geometry %s", g->name);
    int64_t C = g->n_embd, F = g->n_ff, V = g->n_vocab;
    /* The converter writes the small a/v/g LoRAs in its output type; llama-quantize then keeps
     * them, and every quantized file is made from an F16 conversion (fixtures README). */
    int lora = ft->body == RWKV7_DTYPE_F32 ? RWKV7_DTYPE_F32 : RWKV7_DTYPE_F16;
    int body_c = bench_ftype_tensor_type(ft, "blk.0.time_mix_key.weight", C);
    int body_f = bench_ftype_tensor_type(ft, "blk.0.channel_mix_value.weight", F);
    int embd = bench_ftype_tensor_type(ft, "token_embd.weight", C);
    int output = bench_ftype_tensor_type(ft, "output.weight", C);
    if (body_c < 0 || body_f < 0 || embd < 0 || output < 0)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "synthetic: llama.cpp cannot make a %s file with n_embd %lld, n_ff %lld",
                          ft->name, (long long)C, (long long)F);
    struct spec_list l = {calloc((size_t)(6 + 28 * g->n_layer), sizeof *l.v), 0};
    if (!l.v) return rwkv7_fail(RWKV7_ERR_OOM, "synthetic: out of memory");
    const int f32 = RWKV7_DTYPE_F32;
    add(&l, "token_embd.weight", 2, C, V, 1, embd);
    add(&l, "token_embd_norm.weight", 1, C, 1, 1, f32);
    add(&l, "token_embd_norm.bias", 1, C, 1, 1, f32);
    for (int i = 0; i < g->n_layer; i++) {
        char n[64];
#define N(s) (snprintf(n, sizeof n, "blk.%d.%s", i, s), n)
        /* Layer 0's v0/v1/v2 are converter copies of a0/a1/a2, so they have the a-rank. */
        int64_t dv = i == 0 ? g->d_a : g->d_v;
        add(&l, N("attn_norm.weight"), 1, C, 1, 1, f32);
        add(&l, N("attn_norm.bias"), 1, C, 1, 1, f32);
        add(&l, N("attn_norm_2.weight"), 1, C, 1, 1, f32);
        add(&l, N("attn_norm_2.bias"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_w0.weight"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_w1.weight"), 2, C, g->d_w, 1, f32);
        add(&l, N("time_mix_w2.weight"), 2, g->d_w, C, 1, f32);
        add(&l, N("time_mix_a0.weight"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_a1.weight"), 2, C, g->d_a, 1, lora);
        add(&l, N("time_mix_a2.weight"), 2, g->d_a, C, 1, lora);
        add(&l, N("time_mix_v0.weight"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_v1.weight"), 2, C, dv, 1, lora);
        add(&l, N("time_mix_v2.weight"), 2, dv, C, 1, lora);
        add(&l, N("time_mix_g1.weight"), 2, C, g->d_g, 1, lora);
        add(&l, N("time_mix_g2.weight"), 2, g->d_g, C, 1, lora);
        add(&l, N("time_mix_lerp_fused.weight"), 4, C, 1, 6, f32);
        add(&l, N("time_mix_k_k.weight"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_k_a.weight"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_r_k.weight"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_key.weight"), 2, C, C, 1, body_c);
        add(&l, N("time_mix_value.weight"), 2, C, C, 1, body_c);
        add(&l, N("time_mix_receptance.weight"), 2, C, C, 1, body_c);
        add(&l, N("time_mix_ln.weight"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_ln.bias"), 1, C, 1, 1, f32);
        add(&l, N("time_mix_output.weight"), 2, C, C, 1, body_c);
        add(&l, N("channel_mix_lerp_k.weight"), 1, C, 1, 1, f32);
        add(&l, N("channel_mix_key.weight"), 2, C, F, 1, body_c);
        add(&l, N("channel_mix_value.weight"), 2, F, C, 1, body_f);
#undef N
    }
    add(&l, "output_norm.weight", 1, C, 1, 1, f32);
    add(&l, "output_norm.bias", 1, C, 1, 1, f32);
    add(&l, "output.weight", 2, C, V, 1, output);
    *out = l.v;
    *n_out = l.n;
    return RWKV7_OK;
}

/* ---- values ---- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* F32 vectors: mean and half-width of a uniform spread, chosen like trained RWKV-7 values: norm
 * gains near 1, biases near 0, decay biases that give decays across (0.55, 1), mix weights in
 * (0, 1). */
static void vector_law(const char *name, float *mean, float *spread) {
    *mean = 0.0f;
    *spread = 0.05f;
    if (ends_with(name, "norm.weight") || ends_with(name, "norm_2.weight") || ends_with(name, "_ln.weight")) {
        *mean = 1.0f;
        *spread = 0.1f;
    } else if (ends_with(name, "w0.weight")) {
        *mean = -1.0f;
        *spread = 2.0f;
    } else if (ends_with(name, "a0.weight") || ends_with(name, "v0.weight")) {
        *spread = 0.5f;
    } else if (ends_with(name, "k_k.weight")) {
        *mean = 0.8f;
        *spread = 0.2f;
    } else if (ends_with(name, "k_a.weight")) {
        *mean = 1.0f;
        *spread = 0.2f;
    } else if (ends_with(name, "r_k.weight")) {
        *spread = 0.3f;
    } else if (strstr(name, "lerp")) {
        *mean = 0.5f;
        *spread = 0.4f;
    }
}

/* Matrices: std about 1/sqrt(fan-in) so every projection keeps unit-scale activations (the
 * embedding is followed by ln0, so its scale is free; keep it O(1)). */
static float matrix_std(const struct bench_tensor_spec *s) {
    if (!strcmp(s->name, "token_embd.weight")) return 1.0f;
    return 1.0f / sqrtf((float)s->ne[0]);
}

struct fill_job {
    const struct bench_tensor_spec *spec;
    uint8_t *dst;
    int64_t row0, n_rows;
    uint64_t seed;
};

struct fill_pool {
    struct fill_job *jobs;
    int n_jobs;
    atomic_int next;
};

static void run_job(const struct fill_job *j) {
    const struct bench_tensor_spec *s = j->spec;
    if (s->type == RWKV7_DTYPE_F32 && (s->n_dims == 1 || s->n_dims == 4)) {
        float mean, spread;
        vector_law(s->name, &mean, &spread);
        float *v = (float *)j->dst;
        uint64_t st = j->seed;
        for (int64_t i = 0; i < s->ne[0] * s->ne[1] * s->ne[2] * s->ne[3]; i++) {
            double u = (double)(splitmix(&st) >> 11) * (1.0 / 9007199254740992.0);
            v[i] = mean + spread * (float)(2.0 * u - 1.0);
        }
        return;
    }
    size_t row = rwkv7_dtype_row_bytes(s->type, s->ne[0]);
    rwkv7_dtype_random_rows(s->type, j->seed, j->dst + (size_t)j->row0 * row, j->n_rows, s->ne[0], matrix_std(s));
}

static void *fill_worker(void *arg) {
    struct fill_pool *p = arg;
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n_jobs) break;
        run_job(&p->jobs[i]);
    }
    return NULL;
}

/* Fills every tensor of the image in place. Slices have a fixed size, so the bytes do not depend
 * on the thread count. */
static enum rwkv7_status fill_image(uint8_t *img, size_t size, const struct bench_tensor_spec *specs, int n,
                                    uint64_t seed, int n_threads) {
    struct rwkv7_gguf *gg = NULL;
    RWKV7_TRY(rwkv7_gguf_open_memory(img, size, &gg));
    const int64_t slice = 2048;
    int cap = 0;
    for (int i = 0; i < n; i++) cap += (int)((specs[i].ne[1] * specs[i].ne[3] + slice - 1) / slice);
    struct fill_pool pool = {calloc((size_t)cap, sizeof(struct fill_job)), 0, 0};
    if (!pool.jobs) {
        rwkv7_gguf_free(gg);
        return rwkv7_fail(RWKV7_ERR_OOM, "synthetic: out of memory");
    }
    uint64_t base = rwkv7_gguf_data_offset(gg);
    for (int i = 0; i < n; i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_find_tensor(gg, specs[i].name);
        RWKV7_ASSERT(t && t->type == specs[i].type);
        uint8_t *dst = img + base + t->offset;
        bool vec = specs[i].n_dims != 2;
        int64_t rows = vec ? 1 : specs[i].ne[1];
        for (int64_t r = 0; r < rows; r += slice) {
            struct fill_job *j = &pool.jobs[pool.n_jobs++];
            j->spec = &specs[i];
            j->dst = dst;
            j->row0 = r;
            j->n_rows = rows - r < slice ? rows - r : slice;
            uint64_t s = seed ^ ((uint64_t)i << 32) ^ (uint64_t)(r / slice);
            j->seed = splitmix(&s);
        }
    }
    rwkv7_gguf_free(gg);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    pthread_t th[64];
    int started = 0;
    for (int i = 1; i < n_threads; i++)
        if (pthread_create(&th[started], NULL, fill_worker, &pool) == 0) started++;
    fill_worker(&pool);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(pool.jobs);
    return RWKV7_OK;
}

/* ---- metadata ---- */

/* V unique token strings in llama.cpp's escaped form: for a byte vocabulary the 256 bytes; for a
 * World-sized one "<s>", the 256 bytes, then "[T<id>]". */
static enum rwkv7_status add_vocab(struct rwkv7_gguf_writer *w, int V) {
    char *text = malloc((size_t)V * 16);
    const char **strs = malloc((size_t)V * sizeof *strs);
    int32_t *types = malloc((size_t)V * sizeof *types);
    enum rwkv7_status st = RWKV7_ERR_OOM;
    if (!text || !strs || !types) {
        rwkv7_fail(st, "synthetic: out of memory for %d tokens", V);
        goto done;
    }
    int byte0 = V > 256 ? 1 : 0;
    for (int i = 0; i < V; i++) {
        char *s = text + (size_t)i * 16;
        types[i] = 1;
        if (byte0 && i == 0) {
            snprintf(s, 16, "<s>");
            types[i] = 3;
        } else if (i - byte0 < 256) {
            snprintf(s, 16, "\\x%02x", i - byte0);
        } else {
            snprintf(s, 16, "[T%d]", i);
        }
        strs[i] = s;
    }
    if ((st = rwkv7_gguf_writer_add_str(w, "tokenizer.ggml.model", "rwkv")) != RWKV7_OK) goto done;
    if ((st = rwkv7_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", strs, NULL, (size_t)V)) != RWKV7_OK) goto done;
    if ((st = rwkv7_gguf_writer_add_i32_arr(w, "tokenizer.ggml.token_type", types, (size_t)V)) != RWKV7_OK) goto done;
    if ((st = rwkv7_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 0)) != RWKV7_OK) goto done;
    if ((st = rwkv7_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 0)) != RWKV7_OK) goto done;
    st = rwkv7_gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", V > 261 ? 261 : 10);
done:
    free(text);
    free(strs);
    free(types);
    return st;
}

static enum rwkv7_status add_metadata(struct rwkv7_gguf_writer *w, const struct bench_geometry *g,
                                      const struct bench_ftype *ft) {
    char name[64];
    snprintf(name, sizeof name, "rwkv7-synthetic-%s-%s", g->name, ft->name);
    RWKV7_TRY(rwkv7_gguf_writer_add_str(w, "general.architecture", "rwkv7"));
    RWKV7_TRY(rwkv7_gguf_writer_add_str(w, "general.name", name));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.context_length", 1048576));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.embedding_length", (uint32_t)g->n_embd));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.block_count", (uint32_t)g->n_layer));
    RWKV7_TRY(rwkv7_gguf_writer_add_f32(w, "rwkv7.attention.layer_norm_epsilon", 1e-5f));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.wkv.head_size", (uint32_t)g->head_size));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.attention.decay_lora_rank", (uint32_t)g->d_w));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.attention.iclr_lora_rank", (uint32_t)g->d_a));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.attention.value_residual_mix_lora_rank", (uint32_t)g->d_v));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.attention.gate_lora_rank", (uint32_t)g->d_g));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.feed_forward_length", (uint32_t)g->n_ff));
    RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "rwkv7.attention.head_count", 0));
    RWKV7_TRY(add_vocab(w, g->n_vocab));
    if (!is_float_type(ft->body)) RWKV7_TRY(rwkv7_gguf_writer_add_u32(w, "general.quantization_version", 2));
    return rwkv7_gguf_writer_add_u32(w, "general.file_type", (uint32_t)ft->id);
}

enum rwkv7_status bench_synth_image(const struct bench_geometry *g, const struct bench_ftype *ft,
                                    uint64_t seed, int n_threads, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    struct bench_tensor_spec *specs = NULL;
    int n = 0;
    RWKV7_TRY(bench_synth_tensors(g, ft, &specs, &n));
    struct rwkv7_gguf_writer *w = NULL;
    enum rwkv7_status st = rwkv7_gguf_writer_init(&w);
    if (st == RWKV7_OK) st = add_metadata(w, g, ft);
    for (int i = 0; i < n && st == RWKV7_OK; i++) {
        const struct bench_tensor_spec *s = &specs[i];
        size_t nbytes = rwkv7_dtype_row_bytes(s->type, s->ne[0]) * (size_t)(s->ne[1] * s->ne[2] * s->ne[3]);
        st = rwkv7_gguf_writer_add_tensor_ref(w, s->name, s->n_dims, s->ne, s->type, NULL, nbytes);
    }
    void *img = NULL;
    size_t n_img = 0;
    if (st == RWKV7_OK) st = rwkv7_gguf_writer_write_memory(w, &img, &n_img);
    rwkv7_gguf_writer_free(w);
    if (st == RWKV7_OK) st = fill_image(img, n_img, specs, n, seed, n_threads);
    free(specs);
    if (st != RWKV7_OK) {
        free(img);
        return st;
    }
    *data = img;
    *size = n_img;
    return RWKV7_OK;
}
