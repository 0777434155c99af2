/* test_vk_matvec_pick.c: vulkan/ops.c's device-level choices for the decode matvec, without a
 * device. The activation staging (the shared memory it may use for T > 1 rows, specialization
 * constant 4 of matvec.comp): on for GPUs, off for CPU devices, RWKV7_VK_MATVEC_STAGE's overrides,
 * the 16 KiB cap and what is left after the kernel's reduction array. The lanes per row (constant
 * 0): 32 or a larger subgroup, RWKV7_VK_MATVEC_LPR's overrides and the values it may not take.
 * The kernels so configured are checked against the CPU by test_ops_vk_matvec_staged and
 * test_ops_vk_matvec_lpr64 (CTest runs of test_ops with those variables set). */
#include <string.h>

#include "testing.h"
#include "vk.h"

int main(void) {
    const char *why = NULL;
    const uint32_t red = RWKV7_VK_MATVEC_MAX_T * 4 * 32 * 4; /* matvec.comp's red[], bytes */
    CHECK(rwkv7_vk_matvec_stage(48 * 1024, false, NULL, &why) == 4096 && strstr(why, "GPU"),
          "a GPU with 48 KiB: capped at 4096 floats (%s)", why);
    CHECK(rwkv7_vk_matvec_stage(32 * 1024, true, NULL, &why) == 0 && strstr(why, "CPU"), "a CPU device: off (%s)", why);
    CHECK(rwkv7_vk_matvec_stage(32 * 1024, true, "1", &why) == 4096 && strstr(why, "RWKV7_VK_MATVEC_STAGE"),
          "a CPU device, forced on (%s)", why);
    CHECK(rwkv7_vk_matvec_stage(32 * 1024, false, "0", &why) == 0 && strstr(why, "RWKV7_VK_MATVEC_STAGE"),
          "a GPU, forced off (%s)", why);
    CHECK(rwkv7_vk_matvec_stage(32 * 1024, false, "yes", &why) == 4096 && strstr(why, "ignored"),
          "an unknown value keeps the rule, saying so (%s)", why);
    /* Vulkan's minimum, 16 KiB: what the reduction array leaves. */
    CHECK(rwkv7_vk_matvec_stage(16 * 1024, false, NULL, &why) == (16 * 1024 - red) / 4, "16 KiB: the rest after red[]");
    CHECK(rwkv7_vk_matvec_stage(red, false, NULL, &why) == 0 && strstr(why, "no shared memory"),
          "nothing left: off (%s)", why);
    /* matvec.comp's integer spelling of STAGED assumes NT <= 9 and a quotient <= 1024. */
    CHECK(RWKV7_VK_MATVEC_MAX_T <= 9, "matvec.comp's (NT + 6) / 8 needs NT <= 9");

    /* Lanes per row: 32, or the subgroup size where subgroupAdd sums a row and it is larger. */
    CHECK(rwkv7_vk_matvec_pick_lpr(32, true, NULL, &why) == 32, "NVIDIA, subgroup 32: 32 (%s)", why);
    CHECK(rwkv7_vk_matvec_pick_lpr(64, true, NULL, &why) == 64 && strstr(why, "subgroup"), "wave64: 64 (%s)", why);
    CHECK(rwkv7_vk_matvec_pick_lpr(64, false, NULL, &why) == 32, "wave64 without subgroupAdd: 32");
    CHECK(rwkv7_vk_matvec_pick_lpr(8, true, NULL, &why) == 32, "lavapipe, subgroup 8: 32");
    CHECK(rwkv7_vk_matvec_pick_lpr(256, true, NULL, &why) == 32, "a subgroup wider than the workgroup: 32");
    CHECK(rwkv7_vk_matvec_pick_lpr(8, true, "64", &why) == 64 && strstr(why, "RWKV7_VK_MATVEC_LPR"),
          "lavapipe forced to 64 (%s)", why);
    CHECK(rwkv7_vk_matvec_pick_lpr(8, true, "128", &why) == 128, "lavapipe forced to 128");
    CHECK(rwkv7_vk_matvec_pick_lpr(64, true, "32", &why) == 64 && strstr(why, "ignored"),
          "below the subgroup size: ignored (%s)", why);
    CHECK(rwkv7_vk_matvec_pick_lpr(64, false, "32", &why) == 32, "no subgroupAdd: any width of at least 32");
    CHECK(rwkv7_vk_matvec_pick_lpr(8, true, "16", &why) == 32, "16 lanes cannot write 32 outputs: ignored");
    CHECK(rwkv7_vk_matvec_pick_lpr(8, true, "48", &why) == 32 && strstr(why, "ignored"), "not a power of two: ignored (%s)",
          why);
    return test_finish("test_vk_matvec_pick");
}
