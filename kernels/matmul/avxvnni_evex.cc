// The AVX2 variant's AVX-VNNI path (avx2.cc) built with the EVEX encoding of the same instruction
// (vpdpbusd ymm from AVX512-VNNI + AVX512VL, identical semantics) and always taken, for the tests
// only: fq_test_matmul links this file (never fq_kernels), so the AVX-VNNI code is checked bit for
// bit on AVX-512 machines without AVX-VNNI (e.g. Zen 4). Standard headers come first so that only
// this file's own functions get the extended target.
#if defined(__x86_64__)  // (an empty translation unit elsewhere)
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "fq/kernels/cpu.h"
#include "fq/kernels/matmul.h"

// GCC: a target pragma; clang ignores it and takes the same target as an attribute of every
// function declared up to the pop at the end (the headers above are already in).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#define FQ_AVX2_DPBUSD(acc, a, b) _mm256_dpbusd_epi32(acc, a, b)
#define FQ_AVX2_VNNI_TARGET
#define FQ_AVX2_SYMBOL kMatmulAvx2VnniEvex
#define FQ_AVX2_NAME "avx2-vnni(evex)"
#define FQ_AVX2_USE_VNNI() true
#include "avx2.cc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif  // __x86_64__
