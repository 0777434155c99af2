/* ops.c: the CPU reference of every elementwise op of backend.h (norms, token shift, unary,
 * binary, mix, key preparation, WKV output, last rows) and the threaded WKV-7 dispatch. Formulas
 * follow rwkv7-gguf.md section 4; reductions (means, variances, L2 norms) accumulate in double, as
 * ggml's CPU ops do, so this backend can serve as the oracle for the GPU ones. */
#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "cpu.h"
#include "status.h"
#include "wkv7.h"

#define CPU(be) ((struct rwkv7_cpu *)(be))

/* Rows per parallel part so that each part has at least ~16K elements of work: waking a second
 * thread costs about as much as that, and small models (C = 64) would otherwise get slower with
 * more threads. */
static int64_t min_rows(int64_t C) { return C >= 16384 ? 1 : 16384 / C; }

/* ---- norm ---- */

struct norm_job {
    float *dst;
    const float *x, *w, *b;
    int64_t C;
    int n_groups;
    float eps;
};

static void norm_rows(void *p, int64_t r0, int64_t r1, int ith) {
    const struct norm_job *j = p;
    int64_t G = j->C / j->n_groups;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * j->C;
        float *d = j->dst + r * j->C;
        for (int g = 0; g < j->n_groups; g++) {
            const float *xg = x + g * G;
            double sum = 0;
            for (int64_t i = 0; i < G; i++) sum += xg[i];
            float mean = (float)(sum / G);
            double var = 0;
            for (int64_t i = 0; i < G; i++) {
                float c = xg[i] - mean;
                var += (double)c * c;
            }
            float scale = 1.0f / sqrtf((float)(var / G) + j->eps);
            for (int64_t i = 0; i < G; i++) {
                int64_t c = g * G + i;
                d[c] = (xg[i] - mean) * scale * j->w[c] + j->b[c];
            }
        }
    }
}

RWKV7_OP_SIG(rwkv7_cpu_norm, norm) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *w = args->w, *b = args->b;
    int n_groups = args->n_groups;
    float eps = args->eps;
    struct norm_job j = {cpu_f32(dst), cpu_f32(x), cpu_f32(w), cpu_f32(b), x->ne[0], n_groups, eps};
    rwkv7_threadpool_run(CPU(be)->pool, rwkv7_tensor_nrows(x), min_rows(x->ne[0]), norm_rows, &j);
    return RWKV7_OK;
}

/* ---- token shift ---- */

struct shift_job {
    float *dst, *state;
    const float *x, *mix;
    const int32_t *slots;
    int64_t C, rows, n_mix;
    int n_tok;
};

/* Item = (sequence, channel): each walks its sequence's tokens in order, reading the state before
 * the first token and writing it after the last, so no two items touch the same state value. A
 * part's items are a run of channels per sequence, walked token by token over the whole run, so
 * the inner loop reads and writes contiguous channels (vectorizable) instead of striding by C;
 * every value is the same expression as for one item alone. */
static void shift_items(void *p, int64_t i0, int64_t i1, int ith) {
    const struct shift_job *j = p;
    const int64_t C = j->C;
    for (int64_t it = i0; it < i1;) {
        const int64_t s = it / C, c0 = it % C, c1 = (i1 - s * C) < C ? i1 - s * C : C;
        float *st = j->state + (int64_t)j->slots[s] * C;
        for (int t = 0; t < j->n_tok; t++) {
            const int64_t row = s * j->n_tok + t;
            const float *cur = j->x + row * C, *prev = t ? cur - C : st;
            for (int64_t m = 0; m < j->n_mix; m++) {
                float *d = j->dst + (m * j->rows + row) * C;
                const float *mix = j->mix + m * C;
                for (int64_t c = c0; c < c1; c++) d[c] = cur[c] + (prev[c] - cur[c]) * mix[c];
            }
        }
        if (j->n_tok > 0) memcpy(st + c0, j->x + (s * j->n_tok + j->n_tok - 1) * C + c0, (size_t)(c1 - c0) * sizeof(float));
        it = s * C + c1;
    }
}

RWKV7_OP_SIG(rwkv7_cpu_token_shift, token_shift) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *mix = args->mix,
                              *state = args->state, *slots = args->slots;
    int n_tok = args->n_tok;
    struct shift_job j = {cpu_f32(dst), cpu_f32(state), cpu_f32(x), cpu_f32(mix), cpu_data(slots),
                          x->ne[0], rwkv7_tensor_nrows(x), rwkv7_tensor_nrows(mix), n_tok};
    for (int64_t s = 0; s < slots->ne[0]; s++)
        if (j.slots[s] < 0 || j.slots[s] >= rwkv7_tensor_nrows(state))
            return rwkv7_fail(RWKV7_ERR_ARG, "token_shift: slot %d out of range", j.slots[s]);
    rwkv7_threadpool_run(CPU(be)->pool, slots->ne[0] * j.C, min_rows((int64_t)n_tok * j.n_mix), shift_items, &j);
    return RWKV7_OK;
}

/* ---- unary / binary / mix ---- */

struct ew_job {
    float *dst;
    const float *a, *b, *t;
    int64_t C, b_rows;
    int fn;
};

static float sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }

/* One loop per function (the switch hoisted out of the element loop), so relu^2 and the bias add
 * vectorize; the values are the same expressions as element by element. */
static void unary_rows(void *p, int64_t r0, int64_t r1, int ith) {
    const struct ew_job *j = p;
    const int64_t C = j->C;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->a + r * C;
        float *d = j->dst + r * C;
        if (j->b) {
            for (int64_t c = 0; c < C; c++) d[c] = x[c] + j->b[c];
            x = d;
        }
        switch (j->fn) {
        case RWKV7_UNARY_SIGMOID:
            for (int64_t c = 0; c < C; c++) d[c] = sigmoidf(x[c]);
            break;
        case RWKV7_UNARY_TANH:
            for (int64_t c = 0; c < C; c++) d[c] = tanhf(x[c]);
            break;
        case RWKV7_UNARY_RELU_SQR: {
            int64_t c = 0;
#ifdef __SSE2__
            /* maxps(x, 0) is x > 0 ? x : 0 exactly (it returns 0 for NaN and for -0, as the select
             * does); the compiler does not vectorize the select itself */
            for (; c + 4 <= C; c += 4) {
                const __m128 z = _mm_max_ps(_mm_loadu_ps(x + c), _mm_setzero_ps());
                _mm_storeu_ps(d + c, _mm_mul_ps(z, z));
            }
#endif
            for (; c < C; c++) d[c] = x[c] > 0 ? x[c] * x[c] : 0.0f;
            break;
        }
        default: /* decay must stay fp32 end to end: w is often 0.999x (rwkv7-gguf.md 7.2.3) */
            for (int64_t c = 0; c < C; c++) d[c] = expf(-RWKV7_DECAY_SCALE * sigmoidf(x[c]));
            break;
        }
    }
}

RWKV7_OP_SIG(rwkv7_cpu_unary, unary) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *bias = args->bias;
    enum rwkv7_unary fn = args->fn;
    struct ew_job j = {cpu_f32(dst), cpu_f32(x), bias ? cpu_f32(bias) : NULL, NULL, x->ne[0], 1, (int)fn};
    rwkv7_threadpool_run(CPU(be)->pool, rwkv7_tensor_nrows(x), min_rows(x->ne[0]), unary_rows, &j);
    return RWKV7_OK;
}

static void binary_rows(void *p, int64_t r0, int64_t r1, int ith) {
    const struct ew_job *j = p;
    for (int64_t r = r0; r < r1; r++) {
        const float *a = j->a + r * j->C, *b = j->b + (j->b_rows == 1 ? 0 : r * j->C);
        float *d = j->dst + r * j->C;
        if (j->fn == RWKV7_BINARY_ADD)
            for (int64_t c = 0; c < j->C; c++) d[c] = a[c] + b[c];
        else
            for (int64_t c = 0; c < j->C; c++) d[c] = a[c] * b[c];
    }
}

RWKV7_OP_SIG(rwkv7_cpu_binary, binary) {
    const struct rwkv7_tensor *dst = args->dst, *a = args->a, *b = args->b;
    enum rwkv7_binary fn = args->fn;
    struct ew_job j = {cpu_f32(dst), cpu_f32(a), cpu_f32(b), NULL, a->ne[0], rwkv7_tensor_nrows(b), (int)fn};
    rwkv7_threadpool_run(CPU(be)->pool, rwkv7_tensor_nrows(a), min_rows(a->ne[0]), binary_rows, &j);
    return RWKV7_OK;
}

static void mix_rows(void *p, int64_t r0, int64_t r1, int ith) {
    const struct ew_job *j = p;
    for (int64_t i = r0 * j->C; i < r1 * j->C; i++) j->dst[i] = j->a[i] + (j->b[i] - j->a[i]) * j->t[i];
}

RWKV7_OP_SIG(rwkv7_cpu_mix, mix) {
    const struct rwkv7_tensor *dst = args->dst, *a = args->a, *b = args->b, *t = args->t;
    struct ew_job j = {cpu_f32(dst), cpu_f32(a), cpu_f32(b), cpu_f32(t), a->ne[0], 0, 0};
    rwkv7_threadpool_run(CPU(be)->pool, rwkv7_tensor_nrows(a), min_rows(a->ne[0]), mix_rows, &j);
    return RWKV7_OK;
}

/* ---- key preparation ---- */

struct key_job {
    float *kk, *kmod;
    const float *k, *a, *k_k, *k_a;
    int64_t C;
    int N;
};

static void key_rows(void *p, int64_t r0, int64_t r1, int ith) {
    const struct key_job *j = p;
    for (int64_t r = r0; r < r1; r++) {
        const float *k = j->k + r * j->C, *a = j->a + r * j->C;
        float *kk = j->kk + r * j->C, *km = j->kmod + r * j->C;
        for (int64_t h = 0; h < j->C / j->N; h++) {
            double ss = 0;
            for (int n = 0; n < j->N; n++) {
                int64_t c = h * j->N + n;
                kk[c] = k[c] * j->k_k[c];
                ss += (double)kk[c] * kk[c];
            }
            /* F.normalize semantics: the epsilon floors the norm, it is not added under the sqrt. */
            float norm = (float)sqrt(ss);
            float inv = 1.0f / (norm > RWKV7_L2NORM_EPS ? norm : RWKV7_L2NORM_EPS);
            for (int n = 0; n < j->N; n++) kk[h * j->N + n] *= inv;
        }
        for (int64_t c = 0; c < j->C; c++) km[c] = k[c] * (1.0f + (a[c] - 1.0f) * j->k_a[c]);
    }
}

RWKV7_OP_SIG(rwkv7_cpu_key_prep, key_prep) {
    const struct rwkv7_tensor *kk = args->kk, *kmod = args->kmod, *k = args->k, *a = args->a,
                              *k_k = args->k_k, *k_a = args->k_a;
    int head_size = args->head_size;
    struct key_job j = {cpu_f32(kk), cpu_f32(kmod), cpu_f32(k), cpu_f32(a), cpu_f32(k_k), cpu_f32(k_a), k->ne[0], head_size};
    rwkv7_threadpool_run(CPU(be)->pool, rwkv7_tensor_nrows(k), min_rows(k->ne[0]), key_rows, &j);
    return RWKV7_OK;
}

/* ---- WKV-7 ---- */

struct wkv_job {
    struct rwkv7_cpu *cpu;
    const float *r, *w, *k, *v, *kk, *a;
    float *y, *state;
    const int32_t *slots;
    int64_t C;
    int N, H, n_tok;
};

/* Item = (sequence, head): heads are independent, so each gets its own call on its state. */
static void wkv_items(void *p, int64_t i0, int64_t i1, int ith) {
    const struct wkv_job *j = p;
    for (int64_t it = i0; it < i1; it++) {
        int64_t s = it / j->H;
        int h = (int)(it % j->H);
        int64_t off = s * j->n_tok * j->C;
        struct rwkv7_wkv7_job job = {
            .n_tok = j->n_tok, .n_embd = (int)j->C, .head_size = j->N,
            .r = j->r + off, .w = j->w + off, .k = j->k + off, .v = j->v + off, .kk = j->kk + off, .a = j->a + off,
            .state = j->state + (int64_t)j->slots[s] * j->C * j->N, .y = j->y + off,
        };
        int chunk = j->cpu->wkv_chunk;
        if (chunk > 0 && j->n_tok > 1)
            rwkv7_cpu_wkv7_chunked(&job, h, h + 1, chunk, j->cpu->wkv_scratch[ith]);
        else
            rwkv7_cpu_wkv7_serial(&job, h, h + 1);
    }
}

RWKV7_OP_SIG(rwkv7_cpu_wkv7, wkv7) {
    const struct rwkv7_tensor *y = args->y, *state = args->state, *slots = args->slots,
                              *r = args->r, *w = args->w, *k = args->k, *v = args->v,
                              *kk = args->kk, *a = args->a;
    int n_tok = args->n_tok;
    int head_size = args->head_size;
    struct rwkv7_cpu *cpu = CPU(be);
    struct wkv_job j = {cpu, cpu_f32(r), cpu_f32(w), cpu_f32(k), cpu_f32(v), cpu_f32(kk), cpu_f32(a),
                        cpu_f32(y), cpu_f32(state), cpu_data(slots), r->ne[0], head_size,
                        (int)(r->ne[0] / head_size), n_tok};
    for (int64_t s = 0; s < slots->ne[0]; s++)
        if (j.slots[s] < 0 || j.slots[s] >= rwkv7_tensor_nrows(state))
            return rwkv7_fail(RWKV7_ERR_ARG, "wkv7: slot %d out of range", j.slots[s]);
    if (cpu->wkv_chunk > 0)
        RWKV7_TRY(rwkv7_cpu_reserve(&cpu->wkv_scratch, &cpu->wkv_scratch_n, cpu->n_threads,
                                    rwkv7_cpu_wkv7_chunked_scratch(cpu->wkv_chunk, head_size)));
    /* One (sequence, head) item is N * N * n_tok multiply-adds; group them to ~64K per part. */
    int64_t per_item = (int64_t)head_size * head_size * n_tok;
    rwkv7_threadpool_run(cpu->pool, slots->ne[0] * j.H, per_item >= 65536 ? 1 : 65536 / per_item, wkv_items, &j);
    return RWKV7_OK;
}

/* ---- WKV output: group norm + bonus + gate ---- */

struct out_job {
    float *dst;
    const float *y, *r, *k, *v, *g, *r_k, *ln_w, *ln_b;
    int64_t C;
    int N;
    float eps;
};

static void out_rows(void *p, int64_t r0, int64_t r1, int ith) {
    const struct out_job *j = p;
    for (int64_t row = r0; row < r1; row++) {
        int64_t o = row * j->C;
        for (int64_t h = 0; h < j->C / j->N; h++) {
            int64_t c0 = o + h * j->N;
            const float *y = j->y + c0;
            double sum = 0;
            for (int n = 0; n < j->N; n++) sum += y[n];
            float mean = (float)(sum / j->N);
            double var = 0, bonus = 0;
            for (int n = 0; n < j->N; n++) {
                float c = y[n] - mean;
                var += (double)c * c;
                bonus += (double)j->r[c0 + n] * j->k[c0 + n] * j->r_k[h * j->N + n];
            }
            float scale = 1.0f / sqrtf((float)(var / j->N) + j->eps);
            for (int n = 0; n < j->N; n++) {
                int64_t c = h * j->N + n;
                float val = (y[n] - mean) * scale * j->ln_w[c] + j->ln_b[c] + (float)bonus * j->v[c0 + n];
                j->dst[c0 + n] = val * j->g[c0 + n];
            }
        }
    }
}

RWKV7_OP_SIG(rwkv7_cpu_wkv_out, wkv_out) {
    const struct rwkv7_tensor *dst = args->dst, *y = args->y, *r = args->r, *k = args->k,
                              *v = args->v, *g = args->g, *r_k = args->r_k, *ln_w = args->ln_w,
                              *ln_b = args->ln_b;
    int head_size = args->head_size;
    float eps = args->eps;
    struct out_job j = {cpu_f32(dst), cpu_f32(y), cpu_f32(r), cpu_f32(k), cpu_f32(v), cpu_f32(g),
                        cpu_f32(r_k), cpu_f32(ln_w), cpu_f32(ln_b), y->ne[0], head_size, eps};
    rwkv7_threadpool_run(CPU(be)->pool, rwkv7_tensor_nrows(y), min_rows(y->ne[0]), out_rows, &j);
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_cpu_last_rows, last_rows) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x;
    int n_tok = args->n_tok;
    int64_t C = x->ne[0], n_seq = rwkv7_tensor_nrows(x) / n_tok;
    for (int64_t s = 0; s < n_seq; s++)
        memcpy(cpu_f32(dst) + s * C, cpu_f32(x) + (s * n_tok + n_tok - 1) * C, (size_t)C * sizeof(float));
    return RWKV7_OK;
}
