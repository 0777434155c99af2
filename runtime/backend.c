/* backend.c: backend registry (auto selection with fallback) and the checked rwkv7_op_*
 * wrappers. Every shape and type rule of backend.h is enforced here once, so a backend only sees
 * calls that are well-formed and can stay free of argument checks. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backend.h"
#include "dtype.h"
#include "status.h"

int rwkv7_n_physical_cores(void) {
    /* Count distinct (physical id, core id) pairs; hyper-threads share a core and slow a
     * bandwidth-bound decode down rather than up. Falls back to the online CPU count. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int n = 0;
    if (f) {
        char line[256];
        int phys = 0, pairs[1024][2], np = 0;
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "physical id", 11)) phys = atoi(strchr(line, ':') + 1);
            if (!strncmp(line, "core id", 7)) {
                int core = atoi(strchr(line, ':') + 1), seen = 0;
                for (int i = 0; i < np; i++) seen |= pairs[i][0] == phys && pairs[i][1] == core;
                if (!seen && np < 1024) { pairs[np][0] = phys; pairs[np][1] = core; np++; }
            }
        }
        fclose(f);
        n = np;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0 || (online > 0 && n > online)) n = online > 0 ? (int)online : 1;
    return n;
}

static enum rwkv7_status try_gpu(const char *name, const char *device, struct rwkv7_backend **out) {
#ifdef RWKV7_HAVE_CUDA
    if (!strcmp(name, "cuda")) return rwkv7_backend_cuda_init(device, out);
#endif
#ifdef RWKV7_HAVE_VULKAN
    if (!strcmp(name, "vulkan")) return rwkv7_backend_vulkan_init(device, out);
#endif
    (void)device;
    (void)out;
    return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "backend: this build has no %s backend", name);
}

enum rwkv7_status rwkv7_backend_init(const char *name, const char *device, int n_threads,
                                     bool quiet, struct rwkv7_backend **out) {
    *out = NULL;
    if (!name || !*name) name = "auto";
    /* A device name implies its backend: "Vulkan0" -> vulkan, "CUDA1" -> cuda, "CPU" -> cpu. */
    if (!strcmp(name, "auto") && device && *device) {
        if (!strncasecmp(device, "vulkan", 6)) name = "vulkan";
        else if (!strncasecmp(device, "cuda", 4)) name = "cuda";
        else if (!strcasecmp(device, "cpu")) name = "cpu";
    }
    if (!strcmp(name, "cpu")) return rwkv7_backend_cpu_init(n_threads, out);
    if (!strcmp(name, "cuda") || !strcmp(name, "vulkan")) return try_gpu(name, device, out);
    if (strcmp(name, "auto") != 0)
        return rwkv7_fail(RWKV7_ERR_ARG, "backend: unknown backend '%s' (expected auto, cpu, vulkan or cuda)", name);
    static const char *const order[] = {"cuda", "vulkan"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        /* auto never settles for a CPU implementation of Vulkan (lavapipe): the CPU backend
         * runs the same model many times faster. */
        const char *dev = device && *device ? device : (!strcmp(order[i], "vulkan") ? "gpu" : NULL);
        enum rwkv7_status st = try_gpu(order[i], dev, out);
        if (st == RWKV7_OK) return st;
        /* Say why a compiled-in GPU backend was passed over; stay silent about ones not built. */
        if (!quiet && !strstr(rwkv7_last_error(), "this build has no"))
            fprintf(stderr, "rwkv7: %s backend unavailable (%s), trying the next\n", order[i], rwkv7_last_error());
    }
    return rwkv7_backend_cpu_init(n_threads, out);
}

void rwkv7_backend_free(struct rwkv7_backend *be) {
    if (be) be->i->free(be);
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

enum rwkv7_status rwkv7_op_embed(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                 const struct rwkv7_tensor *table, const struct rwkv7_tensor *tokens) {
    RWKV7_TRY(need_entry(be, "embed", (const void *)be->i->embed));
    if (!tokens || tokens->type != RWKV7_DTYPE_I32)
        return rwkv7_fail(RWKV7_ERR_ARG, "embed: tokens must be i32");
    RWKV7_TRY(need_shape("embed", dst, table->ne[0], tokens->ne[0]));
    if (!be->i->supports(be, RWKV7_OP_EMBED, table->type))
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "embed: type %s not supported by the %s backend",
                          rwkv7_dtype_name(table->type), be->i->name);
    return be->i->embed(be, dst, table, tokens);
}

enum rwkv7_status rwkv7_op_norm(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                const struct rwkv7_tensor *x, const struct rwkv7_tensor *w,
                                const struct rwkv7_tensor *b, int n_groups, float eps) {
    RWKV7_TRY(need_entry(be, "norm", (const void *)be->i->norm));
    RWKV7_TRY(need_f32("norm", x));
    RWKV7_TRY(need_shape("norm", dst, x->ne[0], rwkv7_tensor_nrows(x)));
    RWKV7_TRY(need_shape("norm", w, x->ne[0], 1));
    RWKV7_TRY(need_shape("norm", b, x->ne[0], 1));
    if (n_groups < 1 || x->ne[0] % n_groups)
        return rwkv7_fail(RWKV7_ERR_ARG, "norm: %d groups do not divide %lld", n_groups, (long long)x->ne[0]);
    return be->i->norm(be, dst, x, w, b, n_groups, eps);
}

enum rwkv7_status rwkv7_op_matmul(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                  const struct rwkv7_tensor *w, const struct rwkv7_tensor *x,
                                  bool accumulate) {
    RWKV7_TRY(need_entry(be, "matmul", (const void *)be->i->matmul));
    RWKV7_TRY(need_f32("matmul", x));
    if (x->ne[0] != w->ne[0] || w->ne[2] * w->ne[3] != 1)
        return rwkv7_fail(RWKV7_ERR_ARG, "matmul: weight '%s' (%lld, %lld) does not take input rows of %lld",
                          tname(w), (long long)w->ne[0], (long long)w->ne[1], (long long)x->ne[0]);
    RWKV7_TRY(need_shape("matmul", dst, w->ne[1], rwkv7_tensor_nrows(x)));
    if (dst->buf == x->buf && dst->offs == x->offs)
        return rwkv7_fail(RWKV7_ERR_ARG, "matmul: dst aliases x");
    if (!be->i->supports(be, RWKV7_OP_MATMUL, w->type))
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "matmul: type %s not supported by the %s backend",
                          rwkv7_dtype_name(w->type), be->i->name);
    return be->i->matmul(be, dst, w, x, accumulate);
}

enum rwkv7_status rwkv7_op_token_shift(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                       const struct rwkv7_tensor *x, const struct rwkv7_tensor *mix,
                                       const struct rwkv7_tensor *state,
                                       const struct rwkv7_tensor *slots, int n_tok) {
    RWKV7_TRY(need_entry(be, "token_shift", (const void *)be->i->token_shift));
    RWKV7_TRY(need_slots("token_shift", slots));
    RWKV7_TRY(need_f32("token_shift", x));
    int64_t C = x->ne[0], rows = rwkv7_tensor_nrows(x), n_mix = rwkv7_tensor_nrows(mix);
    if (n_tok < 1 || rows != slots->ne[0] * n_tok)
        return rwkv7_fail(RWKV7_ERR_ARG, "token_shift: %lld rows are not %lld sequences x %d tokens",
                          (long long)rows, (long long)slots->ne[0], n_tok);
    RWKV7_TRY(need_shape("token_shift", mix, C, n_mix));
    RWKV7_TRY(need_shape("token_shift", dst, C, rows * n_mix));
    RWKV7_TRY(need_f32("token_shift", state));
    if (state->ne[0] != C)
        return rwkv7_fail(RWKV7_ERR_ARG, "token_shift: state rows of %lld, expected %lld", (long long)state->ne[0], (long long)C);
    return be->i->token_shift(be, dst, x, mix, state, slots, n_tok);
}

enum rwkv7_status rwkv7_op_unary(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                 const struct rwkv7_tensor *x, const struct rwkv7_tensor *bias,
                                 enum rwkv7_unary fn) {
    RWKV7_TRY(need_entry(be, "unary", (const void *)be->i->unary));
    RWKV7_TRY(need_f32("unary", x));
    RWKV7_TRY(need_shape("unary", dst, x->ne[0], rwkv7_tensor_nrows(x)));
    if (bias) RWKV7_TRY(need_shape("unary", bias, x->ne[0], 1));
    if ((int)fn < 0 || fn > RWKV7_UNARY_DECAY) return rwkv7_fail(RWKV7_ERR_ARG, "unary: bad function %d", (int)fn);
    return be->i->unary(be, dst, x, bias, fn);
}

enum rwkv7_status rwkv7_op_binary(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                  const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                                  enum rwkv7_binary fn) {
    RWKV7_TRY(need_entry(be, "binary", (const void *)be->i->binary));
    RWKV7_TRY(need_f32("binary", a));
    RWKV7_TRY(need_shape("binary", dst, a->ne[0], rwkv7_tensor_nrows(a)));
    RWKV7_TRY(need_f32("binary", b));
    if (b->ne[0] != a->ne[0] || (rwkv7_tensor_nrows(b) != 1 && rwkv7_tensor_nrows(b) != rwkv7_tensor_nrows(a)))
        return rwkv7_fail(RWKV7_ERR_ARG, "binary: operand '%s' does not broadcast to '%s'", tname(b), tname(a));
    if ((int)fn < 0 || fn > RWKV7_BINARY_MUL) return rwkv7_fail(RWKV7_ERR_ARG, "binary: bad function %d", (int)fn);
    return be->i->binary(be, dst, a, b, fn);
}

enum rwkv7_status rwkv7_op_mix(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                               const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                               const struct rwkv7_tensor *t) {
    RWKV7_TRY(need_entry(be, "mix", (const void *)be->i->mix));
    RWKV7_TRY(need_f32("mix", a));
    int64_t C = a->ne[0], rows = rwkv7_tensor_nrows(a);
    RWKV7_TRY(need_shape("mix", b, C, rows));
    RWKV7_TRY(need_shape("mix", t, C, rows));
    RWKV7_TRY(need_shape("mix", dst, C, rows));
    return be->i->mix(be, dst, a, b, t);
}

enum rwkv7_status rwkv7_op_key_prep(struct rwkv7_backend *be, const struct rwkv7_tensor *kk,
                                    const struct rwkv7_tensor *kmod, const struct rwkv7_tensor *k,
                                    const struct rwkv7_tensor *a, const struct rwkv7_tensor *k_k,
                                    const struct rwkv7_tensor *k_a, int head_size) {
    RWKV7_TRY(need_entry(be, "key_prep", (const void *)be->i->key_prep));
    RWKV7_TRY(need_f32("key_prep", k));
    int64_t C = k->ne[0], rows = rwkv7_tensor_nrows(k);
    if (head_size < 1 || C % head_size)
        return rwkv7_fail(RWKV7_ERR_ARG, "key_prep: head size %d does not divide %lld", head_size, (long long)C);
    RWKV7_TRY(need_shape("key_prep", a, C, rows));
    RWKV7_TRY(need_shape("key_prep", kk, C, rows));
    RWKV7_TRY(need_shape("key_prep", kmod, C, rows));
    RWKV7_TRY(need_shape("key_prep", k_k, C, 1));
    RWKV7_TRY(need_shape("key_prep", k_a, C, 1));
    return be->i->key_prep(be, kk, kmod, k, a, k_k, k_a, head_size);
}

enum rwkv7_status rwkv7_op_wkv7(struct rwkv7_backend *be, const struct rwkv7_tensor *y,
                                const struct rwkv7_tensor *state, const struct rwkv7_tensor *slots,
                                const struct rwkv7_tensor *r, const struct rwkv7_tensor *w,
                                const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                const struct rwkv7_tensor *kk, const struct rwkv7_tensor *a,
                                int n_tok, int head_size) {
    RWKV7_TRY(need_entry(be, "wkv7", (const void *)be->i->wkv7));
    RWKV7_TRY(need_slots("wkv7", slots));
    RWKV7_TRY(need_f32("wkv7", r));
    int64_t C = r->ne[0], rows = rwkv7_tensor_nrows(r);
    if (head_size < 1 || C % head_size)
        return rwkv7_fail(RWKV7_ERR_ARG, "wkv7: head size %d does not divide %lld", head_size, (long long)C);
    if (n_tok < 1 || rows != slots->ne[0] * n_tok)
        return rwkv7_fail(RWKV7_ERR_ARG, "wkv7: %lld rows are not %lld sequences x %d tokens",
                          (long long)rows, (long long)slots->ne[0], n_tok);
    const struct rwkv7_tensor *in[] = {w, k, v, kk, a, y};
    for (int i = 0; i < 6; i++) RWKV7_TRY(need_shape("wkv7", in[i], C, rows));
    RWKV7_TRY(need_f32("wkv7", state));
    if (state->ne[0] != C * head_size)
        return rwkv7_fail(RWKV7_ERR_ARG, "wkv7: state rows of %lld, expected %lld", (long long)state->ne[0],
                          (long long)(C * head_size));
    return be->i->wkv7(be, y, state, slots, r, w, k, v, kk, a, n_tok, head_size);
}

enum rwkv7_status rwkv7_op_wkv_out(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *y, const struct rwkv7_tensor *r,
                                   const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                   const struct rwkv7_tensor *g, const struct rwkv7_tensor *r_k,
                                   const struct rwkv7_tensor *ln_w, const struct rwkv7_tensor *ln_b,
                                   int head_size, float eps) {
    RWKV7_TRY(need_entry(be, "wkv_out", (const void *)be->i->wkv_out));
    RWKV7_TRY(need_f32("wkv_out", y));
    int64_t C = y->ne[0], rows = rwkv7_tensor_nrows(y);
    if (head_size < 1 || C % head_size)
        return rwkv7_fail(RWKV7_ERR_ARG, "wkv_out: head size %d does not divide %lld", head_size, (long long)C);
    const struct rwkv7_tensor *in[] = {r, k, v, g, dst};
    for (int i = 0; i < 5; i++) RWKV7_TRY(need_shape("wkv_out", in[i], C, rows));
    const struct rwkv7_tensor *vec[] = {r_k, ln_w, ln_b};
    for (int i = 0; i < 3; i++) RWKV7_TRY(need_shape("wkv_out", vec[i], C, 1));
    return be->i->wkv_out(be, dst, y, r, k, v, g, r_k, ln_w, ln_b, head_size, eps);
}

enum rwkv7_status rwkv7_op_last_rows(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                     const struct rwkv7_tensor *x, int n_tok) {
    RWKV7_TRY(need_entry(be, "last_rows", (const void *)be->i->last_rows));
    RWKV7_TRY(need_f32("last_rows", x));
    int64_t rows = rwkv7_tensor_nrows(x);
    if (n_tok < 1 || rows % n_tok)
        return rwkv7_fail(RWKV7_ERR_ARG, "last_rows: %lld rows are not a multiple of %d tokens", (long long)rows, n_tok);
    RWKV7_TRY(need_shape("last_rows", dst, x->ne[0], rows / n_tok));
    return be->i->last_rows(be, dst, x, n_tok);
}
