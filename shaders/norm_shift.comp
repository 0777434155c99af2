#version 450
/* norm_shift.comp: the fused LayerNorm + token shift of backend.h (norm_shift) for decode steps
 * (one token per sequence): xn = LayerNorm(x) * w + b; dst[j] = xn + (state[slot] - xn) * mix[j]
 * for each of the n mixes; then state[slot] = xn. One workgroup per sequence; invocation i owns
 * elements i, i + WG, ... Each element of the state row is read and then written by the same
 * invocation, so no other ordering is needed. Two-pass fp32 mean and biased variance.
 * Bindings: dst, xn, x, w, b, mix, state, slots. Push: c, rows = sequences, n = mixes. */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

#define RED_WG RWKV7_VK_WG_ROW
layout(local_size_x = RED_WG) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_fused p; };
layout(binding = 0) writeonly buffer B0 { float Dst[]; };
layout(binding = 1) writeonly buffer B1 { float Xn[]; };
layout(binding = 2) readonly buffer B2 { float X[]; };
layout(binding = 3) readonly buffer B3 { float Wt[]; };
layout(binding = 4) readonly buffer B4 { float Bs[]; };
layout(binding = 5) readonly buffer B5 { float Mix[]; };
layout(binding = 6) buffer B6 { float St[]; };
layout(binding = 7) readonly buffer B7 { int Slots[]; };
#include "reduce.glsl"

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) return; /* uniform per workgroup */
    uint tid = gl_LocalInvocationID.x, base = row * p.c;
    float s = 0.0;
    for (uint i = tid; i < p.c; i += RED_WG) s += X[p.off[2] + base + i];
    float mean = wg_sum(s) / float(p.c);
    float q = 0.0;
    for (uint i = tid; i < p.c; i += RED_WG) {
        float d = X[p.off[2] + base + i] - mean;
        q += d * d;
    }
    float rstd = inversesqrt(wg_sum(q) / float(p.c) + p.eps);
    uint sbase = p.off[6] + uint(Slots[p.off[7] + row]) * p.c;
    for (uint i = tid; i < p.c; i += RED_WG) {
        float xn = (X[p.off[2] + base + i] - mean) * rstd * Wt[p.off[3] + i] + Bs[p.off[4] + i];
        Xn[p.off[1] + base + i] = xn;
        float d = St[sbase + i] - xn;
        St[sbase + i] = xn;
        for (uint j = 0u; j < p.n; j++) Dst[p.off[0] + (j * p.rows + row) * p.c + i] = xn + d * Mix[p.off[5] + j * p.c + i];
    }
}
