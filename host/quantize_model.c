/* quantize_model.c: see quantize_model.h. Work is cut into slices of whole rows (about 1M
 * elements each) that threads take from an atomic counter; a slice dequantizes its source rows to
 * f32 and quantizes them into the output buffer, so the result does not depend on the thread
 * count. The progress line is printed by the calling thread only. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "quantize.h"
#include "quantize_model.h"
#include "status.h"

struct slice {
    const struct rwkv7_gguf_tensor *t;
    int type;              /* target */
    uint8_t *dst;          /* the tensor's output buffer */
    int64_t row0, n_rows;
};

struct pool {
    struct slice *s;
    int n;
    atomic_int next;
    atomic_llong done;     /* elements converted */
    long long total;
    atomic_int failed;
    bool progress;
    bool printed;          /* a progress line is on the terminal */
};

static bool is_float(int t) { return t == RWKV7_DTYPE_F32 || t == RWKV7_DTYPE_F16 || t == RWKV7_DTYPE_BF16; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run_slice(const struct slice *s, float *buf) {
    const struct rwkv7_gguf_tensor *t = s->t;
    const int64_t ne0 = t->ne[0];
    const size_t in_row = rwkv7_dtype_row_bytes(t->type, ne0), out_row = rwkv7_dtype_row_bytes(s->type, ne0);
    const uint8_t *src = (const uint8_t *)t->data + (size_t)s->row0 * in_row;
    rwkv7_dtype_get(t->type)->to_f32(src, buf, ne0 * s->n_rows);
    /* the type and row length were checked when planning, so this cannot fail */
    enum rwkv7_status st = rwkv7_quantize_rows(s->type, buf, s->dst + (size_t)s->row0 * out_row, s->n_rows, ne0);
    RWKV7_ASSERT(st == RWKV7_OK);
}

/* Takes slices until none are left. The reporter (the calling thread) also prints progress. */
static void work(struct pool *p, bool reporter) {
    float *buf = NULL;
    size_t cap = 0;
    const double t0 = now_s();
    double last = t0;
    for (;;) {
        const int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) break;
        const size_t need = (size_t)(p->s[i].t->ne[0] * p->s[i].n_rows);
        if (need > cap) {
            free(buf);
            buf = malloc(need * sizeof(float));
            cap = buf ? need : 0;
            if (!buf) {
                atomic_store(&p->failed, 1);
                break;
            }
        }
        run_slice(&p->s[i], buf);
        const long long done = atomic_fetch_add(&p->done, (long long)need) + (long long)need;
        const double t = now_s();
        if (reporter && p->progress && t - last > 0.25) {
            last = t;
            p->printed = true;
            fprintf(stderr, "\rquantize: %5.1f%% of %.1fM weights, %.1f s", 100.0 * (double)done / (double)p->total,
                    (double)p->total / 1e6, t - t0);
            fflush(stderr);
        }
    }
    free(buf);
}

static void *worker(void *arg) {
    work(arg, false);
    return NULL;
}

static bool skip_key(const struct rwkv7_gguf *g, int64_t i) {
    const struct rwkv7_gguf_str k = rwkv7_gguf_kv_key(g, i);
    static const char *const skip[] = {"general.alignment", "general.file_type", "general.quantization_version"};
    for (size_t j = 0; j < sizeof skip / sizeof skip[0]; j++)
        if (k.len == strlen(skip[j]) && !memcmp(k.ptr, skip[j], (size_t)k.len)) return true;
    return false;
}

void quant_model_free(struct quant_model *q) {
    if (!q) return;
    rwkv7_gguf_writer_free(q->w);
    for (int i = 0; i < q->n_bufs; i++) free(q->bufs[i]);
    free(q->bufs);
    free(q);
}

enum rwkv7_status quant_model_build(const struct rwkv7_gguf *in, const struct quant_model_opts *o,
                                    struct quant_model **out) {
    *out = NULL;
    struct rwkv7_gguf_str arch;
    if (rwkv7_gguf_get_str(in, "general.architecture", &arch) != RWKV7_OK || arch.len != 5 || memcmp(arch.ptr, "rwkv7", 5))
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "quantize: not an rwkv7 model (general.architecture is not \"rwkv7\")");
    const int64_t nt = rwkv7_gguf_n_tensors(in);
    int *types = malloc((size_t)(nt ? nt : 1) * sizeof *types);
    struct quant_model *q = calloc(1, sizeof *q);
    struct slice *slices = NULL;
    enum rwkv7_status st = RWKV7_OK;
    if (!types || !q) {
        st = rwkv7_fail(RWKV7_ERR_OOM, "quantize: out of memory");
        goto fail;
    }
    /* plan: every refusal happens here, before any work */
    long long n_slices = 0, total = 0;
    const int64_t slice_elems = 1 << 20;
    for (int64_t i = 0; i < nt; i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(in, i);
        int type = t->type;
        if (bench_tensor_quantizable(t->name, t->n_dims)) type = bench_ftype_tensor_type(o->ft, t->name, t->ne[0]);
        if (type < 0) {
            st = rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "quantize: llama.cpp cannot make %s from tensor '%s' (row of %lld)",
                            o->ft->name, t->name, (long long)t->ne[0]);
            goto fail;
        }
        types[i] = type;
        q->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        q->bytes_in += t->nbytes;
        if (type == t->type) {
            q->bytes_out += t->nbytes;
            continue;
        }
        if (!is_float(t->type) && !o->allow_requantize) {
            st = rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "quantize: tensor '%s' is already %s; requantizing loses quality, "
                            "pass --allow-requantize to do it anyway", t->name, rwkv7_dtype_name(t->type));
            goto fail;
        }
        if (!rwkv7_dtype_is_weight(t->type) || !rwkv7_quantize_supported(type)) {
            st = rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "quantize: cannot convert tensor '%s' from %s to %s", t->name,
                            rwkv7_dtype_name(t->type), rwkv7_dtype_name(type));
            goto fail;
        }
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        const int64_t per = slice_elems / t->ne[0] > 0 ? slice_elems / t->ne[0] : 1;
        n_slices += (rows + per - 1) / per;
        total += t->ne[0] * rows;
        q->bytes_out += rwkv7_dtype_row_bytes(type, t->ne[0]) * (uint64_t)rows;
        q->n_converted++;
    }
    q->bufs = calloc((size_t)(q->n_converted ? q->n_converted : 1), sizeof *q->bufs);
    slices = calloc((size_t)(n_slices ? n_slices : 1), sizeof *slices);
    if (!q->bufs || !slices || (st = rwkv7_gguf_writer_init(&q->w)) != RWKV7_OK) {
        if (st == RWKV7_OK) st = rwkv7_fail(RWKV7_ERR_OOM, "quantize: out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < rwkv7_gguf_n_kv(in) && st == RWKV7_OK; i++)
        if (!skip_key(in, i)) st = rwkv7_gguf_writer_copy_kv(q->w, in, i);
    if (st == RWKV7_OK && !is_float(o->ft->body)) st = rwkv7_gguf_writer_add_u32(q->w, "general.quantization_version", 2);
    if (st == RWKV7_OK) st = rwkv7_gguf_writer_add_u32(q->w, "general.file_type", (uint32_t)o->ft->id);
    int ns = 0;
    for (int64_t i = 0; i < nt && st == RWKV7_OK; i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(in, i);
        if (types[i] == t->type) {
            st = rwkv7_gguf_writer_add_tensor_ref(q->w, t->name, t->n_dims, t->ne, t->type, t->data, t->nbytes);
            continue;
        }
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        const size_t nbytes = rwkv7_dtype_row_bytes(types[i], t->ne[0]) * (size_t)rows;
        uint8_t *buf = malloc(nbytes ? nbytes : 1);
        if (!buf) {
            st = rwkv7_fail(RWKV7_ERR_OOM, "quantize: out of memory for tensor '%s' (%zu bytes)", t->name, nbytes);
            break;
        }
        q->bufs[q->n_bufs++] = buf;
        const int64_t per = slice_elems / t->ne[0] > 0 ? slice_elems / t->ne[0] : 1;
        for (int64_t r = 0; r < rows; r += per)
            slices[ns++] = (struct slice){t, types[i], buf, r, rows - r < per ? rows - r : per};
        st = rwkv7_gguf_writer_add_tensor_ref(q->w, t->name, t->n_dims, t->ne, types[i], buf, nbytes);
    }
    if (st != RWKV7_OK) goto fail;
    struct pool p = {slices, ns, 0, 0, total, 0, o->progress, false};
    int n_threads = o->n_threads < 1 ? 1 : o->n_threads > 256 ? 256 : o->n_threads;
    pthread_t th[256];
    int started = 0;
    for (int i = 1; i < n_threads; i++)
        if (pthread_create(&th[started], NULL, worker, &p) == 0) started++;
    work(&p, true);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (p.printed) fprintf(stderr, "\n");
    if (atomic_load(&p.failed)) {
        st = rwkv7_fail(RWKV7_ERR_OOM, "quantize: out of memory for a work buffer");
        goto fail;
    }
    free(slices);
    free(types);
    *out = q;
    return RWKV7_OK;
fail:
    free(slices);
    free(types);
    quant_model_free(q);
    return st;
}
