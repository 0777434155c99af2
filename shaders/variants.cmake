# variants.cmake: every (shader, variant name, defines) compiled to SPIR-V; the whole "generator".
# Variant names are what vulkan/*.c asks rwkv7_vk_dispatch() for: <op>_<type>[_sg].
# _sg variants reduce with subgroupAdd (GL_KHR_shader_subgroup_arithmetic); the plain ones use a
# shared-memory tree and run on devices without subgroup arithmetic.
set(RWKV7_VK_WEIGHT_TYPES
  f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k
  iq4_nl iq4_xs iq3_xxs iq3_s iq2_xxs iq2_xs iq2_s iq1_s iq1_m)
foreach(t ${RWKV7_VK_WEIGHT_TYPES})
  string(TOUPPER ${t} T)
  rwkv7_shader(matvec.comp matvec_${t} TYPE_${T})
  rwkv7_shader(matvec.comp matvec_${t}_sg TYPE_${T} USE_SUBGROUP)
  rwkv7_shader(matmul.comp matmul_${t} TYPE_${T})
  rwkv7_shader(embed.comp embed_${t} TYPE_${T})
endforeach()
rwkv7_shader(elementwise.comp token_shift OP_TOKEN_SHIFT)
rwkv7_shader(elementwise.comp state_store OP_STATE_STORE)
rwkv7_shader(elementwise.comp unary OP_UNARY)
rwkv7_shader(elementwise.comp binary OP_BINARY)
rwkv7_shader(elementwise.comp mix OP_MIX)
rwkv7_shader(norm.comp norm)
rwkv7_shader(key_prep.comp key_prep)
rwkv7_shader(wkv_out.comp wkv_out)
rwkv7_shader(wkv7.comp wkv7_n64 WKV_N=64)
rwkv7_shader(wkv7.comp wkv7_n128 WKV_N=128)
rwkv7_shader(wkv7_chunked.comp wkv7_chunked_n64 WKV_N=64)
rwkv7_shader(wkv7_chunked.comp wkv7_chunked_n128 WKV_N=128)
