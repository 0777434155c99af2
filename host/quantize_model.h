/* quantize_model.h: whole-model quantization shared by `rwkv7 quantize` (to a file) and
 * `rwkv7 bench --quality` (in memory): llama-quantize's per-tensor type choices for rwkv7
 * (bench_synth.h: which tensors stay as they are, token_embd/output rules, fallbacks), metadata
 * copied with general.file_type set, tensors converted on n_threads threads. */
#ifndef RWKV7_HOST_QUANTIZE_MODEL_H
#define RWKV7_HOST_QUANTIZE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "bench_synth.h"
#include "gguf.h"
#include "gguf_write.h"

struct quant_model_opts {
    const struct bench_ftype *ft; /* target file type */
    int n_threads;                /* <= 0: 1 */
    bool allow_requantize;        /* accept already-quantized source tensors */
    bool progress;                /* a progress line on stderr (\r-updated) */
};

/* The converted model: a writer whose tensors point into `in` (kept ones) and into buffers this
 * struct owns (converted ones). Write it with rwkv7_gguf_writer_write_file / _memory while `in`
 * is still open, then free it. */
struct quant_model {
    struct rwkv7_gguf_writer *w;
    void **bufs;
    int n_bufs;
    int64_t n_converted;  /* tensors whose type changed */
    uint64_t bytes_in;    /* tensor bytes of the source */
    uint64_t bytes_out;   /* tensor bytes of the result */
    uint64_t n_params;    /* elements over all tensors */
};

/* Plans and converts. Refusals (RWKV7_ERR_UNSUPPORTED / _ARG with one message, nothing
 * allocated): another architecture, a quantized source tensor that would change type without
 * allow_requantize, a row length llama.cpp cannot quantize to that file type, a target type we
 * have no quantizer for. */
enum rwkv7_status quant_model_build(const struct rwkv7_gguf *in, const struct quant_model_opts *o,
                                    struct quant_model **out);
void quant_model_free(struct quant_model *q);

#endif
