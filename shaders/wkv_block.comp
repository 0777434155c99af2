#version 450
/* wkv_block.comp: the fused time-mix core of backend.h (wkv_block) in one dispatch, token-serial
 * (decode and short runs): per token, key_prep (kk = normalize(k * k_k), kmod = k * (1 + (a - 1)
 * * k_a)), the WKV-7 update of wkv7.comp, and wkv_out (GroupNorm of y * ln_w + ln_b, plus the
 * bonus (sum_j r_j kmod_j r_k_j) * v, times g). One workgroup of WKV_N invocations per (sequence,
 * head); invocation i owns state row i in registers and element i of the head's vectors; the
 * token's r, w, kmod, kk, a are staged in shared memory and the head's sums reduced there. kk,
 * kmod and y never leave the chip. Head sizes n <= WKV_N run here, the spare invocations idle.
 * Bindings: dst, state, slots, r, w, k, v, a, g, k_k, k_a, r_k, ln_w, ln_b. Push: c = C, rows =
 * n_seq, n = head size, n2 = n_tok, eps = GroupNorm epsilon. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "abi.h"

#define RED_WG WKV_N
layout(local_size_x = WKV_N) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_fused p; };
layout(binding = 0) writeonly buffer B0 { float Dst[]; };
layout(binding = 1) buffer B1 { float St[]; };
layout(binding = 2) readonly buffer B2 { int Slots[]; };
layout(binding = 3) readonly buffer B3 { float R[]; };
layout(binding = 4) readonly buffer B4 { float Wd[]; };
layout(binding = 5) readonly buffer B5 { float K[]; };
layout(binding = 6) readonly buffer B6 { float V[]; };
layout(binding = 7) readonly buffer B7 { float A[]; };
layout(binding = 8) readonly buffer B8 { float G[]; };
layout(binding = 9) readonly buffer B9 { float Kk[]; };
layout(binding = 10) readonly buffer B10 { float Ka[]; };
layout(binding = 11) readonly buffer B11 { float Rk[]; };
layout(binding = 12) readonly buffer B12 { float Lw[]; };
layout(binding = 13) readonly buffer B13 { float Lb[]; };
#include "reduce.glsl"

shared float sr[WKV_N], sw[WKV_N], sk[WKV_N], skk[WKV_N], sa[WKV_N];

void main() {
    uint n = p.n, n_head = p.c / n;
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * n_head) return; /* uniform per workgroup */
    uint s = gid / n_head, h = gid % n_head, i = gl_LocalInvocationID.x;
    bool live = i < n;
    uint hi = h * n + i; /* element of the per-channel vectors */
    uint slot = uint(Slots[p.off[2] + s]);
    uint sbase = p.off[1] + slot * (n_head * n * n) + h * n * n + i * n;
    float S[WKV_N];
    [[unroll]] for (uint j = 0u; j < WKV_N; j++) S[j] = (live && j < n) ? St[sbase + j] : 0.0;
    float k_k = live ? Kk[p.off[9] + hi] : 0.0, k_a = live ? Ka[p.off[10] + hi] : 0.0;
    float r_k = live ? Rk[p.off[11] + hi] : 0.0;
    for (uint t = 0u; t < p.n2; t++) {
        uint e = (s * p.n2 + t) * p.c + hi;
        float r = 0.0, w = 0.0, k = 0.0, v = 0.0, a = 0.0;
        if (live) {
            r = R[p.off[3] + e];
            w = Wd[p.off[4] + e];
            k = K[p.off[5] + e];
            v = V[p.off[6] + e];
            a = A[p.off[7] + e];
        }
        /* key_prep */
        float kx = k * k_k;
        float inv = 1.0 / max(sqrt(wg_sum(kx * kx)), 1e-12);
        float km = k * (1.0 + (a - 1.0) * k_a);
        sr[i] = r;
        sw[i] = w;
        sk[i] = km;
        skk[i] = kx * inv;
        sa[i] = a;
        barrier();
        /* the recurrence (wkv7.comp) */
        float dot_sa = 0.0;
        [[unroll]] for (uint j = 0u; j < WKV_N; j++) dot_sa -= skk[j] * S[j];
        float y = 0.0;
        [[unroll]] for (uint j = 0u; j < WKV_N; j++) {
            S[j] = S[j] * sw[j] + v * sk[j] + dot_sa * skk[j] * sa[j];
            y += S[j] * sr[j];
        }
        /* wkv_out: wg_sum's barriers also keep the shared vectors until every invocation used them */
        if (!live) y = 0.0;
        float mean = wg_sum(y) / float(n);
        float bonus = wg_sum(r * km * r_k);
        float d = live ? y - mean : 0.0;
        float rstd = inversesqrt(wg_sum(d * d) / float(n) + p.eps);
        if (live) {
            float o = d * rstd * Lw[p.off[12] + hi] + Lb[p.off[13] + hi] + bonus * v;
            Dst[p.off[0] + e] = o * G[p.off[8] + e];
        }
    }
    if (live)
        [[unroll]] for (uint j = 0u; j < WKV_N; j++)
            if (j < n) St[sbase + j] = S[j];
}
