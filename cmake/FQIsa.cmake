# Per-file ISA flags: only the files of one ISA variant are compiled with that ISA's instructions,
# so the rest of the build stays baseline x86-64 (or armv8-a) and runs everywhere.
set(FQ_ARCH_X86 FALSE)
set(FQ_ARCH_ARM64 FALSE)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(FQ_ARCH_X86 TRUE)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(FQ_ARCH_ARM64 TRUE)
endif()

set(FQ_FLAGS_avx2 "-mavx2 -mfma -mbmi2 -mf16c")
set(FQ_FLAGS_avx512 "-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mbmi2")
set(FQ_FLAGS_amx "${FQ_FLAGS_avx512} -mamx-tile -mamx-int8")
set(FQ_FLAGS_neon "")
set(FQ_FLAGS_neondot "-march=armv8.2-a+dotprod")

# fq_isa_sources(<out-var> <isa> files...): appends the files to <out-var> when the target
# architecture has that ISA, and sets their compile flags.
function(fq_isa_sources out isa)
  set(arch_ok FALSE)
  if(isa STREQUAL "scalar")
    set(arch_ok TRUE)
  elseif(isa MATCHES "^(avx2|avx512|amx)$" AND FQ_ARCH_X86)
    set(arch_ok TRUE)
  elseif(isa MATCHES "^(neon|neondot)$" AND FQ_ARCH_ARM64)
    set(arch_ok TRUE)
  endif()
  if(arch_ok)
    if(NOT "${FQ_FLAGS_${isa}}" STREQUAL "")
      set_source_files_properties(${ARGN} PROPERTIES COMPILE_FLAGS "${FQ_FLAGS_${isa}}")
    endif()
    set(${out} ${${out}} ${ARGN} PARENT_SCOPE)
  endif()
endfunction()
