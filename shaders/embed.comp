#version 450
/* embed.comp: dst (c, t) = dequantized row tokens[t] of the table (c, n_rows).
 * One invocation per 32-element chunk of an output row (linear id over x and y of the grid).
 * Token ids are clamped to n_rows - 1 so a bad id cannot read outside the table (the host checks
 * ids < V before they reach the device). */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

layout(local_size_x = 64) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_embed p; };
layout(binding = 0) readonly buffer BW { uint Wq[]; };
layout(binding = 1) readonly buffer BI { int Tok[]; };
layout(binding = 2) writeonly buffer BD { float D[]; };
layout(binding = 3) readonly buffer BT { uint Tab[]; };
#include "dequant.glsl"

void main() {
    uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    uint n_chunks = (p.c + 31u) / 32u;
    uint t = id / n_chunks, c = id % n_chunks;
    if (t >= p.t) return;
    uint tok = uint(clamp(Tok[p.tok_off + t], 0, int(p.n_rows) - 1));
    float v[32];
    dq32(p.w_off + tok * p.row_bytes + (c / CPB) * BB, c % CPB, v);
    uint e0 = c * 32u, jn = min(32u, p.c - e0);
    for (uint j = 0u; j < jn; j++) D[p.d_off + t * p.c + e0 + j] = v[j];
}
