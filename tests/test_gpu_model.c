/* test_gpu_model.c: every fixture GGUF end to end on each GPU backend this build has (Vulkan,
 * CUDA), with the same limits and invariances as the CPU (model_check.h): reference logits for
 * prefill and token-by-token decoding, chunked prefill == serial decode, batching. Skips (77) when
 * no GPU backend can start here, saying why. */
#include "backend.h"
#include "model_check.h"

int main(void) {
    const char *names[] = {"vulkan", "cuda"};
    int ran = 0;
    for (int i = 0; i < 2; i++) {
        struct rwkv7_backend *be = NULL;
        enum rwkv7_status st = rwkv7_backend_init(names[i], NULL, 1, true, &be);
        if (st != RWKV7_OK) {
            fprintf(stderr, "%s: not available: %s\n", names[i], rwkv7_last_error());
            continue;
        }
        fprintf(stderr, "%s: %s\n", names[i], be->desc);
        rwkv7_backend_free(be);
        check_invariance(names[i]);
        check_all_fixtures(names[i]);
        ran++;
    }
    if (!ran) TEST_SKIP("no GPU backend (Vulkan or CUDA) could start on this machine");
    return test_finish("test_gpu_model");
}
