// Fixed-point primitives: the executable specification of FQ's integer arithmetic.
//
// One rounding rule everywhere: an arithmetic right shift that rounds half toward +infinity,
//   rshift_round(x, s) = (x + 2^(s-1)) >> s        (s >= 1; s == 0 is the identity)
// and saturation to the destination width. A dyadic scale is a pair (m, s) meaning m / 2^s.
// SIMD code must reproduce these functions bit for bit; tests compare them with a 128-bit model.
#pragma once
#include <cstdint>
#include <limits>

namespace fq::k {

// Preconditions: 0 <= s <= 62 and |x| < 2^62 (so the rounding add cannot overflow).
inline int64_t rshift_round(int64_t x, int s) {
  return s == 0 ? x : (x + (int64_t{1} << (s - 1))) >> s;
}

template <class T>
inline T saturate(int64_t v) {
  constexpr int64_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  return static_cast<T>(v < lo ? lo : v > hi ? hi : v);
}

inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// requant(v, m, s) = rshift_round(v * m, s): the dyadic multiply used by every integer op.
// Preconditions: |v * m| < 2^62, 1 <= s <= 62.
inline int64_t dyadic_mul(int64_t v, int32_t m, int s) { return rshift_round(v * m, s); }

// Number of leading zero bits of a non-zero 64-bit value.
inline int clz64(uint64_t x) { return __builtin_clzll(x); }
inline int clz32(uint32_t x) { return __builtin_clz(x); }

// floor(sqrt(x)) for x >= 0, exact (bitwise digit-by-digit; no floating point).
inline uint32_t isqrt64(uint64_t x) {
  uint64_t r = 0, bit = uint64_t{1} << 62;
  while (bit > x) bit >>= 2;
  while (bit) {
    if (x >= r + bit) { x -= r + bit; r = (r >> 1) + bit; } else { r >>= 1; }
    bit >>= 2;
  }
  return static_cast<uint32_t>(r);
}

}  // namespace fq::k
