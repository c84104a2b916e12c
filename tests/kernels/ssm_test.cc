// ssm family (fq/kernels/ssm.h):
//  (a) kSoftplusQ24 against double (every entry within 0.5 LSB) and the interpolated softplus;
//  (b) the scalar reference against an independent 128-bit model of the contract (bit for bit),
//      and against double-precision models of the real operators with the error bounds documented
//      in docs/accuracy.md ("Integer selective scan (ssm family)") enforced here: conv + SiLU, and
//      the selective scan vs a float64 recurrence fed with the same quantized inputs over 4096 steps;
//  (c) every compiled variant this machine may run (test::runnable) writes the same bytes as the
//      scalar reference over many shapes, channel / row splits, extreme values and exponents;
//  (d) prefill/decode identity: one call of M rows == M calls of one row (every output and the
//      carried state), and any channel split gives the same bytes as one unit.
#include "fq/kernels/ssm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "fq/kernels/fixed_point.h"
#include "kernel_test_util.h"

namespace fq::k {
namespace {

using i128 = __int128;
using test::Rng;
using test::uniform;

// ---- documented accuracy bounds (docs/accuracy.md, "Integer selective scan (ssm family)") -------
constexpr double kSoftplusTableErrLsb = 0.5 + 1e-6;  // kSoftplusQ24 entries, in Q24 LSBs
constexpr double kSoftplusAbsErr = 1.25e-4;          // interpolated softplus (dq), real units
constexpr double kConvAbsErr = 2.5e-5;               // conv+SiLU v / 2^32 vs double silu(z), given xf,
constexpr double kConvRelErr = 4e-5;                 //   abs + rel * |z| (real units of z)
constexpr double kScanRelErrY = 5e-4;                // scan yt vs float64 recurrence: rms err / rms y
constexpr double kScanErrGrowth = 1.5;               // rms err of the last 1024 steps / first 1024
constexpr double kScanOutErrLsb = 0.5 + 1e-2;        // scan_out y vs yt, in output LSBs (+ scale)

double lsb(RowScale s) { return double(s.mant) * std::ldexp(1.0, -s.exp); }
double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }

const SsmKernel& scalar() { return test::scalar_variant(ssm_kernels); }

RowScale random_scale(Rng& r, int emin, int emax, bool allow_zero = true) {
  if (allow_zero && uniform(r, 0, 15) == 0) return RowScale{};
  return RowScale{int32_t(uniform(r, 1 << 14, (1 << 15) - 1)), int32_t(uniform(r, emin, emax))};
}

// ---- independent 128-bit model of the contract (fq/kernels/ssm.h, written from the text) --------

i128 fdiv2(i128 x, int s) {  // floor(x / 2^s)
  const i128 d = i128{1} << s;
  i128 q = x / d;
  if (x % d != 0 && x < 0) q -= 1;
  return q;
}
i128 rsr(i128 x, int s) { return s == 0 ? x : fdiv2(x + (i128{1} << (s - 1)), s); }
i128 mshift(i128 x, int64_t s) {  // shift_s (saturating left, 0 beyond 62)
  if (s == 0) return x;
  if (s > 62) return 0;
  if (s > 0) return rsr(x, int(s));
  const i128 lim = (i128{1} << 62) - 1;
  if (x == 0) return 0;
  if (-s >= 62) return x < 0 ? -lim : lim;
  const i128 v = x * (i128{1} << -s);
  return v > lim ? lim : v < -lim ? -lim : v;
}
i128 clampi(i128 v, i128 lo, i128 hi) { return v < lo ? lo : v > hi ? hi : v; }
constexpr i128 kS31 = (i128{1} << 31) - 1;
i128 sat32(i128 v) { return clampi(v, -kS31 - 1, kS31); }

i128 model_sigmoid_v(i128 zq) {
  const i128 zc = clampi(rsr(zq, 4), -(i128{1} << 17), i128{1} << 17);
  const i128 E = exp_q(int64_t(zc < 0 ? zc : -zc), 12) >> 14;
  const i128 sig = zc >= 0 ? (i128{1} << 32) / ((i128{1} << 16) + E) : (E << 16) / ((i128{1} << 16) + E);
  return zq * sig;
}

i128 model_softplus(i128 xq) {
  if (xq >= (1 << 16)) return xq * 4096;
  if (xq < -(1 << 16)) return 0;
  const i128 j = xq + (1 << 16), i = j >> 8, r = j & 255;
  return kSoftplusQ24[int(i)] + rsr((i128{kSoftplusQ24[int(i) + 1]} - kSoftplusQ24[int(i)]) * r, 8);
}

// ---- cases ---------------------------------------------------------------------------------------

struct ConvCase {
  int64_t M = 1, C = 1;
  int K = 4;
  std::vector<int16_t> x, w;
  std::vector<RowScale> xs;
  std::vector<int32_t> bias, state;
  bool has_bias = true;
  int x_exp = 10, w_exp = 14, u_exp = 16, qmax = 127;
};
struct ConvOut {
  std::vector<int8_t> u;
  std::vector<RowScale> us;
  std::vector<int32_t> uf, state;
  std::vector<int64_t> v;
  bool operator==(const ConvOut& o) const {
    auto rs = [](const std::vector<RowScale>& a, const std::vector<RowScale>& b) {
      return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(RowScale)) == 0;
    };
    return u == o.u && rs(us, o.us) && uf == o.uf && state == o.state && v == o.v;
  }
};

ConvCase random_conv(Rng& r, int64_t M, int64_t C, int K, bool extreme) {
  ConvCase t;
  t.M = M, t.C = C, t.K = K;
  t.x_exp = int(uniform(r, -4, 28));
  t.w_exp = int(uniform(r, 4, 20));
  t.u_exp = int(uniform(r, 8, 40));
  t.qmax = uniform(r, 0, 3) == 0 ? int(uniform(r, 1, 127)) : 127;
  t.has_bias = uniform(r, 0, 3) != 0;
  const int16_t xl = extreme ? 32767 : int16_t(uniform(r, 1, 32767));
  t.x = test::random_vec<int16_t>(r, size_t(M * C), -xl, xl);
  t.w = test::random_vec<int16_t>(r, size_t(C * K), extreme ? -32768 : -3000, extreme ? 32767 : 3000);
  t.bias = test::random_vec<int32_t>(r, size_t(C), extreme ? INT32_MIN : -(1 << 20), extreme ? INT32_MAX : 1 << 20);
  t.state = test::random_vec<int32_t>(r, size_t((K - 1) * C), extreme ? INT32_MIN : -(1 << 18), extreme ? INT32_MAX : 1 << 18);
  for (int64_t m = 0; m < M; ++m) t.xs.push_back(random_scale(r, t.x_exp + 8, t.x_exp + (extreme ? 40 : 24)));
  if (extreme && uniform(r, 0, 3) == 0) {  // exponents at the contract's edges
    t.x_exp = int(uniform(r, -(1 << 20), 1 << 20));
    t.w_exp = int(uniform(r, -(1 << 20), 1 << 20));
    t.u_exp = int(uniform(r, -60, 100));
    for (auto& s : t.xs) s.exp = int32_t(uniform(r, -(1 << 20), 1 << 20));
  }
  if (extreme)
    for (auto& x : t.x)
      if (uniform(r, 0, 7) == 0) x = uniform(r, 0, 1) ? 32767 : -32768;
  return t;
}

SsmConvArgs conv_args(ConvCase& t, ConvOut& o) {
  o.u.assign(size_t(t.M * t.C), int8_t(0x5A));
  o.us.assign(size_t(t.M), RowScale{-1, -1});
  o.uf.assign(size_t(t.M * t.C), 0x5A5A5A5A);
  o.v.assign(size_t(t.M * t.C), 0x5A5A5A5A5A5A);
  o.state = t.state;
  SsmConvArgs a{};
  a.x = t.x.data(), a.xs = t.xs.data(), a.rows = t.M, a.channels = t.C, a.taps = t.K;
  a.w = t.w.data(), a.bias = t.has_bias ? t.bias.data() : nullptr;
  a.x_exp = t.x_exp, a.w_exp = t.w_exp, a.u_exp = t.u_exp, a.qmax = t.qmax;
  a.state = o.state.data(), a.u = o.u.data(), a.us = o.us.data(), a.uf = o.uf.data(), a.work = o.v.data();
  return a;
}

// Random split of [0, n) into consecutive units.
std::vector<int64_t> splits(Rng& r, int64_t n) {
  std::vector<int64_t> b{0};
  while (b.back() < n) b.push_back(std::min(n, b.back() + uniform(r, 1, std::max<int64_t>(1, n / 2))));
  return b;
}

// The conv over channel units cs, then conv_out over row units ms (each in random order: the units
// are independent).
ConvOut run_conv(const SsmKernel& k, ConvCase t, Rng* r) {
  ConvOut o;
  const SsmConvArgs a = conv_args(t, o);
  std::vector<int64_t> cs{0, t.C}, ms{0, t.M};
  if (r) cs = splits(*r, t.C), ms = splits(*r, t.M);
  for (size_t i = 0; i + 1 < cs.size(); ++i) k.conv(a, cs[i], cs[i + 1]);
  for (size_t i = ms.size() - 1; i > 0; --i) k.conv_out(a, ms[i - 1], ms[i]);
  return o;
}

// M calls of one row each (decode), the state carried.
ConvOut run_conv_decode(const SsmKernel& k, ConvCase t) {
  ConvOut o;
  SsmConvArgs a = conv_args(t, o);
  for (int64_t m = 0; m < t.M; ++m) {
    SsmConvArgs b = a;
    b.rows = 1, b.x = a.x + m * t.C, b.xs = a.xs + m, b.u = a.u + m * t.C, b.us = a.us + m;
    b.uf = a.uf + m * t.C, b.work = a.work + m * t.C;
    k.conv(b, 0, t.C);
    k.conv_out(b, 0, 1);
  }
  return o;
}

// The 128-bit model of conv + conv_out.
ConvOut model_conv(ConvCase t) {
  ConvOut o;
  conv_args(t, o);
  const int64_t C = t.C;
  const int K = t.K;
  std::vector<i128> hist;  // per channel: state rows then xf rows
  for (int64_t c = 0; c < C; ++c) {
    hist.assign(0, 0);
    for (int j = 0; j < K - 1; ++j) hist.push_back(t.state[size_t(j * C + c)]);
    for (int64_t m = 0; m < t.M; ++m) {
      const RowScale s = t.xs[size_t(m)];
      hist.push_back(sat32(mshift(i128{t.x[size_t(m * C + c)]} * s.mant, int64_t{s.exp} - t.x_exp)));
      i128 acc = t.has_bias ? t.bias[size_t(c)] : 0;
      for (int j = 0; j < K; ++j) acc += i128{t.w[size_t(c * K + j)]} * hist[hist.size() - K + j];
      const i128 zq = clampi(mshift(acc, int64_t{t.x_exp} + t.w_exp - 16), -kS31, kS31);
      const i128 v = model_sigmoid_v(zq);
      o.v[size_t(m * C + c)] = int64_t(v);
      o.uf[size_t(m * C + c)] = int32_t(sat32(mshift(v, 32 - int64_t{t.u_exp})));
    }
    for (int j = 0; j < K - 1; ++j) o.state[size_t(j * C + c)] = int32_t(hist[hist.size() - (K - 1) + j]);
  }
  for (int64_t m = 0; m < t.M; ++m) {
    int d = 0;
    const int64_t A = quantize_row(o.v.data() + m * C, C, t.qmax, o.u.data() + m * C, nullptr, &d);
    o.us[size_t(m)] = scale_of(A, t.qmax, d, 1, 32);
  }
  return o;
}

struct ScanCase {
  int64_t M = 1, C = 1, N = 16;
  std::vector<int32_t> u, a, d, h, dt_bias;   // dt_bias empty: nullptr
  std::vector<int16_t> dt, b, c;
  std::vector<RowScale> dts, bs, cs;
  std::vector<int8_t> h_exp;
  int u_exp = 20, a_frac = 16, y_exp = 24;
};
struct ScanOut {
  std::vector<int16_t> y;
  std::vector<RowScale> ys;
  std::vector<int32_t> h;
  std::vector<int64_t> yt;
  bool operator==(const ScanOut& o) const {
    return y == o.y && ys.size() == o.ys.size() &&
           std::memcmp(ys.data(), o.ys.data(), ys.size() * sizeof(RowScale)) == 0 && h == o.h && yt == o.yt;
  }
};

ScanCase random_scan(Rng& r, int64_t M, int64_t C, int64_t N, bool extreme) {
  ScanCase t;
  t.M = M, t.C = C, t.N = N;
  t.u_exp = int(uniform(r, 8, 28));
  t.a_frac = int(uniform(r, 8, 24));
  t.y_exp = int(uniform(r, 8, 30));
  const int32_t ul = extreme ? INT32_MAX : int32_t(uniform(r, 1, 1 << 26));
  t.u = test::random_vec<int32_t>(r, size_t(M * C), -ul, ul);
  t.dt = test::random_vec<int16_t>(r, size_t(M * C), extreme ? -32768 : -20000, extreme ? 32767 : 20000);
  t.b = test::random_vec<int16_t>(r, size_t(M * N), -32768, 32767);
  t.c = test::random_vec<int16_t>(r, size_t(M * N), -32768, 32767);
  t.a = test::random_vec<int32_t>(r, size_t(C * N), 0, extreme ? (1 << 24) - 1 : int64_t{1} << int(uniform(r, 4, 23)));
  t.d = test::random_vec<int32_t>(r, size_t(C), -(1 << 24) + 1, (1 << 24) - 1);
  t.h = test::random_vec<int32_t>(r, size_t(C * N), extreme ? INT32_MIN : -(1 << 24), extreme ? INT32_MAX : 1 << 24);
  t.h_exp = test::random_vec<int8_t>(r, size_t(C), extreme ? -128 : 8, extreme ? 127 : 28);
  if (uniform(r, 0, 3) != 0)
    t.dt_bias = test::random_vec<int32_t>(r, size_t(C), -(1 << 20), extreme ? 1 << 20 : 1 << 15);
  for (int64_t m = 0; m < M; ++m) {
    t.dts.push_back(random_scale(r, 12, extreme ? 40 : 30));
    t.bs.push_back(random_scale(r, 10, 30));
    t.cs.push_back(random_scale(r, 10, 30));
  }
  if (extreme && uniform(r, 0, 2) == 0) {  // exponents at (and beyond) the usual ranges
    t.u_exp = int(uniform(r, -100, 100));
    t.a_frac = int(uniform(r, -20, 60));
    t.y_exp = int(uniform(r, -100, 100));
    for (auto& s : t.bs) s.exp = int32_t(uniform(r, -(1 << 20), 1 << 20));
    for (auto& s : t.cs) s.exp = int32_t(uniform(r, -200, 200));
  }
  if (extreme)
    for (auto& x : t.dt)
      if (uniform(r, 0, 7) == 0) x = uniform(r, 0, 1) ? 32767 : -32768;
  return t;
}

SsmScanArgs scan_args(ScanCase& t, ScanOut& o) {
  o.y.assign(size_t(t.M * t.C), int16_t(0x5A5A));
  o.ys.assign(size_t(t.M), RowScale{-1, -1});
  o.yt.assign(size_t(t.M * t.C), 0x5A5A5A5A5A5A);
  o.h = t.h;
  SsmScanArgs a{};
  a.u = t.u.data(), a.dt = t.dt.data(), a.dts = t.dts.data(), a.b = t.b.data(), a.bs = t.bs.data();
  a.c = t.c.data(), a.cs = t.cs.data(), a.a = t.a.data(), a.d = t.d.data(), a.h_exp = t.h_exp.data();
  a.rows = t.M, a.channels = t.C, a.states = t.N;
  a.u_exp = t.u_exp, a.a_frac = t.a_frac, a.y_exp = t.y_exp;
  a.dt_bias = t.dt_bias.empty() ? nullptr : t.dt_bias.data();
  a.h = o.h.data(), a.y = o.y.data(), a.ys = o.ys.data(), a.work = o.yt.data();
  return a;
}

ScanOut run_scan(const SsmKernel& k, ScanCase t, Rng* r) {
  ScanOut o;
  const SsmScanArgs a = scan_args(t, o);
  std::vector<int64_t> cs{0, t.C}, ms{0, t.M};
  if (r) cs = splits(*r, t.C), ms = splits(*r, t.M);
  for (size_t i = cs.size() - 1; i > 0; --i) k.scan(a, cs[i - 1], cs[i]);
  for (size_t i = 0; i + 1 < ms.size(); ++i) k.scan_out(a, ms[i], ms[i + 1]);
  return o;
}

ScanOut run_scan_decode(const SsmKernel& k, ScanCase t) {
  ScanOut o;
  const SsmScanArgs a = scan_args(t, o);
  for (int64_t m = 0; m < t.M; ++m) {
    SsmScanArgs b = a;
    const int64_t C = t.C, N = t.N;
    b.rows = 1, b.u = a.u + m * C, b.dt = a.dt + m * C, b.dts = a.dts + m, b.b = a.b + m * N;
    b.bs = a.bs + m, b.c = a.c + m * N, b.cs = a.cs + m, b.y = a.y + m * C, b.ys = a.ys + m;
    b.work = a.work + m * C;
    k.scan(b, 0, C);
    k.scan_out(b, 0, 1);
  }
  return o;
}

ScanOut model_scan(ScanCase t) {
  ScanOut o;
  scan_args(t, o);
  const int64_t C = t.C, N = t.N;
  for (int64_t m = 0; m < t.M; ++m)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t k = m * C + c;
      const RowScale ds = t.dts[size_t(m)], bs = t.bs[size_t(m)], cs = t.cs[size_t(m)];
      const i128 bias = t.dt_bias.empty() ? 0 : t.dt_bias[size_t(c)];
      const i128 xq = clampi(mshift(i128{t.dt[size_t(k)]} * ds.mant, int64_t{ds.exp} - 12) + bias, -(1 << 17), 1 << 17);
      const i128 dq = model_softplus(xq);
      const i128 W = clampi(mshift(dq * t.u[size_t(k)], 24), -kS31, kS31);
      const int Eh = t.h_exp[size_t(c)];
      i128 ysum = 0;
      for (int64_t n = 0; n < N; ++n) {
        const i128 Bm = rsr(i128{t.b[size_t(m * N + n)]} * bs.mant, 14);
        const i128 Cm = rsr(i128{t.c[size_t(m * N + n)]} * cs.mant, 14);
        i128 tt = mshift(dq * t.a[size_t(c * N + n)], int64_t{t.a_frac} + 8);
        if (tt > (i128{1} << 40)) tt = i128{1} << 40;  // exp_q's range (0 long before)
        const i128 g = exp_q(-int64_t(tt), 16);
        const i128 bb = mshift(W * Bm, int64_t{t.u_exp} + bs.exp - 14 - Eh);
        int32_t& h = o.h[size_t(c * N + n)];
        h = int32_t(sat32(rsr(g * h, 30) + bb));
        ysum += Cm * h;
      }
      const i128 y = mshift(ysum, int64_t{Eh} + cs.exp - 14 - t.y_exp) +
                     mshift(i128{t.d[size_t(c)]} * t.u[size_t(k)], 16 + int64_t{t.u_exp} - t.y_exp);
      o.yt[size_t(k)] = int64_t(clampi(y, -(i128{1} << 61), i128{1} << 61));
    }
  for (int64_t m = 0; m < t.M; ++m) {
    int d = 0;
    const int64_t A = quantize_row(o.yt.data() + m * C, C, 32767, nullptr, o.y.data() + m * C, &d);
    o.ys[size_t(m)] = scale_of(A, 32767, d, 1, t.y_exp);
  }
  return o;
}

struct RqOut {
  std::vector<uint8_t> y;
  std::vector<RowScale> ys;
};
RqOut run_requant(const SsmKernel& k, const std::vector<int32_t>& x32, const std::vector<int16_t>& x16,
                  int in_bits, const std::vector<RowScale>& xs, int64_t M, int64_t n, int qmax, Rng* r) {
  RqOut o;
  o.y.assign(size_t(M * n * 2), 0x5A);
  o.ys.assign(size_t(M), RowScale{-1, -1});
  RequantArgs a{};
  a.x = in_bits == 16 ? static_cast<const void*>(x16.data()) : x32.data();
  a.in_bits = in_bits, a.xs = xs.data(), a.n = n, a.qmax = qmax, a.y = o.y.data(), a.ys = o.ys.data();
  std::vector<uint8_t> scratch(requant_scratch(n) + 3);
  std::vector<int64_t> ms{0, M};
  if (r) ms = splits(*r, M);
  for (size_t i = 0; i + 1 < ms.size(); ++i) k.requant(a, ms[i], ms[i + 1], scratch.data() + 3);
  return o;
}

// Shapes of the variant tests.
constexpr int64_t kChannels[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100};
constexpr int64_t kStates[] = {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 64, 100, 255, 256};
constexpr int kTaps[] = {2, 3, 4, 5, 7, 8, 16, 33, 64};

// ---- (a) tables ----------------------------------------------------------------------------------

TEST_CASE("ssm: kSoftplusQ24 matches double", "[ssm]") {
  for (int i = 0; i <= 512; ++i) {
    INFO("i=" << i);
    REQUIRE(std::fabs(double(kSoftplusQ24[i]) - std::ldexp(softplus(-16 + i / 16.0), 24)) <= kSoftplusTableErrLsb);
  }
}

TEST_CASE("ssm: interpolated softplus accuracy over every Q12 input", "[ssm][accuracy]") {
  // The model's dq is the contract's (the kernel matches the model bit for bit, below).
  double worst = 0;
  for (int64_t xq = -(1 << 17); xq <= (1 << 17); ++xq) {
    const double got = std::ldexp(double(model_softplus(xq)), -24);
    worst = std::max(worst, std::fabs(got - softplus(std::ldexp(double(xq), -12))));
  }
  WARN("softplus Q24 worst abs error " << worst);
  REQUIRE(worst <= kSoftplusAbsErr);
}

// ---- (b) scalar vs the 128-bit model and vs double ------------------------------------------------

TEST_CASE("ssm: scalar conv and scan match the 128-bit model", "[ssm]") {
  Rng r(1);
  for (int it = 0; it < 400; ++it) {
    const bool ext = it % 2 == 1;
    const int64_t M = uniform(r, 1, 6), C = kChannels[uniform(r, 0, 11)];
    const int K = kTaps[uniform(r, 0, 8)];
    INFO("conv it=" << it << " M=" << M << " C=" << C << " K=" << K);
    const ConvCase cc = random_conv(r, M, C, K, ext);
    REQUIRE(run_conv(scalar(), cc, nullptr) == model_conv(cc));
    const int64_t N = kStates[uniform(r, 0, 17)];
    INFO("scan N=" << N);
    const ScanCase sc = random_scan(r, M, C, N, ext);
    REQUIRE(run_scan(scalar(), sc, nullptr) == model_scan(sc));
  }
}

TEST_CASE("ssm: conv + SiLU accuracy vs double", "[ssm][accuracy]") {
  Rng r(2);
  double worst = 0;
  for (int it = 0; it < 300; ++it) {
    ConvCase t = random_conv(r, uniform(r, 1, 8), uniform(r, 1, 64), kTaps[uniform(r, 0, 5)], false);
    for (auto& s : t.xs) s.mant = s.mant ? s.mant : 20000;
    const ConvOut o = run_conv(scalar(), t, nullptr);
    // z in double from the quantized conv inputs xf (state rows, then the rows of the call).
    for (int64_t c = 0; c < t.C; ++c)
      for (int64_t m = 0; m < t.M; ++m) {
        double z = t.has_bias ? std::ldexp(double(t.bias[size_t(c)]), -(t.x_exp + t.w_exp)) : 0;
        for (int j = 0; j < t.K; ++j) {
          const int64_t row = m - t.K + 1 + j;
          double xf;
          if (row < 0) {
            xf = t.state[size_t((t.K - 1 + row) * t.C + c)];
          } else {
            const RowScale s = t.xs[size_t(row)];
            xf = double(saturate<int32_t>(shift_s(int64_t{t.x[size_t(row * t.C + c)]} * s.mant, s.exp - t.x_exp)));
          }
          z += std::ldexp(double(t.w[size_t(c * t.K + j)]) * xf, -(t.x_exp + t.w_exp));
        }
        if (std::fabs(z) >= std::ldexp(1.0, 15)) continue;  // zq saturates (outside the contract's scale)
        const double want = z / (1 + std::exp(-z));
        const double got = std::ldexp(double(o.v[size_t(m * t.C + c)]), -32);
        const double err = std::fabs(got - want) / (kConvAbsErr + kConvRelErr * std::fabs(z));
        worst = std::max(worst, err);
        INFO("z=" << z << " got=" << got << " want=" << want);
        REQUIRE(err <= 1.0);
      }
  }
  WARN("conv+SiLU worst error / bound " << worst);
}

// A Mamba-like channel set (S4D-real A_n = -(n + 1), D = 1) over T steps, against a float64
// recurrence fed with the same quantized inputs (u, dt, B, C as the kernel sees them).
TEST_CASE("ssm: scan accuracy vs a float64 recurrence over 4096 steps", "[ssm][accuracy]") {
  constexpr int64_t T = 4096, C = 8, N = 16;
  Rng r(3);
  std::normal_distribution<double> nd(0, 1);
  ScanCase t;
  t.M = T, t.C = C, t.N = N, t.u_exp = 20, t.a_frac = 16, t.y_exp = 24;
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n) t.a.push_back(int32_t((n + 1) << 16));
    t.d.push_back(1 << 16);
  }
  for (int64_t m = 0; m < T; ++m) {
    for (int64_t c = 0; c < C; ++c) {
      t.u.push_back(int32_t(std::lround(std::ldexp(nd(r), t.u_exp))));
      // dt_proj output in [-6, 1] (softplus: dt in [0.0025, 1.3]), channel-dependent mean
      t.dt.push_back(int16_t(std::lround((-5.0 + 0.5 * double(c) + 1.5 * nd(r) / 3) * 4096)));
    }
    t.dts.push_back(RowScale{16384, 26});  // 2^-12
    for (int64_t n = 0; n < N; ++n) {
      t.b.push_back(int16_t(std::lround(nd(r) * 8000)));
      t.c.push_back(int16_t(std::lround(nd(r) * 8000)));
    }
    t.bs.push_back(RowScale{16384 + int32_t(r() % 16384), 27});
    t.cs.push_back(RowScale{16384 + int32_t(r() % 16384), 27});
  }
  // float64 recurrence
  std::vector<double> hd(size_t(C * N), 0.0), yd(size_t(T * C)), hmax(size_t(C), 0.0);
  for (int64_t m = 0; m < T; ++m)
    for (int64_t c = 0; c < C; ++c) {
      const double u = std::ldexp(double(t.u[size_t(m * C + c)]), -t.u_exp);
      const double dt = softplus(double(t.dt[size_t(m * C + c)]) * lsb(t.dts[size_t(m)]));
      double y = u;  // D = 1
      for (int64_t n = 0; n < N; ++n) {
        const double A = -double(n + 1), B = t.b[size_t(m * N + n)] * lsb(t.bs[size_t(m)]);
        double& h = hd[size_t(c * N + n)];
        h = std::exp(dt * A) * h + dt * B * u;
        y += t.c[size_t(m * N + n)] * lsb(t.cs[size_t(m)]) * h;
        hmax[size_t(c)] = std::max(hmax[size_t(c)], std::fabs(h));
      }
      yd[size_t(m * C + c)] = y;
    }
  // the quantizer's state exponents: max |h| at 2^29 (2 bits of headroom)
  for (int64_t c = 0; c < C; ++c) t.h_exp.push_back(int8_t(std::floor(29 - std::log2(hmax[size_t(c)]))));
  t.h.assign(size_t(C * N), 0);
  const ScanOut o = run_scan(scalar(), t, nullptr);
  auto window = [&](int64_t m0, int64_t m1, double* err, double* ref) {
    double e2 = 0, y2 = 0;
    for (int64_t k = m0 * C; k < m1 * C; ++k) {
      const double got = std::ldexp(double(o.yt[size_t(k)]), -t.y_exp);
      e2 += (got - yd[size_t(k)]) * (got - yd[size_t(k)]);
      y2 += yd[size_t(k)] * yd[size_t(k)];
    }
    *err = std::sqrt(e2 / y2), *ref = std::sqrt(y2 / double((m1 - m0) * C));
  };
  double eall, efirst, elast, rms;
  window(0, T, &eall, &rms);
  window(0, 1024, &efirst, &rms);
  window(T - 1024, T, &elast, &rms);
  WARN("scan yt rel rms error: all " << eall << ", first 1024 " << efirst << ", last 1024 " << elast);
  REQUIRE(eall <= kScanRelErrY);
  REQUIRE(elast <= kScanErrGrowth * efirst);
  // scan_out: y * ys vs yt within half an output LSB
  for (int64_t m = 0; m < T; ++m)
    for (int64_t c = 0; c < C; ++c) {
      const RowScale s = o.ys[size_t(m)];
      const double got = o.y[size_t(m * C + c)] * lsb(s), want = std::ldexp(double(o.yt[size_t(m * C + c)]), -t.y_exp);
      REQUIRE(std::fabs(got - want) <= kScanOutErrLsb * lsb(s) + std::fabs(want) * 2.0 / 16384);
    }
}

// ---- (c) variants bit-exact and (d) the identities ------------------------------------------------

TEST_CASE("ssm: conv variants bit-exact, prefill == decode, any split", "[ssm][variants]") {
  Rng r(4);
  size_t nk = 0;
  const SsmKernel* const* ks = ssm_kernels(&nk);
  for (int it = 0; it < 600; ++it) {
    const int64_t M = it % 5 == 0 ? 1 : uniform(r, 1, 9), C = kChannels[uniform(r, 0, 11)];
    const int K = kTaps[uniform(r, 0, 8)];
    const ConvCase t = random_conv(r, M, C, K, it % 3 == 0);
    const ConvOut want = run_conv(scalar(), t, nullptr);
    for (size_t v = 0; v < nk; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      INFO(ks[v]->name << " it=" << it << " M=" << M << " C=" << C << " K=" << K);
      REQUIRE(run_conv(*ks[v], t, nullptr) == want);
      REQUIRE(run_conv(*ks[v], t, &r) == want);
      REQUIRE(run_conv_decode(*ks[v], t) == want);
    }
  }
}

TEST_CASE("ssm: scan variants bit-exact, prefill == decode, any split", "[ssm][variants]") {
  Rng r(5);
  size_t nk = 0;
  const SsmKernel* const* ks = ssm_kernels(&nk);
  for (int it = 0; it < 600; ++it) {
    const int64_t M = it % 5 == 0 ? 1 : uniform(r, 1, 9), C = kChannels[uniform(r, 0, 11)];
    const int64_t N = it % 4 == 0 ? 16 : kStates[uniform(r, 0, 17)];
    const ScanCase t = random_scan(r, M, C, N, it % 3 == 0);
    const ScanOut want = run_scan(scalar(), t, nullptr);
    for (size_t v = 0; v < nk; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      INFO(ks[v]->name << " it=" << it << " M=" << M << " C=" << C << " N=" << N);
      REQUIRE(run_scan(*ks[v], t, nullptr) == want);
      REQUIRE(run_scan(*ks[v], t, &r) == want);
      REQUIRE(run_scan_decode(*ks[v], t) == want);
    }
  }
}

// dt at the edges of the softplus table (xq = dt + dt_bias with dts = 2^14 * 2^-26): the variants
// that compute scan_ch for several channels at once (gathers, lane masks) against the scalar one.
TEST_CASE("ssm: scan variants at the softplus edges", "[ssm][variants]") {
  Rng r(8);
  size_t nk = 0;
  const SsmKernel* const* ks = ssm_kernels(&nk);
  constexpr int32_t k16 = 1 << 16, k17 = 1 << 17;
  const int32_t xqs[] = {-(1 << 20), -k17 - 1, -k17, -k16 - 1, -k16, -k16 + 1, -257, -256, -255, -1, 0, 1,
                         255, 256, 257, k16 - 256, k16 - 1, k16, k16 + 1, k17 - 1, k17, 1 << 20};
  constexpr int64_t nx = sizeof(xqs) / sizeof(xqs[0]);
  for (int it = 0; it < 40; ++it) {
    const int64_t M = uniform(r, 1, 3), C = nx + uniform(r, 0, 9), N = kStates[uniform(r, 0, 17)];
    ScanCase t = random_scan(r, M, C, N, it % 2 == 1);
    t.dt_bias.assign(size_t(C), 0);
    for (int64_t c = 0; c < C; ++c) t.dt_bias[size_t(c)] = xqs[(c + it) % nx];
    for (auto& s : t.dts) s = RowScale{1 << 14, 26};
    for (auto& x : t.dt) x = int16_t(uniform(r, -2, 2));
    const ScanOut want = run_scan(scalar(), t, nullptr);
    for (size_t v = 0; v < nk; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      INFO(ks[v]->name << " it=" << it << " M=" << M << " C=" << C << " N=" << N);
      REQUIRE(run_scan(*ks[v], t, &r) == want);
    }
  }
}

TEST_CASE("ssm: requant variants bit-exact and vs quantize_row", "[ssm][variants]") {
  Rng r(6);
  size_t nk = 0;
  const SsmKernel* const* ks = ssm_kernels(&nk);
  for (int it = 0; it < 500; ++it) {
    const int64_t M = uniform(r, 1, 5), n = uniform(r, 1, 300);
    const int in_bits = it % 2 ? 16 : 32;
    const int qmax = it % 4 < 2 ? 127 : it % 4 == 2 ? 32767 : int(uniform(r, 1, 32767));
    const int bits = int(uniform(r, 0, in_bits == 16 ? 15 : 31));
    std::vector<int32_t> x32 = test::random_vec<int32_t>(r, size_t(M * n), -(int64_t{1} << bits), (int64_t{1} << bits) - 1);
    if (it % 7 == 0) x32[0] = INT32_MIN;
    if (it % 11 == 0) std::fill(x32.begin(), x32.begin() + n, 0);
    std::vector<int16_t> x16(x32.size());
    for (size_t i = 0; i < x32.size(); ++i) x16[i] = saturate<int16_t>(x32[i]);
    std::vector<RowScale> xs;
    for (int64_t m = 0; m < M; ++m) xs.push_back(random_scale(r, -40, 60));
    const RqOut want = run_requant(scalar(), x32, x16, in_bits, xs, M, n, qmax, nullptr);
    for (int64_t m = 0; m < M; ++m) {  // the contract, via quantize_row
      std::vector<int64_t> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[size_t(i)] = in_bits == 16 ? x16[size_t(m * n + i)] : x32[size_t(m * n + i)];
      std::vector<int8_t> q8(static_cast<size_t>(n));
      std::vector<int16_t> q16(static_cast<size_t>(n));
      int d = 0;
      const int64_t A = quantize_row(v.data(), n, qmax, q8.data(), q16.data(), &d);
      const RowScale s = scale_of(A, qmax, d, xs[size_t(m)].mant, xs[size_t(m)].exp);
      REQUIRE(want.ys[size_t(m)].mant == s.mant);
      REQUIRE(want.ys[size_t(m)].exp == s.exp);
      if (qmax <= 127) REQUIRE(std::memcmp(want.y.data() + m * n, q8.data(), size_t(n)) == 0);
      else REQUIRE(std::memcmp(want.y.data() + 2 * m * n, q16.data(), size_t(2 * n)) == 0);
    }
    for (size_t v = 0; v < nk; ++v) {
      if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
      INFO(ks[v]->name << " it=" << it << " n=" << n << " qmax=" << qmax << " bits=" << in_bits);
      const RqOut got = run_requant(*ks[v], x32, x16, in_bits, xs, M, n, qmax, &r);
      REQUIRE(got.y == want.y);
      REQUIRE(std::memcmp(got.ys.data(), want.ys.data(), size_t(M) * sizeof(RowScale)) == 0);
    }
  }
}

// A long decode (many calls, state carried) vs one prefill call, per variant, on the accuracy-test
// kind of data: catches a state leak that short random cases could miss.
TEST_CASE("ssm: long sequences, prefill == decode per variant", "[ssm][variants]") {
  Rng r(7);
  size_t nk = 0;
  const SsmKernel* const* ks = ssm_kernels(&nk);
  const ScanCase t = random_scan(r, 200, 33, 16, false);
  const ConvCase cv = random_conv(r, 200, 33, 4, false);
  const ScanOut ws = run_scan(scalar(), t, nullptr);
  const ConvOut wc = run_conv(scalar(), cv, nullptr);
  for (size_t v = 0; v < nk; ++v) {
    if (!test::runnable(ks[v]->isa, ks[v]->name)) continue;
    INFO(ks[v]->name);
    REQUIRE(run_scan_decode(*ks[v], t) == ws);
    REQUIRE(run_scan(*ks[v], t, &r) == ws);
    REQUIRE(run_conv_decode(*ks[v], cv) == wc);
  }
}

TEST_CASE("ssm: dispatch honours FQ_ISA", "[ssm]") { test::check_dispatch(ssm_kernels, ssm_kernel, "ssm"); }

}  // namespace
}  // namespace fq::k
