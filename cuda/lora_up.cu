/* lora_up.cu: the fused LoRA up-projections of a time-mix layer (backend.h, rwkv7_lora_up_args):
 * for every term dst = out_fn(W in_fn(x) + bias), then the value residual (v = v + (v_first - v) *
 * dst_vres, or v_first = v), in one kernel launch for all terms (one per weight type when the
 * terms' types differ) instead of the ten unary / matmul / mix launches of the generic fallback.
 * T <= 8 columns (decode, batched decode), or any T in batch-invariant mode; above that the entry
 * runs this backend's own unary / matmul / mix / last_rows entries (the tensor-core tiles win
 * there). The per-thread arithmetic lives in lora_up.cuh (host-tested by test_cuda_lora_up).
 * Reference: op_debug.c fallback_lora_up (the composition this must match), matmul.cu. */
#include <atomic>

#include "common.cuh"
#include "lora_up.cuh"
#include "ops.cuh"

/* One launch's terms, by value in the kernel parameters (< 1 KiB). Blocks [block0, next term's
 * block0) of grid x serve term i, rows_per_block rows each; grid y runs over column chunks. */
struct lu_term {
    float *dst;        /* (M, T) */
    const uint8_t *w;  /* (K, M), TYPE */
    const float *x;    /* (K, T) */
    const float *bias; /* (M) or NULL */
    int64_t M;
    size_t row_bytes;
    int K, lpr, rows_per_block, block0, in_fn, out_fn;
};
struct lu_params {
    lu_term u[RWKV7_LORA_UP_MAX];
    int n;
    int64_t T;
    int vres;         /* index into u of the value-residual term, or -1 */
    float *v;         /* (M_vres, T) when vres >= 0; the record's source otherwise */
    float *v_first;   /* (M_vres, T) read by the mix; the record's destination */
    int64_t n_record; /* floats to copy v -> v_first (record), 0 for none */
};

/* ------------------------------------------------------------------------------------------------
 * kernel */

/* Block = LU_THREADS threads on rows_per_block rows of one term and columns [t0, t0 + NCOL):
 * the columns of x (after in_fn) are staged in shared memory once, then the lanes of each row
 * (lora_up.cuh) walk the row's groups, sum by butterfly shuffles inside their lpr-lane slice, and
 * lanes c < ncol finish column c: bias + out_fn, and for the value-residual term the mix of the
 * same (row, column) of v - dst_vres is final there, and no other block touches that element. The
 * record copy (layer 0) is spread over all blocks. Loop bounds are uniform per block, so every
 * lane reaches every shuffle; rows past M compute zeros and store nothing. */
template <int TYPE, int NCOL>
static __global__ void __launch_bounds__(LU_THREADS, 2) lora_up_kernel(const __grid_constant__ lu_params p) {
    extern __shared__ __align__(16) float xs[]; /* NCOL x K, lora_up.cuh's layout */
    const int tid = threadIdx.x;
    int ti = 0;
#pragma unroll
    for (int i = 1; i < RWKV7_LORA_UP_MAX; i++)
        if (i < p.n && (int)blockIdx.x >= p.u[i].block0) ti = i;
    const lu_term &u = p.u[ti];
    const int K = u.K, lpr = u.lpr;
    const int64_t t0 = (int64_t)blockIdx.y * NCOL;
    const int ncol = p.T - t0 < NCOL ? (int)(p.T - t0) : NCOL;

    /* the record copy: this block's share of v_first = v, independent of everything else */
    if (p.n_record > 0) {
        const int64_t nb = (int64_t)gridDim.x * gridDim.y, b = (int64_t)blockIdx.y * gridDim.x + blockIdx.x;
        const bool v16 = ((reinterpret_cast<uintptr_t>(p.v) | reinterpret_cast<uintptr_t>(p.v_first)) & 15) == 0;
        const int64_t n4 = v16 ? p.n_record / 4 : 0;
        for (int64_t i = b * LU_THREADS + tid; i < n4; i += nb * LU_THREADS)
            reinterpret_cast<float4 *>(p.v_first)[i] = __ldg(reinterpret_cast<const float4 *>(p.v) + i);
        for (int64_t i = 4 * n4 + b * LU_THREADS + tid; i < p.n_record; i += nb * LU_THREADS) p.v_first[i] = p.v[i];
    }

    const float *xc = u.x + t0 * K;
    const bool x16 = (reinterpret_cast<uintptr_t>(u.x) & 15) == 0; /* K % 8 == 0: every column aligned */
    for (int i = tid; i < ncol * K / 4; i += LU_THREADS) lu_stage4(xs, xc, K, i, u.in_fn, x16);
    __syncthreads();

    const dq_tables tb = dq_tab();
    const int l = tid % lpr, slots = LU_THREADS / lpr;
    const int64_t r0 = (int64_t)(blockIdx.x - u.block0) * u.rows_per_block;
    const bool mix = ti == p.vres;
    for (int r = tid / lpr; r < u.rows_per_block; r += slots) {
        const int64_t row = r0 + r;
        const bool live = row < u.M;
        float acc[NCOL];
#pragma unroll
        for (int c = 0; c < NCOL; c++) acc[c] = 0.0f;
        if (live) lu_lane_dot<TYPE, NCOL>(u.w + (size_t)row * u.row_bytes, xs, K, l, lpr, ncol, acc, tb);
        /* butterfly inside the lpr-lane slice (aligned, power of two): every lane gets the sum */
        for (int o = lpr / 2; o > 0; o /= 2) {
#pragma unroll
            for (int c = 0; c < NCOL; c++) acc[c] += __shfl_xor_sync(0xffffffffu, acc[c], o);
        }
        if (!live) continue;
#pragma unroll
        for (int c = 0; c < NCOL; c++) {
            if (c < ncol && c % lpr == l) {
                const int64_t at = (t0 + c) * u.M + row;
                const float d = lu_out(acc[c], u.bias, row, u.out_fn);
                u.dst[at] = d;
                if (mix) p.v[at] = lu_mix(p.v[at], p.v_first[at], d);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * launchers */

/* The IQ tables of this translation unit (dequant.cuh keeps one copy per .cu), uploaded on the
 * first call per device: cudaMemcpyToSymbol is synchronous and outside the stream, allowed in the
 * relaxed graph capture backend.cu uses, and done long before any kernel of ours reads them. */
static std::atomic<unsigned long long> g_tables_up{0};

static enum rwkv7_status tables_ready(int device) {
    const unsigned long long bit = device < 64 ? 1ull << device : 0;
    if (bit && (g_tables_up.load() & bit)) return RWKV7_OK;
    CUDA_CHECK(dq_upload_tables());
    g_tables_up.fetch_or(bit);
    return RWKV7_OK;
}

template <int TYPE, int NCOL> static void launch_n(cudaStream_t s, const lu_params &p, unsigned gx, int max_k) {
    const dim3 grid(gx, ceil_div(p.T, NCOL));
    lora_up_kernel<TYPE, NCOL><<<grid, LU_THREADS, (size_t)NCOL * max_k * sizeof(float), s>>>(p);
}

template <int TYPE> static void launch(cudaStream_t s, const lu_params &p, unsigned gx, int max_k) {
    const int ncol = lu_ncol(p.T);
    if (ncol == 1)
        launch_n<TYPE, 1>(s, p, gx, max_k);
    else if (ncol == 4)
        launch_n<TYPE, 4>(s, p, gx, max_k);
    else
        launch_n<TYPE, 8>(s, p, gx, max_k);
}

RWKV7_OP_SIG(rwkv7_cuda_lora_up, lora_up) {
    struct rwkv7_cuda *cu = rwkv7_cuda_of(be);
    CUDA_LIVE();
    const int64_t T = rwkv7_tensor_nrows(args->u[0].x);
    if (T == 0) return RWKV7_OK;
    bool fused = T <= LU_MAX_NCOL || cu->row_invariant;
    for (int i = 0; i < args->n; i++) {
        const int64_t K = args->u[i].w->ne[0];
        fused = fused && K % 8 == 0 && K >= 8 && K <= LU_MAX_K && rwkv7_cuda_weight_type_ok(args->u[i].w->type);
    }
    /* T > 8 outside the batch-invariant mode, ranks the kernel does not take: the generic
     * composition on this backend's own entries */
    if (!fused || ceil_div(T, LU_MAX_NCOL) > 65535) return rwkv7_op_compose(be, RWKV7_OP_LORA_UP, args);
    RWKV7_TRY(tables_ready(cu->device));
    const int n_sm = cu->prop.multiProcessorCount > 0 ? cu->prop.multiProcessorCount : 1;
    /* One launch per distinct weight type (one in practice); the record copy rides on the first. */
    bool done[RWKV7_LORA_UP_MAX] = {false, false, false, false};
    bool first = true;
    for (int i = 0; i < args->n; i++) {
        if (done[i]) continue;
        const int type = args->u[i].w->type;
        lu_params p = {};
        p.T = T;
        p.vres = -1;
        p.v = args->v ? tptr<float>(args->v) : NULL;
        p.v_first = args->v_first ? tptr<float>(args->v_first) : NULL;
        p.n_record = first && args->vres == RWKV7_LORA_VRES_RECORD ? rwkv7_tensor_nelem(args->v) : 0;
        int max_k = 0;
        int64_t rows_total = 0;
        for (int j = i; j < args->n; j++) {
            const struct rwkv7_lora_up_term *a = &args->u[j];
            if (done[j] || a->w->type != type) continue;
            done[j] = true;
            lu_term &t = p.u[p.n];
            if (args->vres == j) p.vres = p.n;
            t.dst = tptr<float>(a->dst), t.w = tptr<uint8_t>(a->w), t.x = tptr<float>(a->x);
            t.bias = a->bias ? tptr<float>(a->bias) : NULL;
            t.K = (int)a->w->ne[0], t.M = a->w->ne[1];
            t.row_bytes = rwkv7_dtype_row_bytes(type, t.K);
            t.lpr = lu_lanes(t.K);
            t.in_fn = a->in_fn, t.out_fn = a->out_fn;
            max_k = t.K > max_k ? t.K : max_k;
            rows_total += t.M;
            p.n++;
        }
        unsigned gx = 0;
        for (int j = 0; j < p.n; j++) {
            lu_term &t = p.u[j];
            t.rows_per_block = lu_rows_per_block(t.lpr, rows_total, n_sm);
            t.block0 = (int)gx;
            gx += ceil_div(t.M, t.rows_per_block);
        }
        if (gx == 0) continue;
        switch (type) {
#define LORA_UP_CASE(T_)                                                                                               \
    case RWKV7_DTYPE_##T_: launch<RWKV7_DTYPE_##T_>(cu->stream, p, gx, max_k); break;
            RWKV7_CUDA_WEIGHT_TYPES(LORA_UP_CASE)
#undef LORA_UP_CASE
        default:
            return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "cuda: lora_up: type %s not supported", rwkv7_dtype_name(type));
        }
        CUDA_LAUNCHED(cu);
        first = false;
    }
    return RWKV7_OK;
}
