/* wkv7_serial.c: the token-serial WKV-7 recurrence (wkv7.h), vectorized over the key index j.
 * The two sums of a state row (sa_i and y_i) are kept in 16 lanes, lane l adding the terms
 * j = l, l + 16, l + 32, ... in ascending order, and the lanes are then added in one fixed tree
 * (l + 8, then l + 4, l + 2, l + 1). The plain C, AVX (two 8-lane halves) and AVX-512 versions
 * below perform exactly these roundings, with no fused multiply-add, so the state and outputs are
 * the same bits at every RWKV7_CPU_ISA level and every optimization level. Prefill and decode
 * both run this function, so prefill == serial decode holds bit for bit on one machine (the
 * int8 matmul depends on that: cpu/matmul_q8.c). Before this file the sums ran in one scalar
 * chain, which no compiler may vectorize under strict fp32 semantics: a third of a CPU prefill. */
#include <stdint.h>

#include "matmul_simd.h"
#include "status.h"
#include "wkv7.h"

#define WKV_LANES 16
#define WKV_MAX_N 256 /* head sizes beyond this take the scalar lanes (same bits) */

/* The fixed lane tree (also what the vector versions do). */
static float wkv_tree(const float p[WKV_LANES]) {
    float q[8];
    for (int l = 0; l < 8; l++) q[l] = p[l] + p[l + 8];
    for (int l = 0; l < 4; l++) q[l] = q[l] + q[l + 4];
    for (int l = 0; l < 2; l++) q[l] = q[l] + q[l + 2];
    return q[0] + q[1];
}

/* One token of one head, plain C. nkk = -kk, kka = kk * a (computed once per token). */
static void wkv_token_c(float *st, int n, const float *r, const float *w, const float *k, const float *v,
                        const float *nkk, const float *kka, float *y) {
    for (int i = 0; i < n; i++) {
        float *s = st + (size_t)i * n;
        float p[WKV_LANES] = {0};
        for (int j = 0; j < n; j++) p[j % WKV_LANES] = p[j % WKV_LANES] + nkk[j] * s[j];
        const float sa = wkv_tree(p), vi = v[i];
        float q[WKV_LANES] = {0};
        for (int j = 0; j < n; j++) {
            const float x = (s[j] * w[j] + vi * k[j]) + sa * kka[j];
            s[j] = x;
            q[j % WKV_LANES] = q[j % WKV_LANES] + x * r[j];
        }
        y[i] = wkv_tree(q);
    }
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>

/* AVX: lanes 0..7 and 8..15 in two registers; n % 16 == 0. */
__attribute__((target("avx"))) static float wkv_tree_avx(__m256 lo, __m256 hi) {
    const __m256 a8 = _mm256_add_ps(lo, hi);
    const __m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
    const __m128 a2 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
    return _mm_cvtss_f32(_mm_add_ss(a2, _mm_shuffle_ps(a2, a2, 1)));
}

__attribute__((target("avx"))) static void wkv_token_avx(float *st, int n, const float *r, const float *w, const float *k,
                                                          const float *v, const float *nkk, const float *kka, float *y) {
    for (int i = 0; i < n; i++) {
        float *s = st + (size_t)i * n;
        __m256 p0 = _mm256_setzero_ps(), p1 = _mm256_setzero_ps();
        for (int j = 0; j < n; j += 16) {
            p0 = _mm256_add_ps(p0, _mm256_mul_ps(_mm256_loadu_ps(nkk + j), _mm256_loadu_ps(s + j)));
            p1 = _mm256_add_ps(p1, _mm256_mul_ps(_mm256_loadu_ps(nkk + j + 8), _mm256_loadu_ps(s + j + 8)));
        }
        const __m256 sa = _mm256_set1_ps(wkv_tree_avx(p0, p1)), vi = _mm256_set1_ps(v[i]);
        __m256 q0 = _mm256_setzero_ps(), q1 = _mm256_setzero_ps();
        for (int j = 0; j < n; j += 16) {
            for (int h = 0; h < 2; h++) {
                const int o = j + 8 * h;
                const __m256 x = _mm256_add_ps(
                    _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(s + o), _mm256_loadu_ps(w + o)),
                                  _mm256_mul_ps(vi, _mm256_loadu_ps(k + o))),
                    _mm256_mul_ps(sa, _mm256_loadu_ps(kka + o)));
                _mm256_storeu_ps(s + o, x);
                if (h) q1 = _mm256_add_ps(q1, _mm256_mul_ps(x, _mm256_loadu_ps(r + o)));
                else q0 = _mm256_add_ps(q0, _mm256_mul_ps(x, _mm256_loadu_ps(r + o)));
            }
        }
        y[i] = wkv_tree_avx(q0, q1);
    }
}

__attribute__((target("avx512f,avx"))) static float wkv_tree_512(__m512 v) {
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return wkv_tree_avx(_mm512_castps512_ps256(v), hi);
}

__attribute__((target("avx512f,avx"))) static void wkv_token_512(float *st, int n, const float *r, const float *w,
                                                                 const float *k, const float *v, const float *nkk,
                                                                 const float *kka, float *y) {
    for (int i = 0; i < n; i++) {
        float *s = st + (size_t)i * n;
        __m512 p = _mm512_setzero_ps();
        for (int j = 0; j < n; j += 16) p = _mm512_add_ps(p, _mm512_mul_ps(_mm512_loadu_ps(nkk + j), _mm512_loadu_ps(s + j)));
        const __m512 sa = _mm512_set1_ps(wkv_tree_512(p)), vi = _mm512_set1_ps(v[i]);
        __m512 q = _mm512_setzero_ps();
        for (int j = 0; j < n; j += 16) {
            const __m512 x = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(s + j), _mm512_loadu_ps(w + j)),
                                                         _mm512_mul_ps(vi, _mm512_loadu_ps(k + j))),
                                           _mm512_mul_ps(sa, _mm512_loadu_ps(kka + j)));
            _mm512_storeu_ps(s + j, x);
            q = _mm512_add_ps(q, _mm512_mul_ps(x, _mm512_loadu_ps(r + j)));
        }
        y[i] = wkv_tree_512(q);
    }
}
#endif

void rwkv7_cpu_wkv7_serial(const struct rwkv7_wkv7_job *p, int h0, int h1) {
    RWKV7_ASSERT(p && p->n_tok >= 0 && p->head_size > 0 && p->n_embd % p->head_size == 0);
    RWKV7_ASSERT(h0 >= 0 && h0 <= h1 && h1 <= p->n_embd / p->head_size);
    const int n = p->head_size;
    const size_t c = (size_t)p->n_embd;
    void (*tok)(float *, int, const float *, const float *, const float *, const float *, const float *, const float *,
                float *) = wkv_token_c;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    if (n % WKV_LANES == 0 && n <= WKV_MAX_N) {
        const int isa = rwkv7_mm_isa();
        if (isa == RWKV7_MM_AVX512) tok = wkv_token_512;
        else if (isa != RWKV7_MM_SCALAR) tok = wkv_token_avx;
    }
#endif
    float nkk[WKV_MAX_N], kka[WKV_MAX_N];
    for (int h = h0; h < h1; h++) {
        float *st = p->state + (size_t)h * n * n;
        for (int t = 0; t < p->n_tok; t++) {
            const size_t o = (size_t)t * c + (size_t)h * n;
            if (n > WKV_MAX_N) { /* rare: no room for the per-token vectors; same bits, computed inline */
                for (int i = 0; i < n; i++) {
                    float *s = st + (size_t)i * n;
                    float pl[WKV_LANES] = {0}, ql[WKV_LANES] = {0};
                    for (int j = 0; j < n; j++) pl[j % WKV_LANES] = pl[j % WKV_LANES] + -p->kk[o + j] * s[j];
                    const float sa = wkv_tree(pl), vi = p->v[o + i];
                    for (int j = 0; j < n; j++) {
                        const float x = (s[j] * p->w[o + j] + vi * p->k[o + j]) + sa * (p->kk[o + j] * p->a[o + j]);
                        s[j] = x;
                        ql[j % WKV_LANES] = ql[j % WKV_LANES] + x * p->r[o + j];
                    }
                    p->y[o + i] = wkv_tree(ql);
                }
                continue;
            }
            for (int j = 0; j < n; j++) {
                nkk[j] = -p->kk[o + j];
                kka[j] = p->kk[o + j] * p->a[o + j];
            }
            tok(st, n, p->r + o, p->w + o, p->k + o, p->v + o, nkk, kka, p->y + o);
        }
    }
}
