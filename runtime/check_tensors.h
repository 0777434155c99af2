/* check_tensors.h: NaN/Inf detection for logits and weights (see check_tensors.c). A model that
 * computes a non-finite number must stop with an error, never print or sample from it. */
#ifndef RWKV7_CHECK_TENSORS_H
#define RWKV7_CHECK_TENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "rwkv7.h"

/* Index of the first NaN or +-Inf in x[0..n), or -1 when all are finite. Thread-safe; costs one
 * read of x (measured in bench/RESULTS.md: well under 1% of a decode step). */
int64_t rwkv7_logits_first_nonfinite(const float *x, size_t n);

/* Scans every weight tensor of a loaded model's file for NaN/Inf, dequantized as the kernels see
 * it, on n_threads threads (<= 0: one per online CPU). Returns RWKV7_ERR_FORMAT naming the first
 * bad tensor (in file order) and element, RWKV7_ERR_OOM, or RWKV7_OK; *n_checked (may be NULL)
 * gets the number of tensors scanned. */
enum rwkv7_status rwkv7_model_check_tensors(const struct rwkv7_model *model, int n_threads, int64_t *n_checked);

#endif
