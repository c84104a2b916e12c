// fixed_point.h against independent 128-bit models, near every boundary and on random values.
#include "fq/kernels/fixed_point.h"

#include <vector>

#include "kernel_test_util.h"

namespace fq::k {
namespace {

using I128 = __int128;

// Model of rshift_round: floor((x + 2^(s-1)) / 2^s) in 128 bits (no shortcuts shared with the
// implementation: the floor division is written out).
int64_t model_rshift_round(int64_t x, int s) {
  if (s == 0) return x;
  const I128 num = I128{x} + (I128{1} << (s - 1)), den = I128{1} << s;
  I128 q = num / den;  // truncates toward zero
  if (num % den != 0 && num < 0) --q;
  return static_cast<int64_t>(q);
}

std::vector<int64_t> interesting_values(test::Rng& r) {
  const int64_t lim = (int64_t{1} << 62) - 1;
  std::vector<int64_t> v = {0, 1, -1, 2, -2, 3, -3, lim, -lim, lim - 1, -lim + 1};
  for (int b = 0; b < 62; ++b)
    for (int64_t d = -2; d <= 2; ++d) {
      const int64_t p = int64_t{1} << b;  // powers of two and the half-way points around them
      for (int64_t base : {p, -p, p + p / 2, -(p + p / 2)}) {
        const int64_t x = base + d;
        if (x < (int64_t{1} << 62) && x > -(int64_t{1} << 62)) v.push_back(x);
      }
    }
  for (int i = 0; i < 20000; ++i)
    v.push_back(test::uniform(r, -lim, lim) >> test::uniform(r, 0, 61));
  return v;
}

TEST_CASE("rshift_round equals the 128-bit floor model, round half toward +inf", "[fixed_point]") {
  test::Rng r(1);
  const auto values = interesting_values(r);
  for (int s = 0; s <= 62; ++s) {
    size_t bad = 0;
    for (int64_t x : values) bad += rshift_round(x, s) != model_rshift_round(x, s);
    INFO("shift " << s);
    REQUIRE(bad == 0);
  }
  // Exact halves go up (toward +infinity), for both signs.
  CHECK(rshift_round(1, 1) == 1);
  CHECK(rshift_round(-1, 1) == 0);
  CHECK(rshift_round(3, 1) == 2);
  CHECK(rshift_round(-3, 1) == -1);
  CHECK(rshift_round(-5, 2) == -1);  // -1.25 -> -1
  CHECK(rshift_round(-6, 2) == -1);  // -1.5  -> -1
  CHECK(rshift_round(-7, 2) == -2);  // -1.75 -> -2
}

TEST_CASE("dyadic_mul equals the 128-bit model", "[fixed_point]") {
  test::Rng r(2);
  size_t bad = 0, n = 0;
  for (int i = 0; i < 200000; ++i) {
    const int32_t m = int32_t(test::uniform(r, INT32_MIN, INT32_MAX) >> test::uniform(r, 0, 31));
    const int s = int(test::uniform(r, 1, 62));
    // |v * m| < 2^62: pick v within the budget left by m.
    const int mbits = 64 - clz64(uint64_t(m < 0 ? -int64_t{m} : int64_t{m}) | 1);
    const int64_t vmax = (int64_t{1} << (62 - mbits)) - 1;
    const int64_t v = test::uniform(r, -vmax, vmax) >> test::uniform(r, 0, 62 - mbits);
    const I128 prod = I128{v} * m;
    REQUIRE((prod < (I128{1} << 62) && prod > -(I128{1} << 62)));
    bad += dyadic_mul(v, m, s) != model_rshift_round(int64_t(prod), s);
    ++n;
  }
  REQUIRE(n == 200000);
  REQUIRE(bad == 0);
  CHECK(dyadic_mul(3, 1, 1) == 2);            // 1.5 -> 2
  CHECK(dyadic_mul(-3, 1, 1) == -1);          // -1.5 -> -1
  CHECK(dyadic_mul(100, 1 << 30, 31) == 50);  // 100 * 0.5
}

template <class T>
void check_saturate() {
  const int64_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (int64_t v : {lo - 1, lo, lo + 1, int64_t{-1}, int64_t{0}, int64_t{1}, hi - 1, hi, hi + 1,
                    INT64_MIN, INT64_MAX}) {
    const int64_t want = v < lo ? lo : v > hi ? hi : v;
    REQUIRE(int64_t{saturate<T>(v)} == want);
  }
}

TEST_CASE("saturate clamps to every destination type", "[fixed_point]") {
  check_saturate<uint8_t>();
  check_saturate<int8_t>();
  check_saturate<uint16_t>();
  check_saturate<int16_t>();
  check_saturate<int32_t>();
  for (int64_t v = -70000; v <= 70000; ++v)
    REQUIRE(clamp64(v, -300, 255) == (v < -300 ? -300 : v > 255 ? 255 : v));
}

bool is_isqrt(uint64_t x, uint32_t r) {
  const unsigned __int128 r2 = (unsigned __int128)r * r,
                          r1 = (unsigned __int128)(r + uint64_t{1}) * (r + uint64_t{1});
  return r2 <= x && x < r1;
}

TEST_CASE("isqrt64 is floor(sqrt) near every square and at random", "[fixed_point]") {
  for (uint64_t x = 0; x < 100000; ++x) REQUIRE(is_isqrt(x, isqrt64(x)));
  test::Rng r(3);
  size_t bad = 0;
  // k^2 - 1, k^2, k^2 + 1 for k spread over the whole range, including k near 2^32.
  std::vector<uint64_t> ks = {0xffffffffull, 0xfffffffeull, 0x80000000ull, 0x7fffffffull,
                              1ull << 31};
  for (int i = 0; i < 100000; ++i)
    ks.push_back(uint64_t(test::uniform(r, 0, 0xffffffffll)) >> test::uniform(r, 0, 31));
  for (uint64_t k : ks) {
    const uint64_t sq = k * k;
    for (uint64_t x : {sq - 1, sq, sq + 1}) bad += !is_isqrt(x, isqrt64(x));  // k = 0: 2^64 - 1
  }
  for (uint64_t x : {UINT64_MAX, UINT64_MAX - 1, uint64_t{1} << 63, (uint64_t{1} << 62) - 1})
    bad += !is_isqrt(x, isqrt64(x));
  for (int i = 0; i < 100000; ++i) {
    const uint64_t x = r() >> test::uniform(r, 0, 63);
    bad += !is_isqrt(x, isqrt64(x));
  }
  REQUIRE(bad == 0);
}

}  // namespace
}  // namespace fq::k
