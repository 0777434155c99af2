#version 450
/* wkv_out.comp: time-mix output before W_o (rwkv7-gguf.md 4.4.12-14), per head of n = head_size:
 *   o = GroupNorm(y; eps) * ln_w + ln_b;  o += (sum_j r_j k_j r_k[h n + j]) * v;  dst = o * g.
 * One workgroup per (row, head); invocation i owns elements i, i + WG, ... Two-pass fp32 mean and
 * variance. Bindings: dst, y, r, k, v, g, r_k, ln_w; ln_b is binding 8 (the 9th). */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

#define RED_WG RWKV7_VK_WG_ROW
layout(local_size_x = RED_WG) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_elem p; };
layout(binding = 0) buffer B0 { float Dst[]; };
layout(binding = 1) readonly buffer B1 { float Y[]; };
layout(binding = 2) readonly buffer B2 { float R[]; };
layout(binding = 3) readonly buffer B3 { float K[]; };
layout(binding = 4) readonly buffer B4 { float V[]; };
layout(binding = 5) readonly buffer B5 { float G[]; };
layout(binding = 6) readonly buffer B6 { float Rk[]; };
layout(binding = 7) readonly buffer B7 { float Lw[]; };
layout(binding = 8) readonly buffer B8 { float Lb[]; };
#include "reduce.glsl"

void main() {
    uint n_head = p.c / p.n;
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * n_head) return;
    uint row = gid / n_head, h = gid % n_head, tid = gl_LocalInvocationID.x;
    uint base = row * p.c + h * p.n;
    float sy = 0.0, sb = 0.0;
    for (uint i = tid; i < p.n; i += RED_WG) {
        sy += Y[p.off[1] + base + i];
        sb += R[p.off[2] + base + i] * K[p.off[3] + base + i] * Rk[p.off[6] + h * p.n + i];
    }
    float mean = wg_sum(sy) / float(p.n);
    float bonus = wg_sum(sb);
    float q = 0.0;
    for (uint i = tid; i < p.n; i += RED_WG) {
        float d = Y[p.off[1] + base + i] - mean;
        q += d * d;
    }
    float rstd = inversesqrt(wg_sum(q) / float(p.n) + p.eps);
    for (uint i = tid; i < p.n; i += RED_WG) {
        uint e = h * p.n + i;
        float o = (Y[p.off[1] + base + i] - mean) * rstd * Lw[p.off[7] + e] + Lb[p.n2 + e];
        o += bonus * V[p.off[4] + base + i];
        Dst[p.off[0] + base + i] = o * G[p.off[5] + base + i];
    }
}
