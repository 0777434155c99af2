/* bench_synth.h: synthetic RWKV-7 models for `rwkv7 bench --synthetic`: the released models'
 * geometry (rwkv7-gguf.md section 2.2) with random weights stored directly in the tensor types a
 * llama.cpp file of a given ftype holds (quant-formats.md section 4.3), written as a GGUF image in
 * memory so it takes the same load path as a real file. Depends only on runtime/ headers, so
 * tests/test_bench.c can compile it in and compare its layout against the fixture files. */
#ifndef RWKV7_HOST_BENCH_SYNTH_H
#define RWKV7_HOST_BENCH_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rwkv7.h"

struct bench_geometry {
    const char *name; /* "0.1B"; size label in tables */
    int n_layer, n_embd, n_ff, head_size;
    int d_w, d_a, d_v, d_g; /* LoRA ranks: decay, in-context rate, value residual, gate */
    int n_vocab;
};

/* A llama.cpp file type and the tensor types llama-quantize gives it for rwkv7. */
struct bench_ftype {
    const char *name; /* llama.cpp ftype name: "Q4_K_M", "F16", "IQ3_S" */
    int id;           /* general.file_type (llama_ftype) */
    int body;         /* time_mix_{receptance,key,value,output}, channel_mix_{key,value} */
    int embd;         /* token_embd.weight */
    int output;       /* output.weight */
};

/* Released geometries by label ("0.1B", "0.4B", "1.5B", "2.9B", "7.2B", "13.3B"; "191M"/"0.2B"
 * name the 0.1B one); NULL when unknown. */
const struct bench_geometry *bench_geometry_find(const char *name);
/* File type by llama.cpp ftype name ("Q4_K_M", case-insensitive) or by weight type name ("q4_k"
 * means the file type whose body is q4_K: Q4_K_M); NULL when unknown. */
const struct bench_ftype *bench_ftype_find(const char *name);

/* The type llama-quantize gives a quantizable matrix (quant-formats.md 4.2 items 2-6) of row
 * length ne0 in a file of type ft: token_embd.weight and output.weight by their rules, every other
 * matrix the body type, then the fallback for rows the block does not divide. -1 where llama.cpp
 * would abort. Tensors that are never quantized (bench_tensor_quantizable) keep their type. */
int bench_ftype_tensor_type(const struct bench_ftype *ft, const char *name, int64_t ne0);
/* llama.cpp's tensor_allows_quantization for rwkv7: 2-D or more, a name ending in "weight" that
 * is not a norm, and none of the LoRA / mix tensors it keeps by name. */
bool bench_tensor_quantizable(const char *name, int n_dims);
/* Every file type, in table order; *n gets the count. */
const struct bench_ftype *bench_ftype_list(int *n);

struct bench_tensor_spec {
    char name[64];
    int n_dims;
    int64_t ne[4];
    int type; /* enum rwkv7_dtype, after llama.cpp's fallback for rows the block does not divide */
};

/* The tensor list (names, shapes and types, converter order) of a file of geometry g and ftype
 * ft. *out is malloc'ed; free() it. */
enum rwkv7_status bench_synth_tensors(const struct bench_geometry *g, const struct bench_ftype *ft,
                                      struct bench_tensor_spec **out, int *n_out);

/* Builds the whole GGUF image (metadata, a vocabulary of g->n_vocab unique tokens, random weights
 * of realistic scale so activations stay finite) into one malloc'ed block; free() *data after the
 * model built on it is freed. Deterministic for a seed; uses n_threads threads for the weights. */
enum rwkv7_status bench_synth_image(const struct bench_geometry *g, const struct bench_ftype *ft,
                                    uint64_t seed, int n_threads, void **data, size_t *size);

#endif
