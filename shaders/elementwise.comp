#version 450
/* elementwise.comp: the per-element ops of backend.h, one OP_<X> define per variant, one
 * invocation per element (linear id over grid x and y). All fp32; every output element is read
 * and written by the same invocation, so dst may alias an input where backend.h allows it.
 *   OP_TOKEN_SHIFT: dst[j] (c, rows) = x + (prev - x) * mix[j], prev = row - 1 of the sequence or
 *                   state row slots[s] (n = n_tok, n2 = n_mix). Bindings: dst, x, mix, state, slots.
 *   OP_STATE_STORE: state row slots[s] = last row of sequence s of x (n = n_tok, rows = n_seq).
 *                   Runs as a second dispatch after OP_TOKEN_SHIFT read the old state.
 *   OP_UNARY: dst = fn(x + bias); n2 = 1 when a bias is bound. Bindings: dst, x, bias.
 *   OP_BINARY: dst = a (fn) b, b of n2 rows (1 = broadcast). Bindings: dst, a, b.
 *   OP_MIX: dst = a + (b - a) * t. Bindings: dst, a, b, t. */
#extension GL_GOOGLE_include_directive : require
#include "abi.h"

layout(local_size_x = RWKV7_VK_WG_ELEM) in;
layout(push_constant) uniform pc_block { rwkv7_vk_pc_elem p; };
layout(binding = 0) buffer B0 { float A0[]; };
layout(binding = 1) buffer B1 { float A1[]; };
layout(binding = 2) buffer B2 { float A2[]; };
layout(binding = 3) buffer B3 { float A3[]; };
layout(binding = 4) readonly buffer B4 { int I4[]; };

void main() {
    uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * RWKV7_VK_WG_ELEM;
    uint c = id % p.c, row = id / p.c;
    if (row >= p.rows) return;
#if defined(OP_TOKEN_SHIFT)
    uint s = row / p.n, t = row % p.n;
    float x = A1[p.off[1] + id];
    float prev = t > 0u ? A1[p.off[1] + id - p.c] : A3[p.off[3] + uint(I4[p.off[4] + s]) * p.c + c];
    float d = prev - x;
    for (uint j = 0u; j < p.n2; j++)
        A0[p.off[0] + j * p.rows * p.c + id] = x + d * A2[p.off[2] + j * p.c + c];
#elif defined(OP_STATE_STORE)
    /* row = sequence here */
    A3[p.off[3] + uint(I4[p.off[4] + row]) * p.c + c] = A1[p.off[1] + (row * p.n + p.n - 1u) * p.c + c];
#elif defined(OP_UNARY)
    float z = A1[p.off[1] + id] + (p.n2 != 0u ? A2[p.off[2] + c] : 0.0);
    float y;
    if (p.fn == 0u) y = 1.0 / (1.0 + exp(-z));
    else if (p.fn == 1u) y = tanh(z);
    else if (p.fn == 2u) { float r = max(z, 0.0); y = r * r; }
    else y = exp(-0.606531 / (1.0 + exp(-z)));
    A0[p.off[0] + id] = y;
#elif defined(OP_BINARY)
    float a = A1[p.off[1] + id];
    float b = A2[p.off[2] + (p.n2 == 1u ? c : id)];
    A0[p.off[0] + id] = p.fn == 0u ? a + b : a * b;
#elif defined(OP_MIX)
    float a = A1[p.off[1] + id];
    A0[p.off[0] + id] = a + (A2[p.off[2] + id] - a) * A3[p.off[3] + id];
#else
#error "elementwise.comp: no OP_<X> defined"
#endif
}
