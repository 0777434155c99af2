/* wkv7_chunked.cuh: the per-thread logic of the chunked-parallel WKV-7 prefill kernel (wkv7.cu),
 * written as __host__ __device__ phases so tests/test_cuda_wkv7.cu can run the very same code on
 * the host by looping over thread ids between the barriers. Math: cpu/wkv7.c "chunked form" (the
 * WY / UT transform of the DPLR delta rule, performance.md 3.3): per chunk of L tokens, phase 1
 * builds the state-independent intra-chunk matrices in shared memory; phase 2 is one pass over
 * the state, each thread owning one state row in registers.
 *
 * Block = WKV7C_THREADS threads for one (sequence, head, block of 64 state rows); thread tid owns
 * state row row0 + tid. A chunk runs WKV7C_PHASES phases separated by block barriers:
 *   0 load      r, k, kk, kk*a, log2 w of L tokens into shared memory (zeros / w = 1 past the end),
 *               and this thread's v column into vcol
 *   1 cumsum    G[t][j] = sum_{p <= t} log2 w_pj, one thread per key channel
 *   2 pairs     A_rk, A_rb (m <= t, decay D(t, m)) and A_ak, A_ab (m < t, decay D(t - 1, m)),
 *               one thread per (t, m) entry, each a dot over the N key channels
 *   3 solve     T = (I - A_ab)^-1 column by column (thread m < L owns column m); all threads also
 *               form rg, ag, kg, bg and the whole-chunk decay el in place
 *   4 products  Mu = T A_ak (L x L) and W = T ag (L x N)
 *   5 state     per row: u = Mu v + W s0, y = rg s0 + A_rk v + A_rb u, s0 <- s0 el + v kg + u bg
 * Padded tokens (ragged last chunk) have k = kk = beta = r = 0 and w = 1, so they add nothing.
 *
 * Decays: D(t, m) = exp2(G_t - G_m) from fp32 log2-cumsums (fla's safe path): the exponent is
 * <= 0 for m <= t (rounding is monotone and every log2 w <= 0), so no factor exceeds 1 and nothing
 * overflows. Precision lost: the exponent difference carries ~ulp(|G|) absolute error, i.e. a
 * relative error of ~L * |log2 w| * 2^-24 in each decay (about 1e-6 at L = 16, w = 0.545), plus
 * exp2f/log2f's ulps; the serial form's running products are exact to 1 ulp per factor. log2 w is
 * clamped at -64 per token, so w < 5e-20 (outside the model's (0.545, 1] range) acts as 5e-20. */
#ifndef RWKV7_CUDA_WKV7_CHUNKED_CUH
#define RWKV7_CUDA_WKV7_CHUNKED_CUH

#include <math.h>
#include <stdint.h>

#define WKV7C_L 16       /* tokens per chunk */
#define WKV7C_THREADS 64 /* threads per block = state rows per block */
#define WKV7C_PHASES 6

/* Shared memory of one block. L x N arrays have a row stride of N + 1 floats: in the pairs phase
 * a warp reads row m of 16 different tokens at one channel, and with N a multiple of 32 an
 * unpadded stride would put all of them in one bank. */
template <int N>
struct wkv7c_smem {
    static constexpr int L = WKV7C_L, LD = N + 1;
    float g[L][LD];     /* log2 w, then G (cumsum), then W = T ag */
    float r[L][LD];     /* r, then rg = r D(t, -1) */
    float k[L][LD];     /* k, then kg = k D(L - 1, t) */
    float kk[L][LD];    /* kk, then ag = -kk D(t - 1, -1) */
    float beta[L][LD];  /* kk * a, then bg = beta D(L - 1, t) */
    float a_rk[L][L];   /* [t][m] */
    float a_rb[L][L];
    float a_ak[L][L];
    float a_ab[L][L];   /* then Mu = T A_ak */
    float tinv[L][L];   /* T = (I - A_ab)^-1 */
    float el[N];        /* D(L - 1, -1) */
    float vcol[L][WKV7C_THREADS]; /* v of this thread's row, [t][tid] (conflict-free) */
    float u[L][WKV7C_THREADS];    /* u of this thread's row */
};

/* The inputs of one (sequence, head): token t, channel j of head-slice x is x[t * C + j]. */
struct wkv7c_io {
    const float *r, *w, *k, *v, *kk, *a; /* already offset to token t0 of the chunk, this head */
    float *y;
    int64_t C;                           /* row stride (n_embd) */
};

template <int N>
__host__ __device__ __forceinline__ void wkv7c_phase(int phase, wkv7c_smem<N> &sm, int tid, int row,
                                                     int len, const wkv7c_io &io, float (&S)[N]) {
    constexpr int L = WKV7C_L, NT = WKV7C_THREADS;
    switch (phase) {
    case 0: /* load: consecutive threads on consecutive channels (coalesced) */
        for (int idx = tid; idx < L * N; idx += NT) {
            const int t = idx / N, j = idx % N;
            const int64_t o = (int64_t)t * io.C + j;
            const bool in = t < len;
            const float kkv = in ? io.kk[o] : 0.0f;
            sm.r[t][j] = in ? io.r[o] : 0.0f;
            sm.k[t][j] = in ? io.k[o] : 0.0f;
            sm.kk[t][j] = kkv;
            sm.beta[t][j] = in ? kkv * io.a[o] : 0.0f;
            sm.g[t][j] = in ? fmaxf(log2f(io.w[o]), -64.0f) : 0.0f;
        }
        for (int t = 0; t < L; t++) sm.vcol[t][tid] = t < len ? io.v[(int64_t)t * io.C + row] : 0.0f;
        break;
    case 1: /* cumsum over tokens, per channel */
        for (int j = tid; j < N; j += NT)
            for (int t = 1; t < L; t++) sm.g[t][j] += sm.g[t - 1][j];
        break;
    case 2: /* pair matrices: entry (t, m) per thread-step; two tokens and 16 m's per warp */
        for (int p = tid; p < L * L; p += NT) {
            const int t = p / L, m = p % L;
            float rk = 0.0f, rb = 0.0f, ak = 0.0f, ab = 0.0f;
            if (m <= t) {
                for (int j = 0; j < N; j++) {
                    const float gm = sm.g[m][j];
                    const float d = exp2f(sm.g[t][j] - gm);
                    const float x = d * sm.k[m][j], z = d * sm.beta[m][j];
                    rk += sm.r[t][j] * x;
                    rb += sm.r[t][j] * z;
                    if (m < t) {
                        /* alpha_t = -kk_t sees the state before token t's decay: D(t - 1, m) */
                        const float d1 = exp2f(sm.g[t - 1][j] - gm);
                        ak -= sm.kk[t][j] * (d1 * sm.k[m][j]);
                        ab -= sm.kk[t][j] * (d1 * sm.beta[m][j]);
                    }
                }
            }
            sm.a_rk[t][m] = rk;
            sm.a_rb[t][m] = rb;
            sm.a_ak[t][m] = ak;
            sm.a_ab[t][m] = ab;
        }
        break;
    case 3: /* T by forward substitution, one column per thread: T[t][m] = sum_{m<=p<t} A_ab[t][p] T[p][m];
             * |A_ab| < 1 entrywise (kk unit, a < 1, D <= 1), so fp32 is enough at L = 16 */
        if (tid < L) {
            const int m = tid;
            for (int t = 0; t < L; t++) {
                float s = 0.0f;
                for (int p = m; p < t; p++) s += sm.a_ab[t][p] * sm.tinv[p][m];
                sm.tinv[t][m] = t < m ? 0.0f : t == m ? 1.0f : s;
            }
        }
        for (int idx = tid; idx < L * N; idx += NT) {
            const int t = idx / N, j = idx % N;
            const float gl = sm.g[L - 1][j], gt = sm.g[t][j], gp = t > 0 ? sm.g[t - 1][j] : 0.0f;
            const float dk = exp2f(gl - gt);
            sm.r[t][j] *= exp2f(gt);
            sm.kk[t][j] = -sm.kk[t][j] * exp2f(gp);
            sm.k[t][j] *= dk;
            sm.beta[t][j] *= dk;
            if (t == 0) sm.el[j] = exp2f(gl);
        }
        break;
    case 4: /* Mu = T A_ak into a_ab (dead after the solve); W = T ag into g (dead after phase 3) */
        for (int p = tid; p < L * L; p += NT) {
            const int t = p / L, m = p % L;
            float s = 0.0f;
            for (int q = m + 1; q <= t; q++) s += sm.tinv[t][q] * sm.a_ak[q][m];
            sm.a_ab[t][m] = s;
        }
        for (int idx = tid; idx < L * N; idx += NT) {
            const int t = idx / N, j = idx % N;
            float s = 0.0f;
            for (int q = 0; q <= t; q++) s += sm.tinv[t][q] * sm.kk[q][j];
            sm.g[t][j] = s;
        }
        break;
    case 5: { /* state pass for row `row`: every shared read below is a broadcast */
        for (int t = 0; t < L; t++) {
            float acc = 0.0f;
#pragma unroll
            for (int j = 0; j < N; j++) acc += sm.g[t][j] * S[j];
            for (int m = 0; m < t; m++) acc += sm.a_ab[t][m] * sm.vcol[m][tid];
            sm.u[t][tid] = acc;
        }
        for (int t = 0; t < len; t++) {
            float acc = 0.0f;
#pragma unroll
            for (int j = 0; j < N; j++) acc += sm.r[t][j] * S[j];
            for (int m = 0; m <= t; m++) acc += sm.a_rk[t][m] * sm.vcol[m][tid] + sm.a_rb[t][m] * sm.u[m][tid];
            io.y[(int64_t)t * io.C + row] = acc;
        }
#pragma unroll
        for (int j = 0; j < N; j++) S[j] *= sm.el[j];
        for (int m = 0; m < len; m++) {
            const float vm = sm.vcol[m][tid], um = sm.u[m][tid];
#pragma unroll
            for (int j = 0; j < N; j++) S[j] += vm * sm.k[m][j] + um * sm.beta[m][j];
        }
        break;
    }
    default: break;
    }
}

#endif
