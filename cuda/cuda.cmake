# cuda/cuda.cmake: the CUDA backend build, included by the top CMakeLists.txt when RWKV7_CUDA is
# not OFF. AUTO enables it only when CheckLanguage finds nvcc; ON makes its absence an error.
# The CUDA runtime is linked statically so the binary still starts (and falls back) on machines
# without a driver; the registry entry's init (cuda_init) then returns RWKV7_ERR_UNSUPPORTED.
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(RWKV7_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RWKV7_CUDA=ON but no CUDA compiler was found (set CUDACXX or put nvcc on PATH)")
  endif()
  message(STATUS "rwkv7: CUDA toolkit not found; CUDA backend disabled")
  return()
endif()

# Explicit architecture list (no nvidia-smi probing): SASS for Turing..Hopper plus compute_90 PTX
# so newer GPUs can JIT. A user-set CMAKE_CUDA_ARCHITECTURES wins: one GPU while developing (90),
# or any list ("80;90-real;90-virtual": SASS for sm_80 and sm_90, PTX of compute_90).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
  set(CMAKE_CUDA_ARCHITECTURES "75-real;80-real;86-real;89-real;90-real;90-virtual")
endif()
if(NOT DEFINED CMAKE_CUDA_RUNTIME_LIBRARY)
  set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
endif()
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

file(GLOB RWKV7_CUDA_SRC CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cu)
add_library(rwkv7_cuda OBJECT ${RWKV7_CUDA_SRC})
target_include_directories(rwkv7_cuda PRIVATE ${CMAKE_SOURCE_DIR}/runtime ${CMAKE_CURRENT_LIST_DIR})
set_target_properties(rwkv7_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Static CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_options(rwkv7_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo --expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter,-Wno-unknown-pragmas>)
target_link_libraries(rwkv7_cuda PRIVATE CUDA::cudart_static)
# RWKV7_WERROR: nvcc's own warnings (front end, ptxas) and the host compiler's are errors too.
if(RWKV7_WERROR)
  target_compile_options(rwkv7_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Werror>)
endif()
target_sources(rwkv7 PRIVATE $<TARGET_OBJECTS:rwkv7_cuda>)
# rwkv7 was created before this file ran, so its CUDA properties must be set explicitly.
set_target_properties(rwkv7 PROPERTIES CUDA_RUNTIME_LIBRARY Static CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
target_link_libraries(rwkv7 PUBLIC CUDA::cudart_static)
set_property(SOURCE ${CMAKE_SOURCE_DIR}/runtime/backend_registry.c APPEND PROPERTY COMPILE_DEFINITIONS RWKV7_HAVE_CUDA)
set(RWKV7_HAVE_CUDA ON)

# Host-only unit test of the shared dequantization helpers (cuda/dequant.cuh compiled for the
# host) against the CPU dequantizers; runs without a GPU. Not a tests/test_*.c, so registered here.
if(RWKV7_BUILD_TESTS AND EXISTS ${CMAKE_SOURCE_DIR}/tests/test_cuda_dequant.cu)
  add_executable(test_cuda_dequant ${CMAKE_SOURCE_DIR}/tests/test_cuda_dequant.cu)
  target_include_directories(test_cuda_dequant PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_CURRENT_LIST_DIR})
  target_compile_definitions(test_cuda_dequant PRIVATE RWKV7_FIXTURES_DIR="${RWKV7_FIXTURES_DIR}")
  target_link_libraries(test_cuda_dequant PRIVATE rwkv7)
  set_target_properties(test_cuda_dequant PROPERTIES CUDA_RUNTIME_LIBRARY Static
                        CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  add_test(NAME test_cuda_dequant COMMAND test_cuda_dequant)
  set_tests_properties(test_cuda_dequant PROPERTIES SKIP_RETURN_CODE 77 LABELS unit TIMEOUT 600)
endif()

# Host-only test of the chunked WKV-7 prefill kernel: the per-thread phases of
# cuda/wkv7_chunked.cuh driven over thread ids on the host, against the CPU serial recurrence.
if(RWKV7_BUILD_TESTS AND EXISTS ${CMAKE_SOURCE_DIR}/tests/test_cuda_wkv7.cu)
  add_executable(test_cuda_wkv7 ${CMAKE_SOURCE_DIR}/tests/test_cuda_wkv7.cu)
  target_include_directories(test_cuda_wkv7 PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/cpu ${CMAKE_CURRENT_LIST_DIR})
  target_compile_definitions(test_cuda_wkv7 PRIVATE RWKV7_FIXTURES_DIR="${RWKV7_FIXTURES_DIR}")
  target_compile_options(test_cuda_wkv7 PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas>)
  target_link_libraries(test_cuda_wkv7 PRIVATE rwkv7)
  set_target_properties(test_cuda_wkv7 PROPERTIES CUDA_RUNTIME_LIBRARY Static
                        CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  add_test(NAME test_cuda_wkv7 COMMAND test_cuda_wkv7)
  set_tests_properties(test_cuda_wkv7 PROPERTIES LABELS unit TIMEOUT 600)
endif()

# Host-only test of the fused wkv_block kernel: the per-lane steps of cuda/wkv7_block.cuh driven
# as the kernel drives them, against the CPU backend's wkv_block.
if(RWKV7_BUILD_TESTS AND EXISTS ${CMAKE_SOURCE_DIR}/tests/test_cuda_wkv_block.cu)
  add_executable(test_cuda_wkv_block ${CMAKE_SOURCE_DIR}/tests/test_cuda_wkv_block.cu)
  target_include_directories(test_cuda_wkv_block PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_CURRENT_LIST_DIR})
  target_compile_definitions(test_cuda_wkv_block PRIVATE RWKV7_FIXTURES_DIR="${RWKV7_FIXTURES_DIR}")
  target_compile_options(test_cuda_wkv_block PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas>)
  target_link_libraries(test_cuda_wkv_block PRIVATE rwkv7)
  set_target_properties(test_cuda_wkv_block PROPERTIES CUDA_RUNTIME_LIBRARY Static
                        CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  add_test(NAME test_cuda_wkv_block COMMAND test_cuda_wkv_block)
  set_tests_properties(test_cuda_wkv_block PROPERTIES LABELS unit TIMEOUT 600)
endif()

# Host-only test of the tensor-core prefill GEMM (cuda/gemm.cu): the bf16 hi + lo split of
# cuda/mma_split.cuh, the fragment layout and launch plan of cuda/gemm_tile.cuh, and the tile's MMA
# order and split-K reduction emulated on the fixtures' matrix shapes.
if(RWKV7_BUILD_TESTS AND EXISTS ${CMAKE_SOURCE_DIR}/tests/test_cuda_mma.cu)
  add_executable(test_cuda_mma ${CMAKE_SOURCE_DIR}/tests/test_cuda_mma.cu)
  target_include_directories(test_cuda_mma PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_definitions(test_cuda_mma PRIVATE RWKV7_FIXTURES_DIR="${RWKV7_FIXTURES_DIR}")
  target_compile_options(test_cuda_mma PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas>)
  target_link_libraries(test_cuda_mma PRIVATE rwkv7)
  set_target_properties(test_cuda_mma PROPERTIES CUDA_RUNTIME_LIBRARY Static
                        CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  add_test(NAME test_cuda_mma COMMAND test_cuda_mma)
  set_tests_properties(test_cuda_mma PROPERTIES LABELS unit TIMEOUT 600)
endif()

# Host-only test of the fused LoRA up-projection kernel (cuda/lora_up.cu): its per-thread code
# (cuda/lora_up.cuh) driven over blocks, lanes and shuffles on the host, against a double reference.
if(RWKV7_BUILD_TESTS AND EXISTS ${CMAKE_SOURCE_DIR}/tests/test_cuda_lora_up.cu)
  add_executable(test_cuda_lora_up ${CMAKE_SOURCE_DIR}/tests/test_cuda_lora_up.cu)
  target_include_directories(test_cuda_lora_up PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/runtime ${CMAKE_CURRENT_LIST_DIR})
  target_compile_definitions(test_cuda_lora_up PRIVATE RWKV7_FIXTURES_DIR="${RWKV7_FIXTURES_DIR}")
  target_compile_options(test_cuda_lora_up PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas>)
  target_link_libraries(test_cuda_lora_up PRIVATE rwkv7)
  set_target_properties(test_cuda_lora_up PROPERTIES CUDA_RUNTIME_LIBRARY Static
                        CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  add_test(NAME test_cuda_lora_up COMMAND test_cuda_lora_up)
  set_tests_properties(test_cuda_lora_up PROPERTIES LABELS unit TIMEOUT 600)
endif()
