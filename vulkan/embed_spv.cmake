# embed_spv.cmake: cmake -DIN=x.spv -DOUT=x.spv.c -DNAME=x -P embed_spv.cmake
# Writes `const uint32_t rwkv7_spv_<NAME>[]` (little-endian words of the SPIR-V file) and its size
# in bytes, so the backend creates shader modules without touching the file system.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR rem "${n} % 8")
if(NOT rem EQUAL 0 OR n EQUAL 0)
  message(FATAL_ERROR "${IN}: SPIR-V size is not a multiple of 4 bytes")
endif()
math(EXPR nbytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])"
       "0x\\4\\3\\2\\1u," words "${hex}")
string(REGEX REPLACE "((0x[0-9a-f]+u,){8})" "\\1\n    " words "${words}")
file(WRITE ${OUT} "/* generated from ${NAME}.spv by vulkan/embed_spv.cmake */\n#include <stddef.h>\n#include <stdint.h>\n"
     "const uint32_t rwkv7_spv_${NAME}[] = {\n    ${words}\n};\nconst size_t rwkv7_spv_${NAME}_size = ${nbytes};\n")
