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

namespace detail {
constexpr uint16_t ceil_sqrt16(uint32_t v) {
  uint32_t r = 0;
  while (r * r < v) ++r;
  return uint16_t(r);
}
// kSqrtTab[n - 256] = ceil(sqrt((n + 1) * 2^8)) for n in [256, 1024): an upper bound of sqrt(x) in
// units of 2^(s/2 - 8) for every x whose top bits x >> (s - 8) are n (s = the even bit position).
struct SqrtTab {
  uint16_t t[768];
};
constexpr SqrtTab make_sqrt_tab() {
  SqrtTab T{};
  for (uint32_t n = 256; n < 1024; ++n) T.t[n - 256] = ceil_sqrt16((n + 1) << 8);
  return T;
}
inline constexpr SqrtTab kSqrtTab = make_sqrt_tab();
}  // namespace detail

// floor(sqrt(x)) for x >= 0, exact; no floating point. x < 2^16: digit by digit (branch-free).
// Else: an upper bound y >= sqrt(x) from the top 10 bits (relative error < 2^-7), two Newton
// steps y = (y + x / y) / 2 (which stay >= floor(sqrt(x)) and leave it within 1 of it: relative
// error ~2^-34 after them), then y -= 1 while y^2 > x. Tested against the digit-by-digit
// definition near every square's neighbours and at random (fixed_point_test).
inline uint32_t isqrt64(uint64_t x) {
  if (x < 65536) {
    uint64_t r = 0;
    for (uint64_t bit = x ? uint64_t{1} << ((63 - clz64(x)) & ~1) : 0; bit; bit >>= 2) {
      const uint64_t t = r + bit;
      const uint64_t take = uint64_t{0} - uint64_t{x >= t};  // all ones when this digit is 1
      x -= t & take;
      r = (r >> 1) + (bit & take);
    }
    return static_cast<uint32_t>(r);
  }
  const int s = (63 - clz64(x)) & ~1;  // 16 <= s <= 62, x >> s in [1, 4)
  uint64_t y = uint64_t{detail::kSqrtTab.t[(x >> (s - 8)) - 256]} << (s / 2 - 8);
  y = (y + x / y) >> 1;
  y = (y + x / y) >> 1;
  while (static_cast<unsigned __int128>(y) * y > x) --y;
  return static_cast<uint32_t>(y);
}

}  // namespace fq::k
