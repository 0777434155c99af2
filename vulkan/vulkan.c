/* vulkan.c: the Vulkan backend's device side: loader (loader.h: volk or dlopen), instance and
 * device selection, device listing and the banner, setup (memory types, command pool, staging,
 * pipelines, IQ tables), the vtable and the registry entry. Memory is in memory.c, submission and
 * graph replay in submit.c. Weights keep their GGUF byte layout; nothing is dequantized at load. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "coopmat.h"
#include "iq_tables.h"
#include "vk.h"

static struct rwkv7_vk *as_vk(struct rwkv7_backend *be) { return (struct rwkv7_vk *)be; }
const char *rwkv7_vk_result_str(VkResult r) {
    switch (r) {
#define C(x) case x: return #x;
        C(VK_SUCCESS) C(VK_NOT_READY) C(VK_TIMEOUT) C(VK_INCOMPLETE)
        C(VK_ERROR_OUT_OF_HOST_MEMORY) C(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        C(VK_ERROR_INITIALIZATION_FAILED) C(VK_ERROR_DEVICE_LOST) C(VK_ERROR_MEMORY_MAP_FAILED)
        C(VK_ERROR_LAYER_NOT_PRESENT) C(VK_ERROR_EXTENSION_NOT_PRESENT) C(VK_ERROR_FEATURE_NOT_PRESENT)
        C(VK_ERROR_INCOMPATIBLE_DRIVER) C(VK_ERROR_TOO_MANY_OBJECTS) C(VK_ERROR_FORMAT_NOT_SUPPORTED)
        C(VK_ERROR_FRAGMENTED_POOL) C(VK_ERROR_OUT_OF_POOL_MEMORY) C(VK_ERROR_INVALID_SHADER_NV)
#undef C
    default: return "VK_ERROR_(unknown)";
    }
}

enum rwkv7_status rwkv7_vk_fail_result(struct rwkv7_vk *vk, VkResult r, const char *call,
                                       const char *func, const char *file, int line) {
    if (r == VK_ERROR_DEVICE_LOST && vk) vk->dead = true;
    return rwkv7_fail(RWKV7_ERR_DEVICE, "vulkan: %s failed in %s (%s:%d): %s%s", call, func, file, line,
                      rwkv7_vk_result_str(r), r == VK_ERROR_DEVICE_LOST ? " (backend disabled)" : "");
}

enum rwkv7_status rwkv7_vk_alive(struct rwkv7_vk *vk) {
    if (vk->dead) return rwkv7_fail(RWKV7_ERR_DEVICE, "vulkan: the device was lost earlier; the backend is disabled");
    return RWKV7_OK;
}


/* ---- loader, instance, device info ---- */

struct dev_info {
    VkPhysicalDeviceProperties props;
    char driver[VK_MAX_DRIVER_NAME_SIZE + VK_MAX_DRIVER_INFO_SIZE + 2];
    uint64_t local_bytes;
    uint32_t subgroup_size;
    bool subgroup_arith, fp16, int8, int_dot, coopmat, coopmat_nv, push_desc, budget;
};

static bool has_ext(const VkExtensionProperties *e, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(e[i].extensionName, name)) return true;
    return false;
}

static void dev_query(VkPhysicalDevice pd, struct dev_info *d) {
    memset(d, 0, sizeof *d);
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES, .pNext = &drv};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    vkGetPhysicalDeviceProperties2(pd, &p2);
    d->props = p2.properties;
    snprintf(d->driver, sizeof d->driver, "%s %s", drv.driverName, drv.driverInfo);
    d->subgroup_size = sg.subgroupSize;
    d->subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                        (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT);
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12};
    if (d->props.apiVersion >= VK_API_VERSION_1_2) vkGetPhysicalDeviceFeatures2(pd, &f2);
    d->fp16 = f12.shaderFloat16;
    d->int8 = f12.shaderInt8;
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) d->local_bytes += mp.memoryHeaps[i].size;
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
    VkExtensionProperties *e = calloc(n ? n : 1, sizeof *e);
    if (e && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS) {
        d->int_dot = has_ext(e, n, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME) || d->props.apiVersion >= VK_API_VERSION_1_3;
        d->coopmat = has_ext(e, n, "VK_KHR_cooperative_matrix");
        d->coopmat_nv = has_ext(e, n, "VK_NV_cooperative_matrix");
        d->push_desc = has_ext(e, n, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
        d->budget = has_ext(e, n, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    }
    free(e);
}

static const char *dev_type_str(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

static int dev_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

void rwkv7_vk_fmt_bytes(char *buf, size_t cap, uint64_t b) {
    if (b >= ((uint64_t)1 << 30)) snprintf(buf, cap, "%.1f GiB", (double)b / (1 << 30));
    else snprintf(buf, cap, "%.1f MiB", (double)b / (1 << 20));
}

/* Vulkan0, Vulkan1, ...: name, type, driver, device-local memory, subgroup size and the features
 * that pick kernels, one device per line plus a feature line; one line saying why when there is none. */
static void vk_print_devices(FILE *f) {
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    if (rwkv7_vk_instance_create(&inst, &messenger) != RWKV7_OK) {
        fprintf(f, "Vulkan: unavailable (%s)\n", rwkv7_last_error());
        return;
    }
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    VkPhysicalDevice *pds = calloc(n ? n : 1, sizeof *pds);
    if (!pds || n == 0 || vkEnumeratePhysicalDevices(inst, &n, pds) != VK_SUCCESS) n = 0;
    if (n == 0) fprintf(f, "Vulkan: no devices\n");
    for (uint32_t i = 0; i < n; i++) {
        struct dev_info d;
        dev_query(pds[i], &d);
        char mem[32];
        rwkv7_vk_fmt_bytes(mem, sizeof mem, d.local_bytes);
        fprintf(f, "Vulkan%u: %s (%s, driver %s, Vulkan %u.%u), %s device-local, subgroup %u\n", i,
                d.props.deviceName, dev_type_str(d.props.deviceType), d.driver,
                VK_API_VERSION_MAJOR(d.props.apiVersion), VK_API_VERSION_MINOR(d.props.apiVersion), mem,
                d.subgroup_size);
        fprintf(f, "         fp16 %s, int8 %s, integer dot product %s, cooperative matrix %s, subgroup arithmetic %s%s\n",
                d.fp16 ? "yes" : "no", d.int8 ? "yes" : "no", d.int_dot ? "yes" : "no",
                d.coopmat ? (d.coopmat_nv ? "KHR + NV" : "KHR") : (d.coopmat_nv ? "NV" : "no"),
                d.subgroup_arith ? "yes" : "no",
                d.props.apiVersion < VK_API_VERSION_1_2 ? " (unusable: needs Vulkan 1.2)" : "");
    }
    free(pds);
    rwkv7_vk_instance_destroy(inst, messenger);
}

/* ---- init / free ---- */

static void vk_free(struct rwkv7_backend *be) {
    struct rwkv7_vk *vk = as_vk(be);
    if (!vk) return;
    rwkv7_vk_prof_print(vk);
    free(vk->prof);
    if (vk->device) {
        vkDeviceWaitIdle(vk->device);
        if (vk->prof_pool) vkDestroyQueryPool(vk->device, vk->prof_pool, NULL);
        vk->completed = vk->submitted;
        vk->capturing = false;
        vk->cmd = VK_NULL_HANDLE;
        if (vk->dummy) rwkv7_vk_buf_free(be, vk->dummy);
        if (vk->tables) rwkv7_vk_buf_free(be, vk->tables);
        if (vk->partials) rwkv7_vk_buf_free(be, vk->partials);
        if (vk->wkv_scratch) rwkv7_vk_buf_free(be, vk->wkv_scratch);
        rwkv7_vk_pipelines_free(vk);
        for (int i = 0; i < vk->n_blocks; i++) { /* blocks of buffers the caller never freed */
            if (vk->blocks[i].alias) {
                vkDestroyBuffer(vk->device, vk->blocks[i].alias->buffer, NULL);
                free(vk->blocks[i].alias);
            }
            if (vk->blocks[i].memory) vkFreeMemory(vk->device, vk->blocks[i].memory, NULL);
            free(vk->blocks[i].free);
        }
        free(vk->blocks);
        if (vk->staging_ptr) vkUnmapMemory(vk->device, vk->staging_mem);
        if (vk->staging) vkDestroyBuffer(vk->device, vk->staging, NULL);
        if (vk->staging_mem) vkFreeMemory(vk->device, vk->staging_mem, NULL);
        for (int i = 0; i < RWKV7_VK_RING; i++)
            if (vk->fences[i]) vkDestroyFence(vk->device, vk->fences[i], NULL);
        if (vk->cmd_pool) vkDestroyCommandPool(vk->device, vk->cmd_pool, NULL);
        vkDestroyDevice(vk->device, NULL);
    }
    rwkv7_vk_instance_destroy(vk->instance, vk->messenger);
    free(vk);
}

static void vk_set_row_invariant(struct rwkv7_backend *be, bool on) { as_vk(be)->row_invariant = on; }

static const struct rwkv7_backend_i vk_iface = {
    .name = "vulkan",
    .free = vk_free,
    .buf_alloc = rwkv7_vk_buf_alloc,
    .buf_free = rwkv7_vk_buf_free,
    .buf_wrap_host = NULL,
    .buf_set = rwkv7_vk_buf_set,
    .buf_get = rwkv7_vk_buf_get,
    .sync = rwkv7_vk_sync,
    .supports = rwkv7_vk_supports,
    .copy_bandwidth = rwkv7_vk_copy_bandwidth,
    .set_row_invariant = vk_set_row_invariant,
    .mem_info = rwkv7_vk_mem_info,
    .graph_begin = rwkv7_vk_graph_begin,
    .graph_end = rwkv7_vk_graph_end,
    .graph_launch = rwkv7_vk_graph_launch,
    .graph_drop = rwkv7_vk_graph_drop,
#define RWKV7_X_(U, l) .l = rwkv7_vk_##l,
    RWKV7_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
    .ffn_key = rwkv7_vk_ffn_key,
    .norm_shift = rwkv7_vk_norm_shift,
    .wkv_block = rwkv7_vk_wkv_block,
    .lora_up = rwkv7_vk_lora_up,
    .matmul_n = rwkv7_vk_matmul_n,
};

/* Picks the physical device: "Vulkan<N>" / "<N>" by index, NULL/"auto" the best ranked type,
 * "gpu" the best ranked type that is not a CPU implementation (lavapipe/llvmpipe): what
 * `--backend auto` asks for, since the native CPU backend is much faster than Vulkan on a CPU. */
static enum rwkv7_status pick_device(struct rwkv7_vk *vk, const char *device, uint32_t *index) {
    uint32_t n = 0;
    VK_CHECK(vk, vkEnumeratePhysicalDevices(vk->instance, &n, NULL));
    if (n == 0) return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: no Vulkan devices");
    VkPhysicalDevice *pds = calloc(n, sizeof *pds);
    if (!pds) return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of host memory");
    VkResult r = vkEnumeratePhysicalDevices(vk->instance, &n, pds);
    if (r != VK_SUCCESS) {
        free(pds);
        return rwkv7_vk_fail_result(vk, r, "vkEnumeratePhysicalDevices", __func__, __FILE__, __LINE__);
    }
    int best = -1, best_rank = -1;
    bool gpu_only = device && !strcmp(device, "gpu");
    if (device && *device && strcmp(device, "auto") != 0 && !gpu_only) {
        const char *num = !strncasecmp(device, "vulkan", 6) ? device + 6 : device;
        char *end;
        long i = strtol(num, &end, 10);
        if (*num == '\0' || *end != '\0' || i < 0 || i >= (long)n) {
            free(pds);
            return rwkv7_fail(RWKV7_ERR_ARG, "vulkan: no device '%s' (%u device%s: Vulkan0..Vulkan%u)", device, n,
                              n == 1 ? "" : "s", n - 1);
        }
        best = (int)i;
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(pds[best], &p);
        if (p.apiVersion < VK_API_VERSION_1_2) {
            free(pds);
            return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: device %s supports only Vulkan %u.%u (1.2 needed)",
                              p.deviceName, VK_API_VERSION_MAJOR(p.apiVersion), VK_API_VERSION_MINOR(p.apiVersion));
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(pds[i], &p);
            if (p.apiVersion < VK_API_VERSION_1_2) continue;
            if (gpu_only && p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) continue;
            if (dev_rank(p.deviceType) > best_rank) { best_rank = dev_rank(p.deviceType); best = (int)i; }
        }
        if (best < 0) {
            free(pds);
            return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, gpu_only ? "vulkan: no GPU device (only CPU implementations such as llvmpipe; use --backend vulkan to run on one)"
                                                              : "vulkan: no device supports Vulkan 1.2");
        }
    }
    vk->phys = pds[best];
    *index = (uint32_t)best;
    free(pds);
    return RWKV7_OK;
}

static enum rwkv7_status create_device(struct rwkv7_vk *vk, const struct dev_info *d) {
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, NULL);
    VkQueueFamilyProperties qf[16];
    if (nq > 16) nq = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, qf);
    int fam = -1;
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = (int)i;
    if (fam < 0) return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: %s has no compute queue", d->props.deviceName);
    vk->queue_family = (uint32_t)fam;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = vk->queue_family,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    const char *exts[3];
    uint32_t n_ext = 0;
    vk->has_push_desc = d->push_desc && getenv("RWKV7_VK_NO_PUSH_DESCRIPTOR") == NULL; /* env: test the pool path */
    vk->profiling = getenv("RWKV7_VK_PROFILE") && atoi(getenv("RWKV7_VK_PROFILE")) != 0; /* submit.c */
    vk->has_budget = d->budget;
    if (vk->has_push_desc) exts[n_ext++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    if (vk->has_budget) exts[n_ext++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    /* Cooperative-matrix prefill (coopmat.c): the built flavour's extension, its feature (the KHR
     * and NV feature structures share this layout; the KHR sType is absent from older headers) and
     * the two Vulkan 1.2 features its shaders use. */
    struct {
        VkStructureType sType;
        void *pNext;
        VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
    } cmf = {(VkStructureType)RWKV7_VK_CM_FEATURES_STYPE(vk->coopmat_nv), NULL, VK_TRUE, VK_FALSE};
    /* The shaders are SPIR-V 1.6, whose LocalSizeId execution mode needs maintenance4 (core in
     * Vulkan 1.3, which the pick requires; the validation layer reports it missing). The emulated
     * test variants need no extension, only these features. */
    VkPhysicalDeviceVulkan13Features f13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
                                            .pNext = vk->coopmat_emu ? NULL : &cmf,
                                            .maintenance4 = VK_TRUE};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .pNext = &f13,
                                            .shaderFloat16 = VK_TRUE,
                                            .vulkanMemoryModel = VK_TRUE};
    if (vk->coopmat && !vk->coopmat_emu) exts[n_ext++] = RWKV7_VK_CM_EXT(vk->coopmat_nv);
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = vk->coopmat ? &f12 : NULL,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qci,
                             .enabledExtensionCount = n_ext,
                             .ppEnabledExtensionNames = exts};
    VK_CHECK(vk, vkCreateDevice(vk->phys, &ci, NULL, &vk->device));
    rwkv7_vk_loader_device(vk->device);
    vkGetDeviceQueue(vk->device, vk->queue_family, 0, &vk->queue);
    rwkv7_vk_prof_init(vk, qf[fam].timestampValidBits);
    return RWKV7_OK;
}

static enum rwkv7_status setup(struct rwkv7_vk *vk) {
    vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->mem_props);
    int dev = rwkv7_vk_find_mem_type(&vk->mem_props, ~0u, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    int stg = rwkv7_vk_find_mem_type(&vk->mem_props, ~0u, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                                 VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (stg < 0) stg = rwkv7_vk_find_mem_type(&vk->mem_props, ~0u, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (dev < 0 || stg < 0) return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: no suitable memory types");
    vk->mem_device = (uint32_t)dev;
    vk->mem_staging = (uint32_t)stg;
    vk->heap_device = vk->mem_props.memoryTypes[dev].heapIndex;

    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = vk->queue_family};
    VK_CHECK(vk, vkCreateCommandPool(vk->device, &pci, NULL, &vk->cmd_pool));
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = vk->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 2};
    VK_CHECK(vk, vkAllocateCommandBuffers(vk->device, &ai, vk->cmds));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    for (int i = 0; i < RWKV7_VK_RING; i++) VK_CHECK(vk, vkCreateFence(vk->device, &fci, NULL, &vk->fences[i]));

    struct rwkv7_buf *stg_buf;
    RWKV7_TRY(rwkv7_vk_make_buffer(vk, RWKV7_VK_STAGING_BYTES, true, &stg_buf));
    vk->staging = stg_buf->buffer;
    vk->staging_mem = stg_buf->memory;
    vk->staging_size = RWKV7_VK_STAGING_BYTES;
    free(stg_buf);
    VK_CHECK(vk, vkMapMemory(vk->device, vk->staging_mem, 0, VK_WHOLE_SIZE, 0, &vk->staging_ptr));

    RWKV7_TRY(rwkv7_vk_pipelines_init(vk));
    RWKV7_TRY(rwkv7_vk_make_buffer(vk, 256, false, &vk->dummy));

    /* IQ grids, uploaded once (abi.h RWKV7_VK_TAB_* word offsets; little-endian host). */
    uint32_t *tab = calloc(RWKV7_VK_TAB_WORDS, sizeof *tab);
    if (!tab) return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of host memory");
    memcpy(tab + RWKV7_VK_TAB_IQ2XXS, rwkv7_iq2xxs_grid, sizeof rwkv7_iq2xxs_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ2XS, rwkv7_iq2xs_grid, sizeof rwkv7_iq2xs_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ2S, rwkv7_iq2s_grid, sizeof rwkv7_iq2s_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ3XXS, rwkv7_iq3xxs_grid, sizeof rwkv7_iq3xxs_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ3S, rwkv7_iq3s_grid, sizeof rwkv7_iq3s_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ1S, rwkv7_iq1s_grid, sizeof rwkv7_iq1s_grid);
    enum rwkv7_status st = rwkv7_vk_make_buffer(vk, RWKV7_VK_TAB_WORDS * 4, false, &vk->tables);
    if (st == RWKV7_OK) st = rwkv7_vk_buf_set(&vk->base, vk->tables, 0, tab, RWKV7_VK_TAB_WORDS * 4);
    free(tab);
    return st;
}

static enum rwkv7_status vk_init(const char *device, int n_threads, struct rwkv7_backend **out) {
    *out = NULL;
    struct rwkv7_vk *vk = calloc(1, sizeof *vk);
    if (!vk) return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of host memory");
    vk->base.i = &vk_iface;
    uint32_t index = 0;
    struct dev_info d;
    enum rwkv7_status st = rwkv7_vk_instance_create(&vk->instance, &vk->messenger);
    if (st == RWKV7_OK) st = pick_device(vk, device, &index);
    if (st == RWKV7_OK) {
        dev_query(vk->phys, &d);
        vk->props = d.props;
        vk->subgroup_size = d.subgroup_size;
        vk->subgroup_arith = d.subgroup_arith && getenv("RWKV7_VK_NO_SUBGROUP") == NULL;
        vk->coopmat = rwkv7_vk_coopmat_probe(vk->instance, vk->phys, d.props.apiVersion, d.coopmat, d.coopmat_nv,
                                             d.subgroup_size, d.props.limits.maxComputeSharedMemorySize,
                                             &vk->coopmat_nv, &vk->coopmat_emu, &vk->coopmat_why) >= 0;
        vk->coopmat_emu = vk->coopmat && vk->coopmat_emu;
        /* A test or tuning variable set to a value the backend does not take: one line, then the default. */
        const char *why_lpr, *why_stage;
        vk->mv_lpr = rwkv7_vk_matvec_pick_lpr(vk->subgroup_size, vk->subgroup_arith, getenv("RWKV7_VK_MATVEC_LPR"),
                                              &why_lpr);
        vk->mv_stage = rwkv7_vk_matvec_stage(d.props.limits.maxComputeSharedMemorySize,
                                             d.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU,
                                             getenv("RWKV7_VK_MATVEC_STAGE"), &why_stage);
        const char *cm_env = getenv("RWKV7_VK_COOPMAT");
        if (strstr(why_lpr, "ignored")) fprintf(stderr, "rwkv7: vulkan: %s\n", why_lpr);
        if (strstr(why_stage, "ignored")) fprintf(stderr, "rwkv7: vulkan: %s\n", why_stage);
        if (cm_env && !strcmp(cm_env, "emulate") && !vk->coopmat_emu)
            fprintf(stderr, "rwkv7: vulkan: RWKV7_VK_COOPMAT=emulate ignored: %s\n", vk->coopmat_why);
        st = create_device(vk, &d);
    }
    if (st == RWKV7_OK) st = setup(vk);
    if (st != RWKV7_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rwkv7_last_error());
        vk_free(&vk->base);
        return rwkv7_fail(st, "%s", msg);
    }
    char mem[32];
    rwkv7_vk_fmt_bytes(mem, sizeof mem, d.local_bytes);
    snprintf(vk->base.desc, sizeof vk->base.desc, "Vulkan%u: %.64s (%s, %.48s), %s, subgroup %u; uses %s, %s",
             index, d.props.deviceName, dev_type_str(d.props.deviceType), d.driver, mem, d.subgroup_size,
             vk->subgroup_arith ? "subgroupAdd" : "shared-memory reductions",
             vk->has_push_desc ? "push descriptors + graph replay" : "descriptor pool");
    size_t used = strlen(vk->base.desc);
    /* The decode matvec's layout where it is not the plain one (32 lanes per row, T > 1 read
     * straight): what a GPU run's log needs to say which kernels it timed. */
    if (vk->mv_lpr != RWKV7_VK_MATVEC_LPR || vk->mv_stage)
        snprintf(vk->base.desc + used, sizeof vk->base.desc - used, ", matvec %u lanes/row%s", vk->mv_lpr,
                 vk->mv_stage ? " + T>1 staged" : "");
    used = strlen(vk->base.desc);
    if (vk->coopmat) snprintf(vk->base.desc + used, sizeof vk->base.desc - used, ", cooperative-matrix prefill (%s)", vk->coopmat_why);
    *out = &vk->base;
    return RWKV7_OK;
}

static bool vk_weight_type_ok(int type) { return rwkv7_vk_supports(NULL, RWKV7_OP_MATMUL, type); }

const struct rwkv7_backend_reg rwkv7_backend_reg_vulkan = {
    .name = "vulkan",
    .device_prefix = "Vulkan",
    .gpu = true,
    .auto_device = "gpu", /* never a CPU implementation (lavapipe): the CPU backend is faster there */
    .init = vk_init,
    .print_devices = vk_print_devices,
    .weight_type_ok = vk_weight_type_ok,
};
