/* matmul_q8.h: the int8-activation matmul path of the CPU backend (cpu/matmul_q8.c), used for
 * the quantized weight types on CPUs with AVX-512 VNNI (vpdpbusd).
 *
 * Arithmetic: each input row is quantized once per call in blocks of 32: d = max|x| / 127,
 * q = round-to-nearest-even(x * (127 / max|x|)) (all zero with d = 0 for an all-zero block;
 * d = NaN and every q = 0 when the block holds a NaN or an infinity, so non-finite inputs stay
 * visible in the outputs). A weight
 * sub-block (32 weights; 16 for Q6_K, whose scales change every 16) of integer codes c and
 * scale s (plus a bias b per 32 weights for Q4_1, Q5_1, Q4_K, Q5_K) then contributes
 *     acc = fma((float)(sum c*q), s * d, acc)      and, with a bias,   acc = fma(b, d * sum q, acc)
 * per output, for the sub-blocks in ascending order starting from acc = 0. The integer sum is
 * exact, so a result depends only on (weight row, input row): never on T, the thread count, or
 * what else shares the call, the same invariants as the fp32 path (matmul_simd.h). The error
 * against fp32 activations is the activation rounding, |x - d q| <= d / 2 (about 2e-3 relative
 * per element, NMSE ~1e-5 per output); tests/test_cpu_matmul.c checks the kernels against a
 * double-precision dot of the exact weights with the same quantized activations. */
#ifndef RWKV7_MATMUL_Q8_H
#define RWKV7_MATMUL_Q8_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"
#include "matmul_simd.h"

/* Whether matmul takes the int8 path for this weight type: the CPU has AVX-512 VNNI, the
 * matmul level is AVX-512, RWKV7_CPU_INT8 is not 0 and rwkv7_mm_q8_force did not turn it off. */
bool rwkv7_mm_q8_use(int type, int isa);

/* Tests: 0 = never use the int8 path, 1 = use it where the CPU can, -1 = back to automatic. */
void rwkv7_mm_q8_force(int on);

/* The whole matmul for a job rwkv7_cpu_matmul prepared (x is fp32; it is quantized here). */
enum rwkv7_status rwkv7_mm_q8_matmul(struct rwkv7_cpu *cpu, const struct rwkv7_mm_job *job);

#endif
