/* bench_matmul.c: microbenchmark of the CPU matmul (cpu/matmul.c) alone, per weight type,
 * instruction set, T and thread count, on random weights (runtime/dtype_random.h). Prints one
 * line per case: microseconds per call, weight GB/s (decode is memory-bound) and GFLOP/s (prefill
 * is compute-bound). Not built by default; build against a configured build dir (see README.md):
 *   cc -O2 -std=c11 -I runtime -I cpu bench/bench_matmul.c BUILD/librwkv7.a -lm -lpthread -o bench_matmul
 * Usage: bench_matmul [-k K] [-m M] [-t THREADS] [-T T,...] [-i ISA] [TYPE ...]
 *   ISA: 0 scalar, 1 AVX, 2 AVX2, 3 AVX-512 (default: best); TYPE: ggml names (default f16 q8_0 q4_K). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cpu.h"
#include "dtype.h"
#include "dtype_random.h"
#include "matmul_simd.h"

/* BENCH_CPU_TIME=1: process CPU time instead of wall time, for -t 1 on a shared machine (time
 * the process waits for a core is not counted; with more threads it sums their times). */
static double now_s(void) {
    struct timespec ts;
    static int cpu = -1;
    if (cpu < 0) cpu = getenv("BENCH_CPU_TIME") && !strcmp(getenv("BENCH_CPU_TIME"), "1");
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct rwkv7_tensor wrap(struct rwkv7_backend *be, void *mem, int type, int64_t ne0, int64_t ne1, size_t bytes) {
    struct rwkv7_tensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.ne[0] = ne0;
    t.ne[1] = ne1;
    t.ne[2] = t.ne[3] = 1;
    t.nbytes = bytes;
    if (be->i->buf_wrap_host(be, mem, bytes, &t.buf) != RWKV7_OK) exit(1);
    return t;
}

int main(int argc, char **argv) {
    int64_t K = 768, M = 3072;
    int threads = 1, isa = -1, n_types = 0;
    int64_t Ts[16] = {1, 2, 4, 8, 16, 64, 128};
    int n_T = 7;
    const char *types[64];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-k") && i + 1 < argc) K = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) M = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-i") && i + 1 < argc) isa = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-T") && i + 1 < argc) {
            n_T = 0;
            for (char *s = strtok(argv[++i], ","); s && n_T < 16; s = strtok(NULL, ",")) Ts[n_T++] = atoll(s);
        } else if (n_types < 64) types[n_types++] = argv[i];
    }
    if (!n_types) {
        types[0] = "f16";
        types[1] = "q8_0";
        types[2] = "q4_K";
        n_types = 3;
    }
    struct rwkv7_backend *be;
    if (rwkv7_backend_init("cpu", NULL, threads, true, &be) != RWKV7_OK) return 1;
    if (isa >= 0) rwkv7_mm_isa_force(isa);
    printf("K %lld M %lld threads %d isa %d\n", (long long)K, (long long)M, threads, rwkv7_mm_isa());
    int64_t Tmax = 1;
    for (int i = 0; i < n_T; i++) Tmax = Ts[i] > Tmax ? Ts[i] : Tmax;
    float *x = malloc(sizeof(float) * (size_t)(K * Tmax)), *d = malloc(sizeof(float) * (size_t)(M * Tmax));
    for (int64_t i = 0; i < K * Tmax; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int ti = 0; ti < n_types; ti++) {
        int type = rwkv7_dtype_from_name(types[ti]);
        if (type < 0 || !rwkv7_dtype_is_weight(type)) {
            fprintf(stderr, "unknown weight type %s\n", types[ti]);
            continue;
        }
        size_t wb = rwkv7_dtype_row_bytes(type, K) * (size_t)M;
        void *w = malloc(wb);
        rwkv7_dtype_random_rows(type, 1, w, M, K, 0.05f);
        struct rwkv7_tensor tw = wrap(be, w, type, K, M, wb);
        for (int i = 0; i < n_T; i++) {
            int64_t T = Ts[i];
            struct rwkv7_tensor tx = wrap(be, x, RWKV7_DTYPE_F32, K, T, sizeof(float) * (size_t)(K * T));
            struct rwkv7_tensor td = wrap(be, d, RWKV7_DTYPE_F32, M, T, sizeof(float) * (size_t)(M * T));
            RWKV7_OP(be, matmul, .dst = &td, .w = &tw, .x = &tx);
            int reps = 0;
            double t0 = now_s(), el;
            do {
                RWKV7_OP(be, matmul, .dst = &td, .w = &tw, .x = &tx);
                reps++;
                el = now_s() - t0;
            } while (el < 0.3);
            double us = el / reps * 1e6;
            printf("%-7s T=%-4lld %10.1f us  %7.2f GB/s  %8.1f GFLOP/s\n", types[ti], (long long)T, us,
                   (double)wb / (us * 1e3), 2.0 * (double)K * (double)M * (double)T / (us * 1e3));
            be->i->buf_free(be, tx.buf);
            be->i->buf_free(be, td.buf);
        }
        be->i->buf_free(be, tw.buf);
        free(w);
    }
    free(x);
    free(d);
    rwkv7_backend_free(be);
    return 0;
}
