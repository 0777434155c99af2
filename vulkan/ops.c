/* ops.c: the compute entries of the Vulkan vtable. Each picks a shader variant, fills its abi.h
 * push struct (offsets of each tensor inside its bound range) and calls rwkv7_vk_dispatch().
 * Shapes were checked by runtime/backend.c; only kernel limits are checked here (32-bit element
 * offsets, head size <= RWKV7_VK_WKV_MAX_N). */
#include <stdlib.h>
#include <string.h>

#include "vk.h"

/* Shader variant suffix per weight type (shaders/variants.cmake builds the same list from
 * dtype.h's RWKV7_WEIGHT_TYPE_LIST); NULL = no variant. */
#define RWKV7_X_(T, n, cu, vk, unused) RWKV7_VK_SUFFIX_##vk(T, n)
#define RWKV7_VK_SUFFIX_1(T, n) [RWKV7_DTYPE_##T] = #n,
#define RWKV7_VK_SUFFIX_0(T, n)
const char *const rwkv7_vk_type_suffix[RWKV7_DTYPE_COUNT] = {RWKV7_WEIGHT_TYPE_LIST(RWKV7_X_, 0)};
#undef RWKV7_X_
#undef RWKV7_VK_SUFFIX_1
#undef RWKV7_VK_SUFFIX_0

static struct rwkv7_vk *as_vk(struct rwkv7_backend *be) { return (struct rwkv7_vk *)be; }

bool rwkv7_vk_supports(struct rwkv7_backend *be, enum rwkv7_op op, int wtype) {
    (void)be;
    if (op == RWKV7_OP_MATMUL || op == RWKV7_OP_EMBED)
        return wtype >= 0 && wtype < RWKV7_DTYPE_COUNT && rwkv7_vk_type_suffix[wtype] != NULL;
    return (int)op >= 0 && (int)op < RWKV7_OP_COUNT;
}

/* Offsets are 32-bit in the shaders: every bound range must stay below 4 GiB of elements. */
static enum rwkv7_status check_u32(const char *op, const struct rwkv7_tensor *t) {
    if (t && t->nbytes + 256 > UINT32_MAX)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: %s: tensor '%s' is %zu bytes, above the 4 GiB kernel limit",
                          op, t->name ? t->name : "(scratch)", t->nbytes);
    return RWKV7_OK;
}

/* Fills vargs[i] / pc->off[i] for each tensor in ts (NULL = dummy binding, offset 0). */
static enum rwkv7_status bind_all(struct rwkv7_vk *vk, const char *op, const struct rwkv7_tensor *const *ts, int n,
                                  struct rwkv7_vk_arg *vargs, uint32_t *offs) {
    for (int i = 0; i < n; i++) {
        memset(&vargs[i], 0, sizeof vargs[i]);
        if (offs) offs[i] = 0;
        if (!ts[i]) continue;
        RWKV7_TRY(check_u32(op, ts[i]));
        uint32_t o = rwkv7_vk_arg_tensor(vk, &vargs[i], ts[i], 4);
        if (offs) offs[i] = o;
    }
    return RWKV7_OK;
}

static uint32_t ceil_div(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

RWKV7_OP_SIG(rwkv7_vk_embed, embed) {
    const struct rwkv7_tensor *dst = args->dst, *table = args->table, *tokens = args->tokens;
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    RWKV7_TRY(check_u32("embed", table));
    char name[32];
    snprintf(name, sizeof name, "embed_%s", rwkv7_vk_type_suffix[table->type]);
    struct rwkv7_vk_arg vargs[4] = {0};
    struct rwkv7_vk_pc_embed pc = {0};
    pc.c = (uint32_t)table->ne[0];
    pc.t = (uint32_t)tokens->ne[0];
    pc.w_off = rwkv7_vk_arg_tensor(vk, &vargs[0], table, 2);
    pc.w_off *= 2; /* bytes */
    pc.row_bytes = (uint32_t)rwkv7_dtype_row_bytes(table->type, table->ne[0]);
    pc.tok_off = rwkv7_vk_arg_tensor(vk, &vargs[1], tokens, 4);
    pc.d_off = rwkv7_vk_arg_tensor(vk, &vargs[2], dst, 4);
    pc.n_rows = (uint32_t)table->ne[1];
    vargs[3] = (struct rwkv7_vk_arg){vk->tables, 0, RWKV7_VK_TAB_WORDS * 4};
    uint64_t n = (uint64_t)ceil_div(pc.c, 32) * pc.t;
    return rwkv7_vk_dispatch(vk, name, &pc, sizeof pc, vargs, 4, 1u << 2, ceil_div(n, 64), 1);
}

/* ---- matvec (T <= RWKV7_VK_MATVEC_MAX_T, and every T in the batch-invariant mode) ---- */

#define MV_PARTIALS (1u << 20)   /* floats of split-K partial sums (4 MiB, made on first use) */
#define MV_TARGET_WG 512         /* split K until a product group has this many workgroups ... */
#define MV_MIN_SPLIT 512         /* ... while each split keeps at least this many elements */
#define MV_MAX_SPLIT 16

/* The staging budget: what is left of the device's shared memory after the kernel's reduction
 * array (MATVEC_MAX_T * 4 * 32 floats), at most 16 KiB (8 rows of a 512-weight sweep: the Q4_K /
 * Q6_K sweep of 32 lanes), so a workgroup stays small enough for several per compute unit. */
uint32_t rwkv7_vk_matvec_stage(uint32_t shared_bytes, bool cpu_device, const char *env, const char **why) {
    const uint32_t red = RWKV7_VK_MATVEC_MAX_T * 4 * 32 * 4, cap = 16 * 1024;
    bool on = !cpu_device;
    const char *w = cpu_device ? "off on CPU devices" : "on (GPU)";
    if (env && (!strcmp(env, "0") || !strcmp(env, "1"))) {
        on = env[0] == '1';
        w = on ? "forced on by RWKV7_VK_MATVEC_STAGE" : "forced off by RWKV7_VK_MATVEC_STAGE";
    } else if (env && *env) {
        w = "RWKV7_VK_MATVEC_STAGE is not 0 or 1: ignored";
    }
    uint32_t budget = shared_bytes > red ? (shared_bytes - red < cap ? shared_bytes - red : cap) / 4 : 0;
    if (on && budget == 0) w = "off: no shared memory left";
    if (why) *why = w;
    return on ? budget : 0;
}

uint32_t rwkv7_vk_matvec_pick_lpr(uint32_t subgroup_size, bool subgroup_arith, const char *env, const char **why) {
    const uint32_t sg = subgroup_size, lpr = RWKV7_VK_MATVEC_LPR;
    uint32_t pick = subgroup_arith && sg > lpr && sg <= RWKV7_VK_WG_MATVEC ? sg : lpr;
    const char *w = pick == lpr ? "32 lanes per row" : "the subgroup size";
    /* At least 32: a slot's first NT * NR <= 32 lanes write its outputs (matvec.comp). */
    if (env && (!strcmp(env, "32") || !strcmp(env, "64") || !strcmp(env, "128"))) {
        uint32_t e = (uint32_t)atoi(env);
        if (e >= pick || !subgroup_arith) pick = e, w = "forced by RWKV7_VK_MATVEC_LPR";
        else w = "RWKV7_VK_MATVEC_LPR below the subgroup size: ignored";
    } else if (env && *env) {
        w = "RWKV7_VK_MATVEC_LPR is not 32, 64 or 128: ignored";
    }
    if (why) *why = w;
    return pick;
}

/* One product of a matvec group: dst = W x in mode (0 set, 1 accumulate, 2 relu^2). */
struct mv_prod {
    const struct rwkv7_tensor *dst, *w, *x;
    uint32_t mode;
};

/* Products per dispatch for a weight type: matvec_unit.glsl decodes the common types from any
 * of the four weight bindings; the others (dequant.glsl's dq32) from binding 0 only. */
static int mv_max_n(int type) {
    switch (type) {
    case RWKV7_DTYPE_F32: case RWKV7_DTYPE_F16: case RWKV7_DTYPE_BF16: case RWKV7_DTYPE_Q8_0:
    case RWKV7_DTYPE_Q4_0: case RWKV7_DTYPE_Q4_1: case RWKV7_DTYPE_Q5_0: case RWKV7_DTYPE_Q5_1:
    case RWKV7_DTYPE_IQ4_NL: case RWKV7_DTYPE_Q4_K: case RWKV7_DTYPE_Q5_K: case RWKV7_DTYPE_Q6_K:
        return RWKV7_VK_MATVEC_MAX_N;
    default: return 1;
    }
}

/* Rows per row slot of the matvec (matvec.comp's NR): 4, but 1 for the dq32 types (a lane unit
 * of eight vec4). */
static uint32_t mv_nr(int type) { return mv_max_n(type) > 1 ? 4 : 1; }

/* K splits for a group of n_rg row groups at row length k: a GPU needs hundreds of workgroups in
 * flight, so narrow matrices (the LoRA downs) and long rows (FFN value) give each row several
 * workgroups. Depends on the shapes only, never on t: the batch-invariant mode needs every row
 * summed in the same order at every t. k_split is a multiple of 256 (every block size). */
static void mv_split(uint32_t k, uint32_t n_rg, uint32_t *n_split, uint32_t *k_split) {
    uint32_t s = 1;
    while (s < MV_MAX_SPLIT && n_rg * s < MV_TARGET_WG && k / (2 * s) >= MV_MIN_SPLIT) s *= 2;
    uint32_t ks = (ceil_div(k, s) + 255) / 256 * 256;
    *k_split = ks;
    *n_split = ceil_div(k, ks);
}

/* One dispatch (plus the reduce pass when split) for n <= mv_max_n products of one type, one k
 * and one row count t <= MATVEC_MAX_T, starting r rows into each x / dst. */
static enum rwkv7_status mv_dispatch(struct rwkv7_vk *vk, const struct mv_prod *ps, int n, uint32_t r, uint32_t t) {
    const struct rwkv7_tensor *w0 = ps[0].w;
    struct rwkv7_vk_arg vargs[RWKV7_VK_MAX_BINDINGS] = {0};
    struct rwkv7_vk_pc_matvec pc = {0};
    pc.k = (uint32_t)w0->ne[0];
    pc.t = t;
    pc.n = (uint32_t)n;
    uint32_t rpw = RWKV7_VK_WG_MATVEC / rwkv7_vk_matvec_lpr(vk) * mv_nr(w0->type), n_rg = 0, sum_m = 0, d_writes = 1u << 13;
    /* The aligned pipeline (matvec.comp's ALIGNED) when every activation row and every float weight
     * row starts on a 16-byte boundary, quantized weights on a 4-byte one (whole words for blocks
     * of a multiple of 4 bytes), and k % 8 == 0 (whole vector units): what real models give. */
    bool float_w = w0->type == RWKV7_DTYPE_F32 || w0->type == RWKV7_DTYPE_F16 || w0->type == RWKV7_DTYPE_BF16;
    uint32_t row_bytes = (uint32_t)rwkv7_dtype_row_bytes(w0->type, w0->ne[0]);
    bool aligned = pc.k % 8 == 0 && (!float_w || row_bytes % 16 == 0);
    for (int i = 0; i < n; i++) {
        pc.m[i] = (uint32_t)ps[i].w->ne[1];
        pc.w_off[i] = rwkv7_vk_arg_tensor(vk, &vargs[i], ps[i].w, 2) * 2;
        pc.x_off[i] = rwkv7_vk_arg_tensor(vk, &vargs[4 + i], ps[i].x, 4) + r * pc.k;
        pc.d_off[i] = rwkv7_vk_arg_tensor(vk, &vargs[8 + i], ps[i].dst, 4) + r * pc.m[i];
        pc.mode[i] = ps[i].mode;
        aligned = aligned && pc.x_off[i] % 4 == 0 && pc.w_off[i] % (float_w ? 16 : 4) == 0;
        n_rg += ceil_div(pc.m[i], rpw);
        sum_m += pc.m[i];
    }
    for (int i = 0; i < RWKV7_VK_MATVEC_MAX_N; i++) d_writes |= 1u << (8 + i);
    /* Slots of absent products repeat product 0's ranges, and the partial-sum slot takes dst 0's
     * when K is not split: the shader declares them all (as written, for the outputs), so the
     * dependency tracking (and the synchronization validation) must see real, tracked ranges,
     * never the shared dummy buffer. */
    for (int i = n; i < RWKV7_VK_MATVEC_MAX_N; i++) vargs[i] = vargs[0], vargs[4 + i] = vargs[4], vargs[8 + i] = vargs[8];
    vargs[12] = (struct rwkv7_vk_arg){vk->tables, 0, RWKV7_VK_TAB_WORDS * 4};
    vargs[13] = vargs[8];
    mv_split(pc.k, n_rg, &pc.n_split, &pc.k_split);
    if ((uint64_t)pc.n_split * t * sum_m > MV_PARTIALS) pc.n_split = 1, pc.k_split = pc.k;
    bool sg = vk->subgroup_arith && vk->subgroup_size >= 4 && vk->subgroup_size <= RWKV7_VK_WG_MATVEC;
    /* Q4_K / Q5_K lanes take two-word units (16 weights, matvec.comp) unless a K range's count of
     * them is not a multiple of the lanes per row (k = 768: 48), then one-word units ("n"). */
    bool narrow = false;
    if (w0->type == RWKV7_DTYPE_Q4_K || w0->type == RWKV7_DTYPE_Q5_K) {
        uint32_t lpr = rwkv7_vk_matvec_lpr(vk), last = pc.k - (pc.n_split - 1) * pc.k_split;
        narrow = (pc.k_split / 16) % lpr != 0 || (last / 16) % lpr != 0;
    }
    char name[40]; /* "+a<t>" / "+u<t>": the aligned or general pipeline specialized for t rows */
    snprintf(name, sizeof name, "matvec_%s%s+%c%u%s", rwkv7_vk_type_suffix[w0->type], sg ? "_sg" : "", aligned ? 'a' : 'u',
             t, narrow ? "n" : "");
    if (pc.n_split == 1)
        return rwkv7_vk_dispatch(vk, name, &pc, sizeof pc, vargs, RWKV7_VK_MAX_BINDINGS, d_writes, n_rg, 1);
    if (!vk->partials) RWKV7_TRY(rwkv7_vk_make_buffer(vk, MV_PARTIALS * sizeof(float), false, &vk->partials));
    vargs[13] = (struct rwkv7_vk_arg){vk->partials, 0, (VkDeviceSize)pc.n_split * t * sum_m * sizeof(float)};
    RWKV7_TRY(rwkv7_vk_dispatch(vk, name, &pc, sizeof pc, vargs, RWKV7_VK_MAX_BINDINGS, d_writes | 1u << 13,
                                n_rg * pc.n_split, 1));
    return rwkv7_vk_dispatch(vk, "matvec_reduce", &pc, sizeof pc, vargs, RWKV7_VK_MAX_BINDINGS, d_writes,
                             ceil_div((uint64_t)t * sum_m, RWKV7_VK_WG_ELEM), 1);
}

/* Products of one type, one k and one row count: dispatches of up to mv_max_n products, each
 * over slices of MATVEC_MAX_T rows. The matvec kernel sums each row in the same order whatever
 * t is (and splits K by shape only), so slicing gives every row the bits it gets alone: that is
 * the batch-invariant mode. */
static enum rwkv7_status mv_group(struct rwkv7_vk *vk, const struct mv_prod *ps, int n) {
    uint32_t t_all = (uint32_t)rwkv7_tensor_nrows(ps[0].x);
    for (int i = 0; i < n; i++) {
        const struct rwkv7_tensor *ts[3] = {ps[i].w, ps[i].x, ps[i].dst};
        for (int j = 0; j < 3; j++) RWKV7_TRY(check_u32("matmul", ts[j]));
    }
    int step = mv_max_n(ps[0].w->type);
    for (uint32_t r = 0; r < t_all; r += RWKV7_VK_MATVEC_MAX_T) {
        uint32_t t = t_all - r < RWKV7_VK_MATVEC_MAX_T ? t_all - r : RWKV7_VK_MATVEC_MAX_T;
        for (int i = 0; i < n; i += step) RWKV7_TRY(mv_dispatch(vk, ps + i, n - i < step ? n - i : step, r, t));
    }
    return RWKV7_OK;
}

static bool use_matvec(const struct rwkv7_vk *vk, const struct rwkv7_tensor *x) {
    return rwkv7_tensor_nrows(x) <= RWKV7_VK_MATVEC_MAX_T || vk->row_invariant;
}

/* dst = W x; mode 1: dst += W x; mode 2: dst = max(W x, 0)^2 (the fused ffn_key epilogue). */
static enum rwkv7_status vk_matmul(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *w, const struct rwkv7_tensor *x, uint32_t mode) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    if (use_matvec(vk, x)) {
        struct mv_prod p = {dst, w, x, mode};
        return mv_group(vk, &p, 1);
    }
    const struct rwkv7_tensor *ts[3] = {w, x, dst};
    for (int i = 0; i < 3; i++) RWKV7_TRY(check_u32("matmul", ts[i]));
    struct rwkv7_vk_arg vargs[4] = {0};
    struct rwkv7_vk_pc_matmul pc = {0};
    pc.k = (uint32_t)w->ne[0];
    pc.m = (uint32_t)w->ne[1];
    pc.t = (uint32_t)rwkv7_tensor_nrows(x);
    pc.w_off = rwkv7_vk_arg_tensor(vk, &vargs[0], w, 2) * 2;
    pc.row_bytes = (uint32_t)rwkv7_dtype_row_bytes(w->type, w->ne[0]);
    pc.x_off = rwkv7_vk_arg_tensor(vk, &vargs[1], x, 4);
    pc.d_off = rwkv7_vk_arg_tensor(vk, &vargs[2], dst, 4);
    pc.accumulate = mode;
    vargs[3] = (struct rwkv7_vk_arg){vk->tables, 0, RWKV7_VK_TAB_WORDS * 4};
    /* Tiled path: grid x = feature tiles, y = row tiles; cooperative matrices where coopmat.c
     * picked a configuration (same tiles, same grid). */
    char name[32];
    const char *cm = !vk->coopmat ? "" : vk->coopmat_emu ? "cm_emu_" : vk->coopmat_nv ? "cm_nv_" : "cm_";
    snprintf(name, sizeof name, "matmul_%s%s", cm, rwkv7_vk_type_suffix[w->type]);
    /* The emulated test variants exist for a few types only (shaders/variants.cmake). */
    if (vk->coopmat_emu && !rwkv7_vk_has_shader(name))
        snprintf(name, sizeof name, "matmul_%s", rwkv7_vk_type_suffix[w->type]);
    return rwkv7_vk_dispatch(vk, name, &pc, sizeof pc, vargs, 4, 1u << 2, ceil_div(pc.m, RWKV7_VK_MM_TILE_M),
                             ceil_div(pc.t, RWKV7_VK_MM_TILE_T));
}

RWKV7_OP_SIG(rwkv7_vk_matmul, matmul) { return vk_matmul(be, args->dst, args->w, args->x, args->accumulate ? 1u : 0u); }

/* Fused: the matmul kernels with a relu^2 epilogue, one dispatch instead of two. */
RWKV7_OP_SIG(rwkv7_vk_ffn_key, ffn_key) { return vk_matmul(be, args->dst, args->w, args->x, 2u); }

/* Fused: independent products (r/k/v; the LoRA downs): the matvec-sized ones of one weight type,
 * k and row count share dispatches (workgroup ranges per product); the rest run one by one. */
RWKV7_OP_SIG(rwkv7_vk_matmul_n, matmul_n) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    bool done[RWKV7_MATMUL_N_MAX] = {false};
    for (int i = 0; i < args->n; i++) {
        if (done[i]) continue;
        const struct rwkv7_matmul_args *a = &args->m[i];
        if (!use_matvec(vk, a->x)) {
            RWKV7_TRY(vk_matmul(be, a->dst, a->w, a->x, a->accumulate ? 1u : 0u));
            continue;
        }
        struct mv_prod ps[RWKV7_MATMUL_N_MAX] = {{0}};
        int n = 0;
        for (int j = i; j < args->n; j++) {
            const struct rwkv7_matmul_args *b = &args->m[j];
            if (done[j] || b->w->type != a->w->type || b->w->ne[0] != a->w->ne[0] ||
                rwkv7_tensor_nrows(b->x) != rwkv7_tensor_nrows(a->x))
                continue;
            ps[n++] = (struct mv_prod){b->dst, b->w, b->x, b->accumulate ? 1u : 0u};
            done[j] = true;
        }
        RWKV7_TRY(mv_group(vk, ps, n));
    }
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_vk_norm, norm) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *w = args->w, *b = args->b;
    int n_groups = args->n_groups;
    float eps = args->eps;
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    const struct rwkv7_tensor *ts[4] = {dst, x, w, b};
    struct rwkv7_vk_arg vargs[4];
    struct rwkv7_vk_pc_elem pc = {0};
    RWKV7_TRY(bind_all(vk, "norm", ts, 4, vargs, pc.off));
    pc.c = (uint32_t)x->ne[0];
    pc.rows = (uint32_t)rwkv7_tensor_nrows(x);
    pc.n = (uint32_t)n_groups;
    pc.eps = eps;
    return rwkv7_vk_dispatch(vk, "norm", &pc, sizeof pc, vargs, 4, 1u << 0, pc.rows * pc.n, 1);
}

/* Elementwise dispatch over n_elem elements; bit i of writes: ts[i] is written. */
static enum rwkv7_status elem(struct rwkv7_vk *vk, const char *name, const struct rwkv7_tensor *const *ts, int n,
                              uint32_t writes, struct rwkv7_vk_pc_elem *pc, uint64_t n_elem) {
    RWKV7_TRY(rwkv7_vk_alive(vk));
    struct rwkv7_vk_arg vargs[RWKV7_VK_MAX_BINDINGS];
    RWKV7_TRY(bind_all(vk, name, ts, n, vargs, pc->off));
    return rwkv7_vk_dispatch(vk, name, pc, sizeof *pc, vargs, n, writes, ceil_div(n_elem, RWKV7_VK_WG_ELEM), 1);
}

RWKV7_OP_SIG(rwkv7_vk_token_shift, token_shift) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *mix = args->mix,
                              *state = args->state, *slots = args->slots;
    int n_tok = args->n_tok;
    struct rwkv7_vk *vk = as_vk(be);
    const struct rwkv7_tensor *ts[5] = {dst, x, mix, state, slots};
    struct rwkv7_vk_pc_elem pc = {0};
    pc.c = (uint32_t)x->ne[0];
    pc.rows = (uint32_t)rwkv7_tensor_nrows(x);
    pc.n = (uint32_t)n_tok;
    pc.n2 = (uint32_t)rwkv7_tensor_nrows(mix);
    RWKV7_TRY(elem(vk, "token_shift", ts, 5, 1u << 0, &pc, (uint64_t)pc.c * pc.rows));
    /* Second pass: the state now takes each sequence's last row (it writes what the first pass
     * read, so the dispatch tracking puts a barrier between them). */
    pc.rows = (uint32_t)slots->ne[0];
    return elem(vk, "state_store", ts, 5, 1u << 3, &pc, (uint64_t)pc.c * pc.rows);
}

RWKV7_OP_SIG(rwkv7_vk_unary, unary) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x, *bias = args->bias;
    enum rwkv7_unary fn = args->fn;
    const struct rwkv7_tensor *ts[3] = {dst, x, bias};
    struct rwkv7_vk_pc_elem pc = {0};
    pc.c = (uint32_t)x->ne[0];
    pc.rows = (uint32_t)rwkv7_tensor_nrows(x);
    pc.fn = (uint32_t)fn;
    pc.n2 = bias ? 1 : 0;
    return elem(as_vk(be), "unary", ts, 3, 1u << 0, &pc, (uint64_t)pc.c * pc.rows);
}

RWKV7_OP_SIG(rwkv7_vk_binary, binary) {
    const struct rwkv7_tensor *dst = args->dst, *a = args->a, *b = args->b;
    enum rwkv7_binary fn = args->fn;
    const struct rwkv7_tensor *ts[3] = {dst, a, b};
    struct rwkv7_vk_pc_elem pc = {0};
    pc.c = (uint32_t)a->ne[0];
    pc.rows = (uint32_t)rwkv7_tensor_nrows(a);
    pc.fn = (uint32_t)fn;
    pc.n2 = (uint32_t)rwkv7_tensor_nrows(b);
    return elem(as_vk(be), "binary", ts, 3, 1u << 0, &pc, (uint64_t)pc.c * pc.rows);
}

RWKV7_OP_SIG(rwkv7_vk_mix, mix) {
    const struct rwkv7_tensor *dst = args->dst, *a = args->a, *b = args->b, *t = args->t;
    const struct rwkv7_tensor *ts[4] = {dst, a, b, t};
    struct rwkv7_vk_pc_elem pc = {0};
    pc.c = (uint32_t)a->ne[0];
    pc.rows = (uint32_t)rwkv7_tensor_nrows(a);
    return elem(as_vk(be), "mix", ts, 4, 1u << 0, &pc, (uint64_t)pc.c * pc.rows);
}

RWKV7_OP_SIG(rwkv7_vk_key_prep, key_prep) {
    const struct rwkv7_tensor *kk = args->kk, *kmod = args->kmod, *k = args->k, *a = args->a,
                              *k_k = args->k_k, *k_a = args->k_a;
    int head_size = args->head_size;
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    const struct rwkv7_tensor *ts[6] = {kk, kmod, k, a, k_k, k_a};
    struct rwkv7_vk_arg vargs[6];
    struct rwkv7_vk_pc_elem pc = {0};
    RWKV7_TRY(bind_all(vk, "key_prep", ts, 6, vargs, pc.off));
    pc.c = (uint32_t)k->ne[0];
    pc.rows = (uint32_t)rwkv7_tensor_nrows(k);
    pc.n = (uint32_t)head_size;
    return rwkv7_vk_dispatch(vk, "key_prep", &pc, sizeof pc, vargs, 6, 3u, pc.rows * (pc.c / pc.n), 1);
}

/* wkv7: vulkan/wkv.c */

RWKV7_OP_SIG(rwkv7_vk_wkv_out, wkv_out) {
    const struct rwkv7_tensor *dst = args->dst, *y = args->y, *r = args->r, *k = args->k,
                              *v = args->v, *g = args->g, *r_k = args->r_k, *ln_w = args->ln_w,
                              *ln_b = args->ln_b;
    int head_size = args->head_size;
    float eps = args->eps;
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    const struct rwkv7_tensor *ts[9] = {dst, y, r, k, v, g, r_k, ln_w, ln_b};
    struct rwkv7_vk_arg vargs[9];
    uint32_t offs[9];
    struct rwkv7_vk_pc_elem pc = {0};
    RWKV7_TRY(bind_all(vk, "wkv_out", ts, 9, vargs, offs));
    memcpy(pc.off, offs, sizeof pc.off);
    pc.n2 = offs[8];
    pc.c = (uint32_t)y->ne[0];
    pc.rows = (uint32_t)rwkv7_tensor_nrows(y);
    pc.n = (uint32_t)head_size;
    pc.eps = eps;
    return rwkv7_vk_dispatch(vk, "wkv_out", &pc, sizeof pc, vargs, 9, 1u << 0, pc.rows * (pc.c / pc.n), 1);
}

RWKV7_OP_SIG(rwkv7_vk_last_rows, last_rows) {
    const struct rwkv7_tensor *dst = args->dst, *x = args->x;
    int n_tok = args->n_tok;
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    int64_t n_seq = rwkv7_tensor_nrows(dst);
    size_t row = (size_t)x->ne[0] * sizeof(float);
    RWKV7_TRY(rwkv7_vk_begin(vk));
    rwkv7_vk_barrier_pending(vk);
    VkBufferCopy bc[64];
    for (int64_t s0 = 0; s0 < n_seq; s0 += 64) {
        uint32_t n = 0;
        for (int64_t s = s0; s < n_seq && s < s0 + 64; s++)
            bc[n++] = (VkBufferCopy){.srcOffset = x->offs + ((size_t)s * n_tok + n_tok - 1) * row,
                                     .dstOffset = dst->offs + (size_t)s * row,
                                     .size = row};
        vkCmdCopyBuffer(vk->cmd, x->buf->buffer, dst->buf->buffer, n, bc);
        vk->n_copy++;
    }
    rwkv7_vk_barrier(vk);
    return RWKV7_OK;
}
