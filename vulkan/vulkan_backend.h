/* vulkan_backend.h: the Vulkan backend's entry points besides the vtable constructor
 * rwkv7_backend_vulkan_init() (declared in runtime/backend.h). Include only where
 * RWKV7_HAVE_VULKAN is defined. No Vulkan types cross this header. */
#ifndef RWKV7_VULKAN_BACKEND_H
#define RWKV7_VULKAN_BACKEND_H

#include <stdio.h>

/* Lists the Vulkan devices as Vulkan0, Vulkan1, ... with name, type, driver, device-local memory,
 * subgroup size and fp16 / int8 / integer-dot / cooperative-matrix support, one device per line
 * plus a feature line. Prints a one-line note instead when there is no loader or no device. Safe to
 * call with or without a live backend; not thread-safe with a concurrent backend init. */
void rwkv7_vulkan_print_devices(FILE *f);

#endif
