/* wkv7.c: CPU WKV-7 recurrence, token-serial and chunked (rwkv7-gguf.md §4.4 step 11 / §4.9;
 * performance.md §3.3 fla DPLR delta rule, §3.4 wind_rwkv, §4.4 prefill design). Invariants:
 * fp32 state [h][i][j] updated in place; the chunked form never forms a decay ratio > 1 (no
 * division, no log/exp), so it is stable for any w in (0, 1]; rows of the state are independent,
 * which is what lets GPU kernels split a head over value-row blocks. */
#include "wkv7.h"

#include "status.h"

#define WKV7_MAX_CHUNK 64

static void wkv7_check_args(const struct rwkv7_wkv7_job *p, int h0, int h1) {
    RWKV7_ASSERT(p && p->n_tok >= 0 && p->head_size > 0 && p->n_embd % p->head_size == 0);
    RWKV7_ASSERT(h0 >= 0 && h0 <= h1 && h1 <= p->n_embd / p->head_size);
}

/* ---- token-serial form ---------------------------------------------------------------------- */

/* The decode path and the reference, rwkv7_cpu_wkv7_serial, is in cpu/wkv7_serial.c (vectorized,
 * the same bits at every ISA level). */

/* ---- chunked form --------------------------------------------------------------------------- */

/* Notation (one head, one chunk of L tokens t = 0..L-1, S0 = state entering the chunk, rows of S
 * independent so everything is written for one state row s, i.e. fla's S^T). With
 * alpha_t = -kk_t, beta_t = kk_t * a_t, and the pairwise decay D(t, m) = prod_{m < p <= t} w_p
 * (per key channel j, <= 1, = exp(Gamma_t - Gamma_m) in fla's log-cumsum notation):
 *   u_t = s_{t-1} . alpha_t                                  (the serial form's sa_i)
 *   s_t = s0 * D(t, -1) + sum_{m <= t} D(t, m) * (v_m k_m + u_m beta_m)
 * Dotting s_{t-1} with alpha_t gives a unit-lower-triangular system for the u's (the WY / UT
 * transform of the DPLR delta rule):
 *   u_t = ag_t . s0 + sum_{m < t} A_ak[t, m] v_m + sum_{m < t} A_ab[t, m] u_m
 *   A_xy[t, m] = sum_j x_tj D(t - 1, m)_j y_mj  (m < t),     ag_t = alpha_t * D(t - 1, -1)
 * so with T = (I - A_ab)^-1:  u = Uloc + W s0,  Uloc = T A_ak V,  W = T ag  (no s0 involved).
 * Outputs and the next state then read
 *   y_t = rg_t . s0 + sum_{m <= t} (A_rk[t, m] v_m + A_rb[t, m] u_m),    rg_t = r_t * D(t, -1)
 *   s_L = s0 * D(L - 1, -1) + sum_m (v_m kg_m + u_m bg_m),   kg_m = k_m * D(L - 1, m), bg likewise
 * where A_r*[t, m] uses D(t, m) (m <= t, diagonal included: y reads the new state).
 * Phase 1 (wkv7_chunk_prepare) builds everything that does not depend on s0 and is parallel over
 * chunks on a GPU (fla chunk_dplr_fwd_intra + prepare_wy_repr); phase 2 (wkv7_chunk_apply) is
 * the only sequential pass: per state row it forms u, y and s_L (fla chunk_dplr_fwd_h + _o).
 * Decays: D is built as running products of w walking m down from t, never as a quotient of
 * cumulative products, so every factor is <= 1 and a chunk of 64 tokens at w = 0.545 (products
 * near 1e-17) loses nothing to overflow or cancellation. GPU kernels take D = exp2(Gamma_t -
 * Gamma_m) from fp32 log2-cumsums instead (fla's safe path) or centre it at the chunk midpoint for
 * tensor cores (§3.3); on a CPU an exp per pair and channel would dominate the run time. */

struct wkv7_chunk {
    int lmax, n;                   /* stride of the (L, L) matrices; head size N */
    float *rg, *ag, *kg, *bg;      /* (N, L) decayed r, alpha, k, beta */
    float *alpha, *beta;           /* (N, L + 1) -kk with a zero row L; (N, L) kk * a */
    float *wy, *uloc, *yv, *akv;   /* (N, L) W, Uloc, A_rk V, A_ak V */
    float *a_rk, *a_rb, *a_ak, *a_ab, *tinv; /* (L, L) row t, column m; tinv = (I - A_ab)^-1 */
    float *el, *d;                 /* (N) whole-chunk decay D(L - 1, -1); running decay */
    float *u;                      /* (L) u of one state row */
};

size_t rwkv7_cpu_wkv7_chunked_scratch(int chunk, int head_size) {
    const size_t l = (size_t)chunk, n = (size_t)head_size;
    return 10 * l * n + 5 * l * l + 3 * n + l;
}

static struct wkv7_chunk wkv7_chunk_carve(float *scratch, int lmax, int n) {
    struct wkv7_chunk c;
    const size_t ln = (size_t)lmax * n, ll = (size_t)lmax * lmax;
    float *q = scratch;
    c.lmax = lmax;
    c.n = n;
    c.rg = q, q += ln;
    c.ag = q, q += ln;
    c.kg = q, q += ln;
    c.bg = q, q += ln;
    c.wy = q, q += ln;
    c.uloc = q, q += ln;
    c.yv = q, q += ln;
    c.akv = q, q += ln;
    c.alpha = q, q += ln + n;
    c.beta = q, q += ln;
    c.a_rk = q, q += ll;
    c.a_rb = q, q += ll;
    c.a_ak = q, q += ll;
    c.a_ab = q, q += ll;
    c.tinv = q, q += ll;
    c.el = q, q += n;
    c.d = q, q += n;
    c.u = q;
    return c;
}

/* Lane sums in a fixed tree: 8 independent partial sums let the compiler use vector lanes
 * without -ffast-math and keep the result the same at every optimisation level. */
static float wkv7_sum8(const float acc[8]) {
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static float wkv7_dot(const float *x, const float *y, int n) {
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) acc[q] += x[j + q] * y[j + q];
    for (; j < n; j++) acc[0] += x[j] * y[j];
    return wkv7_sum8(acc);
}

/* Input slice of token t of the chunk (rows are C apart). */
#define WKV7_ROW(ptr, t) ((ptr) + (size_t)(t) * stride)

/* Phase 1 for tokens [0, L) whose head slices start at r, w, ...: builds the decayed copies,
 * the four A matrices, T by forward substitution, and W, Uloc, A_rk V. */
static void wkv7_chunk_prepare(struct wkv7_chunk *c, int len, size_t stride, const float *r,
                               const float *w, const float *k, const float *v, const float *kk,
                               const float *a) {
    const int n = c->n, lm = c->lmax;
    float *pre = c->el, *d = c->d;

    /* Prefix decays: ag_t uses D(t - 1, -1) (the state u_t reads is before token t's decay),
     * rg_t uses D(t, -1). pre ends as the whole-chunk decay el. */
    for (int j = 0; j < n; j++) pre[j] = 1.0f;
    for (int t = 0; t < len; t++) {
        const float *wt = WKV7_ROW(w, t), *rt = WKV7_ROW(r, t), *kkt = WKV7_ROW(kk, t);
        float *ag = c->ag + (size_t)t * n, *rg = c->rg + (size_t)t * n;
        for (int j = 0; j < n; j++) {
            ag[j] = -kkt[j] * pre[j];
            pre[j] *= wt[j];
            rg[j] = rt[j] * pre[j];
        }
    }
    /* Suffix decays D(L - 1, m) for the keys that enter the outgoing state. */
    for (int j = 0; j < n; j++) d[j] = 1.0f;
    for (int t = len - 1; t >= 0; t--) {
        const float *wt = WKV7_ROW(w, t), *kt = WKV7_ROW(k, t);
        const float *kkt = WKV7_ROW(kk, t), *at = WKV7_ROW(a, t);
        float *kg = c->kg + (size_t)t * n, *bg = c->bg + (size_t)t * n;
        for (int j = 0; j < n; j++) {
            kg[j] = kt[j] * d[j];
            bg[j] = (kkt[j] * at[j]) * d[j];
            d[j] *= wt[j];
        }
    }

    /* A matrices. One downward sweep of m from t with the running decay d = D(t, m) serves row t
     * of A_rk / A_rb and row t + 1 of A_ak / A_ab, since alpha_{t+1} sees D(t, m) too. alpha has
     * a zero row L so the last row needs no branch. The sums run in 8 interleaved lanes (fixed
     * order, so still deterministic) because in-order float reductions do not vectorize. */
    for (int t = 0; t < len; t++) {
        const float *kkt = WKV7_ROW(kk, t), *at = WKV7_ROW(a, t);
        float *al = c->alpha + (size_t)t * n, *be = c->beta + (size_t)t * n;
        for (int j = 0; j < n; j++) {
            al[j] = -kkt[j];
            be[j] = kkt[j] * at[j];
        }
    }
    for (int j = 0; j < n; j++) c->alpha[(size_t)len * n + j] = 0.0f;
    for (int t = 0; t < len; t++) {
        const float *rt = WKV7_ROW(r, t), *al = c->alpha + (size_t)(t + 1) * n;
        for (int j = 0; j < n; j++) d[j] = 1.0f;
        for (int m = t; m >= 0; m--) {
            if (m < t) {
                const float *wn = WKV7_ROW(w, m + 1);
                for (int j = 0; j < n; j++) d[j] *= wn[j];
            }
            const float *km = WKV7_ROW(k, m), *be = c->beta + (size_t)m * n;
            float rk[8] = {0}, rb[8] = {0}, ak[8] = {0}, ab[8] = {0};
            int j = 0;
            for (; j + 8 <= n; j += 8)
                for (int q = 0; q < 8; q++) {
                    const float x = d[j + q] * km[j + q], z = d[j + q] * be[j + q];
                    rk[q] += rt[j + q] * x;
                    rb[q] += rt[j + q] * z;
                    ak[q] += al[j + q] * x;
                    ab[q] += al[j + q] * z;
                }
            for (; j < n; j++) {
                const float x = d[j] * km[j], z = d[j] * be[j];
                rk[0] += rt[j] * x;
                rb[0] += rt[j] * z;
                ak[0] += al[j] * x;
                ab[0] += al[j] * z;
            }
            c->a_rk[(size_t)t * lm + m] = wkv7_sum8(rk);
            c->a_rb[(size_t)t * lm + m] = wkv7_sum8(rb);
            if (t + 1 < len) {
                c->a_ak[(size_t)(t + 1) * lm + m] = wkv7_sum8(ak);
                c->a_ab[(size_t)(t + 1) * lm + m] = wkv7_sum8(ab);
            }
        }
    }

    /* T = (I - A_ab)^-1, unit lower triangular: T[t][m] = sum_{m <= p < t} A_ab[t][p] T[p][m].
     * |A_ab| <= a < 1 entrywise (kk unit, D <= 1), so the solve is well conditioned at L <= 64;
     * accumulated in double anyway because it is L^3/6 operations and the u's feed everything. */
    for (int t = 0; t < len; t++) {
        float *tt = c->tinv + (size_t)t * lm;
        const float *ab = c->a_ab + (size_t)t * lm;
        for (int m = 0; m < t; m++) {
            double s = 0.0;
            for (int q = m; q < t; q++) s += (double)ab[q] * c->tinv[(size_t)q * lm + m];
            tt[m] = (float)s;
        }
        tt[t] = 1.0f;
    }

    /* The L x N products, written as axpys over the contiguous N axis: akv = A_ak V,
     * yv = A_rk V, wy = T ag, uloc = T akv. */
    for (int t = 0; t < len; t++) {
        float *akv = c->akv + (size_t)t * n, *yv = c->yv + (size_t)t * n;
        float *wy = c->wy + (size_t)t * n, *ul = c->uloc + (size_t)t * n;
        const float *ak = c->a_ak + (size_t)t * lm, *rk = c->a_rk + (size_t)t * lm;
        const float *tt = c->tinv + (size_t)t * lm;
        for (int i = 0; i < n; i++) akv[i] = yv[i] = wy[i] = ul[i] = 0.0f;
        for (int m = 0; m <= t; m++) {
            const float *vm = WKV7_ROW(v, m), *agm = c->ag + (size_t)m * n;
            const float *akvm = c->akv + (size_t)m * n;
            const float fk = m < t ? ak[m] : 0.0f, fr = rk[m], ft = tt[m];
            for (int i = 0; i < n; i++) {
                akv[i] += fk * vm[i];
                yv[i] += fr * vm[i];
                wy[i] += ft * agm[i];
            }
            /* akv row t is complete only after this loop, and T[t][t] = 1 takes it as is. */
            if (m < t)
                for (int i = 0; i < n; i++) ul[i] += ft * akvm[i];
        }
        for (int i = 0; i < n; i++) ul[i] += akv[i];
    }
}

/* Phase 2: the sequential pass. One state row at a time (a GPU thread or row block owns it):
 * u = Uloc + W s0, y = rg s0 + A_rk V + A_rb u, then s0 becomes s_L. */
static void wkv7_chunk_apply(const struct wkv7_chunk *c, int len, size_t stride, const float *v,
                             float *st, float *y) {
    const int n = c->n, lm = c->lmax;
    float *u = c->u;
    for (int i = 0; i < n; i++) {
        float *s = st + (size_t)i * n;
        for (int t = 0; t < len; t++)
            u[t] = c->uloc[(size_t)t * n + i] + wkv7_dot(c->wy + (size_t)t * n, s, n);
        for (int t = 0; t < len; t++) {
            const float *rb = c->a_rb + (size_t)t * lm;
            float acc = wkv7_dot(c->rg + (size_t)t * n, s, n) + c->yv[(size_t)t * n + i];
            for (int m = 0; m <= t; m++) acc += rb[m] * u[m];
            WKV7_ROW(y, t)[i] = acc;
        }
        for (int j = 0; j < n; j++) s[j] *= c->el[j];
        for (int m = 0; m < len; m++) {
            const float vm = WKV7_ROW(v, m)[i], um = u[m];
            const float *kg = c->kg + (size_t)m * n, *bg = c->bg + (size_t)m * n;
            for (int j = 0; j < n; j++) s[j] += vm * kg[j] + um * bg[j];
        }
    }
}

void rwkv7_cpu_wkv7_chunked(const struct rwkv7_wkv7_job *p, int h0, int h1, int chunk,
                            float *scratch) {
    wkv7_check_args(p, h0, h1);
    RWKV7_ASSERT(chunk >= 1 && chunk <= WKV7_MAX_CHUNK && scratch);
    const int n = p->head_size;
    const size_t stride = (size_t)p->n_embd;
    struct wkv7_chunk c = wkv7_chunk_carve(scratch, chunk, n);
    for (int h = h0; h < h1; h++) {
        float *st = p->state + (size_t)h * n * n;
        for (int t0 = 0; t0 < p->n_tok; t0 += chunk) {
            const int len = p->n_tok - t0 < chunk ? p->n_tok - t0 : chunk;
            const size_t o = (size_t)t0 * stride + (size_t)h * n;
            wkv7_chunk_prepare(&c, len, stride, p->r + o, p->w + o, p->k + o, p->v + o,
                               p->kk + o, p->a + o);
            wkv7_chunk_apply(&c, len, stride, p->v + o, st, p->y + o);
        }
    }
}
