#version 450
/* norm.comp: LayerNorm over groups of gs = c / n contiguous elements of each row, then * w + b
 * (backend.h norm; n = 1 LayerNorm, n = H GroupNorm). One workgroup per (row, group); invocation i
 * owns elements i, i + WG, ... Two-pass fp32 mean then biased variance (no E[x^2] - mean^2
 * cancellation). Bindings: dst, x, w, b. dst may equal x (each element read then written by one
 * invocation, after both reductions). */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

#define RED_WG RWKV7_VK_WG_ROW
layout(local_size_x = RED_WG) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_elem p; };
layout(binding = 0) buffer B0 { float Dst[]; };
layout(binding = 1) readonly buffer B1 { float X[]; };
layout(binding = 2) readonly buffer B2 { float Wt[]; };
layout(binding = 3) readonly buffer B3 { float Bs[]; };
#include "reduce.glsl"

void main() {
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * p.n) return;
    uint gs = p.c / p.n, row = gid / p.n, g = gid % p.n;
    uint base = row * p.c + g * gs, tid = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint i = tid; i < gs; i += RED_WG) s += X[p.off[1] + base + i];
    float mean = wg_sum(s) / float(gs);
    float q = 0.0;
    for (uint i = tid; i < gs; i += RED_WG) {
        float d = X[p.off[1] + base + i] - mean;
        q += d * d;
    }
    float rstd = inversesqrt(wg_sum(q) / float(gs) + p.eps);
    for (uint i = tid; i < gs; i += RED_WG) {
        uint e = g * gs + i;
        Dst[p.off[0] + base + i] = (X[p.off[1] + base + i] - mean) * rstd * Wt[p.off[2] + e] + Bs[p.off[3] + e];
    }
}
