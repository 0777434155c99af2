/* cmd_devices.c: `rwkv7 devices`: every compute device this build can use, in the form
 * `--device` accepts (CPU, Vulkan0.., CUDA0..), with the capabilities that pick kernels. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "backend.h"
#include "commands.h"
#include "matmul_simd.h"
#ifdef RWKV7_HAVE_VULKAN
#include "vulkan_backend.h"
#endif
#ifdef RWKV7_HAVE_CUDA
#include "cuda.h"
#endif

int cmd_devices(int argc, char **argv) {
    const struct opt opts[] = {{NULL, OPT_END, NULL, NULL, NULL}};
    int rc = args_parse("devices", "", opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    printf("CPU: %d physical cores, %s matmul kernels (backend cpu, always available; RWKV7_CPU_ISA caps the level)\n",
           rwkv7_n_physical_cores(), rwkv7_mm_isa_name(rwkv7_mm_isa()));
#ifdef RWKV7_HAVE_CUDA
    rwkv7_cuda_print_devices(stdout);
#else
    printf("CUDA: not compiled into this build\n");
#endif
#ifdef RWKV7_HAVE_VULKAN
    rwkv7_vulkan_print_devices(stdout);
#else
    printf("Vulkan: not compiled into this build\n");
#endif
    return 0;
}
