/* backend.c: backend selection over the registry (auto with fallback) and the checked
 * rwkv7_op_* wrappers, the single door to every backend. Every shape and type rule of backend.h
 * is enforced here once, so a backend only sees calls that are well-formed and can stay free of
 * argument checks; the door then runs the debug hooks (op_debug.c) around the backend's entry. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "backend.h"
#include "dtype.h"
#include "op_debug.h"
#include "status.h"

enum rwkv7_status rwkv7_backend_init(const char *name, const char *device, int n_threads,
                                     bool quiet, struct rwkv7_backend **out) {
    *out = NULL;
    if (!name || !*name) name = "auto";
    /* A device name implies its backend: "Vulkan0" -> vulkan, "CUDA1" -> cuda, "CPU" -> cpu. */
    if (!strcmp(name, "auto") && device && *device) {
        const struct rwkv7_backend_reg *r = rwkv7_backend_reg_find(device);
        if (r) name = r->name;
    }
    enum rwkv7_status st = RWKV7_OK;
    if (strcmp(name, "auto") != 0) {
        const struct rwkv7_backend_reg *r = rwkv7_backend_reg_find(name);
        if (!r || strcasecmp(r->name, name) != 0) {
            char names[128] = "auto";
            for (int i = 0; (r = rwkv7_backend_reg_get(i)) != NULL; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), ", %s", r->name);
            return rwkv7_fail(RWKV7_ERR_ARG, "backend: unknown backend '%s' (expected %s)", name, names);
        }
        if (!r->init) return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "backend: this build has no %s backend", r->name);
        st = r->init(device, n_threads, out);
    } else {
        st = RWKV7_ERR_UNSUPPORTED;
        const struct rwkv7_backend_reg *r, *cpu = NULL;
        for (int i = 0; (r = rwkv7_backend_reg_get(i)) != NULL && st != RWKV7_OK; i++) {
            if (!r->gpu) {
                if (!cpu) cpu = r;
                continue;
            }
            if (!r->init) continue; /* not built: nothing to say */
            st = r->init(device && *device ? device : r->auto_device, n_threads, out);
            if (st != RWKV7_OK && !quiet)
                fprintf(stderr, "rwkv7: %s backend unavailable (%s), trying the next\n", r->name, rwkv7_last_error());
        }
        if (st != RWKV7_OK) {
            RWKV7_ASSERT(cpu && cpu->init);
            st = cpu->init(NULL, n_threads, out);
        }
    }
    if (st == RWKV7_OK) {
        st = rwkv7_op_debug_from_env(*out);
        if (st != RWKV7_OK) {
            rwkv7_backend_free(*out);
            *out = NULL;
        }
    }
    return st;
}

void rwkv7_backend_free(struct rwkv7_backend *be) {
    if (!be) return;
    rwkv7_op_debug_free(be);
    be->i->free(be);
}

const char *rwkv7_op_name(enum rwkv7_op op) {
    static const char *const names[RWKV7_OP_COUNT] = {
#define RWKV7_X_(U, l) #l,
        RWKV7_OP_LIST(RWKV7_X_) RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    };
    return (int)op >= 0 && op < RWKV7_OP_COUNT ? names[op] : "(unknown op)";
}

/* ---- shape checks ---- */

static const char *tname(const struct rwkv7_tensor *t) { return t && t->name ? t->name : "(scratch)"; }

static enum rwkv7_status need_f32(const char *op, const struct rwkv7_tensor *t) {
    if (!t) return rwkv7_fail(RWKV7_ERR_ARG, "%s: missing tensor", op);
    if (t->type != RWKV7_DTYPE_F32)
        return rwkv7_fail(RWKV7_ERR_ARG, "%s: tensor '%s' has type %s, expected f32", op, tname(t),
                          rwkv7_dtype_name(t->type));
    return RWKV7_OK;
}

static enum rwkv7_status need_shape(const char *op, const struct rwkv7_tensor *t, int64_t ne0, int64_t ne1) {
    RWKV7_TRY(need_f32(op, t));
    if (t->ne[0] != ne0 || rwkv7_tensor_nrows(t) != ne1)
        return rwkv7_fail(RWKV7_ERR_ARG, "%s: tensor '%s' is (%lld, %lld), expected (%lld, %lld)", op,
                          tname(t), (long long)t->ne[0], (long long)rwkv7_tensor_nrows(t),
                          (long long)ne0, (long long)ne1);
    return RWKV7_OK;
}

static enum rwkv7_status need_entry(struct rwkv7_backend *be, const char *op, const void *fn) {
    if (!fn) return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "%s: not supported by the %s backend", op, be->i->name);
    return RWKV7_OK;
}

static enum rwkv7_status need_slots(const char *op, const struct rwkv7_tensor *slots) {
    if (!slots || slots->type != RWKV7_DTYPE_I32 || slots->ne[0] < 1)
        return rwkv7_fail(RWKV7_ERR_ARG, "%s: slots must be a non-empty i32 vector", op);
    return RWKV7_OK;
}

static enum rwkv7_status need_weight(struct rwkv7_backend *be, const char *op, enum rwkv7_op id,
                                     const struct rwkv7_tensor *w) {
    if (!w) return rwkv7_fail(RWKV7_ERR_ARG, "%s: missing weight", op);
    if (!be->i->supports(be, id, w->type))
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "%s: type %s not supported by the %s backend", op,
                          rwkv7_dtype_name(w->type), be->i->name);
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_embed, embed) {
    const struct rwkv7_tensor *dst = args->dst, *table = args->table, *tokens = args->tokens;
    RWKV7_TRY(need_entry(be, "embed", (const void *)be->i->embed));
    if (!tokens || tokens->type != RWKV7_DTYPE_I32)
        return rwkv7_fail(RWKV7_ERR_ARG, "embed: tokens must be i32");
    if (!table) return rwkv7_fail(RWKV7_ERR_ARG, "embed: missing table");
    RWKV7_TRY(need_shape("embed", dst, table->ne[0], tokens->ne[0]));
    RWKV7_TRY(need_weight(be, "embed", RWKV7_OP_EMBED, table));
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_norm, norm) {
    const struct rwkv7_tensor *x = args->x;
    RWKV7_TRY(need_entry(be, "norm", (const void *)be->i->norm));
    RWKV7_TRY(need_f32("norm", x));
    RWKV7_TRY(need_shape("norm", args->dst, x->ne[0], rwkv7_tensor_nrows(x)));
    RWKV7_TRY(need_shape("norm", args->w, x->ne[0], 1));
    RWKV7_TRY(need_shape("norm", args->b, x->ne[0], 1));
    if (args->n_groups < 1 || x->ne[0] % args->n_groups)
        return rwkv7_fail(RWKV7_ERR_ARG, "norm: %d groups do not divide %lld", args->n_groups, (long long)x->ne[0]);
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_matmul, matmul) {
    const struct rwkv7_tensor *dst = args->dst, *w = args->w, *x = args->x;
    RWKV7_TRY(need_entry(be, "matmul", (const void *)be->i->matmul));
    RWKV7_TRY(need_f32("matmul", x));
    if (!w) return rwkv7_fail(RWKV7_ERR_ARG, "matmul: missing weight");
    if (x->ne[0] != w->ne[0] || w->ne[2] * w->ne[3] != 1)
        return rwkv7_fail(RWKV7_ERR_ARG, "matmul: weight '%s' (%lld, %lld) does not take input rows of %lld",
                          tname(w), (long long)w->ne[0], (long long)w->ne[1], (long long)x->ne[0]);
    RWKV7_TRY(need_shape("matmul", dst, w->ne[1], rwkv7_tensor_nrows(x)));
    if (dst->buf == x->buf && dst->offs == x->offs)
        return rwkv7_fail(RWKV7_ERR_ARG, "matmul: dst aliases x");
    RWKV7_TRY(need_weight(be, "matmul", RWKV7_OP_MATMUL, w));
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_token_shift, token_shift) {
    const struct rwkv7_tensor *x = args->x, *mix = args->mix, *state = args->state, *slots = args->slots;
    RWKV7_TRY(need_entry(be, "token_shift", (const void *)be->i->token_shift));
    RWKV7_TRY(need_slots("token_shift", slots));
    RWKV7_TRY(need_f32("token_shift", x));
    if (!mix) return rwkv7_fail(RWKV7_ERR_ARG, "token_shift: missing mix");
    int64_t C = x->ne[0], rows = rwkv7_tensor_nrows(x), n_mix = rwkv7_tensor_nrows(mix);
    if (args->n_tok < 1 || rows != slots->ne[0] * args->n_tok)
        return rwkv7_fail(RWKV7_ERR_ARG, "token_shift: %lld rows are not %lld sequences x %d tokens",
                          (long long)rows, (long long)slots->ne[0], args->n_tok);
    RWKV7_TRY(need_shape("token_shift", mix, C, n_mix));
    RWKV7_TRY(need_shape("token_shift", args->dst, C, rows * n_mix));
    RWKV7_TRY(need_f32("token_shift", state));
    if (state->ne[0] != C)
        return rwkv7_fail(RWKV7_ERR_ARG, "token_shift: state rows of %lld, expected %lld", (long long)state->ne[0],
                          (long long)C);
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_unary, unary) {
    const struct rwkv7_tensor *x = args->x;
    RWKV7_TRY(need_entry(be, "unary", (const void *)be->i->unary));
    RWKV7_TRY(need_f32("unary", x));
    RWKV7_TRY(need_shape("unary", args->dst, x->ne[0], rwkv7_tensor_nrows(x)));
    if (args->bias) RWKV7_TRY(need_shape("unary", args->bias, x->ne[0], 1));
    if ((int)args->fn < 0 || args->fn > RWKV7_UNARY_DECAY)
        return rwkv7_fail(RWKV7_ERR_ARG, "unary: bad function %d", (int)args->fn);
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_binary, binary) {
    const struct rwkv7_tensor *a = args->a, *b = args->b;
    RWKV7_TRY(need_entry(be, "binary", (const void *)be->i->binary));
    RWKV7_TRY(need_f32("binary", a));
    RWKV7_TRY(need_shape("binary", args->dst, a->ne[0], rwkv7_tensor_nrows(a)));
    RWKV7_TRY(need_f32("binary", b));
    if (b->ne[0] != a->ne[0] || (rwkv7_tensor_nrows(b) != 1 && rwkv7_tensor_nrows(b) != rwkv7_tensor_nrows(a)))
        return rwkv7_fail(RWKV7_ERR_ARG, "binary: operand '%s' does not broadcast to '%s'", tname(b), tname(a));
    if ((int)args->fn < 0 || args->fn > RWKV7_BINARY_MUL)
        return rwkv7_fail(RWKV7_ERR_ARG, "binary: bad function %d", (int)args->fn);
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_mix, mix) {
    const struct rwkv7_tensor *a = args->a;
    RWKV7_TRY(need_entry(be, "mix", (const void *)be->i->mix));
    RWKV7_TRY(need_f32("mix", a));
    int64_t C = a->ne[0], rows = rwkv7_tensor_nrows(a);
    RWKV7_TRY(need_shape("mix", args->b, C, rows));
    RWKV7_TRY(need_shape("mix", args->t, C, rows));
    RWKV7_TRY(need_shape("mix", args->dst, C, rows));
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_key_prep, key_prep) {
    const struct rwkv7_tensor *k = args->k;
    int head_size = args->head_size;
    RWKV7_TRY(need_entry(be, "key_prep", (const void *)be->i->key_prep));
    RWKV7_TRY(need_f32("key_prep", k));
    int64_t C = k->ne[0], rows = rwkv7_tensor_nrows(k);
    if (head_size < 1 || C % head_size)
        return rwkv7_fail(RWKV7_ERR_ARG, "key_prep: head size %d does not divide %lld", head_size, (long long)C);
    RWKV7_TRY(need_shape("key_prep", args->a, C, rows));
    RWKV7_TRY(need_shape("key_prep", args->kk, C, rows));
    RWKV7_TRY(need_shape("key_prep", args->kmod, C, rows));
    RWKV7_TRY(need_shape("key_prep", args->k_k, C, 1));
    RWKV7_TRY(need_shape("key_prep", args->k_a, C, 1));
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_wkv7, wkv7) {
    const struct rwkv7_tensor *r = args->r, *state = args->state, *slots = args->slots;
    int n_tok = args->n_tok, head_size = args->head_size;
    RWKV7_TRY(need_entry(be, "wkv7", (const void *)be->i->wkv7));
    RWKV7_TRY(need_slots("wkv7", slots));
    RWKV7_TRY(need_f32("wkv7", r));
    int64_t C = r->ne[0], rows = rwkv7_tensor_nrows(r);
    if (head_size < 1 || C % head_size)
        return rwkv7_fail(RWKV7_ERR_ARG, "wkv7: head size %d does not divide %lld", head_size, (long long)C);
    if (n_tok < 1 || rows != slots->ne[0] * n_tok)
        return rwkv7_fail(RWKV7_ERR_ARG, "wkv7: %lld rows are not %lld sequences x %d tokens",
                          (long long)rows, (long long)slots->ne[0], n_tok);
    const struct rwkv7_tensor *in[] = {args->w, args->k, args->v, args->kk, args->a, args->y};
    for (int i = 0; i < 6; i++) RWKV7_TRY(need_shape("wkv7", in[i], C, rows));
    RWKV7_TRY(need_f32("wkv7", state));
    if (state->ne[0] != C * head_size)
        return rwkv7_fail(RWKV7_ERR_ARG, "wkv7: state rows of %lld, expected %lld", (long long)state->ne[0],
                          (long long)(C * head_size));
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_wkv_out, wkv_out) {
    const struct rwkv7_tensor *y = args->y;
    int head_size = args->head_size;
    RWKV7_TRY(need_entry(be, "wkv_out", (const void *)be->i->wkv_out));
    RWKV7_TRY(need_f32("wkv_out", y));
    int64_t C = y->ne[0], rows = rwkv7_tensor_nrows(y);
    if (head_size < 1 || C % head_size)
        return rwkv7_fail(RWKV7_ERR_ARG, "wkv_out: head size %d does not divide %lld", head_size, (long long)C);
    const struct rwkv7_tensor *in[] = {args->r, args->k, args->v, args->g, args->dst};
    for (int i = 0; i < 5; i++) RWKV7_TRY(need_shape("wkv_out", in[i], C, rows));
    const struct rwkv7_tensor *vec[] = {args->r_k, args->ln_w, args->ln_b};
    for (int i = 0; i < 3; i++) RWKV7_TRY(need_shape("wkv_out", vec[i], C, 1));
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_last_rows, last_rows) {
    const struct rwkv7_tensor *x = args->x;
    int n_tok = args->n_tok;
    RWKV7_TRY(need_entry(be, "last_rows", (const void *)be->i->last_rows));
    RWKV7_TRY(need_f32("last_rows", x));
    int64_t rows = rwkv7_tensor_nrows(x);
    if (n_tok < 1 || rows % n_tok)
        return rwkv7_fail(RWKV7_ERR_ARG, "last_rows: %lld rows are not a multiple of %d tokens", (long long)rows,
                          n_tok);
    RWKV7_TRY(need_shape("last_rows", args->dst, x->ne[0], rows / n_tok));
    return RWKV7_OK;
}

/* Fused ops: the checks of the primitives they are made of. */
static bool overlaps(const struct rwkv7_tensor *a, const struct rwkv7_tensor *b) {
    return a->buf == b->buf && a->offs < b->offs + b->nbytes && b->offs < a->offs + a->nbytes;
}

static RWKV7_OP_SIG(check_matmul_n, matmul_n) {
    if (args->n < 1 || args->n > RWKV7_MATMUL_N_MAX)
        return rwkv7_fail(RWKV7_ERR_ARG, "matmul_n: %d products (1..%d)", args->n, RWKV7_MATMUL_N_MAX);
    for (int i = 0; i < args->n; i++) {
        RWKV7_TRY(check_matmul(be, &args->m[i]));
        for (int j = 0; j < args->n; j++)
            if (j != i && (overlaps(args->m[i].dst, args->m[j].x) || (j < i && overlaps(args->m[i].dst, args->m[j].dst))))
                return rwkv7_fail(RWKV7_ERR_ARG, "matmul_n: the output of product %d overlaps product %d", i, j);
    }
    return RWKV7_OK;
}

static RWKV7_OP_SIG(check_norm_shift, norm_shift) {
    RWKV7_TRY(check_norm(be, &(const struct rwkv7_norm_args){args->xn, args->x, args->w, args->b, 1, args->eps}));
    return check_token_shift(be, &(const struct rwkv7_token_shift_args){args->dst, args->xn, args->mix, args->state,
                                                                        args->slots, args->n_tok});
}

static RWKV7_OP_SIG(check_wkv_block, wkv_block) {
    const struct rwkv7_wkv_block_args *a = args;
    RWKV7_TRY(check_key_prep(be, &(const struct rwkv7_key_prep_args){a->kk, a->kmod, a->k, a->a, a->k_k, a->k_a,
                                                                      a->head_size}));
    RWKV7_TRY(check_wkv7(be, &(const struct rwkv7_wkv7_args){a->y, a->state, a->slots, a->r, a->w, a->kmod, a->v, a->kk,
                                                              a->a, a->n_tok, a->head_size}));
    return check_wkv_out(be, &(const struct rwkv7_wkv_out_args){a->dst, a->y, a->r, a->kmod, a->v, a->g, a->r_k, a->ln_w,
                                                                 a->ln_b, a->head_size, a->eps});
}

static RWKV7_OP_SIG(check_ffn_key, ffn_key) {
    return check_matmul(be, &(const struct rwkv7_matmul_args){args->dst, args->w, args->x, false});
}

static bool lora_fn_ok(int fn) { return fn == RWKV7_LORA_NO_FN || (fn >= 0 && fn <= RWKV7_UNARY_DECAY); }

static RWKV7_OP_SIG(check_lora_up, lora_up) {
    const struct rwkv7_lora_up_args *a = args;
    if (a->n < 1 || a->n > RWKV7_LORA_UP_MAX)
        return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: %d terms (1..%d)", a->n, RWKV7_LORA_UP_MAX);
    for (int i = 0; i < a->n; i++) {
        const struct rwkv7_lora_up_term *u = &a->u[i];
        RWKV7_TRY(check_matmul(be, &(const struct rwkv7_matmul_args){u->dst, u->w, u->x, false}));
        if (!lora_fn_ok(u->in_fn) || !lora_fn_ok(u->out_fn))
            return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: term %d has a bad function (%d, %d)", i, u->in_fn, u->out_fn);
        if (u->bias && u->out_fn == RWKV7_LORA_NO_FN)
            return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: term %d has a bias but no output function", i);
        if (u->bias) RWKV7_TRY(need_shape("lora_up", u->bias, u->dst->ne[0], 1));
        if (rwkv7_tensor_nrows(u->x) != rwkv7_tensor_nrows(a->u[0].x))
            return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: term %d has another row count than term 0", i);
        for (int j = 0; j < a->n; j++)
            if (j != i && (overlaps(u->dst, a->u[j].x) || (j < i && overlaps(u->dst, a->u[j].dst))))
                return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: the output of term %d overlaps term %d", i, j);
    }
    if (a->vres == RWKV7_LORA_VRES_NONE) return RWKV7_OK;
    if (a->vres != RWKV7_LORA_VRES_RECORD && (a->vres < 0 || a->vres >= a->n))
        return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: value residual term %d of %d", a->vres, a->n);
    RWKV7_TRY(need_f32("lora_up", a->v));
    int64_t C = a->v->ne[0], rows = rwkv7_tensor_nrows(a->v);
    if (rows != rwkv7_tensor_nrows(a->u[0].x))
        return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: v has %lld rows, the terms %lld", (long long)rows,
                          (long long)rwkv7_tensor_nrows(a->u[0].x));
    RWKV7_TRY(need_shape("lora_up", a->v_first, C, rows));
    if (a->vres >= 0) RWKV7_TRY(need_shape("lora_up", a->u[a->vres].dst, C, rows));
    for (int i = 0; i < a->n; i++)
        if (overlaps(a->u[i].dst, a->v) || overlaps(a->u[i].dst, a->v_first) || overlaps(a->u[i].x, a->v) ||
            overlaps(a->u[i].x, a->v_first))
            return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: term %d overlaps v or v_first", i);
    if (overlaps(a->v, a->v_first)) return rwkv7_fail(RWKV7_ERR_ARG, "lora_up: v overlaps v_first");
    return RWKV7_OK;
}

/* The doors: check once, then hand the op to op_debug.c (hooks, fallbacks, the backend). */
#define RWKV7_X_(U, l)                                 \
    RWKV7_OP_SIG(rwkv7_op_##l, l) {                    \
        RWKV7_TRY(check_##l(be, args));                \
        return rwkv7_op_door(be, RWKV7_OP_##U, args);  \
    }
RWKV7_OP_LIST(RWKV7_X_)
RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
