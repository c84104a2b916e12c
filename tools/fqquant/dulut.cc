// DULUT fitter (see dulut.h). Float code: offline only, never linked into the integer path.
#include "dulut.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace fq::quant {

namespace {
constexpr double kPi = 3.14159265358979323846;
constexpr int kPosMax = 65535;  // positions are 16-bit

int64_t rsr(int64_t x, int s) { return s == 0 ? x : (x + (int64_t{1} << (s - 1))) >> s; }
int64_t sat(int64_t v, int bits) {
  const int64_t hi = (int64_t{1} << (bits - 1)) - 1, lo = -hi - 1;
  return v < lo ? lo : v > hi ? hi : v;
}
}  // namespace

const char* act_name(ActFn f) {
  switch (f) {
    case ActFn::silu: return "silu";
    case ActFn::gelu_erf: return "gelu";
    case ActFn::gelu_tanh: return "gelu_tanh";
    case ActFn::sigmoid: return "sigmoid";
    case ActFn::tanh: return "tanh";
    case ActFn::softplus: return "softplus";
    case ActFn::exp: return "exp";
    case ActFn::reciprocal: return "reciprocal";
    case ActFn::rsqrt: return "rsqrt";
    case ActFn::erf: return "erf";
    case ActFn::hardswish: return "hardswish";
    case ActFn::mish: return "mish";
    case ActFn::exp_full: return "exp_full";
  }
  return "?";
}

bool parse_act(const std::string& name, ActFn* f) {
  for (ActFn a : kAllActFns)
    if (name == act_name(a)) { *f = a; return true; }
  for (ActFn a : kExtraActFns)
    if (name == act_name(a)) { *f = a; return true; }
  return false;
}

double act_eval(ActFn f, double x) {
  switch (f) {
    case ActFn::silu: return x / (1.0 + std::exp(-x));
    case ActFn::gelu_erf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case ActFn::gelu_tanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * x * x * x)));
    case ActFn::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case ActFn::tanh: return std::tanh(x);
    case ActFn::softplus: return x > 30 ? x : std::log1p(std::exp(x));
    case ActFn::exp: return std::exp(std::min(x, 0.0));
    case ActFn::reciprocal: return x > 0 ? 1.0 / x : std::numeric_limits<double>::infinity();
    case ActFn::rsqrt: return x > 0 ? 1.0 / std::sqrt(x) : std::numeric_limits<double>::infinity();
    case ActFn::erf: return std::erf(x);
    case ActFn::hardswish: return x * std::min(6.0, std::max(0.0, x + 3.0)) / 6.0;
    case ActFn::mish: return x * std::tanh(x > 30 ? x : std::log1p(std::exp(x)));
    case ActFn::exp_full: return std::exp(x);
  }
  return 0;
}

DulutSpec dulut_default_spec(ActFn f, int bits, int k1, int k2) {
  double in_range = 8, out_range = 8;
  switch (f) {
    case ActFn::sigmoid: out_range = 1; break;
    case ActFn::tanh: in_range = 4; out_range = 1; break;
    case ActFn::exp: in_range = 16; out_range = 1; break;
    case ActFn::reciprocal: out_range = 16; break;
    default: break;
  }
  DulutSpec s;
  s.fn = f;
  s.in_bits = s.out_bits = bits;
  s.in_scale = in_range / double(int64_t{1} << (bits - 1));
  s.out_scale = out_range / double((int64_t{1} << (bits - 1)) - 1);
  s.k1 = k1;
  s.k2 = k2;
  return s;
}

double dulut_target(const DulutSpec& s, int32_t x) {
  const double hi = double((int64_t{1} << (s.out_bits - 1)) - 1), lo = -hi - 1;
  const double v = act_eval(s.fn, double(x) * s.in_scale) / s.out_scale;
  return v < lo ? lo : v > hi ? hi : v;  // +-infinity saturate too
}

int32_t dulut_eval(const DulutTables& t, int32_t x) {
  const int b = t.in_bits, s1 = b - t.k1, F = 16 - t.k2;
  const int64_t u = int64_t{x} + (int64_t{1} << (b - 1));
  const int64_t i = u >> s1, f = u & ((int64_t{1} << s1) - 1);
  const int64_t P = int64_t{t.b1[size_t(i)]} * 65536 + int64_t{t.d1[size_t(i)]} * (f << (16 - s1));
  const int64_t j = (P >> 16) >> F, q = (P >> (F + 1)) & 32767;
  const int64_t v = t.b2[size_t(j)] + rsr(int64_t{t.d2[size_t(j)]} * q, 15);
  return int32_t(sat(rsr(v, t.g), t.out_bits));
}

bool to_kernel_table(const DulutTables& t, fq::k::LutTable* out) {
  if (t.k1 < 1 || t.k1 > fq::k::kLutMaxLog2 || t.k2 < 1 || t.k2 > fq::k::kLutMaxLog2) return false;
  fq::k::LutTable k;
  k.in_bits = uint8_t(t.in_bits);
  k.out_bits = uint8_t(t.out_bits);
  k.k1 = uint8_t(t.k1);
  k.k2 = uint8_t(t.k2);
  k.g = uint8_t(t.g);
  std::copy(t.b1.begin(), t.b1.end(), k.b1);
  std::copy(t.d1.begin(), t.d1.end(), k.d1);
  std::copy(t.b2.begin(), t.b2.end(), k.b2);
  std::copy(t.d2.begin(), t.d2.end(), k.d2);
  if (!fq::k::lut_valid(k)) return false;
  *out = k;
  return true;
}

ErrStats dulut_error(const DulutSpec& s, const DulutTables& t) {
  ErrStats e;
  const int32_t lo = -(1 << (s.in_bits - 1)), hi = (1 << (s.in_bits - 1)) - 1;
  double sum = 0;
  for (int32_t x = lo; x <= hi; ++x) {
    const double d = std::fabs(dulut_eval(t, x) - dulut_target(s, x));
    sum += d;
    if (d > e.max) { e.max = d; e.worst_x = x; }
  }
  e.mean = sum / double(hi - lo + 1);
  return e;
}

namespace {

// Everything the fit of one table shape needs, computed once per spec.
struct Fitter {
  const DulutSpec& s;
  int b, s1, F, G, n1, n2, ncodes;
  std::vector<double> target;   // T(x) in output LSB, by code u = x + 2^(b-1)
  std::vector<uint16_t> seg, frac;  // scratch: value segment j and Q15 fraction q of each code

  Fitter(const DulutSpec& spec, int k1, int k2)
      : s(spec), b(spec.in_bits), s1(spec.in_bits - k1), F(16 - k2), G(spec.out_bits == 8 ? 7 : 0),
        n1(1 << k1), n2(1 << k2), ncodes(1 << spec.in_bits) {
    target.resize(size_t(ncodes));
    seg.resize(size_t(ncodes));
    frac.resize(size_t(ncodes));
    for (int u = 0; u < ncodes; ++u) target[size_t(u)] = dulut_target(s, u - ncodes / 2);
  }

  double tcont(double u) const {  // T at a real code position (for curvature sampling)
    const double hi = double((int64_t{1} << (s.out_bits - 1)) - 1), lo = -hi - 1;
    const double v = act_eval(s.fn, (u - ncodes / 2) * s.in_scale) / s.out_scale;
    return v < lo ? lo : v > hi ? hi : v;
  }

  DulutTables empty(int k1, int k2) const {
    DulutTables t;
    t.in_bits = s.in_bits;
    t.out_bits = s.out_bits;
    t.k1 = k1;
    t.k2 = k2;
    t.g = G;
    t.b1.assign(size_t(1) << k1, 0);
    t.d1.assign(size_t(1) << k1, 0);
    t.b2.assign(size_t(1) << k2, 0);
    t.d2.assign(size_t(1) << k2, 0);
    return t;
  }

  // Exact integer error of one segment line over codes [ua, ub): max and sum of |y - T|.
  void seg_error(int16_t B, int16_t D, int ua, int ub, double* mx, double* sum) const {
    double m = 0, su = 0;
    for (int u = ua; u < ub; ++u) {
      const int64_t y = sat(rsr(B + rsr(int64_t{D} * frac[size_t(u)], 15), G), s.out_bits);
      const double d = std::fabs(double(y) - target[size_t(u)]);
      m = std::max(m, d);
      su += d;
    }
    *mx = m;
    *sum = su;
  }

  // Minimax line for value segment j over codes [ua, ub) (pos[] already set), then an exact
  // integer polish. Returns the segment's max error; adds its error sum to *sum.
  double fit_segment(DulutTables& t, int j, int ua, int ub, double* sum) const {
    const double unit = double(1 << G), rs = 1.0 / 32768.0;
    if (ua >= ub) {  // no code lands here: continue the previous segment's end, flat
      const int16_t prev = j > 0 ? int16_t(std::clamp(t.b2[size_t(j - 1)] + t.d2[size_t(j - 1)], -32768, 32767)) : 0;
      t.b2[size_t(j)] = prev;
      t.d2[size_t(j)] = 0;
      return 0;
    }
    auto range = [&](double D, double* lo, double* hi) {
      double a = 1e300, z = -1e300;
      for (int u = ua; u < ub; ++u) {
        const double res = target[size_t(u)] * unit - D * double(frac[size_t(u)]) * rs;
        a = std::min(a, res);
        z = std::max(z, res);
      }
      *lo = a;
      *hi = z;
    };
    // Bracket the rise around the chord of the segment's end points.
    const double r0 = double(frac[size_t(ua)]) * rs, r1 = double(frac[size_t(ub - 1)]) * rs;
    double chord = 0;
    if (r1 > r0) chord = (target[size_t(ub - 1)] - target[size_t(ua)]) * unit / (r1 - r0);
    double span = 0;
    for (int u = ua; u < ub; ++u) span = std::max(span, std::fabs(target[size_t(u)] - target[size_t(ua)]) * unit);
    double a = std::max(-40000.0, chord - 4 * span - 4), z = std::min(40000.0, chord + 4 * span + 4);
    if (ub - ua > 1 && r1 > r0) {
      for (int it = 0; it < 48 && z - a > 0.05; ++it) {
        const double m1 = a + (z - a) / 3, m2 = z - (z - a) / 3;
        double l1, h1, l2, h2;
        range(m1, &l1, &h1);
        range(m2, &l2, &h2);
        if (h1 - l1 <= h2 - l2) z = m2; else a = m1;
      }
    } else {
      a = z = 0;
    }
    double lo, hi;
    const double D = 0.5 * (a + z);
    range(D, &lo, &hi);
    const double B = 0.5 * (lo + hi);
    int bestB = int(std::lround(B)), bestD = int(std::lround(D));
    double best = 1e300, bestsum = 0;
    const int rad = G == 0 ? 2 : 1;
    const int cb = bestB, cd = bestD;
    for (int db = -rad; db <= rad; ++db)
      for (int dd = -rad; dd <= rad; ++dd) {
        const int Bi = std::clamp(cb + db, -32768, 32767);
        const int Di = std::clamp(cd + dd, -32768 - Bi, 32767 - Bi);
        if (Di < -32768 || Di > 32767) continue;
        double m, su;
        seg_error(int16_t(Bi), int16_t(Di), ua, ub, &m, &su);
        if (m < best - 1e-12 || (m < best + 1e-12 && su < bestsum)) {
          best = m;
          bestsum = su;
          bestB = Bi;
          bestD = Di;
        }
      }
    t.b2[size_t(j)] = int16_t(bestB);
    t.d2[size_t(j)] = int16_t(bestD);
    *sum += bestsum;
    return best;
  }

  // Positions of every code for the warp in t; then the value table. Returns (max, mean).
  ErrStats fit_values(DulutTables& t) {
    for (int u = 0; u < ncodes; ++u) {
      const int i = u >> s1, f = u & ((1 << s1) - 1);
      const int64_t P = int64_t{t.b1[size_t(i)]} * 65536 + int64_t{t.d1[size_t(i)]} * (int64_t{f} << (16 - s1));
      seg[size_t(u)] = uint16_t((P >> 16) >> F);
      frac[size_t(u)] = uint16_t((P >> (F + 1)) & 32767);
    }
    // Monotone warp: the codes of value segment j are one contiguous run.
    ErrStats e;
    double sum = 0;
    int u = 0;
    for (int j = 0; j < n2; ++j) {
      const int ua = u;
      while (u < ncodes && seg[size_t(u)] == j) ++u;
      const double m = fit_segment(t, j, ua, u, &sum);
      e.max = std::max(e.max, m);
    }
    e.mean = sum / ncodes;
    return e;
  }

  // The warp from per-segment densities (positions per code), scaled to fill [0, 65535].
  void warp_from_density(DulutTables& t, std::vector<double> dens) const {
    const double w = double(1 << s1);
    // Cap each segment's rise at 65535 (d1 is uint16): fix the capped ones, rescale the rest.
    for (int it = 0; it < 8; ++it) {
      double total = 0;
      for (double d : dens) total += d * w;
      const double scale = kPosMax / total;
      bool capped = false;
      for (double& d : dens) {
        d *= scale;
        if (d * w > 65535) { d = 65535 / w; capped = true; }
      }
      if (!capped) break;
    }
    double c = 0;
    int64_t prev = 0;
    for (int i = 0; i < n1; ++i) {
      c += dens[size_t(i)] * w;
      const int64_t next = i == n1 - 1 ? kPosMax : std::min<int64_t>(kPosMax, std::llround(c));
      t.b1[size_t(i)] = uint16_t(prev);
      t.d1[size_t(i)] = uint16_t(std::min<int64_t>(65535, next - prev));
      prev = prev + t.d1[size_t(i)];
    }
  }
};

bool better(const ErrStats& a, const ErrStats& b) {
  return a.max < b.max - 1e-9 || (a.max < b.max + 1e-9 && a.mean < b.mean);
}

}  // namespace

DulutTables fit_dulut(const DulutSpec& s) {
  Fitter fit(s, s.k1, s.k2);
  const int n1 = fit.n1;
  const double w = double(1 << fit.s1);
  // Curvature and slope per input segment, sampled on a grid of 64 points per segment.
  std::vector<double> curv(static_cast<size_t>(n1)), slope(static_cast<size_t>(n1));
  const int kSamples = 64;
  for (int i = 0; i < n1; ++i) {
    const double h = w / kSamples;
    double c = 0, sl = 0;
    for (int q = 0; q <= kSamples; ++q) {
      // (inside the code range only: the target beyond the last code is not approximated)
      const double u = std::clamp(i * w + q * h, h, double(fit.ncodes - 1) - h);
      const double ym = fit.tcont(u - h), y0 = fit.tcont(u), yp = fit.tcont(u + h);
      c = std::max(c, std::fabs(yp - 2 * y0 + ym) / (h * h));
      sl = std::max(sl, std::fabs(yp - ym) / (2 * h));
    }
    curv[size_t(i)] = c;
    slope[size_t(i)] = sl;
  }
  double slope_total = 0;
  for (double v : slope) slope_total += v * w;

  DulutTables best = fit.empty(s.k1, s.k2);
  ErrStats best_e;
  best_e.max = 1e300;
  // Candidates: slope floor lambda, curvature exponent alpha, a constant density floor mu (as a
  // fraction of the mean density: a value segment that spans several warp segments is only
  // linear in x where their densities agree, so low-curvature runs get one flat density), and
  // a neighbour smoothing of the curvature over 0, 1 or 2 segments each side.
  const double lambdas[] = {0, 0.5, 1};
  const double alphas[] = {0.5, 0.33};
  const double mus[] = {0, 0.1, 0.25, 0.5};
  const double mean_dens = kPosMax / double(fit.ncodes);
  for (int smooth = 0; smooth < 3; ++smooth) {
    std::vector<double> c = curv;
    for (int i = 0; i < n1; ++i)
      for (int o = -smooth; o <= smooth; ++o)
        if (i + o >= 0 && i + o < n1) c[size_t(i)] = std::max(c[size_t(i)], curv[size_t(i + o)]);
    double cmax = 0;
    for (double v : c) cmax = std::max(cmax, v);
    for (double alpha : alphas)
      for (double mu : mus)
      for (double lambda : lambdas) {
        // Slope floor (at most 90% of the positions), then the curvature share by bisection on K.
        double lam = lambda;
        if (lam * slope_total > 0.9 * kPosMax) lam = 0.9 * kPosMax / slope_total;
        auto dens_for = [&](double K) {
          std::vector<double> d(static_cast<size_t>(n1));
          for (int i = 0; i < n1; ++i)
            d[size_t(i)] = std::max({K * std::pow(c[size_t(i)] + 1e-12 * cmax + 1e-300, alpha),
                                     lam * slope[size_t(i)], mu * mean_dens, 1e-6});
          return d;
        };
        double klo = 0, khi = 1;
        auto total = [&](double K) {
          double t = 0;
          for (double d : dens_for(K)) t += d * w;
          return t;
        };
        while (total(khi) < kPosMax && khi < 1e300) khi *= 4;
        for (int it = 0; it < 60; ++it) {
          const double km = 0.5 * (klo + khi);
          (total(km) < kPosMax ? klo : khi) = km;
        }
        DulutTables t = fit.empty(s.k1, s.k2);
        fit.warp_from_density(t, dens_for(khi));
        const ErrStats e = fit.fit_values(t);
        if (better(e, best_e)) {
          best_e = e;
          best = t;
        }
      }
  }
  // Aligned candidate: every value segment lies inside one warp segment or inside a run of warp
  // segments of one density (so each value segment is exactly linear in x). A warp segment gets
  // m >= 1 whole value segments, or g >= 2 consecutive warp segments share one; the split that
  // reaches the smallest estimated error E = C L^2 / 16 with N2 value segments is found by a DP
  // over the warp segments inside a bisection on E.
  {
    const int F = fit.F, mcap = std::max(1, 65535 >> F), n2 = fit.n2;
    std::vector<int> cnt(size_t(n1) + 1), nxt(size_t(n1) + 1), mm(size_t(n1) + 1);
    auto m_for = [&](int a, double E) {
      return std::max(1, int(std::ceil(w * std::sqrt(curv[size_t(a)] / (16 * E)) - 1e-9)));
    };
    auto dp = [&](double E) {
      cnt[size_t(n1)] = 0;
      for (int a = n1 - 1; a >= 0; --a) {
        const int m = m_for(a, E);
        cnt[size_t(a)] = m <= mcap ? m + cnt[size_t(a + 1)] : (1 << 20);
        nxt[size_t(a)] = a + 1;
        mm[size_t(a)] = std::min(m, mcap);
        double cm = curv[size_t(a)];
        for (int b = a + 2; b <= n1; ++b) {
          cm = std::max(cm, curv[size_t(b - 1)]);
          if (cm * ((b - a) * w) * ((b - a) * w) / 16 > E) break;
          // (power-of-two runs: each of their warp segments then rises by exactly 2^F / g)
          if (((b - a) & (b - a - 1)) == 0 && 1 + cnt[size_t(b)] <= cnt[size_t(a)]) {
            cnt[size_t(a)] = 1 + cnt[size_t(b)];
            nxt[size_t(a)] = b;
            mm[size_t(a)] = 1;
          }
        }
      }
      return cnt[0];
    };
    double elo = 1e-9, ehi = 1e9;
    for (int it = 0; it < 80; ++it) {
      const double em = std::sqrt(elo * ehi);
      (dp(em) <= n2 ? ehi : elo) = em;
    }
    if (dp(ehi) <= n2) {
      // Runs, then the spare value segments to the single runs with the largest estimate.
      struct Run { int a, b, m; };
      std::vector<Run> runs;
      for (int a = 0; a < n1; a = nxt[size_t(a)]) runs.push_back({a, nxt[size_t(a)], mm[size_t(a)]});
      int used = 0;
      for (const Run& r : runs) used += r.m;
      while (used < n2) {
        int bi = -1;
        double be = -1;
        for (size_t q = 0; q < runs.size(); ++q) {
          const Run& r = runs[q];
          if (r.b != r.a + 1 || r.m >= mcap) continue;
          const double e = curv[size_t(r.a)] * (w / r.m) * (w / r.m);
          if (e > be) { be = e; bi = int(q); }
        }
        if (bi < 0) break;
        ++runs[size_t(bi)].m;
        ++used;
      }
      DulutTables t = fit.empty(s.k1, s.k2);
      int64_t v = 0;
      const int64_t unit = int64_t{1} << F;
      for (const Run& r : runs) {
        const int g = r.b - r.a;
        for (int k = 0; k < g; ++k) {
          const int64_t b0 = v * unit + (g == 1 ? 0 : (k * unit + g / 2) / g);
          const int64_t b1e = g == 1 ? (v + r.m) * unit : v * unit + ((k + 1) * unit + g / 2) / g;
          t.b1[size_t(r.a + k)] = uint16_t(b0);  // b0 < 65536 <= the end (b1 + d1 <= 65536)
          t.d1[size_t(r.a + k)] = uint16_t(b1e - b0);
        }
        v += g == 1 ? r.m : 1;
      }
      const ErrStats e = fit.fit_values(t);
      if (better(e, best_e)) {
        best_e = e;
        best = t;
      }
    }
  }
  // Greedy refinement (int8 inputs: 256 codes make it cheap): move each interior warp breakpoint
  // by halving steps while the exact max error decreases.
  for (int pass = 0; pass < (fit.ncodes <= 256 ? s.refine_passes : 0); ++pass) {
    bool improved = false;
    for (int i = 1; i < n1; ++i) {
      const int lo = best.b1[size_t(i - 1)], hi = best.b1[size_t(i)] + best.d1[size_t(i)];
      for (int step = std::max(1, (hi - lo) / 8); step >= 1; step /= 2) {
        for (int dir = -1; dir <= 1; dir += 2) {
          DulutTables t = best;
          const int nb = t.b1[size_t(i)] + dir * step;
          if (nb <= lo || nb >= hi || nb - lo > 65535 || hi - nb > 65535) continue;
          t.b1[size_t(i)] = uint16_t(nb);
          t.d1[size_t(i - 1)] = uint16_t(nb - lo);
          t.d1[size_t(i)] = uint16_t(hi - nb);
          const ErrStats e = fit.fit_values(t);
          if (better(e, best_e)) {
            best_e = e;
            best = t;
            improved = true;
          }
        }
      }
    }
    if (!improved) break;
  }
  fit.fit_values(best);  // (recompute: the values of the kept warp)
  return best;
}

DulutTables fit_uniform(const DulutSpec& s, int k) {
  // Identity warp: k1 = k2 = k, b1[i] = i * 2^(16-k), d1 = 2^(16-k), so p = u * 2^(16-b) exactly
  // and value segment j = input segment j.
  Fitter fit(s, k, k);
  DulutTables t = fit.empty(k, k);
  for (int i = 0; i < (1 << k); ++i) {
    t.b1[size_t(i)] = uint16_t(i << (16 - k));
    t.d1[size_t(i)] = uint16_t(1 << (16 - k));
  }
  fit.fit_values(t);
  return t;
}

}  // namespace fq::quant
