/* abi.h: push-constant structs, workgroup sizes and table offsets shared by the C host code
 * (vulkan/...) and the GLSL shaders (shaders/...), so both sides agree by construction.
 * Only 32-bit scalar fields (uint/int/float), so the C layout equals the std430 push layout;
 * the C side checks every sizeof with _Static_assert. Offsets named *_off are in elements of the
 * buffer's view (floats for activations, bytes for weights) relative to the bound range. */
#ifndef RWKV7_SHADERS_ABI_H
#define RWKV7_SHADERS_ABI_H

/* glslc is always invoked with -DRWKV7_GLSL (shaders/variants.cmake). A shader wraps the struct it
 * uses in its push_constant block: layout(push_constant) uniform pc_block { struct p; }. */
#ifndef RWKV7_GLSL
#include <stdint.h>
#define RWKV7_U32 uint32_t
#define RWKV7_F32 float
#else
#define RWKV7_U32 uint
#define RWKV7_F32 float
#endif
#define RWKV7_PC(name) struct name

/* Workgroup sizes. 64 = two NVIDIA warps / one AMD wave64 / lavapipe-friendly. */
#define RWKV7_VK_WG_ELEM 256   /* elementwise kernels: one invocation per element */
#define RWKV7_VK_WG_ROW 64     /* row kernels (norm, key_prep, wkv_out): one workgroup per row/group */
#define RWKV7_VK_WG_MATVEC 128 /* matvec: row slots of RWKV7_VK_MATVEC_LPR lanes, several rows each */
#define RWKV7_VK_MATVEC_MAX_T 8 /* matvec handles up to this many input rows; more use the tiled path */
/* Lanes per row of the matvec (specialization constant 0 overrides it with the device's subgroup
 * size when that is larger, so a subgroup never straddles two rows). 32 lanes x 16 bytes = one
 * 512-byte coalesced sweep of a row per step. */
#define RWKV7_VK_MATVEC_LPR 32
#define RWKV7_VK_MATVEC_MAX_N 4  /* products per matvec dispatch (matmul_n) */
#define RWKV7_VK_MM_TILE_M 64  /* tiled matmul: output features per workgroup */
#define RWKV7_VK_MM_TILE_T 64  /* tiled matmul: input rows (tokens) per workgroup */
#define RWKV7_VK_MM_TILE_K 32  /* tiled matmul: K step, one 32-element weight chunk per tile row */
#define RWKV7_VK_WG_MM 256     /* tiled matmul invocations: each owns 4 features x 4 tokens */
#define RWKV7_VK_WKV_MAX_N 128 /* largest head size of the wkv7 kernels */
/* Chunked wkv7 (prefill), two passes: wkv7_chunk_prep.comp builds every state-free matrix of
 * every chunk at once (one workgroup of n invocations per sequence, head and chunk) into a
 * scratch buffer; wkv7_chunk_state.comp walks the chunks in order, one workgroup per sequence,
 * head and slab of RWKV7_VK_WKV_SLAB state rows (one invocation per row).
 * CHUNK_LEN: tokens per chunk at head size n (64 or 128); L = 16 at n = 64 and 8 at n = 128 keep
 * both kernels' shared memory (bytes, PREP_SHARED / STATE_SHARED) under 32 KiB, lavapipe's and
 * many GPUs' limit. CHUNK_BLOCK: floats of one chunk's scratch block (rg, wy, kg, bg as (L, n)
 * tiles, the whole-chunk decay (n), A_rk, A_rb, M as (L, L) matrices, in that order). */
#define RWKV7_VK_WKV_CHUNK_LEN(n) ((n) <= 64 ? 16 : 8)
#define RWKV7_VK_WKV_SLAB 16
#define RWKV7_VK_WKV_CHUNK_BLOCK(n, l) (4 * (l) * (n) + (n) + 3 * (l) * (l))
#define RWKV7_VK_WKV_PREP_SHARED(n, l) (4 * (5 * (l) * (n) + 5 * (l) * (l)))
#define RWKV7_VK_WKV_STATE_SHARED(n, l) (4 * 2 * (l) * RWKV7_VK_WKV_SLAB)
/* Scratch of the two passes (bytes): prefills whose sequences x heads x chunks need more run in
 * windows of whole chunks; one chunk that does not fit falls back to the serial kernel. */
#define RWKV7_VK_WKV_SCRATCH (32u << 20)

/* The chunked wkv7 passes: bindings of wkv7.comp plus binding 9, the scratch blocks. A pass covers
 * the window of tokens [t0, t0 + nt) of every sequence; its chunks start at t0. */
RWKV7_PC(rwkv7_vk_pc_wkv) {
    RWKV7_U32 off[8]; /* element offsets of bindings 0..7 (y, state, r, w, k, v, kk, a) */
    RWKV7_U32 c;      /* row length (C) */
    RWKV7_U32 rows;   /* sequences */
    RWKV7_U32 n;      /* head size */
    RWKV7_U32 fn;     /* int offset of the slots */
    RWKV7_U32 n2;     /* tokens per sequence */
    RWKV7_U32 t0;     /* first token of the window */
    RWKV7_U32 nt;     /* tokens in the window */
    RWKV7_U32 pad0;
};

/* Word offsets of the IQ tables inside the lookup-table buffer (binding of matmul/embed). Each
 * u64 grid entry takes two words (low word = elements 0-3). */
#define RWKV7_VK_TAB_IQ2XXS 0                            /* 256 x u64 */
#define RWKV7_VK_TAB_IQ2XS (RWKV7_VK_TAB_IQ2XXS + 512)   /* 512 x u64 */
#define RWKV7_VK_TAB_IQ2S (RWKV7_VK_TAB_IQ2XS + 1024)    /* 1024 x u64 */
#define RWKV7_VK_TAB_IQ3XXS (RWKV7_VK_TAB_IQ2S + 2048)   /* 256 x u32 */
#define RWKV7_VK_TAB_IQ3S (RWKV7_VK_TAB_IQ3XXS + 256)    /* 512 x u32 */
#define RWKV7_VK_TAB_IQ1S (RWKV7_VK_TAB_IQ3S + 512)      /* 2048 x u64, int8 elements */
#define RWKV7_VK_TAB_WORDS (RWKV7_VK_TAB_IQ1S + 4096)

/* matmul (matvec and tiled): dst (m, t) (=|+=) W (k, m) x (k, t). */
RWKV7_PC(rwkv7_vk_pc_matmul) {
    RWKV7_U32 k;          /* input features (row length of W) */
    RWKV7_U32 m;          /* output features (rows of W) */
    RWKV7_U32 t;          /* input rows */
    RWKV7_U32 w_off;      /* byte offset of W in its binding */
    RWKV7_U32 row_bytes;  /* bytes per row of W */
    RWKV7_U32 x_off;      /* float offset of x */
    RWKV7_U32 d_off;      /* float offset of dst */
    RWKV7_U32 accumulate; /* 0: dst = W x; 1: dst += W x; 2: dst = max(W x, 0)^2 (ffn_key) */
};

/* matvec (T <= RWKV7_VK_MATVEC_MAX_T): up to MATVEC_MAX_N independent products of one weight
 * type and one k, dst_i (m_i, t) (=|+=) W_i (k, m_i) x_i (k, t), in one dispatch. Workgroups go
 * to product 0 first, then 1, ...; each product gets ceil(m_i / rows per workgroup) * n_split.
 * With n_split > 1 each workgroup sums k_split elements of K into the partial-sum buffer and
 * matvec_reduce adds the n_split partials and applies the mode. */
RWKV7_PC(rwkv7_vk_pc_matvec) {
    RWKV7_U32 k;          /* input features (row length of every W_i) */
    RWKV7_U32 t;          /* input rows */
    RWKV7_U32 n;          /* products (1..RWKV7_VK_MATVEC_MAX_N) */
    RWKV7_U32 n_split;    /* K splits (workgroups per row group) */
    RWKV7_U32 k_split;    /* elements of K per split (a multiple of the block size) */
    RWKV7_U32 pad0, pad1, pad2;
    RWKV7_U32 m[4];       /* rows of W_i */
    RWKV7_U32 w_off[4];   /* byte offset of W_i in its binding (0..3) */
    RWKV7_U32 x_off[4];   /* float offset of x_i in its binding (4..7) */
    RWKV7_U32 d_off[4];   /* float offset of dst_i in its binding (8..11) */
    RWKV7_U32 mode[4];    /* 0: dst = W x; 1: dst += W x; 2: dst = max(W x, 0)^2 (ffn_key) */
};

/* embed: dst (c, t) = dequant(table row tokens[t]). */
RWKV7_PC(rwkv7_vk_pc_embed) {
    RWKV7_U32 c;         /* row length */
    RWKV7_U32 t;         /* tokens */
    RWKV7_U32 w_off;     /* byte offset of the table */
    RWKV7_U32 row_bytes; /* bytes per table row */
    RWKV7_U32 tok_off;   /* int offset of tokens */
    RWKV7_U32 d_off;     /* float offset of dst */
    RWKV7_U32 n_rows;    /* rows of the table (ids are clamped below this) */
    RWKV7_U32 pad;
};

/* Generic elementwise/row kernels: up to 8 tensor offsets (floats/ints), sizes, one parameter. */
RWKV7_PC(rwkv7_vk_pc_elem) {
    RWKV7_U32 off[8];  /* element offsets of bindings 0..7 */
    RWKV7_U32 c;       /* row length (C) */
    RWKV7_U32 rows;    /* rows (T) */
    RWKV7_U32 n;       /* total elements or a per-op count (n_tok, n_mix, groups, head size) */
    RWKV7_U32 fn;      /* unary/binary function, or flags */
    RWKV7_U32 n2;      /* second count: n_seq, b rows, ... */
    RWKV7_F32 eps;     /* norm epsilon */
    RWKV7_U32 pad0;
    RWKV7_U32 pad1;
};

/* Fused row kernels (norm_shift, wkv_block): element offsets of up to 16 bindings, sizes. */
RWKV7_PC(rwkv7_vk_pc_fused) {
    RWKV7_U32 off[16]; /* element offsets of bindings 0..15 */
    RWKV7_U32 c;       /* row length (C) */
    RWKV7_U32 rows;    /* rows, or sequences */
    RWKV7_U32 n;       /* n_mix, or the head size */
    RWKV7_U32 n2;      /* n_tok */
    RWKV7_F32 eps;
    RWKV7_U32 pad0;
    RWKV7_U32 pad1;
    RWKV7_U32 pad2;
};

/* lora_up (decode): up to 4 terms dst_i (m_i, t) = out_fn(bias_i + W_i in_fn(x_i)), W_i (k_i, m_i)
 * all read through binding 0 (one range over the memory block that holds them), then the value
 * residual. One workgroup of RWKV7_VK_WG_LORA invocations per RWKV7_VK_WG_LORA rows of a term,
 * in_fn(x_i) staged in shared memory (k_i * t <= RWKV7_VK_LORA_MAX_XS floats). */
#define RWKV7_VK_WG_LORA 64
#define RWKV7_VK_LORA_MAX_XS 4096
#define RWKV7_VK_LORA_RECORD 4u /* vres: v_first = v */
#define RWKV7_VK_LORA_NONE 5u   /* vres: no value residual */
RWKV7_PC(rwkv7_vk_pc_lora) {
    RWKV7_U32 w_off[4];     /* byte offset of W_i in binding 0 */
    RWKV7_U32 row_bytes[4]; /* bytes per row of W_i */
    RWKV7_U32 kf[4];        /* k_i | (in_fn + 1) << 16 | (out_fn + 1) << 20 | has_bias << 24 | kind << 25
                             * (kind 0: the variant's type, 1: f32, 2: f16) */
    RWKV7_U32 m[4];         /* rows of W_i (output features) */
    RWKV7_U32 blk_end[4];   /* workgroups of terms 0..i; past the last: v_first copy groups */
    RWKV7_U32 off[4];       /* float offsets, one byte each: [0] dst_i, [1] x_i, [2] bias_i, [3] v, v_first */
    RWKV7_U32 t;            /* rows (tokens) */
    RWKV7_U32 n;            /* terms */
    RWKV7_U32 vres;         /* term index, RWKV7_VK_LORA_RECORD or RWKV7_VK_LORA_NONE */
    RWKV7_U32 c;            /* row length of v */
};

#endif
