// Calibration: activation statistics from the float graph, and the clipping-threshold choice.
#include <algorithm>
#include <cmath>
#include <limits>

#include "fqquant.h"

namespace fq::quant {

double kl_masked(const std::vector<double>& p, const std::vector<double>& q) {
  double P = 0, Q = 0;
  for (double v : p) P += v;
  for (double v : q) Q += v;
  if (P <= 0 || Q <= 0) return std::numeric_limits<double>::infinity();
  double s1 = 0, s2 = 0;
  for (size_t k = 0; k < p.size() && k < q.size(); ++k) {
    if (p[k] == 0 || q[k] == 0) continue;
    s1 += p[k] * std::log(P * p[k]);
    s2 += p[k] * std::log(Q * q[k]);
  }
  return (s1 - s2) / P;
}

namespace {

double kl_threshold(const ActStats& s, int levels) {
  const std::vector<double>& h = s.hist;
  const int bins = int(h.size());
  if (bins <= levels) return s.max;
  std::vector<double> tail(size_t(bins) + 1, 0.0);  // tail[i] = sum h[i..]
  for (int j = bins - 1; j >= 0; --j) tail[j] = tail[j + 1] + h[j];
  if (tail[0] <= 0) return s.max;
  std::vector<double> p, q, gsum(size_t(levels) + 1), gnz(size_t(levels) + 1);
  double best = std::numeric_limits<double>::infinity();
  int best_i = bins;
  for (int i = levels; i <= bins; ++i) {
    // Reference: the first i bins, with everything clipped folded into the last one.
    p.assign(h.begin(), h.begin() + i);
    p[i - 1] += tail[i];
    // Candidate: the unclipped first i bins quantized with `levels` steps over [0, i bins]
    // (bin j, centre (j + 0.5) bins, lands on level round_half_up((j + 0.5) * levels / i)),
    // each level's count spread evenly over the bins of that level where p is non-zero.
    std::fill(gsum.begin(), gsum.end(), 0.0);
    std::fill(gnz.begin(), gnz.end(), 0.0);
    auto level = [&](int j) { return int(std::floor((j + 0.5) * levels / i + 0.5)); };
    for (int j = 0; j < i; ++j) {
      gsum[level(j)] += h[j];
      gnz[level(j)] += p[j] != 0;
    }
    q.assign(size_t(i), 0.0);
    for (int j = 0; j < i; ++j)
      if (p[j] != 0) q[j] = gsum[level(j)] / gnz[level(j)];
    const double kl = kl_masked(p, q);
    if (kl < best) {
      best = kl;
      best_i = i;
    }
  }
  return best_i * s.bin_width();
}

}  // namespace

double choose_threshold(const ActStats& s, CalibMethod m, double percentile, int levels) {
  if (s.max <= 0) return 0;
  switch (m) {
    case CalibMethod::minmax:
      return s.max;
    case CalibMethod::percentile: {
      double total = 0;
      for (double v : s.hist) total += v;
      const double target = total * percentile / 100;
      double cum = 0;
      for (size_t j = 0; j < s.hist.size(); ++j) {
        cum += s.hist[j];
        if (cum >= target) return double(j + 1) * s.bin_width();
      }
      return s.max;
    }
    case CalibMethod::kl:
      return kl_threshold(s, levels);
  }
  return s.max;
}

std::map<std::string, ActStats> collect_stats(const Graph& g, int count, const InputFiller& fill,
                                              int bins) {
  std::map<std::string, ActStats> stats;
  Session s(g, Options{});
  // Pass 1: the range of every node output.
  for (int k = 0; k < count; ++k) {
    fill(k, s);
    s.run_observed([&](const NodeDef&, const TensorView& t) {
      if (t.dtype != DType::f32) return;
      ActStats& a = stats[t.name];
      const float* x = static_cast<const float*>(t.data);
      for (size_t e = 0; e < t.bytes / sizeof(float); ++e) {
        a.max = std::max(a.max, std::fabs(double(x[e])));
        a.negative |= x[e] < 0;
      }
    });
  }
  for (auto& kv : stats) kv.second.hist.assign(size_t(bins), 0.0);
  // Pass 2: histograms of the non-zero |x| over [0, max]. Exact zeros (half of every ReLU output)
  // are representable at any scale, carry no information about the range, and would otherwise
  // swamp the first bin.
  for (int k = 0; k < count; ++k) {
    fill(k, s);
    s.run_observed([&](const NodeDef&, const TensorView& t) {
      if (t.dtype != DType::f32) return;
      ActStats& a = stats[t.name];
      if (a.max <= 0) return;
      const double inv = bins / a.max;
      const float* x = static_cast<const float*>(t.data);
      for (size_t e = 0; e < t.bytes / sizeof(float); ++e) {
        const double v = std::fabs(double(x[e]));
        if (v == 0) continue;
        a.hist[size_t(std::min(double(bins - 1), v * inv))] += 1;
      }
    });
  }
  return stats;
}

}  // namespace fq::quant
