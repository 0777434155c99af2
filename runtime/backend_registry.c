/* backend_registry.c: the one table of backends. Each backend defines its entry
 * (rwkv7_backend_reg_<name>, with init, device listing and weight types) in its own directory;
 * this file only lists them in `auto` order, with a placeholder for each one this build lacks so
 * that `--backend cuda` can say "this build has no cuda backend". The only #ifdef ladder over
 * backends in the tree: RWKV7_HAVE_<X> is defined for this file alone by the build. */
#include <string.h>
#include <strings.h>

#include "backend.h"

#ifdef RWKV7_HAVE_CUDA
extern const struct rwkv7_backend_reg rwkv7_backend_reg_cuda;
#define CUDA_ENTRY &rwkv7_backend_reg_cuda
#else
static const struct rwkv7_backend_reg absent_cuda = {"cuda", "CUDA", true, NULL, NULL, NULL, NULL};
#define CUDA_ENTRY &absent_cuda
#endif
#ifdef RWKV7_HAVE_VULKAN
extern const struct rwkv7_backend_reg rwkv7_backend_reg_vulkan;
#define VULKAN_ENTRY &rwkv7_backend_reg_vulkan
#else
static const struct rwkv7_backend_reg absent_vulkan = {"vulkan", "Vulkan", true, "gpu", NULL, NULL, NULL};
#define VULKAN_ENTRY &absent_vulkan
#endif
extern const struct rwkv7_backend_reg rwkv7_backend_reg_cpu;

/* auto order: CUDA, then a Vulkan GPU, then the CPU (always present). */
static const struct rwkv7_backend_reg *const k_registry[] = {CUDA_ENTRY, VULKAN_ENTRY, &rwkv7_backend_reg_cpu};

const struct rwkv7_backend_reg *rwkv7_backend_reg_get(int i) {
    return i >= 0 && i < (int)(sizeof k_registry / sizeof k_registry[0]) ? k_registry[i] : NULL;
}

const struct rwkv7_backend_reg *rwkv7_backend_reg_find(const char *name) {
    if (!name) return NULL;
    const struct rwkv7_backend_reg *r;
    for (int i = 0; (r = rwkv7_backend_reg_get(i)) != NULL; i++) {
        if (!strcasecmp(name, r->name)) return r;
        /* a device name: the prefix, then nothing, digits or ":digits" */
        size_t n = strlen(r->device_prefix);
        if (!strncasecmp(name, r->device_prefix, n) &&
            (name[n] == 0 || name[n] == ':' || (name[n] >= '0' && name[n] <= '9')))
            return r;
    }
    return NULL;
}
