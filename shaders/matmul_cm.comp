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
 * that list VK_NV_cooperative_matrix (NVIDIA's; vulkan/coopmat.c). Verified only on GPUs. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#ifdef CM_NV
#extension GL_NV_cooperative_matrix : require
#define CM_A fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_B fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
#define CM_C fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define CM_LOAD(mat, arr, off, stride) coopMatLoadNV(mat, arr, off, stride, false)
#define CM_STORE(mat, arr, off, stride) coopMatStoreNV(mat, arr, off, stride, false)
#define CM_MULADD(a, b, c) coopMatMulAddNV(a, b, c)
#else
#extension GL_KHR_cooperative_matrix : require
#define CM_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define CM_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define CM_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>
#define CM_LOAD(mat, arr, off, stride) coopMatLoad(mat, arr, off, stride, gl_CooperativeMatrixLayoutRowMajor)
#define CM_STORE(mat, arr, off, stride) coopMatStore(mat, arr, off, stride, gl_CooperativeMatrixLayoutRowMajor)
#define CM_MULADD(a, b, c) coopMatMulAdd(a, b, c)
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
shared float Cs[16][256];                  /* per-subgroup 16 x 16 scratch, [feature][row] */
shared float Rmax[TT][4];
shared float Rscale[TT];

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
    for (uint r = 0u; r < 4u; r++) acc[r] = CM_C(0.0);
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
                acc[r] = CM_MULADD(ah, bh, acc[r]);
                acc[r] = CM_MULADD(ah, bl, acc[r]);
                acc[r] = CM_MULADD(al, bh, acc[r]);
            }
        }
        barrier();
    }

    for (uint r = 0u; r < 4u; r++) {
        uint tile = sg + r * nsg;
        if (tile >= 16u) break;
        uint fi = tile >> 2, ti = tile & 3u;
        CM_STORE(acc[r], Cs[sg], 0u, 16u);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint i = gl_SubgroupInvocationID; i < 256u; i += gl_SubgroupSize) {
            uint tl = i >> 4, fl = i & 15u; /* consecutive lanes: consecutive features of one row */
            uint m = m0 + fi * 16u + fl, tr = ti * 16u + tl, t = t0 + tr;
            if (m >= p.m || t >= p.t) continue;
            uint o = p.d_off + t * p.m + m;
            float y = Cs[sg][fl * 16u + tl] / Rscale[tr];
            if (p.accumulate == 2u) y = max(y, 0.0) * max(y, 0.0); /* ffn_key: relu^2 */
            D[o] = p.accumulate == 1u ? D[o] + y : y;
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
    }
}
