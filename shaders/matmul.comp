#version 450
/* matmul.comp: tiled dst (m, t) (=|+=) W (k, m) x (k, t) for t > RWKV7_VK_MATVEC_MAX_T (prefill),
 * the portable fp32 path (matmul_cm.comp is the cooperative-matrix one).
 * Workgroup tile: TM = 64 output features x TT = 64 input rows, stepping K by TK = 32. Per step
 * every one of the 256 invocations decodes one 8-element slice of the 64 x 32 weight tile
 * (dequant.glsl dq8; 4 neighbouring invocations share one 32-element chunk, so a chunk's bytes
 * are read together and each weight byte is read once per workgroup) and stages 8 activations;
 * both tiles are stored k-major in shared memory as vec4 rows. Invocation (fm, ft) then owns a
 * 4 x 4 register block: features 4 fm .. +3, rows 4 ft .. +3, so each k costs two vec4 shared
 * loads for 16 FMAs. fp32 throughout; every output sums k in increasing order, like the matvec.
 * Grid: x = feature tiles, y = row tiles. */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

#define TM RWKV7_VK_MM_TILE_M
#define TT RWKV7_VK_MM_TILE_T
#define TK RWKV7_VK_MM_TILE_K
#define WG RWKV7_VK_WG_MM
#define RB 4u /* register block: 4 features x 4 rows */
layout(local_size_x = WG) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_matmul p; };
layout(binding = 0) readonly buffer BW { uint Wq[]; };
layout(binding = 1) readonly buffer BX { float X[]; };
layout(binding = 2) buffer BD { float D[]; };
layout(binding = 3) readonly buffer BT { uint Tab[]; };
#include "dequant.glsl"

/* [k][feature / 4] and [k][row / 4]: an invocation's 4 features (rows) are one vec4. */
shared vec4 Ws[TK][TM / 4];
shared vec4 Xs[TK][TT / 4];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.x * TM, t0 = gl_WorkGroupID.y * TT;
    uint fm = tid % (TM / RB), ft = tid / (TM / RB);
    /* decode role: tile row wr (feature m0 + wr), slice wq (elements 8 wq .. +7 of the chunk) */
    uint wr = tid >> 2, wq = tid & 3u;
    uint wrow = m0 + wr;
    vec4 acc[RB]; /* acc[i][j]: feature 4 fm + i, row 4 ft + j */
    for (uint i = 0u; i < RB; i++) acc[i] = vec4(0.0);
    uint n_chunks = (p.k + 31u) / 32u;
    for (uint c = 0u; c < n_chunks; c++) {
        uint e0 = c * 32u;
        float v[8];
        if (wrow < p.m) {
            uint e = e0 + 8u * wq;
            uint nvalid = e < p.k ? min(p.k - e, 8u) : 0u;
            dq8(p.w_off + wrow * p.row_bytes + (c / CPB) * BB, c % CPB, wq, nvalid, v);
        } else {
            for (uint j = 0u; j < 8u; j++) v[j] = 0.0;
        }
        for (uint j = 0u; j < 8u; j++) Ws[8u * wq + j][wr >> 2][wr & 3u] = v[j];
        /* activations: consecutive invocations read consecutive k of one row */
        for (uint i = tid; i < TT * TK; i += WG) {
            uint tt = i / TK, kk = i % TK;
            uint t = t0 + tt, e = e0 + kk;
            Xs[kk][tt >> 2][tt & 3u] = (t < p.t && e < p.k) ? X[p.x_off + t * p.k + e] : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk++) {
            vec4 w = Ws[kk][fm], x = Xs[kk][ft];
            acc[0] += w.x * x;
            acc[1] += w.y * x;
            acc[2] += w.z * x;
            acc[3] += w.w * x;
        }
        barrier();
    }
    for (uint i = 0u; i < RB; i++) {
        uint m = m0 + RB * fm + i;
        if (m >= p.m) break;
        for (uint j = 0u; j < RB; j++) {
            uint t = t0 + RB * ft + j;
            if (t >= p.t) break;
            uint o = p.d_off + t * p.m + m;
            float v = acc[i][j];
            if (p.accumulate == 2u) v = max(v, 0.0) * max(v, 0.0); /* ffn_key: relu^2 */
            D[o] = p.accumulate == 1u ? D[o] + v : v;
        }
    }
}
