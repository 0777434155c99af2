/* threadpool.c: see threadpool.h. Workers spin briefly on a generation counter before sleeping on
 * a condition variable: a decode step issues a few hundred small parallel-fors, and waking a
 * sleeping thread costs tens of microseconds each time. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "threadpool.h"

struct rwkv7_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    atomic_int generation; /* bumped once per job */
    atomic_int pending;    /* workers still busy with the current job */
    int stop;
    /* current job */
    rwkv7_task_fn fn;
    void *arg;
    int64_t n, chunk;
    int n_parts;
};

struct worker_arg {
    struct rwkv7_threadpool *tp;
    int ith;
};

static void run_part(struct rwkv7_threadpool *tp, int ith) {
    if (ith >= tp->n_parts) return;
    int64_t b = (int64_t)ith * tp->chunk, e = b + tp->chunk;
    if (e > tp->n) e = tp->n;
    if (b < e) tp->fn(tp->arg, b, e, ith);
}

static void *worker_main(void *p) {
    struct worker_arg wa = *(struct worker_arg *)p;
    free(p);
    struct rwkv7_threadpool *tp = wa.tp;
    int seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&tp->generation, memory_order_acquire) == seen && spins < 20000) {
            spins++;
            if ((spins & 255) == 0) sched_yield();
        }
        if (atomic_load_explicit(&tp->generation, memory_order_acquire) == seen) {
            pthread_mutex_lock(&tp->mu);
            while (atomic_load(&tp->generation) == seen && !tp->stop) pthread_cond_wait(&tp->cv_work, &tp->mu);
            pthread_mutex_unlock(&tp->mu);
        }
        pthread_mutex_lock(&tp->mu);
        int stop = tp->stop;
        pthread_mutex_unlock(&tp->mu);
        if (stop) return NULL;
        seen = atomic_load(&tp->generation);
        run_part(tp, wa.ith);
        if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&tp->mu);
            pthread_cond_signal(&tp->cv_done);
            pthread_mutex_unlock(&tp->mu);
        }
    }
}

struct rwkv7_threadpool *rwkv7_threadpool_init(int n_threads) {
    struct rwkv7_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n_threads = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv_work, NULL);
    pthread_cond_init(&tp->cv_done, NULL);
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->pending, 0);
    tp->threads = calloc((size_t)tp->n_threads, sizeof(pthread_t));
    if (!tp->threads) { free(tp); return NULL; }
    for (int i = 1; i < tp->n_threads; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->tp = tp;
            wa->ith = i;
        }
        if (!wa || pthread_create(&tp->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            tp->n_threads = i; /* free() joins the ones that started */
            rwkv7_threadpool_free(tp);
            return NULL;
        }
    }
    return tp;
}

void rwkv7_threadpool_free(struct rwkv7_threadpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->mu);
    tp->stop = 1;
    atomic_fetch_add(&tp->generation, 1);
    pthread_cond_broadcast(&tp->cv_work);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 1; i < tp->n_threads; i++) pthread_join(tp->threads[i], NULL);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cv_work);
    pthread_cond_destroy(&tp->cv_done);
    free(tp->threads);
    free(tp);
}

int rwkv7_threadpool_n_threads(const struct rwkv7_threadpool *tp) { return tp->n_threads; }

void rwkv7_threadpool_run(struct rwkv7_threadpool *tp, int64_t n, int64_t min_chunk, rwkv7_task_fn fn, void *arg) {
    if (n <= 0) return;
    if (min_chunk < 1) min_chunk = 1;
    int64_t parts = (n + min_chunk - 1) / min_chunk;
    if (parts > tp->n_threads) parts = tp->n_threads;
    if (parts <= 1) {
        fn(arg, 0, n, 0);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    tp->n = n;
    tp->n_parts = (int)parts;
    tp->chunk = (n + parts - 1) / parts;
    /* Every worker takes part in every job (those past n_parts just return), so pending always
     * counts all of them and no worker can miss a generation. */
    atomic_store(&tp->pending, tp->n_threads - 1);
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
    pthread_cond_broadcast(&tp->cv_work);
    pthread_mutex_unlock(&tp->mu);
    run_part(tp, 0);
    int spins = 0;
    while (atomic_load_explicit(&tp->pending, memory_order_acquire) != 0 && spins < 200000) {
        spins++;
        if ((spins & 255) == 0) sched_yield();
    }
    if (atomic_load(&tp->pending) != 0) {
        pthread_mutex_lock(&tp->mu);
        while (atomic_load(&tp->pending) != 0) pthread_cond_wait(&tp->cv_done, &tp->mu);
        pthread_mutex_unlock(&tp->mu);
    }
}
