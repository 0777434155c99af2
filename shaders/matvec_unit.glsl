/* matvec_unit.glsl: the per-product half of matvec.comp, included once per binding slot with WQ
 * (the weights' uint view), WV (their uvec4 view), XF / XV (the activations' float / vec4 views)
 * and FN(name) (a suffix for the function names) defined, because GLSL cannot pass a buffer to a
 * function. It defines the word readers, the unit
 * decoder FN(dqu) (one lane's natural slice of a block: UW weights as NG vec4 groups at the block
 * offsets upos(j, i); matvec.comp defines UW, NG, upos per type) and FN(rowdot), the K loop of
 * one row. Tensors are only 2-byte aligned, so words are read at even byte offsets (the uvec4
 * view serves float rows whose offset and length are multiples of 16). */

uint FN(r16)(uint b) { return (WQ[b >> 2] >> ((b & 2u) << 3)) & 0xFFFFu; }
/* The word at even byte b: two loads and a funnel shift, no branch (lanes of one sweep straddle
 * blocks of both 2-byte phases, so a branch on the phase would diverge). */
uint FN(r32)(uint b) {
    uint w = b >> 2, s = (b & 2u) << 3;
    return (WQ[w] >> s) | ((WQ[w + (s >> 4)] << 16) << (16u - s)); /* s = 0: no word past b + 3 */
}
uint FN(r8)(uint b) { return (WQ[b >> 2] >> ((b & 3u) << 3)) & 0xFFu; }
float FN(rh)(uint b) { return unpackHalf2x16(FN(r16)(b)).x; }
/* Word at byte b of a block: one load in the aligned pipeline when blocks are 4-byte aligned. */
uint FN(rw)(uint b) { return ALIGNED != 0u && BB % 4u == 0u ? WQ[b >> 2] : FN(r32)(b); }
/* The two words at byte b (b even): three loads and a funnel shift, whatever b's phase. */
uvec2 FN(r64)(uint b) {
    uint w = b >> 2, s = (b & 2u) << 3;
    uint w0 = WQ[w], w1 = WQ[w + 1u], w2 = WQ[w + 1u + (s >> 4)];
    return uvec2((w0 >> s) | ((w1 << 16) << (16u - s)), (w1 >> s) | ((w2 << 16) << (16u - s)));
}

#if defined(FLOAT_WEIGHTS)
/* Floats: the UW weights from byte bb (16 bytes: 4 f32 or 8 f16/bf16). */
uvec4 FN(ld16)(uint bb, bool al) {
    if (ALIGNED != 0u || al) return WV[bb >> 4];
    return uvec4(FN(r32)(bb), FN(r32)(bb + 4u), FN(r32)(bb + 8u), FN(r32)(bb + 12u));
}
void FN(dqu)(uint bb, uint j, bool al, out vec4 g[NG]) {
    uvec4 u = FN(ld16)(bb + 16u * j, al);
#if defined(TYPE_F32)
    g[0] = uintBitsToFloat(u);
#elif defined(TYPE_F16)
    g[0] = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
    g[1] = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
#else
    g[0] = uintBitsToFloat(uvec4(u.x << 16, u.x & 0xFFFF0000u, u.y << 16, u.y & 0xFFFF0000u));
    g[1] = uintBitsToFloat(uvec4(u.z << 16, u.z & 0xFFFF0000u, u.w << 16, u.w & 0xFFFF0000u));
#endif
}
/* The unit that crosses the end of a row of k % UW != 0 elements: zero past k. */
void FN(dqtail)(uint rowb, uint e, out vec4 g[NG]) {
    for (uint i = 0u; i < UW; i++) {
        float v = 0.0;
        if (e + i < p.k) {
#if defined(TYPE_F32)
            v = uintBitsToFloat(FN(r32)(rowb + 4u * (e + i)));
#elif defined(TYPE_F16)
            v = unpackHalf2x16(FN(r16)(rowb + 2u * (e + i))).x;
#else
            v = uintBitsToFloat(FN(r16)(rowb + 2u * (e + i)) << 16);
#endif
        }
        g[i >> 2][i & 3u] = v;
    }
}
#elif defined(TYPE_Q8_0)
/* Quarter block: 8 int8 at byte 2 + 8 j. */
void FN(dqu)(uint bb, uint j, bool al, out vec4 g[NG]) {
    float d = FN(rh)(bb);
    uvec2 u = FN(r64)(bb + 2u + 8u * j);
    g[0] = d * vec4(sbyte(u.x, 0u), sbyte(u.x, 1u), sbyte(u.x, 2u), sbyte(u.x, 3u));
    g[1] = d * vec4(sbyte(u.y, 0u), sbyte(u.y, 1u), sbyte(u.y, 2u), sbyte(u.y, 3u));
}
#elif defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_IQ4_NL) || defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
/* One word of qs (bytes 4 j .. 4 j + 3): elements 4 j .. 4 j + 3 (low nibbles) and 16 + 4 j ..
 * (high nibbles), plus bit j / j + 16 of qh for the 5-bit types. */
void FN(dqu)(uint bb, uint j, bool al, out vec4 g[NG]) {
    float d = FN(rh)(bb);
#if defined(TYPE_Q4_1)
    float m = FN(rh)(bb + 2u);
    uint u = FN(r32)(bb + 4u + 4u * j);
#elif defined(TYPE_Q5_1)
    float m = FN(rh)(bb + 2u);
    uint qh = FN(r32)(bb + 4u) >> (4u * j);
    uint u = FN(r32)(bb + 8u + 4u * j);
#elif defined(TYPE_Q5_0)
    uint qh = FN(r32)(bb + 2u) >> (4u * j);
    uint u = FN(r32)(bb + 6u + 4u * j);
#else
    uint u = FN(r32)(bb + 2u + 4u * j);
#endif
    uvec4 lo = (uvec4(u) >> uvec4(0u, 8u, 16u, 24u)) & 15u;
    uvec4 hi = (uvec4(u) >> uvec4(4u, 12u, 20u, 28u)) & 15u;
#if defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
    lo |= ((uvec4(qh) >> uvec4(0u, 1u, 2u, 3u)) & 1u) << 4;
    hi |= ((uvec4(qh) >> uvec4(16u, 17u, 18u, 19u)) & 1u) << 4;
#endif
#if defined(TYPE_Q4_0)
    g[0] = (vec4(lo) - 8.0) * d;
    g[1] = (vec4(hi) - 8.0) * d;
#elif defined(TYPE_Q5_0)
    g[0] = (vec4(lo) - 16.0) * d;
    g[1] = (vec4(hi) - 16.0) * d;
#elif defined(TYPE_Q4_1) || defined(TYPE_Q5_1)
    g[0] = vec4(lo) * d + m;
    g[1] = vec4(hi) * d + m;
#else
    g[0] = d * vec4(kvalues_iq4nl[lo.x], kvalues_iq4nl[lo.y], kvalues_iq4nl[lo.z], kvalues_iq4nl[lo.w]);
    g[1] = d * vec4(kvalues_iq4nl[hi.x], kvalues_iq4nl[hi.y], kvalues_iq4nl[hi.z], kvalues_iq4nl[hi.w]);
#endif
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
/* nw (1 or 2) qs words of 32-byte chunk c from byte wo of the chunk: elements 64 c + wo + 4 w ..
 * (low nibbles, sub-block 2 c) into g[w] and 64 c + 32 + wo + 4 w .. (high nibbles, sub-block
 * 2 c + 1) into g[nw + w]. The two 6-bit scale/min pairs come from the three 12-byte scale words
 * without a branch on c (lanes of one sweep hold different c). */
void FN(dqk)(uint bb, uint c, uint wo, uint nw, out vec4 g[4]) {
    vec2 dm = unpackHalf2x16(FN(rw)(bb));
    uint s0 = FN(rw)(bb + 4u), s1 = FN(rw)(bb + 8u), s2 = FN(rw)(bb + 12u);
    /* Bytes (2c, 2c+1) for c < 2, (2c-4, 2c-3) for c >= 2, as the low 16 bits. */
    uint sh = (c & 1u) << 4;
    uint q0 = (s0 >> sh) & 0xFFFFu, q1 = (s1 >> sh) & 0xFFFFu, q2 = (s2 >> sh) & 0xFFFFu;
    uint scp, mnp; /* the two sub-blocks' scales / mins, one per byte */
    if (c < 2u) {
        scp = q0 & 0x3F3Fu;
        mnp = q1 & 0x3F3Fu;
    } else {
        scp = (q2 & 0x0F0Fu) | ((q0 >> 2) & 0x3030u);
        mnp = ((q2 >> 4) & 0x0F0Fu) | ((q1 >> 2) & 0x3030u);
    }
    float dl = dm.x * float(scp & 0xFFu), dh = dm.x * float(scp >> 8);
    float ml = dm.y * float(mnp & 0xFFu), mh = dm.y * float(mnp >> 8);
    const uvec4 sh4 = uvec4(0u, 8u, 16u, 24u);
    for (uint w = 0u; w < nw; w++) {
#if defined(TYPE_Q5_K)
        uint u = FN(rw)(bb + 48u + 32u * c + wo + 4u * w);
        uint hb = FN(rw)(bb + 16u + wo + 4u * w);
#else
        uint u = FN(rw)(bb + 16u + 32u * c + wo + 4u * w);
#endif
        uvec4 lo = (uvec4(u) >> sh4) & 15u;
        uvec4 hi = (uvec4(u) >> (sh4 + 4u)) & 15u;
#if defined(TYPE_Q5_K)
        lo |= ((uvec4(hb) >> (sh4 + 2u * c)) & 1u) << 4;
        hi |= ((uvec4(hb) >> (sh4 + 2u * c + 1u)) & 1u) << 4;
#endif
        g[w] = dl * vec4(lo) - ml;
        g[nw + w] = dh * vec4(hi) - mh;
    }
}
/* Unit j = 4 c + k: qs words 2 k and 2 k + 1 of chunk c (16 lanes per block, so the scale words
 * are read and unpacked once per 16 weights). */
void FN(dqu)(uint bb, uint j, bool al, out vec4 g[NG]) { FN(dqk)(bb, j >> 2, 8u * (j & 3u), 2u, g); }
#elif defined(TYPE_Q6_K)
/* Unit j = 8 h + i: ql words i and 8 + i of half h and qh word i of half h: elements
 * 128 h + 32 q + 4 i .. for q = 0..3, with int8 scale 8 h + 2 q + i / 4. */
void FN(dqu)(uint bb, uint j, bool al, out vec4 g[NG]) {
    uint h = j >> 3, i = j & 7u;
    float d = FN(rh)(bb + 208u);
    uint ul0 = FN(r32)(bb + 64u * h + 4u * i), ul1 = FN(r32)(bb + 64u * h + 32u + 4u * i);
    uint uh = FN(r32)(bb + 128u + 32u * h + 4u * i);
    /* The 8 scale bytes of half h in one 8-byte read; this unit's are bytes i / 4 + 2 q. */
    uvec2 scw = FN(r64)(bb + 192u + 8u * h);
    const uvec4 sh = uvec4(0u, 8u, 16u, 24u);
    for (uint q = 0u; q < 4u; q++) {
        uint ul = (q & 1u) == 0u ? ul0 : ul1;
        uvec4 lo4 = (uvec4(ul) >> (sh + (q >> 1) * 4u)) & 15u;
        uvec4 hi2 = (uvec4(uh) >> (sh + 2u * q)) & 3u;
        uint sb = (i >> 2) + 2u * q; /* byte 0..7 */
        float sc = float(sbyte(sb < 4u ? scw.x : scw.y, sb & 3u));
        g[q] = (d * sc) * (vec4(lo4 | (hi2 << 4)) - 32.0);
    }
}
#else
/* Other types: one 32-element chunk per lane, dequantized by dequant.glsl's dq32 (binding 0
 * only, so these types run one product per dispatch). */
void FN(dqu)(uint bb, uint j, bool al, out vec4 g[NG]) {
    float v[32];
    dq32(bb, j, v);
    for (uint i = 0u; i < 8u; i++) g[i] = vec4(v[4u * i], v[4u * i + 1u], v[4u * i + 2u], v[4u * i + 3u]);
}
#endif

/* Activations straight from the storage buffer (small, cache-resident): a vec4 when x is 16-byte
 * aligned and k % 4 == 0, else 4 floats. ldxt: zero at and past element k of the row (the tail
 * unit of a float row of k % UW != 0: its weights are zero there, x may be another row). */
vec4 FN(ldx)(uint i, bool xal) {
    if (ALIGNED != 0u || xal) return XV[i >> 2];
    return vec4(XF[i], XF[i + 1u], XF[i + 2u], XF[i + 3u]);
}
/* Elements e .. e + 3 of activation row t (e counted from the row start) in a sweep that starts at
 * element e0: from the staged copy (matvec.comp's STAGED) or straight from the buffer. */
vec4 FN(xat)(uint pi, uint t, uint e, uint e0, bool xal) {
    if (STAGED) return xs[t * XSV + ((e - e0) >> 2)];
    return FN(ldx)(p.x_off[pi] + t * p.k + e, xal);
}
vec4 FN(ldxt)(uint base, uint e) {
    vec4 v;
    for (uint c = 0u; c < 4u; c++) v[c] = e + c < p.k ? XF[base + e + c] : 0.0;
    return v;
}

/* acc[t][r] += dot(unit u of rows r, x rows t): the NR rows' weights are dequantized first
 * (independent loads in flight), then each activation vec4 is read once for all NR rows. */
void FN(unit)(uint pi, uint rowb[NR], bool al, bool xal, uint u, uint e0, inout float acc[MAXT][NR]) {
    uint e = u * UW, b = e / QK, j = (e % QK) / UW;
    vec4 g[NR][NG];
    for (uint r = 0u; r < NR; r++) FN(dqu)(rowb[r] + b * BB, j, al, g[r]);
    for (uint t = 0u; t < NT; t++) {
        for (uint i = 0u; i < NG; i++) {
            vec4 xv = FN(xat)(pi, t, b * QK + upos(j, i), e0, xal);
            for (uint r = 0u; r < NR; r++) acc[t][r] += dot(g[r][i], xv);
        }
    }
}

#if defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
/* The one-word unit (j = 8 c + i: qs word i of chunk c) for K ranges whose 16-weight units do not
 * fill whole sweeps of LPR lanes (k = 768: 48 units on 32 lanes would leave half the lanes of
 * every second sweep idle; 96 one-word units fill three). */
void FN(unit1w)(uint pi, uint rowb[NR], bool xal, uint u, uint e0, inout float acc[MAXT][NR]) {
    uint e = u * 8u, b = e / QK, j = (e % QK) / 8u, c = j >> 3, wo = 4u * (j & 7u);
    vec4 g[NR][4];
    for (uint r = 0u; r < NR; r++) FN(dqk)(rowb[r] + b * BB, c, wo, 1u, g[r]);
    for (uint t = 0u; t < NT; t++) {
        for (uint i = 0u; i < 2u; i++) {
            vec4 xv = FN(xat)(pi, t, b * QK + 64u * c + wo + 32u * i, e0, xal);
            for (uint r = 0u; r < NR; r++) acc[t][r] += dot(g[r][i], xv);
        }
    }
}
#endif

/* acc[t][r] += this lane's share of row r (bytes from rowb[r]) . x_pi (rows t) over K range
 * [kb, ke). Lane `lane` takes the units whose index in the row is lane mod LPR, in increasing
 * order (a float row's partial last unit, if any, last): the accumulation order of a row does
 * not depend on t (the batch-invariant mode relies on it). No barrier. */
void FN(rowdot)(uint pi, uint rowb[NR], bool al, bool xal, uint kb, uint ke, uint lane, inout float acc[MAXT][NR]) {
    uint u_full = ke / UW; /* units wholly inside [kb, ke); kb is a multiple of 256 */
    if (STAGED) {
        /* Sweeps of LPR * UW elements (whole blocks: kb and the sweep are multiples of 256 and of
         * QK; aligned K ranges end on a unit), each copied to xs by the whole workgroup between two
         * barriers (the loop bounds are uniform). Lane l takes the same units in the same order as
         * below, so every row sums in the same order as without staging. */
        for (uint e0 = kb; e0 < ke; e0 += LPR * UW) {
            barrier();
            for (uint v = gl_LocalInvocationID.x; v < NT * XSV; v += WG) {
                uint e = e0 + 4u * (v % XSV);
                xs[v] = e < ke ? XV[(p.x_off[pi] + v / XSV * p.k + e) >> 2] : vec4(0.0);
            }
            barrier();
#if defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
            if (NARROW != 0u) { /* one-word units: two sweeps of LPR units per staged range */
                for (uint h = 0u; h < 2u; h++) {
                    uint u = e0 / 8u + h * LPR + lane;
                    if (u < ke / 8u) FN(unit1w)(pi, rowb, xal, u, e0, acc);
                }
                continue;
            }
#endif
            uint u = e0 / UW + lane;
            if (u < u_full) FN(unit)(pi, rowb, al, xal, u, e0, acc);
        }
        return;
    }
#if defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
    if (NARROW != 0u) { /* the host's "+..n" pipelines: a function of the shape only, never of t */
        for (uint u = kb / 8u + lane; u < ke / 8u; u += LPR) FN(unit1w)(pi, rowb, xal, u, 0u, acc);
        return;
    }
#endif
    for (uint u = kb / UW + lane; u < u_full; u += LPR) FN(unit)(pi, rowb, al, xal, u, 0u, acc);
#if defined(FLOAT_WEIGHTS)
    if (ALIGNED == 0u && ke % UW != 0u && (u_full - kb / UW) % LPR == lane) {
        uint e = u_full * UW;
        vec4 g[NR][NG];
        for (uint r = 0u; r < NR; r++) FN(dqtail)(rowb[r], e, g[r]);
        for (uint t = 0u; t < NT; t++) {
            uint xb = p.x_off[pi] + t * p.k;
            for (uint i = 0u; i < NG; i++) {
                vec4 xv = FN(ldxt)(xb, e + 4u * i);
                for (uint r = 0u; r < NR; r++) acc[t][r] += dot(g[r][i], xv);
            }
        }
    }
#endif
}
