#version 450
/* matvec_reduce.comp: second pass of a split-K matvec (matvec.comp with n_split > 1): output
 * (product i, row t, feature r) = the sum of its n_split partials, in split order, then the
 * product's mode (set / accumulate / relu^2). One invocation per output, products in order. */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

layout(local_size_x = RWKV7_VK_WG_ELEM) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_matvec p; };
layout(binding = 8) buffer BD0 { float D0[]; };
layout(binding = 9) buffer BD1 { float D1[]; };
layout(binding = 10) buffer BD2 { float D2[]; };
layout(binding = 11) buffer BD3 { float D3[]; };
layout(binding = 13) readonly buffer BP { float P[]; };

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * RWKV7_VK_WG_ELEM;
    uint pi = 0u, p_base = 0u;
    for (; pi < p.n; pi++) {
        uint n_out = p.t * p.m[pi];
        if (i < n_out) break;
        i -= n_out;
        p_base += p.n_split * n_out;
    }
    if (pi >= p.n) return;
    uint m = p.m[pi], t = i / m, row = i % m;
    float v = 0.0;
    for (uint s = 0u; s < p.n_split; s++) v += P[p_base + (s * p.t + t) * m + row];
    uint mode = p.mode[pi], o = p.d_off[pi] + t * m + row;
    if (mode == 2u) v = max(v, 0.0) * max(v, 0.0); /* ffn_key: relu^2 */
    switch (pi) {
    case 0u: D0[o] = mode == 1u ? D0[o] + v : v; break;
    case 1u: D1[o] = mode == 1u ? D1[o] + v : v; break;
    case 2u: D2[o] = mode == 1u ? D2[o] + v : v; break;
    default: D3[o] = mode == 1u ? D3[o] + v : v; break;
    }
}
