/* dtype_random.h: random but valid weight blocks of every weight type, for synthetic benchmark
 * models and for random weights in GPU op tests. Deterministic for a seed on every host. */
#ifndef RWKV7_DTYPE_RANDOM_H
#define RWKV7_DTYPE_RANDOM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* CUDA sources include this */
#endif

/* Fills n_rows rows of ne0 elements (rwkv7_dtype_row_bytes(type, ne0) bytes each, back to back)
 * of a weight type (rwkv7_dtype_is_weight) with random blocks: random quant bits, grid indices and
 * signs, and finite scales chosen so the dequantized values have a standard deviation close to
 * `scale`: within about 10% for scale in [1e-3, 1e3], except NVFP4, whose 4-bit-exponent block
 * scale only reaches stds in about [6e-3, 1.3e3] (clamped to that range), and types whose fp16
 * scale goes subnormal below 1e-3 (losing a few percent). F32/F16/BF16 get near-normal values of
 * that std (F16 clamped to +-65504 so all values are finite).
 * Row r depends only on (type, seed, r, ne0, scale), never on n_rows, so a tensor can be filled in
 * slices. ne0 must be a multiple of the block size and type a weight type (asserted).
 * Thread-safe. */
void rwkv7_dtype_random_rows(int type, uint64_t seed, void *dst, int64_t n_rows, int64_t ne0,
                             float scale);

#ifdef __cplusplus
}
#endif

#endif
