/* coopmat.c: the VK_KHR_cooperative_matrix prefill path's configuration: the pure choice
 * (coopmat.h) and the device query that feeds it. The shader (shaders/matmul_cm.comp) is written
 * for one shape, 16 x 16 x 16 with fp16 inputs and fp32 accumulation at subgroup scope, the shape
 * NVIDIA's and AMD's (RDNA3) drivers list, so one compiled variant per weight type serves them;
 * devices that list only other shapes (e.g. 8 x 8 x 16) get the fp32 tile path. */
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
    if (!caps->shaders) {
        *why = "not built (glslc without GL_KHR_cooperative_matrix)";
        return -1;
    }
    if (!caps->extension || !caps->feature) {
        *why = "no VK_KHR_cooperative_matrix";
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
            *why = "fp16 x fp16 + fp32, 16x16x16";
            return i;
        }
    }
    *why = "no fp16 x fp16 + fp32 16x16x16 subgroup configuration";
    return -1;
}

/* VK_KHR_cooperative_matrix's structures and entry point, for headers that predate it (the
 * extension number 507 gives the sType values; the layout is the spec's). */
#define RWKV7_STYPE_CM_FEATURES ((VkStructureType)1000506000)
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

static bool shaders_built(void) {
    for (int i = 0; i < rwkv7_vk_spv_count; i++)
        if (!strncmp(rwkv7_vk_spv_table[i].name, "matmul_cm_", 10)) return true;
    return false;
}

int rwkv7_vk_coopmat_probe(void *instance, void *phys, uint32_t api_version, bool has_extension,
                           uint32_t subgroup_size, uint32_t shared_bytes, const char **why) {
    VkPhysicalDevice pd = (VkPhysicalDevice)phys;
    struct rwkv7_vk_cm_caps caps = {.api13 = api_version >= VK_API_VERSION_1_3,
                                    .extension = has_extension,
                                    .shaders = shaders_built(),
                                    .subgroup_size = subgroup_size,
                                    .shared_bytes = shared_bytes};
    struct rwkv7_vk_cm_prop *props = NULL;
    int n = 0;
    if (caps.extension && caps.api13) {
        struct rwkv7_vk_cm_features_khr cmf = {.sType = RWKV7_STYPE_CM_FEATURES};
        VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                                .pNext = &cmf};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12};
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        caps.feature = cmf.cooperativeMatrix;
        caps.float16 = f12.shaderFloat16;
        caps.memory_model = f12.vulkanMemoryModel;
        PFN_vkVoidFunction f = rwkv7_vk_loader_proc((VkInstance)instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
        rwkv7_pfn_cm_props get = NULL;
        memcpy(&get, &f, sizeof get);
        uint32_t cnt = 0;
        if (get && get(pd, &cnt, NULL) == VK_SUCCESS && cnt > 0 && cnt < 4096) {
            struct rwkv7_vk_cm_properties_khr *raw = calloc(cnt, sizeof *raw);
            props = calloc(cnt, sizeof *props);
            if (raw && props) {
                for (uint32_t i = 0; i < cnt; i++) raw[i].sType = RWKV7_STYPE_CM_PROPERTIES;
                VkResult r = get(pd, &cnt, raw);
                if (r == VK_SUCCESS || r == VK_INCOMPLETE)
                    for (uint32_t i = 0; i < cnt; i++)
                        props[n++] = (struct rwkv7_vk_cm_prop){raw[i].MSize, raw[i].NSize, raw[i].KSize, raw[i].AType,
                                                               raw[i].BType, raw[i].CType, raw[i].ResultType, raw[i].scope};
            }
            free(raw);
        }
    }
    int pick = rwkv7_vk_coopmat_pick(props, n, &caps, getenv("RWKV7_VK_COOPMAT"), why);
    free(props);
    return pick;
}
