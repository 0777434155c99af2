# fuzz.cmake: the libFuzzer targets, included from tests/tests.cmake when RWKV7_FUZZ=ON:
# fuzz_gguf (the GGUF reader, tests/fuzz_gguf.c) and fuzz_json (the JSON parser and writer that
# read `rwkv7 batch` lines, tests/fuzz_json.c). They are built with clang directly (whatever
# compiler the project uses), because -fsanitize=fuzzer is clang-only; on Debian libFuzzer ships
# in libclang-rt-<ver>-dev. The CTest tests fuzz_gguf_run and fuzz_json_run (label "fuzz") run
# this same file in script mode: a fresh corpus in the build dir seeded from tests/data (the
# fuzzer writes new inputs into its corpus, so it must never point at the sources), then a
# bounded run (30 s for GGUF, 20 s for JSON).

if(CMAKE_SCRIPT_MODE_FILE)
  file(REMOVE_RECURSE "${CORPUS}")
  file(MAKE_DIRECTORY "${CORPUS}" "${ARTIFACTS}")
  if(SEEDS STREQUAL "json")
    file(GLOB seeds "${FIXTURES}/jsonl/*.jsonl" "${FIXTURES}/world/*.jsonl")
  else()
    file(GLOB seeds "${FIXTURES}/tiny-rwkv7-834K/*.gguf" "${FIXTURES}/rand-c256-l2/*.gguf")
  endif()
  set(n_seeds 0)
  foreach(seed ${seeds})
    # the metadata is what the reader parses; small files keep mutation fast
    file(SIZE "${seed}" seed_size)
    if(seed_size LESS_EQUAL 1400000)
      file(COPY "${seed}" DESTINATION "${CORPUS}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE)
      math(EXPR n_seeds "${n_seeds} + 1")
    endif()
  endforeach()
  message(STATUS "${NAME}: ${n_seeds} seed files from ${FIXTURES}")
  execute_process(
    COMMAND "${FUZZER}" -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=4096
            -print_final_stats=1 "-artifact_prefix=${ARTIFACTS}/" "${CORPUS}"
    RESULT_VARIABLE fuzz_rc)
  if(NOT fuzz_rc EQUAL 0)
    message(FATAL_ERROR "${NAME} failed (exit ${fuzz_rc}); reproducer in ${ARTIFACTS}")
  endif()
  return()
endif()

if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(RWKV7_FUZZ_CC "${CMAKE_C_COMPILER}" CACHE FILEPATH "clang used for the fuzz targets")
else()
  find_program(RWKV7_FUZZ_CC NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14)
endif()
if(NOT RWKV7_FUZZ_CC)
  message(WARNING "RWKV7_FUZZ: clang not found; the fuzz targets are not built")
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
                  "(install libclang-rt-<version>-dev); the fuzz targets are not built")
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
# One libFuzzer binary, its build target and its bounded CTest run.
function(rwkv7_fuzz_target name seeds seconds)
  set(srcs ${ARGN})
  # in a subfolder: a file named like the custom target would make the target depend on itself
  set(bin "${CMAKE_BINARY_DIR}/fuzz/${name}")
  add_custom_command(
    OUTPUT "${bin}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${CMAKE_BINARY_DIR}/fuzz"
    COMMAND "${RWKV7_FUZZ_CC}" -std=c11 -O1 -g -fno-omit-frame-pointer
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -Wall -Wextra -Wno-unused-parameter
            -I${CMAKE_SOURCE_DIR}/runtime -I${CMAKE_SOURCE_DIR}/host ${srcs} -o "${bin}" -lm
    DEPENDS ${srcs} ${RWKV7_FUZZ_HDR}
    COMMENT "Building libFuzzer target ${name} with ${RWKV7_FUZZ_CC}"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS "${bin}")
  add_test(NAME ${name}_run
           COMMAND ${CMAKE_COMMAND}
                   -DNAME=${name} -DSEEDS=${seeds}
                   -DFUZZER=${bin}
                   -DCORPUS=${CMAKE_BINARY_DIR}/fuzz/${name}_corpus
                   -DARTIFACTS=${CMAKE_BINARY_DIR}/fuzz/${name}_artifacts
                   -DFIXTURES=${RWKV7_FIXTURES_DIR}
                   -DSECONDS=${seconds}
                   -P ${CMAKE_SOURCE_DIR}/tests/fuzz.cmake)
  set_tests_properties(${name}_run PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()

file(GLOB RWKV7_FUZZ_HDR CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/runtime/*.h ${CMAKE_SOURCE_DIR}/host/json.h)
rwkv7_fuzz_target(fuzz_gguf gguf 30 ${RWKV7_FUZZ_SRC})
# The parser, its writer and the status buffer; 20 s keep CI short (it finds its edges quickly:
# the limits are set small inside the target).
rwkv7_fuzz_target(fuzz_json json 20
                  ${CMAKE_SOURCE_DIR}/tests/fuzz_json.c ${CMAKE_SOURCE_DIR}/host/json.c ${CMAKE_SOURCE_DIR}/runtime/status.c)
