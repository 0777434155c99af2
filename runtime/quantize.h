/* quantize.h: float rows -> GGUF weight blocks, the inverse of the dtype.h dequantizers. Each
 * quantizer writes exactly the block layout ggml's format defines (quant-formats.md section 3),
 * so a row quantized here and dequantized by rwkv7_dtype_get(type)->to_f32 (or by llama.cpp)
 * gives the same floats. The rounding searches are our own: every scale is fitted to minimise the
 * plain squared error of the row (no importance weights), which is what the output error of a
 * matmul with unknown activations depends on. Thread-safe; no global state after first use. */
#ifndef RWKV7_QUANTIZE_H
#define RWKV7_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "rwkv7.h"

/* True when rwkv7_quantize_rows can write this type (F32, F16, BF16, the legacy 32-blocks, the
 * K-quants Q2_K..Q6_K, IQ4_NL, IQ4_XS, IQ3_S, IQ3_XXS, TQ1_0, TQ2_0). */
bool rwkv7_quantize_supported(int type);

/* Quantizes n_rows rows of ne0 floats (src, row-major) into rwkv7_dtype_row_bytes(type, ne0)
 * bytes per row at dst. RWKV7_ERR_UNSUPPORTED for a type without a quantizer, RWKV7_ERR_ARG when
 * ne0 is not a multiple of the block. Non-finite inputs are written as they come for the float
 * types; quantized types map them to 0 so a block never holds a NaN scale. */
enum rwkv7_status rwkv7_quantize_rows(int type, const float *src, void *dst, int64_t n_rows, int64_t ne0);

#endif
