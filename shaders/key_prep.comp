#version 450
/* key_prep.comp: per head of n = head_size (rwkv7-gguf.md 4.4.9-10):
 *   kk = normalize(k * k_k), norm floored at 1e-12;  kmod = k * (1 + (a - 1) * k_a).
 * One workgroup per (row, head); invocation i owns elements i, i + WG, ... of the head. The sum of
 * squares is reduced before any write, so kmod may alias k. Bindings: kk, kmod, k, a, k_k, k_a. */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

#define RED_WG RWKV7_VK_WG_ROW
layout(local_size_x = RED_WG) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_elem p; };
layout(binding = 0) writeonly buffer B0 { float KK[]; };
layout(binding = 1) buffer B1 { float KM[]; };
layout(binding = 2) buffer B2 { float K[]; };
layout(binding = 3) readonly buffer B3 { float A[]; };
layout(binding = 4) readonly buffer B4 { float K_k[]; };
layout(binding = 5) readonly buffer B5 { float K_a[]; };
#include "reduce.glsl"

void main() {
    uint n_head = p.c / p.n;
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * n_head) return;
    uint row = gid / n_head, h = gid % n_head, tid = gl_LocalInvocationID.x;
    uint base = row * p.c + h * p.n;
    float s = 0.0;
    for (uint i = tid; i < p.n; i += RED_WG) {
        float x = K[p.off[2] + base + i] * K_k[p.off[4] + h * p.n + i];
        s += x * x;
    }
    float inv = 1.0 / max(sqrt(wg_sum(s)), 1e-12);
    for (uint i = tid; i < p.n; i += RED_WG) {
        uint e = h * p.n + i;
        float k = K[p.off[2] + base + i];
        KK[p.off[0] + base + i] = k * K_k[p.off[4] + e] * inv;
        KM[p.off[1] + base + i] = k * (1.0 + (A[p.off[3] + base + i] - 1.0) * K_a[p.off[5] + e]);
    }
}
