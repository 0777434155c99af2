/* op_debug.c: the op door and its debug hooks, the same for every backend (backend.h):
 * RWKV7_SYNC_EACH_OP=1 syncs after each op; RWKV7_CHECK_RESULTS=1 re-runs each op on a CPU
 * backend from the device's own inputs (read back before the op) and stops at the first output
 * over its NMSE tolerance, naming op, layer, token and error; RWKV7_TRACE=1 times each op
 * synchronously and prints a per-op summary when the backend is freed. Also the one tolerance
 * table used by the CHECK hook and tests/test_ops.c. Hooks cost nothing when off (be->dbg NULL). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "op_debug.h"
#include "status.h"

struct rwkv7_op_debug {
    unsigned flags;
    struct rwkv7_backend *cpu; /* CHECK: the reference backend */
    int layer;                 /* where the next ops come from (rwkv7_op_where) */
    int64_t token;
    uint64_t count[RWKV7_OP_COUNT]; /* TRACE */
    double seconds[RWKV7_OP_COUNT];
    double worst[RWKV7_OP_COUNT]; /* CHECK: worst NMSE / tolerance seen */
};

/* ---- the tolerance table ---- */

/* NMSE = sum (dev - ref)^2 / sum ref^2 against the CPU backend, for the same inputs. */
static const struct {
    double nmse;
    const char *why;
} k_tol[RWKV7_OP_COUNT] = {
    [RWKV7_OP_EMBED] = {1e-12, "the same exact dequantization: equal up to FMA in the block scale"},
    [RWKV7_OP_NORM] = {1e-8, "fp32 mean/variance in another summation order (the CPU sums in double)"},
    [RWKV7_OP_MATMUL] = {1e-8, "exact fp32 dequantization on both sides; fp32 dot in another order"},
    [RWKV7_OP_TOKEN_SHIFT] = {1e-10, "one fp32 lerp per element: only FMA contraction differs"},
    [RWKV7_OP_UNARY] = {1e-10, "same fp32 formula; exp/tanh differ by a few ulps between libms"},
    [RWKV7_OP_BINARY] = {1e-10, "one fp32 add or multiply: only FMA contraction differs"},
    [RWKV7_OP_MIX] = {1e-10, "one fp32 lerp per element: only FMA contraction differs"},
    [RWKV7_OP_KEY_PREP] = {1e-8, "per-head L2 norm reduced in another order"},
    [RWKV7_OP_WKV7] = {1e-7, "fp32 state over up to 100 tokens: order differences compound (ggml's 1e-7); "
                             "the chunked forms add exp2/log2 decays, ~1e-13 (tests/test_wkv7.c)"},
    [RWKV7_OP_WKV_OUT] = {1e-8, "GroupNorm and bonus dot products reduced in another order"},
    [RWKV7_OP_LAST_ROWS] = {1e-12, "a copy: exact"},
    [RWKV7_OP_MATMUL_N] = {1e-8, "matmul's: exact fp32 dequantization on both sides; fp32 dot in another order"},
    [RWKV7_OP_NORM_SHIFT] = {1e-8, "LayerNorm reduced in another order; the lerp exact up to FMA"},
    [RWKV7_OP_WKV_BLOCK] = {1e-7, "wkv7's 1e-7 (the recurrence dominates; key_prep and wkv_out add 1e-8)"},
    [RWKV7_OP_FFN_KEY] = {4e-8, "matmul's 1e-8, doubled in relative error by the square of relu^2"},
    [RWKV7_OP_LORA_UP] = {1e-8, "matmul's 1e-8; the unaries and the lerp add a few ulps per element"},
};

double rwkv7_op_tolerance(const struct rwkv7_backend *be, enum rwkv7_op op, const void *args, const char **why) {
    /* One table for every backend: no backend loses precision on purpose (CUDA's prefill tiles
     * are fp32-accurate, tests/test_cuda_mma.cu), so none may be held to a looser limit. */
    (void)be;
    (void)args;
    if ((int)op < 0 || op >= RWKV7_OP_COUNT) return 0;
    if (why) *why = k_tol[op].why;
    return k_tol[op].nmse;
}

/* ---- which fields of each argument struct are tensors, and which are written ---- */

struct field {
    size_t offs;  /* offsetof the tensor pointer in the op's argument struct */
    bool written; /* compared by CHECK; read back before the op when also read */
};
#define MAX_FIELDS 24
#define R(l, f)                                                                                                        \
    { offsetof(struct rwkv7_##l##_args, f), false }
#define W(l, f)                                                                                                        \
    { offsetof(struct rwkv7_##l##_args, f), true }
static const struct {
    int n;
    struct field f[MAX_FIELDS];
    size_t size;
} k_fields[RWKV7_OP_COUNT] = {
    [RWKV7_OP_EMBED] = {3, {W(embed, dst), R(embed, table), R(embed, tokens)}, sizeof(struct rwkv7_embed_args)},
    [RWKV7_OP_NORM] = {4, {W(norm, dst), R(norm, x), R(norm, w), R(norm, b)}, sizeof(struct rwkv7_norm_args)},
    [RWKV7_OP_MATMUL] = {3, {W(matmul, dst), R(matmul, w), R(matmul, x)}, sizeof(struct rwkv7_matmul_args)},
    [RWKV7_OP_TOKEN_SHIFT] = {5,
                              {W(token_shift, dst), R(token_shift, x), R(token_shift, mix), W(token_shift, state),
                               R(token_shift, slots)},
                              sizeof(struct rwkv7_token_shift_args)},
    [RWKV7_OP_UNARY] = {3, {W(unary, dst), R(unary, x), R(unary, bias)}, sizeof(struct rwkv7_unary_args)},
    [RWKV7_OP_BINARY] = {3, {W(binary, dst), R(binary, a), R(binary, b)}, sizeof(struct rwkv7_binary_args)},
    [RWKV7_OP_MIX] = {4, {W(mix, dst), R(mix, a), R(mix, b), R(mix, t)}, sizeof(struct rwkv7_mix_args)},
    [RWKV7_OP_KEY_PREP] = {6,
                           {W(key_prep, kk), W(key_prep, kmod), R(key_prep, k), R(key_prep, a), R(key_prep, k_k),
                            R(key_prep, k_a)},
                           sizeof(struct rwkv7_key_prep_args)},
    [RWKV7_OP_WKV7] = {9,
                       {W(wkv7, y), W(wkv7, state), R(wkv7, slots), R(wkv7, r), R(wkv7, w), R(wkv7, k), R(wkv7, v),
                        R(wkv7, kk), R(wkv7, a)},
                       sizeof(struct rwkv7_wkv7_args)},
    [RWKV7_OP_WKV_OUT] = {9,
                          {W(wkv_out, dst), R(wkv_out, y), R(wkv_out, r), R(wkv_out, k), R(wkv_out, v), R(wkv_out, g),
                           R(wkv_out, r_k), R(wkv_out, ln_w), R(wkv_out, ln_b)},
                          sizeof(struct rwkv7_wkv_out_args)},
    [RWKV7_OP_LAST_ROWS] = {2, {W(last_rows, dst), R(last_rows, x)}, sizeof(struct rwkv7_last_rows_args)},
    [RWKV7_OP_NORM_SHIFT] = {8,
                             {W(norm_shift, dst), W(norm_shift, xn), R(norm_shift, x), R(norm_shift, w),
                              R(norm_shift, b), R(norm_shift, mix), W(norm_shift, state), R(norm_shift, slots)},
                             sizeof(struct rwkv7_norm_shift_args)},
    /* kk, kmod, y: scratch whose contents afterwards are undefined, so not compared */
    [RWKV7_OP_WKV_BLOCK] = {17,
                            {W(wkv_block, dst), W(wkv_block, state), R(wkv_block, slots), R(wkv_block, r),
                             R(wkv_block, w), R(wkv_block, k), R(wkv_block, v), R(wkv_block, a), R(wkv_block, g),
                             R(wkv_block, k_k), R(wkv_block, k_a), R(wkv_block, r_k), R(wkv_block, ln_w),
                             R(wkv_block, ln_b), R(wkv_block, kk), R(wkv_block, kmod), R(wkv_block, y)},
                            sizeof(struct rwkv7_wkv_block_args)},
    [RWKV7_OP_FFN_KEY] = {3, {W(ffn_key, dst), R(ffn_key, w), R(ffn_key, x)}, sizeof(struct rwkv7_ffn_key_args)},
    /* 4 fields per term (x: scratch, so not compared), then v and v_first */
    [RWKV7_OP_LORA_UP] = {18,
                          {W(lora_up, u[0].dst), R(lora_up, u[0].w), R(lora_up, u[0].x), R(lora_up, u[0].bias),
                           W(lora_up, u[1].dst), R(lora_up, u[1].w), R(lora_up, u[1].x), R(lora_up, u[1].bias),
                           W(lora_up, u[2].dst), R(lora_up, u[2].w), R(lora_up, u[2].x), R(lora_up, u[2].bias),
                           W(lora_up, u[3].dst), R(lora_up, u[3].w), R(lora_up, u[3].x), R(lora_up, u[3].bias),
                           W(lora_up, v), W(lora_up, v_first)},
                          sizeof(struct rwkv7_lora_up_args)},
    /* product i is fields 3 i .. 3 i + 2; the slots past n are absent (field_tensor) */
#define MM(i) W(matmul_n, m[i].dst), R(matmul_n, m[i].w), R(matmul_n, m[i].x)
    [RWKV7_OP_MATMUL_N] = {3 * RWKV7_MATMUL_N_MAX,
                           {MM(0), MM(1), MM(2), MM(3), MM(4), MM(5), MM(6), MM(7)},
                           sizeof(struct rwkv7_matmul_n_args)},
#undef MM
};
_Static_assert(3 * RWKV7_MATMUL_N_MAX <= MAX_FIELDS && RWKV7_MATMUL_N_MAX == 8, "op_debug: matmul_n fields");
#undef R
#undef W

static const struct rwkv7_tensor **field_ptr(void *args, const struct field *f) {
    return (const struct rwkv7_tensor **)((char *)args + f->offs);
}

/* Tensor i of an op's arguments, or NULL when absent (matmul_n: the slots past n). */
static const struct rwkv7_tensor *field_tensor(enum rwkv7_op op, const void *args, int i) {
    if (op == RWKV7_OP_MATMUL_N && i / 3 >= ((const struct rwkv7_matmul_n_args *)args)->n) return NULL;
    if (op == RWKV7_OP_LORA_UP) {
        const struct rwkv7_lora_up_args *a = args;
        if (i < 16 && i / 4 >= a->n) return NULL;
        if (i >= 16 && a->vres == RWKV7_LORA_VRES_NONE) return NULL;
    }
    return *field_ptr((void *)args, &k_fields[op].f[i]);
}

size_t rwkv7_op_bytes(enum rwkv7_op op, const void *args) {
    if ((int)op < 0 || op >= RWKV7_OP_COUNT) return 0;
    size_t bytes = 0;
    const struct rwkv7_tensor *seen[MAX_FIELDS];
    int n_seen = 0;
    for (int i = 0; i < k_fields[op].n; i++) {
        const struct rwkv7_tensor *t = field_tensor(op, args, i);
        if (!t) continue;
        bool dup = false; /* dst == x in place: one tensor, read and written */
        for (int j = 0; j < n_seen; j++) dup |= seen[j]->buf == t->buf && seen[j]->offs == t->offs;
        seen[n_seen++] = t;
        if (!dup) bytes += t->nbytes;
        /* read and written: the state, an accumulated or in-place dst (counted once more) */
        bool state = (op == RWKV7_OP_TOKEN_SHIFT && i == 3) || (op == RWKV7_OP_WKV7 && i == 1) ||
                     (op == RWKV7_OP_NORM_SHIFT && i == 6) || (op == RWKV7_OP_WKV_BLOCK && i == 1) ||
                     (op == RWKV7_OP_LORA_UP && i == 16 && ((const struct rwkv7_lora_up_args *)args)->vres >= 0);
        bool acc = (op == RWKV7_OP_MATMUL && ((const struct rwkv7_matmul_args *)args)->accumulate && i == 0) ||
                   (op == RWKV7_OP_MATMUL_N && i % 3 == 0 &&
                    ((const struct rwkv7_matmul_n_args *)args)->m[i / 3].accumulate);
        if (dup || state || acc) bytes += t->nbytes;
    }
    return bytes;
}

/* ---- generic fallbacks of the fused ops: the primitives they are made of, through the door
 * (each primitive counted and hooked) or, as the reference inside the CHECK hook, directly ---- */

static enum rwkv7_status fallback_matmul_n(struct rwkv7_backend *be, const struct rwkv7_matmul_n_args *a, bool door) {
    for (int i = 0; i < a->n; i++) RWKV7_TRY(door ? rwkv7_op_matmul(be, &a->m[i]) : be->i->matmul(be, &a->m[i]));
    return RWKV7_OK;
}

static enum rwkv7_status fallback_norm_shift(struct rwkv7_backend *be, const struct rwkv7_norm_shift_args *a,
                                             bool door) {
    const struct rwkv7_norm_args n = {a->xn, a->x, a->w, a->b, 1, a->eps};
    const struct rwkv7_token_shift_args t = {a->dst, a->xn, a->mix, a->state, a->slots, a->n_tok};
    RWKV7_TRY(door ? rwkv7_op_norm(be, &n) : be->i->norm(be, &n));
    return door ? rwkv7_op_token_shift(be, &t) : be->i->token_shift(be, &t);
}

static enum rwkv7_status fallback_wkv_block(struct rwkv7_backend *be, const struct rwkv7_wkv_block_args *a, bool door) {
    const struct rwkv7_key_prep_args kp = {a->kk, a->kmod, a->k, a->a, a->k_k, a->k_a, a->head_size};
    const struct rwkv7_wkv7_args wk = {a->y,  a->state, a->slots, a->r,     a->w,        a->kmod,
                                       a->v,  a->kk,    a->a,     a->n_tok, a->head_size};
    const struct rwkv7_wkv_out_args wo = {a->dst, a->y,    a->r,    a->kmod,      a->v,  a->g,
                                          a->r_k, a->ln_w, a->ln_b, a->head_size, a->eps};
    RWKV7_TRY(door ? rwkv7_op_key_prep(be, &kp) : be->i->key_prep(be, &kp));
    RWKV7_TRY(door ? rwkv7_op_wkv7(be, &wk) : be->i->wkv7(be, &wk));
    return door ? rwkv7_op_wkv_out(be, &wo) : be->i->wkv_out(be, &wo);
}

static enum rwkv7_status fallback_ffn_key(struct rwkv7_backend *be, const struct rwkv7_ffn_key_args *a, bool door) {
    const struct rwkv7_matmul_args m = {a->dst, a->w, a->x, false};
    const struct rwkv7_unary_args u = {a->dst, a->dst, NULL, RWKV7_UNARY_RELU_SQR};
    RWKV7_TRY(door ? rwkv7_op_matmul(be, &m) : be->i->matmul(be, &m));
    return door ? rwkv7_op_unary(be, &u) : be->i->unary(be, &u);
}

static enum rwkv7_status fallback_lora_up(struct rwkv7_backend *be, const struct rwkv7_lora_up_args *a, bool door) {
    for (int i = 0; i < a->n; i++) {
        const struct rwkv7_lora_up_term *u = &a->u[i];
        const struct rwkv7_unary_args in = {u->x, u->x, NULL, (enum rwkv7_unary)u->in_fn};
        const struct rwkv7_matmul_args m = {u->dst, u->w, u->x, false};
        const struct rwkv7_unary_args out = {u->dst, u->dst, u->bias, (enum rwkv7_unary)u->out_fn};
        if (u->in_fn != RWKV7_LORA_NO_FN) RWKV7_TRY(door ? rwkv7_op_unary(be, &in) : be->i->unary(be, &in));
        RWKV7_TRY(door ? rwkv7_op_matmul(be, &m) : be->i->matmul(be, &m));
        if (u->out_fn != RWKV7_LORA_NO_FN) RWKV7_TRY(door ? rwkv7_op_unary(be, &out) : be->i->unary(be, &out));
    }
    if (a->vres >= 0) {
        const struct rwkv7_mix_args mx = {a->v, a->v, a->v_first, a->u[a->vres].dst};
        return door ? rwkv7_op_mix(be, &mx) : be->i->mix(be, &mx);
    }
    if (a->vres == RWKV7_LORA_VRES_RECORD) {
        /* last_rows with n_tok = 1 copies every row */
        const struct rwkv7_last_rows_args cp = {a->v_first, a->v, 1};
        return door ? rwkv7_op_last_rows(be, &cp) : be->i->last_rows(be, &cp);
    }
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_op_compose(struct rwkv7_backend *be, enum rwkv7_op op, const void *args) {
    switch (op) {
#define RWKV7_X_(U, l)                                                                                                 \
    case RWKV7_OP_##U: return fallback_##l(be, (const struct rwkv7_##l##_args *)args, false);
        RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    default: return rwkv7_fail(RWKV7_ERR_INTERNAL, "compose: op %s is not a fused op", rwkv7_op_name(op));
    }
}

static enum rwkv7_status call_entry(struct rwkv7_backend *be, enum rwkv7_op op, const void *args) {
    switch (op) {
#define RWKV7_X_(U, l)                                                                                                 \
    case RWKV7_OP_##U: return be->i->l(be, (const struct rwkv7_##l##_args *)args);
        RWKV7_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
#define RWKV7_X_(U, l)                                                                                                 \
    case RWKV7_OP_##U:                                                                                                 \
        return be->i->l ? be->i->l(be, (const struct rwkv7_##l##_args *)args)                                          \
                        : fallback_##l(be, (const struct rwkv7_##l##_args *)args, false);
        RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    default: return rwkv7_fail(RWKV7_ERR_INTERNAL, "door: unknown op %d", (int)op);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* " (layer 3, token 5)" for messages. */
static const char *where(const struct rwkv7_op_debug *d) {
    static _Thread_local char buf[64];
    if (d->layer >= 0)
        snprintf(buf, sizeof buf, "layer %d, token %lld", d->layer, (long long)d->token);
    else
        snprintf(buf, sizeof buf, "outside the layers, token %lld", (long long)d->token);
    return buf;
}

/* ---- CHECK: the op again on the CPU, from the same inputs ---- */

struct snap {
    const struct rwkv7_tensor *dev; /* the device tensor */
    struct rwkv7_tensor cpu;        /* its copy on the reference backend */
    void *host;                     /* its bytes before the op */
};

static enum rwkv7_status check_op(struct rwkv7_backend *be, enum rwkv7_op op, const void *args) {
    struct rwkv7_op_debug *d = be->dbg;
    struct rwkv7_backend *cpu = d->cpu;
    const char *name = rwkv7_op_name(op);
    int n = k_fields[op].n;
    struct snap s[MAX_FIELDS];
    memset(s, 0, sizeof s);
    union {
#define RWKV7_X_(U, l) struct rwkv7_##l##_args l;
        RWKV7_OP_LIST(RWKV7_X_) RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    } ref;
    memcpy(&ref, args, k_fields[op].size);
    enum rwkv7_status st = be->i->sync(be);
    float *got = NULL;
    for (int i = 0; i < n && st == RWKV7_OK; i++) {
        const struct rwkv7_tensor *t = field_tensor(op, args, i);
        if (!t) continue;
        s[i].dev = t;
        s[i].cpu = *t;
        s[i].cpu.offs = 0;
        s[i].host = malloc(t->nbytes ? t->nbytes : 1);
        if (!s[i].host) st = rwkv7_fail(RWKV7_ERR_OOM, "check: out of memory");
        if (st == RWKV7_OK) st = be->i->buf_get(be, t->buf, t->offs, s[i].host, t->nbytes);
        if (st == RWKV7_OK) st = cpu->i->buf_alloc(cpu, t->nbytes, &s[i].cpu.buf);
        if (st == RWKV7_OK) st = cpu->i->buf_set(cpu, s[i].cpu.buf, 0, s[i].host, t->nbytes);
        *field_ptr(&ref, &k_fields[op].f[i]) = &s[i].cpu;
    }
    if (st == RWKV7_OK) st = call_entry(be, op, args);
    if (st == RWKV7_OK) st = be->i->sync(be);
    if (st != RWKV7_OK) st = rwkv7_fail(st, "%s (op %s, %s)", rwkv7_last_error(), name, where(d));
    if (st == RWKV7_OK) st = call_entry(cpu, op, &ref);
    const char *why = NULL;
    double tol = rwkv7_op_tolerance(be, op, args, &why);
    for (int i = 0; i < n && st == RWKV7_OK; i++) {
        if (!s[i].dev || !k_fields[op].f[i].written) continue;
        size_t nf = s[i].dev->nbytes / sizeof(float);
        free(got);
        got = malloc(nf * sizeof(float) + 1);
        if (!got) {
            st = rwkv7_fail(RWKV7_ERR_OOM, "check: out of memory");
            break;
        }
        st = be->i->buf_get(be, s[i].dev->buf, s[i].dev->offs, got, nf * sizeof(float));
        if (st == RWKV7_OK) st = cpu->i->buf_get(cpu, s[i].cpu.buf, 0, s[i].host, nf * sizeof(float));
        if (st != RWKV7_OK) break;
        const float *want = s[i].host;
        double err = 0, norm = 0, worst = -1;
        size_t at = 0, bad = 0;
        for (size_t e = 0; e < nf; e++) {
            if (isfinite(want[e]) != isfinite(got[e]) || (!isfinite(want[e]) && want[e] != got[e])) {
                if (!bad++) at = e;
                continue;
            }
            if (!isfinite(want[e])) continue;
            double diff = (double)got[e] - want[e];
            err += diff * diff;
            norm += (double)want[e] * want[e];
            if (!bad && fabs(diff) > worst) worst = fabs(diff), at = e;
        }
        double nmse = norm > 0 ? err / norm : err;
        if (tol > 0 && nmse / tol > d->worst[op]) d->worst[op] = nmse / tol;
        if (bad || nmse > tol) {
            st = rwkv7_fail(RWKV7_ERR_INTERNAL,
                            "check: op %s (%s) differs from the CPU backend on '%s': nmse %.3g > %.3g (%s); "
                            "%zu NaN/inf mismatches; element %zu is %.9g, the CPU gives %.9g",
                            name, where(d), s[i].dev->name ? s[i].dev->name : "(scratch)", nmse, tol, why, bad, at,
                            got[at], want[at]);
        }
    }
    free(got);
    for (int i = 0; i < n; i++) {
        if (s[i].cpu.buf && s[i].dev) cpu->i->buf_free(cpu, s[i].cpu.buf);
        free(s[i].host);
    }
    return st;
}

enum rwkv7_status rwkv7_op_door(struct rwkv7_backend *be, enum rwkv7_op op, const void *args) {
    /* A fused op the backend lacks: its primitives go through the door one by one. */
    if (op == RWKV7_OP_MATMUL_N && !be->i->matmul_n) return fallback_matmul_n(be, args, true);
    if (op == RWKV7_OP_NORM_SHIFT && !be->i->norm_shift) return fallback_norm_shift(be, args, true);
    if (op == RWKV7_OP_WKV_BLOCK && !be->i->wkv_block) return fallback_wkv_block(be, args, true);
    if (op == RWKV7_OP_FFN_KEY && !be->i->ffn_key) return fallback_ffn_key(be, args, true);
    if (op == RWKV7_OP_LORA_UP && !be->i->lora_up) return fallback_lora_up(be, args, true);
    be->n_ops++;
    struct rwkv7_op_debug *d = be->dbg;
    if (!d || !d->flags) return call_entry(be, op, args);
    double t0 = now_s();
    enum rwkv7_status st;
    if (d->flags & RWKV7_DEBUG_CHECK) {
        st = check_op(be, op, args);
    } else {
        st = call_entry(be, op, args);
        if (st == RWKV7_OK && (d->flags & (RWKV7_DEBUG_SYNC | RWKV7_DEBUG_TRACE))) {
            st = be->i->sync(be);
            if (st != RWKV7_OK)
                st = rwkv7_fail(st, "%s (after op %s, %s)", rwkv7_last_error(), rwkv7_op_name(op), where(d));
        }
    }
    d->count[op]++;
    d->seconds[op] += now_s() - t0;
    return st;
}

/* ---- switches ---- */

static bool env_on(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

enum rwkv7_status rwkv7_op_debug_from_env(struct rwkv7_backend *be) {
    unsigned flags = (env_on("RWKV7_SYNC_EACH_OP") ? RWKV7_DEBUG_SYNC : 0) |
                     (env_on("RWKV7_CHECK_RESULTS") ? RWKV7_DEBUG_CHECK : 0) |
                     (env_on("RWKV7_TRACE") ? RWKV7_DEBUG_TRACE : 0);
    return flags ? rwkv7_backend_set_debug(be, flags) : RWKV7_OK;
}

enum rwkv7_status rwkv7_backend_set_debug(struct rwkv7_backend *be, unsigned flags) {
    if (!be->dbg) {
        if (!flags) return RWKV7_OK;
        be->dbg = calloc(1, sizeof *be->dbg);
        if (!be->dbg) return rwkv7_fail(RWKV7_ERR_OOM, "debug: out of memory");
        be->dbg->layer = -1;
    }
    if ((flags & RWKV7_DEBUG_CHECK) && !be->dbg->cpu) {
        const struct rwkv7_backend_reg *r = rwkv7_backend_reg_find("cpu");
        RWKV7_ASSERT(r && r->init);
        RWKV7_TRY(r->init("exact", 0, &be->dbg->cpu)); /* fp32 activations: cpu/matmul_q8.h */
    }
    be->dbg->flags = flags;
    return RWKV7_OK;
}

unsigned rwkv7_backend_debug_flags(const struct rwkv7_backend *be) { return be->dbg ? be->dbg->flags : 0; }

void rwkv7_op_where(struct rwkv7_backend *be, int layer, int64_t token) {
    if (!be->dbg) return;
    be->dbg->layer = layer;
    be->dbg->token = token;
}

void rwkv7_op_debug_free(struct rwkv7_backend *be) {
    struct rwkv7_op_debug *d = be->dbg;
    if (!d) return;
    if (d->flags & (RWKV7_DEBUG_TRACE | RWKV7_DEBUG_CHECK)) {
        double total = 0;
        for (int op = 0; op < RWKV7_OP_COUNT; op++) total += d->seconds[op];
        fprintf(stderr, "rwkv7: per-op %s on %s (synchronous):\n", d->flags & RWKV7_DEBUG_CHECK ? "check" : "trace",
                be->i->name);
        fprintf(stderr, "  %-12s %10s %12s %10s %7s%s\n", "op", "count", "total ms", "avg us", "share",
                d->flags & RWKV7_DEBUG_CHECK ? "  worst nmse/tol" : "");
        for (int op = 0; op < RWKV7_OP_COUNT; op++) {
            if (!d->count[op]) continue;
            fprintf(stderr, "  %-12s %10llu %12.3f %10.2f %6.1f%%", rwkv7_op_name((enum rwkv7_op)op),
                    (unsigned long long)d->count[op], d->seconds[op] * 1e3, d->seconds[op] * 1e6 / (double)d->count[op],
                    total > 0 ? 100.0 * d->seconds[op] / total : 0.0);
            if (d->flags & RWKV7_DEBUG_CHECK) fprintf(stderr, "  %.3g", d->worst[op]);
            fprintf(stderr, "\n");
        }
    }
    if (d->cpu) d->cpu->i->free(d->cpu);
    free(d);
    be->dbg = NULL;
}
