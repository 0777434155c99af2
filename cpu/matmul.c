/* matmul.c: CPU matmul dst (M, T) = W (K, M) . x (K, T) for every weight type, and embedding.
 * Weights are read in their GGUF layout and never dequantized as a whole matrix.
 *
 * Paths (chosen per call; see matmul_simd.h for the arithmetic they share):
 * - x86 with AVX-512F/BW (+AVX2/FMA/F16C), else x86 with AVX2/FMA/F16C, else x86 with
 *   AVX/FMA/F16C (no AVX2): matmul_avx512.c / matmul_avx2.c / matmul_avx.c. For F32, F16, BF16,
 *   Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, IQ3_XXS and IQ3_S: T <= 4
 *   (AVX-512) or T <= 2 (AVX2, AVX) runs the fused kernel (weights decoded in registers,
 *   read once for all T inputs), larger T the tile kernel (4 rows decoded once into an fp32 tile,
 *   then a register-blocked FMA GEMM).
 *   Other types always use the tile kernel, filled by the type table's exact to_f32.
 *   Both kernels give bit-identical results for a given row and input, so the T threshold is a
 *   speed choice only.
 * - Anywhere else (or RWKV7_CPU_ISA=scalar, or rwkv7_mm_isa_force(RWKV7_MM_SCALAR)): the
 *   portable path below, 8 rows dequantized with to_f32 into a scratch, dotted with 8 fixed fp32 partial sums.
 * Activations stay fp32 on these paths (nothing is lost beyond fp32 rounding of the sums); F32
 * weights therefore keep the reference accuracy. With AVX-512 VNNI the quantized types go to the
 * int8-activation path instead (matmul_q8.c; off for the "exact" device and RWKV7_CPU_INT8=0);
 * for T <= 4, Q4_K, Q6_K, IQ3_S, IQ3_XXS, Q8_0 and Q4_0 run its bit-identical decode kernels in
 * matvec_q8.c.
 * Determinism: the thread pool splits rows only, and each output's summation order is fixed by
 * the path (ISA) alone: results do not depend on the thread count, on T, or on the other
 * sequences in the call. Different ISAs give different (equally accurate) roundings. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "cpu.h"
#include "dtype.h"
#include "matmul_q8.h"
#include "matmul_simd.h"
#include "matvec_q8.h"
#include "status.h"

#define CPU(be) ((struct rwkv7_cpu *)(be))
/* Weight rows dequantized per pass on the scalar path; 8 rows of K <= 16384 floats stay within L2. */
#define MATMUL_ROWS 8

/* ---- instruction set choice ---- */

static int mm_isa_best = RWKV7_MM_SCALAR;
static int mm_isa_forced = -1;
static pthread_once_t mm_isa_once = PTHREAD_ONCE_INIT;

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
/* F16C from CPUID leaf 1 (ECX bit 29): not every compiler's __builtin_cpu_supports knows "f16c". */
static bool mm_cpu_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* The OS saves the YMM registers on a context switch: OSXSAVE set and XCR0 enabling the SSE and
 * AVX state (bits 1, 2). A CPU can report AVX while the OS (or hypervisor) leaves it off; using it
 * then faults. __builtin_cpu_supports checks this too in current compilers, but not in all. */
static bool mm_os_avx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX)) return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 6u) == 6u;
}
#endif

/* RWKV7_CPU_ISA caps the level (a lower one only: a level the CPU lacks cannot be forced), so
 * CI on an AVX-512 machine can run the whole suite on every lower path. */
static int mm_isa_env_cap(void) {
    const char *e = getenv("RWKV7_CPU_ISA");
    if (!e || !*e) return RWKV7_MM_AVX512;
    if (!strcmp(e, "avx512")) return RWKV7_MM_AVX512;
    if (!strcmp(e, "avx2")) return RWKV7_MM_AVX2;
    if (!strcmp(e, "avx")) return RWKV7_MM_AVX;
    if (!strcmp(e, "scalar")) return RWKV7_MM_SCALAR;
    fprintf(stderr, "warning: RWKV7_CPU_ISA=%s is not one of avx512, avx2, avx, scalar; ignored\n", e);
    return RWKV7_MM_AVX512;
}

/* Each level includes the one below (AVX2 machines all have AVX, FMA and F16C), so a cap or a
 * forced lower level always runs on the CPU that passed the higher check. */
static void mm_isa_detect(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (mm_os_avx() && __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma") && mm_cpu_f16c()) {
        mm_isa_best = RWKV7_MM_AVX;
        if (__builtin_cpu_supports("avx2")) {
            mm_isa_best = RWKV7_MM_AVX2;
            if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) mm_isa_best = RWKV7_MM_AVX512;
        }
    }
#endif
    const int cap = mm_isa_env_cap();
    if (mm_isa_best > cap) mm_isa_best = cap;
}

int rwkv7_mm_isa(void) {
    pthread_once(&mm_isa_once, mm_isa_detect);
    if (mm_isa_forced >= 0 && mm_isa_forced <= mm_isa_best) return mm_isa_forced;
    return mm_isa_best;
}

const char *rwkv7_mm_isa_name(int isa) {
    return isa == RWKV7_MM_AVX512 ? "AVX-512" : isa == RWKV7_MM_AVX2 ? "AVX2" : isa == RWKV7_MM_AVX ? "AVX" : "scalar";
}

void rwkv7_mm_isa_force(int isa) { mm_isa_forced = isa; }

bool rwkv7_mm_simd_type(int type) {
    switch (type) {
    case RWKV7_DTYPE_F32: case RWKV7_DTYPE_F16: case RWKV7_DTYPE_BF16:
    case RWKV7_DTYPE_Q8_0: case RWKV7_DTYPE_Q4_0: case RWKV7_DTYPE_Q4_1:
    case RWKV7_DTYPE_Q5_0: case RWKV7_DTYPE_Q5_1: case RWKV7_DTYPE_Q4_K:
    case RWKV7_DTYPE_Q5_K: case RWKV7_DTYPE_Q6_K: case RWKV7_DTYPE_IQ4_NL:
    case RWKV7_DTYPE_IQ4_XS: case RWKV7_DTYPE_IQ3_XXS: case RWKV7_DTYPE_IQ3_S:
        return true;
    default:
        return false;
    }
}

/* ---- portable path ---- */

static float dot_f32(const float *a, const float *b, int64_t n) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s[i & 7] += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

static void matmul_rows_scalar(void *p, int64_t m0, int64_t m1, int ith) {
    const struct rwkv7_mm_job *j = p;
    const bool f32 = j->type == RWKV7_DTYPE_F32;
    float *scratch = j->tile[ith];
    for (int64_t mb = m0; mb < m1; mb += MATMUL_ROWS) {
        int64_t nr = m1 - mb < MATMUL_ROWS ? m1 - mb : MATMUL_ROWS;
        const float *rows[MATMUL_ROWS];
        for (int64_t r = 0; r < nr; r++) {
            const uint8_t *src = j->w + (size_t)(mb + r) * j->row_bytes;
            if (f32) {
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

RWKV7_OP_SIG(rwkv7_cpu_matmul, matmul) {
    const struct rwkv7_tensor *dst = args->dst, *w = args->w, *x = args->x;
    bool accumulate = args->accumulate;
    struct rwkv7_cpu *cpu = CPU(be);
    const struct rwkv7_dtype_info *ti = rwkv7_dtype_get(w->type);
    const int64_t K = w->ne[0], M = w->ne[1];
    struct rwkv7_mm_job j = {
        .dst = cpu_f32(dst), .w = cpu_data(w), .x = cpu_f32(x), .K = K, .M = M, .T = rwkv7_tensor_nrows(x),
        .row_bytes = rwkv7_dtype_row_bytes(w->type, K), .type = w->type, .fast = rwkv7_mm_simd_type(w->type),
        .accumulate = accumulate, .to_f32 = ti->to_f32, .tile = NULL,
    };
    rwkv7_task_fn fn = matmul_rows_scalar;
    size_t scratch = (size_t)(MATMUL_ROWS * K);
#if defined(__x86_64__) || defined(__i386__)
    const int isa = rwkv7_mm_isa();
    if (!cpu->exact && rwkv7_mv_q8_use(w->type, j.T, isa)) return rwkv7_mv_q8_matmul(cpu, &j); /* decode */
    if (!cpu->exact && rwkv7_mm_q8_use(w->type, isa)) return rwkv7_mm_q8_matmul(cpu, &j);
    if (isa != RWKV7_MM_SCALAR) {
        fn = isa == RWKV7_MM_AVX512 ? rwkv7_mm_rows_avx512 : isa == RWKV7_MM_AVX2 ? rwkv7_mm_rows_avx2 : rwkv7_mm_rows_avx;
        scratch = (size_t)(RWKV7_MM_ROWS * K);
    }
#endif
    RWKV7_TRY(rwkv7_cpu_reserve(&cpu->row_scratch, &cpu->row_scratch_n, cpu->n_threads, scratch));
    j.tile = cpu->row_scratch;
    /* Each part gets at least ~64K weights x rows of work, so that small matrices (LoRAs, tiny
     * models) are not split across threads whose wake-up costs more than the work. */
    int64_t work_per_row = K * (j.T < 8 ? j.T : 8);
    int64_t min_chunk = work_per_row >= 65536 ? MATMUL_ROWS : 65536 / work_per_row;
    if (min_chunk < MATMUL_ROWS) min_chunk = MATMUL_ROWS;
    rwkv7_threadpool_run(cpu->pool, M, min_chunk, fn, &j);
    return RWKV7_OK;
}

RWKV7_OP_SIG(rwkv7_cpu_embed, embed) {
    const struct rwkv7_tensor *dst = args->dst, *table = args->table, *tokens = args->tokens;
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
