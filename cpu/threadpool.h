/* threadpool.h: a fixed pool of pthreads running one parallel-for at a time. The caller thread
 * takes part, so a pool of n threads starts n - 1 workers. Tasks are split statically into
 * contiguous ranges: each op's work per item is uniform, and static ranges keep results
 * independent of timing (same bits for the same thread count). */
#ifndef RWKV7_THREADPOOL_H
#define RWKV7_THREADPOOL_H

#include <stdint.h>

struct rwkv7_threadpool;

/* fn(arg, begin, end, thread_index) processes items [begin, end). */
typedef void (*rwkv7_task_fn)(void *arg, int64_t begin, int64_t end, int ith);

/* NULL on failure (thread creation). n_threads >= 1. */
struct rwkv7_threadpool *rwkv7_threadpool_init(int n_threads);
void rwkv7_threadpool_free(struct rwkv7_threadpool *tp);
int rwkv7_threadpool_n_threads(const struct rwkv7_threadpool *tp);
/* Runs fn over n items, split across at most n_threads ranges of at least min_chunk items;
 * returns when all ranges are done. */
void rwkv7_threadpool_run(struct rwkv7_threadpool *tp, int64_t n, int64_t min_chunk, rwkv7_task_fn fn, void *arg);

#endif
