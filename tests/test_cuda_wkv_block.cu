/* test_cuda_wkv_block.cu: host-only check of the fused time-mix kernel of the CUDA backend
 * (cuda/wkv7.cu wkv_block_kernel: key_prep + serial wkv7 + wkv_out in one block per head). Its
 * per-lane and per-thread functions (cuda/wkv7_block.cuh) are compiled for the host and driven as
 * the kernel drives them: per chunk of tokens, step A for every token and lane, a warp sum as the
 * butterfly shuffles form it, then B for every (row, part) with the parts combined in butterfly
 * order, then C; shared memory is poisoned with NaN before each chunk so a read before its write
 * shows. The reference is the CPU backend's wkv_block (the generic fallback: key_prep, wkv7 and
 * wkv_out through the op door), on dst and the state, for decode, short steps, several chunks,
 * two sequences in scattered slots, head sizes 32, 64, 128. Limits: those test_cuda_wkv7 sets for
 * the serial kernel (rel 1e-5, NMSE 1e-12); check_sensitivity shows they can fail. Needs no GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda/wkv7_block.cuh"

extern "C" {
#include "backend.h"
#include "dtype.h"
#include "status.h"
#include "testing.h"
}

#define MAX_REL 1e-5
#define MAX_NMSE 1e-12
#define N_SLOTS 3

static struct rwkv7_backend *g_cpu;
static double g_worst_rel, g_worst_nmse;

/* v + v' over 32 lanes in the order of warp_sum's xor butterfly (16, 8, 4, 2, 1); lane 0's sum. */
static float butterfly(const float *part, int n) {
    float v[32];
    memcpy(v, part, sizeof(float) * (size_t)n);
    for (int o = n / 2; o > 0; o >>= 1) {
        float nx[32];
        for (int l = 0; l < n; l++) nx[l] = v[l] + v[l ^ o];
        memcpy(v, nx, sizeof(float) * (size_t)n);
    }
    return v[0];
}

/* Same for the P lanes of a row, xor order 1, 2, .. as the kernel's loops over o2. */
static float row_sum(const float *part, int P) {
    float v[4];
    memcpy(v, part, sizeof(float) * (size_t)P);
    for (int o = 1; o < P; o <<= 1) {
        float nx[4];
        for (int l = 0; l < P; l++) nx[l] = v[l] + v[l ^ o];
        memcpy(v, nx, sizeof(float) * (size_t)P);
    }
    return v[0];
}

/* The kernel's grid on the host: block (s * H + h), threads tid = P i + p. */
template <int N>
static void emulate(const wkvb_io &io, float *state, const int32_t *slots, int n_seq, int n_tok) {
    using SM = wkvb_smem<N>;
    constexpr int P = SM::P, TC = SM::TC, NT = N * P;
    SM *sm = (SM *)malloc(sizeof(SM));
    float(*S)[WKV7_PART] = (float(*)[WKV7_PART])malloc(sizeof(float) * NT * WKV7_PART);
    const int64_t C = io.C, H = C / N;
    for (int64_t bx = 0; bx < n_seq * H; bx++) {
        const int64_t s = bx / H, h = bx % H, hN = h * N;
        const int32_t slot = slots[s];
        if (slot < 0 || slot >= N_SLOTS) continue;
        for (int tid = 0; tid < NT; tid++)
            memcpy(S[tid], state + (int64_t)slot * C * N + hN * N + (int64_t)(tid / P) * N + (tid % P) * WKV7_PART,
                   sizeof S[tid]);
        const int64_t base = s * n_tok * C + hN;
        for (int t0 = 0; t0 < n_tok; t0 += TC) {
            const int nt = n_tok - t0 < TC ? n_tok - t0 : TC;
            float *poison = (float *)sm;
            for (size_t x = 0; x < sizeof(SM) / sizeof(float); x++) poison[x] = NAN;
            float part[32];
            for (int tt = 0; tt < nt; tt++) { /* A */
                const int64_t o = base + (int64_t)(t0 + tt) * C;
                for (int lane = 0; lane < 32; lane++) part[lane] = wkvb_a1<N>(io, o, hN, lane);
                const float ss = butterfly(part, 32);
                for (int lane = 0; lane < 32; lane++) wkvb_a2<N>(*sm, io, o, hN, tt, lane, ss);
            }
            for (int tt = 0; tt < nt; tt++) /* B */
                for (int i = 0; i < N; i++) {
                    float sa[4], yv[4];
                    for (int p = 0; p < P; p++) sa[p] = wkvb_b_sa<N>(*sm, S[P * i + p], tt, p);
                    const float sum = row_sum(sa, P);
                    for (int p = 0; p < P; p++) yv[p] = wkvb_b_update<N>(*sm, S[P * i + p], tt, p, i, sum);
                    sm->y[tt][i] = row_sum(yv, P);
                }
            for (int tt = 0; tt < nt; tt++) { /* C */
                const int64_t o = base + (int64_t)(t0 + tt) * C;
                float px[32], py[32];
                for (int lane = 0; lane < 32; lane++) {
                    const float2 f = wkvb_c1<N>(*sm, io, hN, tt, lane);
                    px[lane] = f.x, py[lane] = f.y;
                }
                const float mean = butterfly(px, 32) / (float)N, bonus = butterfly(py, 32);
                for (int lane = 0; lane < 32; lane++) part[lane] = wkvb_c2<N>(*sm, tt, lane, mean);
                const float var = butterfly(part, 32);
                for (int lane = 0; lane < 32; lane++) wkvb_c3<N>(*sm, io, o, hN, tt, lane, mean, var, bonus);
            }
        }
        for (int tid = 0; tid < NT; tid++)
            memcpy(state + (int64_t)slot * C * N + hN * N + (int64_t)(tid / P) * N + (tid % P) * WKV7_PART, S[tid],
                   sizeof S[tid]);
    }
    free(S);
    free(sm);
}

/* A CPU-backend tensor (C-major (ne0, ne1)) holding data. */
static struct rwkv7_tensor cpu_tensor(int type, int64_t ne0, int64_t ne1, const void *data) {
    struct rwkv7_tensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.ne[0] = ne0, t.ne[1] = ne1, t.ne[2] = t.ne[3] = 1;
    t.nbytes = (size_t)(ne0 * ne1) * 4;
    if (g_cpu->i->buf_alloc(g_cpu, t.nbytes, &t.buf) != RWKV7_OK || g_cpu->i->buf_set(g_cpu, t.buf, 0, data, t.nbytes) != RWKV7_OK) {
        fprintf(stderr, "FAIL: cpu buffer: %s\n", rwkv7_last_error());
        exit(1);
    }
    return t;
}

static void compare(const char *what, const float *got, const float *ref, size_t n, double *rel, double *nmse) {
    double maxd = 0, maxr = 0, sd = 0, sr = 0;
    for (size_t x = 0; x < n; x++) {
        const double d = fabs((double)got[x] - ref[x]);
        if (!(d <= maxd)) maxd = isnan(d) ? INFINITY : d;
        maxr = fmax(maxr, fabs(ref[x]));
        sd += d * d, sr += (double)ref[x] * ref[x];
    }
    *rel = maxr > 0 ? maxd / maxr : maxd;
    *nmse = isnan(sd) ? INFINITY : sr > 0 ? sd / sr : sd;
    (void)what;
}

/* One case; returns the worse of the dst and state relative errors (perturb: nudge one v). */
template <int N>
static double check_case(int n_seq, int n_tok, int H, unsigned long long seed, bool perturb) {
    struct test_rng g = {seed};
    const int C = H * N, rows = n_seq * n_tok;
    const size_t nx = (size_t)C * rows, ns = (size_t)C * N * N_SLOTS;
    enum { R, W, K, V, A, G, KK_, KA, RK, LW, LB, NV };
    float *f[NV];
    const size_t len[NV] = {nx, nx, nx, nx, nx, nx, (size_t)C, (size_t)C, (size_t)C, (size_t)C, (size_t)C};
    for (int b = 0; b < NV; b++) f[b] = (float *)malloc(len[b] * sizeof(float));
    for (size_t x = 0; x < nx; x++) {
        f[R][x] = test_rng_uniform(&g, -1, 1), f[W][x] = test_rng_decay(&g), f[K][x] = test_rng_uniform(&g, -1, 1);
        f[V][x] = test_rng_uniform(&g, -1, 1), f[A][x] = test_rng_uniform(&g, 0.001f, 0.999f);
        f[G][x] = test_rng_uniform(&g, 0, 1);
    }
    for (int c = 0; c < C; c++) {
        f[KK_][c] = test_rng_uniform(&g, 0.5f, 1.5f), f[KA][c] = test_rng_uniform(&g, 0, 1);
        f[RK][c] = test_rng_uniform(&g, -0.5f, 0.5f), f[LW][c] = test_rng_uniform(&g, 0.5f, 1.5f);
        f[LB][c] = test_rng_uniform(&g, -0.2f, 0.2f);
    }
    float *state = (float *)malloc(ns * sizeof(float)), *st_ref = (float *)malloc(ns * sizeof(float));
    for (size_t x = 0; x < ns; x++) state[x] = test_rng_uniform(&g, -0.5f, 0.5f);
    memcpy(st_ref, state, ns * sizeof(float));
    const int32_t slots[2] = {2, 0};
    float *dst = (float *)malloc(nx * sizeof(float)), *dst_ref = (float *)malloc(nx * sizeof(float));
    memset(dst, 0, nx * sizeof(float));

    /* reference: the CPU backend's wkv_block (generic fallback) */
    struct rwkv7_tensor t[NV];
    for (int b = 0; b < NV; b++) t[b] = cpu_tensor(RWKV7_DTYPE_F32, C, b < KK_ ? rows : 1, f[b]);
    struct rwkv7_tensor td = cpu_tensor(RWKV7_DTYPE_F32, C, rows, dst), tkk = cpu_tensor(RWKV7_DTYPE_F32, C, rows, dst);
    struct rwkv7_tensor tkm = cpu_tensor(RWKV7_DTYPE_F32, C, rows, dst), ty = cpu_tensor(RWKV7_DTYPE_F32, C, rows, dst);
    struct rwkv7_tensor tst = cpu_tensor(RWKV7_DTYPE_F32, (int64_t)C * N, N_SLOTS, st_ref);
    struct rwkv7_tensor tsl = cpu_tensor(RWKV7_DTYPE_I32, n_seq, 1, slots);
    struct rwkv7_wkv_block_args wa;
    memset(&wa, 0, sizeof wa);
    wa.dst = &td, wa.state = &tst, wa.slots = &tsl, wa.r = &t[R], wa.w = &t[W], wa.k = &t[K], wa.v = &t[V];
    wa.a = &t[A], wa.g = &t[G], wa.k_k = &t[KK_], wa.k_a = &t[KA], wa.r_k = &t[RK], wa.ln_w = &t[LW];
    wa.ln_b = &t[LB], wa.kk = &tkk, wa.kmod = &tkm, wa.y = &ty, wa.n_tok = n_tok, wa.head_size = N;
    wa.eps = RWKV7_GROUPNORM_EPS;
    const enum rwkv7_status st = rwkv7_op_wkv_block(g_cpu, &wa);
    CHECK(st == RWKV7_OK, "cpu wkv_block: %s", rwkv7_last_error());
    g_cpu->i->buf_get(g_cpu, td.buf, 0, dst_ref, nx * sizeof(float));
    g_cpu->i->buf_get(g_cpu, tst.buf, 0, st_ref, ns * sizeof(float));
    struct rwkv7_tensor *all[] = {&td, &tkk, &tkm, &ty, &tst, &tsl};
    for (int b = 0; b < NV; b++) g_cpu->i->buf_free(g_cpu, t[b].buf);
    for (size_t b = 0; b < sizeof all / sizeof all[0]; b++) g_cpu->i->buf_free(g_cpu, all[b]->buf);

    if (perturb) f[V][(size_t)(n_tok - 1) * C + 3] += 0.5f; /* last token of sequence 0, head 0 */
    const wkvb_io io = {f[R], f[W], f[K], f[V], f[A], f[G], dst, f[KK_], f[KA], f[RK], f[LW], f[LB], C,
                        RWKV7_GROUPNORM_EPS};
    emulate<N>(io, state, slots, n_seq, n_tok);
    double rd, nd, rs, nss;
    compare("dst", dst, dst_ref, nx, &rd, &nd);
    compare("state", state, st_ref, ns, &rs, &nss);
    if (!perturb) {
        g_worst_rel = fmax(g_worst_rel, fmax(rd, rs));
        g_worst_nmse = fmax(g_worst_nmse, fmax(nd, nss));
        CHECK(rd <= MAX_REL && nd <= MAX_NMSE && rs <= MAX_REL && nss <= MAX_NMSE,
              "wkv_block N=%d n_seq=%d n_tok=%d: dst rel %.3g nmse %.3g, state rel %.3g nmse %.3g", N, n_seq, n_tok, rd,
              nd, rs, nss);
    }
    for (int b = 0; b < NV; b++) free(f[b]);
    free(state), free(st_ref), free(dst), free(dst_ref);
    return fmax(rd, rs);
}

int main(void) {
    const struct rwkv7_backend_reg *r = rwkv7_backend_reg_find("cpu");
    if (!r || !r->init || r->init(NULL, 1, &g_cpu) != RWKV7_OK) {
        fprintf(stderr, "FAIL: cpu backend: %s\n", rwkv7_last_error());
        return 1;
    }
    unsigned long long seed = 7;
    check_case<32>(1, 1, 2, seed++, false); /* decode */
    check_case<64>(2, 1, 3, seed++, false);
    check_case<128>(2, 1, 2, seed++, false);
    check_case<64>(2, 5, 2, seed++, false); /* a short step */
    check_case<32>(1, 40, 2, seed++, false); /* past the 32-token chunk */
    check_case<64>(2, 17, 1, seed++, false); /* past the 16-token chunk, ragged */
    check_case<128>(1, 20, 2, seed++, false); /* past the 8-token chunk */
    /* sensitivity: one changed v must move the result far past the limit */
    const double e = check_case<64>(1, 3, 1, seed++, true);
    CHECK(e > 100 * MAX_REL, "a perturbed input went unnoticed: rel %.3g", e);
    fprintf(stderr, "worst fused wkv_block (host) vs CPU composition: rel %.3g nmse %.3g (limits %.0e, %.0e)\n",
            g_worst_rel, g_worst_nmse, MAX_REL, MAX_NMSE);
    rwkv7_backend_free(g_cpu);
    return test_finish("test_cuda_wkv_block");
}
