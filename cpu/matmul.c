/* matmul.c: CPU matmul and embedding for every weight type. Weights are read in their GGUF layout:
 * a few rows at a time are dequantized with the type table's exact to_f32 into a per-thread
 * scratch and then dotted with every input row, so each weight byte is decoded once per call
 * (not once per token) and no whole matrix is ever dequantized. Accumulation is fp32 with eight
 * fixed partial sums: results do not depend on the thread count. */
#include <string.h>

#include "cpu.h"
#include "dtype.h"
#include "status.h"

#define CPU(be) ((struct rwkv7_cpu *)(be))
/* Weight rows dequantized per pass; 8 rows of K <= 16384 floats stay within L2. */
#define MATMUL_ROWS 8

static float dot_f32(const float *a, const float *b, int64_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s[i & 7] += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

struct matmul_job {
    struct rwkv7_cpu *cpu;
    float *dst;
    const char *w;
    const float *x;
    int64_t K, M, T;
    size_t row_bytes;
    rwkv7_to_f32_fn to_f32;
    bool f32, accumulate;
};

static void matmul_rows(void *p, int64_t m0, int64_t m1, int ith) {
    const struct matmul_job *j = p;
    float *scratch = j->f32 ? NULL : j->cpu->row_scratch[ith];
    for (int64_t mb = m0; mb < m1; mb += MATMUL_ROWS) {
        int64_t nr = m1 - mb < MATMUL_ROWS ? m1 - mb : MATMUL_ROWS;
        const float *rows[MATMUL_ROWS];
        for (int64_t r = 0; r < nr; r++) {
            const char *src = j->w + (size_t)(mb + r) * j->row_bytes;
            if (j->f32) {
                rows[r] = (const float *)src; /* F32 weights are 4-byte aligned in GGUF */
            } else {
                j->to_f32(src, scratch + r * j->K, j->K);
                rows[r] = scratch + r * j->K;
            }
        }
        for (int64_t t = 0; t < j->T; t++) {
            const float *x = j->x + t * j->K;
            float *d = j->dst + t * j->M + mb;
            for (int64_t r = 0; r < nr; r++) {
                float v = dot_f32(rows[r], x, j->K);
                d[r] = j->accumulate ? d[r] + v : v;
            }
        }
    }
}

enum rwkv7_status rwkv7_cpu_matmul(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                   const struct rwkv7_tensor *w, const struct rwkv7_tensor *x,
                                   bool accumulate) {
    struct rwkv7_cpu *cpu = CPU(be);
    const struct rwkv7_dtype_info *ti = rwkv7_dtype_get(w->type);
    int64_t K = w->ne[0], M = w->ne[1];
    struct matmul_job j = {cpu, cpu_f32(dst), cpu_data(w), cpu_f32(x), K, M, rwkv7_tensor_nrows(x),
                           rwkv7_dtype_row_bytes(w->type, K), ti->to_f32, w->type == RWKV7_DTYPE_F32, accumulate};
    if (!j.f32)
        RWKV7_TRY(rwkv7_cpu_reserve(&cpu->row_scratch, &cpu->row_scratch_n, cpu->n_threads, (size_t)(MATMUL_ROWS * K)));
    /* Each part gets at least ~64K weights x rows of work, so that small matrices (LoRAs, tiny
     * models) are not split across threads whose wake-up costs more than the work. */
    int64_t work_per_row = K * (j.T < 8 ? j.T : 8);
    int64_t min_chunk = work_per_row >= 65536 ? MATMUL_ROWS : 65536 / work_per_row;
    if (min_chunk < MATMUL_ROWS) min_chunk = MATMUL_ROWS;
    rwkv7_threadpool_run(cpu->pool, M, min_chunk, matmul_rows, &j);
    return RWKV7_OK;
}

enum rwkv7_status rwkv7_cpu_embed(struct rwkv7_backend *be, const struct rwkv7_tensor *dst,
                                  const struct rwkv7_tensor *table, const struct rwkv7_tensor *tokens) {
    const struct rwkv7_dtype_info *ti = rwkv7_dtype_get(table->type);
    int64_t C = table->ne[0], V = table->ne[1];
    size_t row_bytes = rwkv7_dtype_row_bytes(table->type, C);
    const int32_t *ids = cpu_data(tokens);
    for (int64_t t = 0; t < tokens->ne[0]; t++) {
        if (ids[t] < 0 || ids[t] >= V)
            return rwkv7_fail(RWKV7_ERR_ARG, "embed: token %d out of range (vocabulary of %lld)", ids[t], (long long)V);
        ti->to_f32((const char *)cpu_data(table) + (size_t)ids[t] * row_bytes, cpu_f32(dst) + t * C, C);
    }
    return RWKV7_OK;
}
