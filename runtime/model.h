/* model.h: the loaded RWKV-7 model: hyper-parameters, the GGUF it came from, and every weight as
 * a backend tensor (rwkv7-gguf.md section 3). Matrices keep their file type and bytes; 1-D vectors
 * and the lerp block are widened to F32 at load (the contract's "runtime contract" rule). */
#ifndef RWKV7_MODEL_H
#define RWKV7_MODEL_H

#include "backend.h"
#include "gguf.h"
#include "rwkv7.h"
#include "tensor.h"

struct rwkv7_layer {
    struct rwkv7_tensor attn_norm_w, attn_norm_b; /* (C) ln1 */
    struct rwkv7_tensor ffn_norm_w, ffn_norm_b;   /* (C) ln2 (attn_norm_2) */
    struct rwkv7_tensor lerp;                     /* (C, 6) mix vectors r, w, k, v, a, g */
    struct rwkv7_tensor w0, w1, w2;               /* (C), (C, D_w), (D_w, C) decay LoRA */
    struct rwkv7_tensor a0, a1, a2;               /* (C), (C, D_a), (D_a, C) in-context rate LoRA */
    struct rwkv7_tensor v0, v1, v2;               /* (C), (C, D_v), (D_v, C) value residual; unused in layer 0 */
    struct rwkv7_tensor g1, g2;                   /* (C, D_g), (D_g, C) gate LoRA */
    struct rwkv7_tensor k_k, k_a, r_k;            /* (C) key scales and bonus weights */
    struct rwkv7_tensor wr, wk, wv, wo;           /* (C, C) receptance, key, value, output */
    struct rwkv7_tensor lnx_w, lnx_b;             /* (C) GroupNorm affine */
    struct rwkv7_tensor ffn_lerp;                 /* (C) channel-mix mix vector */
    struct rwkv7_tensor ffn_key;                  /* (C, F) */
    struct rwkv7_tensor ffn_value;                /* (F, C) */
};

struct rwkv7_model {
    struct rwkv7_hparams hp;
    struct rwkv7_gguf *gguf;           /* kept open: the CPU backend uses the mapping in place */
    struct rwkv7_backend *be;
    struct rwkv7_tokenizer *tok;
    struct rwkv7_tensor tok_embd;      /* (C, V) */
    struct rwkv7_tensor ln0_w, ln0_b;  /* (C) */
    struct rwkv7_tensor out_norm_w, out_norm_b; /* (C) */
    struct rwkv7_tensor head;          /* (C, V) */
    struct rwkv7_layer *layers;        /* n_layer */
    struct rwkv7_buf **bufs;           /* every buffer the model owns */
    int n_bufs, cap_bufs;
    uint64_t weight_bytes, n_params, bytes_per_token;
    uint64_t hash;
    bool hash_done;
    char desc[300];
};

/* Human-readable tensor table for `rwkv7 info` is built from the GGUF directly; nothing here. */

#endif
