#version 450
/* matmul_cm.comp: the prefill matmul of matmul.comp on cooperative matrices (tensor cores):
 * dst (m, t) (=|+=) W (k, m) x (k, t), fp16 inputs, fp32 accumulation. Selected by
 * vulkan/coopmat.c when the device lists fp16 x fp16 + fp32 16 x 16 x 16 at subgroup scope.
 * Accuracy: one fp16 product per weight would round both operands to 11 bits (NMSE ~1e-7 per
 * matmul, and fp16 overflows on the FFN value input, relu(k)^2); so each operand is split in two
 * fp16 halves, hi = fp16(v) and lo = fp16(v - hi), and the tile sums hi*hi + hi*lo + lo*hi
 * (the dropped lo*lo is 2^-22 of the product): about 22 bits, close to fp32. Activations are
 * first scaled per row by a power of two that puts the row's largest |x| just under 2^14 (exact,
 * undone in the epilogue), so neither half overflows or goes subnormal. tests/test_vk_coopmat.c
 * emulates these products on the host and measures the error. Weights above fp16's range (65504)
 * would overflow: no real model has them.
 * Workgroup: 256 invocations, a 64 x 64 output tile (4 x 4 matrices of 16 x 16), K steps of 32
 * decoded like matmul.comp (every invocation one 8-element slice); subgroup s owns matrices
 * s, s + nsg, ... (at most 4: subgroups of 64 or fewer invocations). Epilogue per matrix through a
 * per-subgroup 16 x 16 fp32 scratch: the row scale, masking of ragged edges, accumulate/relu^2.
 * Shared memory: 8 + 8 + 16 KiB + scales (the pick requires it of the device).
 * CM_NV builds the same code on GL_NV_cooperative_matrix (row-major loads and stores, the same
 * shapes and types): the flavour built where glslc lacks GL_KHR_cooperative_matrix, run on devices
 * that list VK_NV_cooperative_matrix (NVIDIA's; vulkan/coopmat.c). Verified only on GPUs.
 * CM_EMU builds it with the cooperative matrices emulated: a test mode (RWKV7_VK_COOPMAT=emulate,
 * test_ops_vk_coopmat_emu) that runs everything else of this shader (the row scales, the hi/lo
 * split, tile indexing, the epilogue) on devices without cooperative matrices, lavapipe in CI.
 * An A/B operand is a view of its shared tile (array, offset, stride: what the load was given);
 * an accumulator is spread over its subgroup the way the epilogue walks it (a cooperative
 * matrix's distribution is the implementation's to choose): the epilogue's index i (lane i %
 * subgroup size, slot i / subgroup size) holds element (row i % 16, column i / 16), which is what
 * it reads from Cs after the row-major store with stride 16. Each lane computes its elements'
 * 16-long dots in fp32 (exact products of fp16 operands). No Cs then (lavapipe has 32 KiB of
 * shared memory). */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#if defined(CM_EMU)
struct cm_view {
    uint arr, off, stride; /* arr: CM_ARR_<name> of the shared tile */
};
struct cm_acc {
    float e[64]; /* slot s: element s * subgroup size + lane (subgroups of 4 or more) */
};
#define CM_A cm_view
#define CM_B cm_view
#define CM_C cm_acc
#define CM_ARR_Wh 0u
#define CM_ARR_Wl 1u
#define CM_ARR_Xh 2u
#define CM_ARR_Xl 3u
#define CM_LOAD(mat, arr, o, s) mat = cm_view(CM_ARR_##arr, o, s)
#define CM_MAD(c, a, b) cm_mad(c, a, b)
#define CM_ZERO(mat) for (uint ci_ = 0u; ci_ < 64u; ci_++) mat.e[ci_] = 0.0
#define CM_ELEM(mat, i) mat.e[(i) / gl_SubgroupSize]
#elif defined(CM_NV)
#extension GL_NV_cooperative_matrix : require
#define CM_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_C fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define CM_LOAD(mat, arr, off, stride) coopMatLoadNV(mat, arr, off, stride, false)
#define CM_STORE(mat, arr, off, stride) coopMatStoreNV(mat, arr, off, stride, false)
#define CM_MAD(c, a, b) c = coopMatMulAddNV(a, b, c)
#define CM_ZERO(mat) mat = CM_C(0.0)
#else
#extension GL_KHR_cooperative_matrix : require
#define CM_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define CM_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define CM_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>
#define CM_LOAD(mat, arr, off, stride) coopMatLoad(mat, arr, off, stride, gl_CooperativeMatrixLayoutRowMajor)
#define CM_STORE(mat, arr, off, stride) coopMatStore(mat, arr, off, stride, gl_CooperativeMatrixLayoutRowMajor)
#define CM_MAD(c, a, b) c = coopMatMulAdd(a, b, c)
#define CM_ZERO(mat) mat = CM_C(0.0)
#endif
#include "abi.h"

#define TM RWKV7_VK_MM_TILE_M
#define TT RWKV7_VK_MM_TILE_T
#define TK RWKV7_VK_MM_TILE_K
#define WG RWKV7_VK_WG_MM
layout(local_size_x = WG) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_matmul p; };
layout(binding = 0) readonly buffer BW { uint Wq[]; };
layout(binding = 1) readonly buffer BX { float X[]; };
layout(binding = 2) buffer BD { float D[]; };
layout(binding = 3) readonly buffer BT { uint Tab[]; };
#include "dequant.glsl"

shared float16_t Wh[TM * TK], Wl[TM * TK]; /* A: [feature][k] */
shared float16_t Xh[TK * TT], Xl[TK * TT]; /* B: [k][row] */
#ifndef CM_EMU
shared float Cs[16][256];                  /* per-subgroup 16 x 16 scratch, [feature][row] */
#endif
shared float Rmax[TT][4];
shared float Rscale[TT];

#ifdef CM_EMU
float cm_rd(uint arr, uint i) {
    switch (arr) {
    case 0u: return float(Wh[i]);
    case 1u: return float(Wl[i]);
    case 2u: return float(Xh[i]);
    default: return float(Xl[i]);
    }
}
/* c += a b for this lane's elements of c (index i: element (i % 16, i / 16), see CM_EMU above). */
void cm_mad(inout cm_acc c, cm_view a, cm_view b) {
    for (uint i = gl_SubgroupInvocationID; i < 256u; i += gl_SubgroupSize) {
        uint row = i & 15u, col = i >> 4;
        float s = c.e[i / gl_SubgroupSize];
        for (uint k = 0u; k < 16u; k++)
            s = fma(cm_rd(a.arr, a.off + row * a.stride + k), cm_rd(b.arr, b.off + k * b.stride + col), s);
        c.e[i / gl_SubgroupSize] = s;
    }
}
#endif

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.x * TM, t0 = gl_WorkGroupID.y * TT;
    uint sg = gl_SubgroupID, nsg = gl_NumSubgroups;

    /* Row scales: 4 invocations per row take the row's largest |x|. */
    {
        uint r = tid >> 2, part = tid & 3u, t = t0 + r;
        float mx = 0.0;
        if (t < p.t)
            for (uint e = part; e < p.k; e += 4u) mx = max(mx, abs(X[p.x_off + t * p.k + e]));
        Rmax[r][part] = mx;
        barrier();
        if (tid < TT) {
            float m = max(max(Rmax[tid][0], Rmax[tid][1]), max(Rmax[tid][2], Rmax[tid][3]));
            int ex;
            frexp(m, ex); /* m < 2^ex */
            Rscale[tid] = m > 0.0 ? exp2(float(clamp(14 - ex, -100, 100))) : 1.0;
        }
        barrier();
    }

    CM_C acc[4];
    for (uint r = 0u; r < 4u; r++) CM_ZERO(acc[r]);
    uint wr = tid >> 2, wq = tid & 3u, wrow = m0 + wr;
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
        for (uint j = 0u; j < 8u; j++) {
            float16_t h = float16_t(v[j]);
            Wh[wr * TK + 8u * wq + j] = h;
            Wl[wr * TK + 8u * wq + j] = float16_t(v[j] - float(h));
        }
        for (uint i = tid; i < TT * TK; i += WG) {
            uint tt = i / TK, kk = i % TK;
            uint t = t0 + tt, e = e0 + kk;
            float x = (t < p.t && e < p.k) ? X[p.x_off + t * p.k + e] * Rscale[tt] : 0.0;
            float16_t h = float16_t(x);
            Xh[kk * TT + tt] = h;
            Xl[kk * TT + tt] = float16_t(x - float(h));
        }
        barrier();
        for (uint r = 0u; r < 4u; r++) {
            uint tile = sg + r * nsg; /* subgroup-uniform */
            if (tile >= 16u) break;
            uint fi = tile >> 2, ti = tile & 3u;
            for (uint kk = 0u; kk < TK; kk += 16u) {
                CM_A ah, al;
                CM_B bh, bl;
                CM_LOAD(ah, Wh, fi * 16u * TK + kk, TK);
                CM_LOAD(al, Wl, fi * 16u * TK + kk, TK);
                CM_LOAD(bh, Xh, kk * TT + ti * 16u, TT);
                CM_LOAD(bl, Xl, kk * TT + ti * 16u, TT);
                CM_MAD(acc[r], ah, bh);
                CM_MAD(acc[r], ah, bl);
                CM_MAD(acc[r], al, bh);
            }
        }
        barrier();
    }

    for (uint r = 0u; r < 4u; r++) {
        uint tile = sg + r * nsg;
        if (tile >= 16u) break;
        uint fi = tile >> 2, ti = tile & 3u;
#ifndef CM_EMU
        CM_STORE(acc[r], Cs[sg], 0u, 16u);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
#endif
        for (uint i = gl_SubgroupInvocationID; i < 256u; i += gl_SubgroupSize) {
            uint tl = i >> 4, fl = i & 15u; /* consecutive lanes: consecutive features of one row */
            uint m = m0 + fi * 16u + fl, tr = ti * 16u + tl, t = t0 + tr;
            if (m >= p.m || t >= p.t) continue;
            uint o = p.d_off + t * p.m + m;
#ifdef CM_EMU
            float y = CM_ELEM(acc[r], i) / Rscale[tr]; /* element (fl, tl) */
#else
            float y = Cs[sg][fl * 16u + tl] / Rscale[tr];
#endif
            if (p.accumulate == 2u) y = max(y, 0.0) * max(y, 0.0); /* ffn_key: relu^2 */
            D[o] = p.accumulate == 1u ? D[o] + y : y;
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
    }
}
