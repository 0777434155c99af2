/* loader.c: the two ways to reach the Vulkan loader behind loader.h: volk, or a dlopen of
 * libvulkan.so.1 plus our own table of the entry points the backend uses. */
#include "loader.h"

#ifdef RWKV7_VK_USE_VOLK

bool rwkv7_vk_loader_open(void) { return volkInitialize() == VK_SUCCESS; }
uint32_t rwkv7_vk_loader_version(void) { return volkGetInstanceVersion(); }
void rwkv7_vk_loader_instance(VkInstance instance) { volkLoadInstanceOnly(instance); }
void rwkv7_vk_loader_device(VkDevice device) { volkLoadDevice(device); }
PFN_vkVoidFunction rwkv7_vk_loader_proc(VkInstance instance, const char *name) {
    return vkGetInstanceProcAddr(instance, name);
}

#else

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

#define RWKV7_VK_DEFINE(f) PFN_##f rwkv7_##f;
RWKV7_VK_GLOBAL_FUNCS(RWKV7_VK_DEFINE)
RWKV7_VK_INSTANCE_FUNCS(RWKV7_VK_DEFINE)
RWKV7_VK_DEVICE_FUNCS(RWKV7_VK_DEFINE)
#undef RWKV7_VK_DEFINE

static PFN_vkGetInstanceProcAddr g_get_instance_proc;
static void *g_lib; /* kept open for the process: the table points into it */

bool rwkv7_vk_loader_open(void) {
    if (g_get_instance_proc) return true;
    /* The versioned name is the loader's ABI; the bare name exists only with dev packages. */
    static const char *const names[] = {"libvulkan.so.1", "libvulkan.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !g_lib; i++)
        g_lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!g_lib) return false;
    /* POSIX guarantees dlsym's object pointer converts to a function pointer; ISO C does not,
     * so copy the bits instead of casting. */
    void *sym = dlsym(g_lib, "vkGetInstanceProcAddr");
    if (!sym) {
        dlclose(g_lib);
        g_lib = NULL;
        return false;
    }
    memcpy(&g_get_instance_proc, &sym, sizeof g_get_instance_proc);
#define RWKV7_VK_LOAD(f) rwkv7_##f = (PFN_##f)g_get_instance_proc(VK_NULL_HANDLE, #f);
    RWKV7_VK_GLOBAL_FUNCS(RWKV7_VK_LOAD)
#undef RWKV7_VK_LOAD
    if (!rwkv7_vkCreateInstance) {
        g_get_instance_proc = NULL;
        return false;
    }
    return true;
}

uint32_t rwkv7_vk_loader_version(void) {
    uint32_t v = VK_API_VERSION_1_0;
    if (rwkv7_vkEnumerateInstanceVersion && rwkv7_vkEnumerateInstanceVersion(&v) != VK_SUCCESS)
        v = VK_API_VERSION_1_0;
    return v;
}

void rwkv7_vk_loader_instance(VkInstance instance) {
#define RWKV7_VK_LOAD(f) rwkv7_##f = (PFN_##f)g_get_instance_proc(instance, #f);
    RWKV7_VK_INSTANCE_FUNCS(RWKV7_VK_LOAD)
    RWKV7_VK_DEVICE_FUNCS(RWKV7_VK_LOAD)
#undef RWKV7_VK_LOAD
}

void rwkv7_vk_loader_device(VkDevice device) {
#define RWKV7_VK_LOAD(f) rwkv7_##f = (PFN_##f)rwkv7_vkGetDeviceProcAddr(device, #f);
    RWKV7_VK_DEVICE_FUNCS(RWKV7_VK_LOAD)
#undef RWKV7_VK_LOAD
}

PFN_vkVoidFunction rwkv7_vk_loader_proc(VkInstance instance, const char *name) {
    return g_get_instance_proc ? g_get_instance_proc(instance, name) : NULL;
}

#endif
