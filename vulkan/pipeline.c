/* pipeline.c: compute pipelines created on first use from the embedded SPIR-V (by variant name)
 * and rwkv7_vk_dispatch(), the one helper every op goes through (calm's dispatch(): pipeline by
 * name, push-constant struct by pointer + size, buffer list). Every pipeline shares one layout:
 * RWKV7_VK_MAX_BINDINGS storage buffers + a RWKV7_VK_PC_SIZE push range, so descriptors are
 * pushed (VK_KHR_push_descriptor) or, without it, allocated per dispatch from a pool reset once
 * the work that used them has finished. */
#include <string.h>

#include "spv.h"
#include "vk.h"

_Static_assert(sizeof(struct rwkv7_vk_pc_matmul) == 32, "abi.h: matmul push layout");
_Static_assert(sizeof(struct rwkv7_vk_pc_embed) == 32, "abi.h: embed push layout");
_Static_assert(sizeof(struct rwkv7_vk_pc_elem) == 64, "abi.h: elem push layout");
_Static_assert(sizeof(struct rwkv7_vk_pc_matvec) == 112, "abi.h: matvec push layout");

#define RWKV7_VK_POOL_SETS 1024 /* descriptor sets per pool reset (non-push path) */

enum rwkv7_status rwkv7_vk_pipelines_init(struct rwkv7_vk *vk) {
    VkDescriptorSetLayoutBinding b[RWKV7_VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < RWKV7_VK_MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .flags = vk->has_push_desc ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
        .bindingCount = RWKV7_VK_MAX_BINDINGS,
        .pBindings = b};
    VK_CHECK(vk, vkCreateDescriptorSetLayout(vk->device, &dci, NULL, &vk->dsl));
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = RWKV7_VK_PC_SIZE};
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &vk->dsl,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pcr};
    VK_CHECK(vk, vkCreatePipelineLayout(vk->device, &lci, NULL, &vk->layout));
    if (!vk->has_push_desc) {
        VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, RWKV7_VK_POOL_SETS * RWKV7_VK_MAX_BINDINGS};
        VkDescriptorPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                          .maxSets = RWKV7_VK_POOL_SETS,
                                          .poolSizeCount = 1,
                                          .pPoolSizes = &ps};
        VK_CHECK(vk, vkCreateDescriptorPool(vk->device, &pci, NULL, &vk->desc_pool));
    }
    /* Per variant: the plain pipeline and its specializations ("+a"/"+u" names, see get_pipeline). */
    vk->pipelines = calloc(RWKV7_VK_PIPE_SLOTS * (size_t)rwkv7_vk_spv_count, sizeof *vk->pipelines);
    if (!vk->pipelines) return rwkv7_fail(RWKV7_ERR_OOM, "vulkan: out of host memory");
    return RWKV7_OK;
}

void rwkv7_vk_pipelines_free(struct rwkv7_vk *vk) {
    if (!vk->device) return;
    if (vk->pipelines)
        for (int i = 0; i < RWKV7_VK_PIPE_SLOTS * rwkv7_vk_spv_count; i++)
            if (vk->pipelines[i]) vkDestroyPipeline(vk->device, vk->pipelines[i], NULL);
    free(vk->pipelines);
    vk->pipelines = NULL;
    if (vk->desc_pool) vkDestroyDescriptorPool(vk->device, vk->desc_pool, NULL);
    if (vk->layout) vkDestroyPipelineLayout(vk->device, vk->layout, NULL);
    if (vk->dsl) vkDestroyDescriptorSetLayout(vk->device, vk->dsl, NULL);
}

/* Specializations: a name may end in "+aT" or "+uT" (T = 1..RWKV7_VK_MATVEC_MAX_T), optionally
 * followed by "n": constant 1 (ALIGNED) is 1 / 0, constant 2 (NT) is T, the activation rows the
 * dispatch carries, and constant 3 (NARROW) is 1 with the "n" (matvec.comp). With NT a
 * compile-time constant the shader's per-row loops have a fixed trip count, so they unroll and
 * the per-row accumulators stay in registers; a loop over the largest count with an early exit
 * left them in indexed arrays (memory on a GPU as on lavapipe, where it halved the decode matvec's
 * speed). Constant 0 is the matvec's lanes per row. Shaders ignore the constants they lack. */
#define SPEC_SLOT(aligned, nt, narrow) (1 + (aligned) + 2 * ((nt) - 1) + 2 * RWKV7_VK_MATVEC_MAX_T * (narrow))
_Static_assert(SPEC_SLOT(1, RWKV7_VK_MATVEC_MAX_T, 1) < RWKV7_VK_PIPE_SLOTS, "vk.h: RWKV7_VK_PIPE_SLOTS");

bool rwkv7_vk_has_shader(const char *name) {
    for (int i = 0; i < rwkv7_vk_spv_count; i++)
        if (!strcmp(rwkv7_vk_spv_table[i].name, name)) return true;
    return false;
}

static enum rwkv7_status get_pipeline(struct rwkv7_vk *vk, const char *name, VkPipeline *out) {
    size_t len = strlen(name);
    uint32_t aligned = 0, nt = 0, narrow = 0, slot_i = 0;
    const char *plus = strrchr(name, '+');
    if (plus && (plus[1] == 'a' || plus[1] == 'u') && plus[2] >= '1' && plus[2] <= '0' + RWKV7_VK_MATVEC_MAX_T &&
        (plus[3] == 0 || (plus[3] == 'n' && plus[4] == 0))) {
        aligned = plus[1] == 'a';
        nt = (uint32_t)(plus[2] - '0');
        narrow = plus[3] == 'n';
        slot_i = SPEC_SLOT(aligned, nt, narrow);
        len = (size_t)(plus - name);
    }
    int idx = -1;
    for (int i = 0; i < rwkv7_vk_spv_count; i++)
        if (strlen(rwkv7_vk_spv_table[i].name) == len && !strncmp(rwkv7_vk_spv_table[i].name, name, len)) idx = i;
    if (idx < 0) return rwkv7_fail(RWKV7_ERR_INTERNAL, "vulkan: no embedded shader variant '%s'", name);
    VkPipeline *slot = &vk->pipelines[(size_t)slot_i * rwkv7_vk_spv_count + (size_t)idx];
    if (!*slot) {
        const struct rwkv7_vk_spv *s = &rwkv7_vk_spv_table[idx];
        VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                        .codeSize = *s->size, /* bytes */
                                        .pCode = s->code};
        VkShaderModule mod;
        VK_CHECK(vk, vkCreateShaderModule(vk->device, &mci, NULL, &mod));
        /* Constant 0 = the matvec's lanes per row (matvec.comp's LPR), 1 = ALIGNED, 2 = NT, 3 = NARROW,
         * 4 = the activation staging budget (matvec.comp's STAGE_BUDGET, a device property). */
        uint32_t sc[5] = {rwkv7_vk_matvec_lpr(vk), aligned, nt, narrow, vk->mv_stage};
        VkSpecializationMapEntry me[5] = {{.constantID = 0, .offset = 0, .size = 4},
                                          {.constantID = 1, .offset = 4, .size = 4},
                                          {.constantID = 2, .offset = 8, .size = 4},
                                          {.constantID = 3, .offset = 12, .size = 4},
                                          {.constantID = 4, .offset = 16, .size = 4}};
        VkSpecializationInfo spec = {
            .mapEntryCount = nt ? 5 : 2, .pMapEntries = me, .dataSize = sizeof sc, .pData = sc};
        VkComputePipelineCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                      .module = mod,
                      .pName = "main",
                      .pSpecializationInfo = nt || strncmp(name, "matvec_", 7) == 0 ? &spec : NULL},
            .layout = vk->layout};
        VkResult r = vkCreateComputePipelines(vk->device, VK_NULL_HANDLE, 1, &ci, NULL, slot);
        vkDestroyShaderModule(vk->device, mod, NULL);
        if (r != VK_SUCCESS) {
            *slot = VK_NULL_HANDLE;
            return rwkv7_vk_fail_result(vk, r, name, __func__, __FILE__, __LINE__);
        }
    }
    *out = *slot;
    return RWKV7_OK;
}

uint32_t rwkv7_vk_arg_tensor(struct rwkv7_vk *vk, struct rwkv7_vk_arg *arg,
                             const struct rwkv7_tensor *t, uint32_t elem_size) {
    VkDeviceSize align = vk->props.limits.minStorageBufferOffsetAlignment;
    if (align < 4) align = 4;
    VkDeviceSize base = (VkDeviceSize)t->offs / align * align;
    VkDeviceSize rem = (VkDeviceSize)t->offs - base;
    arg->buf = t->buf;
    arg->offs = base;
    /* Round the range up to whole words (weights may end mid-word); stay inside the buffer. */
    VkDeviceSize range = (rem + t->nbytes + 3) / 4 * 4;
    if (base + range > t->buf->size) range = t->buf->size - base;
    arg->range = range;
    RWKV7_ASSERT(rem % elem_size == 0);
    return (uint32_t)(rem / elem_size);
}

static bool span_hit(const struct rwkv7_vk_span *s, int n, const struct rwkv7_vk_arg *a) {
    for (int i = 0; i < n; i++)
        if (s[i].buf == a->buf->buffer && s[i].lo < a->offs + a->range && a->offs < s[i].hi) return true;
    return false;
}

/* The barrier a dispatch needs against the unbarriered ones before it (RAW, WAW: a range they
 * wrote; WAR: it writes a range they read), then its own ranges join the pending lists. Ranges
 * are whole bindings (rounded to the offset alignment), so a false overlap costs a barrier only. */
static void order_dispatch(struct rwkv7_vk *vk, const struct rwkv7_vk_arg *args, int n_args, uint32_t writes) {
    bool hazard = vk->n_pend_rd + n_args > RWKV7_VK_MAX_PENDING || vk->n_pend_wr + n_args > RWKV7_VK_MAX_PENDING;
    for (int i = 0; i < n_args && !hazard; i++) {
        if (!args[i].buf) continue;
        hazard = span_hit(vk->pend_wr, vk->n_pend_wr, &args[i]) ||
                 ((writes >> i & 1u) && span_hit(vk->pend_rd, vk->n_pend_rd, &args[i]));
    }
    if (hazard) rwkv7_vk_barrier(vk);
    for (int i = 0; i < n_args; i++) {
        if (!args[i].buf) continue;
        struct rwkv7_vk_span sp = {args[i].buf->buffer, args[i].offs, args[i].offs + args[i].range};
        if (writes >> i & 1u) vk->pend_wr[vk->n_pend_wr++] = sp;
        else vk->pend_rd[vk->n_pend_rd++] = sp;
    }
}

enum rwkv7_status rwkv7_vk_dispatch(struct rwkv7_vk *vk, const char *name, const void *pc,
                                    size_t pc_size, const struct rwkv7_vk_arg *args, int n_args,
                                    uint32_t writes, uint32_t n_groups, uint32_t n_groups_y) {
    RWKV7_ASSERT(pc_size <= RWKV7_VK_PC_SIZE && n_args <= RWKV7_VK_MAX_BINDINGS);
    if (n_groups == 0 || n_groups_y == 0) return RWKV7_OK;
    VkPipeline pipe = VK_NULL_HANDLE;
    RWKV7_TRY(get_pipeline(vk, name, &pipe));
    for (int i = 0; i < n_args; i++)
        if (args[i].buf && args[i].range > vk->props.limits.maxStorageBufferRange)
            return rwkv7_fail(RWKV7_ERR_UNSUPPORTED,
                              "vulkan: %s binds %llu bytes, above the device's storage-buffer range %u",
                              name, (unsigned long long)args[i].range, vk->props.limits.maxStorageBufferRange);
    if (!vk->has_push_desc && vk->desc_used >= RWKV7_VK_POOL_SETS) {
        /* Pool exhausted: finish the work that uses its sets, then recycle them all. */
        RWKV7_TRY(rwkv7_vk_flush(vk, true));
        VK_CHECK(vk, vkResetDescriptorPool(vk->device, vk->desc_pool, 0));
        vk->desc_used = 0;
    }
    double prof_t0 = 0;
    if (vk->profiling) RWKV7_TRY(rwkv7_vk_prof_begin(vk, &prof_t0));
    RWKV7_TRY(rwkv7_vk_begin(vk));
    VkDescriptorBufferInfo bi[RWKV7_VK_MAX_BINDINGS];
    VkWriteDescriptorSet wr[RWKV7_VK_MAX_BINDINGS];
    for (int i = 0; i < RWKV7_VK_MAX_BINDINGS; i++) {
        const struct rwkv7_vk_arg *a = i < n_args && args[i].buf ? &args[i] : NULL;
        bi[i] = a ? (VkDescriptorBufferInfo){a->buf->buffer, a->offs, a->range}
                  : (VkDescriptorBufferInfo){vk->dummy->buffer, 0, VK_WHOLE_SIZE};
        wr[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                       .dstBinding = (uint32_t)i,
                                       .descriptorCount = 1,
                                       .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                       .pBufferInfo = &bi[i]};
    }
    order_dispatch(vk, args, n_args, writes);
    vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    if (vk->has_push_desc) {
        vkCmdPushDescriptorSetKHR(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->layout, 0,
                                  RWKV7_VK_MAX_BINDINGS, wr);
    } else {
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                          .descriptorPool = vk->desc_pool,
                                          .descriptorSetCount = 1,
                                          .pSetLayouts = &vk->dsl};
        VkDescriptorSet set;
        VK_CHECK(vk, vkAllocateDescriptorSets(vk->device, &ai, &set));
        vk->desc_used++;
        for (int i = 0; i < RWKV7_VK_MAX_BINDINGS; i++) wr[i].dstSet = set;
        vkUpdateDescriptorSets(vk->device, RWKV7_VK_MAX_BINDINGS, wr, 0, NULL);
        vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->layout, 0, 1, &set, 0, NULL);
    }
    uint8_t pcb[RWKV7_VK_PC_SIZE] = {0};
    memcpy(pcb, pc, pc_size);
    vkCmdPushConstants(vk->cmd, vk->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, RWKV7_VK_PC_SIZE, pcb);
    uint32_t gx = n_groups, gy = n_groups_y;
    if (gy == 1 && gx > 65535) { /* 1D: wrap into y; shaders fold gl_WorkGroupID.y back */
        gx = 65535;
        gy = (n_groups + gx - 1) / gx;
    }
    RWKV7_ASSERT(gx <= 65535 && gy <= 65535);
    if (vk->profiling) rwkv7_vk_prof_stamp(vk, false);
    vkCmdDispatch(vk->cmd, gx, gy, 1);
    if (vk->profiling) rwkv7_vk_prof_stamp(vk, true);
    vk->n_dispatch++;
    if (vk->profiling) RWKV7_TRY(rwkv7_vk_prof_end(vk, name, n_groups, prof_t0));
    return RWKV7_OK;
}
