/* iq_tables.h: the ggml IQ/FP4 lookup tables (format constants from ggml-common.h), generated
 * into iq_tables.c by tools/gen_iq_tables.py from tests/data/iq-tables.txt.
 * Grid entries pack one element per byte: byte j (bits 8j..8j+7) is element j, so read them with
 * shifts, never by casting to a byte pointer (that would depend on host endianness). GPU backends
 * upload these arrays as they are (little-endian hosts). Layouts: quant-formats.md section 3.8. */
#ifndef RWKV7_IQ_TABLES_H
#define RWKV7_IQ_TABLES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* CUDA sources include this */
#endif

extern const uint64_t rwkv7_iq2xxs_grid[256];  /* 8 elements in {8, 25, 43} */
extern const uint64_t rwkv7_iq2xs_grid[512];   /* 8 elements in {8, 25, 43} */
extern const uint64_t rwkv7_iq2s_grid[1024];   /* 8 elements in {8, 25, 43} */
extern const uint32_t rwkv7_iq3xxs_grid[256];  /* 4 elements in {4, 12, ..., 52, 62} */
extern const uint32_t rwkv7_iq3s_grid[512];    /* 4 elements in {1, 3, ..., 15} */
extern const uint64_t rwkv7_iq1s_grid[2048];   /* 8 int8 elements in {-1, 0, +1} */
/* iq1s_grid repacked for GPUs: byte j = (element j + 1) | (element j+4 + 1) << 4. */
extern const uint32_t rwkv7_iq1s_grid_gpu[2048];
extern const uint8_t rwkv7_ksigns_iq2xs[128];  /* s | parity(s) << 7: bit j set = negate j */
extern const uint8_t rwkv7_kmask_iq2xs[8];     /* 1 << j */
extern const int8_t rwkv7_kvalues_iq4nl[16];
extern const int8_t rwkv7_kvalues_mxfp4[16];   /* E2M1 values times 2 (bit 3 = sign) */

#ifdef __cplusplus
}
#endif

#endif
