# Third-party dependencies, all from Debian packages. A missing one stops configuration with the
# package to install, instead of an obscure compiler error later.
function(fq_require found pkg what)
  if(NOT ${found})
    message(FATAL_ERROR "FQ needs ${what}: install the Debian package '${pkg}' "
                        "(apt-get install ${pkg}), or run the README's setup command.")
  endif()
endfunction()

if(FQ_KERNELS_ONLY)  # kernels + kernel tests: Catch2 only
  find_package(Catch2 QUIET)
  fq_require(Catch2_FOUND catch2 "Catch2")
  return()
endif()

find_package(yaml-cpp QUIET)
fq_require(yaml-cpp_FOUND libyaml-cpp-dev "yaml-cpp")
if(NOT TARGET yaml-cpp::yaml-cpp)
  add_library(yaml-cpp::yaml-cpp INTERFACE IMPORTED)
  target_link_libraries(yaml-cpp::yaml-cpp INTERFACE yaml-cpp)
endif()

find_package(xsimd QUIET)
fq_require(xsimd_FOUND libxsimd-dev "xsimd")

find_path(STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
set(STB_FOUND FALSE)
if(STB_INCLUDE_DIR)
  set(STB_FOUND TRUE)
endif()
fq_require(STB_FOUND libstb-dev "stb_image")

if(FQ_BUILD_TESTS)
  find_package(Catch2 QUIET)
  fq_require(Catch2_FOUND catch2 "Catch2")
endif()
if(FQ_BUILD_BENCH)
  find_package(benchmark QUIET)
  fq_require(benchmark_FOUND libbenchmark-dev "Google Benchmark")
endif()
