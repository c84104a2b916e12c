// RWKVQuant proxy and codebooks (vq.h).
#include "vq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace fq::rwkv {

namespace {

constexpr int kMaxMult = 32767;  // row scales fit int16 (the graph stores them so)
constexpr int kRefinePasses = 8, kRefineSweeps = 8;

// 1-D weighted k-means of values u (weights h) into `e` centroids; `round` keeps them on the int8
// grid (the codebook is stored as int8). Returns the centroids (sorted).
std::vector<double> kmeans1d(const std::vector<double>& u, const std::vector<double>& h, int e, int iters,
                             bool round) {
  const size_t n = u.size();
  std::vector<size_t> ord(n);
  std::iota(ord.begin(), ord.end(), size_t{0});
  std::sort(ord.begin(), ord.end(), [&](size_t a, size_t b) { return u[a] < u[b]; });
  double tot = 0;
  for (double w : h) tot += w;
  // init: weighted quantiles at (j + 0.5) / e
  std::vector<double> c(size_t(e), 0.0);
  double acc = 0;
  size_t k = 0;
  for (int j = 0; j < e; ++j) {
    const double target = (j + 0.5) / e * tot;
    while (k + 1 < n && acc + h[ord[k]] < target) acc += h[ord[k++]];
    c[size_t(j)] = u[ord[k]];
  }
  auto fix = [&](double v) { return round ? std::clamp(std::nearbyint(v), -127.0, 127.0) : v; };
  for (double& v : c) v = fix(v);
  std::vector<double> sw(static_cast<size_t>(e)), swu(static_cast<size_t>(e));
  for (int it = 0; it < iters; ++it) {
    std::fill(sw.begin(), sw.end(), 0.0);
    std::fill(swu.begin(), swu.end(), 0.0);
    for (size_t i = 0; i < n; ++i) {
      size_t best = 0;
      for (size_t j = 1; j < c.size(); ++j)
        if (std::fabs(u[i] - c[j]) < std::fabs(u[i] - c[best])) best = j;
      sw[best] += h[i], swu[best] += h[i] * u[i];
    }
    bool moved = false;
    for (size_t j = 0; j < c.size(); ++j) {
      if (sw[j] <= 0) continue;  // empty cluster: keep its centroid
      const double v = fix(swu[j] / sw[j]);
      moved |= v != c[j];
      c[j] = v;
    }
    if (!moved) break;
  }
  std::sort(c.begin(), c.end());
  return c;
}

size_t nearest(const std::vector<double>& c, double v) {
  size_t best = 0;
  for (size_t j = 1; j < c.size(); ++j)
    if (std::fabs(v - c[j]) < std::fabs(v - c[best])) best = j;
  return best;
}


// GPTVQ's M-step for one block of rows that share their codebooks: with the indices fixed, each
// group's codebook c is refitted to minimize sum_n s_n^2 (t_n - A_n c)^T H (t_n - A_n c) over the
// block (t_n: row n's original weights in units of s_n, with every other group's current
// reconstruction removed), an E x E least-squares solve per group, entries rounded to int8.
void refit_codebooks(const llama::Mat& w, const std::vector<double>& h, int n0, int n1, const std::vector<double>& s,
                     int group, int E, int rows, llama::QLinear* q) {
  const int K = w.cols, ng = (K + group - 1) / group;
  std::vector<std::vector<double>> e;  // current error of each row of the block, in units of s_n
  for (int n = n0; n < n1; ++n) {
    std::vector<double> en(static_cast<size_t>(K), 0.0);
    if (s[size_t(n)] > 0)
      for (int k = 0; k < K; ++k) en[size_t(k)] = (double(w.at(n, k)) - double(q->deq.at(n, k))) / s[size_t(n)];
    e.push_back(std::move(en));
  }
  for (int g = 0; g < ng; ++g) {
    const int k0 = g * group, k1 = std::min(K, k0 + group);
    int8_t* cb = q->codebook.data() + (size_t(n0 / rows) * size_t(ng) + size_t(g)) * size_t(E);
    std::vector<double> M(size_t(E) * size_t(E), 0.0), rhs(static_cast<size_t>(E), 0.0);
    bool used[16] = {};
    for (int n = n0; n < n1; ++n) {
      const double wt = s[size_t(n)] * s[size_t(n)];
      if (!(wt > 0)) continue;
      const int8_t* idx = q->q.data() + size_t(n) * size_t(K);
      std::vector<double>& t = e[size_t(n - n0)];  // becomes t_n (restored below)
      for (int k = k0; k < k1; ++k) t[size_t(k)] += cb[idx[k]], used[idx[k]] = true;
      for (int a = k0; a < k1; ++a) {
        const double* hr = h.data() + size_t(a) * size_t(K);
        double ht = 0;
        for (int b = 0; b < K; ++b) ht += hr[b] * t[size_t(b)];
        rhs[size_t(idx[a])] += wt * ht;
        for (int b = k0; b < k1; ++b) M[size_t(idx[a]) * size_t(E) + size_t(idx[b])] += wt * hr[b];
      }
    }
    for (int j = 0; j < E; ++j) M[size_t(j) * size_t(E) + size_t(j)] += 1e-9 + 1e-6 * std::fabs(M[size_t(j) * size_t(E) + size_t(j)]);
    std::vector<double> c = rhs;
    if (llama::cholesky_lower(M, E)) {  // solve L L^T c = rhs
      for (int i = 0; i < E; ++i) {
        for (int j = 0; j < i; ++j) c[size_t(i)] -= M[size_t(i) * size_t(E) + size_t(j)] * c[size_t(j)];
        c[size_t(i)] /= M[size_t(i) * size_t(E) + size_t(i)];
      }
      for (int i = E - 1; i >= 0; --i) {
        for (int j = i + 1; j < E; ++j) c[size_t(i)] -= M[size_t(j) * size_t(E) + size_t(i)] * c[size_t(j)];
        c[size_t(i)] /= M[size_t(i) * size_t(E) + size_t(i)];
      }
      for (int j = 0; j < E; ++j)
        if (used[j]) cb[j] = int8_t(std::clamp(std::nearbyint(c[size_t(j)]), -127.0, 127.0));
    }
    for (int n = n0; n < n1; ++n) {
      if (!(s[size_t(n)] > 0)) continue;
      const int8_t* idx = q->q.data() + size_t(n) * size_t(K);
      std::vector<double>& t = e[size_t(n - n0)];
      for (int k = k0; k < k1; ++k) {
        q->deq.at(n, k) = float(double(cb[idx[k]]) * s[size_t(n)]);
        t[size_t(k)] -= cb[idx[k]];
      }
    }
  }
}

// With the codebooks and the row scale fixed, row n's indices by coordinate descent on its output
// error e^T H e (e = t - a in units of s_n): each sweep moves every weight to the codebook entry that
// lowers the error most given all the others (GPTQ's one greedy pass leaves such moves open).
void refine_indices(const llama::Mat& w, const std::vector<double>& h, int n, int group, int E, int rows,
                    const std::vector<double>& s, int sweeps, llama::QLinear* q) {
  const int K = w.cols, ng = (K + group - 1) / group;
  const double sn = s[size_t(n)];
  if (!(sn > 0)) return;
  int8_t* idx = q->q.data() + size_t(n) * size_t(K);
  const int8_t* cb = q->codebook.data() + size_t(n / rows) * size_t(ng) * size_t(E);
  std::vector<double> e(static_cast<size_t>(K)), g(static_cast<size_t>(K), 0.0);  // g = H e, kept current
  for (int k = 0; k < K; ++k) e[size_t(k)] = double(w.at(n, k)) / sn - cb[size_t(k / group) * size_t(E) + size_t(idx[k])];
  for (int i = 0; i < K; ++i) {
    const double* hr = h.data() + size_t(i) * size_t(K);
    for (int j = 0; j < K; ++j) g[size_t(i)] += hr[j] * e[size_t(j)];
  }
  for (int sw = 0; sw < sweeps; ++sw) {
    bool moved = false;
    for (int k = 0; k < K; ++k) {
      const int8_t* c = cb + size_t(k / group) * size_t(E);
      const double hkk = h[size_t(k) * size_t(K) + size_t(k)], ak = c[idx[k]];
      double best = -1e-12 * hkk;
      int bj = -1;
      for (int j = 0; j < E; ++j) {
        const double d = ak - c[j];
        const double df = 2 * d * g[size_t(k)] + d * d * hkk;
        if (df < best) best = df, bj = j;
      }
      if (bj < 0) continue;
      const double d = ak - c[bj];
      idx[k] = int8_t(bj), moved = true;  // e_k += d
      const double* hr = h.data() + size_t(k) * size_t(K);
      for (int i = 0; i < K; ++i) g[size_t(i)] += d * hr[i];
    }
    if (!moved) break;
  }
  for (int k = 0; k < K; ++k) q->deq.at(n, k) = float(double(cb[size_t(k / group) * size_t(E) + size_t(idx[k])]) * sn);
}

// With the codebooks and indices fixed, the row scale that minimizes the row's output error:
// s = (w^T H a) / (a^T H a), a the decoded row; kept on the mult grid (mult 2^-w_exp).
void refit_scale(const llama::Mat& w, const std::vector<double>& h, int n, int group, int E, int rows,
                 std::vector<double>* s, llama::QLinear* q) {
  const int K = w.cols, ng = (K + group - 1) / group;
  std::vector<double> a(static_cast<size_t>(K));
  const int8_t* idx = q->q.data() + size_t(n) * size_t(K);
  const int8_t* cb = q->codebook.data() + size_t(n / rows) * size_t(ng) * size_t(E);
  for (int k = 0; k < K; ++k) a[size_t(k)] = cb[size_t(k / group) * size_t(E) + size_t(idx[k])];
  double num = 0, den = 0;
  for (int i = 0; i < K; ++i) {
    const double* hr = h.data() + size_t(i) * size_t(K);
    double ha = 0;
    for (int j = 0; j < K; ++j) ha += hr[j] * a[size_t(j)];
    num += double(w.at(n, i)) * ha, den += a[size_t(i)] * ha;
  }
  if (!(den > 0) || !(num > 0)) return;
  const double m = std::min(std::nearbyint(std::ldexp(num / den, q->w_exp)), double(kMaxMult));
  if (m < 1) return;
  q->mult[size_t(n)] = int32_t(m);
  (*s)[size_t(n)] = std::ldexp(m, -q->w_exp);
  for (int k = 0; k < K; ++k) q->deq.at(n, k) = float(a[size_t(k)] * (*s)[size_t(n)]);
}

}  // namespace

Proxy rwkvquant_proxy(const std::vector<float>& w, double tau1, double tau2) {
  std::vector<double> v(w.begin(), w.end());
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::vector<double> g;
  for (size_t i = 1; i < v.size(); ++i) g.push_back(v[i] - v[i - 1]);
  Proxy p;
  double sum = 0;
  for (double x : g) sum += x;
  if (g.size() < 2 || !(sum > 0)) {
    p.coherent = true;
    return p;
  }
  const double n = double(g.size());
  double ent = 0, m2 = 0, m3 = 0, m4 = 0;
  for (double x : g) {
    const double gn = x / sum, d = gn - 1.0 / n;
    if (gn > 0) ent += gn * std::log(gn);
    m2 += d * d, m3 += d * d * d, m4 += d * d * d * d;
  }
  p.hce = std::log(n) + ent;
  p.fine = n * n / 2 * std::fabs(m2 / n) + n * n * n / 6 * std::fabs(m3 / n) + n * n * n * n / 12 * std::fabs(m4 / n);
  p.coherent = p.hce < tau1 && p.fine < tau2;
  return p;
}

llama::QLinear quantize_codebook(const llama::Mat& w, const std::vector<double>& h, int bits, int group,
                                 bool uniform, int iters, bool gptq, int rows) {
  const int N = w.rows, K = w.cols, E = 1 << bits, ng = (K + group - 1) / group;
  rows = std::clamp(rows, 1, std::max(N, 1));
  std::vector<double> hdiag, U;
  for (int k = 0; !h.empty() && k < K; ++k) hdiag.push_back(h[size_t(k) * size_t(K) + size_t(k)]);
  // GPTQ order: group after group, within a group the columns by decreasing H_kk (act order)
  std::vector<int> perm(static_cast<size_t>(K));
  std::iota(perm.begin(), perm.end(), 0);
  for (int g = 0; g < ng && !hdiag.empty(); ++g)
    std::stable_sort(perm.begin() + g * group, perm.begin() + std::min(K, (g + 1) * group),
                     [&](int a, int b) { return hdiag[size_t(a)] > hdiag[size_t(b)]; });
  if (gptq && !h.empty() && !llama::gptq_factor(h, K, perm, 0.01, &U)) U.clear();
  llama::QLinear q;
  q.bits = bits, q.group = group, q.codebook_rows = rows;
  q.q.assign(size_t(N) * size_t(K), 0);
  q.codebook.assign(size_t((N + rows - 1) / rows) * size_t(ng) * size_t(E), 0);
  // per-row scales: int8 entries span the row's range; encoded as quantize_linear's int8 (mult, w_exp)
  std::vector<double> s(size_t(N), 0.0);
  double smax = 0;
  for (int n = 0; n < N; ++n) {
    double a = 0;
    for (int k = 0; k < K; ++k) a = std::max(a, double(std::fabs(w.at(n, k))));
    s[size_t(n)] = a / 127.0;
    smax = std::max(smax, s[size_t(n)]);
  }
  // 15-bit row scales (stored as int16; the largest in [2^14, 2^15))
  q.w_exp = smax > 0 ? 14 - int(std::floor(std::log2(smax))) : 0;
  q.mult.resize(size_t(N));
  for (int n = 0; n < N; ++n) {
    q.mult[size_t(n)] = int32_t(std::min(std::nearbyint(std::ldexp(s[size_t(n)], q.w_exp)), double(kMaxMult)));
    s[size_t(n)] = std::ldexp(double(q.mult[size_t(n)]), -q.w_exp);
  }
  q.deq = llama::Mat(N, K);
  for (int n0 = 0; n0 < N; n0 += rows) {  // a block of rows sharing its codebooks
    const int n1 = std::min(N, n0 + rows);
    std::vector<std::vector<double>> wr;  // the block's rows in units of their scales (GPTQ-updated)
    for (int n = n0; n < n1; ++n) {
      std::vector<double> r(static_cast<size_t>(K), 0.0);
      for (int k = 0; k < K && s[size_t(n)] > 0; ++k) r[size_t(k)] = double(w.at(n, k)) / s[size_t(n)];
      wr.push_back(std::move(r));
    }
    for (int g = 0; g < ng; ++g) {
      const int k0 = g * group, k1 = std::min(K, k0 + group);
      std::vector<double> u, hw;  // the block's values of the group, weighted by H_kk s_n^2
      for (int n = n0; n < n1; ++n)
        for (int k = k0; k < k1; ++k) {
          u.push_back(wr[size_t(n - n0)][size_t(k)]);
          hw.push_back((hdiag.empty() ? 1.0 : std::max(hdiag[size_t(k)], 1e-12)) * std::max(s[size_t(n)] * s[size_t(n)], 1e-30));
        }
      std::vector<double> c;
      if (uniform) {  // the uniform grid over a shrunk range, the shrink chosen by weighted error
        const double lo = *std::min_element(u.begin(), u.end()), hi = *std::max_element(u.begin(), u.end());
        double best = 1e300;
        for (double r = 1.0; r >= 0.6; r -= 0.05) {
          const double mid = (lo + hi) / 2, half = (hi - lo) / 2 * r;
          std::vector<double> t(static_cast<size_t>(E));
          for (int j = 0; j < E; ++j)
            t[size_t(j)] = std::clamp(std::nearbyint(E > 1 ? mid - half + 2 * half * j / (E - 1) : mid), -127.0, 127.0);
          double err = 0;
          for (size_t i = 0; i < u.size(); ++i) err += hw[i] * std::pow(u[i] - t[nearest(t, u[i])], 2);
          if (err < best) best = err, c = t;
        }
      } else {
        c = kmeans1d(u, hw, E, iters, true);
      }
      int8_t* cb = q.codebook.data() + (size_t(n0 / rows) * size_t(ng) + size_t(g)) * size_t(E);
      for (int j = 0; j < E; ++j) cb[j] = int8_t(c[size_t(j)]);
      for (int n = n0; n < n1; ++n) {
        std::vector<double>& r = wr[size_t(n - n0)];
        for (int p = k0; p < k1; ++p) {  // position p in the GPTQ order: column perm[p]
          const int k = perm[size_t(p)];
          const size_t j = nearest(c, r[size_t(k)]);
          q.q[size_t(n) * size_t(K) + size_t(k)] = int8_t(j);
          q.deq.at(n, k) = float(c[j] * s[size_t(n)]);
          if (U.empty()) continue;
          const double* ur = U.data() + size_t(p) * size_t(K);  // GPTQ: push the error onto later columns
          const double err = (r[size_t(k)] - c[j]) / ur[p];
          for (int i = p + 1; i < K; ++i) r[size_t(perm[size_t(i)])] -= err * ur[i];
        }
      }
    }
    if (U.empty() || uniform) continue;
    // Alternating minimization of the block's output error: indices (coordinate descent), codebooks,
    // row scales. 8 rounds of up to 8 sweeps: 16 of each lowered the KL on 5v2 by 0.1 % more.
    for (int pass = 0; pass < kRefinePasses; ++pass) {
      for (int n = n0; n < n1; ++n) refine_indices(w, h, n, group, E, rows, s, kRefineSweeps, &q);
      refit_codebooks(w, h, n0, n1, s, group, E, rows, &q);
      for (int n = n0; n < n1; ++n) refit_scale(w, h, n, group, E, rows, &s, &q);
    }
  }
  return q;
}

std::vector<double> kmeans_mul(const std::vector<double>& w, const std::vector<double>& mask, int bits, int group,
                               int iters) {
  std::vector<double> out(w.size());
  for (size_t g0 = 0; g0 < w.size(); g0 += size_t(group)) {
    const size_t g1 = std::min(w.size(), g0 + size_t(group));
    std::vector<double> u(w.begin() + long(g0), w.begin() + long(g1));
    std::vector<double> h;
    for (size_t i = g0; i < g1; ++i) h.push_back(std::max(mask[i], 1e-12));
    const std::vector<double> c = kmeans1d(u, h, 1 << bits, iters, false);
    for (size_t i = g0; i < g1; ++i) out[i] = c[nearest(c, w[i])];
  }
  return out;
}

double codebook_bits_per_weight(const llama::QLinear& q) {
  const double n = q.deq.rows, k = q.deq.cols;
  const double bits = n * std::ceil(k * q.bits / 8) * 8 + double(q.codebook.size()) * 8 + n * 16;
  return bits / (n * k);
}

}  // namespace fq::rwkv
