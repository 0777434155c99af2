# fuzz.cmake: the libFuzzer target for the GGUF reader (tests/fuzz_gguf.c), included from
# tests/tests.cmake when RWKV7_FUZZ=ON. It is built with clang directly (whatever compiler the
# project uses), because -fsanitize=fuzzer is clang-only; on Debian libFuzzer ships in
# libclang-rt-<ver>-dev. The CTest test fuzz_gguf_run (label "fuzz") runs this same file in
# script mode: a fresh corpus in the build dir seeded with the small fixture models (the fuzzer
# writes new inputs into its corpus, so it must never point at shared/), then a 30 s run.

if(CMAKE_SCRIPT_MODE_FILE)
  file(REMOVE_RECURSE "${CORPUS}")
  file(MAKE_DIRECTORY "${CORPUS}" "${ARTIFACTS}")
  file(GLOB seeds "${FIXTURES}/tiny-rwkv7-834K/*.gguf" "${FIXTURES}/rand-c256-l2/*.gguf")
  set(n_seeds 0)
  foreach(seed ${seeds})
    # the metadata is what the reader parses; small files keep mutation fast
    file(SIZE "${seed}" seed_size)
    if(seed_size LESS_EQUAL 1400000)
      file(COPY "${seed}" DESTINATION "${CORPUS}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE)
      math(EXPR n_seeds "${n_seeds} + 1")
    endif()
  endforeach()
  message(STATUS "fuzz_gguf: ${n_seeds} seed files from ${FIXTURES}")
  execute_process(
    COMMAND "${FUZZER}" -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=4096
            -print_final_stats=1 "-artifact_prefix=${ARTIFACTS}/" "${CORPUS}"
    RESULT_VARIABLE fuzz_rc)
  if(NOT fuzz_rc EQUAL 0)
    message(FATAL_ERROR "fuzz_gguf failed (exit ${fuzz_rc}); reproducer in ${ARTIFACTS}")
  endif()
  return()
endif()

if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(RWKV7_FUZZ_CC "${CMAKE_C_COMPILER}" CACHE FILEPATH "clang used for the fuzz targets")
else()
  find_program(RWKV7_FUZZ_CC NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14)
endif()
if(NOT RWKV7_FUZZ_CC)
  message(WARNING "RWKV7_FUZZ: clang not found; fuzz_gguf is not built")
  return()
endif()

# Probe once: clang without the compiler-rt fuzzer library fails only at link time.
set(probe_dir "${CMAKE_BINARY_DIR}/fuzz_probe")
file(WRITE "${probe_dir}/probe.c"
     "#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
execute_process(
  COMMAND "${RWKV7_FUZZ_CC}" -fsanitize=fuzzer,address,undefined "${probe_dir}/probe.c" -o "${probe_dir}/probe"
  RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_QUIET)
if(NOT probe_rc EQUAL 0)
  message(WARNING "RWKV7_FUZZ: ${RWKV7_FUZZ_CC} cannot link -fsanitize=fuzzer "
                  "(install libclang-rt-<version>-dev); fuzz_gguf is not built")
  return()
endif()

# The reader, the status buffer, and the type table with the dequantizers it points at.
file(GLOB RWKV7_FUZZ_DTYPE_SRC CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/runtime/dtype.c ${CMAKE_SOURCE_DIR}/runtime/dequant_*.c
     ${CMAKE_SOURCE_DIR}/runtime/iq_tables.c)
set(RWKV7_FUZZ_SRC
    ${CMAKE_SOURCE_DIR}/tests/fuzz_gguf.c
    ${CMAKE_SOURCE_DIR}/runtime/gguf.c
    ${CMAKE_SOURCE_DIR}/runtime/status.c
    ${RWKV7_FUZZ_DTYPE_SRC})
file(GLOB RWKV7_FUZZ_HDR CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/runtime/*.h)
# in a subfolder: a file named like the custom target would make the target depend on itself
set(RWKV7_FUZZ_BIN "${CMAKE_BINARY_DIR}/fuzz/fuzz_gguf")

add_custom_command(
  OUTPUT "${RWKV7_FUZZ_BIN}"
  COMMAND ${CMAKE_COMMAND} -E make_directory "${CMAKE_BINARY_DIR}/fuzz"
  COMMAND "${RWKV7_FUZZ_CC}" -std=c11 -O1 -g -fno-omit-frame-pointer
          -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
          -Wall -Wextra -Wno-unused-parameter
          -I${CMAKE_SOURCE_DIR}/runtime ${RWKV7_FUZZ_SRC} -o "${RWKV7_FUZZ_BIN}" -lm
  DEPENDS ${RWKV7_FUZZ_SRC} ${RWKV7_FUZZ_HDR}
  COMMENT "Building libFuzzer target fuzz_gguf with ${RWKV7_FUZZ_CC}"
  VERBATIM)
add_custom_target(fuzz_gguf ALL DEPENDS "${RWKV7_FUZZ_BIN}")

add_test(NAME fuzz_gguf_run
         COMMAND ${CMAKE_COMMAND}
                 -DFUZZER=${RWKV7_FUZZ_BIN}
                 -DCORPUS=${CMAKE_BINARY_DIR}/fuzz/corpus
                 -DARTIFACTS=${CMAKE_BINARY_DIR}/fuzz/artifacts
                 -DFIXTURES=${RWKV7_FIXTURES_DIR}
                 -DSECONDS=30
                 -P ${CMAKE_SOURCE_DIR}/tests/fuzz.cmake)
set_tests_properties(fuzz_gguf_run PROPERTIES LABELS fuzz TIMEOUT 300)
