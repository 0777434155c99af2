# Every tests/test_<name>.c is one executable and one CTest test. Tests exit 77 (CTest skip) when
# something they need is absent (fixtures, a GPU) and say why on stderr. Labels: tests whose name
# starts with test_vk/test_cuda/test_gpu are "gpu"; those that
# run whole models or the CLI (model, cli, state, chat, batch, serve, bench) are "e2e", the rest "unit".
file(GLOB RWKV7_TEST_SRC CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/test_*.c)
# Backend-specific op tests exist only in builds that compile that backend; where the backend is
# compiled but no device exists they build, run and skip (77).
foreach(src ${RWKV7_TEST_SRC})
  get_filename_component(name ${src} NAME_WE)
  if(name MATCHES "^test_cuda" AND NOT RWKV7_HAVE_CUDA)
    continue()
  endif()
  if(name MATCHES "^test_vk" AND NOT RWKV7_HAVE_VULKAN)
    continue()
  endif()
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE ${RWKV7_C_WARNINGS})
  target_compile_definitions(${name} PRIVATE
    RWKV7_FIXTURES_DIR="${RWKV7_FIXTURES_DIR}"
    RWKV7_CLI_PATH="$<TARGET_FILE:rwkv7-cli>" RWKV7_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  # Tests of one backend's internals (its kernels' building blocks) see that backend's headers.
  if(name MATCHES "^test_(cpu_|wkv7)")
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/cpu)
  endif()
  if(name STREQUAL "test_vk_coopmat")
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/vulkan)
  endif()
  if(name STREQUAL "test_vk_wkv" OR name STREQUAL "test_vk_matvec_pick")
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/vulkan ${CMAKE_SOURCE_DIR}/shaders)
  endif()
  target_link_libraries(${name} PRIVATE rwkv7_host)
  add_test(NAME ${name} COMMAND ${name})
  set(label unit)
  if(name MATCHES "^test_(vk|cuda|gpu)")
    set(label gpu)
  elseif(name MATCHES "^test_(model|cli|state|chat|batch|serve|bench)")
    set(label e2e)
  endif()
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 LABELS ${label} TIMEOUT 600)
  # The op and fixture tests compile hundreds of Vulkan pipelines; on lavapipe with a cold shader
  # cache and another test beside them that took ~10 minutes (8.5 for test_gpu_model): room, not a hang.
  if(name STREQUAL "test_ops" OR name STREQUAL "test_gpu_model")
    set_tests_properties(${name} PROPERTIES TIMEOUT 1200)
  endif()
  if(name MATCHES "_load$")
    # Throughput comparisons (test_serve_load) must not share the CPU with other tests.
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
endforeach()

# The chunked WKV-7 Vulkan kernels run by default only from RWKV7_VK_WKV_MIN_TOK tokens
# (vulkan/wkv.h): the op cases again with them forced on, down to runs of 2 tokens.
if(RWKV7_HAVE_VULKAN)
  add_test(NAME test_ops_vk_wkv_chunked COMMAND test_ops -b vulkan -o wkv7)
  set_tests_properties(test_ops_vk_wkv_chunked PROPERTIES ENVIRONMENT RWKV7_VK_WKV=chunked
                       SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 600)
  # ... and under the validation layer: the two passes' scratch hand-over (prep writes, the state
  # walk reads, the next window's prep overwrites) is a hazard sync validation would report.
  add_test(NAME test_vk_validation_wkv_chunked COMMAND test_vk_validation)
  set_tests_properties(test_vk_validation_wkv_chunked PROPERTIES ENVIRONMENT RWKV7_VK_WKV=chunked
                       SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 600)
  # The decode matvec's activation staging for T > 1 (off by default on CPU devices such as
  # lavapipe, on for GPUs): the model-aligned decode cases, which the staging pipelines run, forced on.
  add_test(NAME test_ops_vk_matvec_staged COMMAND test_ops -b vulkan -p aligned)
  set_tests_properties(test_ops_vk_matvec_staged PROPERTIES ENVIRONMENT RWKV7_VK_MATVEC_STAGE=1
                       SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 600)
  # The matvec layout of wave64 devices (AMD: 64 lanes per row, two slots per workgroup) on
  # lavapipe's subgroups of 8, with the staging on too: the model-aligned decode cases and a
  # split-K one of each lane-unit family (float, Q8_0, 4-bit, K-quants, a 32-weight decoder).
  add_test(NAME test_ops_vk_matvec_lpr64 COMMAND test_ops -b vulkan
           -p "^MATMUL(_N)?[(]type=(f32|f16|q8_0|q4_0|q4_K|q5_K|q6_K|q3_K),(.*aligned|k=2048,m=40,t=1)")
  set_tests_properties(test_ops_vk_matvec_lpr64 PROPERTIES ENVIRONMENT "RWKV7_VK_MATVEC_LPR=64;RWKV7_VK_MATVEC_STAGE=1"
                       SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 600)
  # ... and under the validation layer, which checks each staging pipeline's shared memory against
  # the device's limit when it is created.
  # One type per lane-unit family; Q4_K / Q6_K at T = 8 take the most (16 KiB staged).
  add_test(NAME test_vk_validation_matvec_staged COMMAND test_vk_validation
           -p "type=(f32|f16|q8_0|q4_0|q4_K|q6_K|q3_K),.*aligned")
  set_tests_properties(test_vk_validation_matvec_staged PROPERTIES ENVIRONMENT RWKV7_VK_MATVEC_STAGE=1
                       SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 600)
  # The cooperative-matrix prefill shader with its matrices emulated (RWKV7_VK_COOPMAT=emulate; the
  # real flavours need a GPU): the prefill-shaped matmul, matmul_n and ffn_key cases of the types
  # with emulated variants, alone and under the validation layer (the features it enables).
  set(rwkv7_cm_emu_cases "^(MATMUL|MATMUL_N|FFN_KEY)[(]type=(f32|f16|q8_0|q4_K|q6_K),.*t=[1-9][0-9]+")
  add_test(NAME test_ops_vk_coopmat_emu COMMAND test_ops -b vulkan -p "${rwkv7_cm_emu_cases}")
  add_test(NAME test_vk_validation_coopmat_emu COMMAND test_vk_validation -p "${rwkv7_cm_emu_cases}")
  set_tests_properties(test_ops_vk_coopmat_emu test_vk_validation_coopmat_emu PROPERTIES
                       ENVIRONMENT RWKV7_VK_COOPMAT=emulate SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 600)
  # RWKV7_VK_PROFILE=1: the per-dispatch table is printed at exit, and a decode step runs the
  # matvec pipelines specialized for one row ("+a1"/"+u1"); skipped where no Vulkan device starts.
  add_test(NAME test_vk_profile COMMAND rwkv7-cli bench -m ${CMAKE_SOURCE_DIR}/tests/data/rand-c256-l2/rand-c256-l2-Q8_0.gguf
           -p 0 -n 2 -r 1 --no-warmup --backend vulkan)
  set_tests_properties(test_vk_profile PROPERTIES ENVIRONMENT RWKV7_VK_PROFILE=1
                       PASS_REGULAR_EXPRESSION "vulkan profile [(]each dispatch submitted alone[)].*matvec_q8_0(_sg)?[+][au]1 x"
                       SKIP_REGULAR_EXPRESSION "backend 'vulkan': " LABELS gpu TIMEOUT 600)
endif()

if(RWKV7_FUZZ)
  include(${CMAKE_SOURCE_DIR}/tests/fuzz.cmake OPTIONAL)
endif()
