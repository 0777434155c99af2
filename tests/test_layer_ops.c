/* test_layer_ops.c: how many backend calls forward.c makes per layer for one decoded token, counted
 * by a recording backend: the CPU backend's table with a counter in front of every entry, once with
 * the fused entries filled (as the CUDA backend has them: each call one kernel at decode, so this
 * is its kernel count per layer) and once without (the generic fallback composes them from the
 * primitives, as the CPU backend runs). The fused entries here run the same primitives in the
 * fallback's order, so both runs must give the same logits bit for bit; the counts must match the
 * layer as forward.c writes it, op by op, so a change that adds a dispatch to the decode path
 * fails here and has to update the documented count (README "The fused layer on CUDA"). */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "status.h"
#include "testing.h"

static const struct rwkv7_backend_i *g_cpu; /* the CPU backend's own table */
static uint64_t g_count[RWKV7_OP_COUNT];

#define RWKV7_X_(U, l)                                                                                                 \
    static RWKV7_OP_SIG(count_##l, l) {                                                                                \
        g_count[RWKV7_OP_##U]++;                                                                                       \
        return g_cpu->l(be, args);                                                                                     \
    }
RWKV7_OP_LIST(RWKV7_X_)
#undef RWKV7_X_

/* The fused entries, one call each, composed of the CPU primitives (op_debug.c's fallback order). */
static RWKV7_OP_SIG(count_matmul_n, matmul_n) {
    g_count[RWKV7_OP_MATMUL_N]++;
    for (int i = 0; i < args->n; i++) RWKV7_TRY(g_cpu->matmul(be, &args->m[i]));
    return RWKV7_OK;
}

static RWKV7_OP_SIG(count_norm_shift, norm_shift) {
    g_count[RWKV7_OP_NORM_SHIFT]++;
    const struct rwkv7_norm_args n = {args->xn, args->x, args->w, args->b, 1, args->eps};
    const struct rwkv7_token_shift_args t = {args->dst, args->xn, args->mix, args->state, args->slots, args->n_tok};
    RWKV7_TRY(g_cpu->norm(be, &n));
    return g_cpu->token_shift(be, &t);
}

static RWKV7_OP_SIG(count_wkv_block, wkv_block) {
    const struct rwkv7_wkv_block_args *a = args;
    g_count[RWKV7_OP_WKV_BLOCK]++;
    const struct rwkv7_key_prep_args kp = {a->kk, a->kmod, a->k, a->a, a->k_k, a->k_a, a->head_size};
    const struct rwkv7_wkv7_args wk = {a->y, a->state, a->slots, a->r, a->w, a->kmod, a->v, a->kk, a->a, a->n_tok,
                                       a->head_size};
    const struct rwkv7_wkv_out_args wo = {a->dst, a->y,    a->r,    a->kmod,      a->v,  a->g,
                                          a->r_k, a->ln_w, a->ln_b, a->head_size, a->eps};
    RWKV7_TRY(g_cpu->key_prep(be, &kp));
    RWKV7_TRY(g_cpu->wkv7(be, &wk));
    return g_cpu->wkv_out(be, &wo);
}

static RWKV7_OP_SIG(count_ffn_key, ffn_key) {
    g_count[RWKV7_OP_FFN_KEY]++;
    const struct rwkv7_matmul_args m = {args->dst, args->w, args->x, false};
    const struct rwkv7_unary_args u = {args->dst, args->dst, NULL, RWKV7_UNARY_RELU_SQR};
    RWKV7_TRY(g_cpu->matmul(be, &m));
    return g_cpu->unary(be, &u);
}

static RWKV7_OP_SIG(count_lora_up, lora_up) {
    g_count[RWKV7_OP_LORA_UP]++;
    for (int i = 0; i < args->n; i++) {
        const struct rwkv7_lora_up_term *u = &args->u[i];
        const struct rwkv7_unary_args in = {u->x, u->x, NULL, (enum rwkv7_unary)u->in_fn};
        const struct rwkv7_matmul_args m = {u->dst, u->w, u->x, false};
        const struct rwkv7_unary_args out = {u->dst, u->dst, u->bias, (enum rwkv7_unary)u->out_fn};
        if (u->in_fn != RWKV7_LORA_NO_FN) RWKV7_TRY(g_cpu->unary(be, &in));
        RWKV7_TRY(g_cpu->matmul(be, &m));
        if (u->out_fn != RWKV7_LORA_NO_FN) RWKV7_TRY(g_cpu->unary(be, &out));
    }
    if (args->vres >= 0) {
        const struct rwkv7_mix_args mx = {args->v, args->v, args->v_first, args->u[args->vres].dst};
        return g_cpu->mix(be, &mx);
    }
    if (args->vres == RWKV7_LORA_VRES_RECORD) {
        const struct rwkv7_last_rows_args cp = {args->v_first, args->v, 1};
        return g_cpu->last_rows(be, &cp);
    }
    return RWKV7_OK;
}

static struct rwkv7_backend_i g_table;

/* Decodes one token after a one-token prompt; returns the calls of the decode step (per op in
 * g_count, the total as the result) and its logits in logits (n_vocab). */
static uint64_t decode_calls(struct rwkv7_model *m, float *logits) {
    struct rwkv7_ctx *c = NULL;
    CHECK(rwkv7_ctx_init(m, 1, &c) == RWKV7_OK, "ctx: %s", rwkv7_last_error());
    if (!c) return 0;
    const int slot = 0;
    const int32_t prompt = 17, next = 200;
    CHECK(rwkv7_ctx_eval(c, 1, &slot, 1, &prompt, RWKV7_LOGITS_LAST, logits) == RWKV7_OK, "%s", rwkv7_last_error());
    memset(g_count, 0, sizeof g_count);
    CHECK(rwkv7_ctx_eval(c, 1, &slot, 1, &next, RWKV7_LOGITS_LAST, logits) == RWKV7_OK, "%s", rwkv7_last_error());
    uint64_t total = 0;
    for (int op = 0; op < RWKV7_OP_COUNT; op++) total += g_count[op];
    rwkv7_ctx_free(c);
    return total;
}

int main(void) {
    char path[1024];
    test_fixture(path, sizeof path, "rand-c256-l2/rand-c256-l2-F32.gguf");
    const struct rwkv7_model_params mp = {.backend = "cpu", .n_threads = 1, .quiet = true};
    struct rwkv7_model *m = NULL;
    if (rwkv7_model_load(path, &mp, &m) != RWKV7_OK) {
        CHECK(0, "load %s: %s", path, rwkv7_last_error());
        return test_finish("test_layer_ops");
    }
    const int L = m->hp.n_layer;
    const size_t V = (size_t)m->hp.n_vocab;
    float *fused = malloc(V * sizeof(float)), *plain = malloc(V * sizeof(float));
    g_cpu = m->be->i;
    g_table = *g_cpu;
#define RWKV7_X_(U, l) g_table.l = count_##l;
    RWKV7_OP_LIST(RWKV7_X_)
    RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    m->be->i = &g_table;

    /* Fused entries present: the layer as forward.c writes it. Per layer: norm_shift x2,
     * matmul_n x2 (r/k/v; the four LoRA downs), lora_up (the decay, a, g and value-residual
     * up-projections with their unaries and the mix; in layer 0 the v_first copy instead),
     * wkv_block, W_o; ffn_key and W_v: 9, layer 0 too. Around the layers: embed, ln0, last_rows,
     * ln_out, head. */
    const uint64_t total = decode_calls(m, fused);
    const uint64_t per_layer = 9, layer0 = 9, outside = 5;
    fprintf(stderr, "  fused entries: %llu calls for %d layers (%llu per layer, layer 0 %llu, %llu outside)\n",
            (unsigned long long)total, L, (unsigned long long)per_layer, (unsigned long long)layer0,
            (unsigned long long)outside);
    CHECK(total == layer0 + (uint64_t)(L - 1) * per_layer + outside, "decode made %llu calls, expected %llu",
          (unsigned long long)total, (unsigned long long)(layer0 + (uint64_t)(L - 1) * per_layer + outside));
    const struct {
        enum rwkv7_op op;
        uint64_t want;
    } k_want[] = {
        {RWKV7_OP_NORM_SHIFT, 2 * (uint64_t)L}, {RWKV7_OP_MATMUL_N, 2 * (uint64_t)L}, {RWKV7_OP_WKV_BLOCK, (uint64_t)L},
        {RWKV7_OP_FFN_KEY, (uint64_t)L},        {RWKV7_OP_UNARY, 0},                   {RWKV7_OP_MATMUL, 2 * (uint64_t)L + 1},
        {RWKV7_OP_MIX, 0},                      {RWKV7_OP_EMBED, 1},                   {RWKV7_OP_NORM, 2},
        {RWKV7_OP_LORA_UP, (uint64_t)L},        {RWKV7_OP_LAST_ROWS, 1},                {RWKV7_OP_KEY_PREP, 0},                {RWKV7_OP_WKV7, 0},
        {RWKV7_OP_WKV_OUT, 0},                  {RWKV7_OP_TOKEN_SHIFT, 0},
    };
    for (size_t i = 0; i < sizeof k_want / sizeof k_want[0]; i++)
        CHECK(g_count[k_want[i].op] == k_want[i].want, "%s: %llu calls, expected %llu", rwkv7_op_name(k_want[i].op),
              (unsigned long long)g_count[k_want[i].op], (unsigned long long)k_want[i].want);

    /* Without fused entries (the CPU backend as it is): the fallback's primitives. */
#define RWKV7_X_(U, l) g_table.l = NULL;
    RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    const uint64_t unfused = decode_calls(m, plain);
    fprintf(stderr, "  generic fallback: %llu calls (%.1f per layer)\n", (unsigned long long)unfused,
            (double)(unfused - outside) / L);
    CHECK(g_count[RWKV7_OP_MATMUL_N] == 0 && g_count[RWKV7_OP_KEY_PREP] == (uint64_t)L, "fallback not taken");
    /* per layer: norm_shift 2 -> 4, matmul_n 2 -> 7 products (6 in layer 0), wkv_block 1 -> 3,
     * ffn_key 1 -> 2, lora_up 1 -> 10 (decay: tanh, matmul, decay; value residual: matmul, sigmoid,
     * mix; a: matmul, sigmoid; g: sigmoid, matmul; layer 0: 8, the v_first copy instead of the
     * value residual): 19 more calls (16 in layer 0) */
    const uint64_t more = 19 * (uint64_t)L - 3;
    CHECK(unfused == total + more, "fallback made %llu calls, expected %llu (each fused call's primitives)",
          (unsigned long long)unfused, (unsigned long long)(total + more));
    CHECK(memcmp(fused, plain, V * sizeof(float)) == 0, "fused entries changed the logits");

    m->be->i = g_cpu;
    free(fused);
    free(plain);
    rwkv7_model_free(m);
    return test_finish("test_layer_ops");
}
