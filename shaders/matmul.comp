#version 450
/* matmul.comp: tiled dst (m, t) (=|+=) W (k, m) x (k, t) for larger t (prefill).
 * Workgroup tile: TILE_M output features x TILE_T input rows, stepping K by 32. Per step,
 * invocations 0..TILE_M-1 dequantize one 32-element weight chunk each into shared Ws (so each
 * weight is decoded once per tile and reused for all TILE_T rows), all invocations stage the x tile
 * in Xs, then invocation i owns feature i % TILE_M and 8 rows (i / TILE_M) * 8 .. +7. fp32 accumulate.
 * Grid: x = feature tiles, y = row tiles. */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

#define TM RWKV7_VK_MM_TILE_M
#define TT RWKV7_VK_MM_TILE_T
#define TK RWKV7_VK_MM_TILE_K
#define WG RWKV7_VK_WG_MM
#define RPT (TT * TM / WG) /* rows per invocation: 8 */
layout(local_size_x = WG) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_matmul p; };
layout(binding = 0) readonly buffer BW { uint Wq[]; };
layout(binding = 1) readonly buffer BX { float X[]; };
layout(binding = 2) buffer BD { float D[]; };
layout(binding = 3) readonly buffer BT { uint Tab[]; };
#include "dequant.glsl"

shared float Ws[TM][TK + 1];
shared float Xs[TT][TK + 1];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.x * TM, t0 = gl_WorkGroupID.y * TT;
    uint fm = tid % TM, ft = (tid / TM) * RPT;
    float acc[RPT];
    for (uint r = 0u; r < RPT; r++) acc[r] = 0.0;
    uint n_chunks = (p.k + 31u) / 32u;
    for (uint c = 0u; c < n_chunks; c++) {
        uint e0 = c * 32u;
        if (tid < TM) {
            uint row = m0 + tid;
            float v[32];
            if (row < p.m) {
                dq32(p.w_off + row * p.row_bytes + (c / CPB) * BB, c % CPB, v);
#ifdef FLOAT_WEIGHTS
                for (uint j = 0u; j < 32u; j++)
                    if (e0 + j >= p.k) v[j] = 0.0;
#endif
            } else {
                for (uint j = 0u; j < 32u; j++) v[j] = 0.0;
            }
            for (uint j = 0u; j < 32u; j++) Ws[tid][j] = v[j];
        }
        for (uint i = tid; i < TT * TK; i += WG) {
            uint tt = i / TK, kk = i % TK;
            uint t = t0 + tt, e = e0 + kk;
            Xs[tt][kk] = (t < p.t && e < p.k) ? X[p.x_off + t * p.k + e] : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk++) {
            float w = Ws[fm][kk];
            for (uint r = 0u; r < RPT; r++) acc[r] += w * Xs[ft + r][kk];
        }
        barrier();
    }
    uint m = m0 + fm;
    if (m >= p.m) return;
    for (uint r = 0u; r < RPT; r++) {
        uint t = t0 + ft + r;
        if (t >= p.t) break;
        uint o = p.d_off + t * p.m + m;
        float v = acc[r];
        if (p.accumulate == 2u) v = max(v, 0.0) * max(v, 0.0); /* ffn_key: relu^2 */
        D[o] = p.accumulate == 1u ? D[o] + v : v;
    }
}
