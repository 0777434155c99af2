/* test_cpu_isa.c: RWKV7_CPU_ISA caps the CPU matmul instruction set (cpu/matmul.c). The variable
 * is read once per process, so this test sets it before the first query: "scalar" must select
 * the plain C path whatever the CPU has, the backend banner must name that level, and forcing a
 * higher level afterwards (rwkv7_mm_isa_force) must not go above the cap. The other levels are
 * covered by test_cpu_matmul, which runs every kernel at every level the CPU supports. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "backend.h"
#include "matmul_simd.h"
#include "status.h"
#include "testing.h"

int main(void) {
    if (setenv("RWKV7_CPU_ISA", "scalar", 1) != 0) {
        fprintf(stderr, "cannot set RWKV7_CPU_ISA\n");
        return 1;
    }
    CHECK(rwkv7_mm_isa() == RWKV7_MM_SCALAR, "RWKV7_CPU_ISA=scalar gave level %d", rwkv7_mm_isa());
    rwkv7_mm_isa_force(RWKV7_MM_AVX512);
    CHECK(rwkv7_mm_isa() == RWKV7_MM_SCALAR, "forcing AVX-512 went above the cap: %d", rwkv7_mm_isa());
    rwkv7_mm_isa_force(-1);
    CHECK(strcmp(rwkv7_mm_isa_name(RWKV7_MM_SCALAR), "scalar") == 0, "name %s", rwkv7_mm_isa_name(RWKV7_MM_SCALAR));
    CHECK(strcmp(rwkv7_mm_isa_name(RWKV7_MM_AVX2), "AVX2") == 0, "name %s", rwkv7_mm_isa_name(RWKV7_MM_AVX2));
    CHECK(strcmp(rwkv7_mm_isa_name(RWKV7_MM_AVX512), "AVX-512") == 0, "name %s", rwkv7_mm_isa_name(RWKV7_MM_AVX512));
    struct rwkv7_backend *be = NULL;
    CHECK(rwkv7_backend_init("cpu", NULL, 1, true, &be) == RWKV7_OK, "cpu init");
    if (be) {
        CHECK(strstr(be->desc, "scalar kernels") != NULL, "banner \"%s\" does not name the level", be->desc);
        rwkv7_backend_free(be);
    }
    return test_finish("test_cpu_isa");
}
