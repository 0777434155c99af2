/* coopmat.c: the cooperative-matrix prefill path's configuration: the pure choice (coopmat.h) and
 * the device query that feeds it, for the flavour the build embedded (VK_KHR_ or
 * VK_NV_cooperative_matrix) or the emulated test variants (RWKV7_VK_COOPMAT=emulate). The shader (shaders/matmul_cm.comp) is written
 * for one shape, 16 x 16 x 16 with fp16 inputs and fp32 accumulation at subgroup scope, the shape
 * NVIDIA's and AMD's (RDNA3) drivers list, so one compiled variant per weight type serves them;
 * devices that list only other shapes (e.g. 8 x 8 x 16) get the fp32 tile path. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "coopmat.h"
#include "spv.h"
#include "vk.h"

int rwkv7_vk_coopmat_pick(const struct rwkv7_vk_cm_prop *props, int n, const struct rwkv7_vk_cm_caps *caps,
                          const char *env, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    if (env && strcmp(env, "0") == 0) {
        *why = "off (RWKV7_VK_COOPMAT=0)";
        return -1;
    }
    if (env && strcmp(env, "emulate") == 0) {
        if (!caps->emu_shaders) *why = "emulation not built";
        else if (!caps->api13 || !caps->float16 || !caps->memory_model)
            *why = "emulation needs Vulkan 1.3, shaderFloat16 and vulkanMemoryModel";
        else *why = "emulated (RWKV7_VK_COOPMAT=emulate: a test mode, slow)";
        return caps->emu_shaders && caps->api13 && caps->float16 && caps->memory_model ? 0 : -1;
    }
    if (!caps->shaders) {
        *why = "not built (no cooperative-matrix shaders embedded)";
        return -1;
    }
    if (!caps->extension || !caps->feature) {
        *why = caps->nv ? "no VK_NV_cooperative_matrix (this build's flavour)" : "no VK_KHR_cooperative_matrix";
        return -1;
    }
    if (!caps->api13) {
        *why = "device below Vulkan 1.3";
        return -1;
    }
    if (!caps->float16 || !caps->memory_model) {
        *why = "no shaderFloat16 or vulkanMemoryModel";
        return -1;
    }
    if (caps->subgroup_size == 0 || caps->subgroup_size > 64) {
        *why = "subgroup size above 64";
        return -1;
    }
    if (caps->shared_bytes < RWKV7_VK_CM_SHARED) {
        *why = "too little shared memory";
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const struct rwkv7_vk_cm_prop *p = &props[i];
        if (p->m == 16 && p->n == 16 && p->k == 16 && p->a == RWKV7_VK_CM_FLOAT16 && p->b == RWKV7_VK_CM_FLOAT16 &&
            p->c == RWKV7_VK_CM_FLOAT32 && p->result == RWKV7_VK_CM_FLOAT32 && p->scope == RWKV7_VK_CM_SCOPE_SUBGROUP) {
            *why = caps->nv ? "fp16 x fp16 + fp32, 16x16x16, NV" : "fp16 x fp16 + fp32, 16x16x16";
            return i;
        }
    }
    *why = "no fp16 x fp16 + fp32 16x16x16 subgroup configuration";
    return -1;
}

/* VK_KHR_cooperative_matrix's structures and entry point, for headers that predate it (the
 * extension number 507 gives the sType values; the layout is the spec's). The NV features
 * structure has the same layout (RWKV7_VK_CM_FEATURES_STYPE picks the sType); the NV properties
 * come from the headers' VkCooperativeMatrixPropertiesNV. */
#define RWKV7_STYPE_CM_PROPERTIES ((VkStructureType)1000506001)
struct rwkv7_vk_cm_features_khr {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
};
struct rwkv7_vk_cm_properties_khr {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    uint32_t AType, BType, CType, ResultType; /* VkComponentTypeKHR */
    VkBool32 saturatingAccumulation;
    uint32_t scope; /* VkScopeKHR */
};
typedef VkResult(VKAPI_PTR *rwkv7_pfn_cm_props)(VkPhysicalDevice, uint32_t *, struct rwkv7_vk_cm_properties_khr *);

/* Which flavour the build embedded: 0 none, 1 KHR ("matmul_cm_<type>"), 2 NV ("matmul_cm_nv_<type>");
 * *emu: the emulated test variants ("matmul_cm_emu_<type>") are there too. */
static int shaders_built(bool *emu) {
    int built = 0;
    *emu = false;
    for (int i = 0; i < rwkv7_vk_spv_count; i++) {
        const char *s = rwkv7_vk_spv_table[i].name;
        if (!strncmp(s, "matmul_cm_emu_", 14)) *emu = true;
        else if (!strncmp(s, "matmul_cm_nv_", 13)) built = 2;
        else if (!strncmp(s, "matmul_cm_", 10)) built = 1;
    }
    return built;
}

/* The property list of the flavour's query, as rwkv7_vk_cm_prop entries (*out NULL when none).
 * Both structures hold MSize .. CType and the result type as 7 consecutive uint32 after pNext;
 * only the scope's offset differs (KHR has saturatingAccumulation before it). */
static int cm_props(VkInstance inst, VkPhysicalDevice pd, bool nv, struct rwkv7_vk_cm_prop **out) {
    typedef struct rwkv7_vk_cm_properties_khr khr_t;
    typedef VkCooperativeMatrixPropertiesNV nv_t;
    const size_t size = nv ? sizeof(nv_t) : sizeof(khr_t);
    const size_t o_m = nv ? offsetof(nv_t, MSize) : offsetof(khr_t, MSize);
    const size_t o_scope = nv ? offsetof(nv_t, scope) : offsetof(khr_t, scope);
    const VkStructureType stype = nv ? VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV : RWKV7_STYPE_CM_PROPERTIES;
    PFN_vkVoidFunction f = rwkv7_vk_loader_proc(inst, nv ? "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"
                                                         : "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get_nv = NULL;
    rwkv7_pfn_cm_props get_khr = NULL;
    memcpy(nv ? (void *)&get_nv : (void *)&get_khr, &f, sizeof f);
    *out = NULL;
    uint32_t cnt = 0;
    if (!f || (nv ? get_nv(pd, &cnt, NULL) : get_khr(pd, &cnt, NULL)) != VK_SUCCESS || cnt == 0 || cnt >= 4096) return 0;
    unsigned char *raw = calloc(cnt, size);
    struct rwkv7_vk_cm_prop *props = calloc(cnt, sizeof *props);
    int n = 0;
    if (raw && props) {
        for (uint32_t i = 0; i < cnt; i++) memcpy(raw + i * size, &stype, sizeof stype);
        VkResult r = nv ? get_nv(pd, &cnt, (nv_t *)(void *)raw) : get_khr(pd, &cnt, (khr_t *)(void *)raw);
        if (r == VK_SUCCESS || r == VK_INCOMPLETE)
            for (uint32_t i = 0; i < cnt; i++, n++) {
                uint32_t v[7];
                memcpy(v, raw + i * size + o_m, sizeof v);
                props[n] = (struct rwkv7_vk_cm_prop){v[0], v[1], v[2], v[3], v[4], v[5], v[6], 0};
                memcpy(&props[n].scope, raw + i * size + o_scope, sizeof props[n].scope);
            }
    }
    free(raw);
    *out = props;
    return n;
}

int rwkv7_vk_coopmat_probe(void *instance, void *phys, uint32_t api_version, bool has_khr, bool has_nv,
                           uint32_t subgroup_size, uint32_t shared_bytes, bool *nv, bool *emu, const char **why) {
    VkPhysicalDevice pd = (VkPhysicalDevice)phys;
    bool emu_built;
    const int built = shaders_built(&emu_built);
    const char *env = getenv("RWKV7_VK_COOPMAT");
    *nv = built == 2;
    *emu = env && !strcmp(env, "emulate");
    struct rwkv7_vk_cm_caps caps = {.api13 = api_version >= VK_API_VERSION_1_3,
                                    .extension = *nv ? has_nv : has_khr,
                                    .shaders = built != 0,
                                    .subgroup_size = subgroup_size,
                                    .shared_bytes = shared_bytes,
                                    .nv = *nv,
                                    .emu_shaders = emu_built};
    struct rwkv7_vk_cm_prop *props = NULL;
    int n = 0;
    const bool real = caps.shaders && caps.extension; /* the extension's structures may be queried */
    if (caps.api13 && (real || *emu)) {
        struct rwkv7_vk_cm_features_khr cmf = {.sType = (VkStructureType)RWKV7_VK_CM_FEATURES_STYPE(*nv)};
        VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                                .pNext = real ? &cmf : NULL};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12};
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        caps.feature = cmf.cooperativeMatrix;
        caps.float16 = f12.shaderFloat16;
        caps.memory_model = f12.vulkanMemoryModel;
        if (real) n = cm_props((VkInstance)instance, pd, *nv, &props);
    }
    int pick = rwkv7_vk_coopmat_pick(props, n, &caps, env, why);
    free(props);
    return pick;
}
