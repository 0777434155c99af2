/* wkv.h: which WKV-7 kernel a Vulkan prefill runs (serial wkv7.comp, or the two chunked passes
 * wkv7_chunk_prep.comp + wkv7_chunk_state.comp) and the token windows of the chunked one. No
 * Vulkan types: the choice is a pure function of the shape and the device's shared-memory limit,
 * unit-tested without a device (tests/test_vk_wkv.c). */
#ifndef RWKV7_VK_WKV_H
#define RWKV7_VK_WKV_H

#include <stdint.h>

/* Prefills of at least this many tokens per sequence run chunked by default (measured on lavapipe:
 * bench/RESULTS.md, section vkwkv). */
#define RWKV7_VK_WKV_MIN_TOK 16

struct rwkv7_vk_wkv_shape {
    int head_size, n_head, n_seq, n_tok;
    uint32_t shared_bytes; /* maxComputeSharedMemorySize */
};

/* Returns the tokens per chunked window (a positive multiple of the chunk length, the whole
 * run when it fits the scratch), or 0 for the serial kernel. env is RWKV7_VK_WKV's value
 * ("serial", "chunked", anything else or NULL: the measured rule); *why says what decided. */
int rwkv7_vk_wkv_pick(const struct rwkv7_vk_wkv_shape *s, const char *env, const char **why);

#endif
