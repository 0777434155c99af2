/* spv.h: the SPIR-V blobs embedded at build time (vulkan/vulkan.cmake writes the table from
 * shaders/variants.cmake; vulkan/embed_spv.cmake writes each blob). Names are variant names such
 * as "matvec_q4_k_sg". */
#ifndef RWKV7_VK_SPV_H
#define RWKV7_VK_SPV_H

#include <stddef.h>
#include <stdint.h>

struct rwkv7_vk_spv {
    const char *name;     /* variant name */
    const uint32_t *code; /* SPIR-V words */
    const size_t *size;   /* code size in bytes (Vulkan's codeSize counts bytes, not words) */
};

extern const struct rwkv7_vk_spv rwkv7_vk_spv_table[];
extern const int rwkv7_vk_spv_count;

#endif
