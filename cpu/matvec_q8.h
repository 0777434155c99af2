/* matvec_q8.h: the int8-activation decode kernels (T <= 4) of the CPU backend for Q4_K, Q6_K,
 * IQ3_S, IQ3_XXS, Q8_0 and Q4_0 on AVX-512 VNNI (cpu/matvec_q8.c).
 *
 * Arithmetic: exactly matmul_q8.h's (same input quantization, same exact integer sums per
 * sub-block, same float steps in the same order), so every output is bit-identical to the
 * int8 prefill kernel's: prefill == serial decoding holds bitwise, and which kernel runs is a
 * speed choice only. What differs is how the integer sums are formed: whole super-blocks at a
 * time, scales for 16 rows at once, and the IQ3 signs applied to the inputs (tests:
 * tests/test_cpu_matmul.c, test_matvec_q8). */
#ifndef RWKV7_MATVEC_Q8_H
#define RWKV7_MATVEC_Q8_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"
#include "matmul_simd.h"

/* Whether matmul takes this path: T <= 4 (Q6_K: T <= 3), a type above, rwkv7_mm_q8_use true, the CPU has
 * BMI2 and AVX512-VBMI, and rwkv7_mv_q8_force did not turn it off. */
bool rwkv7_mv_q8_use(int type, int64_t T, int isa);

/* Tests: 0 = never use these kernels (the int8 path's own decode kernel runs), -1 = automatic. */
void rwkv7_mv_q8_force(int on);

/* The whole matmul for a job rwkv7_cpu_matmul prepared (x is fp32; it is quantized here). */
enum rwkv7_status rwkv7_mv_q8_matmul(struct rwkv7_cpu *cpu, const struct rwkv7_mm_job *job);

#endif
