/* test_graphs.c: recorded decode steps (CUDA graphs, Vulkan command buffers) can never go stale.
 * One model per backend (the CPU, which records nothing, and each GPU backend that starts here,
 * lavapipe included), then many contexts created, used and freed in one process: new contexts
 * often land at a freed one's address, a second context lives beside them, scratch grows under a
 * recorded step, and the batch-invariant mode flips (other kernels, so the recording must not be
 * replayed). Every decoded token's logits must equal the first context's bit for bit. A cache
 * keyed by address or replaying across modes would replay steps pointing at freed buffers. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "status.h"
#include "testing.h"

#define N_TOK 10
#define N_CTX 24

static const int32_t k_tokens[N_TOK] = {3, 17, 200, 5, 99, 1, 42, 250, 7, 64};

/* Decodes k_tokens one at a time in slot `slot` of c (a recorded step per token count), writing
 * N_TOK rows of logits. */
static enum rwkv7_status decode(struct rwkv7_ctx *c, int slot, float *logits, int V) {
    RWKV7_TRY(rwkv7_state_reset(c, slot));
    for (int t = 0; t < N_TOK; t++)
        RWKV7_TRY(rwkv7_ctx_eval(c, 1, &slot, 1, &k_tokens[t], RWKV7_LOGITS_LAST, logits + (size_t)t * V));
    return RWKV7_OK;
}

static void run_backend(const char *backend, const char *path) {
    struct rwkv7_model_params mp = {.backend = backend, .quiet = true, .n_threads = 1};
    struct rwkv7_model *m = NULL;
    if (rwkv7_model_load(path, &mp, &m) != RWKV7_OK) {
        fprintf(stderr, "%s: not available: %s\n", backend, rwkv7_last_error());
        return;
    }
    int V = rwkv7_model_hparams(m)->n_vocab;
    fprintf(stderr, "%s: %s\n", backend, rwkv7_model_device_desc(m));
    float *ref = malloc((size_t)N_TOK * V * sizeof(float)), *got = malloc((size_t)N_TOK * V * sizeof(float));
    struct rwkv7_ctx *c0 = NULL;
    CHECK(rwkv7_ctx_init(m, 1, &c0) == RWKV7_OK, "%s: ctx: %s", backend, rwkv7_last_error());
    CHECK(decode(c0, 0, ref, V) == RWKV7_OK, "%s: decode: %s", backend, rwkv7_last_error());
    rwkv7_ctx_free(c0);
    struct rwkv7_ctx *beside = NULL;
    int32_t prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = (int32_t)((i * 37 + 11) % V);
    for (int i = 0; i < N_CTX; i++) {
        int n_slots = 1 + i % 3, slot = n_slots - 1;
        bool invariant = (i / 4) % 2 == 1;
        rwkv7_model_set_batch_invariant(m, invariant);
        if (i % 3 == 0) { /* a second context lives across several rounds */
            rwkv7_ctx_free(beside);
            beside = NULL;
            CHECK(rwkv7_ctx_init(m, 2, &beside) == RWKV7_OK, "%s: ctx: %s", backend, rwkv7_last_error());
        }
        struct rwkv7_ctx *c = NULL;
        CHECK(rwkv7_ctx_init(m, n_slots, &c) == RWKV7_OK, "%s: ctx %d: %s", backend, i, rwkv7_last_error());
        if (!c) break;
        if (i % 5 == 4) {
            /* Record, then grow the scratch (a 40-token prefill in another slot moves every
             * scratch buffer), then decode again: the old recordings must be gone. */
            CHECK(decode(c, slot, got, V) == RWKV7_OK, "%s: decode: %s", backend, rwkv7_last_error());
            int other = n_slots > 1 ? 0 : slot;
            CHECK(rwkv7_ctx_eval(c, 1, &other, 40, prompt, RWKV7_LOGITS_NONE, NULL) == RWKV7_OK, "%s: prefill: %s",
                  backend, rwkv7_last_error());
        }
        CHECK(decode(c, slot, got, V) == RWKV7_OK, "%s: decode %d: %s", backend, i, rwkv7_last_error());
        size_t diff = 0;
        for (size_t j = 0; j < (size_t)N_TOK * V; j++) diff += memcmp(&got[j], &ref[j], sizeof(float)) != 0;
        CHECK(diff == 0, "%s: context %d (%d slots, %s): %zu of %d logits differ from the first context", backend, i,
              n_slots, invariant ? "batch-invariant" : "default mode", diff, N_TOK * V);
        if (i % 2 == 0 && beside) { /* the neighbour keeps decoding in between */
            CHECK(decode(beside, 1, got, V) == RWKV7_OK, "%s: decode beside: %s", backend, rwkv7_last_error());
        }
        rwkv7_ctx_free(c);
    }
    rwkv7_ctx_free(beside);
    rwkv7_model_set_batch_invariant(m, false);
    free(ref);
    free(got);
    rwkv7_model_free(m);
}

int main(void) {
    const char *path = RWKV7_FIXTURES_DIR "/rand-c256-l2/rand-c256-l2-Q4_K_M.gguf";
    const struct rwkv7_backend_reg *r;
    for (int b = 0; (r = rwkv7_backend_reg_get(b)) != NULL; b++)
        if (r->init) run_backend(r->name, path);
    return test_finish("test_graphs");
}
