/* wkv.h: which WKV-7 kernel a Vulkan prefill runs (serial wkv7.comp, or the two chunked passes
 * wkv7_chunk_prep.comp + wkv7_chunk_state.comp) and the token windows of the chunked one. No
 * Vulkan types: the choice is a pure function of the shape and the device's shared-memory limit,
 * unit-tested without a device (tests/test_vk_wkv.c). */
#ifndef RWKV7_VK_WKV_H
#define RWKV7_VK_WKV_H

#include <stdbool.h>
#include <stdint.h>

/* The default rule (bench/RESULTS.md, section vkwkv): on a CPU device (lavapipe) the serial kernel,
 * measured faster or equal at every prefill shape: there the chunked form's extra work (the prep
 * pass, ~4/5 of the serial FMAs in the walk plus the block reads) is not repaid by parallelism the
 * CPU's few cores cannot use. On a GPU the chunked passes from RWKV7_VK_WKV_MIN_TOK tokens per
 * sequence: an estimate from the design (the serial kernel has n_seq * n_head workgroups and two
 * barriers plus a dependent 64-FMA chain per token; the walk has 4x the workgroups, no barrier and
 * 4 tokens of independent dot products per pass), not yet measured on a GPU; head size 64 only
 * (head size 128, chunks of 8, measured 0.3x serial on lavapipe, runs chunked only when forced). */
#define RWKV7_VK_WKV_MIN_TOK 32

struct rwkv7_vk_wkv_shape {
    int head_size, n_head, n_seq, n_tok;
    uint32_t shared_bytes; /* maxComputeSharedMemorySize */
    bool cpu_device;       /* VK_PHYSICAL_DEVICE_TYPE_CPU */
};

/* Returns the tokens per chunked window (a positive multiple of the chunk length, the whole
 * run when it fits the scratch), or 0 for the serial kernel. env is RWKV7_VK_WKV's value
 * ("serial", "chunked", anything else or NULL: the measured rule); *why says what decided. */
int rwkv7_vk_wkv_pick(const struct rwkv7_vk_wkv_shape *s, const char *env, const char **why);

#endif
