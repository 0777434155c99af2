/* test_dequant.c: the dtype table and every host dequantizer against ggml's own output
 * (tests/data/dequant: <type>.raw -> <type>.ref.f32, bit for bit), the IEEE half and
 * bfloat16 conversions (exhaustive round trip, subnormals, inf, nan, ties to even), and the
 * random-block generator (valid, finite, std near the requested scale, deterministic). */
#include <stdint.h>
#include <string.h>

#include "dtype.h"
#include "dtype_random.h"
#include "testing.h"

#define ROWS 8
#define COLS 1024

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Distance in representable floats (same-sign values only; else a large number). */
static uint32_t ulp_distance(float a, float b) {
    uint32_t x = f32_bits(a), y = f32_bits(b);
    if ((x ^ y) & 0x80000000u) return (a == b) ? 0 : UINT32_MAX;
    return x > y ? x - y : y - x;
}

static void test_table(void) {
    static const char *names[RWKV7_DTYPE_COUNT] = {
        "f32", "f16", "q4_0", "q4_1", NULL, NULL, "q5_0", "q5_1", "q8_0", "q8_1", "q2_K", "q3_K",
        "q4_K", "q5_K", "q6_K", "q8_K", "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl",
        "iq3_s", "iq2_s", "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m", "bf16", NULL,
        NULL, NULL, "tq1_0", "tq2_0", NULL, NULL, NULL, "mxfp4", "nvfp4", "q1_0", "q2_0"};
    int n_weight = 0;
    for (int t = 0; t < RWKV7_DTYPE_COUNT; t++) {
        const struct rwkv7_dtype_info *info = rwkv7_dtype_get(t);
        if (!names[t]) {
            CHECK(info == NULL, "removed id %d must have no table row", t);
            CHECK(!rwkv7_dtype_is_weight(t), "removed id %d is not a weight", t);
            CHECK(rwkv7_dtype_row_bytes(t, 256) == 0, "removed id %d has no row size", t);
            continue;
        }
        CHECK(info != NULL, "id %d (%s) missing", t, names[t]);
        if (!info) continue;
        CHECK(strcmp(info->name, names[t]) == 0, "id %d named %s, want %s", t, info->name, names[t]);
        CHECK(strcmp(rwkv7_dtype_name(t), names[t]) == 0, "rwkv7_dtype_name(%d)", t);
        CHECK(rwkv7_dtype_from_name(names[t]) == t, "from_name(%s)", names[t]);
        CHECK(info->block > 0 && info->type_size > 0, "id %d sizes", t);
        CHECK(rwkv7_dtype_is_weight(t) == (info->to_f32 != NULL), "is_weight(%d)", t);
        n_weight += info->to_f32 != NULL;
        CHECK(rwkv7_dtype_row_bytes(t, info->block * 3) == (size_t)info->type_size * 3, "row bytes %d", t);
        if (info->block > 1)
            CHECK(rwkv7_dtype_row_bytes(t, info->block + 1) == 0, "partial block %d", t);
    }
    /* f32, f16, bf16 and 25 block types (the 23 rwkv7 uses plus MXFP4 and NVFP4) */
    CHECK(n_weight == 28, "%d weight types, want 28", n_weight);
    CHECK(rwkv7_dtype_get(-1) == NULL && rwkv7_dtype_get(RWKV7_DTYPE_COUNT) == NULL, "out of range");
    CHECK(strcmp(rwkv7_dtype_name(99), "type99") == 0, "unknown name: %s", rwkv7_dtype_name(99));
    CHECK(strcmp(rwkv7_dtype_name(4), "type4") == 0, "removed name: %s", rwkv7_dtype_name(4));
    CHECK(rwkv7_dtype_from_name("Q4_k") == RWKV7_DTYPE_Q4_K, "case-insensitive lookup");
    CHECK(rwkv7_dtype_from_name("IQ3_S") == RWKV7_DTYPE_IQ3_S, "case-insensitive lookup");
    CHECK(rwkv7_dtype_from_name("q4") == -1 && rwkv7_dtype_from_name("q4_0x") == -1, "prefixes");
    CHECK(rwkv7_dtype_from_name("") == -1 && rwkv7_dtype_from_name(NULL) == -1, "empty name");
    CHECK(!rwkv7_dtype_is_weight(RWKV7_DTYPE_Q8_K) && !rwkv7_dtype_is_weight(RWKV7_DTYPE_I32),
          "internal and integer types are not weights");
}

static void test_fixture_type(const char *name, int type, int block, size_t row_bytes) {
    char path[512], rel[128];
    const struct rwkv7_dtype_info *info = rwkv7_dtype_get(type);
    CHECK(info != NULL && info->to_f32 != NULL, "%s: type %d has no dequantizer", name, type);
    if (!info || !info->to_f32) return;
    CHECK(strcmp(info->name, name) == 0, "types.txt %s vs table %s", name, info->name);
    CHECK(info->block == block, "%s: block %d vs %d", name, info->block, block);
    CHECK(rwkv7_dtype_row_bytes(type, COLS) == row_bytes, "%s: row bytes %zu vs %zu", name,
          rwkv7_dtype_row_bytes(type, COLS), row_bytes);

    size_t n_raw = 0, n_ref = 0;
    snprintf(rel, sizeof rel, "dequant/%s.raw", name);
    uint8_t *raw = test_read_file(test_fixture(path, sizeof path, rel), &n_raw);
    snprintf(rel, sizeof rel, "dequant/%s.ref.f32", name);
    float *ref = test_read_file(test_fixture(path, sizeof path, rel), &n_ref);
    CHECK(raw && n_raw == row_bytes * ROWS, "%s.raw: %zu bytes", name, n_raw);
    CHECK(ref && n_ref == sizeof(float) * ROWS * COLS, "%s.ref.f32: %zu bytes", name, n_ref);
    if (!raw || !ref || n_raw != row_bytes * ROWS || n_ref != sizeof(float) * ROWS * COLS) {
        free(raw);
        free(ref);
        return;
    }
    /* one byte off alignment: the sanitizers then catch any wide load cast from the block */
    uint8_t *shifted = malloc(n_raw + 1);
    float *out = malloc(sizeof(float) * ROWS * COLS), *whole = malloc(sizeof(float) * ROWS * COLS);
    memcpy(shifted + 1, raw, n_raw);
    for (int r = 0; r < ROWS; r++) info->to_f32(shifted + 1 + r * row_bytes, out + r * COLS, COLS);
    info->to_f32(raw, whole, ROWS * COLS);

    /* Bit-exact everywhere: the fixtures README allows one ulp where ggml computes in another
     * order, but every decoder here follows ggml's operand order, so no type needs it. */
    int n_bad = 0;
    uint32_t worst = 0;
    for (int i = 0; i < ROWS * COLS; i++) {
        uint32_t dist = ulp_distance(out[i], ref[i]);
        if (dist > worst) worst = dist;
        if (dist != 0 && n_bad++ < 5)
            fprintf(stderr, "  %s[%d]: ours %.9g (0x%08x) ref %.9g (0x%08x)\n", name, i, out[i],
                    f32_bits(out[i]), ref[i], f32_bits(ref[i]));
    }
    CHECK(n_bad == 0, "%s: %d of %d values differ from ggml (worst %u ulp)", name, n_bad,
          ROWS * COLS, worst);
    CHECK(memcmp(out, whole, sizeof(float) * ROWS * COLS) == 0, "%s: row-wise != whole call", name);
    free(shifted);
    free(out);
    free(whole);
    free(raw);
    free(ref);
}

static void test_fixtures(void) {
    char path[512];
    FILE *f = fopen(test_fixture(path, sizeof path, "dequant/types.txt"), "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char name[32];
    int type, block, n_types = 0;
    size_t row_bytes;
    while (fscanf(f, "%31s type=%d block=%d bytes/row=%zu", name, &type, &block, &row_bytes) == 4) {
        test_fixture_type(name, type, block, row_bytes);
        n_types++;
    }
    fclose(f);
    /* the README says 26 but lists 27: every weight type except f32 */
    CHECK(n_types == 27, "types.txt lists %d types, want 27", n_types);
}

static void test_half(void) {
    int bad_rt = 0, n_nan = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rwkv7_f16_to_f32((uint16_t)h);
        uint16_t back = rwkv7_f32_to_f16(f);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
            n_nan++;
            /* quiet NaNs keep sign and payload; signalling ones come back quieted */
            if (!isnan(f) || back != (h | 0x200)) bad_rt++;
        } else if (back != h) {
            bad_rt++;
        }
    }
    CHECK(bad_rt == 0, "%d halves do not round-trip", bad_rt);
    CHECK(n_nan == 2046, "nan count %d", n_nan);
    CHECK(rwkv7_f16_to_f32(0x0001) == 0x1p-24f, "smallest subnormal");
    CHECK(rwkv7_f16_to_f32(0x03FF) == 1023 * 0x1p-24f, "largest subnormal");
    CHECK(rwkv7_f16_to_f32(0x0400) == 0x1p-14f, "smallest normal");
    CHECK(rwkv7_f16_to_f32(0x7BFF) == 65504.0f, "largest finite");
    CHECK(isinf(rwkv7_f16_to_f32(0x7C00)) && rwkv7_f16_to_f32(0xFC00) < 0, "inf");
    CHECK(f32_bits(rwkv7_f16_to_f32(0x8000)) == 0x80000000u, "negative zero");
    CHECK(rwkv7_f32_to_f16(INFINITY) == 0x7C00 && rwkv7_f32_to_f16(-INFINITY) == 0xFC00, "to inf");
    CHECK((rwkv7_f32_to_f16(NAN) & 0x7FFF) > 0x7C00, "nan stays nan");
    CHECK(rwkv7_f32_to_f16(65519.996f) == 0x7BFF, "below overflow midpoint");
    CHECK(rwkv7_f32_to_f16(65520.0f) == 0x7C00, "overflow midpoint rounds to inf (odd 65504)");
    CHECK(rwkv7_f32_to_f16(1e-8f) == 0 && rwkv7_f32_to_f16(-1e-8f) == 0x8000, "underflow to zero");
    CHECK(rwkv7_f32_to_f16(0x1p-25f) == 0, "2^-25 ties to even zero");
    CHECK(rwkv7_f32_to_f16(bits_f32(f32_bits(0x1p-25f) + 1)) == 1, "just above 2^-25");
    CHECK(rwkv7_f32_to_f16(0x1p-24f * 1.5f) == 2, "1.5 units ties to even 2");
    CHECK(rwkv7_f32_to_f16(0x1p-24f * 2.5f) == 2, "2.5 units ties to even 2");
    /* every midpoint between neighbouring finite halves: ties to the even code, and one float ulp
     * either side goes to the nearer half */
    int bad_tie = 0;
    for (uint32_t h = 0; h < 0x7BFF; h++) {
        float lo = rwkv7_f16_to_f32((uint16_t)h), hi = rwkv7_f16_to_f32((uint16_t)(h + 1));
        float mid = lo + (hi - lo) * 0.5f; /* exact: halves have 11 significant bits */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (rwkv7_f32_to_f16(mid) != even || rwkv7_f32_to_f16(-mid) != (even | 0x8000)) bad_tie++;
        if (rwkv7_f32_to_f16(bits_f32(f32_bits(mid) - 1)) != h) bad_tie++;
        if (rwkv7_f32_to_f16(bits_f32(f32_bits(mid) + 1)) != h + 1) bad_tie++;
    }
    CHECK(bad_tie == 0, "%d midpoint roundings wrong", bad_tie);
}

static void test_bf16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rwkv7_bf16_to_f32((uint16_t)h);
        if (f32_bits(f) != h << 16) bad++;
        uint16_t back = rwkv7_f32_to_bf16(f);
        int is_nan = (h & 0x7F80) == 0x7F80 && (h & 0x7F);
        if (is_nan ? back != (h | 0x40) : back != h) bad++;
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
    CHECK(rwkv7_f32_to_bf16(bits_f32(0x3F808000u)) == 0x3F80, "tie to even (down)");
    CHECK(rwkv7_f32_to_bf16(bits_f32(0x3F818000u)) == 0x3F82, "tie to even (up)");
    CHECK(rwkv7_f32_to_bf16(bits_f32(0x3F808001u)) == 0x3F81, "above tie");
    CHECK(rwkv7_f32_to_bf16(bits_f32(0x7F7FFFFFu)) == 0x7F80, "max float rounds to inf");
    CHECK(rwkv7_f32_to_bf16(bits_f32(0x00008000u)) == 0x0000, "subnormal tie to even zero");
    CHECK(isnan(rwkv7_bf16_to_f32(rwkv7_f32_to_bf16(bits_f32(0x7F800001u)))), "signalling nan stays nan");
}

static void test_random(void) {
    const float scales[2] = {0.02f, 1.5f};
    for (int t = 0; t < RWKV7_DTYPE_COUNT; t++) {
        const struct rwkv7_dtype_info *info = rwkv7_dtype_get(t);
        if (!info || !info->to_f32) continue;
        size_t rb = rwkv7_dtype_row_bytes(t, COLS);
        uint8_t *a = malloc(rb * 4), *b = malloc(rb * 4), *c = malloc(rb * 4);
        float *x = malloc(sizeof(float) * 4 * COLS);
        for (int s = 0; s < 2; s++) {
            const float scale = scales[s];
            rwkv7_dtype_random_rows(t, 1234, a, 4, COLS, scale);
            rwkv7_dtype_random_rows(t, 1234, b, 4, COLS, scale);
            rwkv7_dtype_random_rows(t, 1235, c, 4, COLS, scale);
            CHECK(memcmp(a, b, rb * 4) == 0, "%s: same seed, different bytes", info->name);
            CHECK(memcmp(a, c, rb * 4) != 0, "%s: different seeds, same bytes", info->name);
            /* rows depend only on (seed, row): generating row 0 alone gives the same bytes */
            rwkv7_dtype_random_rows(t, 1234, c, 1, COLS, scale);
            CHECK(memcmp(a, c, rb) == 0, "%s: row 0 depends on n_rows", info->name);
            info->to_f32(a, x, 4 * COLS);
            double sum = 0, sum2 = 0;
            int n_bad = 0;
            for (int i = 0; i < 4 * COLS; i++) {
                if (!isfinite(x[i])) n_bad++;
                sum += x[i];
                sum2 += (double)x[i] * x[i];
            }
            double mean = sum / (4 * COLS), sd = sqrt(sum2 / (4 * COLS) - mean * mean);
            CHECK(n_bad == 0, "%s: %d non-finite values", info->name, n_bad);
            CHECK(sd >= scale / 3 && sd <= scale * 3, "%s: std %g for scale %g", info->name, sd, scale);
            if (getenv("RWKV7_TEST_VERBOSE"))
                fprintf(stderr, "  random %-8s scale %-5g std/scale %.3f mean/scale %+.3f\n",
                        info->name, scale, sd / scale, mean / scale);
        }
        free(a);
        free(b);
        free(c);
        free(x);
    }
}

int main(void) {
    test_table();
    test_half();
    test_bf16();
    test_random();
    test_fixtures();
    return test_finish("test_dequant");
}
