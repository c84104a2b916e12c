// The AMX variant (amx.cc) compiled on software tiles, for the tests only: fq_test_matmul links
// this file (never fq_kernels), so the AMX code path (tile configuration, tile layout of A and B,
// C 2x2 blocking, row / column tails, the shared epilogue) is checked bit for bit on machines
// without AMX. The emulation follows the SDM pseudo-code of LDTILECFG, TILELOADD, TILESTORED,
// TILEZERO and TDPBSSD. It needs AVX-512 (the rest of the variant), hence the target pragma; the
// standard headers come first so that only this file's own functions get AVX-512 code.
#if defined(__x86_64__)  // (an empty translation unit elsewhere)
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "fq/kernels/cpu.h"
#include "fq/kernels/fixed_point.h"
#include "fq/kernels/matmul.h"

// GCC: a target pragma; clang ignores it and takes the same target as an attribute of every
// function declared up to the pop at the end (the headers above are already in).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
#endif

namespace fq::k::amx_emu {

struct Tile {
  int rows = 0, colsb = 0;
  uint8_t d[16][64] = {};
};
inline thread_local Tile tmm[8];

inline void loadconfig(const void* cfg) {
  const uint8_t* c = static_cast<const uint8_t*>(cfg);
  for (int t = 0; t < 8; ++t) {
    uint16_t colsb;
    std::memcpy(&colsb, c + 16 + 2 * t, 2);
    tmm[t].colsb = colsb, tmm[t].rows = c[48 + t];
    std::memset(tmm[t].d, 0, sizeof tmm[t].d);
  }
}
inline void zero(int t) { std::memset(tmm[t].d, 0, sizeof tmm[t].d); }
inline void loadd(int t, const void* p, int64_t stride) {
  zero(t);
  for (int r = 0; r < tmm[t].rows; ++r)
    std::memcpy(tmm[t].d[r], static_cast<const uint8_t*>(p) + r * stride, size_t(tmm[t].colsb));
}
inline void stored(int t, void* p, int64_t stride) {
  for (int r = 0; r < tmm[t].rows; ++r)
    std::memcpy(static_cast<uint8_t*>(p) + r * stride, tmm[t].d[r], size_t(tmm[t].colsb));
}
inline void dpbssd(int c, int a, int b) {
  Tile &C = tmm[c], &A = tmm[a], &B = tmm[b];
  for (int m = 0; m < C.rows; ++m)
    for (int n = 0; n < C.colsb / 4; ++n) {
      uint32_t acc;
      std::memcpy(&acc, C.d[m] + 4 * n, 4);
      for (int k = 0; k < A.colsb / 4; ++k)
        for (int i = 0; i < 4; ++i)
          acc += uint32_t(int32_t(int8_t(A.d[m][4 * k + i])) * int8_t(B.d[k][4 * n + i]));
      std::memcpy(C.d[m] + 4 * n, &acc, 4);
    }
}

}  // namespace fq::k::amx_emu

#define FQ_TILE_LOADCONFIG(cfg) ::fq::k::amx_emu::loadconfig(cfg)
#define FQ_TILE_RELEASE() (void)0
#define FQ_TILE_ZERO(t) ::fq::k::amx_emu::zero(t)
#define FQ_TILE_LOADD(t, p, stride) ::fq::k::amx_emu::loadd(t, p, stride)
#define FQ_TILE_STORED(t, p, stride) ::fq::k::amx_emu::stored(t, p, stride)
#define FQ_TILE_DPBSSD(c, a, b) ::fq::k::amx_emu::dpbssd(c, a, b)
#define FQ_MATMUL_AMX_SYMBOL kMatmulAmxEmulated
#define FQ_MATMUL_AMX_ISA Isa::avx512
#define FQ_MATMUL_AMX_NAME "amx-emulated"
#include "amx.cc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif  // __x86_64__
