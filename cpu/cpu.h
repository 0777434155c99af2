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
};

static inline float *cpu_f32(const struct rwkv7_tensor *t) {
    return (float *)((char *)t->buf->ptr + t->offs);
}
static inline const void *cpu_data(const struct rwkv7_tensor *t) {
    return (const char *)t->buf->ptr + t->offs;
}

/* Grows every thread's scratch to hold n floats. */
enum rwkv7_status rwkv7_cpu_reserve(float ***scratch, size_t *have, int n_threads, size_t n);

enum rwkv7_status rwkv7_cpu_embed(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                  const struct rwkv7_tensor *table, const struct rwkv7_tensor *tokens);
enum rwkv7_status rwkv7_cpu_matmul(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *w, const struct rwkv7_tensor *x,
                                   bool accumulate);
enum rwkv7_status rwkv7_cpu_norm(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                 const struct rwkv7_tensor *x, const struct rwkv7_tensor *w,
                                 const struct rwkv7_tensor *b, int n_groups, float eps);
enum rwkv7_status rwkv7_cpu_token_shift(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                        const struct rwkv7_tensor *x, const struct rwkv7_tensor *mix,
                                        const struct rwkv7_tensor *state,
                                        const struct rwkv7_tensor *slots, int n_tok);
enum rwkv7_status rwkv7_cpu_unary(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                  const struct rwkv7_tensor *x, const struct rwkv7_tensor *bias,
                                  enum rwkv7_unary fn);
enum rwkv7_status rwkv7_cpu_binary(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                                   enum rwkv7_binary fn);
enum rwkv7_status rwkv7_cpu_mix(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                const struct rwkv7_tensor *a, const struct rwkv7_tensor *b,
                                const struct rwkv7_tensor *t);
enum rwkv7_status rwkv7_cpu_key_prep(struct rwkv7_backend *be, const struct rwkv7_tensor *kk,
                                     const struct rwkv7_tensor *kmod, const struct rwkv7_tensor *k,
                                     const struct rwkv7_tensor *a, const struct rwkv7_tensor *k_k,
                                     const struct rwkv7_tensor *k_a, int head_size);
enum rwkv7_status rwkv7_cpu_wkv7(struct rwkv7_backend *be, const struct rwkv7_tensor *y,
                                 const struct rwkv7_tensor *state, const struct rwkv7_tensor *slots,
                                 const struct rwkv7_tensor *r, const struct rwkv7_tensor *w,
                                 const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                 const struct rwkv7_tensor *kk, const struct rwkv7_tensor *a,
                                 int n_tok, int head_size);
enum rwkv7_status rwkv7_cpu_wkv_out(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                    const struct rwkv7_tensor *y, const struct rwkv7_tensor *r,
                                    const struct rwkv7_tensor *k, const struct rwkv7_tensor *v,
                                    const struct rwkv7_tensor *g, const struct rwkv7_tensor *r_k,
                                    const struct rwkv7_tensor *ln_w, const struct rwkv7_tensor *ln_b,
                                    int head_size, float eps);
enum rwkv7_status rwkv7_cpu_last_rows(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                      const struct rwkv7_tensor *x, int n_tok);

#endif
