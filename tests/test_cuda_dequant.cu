/* test_cuda_dequant.cu: host-only check of cuda/dequant.cuh (the decoders the CUDA embed and
 * matmul kernels run) against the CPU dequantizers of runtime/dtype.c, on random blocks with
 * finite scales, for every type the CUDA backend supports. Needs no GPU: the same
 * __host__ __device__ code is compiled for the host. Also checks the index math of dq8_row and the
 * byte order of dq_load8 (the wide quant load; its device branch is exercised only on a GPU). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda/dequant.cuh"

extern "C" {
#include "testing.h"
}

/* Byte offsets of the fp16 scale fields per type, patched to finite values in random blocks. */
static void fix_scales(int type, uint8_t *blk, struct test_rng *rng) {
    static const struct { int type; int offs[2]; int n; } k_fields[] = {
        {RWKV7_DTYPE_Q4_0, {0}, 1},     {RWKV7_DTYPE_Q4_1, {0, 2}, 2},  {RWKV7_DTYPE_Q5_0, {0}, 1},
        {RWKV7_DTYPE_Q5_1, {0, 2}, 2},  {RWKV7_DTYPE_Q8_0, {0}, 1},     {RWKV7_DTYPE_Q2_K, {80, 82}, 2},
        {RWKV7_DTYPE_Q3_K, {108}, 1},   {RWKV7_DTYPE_Q4_K, {0, 2}, 2},  {RWKV7_DTYPE_Q5_K, {0, 2}, 2},
        {RWKV7_DTYPE_Q6_K, {208}, 1},   {RWKV7_DTYPE_IQ2_XXS, {0}, 1},  {RWKV7_DTYPE_IQ2_XS, {0}, 1},
        {RWKV7_DTYPE_IQ3_XXS, {0}, 1},  {RWKV7_DTYPE_IQ1_S, {0}, 1},    {RWKV7_DTYPE_IQ4_NL, {0}, 1},
        {RWKV7_DTYPE_IQ3_S, {0}, 1},    {RWKV7_DTYPE_IQ2_S, {0}, 1},    {RWKV7_DTYPE_IQ4_XS, {0}, 1},
        {RWKV7_DTYPE_TQ1_0, {52}, 1},   {RWKV7_DTYPE_TQ2_0, {64}, 1},   {RWKV7_DTYPE_Q1_0, {0}, 1},
        {RWKV7_DTYPE_Q2_0, {0}, 1},
    };
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++) {
        if (k_fields[i].type != type) continue;
        for (int f = 0; f < k_fields[i].n; f++) {
            uint16_t h = rwkv7_f32_to_f16(test_rng_uniform(rng, -0.05f, 0.05f));
            blk[k_fields[i].offs[f]] = (uint8_t)h;
            blk[k_fields[i].offs[f] + 1] = (uint8_t)(h >> 8);
        }
    }
    if (type == RWKV7_DTYPE_IQ1_M) blk[55] = (uint8_t)((blk[55] & 0x0F) | 0x30); /* d exponent ~2^-3..2^0 */
}

template <int TYPE>
static void check_type(void) {
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(TYPE);
    CHECK(info && info->to_f32, "type %d has a CPU dequantizer", TYPE);
    if (!info || !info->to_f32) return;
    constexpr bool is_float = TYPE == RWKV7_DTYPE_F32 || TYPE == RWKV7_DTYPE_F16 || TYPE == RWKV7_DTYPE_BF16;
    CHECK(is_float || (info->block == dq_traits<TYPE>::block && info->type_size == dq_traits<TYPE>::bytes),
          "%s: block %d/%d bytes %d/%d", info->name, info->block, dq_traits<TYPE>::block, info->type_size,
          dq_traits<TYPE>::bytes);

    const int64_t n = 1024; /* elements of one row: 4 super-blocks */
    const size_t nbytes = rwkv7_dtype_row_bytes(TYPE, n);
    uint8_t *row = (uint8_t *)malloc(nbytes);
    float *ref = (float *)malloc(n * sizeof(float)), *got = (float *)malloc(n * sizeof(float));
    struct test_rng rng = {0x9E3779B97F4A7C15ull ^ (unsigned long long)TYPE};
    if (is_float) {
        for (int64_t i = 0; i < n; i++) {
            float v = test_rng_uniform(&rng, -2.0f, 2.0f);
            if (TYPE == RWKV7_DTYPE_F32) memcpy(row + 4 * i, &v, 4);
            uint16_t h = TYPE == RWKV7_DTYPE_F16 ? rwkv7_f32_to_f16(v) : rwkv7_f32_to_bf16(v);
            if (TYPE != RWKV7_DTYPE_F32) memcpy(row + 2 * i, &h, 2);
        }
    } else {
        for (size_t i = 0; i < nbytes; i++) row[i] = (uint8_t)(test_rng_next(&rng) >> 24);
        for (size_t o = 0; o < nbytes; o += info->type_size) fix_scales(TYPE, row + o, &rng);
    }
    info->to_f32(row, ref, n);
    const dq_tables tb = dq_tab();
    for (int64_t g = 0; g < n / 8; g++) dq8_row<TYPE>(row, g, got + 8 * g, tb);
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 5; i++) {
        float tol = 1e-6f * fabsf(ref[i]);
        if (!(fabsf(got[i] - ref[i]) <= tol)) {
            bad++;
            fprintf(stderr, "  %s[%lld]: cpu %.9g cuda %.9g\n", info->name, (long long)i, ref[i], got[i]);
        }
    }
    CHECK(bad == 0, "%s: dq8 matches the CPU dequantizer", info->name);
    if (is_float) {
        int tail_bad = 0;
        const int es = TYPE == RWKV7_DTYPE_F32 ? 4 : 2;
        for (int64_t i = 0; i < n; i++) tail_bad += dq1<TYPE>(row + es * i) != ref[i];
        CHECK(tail_bad == 0, "%s: dq1 matches", info->name);
    }
    free(row);
    free(ref);
    free(got);
}

/* dq_load8 (the 8-byte quant load of the decoders) reads little-endian bytes at every even offset. */
static void check_load8(void) {
    uint8_t buf[24];
    for (int i = 0; i < 24; i++) buf[i] = (uint8_t)(0x11 * i + 3);
    for (int o = 0; o <= 16; o += 2) {
        uint64_t want = 0;
        for (int e = 0; e < 8; e++) want |= (uint64_t)buf[o + e] << (8 * e);
        CHECK(dq_load8(buf + o) == want, "dq_load8 at offset %d", o);
        for (int e = 0; e < 8; e++) CHECK(dq_byte(want, e) == buf[o + e], "dq_byte %d at offset %d", e, o);
    }
}

int main(void) {
    check_load8();
#define RUN(T) check_type<RWKV7_DTYPE_##T>();
    RWKV7_CUDA_WEIGHT_TYPES(RUN)
#undef RUN
    for (int t = 0; t < RWKV7_DTYPE_COUNT; t++)
        CHECK(!dq_type_supported(t) || rwkv7_dtype_is_weight(t), "supported type %d is a weight type", t);
    return test_finish("test_cuda_dequant");
}
