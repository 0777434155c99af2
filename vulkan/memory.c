/* memory.c: the Vulkan backend's buffers: device-local memory suballocated from 256 MiB blocks
 * (first fit, free ranges merged), host transfers through a persistent staging buffer in 64 MiB
 * chunks, small aligned uploads recorded in stream order with vkCmdUpdateBuffer. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "vk.h"

#define UPDATE_MAX 65536 /* vkCmdUpdateBuffer limit */

static struct rwkv7_vk *as_vk(struct rwkv7_backend *be) { return (struct rwkv7_vk *)be; }

/* ---- memory ---- */

int rwkv7_vk_find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

uint64_t rwkv7_vk_heap_free(struct rwkv7_vk *vk) {
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
    rwkv7_vk_fmt_bytes(n, sizeof n, need);
    rwkv7_vk_fmt_bytes(avail, sizeof avail, rwkv7_vk_heap_free(vk));
    rwkv7_vk_fmt_bytes(total, sizeof total, vk->mem_props.memoryHeaps[vk->heap_device].size);
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

enum rwkv7_status rwkv7_vk_make_buffer(struct rwkv7_vk *vk, VkDeviceSize size, bool host, struct rwkv7_buf **out) {
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
        int t = rwkv7_vk_find_mem_type(&vk->mem_props, req.memoryTypeBits,
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

void rwkv7_vk_buf_free(struct rwkv7_backend *be, struct rwkv7_buf *b) {
    struct rwkv7_vk *vk = as_vk(be);
    if (!b) return;
    /* The buffer may still be used by recorded or in-flight work. */
    if (rwkv7_vk_flush(vk, true) != RWKV7_OK) { /* device lost: destroying is still valid */ }
    vkDestroyBuffer(vk->device, b->buffer, NULL);
    if (b->block >= 0) {
        struct rwkv7_vk_block *blk = &vk->blocks[b->block];
        block_give(blk, b->block_offs, b->block_size);
        if (--blk->n_live == 0) {
            if (blk->alias) {
                vkDestroyBuffer(vk->device, blk->alias->buffer, NULL);
                free(blk->alias);
            }
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

struct rwkv7_buf *rwkv7_vk_block_alias(struct rwkv7_vk *vk, const struct rwkv7_buf *buf) {
    if (buf->block < 0) return NULL;
    struct rwkv7_vk_block *blk = &vk->blocks[buf->block];
    if (blk->alias) return blk->alias;
    struct rwkv7_buf *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    VkBufferCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = blk->size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    if (vkCreateBuffer(vk->device, &ci, NULL, &a->buffer) != VK_SUCCESS) {
        free(a);
        return NULL;
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->device, a->buffer, &req);
    if (req.size > blk->size || !(req.memoryTypeBits & (1u << vk->mem_device)) ||
        vkBindBufferMemory(vk->device, a->buffer, blk->memory, 0) != VK_SUCCESS) {
        vkDestroyBuffer(vk->device, a->buffer, NULL);
        free(a);
        return NULL;
    }
    a->size = blk->size;
    a->block = -1; /* owned by the block, never passed to buf_free */
    blk->alias = a;
    return a;
}

enum rwkv7_status rwkv7_vk_buf_alloc(struct rwkv7_backend *be, size_t size, struct rwkv7_buf **out) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    return rwkv7_vk_make_buffer(vk, size, false, out);
}

/* One chunk through the staging buffer: to_device copies staging -> buf, else buf -> staging. */
static enum rwkv7_status staged_copy(struct rwkv7_vk *vk, struct rwkv7_buf *buf, size_t offs, size_t n, bool to_device) {
    RWKV7_TRY(rwkv7_vk_begin(vk));
    rwkv7_vk_barrier_pending(vk);
    VkBufferCopy bc = {.srcOffset = to_device ? 0 : offs, .dstOffset = to_device ? offs : 0, .size = n};
    if (to_device) vkCmdCopyBuffer(vk->cmd, vk->staging, buf->buffer, 1, &bc);
    else vkCmdCopyBuffer(vk->cmd, buf->buffer, vk->staging, 1, &bc);
    rwkv7_vk_barrier(vk);
    if (!to_device) {
        /* The fence wait makes the copy's writes available but not visible to the host; the spec
         * asks for this transfer -> host barrier before the host reads the mapped staging bytes
         * (desktop drivers forgive its absence, non-coherent caches would not). */
        VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                              .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                              .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
        vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL,
                             0, NULL);
    }
    return rwkv7_vk_flush(vk, true);
}

enum rwkv7_status rwkv7_vk_buf_set(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs,
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
        size_t c = n - done < RWKV7_VK_STAGING_BYTES ? n - done : (size_t)RWKV7_VK_STAGING_BYTES;
        memcpy(vk->staging_ptr, (const uint8_t *)src + done, c);
        st = staged_copy(vk, buf, offs + done, c, true);
        done += c;
    }
    if (capturing) { vk->capturing = true; vk->cmd = saved; }
    return st;
}

enum rwkv7_status rwkv7_vk_buf_get(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs, void *dst, size_t n) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    if (offs + n > buf->size)
        return rwkv7_fail(RWKV7_ERR_ARG, "vulkan: buf_get of %zu bytes at %zu overruns a %llu-byte buffer", n, offs,
                          (unsigned long long)buf->size);
    if (vk->capturing) return rwkv7_fail(RWKV7_ERR_ARG, "vulkan: buf_get while a graph is being captured");
    /* No wait first: the copy is recorded behind the work that produces the bytes (the barrier
     * that opens each command buffer orders it after earlier submissions), so reading a step's
     * logits is one round trip. */
    for (size_t done = 0; done < n;) {
        size_t c = n - done < RWKV7_VK_STAGING_BYTES ? n - done : (size_t)RWKV7_VK_STAGING_BYTES;
        RWKV7_TRY(staged_copy(vk, buf, offs + done, c, false));
        memcpy((uint8_t *)dst + done, vk->staging_ptr, c);
        done += c;
    }
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_vk_mem_info(struct rwkv7_backend *be, uint64_t *free_bytes, uint64_t *total_bytes) {
    struct rwkv7_vk *vk = as_vk(be);
    *free_bytes = rwkv7_vk_heap_free(vk);
    *total_bytes = vk->mem_props.memoryHeaps[vk->heap_device].size;
    return RWKV7_OK;
}

