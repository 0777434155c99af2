#version 450
/* matvec.comp: dst (m, t) (=|+=) W (k, m) x (k, t) for t <= RWKV7_VK_MATVEC_MAX_T (decode).
 * One workgroup per output row; invocation i dequantizes 32-element chunks i, i + WG, ... of the
 * row once and dots each with all t input rows, accumulating in fp32; then a workgroup reduction
 * (subgroupAdd + shared memory with USE_SUBGROUP, else a shared-memory tree). Rows beyond 65535
 * workgroups wrap into gl_WorkGroupID.y. Float weight types allow k % 32 != 0 (zero tail). */
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "abi.h"

#define WG RWKV7_VK_WG_MATVEC
#define MAXT RWKV7_VK_MATVEC_MAX_T
layout(local_size_x = WG) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_matmul p; };
layout(binding = 0) readonly buffer BW { uint Wq[]; };
layout(binding = 1) readonly buffer BX { float X[]; };
layout(binding = 2) buffer BD { float D[]; };
layout(binding = 3) readonly buffer BT { uint Tab[]; };
#include "dequant.glsl"

shared float red[MAXT][WG];

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.m) return; /* uniform per workgroup */
    uint tid = gl_LocalInvocationID.x;
    float acc[MAXT];
    for (uint t = 0u; t < MAXT; t++) acc[t] = 0.0;
    uint n_chunks = (p.k + 31u) / 32u;
    uint rb = p.w_off + row * p.row_bytes;
    for (uint c = tid; c < n_chunks; c += WG) {
        float v[32];
        dq32(rb + (c / CPB) * BB, c % CPB, v);
        uint e0 = c * 32u;
#ifdef FLOAT_WEIGHTS
        uint jn = min(32u, p.k - e0);
        if (jn < 32u) {
            for (uint t = 0u; t < MAXT; t++) {
                if (t >= p.t) break;
                for (uint j = 0u; j < jn; j++) acc[t] += v[j] * X[p.x_off + t * p.k + e0 + j];
            }
            continue;
        }
#endif
        for (uint t = 0u; t < MAXT; t++) {
            if (t >= p.t) break;
            uint xb = p.x_off + t * p.k + e0;
            float s = 0.0;
            for (uint j = 0u; j < 32u; j++) s += v[j] * X[xb + j];
            acc[t] += s;
        }
    }
#ifdef USE_SUBGROUP
    for (uint t = 0u; t < MAXT; t++) {
        if (t >= p.t) break;
        float s = subgroupAdd(acc[t]);
        if (subgroupElect()) red[t][gl_SubgroupID] = s;
    }
    barrier();
    if (tid < p.t) {
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) s += red[tid][g];
        uint o = p.d_off + tid * p.m + row;
        float v = s;
        if (p.accumulate == 2u) v = max(v, 0.0) * max(v, 0.0); /* ffn_key: relu^2 */
        D[o] = p.accumulate == 1u ? D[o] + v : v;
    }
#else
    for (uint t = 0u; t < MAXT; t++) red[t][tid] = acc[t];
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1) {
        if (tid < w)
            for (uint t = 0u; t < MAXT; t++) red[t][tid] += red[t][tid + w];
        barrier();
    }
    if (tid < p.t) {
        uint o = p.d_off + tid * p.m + row;
        float v = red[tid][0];
        if (p.accumulate == 2u) v = max(v, 0.0) * max(v, 0.0); /* ffn_key: relu^2 */
        D[o] = p.accumulate == 1u ? D[o] + v : v;
    }
#endif
}
