// The family's epilogues on computed v[m, n] values (matmul.h), in scalar form: used by the
// reference (ref.cc) and by variants that compute v with SIMD but finish rows in scalar code.
#pragma once
#include <cstdint>

#include "fq/kernels/fixed_point.h"
#include "fq/kernels/matmul.h"

namespace fq::k::epi {

inline void store(OutType t, void* y, int64_t i, int64_t v) {
  switch (t) {
    case OutType::u8: static_cast<uint8_t*>(y)[i] = saturate<uint8_t>(v); break;
    case OutType::i8: static_cast<int8_t*>(y)[i] = saturate<int8_t>(v); break;
    case OutType::i16: static_cast<int16_t*>(y)[i] = saturate<int16_t>(v); break;
    case OutType::i32: static_cast<int32_t*>(y)[i] = saturate<int32_t>(v); break;
  }
}

inline int64_t load(OutType t, const void* r, int64_t i) {
  switch (t) {
    case OutType::u8: return static_cast<const uint8_t*>(r)[i];
    case OutType::i8: return static_cast<const int8_t*>(r)[i];
    case OutType::i16: return static_cast<const int16_t*>(r)[i];
    case OutType::i32: return static_cast<const int32_t*>(r)[i];
  }
  return 0;
}

inline int bits(OutType t) { return t == OutType::i16 ? 16 : t == OutType::i32 ? 32 : 8; }

// Dynamic per-token requantization of row m from its n values v[0..n).
inline void dynamic_row(const MatmulArgs& x, int64_t m, const int64_t* v, int n) {
  uint64_t vmax = 0;
  for (int j = 0; j < n; ++j) {
    const uint64_t mag = v[j] < 0 ? 0 - uint64_t(v[j]) : uint64_t(v[j]);
    if (mag > vmax) vmax = mag;
  }
  const int bitlen = vmax ? 64 - clz64(vmax) : 0;
  const int room = bits(x.e.out_type) - 1;
  const int sh = bitlen > room ? bitlen - room : 0;
  for (int j = 0; j < n; ++j) store(x.e.out_type, x.y, m * x.ldy + j, rshift_round(v[j], sh));
  x.e.row_shift[m] = int8_t(sh);
}

// acc / requant / residual epilogue of columns [n0, n1) of row m; v[j] is column n0 + j.
inline void columns(const MatmulArgs& x, int64_t m, int n0, int n1, const int64_t* v) {
  const MatmulEpilogue& e = x.e;
  for (int n = n0; n < n1; ++n) {
    const int64_t i = m * x.ldy + n, val = v[n - n0];
    switch (e.op) {
      case MatmulOp::acc: store(OutType::i32, x.y, i, val); break;
      case MatmulOp::requant: store(e.out_type, x.y, i, rshift_round(val, e.shift[n])); break;
      case MatmulOp::residual:
        store(e.out_type, x.y, i, load(e.out_type, e.residual, m * e.ldr + n) + rshift_round(val, e.shift[n]));
        break;
      case MatmulOp::dynamic: break;
    }
  }
}

}  // namespace fq::k::epi
