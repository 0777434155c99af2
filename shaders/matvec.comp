#version 450
/* matvec.comp: decode matvec, dst_i (m_i, t) (=|+=) W_i (k, m_i) x_i (k, t) for t <= MAXT and up
 * to MAXN products of one weight type (abi.h rwkv7_vk_pc_matvec). Layout for GPU bandwidth:
 * a workgroup of WG invocations owns RPW = WG / LPR rows; the LPR lanes of a row read
 * consecutive slices of it (matvec_unit.glsl: 16 bytes of f16/bf16/f32 per lane, a word of 4/5-bit
 * quants or a quarter Q8_0 block per lane, so one sweep of a row's lanes is one contiguous range),
 * dequantize them in registers and dot them with the activations, which the workgroup stages in
 * shared memory one K tile at a time (read once per workgroup, not once per row). Rows reduce with
 * subgroupAdd (USE_SUBGROUP; LPR >= subgroup size, so a subgroup lies inside one row) or a
 * shared-memory tree. With n_split > 1 the workgroups of a row group each take k_split elements
 * of K and write partial sums that matvec_reduce.comp adds (narrow and long matrices). */
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "abi.h"

#define WG RWKV7_VK_WG_MATVEC
#define MAXT RWKV7_VK_MATVEC_MAX_T
layout(local_size_x = WG) in;
layout(constant_id = 0) const uint LPR = RWKV7_VK_MATVEC_LPR; /* lanes per row (power of two) */
const uint RPW = WG / LPR;                                     /* rows per workgroup */
layout(push_constant) uniform pc_block { rwkv7_vk_pc_matvec p; };
layout(binding = 0) readonly buffer BW0 { uint Wq[]; };
layout(binding = 0) readonly buffer BV0 { uvec4 Wv0[]; };
layout(binding = 1) readonly buffer BW1 { uint Wq1[]; };
layout(binding = 1) readonly buffer BV1 { uvec4 Wv1[]; };
layout(binding = 2) readonly buffer BW2 { uint Wq2[]; };
layout(binding = 2) readonly buffer BV2 { uvec4 Wv2[]; };
layout(binding = 3) readonly buffer BW3 { uint Wq3[]; };
layout(binding = 3) readonly buffer BV3 { uvec4 Wv3[]; };
layout(binding = 4) readonly buffer BX0 { float X0[]; };
layout(binding = 5) readonly buffer BX1 { float X1[]; };
layout(binding = 6) readonly buffer BX2 { float X2[]; };
layout(binding = 7) readonly buffer BX3 { float X3[]; };
layout(binding = 8) buffer BD0 { float D0[]; };
layout(binding = 9) buffer BD1 { float D1[]; };
layout(binding = 10) buffer BD2 { float D2[]; };
layout(binding = 11) buffer BD3 { float D3[]; };
layout(binding = 12) readonly buffer BT { uint Tab[]; };
layout(binding = 13) buffer BP { float P[]; };
#include "dequant.glsl"

/* Per type: UW weights per lane unit as NG vec4 groups; upos(j, i) = offset of group i of unit
 * j inside its block. MAXN = products one dispatch can carry (the dq32 types: binding 0 only). */
#define MAXN 4
#if defined(TYPE_F32)
#define UW 4u
#define NG 1
uint upos(uint j, uint i) { return 4u * j; }
#elif defined(FLOAT_WEIGHTS) || defined(TYPE_Q8_0)
#define UW 8u
#define NG 2
uint upos(uint j, uint i) { return 8u * j + 4u * i; }
#elif defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_IQ4_NL) || defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
#define UW 8u
#define NG 2
uint upos(uint j, uint i) { return 4u * j + 16u * i; }
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#define UW 8u
#define NG 2
uint upos(uint j, uint i) { return 64u * (j >> 3) + 4u * (j & 7u) + 32u * i; }
#elif defined(TYPE_Q6_K)
#define UW 16u
#define NG 4
uint upos(uint j, uint i) { return 128u * (j >> 3) + 4u * (j & 7u) + 32u * i; }
#else
#define UW 32u
#define NG 8
#undef MAXN
#define MAXN 1
uint upos(uint j, uint i) { return 32u * j + 4u * i; }
#endif

shared vec4 Xs[RWKV7_VK_MATVEC_XS / 4];
shared float red[MAXT][WG];

/* K tile length at t input rows: the most whole 256-element blocks whose t rows fit Xs. */
uint tile_len(uint t) { return max(256u, (RWKV7_VK_MATVEC_XS / t) / 256u * 256u); }

float ld_x(uint pi, uint i) {
    switch (pi) {
    case 0u: return X0[i];
    case 1u: return X1[i];
    case 2u: return X2[i];
    default: return X3[i];
    }
}

/* Xs[t][0, kt_max) = x_pi[t][k0, k0 + kt), zero past kt (float rows of k % 4 != 0). */
void stage_x(uint pi, uint k0, uint kt, uint kt_max) {
    uint n4 = (kt + UW - 1u) / UW * (UW / 4u); /* whole units: a row's tail unit reads zeros */
    for (uint i = gl_LocalInvocationID.x; i < p.t * n4; i += WG) {
        uint t = i / n4, e = 4u * (i % n4);
        uint xb = p.x_off[pi] + t * p.k + k0 + e;
        vec4 v;
        for (uint c = 0u; c < 4u; c++) v[c] = e + c < kt ? ld_x(pi, xb + c) : 0.0;
        Xs[(t * kt_max + e) >> 2] = v;
    }
}

#define WQ Wq
#define WV Wv0
#define FN(n) n##_0
#include "matvec_unit.glsl"
#undef WQ
#undef WV
#undef FN
#if MAXN > 1
#define WQ Wq1
#define WV Wv1
#define FN(n) n##_1
#include "matvec_unit.glsl"
#undef WQ
#undef WV
#undef FN
#define WQ Wq2
#define WV Wv2
#define FN(n) n##_2
#include "matvec_unit.glsl"
#undef WQ
#undef WV
#undef FN
#define WQ Wq3
#define WV Wv3
#define FN(n) n##_3
#include "matvec_unit.glsl"
#undef WQ
#undef WV
#undef FN
#endif

/* Row bytes of one W row at k elements. */
uint row_bytes() {
#if defined(FLOAT_WEIGHTS)
    return p.k * (BB / 32u);
#else
    return p.k / QK * BB;
#endif
}

void store(uint pi, uint o, float v, uint mode) {
    if (mode == 2u) v = max(v, 0.0) * max(v, 0.0); /* ffn_key: relu^2 */
    switch (pi) {
    case 0u: D0[o] = mode == 1u ? D0[o] + v : v; break;
    case 1u: D1[o] = mode == 1u ? D1[o] + v : v; break;
    case 2u: D2[o] = mode == 1u ? D2[o] + v : v; break;
    default: D3[o] = mode == 1u ? D3[o] + v : v; break;
    }
}

void main() {
    /* Workgroup -> product pi, split s, row group (products in order, each n_split * groups). */
    uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x, pi = 0u, p_base = 0u;
    for (; pi < p.n; pi++) {
        uint n_wg = (p.m[pi] + RPW - 1u) / RPW * p.n_split;
        if (wg < n_wg) break;
        wg -= n_wg;
        p_base += p.n_split * p.t * p.m[pi];
    }
    if (pi >= p.n) return; /* uniform per workgroup */
    uint m = p.m[pi], n_rg = (m + RPW - 1u) / RPW;
    uint s = wg / n_rg, rg = wg % n_rg;
    uint lid = gl_LocalInvocationID.x, slot = lid / LPR, lane = lid % LPR;
    uint row = rg * RPW + slot;
    bool live = row < m;
    uint rb = row_bytes(), rowb = p.w_off[pi] + min(row, m - 1u) * rb;
    bool al = ((p.w_off[pi] | rb) & 15u) == 0u;
    uint kb = s * p.k_split, ke = min(p.k, kb + p.k_split);
    float acc[MAXT];
    for (uint t = 0u; t < MAXT; t++) acc[t] = 0.0;
    switch (pi) {
    case 0u: rowdot_0(pi, live, rowb, al, kb, ke, lane, acc); break;
#if MAXN > 1
    case 1u: rowdot_1(pi, live, rowb, al, kb, ke, lane, acc); break;
    case 2u: rowdot_2(pi, live, rowb, al, kb, ke, lane, acc); break;
    default: rowdot_3(pi, live, rowb, al, kb, ke, lane, acc); break;
#endif
    }
    /* Row sum over its LPR lanes into red[t][slot * LPR]. */
#ifdef USE_SUBGROUP
    uint sg = gl_SubgroupSize;
    for (uint t = 0u; t < MAXT; t++) {
        if (t >= p.t) break;
        float v = subgroupAdd(acc[t]);
        /* Subgroups are taken to be consecutive invocation ranges (as on every driver we know). */
        if (subgroupElect()) red[t][lid / sg] = v;
    }
    barrier();
    float sum_t = 0.0;
    if (lane < p.t && live)
        for (uint g = 0u; g < LPR / sg; g++) sum_t += red[lane][slot * (LPR / sg) + g];
#else
    for (uint t = 0u; t < MAXT; t++) red[t][lid] = acc[t];
    barrier();
    for (uint w = LPR / 2u; w > 0u; w >>= 1) {
        if (lane < w)
            for (uint t = 0u; t < MAXT; t++) red[t][lid] += red[t][lid + w];
        barrier();
    }
    float sum_t = lane < p.t ? red[lane][slot * LPR] : 0.0;
#endif
    /* Lane t of the row writes output row t. */
    if (lane < p.t && live) {
        if (p.n_split == 1u)
            store(pi, p.d_off[pi] + lane * m + row, sum_t, p.mode[pi]);
        else
            P[p_base + (s * p.t + lane) * m + row] = sum_t;
    }
}
