// rwkv family (fq/kernels/rwkv.h):
//  (a) every compiled variant this machine may run (test::runnable) writes the same bytes as the
//      scalar reference, for every operator, over many shapes (n = 1, n not a multiple of any
//      vector width), row splits, misaligned scratch, zero rows, mant 0, extreme values, scales and
//      exponents (mix: exponents far apart, so that the 12-bit cap of the common unit matters);
//      l2norm / head_bonus: per-head shapes (N = 1..80 and the RWKV 7 shapes 64 x H1 (7v0-834K:
//      n_embd 64, head size 64), 128 x H2, 768 x H12, up to n = 2048), clamped c, all-zero heads,
//      exponent gaps between the y and v / p units, odd qmax, and invalid head counts (nothing
//      written);
//  (b) the scalar reference against double-precision models of the real operators, with the error
//      bounds below (each derived next to its constant), and hand-computed l2norm / head_bonus
//      cases;
//  (c) decode_mu against hand-computed cases: int8 codes, 2 / 3 / 4-bit codebook indices packed LSB
//      first (3-bit indices straddling bytes, streams ending exactly at a byte), rounding,
//      saturation, and bad arguments (false, output untouched).
#include "fq/kernels/rwkv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"

namespace fq::k {
namespace {

using test::Rng;
using test::uniform;

// ---- accuracy bounds (b) --------------------------------------------------------------------------
// Quantized outputs (mix, relu_sq, mul): half an output step from rounding q, plus 0.01 step for the
// 23-bit row shift of quantize_row (at most 0.5 * 32767 / 2^22 step) and F's rounding, plus the
// relative error of the row scale: each normalize rounds to a mantissa in [2^14, 2^15), so up to
// 2^-15 (scale_of's; relu_sq / mul also normalize their unit mant^2 or mant_a mant_b first), and
// scale_of's truncating division (< 2^-40).
constexpr double kQuantStepErr = 0.51;          // output steps
constexpr double kScaleRelErr = 2.0 / 32768 + 1e-9;
// mix also rounds A and P to the common unit 2^-e when one row is more than 12 bits finer (0.5 unit
// each, weighted |1 - mu| and |mu|) and the data-dependent mu to Q16 (|p - a| * 2^-17).
// neg_exp: exp_q's chord and tables (< 1e-6 relative, llm.h), L and z rounded to Q24 (2 * 3e-8),
// and exp_q's log2(e) constant 94548 / 2^16 = log2(e) (1 - 4.89e-6): e^t comes out as e^(t (1 -
// 4.89e-6)), a relative error of 4.89e-6 |t| with t = z - 7 ln 2 in [-21.5, 0]; plus one Q24 unit
// (exp_q's final rounding, doubled). So up to ~1.1e-4 relative at the smallest nonzero outputs and
// 2.5e-5 at e^0 = 1 (measured: within 2 % of the bound).
constexpr double kNegExpRel0 = 1.2e-6;
constexpr double kNegExpRelPerT = 4.9e-6;
constexpr double kNegExpAbs = 1.0 / (1 << 24) * (1 + 1e-6);

// l2norm: y = 2^15 v / |v| (v = x clamp(c), per head) rounded once (0.5), with v' = shift_s(v, d)
// off by 0.5 in units where max |v'| >= 2^22 (0.5 * 2^15 / 2^22 = 2^-8 per element), and the norm
// off by the rounding of every v' (|v' - v 2^-d| <= 0.5 sqrt(N)), the floor of isqrt64 (< 1) and of
// R (relative < 2^-33), all relative to |v'| >= 2^22: |y| (0.5 sqrt(N) + 1) 2^-22 (at most 0.13 for
// N = 1024, 0.04 for N = 64). The clamp at +-32767 only moves y toward the real value's clamp.
constexpr double kL2Round = 0.5 + 0.5 * 32768.0 / (1 << 22) + 1e-9;
// head_bonus: W rounds shift_s(T, d1) (0.5 * 2^d1 T units <= max |T| 2^-29, real) and the finer of
// Y / Z to the coarser unit 2^-e (0.5 unit; a shift beyond 62 gives 0, still < 0.5 unit), then the
// quantizer as above (kQuantStepErr steps, kScaleRelErr of the value: scale_of's one normalize).
constexpr double kBonusTRel = 1.0 / (1 << 29);

double lsb(RowScale s) { return double(s.mant) * std::ldexp(1.0, -s.exp); }

const RwkvKernel& scalar() { return test::scalar_variant(rwkv_kernels); }

// Row-range splits of M rows: [b[i], b[i+1]).
std::vector<int64_t> splits(Rng& r, int64_t M) {
  std::vector<int64_t> b{0};
  while (b.back() < M) b.push_back(std::min(M, b.back() + uniform(r, 1, std::max<int64_t>(1, M / 2))));
  return b;
}
std::vector<int64_t> one_call(int64_t M) { return {0, M}; }

// Row widths: every tail length of 4, 8, 16 and 32 lanes, n = 1, and longer rows.
constexpr int64_t kWidths[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 257, 1000};
int64_t random_width(Rng& r) { return uniform(r, 0, 3) == 0 ? uniform(r, 1, 700) : kWidths[uniform(r, 0, 23)]; }

// A RowScale: mant in [2^14, 2^15) (or 2^15, or 0: a zero row), exp in [emin, emax].
RowScale random_scale(Rng& r, int64_t emin, int64_t emax, bool allow_zero = true) {
  const int64_t k = uniform(r, 0, 19);
  if (allow_zero && k == 0) return RowScale{};
  const int32_t mant = k == 1 ? (1 << 15) : int32_t(uniform(r, 1 << 14, (1 << 15) - 1));
  return RowScale{mant, int32_t(uniform(r, emin, emax))};
}
// Exponents for the bit-exactness tests: moderate, near a given one, or extreme.
int64_t random_exp(Rng& r, int64_t near) {
  switch (uniform(r, 0, 5)) {
    case 0: return uniform(r, -(int64_t{1} << 24), int64_t{1} << 24);
    case 1: return near + uniform(r, -80, 80);
    case 2: return near + uniform(r, -14, 14);
    default: return uniform(r, -20, 60);
  }
}
RowScale ext_scale(Rng& r, int64_t near) {
  RowScale s = random_scale(r, 0, 0);
  if (s.mant != 0) s.exp = int32_t(random_exp(r, near));
  return s;
}

// n int16 values of a random magnitude (2^bits), with some extremes and some all-zero rows.
void fill_row(Rng& r, int16_t* x, int64_t n, bool ext) {
  const int64_t kind = uniform(r, 0, 9);
  const int bits = int(uniform(r, 0, 15));
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = kind == 0 ? 0 : uniform(r, -(int64_t{1} << bits), (int64_t{1} << bits) - 1);
    if (ext && uniform(r, 0, 15) == 0) v = uniform(r, 0, 1) ? INT16_MIN : INT16_MAX;
    x[i] = int16_t(std::clamp<int64_t>(v, INT16_MIN, INT16_MAX));
  }
}
std::vector<int16_t> random_rows(Rng& r, int64_t M, int64_t n, bool ext) {
  std::vector<int16_t> x(size_t(M * n));
  for (int64_t m = 0; m < M; ++m) fill_row(r, x.data() + m * n, n, ext);
  return x;
}
std::vector<int32_t> random_i32(Rng& r, int64_t n, int64_t lo, int64_t hi, bool ext) {
  std::vector<int32_t> v = test::random_vec<int32_t>(r, size_t(n), lo, hi);
  if (ext)
    for (auto& e : v)
      if (uniform(r, 0, 15) == 0) e = uniform(r, 0, 1) ? INT32_MIN : INT32_MAX;
  return v;
}
int random_qmax(Rng& r) {
  const int64_t k = uniform(r, 0, 5);
  return k < 2 ? 127 : k < 4 ? 32767 : k == 4 ? int(uniform(r, 1, 127)) : int(uniform(r, 128, 32767));
}

// Outputs of one operator: the bytes of y and the row scales.
struct Out {
  std::vector<uint8_t> y;
  std::vector<RowScale> ys;
  bool operator==(const Out& o) const {
    return y == o.y && ys.size() == o.ys.size() &&
           (ys.empty() || std::memcmp(ys.data(), o.ys.data(), ys.size() * sizeof(RowScale)) == 0);
  }
};
// Scratch of rwkv_scratch(n) bytes at an odd address (the contract needs no alignment).
struct Scratch {
  std::vector<uint8_t> b;
  explicit Scratch(int64_t n) : b(rwkv_scratch(n) + 3) {}
  void* p() { return b.data() + 3; }
};

// ---- mix ----------------------------------------------------------------------------------------

struct MixCase {
  int64_t M = 0, n = 0;
  int qmax = 127;
  std::vector<int16_t> a, p, md;
  std::vector<RowScale> as, ps, mds;
  std::vector<int32_t> mu;   // empty: mu_c = nullptr
  bool has_md = false;
};

MixCase random_mix(Rng& r, int64_t M, int64_t n, bool ext) {
  MixCase c;
  c.M = M, c.n = n, c.qmax = random_qmax(r);
  c.a = random_rows(r, M, n, ext), c.p = random_rows(r, M, n, ext);
  for (int64_t m = 0; m < M; ++m) {
    c.as.push_back(ext ? ext_scale(r, 20) : random_scale(r, -10, 40));
    c.ps.push_back(ext ? ext_scale(r, c.as.back().exp) : random_scale(r, -10, 40));
  }
  if (uniform(r, 0, 3) != 0) {
    // |mu| up to 8 (clamped at 4), or every mu within +-4 as in the models, the bounds included
    const bool inside = uniform(r, 0, 2) == 0;
    c.mu = random_i32(r, n, inside ? -(1 << 18) : -(1 << 19), inside ? 1 << 18 : 1 << 19, ext && !inside);
    if (inside && uniform(r, 0, 2) == 0) c.mu[size_t(uniform(r, 0, n - 1))] = uniform(r, 0, 1) ? 1 << 18 : -(1 << 18);
  }
  c.has_md = uniform(r, 0, 2) != 0;
  if (c.has_md) {
    c.md = random_rows(r, M, n, ext);
    for (int64_t m = 0; m < M; ++m) c.mds.push_back(ext ? ext_scale(r, 30) : random_scale(r, 14, 40));
  }
  return c;
}

Out run_mix(const RwkvKernel& k, const MixCase& c, const std::vector<int64_t>& rows) {
  Out o;
  o.y.assign(size_t(c.M * c.n * (c.qmax <= 127 ? 1 : 2)), 0x5A);
  o.ys.assign(size_t(c.M), RowScale{-1, -1});
  RwkvMixArgs a{};
  a.a = c.a.data(), a.as = c.as.data(), a.p = c.p.data(), a.ps = c.ps.data();
  a.mu_c = c.mu.empty() ? nullptr : c.mu.data();
  a.md = c.has_md ? c.md.data() : nullptr, a.mds = c.has_md ? c.mds.data() : nullptr;
  a.n = c.n, a.qmax = c.qmax, a.y = o.y.data(), a.ys = o.ys.data();
  Scratch s(c.n);
  for (size_t i = 0; i + 1 < rows.size(); ++i) k.mix(a, rows[i], rows[i + 1], s.p());
  return o;
}

// ---- fixed, neg_exp -----------------------------------------------------------------------------

struct FixedCase {
  int64_t M = 0, n = 0;
  int frac = 0, out_bits = 16;
  std::vector<int16_t> x;
  std::vector<RowScale> xs;
  std::vector<int32_t> bias;   // empty: nullptr
};

FixedCase random_fixed(Rng& r, int64_t M, int64_t n, bool ext, int frac) {
  FixedCase c;
  c.M = M, c.n = n, c.frac = frac, c.out_bits = uniform(r, 0, 1) ? 16 : 32;
  c.x = random_rows(r, M, n, ext);
  for (int64_t m = 0; m < M; ++m) c.xs.push_back(ext ? ext_scale(r, frac + 15) : random_scale(r, frac, frac + 30));
  if (uniform(r, 0, 2) != 0) {
    const int64_t b = int64_t{1} << uniform(r, 0, 31);
    c.bias = random_i32(r, n, -b, b - 1, ext);
  }
  return c;
}

Out run_fixed(const RwkvKernel& k, const FixedCase& c, const std::vector<int64_t>& rows) {
  Out o;
  o.y.assign(size_t(c.M * c.n * (c.out_bits == 16 ? 2 : 4)), 0x5A);
  RwkvFixedArgs a{};
  a.x = c.x.data(), a.xs = c.xs.data(), a.bias = c.bias.empty() ? nullptr : c.bias.data();
  a.n = c.n, a.frac = c.frac, a.out_bits = c.out_bits, a.y = o.y.data();
  for (size_t i = 0; i + 1 < rows.size(); ++i) k.fixed(a, rows[i], rows[i + 1]);
  return o;
}

Out run_neg_exp(const RwkvKernel& k, const FixedCase& c, const std::vector<int64_t>& rows) {
  Out o;
  o.y.assign(size_t(c.M * c.n * 4), 0x5A);
  RwkvNegExpArgs a{};
  a.x = c.x.data(), a.xs = c.xs.data(), a.bias = c.bias.empty() ? nullptr : c.bias.data();
  a.n = c.n, a.y = reinterpret_cast<int32_t*>(o.y.data());
  for (size_t i = 0; i + 1 < rows.size(); ++i) k.neg_exp(a, rows[i], rows[i + 1]);
  return o;
}

// ---- relu_sq, mul -------------------------------------------------------------------------------

struct BinCase {
  int64_t M = 0, n = 0;
  int qmax = 127;
  std::vector<int16_t> a, b;
  std::vector<RowScale> as, bs;
};

BinCase random_bin(Rng& r, int64_t M, int64_t n, bool ext) {
  BinCase c;
  c.M = M, c.n = n, c.qmax = random_qmax(r);
  c.a = random_rows(r, M, n, ext), c.b = random_rows(r, M, n, ext);
  for (int64_t m = 0; m < M; ++m) {
    c.as.push_back(ext ? ext_scale(r, 20) : random_scale(r, -10, 40));
    c.bs.push_back(ext ? ext_scale(r, 20) : random_scale(r, -10, 40));
  }
  return c;
}

Out run_relu_sq(const RwkvKernel& k, const BinCase& c, const std::vector<int64_t>& rows) {
  Out o;
  o.y.assign(size_t(c.M * c.n * (c.qmax <= 127 ? 1 : 2)), 0x5A);
  o.ys.assign(size_t(c.M), RowScale{-1, -1});
  RwkvUnaryArgs a{};
  a.x = c.a.data(), a.xs = c.as.data(), a.n = c.n, a.qmax = c.qmax, a.y = o.y.data(), a.ys = o.ys.data();
  Scratch s(c.n);
  for (size_t i = 0; i + 1 < rows.size(); ++i) k.relu_sq(a, rows[i], rows[i + 1], s.p());
  return o;
}

Out run_mul(const RwkvKernel& k, const BinCase& c, const std::vector<int64_t>& rows) {
  Out o;
  o.y.assign(size_t(c.M * c.n * (c.qmax <= 127 ? 1 : 2)), 0x5A);
  o.ys.assign(size_t(c.M), RowScale{-1, -1});
  RwkvMulArgs a{};
  a.a = c.a.data(), a.as = c.as.data(), a.b = c.b.data(), a.bs = c.bs.data();
  a.n = c.n, a.qmax = c.qmax, a.y = o.y.data(), a.ys = o.ys.data();
  Scratch s(c.n);
  for (size_t i = 0; i + 1 < rows.size(); ++i) k.mul(a, rows[i], rows[i + 1], s.p());
  return o;
}

// Element i of a quantized output, in real units.
double qreal(const Out& o, int qmax, int64_t n, int64_t m, int64_t i) {
  const size_t k = size_t(m * n + i);
  int64_t q;
  if (qmax <= 127) {
    q = int8_t(o.y[k]);
  } else {
    int16_t t;
    std::memcpy(&t, o.y.data() + 2 * k, 2);
    q = t;
  }
  return double(q) * lsb(o.ys[size_t(m)]);
}
double real(int64_t q, RowScale s) { return q == 0 ? 0.0 : double(q) * lsb(s); }   // 0, not 0 * inf

// ---- l2norm, head_bonus ---------------------------------------------------------------------------

// A head count for width n: 7v0 / v7 shapes, heads of N = 1..80 (n up to 2048), or invalid ones.
struct Heads {
  int64_t n;
  int heads;
};
Heads random_heads(Rng& r) {
  switch (uniform(r, 0, 9)) {
    case 0: return {64, 1};     // RWKV 7v0-834K: n_embd 64, head size 64
    case 1: return {128, 2};
    case 2: return {768, 12};
    case 3: {
      const int64_t N = uniform(r, 1, 1024);
      return {N * uniform(r, 1, 2048 / N), 0};
    }
    default: {
      const int64_t N = uniform(r, 1, 80);
      const int64_t H = uniform(r, 0, 2) == 0 ? uniform(r, 1, 2048 / N) : uniform(r, 1, std::min<int64_t>(8, 2048 / N));
      return {N * H, int(H)};
    }
  }
}
// case 3 above picks heads from the divisors of n
Heads fix_heads(Rng& r, Heads h) {
  if (h.heads != 0) return h;
  std::vector<int> div;
  for (int64_t d = 1; d <= h.n; ++d)
    if (h.n % d == 0 && h.n / d <= 1024) div.push_back(int(d));
  h.heads = div[size_t(uniform(r, 0, int64_t(div.size()) - 1))];
  return h;
}

// c in Q16: small, about 1, up to the clamps (l2norm 2^24, head_bonus 2^20) and beyond, extremes.
std::vector<int32_t> random_c(Rng& r, int64_t n, bool ext) {
  const int bits = int(uniform(r, 0, 31));
  const int64_t b = int64_t{1} << bits;
  std::vector<int32_t> c = random_i32(r, n, std::max<int64_t>(INT32_MIN, -b), std::min<int64_t>(INT32_MAX, b - 1), ext);
  if (uniform(r, 0, 5) == 0) std::fill(c.begin(), c.end(), uniform(r, 0, 1) ? INT32_MAX : INT32_MIN);
  return c;
}
// Zeroes whole heads of some rows of x (every v 0 in a head).
void zero_heads(Rng& r, std::vector<int16_t>& x, int64_t M, int64_t n, int heads) {
  const int64_t N = n / heads;
  for (int64_t m = 0; m < M; ++m)
    for (int h = 0; h < heads; ++h)
      if (uniform(r, 0, 4) == 0) std::fill_n(x.begin() + m * n + h * N, N, int16_t(0));
}

struct L2Case {
  int64_t M = 0, n = 0;
  int heads = 1;
  std::vector<int16_t> x;
  std::vector<RowScale> xs;
  std::vector<int32_t> c;
};

L2Case random_l2(Rng& r, int64_t M, Heads hd, bool ext) {
  L2Case c;
  hd = fix_heads(r, hd);
  c.M = M, c.n = hd.n, c.heads = hd.heads;
  c.x = random_rows(r, M, c.n, ext);
  if (uniform(r, 0, 2) == 0) zero_heads(r, c.x, M, c.n, c.heads);
  for (int64_t m = 0; m < M; ++m) c.xs.push_back(ext ? ext_scale(r, 20) : random_scale(r, -10, 40));
  c.c = random_c(r, c.n, ext);
  if (uniform(r, 0, 4) == 0) std::fill_n(c.c.begin(), c.n / c.heads, 0);   // a head with c = 0
  return c;
}

Out run_l2(const RwkvKernel& k, const L2Case& c, const std::vector<int64_t>& rows) {
  Out o;
  o.y.assign(size_t(c.M * c.n * 2), 0x5A);
  RwkvL2normArgs a{};
  a.x = c.x.data(), a.xs = c.xs.data(), a.c = c.c.data(), a.n = c.n, a.heads = c.heads;
  a.y = reinterpret_cast<int16_t*>(o.y.data());
  for (size_t i = 0; i + 1 < rows.size(); ++i) k.l2norm(a, rows[i], rows[i + 1]);
  return o;
}
int16_t i16_at(const Out& o, int64_t k) {
  int16_t t;
  std::memcpy(&t, o.y.data() + 2 * k, 2);
  return t;
}

struct BonusCase {
  int64_t M = 0, n = 0;
  int heads = 1, qmax = 127;
  std::vector<int16_t> y, v, p;
  std::vector<RowScale> ys, vs, ps;
  std::vector<int32_t> c;
};

BonusCase random_bonus(Rng& r, int64_t M, Heads hd, bool ext) {
  BonusCase c;
  hd = fix_heads(r, hd);
  c.M = M, c.n = hd.n, c.heads = hd.heads, c.qmax = random_qmax(r);
  c.y = random_rows(r, M, c.n, ext), c.v = random_rows(r, M, c.n, ext), c.p = random_rows(r, M, c.n, ext);
  if (uniform(r, 0, 2) == 0) zero_heads(r, c.v, M, c.n, c.heads);
  if (uniform(r, 0, 2) == 0) zero_heads(r, c.p, M, c.n, c.heads);
  for (int64_t m = 0; m < M; ++m) {
    // y's unit near v p's (ys.exp ~ vs.exp + ps.exp + 16 - d1, d1 up to ~31), or far from it
    c.ys.push_back(ext ? ext_scale(r, 30) : random_scale(r, -10, 40));
    c.vs.push_back(ext ? ext_scale(r, 10) : random_scale(r, -10, 30));
    c.ps.push_back(ext ? ext_scale(r, c.ys.back().exp - c.vs.back().exp) : random_scale(r, -10, 30));
  }
  c.c = random_c(r, c.n, ext);
  return c;
}

Out run_bonus(const RwkvKernel& k, const BonusCase& c, const std::vector<int64_t>& rows) {
  Out o;
  o.y.assign(size_t(c.M * c.n * (c.qmax <= 127 ? 1 : 2)), 0x5A);
  o.ys.assign(size_t(c.M), RowScale{-1, -1});
  RwkvBonusArgs a{};
  a.y = c.y.data(), a.ys = c.ys.data(), a.v = c.v.data(), a.vs = c.vs.data(), a.p = c.p.data(), a.ps = c.ps.data();
  a.c = c.c.data(), a.n = c.n, a.heads = c.heads, a.qmax = c.qmax, a.out = o.y.data(), a.os = o.ys.data();
  Scratch s(c.n);
  for (size_t i = 0; i + 1 < rows.size(); ++i) k.head_bonus(a, rows[i], rows[i + 1], s.p());
  return o;
}

// ---- (a) every variant == scalar ------------------------------------------------------------------

// Runs every runnable variant on `make(it)` cases; `run(kernel, case, rows)` gives the outputs.
template <class Make, class Run>
void check_variants(const char* op, int iters, uint64_t seed, Make make, Run run) {
  Rng r(seed);
  size_t nk = 0;
  const RwkvKernel* const* ks = rwkv_kernels(&nk);
  for (int it = 0; it < iters; ++it) {
    const auto c = make(r, it);
    const Out want = run(scalar(), c, one_call(c.M));
    for (size_t v = 1; v < nk; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      INFO(op << " " << ks[v]->name << " it=" << it << " M=" << c.M << " n=" << c.n);
      REQUIRE(run(*ks[v], c, one_call(c.M)) == want);
      REQUIRE(run(*ks[v], c, splits(r, c.M)) == want);
    }
  }
}

TEST_CASE("rwkv: mix variants bit-exact", "[rwkv][variants]") {
  check_variants("mix", 1500, 1, [](Rng& r, int it) { return random_mix(r, uniform(r, 1, 4), random_width(r), it % 2 == 1); },
                 run_mix);
}

TEST_CASE("rwkv: fixed variants bit-exact", "[rwkv][variants]") {
  check_variants("fixed", 1000, 2, [](Rng& r, int it) {
    return random_fixed(r, uniform(r, 1, 4), random_width(r), it % 2 == 1, int(uniform(r, 0, 30)));
  }, run_fixed);
}

TEST_CASE("rwkv: neg_exp variants bit-exact", "[rwkv][variants]") {
  check_variants("neg_exp", 1000, 3, [](Rng& r, int it) {
    FixedCase c = random_fixed(r, uniform(r, 1, 4), random_width(r), it % 2 == 1, 24);
    if (it % 3 == 0 && !c.bias.empty())  // log-decays around the floor (e^z = 128) and far below
      for (auto& b : c.bias) b = int32_t(uniform(r, -(int64_t{30} << 24), int64_t{8} << 24));
    return c;
  }, run_neg_exp);
}

TEST_CASE("rwkv: relu_sq variants bit-exact", "[rwkv][variants]") {
  check_variants("relu_sq", 1000, 4, [](Rng& r, int it) { return random_bin(r, uniform(r, 1, 4), random_width(r), it % 2 == 1); },
                 run_relu_sq);
}

TEST_CASE("rwkv: mul variants bit-exact", "[rwkv][variants]") {
  check_variants("mul", 1000, 5, [](Rng& r, int it) { return random_bin(r, uniform(r, 1, 4), random_width(r), it % 2 == 1); },
                 run_mul);
}

TEST_CASE("rwkv: l2norm variants bit-exact", "[rwkv][variants]") {
  check_variants("l2norm", 1500, 7, [](Rng& r, int it) { return random_l2(r, uniform(r, 1, 4), random_heads(r), it % 2 == 1); },
                 run_l2);
}

TEST_CASE("rwkv: head_bonus variants bit-exact", "[rwkv][variants]") {
  check_variants("head_bonus", 1500, 8, [](Rng& r, int it) {
    return random_bonus(r, uniform(r, 1, 4), random_heads(r), it % 2 == 1);
  }, run_bonus);
}

// l2norm / head_bonus edges: extreme x / v / p / y rows with c at and beyond the clamps, mant 0,
// all-zero heads, exponent gaps from 0 to far beyond 62 between Y's unit and Z's, qmax 1 .. 32767,
// and invalid head counts (nothing written by any variant).
TEST_CASE("rwkv: l2norm / head_bonus variants bit-exact at the edges", "[rwkv][variants]") {
  size_t nk = 0;
  const RwkvKernel* const* ks = rwkv_kernels(&nk);
  for (Heads hd : {Heads{1, 1}, Heads{7, 7}, Heads{7, 1}, Heads{33, 3}, Heads{64, 1}, Heads{128, 2}, Heads{96, 12}}) {
    for (int16_t xv : {int16_t(INT16_MIN), int16_t(INT16_MAX), int16_t(-1), int16_t(0)}) {
      for (int32_t cv : {INT32_MIN, INT32_MAX, -(1 << 24), (1 << 24) + 1, (1 << 20), -(1 << 20) - 1, 1, 0}) {
        for (int32_t mant : {0, 1 << 14, 1 << 15}) {
          L2Case lc;
          lc.M = 1, lc.n = hd.n, lc.heads = hd.heads;
          lc.x.assign(size_t(hd.n), xv);
          lc.x[0] = int16_t(-xv / 3);
          lc.xs = {RowScale{mant, 7}};
          lc.c.assign(size_t(hd.n), cv);
          const Out lw = run_l2(scalar(), lc, {0, 1});
          for (int32_t gap : {0, 1, 29, 62, 63, 100, -1, -29, -62, -63, -100}) {
            for (int qmax : {1, 127, 32767, 1001}) {
              BonusCase bc;
              bc.M = 1, bc.n = hd.n, bc.heads = hd.heads, bc.qmax = qmax;
              bc.y.assign(size_t(hd.n), int16_t(-xv / 2));
              bc.v.assign(size_t(hd.n), xv), bc.p.assign(size_t(hd.n), xv);
              bc.v[size_t(hd.n - 1)] = 3;
              bc.c.assign(size_t(hd.n), cv);
              bc.ys = {RowScale{mant == 0 ? (1 << 15) : mant, 20 + gap}};
              bc.vs = {RowScale{1 << 15, 0}}, bc.ps = {RowScale{mant, -16}};
              const Out bw = run_bonus(scalar(), bc, {0, 1});
              for (size_t v = 1; v < nk; ++v) {
                if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
                INFO(ks[v]->name << " n=" << hd.n << " H=" << hd.heads << " x=" << xv << " c=" << cv << " mant=" << mant
                                 << " gap=" << gap << " qmax=" << qmax);
                REQUIRE(run_l2(*ks[v], lc, {0, 1}) == lw);
                REQUIRE(run_bonus(*ks[v], bc, {0, 1}) == bw);
              }
            }
          }
        }
      }
    }
  }
  // invalid heads: 0, negative, not a divisor of n; n = 0
  Rng r(9);
  for (Heads hd : {Heads{64, 0}, Heads{64, -2}, Heads{64, 3}, Heads{10, 20}, Heads{0, 1}}) {
    L2Case lc = random_l2(r, 2, Heads{64, 1}, false);
    lc.n = hd.n, lc.heads = hd.heads;
    BonusCase bc = random_bonus(r, 2, Heads{64, 1}, false);
    bc.n = hd.n, bc.heads = hd.heads;
    for (size_t v = 0; v < nk; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      INFO(ks[v]->name << " n=" << hd.n << " heads=" << hd.heads);
      const Out lo = run_l2(*ks[v], lc, {0, 2}), bo = run_bonus(*ks[v], bc, {0, 2});
      REQUIRE(std::all_of(lo.y.begin(), lo.y.end(), [](uint8_t b) { return b == 0x5A; }));
      REQUIRE(std::all_of(bo.y.begin(), bo.y.end(), [](uint8_t b) { return b == 0x5A; }));
      REQUIRE(std::all_of(bo.ys.begin(), bo.ys.end(), [](RowScale s) { return s.mant == -1 && s.exp == -1; }));
    }
  }
}

// Hand-picked edges for every operator: all-extreme rows, mant 0 with nonzero data, exps far apart.
TEST_CASE("rwkv: variants bit-exact at the edges", "[rwkv][variants]") {
  Rng r(6);
  size_t nk = 0;
  const RwkvKernel* const* ks = rwkv_kernels(&nk);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{33}}) {
    for (int16_t xv : {int16_t(INT16_MIN), int16_t(INT16_MAX), int16_t(-1), int16_t(0)}) {
      for (int32_t ed : {0, 12, 13, -13, 62, 63, 200, -200}) {
        for (int32_t mant : {0, 1 << 14, 1 << 15}) {
          MixCase mc;
          mc.M = 1, mc.n = n, mc.qmax = 127;
          mc.a.assign(size_t(n), xv), mc.p.assign(size_t(n), int16_t(-xv / 2));
          mc.as = {RowScale{mant, 10}}, mc.ps = {RowScale{1 << 15, 10 + ed}};
          mc.mu.assign(size_t(n), INT32_MAX);
          mc.has_md = true, mc.md.assign(size_t(n), INT16_MIN), mc.mds = {RowScale{1 << 15, -ed}};
          BinCase bc;
          bc.M = 1, bc.n = n, bc.qmax = 32767;
          bc.a.assign(size_t(n), xv), bc.b.assign(size_t(n), xv);
          bc.as = {RowScale{mant, ed}}, bc.bs = {RowScale{1 << 15, -ed}};
          FixedCase fc;
          fc.M = 1, fc.n = n, fc.frac = 30, fc.out_bits = 32;
          fc.x.assign(size_t(n), xv), fc.xs = {RowScale{mant, ed}}, fc.bias.assign(size_t(n), INT32_MIN);
          const Out mw = run_mix(scalar(), mc, {0, 1}), bw = run_mul(scalar(), bc, {0, 1});
          const Out rw = run_relu_sq(scalar(), bc, {0, 1}), fw = run_fixed(scalar(), fc, {0, 1});
          FixedCase ec = fc;
          ec.xs = {RowScale{mant, 24 - ed}};
          ec.bias.assign(size_t(n), int32_t(kRwkvExpShiftQ24));
          const Out ew = run_neg_exp(scalar(), ec, {0, 1});
          for (size_t v = 1; v < nk; ++v) {
            if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
            INFO(ks[v]->name << " n=" << n << " x=" << xv << " ed=" << ed << " mant=" << mant);
            REQUIRE(run_mix(*ks[v], mc, {0, 1}) == mw);
            REQUIRE(run_mul(*ks[v], bc, {0, 1}) == bw);
            REQUIRE(run_relu_sq(*ks[v], bc, {0, 1}) == rw);
            REQUIRE(run_fixed(*ks[v], fc, {0, 1}) == fw);
            REQUIRE(run_neg_exp(*ks[v], ec, {0, 1}) == ew);
          }
        }
      }
    }
  }
}

// ---- (b) scalar vs double -------------------------------------------------------------------------

TEST_CASE("rwkv: mix accuracy vs a + (p - a) mu", "[rwkv][accuracy]") {
  Rng r(11);
  double worst = 0;  // error / bound
  for (int it = 0; it < 3000; ++it) {
    MixCase c = random_mix(r, 1, uniform(r, 1, 300), false);
    c.as[0] = random_scale(r, 0, 30);
    c.ps[0] = random_scale(r, 0, 30);
    c.ps[0].exp = c.as[0].exp + int32_t(uniform(r, -24, 24));   // gaps beyond 12: rounded A or P
    if (c.has_md) c.mds[0] = random_scale(r, 26, 40);           // |md| <= 2^30 / 2^26 = 16: clamped at 4
    const Out o = run_mix(scalar(), c, {0, 1});
    const int64_t ea = c.as[0].mant ? c.as[0].exp : c.ps[0].exp, ep = c.ps[0].mant ? c.ps[0].exp : ea;
    const int64_t e = std::min(std::max(ea, ep), std::min(ea, ep) + 12);
    const double unit = std::ldexp(1.0, -int(e)), step = lsb(o.ys[0]);
    for (int64_t i = 0; i < c.n; ++i) {
      const double a = real(c.a[size_t(i)], c.as[0]), p = real(c.p[size_t(i)], c.ps[0]);
      double mu = c.mu.empty() ? 0 : c.mu[size_t(i)] / 65536.0;
      if (c.has_md) mu += real(c.md[size_t(i)], c.mds[0]);
      mu = std::clamp(mu, -4.0, 4.0);
      const double want = a + (p - a) * mu, got = qreal(o, c.qmax, c.n, 0, i);
      const double bound = kQuantStepErr * step + kScaleRelErr * std::fabs(want) +
                           0.5 * unit * (std::fabs(1 - mu) + std::fabs(mu)) + std::fabs(p - a) * std::ldexp(1.0, -17);
      INFO("it=" << it << " i=" << i << " want=" << want << " got=" << got << " bound=" << bound);
      REQUIRE(std::fabs(got - want) <= bound);
      if (bound > 0) worst = std::max(worst, std::fabs(got - want) / bound);
    }
  }
  WARN("mix: worst error / bound " << worst);
}

TEST_CASE("rwkv: fixed accuracy vs x * scale + bias", "[rwkv][accuracy]") {
  Rng r(12);
  for (int it = 0; it < 3000; ++it) {
    const int frac = int(uniform(r, 0, 30));
    const FixedCase c = random_fixed(r, 1, uniform(r, 1, 100), it % 2 == 1, frac);
    const Out o = run_fixed(scalar(), c, {0, 1});
    const double lo = c.out_bits == 16 ? INT16_MIN : INT32_MIN, hi = c.out_bits == 16 ? INT16_MAX : INT32_MAX;
    for (int64_t i = 0; i < c.n; ++i) {
      // the real input in units of 2^-F (exact in double for the exps below 2^10 of this test's
      // non-extreme half; the extreme half's far shifts underflow to 0 or saturate, both exact)
      const double want = std::ldexp(real(c.x[size_t(i)], c.xs[0]), frac) + (c.bias.empty() ? 0 : c.bias[size_t(i)]);
      int64_t got;
      if (c.out_bits == 16) {
        int16_t t;
        std::memcpy(&t, o.y.data() + 2 * i, 2);
        got = t;
      } else {
        int32_t t;
        std::memcpy(&t, o.y.data() + 4 * i, 4);
        got = t;
      }
      INFO("it=" << it << " i=" << i << " want=" << want << " got=" << got);
      if (want >= hi) REQUIRE(got == int64_t(hi));
      else if (want <= lo) REQUIRE(got == int64_t(lo));
      else REQUIRE(std::fabs(double(got) - want) <= 0.5);
    }
  }
}

TEST_CASE("rwkv: neg_exp accuracy vs -exp(z)", "[rwkv][accuracy]") {
  REQUIRE(std::fabs(double(kRwkvExpShiftQ24) - std::ldexp(7 * std::log(2.0), 24)) <= 0.5);
  Rng r(13);
  double worst = 0;
  for (int it = 0; it < 2000; ++it) {
    FixedCase c = random_fixed(r, 1, uniform(r, 1, 200), false, 24);
    c.xs[0] = random_scale(r, 24, 40);   // |x| real <= 2^30 / 2^24 = 64
    c.bias = random_i32(r, c.n, -(int64_t{40} << 24), int64_t{8} << 24, false);
    const Out o = run_neg_exp(scalar(), c, {0, 1});
    for (int64_t i = 0; i < c.n; ++i) {
      const double z = real(c.x[size_t(i)], c.xs[0]) + std::ldexp(double(c.bias[size_t(i)]), -24);
      const double t = z - 7 * std::log(2.0);
      int32_t y;
      std::memcpy(&y, o.y.data() + 4 * i, 4);
      INFO("it=" << it << " z=" << z << " y=" << y);
      if (t > 1e-6) {
        REQUIRE(y == INT32_MIN);   // the floor -128 (e^z >= 128)
        continue;
      }
      const double want = -std::exp(z), got = std::ldexp(double(y), -24);
      const double bound = -want * (kNegExpRel0 + kNegExpRelPerT * std::fabs(std::min(t, 0.0))) + kNegExpAbs;
      REQUIRE(y <= 0);
      REQUIRE(std::fabs(got - want) <= bound);
      worst = std::max(worst, std::fabs(got - want) / bound);
    }
  }
  WARN("neg_exp: worst error / bound " << worst);
}

// relu_sq (b = a) and mul against the exact real product.
template <class Run>
void check_product(uint64_t seed, bool square, Run run) {
  Rng r(seed);
  double worst = 0;
  for (int it = 0; it < 3000; ++it) {
    const BinCase c = random_bin(r, 1, uniform(r, 1, 300), false);
    const Out o = run(scalar(), c, {0, 1});
    for (int64_t i = 0; i < c.n; ++i) {
      const double x = real(c.a[size_t(i)], c.as[0]);
      const double want = square ? (x > 0 ? x * x : 0) : x * real(c.b[size_t(i)], c.bs[0]);
      const double got = qreal(o, c.qmax, c.n, 0, i);
      const double bound = kQuantStepErr * lsb(o.ys[0]) + kScaleRelErr * std::fabs(want);
      INFO("it=" << it << " i=" << i << " want=" << want << " got=" << got);
      REQUIRE(std::fabs(got - want) <= bound);
      if (bound > 0) worst = std::max(worst, std::fabs(got - want) / bound);
    }
  }
  WARN((square ? "relu_sq" : "mul") << ": worst error / bound " << worst);
}

TEST_CASE("rwkv: relu_sq accuracy vs max(x, 0)^2", "[rwkv][accuracy]") { check_product(14, true, run_relu_sq); }
TEST_CASE("rwkv: mul accuracy vs a * b", "[rwkv][accuracy]") { check_product(15, false, run_mul); }

TEST_CASE("rwkv: l2norm accuracy vs 2^15 v / |v| per head", "[rwkv][accuracy]") {
  Rng r(16);
  double worst = 0, worst_abs = 0;
  for (int it = 0; it < 3000; ++it) {
    const L2Case c = random_l2(r, 1, random_heads(r), it % 4 == 3);
    const Out o = run_l2(scalar(), c, {0, 1});
    const int64_t N = c.n / c.heads;
    for (int64_t h0 = 0; h0 < c.n; h0 += N) {
      double ss = 0;
      std::vector<double> v(static_cast<size_t>(N));
      for (int64_t i = 0; i < N; ++i) {
        v[size_t(i)] = double(c.x[size_t(h0 + i)]) * double(std::clamp<int64_t>(c.c[size_t(h0 + i)], -(1 << 24), 1 << 24));
        ss += v[size_t(i)] * v[size_t(i)];
      }
      for (int64_t i = 0; i < N; ++i) {
        const int64_t got = i16_at(o, h0 + i);
        INFO("it=" << it << " n=" << c.n << " H=" << c.heads << " i=" << h0 + i << " got=" << got);
        if (ss == 0 || c.xs[0].mant == 0) {
          REQUIRE(got == 0);
          continue;
        }
        const double want = std::clamp(32768.0 * v[size_t(i)] / std::sqrt(ss), -32767.0, 32767.0);
        const double bound = kL2Round + std::fabs(want) * (0.5 * std::sqrt(double(N)) + 1.01) / (1 << 22);
        INFO("want=" << want << " bound=" << bound);
        REQUIRE(std::fabs(double(got) - want) <= bound);
        worst = std::max(worst, std::fabs(double(got) - want) / bound);
        worst_abs = std::max(worst_abs, std::fabs(double(got) - want));
      }
    }
  }
  WARN("l2norm: worst error / bound " << worst << ", worst error " << worst_abs << " LSB");
}

TEST_CASE("rwkv: l2norm hand-computed", "[rwkv][accuracy]") {
  // (3, 4) / 5 = (0.6, 0.8): 19660.8 -> 19661, 26214.4 -> 26214; c = -1 flips the signs; a lone
  // element gives 2^15, clamped to 32767; mant 0 and an all-zero head give 0
  L2Case c;
  c.M = 1, c.n = 6, c.heads = 3;
  c.x = {3, 4, -3, 4, 0, 9};
  c.xs = {RowScale{1 << 14, 3}};
  c.c = {1 << 16, 1 << 16, -(1 << 16), -(1 << 16), INT32_MIN, 0};
  const Out o = run_l2(scalar(), c, {0, 1});
  const int16_t want[6] = {19661, 26214, 19661, -26214, 0, 0};
  for (int i = 0; i < 6; ++i) REQUIRE(i16_at(o, i) == want[i]);
  c.n = 2, c.heads = 2, c.c = {INT32_MIN, 7};
  const Out o2 = run_l2(scalar(), c, {0, 1});
  REQUIRE(i16_at(o2, 0) == -32767);
  REQUIRE(i16_at(o2, 1) == 32767);
  c.xs = {RowScale{0, 3}};
  const Out o3 = run_l2(scalar(), c, {0, 1});
  REQUIRE((i16_at(o3, 0) == 0 && i16_at(o3, 1) == 0));
}

TEST_CASE("rwkv: head_bonus accuracy vs y + v sum(p c) per head", "[rwkv][accuracy]") {
  Rng r(17);
  double worst = 0;
  for (int it = 0; it < 3000; ++it) {
    BonusCase c = random_bonus(r, 1, random_heads(r), false);
    // units near each other, or apart by up to 40 bits either way
    c.vs[0] = random_scale(r, 0, 20), c.ps[0] = random_scale(r, 0, 20);
    c.ys[0] = random_scale(r, 0, 0);
    c.ys[0].exp = int32_t(c.vs[0].exp + c.ps[0].exp + uniform(r, -40, 40));
    if (it % 3 == 0) c.c = random_i32(r, c.n, -(1 << 21), 1 << 21, false);   // around the clamp
    const Out o = run_bonus(scalar(), c, {0, 1});
    const int64_t N = c.n / c.heads;
    // exact T (int64) for d1, and the real values
    std::vector<int64_t> T(size_t(c.n));
    uint64_t Tmax = 0;
    for (int64_t h0 = 0; h0 < c.n; h0 += N) {
      int64_t s = 0;
      for (int64_t i = h0; i < h0 + N; ++i) s += int64_t{c.p[size_t(i)]} * std::clamp<int64_t>(c.c[size_t(i)], -(1 << 20), 1 << 20);
      for (int64_t i = h0; i < h0 + N; ++i) {
        T[size_t(i)] = c.v[size_t(i)] * s;
        Tmax = std::max<uint64_t>(Tmax, uint64_t(std::llabs(T[size_t(i)])));
      }
    }
    const int64_t mz = int64_t{c.vs[0].mant} * c.ps[0].mant;
    const bool hasZ = mz != 0 && Tmax != 0, hasY = c.ys[0].mant != 0;
    const int bl = Tmax ? 64 - __builtin_clzll(Tmax) : 0;
    const int64_t d1 = std::max(0, bl - 29);
    const double tunit = double(mz) * std::ldexp(1.0, -(c.vs[0].exp + c.ps[0].exp + 16));   // real of one T unit
    // the coarser unit of W (0 when only one of Y / Z is present: nothing is rounded there)
    const double uy = std::ldexp(1.0, -c.ys[0].exp), uz = std::ldexp(1.0, -int(c.vs[0].exp + c.ps[0].exp + 16 - d1));
    const double coarse = hasY && hasZ ? std::max(uy, uz) : 0;
    const double step = lsb(o.ys[0]);
    for (int64_t i = 0; i < c.n; ++i) {
      const double want = real(c.y[size_t(i)], c.ys[0]) + double(T[size_t(i)]) * tunit;
      const double got = qreal(o, c.qmax, c.n, 0, i);
      const double bound = kQuantStepErr * step + kScaleRelErr * std::fabs(want) + 0.5 * coarse +
                           (hasZ ? double(Tmax) * tunit * kBonusTRel : 0);
      INFO("it=" << it << " n=" << c.n << " H=" << c.heads << " i=" << i << " want=" << want << " got=" << got
                 << " bound=" << bound);
      REQUIRE(std::fabs(got - want) <= bound);
      if (bound > 0) worst = std::max(worst, std::fabs(got - want) / bound);
    }
  }
  WARN("head_bonus: worst error / bound " << worst);
}

TEST_CASE("rwkv: head_bonus hand-computed", "[rwkv][accuracy]") {
  // two heads of 2: s_0 = 1 * 2^16 + 2 * 2^15 = 2^17, s_1 = 3 * 2^16 + 4 * 0 = 3 * 2^16 (c = 1, 0.5, 1,
  // 0, real p = p * 2^14 * 2^-14 = p): real s = 2, 3. v real = v, y real = y: y + v s = (1 + 2 * 1,
  // 2 + 2 * -1, 3 + 3 * 2, -4 + 3 * 0) = (3, 0, 9, -4); int16 out: 9 -> 32767 steps, 3 -> 10922.33
  BonusCase c;
  c.M = 1, c.n = 4, c.heads = 2, c.qmax = 32767;
  c.y = {1, 2, 3, -4}, c.v = {1, -1, 2, 0}, c.p = {1, 2, 3, 4};
  c.ys = {RowScale{1 << 14, 14}}, c.vs = {RowScale{1 << 14, 14}}, c.ps = {RowScale{1 << 14, 14}};
  c.c = {1 << 16, 1 << 15, 1 << 16, 0};
  const Out o = run_bonus(scalar(), c, {0, 1});
  const double want[4] = {3, 0, 9, -4};
  for (int i = 0; i < 4; ++i)
    REQUIRE(std::fabs(qreal(o, c.qmax, c.n, 0, i) - want[i]) <= kQuantStepErr * lsb(o.ys[0]) + kScaleRelErr * std::fabs(want[i]));
  REQUIRE(i16_at(o, 2) == 32767);
  REQUIRE(i16_at(o, 1) == 0);
  // no Z (ps.mant 0): out = quantized y; no Y and no Z: zeros and a zero scale
  c.ps = {RowScale{0, 0}};
  const Out o2 = run_bonus(scalar(), c, {0, 1});
  for (int i = 0; i < 4; ++i)
    REQUIRE(std::fabs(qreal(o2, c.qmax, c.n, 0, i) - c.y[size_t(i)]) <= kQuantStepErr * lsb(o2.ys[0]) + kScaleRelErr * 4);
  c.ys = {RowScale{0, 0}};
  const Out o3 = run_bonus(scalar(), c, {0, 1});
  for (int i = 0; i < 4; ++i) REQUIRE(i16_at(o3, i) == 0);
  REQUIRE((o3.ys[0].mant == 0 && o3.ys[0].exp == 0));
}

// ---- (c) decode_mu --------------------------------------------------------------------------------

std::vector<int32_t> decode(const std::vector<uint8_t>& codes, const int8_t* cb, int bits, int64_t group, RowScale s,
                            int64_t n, bool* ok) {
  std::vector<int32_t> q(size_t(n), 0x5A5A5A5A);
  *ok = decode_mu(codes.data(), cb, bits, group, s, n, q.data());
  return q;
}

TEST_CASE("rwkv: decode_mu int8 codes", "[rwkv][decode_mu]") {
  const std::vector<uint8_t> codes{0x00, 0x01, 0x7F, 0x80, 0xFF, 0x02, 0xFE};   // 0 1 127 -128 -1 2 -2
  bool ok = false;
  // real = c * 2^14 * 2^-14 = c: Q16 = c * 2^16 (a left shift by 2)
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{1 << 14, 14}, 7, &ok) ==
          std::vector<int32_t>{0, 65536, 127 * 65536, -128 * 65536, -65536, 131072, -131072});
  REQUIRE(ok);
  // real = 3c / 4 in Q16 units (exp 18): rshift_round(3c, 2), halves up: 0.75 -> 1, -0.75 -> -1,
  // 95.25 -> 95, -96 -> -96, 1.5 -> 2, -1.5 -> -1
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{3, 18}, 7, &ok) == std::vector<int32_t>{0, 1, 95, -96, -1, 2, -1});
  // saturation: 127 * 2^15 * 2^116 (shift_s saturates at 2^62 - 1, then the int32 clamp)
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{1 << 15, -100}, 7, &ok) ==
          std::vector<int32_t>{0, INT32_MAX, INT32_MAX, INT32_MIN, INT32_MIN, INT32_MAX, INT32_MIN});
  // mant 0: all zero; far right shifts: 0
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{0, 5}, 7, &ok) == std::vector<int32_t>(7, 0));
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{1 << 15, 200}, 7, &ok) == std::vector<int32_t>(7, 0));
  REQUIRE(ok);
}

TEST_CASE("rwkv: decode_mu packed codebook indices", "[rwkv][decode_mu]") {
  // cb[g][j] = 10 g + j - 20 (distinct per group), 3 groups of 8 entries
  int8_t cb[3][16];
  for (int g = 0; g < 3; ++g)
    for (int j = 0; j < 16; ++j) cb[g][j] = int8_t(10 * g + j - 20);
  const RowScale s{1 << 14, 16};   // real = value / 4: Q16 = value * 2^14
  bool ok = false;
  {
    // 3 bits, indices 5 2 7 0 3 3 1 4 7 6 5 at bits 0, 3, ..., 30 (LSB first):
    //   byte 0 = 0b11 010 101 (the low 2 bits of index 2 = 7), byte 1 = 0b1 011 000 1 (index 2's
    //   top bit, index 3, index 4, index 5's low bit), byte 2 = 0b100 001 01, byte 3 = 0b01 110 111,
    //   byte 4 = 0b1 (index 10 = 5 straddles bytes 3 and 4)
    const std::vector<uint8_t> codes{0xD5, 0xB1, 0x85, 0x77, 0x01};
    const int idx[11] = {5, 2, 7, 0, 3, 3, 1, 4, 7, 6, 5};
    std::vector<int32_t> want;
    for (int i = 0; i < 11; ++i) want.push_back(cb[i / 4][idx[i]] * (1 << 14));   // group 4, 8 entries
    int8_t cb3[3][8];
    for (int g = 0; g < 3; ++g)
      for (int j = 0; j < 8; ++j) cb3[g][j] = cb[g][j];
    REQUIRE(decode(codes, &cb3[0][0], 3, 4, s, 11, &ok) == want);
    REQUIRE(ok);
    // n = 8: the stream ends exactly at byte 3 (an exact-size buffer: no read past it under ASan)
    const std::vector<uint8_t> codes8{0xD5, 0xB1, 0x85};
    want.resize(8);
    REQUIRE(decode(codes8, &cb3[0][0], 3, 4, s, 8, &ok) == want);
    REQUIRE(ok);
  }
  {
    // 2 bits, group 3: indices 1 3 0 2 | 2 1 3 -> 0b10 00 11 01, 0b11 01 10
    const std::vector<uint8_t> codes{0x8D, 0x36};
    int8_t cb2[3][4];
    for (int g = 0; g < 3; ++g)
      for (int j = 0; j < 4; ++j) cb2[g][j] = cb[g][j];
    const int idx[7] = {1, 3, 0, 2, 2, 1, 3};
    std::vector<int32_t> want;
    for (int i = 0; i < 7; ++i) want.push_back(cb2[i / 3][idx[i]] * (1 << 14));
    REQUIRE(decode(codes, &cb2[0][0], 2, 3, s, 7, &ok) == want);
    REQUIRE(ok);
  }
  {
    // 4 bits, group 2: indices 9 15 0 6 11 -> 0xF9, 0x60, 0x0B
    const std::vector<uint8_t> codes{0xF9, 0x60, 0x0B};
    const int idx[5] = {9, 15, 0, 6, 11};
    std::vector<int32_t> want;
    for (int i = 0; i < 5; ++i) want.push_back(cb[i / 2][idx[i]] * (1 << 14));
    REQUIRE(decode(codes, &cb[0][0], 4, 2, s, 5, &ok) == want);
    REQUIRE(ok);
  }
}

TEST_CASE("rwkv: decode_mu rejects bad arguments", "[rwkv][decode_mu]") {
  const std::vector<uint8_t> codes{1, 2, 3, 4};
  const int8_t cb[16] = {};
  const std::vector<int32_t> untouched(4, 0x5A5A5A5A);
  bool ok = true;
  for (int bits : {0, 1, 5, 6, 7, 9, 16, -3}) {
    REQUIRE(decode(codes, cb, bits, 1, RowScale{1 << 14, 16}, 4, &ok) == untouched);
    REQUIRE_FALSE(ok);
  }
  REQUIRE(decode(codes, cb, 3, 0, RowScale{1 << 14, 16}, 4, &ok) == untouched);                // group < 1
  REQUIRE_FALSE(ok);
  REQUIRE(decode(codes, nullptr, 8, -1, RowScale{1 << 14, 16}, 4, &ok) == untouched);
  REQUIRE_FALSE(ok);
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{-1, 16}, 4, &ok) == untouched);               // mant < 0
  REQUIRE_FALSE(ok);
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{(1 << 15) + 1, 16}, 4, &ok) == untouched);    // mant > 2^15
  REQUIRE_FALSE(ok);
  REQUIRE(decode(codes, nullptr, 3, 1, RowScale{1 << 14, 16}, 4, &ok) == untouched);          // codebook without cb
  REQUIRE_FALSE(ok);
  REQUIRE(decode(codes, cb, 8, 1, RowScale{1 << 14, 16}, 4, &ok) == untouched);               // int8 codes with a cb
  REQUIRE_FALSE(ok);
  // the limits themselves are valid
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{1 << 15, 16}, 4, &ok) == std::vector<int32_t>{1 << 15, 2 << 15, 3 << 15, 4 << 15});
  REQUIRE(ok);
  REQUIRE(decode(codes, nullptr, 8, 1, RowScale{0, 16}, 4, &ok) == std::vector<int32_t>(4, 0));
  REQUIRE(ok);
}

TEST_CASE("rwkv: dispatch honours FQ_ISA", "[rwkv]") { test::check_dispatch(rwkv_kernels, rwkv_kernel, "rwkv"); }

}  // namespace
}  // namespace fq::k
