/* dequant.glsl: weight decoding for matvec/matmul/embed, one TYPE_<X> define per variant.
 * dq32(bb, sub, v) writes the 32 floats of 32-element chunk `sub` of the block starting at byte
 * bb of Wq[] (uint words; tensors are only 2-byte aligned, so every field is read with 16-bit
 * granularity: rd16/rd32 take even byte offsets). Formulas: quant-formats.md section 3; grid
 * tables live in Tab[] at the RWKV7_VK_TAB_* word offsets of abi.h. Defines QK (elements per
 * block) and BB (bytes per block). Decoding is exact in fp32 (same products as ggml). */

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
void dq32(uint bb, uint sub, out float v[32]) {
    for (uint j = 0u; j < 32u; j++) v[j] = uintBitsToFloat(rd32(bb + 4u * j));
}
#elif defined(TYPE_F16)
#define BB 64u
void dq32(uint bb, uint sub, out float v[32]) {
    for (uint j = 0u; j < 16u; j++) {
        vec2 h = unpackHalf2x16(rd32(bb + 4u * j));
        v[2u * j] = h.x;
        v[2u * j + 1u] = h.y;
    }
}
#elif defined(TYPE_BF16)
#define BB 64u
void dq32(uint bb, uint sub, out float v[32]) {
    for (uint j = 0u; j < 16u; j++) {
        uint u = rd32(bb + 4u * j);
        v[2u * j] = uintBitsToFloat(u << 16);
        v[2u * j + 1u] = uintBitsToFloat(u & 0xFFFF0000u);
    }
}
#elif defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_IQ4_NL)
#define QK 32u
#if defined(TYPE_Q4_1)
#define BB 20u
#else
#define BB 18u
#endif
void dq32(uint bb, uint sub, out float v[32]) {
    float d = rdf16(bb);
#if defined(TYPE_Q4_1)
    float m = rdf16(bb + 2u);
    uint qs = bb + 4u;
#else
    uint qs = bb + 2u;
#endif
    for (uint i = 0u; i < 4u; i++) {
        uint u = rd32(qs + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            uint q = (u >> (8u * n)) & 0xFFu;
#if defined(TYPE_Q4_0)
            v[4u * i + n] = (float(q & 15u) - 8.0) * d;
            v[4u * i + n + 16u] = (float(q >> 4) - 8.0) * d;
#elif defined(TYPE_Q4_1)
            v[4u * i + n] = float(q & 15u) * d + m;
            v[4u * i + n + 16u] = float(q >> 4) * d + m;
#else
            v[4u * i + n] = d * kvalues_iq4nl[q & 15u];
            v[4u * i + n + 16u] = d * kvalues_iq4nl[q >> 4];
#endif
        }
    }
}
#elif defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
#define QK 32u
#if defined(TYPE_Q5_1)
#define BB 24u
#else
#define BB 22u
#endif
void dq32(uint bb, uint sub, out float v[32]) {
    float d = rdf16(bb);
#if defined(TYPE_Q5_1)
    float m = rdf16(bb + 2u);
    uint qh = rd32(bb + 4u), qs = bb + 8u;
#else
    uint qh = rd32(bb + 2u), qs = bb + 6u;
#endif
    for (uint i = 0u; i < 4u; i++) {
        uint u = rd32(qs + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            uint j = 4u * i + n, q = (u >> (8u * n)) & 0xFFu;
            uint lo = (q & 15u) | (((qh >> j) & 1u) << 4);
            uint hi = (q >> 4) | (((qh >> (j + 16u)) & 1u) << 4);
#if defined(TYPE_Q5_1)
            v[j] = float(lo) * d + m;
            v[j + 16u] = float(hi) * d + m;
#else
            v[j] = (float(lo) - 16.0) * d;
            v[j + 16u] = (float(hi) - 16.0) * d;
#endif
        }
    }
}
#elif defined(TYPE_Q8_0)
#define QK 32u
#define BB 34u
void dq32(uint bb, uint sub, out float v[32]) {
    float d = rdf16(bb);
    for (uint i = 0u; i < 8u; i++) {
        uint u = rd32(bb + 2u + 4u * i);
        for (uint n = 0u; n < 4u; n++) v[4u * i + n] = float(sbyte(u, n)) * d;
    }
}
#elif defined(TYPE_Q2_K)
#define QK 256u
#define BB 84u
void dq32(uint bb, uint sub, out float v[32]) {
    float d = rdf16(bb + 80u), dmin = rdf16(bb + 82u);
    uint h = sub >> 2, g = sub & 3u;
    uint s0 = rd8(bb + 2u * sub), s1 = rd8(bb + 2u * sub + 1u);
    float d0 = d * float(s0 & 15u), m0 = dmin * float(s0 >> 4);
    float d1 = d * float(s1 & 15u), m1 = dmin * float(s1 >> 4);
    for (uint i = 0u; i < 8u; i++) {
        uint u = rd32(bb + 16u + 32u * h + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            uint l = 4u * i + n;
            float q = float((u >> (8u * n + 2u * g)) & 3u);
            v[l] = l < 16u ? d0 * q - m0 : d1 * q - m1;
        }
    }
}
#elif defined(TYPE_Q3_K)
#define QK 256u
#define BB 110u
float q3k_scale(uint bb, uint k) {
    uint low4 = k < 8u ? rd8(bb + 96u + k) & 15u : rd8(bb + 96u + k - 8u) >> 4;
    uint high2 = (rd8(bb + 104u + (k & 3u)) >> (2u * (k >> 2))) & 3u;
    return float(int(low4 | (high2 << 4)) - 32);
}
void dq32(uint bb, uint sub, out float v[32]) {
    float d = rdf16(bb + 108u);
    uint h = sub >> 2, g = sub & 3u;
    float d0 = d * q3k_scale(bb, 2u * sub), d1 = d * q3k_scale(bb, 2u * sub + 1u);
    for (uint i = 0u; i < 8u; i++) {
        uint u = rd32(bb + 32u + 32u * h + 4u * i);
        uint hm = rd32(bb + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            uint l = 4u * i + n;
            int q = int((u >> (8u * n + 2u * g)) & 3u) - (((hm >> (8u * n + sub)) & 1u) != 0u ? 0 : 4);
            v[l] = (l < 16u ? d0 : d1) * float(q);
        }
    }
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
void dq32(uint bb, uint sub, out float v[32]) {
    float sc, mn;
    k4_scale_min(bb, sub, sc, mn);
    float dl = rdf16(bb) * sc, ml = rdf16(bb + 2u) * mn;
    uint c = sub >> 1, shift = (sub & 1u) * 4u;
#if defined(TYPE_Q5_K)
    uint qs = bb + 48u;
#else
    uint qs = bb + 16u;
#endif
    for (uint i = 0u; i < 8u; i++) {
        uint u = rd32(qs + 32u * c + 4u * i);
#if defined(TYPE_Q5_K)
        uint hb = rd32(bb + 16u + 4u * i);
#endif
        for (uint n = 0u; n < 4u; n++) {
            uint q = (u >> (8u * n + shift)) & 15u;
#if defined(TYPE_Q5_K)
            q |= ((hb >> (8u * n + sub)) & 1u) << 4;
#endif
            v[4u * i + n] = dl * float(q) - ml;
        }
    }
}
#elif defined(TYPE_Q6_K)
#define QK 256u
#define BB 210u
void dq32(uint bb, uint sub, out float v[32]) {
    float d = rdf16(bb + 208u);
    uint h = sub >> 2, g = sub & 3u;
    uint sw = rd16(bb + 192u + 2u * sub); /* int8 scales 2 sub and 2 sub + 1 */
    float d0 = d * float(sbyte(sw, 0u)), d1 = d * float(sbyte(sw, 1u));
    for (uint i = 0u; i < 8u; i++) {
        uint ul = rd32(bb + 64u * h + 32u * (g & 1u) + 4u * i);
        uint uh = rd32(bb + 128u + 32u * h + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            uint l = 4u * i + n;
            uint lo4 = (ul >> (8u * n + (g < 2u ? 0u : 4u))) & 15u;
            uint hi2 = (uh >> (8u * n + 2u * g)) & 3u;
            float q = float(int(lo4 | (hi2 << 4)) - 32);
            v[l] = (l < 16u ? d0 : d1) * q;
        }
    }
}
#elif defined(TYPE_IQ4_XS)
#define QK 256u
#define BB 136u
void dq32(uint bb, uint sub, out float v[32]) {
    uint ls = ((rd8(bb + 4u + (sub >> 1)) >> (4u * (sub & 1u))) & 15u) | (((rd16(bb + 2u) >> (2u * sub)) & 3u) << 4);
    float dl = rdf16(bb) * float(int(ls) - 32);
    for (uint i = 0u; i < 4u; i++) {
        uint u = rd32(bb + 8u + 16u * sub + 4u * i);
        for (uint n = 0u; n < 4u; n++) {
            uint q = (u >> (8u * n)) & 0xFFu;
            v[4u * i + n] = dl * kvalues_iq4nl[q & 15u];
            v[4u * i + n + 16u] = dl * kvalues_iq4nl[q >> 4];
        }
    }
}
#elif defined(TYPE_IQ2_XXS) || defined(TYPE_IQ2_XS) || defined(TYPE_IQ2_S)
#define QK 256u
#if defined(TYPE_IQ2_XXS)
#define BB 66u
#elif defined(TYPE_IQ2_XS)
#define BB 74u
#else
#define BB 82u
#endif
void dq32(uint bb, uint sub, out float v[32]) {
    float d = rdf16(bb);
#if defined(TYPE_IQ2_XXS)
    uint a0 = rd32(bb + 2u + 8u * sub), a1 = rd32(bb + 6u + 8u * sub);
    float db0 = d * (0.5 + float(a1 >> 28)) * 0.25, db1 = db0;
#else
    uint sc = rd8(bb + (BB - 8u) + sub);
    float db0 = d * (0.5 + float(sc & 15u)) * 0.25, db1 = d * (0.5 + float(sc >> 4)) * 0.25;
#endif
    for (uint l = 0u; l < 4u; l++) {
#if defined(TYPE_IQ2_XXS)
        uint idx = (a0 >> (8u * l)) & 0xFFu, s = signs8((a1 >> (7u * l)) & 127u);
        uint tab = RWKV7_VK_TAB_IQ2XXS;
#elif defined(TYPE_IQ2_XS)
        uint q = rd16(bb + 2u + 2u * (4u * sub + l));
        uint idx = q & 511u, s = signs8(q >> 9);
        uint tab = RWKV7_VK_TAB_IQ2XS;
#else
        uint idx = rd8(bb + 2u + 4u * sub + l) | (((rd8(bb + 66u + sub) >> (2u * l)) & 3u) << 8);
        uint s = rd8(bb + 34u + 4u * sub + l);
        uint tab = RWKV7_VK_TAB_IQ2S;
#endif
        uint g0 = Tab[tab + 2u * idx], g1 = Tab[tab + 2u * idx + 1u];
        float db = l < 2u ? db0 : db1;
        for (uint j = 0u; j < 4u; j++) {
            v[8u * l + j] = db * float((g0 >> (8u * j)) & 0xFFu) * sgn(s, j);
            v[8u * l + j + 4u] = db * float((g1 >> (8u * j)) & 0xFFu) * sgn(s, j + 4u);
        }
    }
}
#elif defined(TYPE_IQ3_XXS) || defined(TYPE_IQ3_S)
#define QK 256u
#if defined(TYPE_IQ3_XXS)
#define BB 98u
#else
#define BB 110u
#endif
void dq32(uint bb, uint sub, out float v[32]) {
    float d = rdf16(bb);
#if defined(TYPE_IQ3_XXS)
    uint sw = rd32(bb + 66u + 4u * sub);
    float db = d * (0.5 + float(sw >> 28)) * 0.5;
#else
    float db = d * float(1u + 2u * ((rd8(bb + 106u + (sub >> 1)) >> (4u * (sub & 1u))) & 15u));
    uint qh = rd8(bb + 66u + sub);
#endif
    for (uint l = 0u; l < 4u; l++) {
#if defined(TYPE_IQ3_XXS)
        uint s = signs8((sw >> (7u * l)) & 127u);
        uint g0 = Tab[RWKV7_VK_TAB_IQ3XXS + rd8(bb + 2u + 8u * sub + 2u * l)];
        uint g1 = Tab[RWKV7_VK_TAB_IQ3XXS + rd8(bb + 3u + 8u * sub + 2u * l)];
#else
        uint s = rd8(bb + 74u + 4u * sub + l);
        uint i0 = rd8(bb + 2u + 8u * sub + 2u * l) | (((qh >> (2u * l)) & 1u) << 8);
        uint i1 = rd8(bb + 3u + 8u * sub + 2u * l) | (((qh >> (2u * l + 1u)) & 1u) << 8);
        uint g0 = Tab[RWKV7_VK_TAB_IQ3S + i0], g1 = Tab[RWKV7_VK_TAB_IQ3S + i1];
#endif
        for (uint j = 0u; j < 4u; j++) {
            v[8u * l + j] = db * float((g0 >> (8u * j)) & 0xFFu) * sgn(s, j);
            v[8u * l + j + 4u] = db * float((g1 >> (8u * j)) & 0xFFu) * sgn(s, j + 4u);
        }
    }
}
#elif defined(TYPE_IQ1_S) || defined(TYPE_IQ1_M)
#define QK 256u
#if defined(TYPE_IQ1_S)
#define BB 50u
#else
#define BB 56u
#endif
void dq32(uint bb, uint sub, out float v[32]) {
#if defined(TYPE_IQ1_S)
    uint hw = rd16(bb + 34u + 2u * sub);
    float dl = rdf16(bb) * float(2u * ((hw >> 12) & 7u) + 1u);
    float dl0 = dl, dl1 = dl;
    uint qs = bb + 2u;
#else
    uint sc0 = rd16(bb + 48u), sc1 = rd16(bb + 50u), sc2 = rd16(bb + 52u), sc3 = rd16(bb + 54u);
    float d = unpackHalf2x16((sc0 >> 12) | ((sc1 >> 12) << 4) | ((sc2 >> 12) << 8) | ((sc3 >> 12) << 12)).x;
    uint w = rd16(bb + 48u + 2u * (sub >> 1)) >> (6u * (sub & 1u));
    float dl0 = d * float(2u * (w & 7u) + 1u), dl1 = d * float(2u * ((w >> 3) & 7u) + 1u);
    uint qs = bb;
#endif
    for (uint l = 0u; l < 4u; l++) {
#if defined(TYPE_IQ1_S)
        uint idx = rd8(qs + 4u * sub + l) | (((hw >> (3u * l)) & 7u) << 8);
        float delta = (hw & 0x8000u) != 0u ? -0.125 : 0.125;
#else
        uint nib = (rd8(bb + 32u + 2u * sub + (l >> 1)) >> (4u * (l & 1u))) & 15u;
        uint idx = rd8(qs + 4u * sub + l) | ((nib & 7u) << 8);
        float delta = (nib & 8u) != 0u ? -0.125 : 0.125;
#endif
        uint g0 = Tab[RWKV7_VK_TAB_IQ1S + 2u * idx], g1 = Tab[RWKV7_VK_TAB_IQ1S + 2u * idx + 1u];
        float dlg = l < 2u ? dl0 : dl1;
        for (uint j = 0u; j < 4u; j++) {
            v[8u * l + j] = dlg * (float(sbyte(g0, j)) + delta);
            v[8u * l + j + 4u] = dlg * (float(sbyte(g1, j)) + delta);
        }
    }
}
#else
#error "dequant.glsl: no TYPE_<X> defined"
#endif

/* Chunks of 32 per block. */
#define CPB (QK / 32u)
