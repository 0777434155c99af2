/* test_vk_coopmat.c: the cooperative-matrix prefill path without a GPU.
 * 1. vulkan/coopmat.c's pick: given the VkCooperativeMatrixPropertiesKHR (or, for the NV flavour,
 *    ...NV) entries and features a device reports, the configuration matmul_cm.comp is written
 *    for, or none with the reason; the NV enum values and sType the flavour relies on; that the
 *    build embedded exactly one flavour, for every weight type.
 * 2. The accuracy of its arithmetic, emulated on the host: fp16 hi/lo splits of the weight and of
 *    the power-of-two-scaled activation row, three fp16 x fp16 products summed in fp32 (the
 *    tensor-core operation), against a double reference. The split must stay far inside the
 *    matmul tolerance (NMSE 1e-8, runtime/op_debug.c) and a single fp16 product must not (it is
 *    why the split exists). */
#include <math.h>
#include <stdint.h>

#include <vulkan/vulkan_core.h>

#include "coopmat.h"
#include "spv.h"
#include "testing.h"

/* ---- 1. the pick ---- */

static const struct rwkv7_vk_cm_prop k_good = {16, 16, 16, RWKV7_VK_CM_FLOAT16, RWKV7_VK_CM_FLOAT16,
                                               RWKV7_VK_CM_FLOAT32, RWKV7_VK_CM_FLOAT32, RWKV7_VK_CM_SCOPE_SUBGROUP};

static struct rwkv7_vk_cm_caps caps_all(void) {
    return (struct rwkv7_vk_cm_caps){true, true, true, true, true, true, 32, 48 * 1024, false, false};
}

static void test_pick(void) {
    const char *why = NULL;
    struct rwkv7_vk_cm_caps caps = caps_all();
    /* NVIDIA-like list: int8 and fp16-accumulate entries first, the usable one third. */
    struct rwkv7_vk_cm_prop nv[4] = {
        {16, 16, 32, 3, 3, 5, 5, RWKV7_VK_CM_SCOPE_SUBGROUP}, /* s8 x s8 + s32 */
        {16, 16, 16, 0, 0, 0, 0, RWKV7_VK_CM_SCOPE_SUBGROUP}, /* fp16 accumulate: too coarse */
        k_good,
        {16, 8, 16, 0, 0, 1, 1, RWKV7_VK_CM_SCOPE_SUBGROUP},
    };
    CHECK(rwkv7_vk_coopmat_pick(nv, 4, &caps, NULL, &why) == 2, "nvidia-like list: %s", why);
    CHECK(rwkv7_vk_coopmat_pick(nv, 4, &caps, "1", &why) == 2, "RWKV7_VK_COOPMAT=1 keeps it: %s", why);
    CHECK(rwkv7_vk_coopmat_pick(nv, 4, &caps, "0", &why) == -1 && strstr(why, "RWKV7_VK_COOPMAT"),
          "RWKV7_VK_COOPMAT=0 turns it off");
    /* lavapipe and most CPUs: nothing listed. */
    CHECK(rwkv7_vk_coopmat_pick(NULL, 0, &caps, NULL, &why) == -1, "empty list picks none");
    /* Only other shapes / types / scopes. */
    struct rwkv7_vk_cm_prop other[4] = {nv[0], nv[1], nv[3], k_good};
    other[3].scope = 2; /* workgroup scope */
    CHECK(rwkv7_vk_coopmat_pick(other, 4, &caps, NULL, &why) == -1, "no subgroup-scope fp16/fp32 16x16x16: %s", why);
    struct rwkv7_vk_cm_prop bf = k_good;
    bf.a = bf.b = 1000141000u; /* a bfloat16 component type: not what the shader loads */
    CHECK(rwkv7_vk_coopmat_pick(&bf, 1, &caps, NULL, &why) == -1, "bf16 inputs are not fp16");
    /* Each missing capability alone turns it off. */
    bool *flags[6] = {&caps.api13, &caps.extension, &caps.feature, &caps.float16, &caps.memory_model, &caps.shaders};
    for (int i = 0; i < 6; i++) {
        caps = caps_all();
        *flags[i] = false;
        CHECK(rwkv7_vk_coopmat_pick(&k_good, 1, &caps, NULL, &why) == -1, "capability %d off: still picked", i);
    }
    caps = caps_all();
    caps.subgroup_size = 128;
    CHECK(rwkv7_vk_coopmat_pick(&k_good, 1, &caps, NULL, &why) == -1, "subgroup 128 (fewer than 4 per workgroup)");
    caps.subgroup_size = 64;
    CHECK(rwkv7_vk_coopmat_pick(&k_good, 1, &caps, NULL, &why) == 0, "subgroup 64: %s", why);
    caps.shared_bytes = 32 * 1024;
    CHECK(rwkv7_vk_coopmat_pick(&k_good, 1, &caps, NULL, &why) == -1, "32 KiB shared memory is too little");
    CHECK(RWKV7_VK_CM_SHARED > 32 * 1024 && RWKV7_VK_CM_SHARED <= 48 * 1024, "shared size %d", RWKV7_VK_CM_SHARED);

    /* The emulated test mode: only when asked for, whatever the list and the extension. */
    caps = caps_all();
    caps.extension = caps.feature = false;
    CHECK(rwkv7_vk_coopmat_pick(NULL, 0, &caps, "emulate", &why) == -1 && strstr(why, "not built"),
          "emulate without its variants: %s", why);
    caps.emu_shaders = true;
    CHECK(rwkv7_vk_coopmat_pick(NULL, 0, &caps, "emulate", &why) == 0 && strstr(why, "emulated"), "emulate: %s", why);
    CHECK(rwkv7_vk_coopmat_pick(NULL, 0, &caps, NULL, &why) == -1, "emulation is never the default");
    caps.float16 = false;
    CHECK(rwkv7_vk_coopmat_pick(NULL, 0, &caps, "emulate", &why) == -1, "emulate without shaderFloat16: %s", why);

    /* The NV flavour: the same list and rule; its own extension is the one that must be there. */
    caps = caps_all();
    caps.nv = true;
    CHECK(rwkv7_vk_coopmat_pick(nv, 4, &caps, NULL, &why) == 2 && strstr(why, "NV"), "NV flavour: %s", why);
    caps.extension = false;
    CHECK(rwkv7_vk_coopmat_pick(nv, 4, &caps, NULL, &why) == -1 && strstr(why, "VK_NV_cooperative_matrix"),
          "NV flavour without VK_NV_cooperative_matrix: %s", why);
    /* What reading the NV list as KHR values and enabling the NV feature rely on. */
    CHECK(VK_COMPONENT_TYPE_FLOAT16_NV == RWKV7_VK_CM_FLOAT16 && VK_COMPONENT_TYPE_FLOAT32_NV == RWKV7_VK_CM_FLOAT32 &&
              VK_SCOPE_SUBGROUP_NV == RWKV7_VK_CM_SCOPE_SUBGROUP,
          "VkComponentTypeNV / VkScopeNV values differ from the KHR ones");
    CHECK(RWKV7_VK_CM_FEATURES_STYPE(true) == (unsigned)VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV &&
              !strcmp(RWKV7_VK_CM_EXT(true), VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME),
          "NV feature sType / extension name");
}

/* The build embeds one flavour of matmul_cm for every weight type it embeds matmul for. */
static void test_flavour(void) {
    int n_mm = 0, n_khr = 0, n_nv = 0, n_emu = 0;
    for (int i = 0; i < rwkv7_vk_spv_count; i++) {
        const char *s = rwkv7_vk_spv_table[i].name;
        if (!strncmp(s, "matmul_cm_emu_", 14)) n_emu++;
        else if (!strncmp(s, "matmul_cm_nv_", 13)) n_nv++;
        else if (!strncmp(s, "matmul_cm_", 10)) n_khr++;
        else if (!strncmp(s, "matmul_", 7) && strncmp(s, "matmul_n", 8)) n_mm++;
    }
    fprintf(stderr, "  embedded: %d matmul, %d matmul_cm (KHR), %d matmul_cm_nv, %d matmul_cm_emu\n", n_mm, n_khr,
            n_nv, n_emu);
    CHECK(n_mm > 10 && (n_khr == 0) != (n_nv == 0) && n_khr + n_nv == n_mm,
          "one cooperative-matrix flavour per type: %d matmul, %d KHR, %d NV", n_mm, n_khr, n_nv);
    CHECK(n_emu == 5, "the emulated test variants: %d, not 5", n_emu);
}

/* ---- 2. the arithmetic ---- */

/* x rounded to fp16 (nearest even; subnormals below 2^-14, infinity above 65504). */
static float to_f16(float x) {
    float a = fabsf(x);
    if (!isfinite(x) || a == 0.0f) return x;
    if (a >= 65520.0f) return copysignf(INFINITY, x);
    int e;
    frexpf(a, &e); /* a = f 2^e, f in [0.5, 1): 11 significant bits are a quantum of 2^(e - 11) */
    int qe = e - 11 < -24 ? -24 : e - 11;
    return nearbyintf(ldexpf(x, -qe)) * ldexpf(1.0f, qe);
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* [0, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

enum mode { FP32, SINGLE, SPLIT };

/* One output row: sum_k w[k] x[k] as the shader computes it (scale s = 2^(14 - e) with the row's
 * max |x| < 2^e; fp16 products are exact in fp32; fp32 accumulation in k order). */
static float emulate(const float *w, const float *x, int k, enum mode mode) {
    float mx = 0;
    for (int i = 0; i < k; i++) mx = fmaxf(mx, fabsf(x[i]));
    int e = 0;
    frexpf(mx, &e);
    float s = mx > 0 ? ldexpf(1.0f, 14 - e) : 1.0f;
    float acc = 0;
    for (int i = 0; i < k; i++) {
        float xs = x[i] * s, wh = to_f16(w[i]), xh = to_f16(xs);
        if (mode == FP32) {
            acc += w[i] * xs;
        } else if (mode == SINGLE) {
            acc += wh * xh;
        } else {
            float wl = to_f16(w[i] - wh), xl = to_f16(xs - xh);
            acc += wh * xh;
            acc += wh * xl;
            acc += wl * xh;
        }
    }
    return acc / s;
}

/* NMSE over m rows of one (k, m) matrix times one activation row. Weights: Q8_0-like values
 * d * q (d an fp16 scale per 32, q in -127..127) or plain fp32; activations either normed (unit
 * scale) or relu(k)^2-like (heavy tail up to ~1e5, over fp16's range). */
static double nmse(int k, int m, bool heavy, bool q8, enum mode mode) {
    float *w = malloc(sizeof(float) * (size_t)k), *x = malloc(sizeof(float) * (size_t)k);
    for (int i = 0; i < k; i++) {
        double g = urand() * 2 - 1;
        x[i] = heavy ? (float)(g > 0 ? pow(g * 300.0, 2.0) * urand() : 0.0) : (float)(g * 3.0);
    }
    double se = 0, ss = 0;
    for (int r = 0; r < m; r++) {
        for (int i = 0; i < k; i += 32) {
            float d = to_f16((float)(0.002 + 0.02 * urand()));
            for (int j = i; j < i + 32 && j < k; j++)
                w[j] = q8 ? d * (float)((int)(urand() * 255) - 127) : (float)((urand() * 2 - 1) * 0.1);
        }
        double ref = 0;
        for (int i = 0; i < k; i++) ref += (double)w[i] * x[i];
        double got = emulate(w, x, k, mode);
        se += (got - ref) * (got - ref);
        ss += ref * ref;
    }
    free(w);
    free(x);
    return se / ss;
}

static void test_accuracy(void) {
    const double tol = 1e-8; /* rwkv7_op_tolerance for MATMUL */
    for (int heavy = 0; heavy <= 1; heavy++)
        for (int q8 = 0; q8 <= 1; q8++) {
            int k = heavy ? 3072 : 768;
            double e_split = nmse(k, 64, heavy, q8, SPLIT), e_single = nmse(k, 64, heavy, q8, SINGLE);
            double e_fp32 = nmse(k, 64, heavy, q8, FP32);
            fprintf(stderr, "  k=%d %s x, %s w: NMSE split hi/lo %.2e, single fp16 %.2e, plain fp32 %.2e (tolerance %.0e)\n",
                    k, heavy ? "relu^2-like" : "normed", q8 ? "Q8_0" : "fp32", e_split, e_single, e_fp32, tol);
            CHECK(e_split < tol / 100, "split products: NMSE %.3g not 100x inside %.0e", e_split, tol);
            CHECK(e_single > tol, "single fp16 product: NMSE %.3g unexpectedly inside %.0e", e_single, tol);
        }
}

int main(void) {
    test_pick();
    test_flavour();
    test_accuracy();
    return test_finish("test_vk_coopmat");
}
