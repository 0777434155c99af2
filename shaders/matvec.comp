#version 450
/* matvec.comp: decode matvec, dst_i (m_i, t) (=|+=) W_i (k, m_i) x_i (k, t) for t <= MAXT and up
 * to MAXN products of one weight type (abi.h rwkv7_vk_pc_matvec). Layout for GPU bandwidth:
 * a workgroup of WG invocations has WG / LPR row slots of NR rows each; the LPR lanes of a slot
 * read consecutive slices of its rows (matvec_unit.glsl: 16 bytes of f16/bf16/f32 per lane, a
 * word of 4/5-bit quants or a quarter Q8_0 block per lane, so one sweep of a row's lanes is one
 * contiguous range), NR rows at a time (NR independent loads in flight per lane), dequantize them
 * in registers and dot them with the activations, which each lane reads as vec4 (one read serves
 * NR rows): straight from the storage buffer for T = 1 (small and cache-resident; the K loop has
 * no barrier), from a shared-memory copy of each sweep's T rows for T > 1 (STAGE_BUDGET). The
 * rows reduce once at the end with subgroupAdd (USE_SUBGROUP; LPR >= subgroup size, so a subgroup
 * lies inside one slot) or a shared-memory tree. With n_split > 1 the
 * workgroups of a row group each take k_split elements of K and write partial sums that
 * matvec_reduce.comp adds (narrow and long matrices). */
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
/* 1 (the host's "+a" pipelines) when every weight row and activation row starts on a 16-byte
 * boundary and k % 8 == 0: the K loop then reads whole uvec4 / vec4 with no alignment or row-end
 * branch (a branch costs instructions on a GPU and both sides on a SIMD-emulating driver). */
layout(constant_id = 1) const uint ALIGNED = 0u;
/* Activation rows of this dispatch (the host's "+a<T>" / "+u<T>" pipelines, T = p.t): a constant
 * trip count unrolls every per-row loop, so acc[][] stays in registers (vulkan/pipeline.c). */
layout(constant_id = 2) const uint NT = MAXT;
/* Q4_K / Q5_K: 1 (the host's "+..n" pipelines) walks the rows in one-word (8-weight) units instead
 * of two-word ones, for K ranges whose two-word units would leave lanes of the last sweep idle
 * (matvec_unit.glsl; vulkan/ops.c picks it). A constant, so each pipeline holds one K loop. */
layout(constant_id = 3) const uint NARROW = 0u;
/* Floats of shared memory the activation staging may take (the host's rwkv7_vk_matvec_stage:
 * 0 = never, e.g. on CPU devices). With NT > 1 rows in the aligned pipelines, the workgroup copies
 * each sweep's NT x (LPR * UW) activations into shared memory once (coalesced vec4) and its row
 * slots read them there: from DRAM/L2 once per workgroup instead of once per slot, at the price of
 * two barriers per sweep. T = 1 reads x straight (one vector, no reuse across slots to win). The
 * arithmetic and its order are the same either way, so the results are bit-identical. */
layout(constant_id = 4) const uint STAGE_BUDGET = 0u;
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
layout(binding = 4) readonly buffer BXV0 { vec4 XV0[]; };
layout(binding = 5) readonly buffer BX1 { float X1[]; };
layout(binding = 5) readonly buffer BXV1 { vec4 XV1[]; };
layout(binding = 6) readonly buffer BX2 { float X2[]; };
layout(binding = 6) readonly buffer BXV2 { vec4 XV2[]; };
layout(binding = 7) readonly buffer BX3 { float X3[]; };
layout(binding = 7) readonly buffer BXV3 { vec4 XV3[]; };
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
/* Two qs words per lane (16 lanes per block): the block's scale words are read and unpacked once
 * per 16 weights instead of per 8. */
#define UW 16u
#define NG 4
uint upos(uint j, uint i) { return 64u * (j >> 2) + 8u * (j & 3u) + 4u * (i & 1u) + 32u * (i >> 1); }
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

/* Rows per row slot: each lane dequantizes its unit of NR rows (NR independent loads in flight)
 * and reads the matching activations once for all of them. One row for the dq32 types, whose
 * unit is 32 weights (registers: NR * NG vec4 of weights). vulkan/ops.c mv_nr() mirrors this. */
#if NG >= 8
#define NR 1u
#else
#define NR 4u
#endif
#define RPW (WG / LPR * NR) /* rows per workgroup */

/* Row sums of the subgroups (or the lanes, without subgroups): MAXT * NR sums per row slot. */
shared float red[MAXT * 4u * 32u];

/* The staged activations of one sweep (see STAGE_BUDGET): row t's LPR * UW floats from vec4 t * XSV.
 * Sized by specialization constants, so pipelines that do not stage hold one vec4. STAGED =
 * NT > 1 && ALIGNED && NT * LPR * UW <= STAGE_BUDGET && at least two row slots (one slot has no
 * one to share the copy with), spelled in integer arithmetic: glslc 2023.2's optimizer loses a
 * boolean or ?: specialization constant used in an array size. The quotient XS_FIT is at most 32
 * (budget <= 4096 floats), NT <= 8 and WG / LPR is 1, 2 or 4. */
const uint XS_FIT = STAGE_BUDGET / (NT * LPR * UW);
const uint XS_ON = ALIGNED * ((XS_FIT + 1023u) / 1024u) * ((NT + 6u) / 8u) * ((WG / LPR + 2u) / 4u);
const bool STAGED = XS_ON != 0u;
const uint XSV = LPR * UW / 4u;
shared vec4 xs[1u + XS_ON * (NT * XSV - 1u)];

#define WQ Wq
#define WV Wv0
#define XF X0
#define XV XV0
#define FN(n) n##_0
#include "matvec_unit.glsl"
#undef WQ
#undef WV
#undef XF
#undef XV
#undef FN
#if MAXN > 1
#define WQ Wq1
#define WV Wv1
#define XF X1
#define XV XV1
#define FN(n) n##_1
#include "matvec_unit.glsl"
#undef WQ
#undef WV
#undef XF
#undef XV
#undef FN
#define WQ Wq2
#define WV Wv2
#define XF X2
#define XV XV2
#define FN(n) n##_2
#include "matvec_unit.glsl"
#undef WQ
#undef WV
#undef XF
#undef XV
#undef FN
#define WQ Wq3
#define WV Wv3
#define XF X3
#define XV XV3
#define FN(n) n##_3
#include "matvec_unit.glsl"
#undef WQ
#undef WV
#undef XF
#undef XV
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
    uint row0 = rg * RPW + slot * NR; /* this slot's rows: row0 .. row0 + NR - 1 */
    uint rb = row_bytes();
    bool al = ((p.w_off[pi] | rb) & 15u) == 0u;
    bool xal = ((p.x_off[pi] | p.k) & 3u) == 0u;
    uint kb = s * p.k_split, ke = min(p.k, kb + p.k_split);
    float acc[MAXT][NR];
    for (uint t = 0u; t < NT; t++)
        for (uint r = 0u; r < NR; r++) acc[t][r] = 0.0;
    /* Rows past m repeat row m - 1 (every lane runs the same loop) and are never stored. */
    uint rowb[NR];
    for (uint r = 0u; r < NR; r++) rowb[r] = p.w_off[pi] + min(row0 + r, m - 1u) * rb;
    switch (pi) {
    case 0u: rowdot_0(pi, rowb, al, xal, kb, ke, lane, acc); break;
#if MAXN > 1
    case 1u: rowdot_1(pi, rowb, al, xal, kb, ke, lane, acc); break;
    case 2u: rowdot_2(pi, rowb, al, xal, kb, ke, lane, acc); break;
    default: rowdot_3(pi, rowb, al, xal, kb, ke, lane, acc); break;
#endif
    }
    /* Lane l < t * NR of the slot ends up with the sum of output (t, r) = (l / NR, l % NR) over
     * the slot's LPR lanes: one barrier (subgroups) or one short tree per t (shared memory). */
    float sum = 0.0;
    uint ot = lane / NR, orow = row0 + lane % NR;
#ifdef USE_SUBGROUP
    uint sg = gl_SubgroupSize, nsg = WG / sg; /* sg >= 4 (the host's condition): nsg <= 32 */
    for (uint t = 0u; t < NT; t++) {
        for (uint r = 0u; r < NR; r++) {
            float v = subgroupAdd(acc[t][r]);
            /* Subgroups are taken to be consecutive invocation ranges (as on every driver we know). */
            if (subgroupElect()) red[(t * NR + r) * nsg + lid / sg] = v;
        }
    }
    barrier();
    if (lane < NT * NR)
        for (uint g = 0u; g < LPR / sg; g++) sum += red[lane * nsg + slot * (LPR / sg) + g];
#else
    for (uint t = 0u; t < NT; t++) {
        for (uint r = 0u; r < NR; r++) red[r * WG + lid] = acc[t][r];
        barrier();
        for (uint w = LPR / 2u; w > 0u; w >>= 1) {
            if (lane < w)
                for (uint r = 0u; r < NR; r++) red[r * WG + lid] += red[r * WG + lid + w];
            barrier();
        }
        if (ot == t) sum = red[(lane % NR) * WG + slot * LPR];
        barrier();
    }
#endif
    if (lane < NT * NR && orow < m) {
        if (p.n_split == 1u)
            store(pi, p.d_off[pi] + ot * m + orow, sum, p.mode[pi]);
        else
            P[p_base + (s * p.t + ot) * m + orow] = sum;
    }
}
