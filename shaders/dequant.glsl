/* dequant.glsl: weight decoding for matvec/matmul/embed/lora_up, one TYPE_<X> define per variant.
 * One decoder per type: dq8(bb, sub, q, nvalid, v) writes elements 8q .. 8q+7 of 32-element chunk
 * `sub` of the block starting at byte bb of Wq[] (the prefill tiles give each invocation one such
 * slice of a 64 x 32 weight tile, so all decode and nothing decoded is thrown away); float weights
 * read only the first nvalid elements (a row tail when k is not a multiple of 32: the rest are 0,
 * nothing past the row is read), block types ignore nvalid (k is a block multiple). dq32(bb, sub,
 * v) is the whole chunk, its four slices. Tensors are only 2-byte aligned, so every field is read
 * with 16-bit granularity (rd16/rd32 take even byte offsets). Formulas: quant-formats.md section
 * 3; grid tables live in Tab[] at the RWKV7_VK_TAB_* word offsets of abi.h. Defines QK (elements
 * per block), BB (bytes per block) and CPB (chunks per block). Decoding is exact in fp32 (same
 * products as ggml). */

uint rd16(uint b) { return (Wq[b >> 2] >> ((b & 2u) << 3)) & 0xFFFFu; }
uint rd32(uint b) {
    uint w = b >> 2;
    return (b & 2u) == 0u ? Wq[w] : ((Wq[w] >> 16) | (Wq[w + 1u] << 16));
}
uint rd8(uint b) { return (Wq[b >> 2] >> ((b & 3u) << 3)) & 0xFFu; }
float rdf16(uint b) { return unpackHalf2x16(rd16(b)).x; }
/* Signed byte n (0..3) of word u. */
int sbyte(uint u, uint n) { return int(u << (24u - 8u * n)) >> 24; }
/* 7 stored sign bits + parity bit (quant-formats.md 3.0): bit j set = negate element j. */
uint signs8(uint s7) { return s7 | ((uint(bitCount(s7)) & 1u) << 7); }
float sgn(uint s, uint j) { return ((s >> j) & 1u) != 0u ? -1.0 : 1.0; }

const float kvalues_iq4nl[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
                                          1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);

#if defined(TYPE_F32) || defined(TYPE_F16) || defined(TYPE_BF16)
#define FLOAT_WEIGHTS 1
#define QK 32u
#endif

#if defined(TYPE_F32)
#define BB 128u
#elif defined(TYPE_F16)
#define BB 64u
#elif defined(TYPE_BF16)
#define BB 64u
#elif defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_IQ4_NL)
#define QK 32u
#if defined(TYPE_Q4_1)
#define BB 20u
#else
#define BB 18u
#endif
#elif defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
#define QK 32u
#if defined(TYPE_Q5_1)
#define BB 24u
#else
#define BB 22u
#endif
#elif defined(TYPE_Q8_0)
#define QK 32u
#define BB 34u
#elif defined(TYPE_Q2_K)
#define QK 256u
#define BB 84u
#elif defined(TYPE_Q3_K)
#define QK 256u
#define BB 110u
float q3k_scale(uint bb, uint k) {
    uint low4 = k < 8u ? rd8(bb + 96u + k) & 15u : rd8(bb + 96u + k - 8u) >> 4;
    uint high2 = (rd8(bb + 104u + (k & 3u)) >> (2u * (k >> 2))) & 3u;
    return float(int(low4 | (high2 << 4)) - 32);
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#define QK 256u
#if defined(TYPE_Q5_K)
#define BB 176u
#else
#define BB 144u
#endif
/* get_scale_min_k4 of quant-formats.md 3.5 (scales at bb + 4). */
void k4_scale_min(uint bb, uint j, out float sc, out float mn) {
    uint s = bb + 4u;
    if (j < 4u) {
        sc = float(rd8(s + j) & 63u);
        mn = float(rd8(s + j + 4u) & 63u);
    } else {
        sc = float((rd8(s + j + 4u) & 15u) | ((rd8(s + j - 4u) >> 6) << 4));
        mn = float((rd8(s + j + 4u) >> 4) | ((rd8(s + j) >> 6) << 4));
    }
}
#elif defined(TYPE_Q6_K)
#define QK 256u
#define BB 210u
#elif defined(TYPE_IQ4_XS)
#define QK 256u
#define BB 136u
#elif defined(TYPE_IQ2_XXS) || defined(TYPE_IQ2_XS) || defined(TYPE_IQ2_S)
#define QK 256u
#if defined(TYPE_IQ2_XXS)
#define BB 66u
#elif defined(TYPE_IQ2_XS)
#define BB 74u
#else
#define BB 82u
#endif
#elif defined(TYPE_IQ3_XXS) || defined(TYPE_IQ3_S)
#define QK 256u
#if defined(TYPE_IQ3_XXS)
#define BB 98u
#else
#define BB 110u
#endif
#elif defined(TYPE_IQ1_S) || defined(TYPE_IQ1_M)
#define QK 256u
#if defined(TYPE_IQ1_S)
#define BB 50u
#else
#define BB 56u
#endif
#else
#error "dequant.glsl: no TYPE_<X> defined"
#endif

/* Chunks of 32 per block. */
#define CPB (QK / 32u)

#if defined(TYPE_F32)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    for (uint j = 0u; j < 8u; j++) v[j] = j < nvalid ? uintBitsToFloat(rd32(bb + 32u * q + 4u * j)) : 0.0;
}
#elif defined(TYPE_F16) || defined(TYPE_BF16)
float f16or_bf16(uint h) {
#if defined(TYPE_F16)
    return unpackHalf2x16(h).x;
#else
    return uintBitsToFloat(h << 16);
#endif
}
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    uint b = bb + 16u * q;
    if (nvalid >= 8u) {
        for (uint j = 0u; j < 4u; j++) {
            uint u = rd32(b + 4u * j);
            v[2u * j] = f16or_bf16(u & 0xFFFFu);
            v[2u * j + 1u] = f16or_bf16(u >> 16);
        }
    } else {
        for (uint j = 0u; j < 8u; j++) v[j] = j < nvalid ? f16or_bf16(rd16(b + 2u * j)) : 0.0;
    }
}
#elif defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_IQ4_NL) || defined(TYPE_Q5_0) || \
    defined(TYPE_Q5_1) || defined(TYPE_IQ4_XS)
/* Element e of these 32-blocks: nibble e >> 4 of quant byte e & 15 (+ bit e of qh for Q5). */
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
#if defined(TYPE_IQ4_XS)
    uint ls = ((rd8(bb + 4u + (sub >> 1)) >> (4u * (sub & 1u))) & 15u) | (((rd16(bb + 2u) >> (2u * sub)) & 3u) << 4);
    float d = rdf16(bb) * float(int(ls) - 32);
    uint qs = bb + 8u + 16u * sub;
#elif defined(TYPE_Q4_1) || defined(TYPE_Q5_1)
    float d = rdf16(bb), m = rdf16(bb + 2u);
#if defined(TYPE_Q5_1)
    uint qh = rd32(bb + 4u), qs = bb + 8u;
#else
    uint qs = bb + 4u;
#endif
#else
    float d = rdf16(bb);
#if defined(TYPE_Q5_0)
    uint qh = rd32(bb + 2u), qs = bb + 6u;
#else
    uint qs = bb + 2u;
#endif
#endif
    uint shift = 4u * (q >> 1);
    for (uint i = 0u; i < 2u; i++) {
        uint u = rd32(qs + 8u * (q & 1u) + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            uint l = 4u * i + n, e = 8u * q + l;
            uint x = (u >> (8u * n + shift)) & 15u;
#if defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
            x |= ((qh >> e) & 1u) << 4;
#endif
#if defined(TYPE_Q4_0)
            v[l] = (float(x) - 8.0) * d;
#elif defined(TYPE_Q5_0)
            v[l] = (float(x) - 16.0) * d;
#elif defined(TYPE_Q4_1) || defined(TYPE_Q5_1)
            v[l] = float(x) * d + m;
#else
            v[l] = d * kvalues_iq4nl[x];
#endif
        }
    }
}
#elif defined(TYPE_Q8_0)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    float d = rdf16(bb);
    for (uint i = 0u; i < 2u; i++) {
        uint u = rd32(bb + 2u + 8u * q + 4u * i);
        for (uint n = 0u; n < 4u; n++) v[4u * i + n] = float(sbyte(u, n)) * d;
    }
}
#elif defined(TYPE_Q2_K)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    uint h = sub >> 2, g = sub & 3u;
    uint s = rd8(bb + 2u * sub + (q >> 1));
    float dl = rdf16(bb + 80u) * float(s & 15u), ml = rdf16(bb + 82u) * float(s >> 4);
    for (uint i = 0u; i < 2u; i++) {
        uint u = rd32(bb + 16u + 32u * h + 8u * q + 4u * i);
        for (uint n = 0u; n < 4u; n++) v[4u * i + n] = dl * float((u >> (8u * n + 2u * g)) & 3u) - ml;
    }
}
#elif defined(TYPE_Q3_K)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    uint h = sub >> 2, g = sub & 3u;
    float dl = rdf16(bb + 108u) * q3k_scale(bb, 2u * sub + (q >> 1));
    for (uint i = 0u; i < 2u; i++) {
        uint u = rd32(bb + 32u + 32u * h + 8u * q + 4u * i);
        uint hm = rd32(bb + 8u * q + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            int x = int((u >> (8u * n + 2u * g)) & 3u) - (((hm >> (8u * n + sub)) & 1u) != 0u ? 0 : 4);
            v[4u * i + n] = dl * float(x);
        }
    }
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    float sc, mn;
    k4_scale_min(bb, sub, sc, mn);
    float dl = rdf16(bb) * sc, ml = rdf16(bb + 2u) * mn;
    uint c = sub >> 1, shift = (sub & 1u) * 4u;
#if defined(TYPE_Q5_K)
    uint qs = bb + 48u;
#else
    uint qs = bb + 16u;
#endif
    for (uint i = 0u; i < 2u; i++) {
        uint u = rd32(qs + 32u * c + 8u * q + 4u * i);
#if defined(TYPE_Q5_K)
        uint hb = rd32(bb + 16u + 8u * q + 4u * i);
#endif
        for (uint n = 0u; n < 4u; n++) {
            uint x = (u >> (8u * n + shift)) & 15u;
#if defined(TYPE_Q5_K)
            x |= ((hb >> (8u * n + sub)) & 1u) << 4;
#endif
            v[4u * i + n] = dl * float(x) - ml;
        }
    }
}
#elif defined(TYPE_Q6_K)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    uint h = sub >> 2, g = sub & 3u;
    float dl = rdf16(bb + 208u) * float(sbyte(rd16(bb + 192u + 2u * sub), q >> 1));
    for (uint i = 0u; i < 2u; i++) {
        uint ul = rd32(bb + 64u * h + 32u * (g & 1u) + 8u * q + 4u * i);
        uint uh = rd32(bb + 128u + 32u * h + 8u * q + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            uint lo4 = (ul >> (8u * n + (g < 2u ? 0u : 4u))) & 15u;
            uint hi2 = (uh >> (8u * n + 2u * g)) & 3u;
            v[4u * i + n] = dl * float(int(lo4 | (hi2 << 4)) - 32);
        }
    }
}
#elif defined(TYPE_IQ2_XXS) || defined(TYPE_IQ2_XS) || defined(TYPE_IQ2_S)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    float d = rdf16(bb);
    uint l = q;
#if defined(TYPE_IQ2_XXS)
    uint a0 = rd32(bb + 2u + 8u * sub), a1 = rd32(bb + 6u + 8u * sub);
    float db = d * (0.5 + float(a1 >> 28)) * 0.25;
    uint idx = (a0 >> (8u * l)) & 0xFFu, s = signs8((a1 >> (7u * l)) & 127u);
    uint tab = RWKV7_VK_TAB_IQ2XXS;
#else
    uint sc = rd8(bb + (BB - 8u) + sub);
    float db = d * (0.5 + float((sc >> (4u * (l >> 1))) & 15u)) * 0.25;
#if defined(TYPE_IQ2_XS)
    uint w = rd16(bb + 2u + 2u * (4u * sub + l));
    uint idx = w & 511u, s = signs8(w >> 9);
    uint tab = RWKV7_VK_TAB_IQ2XS;
#else
    uint idx = rd8(bb + 2u + 4u * sub + l) | (((rd8(bb + 66u + sub) >> (2u * l)) & 3u) << 8);
    uint s = rd8(bb + 34u + 4u * sub + l);
    uint tab = RWKV7_VK_TAB_IQ2S;
#endif
#endif
    uint g0 = Tab[tab + 2u * idx], g1 = Tab[tab + 2u * idx + 1u];
    for (uint j = 0u; j < 4u; j++) {
        v[j] = db * float((g0 >> (8u * j)) & 0xFFu) * sgn(s, j);
        v[j + 4u] = db * float((g1 >> (8u * j)) & 0xFFu) * sgn(s, j + 4u);
    }
}
#elif defined(TYPE_IQ3_XXS) || defined(TYPE_IQ3_S)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    float d = rdf16(bb);
    uint l = q;
#if defined(TYPE_IQ3_XXS)
    uint sw = rd32(bb + 66u + 4u * sub);
    float db = d * (0.5 + float(sw >> 28)) * 0.5;
    uint s = signs8((sw >> (7u * l)) & 127u);
    uint g0 = Tab[RWKV7_VK_TAB_IQ3XXS + rd8(bb + 2u + 8u * sub + 2u * l)];
    uint g1 = Tab[RWKV7_VK_TAB_IQ3XXS + rd8(bb + 3u + 8u * sub + 2u * l)];
#else
    float db = d * float(1u + 2u * ((rd8(bb + 106u + (sub >> 1)) >> (4u * (sub & 1u))) & 15u));
    uint qh = rd8(bb + 66u + sub);
    uint s = rd8(bb + 74u + 4u * sub + l);
    uint i0 = rd8(bb + 2u + 8u * sub + 2u * l) | (((qh >> (2u * l)) & 1u) << 8);
    uint i1 = rd8(bb + 3u + 8u * sub + 2u * l) | (((qh >> (2u * l + 1u)) & 1u) << 8);
    uint g0 = Tab[RWKV7_VK_TAB_IQ3S + i0], g1 = Tab[RWKV7_VK_TAB_IQ3S + i1];
#endif
    for (uint j = 0u; j < 4u; j++) {
        v[j] = db * float((g0 >> (8u * j)) & 0xFFu) * sgn(s, j);
        v[j + 4u] = db * float((g1 >> (8u * j)) & 0xFFu) * sgn(s, j + 4u);
    }
}
#elif defined(TYPE_IQ1_S) || defined(TYPE_IQ1_M)
void dq8(uint bb, uint sub, uint q, uint nvalid, out float v[8]) {
    uint l = q;
#if defined(TYPE_IQ1_S)
    uint hw = rd16(bb + 34u + 2u * sub);
    float dl = rdf16(bb) * float(2u * ((hw >> 12) & 7u) + 1u);
    uint idx = rd8(bb + 2u + 4u * sub + l) | (((hw >> (3u * l)) & 7u) << 8);
    float delta = (hw & 0x8000u) != 0u ? -0.125 : 0.125;
#else
    uint sc0 = rd16(bb + 48u), sc1 = rd16(bb + 50u), sc2 = rd16(bb + 52u), sc3 = rd16(bb + 54u);
    float d = unpackHalf2x16((sc0 >> 12) | ((sc1 >> 12) << 4) | ((sc2 >> 12) << 8) | ((sc3 >> 12) << 12)).x;
    uint w = rd16(bb + 48u + 2u * (sub >> 1)) >> (6u * (sub & 1u));
    float dl = d * float(2u * ((w >> (3u * (l >> 1))) & 7u) + 1u);
    uint nib = (rd8(bb + 32u + 2u * sub + (l >> 1)) >> (4u * (l & 1u))) & 15u;
    uint idx = rd8(bb + 4u * sub + l) | ((nib & 7u) << 8);
    float delta = (nib & 8u) != 0u ? -0.125 : 0.125;
#endif
    uint g0 = Tab[RWKV7_VK_TAB_IQ1S + 2u * idx], g1 = Tab[RWKV7_VK_TAB_IQ1S + 2u * idx + 1u];
    for (uint j = 0u; j < 4u; j++) {
        v[j] = dl * (float(sbyte(g0, j)) + delta);
        v[j + 4u] = dl * (float(sbyte(g1, j)) + delta);
    }
}
#else
#error "dequant.glsl: no dq8 for this TYPE_<X>"
#endif

/* The whole chunk: its four slices. One decoder per type, so the matvec, embedding and LoRA kernels
 * (dq32) and the prefill tiles (dq8) decode every weight to the same float. */
void dq32(uint bb, uint sub, out float v[32]) {
    for (uint q = 0u; q < 4u; q++) {
        float s[8];
        dq8(bb, sub, q, 8u, s);
        for (uint j = 0u; j < 8u; j++) v[8u * q + j] = s[j];
    }
}
