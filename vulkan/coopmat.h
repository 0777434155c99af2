/* coopmat.h: choosing the cooperative-matrix configuration of the prefill matmul
 * (shaders/matmul_cm.comp) from what the device reports. No Vulkan types: the choice is a pure
 * function of the reported properties, unit-tested without a device (tests/test_vk_coopmat.c).
 * Two flavours of one shader: VK_KHR_cooperative_matrix where glslc knows GL_KHR_cooperative_matrix
 * (glslang 13+), else VK_NV_cooperative_matrix (NVIDIA's drivers list it beside the KHR one): the
 * build embeds one of them, and the probe asks the device for that extension. The NV enum values
 * (VkComponentTypeNV, VkScopeNV) equal the KHR ones used below. */
#ifndef RWKV7_VK_COOPMAT_H
#define RWKV7_VK_COOPMAT_H

#include <stdbool.h>
#include <stdint.h>

/* VK_KHR_cooperative_matrix enum values (the spec's; the Vulkan headers of older SDKs lack them). */
#define RWKV7_VK_CM_FLOAT16 0u       /* VK_COMPONENT_TYPE_FLOAT16_KHR */
#define RWKV7_VK_CM_FLOAT32 1u       /* VK_COMPONENT_TYPE_FLOAT32_KHR */
#define RWKV7_VK_CM_SCOPE_SUBGROUP 3u /* VK_SCOPE_SUBGROUP_KHR */

/* The fields of one VkCooperativeMatrixPropertiesKHR entry. */
struct rwkv7_vk_cm_prop {
    uint32_t m, n, k;               /* MSize, NSize, KSize */
    uint32_t a, b, c, result;       /* AType, BType, CType, ResultType */
    uint32_t scope;                 /* VkScopeKHR */
};

/* Shared memory matmul_cm.comp declares: fp16 hi/lo tiles of W (64 x 32) and x (32 x 64), sixteen
 * 16 x 16 fp32 scratch matrices, the row maxima and scales. */
#define RWKV7_VK_CM_SHARED (4 * 64 * 32 * 2 + 16 * 256 * 4 + 64 * 4 * 4 + 64 * 4)

/* What the device offers besides the list: Vulkan 1.3 (the shaders are SPIR-V 1.6), the extension
 * with its cooperativeMatrix feature, shaderFloat16 and vulkanMemoryModel (the shader uses both),
 * its subgroup size (a 256-invocation workgroup must hold at least 4 subgroups: size <= 64) and
 * shared memory, and whether the build embedded the shaders; nv: they are the NV flavour, so
 * `extension` and `feature` are VK_NV_cooperative_matrix's; emu_shaders: the emulated test
 * variants (matmul_cm.comp CM_EMU) are embedded. */
struct rwkv7_vk_cm_caps {
    bool api13, extension, feature, float16, memory_model, shaders;
    uint32_t subgroup_size, shared_bytes;
    bool nv, emu_shaders;
};

/* Index in props of the configuration the shader is written for (fp16 A and B, fp32 C and
 * result, 16 x 16 x 16, subgroup scope), or -1 with *why saying what is missing. env is the value
 * of RWKV7_VK_COOPMAT (NULL = unset): "0" turns the path off; "emulate" picks the emulated test
 * variants (0, needing only Vulkan 1.3, shaderFloat16 and vulkanMemoryModel), whatever the list. */
int rwkv7_vk_coopmat_pick(const struct rwkv7_vk_cm_prop *props, int n, const struct rwkv7_vk_cm_caps *caps,
                          const char *env, const char **why);

/* vulkan.c: fills caps from the physical device (the built flavour's extension, its
 * cooperativeMatrix feature, shaderFloat16 and vulkanMemoryModel, the property list) and returns
 * the pick (>= 0: use the path; the device must then be created with that extension and those
 * three features). has_khr / has_nv: the device lists VK_KHR_ / VK_NV_cooperative_matrix; *nv: the
 * NV flavour is the one built (its extension name and feature sType are the NV ones); *emu: the
 * emulated variants were picked (no extension; only the two Vulkan 1.2 features). Declared
 * with void * handles so this header stays free of Vulkan types. */
int rwkv7_vk_coopmat_probe(void *instance, void *phys, uint32_t api_version, bool has_khr, bool has_nv,
                           uint32_t subgroup_size, uint32_t shared_bytes, bool *nv, bool *emu, const char **why);
/* The flavours' extension names and feature-structure sTypes (the KHR one is absent from older
 * headers: extension number 507). */
#define RWKV7_VK_CM_EXT(nv) ((nv) ? "VK_NV_cooperative_matrix" : "VK_KHR_cooperative_matrix")
#define RWKV7_VK_CM_FEATURES_STYPE(nv) ((nv) ? 1000249000u : 1000506000u)
#endif
