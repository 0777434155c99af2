#version 450
/* wkv7_chunk_state.comp: pass 2 of the chunked WKV-7 prefill, the only sequential part: walks the
 * chunks of the window in order with the blocks wkv7_chunk_prep.comp left in binding 9 (notation
 * there). Rows of the state are independent, so a head's N x N state is split into slabs of
 * RWKV7_VK_WKV_SLAB = 16 rows, one workgroup of 16 invocations each (n_seq * n_head * N / 16
 * workgroups, 4x the serial kernel's grid at N = 64); invocation i owns state row i in registers
 * (fp32, loaded once, stored once). Per chunk, for its row (u, y, v: that row's column):
 *   u_t = wy_t . S_i + sum_{m<t} M[t][m] v_m,   y_t = rg_t . S_i + sum_{m<=t} A_rk[t][m] v_m + A_rb[t][m] u_m
 *   S_i = S_i el + sum_m v_m kg_m + u_m bg_m
 * i.e. the slab's products U = wy S^T + M V, Y = rg S^T + A_rk V + A_rb U, S = S diag(el) + V^T kg
 * + U^T bg, with no dependence between the chunk's tokens in the N-long dot products: TG tokens
 * share each pass over the row (2 TG independent accumulators), the update takes two tokens per
 * pass. The blocks are read straight from binding 9 at addresses uniform across the workgroup
 * (one broadcast transaction per load, shared by the slabs of a head through the cache), so the
 * kernel has no barrier; v and u of the chunk sit in shared memory, each column private to its
 * invocation. Padded tokens of a ragged last chunk have zero rows in every block and v = 0, so
 * they add nothing; their y is not written. Bindings and push constants: abi.h rwkv7_vk_pc_wkv. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "abi.h"

#define N WKV_N
#define L RWKV7_VK_WKV_CHUNK_LEN(WKV_N)
#define BLK RWKV7_VK_WKV_CHUNK_BLOCK(WKV_N, L)
#define RS RWKV7_VK_WKV_SLAB
#define TG 4 /* tokens per pass over the state row */

layout(local_size_x = RS) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_wkv p; };
layout(binding = 0) writeonly buffer B0 { float Y[]; };
layout(binding = 1) buffer B1 { float St[]; };
layout(binding = 5) readonly buffer B5 { float V[]; };
layout(binding = 8) readonly buffer B8 { int Slots[]; };
layout(binding = 9) readonly buffer B9 { float Scr[]; };

/* RWKV7_VK_WKV_STATE_SHARED counts these floats for the host's check: v and u of the chunk,
 * column i private to invocation i (no barrier anywhere in this kernel). */
shared float s_v[L * RS], s_u[L * RS];

void main() {
    uint n_head = p.c / N, n_slab = uint(N / RS), n_chunk = (p.nt + uint(L) - 1u) / uint(L);
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * n_head * n_slab) return;
    uint sl = gid % n_slab, h = gid / n_slab % n_head, s = gid / (n_slab * n_head);
    uint i = gl_LocalInvocationID.x;
    uint slot = uint(Slots[p.fn + s]);
    uint sbase = p.off[1] + slot * (n_head * N * N) + h * N * N + (sl * RS + i) * N;
    float S[N];
    [[unroll]] for (uint j = 0u; j < uint(N); j++) S[j] = St[sbase + j];

    for (uint c = 0u; c < n_chunk; c++) {
        uint t0 = p.t0 + c * uint(L), len = min(uint(L), p.t0 + p.nt - t0);
        uint ob = ((s * n_chunk + c) * n_head + h) * uint(BLK);
        uint orw = ob, owy = ob + uint(L * N), okg = ob + uint(2 * L * N), obg = ob + uint(3 * L * N);
        uint oel = ob + uint(4 * L * N), ork = oel + uint(N), orb = ork + uint(L * L), om = orb + uint(L * L);
        uint ev = (s * p.n2 + t0) * p.c + h * N + sl * RS + i; /* element (t0, row i) */
        for (uint t = 0u; t < uint(L); t++) s_v[t * RS + i] = t < len ? V[p.off[5] + ev + t * p.c] : 0.0;

        /* Row i, TG tokens at a time (TG independent pairs of dot products per state read);
         * the blocks are zero past len, so a partial group computes zeros there. */
        for (uint tg = 0u; tg < len; tg += uint(TG)) {
            float u[TG], y[TG];
            [[unroll]] for (uint q = 0u; q < uint(TG); q++) u[q] = y[q] = 0.0;
            [[unroll]] for (uint j = 0u; j < uint(N); j++)
                [[unroll]] for (uint q = 0u; q < uint(TG); q++) {
                    u[q] += Scr[owy + (tg + q) * N + j] * S[j];
                    y[q] += Scr[orw + (tg + q) * N + j] * S[j];
                }
            [[unroll]] for (uint q = 0u; q < uint(TG); q++) {
                uint t = tg + q;
                for (uint m = 0u; m < t; m++) u[q] += Scr[om + t * L + m] * s_v[m * RS + i];
                s_u[t * RS + i] = u[q];
                for (uint m = 0u; m <= t; m++)
                    y[q] += Scr[ork + t * L + m] * s_v[m * RS + i] + Scr[orb + t * L + m] * s_u[m * RS + i];
                if (t < len) Y[p.off[0] + ev + t * p.c] = y[q];
            }
        }
        /* S_i = S_i el + sum_m v_m kg_m + u_m bg_m: a rank-2L update, two tokens per pass over S. */
        [[unroll]] for (uint j = 0u; j < uint(N); j++) S[j] *= Scr[oel + j];
        for (uint m = 0u; m < len; m += 2u) {
            float v0 = s_v[m * RS + i], u0 = s_u[m * RS + i], v1 = s_v[(m + 1u) * RS + i], u1 = s_u[(m + 1u) * RS + i];
            [[unroll]] for (uint j = 0u; j < uint(N); j++)
                S[j] += v0 * Scr[okg + m * N + j] + u0 * Scr[obg + m * N + j] + v1 * Scr[okg + (m + 1u) * N + j] +
                        u1 * Scr[obg + (m + 1u) * N + j];
        }
    }
    [[unroll]] for (uint j = 0u; j < uint(N); j++) St[sbase + j] = S[j];
}
