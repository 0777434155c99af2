/* test_vk_matvec_stage.c: vulkan/ops.c's choice of the decode matvec's activation staging (the
 * shared memory it may use for T > 1 rows, specialization constant 4 of matvec.comp), without a
 * device: on for GPUs, off for CPU devices, RWKV7_VK_MATVEC_STAGE's overrides, the 16 KiB cap and
 * what is left after the kernel's reduction array. The staged kernel itself is checked against
 * the CPU by test_ops_vk_matvec_staged (the aligned decode cases with RWKV7_VK_MATVEC_STAGE=1). */
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
    CHECK(rwkv7_vk_matvec_stage(32 * 1024, false, "yes", &why) == 4096, "an unknown value keeps the rule");
    /* Vulkan's minimum, 16 KiB: what the reduction array leaves. */
    CHECK(rwkv7_vk_matvec_stage(16 * 1024, false, NULL, &why) == (16 * 1024 - red) / 4, "16 KiB: the rest after red[]");
    CHECK(rwkv7_vk_matvec_stage(red, false, NULL, &why) == 0 && strstr(why, "no shared memory"),
          "nothing left: off (%s)", why);
    /* matvec.comp's integer spelling of STAGED assumes NT <= 9 and a quotient <= 1024. */
    CHECK(RWKV7_VK_MATVEC_MAX_T <= 9, "matvec.comp's (NT + 6) / 8 needs NT <= 9");
    return test_finish("test_vk_matvec_stage");
}
