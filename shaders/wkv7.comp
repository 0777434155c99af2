#version 450
/* wkv7.comp: the WKV-7 recurrence of backend.h, token-serial:
 *   sa_i = sum_j (-kk_j) S[i][j];  S[i][j] = S[i][j] w_j + v_i k_j + sa_i kk_j a_j;  y_i = sum_j S[i][j] r_j
 * One workgroup of WKV_N invocations per (sequence, head); invocation i owns state row i in
 * registers (fp32, loaded once, stored once), the token's r, w, k, kk, a are staged in shared
 * memory (two barriers per token). Head sizes n <= WKV_N run here, the spare invocations idle.
 * Bindings: y, state, r, w, k, v, kk, a, slots; state rows (H*n*n) laid out [h][i][j].
 * Push (abi.h rwkv7_vk_pc_wkv, shared with the chunked passes; t0 and nt unused here): c = C,
 * rows = n_seq, n = head size, n2 = n_tok, fn = offset of slots (ints). */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "abi.h"

layout(local_size_x = WKV_N) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_wkv p; };
layout(binding = 0) writeonly buffer B0 { float Y[]; };
layout(binding = 1) buffer B1 { float St[]; };
layout(binding = 2) readonly buffer B2 { float R[]; };
layout(binding = 3) readonly buffer B3 { float Wd[]; };
layout(binding = 4) readonly buffer B4 { float K[]; };
layout(binding = 5) readonly buffer B5 { float V[]; };
layout(binding = 6) readonly buffer B6 { float KK[]; };
layout(binding = 7) readonly buffer B7 { float A[]; };
layout(binding = 8) readonly buffer B8 { int Slots[]; };

shared float sr[WKV_N], sw[WKV_N], sk[WKV_N], skk[WKV_N], sa[WKV_N];

void main() {
    uint n = p.n, n_head = p.c / n;
    uint gid = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (gid >= p.rows * n_head) return;
    uint s = gid / n_head, h = gid % n_head, i = gl_LocalInvocationID.x;
    bool live = i < n;
    uint slot = uint(Slots[p.fn + s]);
    uint sbase = p.off[1] + slot * (n_head * n * n) + h * n * n + i * n;
    float S[WKV_N];
    [[unroll]] for (uint j = 0u; j < WKV_N; j++) S[j] = (live && j < n) ? St[sbase + j] : 0.0;
    for (uint t = 0u; t < p.n2; t++) {
        uint e = (s * p.n2 + t) * p.c + h * n + i;
        float v = 0.0;
        if (live) {
            sr[i] = R[p.off[2] + e];
            sw[i] = Wd[p.off[3] + e];
            sk[i] = K[p.off[4] + e];
            skk[i] = KK[p.off[6] + e];
            sa[i] = A[p.off[7] + e];
            v = V[p.off[5] + e];
        } else {
            sr[i] = 0.0; sw[i] = 0.0; sk[i] = 0.0; skk[i] = 0.0; sa[i] = 0.0;
        }
        barrier();
        float dot_sa = 0.0;
        [[unroll]] for (uint j = 0u; j < WKV_N; j++) dot_sa -= skk[j] * S[j];
        float y = 0.0;
        [[unroll]] for (uint j = 0u; j < WKV_N; j++) {
            S[j] = S[j] * sw[j] + v * sk[j] + dot_sa * skk[j] * sa[j];
            y += S[j] * sr[j];
        }
        if (live) Y[p.off[0] + e] = y;
        barrier();
    }
    if (live)
        [[unroll]] for (uint j = 0u; j < WKV_N; j++)
            if (j < n) St[sbase + j] = S[j];
}
