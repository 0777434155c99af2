/* check_tensors.c: non-finite numbers are errors, not output. Two checks:
 * - rwkv7_logits_first_nonfinite: run by the host on every logits row it receives (generate,
 *   logits, chat, batch), so a model that computes NaN or Inf stops with a message instead of
 *   printing nothing or sampling token 0. It reads each float once with integer ops (exponent
 *   all ones = Inf or NaN) that the compiler vectorises, at about memcpy speed (bench/RESULTS.md).
 * - rwkv7_model_check_tensors (--check-tensors, as llama.cpp names it): every weight of the file,
 *   dequantized block by block exactly as the kernels see it, split over threads. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_tensors.h"
#include "dtype.h"
#include "gguf.h"
#include "model.h"
#include "status.h"

int64_t rwkv7_logits_first_nonfinite(const float *x, size_t n) {
    const size_t block = 1024;
    for (size_t a = 0; a < n; a += block) {
        size_t e = a + block < n ? a + block : n;
        uint32_t bad = 0;
        for (size_t i = a; i < e; i++) {
            uint32_t bits;
            memcpy(&bits, &x[i], 4);
            bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
        }
        if (bad)
            for (size_t i = a; i < e; i++) {
                uint32_t bits;
                memcpy(&bits, &x[i], 4);
                if ((bits & 0x7f800000u) == 0x7f800000u) return (int64_t)i;
            }
    }
    return -1;
}

/* Work is handed out in units of (tensor, range of rows) so one huge tensor (the embedding or the
 * head) is shared by every thread too. */
#define ROWS_PER_UNIT 64

struct scan {
    const struct rwkv7_gguf *g;
    int64_t n_tensors;
    int64_t *unit_start;       /* (n_tensors + 1) first unit of each tensor */
    atomic_llong next;         /* next unit to take */
    atomic_llong first_bad;    /* lowest index of a tensor found to hold NaN/Inf; INT64_MAX = none */
    atomic_bool oom;
};

static int64_t tensor_rows(const struct rwkv7_gguf_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

static void *scan_worker(void *arg) {
    struct scan *s = arg;
    float *row = NULL;
    size_t row_cap = 0;
    int64_t total = s->unit_start[s->n_tensors];
    for (;;) {
        long long u = atomic_fetch_add(&s->next, 1);
        if (u >= total) break;
        int64_t lo = 0, hi = s->n_tensors; /* tensor holding unit u: binary search */
        while (hi - lo > 1) {
            int64_t mid = (lo + hi) / 2;
            if (s->unit_start[mid] <= u) lo = mid;
            else hi = mid;
        }
        if (lo >= atomic_load(&s->first_bad)) continue; /* an earlier tensor is already bad */
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(s->g, lo);
        const struct rwkv7_dtype_info *di = rwkv7_dtype_get(t->type);
        size_t row_bytes = rwkv7_dtype_row_bytes(t->type, t->ne[0]);
        if (!di || !di->to_f32 || !row_bytes) continue;
        if ((size_t)t->ne[0] > row_cap) {
            float *nr = realloc(row, (size_t)t->ne[0] * sizeof *nr);
            if (!nr) {
                atomic_store(&s->oom, true);
                break;
            }
            row = nr;
            row_cap = (size_t)t->ne[0];
        }
        int64_t r0 = (u - s->unit_start[lo]) * ROWS_PER_UNIT, r1 = r0 + ROWS_PER_UNIT, rows = tensor_rows(t);
        if (r1 > rows) r1 = rows;
        for (int64_t r = r0; r < r1; r++) {
            const char *src = (const char *)t->data + (size_t)r * row_bytes;
            const float *v = (const float *)(const void *)src;
            if (t->type != RWKV7_DTYPE_F32) {
                di->to_f32(src, row, t->ne[0]);
                v = row;
            } else if (((uintptr_t)src & 3) != 0) {
                memcpy(row, src, row_bytes);
                v = row;
            }
            if (rwkv7_logits_first_nonfinite(v, (size_t)t->ne[0]) >= 0) {
                long long cur = atomic_load(&s->first_bad);
                while (lo < cur && !atomic_compare_exchange_weak(&s->first_bad, &cur, lo)) {}
                break;
            }
        }
    }
    free(row);
    return NULL;
}

/* The first non-finite element of one tensor, for the message (single-threaded, one tensor). */
static void first_bad_element(const struct rwkv7_gguf_tensor *t, int64_t *index, float *value) {
    const struct rwkv7_dtype_info *di = rwkv7_dtype_get(t->type);
    size_t row_bytes = rwkv7_dtype_row_bytes(t->type, t->ne[0]);
    float *row = malloc((size_t)t->ne[0] * sizeof *row);
    *index = -1;
    *value = 0;
    for (int64_t r = 0; row && r < tensor_rows(t); r++) {
        const char *src = (const char *)t->data + (size_t)r * row_bytes;
        if (t->type == RWKV7_DTYPE_F32) memcpy(row, src, row_bytes);
        else di->to_f32(src, row, t->ne[0]);
        int64_t i = rwkv7_logits_first_nonfinite(row, (size_t)t->ne[0]);
        if (i >= 0) {
            *index = r * t->ne[0] + i;
            *value = row[i];
            break;
        }
    }
    free(row);
}

enum rwkv7_status rwkv7_model_check_tensors(const struct rwkv7_model *m, int n_threads, int64_t *n_checked) {
    struct scan s = {.g = m->gguf, .n_tensors = rwkv7_gguf_n_tensors(m->gguf)};
    atomic_init(&s.next, 0);
    atomic_init(&s.first_bad, INT64_MAX);
    atomic_init(&s.oom, false);
    if (n_checked) *n_checked = 0;
    s.unit_start = malloc((size_t)(s.n_tensors + 1) * sizeof *s.unit_start);
    if (!s.unit_start) return rwkv7_fail(RWKV7_ERR_OOM, "check-tensors: out of memory");
    int64_t units = 0, checked = 0;
    for (int64_t i = 0; i < s.n_tensors; i++) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(s.g, i);
        s.unit_start[i] = units;
        if (!rwkv7_dtype_is_weight(t->type) || !rwkv7_dtype_row_bytes(t->type, t->ne[0])) continue;
        units += (tensor_rows(t) + ROWS_PER_UNIT - 1) / ROWS_PER_UNIT;
        checked++;
    }
    s.unit_start[s.n_tensors] = units;
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 64) n_threads = 64;
    pthread_t th[64];
    int started = 0;
    for (; started < n_threads - 1; started++)
        if (pthread_create(&th[started], NULL, scan_worker, &s) != 0) break;
    scan_worker(&s); /* the calling thread works too, so a failed pthread_create only slows it */
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(s.unit_start);
    if (atomic_load(&s.oom)) return rwkv7_fail(RWKV7_ERR_OOM, "check-tensors: out of memory");
    long long bad = atomic_load(&s.first_bad);
    if (bad != INT64_MAX) {
        const struct rwkv7_gguf_tensor *t = rwkv7_gguf_tensor(s.g, bad);
        int64_t at;
        float v;
        first_bad_element(t, &at, &v);
        return rwkv7_fail(RWKV7_ERR_FORMAT, "check-tensors: tensor '%s' (%s) holds %s at element %lld", t->name,
                          rwkv7_dtype_name(t->type), v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf", (long long)at);
    }
    if (n_checked) *n_checked = checked;
    return RWKV7_OK;
}
