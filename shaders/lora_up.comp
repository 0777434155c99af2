#version 450
/* lora_up.comp: the fused LoRA up-projections of backend.h (lora_up) for decode steps
 * (t <= RWKV7_VK_MATVEC_MAX_T), one TYPE_<X> variant per weight type (a term may also be f32 or
 * f16 in any variant: models keep some LoRA matrices in f32): for term i,
 *   dst_i (m_i, t) = out_fn(bias_i + W_i in_fn(x_i)),
 * then the value residual v = v + (v_first - v) * dst_vres, or v_first = v (record).
 * Workgroups [blk_end[i-1], blk_end[i]) belong to term i, RWKV7_VK_WG_LORA rows each: the group
 * stages in_fn(x_i) (k_i x t floats) in shared memory once, then invocation r dequantizes row r
 * (dequant.glsl, 32-element chunks) and dots it with the t staged rows in fp32. Every W_i is read
 * through binding 0 at byte offset w_off[i] (the host binds one range of the memory block that
 * holds them all). Workgroups past the last term copy v to v_first (record). The term index is
 * uniform per workgroup, so the switches over bindings below do not diverge.
 * Bindings: W, Tab, dst0..3, x0..3, bias0..3, v, v_first. */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

#define WG RWKV7_VK_WG_LORA
#define MAXT RWKV7_VK_MATVEC_MAX_T
layout(local_size_x = WG) in;
/* Activation rows (the host's "+u<T>" pipeline, T = p.t): constant trip counts below, so the loops
 * unroll and acc[] / v[] stay in registers (indexed arrays went through memory; vulkan/pipeline.c). */
layout(constant_id = 2) const uint NT = MAXT;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_lora p; };
layout(binding = 0) readonly buffer BW { uint Wq[]; };
layout(binding = 1) readonly buffer BT { uint Tab[]; };
layout(binding = 2) writeonly buffer BD0 { float D0[]; };
layout(binding = 3) writeonly buffer BD1 { float D1[]; };
layout(binding = 4) writeonly buffer BD2 { float D2[]; };
layout(binding = 5) writeonly buffer BD3 { float D3[]; };
layout(binding = 6) readonly buffer BX0 { float X0[]; };
layout(binding = 7) readonly buffer BX1 { float X1[]; };
layout(binding = 8) readonly buffer BX2 { float X2[]; };
layout(binding = 9) readonly buffer BX3 { float X3[]; };
layout(binding = 10) readonly buffer BB0 { float Bi0[]; };
layout(binding = 11) readonly buffer BB1 { float Bi1[]; };
layout(binding = 12) readonly buffer BB2 { float Bi2[]; };
layout(binding = 13) readonly buffer BB3 { float Bi3[]; };
layout(binding = 14) buffer BV { float V[]; };
layout(binding = 15) buffer BVF { float VF[]; };
#include "dequant.glsl"

shared float xs[RWKV7_VK_LORA_MAX_XS];

uint off8(uint w, uint i) { return (p.off[w] >> (8u * i)) & 0xFFu; }

float rd_x(uint ti, uint e) {
    uint o = off8(1u, ti) + e;
    switch (ti) {
    case 0u: return X0[o];
    case 1u: return X1[o];
    case 2u: return X2[o];
    default: return X3[o];
    }
}

float rd_bias(uint ti, uint e) {
    uint o = off8(2u, ti) + e;
    switch (ti) {
    case 0u: return Bi0[o];
    case 1u: return Bi1[o];
    case 2u: return Bi2[o];
    default: return Bi3[o];
    }
}

void wr_dst(uint ti, uint e, float v) {
    uint o = off8(0u, ti) + e;
    switch (ti) {
    case 0u: D0[o] = v; break;
    case 1u: D1[o] = v; break;
    case 2u: D2[o] = v; break;
    default: D3[o] = v; break;
    }
}

/* enum rwkv7_unary + 1; 0 = none */
float unary(uint fn, float z) {
    if (fn == 1u) return 1.0 / (1.0 + exp(-z));
    if (fn == 2u) return tanh(z);
    if (fn == 3u) { float r = max(z, 0.0); return r * r; }
    if (fn == 4u) return exp(-0.606531 / (1.0 + exp(-z)));
    return z;
}

void main() {
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint tid = gl_LocalInvocationID.x;
    uint last = p.blk_end[p.n - 1u];
    if (gid >= last) { /* record: v_first = v */
        uint e = (gid - last) * WG + tid;
        if (p.vres == RWKV7_VK_LORA_RECORD && e < p.c * p.t) VF[off8(3u, 1u) + e] = V[off8(3u, 0u) + e];
        return;
    }
    uint ti = 0u;
    while (gid >= p.blk_end[ti]) ti++;
    uint g0 = ti == 0u ? 0u : p.blk_end[ti - 1u];
    uint kf = p.kf[ti], k = kf & 0xFFFFu, in_fn = (kf >> 16) & 0xFu, out_fn = (kf >> 20) & 0xFu;
    bool has_bias = ((kf >> 24) & 1u) != 0u;
    uint kind = (kf >> 25) & 3u; /* 0: the variant's type, 1: f32, 2: f16 */
    uint m = p.m[ti];
    for (uint e = tid; e < k * p.t; e += WG) xs[e] = unary(in_fn, rd_x(ti, e));
    barrier();
    uint row = (gid - g0) * WG + tid;
    if (row >= m) return;
    float acc[MAXT];
    for (uint t = 0u; t < NT; t++) acc[t] = 0.0;
    uint rb = p.w_off[ti] + row * p.row_bytes[ti];
    uint n_chunks = (k + 31u) / 32u;
    for (uint c = 0u; c < n_chunks; c++) {
        /* Every loop over the 32 elements has a constant trip count (the elements past a float
         * row's end, k % 32 != 0, read its last element and count as zero). */
        float v[32];
        uint e0 = c * 32u, jn = min(32u, k - e0);
        if (kind == 1u) {
            for (uint j = 0u; j < 32u; j++) {
                float w = uintBitsToFloat(rd32(rb + 4u * (e0 + min(j, jn - 1u))));
                v[j] = j < jn ? w : 0.0;
            }
        } else if (kind == 2u) {
            for (uint j = 0u; j < 32u; j++) {
                float w = rdf16(rb + 2u * (e0 + min(j, jn - 1u)));
                v[j] = j < jn ? w : 0.0;
            }
        } else {
            dq32(rb + (c / CPB) * BB, c % CPB, v);
        }
        for (uint t = 0u; t < NT; t++) {
            float s = 0.0;
            uint xo = t * k + e0;
            for (uint j = 0u; j < 32u; j++) s += j < jn ? v[j] * xs[xo + min(j, jn - 1u)] : 0.0;
            acc[t] += s;
        }
    }
    for (uint t = 0u; t < NT; t++) {
        float z = acc[t];
        if (out_fn != 0u) z = unary(out_fn, z + (has_bias ? rd_bias(ti, row) : 0.0));
        wr_dst(ti, t * m + row, z);
        if (ti == p.vres) { /* dst_vres has v's shape: this invocation owns element (row, t) of v */
            uint ve = off8(3u, 0u) + t * p.c + row;
            float a = V[ve];
            V[ve] = a + (VF[off8(3u, 1u) + t * p.c + row] - a) * z;
        }
    }
}
