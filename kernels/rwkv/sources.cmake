# Integer RWKV element-wise family (fq/kernels/rwkv.h). One line per ISA variant; the variant
# list itself is variants.inc (declaration and dispatch come from it).
fq_isa_sources(FQ_KERNEL_SRCS scalar ${CMAKE_CURRENT_LIST_DIR}/ref.cc ${CMAKE_CURRENT_LIST_DIR}/dispatch.cc)
fq_isa_sources(FQ_KERNEL_SRCS avx2 ${CMAKE_CURRENT_LIST_DIR}/avx2.cc)
fq_isa_sources(FQ_KERNEL_SRCS avx512 ${CMAKE_CURRENT_LIST_DIR}/avx512.cc)
fq_isa_sources(FQ_KERNEL_SRCS neon ${CMAKE_CURRENT_LIST_DIR}/neon.cc)
