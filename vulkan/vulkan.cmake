# vulkan.cmake: the Vulkan backend (vulkan/*.c + shaders/*.comp), included by the top CMakeLists.
# AUTO enables it when the Vulkan headers and glslc are found; ON makes a missing piece an error.
# The loader is reached through volk when RWKV7_VK_USE_VOLK is on and volk is found, else through
# vulkan/loader.c's own dlopen of libvulkan.so.1 (loader.h). Every (shader, variant) in shaders/variants.cmake is compiled by glslc into
# SPIR-V in the build dir and embedded as a uint32 array (vulkan/embed_spv.cmake); .spv files are
# never committed. The loader is opened at run time either way, so the binary runs without Vulkan.
option(RWKV7_VK_USE_VOLK "Vulkan backend: reach the loader through volk when found (else dlopen)" ON)
find_package(Vulkan QUIET)
find_program(RWKV7_GLSLC glslc HINTS ${Vulkan_GLSLC_EXECUTABLE} ENV VULKAN_SDK PATH_SUFFIXES bin)
find_path(RWKV7_VK_INCLUDE vulkan/vulkan.h HINTS ${Vulkan_INCLUDE_DIRS})
find_path(RWKV7_VOLK_DIR volk.h HINTS ${Vulkan_INCLUDE_DIRS} ENV VULKAN_SDK PATH_SUFFIXES include include/volk)

set(rwkv7_vk_missing "")
if(NOT RWKV7_VK_INCLUDE)
  list(APPEND rwkv7_vk_missing "Vulkan headers (vulkan/vulkan.h)")
endif()
if(NOT RWKV7_GLSLC)
  list(APPEND rwkv7_vk_missing "glslc")
endif()
if(rwkv7_vk_missing)
  if(RWKV7_VULKAN STREQUAL "ON")
    message(FATAL_ERROR "RWKV7_VULKAN=ON but missing: ${rwkv7_vk_missing}")
  endif()
  message(STATUS "rwkv7: Vulkan backend off (missing: ${rwkv7_vk_missing})")
  return()
endif()
set(rwkv7_vk_volk OFF)
if(RWKV7_VK_USE_VOLK AND RWKV7_VOLK_DIR AND EXISTS "${RWKV7_VOLK_DIR}/volk.c")
  set(rwkv7_vk_volk ON)
endif()
if(rwkv7_vk_volk)
  message(STATUS "rwkv7: Vulkan backend on (glslc: ${RWKV7_GLSLC}; loader: volk)")
else()
  message(STATUS "rwkv7: Vulkan backend on (glslc: ${RWKV7_GLSLC}; loader: dlopen, no volk)")
endif()

set(RWKV7_SHADER_DIR ${CMAKE_SOURCE_DIR}/shaders)
set(RWKV7_SPV_DIR ${CMAKE_BINARY_DIR}/spirv)
file(MAKE_DIRECTORY ${RWKV7_SPV_DIR})
file(GLOB rwkv7_shader_headers CONFIGURE_DEPENDS ${RWKV7_SHADER_DIR}/*.glsl ${RWKV7_SHADER_DIR}/abi.h)
option(RWKV7_SHADER_DEBUG "Compile shaders with debug info (-g)" OFF)

# rwkv7_shader(<source> <variant name> [defines...]): one glslc run + one embedding step.
# A define ENV=<env> is not passed on: it picks glslc's --target-env (default vulkan1.2).
set(rwkv7_spv_sources "")
set(rwkv7_spv_names "")
function(rwkv7_shader src name)
  set(defs "")
  set(env vulkan1.2)
  foreach(d ${ARGN})
    if(d MATCHES "^ENV=(.*)$")
      set(env ${CMAKE_MATCH_1})
    else()
      list(APPEND defs "-D${d}")
    endif()
  endforeach()
  set(opt -O)
  if(RWKV7_SHADER_DEBUG)
    set(opt -g)
  endif()
  add_custom_command(
    OUTPUT ${RWKV7_SPV_DIR}/${name}.spv
    COMMAND ${RWKV7_GLSLC} -fshader-stage=compute --target-env=${env} ${opt} -DRWKV7_GLSL ${defs}
            -I${RWKV7_SHADER_DIR} -o ${RWKV7_SPV_DIR}/${name}.spv ${RWKV7_SHADER_DIR}/${src}
    DEPENDS ${RWKV7_SHADER_DIR}/${src} ${rwkv7_shader_headers}
    COMMENT "glslc ${name}" VERBATIM)
  add_custom_command(
    OUTPUT ${RWKV7_SPV_DIR}/${name}.spv.c
    COMMAND ${CMAKE_COMMAND} -DIN=${RWKV7_SPV_DIR}/${name}.spv -DOUT=${RWKV7_SPV_DIR}/${name}.spv.c
            -DNAME=${name} -P ${CMAKE_SOURCE_DIR}/vulkan/embed_spv.cmake
    DEPENDS ${RWKV7_SPV_DIR}/${name}.spv ${CMAKE_SOURCE_DIR}/vulkan/embed_spv.cmake VERBATIM)
  set(rwkv7_spv_sources ${rwkv7_spv_sources} ${RWKV7_SPV_DIR}/${name}.spv.c PARENT_SCOPE)
  set(rwkv7_spv_names ${rwkv7_spv_names} ${name} PARENT_SCOPE)
endfunction()

# rwkv7_shader_check(<source> <name> [defines...]): compiled at build time, never embedded (a
# compile check of code whose real variant this glslc cannot build; variants.cmake says which).
set(rwkv7_spv_checks "")
function(rwkv7_shader_check src name)
  set(defs "")
  foreach(d ${ARGN})
    list(APPEND defs "-D${d}")
  endforeach()
  add_custom_command(
    OUTPUT ${RWKV7_SPV_DIR}/check_${name}.spv
    COMMAND ${RWKV7_GLSLC} -fshader-stage=compute --target-env=vulkan1.2 -O -DRWKV7_GLSL ${defs}
            -I${RWKV7_SHADER_DIR} -o ${RWKV7_SPV_DIR}/check_${name}.spv ${RWKV7_SHADER_DIR}/${src}
    DEPENDS ${RWKV7_SHADER_DIR}/${src} ${rwkv7_shader_headers}
    COMMENT "glslc (check) ${name}" VERBATIM)
  set(rwkv7_spv_checks ${rwkv7_spv_checks} ${RWKV7_SPV_DIR}/check_${name}.spv PARENT_SCOPE)
endfunction()

# Does this glslc know GL_KHR_cooperative_matrix (glslang 13+)? Decides the matmul_cm variants.
set(rwkv7_probe ${CMAKE_BINARY_DIR}/coopmat_probe.comp)
file(WRITE ${rwkv7_probe} "#version 450\n#extension GL_KHR_cooperative_matrix : require\n"
     "#extension GL_KHR_memory_scope_semantics : require\nlayout(local_size_x = 32) in;\nvoid main() {\n"
     "    coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> c = "
     "coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0);\n}\n")
execute_process(COMMAND ${RWKV7_GLSLC} -fshader-stage=compute --target-env=vulkan1.3 -o ${rwkv7_probe}.spv ${rwkv7_probe}
                RESULT_VARIABLE rwkv7_probe_rc OUTPUT_QUIET ERROR_QUIET)
if(rwkv7_probe_rc EQUAL 0)
  set(RWKV7_GLSLC_COOPMAT ON)
else()
  set(RWKV7_GLSLC_COOPMAT OFF)
  message(STATUS "rwkv7: glslc lacks GL_KHR_cooperative_matrix: cooperative-matrix matmul not built "
                 "(its GL_NV_cooperative_matrix form is compile-checked instead)")
endif()

include(${RWKV7_SHADER_DIR}/variants.cmake)
if(rwkv7_spv_checks)
  add_custom_target(rwkv7_shader_checks ALL DEPENDS ${rwkv7_spv_checks})
endif()

# The name -> SPIR-V table (vulkan/spv.h), rewritten only when the variant list changes.
set(tab "/* generated by vulkan/vulkan.cmake from shaders/variants.cmake */\n#include \"spv.h\"\n")
foreach(n ${rwkv7_spv_names})
  string(APPEND tab "extern const uint32_t rwkv7_spv_${n}[];\nextern const size_t rwkv7_spv_${n}_size;\n")
endforeach()
string(APPEND tab "const struct rwkv7_vk_spv rwkv7_vk_spv_table[] = {\n")
foreach(n ${rwkv7_spv_names})
  string(APPEND tab "    {\"${n}\", rwkv7_spv_${n}, &rwkv7_spv_${n}_size},\n")
endforeach()
string(APPEND tab "};\nconst int rwkv7_vk_spv_count = (int)(sizeof rwkv7_vk_spv_table / sizeof rwkv7_vk_spv_table[0]);\n")
file(CONFIGURE OUTPUT ${RWKV7_SPV_DIR}/spv_table.c CONTENT "${tab}" @ONLY)

file(GLOB rwkv7_vk_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/vulkan/*.c)
add_library(rwkv7_vulkan OBJECT ${rwkv7_vk_src} ${rwkv7_spv_sources} ${RWKV7_SPV_DIR}/spv_table.c)
rwkv7_part(rwkv7_vulkan ${CMAKE_SOURCE_DIR}/runtime ${CMAKE_SOURCE_DIR}/vulkan ${RWKV7_SHADER_DIR} ${RWKV7_VK_INCLUDE})
if(rwkv7_vk_volk)
  target_sources(rwkv7_vulkan PRIVATE ${RWKV7_VOLK_DIR}/volk.c)
  set_source_files_properties(${rwkv7_vk_src} ${RWKV7_VOLK_DIR}/volk.c PROPERTIES
                              COMPILE_DEFINITIONS "VK_NO_PROTOTYPES;RWKV7_VK_USE_VOLK")
  # volk.c is third-party: build it without our warning flags (they would trip -Werror).
  set_source_files_properties(${RWKV7_VOLK_DIR}/volk.c PROPERTIES COMPILE_OPTIONS "-w")
  target_include_directories(rwkv7_vulkan PRIVATE ${RWKV7_VOLK_DIR})
else()
  set_source_files_properties(${rwkv7_vk_src} PROPERTIES COMPILE_DEFINITIONS VK_NO_PROTOTYPES)
endif()
target_sources(rwkv7 PRIVATE $<TARGET_OBJECTS:rwkv7_vulkan>)
set_property(SOURCE ${CMAKE_SOURCE_DIR}/runtime/backend_registry.c APPEND PROPERTY COMPILE_DEFINITIONS RWKV7_HAVE_VULKAN)
set(RWKV7_HAVE_VULKAN ON)
