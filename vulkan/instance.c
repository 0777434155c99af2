/* instance.c: the Vulkan instance, with the Khronos validation layer on request.
 * RWKV7_VK_VALIDATION=1 enables VK_LAYER_KHRONOS_validation with synchronization validation
 * (VkValidationFeaturesEXT) and a debug-utils messenger that prints every warning and error to
 * stderr and counts the errors; at exit a process that saw any error reports the count and exits 1,
 * so a test or CLI run under the layer fails on the first hazard whatever its own checks said.
 * Asking for validation where the layer is not installed is an error, not a silent run without. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vk.h"

static const char *const k_layer = "VK_LAYER_KHRONOS_validation";
static atomic_uint g_errors, g_warnings;
static atomic_flag g_atexit_set = ATOMIC_FLAG_INIT;

static bool validation_requested(void) {
    const char *v = getenv("RWKV7_VK_VALIDATION");
    return v && atoi(v) != 0;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)type;
    (void)user;
    bool error = sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    atomic_fetch_add(error ? &g_errors : &g_warnings, 1u);
    fprintf(stderr, "vulkan validation %s: %s\n", error ? "error" : "warning",
            data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE; /* the call that triggered it goes on, as without the layer */
}

/* The exit status is the only channel every caller (test_ops, the CLI, a test's own process)
 * shares, so errors turn it into 1 here. */
static void report_at_exit(void) {
    unsigned e = atomic_load(&g_errors), w = atomic_load(&g_warnings);
    fprintf(stderr, "vulkan: validation layer: %u error(s), %u warning(s)\n", e, w);
    if (e) {
        fflush(NULL);
        _exit(1);
    }
}

static bool layer_present(void) {
    uint32_t n = 0;
    if (!vkEnumerateInstanceLayerProperties || vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS) return false;
    VkLayerProperties *lp = calloc(n ? n : 1, sizeof *lp);
    bool found = false;
    if (lp && vkEnumerateInstanceLayerProperties(&n, lp) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = !strcmp(lp[i].layerName, k_layer);
    free(lp);
    return found;
}

enum rwkv7_status rwkv7_vk_instance_create(VkInstance *out, VkDebugUtilsMessengerEXT *messenger) {
    *out = VK_NULL_HANDLE;
    *messenger = VK_NULL_HANDLE;
    if (!rwkv7_vk_loader_open())
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: no Vulkan loader (libvulkan.so.1) found");
    if (rwkv7_vk_loader_version() < VK_API_VERSION_1_2)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: the loader is older than Vulkan 1.2");
    bool validate = validation_requested();
    if (validate && !layer_present())
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED,
                          "vulkan: RWKV7_VK_VALIDATION is set but %s is not installed (Debian: vulkan-validationlayers)",
                          k_layer);
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "rwkv7",
                             /* 1.3: the cooperative-matrix shaders are SPIR-V 1.6 (a 1.2
                              * device is still used at 1.2; the loader checked above) */
                             .apiVersion = VK_API_VERSION_1_3};
    VkDebugUtilsMessengerCreateInfoEXT mci = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message};
    /* Synchronization validation is off by default in the layer; it is what finds missing
     * barriers (read-after-write between dispatches, copies, host reads). */
    const VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT vf = {.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
                                  .pNext = &mci, /* also covers vkCreateInstance/vkDestroyInstance */
                                  .enabledValidationFeatureCount = 1,
                                  .pEnabledValidationFeatures = enables};
    const char *exts[2] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pNext = validate ? &vf : NULL,
                               .pApplicationInfo = &app,
                               .enabledLayerCount = validate ? 1 : 0,
                               .ppEnabledLayerNames = &k_layer,
                               .enabledExtensionCount = validate ? 2 : 0,
                               .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateInstance(&ci, NULL, out);
    if (r != VK_SUCCESS)
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: vkCreateInstance%s failed: %s",
                          validate ? " with the validation layer" : "", rwkv7_vk_result_str(r));
    rwkv7_vk_loader_instance(*out);
    if (!validate) return RWKV7_OK;
    if (!atomic_flag_test_and_set(&g_atexit_set)) atexit(report_at_exit);
    r = vkCreateDebugUtilsMessengerEXT ? vkCreateDebugUtilsMessengerEXT(*out, &mci, NULL, messenger)
                                       : VK_ERROR_EXTENSION_NOT_PRESENT;
    if (r != VK_SUCCESS) {
        vkDestroyInstance(*out, NULL);
        *out = VK_NULL_HANDLE;
        return rwkv7_fail(RWKV7_ERR_UNSUPPORTED, "vulkan: vkCreateDebugUtilsMessengerEXT failed: %s",
                          rwkv7_vk_result_str(r));
    }
    return RWKV7_OK;
}

void rwkv7_vk_instance_destroy(VkInstance instance, VkDebugUtilsMessengerEXT messenger) {
    if (!instance) return;
    if (messenger && vkDestroyDebugUtilsMessengerEXT) vkDestroyDebugUtilsMessengerEXT(instance, messenger, NULL);
    vkDestroyInstance(instance, NULL);
}
