/* test_model.c: end-to-end logits of every fixture GGUF on the CPU backend (model_check.h), plus
 * the trained tiny model against rwkv.cpp's own expected logits after `"in`. */
#include "model_check.h"

int main(void) {
    check_all_fixtures("cpu");
    check_invariance("cpu");

    /* rwkv.cpp's reference: 256 logits after tokens 34 105 110 on the FP32 tiny model. */
    char g[600], r[600];
    test_fixture(g, sizeof g, "tiny-rwkv7-834K/tiny-rwkv7-834K-F32.gguf");
    test_fixture(r, sizeof r, "tiny-rwkv7-834K/rwkvcpp-expected-logits-after-quote-i-n.f32");
    struct rwkv7_model_params mp = {"cpu", NULL, 1, false, true};
    struct rwkv7_model *m = NULL;
    CHECK(rwkv7_model_load(g, &mp, &m) == RWKV7_OK, "load: %s", rwkv7_last_error());
    size_t n = 0;
    float *ref = test_read_file(r, &n);
    CHECK(ref && n == 256 * sizeof(float), "reference size %zu", n);
    if (m && ref) {
        struct rwkv7_ctx *ctx = NULL;
        CHECK(rwkv7_ctx_init(m, 1, &ctx) == RWKV7_OK, "ctx");
        int32_t ids[3] = {34, 105, 110};
        float out[256];
        int slot = 0;
        CHECK(rwkv7_ctx_eval(ctx, 1, &slot, 3, ids, RWKV7_LOGITS_LAST, out) == RWKV7_OK, "eval");
        double md = 0;
        for (int i = 0; i < 256; i++) md = fmax(md, fabs(out[i] - ref[i]));
        fprintf(stderr, "  rwkv.cpp expected logits: max |diff| %.3g\n", md);
        /* llama.cpp matches this file to 2.4e-7; fp32 with different summation orders. */
        CHECK(md <= 1e-5, "rwkv.cpp logits differ by %.3g", md);
        rwkv7_ctx_free(ctx);
        uint64_t mem_free = 0, mem_total = 0;
        CHECK(rwkv7_model_device_memory(m, &mem_free, &mem_total) == RWKV7_OK && mem_total > 0 && mem_free <= mem_total,
              "device memory: free %llu of %llu", (unsigned long long)mem_free, (unsigned long long)mem_total);
    }
    free(ref);
    rwkv7_model_free(m);
    return test_finish("test_model");
}
