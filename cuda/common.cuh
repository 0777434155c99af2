/* common.cuh: shared pieces of the CUDA backend: the backend/buffer structs, CUDA_CHECK (always
 * on; sticky errors mark the backend dead), warp/block reductions and launch helpers.
 * Invariants: every op runs on cu->stream; launchers check each launch with cudaGetLastError();
 * activations/state are contiguous fp32. Reference: house style (style-anchors.md 2.4, llm.c
 * cuda_common.h, calm helpers.cuh). */
#ifndef RWKV7_CUDA_COMMON_CUH
#define RWKV7_CUDA_COMMON_CUH

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
#include "dtype.h"
#include "status.h"
}


struct rwkv7_buf {
    void *ptr;   /* device pointer */
    size_t size; /* bytes */
};

#define RWKV7_CUDA_MAX_GRAPHS 64
#define RWKV7_CUDA_SMALL_SEGS 8 /* segments of the pinned ring for small uploads (backend.cu) */

struct rwkv7_cuda_graph {
    uint64_t key;          /* caller's key */
    cudaGraphExec_t exec;  /* instantiated graph; NULL = unused slot */
    uint64_t last_use;     /* LRU stamp for eviction */
    bool row_invariant;    /* matmul mode at capture; replayed only in the same mode */
};

struct rwkv7_cuda {
    struct rwkv7_backend base;                      /* must stay first */
    int device;                                     /* CUDA device ordinal */
    cudaStream_t stream;                            /* every op is enqueued here (non-blocking) */
    struct cudaDeviceProp prop;                     /* queried once at init */
    size_t allocated;                               /* bytes currently held by buf_alloc */
    char banner[320];                               /* device part of desc (name, cc, SMs, memory) */
    void *staging[2];                               /* pinned upload halves (NULL = not allocated) */
    cudaEvent_t staging_done[2];                    /* last copy out of each half finished */
    size_t staging_size;                            /* bytes per half */
    char *small_ring;                               /* pinned ring for small uploads (NULL = none yet) */
    cudaEvent_t small_done[RWKV7_CUDA_SMALL_SEGS];  /* copies out of each segment finished */
    size_t small_pos;                               /* next free byte in the current segment */
    int small_seg;                                  /* current segment */
    bool small_failed;                              /* pinned allocation failed: use plain copies */
    bool capturing;                                 /* between graph_begin and graph_end */
    bool row_invariant;                             /* matmul: matvec for every column count */
    bool sync_each_op;                              /* RWKV7_SYNC_EACH_OP=1: sync + check after each op */
    bool pdl;                                       /* programmatic dependent launch (sm_90+, rwkv7_cuda_launch) */
    bool simt_tiles;                                /* RWKV7_CUDA_SIMT_TILES=1: fp32 SIMT prefill tiles on sm_80+ too */
    bool graph_info;                                /* RWKV7_CUDA_GRAPH_INFO=1: print each recorded step's nodes */
    uint64_t capture_key;                           /* key of the recording in progress */
    uint64_t graph_clock;                           /* LRU clock */
    struct rwkv7_cuda_graph graphs[RWKV7_CUDA_MAX_GRAPHS];
    void *gemm_scratch;                             /* gemm.cu: split activations + split-K partials */
    size_t gemm_scratch_size;                       /* bytes of gemm_scratch */
    void *gemm_retired[16];                         /* outgrown while recording: freed with the backend */
    int gemm_n_retired;
};

static inline struct rwkv7_cuda *rwkv7_cuda_of(struct rwkv7_backend *be) {
    return (struct rwkv7_cuda *)be;
}

/* Records "cuda: <call> failed in <func> (<file>:<line>): <name>: <text>", marks the backend dead
 * when err is sticky, and returns RWKV7_ERR_DEVICE (OOM errors return RWKV7_ERR_OOM). */
enum rwkv7_status rwkv7_cuda_check_fail(cudaError_t err, const char *call, const char *func,
                                        const char *file, int line);
/* True after a sticky error (illegal address, launch failure, ...): the context is unusable. */
bool rwkv7_cuda_is_dead(void);

#define CUDA_CHECK(call)                                                                       \
    do {                                                                                       \
        cudaError_t rwkv7_cuda_err_ = (call);                                                  \
        if (rwkv7_cuda_err_ != cudaSuccess)                                                    \
            return rwkv7_cuda_check_fail(rwkv7_cuda_err_, #call, __func__, __FILE__, __LINE__); \
    } while (0)

/* Every launcher starts with this: a dead backend refuses new work. */
#define CUDA_LIVE()                                                                            \
    do {                                                                                       \
        if (rwkv7_cuda_is_dead())                                                              \
            return rwkv7_fail(RWKV7_ERR_DEVICE, "cuda: backend is dead after an earlier device fault"); \
    } while (0)

/* After every kernel launch: launch errors now; with RWKV7_SYNC_EACH_OP=1 (outside graph
 * recording) also asynchronous faults, reported against the launcher (__func__) that caused them. */
#define CUDA_LAUNCHED(cu)                                                                      \
    do {                                                                                       \
        CUDA_CHECK(cudaGetLastError());                                                        \
        if ((cu)->sync_each_op && !(cu)->capturing) CUDA_CHECK(cudaStreamSynchronize((cu)->stream)); \
    } while (0)

/* Typed device pointer of a tensor (element 0). */
template <typename T>
static inline T *tptr(const struct rwkv7_tensor *t) {
    return (T *)((char *)t->buf->ptr + t->offs);
}

static inline unsigned ceil_div(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

/* ---- programmatic dependent launch (sm_90+) ----
 * A kernel launched through rwkv7_cuda_launch on an sm_90 device with cu->pdl may start while the
 * kernel before it on the stream is still finishing: the launch latency and anything it does
 * before rwkv7_pdl_wait() (prefetching weights, which no kernel writes) overlap the previous
 * kernel's tail. rwkv7_pdl_wait() returns once every earlier kernel of the stream has completed
 * and its writes are visible, so EVERY kernel launched this way calls it before its first read of
 * an activation/state or its first write of anything. rwkv7_pdl_trigger() lets the next kernel be
 * scheduled as soon as all blocks of this one run. Both are no-ops below sm_90 and when the
 * kernel was launched without the attribute. Kernels launched with <<<>>> wait as usual. */
__device__ __forceinline__ void rwkv7_pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void rwkv7_pdl_trigger(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Launches kernel on cu->stream, with programmatic stream serialization when cu->pdl (the kernel
 * must call rwkv7_pdl_wait first: see above). Captured into graphs as programmatic edges. */
template <typename... KArgs, typename... Args>
static inline cudaError_t rwkv7_cuda_launch(const struct rwkv7_cuda *cu, void (*kernel)(KArgs...), dim3 grid,
                                            dim3 block, size_t smem, Args... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = cu->stream;
    cfg.attrs = attr;
    cfg.numAttrs = cu->pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...);
}

/* ---- device helpers ---- */

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over the block; every thread gets the result. blockDim.x must be a multiple of 32 and at
 * most 1024; `scratch` holds 32 floats. Contains __syncthreads: call from all threads. */
__device__ __forceinline__ float block_sum(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* scratch may still be read by a previous call */
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < n_warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

#endif
