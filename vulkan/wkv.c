/* wkv.c: the Vulkan WKV-7 op: the serial kernel (shaders/wkv7.comp, one workgroup per sequence and
 * head, two barriers per token) or the chunked prefill in two passes (wkv7_chunk_prep.comp, every
 * chunk's state-free matrices in parallel, then wkv7_chunk_state.comp, the chunk walk in slabs of
 * 16 state rows); rwkv7_vk_wkv_pick chooses per shape from measurements (bench/RESULTS.md). */
#include <stdlib.h>
#include <string.h>

#include "vk.h"
#include "wkv.h"

static int chunk_len(int head_size) { return RWKV7_VK_WKV_CHUNK_LEN(head_size); }

int rwkv7_vk_wkv_pick(const struct rwkv7_vk_wkv_shape *s, const char *env, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    if (env && !strcmp(env, "serial")) {
        *why = "serial (RWKV7_VK_WKV=serial)";
        return 0;
    }
    const int n = s->head_size, l = chunk_len(n);
    if (n != 64 && n != 128) {
        *why = "serial (the chunked kernels are built for head sizes 64 and 128)";
        return 0;
    }
    if ((uint32_t)RWKV7_VK_WKV_PREP_SHARED(n, l) > s->shared_bytes ||
        (uint32_t)RWKV7_VK_WKV_STATE_SHARED(n, l) > s->shared_bytes) {
        *why = "serial (the chunked kernels need more shared memory than the device has)";
        return 0;
    }
    const uint64_t per_chunk = (uint64_t)s->n_seq * s->n_head * RWKV7_VK_WKV_CHUNK_BLOCK(n, l) * 4;
    const uint64_t max_chunks = per_chunk ? RWKV7_VK_WKV_SCRATCH / per_chunk : 0;
    if (max_chunks == 0) {
        *why = "serial (one chunk of every sequence and head exceeds the scratch)";
        return 0;
    }
    const bool forced = env && !strcmp(env, "chunked");
    if (!forced && s->cpu_device) {
        *why = "serial (measured faster on CPU devices, vulkan/wkv.h)";
        return 0;
    }
    if (!forced && n != 64) {
        *why = "serial (head size 128: chunked only when forced, vulkan/wkv.h)";
        return 0;
    }
    if (!forced && s->n_tok < RWKV7_VK_WKV_MIN_TOK) {
        *why = "serial (a run shorter than RWKV7_VK_WKV_MIN_TOK, vulkan/wkv.h)";
        return 0;
    }
    if (s->n_tok < 2) {
        *why = "serial (decode)";
        return 0;
    }
    *why = forced ? "chunked (RWKV7_VK_WKV=chunked)" : "chunked";
    const uint64_t need = ((uint64_t)s->n_tok + l - 1) / l;
    return (int)(need < max_chunks ? need : max_chunks) * l;
}

/* Binds ts[i] to binding i with its element offset in offs[i] (NULL: the dummy). */
static enum rwkv7_status bind(struct rwkv7_vk *vk, const struct rwkv7_tensor *const *ts, int n,
                              struct rwkv7_vk_arg *vargs, uint32_t *offs) {
    for (int i = 0; i < n; i++) {
        memset(&vargs[i], 0, sizeof vargs[i]);
        offs[i] = 0;
        if (ts[i]->nbytes + 256 > UINT32_MAX)
            return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: wkv7: tensor '%s' is %zu bytes, above the 4 GiB kernel limit",
                              ts[i]->name ? ts[i]->name : "(scratch)", ts[i]->nbytes);
        offs[i] = rwkv7_vk_arg_tensor(vk, &vargs[i], ts[i], 4);
    }
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_vk_wkv7, wkv7) {
    struct rwkv7_vk *vk = (struct rwkv7_vk *)be;
    const int n = args->head_size;
    RWKV7_TRY(rwkv7_vk_alive(vk));
    if (n > RWKV7_VK_WKV_MAX_N)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: wkv7 head size %d above %d", n, RWKV7_VK_WKV_MAX_N);
    const struct rwkv7_tensor *ts[9] = {args->y, args->state, args->r, args->w, args->k,
                                        args->v, args->kk,    args->a, args->slots};
    struct rwkv7_vk_arg vargs[10];
    uint32_t offs[9];
    RWKV7_TRY(bind(vk, ts, 9, vargs, offs));
    const uint32_t c = (uint32_t)args->r->ne[0], n_seq = (uint32_t)args->slots->ne[0];
    const uint32_t n_head = c / (uint32_t)n, n_tok = (uint32_t)args->n_tok;
    struct rwkv7_vk_wkv_shape shape = {n, (int)n_head, (int)n_seq, (int)n_tok,
                                       vk->props.limits.maxComputeSharedMemorySize,
                                       vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU};
    const int window = rwkv7_vk_wkv_pick(&shape, getenv("RWKV7_VK_WKV"), NULL);
    /* One push layout for the serial kernel (which reads no window) and the chunked passes. */
    struct rwkv7_vk_pc_wkv pc = {0};
    memcpy(pc.off, offs, sizeof pc.off);
    pc.fn = offs[8];
    pc.c = c;
    pc.rows = n_seq;
    pc.n = (uint32_t)n;
    pc.n2 = n_tok;
    if (window == 0)
        return rwkv7_vk_dispatch(vk, n <= 64 ? "wkv7_n64" : "wkv7_n128", &pc, sizeof pc, vargs, 9, 3u,
                                 n_seq * n_head, 1);
    if (!vk->wkv_scratch) RWKV7_TRY(rwkv7_vk_make_buffer(vk, RWKV7_VK_WKV_SCRATCH, false, &vk->wkv_scratch));
    const uint32_t l = (uint32_t)chunk_len(n), blk = RWKV7_VK_WKV_CHUNK_BLOCK(n, l);
    const char *prep = n == 64 ? "wkv7_chunk_prep_n64" : "wkv7_chunk_prep_n128";
    const char *walk = n == 64 ? "wkv7_chunk_state_n64" : "wkv7_chunk_state_n128";
    /* Windows of whole chunks share the scratch: the dispatch tracker orders a window's prep after
     * the previous window's state pass (it reads the scratch the prep overwrites). */
    for (uint32_t t0 = 0; t0 < n_tok; t0 += (uint32_t)window) {
        pc.t0 = t0;
        pc.nt = n_tok - t0 < (uint32_t)window ? n_tok - t0 : (uint32_t)window;
        const uint32_t n_chunk = (pc.nt + l - 1) / l;
        vargs[9] = (struct rwkv7_vk_arg){vk->wkv_scratch, 0, (VkDeviceSize)n_seq * n_head * n_chunk * blk * 4};
        RWKV7_TRY(rwkv7_vk_dispatch(vk, prep, &pc, sizeof pc, vargs, 10, 1u << 9, n_seq * n_head * n_chunk, 1));
        RWKV7_TRY(rwkv7_vk_dispatch(vk, walk, &pc, sizeof pc, vargs, 10, 3u, n_seq * n_head * (uint32_t)(n / RWKV7_VK_WKV_SLAB), 1));
    }
    return RWKV7_OK;
}

_Static_assert(sizeof(struct rwkv7_vk_pc_wkv) == 64, "abi.h: wkv push layout");
