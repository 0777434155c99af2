/* fused.c: the Vulkan backend's native fused ops (backend.h): norm_shift, wkv_block and lora_up,
 * each one dispatch on a decode step (one token per sequence; lora_up: up to
 * RWKV7_VK_MATVEC_MAX_T rows). Shapes the single kernels do not cover (prefill runs, LoRA ranks
 * whose staged input exceeds shared memory, weights in different memory blocks or of two types
 * besides f32/f16) run as this backend's own primitives in sequence, the same composition as the generic
 * fallback (runtime/op_debug.c), so every shape stays correct. */
#include <stdio.h>
#include <string.h>

#include "vk.h"

static struct rwkv7_vk *as_vk(struct rwkv7_backend *be) { return (struct rwkv7_vk *)be; }

/* Binds tensor ts[i] to binding i and stores its element offset in offs[i] (NULL: the dummy). */
static enum rwkv7_status bind(struct rwkv7_vk *vk, const char *op, const struct rwkv7_tensor *const *ts, int n,
                              struct rwkv7_vk_arg *vargs, uint32_t *offs) {
    for (int i = 0; i < n; i++) {
        memset(&vargs[i], 0, sizeof vargs[i]);
        offs[i] = 0;
        if (!ts[i]) continue;
        if (ts[i]->nbytes + 256 > UINT32_MAX)
            return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: %s: tensor '%s' is %zu bytes, above the 4 GiB kernel limit",
                              op, ts[i]->name ? ts[i]->name : "(scratch)", ts[i]->nbytes);
        offs[i] = rwkv7_vk_arg_tensor(vk, &vargs[i], ts[i], 4);
    }
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_vk_norm_shift, norm_shift) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    if (args->n_tok != 1) {
        /* A sequence's first row reads the state its last row writes: two kernels order that. */
        return rwkv7_op_compose(be, RWKV7_OP_NORM_SHIFT, args);
    }
    const struct rwkv7_tensor *ts[8] = {args->dst, args->xn, args->x, args->w, args->b, args->mix, args->state, args->slots};
    struct rwkv7_vk_arg vargs[8];
    struct rwkv7_vk_pc_fused pc = {0};
    RWKV7_TRY(bind(vk, "norm_shift", ts, 8, vargs, pc.off));
    pc.c = (uint32_t)args->x->ne[0];
    pc.rows = (uint32_t)args->slots->ne[0];
    pc.n = (uint32_t)rwkv7_tensor_nrows(args->mix);
    pc.eps = args->eps;
    /* writes dst, xn, state */
    return rwkv7_vk_dispatch(vk, "norm_shift", &pc, sizeof pc, vargs, 8, (1u << 0) | (1u << 1) | (1u << 6), pc.rows, 1);
}

RWKV7_OP_SIG(rwkv7_vk_wkv_block, wkv_block) {
    const struct rwkv7_wkv_block_args *a = args;
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    if (a->head_size > RWKV7_VK_WKV_MAX_N)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: wkv7 head size %d above %d", a->head_size, RWKV7_VK_WKV_MAX_N);
    if (a->n_tok != 1) {
        /* Prefill: key_prep, the wkv7 kernel the backend picks for the length (serial or chunked),
         * wkv_out, through the scratch of the op. */
        return rwkv7_op_compose(be, RWKV7_OP_WKV_BLOCK, a);
    }
    const struct rwkv7_tensor *ts[14] = {a->dst, a->state, a->slots, a->r,   a->w,   a->k,    a->v,
                                         a->a,   a->g,     a->k_k,   a->k_a, a->r_k, a->ln_w, a->ln_b};
    struct rwkv7_vk_arg vargs[14];
    struct rwkv7_vk_pc_fused pc = {0};
    RWKV7_TRY(bind(vk, "wkv_block", ts, 14, vargs, pc.off));
    pc.c = (uint32_t)a->r->ne[0];
    pc.rows = (uint32_t)a->slots->ne[0];
    pc.n = (uint32_t)a->head_size;
    pc.n2 = (uint32_t)a->n_tok;
    pc.eps = a->eps;
    const char *name = a->head_size <= 64 ? "wkv_block_n64" : "wkv_block_n128";
    return rwkv7_vk_dispatch(vk, name, &pc, sizeof pc, vargs, 14, (1u << 0) | (1u << 1), pc.rows * (pc.c / pc.n), 1);
}

static enum rwkv7_status lora_up_rows(struct rwkv7_backend *be, const struct rwkv7_lora_up_args *a) {
    struct rwkv7_vk *vk = as_vk(be);
    uint32_t T = (uint32_t)rwkv7_tensor_nrows(a->u[0].x);
    /* One kernel when the rows fit the matvec width, every weight has the same type and lives in
     * one memory block (read through one binding), and each staged input fits. */
    bool one = T >= 1 && T <= RWKV7_VK_MATVEC_MAX_T; /* its pipelines exist for T = 1..MAX_T */
    /* The variant: the one type that is not f32/f16 (those any variant reads), else f16. */
    int vtype = RWKV7_DTYPE_F16;
    for (int i = 0; i < a->n; i++) {
        int t = a->u[i].w->type;
        if (t == RWKV7_DTYPE_F32 || t == RWKV7_DTYPE_F16) continue;
        if (vtype != RWKV7_DTYPE_F16 && vtype != t) one = false;
        vtype = t;
    }
    struct rwkv7_buf *alias = NULL;
    VkDeviceSize lo = ~(VkDeviceSize)0, hi = 0;
    for (int i = 0; i < a->n && one; i++) {
        const struct rwkv7_tensor *w = a->u[i].w;
        one = w->buf->block >= 0 && w->buf->block == a->u[0].w->buf->block &&
              (uint64_t)w->ne[0] * T <= RWKV7_VK_LORA_MAX_XS && w->ne[0] < 65536;
        VkDeviceSize b0 = w->buf->block_offs + w->offs;
        if (b0 < lo) lo = b0;
        if (b0 + w->nbytes > hi) hi = b0 + w->nbytes;
    }
    if (one) alias = rwkv7_vk_block_alias(vk, a->u[0].w->buf);
    VkDeviceSize align = vk->props.limits.minStorageBufferOffsetAlignment;
    if (align < 4) align = 4;
    if (one && alias) {
        lo = lo / align * align;
        hi = (hi + 3) / 4 * 4;
        one = hi - lo <= vk->props.limits.maxStorageBufferRange && hi <= alias->size && align <= 1024;
    }
    if (!one || !alias) return rwkv7_op_compose(be, RWKV7_OP_LORA_UP, a);

    struct rwkv7_vk_arg vargs[16];
    memset(vargs, 0, sizeof vargs);
    struct rwkv7_vk_pc_lora pc = {0};
    vargs[0] = (struct rwkv7_vk_arg){alias, lo, hi - lo};
    vargs[1] = (struct rwkv7_vk_arg){vk->tables, 0, RWKV7_VK_TAB_WORDS * 4};
    const struct rwkv7_tensor *ts[14] = {0};
    for (int i = 0; i < a->n; i++) {
        ts[i] = a->u[i].dst;
        ts[4 + i] = a->u[i].x;
        ts[8 + i] = a->u[i].bias;
    }
    if (a->vres != RWKV7_LORA_VRES_NONE) ts[12] = a->v, ts[13] = a->v_first;
    uint32_t offs[14];
    RWKV7_TRY(bind(vk, "lora_up", ts, 14, vargs + 2, offs));
    uint32_t blocks = 0;
    for (int i = 0; i < a->n; i++) {
        const struct rwkv7_tensor *w = a->u[i].w;
        pc.w_off[i] = (uint32_t)(w->buf->block_offs + w->offs - lo);
        pc.row_bytes[i] = (uint32_t)rwkv7_dtype_row_bytes(w->type, w->ne[0]);
        pc.kf[i] = (uint32_t)w->ne[0] | (uint32_t)(a->u[i].in_fn + 1) << 16 | (uint32_t)(a->u[i].out_fn + 1) << 20 |
                   (a->u[i].bias ? 1u : 0u) << 24 |
                   (w->type == vtype ? 0u : w->type == RWKV7_DTYPE_F32 ? 1u : 2u) << 25;
        pc.m[i] = (uint32_t)w->ne[1];
        blocks += (pc.m[i] + RWKV7_VK_WG_LORA - 1) / RWKV7_VK_WG_LORA;
        pc.blk_end[i] = blocks;
    }
    for (int i = 0; i < 14; i++) {
        RWKV7_ASSERT(offs[i] < 256); /* offsets are below the alignment, checked <= 1024 bytes */
        pc.off[i < 12 ? i / 4 : 3] |= offs[i] << (8 * (i < 12 ? i % 4 : i - 12));
    }
    pc.t = T;
    pc.n = (uint32_t)a->n;
    pc.vres = a->vres >= 0 ? (uint32_t)a->vres : a->vres == RWKV7_LORA_VRES_RECORD ? RWKV7_VK_LORA_RECORD : RWKV7_VK_LORA_NONE;
    pc.c = a->v ? (uint32_t)a->v->ne[0] : 0;
    if (a->vres == RWKV7_LORA_VRES_RECORD) blocks += (pc.c * T + RWKV7_VK_WG_LORA - 1) / RWKV7_VK_WG_LORA;
    char name[32];
    snprintf(name, sizeof name, "lora_up_%s+u%u", rwkv7_vk_type_suffix[vtype], T); /* specialized for T rows */
    /* writes: the dst bindings 2..5, then v (mix) or v_first (record) */
    uint32_t writes = (0xFu << 2) | (a->vres >= 0 ? 1u << 14 : 0u) | (a->vres == RWKV7_LORA_VRES_RECORD ? 1u << 15 : 0u);
    return rwkv7_vk_dispatch(vk, name, &pc, sizeof pc, vargs, 16, writes, blocks, 1);
}

/* Rows r0 .. r0 + n of a contiguous (K, T) tensor. */
static struct rwkv7_tensor row_slice(const struct rwkv7_tensor *t, int64_t r0, int64_t n) {
    struct rwkv7_tensor v = *t;
    size_t row = (size_t)t->ne[0] * sizeof(float);
    v.ne[1] = n, v.ne[2] = v.ne[3] = 1;
    v.offs += (size_t)r0 * row;
    v.nbytes = (size_t)n * row;
    return v;
}

/* The kernel sums each output row in the same order whatever the row count (one invocation per
 * output row walks its columns with separate sums), so in the batch-invariant mode every run goes
 * through it in slices of MATVEC_MAX_T rows, as the matmul does: a row's bits are then the same in
 * a decode step, a longer run and either mode (test_graphs flips the mode on one model). */
RWKV7_OP_SIG(rwkv7_vk_lora_up, lora_up) {
    const struct rwkv7_lora_up_args *a = args;
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    int64_t T = rwkv7_tensor_nrows(a->u[0].x);
    if (!vk->row_invariant || T <= RWKV7_VK_MATVEC_MAX_T) return lora_up_rows(be, a);
    for (int64_t r0 = 0; r0 < T; r0 += RWKV7_VK_MATVEC_MAX_T) {
        int64_t n = T - r0 < RWKV7_VK_MATVEC_MAX_T ? T - r0 : RWKV7_VK_MATVEC_MAX_T;
        struct rwkv7_tensor x[RWKV7_LORA_UP_MAX], d[RWKV7_LORA_UP_MAX], v, vf;
        struct rwkv7_lora_up_args s = *a;
        for (int i = 0; i < a->n; i++) {
            x[i] = row_slice(a->u[i].x, r0, n), d[i] = row_slice(a->u[i].dst, r0, n);
            s.u[i].x = &x[i], s.u[i].dst = &d[i];
        }
        if (a->v) v = row_slice(a->v, r0, n), s.v = &v;
        if (a->v_first) vf = row_slice(a->v_first, r0, n), s.v_first = &vf;
        RWKV7_TRY(lora_up_rows(be, &s));
    }
    return RWKV7_OK;
}

_Static_assert(sizeof(struct rwkv7_vk_pc_fused) == 96, "abi.h: fused push layout");
_Static_assert(sizeof(struct rwkv7_vk_pc_lora) == 112, "abi.h: lora_up push layout");
