/* cmd_devices.c: `rwkv7 devices`: every compute device this build can use, in the form
 * `--device` accepts (CPU, Vulkan0.., CUDA0..), with the capabilities that pick kernels; with
 * --types, the weight type x backend support matrix. Both read the backend registry only. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "backend.h"
#include "commands.h"
#include "dtype.h"

static void print_types(void) {
    const struct rwkv7_backend_reg *r;
    printf("%-8s", "type");
    for (int b = 0; (r = rwkv7_backend_reg_get(b)) != NULL; b++) printf(" %-7s", r->name);
    printf("\n");
    static const int types[] = {
#define RWKV7_X_(T) RWKV7_DTYPE_##T,
        RWKV7_WEIGHT_TYPES(RWKV7_X_)
#undef RWKV7_X_
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int t = types[i];
        printf("%-8s", rwkv7_dtype_name(t));
        for (int b = 0; (r = rwkv7_backend_reg_get(b)) != NULL; b++)
            printf(" %-7s", !r->weight_type_ok ? "-" : r->weight_type_ok(t) ? "yes" : "no");
        printf("\n");
    }
    printf("(yes/no: matmul and embed run this weight type; -: backend not compiled into this build;\n"
           " README.md, \"Weight types\", says why a backend lacks a type)\n");
}

int cmd_devices(int argc, char **argv) {
    bool types = false;
    const struct opt opts[] = {
        {"--types", OPT_FLAG, &types, NULL, "print the weight type x backend support matrix instead"},
        {NULL, OPT_END, NULL, NULL, NULL},
    };
    int rc = args_parse("devices", "[--types]", opts, argc, argv, 2);
    if (rc) return rc == 1 ? 0 : rc;
    if (types) {
        print_types();
        return 0;
    }
    /* The CPU first, then the GPU backends in `auto` order. */
    const struct rwkv7_backend_reg *r;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; (r = rwkv7_backend_reg_get(b)) != NULL; b++) {
            if (r->gpu != (pass == 1)) continue;
            if (r->print_devices)
                r->print_devices(stdout);
            else
                printf("%s: not compiled into this build\n", r->device_prefix);
        }
    return 0;
}
