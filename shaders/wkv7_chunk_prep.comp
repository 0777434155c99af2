#version 450
/* wkv7_chunk_prep.comp: pass 1 of the chunked WKV-7 prefill (pass 2: wkv7_chunk_state.comp).
 * Everything of the chunked (DPLR delta rule / WY) form that does not depend on the state, for
 * every chunk at once: one workgroup of WKV_N invocations per (sequence, head, chunk), no order
 * between chunks, so a prefill of T tokens has n_seq * n_head * T / L workgroups here and only the
 * state pass is sequential. Math and notation of cpu/wkv7.c (rwkv7_cpu_wkv7_chunked): per chunk
 * of L tokens (abi.h RWKV7_VK_WKV_CHUNK_LEN), alpha = -kk, beta = kk * a, D(t, m) = prod_{m<p<=t} w_p,
 *   A_rk/A_rb[t][m] = r_t . D(t, m) k_m / b_m       (m <= t)
 *   A_ak/A_ab[t][m] = alpha_t . D(t-1, m) k_m / b_m (m < t),   T = (I - A_ab)^-1
 *   M = T A_ak,  wy = T ag,  rg = r D(t, -1),  kg / bg = k / beta D(L-1, t),  el = D(L-1, -1)
 * and the state pass then needs only matrix products: u = M V + wy S, y = rg S + A_rk V + A_rb u,
 * S' = S el + V^T kg + u^T bg.
 * Output: one RWKV7_VK_WKV_CHUNK_BLOCK of floats per (sequence, chunk, head), at block index
 * (s * n_chunks + c) * n_head + h of binding 9: rg, wy, kg, bg as (L, N) token-major tiles, el (N),
 * A_rk, A_rb, M as (L, L) row-major.
 * Thread mapping: invocation j owns key channel j for the column work (loading, the log2-cumsum
 * of w, the decayed copies, wy = T ag); the L x L matrices are spread over invocations one (t, m)
 * pair at a time; invocation m < L solves column m of T by forward substitution (the columns of a
 * unit-lower-triangular inverse are independent).
 * Precision: decays are exp2 of differences of fp32 log2-cumsums of w relative to the chunk
 * start (fla's safe path), so every factor is <= 1 and nothing overflows for any w in (0, 1]; the
 * cumsum loses ~L ulps of |G| <= 0.88 L, i.e. relative errors ~1e-6 on D at L = 16; T is solved in
 * fp32 (|A_ab| < 1, L <= 16: well conditioned). log2(w) is floored at -64 so w = 0 gives
 * D = 2^-64 instead of 0 * inf = NaN. Tokens past the window's end (a ragged last chunk) get zero
 * inputs and w = 1: their rows of every matrix vanish, T stays the identity there, el is unchanged. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "abi.h"

#define N WKV_N
#define L RWKV7_VK_WKV_CHUNK_LEN(WKV_N)
#define BLK RWKV7_VK_WKV_CHUNK_BLOCK(WKV_N, L)

layout(local_size_x = N) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_wkv p; };
layout(binding = 2) readonly buffer B2 { float R[]; };
layout(binding = 3) readonly buffer B3 { float Wd[]; };
layout(binding = 4) readonly buffer B4 { float K[]; };
layout(binding = 6) readonly buffer B6 { float KK[]; };
layout(binding = 7) readonly buffer B7 { float A[]; };
layout(binding = 9) writeonly buffer B9 { float Scr[]; };

/* (L, N) token-major tiles; RWKV7_VK_WKV_PREP_SHARED counts them for the host's check. */
shared float s_r[L * N]; /* r, then rg */
shared float s_k[L * N]; /* k, then kg */
shared float s_b[L * N]; /* beta, then bg */
shared float s_a[L * N]; /* alpha, then ag */
shared float s_g[L * N]; /* G_t = sum_{p<=t} log2 w_p (inclusive, from the chunk start) */
/* (L, L) row t, column m. */
shared float s_rk[L * L], s_rb[L * L], s_ak[L * L], s_ab[L * L], s_t[L * L];

void main() {
    uint n_head = p.c / N, n_chunk = (p.nt + uint(L) - 1u) / uint(L);
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * n_chunk * n_head) return;
    uint h = gid % n_head, c = gid / n_head % n_chunk, s = gid / (n_head * n_chunk);
    uint i = gl_LocalInvocationID.x;
    uint t0 = p.t0 + c * uint(L), len = min(uint(L), p.t0 + p.nt - t0);
    uint e0 = (s * p.n2 + t0) * p.c + h * N + i; /* element (t0, channel i) */
    uint ob = gid * uint(BLK);

    float g = 0.0;
    for (uint t = 0u; t < uint(L); t++) {
        uint x = t * N + i, e = e0 + t * p.c;
        if (t < len) {
            float kk = KK[p.off[6] + e];
            s_r[x] = R[p.off[2] + e];
            s_k[x] = K[p.off[4] + e];
            s_a[x] = -kk;
            s_b[x] = kk * A[p.off[7] + e];
            g += max(log2(Wd[p.off[3] + e]), -64.0);
        } else {
            s_r[x] = 0.0; s_k[x] = 0.0; s_a[x] = 0.0; s_b[x] = 0.0;
        }
        s_g[x] = g;
    }
    barrier();

    /* The four A matrices, one (t, m) pair per iteration. D(t, m) serves row t of A_rk/A_rb and
     * row t + 1 of A_ak/A_ab; pair (t, m >= t) zeroes the never-computed upper parts, so every
     * entry is written exactly once. */
    for (uint q = i; q < uint(L * L); q += uint(N)) {
        uint t = q / uint(L), m = q % uint(L);
        float rk = 0.0, rb = 0.0, ak = 0.0, ab = 0.0;
        bool next = t + 1u < uint(L);
        if (m <= t && t < len) {
            uint ot = t * N, om = m * N, on = next ? (t + 1u) * N : ot;
            for (uint j = 0u; j < uint(N); j++) {
                float d = exp2(s_g[ot + j] - s_g[om + j]);
                float x = d * s_k[om + j], z = d * s_b[om + j];
                rk += s_r[ot + j] * x;
                rb += s_r[ot + j] * z;
                ak += s_a[on + j] * x;
                ab += s_a[on + j] * z;
            }
        }
        s_rk[q] = rk;
        s_rb[q] = rb;
        if (m <= t && next) {
            s_ak[q + uint(L)] = ak;
            s_ab[q + uint(L)] = ab;
        }
        if (m >= t) {
            s_ak[q] = 0.0;
            s_ab[q] = 0.0;
        }
    }
    barrier();

    /* Column m of T: T[t][m] = sum_{m<=p<t} A_ab[t][p] T[p][m], reading only column m. */
    if (i < uint(L)) {
        uint m = i;
        for (uint t = 0u; t < uint(L); t++) {
            float x = t == m ? 1.0 : 0.0;
            for (uint q = m; q < t; q++) x += s_ab[t * L + q] * s_t[q * L + m];
            s_t[t * L + m] = x;
        }
    }
    /* Decayed copies of column i, written out (rg, kg, bg) or kept for wy (ag). */
    {
        float gl = s_g[(L - 1) * N + i], gp = 0.0;
        for (uint t = 0u; t < uint(L); t++) {
            uint x = t * N + i;
            float gt = s_g[x], dk = exp2(gl - gt);
            Scr[ob + x] = s_r[x] * exp2(gt);
            Scr[ob + uint(2 * L * N) + x] = s_k[x] * dk;
            Scr[ob + uint(3 * L * N) + x] = s_b[x] * dk;
            s_a[x] *= exp2(gp);
            gp = gt;
        }
        Scr[ob + uint(4 * L * N) + i] = exp2(gl);
    }
    barrier();

    /* M = T A_ak, A_rk, A_rb; wy = T ag for column i. */
    uint om = ob + uint(4 * L * N + N);
    for (uint q = i; q < uint(L * L); q += uint(N)) {
        uint t = q / uint(L), m = q % uint(L);
        float x = 0.0;
        for (uint c2 = m + 1u; c2 <= t; c2++) x += s_t[t * L + c2] * s_ak[c2 * L + m];
        Scr[om + q] = s_rk[q];
        Scr[om + uint(L * L) + q] = s_rb[q];
        Scr[om + uint(2 * L * L) + q] = x;
    }
    for (uint t = 0u; t < uint(L); t++) {
        float x = 0.0;
        for (uint m = 0u; m <= t; m++) x += s_t[t * L + m] * s_a[m * N + i];
        Scr[ob + uint(L * N) + t * N + i] = x;
    }
}
