/* cpu.c: the CPU backend's vtable, memory and thread pool. The CPU backend is the reference every
 * GPU op is tested against and the fallback where no GPU exists: plain C11, fp32 activations,
 * quantized weights read block by block (matmul.c), threaded with a static split (threadpool.c). */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"
#include "dtype.h"
#include "matmul_simd.h"
#include "status.h"

enum rwkv7_status rwkv7_cpu_reserve(float ***scratch, size_t *have, int n_threads, size_t n) {
    if (*scratch && *have >= n) return RWKV7_OK;
    if (!*scratch) {
        *scratch = calloc((size_t)n_threads, sizeof(float *));
        if (!*scratch) return rwkv7_fail(RWKV7_ERR_OOM, "cpu: out of memory for scratch");
    }
    for (int i = 0; i < n_threads; i++) {
        float *p = realloc((*scratch)[i], n * sizeof(float));
        if (!p) return rwkv7_fail(RWKV7_ERR_OOM, "cpu: out of memory for %zu floats of scratch", n);
        (*scratch)[i] = p;
    }
    *have = n;
    return RWKV7_OK;
}

static void cpu_free(struct rwkv7_backend *be) {
    struct rwkv7_cpu *cpu = (struct rwkv7_cpu *)be;
    rwkv7_threadpool_free(cpu->pool);
    for (int i = 0; i < cpu->n_threads; i++) {
        if (cpu->row_scratch) free(cpu->row_scratch[i]);
        if (cpu->wkv_scratch) free(cpu->wkv_scratch[i]);
    }
    free(cpu->row_scratch);
    if (cpu->q8_act) free(cpu->q8_act[0]);
    free(cpu->q8_act);
    free(cpu->wkv_scratch);
    free(cpu);
}

static enum rwkv7_status cpu_buf_alloc(struct rwkv7_backend *be, size_t size, struct rwkv7_buf **out) {
    struct rwkv7_buf *b = calloc(1, sizeof *b);
    /* 64-byte alignment for vector loads; at least one byte so empty tensors have an address. */
    size_t sz = (size + 63) & ~(size_t)63;
    void *p = NULL;
    if (!b || posix_memalign(&p, 64, sz ? sz : 64) != 0) {
        free(b);
        return rwkv7_fail(RWKV7_ERR_OOM, "cpu: out of memory allocating %zu bytes", size);
    }
    b->ptr = p;
    b->size = size;
    b->owned = true;
    *out = b;
    return RWKV7_OK;
}

static void cpu_buf_free(struct rwkv7_backend *be, struct rwkv7_buf *buf) {
    if (!buf) return;
    if (buf->owned) free(buf->ptr);
    free(buf);
}

static enum rwkv7_status cpu_buf_wrap_host(struct rwkv7_backend *be, void *ptr, size_t size, struct rwkv7_buf **out) {
    struct rwkv7_buf *b = calloc(1, sizeof *b);
    if (!b) return rwkv7_fail(RWKV7_ERR_OOM, "cpu: out of memory");
    b->ptr = ptr;
    b->size = size;
    b->owned = false;
    *out = b;
    return RWKV7_OK;
}

static enum rwkv7_status cpu_buf_set(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs, const void *src, size_t n) {
    if (offs > buf->size || n > buf->size - offs)
        return rwkv7_fail(RWKV7_ERR_ARG, "cpu: write of %zu bytes at %zu past buffer of %zu", n, offs, buf->size);
    if (n) memcpy((char *)buf->ptr + offs, src, n);
    return RWKV7_OK;
}

static enum rwkv7_status cpu_buf_get(struct rwkv7_backend *be, struct rwkv7_buf *buf, size_t offs, void *dst, size_t n) {
    if (offs > buf->size || n > buf->size - offs)
        return rwkv7_fail(RWKV7_ERR_ARG, "cpu: read of %zu bytes at %zu past buffer of %zu", n, offs, buf->size);
    if (n) memcpy(dst, (const char *)buf->ptr + offs, n);
    return RWKV7_OK;
}

static enum rwkv7_status cpu_sync(struct rwkv7_backend *be) { return RWKV7_OK; }

static bool cpu_weight_type_ok(int type);

static bool cpu_supports(struct rwkv7_backend *be, enum rwkv7_op op, int wtype) {
    if (op == RWKV7_OP_MATMUL || op == RWKV7_OP_EMBED) return cpu_weight_type_ok(wtype);
    return op < RWKV7_OP_COUNT;
}

static enum rwkv7_status cpu_mem_info(struct rwkv7_backend *be, uint64_t *free_bytes, uint64_t *total_bytes) {
    long page = sysconf(_SC_PAGESIZE), avail = sysconf(_SC_AVPHYS_PAGES), total = sysconf(_SC_PHYS_PAGES);
    if (page <= 0 || avail < 0 || total <= 0) return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cpu: memory size unknown");
    *free_bytes = (uint64_t)avail * (uint64_t)page;
    *total_bytes = (uint64_t)total * (uint64_t)page;
    return RWKV7_OK;
}

static const struct rwkv7_backend_i cpu_vtable = {
    .name = "cpu",
    .free = cpu_free,
    .buf_alloc = cpu_buf_alloc,
    .buf_free = cpu_buf_free,
    .buf_wrap_host = cpu_buf_wrap_host,
    .buf_set = cpu_buf_set,
    .buf_get = cpu_buf_get,
    .sync = cpu_sync,
    .supports = cpu_supports,
    .copy_bandwidth = NULL,
    .mem_info = cpu_mem_info,
#define RWKV7_X_(U, l) .l = rwkv7_cpu_##l,
    RWKV7_OP_LIST(RWKV7_X_)
#undef RWKV7_X_
};

static enum rwkv7_status cpu_init(const char *device, int n_threads, struct rwkv7_backend **out) {
    *out = NULL;
    if (n_threads <= 0) n_threads = rwkv7_n_physical_cores();
    if (n_threads > 256) n_threads = 256;
    struct rwkv7_cpu *cpu = calloc(1, sizeof *cpu);
    if (!cpu) return rwkv7_fail(RWKV7_ERR_OOM, "cpu: out of memory");
    cpu->base.i = &cpu_vtable;
    cpu->n_threads = n_threads;
    /* "exact": the reference for other backends (op checks, tests/test_ops.c) keeps fp32
     * activations in every matmul, as the GPU backends do; see matmul_q8.h */
    cpu->exact = device && !strcmp(device, "exact");
    cpu->pool = rwkv7_threadpool_init(n_threads);
    if (!cpu->pool) {
        free(cpu);
        return rwkv7_fail(RWKV7_ERR_INTERNAL, "cpu: cannot start %d threads", n_threads);
    }
    /* Prefill runs the serial WKV recurrence like decode: vectorized (cpu/wkv7_serial.c) it is
     * 3-5x faster than the chunked form at any chunk size (tests/test_wkv7.c prints the timings),
     * and prefill then equals serial decoding bit for bit. RWKV7_CPU_WKV_CHUNK=N forces chunks of
     * N tokens (1..64; 0 = serial). */
    const char *env = getenv("RWKV7_CPU_WKV_CHUNK");
    cpu->wkv_chunk = env ? atoi(env) : 0;
    cpu->wkv_chunk_env = env != NULL; /* else the first int8 matmul sets it to 0: cpu/matmul_q8.c */
    if (cpu->wkv_chunk < 0 || cpu->wkv_chunk > 64) cpu->wkv_chunk = 0;
    snprintf(cpu->base.desc, sizeof cpu->base.desc, "CPU, %d thread%s, %s kernels", n_threads, n_threads == 1 ? "" : "s",
             rwkv7_mm_isa_name(rwkv7_mm_isa()));
    *out = &cpu->base;
    return RWKV7_OK;
}

static void cpu_print_devices(FILE *f) {
    fprintf(f, "CPU: %d physical cores, %s matmul kernels (backend cpu, always available; RWKV7_CPU_ISA caps the level)\n",
            rwkv7_n_physical_cores(), rwkv7_mm_isa_name(rwkv7_mm_isa()));
}

/* Every type of the one weight-type list (dtype.h). */
static bool cpu_weight_type_ok(int type) {
    switch (type) {
#define RWKV7_X_(T) case RWKV7_DTYPE_##T:
        RWKV7_WEIGHT_TYPES(RWKV7_X_)
#undef RWKV7_X_
        return true;
    default:
        return false;
    }
}

const struct rwkv7_backend_reg rwkv7_backend_reg_cpu = {
    .name = "cpu",
    .device_prefix = "CPU",
    .gpu = false,
    .auto_device = NULL,
    .init = cpu_init,
    .print_devices = cpu_print_devices,
    .weight_type_ok = cpu_weight_type_ok,
};
