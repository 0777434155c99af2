/* gemm_tile.cuh: the geometry of the tensor-core prefill GEMM (cuda/gemm.cu) as __host__ __device__
 * code shared with tests/test_cuda_mma.cu: tile sizes, the launch plan (token chunks, split-K),
 * which shared-memory element each lane hands to ldmatrix and where each accumulator register
 * lands. The test replays the kernel's arithmetic with exactly these functions, so a change here
 * is checked on the host. Layouts follow the PTX ISA's mma.m16n8k16 (.bf16) fragment tables:
 * g = lane / 4, q = lane % 4; A (16 x 16, row-major) reg r holds rows g + 8 (r & 1), columns
 * 2q + 8 (r >> 1) + {0, 1}; B (16 x 8, "col": stored token-major) reg r holds k = 2q + 8 r + {0, 1}
 * of token g; C reg r is (row g + 8 (r >> 1), token 2q + (r & 1)). */
#ifndef RWKV7_CUDA_GEMM_TILE_CUH
#define RWKV7_CUDA_GEMM_TILE_CUH

#include <stdint.h>

#include <cuda_runtime.h>

#define GM_BM              64 /* weight rows per block tile */
#define GM_BN              64 /* tokens per block tile */
#define GM_BK              32 /* k per pipeline stage: two k16 MMA slices */
#define GM_LDS             40 /* bf16 per shared row (80 B): 16-byte aligned rows, ldmatrix conflict-free */
#define GM_LDC             68 /* floats per token row of the staged output tile */
#define GM_THREADS         128
#define GM_TCHUNK          1024 /* tokens per split pass + GEMM: bounds the scratch (K x 1024 x 4 bytes) */
#define GM_SPLIT_M         512  /* split-K only for matrices this narrow (the LoRA projections) */
#define GM_SPLIT_MAX       16
#define GM_SPLIT_MIN_STEPS 4 /* k steps (GM_BK each) per split at least */

/* How one chunk of tokens is computed: a grid of (token tiles, weight tiles, splits); split z
 * takes k steps [z steps, min((z + 1) steps, ksteps)) and writes fp32 partials that a second
 * kernel adds in z order (deterministic), else the tile applies the epilogue itself. Depends on
 * the shape and the SM count only. */
struct gm_plan {
    int splits; /* 1: no split-K */
    int steps;  /* k steps per split */
    int ksteps; /* ceil(K / GM_BK) */
};

__host__ __device__ inline gm_plan gm_plan_of(int64_t M, int64_t K, int64_t T, int n_sm) {
    gm_plan p;
    p.ksteps = (int)((K + GM_BK - 1) / GM_BK);
    p.splits = 1;
    p.steps = p.ksteps;
    const int64_t blocks = ((T + GM_BN - 1) / GM_BN) * ((M + GM_BM - 1) / GM_BM);
    const int64_t want = 2 * (int64_t)(n_sm > 0 ? n_sm : 1); /* two blocks per SM at least */
    if (M <= GM_SPLIT_M && blocks < want) {
        int64_t s = (want + blocks - 1) / blocks;
        const int64_t cap = p.ksteps / GM_SPLIT_MIN_STEPS;
        s = s < cap ? s : cap;
        s = s < GM_SPLIT_MAX ? s : GM_SPLIT_MAX;
        if (s > 1) {
            p.steps = (int)((p.ksteps + s - 1) / s);
            p.splits = (p.ksteps + p.steps - 1) / p.steps; /* no empty split */
        }
    }
    return p;
}

/* ldmatrix.x4 source of lane for a 16 x 16 A slice (rows m, columns k): matrices 0..3 are
 * (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = regs a0..a3. */
__host__ __device__ inline int gm_a_row(int lane) { return lane & 15; }
__host__ __device__ inline int gm_a_col(int lane) { return (lane >> 4) * 8; }
/* ldmatrix.x4 source of lane for two 8-token B slices (tokens n, n + 8) x k16: matrices 0..3 are
 * (tokens 0-7, k 0-7), (tokens 0-7, k 8-15), (tokens 8-15, k 0-7), (tokens 8-15, k 8-15), so regs
 * 0-1 are the first slice's b0 b1 and regs 2-3 the second's. */
__host__ __device__ inline int gm_b_row(int lane) { return (lane & 7) + ((lane >> 4) << 3); }
__host__ __device__ inline int gm_b_col(int lane) { return ((lane >> 3) & 1) * 8; }
/* Accumulator register r of lane: row (weight) and token inside the 16 x 8 MMA tile. */
__host__ __device__ inline int gm_c_row(int lane, int r) { return (lane >> 2) + 8 * (r >> 1); }
__host__ __device__ inline int gm_c_col(int lane, int r) { return 2 * (lane & 3) + (r & 1); }

/* Warp w's 32 x 32 patch of the 64 x 64 block tile: rows 32 (w & 1), tokens 32 (w >> 1); inside it
 * 2 row slices (i) x 4 token slices (j) of 16 x 8. */
__host__ __device__ inline int gm_warp_row(int warp) { return (warp & 1) * 32; }
__host__ __device__ inline int gm_warp_tok(int warp) { return (warp >> 1) * 32; }

#endif
