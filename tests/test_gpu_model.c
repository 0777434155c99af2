/* test_gpu_model.c: every fixture GGUF end to end on each GPU backend this build has (Vulkan,
 * CUDA), with the same limits and invariances as the CPU (model_check.h): reference logits for
 * prefill and token-by-token decoding, chunked prefill == serial decode, batching; and one fixture
 * under RWKV7_CHECK_RESULTS=1 (every op re-run on the CPU) runs clean. Skips (77) when no GPU
 * backend can start here, saying why. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdlib.h>

#include "backend.h"
#include "model_check.h"

/* Prefill and decode of a fixture with every op checked against the CPU at the op door. */
static void check_results_clean(const char *backend) {
    char path[1024];
    test_fixture(path, sizeof path, "rand-c256-l2/rand-c256-l2-Q4_K_M.gguf");
    setenv("RWKV7_CHECK_RESULTS", "1", 1);
    struct rwkv7_model_params mp = {.backend = backend, .quiet = true, .n_threads = 1};
    struct rwkv7_model *m = NULL;
    enum rwkv7_status st = rwkv7_model_load(path, &mp, &m);
    unsetenv("RWKV7_CHECK_RESULTS");
    CHECK(st == RWKV7_OK, "%s: load with RWKV7_CHECK_RESULTS: %s", backend, rwkv7_last_error());
    if (st != RWKV7_OK) return;
    struct rwkv7_ctx *c = NULL;
    CHECK(rwkv7_ctx_init(m, 1, &c) == RWKV7_OK, "ctx: %s", rwkv7_last_error());
    int32_t ids[12] = {1, 5, 9, 200, 31, 7, 7, 64, 128, 3, 250, 17};
    float *logits = malloc((size_t)rwkv7_model_hparams(m)->n_vocab * sizeof(float));
    int slot = 0;
    st = rwkv7_ctx_eval(c, 1, &slot, 9, ids, RWKV7_LOGITS_LAST, logits);
    for (int t = 9; t < 12 && st == RWKV7_OK; t++) st = rwkv7_ctx_eval(c, 1, &slot, 1, &ids[t], RWKV7_LOGITS_LAST, logits);
    CHECK(st == RWKV7_OK, "%s: RWKV7_CHECK_RESULTS found a difference: %s", backend, rwkv7_last_error());
    free(logits);
    rwkv7_ctx_free(c);
    rwkv7_model_free(m);
}

int main(void) {
    int ran = 0;
    const struct rwkv7_backend_reg *r;
    for (int i = 0; (r = rwkv7_backend_reg_get(i)) != NULL; i++) {
        if (!r->gpu || !r->init) continue;
        struct rwkv7_backend *be = NULL;
        enum rwkv7_status st = rwkv7_backend_init(r->name, NULL, 1, true, &be);
        if (st != RWKV7_OK) {
            fprintf(stderr, "%s: not available: %s\n", r->name, rwkv7_last_error());
            continue;
        }
        fprintf(stderr, "%s: %s\n", r->name, be->desc);
        rwkv7_backend_free(be);
        check_results_clean(r->name);
        check_invariance(r->name);
        check_all_fixtures(r->name);
        ran++;
    }
    if (!ran) TEST_SKIP("no GPU backend (Vulkan or CUDA) could start on this machine");
    return test_finish("test_gpu_model");
}
