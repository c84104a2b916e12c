// Depthwise conv family: (1) the scalar reference equals an independent int64/int128 model;
// (2) every compiled variant this machine may run (see test::runnable) produces the same bytes as
// the scalar reference over a battery of shapes, paddings, epilogues, extreme values and task
// splits.
#include "fq/kernels/dwconv.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "fq/kernels/fixed_point.h"
#include "kernel_test_util.h"

namespace fq::k {
namespace {

enum class Fill { random, x_max_w_min, x_max_w_max, sparse };

struct Problem {
  DwConvShape s;
  std::vector<uint8_t> x;
  std::vector<int8_t> w, shift;
  std::vector<int32_t> bias, mult;
  DwConvEpilogue e;
  int64_t outputs() const { return int64_t{s.n} * s.oh * s.ow * s.c; }
  std::string describe() const {
    std::ostringstream os;
    os << s.n << "x" << s.h << "x" << s.w << "x" << s.c << " k" << s.kh << "x" << s.kw << " s"
       << s.stride << " pad " << s.pad_t << "," << s.pad_l << " out " << s.oh << "x" << s.ow << " "
       << (e.out_type == OutType::u8 ? "u8" : "i8") << " [" << e.lo << "," << e.hi << "]";
    return os.str();
  }
};

struct Geo {
  int kh, kw, stride, pad_t, pad_l, pad_b, pad_r;
};

DwConvShape shape(int n, int h, int w, int c, Geo g) {
  DwConvShape s;
  s.n = n, s.h = h, s.w = w, s.c = c, s.kh = g.kh, s.kw = g.kw, s.stride = g.stride;
  s.pad_t = g.pad_t, s.pad_l = g.pad_l;
  s.oh = std::max(1, (h + g.pad_t + g.pad_b - g.kh) / g.stride + 1);
  s.ow = std::max(1, (w + g.pad_l + g.pad_r - g.kw) / g.stride + 1);
  return s;
}

// bounds: 0 full type range, 1 ReLU, 2 a narrow window.
Problem make_problem(const DwConvShape& s, OutType t, int bounds, Fill fill, test::Rng& r,
                     bool extreme = false) {
  Problem p;
  p.s = s;
  const int taps = s.kh * s.kw;
  p.x = test::random_vec<uint8_t>(r, size_t(s.n) * s.h * s.w * s.c, 0, 255);
  p.w = test::random_vec<int8_t>(r, size_t(taps) * s.c, -128, 127);
  if (fill == Fill::x_max_w_min || fill == Fill::x_max_w_max) {
    std::fill(p.x.begin(), p.x.end(), 255);
    std::fill(p.w.begin(), p.w.end(), fill == Fill::x_max_w_min ? -128 : 127);
  } else if (fill == Fill::sparse) {
    for (auto& v : p.x) v = test::uniform(r, 0, 3) ? 0 : v;
  }
  const int64_t bias_max = extreme ? int64_t{1} << 30 : 1 << 12;
  p.bias = test::random_vec<int32_t>(r, s.c, -bias_max, bias_max);
  if (extreme)
    for (auto& b : p.bias) b = test::uniform(r, 0, 1) ? int32_t(bias_max) : -int32_t(bias_max);
  p.mult.resize(s.c), p.shift.resize(s.c);
  for (int c = 0; c < s.c; ++c) {
    if (extreme) {
      p.mult[c] = test::uniform(r, 0, 1) ? INT32_MAX - int32_t(test::uniform(r, 0, 3))
                                         : -INT32_MAX + int32_t(test::uniform(r, 0, 3));
      p.shift[c] = int8_t(test::uniform(r, 0, 2) == 0 ? 1 : test::uniform(r, 0, 1) ? 62 : 40);
    } else {
      const int64_t m = test::uniform(r, 1, INT32_MAX) >> test::uniform(r, 0, 24);
      p.mult[c] = int32_t(std::max<int64_t>(m, 1)) * (test::uniform(r, 0, 7) ? 1 : -1);
      // |acc| ~ sqrt(taps) * 255/2 * 74: aim the shift a few bits below |acc * mult|.
      const int vbits = 64 - clz64(uint64_t(std::abs(int64_t{p.mult[c]})) *
                                       uint64_t(isqrt64(uint64_t(taps)) + 1) * 9400 |
                                   1);
      p.shift[c] = int8_t(std::clamp(vbits - 8 + int(test::uniform(r, -3, 3)), 1, 62));
    }
  }
  p.e.bias = p.bias.data(), p.e.mult = p.mult.data(), p.e.shift = p.shift.data();
  p.e.out_type = t;
  int32_t lo = t == OutType::u8 ? 0 : -128, hi = t == OutType::u8 ? 255 : 127;
  if (bounds == 1) lo = 0;
  if (bounds == 2) lo = lo / 2 + 3, hi = hi / 2 - 1;
  p.e.lo = lo, p.e.hi = hi;
  return p;
}

using test::Split;

// Runs `kern` on p, splitting the tasks as asked (test::run_split).
std::vector<uint8_t> run(const DwConvKernel& kern, const Problem& p, Split split, test::Rng& r) {
  std::vector<uint8_t> packed(kern.packed_size(p.s) + 1);
  kern.pack(p.s, p.w.data(), packed.data() + 1);  // unaligned on purpose
  return test::run_split(kern.num_tasks(p.s), size_t(p.outputs()), kern.scratch_size(p.s), split, r,
                         [&](void* y, int64_t t0, int64_t t1, uint8_t* scratch) {
                           kern.run(p.s, p.x.data(), packed.data() + 1, p.e, y, t0, t1, scratch);
                         });
}

std::vector<const DwConvKernel*> tested_variants() { return test::tested_variants(dwconv_kernels); }
const DwConvKernel& scalar() { return test::scalar_variant(dwconv_kernels); }

// Independent model: direct loops, int64 accumulation, 128-bit epilogue with a floor division.
std::vector<uint8_t> model(const Problem& p) {
  const DwConvShape& s = p.s;
  std::vector<uint8_t> y;
  for (int n = 0; n < s.n; ++n)
    for (int oy = 0; oy < s.oh; ++oy)
      for (int ox = 0; ox < s.ow; ++ox)
        for (int c = 0; c < s.c; ++c) {
          int64_t acc = p.bias[size_t(c)];
          for (int ky = 0; ky < s.kh; ++ky)
            for (int kx = 0; kx < s.kw; ++kx) {
              const int64_t iy = int64_t{oy} * s.stride + ky - s.pad_t;
              const int64_t ix = int64_t{ox} * s.stride + kx - s.pad_l;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              acc += int64_t{p.x[size_t(((n * s.h + iy) * s.w + ix) * s.c + c)]} *
                     int64_t{p.w[size_t((ky * s.kw + kx) * s.c + c)]};
            }
          const __int128 v = __int128(acc) * p.mult[size_t(c)];
          const __int128 den = __int128(1) << p.shift[size_t(c)], num = v + den / 2;
          __int128 q = num / den;
          if (num % den != 0 && num < 0) --q;  // floor
          const __int128 cl = std::clamp<__int128>(q, p.e.lo, p.e.hi);
          y.push_back(uint8_t(int(cl) & 0xff));  // u8 or the i8 two's complement byte
        }
  return y;
}

// Outputs strictly inside (lo, hi) so far: the battery must not be mostly saturated values.
int64_t g_inside = 0, g_total = 0;

int check_variants(const Problem& p, const std::vector<const DwConvKernel*>& variants,
                   test::Rng& r) {
  const std::vector<uint8_t> want = run(scalar(), p, Split::all, r);
  for (uint8_t b : want) {
    const int v = p.e.out_type == OutType::u8 ? int(b) : int(int8_t(b));
    g_inside += v > p.e.lo && v < p.e.hi;
    ++g_total;
  }
  return test::check_splits(
      variants, want, [&](const DwConvKernel& k, Split split) { return run(k, p, split, r); },
      [&](const DwConvKernel& k) { return p.describe() + ", " + std::to_string(k.num_tasks(p.s)) + " tasks"; },
      [&p](size_t i) { return " (channel " + std::to_string(i % size_t(p.s.c)) + ")"; });
}

// Kernel / stride / padding configurations: square 3, 5, 7 (padding none, "same", top-left only,
// bottom-right only, asymmetric), plus 1x1, 2x2 and non-square ones.
const Geo kGeos[] = {
    {3, 3, 1, 1, 1, 1, 1}, {3, 3, 2, 1, 1, 1, 1}, {3, 3, 1, 0, 0, 0, 0}, {3, 3, 2, 0, 0, 1, 1},
    {5, 5, 1, 2, 2, 2, 2}, {5, 5, 2, 2, 2, 2, 2}, {5, 5, 1, 1, 2, 3, 2}, {5, 5, 2, 0, 0, 0, 0},
    {7, 7, 1, 3, 3, 3, 3}, {7, 7, 2, 3, 3, 3, 3}, {7, 7, 1, 0, 0, 0, 0}, {7, 7, 2, 2, 1, 0, 3},
    {1, 1, 1, 0, 0, 0, 0}, {1, 1, 2, 0, 0, 0, 0}, {2, 2, 2, 0, 0, 0, 0}, {1, 7, 1, 0, 3, 0, 3},
    {7, 1, 2, 3, 0, 3, 0}, {3, 5, 1, 1, 2, 1, 2},
};
constexpr int kNumGeos = sizeof(kGeos) / sizeof(kGeos[0]);

TEST_CASE("dwconv: every variant equals the scalar reference over the shape battery",
          "[dwconv]") {
  const auto variants = tested_variants();
  if (variants.empty()) WARN("no SIMD dwconv variant runnable here: only the reference is checked");
  const int cs[] = {1, 3, 16, 17, 64, 100}, hws[] = {1, 2, 3, 5, 8, 13};
  test::Rng r(42);
  g_inside = g_total = 0;
  int cases = 0, compared = 0, idx = 0;
  for (const Geo& g : kGeos)
    for (int c : cs)
      for (int rep = 0; rep < 2; ++rep) {
        ++idx;
        const int h = hws[(idx + rep) % 6], w = hws[(idx * 5 + c) % 6], n = 1 + idx % 2;
        const Problem p = make_problem(shape(n, h, w, c, g), idx % 2 ? OutType::i8 : OutType::u8,
                                       (idx / 2) % 3, Fill::random, r);
        compared += check_variants(p, variants, r);
        ++cases;
      }
  REQUIRE(cases == kNumGeos * 6 * 2);
  REQUIRE(compared == cases * 3 * int(variants.size()));
  INFO(g_inside << " of " << g_total << " outputs inside the clamp bounds");
  CHECK(g_inside * 3 > g_total);  // u8 outputs clamp every negative value to 0
}

TEST_CASE("dwconv: extreme values and scales", "[dwconv]") {
  const auto variants = tested_variants();
  test::Rng r(7);
  int cases = 0;
  for (const Geo& g : kGeos)
    for (Fill f : {Fill::x_max_w_min, Fill::x_max_w_max, Fill::sparse, Fill::random})
      for (OutType t : {OutType::u8, OutType::i8}) {
        const DwConvShape s = shape(1, 9, 7, cases % 2 ? 100 : 17 + 16 * (cases % 3), g);
        check_variants(make_problem(s, t, cases % 3, f, r, /*extreme=*/true), variants, r);
        check_variants(make_problem(s, t, cases % 3, f, r), variants, r);
        ++cases;
      }
  REQUIRE(cases == kNumGeos * 4 * 2);
}

TEST_CASE("dwconv: model-sized layers (many channel groups, chunks, odd sizes)", "[dwconv]") {
  const auto variants = tested_variants();
  test::Rng r(9);
  struct S {
    int n, h, w, c;
    Geo g;
  };
  const S shapes[] = {
      {1, 56, 56, 64, {3, 3, 1, 1, 1, 1, 1}},     {1, 37, 29, 32, {3, 3, 2, 1, 1, 1, 1}},
      {1, 14, 14, 300, {5, 5, 1, 2, 2, 2, 2}},    {2, 7, 7, 576, {3, 3, 1, 1, 1, 1, 1}},
      {1, 11, 9, 1000, {7, 7, 2, 3, 3, 3, 3}},    {1, 6, 6, 257, {3, 3, 2, 0, 0, 1, 1}},
  };
  for (const S& sh : shapes)
    for (OutType t : {OutType::u8, OutType::i8})
      check_variants(make_problem(shape(sh.n, sh.h, sh.w, sh.c, sh.g), t, int(t) % 3, Fill::random,
                                  r),
                     variants, r);
}

TEST_CASE("dwconv: the scalar reference equals an independent int64/int128 model", "[dwconv]") {
  test::Rng r(11);
  int cases = 0;
  for (const Geo& g : kGeos)
    for (int c : {1, 3, 17})
      for (OutType t : {OutType::u8, OutType::i8}) {
        const DwConvShape s = shape(1 + cases % 2, 6 + cases % 3, 5, c, g);
        const Fill f = cases % 5 == 4 ? Fill::x_max_w_min : cases % 5 == 3 ? Fill::x_max_w_max
                                                                           : Fill::random;
        const Problem p = make_problem(s, t, cases % 3, f, r, cases % 4 == 1);
        INFO(p.describe());
        REQUIRE(run(scalar(), p, Split::all, r) == model(p));
        ++cases;
      }
  REQUIRE(cases == kNumGeos * 3 * 2);
}

TEST_CASE("dwconv: dispatch honours FQ_ISA and lists scalar first", "[dwconv]") {
  test::check_dispatch(dwconv_kernels, dwconv_kernel, "dwconv");
}

TEST_CASE("dwconv: work units", "[dwconv]") {
  // the variants this CPU runs (another ISA's planner is built for that ISA: SIGILL here)
  std::vector<const DwConvKernel*> vars = test::tested_variants(dwconv_kernels);
  vars.insert(vars.begin(), &test::scalar_variant(dwconv_kernels));
  for (const DwConvKernel* k : vars) {
    INFO(k->name);
    CHECK(k->num_tasks(shape(1, 56, 56, 64, {3, 3, 1, 1, 1, 1, 1})) >= 56);
    CHECK(k->num_tasks(shape(1, 7, 7, 1024, {3, 3, 1, 1, 1, 1, 1})) >= 7);
    CHECK(k->num_tasks(shape(0, 5, 5, 8, {3, 3, 1, 1, 1, 1, 1})) == 0);  // empty batch
  }
}

}  // namespace
}  // namespace fq::k
