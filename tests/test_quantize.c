/* test_quantize.c: the quantizers (runtime/quantize*.c). For every type we write: the blocks decode
 * (with our dequantizer, the bit-exact mirror of ggml's) to values whose squared error against the
 * source rows of tests/data/dequant is at most ggml's own quantizer's error on the same rows (its
 * .ref.f32), with a small margin; a second quantization of the decoded values changes nothing
 * that matters (error stays tiny); non-finite input never yields a non-finite block; bad row
 * lengths and unsupported types are refused. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "dtype.h"
#include "quantize.h"
#include "testing.h"

#define ROWS 8
#define COLS 1024

static double sq_err(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

/* ours / ggml's squared error allowed per type (1.0 = no worse) */
static const struct {
    const char *name;
    double max_ratio;
} types[] = {
    {"f16", 1.0},    {"bf16", 1.0},   {"q8_0", 1.0},   {"q4_0", 1.0},   {"q4_1", 1.0},
    {"q5_0", 1.0},   {"q5_1", 1.0},   {"q2_K", 1.0},   {"q3_K", 1.0},   {"q4_K", 1.0},
    {"q5_K", 1.0},   {"q6_K", 1.0},   {"iq4_nl", 1.0}, {"iq4_xs", 1.0}, {"iq3_s", 1.0},
    {"iq3_xxs", 1.0}, {"tq1_0", 1.0},  {"tq2_0", 1.0},
};

int main(void) {
    char path[512];
    size_t n = 0;
    float *src = test_read_file(test_fixture(path, sizeof path, "dequant/source.f32"), &n);
    CHECK(src && n == ROWS * COLS * sizeof(float), "source.f32 has %zu bytes", n);
    if (!src) return test_finish("test_quantize");
    float *deq = malloc(sizeof(float) * ROWS * COLS), *deq2 = malloc(sizeof(float) * ROWS * COLS);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const int type = rwkv7_dtype_from_name(types[t].name);
        CHECK(type >= 0 && rwkv7_quantize_supported(type), "%s: no quantizer", types[t].name);
        if (type < 0 || !rwkv7_quantize_supported(type)) continue;
        const size_t row = rwkv7_dtype_row_bytes(type, COLS);
        uint8_t *blk = malloc(row * ROWS), *blk2 = malloc(row * ROWS);
        CHECK(rwkv7_quantize_rows(type, src, blk, ROWS, COLS) == RWKV7_OK, "%s: %s", types[t].name, rwkv7_last_error());
        rwkv7_dtype_get(type)->to_f32(blk, deq, ROWS * COLS);
        char rel[64];
        snprintf(rel, sizeof rel, "dequant/%s.ref.f32", types[t].name);
        size_t rn = 0;
        float *ref = test_read_file(test_fixture(path, sizeof path, rel), &rn);
        CHECK(ref && rn == n, "%s: reference has %zu bytes", rel, rn);
        if (ref && rn == n) {
            const double ours = sq_err(src, deq, ROWS * COLS), theirs = sq_err(src, ref, ROWS * COLS);
            fprintf(stderr, "%-8s squared error ours %.6g  ggml %.6g  ratio %.4f\n", types[t].name, ours, theirs,
                    theirs > 0 ? ours / theirs : 0.0);
            CHECK(ours <= theirs * types[t].max_ratio + 1e-12, "%s: error %.6g above ggml's %.6g", types[t].name, ours,
                  theirs);
        }
        /* quantizing the decoded values again must not drift: the second trip costs at most a
         * tenth of the first trip's error (K-quant super-scales may move a little) */
        CHECK(rwkv7_quantize_rows(type, deq, blk2, ROWS, COLS) == RWKV7_OK, "%s requant", types[t].name);
        rwkv7_dtype_get(type)->to_f32(blk2, deq2, ROWS * COLS);
        const double e1 = sq_err(src, deq, ROWS * COLS), e2 = sq_err(deq, deq2, ROWS * COLS);
        CHECK(e2 <= 0.1 * e1 + 1e-12, "%s: requantizing moves values by %.3g (first trip %.3g)", types[t].name, e2, e1);
        /* non-finite input: blocks stay finite for quantized types */
        if (rwkv7_dtype_get(type)->block > 1) {
            float bad[256];
            for (int i = 0; i < 256; i++) bad[i] = src[i];
            bad[3] = NAN, bad[100] = INFINITY, bad[200] = -INFINITY;
            const int blk_n = rwkv7_dtype_get(type)->block;
            const int nb = 256 / blk_n * blk_n;
            CHECK(rwkv7_quantize_rows(type, bad, blk2, 1, nb) == RWKV7_OK, "%s non-finite", types[t].name);
            float out[256];
            rwkv7_dtype_get(type)->to_f32(blk2, out, nb);
            int finite = 1;
            for (int i = 0; i < nb; i++) finite &= isfinite(out[i]) != 0;
            CHECK(finite, "%s: non-finite input gave a non-finite block", types[t].name);
        }
        free(ref);
        free(blk);
        free(blk2);
    }
    uint8_t tmp[1024];
    CHECK(rwkv7_quantize_rows(RWKV7_DTYPE_Q4_K, src, tmp, 1, 100) == RWKV7_ERR_ARG, "row of 100 in q4_K accepted");
    CHECK(rwkv7_quantize_rows(RWKV7_DTYPE_IQ2_XXS, src, tmp, 1, 256) == RWKV7_ERR_UNSUPPORTED, "iq2_xxs accepted");
    CHECK(rwkv7_quantize_rows(RWKV7_DTYPE_Q8_1, src, tmp, 1, 32) == RWKV7_ERR_UNSUPPORTED, "q8_1 accepted");
    free(deq);
    free(deq2);
    free(src);
    return test_finish("test_quantize");
}
