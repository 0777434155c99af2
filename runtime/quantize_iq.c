/* quantize_iq.c: block writers for the 256-element IQ types IQ4_XS, IQ3_S and IQ3_XXS, the
 * inverses of dequant_iq.c (quant-formats.md 3.7). IQ4_XS is a K-quant-style two-level fit over
 * the IQ4_NL levels. The IQ3 types store each group of 4 magnitudes as an index into a grid of
 * 512 (IQ3_S) or 256 (IQ3_XXS) points of an 8-level lattice, plus sign bits; the grid search
 * rounds the group to the lattice, then scores the few grid points nearest that lattice point
 * (precomputed once per type) exactly and keeps the best. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "iq_tables.h"
#include "quantize_impl.h"

void rwkv7_quant_iq4_xs(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    const int8_t *kv = rwkv7_kvalues_iq4nl;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 136) {
        uint8_t q[256], tq[32];
        float s[8], smax = 0.0f;
        for (int j = 0; j < 8; j++) {
            s[j] = rwkv7_qfit_table(x + 32 * j, 32, kv, 16, q + 32 * j);
            if (fabsf(s[j]) > fabsf(smax)) smax = s[j];
        }
        const uint16_t dh = rwkv7_f32_to_f16(smax / -32.0f);
        const float d = rwkv7_f16_to_f32(dh);
        int ls[8];
        for (int j = 0; j < 8; j++) {
            const int c = d != 0.0f ? rwkv7_qclamp(rwkv7_qround(s[j] / d), -32, 31) : 0;
            float best = INFINITY;
            ls[j] = c;
            for (int t = c - 1; t <= c + 1; t++) {
                if (t < -32 || t > 31) continue;
                const float err = rwkv7_qround_table(x + 32 * j, 32, d * (float)t, kv, 16, tq);
                if (err < best) best = err, ls[j] = t, memcpy(q + 32 * j, tq, 32);
            }
        }
        rwkv7_put16(b, dh);
        uint16_t sh = 0;
        memset(b + 4, 0, 4);
        for (int j = 0; j < 8; j++) {
            const int u = ls[j] + 32;
            b[4 + j / 2] |= (uint8_t)((u & 0xF) << 4 * (j % 2));
            sh |= (uint16_t)((u >> 4) << 2 * j);
        }
        rwkv7_put16(b + 2, sh);
        for (int j = 0; j < 8; j++)
            for (int l = 0; l < 16; l++) b[8 + 16 * j + l] = (uint8_t)(q[32 * j + l] | q[32 * j + l + 16] << 4);
    }
}

/* ---- 4-element grids ---- */

#define NEAR_K 6 /* grid points scored per lattice point */

struct quad_grid {
    const uint32_t *grid; /* packed 4 x uint8 magnitudes */
    int n;                /* entries */
    float level[8];       /* the lattice's 8 magnitudes, ascending */
    uint16_t near[4096][NEAR_K]; /* nearest grid entries per lattice point (3 bits per element) */
};

static struct quad_grid g_iq3s, g_iq3xxs;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void grid_build(struct quad_grid *qg, const uint32_t *grid, int n) {
    qg->grid = grid;
    qg->n = n;
    int seen[256] = {0}, nl = 0;
    for (int e = 0; e < n; e++)
        for (int j = 0; j < 4; j++) seen[(grid[e] >> 8 * j) & 0xFF] = 1;
    for (int v = 0; v < 256 && nl < 8; v++)
        if (seen[v]) qg->level[nl++] = (float)v;
    for (int key = 0; key < 4096; key++) {
        float best[NEAR_K];
        for (int k = 0; k < NEAR_K; k++) best[k] = INFINITY, qg->near[key][k] = 0;
        for (int e = 0; e < n; e++) {
            float dist = 0.0f;
            for (int j = 0; j < 4; j++) {
                const float diff = (float)((grid[e] >> 8 * j) & 0xFF) - qg->level[(key >> 3 * j) & 7];
                dist += diff * diff;
            }
            int k = NEAR_K;
            while (k > 0 && dist < best[k - 1]) k--;
            if (k == NEAR_K) continue;
            for (int m = NEAR_K - 1; m > k; m--) best[m] = best[m - 1], qg->near[key][m] = qg->near[key][m - 1];
            best[k] = dist;
            qg->near[key][k] = (uint16_t)e;
        }
    }
}

static void grids_init(void) {
    grid_build(&g_iq3s, rwkv7_iq3s_grid, 512);
    grid_build(&g_iq3xxs, rwkv7_iq3xxs_grid, 256);
}

/* Nearest lattice level index of t (levels ascending). */
static inline int level_of(const struct quad_grid *qg, float t) {
    int k = 0;
    for (int m = 1; m < 8; m++) k += t >= 0.5f * (qg->level[m - 1] + qg->level[m]);
    return k;
}

/* Best grid entry for magnitudes a[4] at scale db; returns its squared error. */
static float quad_pick(const struct quad_grid *qg, const float *a, float db, int *idx) {
    const float id = 1.0f / db;
    int key = 0;
    for (int j = 0; j < 4; j++) key |= level_of(qg, a[j] * id) << 3 * j;
    float best = INFINITY;
    for (int k = 0; k < NEAR_K; k++) {
        const uint32_t g = qg->grid[qg->near[key][k]];
        float err = 0.0f;
        for (int j = 0; j < 4; j++) {
            const float e = a[j] - db * (float)((g >> 8 * j) & 0xFF);
            err += e * e;
        }
        if (err < best) best = err, *idx = qg->near[key][k];
    }
    return best;
}

/* All 8 quads of a 32-element sub-block at scale db. */
static float sub_pick(const struct quad_grid *qg, const float *a, float db, int idx[8]) {
    if (db <= 0.0f) {
        float err = 0.0f;
        for (int i = 0; i < 32; i++) err += a[i] * a[i];
        for (int k = 0; k < 8; k++) idx[k] = 0;
        return err;
    }
    float err = 0.0f;
    for (int k = 0; k < 8; k++) err += quad_pick(qg, a + 4 * k, db, &idx[k]);
    return err;
}

/* Continuous scale of one sub-block: a fan of candidates mapping the largest magnitude near the
 * top levels, each refit by least squares for the grid points it picked. */
static float sub_fit(const struct quad_grid *qg, const float *a) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) amax = a[i] > amax ? a[i] : amax;
    if (amax == 0.0f) return 0.0f;
    float best_err = INFINITY, best_db = amax / qg->level[7];
    int idx[8];
    for (int k = 0; k < 12; k++) {
        const float db0 = amax / (qg->level[7] * (1.0f - 0.04f * (float)k));
        sub_pick(qg, a, db0, idx);
        float sag = 0.0f, sgg = 0.0f;
        for (int q = 0; q < 8; q++) {
            const uint32_t g = qg->grid[idx[q]];
            for (int j = 0; j < 4; j++) {
                const float v = (float)((g >> 8 * j) & 0xFF);
                sag += a[4 * q + j] * v, sgg += v * v;
            }
        }
        const float db = sgg > 0.0f ? sag / sgg : db0;
        const float err = sub_pick(qg, a, db, idx);
        if (err < best_err) best_err = err, best_db = db;
    }
    return best_db;
}

/* Shared two-level fit: magnitudes and signs of 256 values, per-sub-block scale codes sc[j] in
 * [0, 15] with db = d * mul(sc), mul(sc) = m0 + m1 * sc; writes grid indices and signs. */
static void iq3_fit(const struct quad_grid *qg, const float *x, float m0, float m1, uint16_t *dh, int sc[8],
                    int idx[64], uint8_t neg[256]) {
    float a[256], db[8], dbmax = 0.0f;
    for (int i = 0; i < 256; i++) a[i] = fabsf(x[i]), neg[i] = x[i] < 0.0f;
    for (int j = 0; j < 8; j++) {
        db[j] = sub_fit(qg, a + 32 * j);
        dbmax = db[j] > dbmax ? db[j] : dbmax;
    }
    *dh = rwkv7_f32_to_f16(dbmax / (m0 + 15.0f * m1));
    const float d = rwkv7_f16_to_f32(*dh);
    for (int j = 0; j < 8; j++) {
        const int c = d > 0.0f ? rwkv7_qclamp(rwkv7_qround((db[j] / d - m0) / m1), 0, 15) : 0;
        float best = INFINITY;
        int tidx[8];
        sc[j] = c;
        for (int t = c - 1; t <= c + 1; t++) {
            if (t < 0 || t > 15) continue;
            const float err = sub_pick(qg, a + 32 * j, d * (m0 + m1 * (float)t), tidx);
            if (err < best) best = err, sc[j] = t, memcpy(idx + 8 * j, tidx, sizeof tidx);
        }
    }
}

void rwkv7_quant_iq3_s(const float *x, void *dst, int64_t n) {
    pthread_once(&g_once, grids_init);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 110) {
        int sc[8], idx[64];
        uint8_t neg[256];
        uint16_t dh;
        /* db = d * (1 + 2 sc) */
        iq3_fit(&g_iq3s, x, 1.0f, 2.0f, &dh, sc, idx, neg);
        memset(b, 0, 110);
        rwkv7_put16(b, dh);
        uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *scales = b + 106;
        for (int j = 0; j < 8; j++) {
            for (int k = 0; k < 8; k++) {
                qs[8 * j + k] = (uint8_t)idx[8 * j + k];
                qh[j] |= (uint8_t)((idx[8 * j + k] >> 8) << k);
            }
            scales[j / 2] |= (uint8_t)(sc[j] << 4 * (j % 2));
        }
        for (int e = 0; e < 256; e++) signs[e / 8] |= (uint8_t)(neg[e] << (e % 8));
    }
}

void rwkv7_quant_iq3_xxs(const float *x, void *dst, int64_t n) {
    pthread_once(&g_once, grids_init);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, x += 256, b += 98) {
        int sc[8], idx[64];
        uint8_t neg[256];
        uint16_t dh;
        /* db = d * (0.5 + sc) * 0.5 */
        iq3_fit(&g_iq3xxs, x, 0.25f, 0.5f, &dh, sc, idx, neg);
        rwkv7_put16(b, dh);
        for (int j = 0; j < 8; j++) {
            uint32_t w = (uint32_t)sc[j] << 28;
            for (int l = 0; l < 4; l++) {
                /* signs come in groups of 8 with an even count of negatives (the 8th sign is the
                 * parity of the 7 stored ones): flip the smallest magnitude when the count is odd */
                const float *xg = x + 32 * j + 8 * l;
                uint8_t *ng = neg + 32 * j + 8 * l;
                int cnt = 0, mi = 0;
                for (int e = 0; e < 8; e++) {
                    cnt += ng[e];
                    if (fabsf(xg[e]) < fabsf(xg[mi])) mi = e;
                }
                if (cnt & 1) ng[mi] ^= 1;
                unsigned s7 = 0;
                for (int e = 0; e < 7; e++) s7 |= (unsigned)ng[e] << e;
                w |= (uint32_t)s7 << 7 * l;
            }
            for (int k = 0; k < 8; k++) b[2 + 8 * j + k] = (uint8_t)idx[8 * j + k];
            rwkv7_put16(b + 66 + 4 * j, (uint16_t)w);
            rwkv7_put16(b + 68 + 4 * j, (uint16_t)(w >> 16));
        }
    }
}
