/* wkv7.cu: the WKV-7 recurrence (backend.h wkv7; rwkv7-gguf.md 4.9 with a = -kk, b = kk * a):
 *   sa_i = sum_j (-kk_j) S[i][j];  S[i][j] = S[i][j] w_j + v_i k_j + sa_i kk_j a_j;  y_i = sum_j S[i][j] r_j
 * fp32 state [h][i][j] in slot rows, updated in place. Token-serial form with the state in
 * registers (llama.cpp / Albatross fp32 design, performance.md 3.5), each row split over N / 32
 * threads; rows of S are independent, so a head is split over blocks of 32 rows for more
 * parallelism. Same operation order per element as cpu/wkv7.c rwkv7_cpu_wkv7_serial (sums in a
 * different order: NMSE ~1e-12). Prefill of at least
 * WKV7_CHUNKED_MIN_TOK tokens (N = 64, 128) takes the chunked-parallel kernel instead, whose
 * per-thread logic lives in wkv7_chunked.cuh so the host test can run it. The fused wkv_block
 * (key_prep + serial wkv7 + wkv_out, one kernel: wkv7_block.cuh) is the decode path. */
#include "common.cuh"
#include "ops.cuh"
#include "wkv7_block.cuh"
#include "wkv7_chunked.cuh"
#include "wkv7_serial.cuh"

/* ------------------------------------------------------------------------------------------------
 * kernels */

/* Serial form, a state row split over P = N / 32 threads: grid = (n_seq * H, N / 32), block =
 * 32 P threads; block (s*H + h, q) owns rows q*32 .. q*32+31 of head h of sequence s; thread
 * tid = P r + p holds elements p*32 .. p*32+31 of row q*32 + r in 32 registers for the whole call
 * (the former thread-per-row form needed N registers of state: 255 and spills at N = 128). Per
 * token the P parts of sa and y are added with log2 P butterfly shuffles inside the row's lanes,
 * and each part sums with 4 independent accumulators (chains of 8 dependent adds, not N). Tokens
 * go in chunks of TC = 1024 / N: the chunk's r, w, k, kk, a slices (5 * TC * N floats, 22.5 KiB
 * with padding) are staged in shared memory, each 32-float part padded to 36 so the P parts of
 * a warp fall in different banks and still load as float4. Host checks N is 32, 64 or 128; a
 * slot outside [0, n_slots) makes the block do nothing (uniform per block). */
/* (WKV7_PART, WKV7_PAD and the per-part arithmetic: wkv7_serial.cuh, replayed by test_cuda_wkv7) */

template <int N>
static __global__ void __launch_bounds__(N)
wkv7_f32_kernel(float *y, float *state, const int32_t *slots, const float *r, const float *w, const float *k,
                const float *v, const float *kk, const float *a, int64_t C, int n_tok, int64_t n_slots) {
    constexpr int P = N / WKV7_PART, TC = 1024 / N, ROW = P * WKV7_PAD;
    __shared__ __align__(16) float sh[5][TC][ROW]; /* r, w, k, kk, a of TC tokens */
    const int64_t H = C / N, s = blockIdx.x / H, h = blockIdx.x % H;
    const int p = threadIdx.x % P, i = blockIdx.y * 32 + threadIdx.x / P;
    const int32_t slot = slots[s];
    if (slot < 0 || slot >= n_slots) return;
    float *st = state + (int64_t)slot * C * N + h * N * N + (int64_t)i * N + p * WKV7_PART;
    float S[WKV7_PART];
#pragma unroll
    for (int j = 0; j < WKV7_PART; j += 4) {
        const float4 q = *(const float4 *)(st + j); /* rows are 16-byte aligned (host check) */
        S[j] = q.x, S[j + 1] = q.y, S[j + 2] = q.z, S[j + 3] = q.w;
    }
    const int64_t base = s * n_tok * C + h * N; /* token 0 of this sequence, this head */
    for (int t0 = 0; t0 < n_tok; t0 += TC) {
        const int nt = n_tok - t0 < TC ? n_tok - t0 : TC;
        __syncthreads(); /* the previous chunk is fully consumed */
#pragma unroll
        for (int q = 0; q < 5; q++) {
            const float *src = q == 0 ? r : q == 1 ? w : q == 2 ? k : q == 3 ? kk : a;
            for (int idx = threadIdx.x; idx < nt * N; idx += N) {
                const int tt = idx / N, j = idx % N;
                sh[q][tt][(j / WKV7_PART) * WKV7_PAD + j % WKV7_PART] = src[base + (int64_t)(t0 + tt) * C + j];
            }
        }
        __syncthreads();
        for (int tt = 0; tt < nt; tt++) {
            const int64_t o = base + (int64_t)(t0 + tt) * C;
            const float vi = v[o + i];
            const float4 *rr = (const float4 *)&sh[0][tt][p * WKV7_PAD], *ww = (const float4 *)&sh[1][tt][p * WKV7_PAD];
            const float4 *kp = (const float4 *)&sh[2][tt][p * WKV7_PAD], *kkp = (const float4 *)&sh[3][tt][p * WKV7_PAD];
            const float4 *ap = (const float4 *)&sh[4][tt][p * WKV7_PAD];
            float sa = wkv7s_sa_part(S, kkp);
#pragma unroll
            for (int o2 = 1; o2 < P; o2 <<= 1) sa += __shfl_xor_sync(0xffffffffu, sa, o2);
            float yi = wkv7s_update_part(S, rr, ww, kp, kkp, ap, vi, sa);
#pragma unroll
            for (int o2 = 1; o2 < P; o2 <<= 1) yi += __shfl_xor_sync(0xffffffffu, yi, o2);
            if (p == 0) y[o + i] = yi;
        }
    }
#pragma unroll
    for (int j = 0; j < WKV7_PART; j += 4) *(float4 *)(st + j) = make_float4(S[j], S[j + 1], S[j + 2], S[j + 3]);
}

/* Chunked prefill: grid = (n_seq * H, N / 64), block = 64 threads; thread tid of block
 * (s*H + h, q) owns state row q*64 + tid of head h in N registers across all chunks; the
 * intra-chunk matrices are rebuilt by each of the N / 64 row blocks (they are ~1/3 of the work at
 * N = 128, and the extra blocks double the parallelism of a single-sequence prefill). Phases and
 * precision: wkv7_chunked.cuh. Dynamic shared memory = sizeof(wkv7c_smem<N>). */
template <int N>
static __global__ void __launch_bounds__(WKV7C_THREADS)
wkv7_f32_chunked_kernel(float *y, float *state, const int32_t *slots, const float *r, const float *w,
                        const float *k, const float *v, const float *kk, const float *a, int64_t C, int n_tok,
                        int64_t n_slots) {
    extern __shared__ float4 wkv7c_dyn[];
    wkv7c_smem<N> &sm = *reinterpret_cast<wkv7c_smem<N> *>(wkv7c_dyn);
    const int64_t H = C / N, s = blockIdx.x / H, h = blockIdx.x % H;
    const int tid = threadIdx.x, row = blockIdx.y * WKV7C_THREADS + tid;
    const int32_t slot = slots[s];
    if (slot < 0 || slot >= n_slots) return; /* uniform per block, before any barrier */
    float *st = state + (int64_t)slot * C * N + h * N * N + (int64_t)row * N;
    float S[N];
#pragma unroll
    for (int j = 0; j < N; j += 4) {
        const float4 q = *(const float4 *)(st + j);
        S[j] = q.x, S[j + 1] = q.y, S[j + 2] = q.z, S[j + 3] = q.w;
    }
    const int64_t base = s * n_tok * C + h * N;
    for (int t0 = 0; t0 < n_tok; t0 += WKV7C_L) {
        const int len = n_tok - t0 < WKV7C_L ? n_tok - t0 : WKV7C_L;
        const int64_t o = base + (int64_t)t0 * C;
        const wkv7c_io io = {r + o, w + o, k + o, v + o, kk + o, a + o, y + o, C};
#pragma unroll
        for (int phase = 0; phase < WKV7C_PHASES; phase++) {
            wkv7c_phase<N>(phase, sm, tid, row, len, io, S);
            __syncthreads(); /* after phase 5: the next chunk's load overwrites what it read */
        }
    }
#pragma unroll
    for (int j = 0; j < N; j += 4) *(float4 *)(st + j) = make_float4(S[j], S[j + 1], S[j + 2], S[j + 3]);
}

/* Fused time-mix core for decode and short steps (wkv7_block.cuh has the steps): grid = n_seq * H
 * blocks of N^2 / 32 threads, one per (sequence, head), the whole head's state in registers. One
 * kernel instead of key_prep + wkv7 + wkv_out: kk, kmod and y stay in shared memory. */
template <int N>
static __global__ void __launch_bounds__(N * N / WKV7_PART)
wkv_block_kernel(const wkvb_io io, float *state, const int32_t *slots, int n_tok, int64_t n_slots) {
    using SM = wkvb_smem<N>;
    constexpr int P = SM::P, TC = SM::TC, N_WARPS = N * P / 32;
    __shared__ __align__(16) SM sm;
    rwkv7_pdl_wait();
    rwkv7_pdl_trigger();
    const int64_t C = io.C, H = C / N, s = blockIdx.x / H, h = blockIdx.x % H, hN = h * N;
    const int tid = threadIdx.x, p = tid % P, i = tid / P, lane = tid & 31, warp = tid >> 5;
    const int32_t slot = slots[s];
    if (slot < 0 || slot >= n_slots) return; /* uniform per block, before any barrier */
    float *st = state + (int64_t)slot * C * N + hN * N + (int64_t)i * N + p * WKV7_PART;
    float S[WKV7_PART];
#pragma unroll
    for (int j = 0; j < WKV7_PART; j += 4) {
        const float4 q = *(const float4 *)(st + j); /* rows are 16-byte aligned (host check) */
        S[j] = q.x, S[j + 1] = q.y, S[j + 2] = q.z, S[j + 3] = q.w;
    }
    const int64_t base = s * n_tok * C + hN; /* token 0 of this sequence, this head */
    for (int t0 = 0; t0 < n_tok; t0 += TC) {
        const int nt = n_tok - t0 < TC ? n_tok - t0 : TC;
        __syncthreads(); /* step C of the previous chunk is done with shared memory */
        for (int tt = warp; tt < nt; tt += N_WARPS) {
            const int64_t o = base + (int64_t)(t0 + tt) * C;
            const float ss = warp_sum(wkvb_a1<N>(io, o, hN, lane));
            wkvb_a2<N>(sm, io, o, hN, tt, lane, ss);
        }
        __syncthreads();
        for (int tt = 0; tt < nt; tt++) {
            float sa = wkvb_b_sa<N>(sm, S, tt, p);
#pragma unroll
            for (int o2 = 1; o2 < P; o2 <<= 1) sa += __shfl_xor_sync(0xffffffffu, sa, o2);
            float yi = wkvb_b_update<N>(sm, S, tt, p, i, sa);
#pragma unroll
            for (int o2 = 1; o2 < P; o2 <<= 1) yi += __shfl_xor_sync(0xffffffffu, yi, o2);
            if (p == 0) sm.y[tt][i] = yi;
        }
        __syncthreads();
        for (int tt = warp; tt < nt; tt += N_WARPS) {
            const int64_t o = base + (int64_t)(t0 + tt) * C;
            const float2 sb = wkvb_c1<N>(sm, io, hN, tt, lane);
            const float mean = warp_sum(sb.x) / (float)N, bonus = warp_sum(sb.y);
            const float var = warp_sum(wkvb_c2<N>(sm, tt, lane, mean));
            wkvb_c3<N>(sm, io, o, hN, tt, lane, mean, var, bonus);
        }
    }
#pragma unroll
    for (int j = 0; j < WKV7_PART; j += 4) *(float4 *)(st + j) = make_float4(S[j], S[j + 1], S[j + 2], S[j + 3]);
}

/* ------------------------------------------------------------------------------------------------
 * launchers */

template <int N>
static void launch_wkv7(cudaStream_t stream, float *y, float *state, const int32_t *slots, const float *r,
                        const float *w, const float *k, const float *v, const float *kk, const float *a, int64_t C,
                        int64_t n_seq, int n_tok, int64_t n_slots) {
    const dim3 grid((unsigned)(n_seq * (C / N)), N / 32);
    wkv7_f32_kernel<N><<<grid, N, 0, stream>>>(y, state, slots, r, w, k, v, kk, a, C, n_tok, n_slots);
}

/* Tokens from which prefill takes the chunked kernel: two chunks, so the intra-chunk work is
 * amortized and decode (n_tok = 1) and short batches stay on the register-resident serial kernel. */
#define WKV7_CHUNKED_MIN_TOK (2 * WKV7C_L)

template <int N>
static cudaError_t launch_wkv7_chunked(cudaStream_t stream, float *y, float *state, const int32_t *slots,
                                       const float *r, const float *w, const float *k, const float *v,
                                       const float *kk, const float *a, int64_t C, int64_t n_seq, int n_tok,
                                       int64_t n_slots) {
    const size_t smem = sizeof(wkv7c_smem<N>); /* 34 KiB at N = 64, 54 KiB at N = 128 */
    /* Above 48 KiB of dynamic shared memory the kernel must opt in; not a stream operation, so it
     * is also legal while a graph is being recorded. */
    const cudaError_t e =
        cudaFuncSetAttribute(wkv7_f32_chunked_kernel<N>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return e;
    const dim3 grid((unsigned)(n_seq * (C / N)), N / WKV7C_THREADS);
    wkv7_f32_chunked_kernel<N><<<grid, WKV7C_THREADS, smem, stream>>>(y, state, slots, r, w, k, v, kk, a, C,
                                                                       n_tok, n_slots);
    return cudaSuccess;
}

RWKV7_OP_SIG(rwkv7_cuda_wkv7, wkv7) {
    const struct rwkv7_tensor *y = args->y, *state = args->state, *slots = args->slots,
                              *r = args->r, *w = args->w, *k = args->k, *v = args->v,
                              *kk = args->kk, *a = args->a;
    int n_tok = args->n_tok;
    int head_size = args->head_size;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t C = r->ne[0], n_seq = slots->ne[0], n_slots = rwkv7_tensor_nrows(state);
    if (((uintptr_t)tptr<float>(state) & 15) != 0)
        return rwkv7_fail(RWKV7_ERR_ARG, "cuda: wkv7: state '%s' is not 16-byte aligned",
                          state->name ? state->name : "?");
    RWKV7_ASSERT(n_seq * (C / head_size) <= 0x7fffffff);
    float *yp = tptr<float>(y), *sp = tptr<float>(state);
    const int32_t *sl = tptr<int32_t>(slots);
    const float *rp = tptr<float>(r), *wp = tptr<float>(w), *kp = tptr<float>(k), *vp = tptr<float>(v);
    const float *kkp = tptr<float>(kk), *ap = tptr<float>(a);
    if (n_tok >= WKV7_CHUNKED_MIN_TOK && (head_size == 64 || head_size == 128)) {
        if (head_size == 64)
            CUDA_CHECK(launch_wkv7_chunked<64>(cu->stream, yp, sp, sl, rp, wp, kp, vp, kkp, ap, C, n_seq, n_tok, n_slots));
        else
            CUDA_CHECK(launch_wkv7_chunked<128>(cu->stream, yp, sp, sl, rp, wp, kp, vp, kkp, ap, C, n_seq, n_tok, n_slots));
        CUDA_LAUNCHED(cu);
        return RWKV7_OK;
    }
    switch (head_size) {
    case 32: launch_wkv7<32>(cu->stream, yp, sp, sl, rp, wp, kp, vp, kkp, ap, C, n_seq, n_tok, n_slots); break;
    case 64: launch_wkv7<64>(cu->stream, yp, sp, sl, rp, wp, kp, vp, kkp, ap, C, n_seq, n_tok, n_slots); break;
    case 128: launch_wkv7<128>(cu->stream, yp, sp, sl, rp, wp, kp, vp, kkp, ap, C, n_seq, n_tok, n_slots); break;
    default:
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: wkv7: head size %d (supported: 32, 64, 128)", head_size);
    }
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}

template <int N>
static cudaError_t launch_wkv_block(const struct rwkv7_cuda *cu, const wkvb_io &io, float *state,
                                   const int32_t *slots, int64_t n_seq, int n_tok, int64_t n_slots) {
    return rwkv7_cuda_launch(cu, wkv_block_kernel<N>, dim3((unsigned)(n_seq * (io.C / N))), dim3(N * N / WKV7_PART),
                             0, io, state, slots, n_tok, n_slots);
}

/* Fused: one kernel on the serial path (decode, short steps); prefill long enough for the chunked
 * kernel runs key_prep, chunked wkv7 and wkv_out (not launch-bound there). */
RWKV7_OP_SIG(rwkv7_cuda_wkv_block, wkv_block) {
    const struct rwkv7_wkv_block_args *a = args;
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int N = a->head_size;
    const bool chunked = a->n_tok >= WKV7_CHUNKED_MIN_TOK && (N == 64 || N == 128);
    if (chunked || !(N == 32 || N == 64 || N == 128)) return rwkv7_op_compose(be, RWKV7_OP_WKV_BLOCK, a);
    const int64_t C = a->r->ne[0], n_seq = a->slots->ne[0], n_slots = rwkv7_tensor_nrows(a->state);
    if (((uintptr_t)tptr<float>(a->state) & 15) != 0)
        return rwkv7_fail(RWKV7_ERR_ARG, "cuda: wkv_block: state '%s' is not 16-byte aligned",
                          a->state->name ? a->state->name : "?");
    RWKV7_ASSERT(n_seq * (C / N) <= 0x7fffffff);
    const wkvb_io io = {tptr<float>(a->r),    tptr<float>(a->w),   tptr<float>(a->k),   tptr<float>(a->v),
                        tptr<float>(a->a),    tptr<float>(a->g),   tptr<float>(a->dst), tptr<float>(a->k_k),
                        tptr<float>(a->k_a),  tptr<float>(a->r_k), tptr<float>(a->ln_w), tptr<float>(a->ln_b),
                        C,                    a->eps};
    float *sp = tptr<float>(a->state);
    const int32_t *sl = tptr<int32_t>(a->slots);
    cudaError_t e;
    if (N == 32) e = launch_wkv_block<32>(cu, io, sp, sl, n_seq, a->n_tok, n_slots);
    else if (N == 64) e = launch_wkv_block<64>(cu, io, sp, sl, n_seq, a->n_tok, n_slots);
    else e = launch_wkv_block<128>(cu, io, sp, sl, n_seq, a->n_tok, n_slots);
    CUDA_CHECK(e);
    CUDA_LAUNCHED(cu);
    return RWKV7_OK;
}
