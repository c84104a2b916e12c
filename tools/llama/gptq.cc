// Weight quantization of one linear: scales, clipping search, integer encodings, RTN / GPTQ.
#include "gptq.h"

#include <algorithm>
#include <cmath>

namespace fq::llama {

namespace {

int qlo(int bits) { return bits == 4 ? -8 : -127; }
int qhi(int bits) { return bits == 4 ? 7 : 127; }

inline double qround(double w, double s, int lo, int hi) {
  if (s <= 0) return 0;
  const double q = std::nearbyint(w / s);
  return std::min<double>(hi, std::max<double>(lo, q));
}

// Error of quantizing w[k0..k1) with scale s, weighted by H's diagonal block (or plain MSE).
double group_error(const float* w, int k0, int k1, double s, int bits,
                   const std::vector<double>& h, int K) {
  const int n = k1 - k0;
  std::vector<double> e(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) e[j] = w[k0 + j] - qround(w[k0 + j], s, qlo(bits), qhi(bits)) * s;
  double err = 0;
  if (h.empty()) {
    for (int j = 0; j < n; ++j) err += e[j] * e[j];
    return err;
  }
  for (int a = 0; a < n; ++a) {
    const double* hr = h.data() + size_t(k0 + a) * K + k0;
    double t = 0;
    for (int b = 0; b < n; ++b) t += hr[b] * e[b];
    err += e[a] * t;
  }
  return err;
}

}  // namespace

bool cholesky_lower(std::vector<double>& a, int n) {
  for (int j = 0; j < n; ++j) {
    double d = a[size_t(j) * n + j];
    for (int k = 0; k < j; ++k) d -= a[size_t(j) * n + k] * a[size_t(j) * n + k];
    if (!(d > 0)) return false;
    d = std::sqrt(d);
    a[size_t(j) * n + j] = d;
    for (int i = j + 1; i < n; ++i) {
      double s = a[size_t(i) * n + j];
      for (int k = 0; k < j; ++k) s -= a[size_t(i) * n + k] * a[size_t(j) * n + k];
      a[size_t(i) * n + j] = s / d;
    }
    for (int k = j + 1; k < n; ++k) a[size_t(j) * n + k] = 0;
  }
  return true;
}

namespace {

// GPTQ for one row with fixed scales: columns in the order perm (act order), Ut = upper Cholesky
// factor U of the dampened inverse Hessian in that order (row-major K x K, U[i][j] at Ut[i*K+j]).
// Writes codes (original column order) and returns the row's output error e^T H e, e = w - deq.
double gptq_row(const float* w0, int K, const std::vector<int>& perm, const std::vector<double>& Ut,
                const double* scale_of_col, int lo, int hi, const std::vector<double>& H,
                int8_t* codes, std::vector<double>& work) {
  work.resize(size_t(K) * 2);
  double* wr = work.data();
  double* e = work.data() + K;
  for (int i = 0; i < K; ++i) wr[i] = w0[perm[i]];
  for (int i = 0; i < K; ++i) {
    const int col = perm[i];
    const double sc = scale_of_col[col];
    const double qv = qround(wr[i], sc, lo, hi);
    codes[col] = int8_t(qv);
    const double* ur = Ut.data() + size_t(i) * K;  // row i of the upper factor U
    const double err = (wr[i] - qv * sc) / ur[i];
    for (int j = i + 1; j < K; ++j) wr[j] -= err * ur[j];
  }
  for (int k = 0; k < K; ++k) e[k] = w0[k] - codes[k] * scale_of_col[k];
  double tot = 0;
  for (int a = 0; a < K; ++a) {
    const double* hr = H.data() + size_t(a) * K;
    double t = 0;
    for (int b = 0; b < K; ++b) t += hr[b] * e[b];
    tot += e[a] * t;
  }
  return tot;
}

double rtn_row(const float* w0, int K, const double* scale_of_col, int lo, int hi,
               const std::vector<double>& H, int8_t* codes, std::vector<double>& work) {
  work.resize(size_t(K));
  for (int k = 0; k < K; ++k) {
    codes[k] = int8_t(qround(w0[k], scale_of_col[k], lo, hi));
    work[k] = w0[k] - codes[k] * scale_of_col[k];
  }
  if (H.empty()) {
    double t = 0;
    for (int k = 0; k < K; ++k) t += work[k] * work[k];
    return t;
  }
  double tot = 0;
  for (int a = 0; a < K; ++a) {
    const double* hr = H.data() + size_t(a) * K;
    double t = 0;
    for (int b = 0; b < K; ++b) t += hr[b] * work[b];
    tot += work[a] * t;
  }
  return tot;
}

}  // namespace

// Upper Cholesky factor U of the inverse of the dampened H in the order perm (Hinv = U^T U),
// row-major. Returns false when H is not positive definite.
bool gptq_factor(const std::vector<double>& h, int K, const std::vector<int>& perm, double damp,
                 std::vector<double>* out) {
  std::vector<double> H(size_t(K) * K);
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) H[size_t(i) * K + j] = h[size_t(perm[i]) * K + perm[j]];
  double mean = 0;
  for (int i = 0; i < K; ++i) mean += H[size_t(i) * K + i];
  mean /= K;
  if (!(mean > 0)) return false;
  for (int i = 0; i < K; ++i) {
    double& d = H[size_t(i) * K + i];
    if (d <= 0) d = 1;
    d += damp * mean;
  }
  if (!cholesky_lower(H, K)) return false;
  std::vector<double> Li(size_t(K) * K, 0.0);
  for (int i = 0; i < K; ++i) {
    Li[size_t(i) * K + i] = 1.0 / H[size_t(i) * K + i];
    for (int j = 0; j < i; ++j) {
      double t = 0;
      for (int k = j; k < i; ++k) t += H[size_t(i) * K + k] * Li[size_t(k) * K + j];
      Li[size_t(i) * K + j] = -t / H[size_t(i) * K + i];
    }
  }
  std::vector<double>& Hi = *out;
  Hi.assign(size_t(K) * K, 0.0);
  for (int i = 0; i < K; ++i)
    for (int j = 0; j <= i; ++j) {
      double t = 0;
      for (int k = i; k < K; ++k) t += Li[size_t(k) * K + i] * Li[size_t(k) * K + j];
      Hi[size_t(i) * K + j] = Hi[size_t(j) * K + i] = t;
    }
  if (!cholesky_lower(Hi, K)) return false;
  // U = C^T, stored row-major (row i of U = column i of C)
  std::vector<double> U(size_t(K) * K, 0.0);
  for (int i = 0; i < K; ++i)
    for (int j = i; j < K; ++j) U[size_t(i) * K + j] = Hi[size_t(j) * K + i];
  Hi.swap(U);
  return true;
}

QLinear quantize_linear(const Mat& w, const std::vector<double>& h, const WeightQuantOptions& o) {
  const int N = w.rows, K = w.cols, bits = o.bits;
  const int G = bits == 4 && o.group > 0 ? o.group : K;
  const int ng = (K + G - 1) / G;
  const int lo = qlo(bits), hi = qhi(bits);
  // 1. float scales per (row, group): the grid [lo, hi] covers the group's range
  std::vector<double> s(size_t(N) * ng, 0.0);
  for (int n = 0; n < N; ++n)
    for (int g = 0; g < ng; ++g) {
      const int k0 = g * G, k1 = std::min(K, k0 + G);
      double pmax = 0, nmax = 0;
      for (int k = k0; k < k1; ++k) {
        pmax = std::max(pmax, double(w.at(n, k)));
        nmax = std::max(nmax, -double(w.at(n, k)));
      }
      double best = std::max(pmax / hi, nmax / -lo);
      if (o.clip_search && best > 0) {
        const double s0 = best;
        double best_err = group_error(w.row(n), k0, k1, best, bits, h, K);
        const int steps = 40;
        for (int i = 1; i <= steps; ++i) {
          const double sc = s0 * (1.0 - (1.0 - o.clip_min) * i / steps);
          const double e = group_error(w.row(n), k0, k1, sc, bits, h, K);
          if (e < best_err) best_err = e, best = sc;
        }
      }
      s[size_t(n) * ng + g] = best;
    }
  // 2. GPTQ factor (act order: columns by decreasing H diagonal)
  std::vector<int> perm(static_cast<size_t>(K));
  for (int i = 0; i < K; ++i) perm[i] = i;
  std::vector<double> Ut;
  bool use_gptq = o.gptq && !h.empty();
  if (use_gptq) {
    if (o.act_order)
      std::stable_sort(perm.begin(), perm.end(), [&](int a, int b) {
        return h[size_t(a) * K + a] > h[size_t(b) * K + b];
      });
    use_gptq = gptq_factor(h, K, perm, o.damp, &Ut);
  }
  std::vector<double> col_scale(static_cast<size_t>(K)), work;
  std::vector<int8_t> codes(static_cast<size_t>(K));
  auto row_error = [&](int n, const double* sg) {
    for (int k = 0; k < K; ++k) col_scale[k] = sg[k / G];
    return use_gptq ? gptq_row(w.row(n), K, perm, Ut, col_scale.data(), lo, hi, h, codes.data(), work)
                    : rtn_row(w.row(n), K, col_scale.data(), lo, hi, h, codes.data(), work);
  };
  // 3. per-row refinement: a common ratio on the row's scales, judged by the final error
  if (o.clip_search && o.row_search) {
    std::vector<double> cand(static_cast<size_t>(ng));
    for (int n = 0; n < N; ++n) {
      double* sg = s.data() + size_t(n) * ng;
      double best_err = row_error(n, sg), best_ratio = 1;
      for (int i = 1; i <= 12; ++i) {
        const double ratio = 1.0 - 0.025 * i;
        for (int g = 0; g < ng; ++g) cand[g] = sg[g] * ratio;
        const double e = row_error(n, cand.data());
        if (e < best_err) best_err = e, best_ratio = ratio;
      }
      for (int g = 0; g < ng; ++g) sg[g] *= best_ratio;
    }
  }
  // 3b. scale refinement: least-squares group scales for the chosen codes (error e^T H e), then
  // codes again with the new scales; kept when the row error drops
  if (o.scale_refine && !h.empty()) {
    std::vector<double> A(ng * ng), bvec(ng), cand(ng);
    std::vector<double> hq(K);
    for (int n = 0; n < N; ++n) {
      double* sg = s.data() + size_t(n) * ng;
      double cur = row_error(n, sg);
      for (int it = 0; it < 4; ++it) {
        // codes of the current scales are in `codes`; basis vectors u_g = q restricted to group g
        std::fill(A.begin(), A.end(), 0.0);
        std::fill(bvec.begin(), bvec.end(), 0.0);
        for (int g = 0; g < ng; ++g) {
          // hq = H u_g
          for (int a = 0; a < K; ++a) {
            double t = 0;
            for (int k = g * G; k < std::min(K, (g + 1) * G); ++k) t += h[size_t(a) * K + k] * codes[k];
            hq[a] = t;
          }
          for (int a = 0; a < K; ++a) bvec[g] += hq[a] * w.at(n, a);
          for (int g2 = 0; g2 < ng; ++g2)
            for (int k = g2 * G; k < std::min(K, (g2 + 1) * G); ++k) A[size_t(g2) * ng + g] += hq[k] * codes[k];
        }
        // solve A c = b (small, Gaussian elimination with partial pivoting)
        std::vector<double> M = A;
        cand = bvec;
        bool ok = true;
        for (int i = 0; i < ng && ok; ++i) {
          int piv = i;
          for (int r2 = i + 1; r2 < ng; ++r2)
            if (std::fabs(M[size_t(r2) * ng + i]) > std::fabs(M[size_t(piv) * ng + i])) piv = r2;
          if (std::fabs(M[size_t(piv) * ng + i]) < 1e-30) { ok = false; break; }
          if (piv != i) {
            for (int c2 = 0; c2 < ng; ++c2) std::swap(M[size_t(i) * ng + c2], M[size_t(piv) * ng + c2]);
            std::swap(cand[i], cand[piv]);
          }
          for (int r2 = i + 1; r2 < ng; ++r2) {
            const double f = M[size_t(r2) * ng + i] / M[size_t(i) * ng + i];
            for (int c2 = i; c2 < ng; ++c2) M[size_t(r2) * ng + c2] -= f * M[size_t(i) * ng + c2];
            cand[r2] -= f * cand[i];
          }
        }
        if (!ok) break;
        for (int i = ng - 1; i >= 0; --i) {
          double t = cand[i];
          for (int c2 = i + 1; c2 < ng; ++c2) t -= M[size_t(i) * ng + c2] * cand[c2];
          cand[i] = t / M[size_t(i) * ng + i];
        }
        bool pos = true;
        for (int g = 0; g < ng; ++g) pos = pos && cand[g] > 0;
        if (!pos) break;
        const double e = row_error(n, cand.data());
        if (!(e < cur)) { row_error(n, sg); break; }
        cur = e;
        for (int g = 0; g < ng; ++g) sg[g] = cand[g];
      }
    }
  }
  // 4. integer encodings; s becomes the representable scale
  QLinear q;
  q.bits = bits;
  q.group = bits == 4 ? G : 0;
  if (bits == 8) {
    double smax = 0;
    for (double v : s) smax = std::max(smax, v);
    q.w_exp = smax > 0 ? 22 - int(std::floor(std::log2(smax))) : 0;  // max mult in [2^22, 2^23)
    q.mult.resize(N);
    for (int n = 0; n < N; ++n) {
      const double m = std::nearbyint(std::ldexp(s[n], q.w_exp));
      q.mult[n] = int32_t(std::min(m, double((1 << 23) - 1)));
      s[n] = std::ldexp(double(q.mult[n]), -q.w_exp);
    }
  } else {
    double smin_row = 0;
    std::vector<double> rmax(N, 0.0);
    for (int n = 0; n < N; ++n) {
      for (int g = 0; g < ng; ++g) rmax[n] = std::max(rmax[n], s[size_t(n) * ng + g]);
      if (rmax[n] > 0 && (smin_row == 0 || rmax[n] < smin_row)) smin_row = rmax[n];
    }
    q.w_exp = smin_row > 0 ? 14 - int(std::floor(std::log2(smin_row))) : 0;
    q.gmult.assign(size_t(N) * ng, 0);
    q.gshift.assign(N, 0);
    for (int n = 0; n < N; ++n) {
      int sh = 0;
      if (rmax[n] > 0) sh = std::max(0, int(std::floor(std::log2(std::ldexp(rmax[n], q.w_exp)))) - 14);
      sh = std::min(sh, 30);
      q.gshift[n] = int8_t(sh);
      for (int g = 0; g < ng; ++g) {
        double m = std::nearbyint(std::ldexp(s[size_t(n) * ng + g], q.w_exp - sh));
        m = std::min(m, 32767.0);
        q.gmult[size_t(n) * ng + g] = int16_t(m);
        s[size_t(n) * ng + g] = std::ldexp(m, sh - q.w_exp);
      }
    }
  }
  // 5. codes: RTN or GPTQ with the final scales
  q.q.assign(size_t(N) * K, 0);
  q.deq = Mat(N, K);
  std::vector<double> he(static_cast<size_t>(K)), e(static_cast<size_t>(K));
  for (int n = 0; n < N; ++n) {
    row_error(n, s.data() + size_t(n) * ng);
    if (o.local_search && !h.empty()) {
      // greedy +-1 code moves that lower e^T H e (e = w - deq), with H e kept up to date
      for (int k = 0; k < K; ++k) e[k] = w.at(n, k) - codes[k] * col_scale[k];
      for (int a = 0; a < K; ++a) {
        double t = 0;
        for (int b = 0; b < K; ++b) t += h[size_t(a) * K + b] * e[b];
        he[a] = t;
      }
      for (int sweep = 0; sweep < 8; ++sweep) {
        bool moved = false;
        for (int k = 0; k < K; ++k) {
          const double hkk = h[size_t(k) * K + k];
          for (int dir = -1; dir <= 1; dir += 2) {
            const int nc = codes[k] + dir;
            if (nc < lo || nc > hi) continue;
            const double d = -dir * col_scale[k];  // change of e[k]
            const double gain = 2 * d * he[k] + d * d * hkk;
            if (gain < -1e-15 * (1 + std::fabs(he[k]))) {
              codes[k] = int8_t(nc);
              e[k] += d;
              for (int a = 0; a < K; ++a) he[a] += h[size_t(a) * K + k] * d;
              moved = true;
              break;
            }
          }
        }
        if (!moved) break;
      }
    }
    for (int k = 0; k < K; ++k) {
      q.q[size_t(n) * K + k] = codes[k];
      q.deq.at(n, k) = float(codes[k] * col_scale[k]);
    }
  }
  return q;
}

}  // namespace fq::llama
