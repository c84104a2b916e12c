// Global average pool: every runnable variant equals the scalar reference byte for byte, and the
// reference equals a 128-bit model.
#include "fq/kernels/pool.h"

#include <algorithm>
#include <cstring>

#include "fq/kernels/fixed_point.h"
#include "kernel_test_util.h"

namespace fq::k {
namespace {

size_t esize(OutType t) { return t == OutType::i32 ? 4 : t == OutType::i16 ? 2 : 1; }

struct Gap {
  int n, hw, c;
  int32_t mult;
  int shift;
  int32_t lo, hi;
  OutType out;
  std::vector<uint8_t> x;
};

std::vector<uint8_t> run(const PoolKernel& k, const Gap& g) {
  const size_t bytes = size_t(g.n) * g.c * esize(g.out);
  std::vector<uint8_t> y(bytes + 128, 0xee);
  k.gap_u8(g.x.data(), g.n, g.hw, g.c, g.mult, g.shift, g.lo, g.hi, g.out, y.data() + 64);
  for (size_t i = 0; i < 64; ++i) {
    REQUIRE(y[i] == 0xee);
    REQUIRE(y[64 + bytes + i] == 0xee);
  }
  return std::vector<uint8_t>(y.begin() + 64, y.end() - 64);
}

int64_t model(const Gap& g, int b, int ch) {
  __int128 sum = 0;
  for (int p = 0; p < g.hw; ++p) sum += g.x[(size_t(b) * g.hw + p) * g.c + ch];
  const __int128 v = sum * g.mult, den = __int128(1) << g.shift, num = v + den / 2;
  __int128 q = num / den;
  if (num % den != 0 && num < 0) --q;
  return int64_t(std::clamp<__int128>(q, g.lo, g.hi));
}

int64_t load(const std::vector<uint8_t>& y, OutType t, size_t i) {
  switch (t) {
    case OutType::u8:
      return y[i];
    case OutType::i8:
      return int8_t(y[i]);
    case OutType::i16: {
      int16_t v;
      std::memcpy(&v, &y[2 * i], 2);
      return v;
    }
    case OutType::i32: {
      int32_t v;
      std::memcpy(&v, &y[4 * i], 4);
      return v;
    }
  }
  return 0;
}

Gap make(test::Rng& r, int n, int hw, int c, OutType t, bool extreme) {
  Gap g{n, hw, c, 0, 0, 0, 0, t, test::random_vec<uint8_t>(r, size_t(n) * hw * c, 0, 255)};
  if (extreme) std::fill(g.x.begin(), g.x.end(), 255);
  // mult ~ 2^shift / hw (a mean) times a gain, kept under the |sum * mult| < 2^62 budget.
  g.shift = int(test::uniform(r, 1, 40));
  const int64_t mean_mult = std::max<int64_t>(1, (int64_t{1} << g.shift) / hw);
  int64_t m = mean_mult * test::uniform(r, 1, 300) / 100;
  if (extreme) m = test::uniform(r, 0, 1) ? INT32_MAX : INT32_MIN;
  g.mult =
      int32_t(std::clamp<int64_t>(m * (test::uniform(r, 0, 9) ? 1 : -1), INT32_MIN, INT32_MAX));
  if (extreme) g.shift = test::uniform(r, 0, 1) ? 1 : 62;
  const int64_t tlo = t == OutType::u8    ? 0
                      : t == OutType::i8  ? -128
                      : t == OutType::i16 ? -32768
                                          : INT32_MIN;
  const int64_t thi = t == OutType::u8    ? 255
                      : t == OutType::i8  ? 127
                      : t == OutType::i16 ? 32767
                                          : INT32_MAX;
  g.lo = int32_t(test::uniform(r, 0, 1) ? 0 : tlo);
  g.hi = int32_t(thi);
  return g;
}

TEST_CASE("gap: every variant equals the scalar reference; the reference equals the model",
          "[pool]") {
  size_t count = 0;
  const PoolKernel* const* all = pool_kernels(&count);
  REQUIRE(all[0]->isa == Isa::scalar);
  std::vector<const PoolKernel*> variants;
  for (size_t i = 1; i < count; ++i)
    if (test::runnable(all[i]->isa, all[i]->name)) variants.push_back(all[i]);
  test::Rng r(5);
  int cases = 0;
  for (int n : {1, 2})
    for (int hw : {1, 2, 7, 49, 196, 3136})
      for (int c : {1, 5, 8, 15, 16, 17, 33, 64, 100, 1000})
        for (OutType t : {OutType::u8, OutType::i8, OutType::i16, OutType::i32}) {
          const Gap g = make(r, n, hw, c, t, cases % 5 == 4);
          INFO("n " << n << " hw " << hw << " c " << c << " mult " << g.mult << " shift " << g.shift
                    << " out " << int(t));
          const std::vector<uint8_t> want = run(*all[0], g);
          for (int b = 0; b < n; ++b)
            for (int ch = 0; ch < c; ++ch)
              REQUIRE(load(want, t, size_t(b) * c + ch) == model(g, b, ch));
          for (const PoolKernel* v : variants) {
            INFO(v->name);
            REQUIRE(run(*v, g) == want);
          }
          ++cases;
        }
  REQUIRE(cases == 2 * 6 * 10 * 4);
}

TEST_CASE("gap: dispatch honours FQ_ISA", "[pool]") { test::check_dispatch(pool_kernels, pool_kernel, "gap"); }

}  // namespace
}  // namespace fq::k
