/* test_cpu_isa.c: RWKV7_CPU_ISA caps the CPU matmul instruction set (cpu/matmul.c). The variable
 * is read once per process, so each value is tried in a forked child that sets it before the first
 * query: the child's level must be min(cap, what the CPU has) (so "scalar" always gives the plain C
 * path and "avx" gives the AVX level on any AVX2 or AVX-512 machine), the backend banner must name
 * that level, and forcing a higher level afterwards (rwkv7_mm_isa_force) must not go above the
 * cap. The kernels of each level are covered by test_cpu_matmul, which runs every weight type at
 * every level the CPU supports. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "matmul_simd.h"
#include "status.h"
#include "testing.h"

/* In a child: with RWKV7_CPU_ISA=env (unset if NULL), the level chosen (exit code), or 100 + the
 * number of failed checks of the child's own (banner, force cap). */
static int child_level(const char *env) {
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (env ? setenv("RWKV7_CPU_ISA", env, 1) != 0 : unsetenv("RWKV7_CPU_ISA") != 0) _exit(99);
        const int level = rwkv7_mm_isa();
        rwkv7_mm_isa_force(RWKV7_MM_AVX512);
        CHECK(rwkv7_mm_isa() == level, "RWKV7_CPU_ISA=%s: forcing AVX-512 went above the cap: %d", env ? env : "",
              rwkv7_mm_isa());
        rwkv7_mm_isa_force(-1);
        struct rwkv7_backend *be = NULL;
        CHECK(rwkv7_backend_init("cpu", NULL, 1, true, &be) == RWKV7_OK, "cpu init");
        if (be) {
            char want[64];
            snprintf(want, sizeof want, ", %s kernels", rwkv7_mm_isa_name(level));
            CHECK(strstr(be->desc, want) != NULL, "banner \"%s\" does not name the level (%s)", be->desc, want);
            rwkv7_backend_free(be);
        }
        _exit(g_test_failures ? 100 + g_test_failures : level);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

int main(void) {
    CHECK(strcmp(rwkv7_mm_isa_name(RWKV7_MM_SCALAR), "scalar") == 0, "name %s", rwkv7_mm_isa_name(RWKV7_MM_SCALAR));
    CHECK(strcmp(rwkv7_mm_isa_name(RWKV7_MM_AVX), "AVX") == 0, "name %s", rwkv7_mm_isa_name(RWKV7_MM_AVX));
    CHECK(strcmp(rwkv7_mm_isa_name(RWKV7_MM_AVX2), "AVX2") == 0, "name %s", rwkv7_mm_isa_name(RWKV7_MM_AVX2));
    CHECK(strcmp(rwkv7_mm_isa_name(RWKV7_MM_AVX512), "AVX-512") == 0, "name %s", rwkv7_mm_isa_name(RWKV7_MM_AVX512));
    const int best = child_level(NULL);
    CHECK(best >= RWKV7_MM_SCALAR && best <= RWKV7_MM_AVX512, "uncapped level %d", best);
    fprintf(stderr, "test_cpu_isa: this CPU's level is %s\n", best >= 0 && best <= 3 ? rwkv7_mm_isa_name(best) : "?");
    static const struct {
        const char *env;
        int cap;
    } caps[] = {{"scalar", RWKV7_MM_SCALAR}, {"avx", RWKV7_MM_AVX}, {"avx2", RWKV7_MM_AVX2}, {"avx512", RWKV7_MM_AVX512},
                {"bogus", RWKV7_MM_AVX512}};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        const int want = best < caps[i].cap ? best : caps[i].cap;
        const int got = child_level(caps[i].env);
        CHECK(got == want, "RWKV7_CPU_ISA=%s gave %d, want %d (>= 100: failed checks in the child)", caps[i].env, got,
              want);
    }
    return test_finish("test_cpu_isa");
}
