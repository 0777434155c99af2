/* submit.c: the Vulkan backend's submission (vk.h: one command buffer recorded at a time,
 * submissions queued without waiting for each other, barriers only between dependent dispatches), sync, the copy-bandwidth
 * probe and graph replay: a decode step recorded once into its own command buffer and
 * resubmitted. A recording belongs to an owner (a context serial, never reused) and remembers
 * the row-invariant mode it was recorded under; a failed recording is thrown away. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vk.h"

static struct rwkv7_vk *as_vk(struct rwkv7_backend *be) { return (struct rwkv7_vk *)be; }

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
    vk->n_barrier++;
}

void rwkv7_vk_barrier_pending(struct rwkv7_vk *vk) {
    if (vk->n_pend_rd || vk->n_pend_wr) rwkv7_vk_barrier(vk);
}

/* Waits until submission `serial` and every one before it finished. */
static enum rwkv7_status wait_serial(struct rwkv7_vk *vk, uint64_t serial) {
    while (vk->completed < serial && vk->completed < vk->submitted) {
        uint64_t s = vk->completed + 1;
        VkFence f = vk->fences[s % RWKV7_VK_RING];
        VK_CHECK(vk, vkWaitForFences(vk->device, 1, &f, VK_TRUE, UINT64_MAX));
        VK_CHECK(vk, vkResetFences(vk->device, 1, &f));
        vk->completed = s;
    }
    return RWKV7_OK;
}

static enum rwkv7_status wait_idle(struct rwkv7_vk *vk) { return wait_serial(vk, vk->submitted); }

enum rwkv7_status rwkv7_vk_begin(struct rwkv7_vk *vk) {
    if (vk->cmd) return RWKV7_OK;
    /* cmds[cmd_idx] was last submitted two flushes ago; it is normally done by now. */
    RWKV7_TRY(wait_serial(vk, vk->cmd_serial[vk->cmd_idx]));
    VkCommandBuffer cb = vk->cmds[vk->cmd_idx];
    VK_CHECK(vk, vkResetCommandBuffer(cb, 0));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vk, vkBeginCommandBuffer(cb, &bi));
    vk->cmd = cb;
    rwkv7_vk_barrier(vk); /* orders against everything submitted before */
    return RWKV7_OK;
}

/* Submits n command buffers as one batch without waiting for earlier batches: the queue runs
 * them in order and each command buffer opens with a barrier against what came before. Only a
 * fence still pending from RWKV7_VK_RING submissions ago is waited for. Returns the serial. */
static enum rwkv7_status submit(struct rwkv7_vk *vk, const VkCommandBuffer *cbs, uint32_t n, uint64_t *serial) {
    uint64_t s = vk->submitted + 1;
    if (s > RWKV7_VK_RING) RWKV7_TRY(wait_serial(vk, s - RWKV7_VK_RING));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = n, .pCommandBuffers = cbs};
    VK_CHECK(vk, vkQueueSubmit(vk->queue, 1, &si, vk->fences[s % RWKV7_VK_RING]));
    vk->submitted = s;
    if (serial) *serial = s;
    return RWKV7_OK;
}

/* Ends the command buffer being recorded (not a capture) and returns it, or VK_NULL_HANDLE. */
static enum rwkv7_status end_cmd(struct rwkv7_vk *vk, VkCommandBuffer *out) {
    *out = VK_NULL_HANDLE;
    if (!vk->cmd || vk->capturing) return RWKV7_OK;
    VkCommandBuffer cb = vk->cmd;
    vk->cmd = VK_NULL_HANDLE;
    VK_CHECK(vk, vkEndCommandBuffer(cb));
    *out = cb;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_vk_flush(struct rwkv7_vk *vk, bool wait) {
    RWKV7_TRY(rwkv7_vk_alive(vk));
    VkCommandBuffer cb;
    RWKV7_TRY(end_cmd(vk, &cb));
    if (cb) {
        RWKV7_TRY(submit(vk, &cb, 1, &vk->cmd_serial[vk->cmd_idx]));
        vk->cmd_idx ^= 1;
    }
    if (wait) RWKV7_TRY(wait_idle(vk));
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_vk_sync(struct rwkv7_backend *be) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_flush(vk, true));
    if (vk->desc_pool && !vk->capturing) {
        VK_CHECK(vk, vkResetDescriptorPool(vk->device, vk->desc_pool, 0));
        vk->desc_used = 0;
    }
    return RWKV7_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double rwkv7_vk_copy_bandwidth(struct rwkv7_backend *be) {
    struct rwkv7_vk *vk = as_vk(be);
    VkDeviceSize size = (VkDeviceSize)256 << 20;
    if (vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) size = (VkDeviceSize)64 << 20; /* keep lavapipe quick */
    struct rwkv7_buf *a = NULL, *b = NULL;
    double gbs = 0;
    if (rwkv7_vk_buf_alloc(be, size, &a) != RWKV7_OK || rwkv7_vk_buf_alloc(be, size, &b) != RWKV7_OK) goto done;
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
    rwkv7_vk_buf_free(be, a);
    rwkv7_vk_buf_free(be, b);
    return gbs;
}

/* ---- profiling (RWKV7_VK_PROFILE=1) ----
 * Each dispatch is submitted and waited for alone, with the pending work finished first. The
 * device time comes from two timestamps written right before and after the dispatch (a GPU's
 * figure for the kernel alone); the host time around the submit-and-wait also holds one
 * submission round trip (tens of us on a GPU, so small kernels read high there). Recording is off
 * while profiling (graph_begin), so every step of a decode goes through here. */

void rwkv7_vk_prof_init(struct rwkv7_vk *vk, uint32_t timestamp_valid_bits) {
    if (!vk->profiling || timestamp_valid_bits == 0 || vk->props.limits.timestampPeriod <= 0) return;
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = 2};
    if (vkCreateQueryPool(vk->device, &qi, NULL, &vk->prof_pool) != VK_SUCCESS) vk->prof_pool = VK_NULL_HANDLE;
    vk->ts_period_ns = vk->props.limits.timestampPeriod;
    vk->ts_mask = timestamp_valid_bits >= 64 ? ~0ull : (1ull << timestamp_valid_bits) - 1;
}

void rwkv7_vk_prof_stamp(struct rwkv7_vk *vk, bool after) {
    if (!vk->prof_pool) return;
    if (!after) vkCmdResetQueryPool(vk->cmd, vk->prof_pool, 0, 2);
    vkCmdWriteTimestamp(vk->cmd, after ? VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT : VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT,
                        vk->prof_pool, after ? 1 : 0);
}

enum rwkv7_status rwkv7_vk_prof_begin(struct rwkv7_vk *vk, double *t0) {
    RWKV7_TRY(rwkv7_vk_flush(vk, true));
    *t0 = now_s();
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_vk_prof_end(struct rwkv7_vk *vk, const char *name, uint32_t n_groups, double t0) {
    RWKV7_TRY(rwkv7_vk_flush(vk, true));
    double dt = now_s() - t0, ddev = 0;
    if (vk->prof_pool) {
        uint64_t ts[2];
        VK_CHECK(vk, vkGetQueryPoolResults(vk->device, vk->prof_pool, 0, 2, sizeof ts, ts, sizeof ts[0],
                                           VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
        ddev = (double)((ts[1] - ts[0]) & vk->ts_mask) * vk->ts_period_ns * 1e-9;
    }
    char key[sizeof vk->prof->name];
    snprintf(key, sizeof key, "%s x%u", name, n_groups);
    int i = 0;
    while (i < vk->n_prof && strcmp(vk->prof[i].name, key)) i++;
    if (i == vk->n_prof) {
        struct rwkv7_vk_prof *p = realloc(vk->prof, (size_t)(i + 1) * sizeof *p);
        if (!p) return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of host memory (profile)");
        vk->prof = p;
        vk->prof[i] = (struct rwkv7_vk_prof){.calls = 0};
        memcpy(vk->prof[i].name, key, sizeof key);
        vk->n_prof++;
    }
    vk->prof[i].calls++;
    vk->prof[i].seconds += dt;
    vk->prof[i].dev_seconds += ddev;
    return RWKV7_OK;
}

/* Sorted by device time where there is one, else by host time. */
static int prof_cmp(const void *a, const void *b) {
    const struct rwkv7_vk_prof *p = a, *q = b;
    double x = p->dev_seconds > 0 ? p->dev_seconds : p->seconds, y = q->dev_seconds > 0 ? q->dev_seconds : q->seconds;
    return (x < y) - (x > y);
}

void rwkv7_vk_prof_print(struct rwkv7_vk *vk) {
    if (!vk->n_prof) return;
    qsort(vk->prof, (size_t)vk->n_prof, sizeof *vk->prof, prof_cmp);
    double total = 0, dev_total = 0;
    for (int i = 0; i < vk->n_prof; i++) total += vk->prof[i].seconds, dev_total += vk->prof[i].dev_seconds;
    bool dev = vk->prof_pool && dev_total > 0;
    fprintf(stderr, "vulkan profile (each dispatch submitted alone): %.3f s host", total);
    if (dev) fprintf(stderr, ", %.3f s device (timestamps)", dev_total);
    fprintf(stderr, "\n%-56s %8s %12s %10s %10s %6s\n", "pipeline x workgroups", "calls", "host ms", "host us",
            dev ? "device us" : "-", "%");
    for (int i = 0; i < vk->n_prof; i++) {
        const struct rwkv7_vk_prof *p = &vk->prof[i];
        double n = (double)p->calls;
        fprintf(stderr, "%-56s %8llu %12.2f %10.1f %10.1f %6.2f\n", p->name, (unsigned long long)p->calls,
                p->seconds * 1e3, p->seconds * 1e6 / n, dev ? p->dev_seconds * 1e6 / n : 0.0,
                100.0 * (dev ? p->dev_seconds / dev_total : p->seconds / total));
    }
}

/* ---- graph replay ---- */

/* Frees recording i (it may be in flight: wait first) and closes the gap. */
static void free_graph(struct rwkv7_vk *vk, int i) {
    if (wait_serial(vk, vk->graphs[i].serial) != RWKV7_OK) { /* device lost: freeing is still valid */ }
    vkFreeCommandBuffers(vk->device, vk->cmd_pool, 1, &vk->graphs[i].cmd);
    vk->graphs[i] = vk->graphs[--vk->n_graphs];
}

static int find_graph(const struct rwkv7_vk *vk, uint64_t key) {
    for (int i = 0; i < vk->n_graphs; i++)
        if (vk->graphs[i].key == key) return i;
    return -1;
}

enum rwkv7_status rwkv7_vk_graph_begin(struct rwkv7_backend *be, uint64_t key) {
    struct rwkv7_vk *vk = as_vk(be);
    RWKV7_TRY(rwkv7_vk_alive(vk));
    RWKV7_ASSERT(!vk->capturing);
    /* Recorded under the other row-invariant mode (graph_launch refused it): record again. */
    int old = find_graph(vk, key);
    if (old >= 0) free_graph(vk, old);
    /* Without push descriptors the recorded sets would be recycled: run uncaptured instead (and
     * when profiling, which submits each dispatch alone). */
    if (!vk->has_push_desc || vk->profiling || vk->n_graphs >= RWKV7_VK_MAX_GRAPHS) return RWKV7_OK;
    RWKV7_TRY(rwkv7_vk_flush(vk, false));
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = vk->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkCommandBuffer cb;
    VK_CHECK(vk, vkAllocateCommandBuffers(vk->device, &ai, &cb));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    VkResult r = vkBeginCommandBuffer(cb, &bi);
    if (r != VK_SUCCESS) {
        vkFreeCommandBuffers(vk->device, vk->cmd_pool, 1, &cb);
        return rwkv7_vk_fail_result(vk, r, "vkBeginCommandBuffer", __func__, __FILE__, __LINE__);
    }
    vk->cmd = cb;
    vk->n_dispatch = vk->n_barrier = vk->n_copy = 0;
    rwkv7_vk_barrier(vk);
    vk->capturing = true;
    vk->capture_key = key;
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_vk_graph_end(struct rwkv7_backend *be, bool keep) {
    struct rwkv7_vk *vk = as_vk(be);
    if (!vk->capturing) return rwkv7_vk_alive(vk);
    vk->capturing = false;
    VkCommandBuffer cb = vk->cmd;
    vk->cmd = VK_NULL_HANDLE;
    VkResult r = vkEndCommandBuffer(cb);
    if (r != VK_SUCCESS || !keep) {
        /* A failed step leaves a partial recording that was never submitted: drop it. */
        vkFreeCommandBuffers(vk->device, vk->cmd_pool, 1, &cb);
        if (r != VK_SUCCESS) return rwkv7_vk_fail_result(vk, r, "vkEndCommandBuffer", __func__, __FILE__, __LINE__);
        return rwkv7_vk_alive(vk);
    }
    if (getenv("RWKV7_VK_STATS"))
        fprintf(stderr, "vulkan: recorded step %#llx: %llu dispatches, %llu barriers, %llu copies\n",
                (unsigned long long)vk->capture_key, (unsigned long long)vk->n_dispatch,
                (unsigned long long)vk->n_barrier, (unsigned long long)vk->n_copy);
    struct rwkv7_vk_graph *g = &vk->graphs[vk->n_graphs++];
    *g = (struct rwkv7_vk_graph){vk->capture_key, cb, vk->row_invariant, 0};
    return submit(vk, &cb, 1, &g->serial); /* the captured ops also run now */
}

bool rwkv7_vk_graph_launch(struct rwkv7_backend *be, uint64_t key) {
    struct rwkv7_vk *vk = as_vk(be);
    if (vk->dead || vk->capturing) return false;
    int i = find_graph(vk, key);
    /* A recording made in the other matmul mode has other kernels: record again. */
    if (i < 0 || vk->graphs[i].row_invariant != vk->row_invariant) return false;
    /* A command buffer without SIMULTANEOUS_USE is not resubmitted while pending (a step with no
     * logits read is not waited for); normally it finished long ago. */
    if (wait_serial(vk, vk->graphs[i].serial) != RWKV7_OK) return false;
    /* The pending uploads (tokens, slots) and the step go in one batch: one submission, no wait. */
    VkCommandBuffer cbs[2];
    uint32_t n = 0;
    if (end_cmd(vk, &cbs[0]) != RWKV7_OK) return false;
    if (cbs[0]) n++;
    cbs[n++] = vk->graphs[i].cmd;
    uint64_t serial;
    if (submit(vk, cbs, n, &serial) != RWKV7_OK) return false;
    vk->graphs[i].serial = serial;
    if (n == 2) {
        vk->cmd_serial[vk->cmd_idx] = serial;
        vk->cmd_idx ^= 1;
    }
    return true;
}

void rwkv7_vk_graph_drop(struct rwkv7_backend *be, uint32_t owner) {
    struct rwkv7_vk *vk = as_vk(be);
    for (int i = vk->n_graphs - 1; i >= 0; i--)
        if ((uint32_t)(vk->graphs[i].key >> 32) == owner) free_graph(vk, i);
}
