/* test_gpu_model.c: every fixture GGUF end to end on each GPU backend this build has (Vulkan,
 * CUDA), with the same limits and invariances as the CPU (model_check.h): reference logits for
 * prefill and token-by-token decoding, chunked prefill == serial decode, batching. Skips (77) when
 * no GPU backend can start here, saying why. */
#include "backend.h"
#include "model_check.h"

int main(void) {
    int ran = 0;
    const struct rwkv7_backend_reg *r;
    for (int i = 0; (r = rwkv7_backend_reg_get(i)) != NULL; i++) {
        if (!r->gpu) continue;
        struct rwkv7_backend *be = NULL;
        enum rwkv7_status st = rwkv7_backend_init(r->name, NULL, 1, true, &be);
        if (st != RWKV7_OK) {
            fprintf(stderr, "%s: not available: %s\n", r->name, rwkv7_last_error());
            continue;
        }
        fprintf(stderr, "%s: %s\n", r->name, be->desc);
        rwkv7_backend_free(be);
        check_invariance(r->name);
        check_all_fixtures(r->name);
        ran++;
    }
    if (!ran) TEST_SKIP("no GPU backend (Vulkan or CUDA) could start on this machine");
    return test_finish("test_gpu_model");
}
