// Integer softmax vs a float64 softmax of the same real logits, in output LSBs (units of 2^-16).
// The bounds enforced here are the ones documented in docs/accuracy.md ("Softmax").
//
// Reference: the exponent the integer kernel approximates is the real t_i = d_i * mult / 2^shift
// (units of 2^-16 log2), so p_i = 2^(t_i/2^16) / sum_j 2^(t_j/2^16), and the ideal output is
// min(p_i * 2^16, 65535) (the kernel saturates probability 1 to 65535).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <type_traits>

#include "fq/kernels/pool.h"
#include "kernel_test_util.h"

namespace fq::k {
namespace {

// Documented bounds (docs/accuracy.md): max and mean |y - ideal| in LSBs.
constexpr double kMaxErr = 0.65;   // measured: 0.596 (exhaustive), 0.589 (random)
constexpr double kMeanErr = 0.30;  // measured per configuration: at most 0.281

struct Scale {
  double real;  // logit scale (real value of one input LSB)
  int32_t mult;
  int shift;
};

// mult / 2^shift = scale * log2(e) * 2^16 with the largest shift keeping mult < 2^31.
Scale make_scale(double real) {
  const double target = real * 1.4426950408889634 * 65536.0;
  int shift = 40;
  while (shift > 0 && target * std::ldexp(1.0, shift) >= 2147483647.0) --shift;
  return {real, int32_t(std::llround(target * std::ldexp(1.0, shift))), shift};
}

struct Stats {
  double max_err = 0, sum_err = 0;
  int64_t n = 0;
  void add(double e) { max_err = std::max(max_err, e), sum_err += e, ++n; }
  double mean() const { return n ? sum_err / double(n) : 0; }
};

// Compares one row; x values are int (i8 or i16 range).
template <class T>
void check_row(const T* x, int cols, const Scale& s, std::vector<uint16_t>& y,
               std::vector<double>& p, Stats& st) {
  if (std::is_same<T, int8_t>::value)
    softmax_i8_u16(reinterpret_cast<const int8_t*>(x), 1, cols, s.mult, s.shift, y.data());
  else
    softmax_i16_u16(reinterpret_cast<const int16_t*>(x), 1, cols, s.mult, s.shift, y.data());
  const int mx = *std::max_element(x, x + cols);
  const double k = double(s.mult) / std::ldexp(1.0, s.shift) / 65536.0;  // log2 units per LSB
  double sum = 0;
  for (int i = 0; i < cols; ++i) sum += p[i] = std::exp2(double(x[i] - mx) * k);
  for (int i = 0; i < cols; ++i)
    st.add(std::fabs(double(y[i]) - std::min(p[i] / sum * 65536.0, 65535.0)));
}

const double kI8Scales[] = {1.0 / 256, 1.0 / 32, 0.1, 0.25, 1.0};
const double kI16Scales[] = {1.0 / 4096, 1.0 / 256, 0.01};

void report(const char* what, const Stats& st) {
  std::printf("softmax %-40s rows*cols %10lld  max err %.4f LSB  mean err %.4f LSB\n", what,
              static_cast<long long>(st.n), st.max_err, st.mean());
}

// Every int8 row of `cols` values, up to translation (the output depends only on x - max): all
// difference patterns with max 0 and entries >= -255.
Stats exhaustive_i8(int cols, const Scale& s) {
  Stats st;
  std::vector<int8_t> x(cols);
  std::vector<uint16_t> y(cols);
  std::vector<double> p(cols);
  std::vector<int> d(cols, -255);
  for (;;) {
    if (*std::max_element(d.begin(), d.end()) == 0) {
      for (int i = 0; i < cols; ++i) x[i] = int8_t(d[i] + 127);
      check_row(x.data(), cols, s, y, p, st);
    }
    int i = 0;
    while (i < cols && d[i] == 0) d[i++] = -255;
    if (i == cols) break;
    ++d[i];
  }
  return st;
}

TEST_CASE("softmax i8: every input pattern of 1, 2 and 3 columns is within the bound",
          "[softmax]") {
  Stats all;
  for (double sc : kI8Scales)
    for (int cols : {1, 2, 3}) {
      const Stats st = exhaustive_i8(cols, make_scale(sc));
      char what[64];
      std::snprintf(what, sizeof what, "i8 exhaustive cols=%d scale=%g", cols, sc);
      report(what, st);
      CHECK(st.max_err <= kMaxErr);
      CHECK(st.mean() <= kMeanErr);
      all.max_err = std::max(all.max_err, st.max_err), all.sum_err += st.sum_err, all.n += st.n;
    }
  report("i8 exhaustive cols<=3, all scales", all);
  CHECK(all.max_err <= kMaxErr);
  CHECK(all.mean() <= kMeanErr);
}

// Hidden (run with "[.exhaustive4]"): 66.6M rows per scale, for docs/accuracy.md.
TEST_CASE("softmax i8: every input pattern of 4 columns", "[.exhaustive4]") {
  for (double sc : kI8Scales) {
    const Stats st = exhaustive_i8(4, make_scale(sc));
    char what[64];
    std::snprintf(what, sizeof what, "i8 exhaustive cols=4 scale=%g", sc);
    report(what, st);
    CHECK(st.max_err <= kMaxErr);
    CHECK(st.mean() <= kMeanErr);
  }
}

template <class T>
Stats random_rows(test::Rng& r, const Scale& s, int cols, int rows, int64_t lo, int64_t hi) {
  Stats st;
  std::vector<uint16_t> y(cols);
  std::vector<double> p(cols);
  for (int i = 0; i < rows; ++i) {
    // Mix of wide uniform rows and rows clustered near their max (the hard case: many similar
    // probabilities), so every magnitude of p is exercised.
    const int64_t spread = i % 2 ? hi - lo : test::uniform(r, 1, 64);
    const int64_t top = test::uniform(r, lo + spread, hi);
    const std::vector<T> x = test::random_vec<T>(r, cols, top - spread, top);
    check_row(x.data(), cols, s, y, p, st);
  }
  return st;
}

TEST_CASE("softmax: random i8 and i16 rows are within the bound", "[softmax]") {
  test::Rng r(77);
  Stats all;
  auto add = [&](const char* what, const Stats& st) {
    report(what, st);
    CHECK(st.max_err <= kMaxErr);
    CHECK(st.mean() <= kMeanErr);
    all.max_err = std::max(all.max_err, st.max_err), all.sum_err += st.sum_err, all.n += st.n;
  };
  for (int cols : {1, 2, 5, 10, 100, 1000, 10000}) {
    const int rows = std::max(4, 200000 / cols);
    char what[64];
    for (double sc : kI8Scales) {
      std::snprintf(what, sizeof what, "i8 random cols=%d scale=%g", cols, sc);
      add(what, random_rows<int8_t>(r, make_scale(sc), cols, rows, -128, 127));
    }
    for (double sc : kI16Scales) {
      std::snprintf(what, sizeof what, "i16 random cols=%d scale=%g", cols, sc);
      add(what, random_rows<int16_t>(r, make_scale(sc), cols, rows, -32768, 32767));
    }
  }
  report("random rows, all", all);
  CHECK(all.max_err <= kMaxErr);
  CHECK(all.mean() <= kMeanErr);
}

TEST_CASE("softmax: fixed points of the definition", "[softmax]") {
  std::vector<uint16_t> y(8);
  const int8_t one[] = {42};
  softmax_i8_u16(one, 1, 1, 1 << 20, 10, y.data());
  CHECK(y[0] == 65535);  // probability 1 saturates
  const int16_t eq[] = {-7, -7, -7, -7};
  softmax_i16_u16(eq, 1, 4, 12345, 3, y.data());
  for (int i = 0; i < 4; ++i) CHECK(y[i] == 16384);
  // mult = 2^16 << shift: one LSB = one octave, so p = 2^-1 : 2^-2 : ... exactly.
  const int8_t oct[] = {0, -1, -2, -3};
  softmax_i8_u16(oct, 1, 4, 1 << 20, 4, y.data());  // 2^20 / 2^4 = 2^16
  // 8:4:2:1 of 15 -> 65536 * {8,4,2,1}/15 = 34952.5, 17476.3, 8738.1, 4369.1
  CHECK(y[0] == 34953);
  CHECK(y[1] == 17476);
  CHECK(y[2] == 8738);
  CHECK(y[3] == 4369);
  // Two rows at once, the second independent of the first.
  const int8_t two[] = {100, -100, 5, 5};
  softmax_i8_u16(two, 2, 2, 1 << 20, 4, y.data());
  CHECK(y[0] == 65535);
  CHECK(y[1] == 0);
  CHECK(y[2] == 32768);
  CHECK(y[3] == 32768);
}

}  // namespace
}  // namespace fq::k
