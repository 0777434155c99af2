/* cpu.h: internals shared by the CPU backend's files (cpu.c: vtable and memory; ops.c:
 * elementwise ops; matmul.c: quantized matmul and embedding). Buffers are plain host memory, so a
 * tensor's data pointer is buf->ptr + offs. */
#ifndef RWKV7_CPU_H
#define RWKV7_CPU_H

#include <stdbool.h>

#include "backend.h"
#include "threadpool.h"

struct rwkv7_buf {
    void *ptr;
    size_t size;
    bool owned; /* false for wrapped host memory (the mmap'd GGUF) */
};

struct rwkv7_cpu {
    struct rwkv7_backend base;
    struct rwkv7_threadpool *pool;
    int n_threads;
    float **row_scratch;  /* per thread: dequantized weight rows for matmul */
    size_t row_scratch_n; /* floats in each */
    float **wkv_scratch;  /* per thread: chunked WKV scratch */
    size_t wkv_scratch_n;
    int wkv_chunk;        /* tokens per chunk for the chunked WKV form; 0 = always serial */
    bool wkv_chunk_env;   /* wkv_chunk was set by RWKV7_CPU_WKV_CHUNK */
    float **q8_act;       /* one buffer: the int8-quantized matmul inputs (matmul_q8.c) */
    size_t q8_act_n;
    bool exact;           /* device "exact": fp32 activations only (a reference for other backends) */
};

static inline float *cpu_f32(const struct rwkv7_tensor *t) {
    return (float *)((char *)t->buf->ptr + t->offs);
}
static inline const void *cpu_data(const struct rwkv7_tensor *t) {
    return (const char *)t->buf->ptr + t->offs;
}

/* Grows every thread's scratch to hold n floats. */
enum rwkv7_status rwkv7_cpu_reserve(float ***scratch, size_t *have, int n_threads, size_t n);

/* The compute entries of the vtable (ops.c, matmul.c); semantics at backend.h's argument structs. */
#define RWKV7_X_(U, l) RWKV7_OP_SIG(rwkv7_cpu_##l, l);
RWKV7_OP_LIST(RWKV7_X_)
#undef RWKV7_X_

#endif
