/* vk.h: internals shared by vulkan/vulkan.c (device, vtable), memory.c, submit.c, pipeline.c
 * (pipelines by name, rwkv7_vk_dispatch) and ops.c (the compute ops). Not a public header.
 * Submission model: ops record into the current command buffer `cmd`; flush() submits it without
 * waiting for earlier submissions (queue order plus the barrier that opens every command buffer
 * order them on the device); each submission has a serial and a fence from a ring of
 * RWKV7_VK_RING, and the host waits only where it must: sync, buf_get, reusing a command buffer
 * or fence still pending. A decode step is one submission (the token/slot uploads and the
 * recorded step together) and one round trip (the logits download). Dispatches get a
 * global memory barrier only when they depend on one recorded since the last barrier (the ranges
 * each wrote and read are tracked, so r/k/v matmuls or LoRA down-projections run back to back);
 * copies and updates are fenced by barriers on both sides, and every command buffer opens with one. */
#ifndef RWKV7_VK_H
#define RWKV7_VK_H

#include <stdbool.h>
#include <stdint.h>

#include "loader.h"

#include "abi.h"
#include "backend.h"
#include "dtype.h"
#include "status.h"

#define RWKV7_VK_MAX_BINDINGS 16 /* lora_up binds 16 buffers, wkv_block 14, matvec 14 (4 weights, 4 inputs, 4 outputs, tables, partials) */
#define RWKV7_VK_PC_SIZE 128     /* push-constant range: the guaranteed minimum */
#define RWKV7_VK_MAX_GRAPHS 16   /* recorded steps kept for graph_launch */
#define RWKV7_VK_RING 4          /* submissions in flight at most (one fence each) */
#define RWKV7_VK_MAX_PENDING 64  /* tracked ranges since the last barrier; more forces one */
#define RWKV7_VK_STAGING_BYTES ((VkDeviceSize)64 << 20) /* upload/download chunk */

struct rwkv7_buf {
    VkBuffer buffer;
    VkDeviceMemory memory; /* dedicated memory, or VK_NULL_HANDLE when suballocated */
    VkDeviceSize size;     /* bytes requested */
    int block;             /* index into rwkv7_vk.blocks when suballocated, else -1 */
    VkDeviceSize block_offs, block_size; /* the range taken from that block */
};

/* A large device-local allocation that small buffers are carved from (first fit; free ranges
 * kept sorted by offset and merged on free), so a model of ~1000 tensors needs a few dozen
 * allocations, far below maxMemoryAllocationCount. Freed when its last buffer goes. */
struct rwkv7_vk_range {
    VkDeviceSize offs, size;
};
struct rwkv7_vk_block {
    VkDeviceMemory memory;
    VkDeviceSize size;
    struct rwkv7_vk_range *free; /* sorted by offs, never adjacent */
    int n_free, cap_free;
    int n_live; /* buffers placed in this block */
    struct rwkv7_buf *alias; /* a buffer over the whole block (rwkv7_vk_block_alias), or NULL */
};

/* Bytes [lo, hi) of one buffer, as a dispatch bound them. */
struct rwkv7_vk_span {
    VkBuffer buf;
    VkDeviceSize lo, hi;
};

/* Pipelines per shader variant: the plain one + aligned/unaligned x NT x narrow (pipeline.c). */
#define RWKV7_VK_PIPE_SLOTS (1 + 4 * RWKV7_VK_MATVEC_MAX_T)

struct rwkv7_vk_graph {
    uint64_t key;        /* owner (context serial) << 32 | step shape (backend.h) */
    VkCommandBuffer cmd; /* recorded once, replayed by graph_launch */
    bool row_invariant;  /* the matmul mode it was recorded in; replayed only in the same */
    uint64_t serial;     /* its last submission (a pending command buffer is not resubmitted) */
};

/* RWKV7_VK_PROFILE=1: time per pipeline and grid width (submit.c): host time around a
 * submit-and-wait, and the device's own time between two timestamps where the queue has them. */
struct rwkv7_vk_prof {
    char name[56];
    uint64_t calls;
    double seconds, dev_seconds;
};

struct rwkv7_vk {
    struct rwkv7_backend base; /* must stay first */
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger; /* RWKV7_VK_VALIDATION only (instance.c) */
    VkPhysicalDevice phys;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem_props;
    uint32_t mem_device;  /* memory type index: device-local */
    uint32_t mem_staging; /* memory type index: host-visible + coherent */
    uint32_t heap_device; /* heap of mem_device */
    VkDeviceSize allocated; /* bytes we hold in heap_device */
    struct rwkv7_vk_block *blocks;
    int n_blocks;
    bool has_budget;        /* VK_EXT_memory_budget enabled */
    bool has_push_desc;     /* VK_KHR_push_descriptor enabled */
    bool subgroup_arith;    /* subgroupAdd usable in compute: the matvec _sg variants */
    bool row_invariant;     /* matmul: matvec for every row count (set_row_invariant) */
    bool coopmat;           /* prefill matmul on cooperative matrices (coopmat.c picked a config) */
    bool coopmat_nv;        /* ... its VK_NV_cooperative_matrix flavour (the build's shaders are) */
    bool coopmat_emu;       /* ... emulated (RWKV7_VK_COOPMAT=emulate, a test mode; matmul_cm_emu_<type>) */
    const char *coopmat_why; /* the pick's reason, for the description */
    uint32_t subgroup_size;
    uint32_t mv_stage;      /* floats of shared memory for the matvec's T > 1 activation staging (0: none) */
    uint32_t mv_lpr;        /* the matvec's lanes per row (rwkv7_vk_matvec_pick_lpr) */
    bool dead;              /* device lost: every later call fails */

    VkCommandPool cmd_pool;
    VkCommandBuffer cmds[2]; /* alternating: one recording while the other may be in flight */
    uint64_t cmd_serial[2];  /* the last submission of each */
    int cmd_idx;
    VkCommandBuffer cmd;     /* the one being recorded, or VK_NULL_HANDLE */
    VkFence fences[RWKV7_VK_RING]; /* submission s signals fences[s % RWKV7_VK_RING] */
    uint64_t submitted;      /* serial of the last submission (0: none yet) */
    uint64_t completed;      /* every submission up to this serial has finished */

    VkBuffer staging;        /* persistent host-visible bounce buffer for buf_set/buf_get */
    VkDeviceMemory staging_mem;
    void *staging_ptr;
    VkDeviceSize staging_size;

    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkDescriptorPool desc_pool; /* without push descriptors: sets allocated per dispatch */
    uint32_t desc_used;         /* sets taken from desc_pool since its last reset */
    VkPipeline *pipelines;      /* RWKV7_VK_PIPE_SLOTS per rwkv7_vk_spv_table entry, created on first use */
    struct rwkv7_buf *dummy;    /* bound to unused binding slots */
    struct rwkv7_buf *tables;   /* IQ grids at the RWKV7_VK_TAB_* offsets of abi.h */
    struct rwkv7_buf *partials; /* split-K matvec partial sums (ops.c), made on first use */
    struct rwkv7_buf *wkv_scratch; /* chunked wkv7 blocks (RWKV7_VK_WKV_SCRATCH bytes, ops.c), made on first use */

    /* Ranges read / written by the dispatches recorded since the last barrier in cmd. */
    struct rwkv7_vk_span pend_rd[RWKV7_VK_MAX_PENDING], pend_wr[RWKV7_VK_MAX_PENDING];
    int n_pend_rd, n_pend_wr;

    struct rwkv7_vk_graph graphs[RWKV7_VK_MAX_GRAPHS];
    int n_graphs;
    bool capturing;          /* between graph_begin and graph_end */
    uint64_t n_dispatch, n_barrier, n_copy; /* recorded so far (RWKV7_VK_STATS reports a capture's) */
    uint64_t capture_key;

    bool profiling;              /* RWKV7_VK_PROFILE: each dispatch submitted and waited for alone */
    struct rwkv7_vk_prof *prof;  /* its totals, printed by vk_free */
    int n_prof;
    VkQueryPool prof_pool;       /* two timestamps around the dispatch, when the queue has them */
    double ts_period_ns;         /* nanoseconds per timestamp tick */
    uint64_t ts_mask;            /* the valid bits of a timestamp */
};

/* One buffer binding: the range [offs, offs + range) of buf. */
struct rwkv7_vk_arg {
    struct rwkv7_buf *buf;
    VkDeviceSize offs;
    VkDeviceSize range;
};

enum rwkv7_status rwkv7_vk_fail_result(struct rwkv7_vk *vk, VkResult r, const char *call,
                                       const char *func, const char *file, int line);
const char *rwkv7_vk_result_str(VkResult r);

/* Always compiled in: a failing call stores the call text, function, file:line and VkResult name,
 * marks the backend dead on VK_ERROR_DEVICE_LOST, and returns RWKV7_ERR_DEVICE. */
#define VK_CHECK(vk, call)                                                                  \
    do {                                                                                    \
        VkResult vk_check_r_ = (call);                                                      \
        if (vk_check_r_ != VK_SUCCESS)                                                      \
            return rwkv7_vk_fail_result((vk), vk_check_r_, #call, __func__, __FILE__, __LINE__); \
    } while (0)

/* Fails with RWKV7_ERR_DEVICE when the device was lost earlier. */
enum rwkv7_status rwkv7_vk_alive(struct rwkv7_vk *vk);
/* The command buffer being recorded, starting one when none is (returns the status). */
enum rwkv7_status rwkv7_vk_begin(struct rwkv7_vk *vk);
/* Global memory barrier in the current command buffer (compute/transfer -> compute/transfer);
 * clears the pending-range lists. */
void rwkv7_vk_barrier(struct rwkv7_vk *vk);
/* A barrier when a dispatch was recorded since the last one: what a copy or an update needs
 * before it, since it is not range-tracked. */
void rwkv7_vk_barrier_pending(struct rwkv7_vk *vk);
/* Submits the recorded work (if any); waits for completion when wait. */
enum rwkv7_status rwkv7_vk_flush(struct rwkv7_vk *vk, bool wait);

/* instance.c: the instance, with the validation layer, synchronization validation and an
 * error-counting messenger when RWKV7_VK_VALIDATION=1 (then a process that saw an error exits 1). */
enum rwkv7_status rwkv7_vk_instance_create(VkInstance *out, VkDebugUtilsMessengerEXT *messenger);
void rwkv7_vk_instance_destroy(VkInstance instance, VkDebugUtilsMessengerEXT messenger);

/* vulkan.c */
void rwkv7_vk_fmt_bytes(char *buf, size_t cap, uint64_t b);

/* memory.c: buffers (vtable entries), memory types and the free device memory. */
int rwkv7_vk_find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags want);
uint64_t rwkv7_vk_heap_free(struct rwkv7_vk *vk);
/* Device-local (suballocated when small) or, with host, host-visible memory of size bytes. */
enum rwkv7_status rwkv7_vk_make_buffer(struct rwkv7_vk *vk, VkDeviceSize size, bool host, struct rwkv7_buf **out);
enum rwkv7_status rwkv7_vk_buf_alloc(struct rwkv7_backend *be, size_t size, struct rwkv7_buf **out);
void rwkv7_vk_buf_free(struct rwkv7_backend *be, struct rwkv7_buf *b);
enum rwkv7_status rwkv7_vk_buf_set(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs, const void *src, size_t n);
enum rwkv7_status rwkv7_vk_buf_get(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs, void *dst, size_t n);
enum rwkv7_status rwkv7_vk_mem_info(struct rwkv7_backend *be, uint64_t *free_bytes, uint64_t *total_bytes);

/* A buffer over the whole memory block that holds buf (suballocated), created on first use and
 * freed with the block, so several small tensors can be read through one binding at their
 * block offsets (lora_up's weights); NULL when buf has its own allocation or on failure. */
struct rwkv7_buf *rwkv7_vk_block_alias(struct rwkv7_vk *vk, const struct rwkv7_buf *buf);

/* submit.c: sync, the bandwidth probe and graph replay (vtable entries; backend.h). */
/* Profiling: before a dispatch, submit and finish what is pending; after it, submit, wait and
 * add the elapsed host time to the entry of (name, n_groups). */
enum rwkv7_status rwkv7_vk_prof_begin(struct rwkv7_vk *vk, double *t0);
/* The timestamps right before / after the vkCmdDispatch (no-ops without a query pool). */
void rwkv7_vk_prof_stamp(struct rwkv7_vk *vk, bool after);
/* Creates the query pool when the queue family has timestamps (a failure only drops them). */
void rwkv7_vk_prof_init(struct rwkv7_vk *vk, uint32_t timestamp_valid_bits);
enum rwkv7_status rwkv7_vk_prof_end(struct rwkv7_vk *vk, const char *name, uint32_t n_groups, double t0);
void rwkv7_vk_prof_print(struct rwkv7_vk *vk);
enum rwkv7_status rwkv7_vk_sync(struct rwkv7_backend *be);
double rwkv7_vk_copy_bandwidth(struct rwkv7_backend *be);
enum rwkv7_status rwkv7_vk_graph_begin(struct rwkv7_backend *be, uint64_t key);
enum rwkv7_status rwkv7_vk_graph_end(struct rwkv7_backend *be, bool keep);
bool rwkv7_vk_graph_launch(struct rwkv7_backend *be, uint64_t key);
void rwkv7_vk_graph_drop(struct rwkv7_backend *be, uint32_t owner);

/* pipeline.c */
enum rwkv7_status rwkv7_vk_pipelines_init(struct rwkv7_vk *vk);
void rwkv7_vk_pipelines_free(struct rwkv7_vk *vk);
/* Binds the bytes of tensor t: args->offs is t->offs rounded down to the device's storage-buffer
 * offset alignment; returns the remainder in units of elem_size (what the shader adds). */
uint32_t rwkv7_vk_arg_tensor(struct rwkv7_vk *vk, struct rwkv7_vk_arg *arg,
                             const struct rwkv7_tensor *t, uint32_t elem_size);
/* Records pipeline `name` with push constants pc[0..pc_size) and n_args bindings (0..n_args-1,
 * an arg with buf NULL binds the dummy buffer) over n_groups x n_groups_y workgroups; bit i of
 * writes marks binding i as written (the rest are only read). A barrier goes before it when it
 * reads or writes a range an earlier unbarriered dispatch wrote, or writes one it read. With n_groups_y == 1, n_groups above 65535 is wrapped into y (shaders fold
 * gl_WorkGroupID.y back into a linear id). */
enum rwkv7_status rwkv7_vk_dispatch(struct rwkv7_vk *vk, const char *name, const void *pc,
                                    size_t pc_size, const struct rwkv7_vk_arg *args, int n_args,
                                    uint32_t writes, uint32_t n_groups, uint32_t n_groups_y);

/* ops.c: the compute entries of the vtable. */
extern const char *const rwkv7_vk_type_suffix[RWKV7_DTYPE_COUNT];
bool rwkv7_vk_supports(struct rwkv7_backend *be, enum rwkv7_op op, int wtype);
#define RWKV7_X_(U, l) RWKV7_OP_SIG(rwkv7_vk_##l, l);
RWKV7_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
/* fused ops this backend runs natively (the others use the generic fallback) */
RWKV7_OP_SIG(rwkv7_vk_ffn_key, ffn_key);
/* fused.c */
RWKV7_OP_SIG(rwkv7_vk_norm_shift, norm_shift);
RWKV7_OP_SIG(rwkv7_vk_wkv_block, wkv_block);
RWKV7_OP_SIG(rwkv7_vk_lora_up, lora_up);
RWKV7_OP_SIG(rwkv7_vk_matmul_n, matmul_n);
/* ops.c: shared-memory floats the decode matvec may use to stage the activations of T > 1 rows
 * (its specialization constant 4; 0 = read them straight from the buffer): on by default on GPUs,
 * off on CPU devices (lavapipe: shared memory is ordinary memory there and barriers cost most);
 * env RWKV7_VK_MATVEC_STAGE = 0 / 1 forces it off / on. *why says which. */
uint32_t rwkv7_vk_matvec_stage(uint32_t shared_bytes, bool cpu_device, const char *env, const char **why);
/* pipeline.c: whether the build embedded the shader variant `name`. */
bool rwkv7_vk_has_shader(const char *name);
/* ops.c: lanes per row of the matvec kernels (their specialization constant 0, ops.c's grid): 32,
 * or the subgroup size when larger, so subgroupAdd sums one row; env RWKV7_VK_MATVEC_LPR = 32, 64
 * or 128 (at least the subgroup size where subgroupAdd is used) forces a width, so the layouts of
 * wave64 devices (AMD) are tested on lavapipe's subgroups of 8. *why says which. */
uint32_t rwkv7_vk_matvec_pick_lpr(uint32_t subgroup_size, bool subgroup_arith, const char *env, const char **why);
static inline uint32_t rwkv7_vk_matvec_lpr(const struct rwkv7_vk *vk) { return vk->mv_lpr; }

#endif
