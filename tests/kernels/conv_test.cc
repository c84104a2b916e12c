// Conv family: (1) the scalar reference equals an independent naive direct convolution;
// (2) every compiled variant this machine may run (see test::runnable) produces the same bytes as
// the scalar reference over a battery of shapes, epilogues and task splits.
#include "fq/kernels/conv.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>

#include "fq/kernels/fixed_point.h"
#include "kernel_test_util.h"

namespace fq::k {
namespace {

size_t out_size(OutType t) {
  switch (t) {
    case OutType::u8:
    case OutType::i8:
      return 1;
    case OutType::i16:
      return 2;
    case OutType::i32:
      return 4;
  }
  return 0;
}
const char* out_name(OutType t) {
  static const char* names[] = {"u8", "i8", "i16", "i32"};
  return names[int(t)];
}

enum class Fill { random, x_max_w_min, x_max_w_max, sparse };

// One test problem: shape, weights, epilogue parameters and input.
struct Problem {
  ConvShape s;
  std::vector<uint8_t> x;
  std::vector<int8_t> w, wc, shift;
  std::vector<int32_t> bias, mult, multc;
  ConvEpilogue e;
  int64_t outputs() const { return int64_t{s.n} * s.oh * s.ow * s.o; }
  std::string describe() const {
    std::ostringstream os;
    os << s.n << "x" << s.h << "x" << s.w << "x" << s.c << "->" << s.o << " k" << s.kh << "x"
       << s.kw << " s" << s.stride << " pad " << s.pad_t << "," << s.pad_l << " out " << s.oh << "x"
       << s.ow << (s.coarse ? " CFWS" : "") << " " << out_name(e.out_type) << " [" << e.lo << ","
       << e.hi << "]";
    return os.str();
  }
};

// Output size for symmetric padding `pad`; taps past the bottom/right edge read 0, so we keep at
// least one output row/column even when the kernel is larger than the padded image.
int out_dim(int in, int k, int stride, int pad_begin, int pad_end) {
  const int o = (in + pad_begin + pad_end - k) / stride + 1;
  return o < 1 ? 1 : o;
}

// Bounds for out_type: ReLU (lower bound 0) or the full type range, or a narrow window.
void set_bounds(Problem& p, OutType t, int mode) {
  int64_t lo = 0, hi = 0;
  switch (t) {
    case OutType::u8:
      lo = 0, hi = 255;
      break;
    case OutType::i8:
      lo = -128, hi = 127;
      break;
    case OutType::i16:
      lo = -32768, hi = 32767;
      break;
    case OutType::i32:
      lo = INT32_MIN, hi = INT32_MAX;
      break;
  }
  if (mode == 1) lo = 0;                            // ReLU
  if (mode == 2) lo = lo / 2 + 3, hi = hi / 2 - 1;  // narrow window inside the type
  p.e.lo = int32_t(lo), p.e.hi = int32_t(hi), p.e.out_type = t;
}

// Random data. mult and shift are drawn so that |acc*mult + acc_c*mult_c| < 2^62 always holds
// (the epilogue's precondition) and the outputs spread over the type instead of all saturating.
Problem make_problem(const ConvShape& s, OutType t, int bounds, Fill fill, test::Rng& r,
                     bool extreme_scale = false) {
  Problem p;
  p.s = s;
  const int64_t k = int64_t{s.kh} * s.kw * s.c;
  const size_t nx = size_t(s.n) * s.h * s.w * s.c, nw = size_t(s.o) * k, nwc = size_t(s.o) * s.c;
  p.x = test::random_vec<uint8_t>(r, nx, 0, 255);
  p.w = test::random_vec<int8_t>(r, nw, -128, 127);
  p.wc = test::random_vec<int8_t>(r, nwc, -128, 127);
  if (fill == Fill::x_max_w_min || fill == Fill::x_max_w_max) {
    std::fill(p.x.begin(), p.x.end(), 255);
    const int8_t v = fill == Fill::x_max_w_min ? -128 : 127;
    std::fill(p.w.begin(), p.w.end(), v);
    std::fill(p.wc.begin(), p.wc.end(), v);
  } else if (fill == Fill::sparse) {
    for (auto& v : p.x) v = test::uniform(r, 0, 3) ? 0 : v;
  }
  const int64_t bias_max = 1 << 20;
  p.bias = test::random_vec<int32_t>(r, s.o, -bias_max, bias_max);
  const int64_t acc_max = k * 255 * 128 + bias_max;  // |acc|, and |acc_c| <= this too
  const int64_t mult_cap = std::min<int64_t>(INT32_MAX, ((int64_t{1} << 61) - 1) / acc_max);
  p.mult.resize(s.o), p.multc.resize(s.o), p.shift.resize(s.o);
  for (int o = 0; o < s.o; ++o) {
    const int64_t m = extreme_scale ? mult_cap - test::uniform(r, 0, 3)
                                    : test::uniform(r, 1, mult_cap) >> test::uniform(r, 0, 20);
    p.mult[o] =
        int32_t(std::max<int64_t>(m, 1)) * (extreme_scale || test::uniform(r, 0, 7) ? 1 : -1);
    p.multc[o] = int32_t(test::uniform(r, -mult_cap, mult_cap) >> test::uniform(r, 0, 20));
    // Typical |v| ~ sqrt(k) * 255/2 * 74 * |mult|: aim the shift a few bits under it.
    const int vbits = 64 - clz64(uint64_t(p.mult[o] < 0 ? -int64_t{p.mult[o]} : p.mult[o]) *
                                     uint64_t(isqrt64(uint64_t(k)) + 1) * 9400 |
                                 1);
    int sh = vbits - 8 + int(test::uniform(r, -3, 3)) +
             (t == OutType::i16   ? -8
              : t == OutType::i32 ? -20
                                  : 0);
    if (extreme_scale) sh = test::uniform(r, 0, 1) ? 1 : 62;
    p.shift[o] = int8_t(std::clamp(sh, 1, 62));
  }
  p.e.bias = p.bias.data();
  p.e.mult = p.mult.data();
  p.e.mult_coarse = s.coarse ? p.multc.data() : nullptr;
  p.e.shift = p.shift.data();
  set_bounds(p, t, bounds);
  return p;
}

using test::Split;

// Runs `kern` on p, splitting the tasks as asked (test::run_split: poisoned scratch, guarded
// output).
std::vector<uint8_t> run(const ConvKernel& kern, const Problem& p, Split split, test::Rng& r) {
  std::vector<uint8_t> packed(kern.packed_size(p.s) + 1);
  kern.pack(p.s, p.w.data(), p.s.coarse ? p.wc.data() : nullptr, packed.data() + 1);  // unaligned
  const size_t bytes = size_t(p.outputs()) * out_size(p.e.out_type);
  return test::run_split(kern.num_tasks(p.s), bytes, kern.scratch_size(p.s), split, r,
                         [&](void* y, int64_t t0, int64_t t1, uint8_t* scratch) {
                           kern.run(p.s, p.x.data(), packed.data() + 1, p.e, y, t0, t1, scratch);
                         });
}

std::vector<const ConvKernel*> tested_variants() { return test::tested_variants(conv_kernels); }
const ConvKernel& scalar() { return test::scalar_variant(conv_kernels); }

// Every variant vs scalar, in three task splits. Returns the number of variant runs compared.
int check_variants(const Problem& p, const std::vector<const ConvKernel*>& variants, test::Rng& r) {
  return test::check_splits(
      variants, run(scalar(), p, Split::all, r), [&](const ConvKernel& k, Split split) { return run(k, p, split, r); },
      [&](const ConvKernel& k) { return p.describe() + ", " + std::to_string(k.num_tasks(p.s)) + " tasks"; },
      [](size_t) { return std::string(); });
}

struct KernelCfg {
  int k, stride, pad;  // pad < 0: "same" with all the padding at the bottom/right
};

ConvShape shape(int n, int h, int w, int c, int o, KernelCfg kc, bool coarse) {
  ConvShape s;
  s.n = n, s.h = h, s.w = w, s.c = c, s.o = o, s.kh = s.kw = kc.k, s.stride = kc.stride;
  s.coarse = coarse;
  if (kc.pad >= 0) {
    s.pad_t = s.pad_l = kc.pad;
    s.oh = out_dim(h, kc.k, kc.stride, kc.pad, kc.pad);
    s.ow = out_dim(w, kc.k, kc.stride, kc.pad, kc.pad);
  } else {
    s.pad_t = s.pad_l = 0;
    s.oh = (h + kc.stride - 1) / kc.stride;
    s.ow = (w + kc.stride - 1) / kc.stride;
  }
  return s;
}

const KernelCfg kCfgs[] = {{1, 1, 0}, {1, 2, 0}, {3, 1, 1}, {3, 2, 1}, {3, 1, 0}, {3, 2, -1}};
const OutType kTypes[] = {OutType::u8, OutType::i8, OutType::i16, OutType::i32};

TEST_CASE("conv: every variant equals the scalar reference over the shape battery", "[conv]") {
  const auto variants = tested_variants();
  if (variants.empty()) WARN("no SIMD conv variant runnable here: only the reference is checked");
  const int cs[] = {1, 3, 4, 5, 16, 17, 64}, os[] = {1, 10, 15, 16, 17, 33, 64},
            hws[] = {1, 2, 5, 7, 28};
  test::Rng r(42);
  int cases = 0, compared = 0, idx = 0;
  for (int ci = 0; ci < 6; ++ci)
    for (int c : cs)
      for (int o : os) {
        ++idx;
        const int h = hws[(idx + ci) % 5], w = hws[(idx * 3 + ci + o) % 5], n = 1 + idx % 2;
        const ConvShape s = shape(n, h, w, c, o, kCfgs[ci], idx % 3 == 0);
        const Problem p = make_problem(s, kTypes[idx % 4], (idx / 4) % 3, Fill::random, r);
        compared += check_variants(p, variants, r);
        ++cases;
      }
  REQUIRE(cases == 6 * 7 * 7);
  REQUIRE(compared == cases * 3 * int(variants.size()));
}

TEST_CASE("conv: extreme values and scales", "[conv]") {
  const auto variants = tested_variants();
  test::Rng r(7);
  int cases = 0;
  for (KernelCfg kc : kCfgs)
    for (Fill f : {Fill::x_max_w_min, Fill::x_max_w_max, Fill::sparse, Fill::random})
      for (OutType t : kTypes)
        for (int bounds = 0; bounds < 3; ++bounds) {
          const ConvShape s = shape(1, 7, 5, 17 + 16 * (cases % 3), 33, kc, cases % 2 == 0);
          check_variants(make_problem(s, t, bounds, f, r, /*extreme_scale=*/true), variants, r);
          check_variants(make_problem(s, t, bounds, f, r), variants, r);
          ++cases;
        }
  REQUIRE(cases == 6 * 4 * 4 * 3);
}

TEST_CASE("conv: large and FC-shaped problems (channel tails, many panels, M = 1)", "[conv]") {
  const auto variants = tested_variants();
  test::Rng r(9);
  struct S {
    int n, h, w, c, o;
    KernelCfg kc;
    bool coarse;
  };
  const S shapes[] = {
      {1, 1, 1, 64, 10, {1, 1, 0}, false},      // the digits model's classifier
      {1, 1, 1, 1000, 1000, {1, 1, 0}, false},  // FC: split over channel panels
      {2, 1, 1, 100, 257, {1, 1, 0}, true},
      {1, 1, 1, 7, 3, {1, 1, 0}, false},
      {1, 28, 28, 1, 16, {3, 1, 1}, false},  // digits model layers
      {1, 28, 28, 16, 32, {3, 2, 1}, true},
      {1, 14, 14, 32, 64, {3, 2, 1}, false},
      {1, 7, 7, 64, 64, {3, 1, 1}, true},
      {1, 20, 20, 24, 80, {3, 1, 1}, true},   // 5 panels: 4 + 1
      {1, 13, 11, 8, 200, {1, 1, 0}, false},  // direct 1x1 path, 13 panels
      {2, 9, 9, 12, 48, {1, 2, 0}, true},
      {1, 30, 30, 3, 24, {3, 2, -1}, false},
  };
  for (const S& sh : shapes)
    for (OutType t : kTypes) {
      const Problem p = make_problem(shape(sh.n, sh.h, sh.w, sh.c, sh.o, sh.kc, sh.coarse), t,
                                     int(t) % 3, Fill::random, r);
      check_variants(p, variants, r);
    }
}

// Independent model: direct loops over the output, float64 accumulation of x*w (exact: every
// partial sum is an integer below 2^53), 128-bit epilogue with a floor division.
std::vector<int64_t> naive(const Problem& p) {
  const ConvShape& s = p.s;
  std::vector<int64_t> y;
  for (int n = 0; n < s.n; ++n)
    for (int oy = 0; oy < s.oh; ++oy)
      for (int ox = 0; ox < s.ow; ++ox)
        for (int o = 0; o < s.o; ++o) {
          double acc = p.bias[o], acc_c = 0;
          for (int ky = 0; ky < s.kh; ++ky)
            for (int kx = 0; kx < s.kw; ++kx)
              for (int i = 0; i < s.c; ++i) {
                const int iy = oy * s.stride - s.pad_t + ky, ix = ox * s.stride - s.pad_l + kx;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                const double xv = p.x[((size_t(n) * s.h + iy) * s.w + ix) * s.c + i];
                acc += xv * p.w[((size_t(o) * s.kh + ky) * s.kw + kx) * s.c + i];
                if (ky == s.kh / 2 && kx == s.kw / 2) acc_c += xv * p.wc[size_t(o) * s.c + i];
              }
          __int128 v = __int128(int64_t(acc)) * p.mult[o];
          if (s.coarse) v += __int128(int64_t(acc_c)) * p.multc[o];
          const __int128 den = __int128(1) << p.shift[o], num = v + den / 2;
          __int128 q = num / den;
          if (num % den != 0 && num < 0) --q;  // floor
          y.push_back(int64_t(std::clamp<__int128>(q, p.e.lo, p.e.hi)));
        }
  return y;
}

std::vector<int64_t> decode(const std::vector<uint8_t>& b, OutType t) {
  std::vector<int64_t> v;
  for (size_t i = 0; i < b.size(); i += out_size(t)) {
    switch (t) {
      case OutType::u8:
        v.push_back(b[i]);
        break;
      case OutType::i8:
        v.push_back(int8_t(b[i]));
        break;
      case OutType::i16: {
        int16_t x;
        std::memcpy(&x, &b[i], 2);
        v.push_back(x);
        break;
      }
      case OutType::i32: {
        int32_t x;
        std::memcpy(&x, &b[i], 4);
        v.push_back(x);
        break;
      }
    }
  }
  return v;
}

TEST_CASE("conv: the scalar reference equals a naive float64/int128 direct convolution", "[conv]") {
  test::Rng r(11);
  int cases = 0;
  for (KernelCfg kc : kCfgs)
    for (int c : {1, 3, 16})
      for (OutType t : kTypes) {
        const ConvShape s = shape(1 + cases % 2, 6, 5, c, 17, kc, cases % 2 == 1);
        const Problem p = make_problem(
            s, t, cases % 3, cases % 5 == 4 ? Fill::x_max_w_min : Fill::random, r, cases % 7 == 6);
        INFO(p.describe());
        REQUIRE(decode(run(scalar(), p, Split::all, r), t) == naive(p));
        ++cases;
      }
  REQUIRE(cases == 6 * 3 * 4);
}

TEST_CASE("conv: dispatch honours FQ_ISA and lists scalar first", "[conv]") {
  test::check_dispatch(conv_kernels, conv_kernel, "conv");
}

TEST_CASE("conv: work units split mid-sized layers and FC layers", "[conv]") {
  // the variants this CPU runs (another ISA's planner is built for that ISA: SIGILL here)
  std::vector<const ConvKernel*> vars = test::tested_variants(conv_kernels);
  vars.insert(vars.begin(), &test::scalar_variant(conv_kernels));
  for (const ConvKernel* k : vars) {
    INFO(k->name);
    CHECK(k->num_tasks(shape(1, 28, 28, 16, 32, {3, 1, 1}, false)) >= 4);
    CHECK(k->num_tasks(shape(1, 28, 28, 1, 16, {3, 1, 1}, false)) >= 4);
    CHECK(k->num_tasks(shape(1, 1, 1, 1024, 1000, {1, 1, 0}, false)) >= 4);
    CHECK(k->num_tasks(shape(1, 1, 1, 64, 10, {1, 1, 0}, false)) >= 1);
    CHECK(k->num_tasks(shape(0, 5, 5, 8, 16, {3, 1, 1}, false)) == 0);  // empty batch
  }
}

}  // namespace
}  // namespace fq::k
