# variants.cmake: every (shader, variant name, defines) compiled to SPIR-V; the whole "generator".
# Variant names are what vulkan/*.c asks rwkv7_vk_dispatch() for: <op>_<type>[_sg].
# _sg variants reduce with subgroupAdd (GL_KHR_shader_subgroup_arithmetic); the plain ones use a
# shared-memory tree and run on devices without subgroup arithmetic.
# The weight types: the entries of runtime/dtype.h's RWKV7_WEIGHT_TYPE_LIST whose vulkan column
# is 1 (the one weight-type list; its lines look like "M(Q4_K, q4_k, 1, 1, a)").
file(READ ${CMAKE_SOURCE_DIR}/runtime/dtype.h rwkv7_dtype_h)
string(REGEX MATCHALL "M\\([A-Z0-9_]+, [a-z0-9_]+, [01], 1, a\\)" rwkv7_vk_type_entries "${rwkv7_dtype_h}")
set(RWKV7_VK_WEIGHT_TYPES "")
foreach(entry ${rwkv7_vk_type_entries})
  string(REGEX REPLACE "^M\\([A-Z0-9_]+, ([a-z0-9_]+),.*$" "\\1" t "${entry}")
  list(APPEND RWKV7_VK_WEIGHT_TYPES ${t})
endforeach()
list(LENGTH RWKV7_VK_WEIGHT_TYPES rwkv7_vk_n_types)
if(rwkv7_vk_n_types LESS 10)
  message(FATAL_ERROR "shaders/variants.cmake: could not read the weight types from runtime/dtype.h")
endif()
foreach(t ${RWKV7_VK_WEIGHT_TYPES})
  string(TOUPPER ${t} T)
  rwkv7_shader(matvec.comp matvec_${t} TYPE_${T})
  rwkv7_shader(matvec.comp matvec_${t}_sg TYPE_${T} USE_SUBGROUP)
  rwkv7_shader(matmul.comp matmul_${t} TYPE_${T})
  # Cooperative-matrix prefill (vulkan/coopmat.c picks it): the VK_KHR_cooperative_matrix flavour
  # where glslc supports GL_KHR_cooperative_matrix, else the same code on GL_NV_cooperative_matrix
  # (for devices that list VK_NV_cooperative_matrix: NVIDIA's).
  if(RWKV7_GLSLC_COOPMAT)
    rwkv7_shader(matmul_cm.comp matmul_cm_${t} TYPE_${T} ENV=vulkan1.3)
  else()
    rwkv7_shader(matmul_cm.comp matmul_cm_nv_${t} TYPE_${T} CM_NV ENV=vulkan1.3)
  endif()
  # ... and emulated, for a test mode that runs the rest of that shader on lavapipe
  # (RWKV7_VK_COOPMAT=emulate, test_ops_vk_coopmat_emu): one type per decoder family.
  if(t MATCHES "^(f32|f16|q8_0|q4_k|q6_k)$")
    rwkv7_shader(matmul_cm.comp matmul_cm_emu_${t} TYPE_${T} CM_EMU ENV=vulkan1.3)
  endif()
  rwkv7_shader(embed.comp embed_${t} TYPE_${T})
  rwkv7_shader(lora_up.comp lora_up_${t} TYPE_${T})
endforeach()
rwkv7_shader(matvec_reduce.comp matvec_reduce)
rwkv7_shader(elementwise.comp token_shift OP_TOKEN_SHIFT)
rwkv7_shader(elementwise.comp state_store OP_STATE_STORE)
rwkv7_shader(elementwise.comp unary OP_UNARY)
rwkv7_shader(elementwise.comp binary OP_BINARY)
rwkv7_shader(elementwise.comp mix OP_MIX)
rwkv7_shader(norm.comp norm)
rwkv7_shader(key_prep.comp key_prep)
rwkv7_shader(wkv_out.comp wkv_out)
rwkv7_shader(norm_shift.comp norm_shift)
rwkv7_shader(wkv_block.comp wkv_block_n64 WKV_N=64)
rwkv7_shader(wkv_block.comp wkv_block_n128 WKV_N=128)
rwkv7_shader(wkv7.comp wkv7_n64 WKV_N=64)
rwkv7_shader(wkv7.comp wkv7_n128 WKV_N=128)
rwkv7_shader(wkv7_chunk_prep.comp wkv7_chunk_prep_n64 WKV_N=64)
rwkv7_shader(wkv7_chunk_prep.comp wkv7_chunk_prep_n128 WKV_N=128)
rwkv7_shader(wkv7_chunk_state.comp wkv7_chunk_state_n64 WKV_N=64)
rwkv7_shader(wkv7_chunk_state.comp wkv7_chunk_state_n128 WKV_N=128)
