/* loader.h: how the Vulkan backend reaches the Vulkan loader. With volk (RWKV7_VK_USE_VOLK, the
 * default when volk is found) this is volk; without it, loader.c opens libvulkan.so.1 with dlopen,
 * takes vkGetInstanceProcAddr from it and fills a table of exactly the entry points the backend
 * calls (the X-lists below), so only the Vulkan headers and glslc are needed to build. Either
 * way the binary runs on machines without Vulkan: the loader is looked up at run time.
 * The table's pointers are named rwkv7_vk* (no clash with an application that links libvulkan)
 * and the API names are macros for them, so call sites read as plain Vulkan. Like volk, one
 * table per process: device functions come from the last device loaded. */
#ifndef RWKV7_VK_LOADER_H
#define RWKV7_VK_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef RWKV7_VK_USE_VOLK
#include <volk.h>
#else
#include <vulkan/vulkan.h>

/* Loaded with a NULL instance (vkEnumerateInstanceVersion is NULL on a Vulkan 1.0 loader). */
#define RWKV7_VK_GLOBAL_FUNCS(X) \
    X(vkCreateInstance) X(vkEnumerateInstanceVersion) X(vkEnumerateInstanceLayerProperties)
/* Loaded with the instance; the debug-utils pair is NULL unless RWKV7_VK_VALIDATION enabled it. */
#define RWKV7_VK_INSTANCE_FUNCS(X) \
    X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties) \
    X(vkGetPhysicalDeviceProperties2) X(vkGetPhysicalDeviceFeatures2) \
    X(vkGetPhysicalDeviceMemoryProperties) X(vkGetPhysicalDeviceMemoryProperties2) \
    X(vkGetPhysicalDeviceQueueFamilyProperties) X(vkEnumerateDeviceExtensionProperties) \
    X(vkCreateDevice) X(vkGetDeviceProcAddr) \
    X(vkCreateDebugUtilsMessengerEXT) X(vkDestroyDebugUtilsMessengerEXT)
/* Loaded with the device through vkGetDeviceProcAddr (no loader trampoline per call);
 * vkCmdPushDescriptorSetKHR stays NULL when the extension is not enabled. */
#define RWKV7_VK_DEVICE_FUNCS(X) \
    X(vkAllocateCommandBuffers) X(vkAllocateDescriptorSets) X(vkAllocateMemory) \
    X(vkBeginCommandBuffer) X(vkBindBufferMemory) X(vkCmdBindDescriptorSets) \
    X(vkCmdBindPipeline) X(vkCmdCopyBuffer) X(vkCmdDispatch) X(vkCmdPipelineBarrier) \
    X(vkCmdPushConstants) X(vkCmdPushDescriptorSetKHR) X(vkCmdUpdateBuffer) X(vkCreateBuffer) \
    X(vkCreateCommandPool) X(vkCreateComputePipelines) X(vkCreateDescriptorPool) \
    X(vkCreateDescriptorSetLayout) X(vkCreateFence) X(vkCreatePipelineLayout) \
    X(vkCreateShaderModule) X(vkDestroyBuffer) X(vkDestroyCommandPool) \
    X(vkDestroyDescriptorPool) X(vkDestroyDescriptorSetLayout) X(vkDestroyDevice) \
    X(vkDestroyFence) X(vkDestroyPipeline) X(vkDestroyPipelineLayout) X(vkDestroyShaderModule) \
    X(vkDeviceWaitIdle) X(vkEndCommandBuffer) X(vkFreeMemory) X(vkGetBufferMemoryRequirements) \
    X(vkGetDeviceQueue) X(vkMapMemory) X(vkQueueSubmit) X(vkResetCommandBuffer) \
    X(vkResetDescriptorPool) X(vkResetFences) X(vkUnmapMemory) X(vkUpdateDescriptorSets) \
    X(vkWaitForFences) X(vkCreateQueryPool) X(vkDestroyQueryPool) X(vkCmdResetQueryPool) \
    X(vkCmdWriteTimestamp) X(vkGetQueryPoolResults)

#define RWKV7_VK_DECLARE(f) extern PFN_##f rwkv7_##f;
RWKV7_VK_GLOBAL_FUNCS(RWKV7_VK_DECLARE)
RWKV7_VK_INSTANCE_FUNCS(RWKV7_VK_DECLARE)
RWKV7_VK_DEVICE_FUNCS(RWKV7_VK_DECLARE)
#undef RWKV7_VK_DECLARE

#define vkCreateInstance rwkv7_vkCreateInstance
#define vkEnumerateInstanceVersion rwkv7_vkEnumerateInstanceVersion
#define vkDestroyInstance rwkv7_vkDestroyInstance
#define vkCreateDebugUtilsMessengerEXT rwkv7_vkCreateDebugUtilsMessengerEXT
#define vkDestroyDebugUtilsMessengerEXT rwkv7_vkDestroyDebugUtilsMessengerEXT
#define vkEnumerateInstanceLayerProperties rwkv7_vkEnumerateInstanceLayerProperties
#define vkEnumeratePhysicalDevices rwkv7_vkEnumeratePhysicalDevices
#define vkGetPhysicalDeviceProperties rwkv7_vkGetPhysicalDeviceProperties
#define vkGetPhysicalDeviceProperties2 rwkv7_vkGetPhysicalDeviceProperties2
#define vkGetPhysicalDeviceFeatures2 rwkv7_vkGetPhysicalDeviceFeatures2
#define vkGetPhysicalDeviceMemoryProperties rwkv7_vkGetPhysicalDeviceMemoryProperties
#define vkGetPhysicalDeviceMemoryProperties2 rwkv7_vkGetPhysicalDeviceMemoryProperties2
#define vkGetPhysicalDeviceQueueFamilyProperties rwkv7_vkGetPhysicalDeviceQueueFamilyProperties
#define vkEnumerateDeviceExtensionProperties rwkv7_vkEnumerateDeviceExtensionProperties
#define vkCreateDevice rwkv7_vkCreateDevice
#define vkGetDeviceProcAddr rwkv7_vkGetDeviceProcAddr
#define vkAllocateCommandBuffers rwkv7_vkAllocateCommandBuffers
#define vkAllocateDescriptorSets rwkv7_vkAllocateDescriptorSets
#define vkAllocateMemory rwkv7_vkAllocateMemory
#define vkBeginCommandBuffer rwkv7_vkBeginCommandBuffer
#define vkBindBufferMemory rwkv7_vkBindBufferMemory
#define vkCmdBindDescriptorSets rwkv7_vkCmdBindDescriptorSets
#define vkCmdBindPipeline rwkv7_vkCmdBindPipeline
#define vkCmdCopyBuffer rwkv7_vkCmdCopyBuffer
#define vkCmdDispatch rwkv7_vkCmdDispatch
#define vkCmdPipelineBarrier rwkv7_vkCmdPipelineBarrier
#define vkCmdPushConstants rwkv7_vkCmdPushConstants
#define vkCmdPushDescriptorSetKHR rwkv7_vkCmdPushDescriptorSetKHR
#define vkCmdUpdateBuffer rwkv7_vkCmdUpdateBuffer
#define vkCreateBuffer rwkv7_vkCreateBuffer
#define vkCreateCommandPool rwkv7_vkCreateCommandPool
#define vkCreateComputePipelines rwkv7_vkCreateComputePipelines
#define vkCreateDescriptorPool rwkv7_vkCreateDescriptorPool
#define vkCreateDescriptorSetLayout rwkv7_vkCreateDescriptorSetLayout
#define vkCreateFence rwkv7_vkCreateFence
#define vkCreatePipelineLayout rwkv7_vkCreatePipelineLayout
#define vkCreateShaderModule rwkv7_vkCreateShaderModule
#define vkDestroyBuffer rwkv7_vkDestroyBuffer
#define vkDestroyCommandPool rwkv7_vkDestroyCommandPool
#define vkDestroyDescriptorPool rwkv7_vkDestroyDescriptorPool
#define vkDestroyDescriptorSetLayout rwkv7_vkDestroyDescriptorSetLayout
#define vkDestroyDevice rwkv7_vkDestroyDevice
#define vkDestroyFence rwkv7_vkDestroyFence
#define vkDestroyPipeline rwkv7_vkDestroyPipeline
#define vkDestroyPipelineLayout rwkv7_vkDestroyPipelineLayout
#define vkDestroyShaderModule rwkv7_vkDestroyShaderModule
#define vkDeviceWaitIdle rwkv7_vkDeviceWaitIdle
#define vkEndCommandBuffer rwkv7_vkEndCommandBuffer
#define vkFreeMemory rwkv7_vkFreeMemory
#define vkGetBufferMemoryRequirements rwkv7_vkGetBufferMemoryRequirements
#define vkGetDeviceQueue rwkv7_vkGetDeviceQueue
#define vkMapMemory rwkv7_vkMapMemory
#define vkQueueSubmit rwkv7_vkQueueSubmit
#define vkResetCommandBuffer rwkv7_vkResetCommandBuffer
#define vkResetDescriptorPool rwkv7_vkResetDescriptorPool
#define vkResetFences rwkv7_vkResetFences
#define vkUnmapMemory rwkv7_vkUnmapMemory
#define vkUpdateDescriptorSets rwkv7_vkUpdateDescriptorSets
#define vkWaitForFences rwkv7_vkWaitForFences
#define vkCreateQueryPool rwkv7_vkCreateQueryPool
#define vkDestroyQueryPool rwkv7_vkDestroyQueryPool
#define vkCmdResetQueryPool rwkv7_vkCmdResetQueryPool
#define vkCmdWriteTimestamp rwkv7_vkCmdWriteTimestamp
#define vkGetQueryPoolResults rwkv7_vkGetQueryPoolResults
#endif

/* Opens the loader once per process; false when no Vulkan loader is installed. */
bool rwkv7_vk_loader_open(void);
/* The loader's instance version (VK_API_VERSION_1_0 when it predates vkEnumerateInstanceVersion). */
uint32_t rwkv7_vk_loader_version(void);
/* Fills the instance-level (and, through the loader, device-level) entry points. */
void rwkv7_vk_loader_instance(VkInstance instance);
/* Refills the device-level entry points straight from the driver. */
void rwkv7_vk_loader_device(VkDevice device);
/* An instance-level entry point outside the table (extensions newer than the build's headers). */
PFN_vkVoidFunction rwkv7_vk_loader_proc(VkInstance instance, const char *name);

#endif
