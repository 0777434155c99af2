#version 450
/* wkv7_chunked.comp: the WKV-7 recurrence of wkv7.comp in its chunked (DPLR delta rule / WY)
 * form, for prefill. The math and notation are those of cpu/wkv7.c (rwkv7_cpu_wkv7_chunked):
 * per chunk of L tokens (abi.h RWKV7_VK_WKV_CHUNK_LEN), with alpha = -kk, beta = kk * a and D(t, m) = prod_{m<p<=t} w_p,
 *   A_rk/A_rb[t][m] = r_t . D(t, m) k_m / b_m       (m <= t)
 *   A_ak/A_ab[t][m] = alpha_t . D(t-1, m) k_m / b_m (m < t),   T = (I - A_ab)^-1
 *   u = M V + wy S,  M = T A_ak,  wy = T ag           (u_t: the serial form's sa of row i)
 *   y_t = rg_t . S + sum_{m<=t} A_rk[t][m] v_m + A_rb[t][m] u_m
 *   S' = S * el + sum_m v_m kg_m + u_m bg_m
 * Thread mapping: one workgroup of WKV_N invocations per (sequence, head), head size == WKV_N.
 * Phase 1 (state-free, in shared memory): invocation j owns key channel j for the column work
 * (loading, the log2-cumsum of w, the decayed copies rg/ag/kg/bg, wy = T ag); the L x L matrices
 * are spread over invocations one (t, m) pair at a time; invocation m < L solves column m of T
 * by forward substitution (columns of a unit-lower-triangular inverse are independent).
 * Phase 2 (the only sequential part): invocation i owns state row i in registers (fp32, loaded
 * once, stored once), reads v[.][i] and u[.][i] of its row from shared memory, and walks the
 * chunk's L tokens at once.
 * Four barriers per chunk instead of the serial kernel's two per token.
 * Precision: decays are exp2 of differences of fp32 log2-cumsums of w (fla's safe path), so
 * every factor is <= 1 and nothing overflows for any w in (0, 1]; the cumsum loses ~L ulps of
 * |G| <= 0.88 L absolute, i.e. relative errors ~1e-6 on D at L = 16, and T is solved in fp32
 * (|A_ab| < 1, L <= 16: well conditioned). log2(w) is floored at -64 so w = 0 gives D = 2^-64
 * instead of 0 * inf = NaN. Results differ from the serial form by summation order and these
 * decay roundings only (tests/test_ops.c checks it).
 * Bindings and push constants: exactly those of wkv7.comp. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "abi.h"

#define N WKV_N
#define L RWKV7_VK_WKV_CHUNK_LEN(WKV_N)

layout(local_size_x = N) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_elem p; };
layout(binding = 0) writeonly buffer B0 { float Y[]; };
layout(binding = 1) buffer B1 { float St[]; };
layout(binding = 2) readonly buffer B2 { float R[]; };
layout(binding = 3) readonly buffer B3 { float Wd[]; };
layout(binding = 4) readonly buffer B4 { float K[]; };
layout(binding = 5) readonly buffer B5 { float V[]; };
layout(binding = 6) readonly buffer B6 { float KK[]; };
layout(binding = 7) readonly buffer B7 { float A[]; };
layout(binding = 8) readonly buffer B8 { int Slots[]; };

/* (L, N) token-major tiles; each is reused once its first use is over (comments say when).
 * abi.h RWKV7_VK_WKV_CHUNK_SHARED() counts these floats for the host's shared-memory check. */
shared float s_r[L * N];  /* r, then rg = r D(t, -1) */
shared float s_k[L * N];  /* k, then kg = k D(L-1, t) */
shared float s_b[L * N];  /* beta, then bg = beta D(L-1, t) */
shared float s_a[L * N];  /* alpha, then ag = alpha D(t-1, -1), then wy = T ag */
shared float s_gv[L * N]; /* G_t = sum_{p<=t} log2 w_p (inclusive, from the chunk start), then v */
shared float s_u[L * N];  /* u[t][i] of state row i (private to invocation i) */
shared float s_el[N];     /* whole-chunk decay D(L-1, -1) */
/* (L, L) row t, column m. */
shared float s_rk[L * L], s_rb[L * L], s_ak[L * L];
shared float s_ab[L * L]; /* A_ab, then M = T A_ak */
shared float s_t[L * L];  /* T = (I - A_ab)^-1 */

void main() {
    uint n_head = p.c / N;
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * n_head) return;
    uint s = gid / n_head, h = gid % n_head, i = gl_LocalInvocationID.x;
    uint slot = uint(Slots[p.fn + s]);
    uint sbase = p.off[1] + slot * (n_head * N * N) + h * N * N + i * N;
    /* Only the N-long loops over state columns are unrolled (S must stay in registers); the
     * token loops stay loops: unrolling both makes lavapipe's LLVM run for minutes. */
    float S[N];
    [[unroll]] for (uint j = 0u; j < N; j++) S[j] = St[sbase + j];

    for (uint t0 = 0u; t0 < p.n2; t0 += L) {
        uint len = min(uint(L), p.n2 - t0);
        uint e0 = (s * p.n2 + t0) * p.c + h * N + i; /* element (t0, channel i) */
        /* Load column i. Tokens past len (the ragged last chunk) get zero inputs and w = 1:
         * their rows of every matrix vanish, T stays the identity there and el is unchanged. */
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
            s_gv[x] = g;
        }
        barrier();

        /* The four A matrices, one (t, m) pair per iteration. D(t, m) serves row t of A_rk/A_rb
         * and row t + 1 of A_ak/A_ab; pair (t, m >= t) zeroes the never-computed upper parts, so
         * every entry is written exactly once. */
        for (uint q = i; q < uint(L * L); q += uint(N)) {
            uint t = q / uint(L), m = q % uint(L);
            float rk = 0.0, rb = 0.0, ak = 0.0, ab = 0.0;
            bool next = t + 1u < uint(L);
            if (m <= t && t < len) {
                uint ot = t * N, om = m * N, on = next ? (t + 1u) * N : ot;
                for (uint j = 0u; j < uint(N); j++) {
                    float d = exp2(s_gv[ot + j] - s_gv[om + j]);
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
        /* Decayed copies of column i (the raw values are no longer read), and v replaces G. */
        {
            float gl = s_gv[(L - 1) * N + i], gp = 0.0;
            for (uint t = 0u; t < uint(L); t++) {
                uint x = t * N + i;
                float gt = s_gv[x], dk = exp2(gl - gt);
                s_r[x] *= exp2(gt);
                s_a[x] *= exp2(gp);
                s_k[x] *= dk;
                s_b[x] *= dk;
                s_gv[x] = t < len ? V[p.off[5] + e0 + t * p.c] : 0.0;
                gp = gt;
            }
            s_el[i] = exp2(gl);
        }
        barrier();

        /* M = T A_ak (A_ab is done); wy = T ag in place of column i of ag, rows from the last
         * down so each ag[m] is read before row m is overwritten. */
        for (uint q = i; q < uint(L * L); q += uint(N)) {
            uint t = q / uint(L), m = q % uint(L);
            float x = 0.0;
            for (uint c = m + 1u; c <= t; c++) x += s_t[t * L + c] * s_ak[c * L + m];
            s_ab[q] = x;
        }
        for (uint t = uint(L); t-- > 0u;) {
            float x = 0.0;
            for (uint m = 0u; m <= t; m++) x += s_t[t * L + m] * s_a[m * N + i];
            s_a[t * N + i] = x;
        }
        barrier();

        /* Phase 2 for state row i; padded tokens (t >= len) have u = 0 and contribute nothing. */
        for (uint t = 0u; t < len; t++) {
            float x = 0.0;
            [[unroll]] for (uint j = 0u; j < N; j++) x += s_a[t * N + j] * S[j];
            for (uint m = 0u; m < t; m++) x += s_ab[t * L + m] * s_gv[m * N + i];
            s_u[t * N + i] = x;
        }
        for (uint t = 0u; t < len; t++) {
            float y = 0.0;
            [[unroll]] for (uint j = 0u; j < N; j++) y += s_r[t * N + j] * S[j];
            for (uint m = 0u; m <= t; m++) y += s_rk[t * L + m] * s_gv[m * N + i] + s_rb[t * L + m] * s_u[m * N + i];
            Y[p.off[0] + e0 + t * p.c] = y;
        }
        [[unroll]] for (uint j = 0u; j < N; j++) S[j] *= s_el[j];
        for (uint m = 0u; m < len; m++) {
            float vm = s_gv[m * N + i], um = s_u[m * N + i];
            [[unroll]] for (uint j = 0u; j < N; j++) S[j] += vm * s_k[m * N + j] + um * s_b[m * N + j];
        }
        barrier(); /* the next chunk overwrites the tiles */
    }
    [[unroll]] for (uint j = 0u; j < N; j++) St[sbase + j] = S[j];
}
