#version 450
/* wkv7_chunk_state.comp: pass 2 of the chunked WKV-7 prefill, the only sequential part: walks the
 * chunks of the window in order with the blocks wkv7_chunk_prep.comp left in binding 9 (notation
 * there). Rows of the state are independent, so a head's 64 x 64 (or 128 x 128) state is split
 * into slabs of RWKV7_VK_WKV_SLAB rows, one workgroup of RWKV7_VK_WG_WKV_STATE invocations each:
 * n_seq * n_head * N / 16 workgroups. Per chunk and slab (rows I), three small matrix products:
 *   phase 1: U = wy S_I^T + M V_I (L x 16),  Yp = rg S_I^T + A_rk V_I
 *   phase 2: Y = Yp + A_rb U;  S_I = S_I diag(el) + V_I^T kg + U^T bg (16 x N)
 * with the slab (fp32, rows padded to N + 1 floats against bank conflicts) and the chunk's tiles in
 * shared memory, three barriers per chunk instead of the serial kernel's two per token, and no
 * dependent chain longer than one dot product of N. Register tiles: in phase 1 an invocation owns
 * one state row and L / 4 tokens (each S value read once feeds 2 L / 4 FMAs); in phase 2 four rows
 * and N / 16 columns (8 loads feed 2 * 4 * N / 16 FMAs per token).
 * Padded tokens of a ragged last chunk have zero rows in every block and V = 0, so they add
 * nothing; their y is not written. Bindings and push constants: abi.h rwkv7_vk_pc_wkv. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "abi.h"

#define N WKV_N
#define L RWKV7_VK_WKV_CHUNK_LEN(WKV_N)
#define BLK RWKV7_VK_WKV_CHUNK_BLOCK(WKV_N, L)
#define RS RWKV7_VK_WKV_SLAB
#define NI RWKV7_VK_WG_WKV_STATE
#define SP (N + 1)          /* padded row stride of the slab */
#define TPI (L * RS / NI)   /* phase 1: tokens per invocation */
#define NQ (N / 16)         /* phase 2: columns per invocation */

layout(local_size_x = NI) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_wkv p; };
layout(binding = 0) writeonly buffer B0 { float Y[]; };
layout(binding = 1) buffer B1 { float St[]; };
layout(binding = 5) readonly buffer B5 { float V[]; };
layout(binding = 8) readonly buffer B8 { int Slots[]; };
layout(binding = 9) readonly buffer B9 { float Scr[]; };

/* RWKV7_VK_WKV_STATE_SHARED counts these floats for the host's check. */
shared float s_s[RS * SP];                                  /* the slab S_I */
shared float s_rg[L * N], s_wy[L * N], s_kg[L * N], s_bg[L * N], s_el[N];
shared float s_rk[L * L], s_rb[L * L], s_m[L * L];
shared float s_v[L * RS], s_u[L * RS];                      /* (L, 16) token-major */

void main() {
    uint n_head = p.c / N, n_slab = uint(N / RS), n_chunk = (p.nt + uint(L) - 1u) / uint(L);
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * n_head * n_slab) return;
    uint sl = gid % n_slab, h = gid / n_slab % n_head, s = gid / (n_slab * n_head);
    uint lid = gl_LocalInvocationID.x;
    uint slot = uint(Slots[p.fn + s]);
    uint sbase = p.off[1] + slot * (n_head * N * N) + h * N * N + sl * RS * N;
    uint col0 = h * N + sl * RS; /* channel of slab row 0 */
    for (uint e = lid; e < uint(RS * N); e += uint(NI)) s_s[e / N * SP + e % N] = St[sbase + e];

    uint pi = lid % uint(RS), pt = lid / uint(RS) * uint(TPI); /* phase 1: row pi, tokens pt.. */
    uint cb = lid % 16u, rb = lid / 16u * 4u;                  /* phase 2: rows rb.., columns cb + 16 q */
    for (uint c = 0u; c < n_chunk; c++) {
        uint t0 = p.t0 + c * uint(L), len = min(uint(L), p.t0 + p.nt - t0);
        uint ob = ((s * n_chunk + c) * n_head + h) * uint(BLK);
        uint ev = (s * p.n2 + t0) * p.c + col0; /* element (t0, slab row 0) */
        for (uint e = lid; e < uint(L * N); e += uint(NI)) {
            s_rg[e] = Scr[ob + e];
            s_wy[e] = Scr[ob + uint(L * N) + e];
            s_kg[e] = Scr[ob + uint(2 * L * N) + e];
            s_bg[e] = Scr[ob + uint(3 * L * N) + e];
        }
        for (uint e = lid; e < uint(N); e += uint(NI)) s_el[e] = Scr[ob + uint(4 * L * N) + e];
        for (uint e = lid; e < uint(L * L); e += uint(NI)) {
            uint o = ob + uint(4 * L * N + N) + e;
            s_rk[e] = Scr[o];
            s_rb[e] = Scr[o + uint(L * L)];
            s_m[e] = Scr[o + uint(2 * L * L)];
        }
        for (uint e = lid; e < uint(L * RS); e += uint(NI)) {
            uint t = e / uint(RS);
            s_v[e] = t < len ? V[p.off[5] + ev + t * p.c + e % uint(RS)] : 0.0;
        }
        barrier();

        /* Phase 1: U and the state-and-value part of y for row pi, tokens pt..pt+TPI-1. */
        float u[TPI], y[TPI];
        [[unroll]] for (uint q = 0u; q < uint(TPI); q++) u[q] = y[q] = 0.0;
        for (uint j = 0u; j < uint(N); j++) {
            float sj = s_s[pi * SP + j];
            [[unroll]] for (uint q = 0u; q < uint(TPI); q++) {
                u[q] += s_wy[(pt + q) * N + j] * sj;
                y[q] += s_rg[(pt + q) * N + j] * sj;
            }
        }
        [[unroll]] for (uint q = 0u; q < uint(TPI); q++) {
            uint t = pt + q;
            for (uint m = 0u; m < t; m++) u[q] += s_m[t * L + m] * s_v[m * RS + pi];
            for (uint m = 0u; m <= t; m++) y[q] += s_rk[t * L + m] * s_v[m * RS + pi];
            s_u[t * RS + pi] = u[q];
        }
        barrier();

        /* Phase 2: y of the chunk's tokens; the slab's update (phase 1 is done reading it). */
        [[unroll]] for (uint q = 0u; q < uint(TPI); q++) {
            uint t = pt + q;
            if (t < len) {
                for (uint m = 0u; m <= t; m++) y[q] += s_rb[t * L + m] * s_u[m * RS + pi];
                Y[p.off[0] + ev + t * p.c + pi] = y[q];
            }
        }
        float acc[4 * NQ];
        [[unroll]] for (uint r = 0u; r < 4u; r++)
            [[unroll]] for (uint q = 0u; q < uint(NQ); q++) {
                uint j = cb + 16u * q;
                acc[r * NQ + q] = s_s[(rb + r) * SP + j] * s_el[j];
            }
        for (uint m = 0u; m < len; m++) {
            float vm[4], um[4];
            [[unroll]] for (uint r = 0u; r < 4u; r++) {
                vm[r] = s_v[m * RS + rb + r];
                um[r] = s_u[m * RS + rb + r];
            }
            [[unroll]] for (uint q = 0u; q < uint(NQ); q++) {
                float kg = s_kg[m * N + cb + 16u * q], bg = s_bg[m * N + cb + 16u * q];
                [[unroll]] for (uint r = 0u; r < 4u; r++) acc[r * NQ + q] += vm[r] * kg + um[r] * bg;
            }
        }
        [[unroll]] for (uint r = 0u; r < 4u; r++)
            [[unroll]] for (uint q = 0u; q < uint(NQ); q++) s_s[(rb + r) * SP + cb + 16u * q] = acc[r * NQ + q];
        barrier(); /* the next chunk overwrites the tiles and reads the slab */
    }
    for (uint e = lid; e < uint(RS * N); e += uint(NI)) St[sbase + e] = s_s[e / N * SP + e % N];
}
