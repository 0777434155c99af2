/* vulkan.c: the Vulkan backend's device side: loader (loader.h: volk or dlopen), instance/device/queue, device
 * listing and the banner, buffers (device-local, uploaded/downloaded through a persistent
 * staging buffer in 64 MiB chunks; small aligned uploads are recorded in order with
 * vkCmdUpdateBuffer), submission (vk.h), graph replay of recorded command buffers, and the vtable.
 * Weights keep their GGUF byte layout; nothing is dequantized at load. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "iq_tables.h"
#include "vk.h"
#include "vulkan_backend.h"

#define STAGING_BYTES ((VkDeviceSize)64 << 20) /* upload/download chunk */
#define UPDATE_MAX 65536                       /* vkCmdUpdateBuffer limit */

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

static struct rwkv7_vk *as_vk(struct rwkv7_backend *be) { return (struct rwkv7_vk *)be; }

/* ---- loader, instance, device info ---- */

static enum rwkv7_status load_instance(VkInstance *out) {
    *out = VK_NULL_HANDLE;
    if (!rwkv7_vk_loader_open())
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: no Vulkan loader (libvulkan.so.1) found");
    if (rwkv7_vk_loader_version() < VK_API_VERSION_1_2)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: the loader is older than Vulkan 1.2");
    const char *layers[1] = {"VK_LAYER_KHRONOS_validation"};
    const char *val = getenv("RWKV7_VK_VALIDATION");
    bool validate = val && atoi(val) != 0;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "rwkv7",
                             .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app,
                               .enabledLayerCount = validate ? 1 : 0,
                               .ppEnabledLayerNames = layers};
    VkResult r = vkCreateInstance(&ci, NULL, out);
    if (r != VK_SUCCESS && validate) {
        ci.enabledLayerCount = 0; /* validation requested but not installed: run without */
        r = vkCreateInstance(&ci, NULL, out);
    }
    if (r != VK_SUCCESS)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: vkCreateInstance failed: %s", rwkv7_vk_result_str(r));
    rwkv7_vk_loader_instance(*out);
    return RWKV7_OK;
}

struct dev_info {
    VkPhysicalDeviceProperties props;
    char driver[VK_MAX_DRIVER_NAME_SIZE + VK_MAX_DRIVER_INFO_SIZE + 2];
    uint64_t local_bytes;
    uint32_t subgroup_size;
    bool subgroup_arith, fp16, int8, int_dot, coopmat, push_desc, budget;
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

static void fmt_bytes(char *buf, size_t cap, uint64_t b) {
    if (b >= ((uint64_t)1 << 30)) snprintf(buf, cap, "%.1f GiB", (double)b / (1 << 30));
    else snprintf(buf, cap, "%.1f MiB", (double)b / (1 << 20));
}

void rwkv7_vulkan_print_devices(FILE *f) {
    VkInstance inst;
    if (load_instance(&inst) != RWKV7_OK) {
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
        fmt_bytes(mem, sizeof mem, d.local_bytes);
        fprintf(f, "Vulkan%u: %s (%s, driver %s, Vulkan %u.%u), %s device-local, subgroup %u\n", i,
                d.props.deviceName, dev_type_str(d.props.deviceType), d.driver,
                VK_API_VERSION_MAJOR(d.props.apiVersion), VK_API_VERSION_MINOR(d.props.apiVersion), mem,
                d.subgroup_size);
        fprintf(f, "         fp16 %s, int8 %s, integer dot product %s, cooperative matrix %s, subgroup arithmetic %s%s\n",
                d.fp16 ? "yes" : "no", d.int8 ? "yes" : "no", d.int_dot ? "yes" : "no", d.coopmat ? "yes" : "no",
                d.subgroup_arith ? "yes" : "no",
                d.props.apiVersion < VK_API_VERSION_1_2 ? " (unusable: needs Vulkan 1.2)" : "");
    }
    free(pds);
    vkDestroyInstance(inst, NULL);
}

/* ---- submission ---- */

void rwkv7_vk_barrier(struct rwkv7_vk *vk) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                                           VK_ACCESS_HOST_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(vk->cmd, st | VK_PIPELINE_STAGE_HOST_BIT, st, 0, 1, &mb, 0, NULL, 0, NULL);
    vk->n_pend_rd = vk->n_pend_wr = 0;
}

void rwkv7_vk_barrier_pending(struct rwkv7_vk *vk) {
    if (vk->n_pend_rd || vk->n_pend_wr) rwkv7_vk_barrier(vk);
}

static enum rwkv7_status wait_idle(struct rwkv7_vk *vk) {
    if (!vk->in_flight) return RWKV7_OK;
    VK_CHECK(vk, vkWaitForFences(vk->device, 1, &vk->fence, VK_TRUE, UINT64_MAX));
    VK_CHECK(vk, vkResetFences(vk->device, 1, &vk->fence));
    vk->in_flight = false;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_vk_begin(struct rwkv7_vk *vk) {
    if (vk->cmd) return RWKV7_OK;
    /* cmds[cmd_idx] was last submitted two flushes ago, and flush waited for it before the
     * submission that followed, so it is idle here. */
    VkCommandBuffer cb = vk->cmds[vk->cmd_idx];
    VK_CHECK(vk, vkResetCommandBuffer(cb, 0));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vk, vkBeginCommandBuffer(cb, &bi));
    vk->cmd = cb;
    rwkv7_vk_barrier(vk); /* orders against everything submitted before */
    return RWKV7_OK;
}

static enum rwkv7_status submit(struct rwkv7_vk *vk, VkCommandBuffer cb) {
    RWKV7_TRY(wait_idle(vk));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    VK_CHECK(vk, vkQueueSubmit(vk->queue, 1, &si, vk->fence));
    vk->in_flight = true;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_vk_flush(struct rwkv7_vk *vk, bool wait) {
    RWKV7_TRY(rwkv7_vk_alive(vk));
    if (vk->cmd && !vk->capturing) {
        VkCommandBuffer cb = vk->cmd;
        vk->cmd = VK_NULL_HANDLE;
        VK_CHECK(vk, vkEndCommandBuffer(cb));
        RWKV7_TRY(submit(vk, cb));
        vk->cmd_idx ^= 1;
    }
    if (wait) RWKV7_TRY(wait_idle(vk));
    return RWKV7_OK;
}

static enum rwkv7_status vk_sync(struct rwkv7_backend *be) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_flush(vk, true));
    if (vk->desc_pool && !vk->capturing) {
        VK_CHECK(vk, vkResetDescriptorPool(vk->device, vk->desc_pool, 0));
        vk->desc_used = 0;
    }
    return RWKV7_OK;
}

/* ---- memory ---- */

static int find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

static uint64_t heap_free(struct rwkv7_vk *vk) {
    uint64_t size = vk->mem_props.memoryHeaps[vk->heap_device].size;
    if (vk->has_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT b = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
        VkPhysicalDeviceMemoryProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &b};
        vkGetPhysicalDeviceMemoryProperties2(vk->phys, &p2);
        uint64_t bud = b.heapBudget[vk->heap_device], use = b.heapUsage[vk->heap_device];
        return bud > use ? bud - use : 0;
    }
    return size > vk->allocated ? size - vk->allocated : 0;
}

#define BLOCK_BYTES ((VkDeviceSize)256 << 20) /* suballocation block */
#define SUBALLOC_MAX ((VkDeviceSize)64 << 20)  /* larger buffers get their own allocation */

static bool range_insert(struct rwkv7_vk_block *b, int at, struct rwkv7_vk_range r) {
    if (b->n_free == b->cap_free) {
        int cap = b->cap_free ? 2 * b->cap_free : 16;
        struct rwkv7_vk_range *f = realloc(b->free, (size_t)cap * sizeof *f);
        if (!f) return false;
        b->free = f;
        b->cap_free = cap;
    }
    memmove(&b->free[at + 1], &b->free[at], (size_t)(b->n_free - at) * sizeof *b->free);
    b->free[at] = r;
    b->n_free++;
    return true;
}

static void range_remove(struct rwkv7_vk_block *b, int at) {
    memmove(&b->free[at], &b->free[at + 1], (size_t)(b->n_free - at - 1) * sizeof *b->free);
    b->n_free--;
}

/* First fit of size bytes at alignment align; false when no free range holds it. */
static bool block_take(struct rwkv7_vk_block *b, VkDeviceSize size, VkDeviceSize align, VkDeviceSize *out) {
    for (int i = 0; i < b->n_free; i++) {
        struct rwkv7_vk_range f = b->free[i];
        VkDeviceSize start = (f.offs + align - 1) / align * align, end = f.offs + f.size;
        if (start + size > end) continue;
        struct rwkv7_vk_range pre = {f.offs, start - f.offs}, post = {start + size, end - start - size};
        if (pre.size && post.size) {
            if (!range_insert(b, i + 1, post)) return false;
            b->free[i] = pre;
        } else if (pre.size) {
            b->free[i] = pre;
        } else if (post.size) {
            b->free[i] = post;
        } else {
            range_remove(b, i);
        }
        *out = start;
        return true;
    }
    return false;
}

static void block_give(struct rwkv7_vk_block *b, VkDeviceSize offs, VkDeviceSize size) {
    int i = 0;
    while (i < b->n_free && b->free[i].offs < offs) i++;
    bool prev = i > 0 && b->free[i - 1].offs + b->free[i - 1].size == offs;
    bool next = i < b->n_free && offs + size == b->free[i].offs;
    if (prev && next) {
        b->free[i - 1].size += size + b->free[i].size;
        range_remove(b, i);
    } else if (prev) {
        b->free[i - 1].size += size;
    } else if (next) {
        b->free[i].offs = offs;
        b->free[i].size += size;
    } else if (!range_insert(b, i, (struct rwkv7_vk_range){offs, size})) {
        /* out of host memory: the range stays unusable until the block is freed */
    }
}

static enum rwkv7_status oom(struct rwkv7_vk *vk, VkDeviceSize need, bool host) {
    char n[32], avail[32], total[32];
    fmt_bytes(n, sizeof n, need);
    fmt_bytes(avail, sizeof avail, heap_free(vk));
    fmt_bytes(total, sizeof total, vk->mem_props.memoryHeaps[vk->heap_device].size);
    return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of %s memory allocating %s (%s free of %s)",
                      host ? "host-visible" : "device", n, avail, total);
}

static VkResult alloc_memory(struct rwkv7_vk *vk, VkDeviceSize size, uint32_t type, VkDeviceMemory *out) {
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = size, .memoryTypeIndex = type};
    return vkAllocateMemory(vk->device, &ai, NULL, out);
}

/* Places b (device-local, req.size small) in a block; false when no block can take it. */
static bool suballoc(struct rwkv7_vk *vk, struct rwkv7_buf *b, const VkMemoryRequirements *req) {
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < vk->n_blocks; i++) {
            struct rwkv7_vk_block *blk = &vk->blocks[i];
            VkDeviceSize offs;
            if (!blk->memory || !block_take(blk, req->size, req->alignment, &offs)) continue;
            if (vkBindBufferMemory(vk->device, b->buffer, blk->memory, offs) != VK_SUCCESS) {
                block_give(blk, offs, req->size);
                return false;
            }
            b->block = i;
            b->block_offs = offs;
            b->block_size = req->size;
            blk->n_live++;
            return true;
        }
        if (pass == 1) break;
        /* No room: open a new block (reusing a freed slot). */
        int slot = -1;
        for (int i = 0; i < vk->n_blocks && slot < 0; i++)
            if (!vk->blocks[i].memory) slot = i;
        if (slot < 0) {
            struct rwkv7_vk_block *nb = realloc(vk->blocks, (size_t)(vk->n_blocks + 1) * sizeof *nb);
            if (!nb) return false;
            vk->blocks = nb;
            slot = vk->n_blocks++;
            memset(&vk->blocks[slot], 0, sizeof vk->blocks[slot]);
        }
        struct rwkv7_vk_block *blk = &vk->blocks[slot];
        if (alloc_memory(vk, BLOCK_BYTES, vk->mem_device, &blk->memory) != VK_SUCCESS) {
            blk->memory = VK_NULL_HANDLE;
            return false;
        }
        blk->size = BLOCK_BYTES;
        blk->n_free = 0;
        if (!range_insert(blk, 0, (struct rwkv7_vk_range){0, BLOCK_BYTES})) {
            vkFreeMemory(vk->device, blk->memory, NULL);
            blk->memory = VK_NULL_HANDLE;
            return false;
        }
        vk->allocated += BLOCK_BYTES;
    }
    return false;
}

static enum rwkv7_status make_buffer(struct rwkv7_vk *vk, VkDeviceSize size, bool host, struct rwkv7_buf **out) {
    *out = NULL;
    struct rwkv7_buf *b = calloc(1, sizeof *b);
    if (!b) return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of host memory");
    b->size = size;
    b->block = -1;
    VkDeviceSize alloc_size = size < 4 ? 4 : (size + 3) / 4 * 4;
    VkBufferCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = alloc_size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(vk->device, &ci, NULL, &b->buffer);
    if (r != VK_SUCCESS) {
        free(b);
        return rwkv7_vk_fail_result(vk, r, "vkCreateBuffer", __func__, __FILE__, __LINE__);
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->device, b->buffer, &req);
    uint32_t type = host ? vk->mem_staging : vk->mem_device;
    if (!(req.memoryTypeBits & (1u << type))) {
        int t = find_mem_type(&vk->mem_props, req.memoryTypeBits,
                              host ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
                                   : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        type = t < 0 ? 0 : (uint32_t)t;
    }
    if (!host && type == vk->mem_device && req.size <= SUBALLOC_MAX && suballoc(vk, b, &req)) {
        *out = b;
        return RWKV7_OK;
    }
    r = alloc_memory(vk, req.size, type, &b->memory);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(vk->device, b->buffer, NULL);
        free(b);
        if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) return oom(vk, req.size, host);
        return rwkv7_vk_fail_result(vk, r, "vkAllocateMemory", __func__, __FILE__, __LINE__);
    }
    r = vkBindBufferMemory(vk->device, b->buffer, b->memory, 0);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(vk->device, b->buffer, NULL);
        vkFreeMemory(vk->device, b->memory, NULL);
        free(b);
        return rwkv7_vk_fail_result(vk, r, "vkBindBufferMemory", __func__, __FILE__, __LINE__);
    }
    if (!host) vk->allocated += req.size;
    b->block_size = req.size;
    *out = b;
    return RWKV7_OK;
}

static void vk_buf_free(struct rwkv7_backend *be, struct rwkv7_buf *b) {
    struct rwkv7_vk *vk = as_vk(be);
    if (!b) return;
    /* The buffer may still be used by recorded or in-flight work. */
    if (rwkv7_vk_flush(vk, true) != RWKV7_OK) { /* device lost: destroying is still valid */ }
    vkDestroyBuffer(vk->device, b->buffer, NULL);
    if (b->block >= 0) {
        struct rwkv7_vk_block *blk = &vk->blocks[b->block];
        block_give(blk, b->block_offs, b->block_size);
        if (--blk->n_live == 0) {
            vkFreeMemory(vk->device, blk->memory, NULL);
            free(blk->free);
            vk->allocated -= blk->size;
            memset(blk, 0, sizeof *blk);
        }
    } else {
        vkFreeMemory(vk->device, b->memory, NULL);
        vk->allocated -= vk->allocated >= b->block_size ? b->block_size : vk->allocated;
    }
    free(b);
}

static enum rwkv7_status vk_buf_alloc(struct rwkv7_backend *be, size_t size, struct rwkv7_buf **out) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    return make_buffer(vk, size, false, out);
}

/* One chunk through the staging buffer: to_device copies staging -> buf, else buf -> staging. */
static enum rwkv7_status staged_copy(struct rwkv7_vk *vk, struct rwkv7_buf *buf, size_t offs, size_t n, bool to_device) {
    RWKV7_TRY(rwkv7_vk_begin(vk));
    rwkv7_vk_barrier_pending(vk);
    VkBufferCopy bc = {.srcOffset = to_device ? 0 : offs, .dstOffset = to_device ? offs : 0, .size = n};
    if (to_device) vkCmdCopyBuffer(vk->cmd, vk->staging, buf->buffer, 1, &bc);
    else vkCmdCopyBuffer(vk->cmd, buf->buffer, vk->staging, 1, &bc);
    rwkv7_vk_barrier(vk);
    return rwkv7_vk_flush(vk, true);
}

static enum rwkv7_status vk_buf_set(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs,
                                    const void *src, size_t n) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    if (offs + n > buf->size)
        return rwkv7_fail(RWKV7_ERR_ARG, "vulkan: buf_set of %zu bytes at %zu overruns a %llu-byte buffer", n, offs,
                          (unsigned long long)buf->size);
    if (n == 0) return RWKV7_OK;
    if (n <= UPDATE_MAX && offs % 4 == 0 && n % 4 == 0 && !vk->capturing) {
        /* Small writes (tokens, slots) stay in stream order without a round trip. */
        RWKV7_TRY(rwkv7_vk_begin(vk));
        rwkv7_vk_barrier_pending(vk); /* earlier dispatches may still read the old bytes */
        vkCmdUpdateBuffer(vk->cmd, buf->buffer, offs, n, src);
        rwkv7_vk_barrier(vk);
        return RWKV7_OK;
    }
    /* While a graph is being captured the write happens now, outside the captured commands. */
    bool capturing = vk->capturing;
    VkCommandBuffer saved = vk->cmd;
    if (capturing) { vk->capturing = false; vk->cmd = VK_NULL_HANDLE; }
    enum rwkv7_status st = rwkv7_vk_flush(vk, true);
    for (size_t done = 0; st == RWKV7_OK && done < n;) {
        size_t c = n - done < STAGING_BYTES ? n - done : (size_t)STAGING_BYTES;
        memcpy(vk->staging_ptr, (const uint8_t *)src + done, c);
        st = staged_copy(vk, buf, offs + done, c, true);
        done += c;
    }
    if (capturing) { vk->capturing = true; vk->cmd = saved; }
    return st;
}

static enum rwkv7_status vk_buf_get(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs, void *dst, size_t n) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    if (offs + n > buf->size)
        return rwkv7_fail(RWKV7_ERR_ARG, "vulkan: buf_get of %zu bytes at %zu overruns a %llu-byte buffer", n, offs,
                          (unsigned long long)buf->size);
    if (vk->capturing) return rwkv7_fail(RWKV7_ERR_ARG, "vulkan: buf_get while a graph is being captured");
    RWKV7_TRY(rwkv7_vk_flush(vk, true));
    for (size_t done = 0; done < n;) {
        size_t c = n - done < STAGING_BYTES ? n - done : (size_t)STAGING_BYTES;
        RWKV7_TRY(staged_copy(vk, buf, offs + done, c, false));
        memcpy((uint8_t *)dst + done, vk->staging_ptr, c);
        done += c;
    }
    return RWKV7_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void vk_set_row_invariant(struct rwkv7_backend *be, bool on) { as_vk(be)->row_invariant = on; }

static enum rwkv7_status vk_mem_info(struct rwkv7_backend *be, uint64_t *free_bytes, uint64_t *total_bytes) {
    struct rwkv7_vk *vk = as_vk(be);
    *free_bytes = heap_free(vk);
    *total_bytes = vk->mem_props.memoryHeaps[vk->heap_device].size;
    return RWKV7_OK;
}

static double vk_copy_bandwidth(struct rwkv7_backend *be) {
    struct rwkv7_vk *vk = as_vk(be);
    VkDeviceSize size = (VkDeviceSize)256 << 20;
    if (vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) size = (VkDeviceSize)64 << 20; /* keep lavapipe quick */
    struct rwkv7_buf *a = NULL, *b = NULL;
    double gbs = 0;
    if (vk_buf_alloc(be, size, &a) != RWKV7_OK || vk_buf_alloc(be, size, &b) != RWKV7_OK) goto done;
    VkBufferCopy bc = {0, 0, size};
    const int reps = 4;
    double t0 = 0;
    for (int i = 0; i <= reps; i++) { /* i == 0 warms up */
        if (i == 1) t0 = now_s();
        if (rwkv7_vk_begin(vk) != RWKV7_OK) goto done;
        vkCmdCopyBuffer(vk->cmd, a->buffer, b->buffer, 1, &bc);
        rwkv7_vk_barrier(vk);
        if (rwkv7_vk_flush(vk, true) != RWKV7_OK) goto done;
    }
    double dt = now_s() - t0;
    if (dt > 0) gbs = 2.0 * (double)size * reps / dt / 1e9;
done:
    vk_buf_free(be, a);
    vk_buf_free(be, b);
    return gbs;
}

/* ---- graph replay ---- */

static enum rwkv7_status vk_graph_begin(struct rwkv7_backend *be, uint64_t key) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    RWKV7_ASSERT(!vk->capturing);
    /* Without push descriptors the recorded sets would be recycled: run uncaptured instead. */
    if (!vk->has_push_desc || vk->n_graphs >= RWKV7_VK_MAX_GRAPHS) return RWKV7_OK;
    for (int i = 0; i < vk->n_graphs; i++)
        if (vk->graphs[i].key == key) return RWKV7_OK; /* already recorded: keep the first */
    RWKV7_TRY(rwkv7_vk_flush(vk, false));
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = vk->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkCommandBuffer cb;
    VK_CHECK(vk, vkAllocateCommandBuffers(vk->device, &ai, &cb));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    VK_CHECK(vk, vkBeginCommandBuffer(cb, &bi));
    vk->cmd = cb;
    rwkv7_vk_barrier(vk);
    vk->capturing = true;
    vk->capture_key = key;
    return RWKV7_OK;
}

static enum rwkv7_status vk_graph_end(struct rwkv7_backend *be) {
    struct rwkv7_vk *vk = as_vk(be);
    if (!vk->capturing) return rwkv7_vk_alive(vk);
    vk->capturing = false;
    VkCommandBuffer cb = vk->cmd;
    vk->cmd = VK_NULL_HANDLE;
    VK_CHECK(vk, vkEndCommandBuffer(cb));
    vk->graphs[vk->n_graphs++] = (struct rwkv7_vk_graph){vk->capture_key, cb};
    return submit(vk, cb); /* the captured ops also run now */
}

static bool vk_graph_launch(struct rwkv7_backend *be, uint64_t key) {
    struct rwkv7_vk *vk = as_vk(be);
    if (vk->dead || vk->capturing) return false;
    for (int i = 0; i < vk->n_graphs; i++) {
        if (vk->graphs[i].key != key) continue;
        /* Pending uploads (tokens, slots) go first; submit() waits for the previous run. */
        if (rwkv7_vk_flush(vk, false) != RWKV7_OK) return false;
        return submit(vk, vk->graphs[i].cmd) == RWKV7_OK;
    }
    return false;
}

/* ---- init / free ---- */

static void vk_free(struct rwkv7_backend *be) {
    struct rwkv7_vk *vk = as_vk(be);
    if (!vk) return;
    if (vk->device) {
        vkDeviceWaitIdle(vk->device);
        vk->in_flight = false;
        vk->capturing = false;
        vk->cmd = VK_NULL_HANDLE;
        if (vk->dummy) vk_buf_free(be, vk->dummy);
        if (vk->tables) vk_buf_free(be, vk->tables);
        rwkv7_vk_pipelines_free(vk);
        for (int i = 0; i < vk->n_blocks; i++) { /* blocks of buffers the caller never freed */
            if (vk->blocks[i].memory) vkFreeMemory(vk->device, vk->blocks[i].memory, NULL);
            free(vk->blocks[i].free);
        }
        free(vk->blocks);
        if (vk->staging_ptr) vkUnmapMemory(vk->device, vk->staging_mem);
        if (vk->staging) vkDestroyBuffer(vk->device, vk->staging, NULL);
        if (vk->staging_mem) vkFreeMemory(vk->device, vk->staging_mem, NULL);
        if (vk->fence) vkDestroyFence(vk->device, vk->fence, NULL);
        if (vk->cmd_pool) vkDestroyCommandPool(vk->device, vk->cmd_pool, NULL);
        vkDestroyDevice(vk->device, NULL);
    }
    if (vk->instance) vkDestroyInstance(vk->instance, NULL);
    free(vk);
}

static const struct rwkv7_backend_i vk_iface = {
    .name = "vulkan",
    .free = vk_free,
    .buf_alloc = vk_buf_alloc,
    .buf_free = vk_buf_free,
    .buf_wrap_host = NULL,
    .buf_set = vk_buf_set,
    .buf_get = vk_buf_get,
    .sync = vk_sync,
    .supports = rwkv7_vk_supports,
    .copy_bandwidth = vk_copy_bandwidth,
    .set_row_invariant = vk_set_row_invariant,
    .mem_info = vk_mem_info,
    .graph_begin = vk_graph_begin,
    .graph_end = vk_graph_end,
    .graph_launch = vk_graph_launch,
    .embed = rwkv7_vk_embed,
    .norm = rwkv7_vk_norm,
    .matmul = rwkv7_vk_matmul,
    .token_shift = rwkv7_vk_token_shift,
    .unary = rwkv7_vk_unary,
    .binary = rwkv7_vk_binary,
    .mix = rwkv7_vk_mix,
    .key_prep = rwkv7_vk_key_prep,
    .wkv7 = rwkv7_vk_wkv7,
    .wkv_out = rwkv7_vk_wkv_out,
    .last_rows = rwkv7_vk_last_rows,
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
    const char *exts[2];
    uint32_t n_ext = 0;
    vk->has_push_desc = d->push_desc && getenv("RWKV7_VK_NO_PUSH_DESCRIPTOR") == NULL; /* env: test the pool path */
    vk->has_budget = d->budget;
    if (vk->has_push_desc) exts[n_ext++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    if (vk->has_budget) exts[n_ext++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qci,
                             .enabledExtensionCount = n_ext,
                             .ppEnabledExtensionNames = exts};
    VK_CHECK(vk, vkCreateDevice(vk->phys, &ci, NULL, &vk->device));
    rwkv7_vk_loader_device(vk->device);
    vkGetDeviceQueue(vk->device, vk->queue_family, 0, &vk->queue);
    return RWKV7_OK;
}

static enum rwkv7_status setup(struct rwkv7_vk *vk) {
    vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->mem_props);
    int dev = find_mem_type(&vk->mem_props, ~0u, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    int stg = find_mem_type(&vk->mem_props, ~0u, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                                 VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (stg < 0) stg = find_mem_type(&vk->mem_props, ~0u, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
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
    VK_CHECK(vk, vkCreateFence(vk->device, &fci, NULL, &vk->fence));

    struct rwkv7_buf *stg_buf;
    RWKV7_TRY(make_buffer(vk, STAGING_BYTES, true, &stg_buf));
    vk->staging = stg_buf->buffer;
    vk->staging_mem = stg_buf->memory;
    vk->staging_size = STAGING_BYTES;
    free(stg_buf);
    VK_CHECK(vk, vkMapMemory(vk->device, vk->staging_mem, 0, VK_WHOLE_SIZE, 0, &vk->staging_ptr));

    RWKV7_TRY(rwkv7_vk_pipelines_init(vk));
    RWKV7_TRY(make_buffer(vk, 256, false, &vk->dummy));

    /* IQ grids, uploaded once (abi.h RWKV7_VK_TAB_* word offsets; little-endian host). */
    uint32_t *tab = calloc(RWKV7_VK_TAB_WORDS, sizeof *tab);
    if (!tab) return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of host memory");
    memcpy(tab + RWKV7_VK_TAB_IQ2XXS, rwkv7_iq2xxs_grid, sizeof rwkv7_iq2xxs_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ2XS, rwkv7_iq2xs_grid, sizeof rwkv7_iq2xs_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ2S, rwkv7_iq2s_grid, sizeof rwkv7_iq2s_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ3XXS, rwkv7_iq3xxs_grid, sizeof rwkv7_iq3xxs_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ3S, rwkv7_iq3s_grid, sizeof rwkv7_iq3s_grid);
    memcpy(tab + RWKV7_VK_TAB_IQ1S, rwkv7_iq1s_grid, sizeof rwkv7_iq1s_grid);
    enum rwkv7_status st = make_buffer(vk, RWKV7_VK_TAB_WORDS * 4, false, &vk->tables);
    if (st == RWKV7_OK) st = vk_buf_set(&vk->base, vk->tables, 0, tab, RWKV7_VK_TAB_WORDS * 4);
    free(tab);
    return st;
}

enum rwkv7_status rwkv7_backend_vulkan_init(const char *device, struct rwkv7_backend **out) {
    *out = NULL;
    struct rwkv7_vk *vk = calloc(1, sizeof *vk);
    if (!vk) return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of host memory");
    vk->base.i = &vk_iface;
    uint32_t index = 0;
    struct dev_info d;
    enum rwkv7_status st = load_instance(&vk->instance);
    if (st == RWKV7_OK) st = pick_device(vk, device, &index);
    if (st == RWKV7_OK) {
        dev_query(vk->phys, &d);
        vk->props = d.props;
        vk->subgroup_size = d.subgroup_size;
        vk->subgroup_arith = d.subgroup_arith && getenv("RWKV7_VK_NO_SUBGROUP") == NULL;
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
    fmt_bytes(mem, sizeof mem, d.local_bytes);
    snprintf(vk->base.desc, sizeof vk->base.desc, "Vulkan%u: %.64s (%s, %.48s), %s, subgroup %u; uses %s, %s",
             index, d.props.deviceName, dev_type_str(d.props.deviceType), d.driver, mem, d.subgroup_size,
             vk->subgroup_arith ? "subgroupAdd" : "shared-memory reductions",
             vk->has_push_desc ? "push descriptors + graph replay" : "descriptor pool");
    *out = &vk->base;
    return RWKV7_OK;
}
