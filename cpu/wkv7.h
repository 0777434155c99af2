/* wkv7.h: CPU reference of the RWKV-7 WKV recurrence (rwkv7-gguf.md §4.4 step 11, §4.9) for one
 * sequence, in two forms: token-serial (the reference and the T = 1 decode path) and
 * chunked-parallel (the DPLR delta-rule / WY form of performance.md §3.3 that GPU prefill kernels
 * implement). Both are single-threaded over heads [h0, h1), allocate nothing, and update the
 * state in place; callers thread over heads and sequences (disjoint head ranges never race). */
#ifndef RWKV7_CPU_WKV7_H
#define RWKV7_CPU_WKV7_H

#include <stddef.h>

/* One sequence of T tokens. Every input row t starts at t * n_embd; head h's slice at
 * t * n_embd + h * head_size. kk is the per-head L2-normalised removal key; the op uses
 * llama.cpp's (a, b) = (-kk, kk * a). */
struct rwkv7_wkv7_job {
    int n_tok;       /* T, >= 0 */
    int n_embd;      /* C = H * N */
    int head_size;   /* N */
    const float *r;  /* (C, T) receptance */
    const float *w;  /* (C, T) multiplicative decay in (0, 1], already exp(-0.606531 * sigmoid(z)) */
    const float *k;  /* (C, T) modulated key k' */
    const float *v;  /* (C, T) value */
    const float *kk; /* (C, T) removal key, L2-normalised per head */
    const float *a;  /* (C, T) in-context learning rate in (0, 1) */
    float *state;    /* (N, N, H) [h][i][j], i = value row, j = key column; in/out */
    float *y;        /* (C, T) output; must not alias the inputs or the state */
};

/* Token-serial recurrence for heads [h0, h1), exactly as written in the spec, in fp32:
 * sa_i = sum_j (-kk_j) S_ij (old S); S_ij = S_ij w_j + v_i k_j + sa_i (kk_j a_j); y_i = sum_j S_ij r_j
 * (new S). Each sum runs in 16 lanes (j mod 16, j ascending) added in a fixed tree
 * (cpu/wkv7_serial.c), so results are deterministic bit for bit and equal at every ISA level. */
void rwkv7_cpu_wkv7_serial(const struct rwkv7_wkv7_job *p, int h0, int h1);

/* Floats of scratch that rwkv7_cpu_wkv7_chunked needs for a given chunk length and head size. */
size_t rwkv7_cpu_wkv7_chunked_scratch(int chunk, int head_size);

/* Chunked-parallel form for heads [h0, h1): tokens are processed chunk tokens at a time (1..64;
 * the last chunk may be shorter). scratch holds rwkv7_cpu_wkv7_chunked_scratch(chunk, head_size)
 * floats, owned by the caller, one buffer per concurrent caller. Agrees with the serial form to
 * fp32 rounding (tests/test_wkv7.c states the measured error and the tolerance). Work per token
 * is ~4 N^2 (state pass) + ~6 chunk N (intra-chunk matrices), so on a CPU chunk 8..16 is fastest;
 * larger chunks only pay off where the intra-chunk part runs in parallel (GPU). */
void rwkv7_cpu_wkv7_chunked(const struct rwkv7_wkv7_job *p, int h0, int h1, int chunk,
                            float *scratch);

#endif
