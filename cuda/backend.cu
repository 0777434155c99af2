/* backend.cu: the CUDA backend's device side: init (no driver / no device -> UNSUPPORTED, never a
 * crash), one non-blocking stream for everything, device buffers with OOM messages, pinned-staged
 * uploads, CUDA-graph record/replay keyed by the caller, the copy-bandwidth probe and the vtable.
 * Invariants: sticky CUDA errors kill the backend for good (rwkv7_cuda_is_dead); compute ops live
 * in embed.cu, norm.cu, matmul.cu, wkv7.cu, elementwise.cu. Reference: backend.h, calm infer.cu. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>

#include "common.cuh"
#include "gemm.cuh"
#include "ops.cuh"

/* ---- errors ---- */

static std::atomic<bool> g_dead{false}; /* a sticky error poisons the CUDA context of the whole process */

static bool is_sticky(cudaError_t e) {
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorAssert:
    case cudaErrorContextIsDestroyed:
    case cudaErrorUnknown:
        return true;
    default:
        return false;
    }
}

enum rwkv7_status rwkv7_cuda_check_fail(cudaError_t err, const char *call, const char *func,
                                        const char *file, int line) {
    if (is_sticky(err)) g_dead.store(true);
    else (void)cudaGetLastError(); /* clear a non-sticky error so the next call starts clean */
    return rwkv7_fail(err == cudaErrorMemoryAllocation ? RWKV7_ERR_OOM : RWKV7_ERR_DEVICE,
                      "cuda: %s failed in %s (%s:%d): %s: %s", call, func, file, line,
                      cudaGetErrorName(err), cudaGetErrorString(err));
}

bool rwkv7_cuda_is_dead(void) { return g_dead.load(); }

/* ---- banner ---- */

static void update_desc(struct rwkv7_cuda *cu) {
    snprintf(cu->base.desc, sizeof cu->base.desc, "%.200s, %.1f MiB allocated%s", cu->banner,
             (double)cu->allocated / (1024.0 * 1024.0), cu->pdl ? ", PDL" : "");
}

/* ---- device entries ---- */

static void cuda_free(struct rwkv7_backend *be) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    if (!cu) return;
    if (!rwkv7_cuda_is_dead()) {
        (void)cudaSetDevice(cu->device);
        if (cu->capturing) {
            cudaGraph_t g = NULL;
            if (cudaStreamEndCapture(cu->stream, &g) == cudaSuccess && g) (void)cudaGraphDestroy(g);
        }
        (void)cudaStreamSynchronize(cu->stream);
        for (int i = 0; i < RWKV7_CUDA_MAX_GRAPHS; i++)
            if (cu->graphs[i].exec) (void)cudaGraphExecDestroy(cu->graphs[i].exec);
        rwkv7_cuda_gemm_free(cu);
        for (int i = 0; i < 2; i++) {
            if (cu->staging[i]) (void)cudaFreeHost(cu->staging[i]);
            if (cu->staging_done[i]) (void)cudaEventDestroy(cu->staging_done[i]);
        }
        if (cu->small_ring) (void)cudaFreeHost(cu->small_ring);
        for (int i = 0; i < RWKV7_CUDA_SMALL_SEGS; i++)
            if (cu->small_done[i]) (void)cudaEventDestroy(cu->small_done[i]);
        if (cu->stream) (void)cudaStreamDestroy(cu->stream);
        (void)cudaGetLastError();
    }
    free(cu);
}

static enum rwkv7_status cuda_buf_alloc(struct rwkv7_backend *be, size_t size, struct rwkv7_buf **out) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    *out = NULL;
    CUDA_LIVE();
    struct rwkv7_buf *buf = (struct rwkv7_buf *)calloc(1, sizeof *buf);
    if (!buf) return rwkv7_fail(RWKV7_ERR_OOM, "cuda: out of host memory for a buffer handle");
    cudaError_t e = cudaMalloc(&buf->ptr, size ? size : 1);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        free(buf);
        return rwkv7_fail(RWKV7_ERR_OOM,
                          "cuda: cannot allocate %zu bytes on %s: %zu bytes free of %zu (%zu held by rwkv7)",
                          size, cu->prop.name, free_b, total_b, cu->allocated);
    }
    if (e != cudaSuccess) {
        free(buf);
        return rwkv7_cuda_check_fail(e, "cudaMalloc(&buf->ptr, size)", __func__, __FILE__, __LINE__);
    }
    buf->size = size;
    cu->allocated += size;
    update_desc(cu);
    *out = buf;
    return RWKV7_OK;
}

static void cuda_buf_free(struct rwkv7_backend *be, struct rwkv7_buf *buf) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    if (!buf) return;
    if (!rwkv7_cuda_is_dead()) {
        (void)cudaStreamSynchronize(cu->stream); /* kernels still reading it finish first */
        (void)cudaFree(buf->ptr);
        (void)cudaGetLastError();
    }
    cu->allocated -= buf->size;
    update_desc(cu);
    free(buf);
}

/* Large uploads go through two pinned halves so the DMA of one overlaps the memcpy into the other;
 * small ones through a pinned ring; mid-sized ones (and all of them during graph recording)
 * through a plain copy. */
#define STAGING_MIN_COPY (4u << 20)
#define STAGING_HALF (32u << 20)

/* Small uploads (tokens, slot lists, per-step inputs) from pageable memory would make the driver
 * wait for the stream's queued work before staging them, so the host could not run ahead of the
 * GPU. They are copied into a pinned ring instead and DMA'd from there, asynchronously. The ring
 * is SMALL_SEGS segments; leaving a segment records an event, and entering one waits for the event
 * recorded a whole lap earlier (an event never recorded counts as complete), so the host blocks
 * only when it is 7 segments (~900 KiB of uploads) ahead of the GPU. */
#define SMALL_MAX (64u << 10)
#define SMALL_SEG (128u << 10)

static bool small_ring_ready(struct rwkv7_cuda *cu) {
    if (cu->small_ring) return true;
    if (cu->small_failed) return false;
    bool ok = cudaMallocHost((void **)&cu->small_ring, (size_t)SMALL_SEG * RWKV7_CUDA_SMALL_SEGS) == cudaSuccess;
    if (!ok) cu->small_ring = NULL;
    for (int i = 0; i < RWKV7_CUDA_SMALL_SEGS && ok; i++)
        ok = cudaEventCreateWithFlags(&cu->small_done[i], cudaEventDisableTiming) == cudaSuccess;
    if (!ok) {
        (void)cudaGetLastError();
        if (cu->small_ring) (void)cudaFreeHost(cu->small_ring);
        for (int i = 0; i < RWKV7_CUDA_SMALL_SEGS; i++) {
            if (cu->small_done[i]) (void)cudaEventDestroy(cu->small_done[i]);
            cu->small_done[i] = NULL;
        }
        cu->small_ring = NULL;
        cu->small_failed = true; /* no pinned memory: plain copies are correct, only blocking */
        return false;
    }
    cu->small_pos = 0;
    cu->small_seg = 0;
    return true;
}

static enum rwkv7_status small_upload(struct rwkv7_cuda *cu, char *dst, const void *src, size_t n) {
    if (cu->small_pos + n > SMALL_SEG) {
        CUDA_CHECK(cudaEventRecord(cu->small_done[cu->small_seg], cu->stream));
        cu->small_seg = (cu->small_seg + 1) % RWKV7_CUDA_SMALL_SEGS;
        CUDA_CHECK(cudaEventSynchronize(cu->small_done[cu->small_seg]));
        cu->small_pos = 0;
    }
    char *p = cu->small_ring + (size_t)cu->small_seg * SMALL_SEG + cu->small_pos;
    memcpy(p, src, n);
    CUDA_CHECK(cudaMemcpyAsync(dst, p, n, cudaMemcpyHostToDevice, cu->stream));
    cu->small_pos += (n + 15) & ~(size_t)15; /* keep each staged copy 16-byte aligned */
    return RWKV7_OK;
}

static enum rwkv7_status cuda_buf_set(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs,
                                      const void *src, size_t n) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    RWKV7_ASSERT(offs <= buf->size && n <= buf->size - offs);
    if (n == 0) return RWKV7_OK;
    char *dst = (char *)buf->ptr + offs;
    if (cu->capturing) {
        /* Not part of the recording: runs now (relaxed capture allows it), before the recorded ops
         * execute. Callers write replay inputs before graph_begin/graph_launch (backend.h). */
        CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
        return RWKV7_OK;
    }
    if (n <= SMALL_MAX && small_ring_ready(cu)) return small_upload(cu, dst, src, n);
    if (n < STAGING_MIN_COPY) {
        /* pageable source: returns once src is staged by the driver, so src is reusable */
        CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, cu->stream));
        return RWKV7_OK;
    }
    if (!cu->staging[0]) {
        for (int i = 0; i < 2; i++) {
            if (cudaMallocHost(&cu->staging[i], STAGING_HALF) != cudaSuccess) {
                (void)cudaGetLastError();
                cu->staging[i] = NULL;
            }
            if (cudaEventCreateWithFlags(&cu->staging_done[i], cudaEventDisableTiming) != cudaSuccess) {
                (void)cudaGetLastError();
                cu->staging_done[i] = NULL;
            }
        }
        if (!cu->staging[0] || !cu->staging[1] || !cu->staging_done[0] || !cu->staging_done[1]) {
            for (int i = 0; i < 2; i++) {
                if (cu->staging[i]) (void)cudaFreeHost(cu->staging[i]);
                if (cu->staging_done[i]) (void)cudaEventDestroy(cu->staging_done[i]);
                cu->staging[i] = NULL;
                cu->staging_done[i] = NULL;
            }
            /* no pinned memory: a synchronous copy is correct, only slower */
            CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, cu->stream));
            return RWKV7_OK;
        }
        cu->staging_size = STAGING_HALF;
    }
    const char *s = (const char *)src;
    for (size_t done = 0, k = 0; done < n; k ^= 1) {
        const size_t len = n - done < cu->staging_size ? n - done : cu->staging_size;
        CUDA_CHECK(cudaEventSynchronize(cu->staging_done[k])); /* previous DMA out of this half */
        memcpy(cu->staging[k], s + done, len);
        CUDA_CHECK(cudaMemcpyAsync(dst + done, cu->staging[k], len, cudaMemcpyHostToDevice, cu->stream));
        CUDA_CHECK(cudaEventRecord(cu->staging_done[k], cu->stream));
        done += len;
    }
    return RWKV7_OK;
}

static enum rwkv7_status cuda_buf_get(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs,
                                      void *dst, size_t n) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    RWKV7_ASSERT(offs <= buf->size && n <= buf->size - offs);
    if (cu->capturing)
        return rwkv7_fail(RWKV7_ERR_INTERNAL, "cuda: buf_get inside a graph recording (key %llu)",
                          (unsigned long long)cu->capture_key);
    if (n == 0) return RWKV7_OK;
    CUDA_CHECK(cudaMemcpyAsync(dst, (const char *)buf->ptr + offs, n, cudaMemcpyDeviceToHost, cu->stream));
    CUDA_CHECK(cudaStreamSynchronize(cu->stream));
    return RWKV7_OK;
}

static enum rwkv7_status cuda_sync(struct rwkv7_backend *be) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    if (cu->capturing)
        return rwkv7_fail(RWKV7_ERR_INTERNAL, "cuda: sync inside a graph recording (key %llu)",
                          (unsigned long long)cu->capture_key);
    CUDA_CHECK(cudaStreamSynchronize(cu->stream));
    CUDA_CHECK(cudaGetLastError());
    return RWKV7_OK;
}

static bool cuda_supports(struct rwkv7_backend *be, enum rwkv7_op op, int wtype) {
    switch (op) {
    case RWKV7_OP_EMBED:
    case RWKV7_OP_MATMUL:
    case RWKV7_OP_MATMUL_N:
    case RWKV7_OP_FFN_KEY:
        return rwkv7_cuda_weight_type_ok(wtype);
    case RWKV7_OP_NORM:
    case RWKV7_OP_TOKEN_SHIFT:
    case RWKV7_OP_UNARY:
    case RWKV7_OP_BINARY:
    case RWKV7_OP_MIX:
    case RWKV7_OP_KEY_PREP:
    case RWKV7_OP_WKV7:
    case RWKV7_OP_WKV_OUT:
    case RWKV7_OP_LAST_ROWS:
    case RWKV7_OP_NORM_SHIFT:
    case RWKV7_OP_WKV_BLOCK:
        return true;
    default:
        return false;
    }
}

static void cuda_set_row_invariant(struct rwkv7_backend *be, bool on) { rwkv7_cuda_of(be)->row_invariant = on; }

static enum rwkv7_status cuda_mem_info(struct rwkv7_backend *be, uint64_t *free_bytes, uint64_t *total_bytes) {
    if (rwkv7_cuda_is_dead()) return rwkv7_fail(RWKV7_ERR_DEVICE, "cuda: backend is dead after an earlier error");
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        (void)cudaGetLastError();
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: cannot query device memory");
    }
    *free_bytes = free_b;
    *total_bytes = total_b;
    return RWKV7_OK;
}

/* Device-to-device copies of 256 MiB (or 1/8 of free memory), timed with events. */
static double cuda_copy_bandwidth(struct rwkv7_backend *be) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    if (rwkv7_cuda_is_dead() || cu->capturing) return 0.0;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return (void)cudaGetLastError(), 0.0;
    size_t n = (size_t)256 << 20;
    if (n > free_b / 8) n = free_b / 8 & ~(size_t)255;
    if (n < ((size_t)1 << 20)) return 0.0;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double gbs = 0.0;
    float ms = 0.0f;
    const int reps = 10;
    if (cudaMalloc(&a, n) != cudaSuccess || cudaMalloc(&b, n) != cudaSuccess) goto done;
    if (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) goto done;
    if (cudaMemsetAsync(a, 0, n, cu->stream) != cudaSuccess) goto done;
    if (cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, cu->stream) != cudaSuccess) goto done; /* warm-up */
    if (cudaEventRecord(e0, cu->stream) != cudaSuccess) goto done;
    for (int i = 0; i < reps; i++)
        if (cudaMemcpyAsync(i & 1 ? a : b, i & 1 ? b : a, n, cudaMemcpyDeviceToDevice, cu->stream) != cudaSuccess)
            goto done;
    if (cudaEventRecord(e1, cu->stream) != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess) goto done;
    if (cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess && ms > 0.0f)
        gbs = 2.0 * (double)n * reps / (ms * 1e-3) / 1e9;
done:
    if (e0) (void)cudaEventDestroy(e0);
    if (e1) (void)cudaEventDestroy(e1);
    if (a) (void)cudaFree(a);
    if (b) (void)cudaFree(b);
    cudaError_t e = cudaGetLastError();
    if (is_sticky(e)) g_dead.store(true);
    return gbs;
}

/* ---- graphs: stream capture in relaxed mode, replayed with cudaGraphLaunch ---- */

static struct rwkv7_cuda_graph *find_graph(struct rwkv7_cuda *cu, uint64_t key) {
    for (int i = 0; i < RWKV7_CUDA_MAX_GRAPHS; i++)
        if (cu->graphs[i].exec && cu->graphs[i].key == key) return &cu->graphs[i];
    return NULL;
}

/* RWKV7_CUDA_GRAPH_INFO=1: one line per recorded step with its kernel and other nodes, so a GPU
 * run shows the kernels per decoded token (README "CUDA": 18 L + 1 kernels for L layers today). */
static void print_graph_info(const struct rwkv7_cuda *cu, cudaGraph_t graph) {
    size_t n = 0, kernels = 0;
    if (cudaGraphGetNodes(graph, NULL, &n) != cudaSuccess) return (void)cudaGetLastError();
    cudaGraphNode_t *nodes = (cudaGraphNode_t *)calloc(n ? n : 1, sizeof *nodes);
    if (nodes && cudaGraphGetNodes(graph, nodes, &n) == cudaSuccess) {
        for (size_t i = 0; i < n; i++) {
            enum cudaGraphNodeType t;
            if (cudaGraphNodeGetType(nodes[i], &t) == cudaSuccess && t == cudaGraphNodeTypeKernel) kernels++;
        }
        fprintf(stderr, "cuda: recorded step %016llx: %zu kernels, %zu other nodes%s\n",
                (unsigned long long)cu->capture_key, kernels, n - kernels, cu->pdl ? " (PDL)" : "");
    }
    (void)cudaGetLastError();
    free(nodes);
}

static enum rwkv7_status cuda_graph_begin(struct rwkv7_backend *be, uint64_t key) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    if (cu->capturing)
        return rwkv7_fail(RWKV7_ERR_INTERNAL, "cuda: graph_begin(%llu) while recording %llu",
                          (unsigned long long)key, (unsigned long long)cu->capture_key);
    CUDA_CHECK(cudaStreamBeginCapture(cu->stream, cudaStreamCaptureModeRelaxed));
    cu->capturing = true;
    cu->capture_key = key;
    return RWKV7_OK;
}

static enum rwkv7_status cuda_graph_end(struct rwkv7_backend *be, bool keep) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    if (!cu->capturing) return rwkv7_fail(RWKV7_ERR_INTERNAL, "cuda: graph_end without graph_begin");
    cu->capturing = false;
    cudaGraph_t graph = NULL;
    CUDA_CHECK(cudaStreamEndCapture(cu->stream, &graph));
    if (!keep) {
        /* The step failed part-way: the capture is partial and was never run. Drop it. */
        (void)cudaGraphDestroy(graph);
        return RWKV7_OK;
    }
    if (cu->graph_info) print_graph_info(cu, graph);
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    if (e != cudaSuccess) return rwkv7_cuda_check_fail(e, "cudaGraphInstantiate(&exec, graph, 0)", __func__, __FILE__, __LINE__);
    struct rwkv7_cuda_graph *slot = find_graph(cu, cu->capture_key);
    if (!slot) { /* an empty slot, else the least recently used one */
        slot = &cu->graphs[0];
        for (int i = 0; i < RWKV7_CUDA_MAX_GRAPHS; i++) {
            if (!cu->graphs[i].exec) { slot = &cu->graphs[i]; break; }
            if (cu->graphs[i].last_use < slot->last_use) slot = &cu->graphs[i];
        }
    }
    if (slot->exec) CUDA_CHECK(cudaGraphExecDestroy(slot->exec));
    slot->exec = exec;
    slot->key = cu->capture_key;
    slot->row_invariant = cu->row_invariant;
    slot->last_use = ++cu->graph_clock;
    /* the recorded ops were only captured: run them once now, as the contract says */
    CUDA_CHECK(cudaGraphLaunch(exec, cu->stream));
    return RWKV7_OK;
}

static bool cuda_graph_launch(struct rwkv7_backend *be, uint64_t key) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    if (rwkv7_cuda_is_dead() || cu->capturing) return false;
    struct rwkv7_cuda_graph *g = find_graph(cu, key);
    /* A graph captured in the other matmul mode holds other kernels: capture again. */
    if (!g || g->row_invariant != cu->row_invariant) return false;
    cudaError_t e = cudaGraphLaunch(g->exec, cu->stream);
    if (e != cudaSuccess) {
        /* the error stays recorded for the next sync; the caller re-runs the ops eagerly */
        (void)rwkv7_cuda_check_fail(e, "cudaGraphLaunch(g->exec, cu->stream)", __func__, __FILE__, __LINE__);
        return false;
    }
    g->last_use = ++cu->graph_clock;
    return true;
}

/* Forgets every graph of owner (a context that was freed or whose buffers moved). */
static void cuda_graph_drop(struct rwkv7_backend *be, uint32_t owner) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    for (int i = 0; i < RWKV7_CUDA_MAX_GRAPHS; i++) {
        struct rwkv7_cuda_graph *g = &cu->graphs[i];
        if (!g->exec || (uint32_t)(g->key >> 32) != owner) continue;
        if (!rwkv7_cuda_is_dead()) {
            (void)cudaStreamSynchronize(cu->stream); /* a launch of it may still be running */
            (void)cudaGraphExecDestroy(g->exec);
            (void)cudaGetLastError();
        }
        g->exec = NULL;
    }
}

/* ---- the vtable ---- */

static const struct rwkv7_backend_i k_cuda_i = {
    .name = "cuda",
    .free = cuda_free,
    .buf_alloc = cuda_buf_alloc,
    .buf_free = cuda_buf_free,
    .buf_wrap_host = NULL,
    .buf_set = cuda_buf_set,
    .buf_get = cuda_buf_get,
    .sync = cuda_sync,
    .supports = cuda_supports,
    .copy_bandwidth = cuda_copy_bandwidth,
    .set_row_invariant = cuda_set_row_invariant,
    .mem_info = cuda_mem_info,
    .weight_prepare = NULL, /* GGUF bytes as they are */
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .graph_launch = cuda_graph_launch,
    .graph_drop = cuda_graph_drop,
#define RWKV7_X_(U, l) .l = rwkv7_cuda_##l,
    RWKV7_OP_LIST(RWKV7_X_)
    /* fused ops, one kernel each at decode (matmul.cu, norm.cu, wkv7.cu, lora_up.cu) */
    RWKV7_FUSED_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
};

/* ---- init ---- */

/* "13.0" from a CUDA version number (13000); "none" for 0 (cudaDriverGetVersion without a driver). */
static const char *cuda_version_str(int v, char *buf, size_t cap) {
    if (v <= 0) snprintf(buf, cap, "none");
    else snprintf(buf, cap, "%d.%d", v / 1000, v % 1000 / 10);
    return buf;
}

/* "driver 12.4, runtime 13.0": the CUDA version the installed driver supports and the one this
 * binary's (static) runtime was built with. Both calls work without a driver or device. */
static void cuda_versions(char *buf, size_t cap, int *drv_out, int *rt_out) {
    int drv = 0, rt = 0;
    if (cudaDriverGetVersion(&drv) != cudaSuccess) drv = 0;
    if (cudaRuntimeGetVersion(&rt) != cudaSuccess) rt = CUDART_VERSION;
    (void)cudaGetLastError();
    char a[16], b[16];
    snprintf(buf, cap, "driver %s, runtime %s", cuda_version_str(drv, a, sizeof a), cuda_version_str(rt, b, sizeof b));
    if (drv_out) *drv_out = drv;
    if (rt_out) *rt_out = rt;
}

/* Device count, or a status saying why CUDA cannot run here. A driver older than the runtime is
 * named as such (a CUDA 13 runtime needs driver release 580 or newer: README "CUDA"), not reported
 * as a missing driver. */
static enum rwkv7_status probe(int *n_dev) {
    *n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(n_dev);
    if (e == cudaSuccess && *n_dev > 0) return RWKV7_OK;
    (void)cudaGetLastError();
    *n_dev = 0;
    char ver[64], a[16], b[16];
    int drv = 0, rt = 0;
    cuda_versions(ver, sizeof ver, &drv, &rt);
    if (e == cudaErrorNoDevice || e == cudaSuccess)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: no CUDA device (%s)", ver);
    if (drv == 0) /* no libcuda at all: the runtime reports it as an insufficient driver */
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: no CUDA driver found (%s; %s)", cudaGetErrorName(e), ver);
    if (e == cudaErrorInsufficientDriver || drv < rt)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED,
                          "cuda: driver %s too old for runtime %s (%s); update the NVIDIA driver (CUDA %d.x needs "
                          "release %s or newer) or build with an older CUDA toolkit",
                          cuda_version_str(drv, a, sizeof a), cuda_version_str(rt, b, sizeof b), cudaGetErrorName(e),
                          rt / 1000, rt >= 13000 ? "580" : rt >= 12000 ? "525" : "450");
    return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: cannot use the CUDA driver: %s (%s)", cudaGetErrorName(e), ver);
}

/* "CUDA1", "cuda:1", "1" -> 1; NULL, "", "cuda" -> 0; -1 when unparsable. */
static int parse_device(const char *s) {
    if (!s || !*s) return 0;
    const char *p = s + strlen(s);
    while (p > s && p[-1] >= '0' && p[-1] <= '9') p--;
    if (!*p) return strcmp(s, "cuda") == 0 || strcmp(s, "CUDA") == 0 ? 0 : -1;
    const char *head_end = p;
    if (head_end > s && head_end[-1] == ':') head_end--;
    size_t hl = (size_t)(head_end - s);
    if (hl && !(hl == 4 && (strncmp(s, "CUDA", 4) == 0 || strncmp(s, "cuda", 4) == 0))) return -1;
    return atoi(p);
}

static void format_banner(char *dst, size_t cap, int dev, const struct cudaDeviceProp *p) {
    char ver[64];
    cuda_versions(ver, sizeof ver, NULL, NULL);
    snprintf(dst, cap, "CUDA%d: %.160s, cc %d.%d, %d SMs, %.1f GiB, %.60s", dev, p->name, p->major, p->minor,
             p->multiProcessorCount, (double)p->totalGlobalMem / (1024.0 * 1024.0 * 1024.0), ver);
}

/* Creates the CUDA backend on device ("CUDA0", "cuda:1", "1"; NULL or "" = device 0). Returns
 * RWKV7_ERR_UNSUPPORTED with "cuda: no CUDA driver found" / "cuda: no CUDA device" when CUDA
 * cannot run here (never crashes), RWKV7_ERR_ARG for a device that does not exist. */
static enum rwkv7_status cuda_init(const char *device, int n_threads, struct rwkv7_backend **out) {
    *out = NULL;
    CUDA_LIVE();
    int n_dev = 0;
    RWKV7_TRY(probe(&n_dev));
    const int dev = parse_device(device);
    if (dev < 0 || dev >= n_dev)
        return rwkv7_fail(RWKV7_ERR_ARG, "cuda: no device '%s' (%d CUDA device%s: CUDA0..CUDA%d)",
                          device ? device : "", n_dev, n_dev == 1 ? "" : "s", n_dev - 1);
    struct rwkv7_cuda *cu = (struct rwkv7_cuda *)calloc(1, sizeof *cu);
    if (!cu) return rwkv7_fail(RWKV7_ERR_OOM, "cuda: out of host memory");
    cu->base.i = &k_cuda_i;
    cu->device = dev;
    {
        const char *env = getenv("RWKV7_SYNC_EACH_OP");
        cu->sync_each_op = env && *env && strcmp(env, "0") != 0;
    }
    enum rwkv7_status st = RWKV7_OK;
#define INIT_CHECK(call)                                                                   \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess) {                                                           \
            st = rwkv7_cuda_check_fail(e_, #call, __func__, __FILE__, __LINE__);           \
            goto fail;                                                                     \
        }                                                                                  \
    } while (0)
    INIT_CHECK(cudaSetDevice(dev));
    INIT_CHECK(cudaGetDeviceProperties(&cu->prop, dev));
    if (cu->prop.major < 7 || (cu->prop.major == 7 && cu->prop.minor < 5)) {
        st = rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: %s has compute capability %d.%d; 7.5 or newer is needed",
                        cu->prop.name, cu->prop.major, cu->prop.minor);
        goto fail;
    }
    {
        /* Programmatic dependent launch (common.cuh) needs sm_90; RWKV7_CUDA_PDL=0 turns it off. */
        const char *env = getenv("RWKV7_CUDA_PDL");
        cu->pdl = cu->prop.major >= 9 && !(env && strcmp(env, "0") == 0);
        env = getenv("RWKV7_CUDA_SIMT_TILES");
        cu->simt_tiles = env && *env && strcmp(env, "0") != 0;
        env = getenv("RWKV7_CUDA_GRAPH_INFO");
        cu->graph_info = env && *env && strcmp(env, "0") != 0;
    }
    INIT_CHECK(cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking));
    INIT_CHECK(rwkv7_cuda_embed_init());
    INIT_CHECK(rwkv7_cuda_matmul_init());
    INIT_CHECK(rwkv7_cuda_gemm_init());
    INIT_CHECK(cudaDeviceSynchronize());
#undef INIT_CHECK
    format_banner(cu->banner, sizeof cu->banner, dev, &cu->prop);
    update_desc(cu);
    *out = &cu->base;
    return RWKV7_OK;
fail:
    if (cu->stream) (void)cudaStreamDestroy(cu->stream);
    free(cu);
    return st;
}

/* One line per CUDA device ("CUDA0: NVIDIA H100 ..., cc 9.0, 132 SMs, 79.1 GiB"), or one line
 * saying why there is none. */
static void cuda_print_devices(FILE *f) {
    int n_dev = 0;
    if (probe(&n_dev) != RWKV7_OK) {
        fprintf(f, "%s\n", rwkv7_last_error());
        return;
    }
    for (int d = 0; d < n_dev; d++) {
        struct cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess) {
            (void)cudaGetLastError();
            fprintf(f, "CUDA%d: (properties unavailable)\n", d);
            continue;
        }
        char line[320];
        format_banner(line, sizeof line, d, &p);
        fprintf(f, "%s\n", line);
    }
}

extern "C" const struct rwkv7_backend_reg rwkv7_backend_reg_cuda = {
    .name = "cuda",
    .device_prefix = "CUDA",
    .gpu = true,
    .auto_device = NULL,
    .init = cuda_init,
    .print_devices = cuda_print_devices,
    .weight_type_ok = rwkv7_cuda_weight_type_ok,
};
