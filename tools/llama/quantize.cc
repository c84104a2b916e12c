// The LLM quantizer's pipeline (quantize.h): transformed float model, calibration statistics,
// smoothing search, rotation trials, weight quantization.
#include "quantize.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "gptq.h"

namespace fq::llama {

namespace {

Mat from_vec(const std::vector<float>& v, int r, int c) {
  Mat m(r, c);
  std::copy_n(v.data(), size_t(r) * c, m.a.data());
  return m;
}

void scale_cols(Mat& w, const std::vector<float>& g) {
  for (int i = 0; i < w.rows; ++i)
    for (int j = 0; j < w.cols; ++j) w.at(i, j) *= g[j];
}

// a [n][k] x b [k][m] in double
Mat mul(const Mat& a, const Mat& b) {
  Mat c(a.rows, b.cols);
  std::vector<double> acc(size_t(b.cols));
  for (int i = 0; i < a.rows; ++i) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int k = 0; k < a.cols; ++k) {
      const double x = a.at(i, k);
      if (x == 0) continue;
      const float* br = b.row(k);
      for (int j = 0; j < b.cols; ++j) acc[j] += x * br[j];
    }
    for (int j = 0; j < b.cols; ++j) c.at(i, j) = float(acc[j]);
  }
  return c;
}

Mat transpose(const Mat& a) {
  Mat t(a.cols, a.rows);
  for (int i = 0; i < a.rows; ++i)
    for (int j = 0; j < a.cols; ++j) t.at(j, i) = a.at(i, j);
  return t;
}

// Orthonormal Hadamard n x n (H / sqrt(n)) with optional random row signs.
Mat ortho_hadamard(int n, int seed) {
  const std::vector<int8_t> h = hadamard_matrix(n);
  std::vector<float> sign(size_t(n), 1.f);
  if (seed > 0) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    for (auto& s : sign) s = (rng() & 1) ? -1.f : 1.f;
  }
  Mat m(n, n);
  const float inv = float(1.0 / std::sqrt(double(n)));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) m.at(i, j) = sign[i] * h[size_t(i) * n + j] * inv;
  return m;
}

// Gamma and 1/sqrt(hd) folded, hidden padded with zeros to `hidden`. No rotation.
// Positions of the hidden channels in the padded hidden vector: 0..H-1, or (scatter) a random
// sorted subset, so that the online Hadamard over the padded width is a frame without repeated
// rows (with the channels packed first, H_{2^k} (x) H_b repeats rows on the support).
std::vector<int> hidden_positions(int h0, int hidden, bool scatter) {
  std::vector<int> pos(static_cast<size_t>(h0));
  for (int j = 0; j < h0; ++j) pos[j] = j;
  if (scatter && hidden > h0) {
    std::vector<int> all(static_cast<size_t>(hidden));
    for (int j = 0; j < hidden; ++j) all[j] = j;
    std::mt19937 rng(12345);
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(static_cast<size_t>(h0));
    std::sort(all.begin(), all.end());
    pos = all;
  }
  return pos;
}

TModel base_model(const LlamaWeights& w, int hidden, bool scatter) {
  const LlamaConfig& c = w.config;
  const int D = c.dim, HD0 = c.hidden_dim, kvd = c.kv_dim(), V = c.vocab_size;
  TModel m;
  m.c = c;
  m.hidden = hidden;
  m.emb = from_vec(w.token_embedding, V, D);
  m.wcls = from_vec(w.classifier(), V, D);
  scale_cols(m.wcls, w.rms_final);
  const float qscale = float(1.0 / std::sqrt(double(c.head_size())));
  for (const LlamaLayer& L : w.layers) {
    TLayer t;
    t.wq = from_vec(L.wq, D, D);
    t.wk = from_vec(L.wk, kvd, D);
    t.wv = from_vec(L.wv, kvd, D);
    t.wo = from_vec(L.wo, D, D);
    scale_cols(t.wq, L.rms_att);
    scale_cols(t.wk, L.rms_att);
    scale_cols(t.wv, L.rms_att);
    for (float& x : t.wq.a) x *= qscale;
    t.w1 = Mat(hidden, D);
    t.w3 = Mat(hidden, D);
    t.w2 = Mat(D, hidden);
    const std::vector<int> pos = hidden_positions(HD0, hidden, scatter);
    for (int j = 0; j < HD0; ++j) {
      std::copy_n(L.w1.data() + size_t(j) * D, D, t.w1.row(pos[j]));
      std::copy_n(L.w3.data() + size_t(j) * D, D, t.w3.row(pos[j]));
    }
    scale_cols(t.w1, L.rms_ffn);
    scale_cols(t.w3, L.rms_ffn);
    for (int i = 0; i < D; ++i)
      for (int j = 0; j < HD0; ++j) t.w2.at(i, pos[j]) = L.w2[size_t(i) * HD0 + j];
    m.layers.push_back(std::move(t));
  }
  return m;
}

// Residual rotation Q: inputs W Q, outputs Q^T W, embedding rows E Q.
void rotate_residual(TModel& m, int seed) {
  const Mat Q = ortho_hadamard(m.c.dim, seed);
  const Mat Qt = transpose(Q);
  m.emb = mul(m.emb, Q);
  m.wcls = mul(m.wcls, Q);
  for (TLayer& L : m.layers) {
    L.wq = mul(L.wq, Q);
    L.wk = mul(L.wk, Q);
    L.wv = mul(L.wv, Q);
    L.w1 = mul(L.w1, Q);
    L.w3 = mul(L.w3, Q);
    L.wo = mul(Qt, L.wo);
    L.w2 = mul(Qt, L.w2);
  }
}

// Residual stream in a redundant frame: x' = F x, F [R][D] = D columns (random positions) of a
// random-signed orthonormal Hadamard of order R, so F^T F = I. rmsnorm over R with eps * D / R
// gives sqrt(R / D) F y; readers get sqrt(D / R) W F^T, writers F W, embedding rows F e.
// Quantization noise of the R-wide activations is isotropic; the readers keep only its D-dim
// projection (about D / R of it).
void expand_residual(TModel& m, int R, int seed) {
  const int D = m.c.dim;
  const Mat Hs = ortho_hadamard(R, seed + 7919);
  const std::vector<int> pos = hidden_positions(D, R, true);
  Mat F(R, D);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < D; ++j) F.at(i, j) = Hs.at(i, pos[j]);
  Mat Ft = transpose(F);
  const float k = float(std::sqrt(double(D) / R));
  Mat Fk = Ft;
  for (float& v : Fk.a) v *= k;
  m.emb = mul(m.emb, Ft);
  m.wcls = mul(m.wcls, Fk);
  for (TLayer& L : m.layers) {
    L.wq = mul(L.wq, Fk);
    L.wk = mul(L.wk, Fk);
    L.wv = mul(L.wv, Fk);
    L.w1 = mul(L.w1, Fk);
    L.w3 = mul(L.w3, Fk);
    L.wo = mul(F, L.wo);
    L.w2 = mul(F, L.w2);
  }
  m.res = R;
  m.norm_eps = 1e-5 * D / R;
}

// Per-head Hadamard on v (rows of each kv head's block of wv) and o (columns of wo per head).
void rotate_heads(TModel& m) {
  const int hs = m.c.head_size();
  const Mat Hh = ortho_hadamard(hs, 0);
  for (TLayer& L : m.layers) {
    Mat v = L.wv;
    for (int g = 0; g < m.c.n_kv_heads; ++g)
      for (int i = 0; i < hs; ++i)
        for (int j = 0; j < L.wv.cols; ++j) {
          double s = 0;
          for (int k = 0; k < hs; ++k) s += double(Hh.at(k, i)) * v.at(g * hs + k, j);
          L.wv.at(g * hs + i, j) = float(s);
        }
    Mat o = L.wo;
    for (int h = 0; h < m.c.n_heads; ++h)
      for (int r = 0; r < o.rows; ++r)
        for (int j = 0; j < hs; ++j) {
          double s = 0;
          for (int k = 0; k < hs; ++k) s += double(o.at(r, h * hs + k)) * Hh.at(k, j);
          L.wo.at(r, h * hs + j) = float(s);
        }
  }
}

// Smoothing of the down projection's input: w3 rows / s, w2 columns * s.
void apply_smooth(TLayer& L, const std::vector<float>& s) {
  for (int j = 0; j < L.w3.rows; ++j)
    for (int k = 0; k < L.w3.cols; ++k) L.w3.at(j, k) /= s[j];
  for (int i = 0; i < L.w2.rows; ++i)
    for (int j = 0; j < L.w2.cols; ++j) L.w2.at(i, j) *= s[j];
}

// w2 <- w2 H^T / n (the online Hadamard t = H h happens in the graph).
void fold_online_hadamard(TLayer& L, const std::vector<int8_t>& had, int n) {
  Mat w = L.w2;
  for (int i = 0; i < w.rows; ++i)
    for (int a = 0; a < n; ++a) {
      double s = 0;
      for (int b = 0; b < n; ++b) s += double(w.at(i, b)) * had[size_t(a) * n + b];
      L.w2.at(i, a) = float(s / n);
    }
}

// Per (layer, site) input statistics.
struct Stats : SimObserver {
  struct Site {
    int width = 0;
    std::vector<double> h;     // sum x x^T
    std::vector<float> amax;   // per channel
    std::vector<float> samples;  // optional raw rows (down site, smoothing search)
    std::vector<double> p;     // sum x_ref x^T (paired float inputs, refit)
    int64_t rows = 0;
  };
  bool record = false;          // keep this sequence's rows per site (float reference run)
  std::vector<std::vector<float>> rec = std::vector<std::vector<float>>(kSites);
  const std::vector<std::vector<float>>* pair = nullptr;  // accumulate p against these rows
  int layers = 0;
  int only_layer = -1;          // >= 0: record only this layer (and the final site when == L)
  bool hessian = true;
  int sample_every = 0;         // > 0: keep every n-th row of the down site
  double residual_max = 0;
  std::vector<Site> sites;      // [(layers + 1) * kSites]
  explicit Stats(int L) : layers(L), sites(size_t(L + 1) * kSites) {}
  Site& at(int l, int s) { return sites[size_t(l) * kSites + s]; }
  void input(int l, int s, const float* x, int t, int w) override {
    if (only_layer >= 0 && l != only_layer) return;
    Site& st = at(l, s);
    if (st.width == 0) {
      st.width = w;
      if (hessian) st.h.assign(size_t(w) * w, 0.0);
      st.amax.assign(size_t(w), 0.f);
    }
    if (record) {
      rec[s].assign(x, x + size_t(t) * w);
      return;
    }
    if (pair) {
      if (st.p.empty()) st.p.assign(size_t(w) * w, 0.0);
      const float* f = (*pair)[s].data();
      for (int i = 0; i < t; ++i)
        for (int a = 0; a < w; ++a) {
          const double fa = f[size_t(i) * w + a];
          if (fa == 0) continue;
          double* pr = st.p.data() + size_t(a) * w;
          const float* r = x + size_t(i) * w;
          for (int b = 0; b < w; ++b) pr[b] += fa * r[b];
        }
    }
    for (int i = 0; i < t; ++i) {
      const float* r = x + size_t(i) * w;
      for (int j = 0; j < w; ++j) st.amax[j] = std::max(st.amax[j], std::fabs(r[j]));
      if (hessian) {
        for (int a = 0; a < w; ++a) {
          const double ra = r[a];
          if (ra == 0) continue;
          double* hr = st.h.data() + size_t(a) * w;
          for (int b = 0; b <= a; ++b) hr[b] += ra * r[b];
        }
      }
      if (sample_every > 0 && s == kSiteDown && (st.rows + i) % sample_every == 0)
        st.samples.insert(st.samples.end(), r, r + w);
    }
    st.rows += t;
  }
  void residual(int, const float* x, int t, int w) override {
    for (int64_t i = 0; i < int64_t(t) * w; ++i)
      residual_max = std::max(residual_max, double(std::fabs(x[i])));
  }
  void finish() {
    for (Site& st : sites) {
      const int w = st.width;
      for (int a = 0; a < w && !st.h.empty(); ++a)
        for (int b = 0; b < a; ++b) st.h[size_t(b) * w + a] = st.h[size_t(a) * w + b];
    }
  }
};

void fake_quant_row(float* r, int d, int qmax) {
  float a = 0;
  for (int j = 0; j < d; ++j) a = std::max(a, std::fabs(r[j]));
  if (a == 0) return;
  for (int j = 0; j < d; ++j) {
    float q = std::floor(r[j] * qmax / a + 0.5f);
    q = std::min<float>(qmax, std::max<float>(-qmax, q));
    r[j] = q * a / qmax;
  }
}

WeightQuantOptions wopts(const LlmRecipe& r, int bits) {
  WeightQuantOptions o;
  o.bits = bits;
  o.group = bits == 4 ? r.group : 0;
  o.clip_search = r.clip_search;
  o.clip_min = r.clip_min;
  o.gptq = r.gptq;
  o.act_order = r.gptq_act_order;
  o.scale_refine = r.scale_refine;
  o.local_search = r.local_search;
  o.row_search = r.clip_row_search;
  o.damp = r.gptq_damp;
  return o;
}

// Output error of the down projection for smoothing scales s (layer-local calibration loss);
// y0 = the float outputs of the samples.
double down_loss(const TLayer& base, const std::vector<float>& samples, const std::vector<float>& y0,
                 int n, int hidden, const std::vector<float>& s, const Mat* had, const LlmRecipe& r) {
  TLayer L;
  L.w2 = base.w2;
  for (int i = 0; i < L.w2.rows; ++i)
    for (int j = 0; j < hidden; ++j) L.w2.at(i, j) *= s[j];
  if (had) {
    Mat w = L.w2;
    for (int i = 0; i < w.rows; ++i)
      for (int a = 0; a < hidden; ++a) {
        float acc = 0;
        for (int b = 0; b < hidden; ++b) acc += w.at(i, b) * had->at(a, b);
        L.w2.at(i, a) = acc / hidden;
      }
  }
  WeightQuantOptions o = wopts(r, r.weight_bits);
  o.gptq = false;
  o.clip_search = false;
  o.scale_refine = false;
  const QLinear q = quantize_linear(L.w2, {}, o);
  const int qa = r.act_qmax();
  std::vector<float> h(static_cast<size_t>(hidden)), t(static_cast<size_t>(hidden));
  double loss = 0;
  const int D = L.w2.rows;
  for (int i = 0; i < n; ++i) {
    const float* x = samples.data() + size_t(i) * hidden;
    for (int j = 0; j < hidden; ++j) h[j] = x[j] / s[j];
    if (had) {
      fake_quant_row(h.data(), hidden, 127);
      for (int a = 0; a < hidden; ++a) {
        const float* hr = had->row(a);
        float acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int b = 0; b < hidden; ++b) acc += hr[b] * h[b];
        t[a] = acc;
      }
    } else {
      t = h;
    }
    fake_quant_row(t.data(), hidden, qa);
    for (int o2 = 0; o2 < D; ++o2) {
      const float* wq = q.deq.row(o2);
      float y = 0;
#pragma omp simd reduction(+ : y)
      for (int j = 0; j < hidden; ++j) y += wq[j] * t[j];
      const double d = double(y) - y0[size_t(i) * D + o2];
      loss += d * d;
    }
  }
  return loss;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Copies float weights into the deq slots (unquantized layers simulate as float).
void init_deq(TModel& m) {
  m.emb_deq = m.emb;
  m.qcls.deq = m.wcls;
  for (TLayer& L : m.layers) {
    L.qq.deq = L.wq; L.qk.deq = L.wk; L.qv.deq = L.wv; L.qo.deq = L.wo;
    L.q1.deq = L.w1; L.q3.deq = L.w3; L.q2.deq = L.w2;
  }
}

// The float target under quantized inputs: W <- W P (H + damp)^-1 (least squares fit of the
// float model's outputs W x_ref from the quantized model's inputs x).
Mat refit(const Mat& w, const Stats::Site& st, double damp) {
  if (st.p.empty() || st.h.empty()) return w;
  const int K = w.cols;
  std::vector<double> L = st.h;
  double mean = 0;
  for (int i = 0; i < K; ++i) mean += L[size_t(i) * K + i];
  mean /= K;
  for (int i = 0; i < K; ++i) L[size_t(i) * K + i] += damp * mean + 1e-12;
  if (!cholesky_lower(L, K)) return w;
  Mat out = w;
  std::vector<double> y(static_cast<size_t>(K));
  for (int n = 0; n < w.rows; ++n) {
    for (int b = 0; b < K; ++b) {
      double t = 0;
      for (int a = 0; a < K; ++a) t += st.p[size_t(a) * K + b] * w.at(n, a);
      y[b] = t + (damp * mean + 1e-12) * w.at(n, b);  // ridge toward the float weights
    }
    for (int i = 0; i < K; ++i) {  // L z = y
      double t = y[i];
      for (int k = 0; k < i; ++k) t -= L[size_t(i) * K + k] * y[k];
      y[i] = t / L[size_t(i) * K + i];
    }
    for (int i = K - 1; i >= 0; --i) {  // L^T x = z
      double t = y[i];
      for (int k = i + 1; k < K; ++k) t -= L[size_t(k) * K + i] * y[k];
      y[i] = t / L[size_t(i) * K + i];
    }
    for (int k = 0; k < K; ++k) out.at(n, k) = float(y[k]);
  }
  return out;
}

void quantize_layer(TLayer& L, Stats& st, int l, const LlmRecipe& r) {
  const WeightQuantOptions o = wopts(r, r.weight_bits);
  auto quant = [&](const Mat& w, int site) {
    const Stats::Site& ss = st.at(l, site);
    return quantize_linear(r.refit ? refit(w, ss, r.refit_damp) : w, ss.h, o);
  };
  L.qq = quant(L.wq, kSiteAtt);
  L.qk = quant(L.wk, kSiteAtt);
  L.qv = quant(L.wv, kSiteAtt);
  L.qo = quant(L.wo, kSiteO);
  L.q1 = quant(L.w1, kSiteFfn);
  L.q3 = quant(L.w3, kSiteFfn);
  L.q2 = quant(L.w2, kSiteDown);
}

void quantize_embedding(TModel& m) {
  const int V = m.emb.rows, D = m.emb.cols;
  m.emb_q.assign(size_t(V) * D, 0);
  m.emb_scale.assign(size_t(V), 0.f);
  m.emb_deq = Mat(V, D);
  for (int v = 0; v < V; ++v) {
    float a = 0;
    for (int j = 0; j < D; ++j) a = std::max(a, std::fabs(m.emb.at(v, j)));
    if (a == 0) continue;
    // representable row scale: mant in [2^14, 2^15), real = mant * 2^-exp
    const double s = a / 127.0;
    const int e = 14 - int(std::floor(std::log2(s)));
    double mant = std::nearbyint(std::ldexp(s, e));
    const double rs = std::ldexp(std::min(mant, 32767.0), -e);
    m.emb_scale[v] = float(rs);
    for (int j = 0; j < D; ++j) {
      const double q = std::min(127.0, std::max(-127.0, std::nearbyint(m.emb.at(v, j) / rs)));
      m.emb_q[size_t(v) * D + j] = int8_t(q);
      m.emb_deq.at(v, j) = float(q * rs);
    }
  }
}

}  // namespace

TModel quantize_model(const LlamaWeights& w, const LlmRecipe& r, QuantReport* rep,
                      const std::vector<std::vector<int>>* calib_override) {
  const auto t0 = std::chrono::steady_clock::now();
  auto note = [&](const std::string& s) {
    if (rep) rep->lines.push_back(s);
  };
  const LlamaConfig& c = w.config;
  std::vector<std::vector<int>> calib =
      calib_override ? *calib_override
                     : sample_sequences(w, r.calib_sequences, r.calib_tokens, uint64_t(r.calib_seed),
                                       float(r.calib_topp), r.calib_stop_at_bos);
  {
    int64_t n = 0;
    for (auto& s : calib) n += int64_t(s.size());
    char b[160];
    std::snprintf(b, sizeof b, "calibration: %zu sequences, %lld tokens (seeds %d..), %.2f s",
                  calib.size(), (long long)n, r.calib_seed, seconds_since(t0));
    note(b);
  }
  const int hidden =
      r.online_hadamard ? hadamard_size_at_least(int(std::ceil(c.hidden_dim * r.hidden_expand))) : c.hidden_dim;
  std::vector<int8_t> had;
  if (r.online_hadamard) had = hadamard_matrix(hidden);

  // Smoothing scales of the down projection (invariant to the residual rotation).
  std::vector<std::vector<float>> smooth(size_t(c.n_layers));
  TModel base = base_model(w, hidden, r.hidden_expand > 1);
  if (r.smooth) {
    Stats st(c.n_layers);
    st.hessian = false;
    st.sample_every = 8;
    for (auto& s : calib) simulate(base, false, {}, s.data(), int(s.size()), &st);
    for (int l = 0; l < c.n_layers; ++l) {
      const Stats::Site& site = st.at(l, kSiteDown);
      const int n = int(site.samples.size() / hidden);
      std::vector<float> wmax(size_t(hidden), 0.f);
      const Mat& w2 = base.layers[l].w2;
      for (int i = 0; i < w2.rows; ++i)
        for (int j = 0; j < hidden; ++j) wmax[j] = std::max(wmax[j], std::fabs(w2.at(i, j)));
      auto scales = [&](double alpha) {
        std::vector<float> s(size_t(hidden), 1.f);
        for (int j = 0; j < hidden; ++j)
          if (site.amax[j] > 0 && wmax[j] > 0)
            s[j] = float(std::pow(double(site.amax[j]), alpha) / std::pow(double(wmax[j]), 1 - alpha));
        return s;
      };
      double best_alpha = r.smooth_alpha;
      if (r.smooth_search) {
        const int D = c.dim;
        std::vector<float> y0(size_t(n) * D);
        for (int i = 0; i < n; ++i)
          for (int o2 = 0; o2 < D; ++o2) {
            double t = 0;
            for (int j = 0; j < hidden; ++j) t += double(w2.at(o2, j)) * site.samples[size_t(i) * hidden + j];
            y0[size_t(i) * D + o2] = float(t);
          }
        Mat hadf;
        if (r.online_hadamard) {
          hadf = Mat(hidden, hidden);
          for (size_t i = 0; i < had.size(); ++i) hadf.a[i] = had[i];
        }
        const Mat* hp = r.online_hadamard ? &hadf : nullptr;
        const std::vector<float> ones(static_cast<size_t>(hidden), 1.f);
        double best = down_loss(base.layers[l], site.samples, y0, n, hidden, ones, hp, r);
        best_alpha = -1;
        for (int a = 0; a <= 10; ++a) {
          const double alpha = a / 10.0;
          const double loss = down_loss(base.layers[l], site.samples, y0, n, hidden, scales(alpha), hp, r);
          if (loss < best) best = loss, best_alpha = alpha;
        }
      }
      if (best_alpha >= 0) smooth[l] = scales(best_alpha);
      char b[120];
      std::snprintf(b, sizeof b, "smooth layer %d: alpha %s", l,
                    best_alpha >= 0 ? std::to_string(best_alpha).substr(0, 4).c_str() : "off");
      note(b);
    }
  }

  // Builds the transformed float model for one rotation seed.
  auto transformed = [&](int seed) {
    TModel m = base;
    for (int l = 0; l < c.n_layers; ++l)
      if (!smooth[l].empty()) apply_smooth(m.layers[l], smooth[l]);
    if (r.rotate) rotate_residual(m, seed);
    if (r.residual_expand > 1)
      expand_residual(m, hadamard_size_at_least(int(std::ceil(c.dim * r.residual_expand))), seed);
    if (r.rotate_heads) rotate_heads(m);
    if (r.online_hadamard) {
      m.online_had = true;
      for (TLayer& L : m.layers) fold_online_hadamard(L, had, hidden);
    }
    if (r.online_hadamard_o) {  // wo <- wo H^T / dim (the graph applies H to the attention output)
      m.online_had_o = true;
      const std::vector<int8_t> ho = hadamard_matrix(c.dim);
      for (TLayer& L : m.layers) {
        TLayer t;
        t.w2 = L.wo;
        fold_online_hadamard(t, ho, c.dim);
        L.wo = t.w2;
      }
    }
    init_deq(m);
    return m;
  };
  SimConfig qcfg;
  qcfg.act_qmax = r.act_qmax();
  qcfg.kv_int8 = true;
  qcfg.clip = r.attention_clip;

  auto quantize_all = [&](TModel& m, double* residual_max) {
    if (!r.gptq_sequential) {
      Stats st(c.n_layers);
      for (auto& s : calib) simulate(m, false, {}, s.data(), int(s.size()), &st);
      st.finish();
      *residual_max = st.residual_max;
      for (int l = 0; l < c.n_layers; ++l) quantize_layer(m.layers[l], st, l, r);
      m.qcls = quantize_linear(m.wcls, st.at(c.n_layers, kSiteAtt).h, wopts(r, r.classifier_bits));
    } else {
      *residual_max = 0;
      quantize_embedding(m);
      for (int l = 0; l <= c.n_layers; ++l) {
        Stats st(c.n_layers);
        st.only_layer = l;
        SimConfig sc = qcfg;
        sc.stop_layer = l < c.n_layers ? l : -1;
        SimConfig fc;
        fc.stop_layer = sc.stop_layer;
        Stats ref(c.n_layers);
        ref.only_layer = l;
        ref.record = true;
        if (r.refit) st.pair = &ref.rec;
        for (auto& s : calib) {
          if (r.refit) simulate(m, false, fc, s.data(), int(s.size()), &ref);
          simulate(m, true, sc, s.data(), int(s.size()), &st);
        }
        st.finish();
        *residual_max = std::max(*residual_max, st.residual_max);
        if (l < c.n_layers)
          quantize_layer(m.layers[l], st, l, r);
        else
          m.qcls = quantize_linear(r.refit ? refit(m.wcls, st.at(l, kSiteAtt), r.refit_damp) : m.wcls,
                                   st.at(c.n_layers, kSiteAtt).h, wopts(r, r.classifier_bits));
      }
      // residual max of the float model too (E must hold both)
      Stats st(c.n_layers);
      st.hessian = false;
      for (auto& s : calib) simulate(m, false, {}, s.data(), int(s.size()), &st);
      *residual_max = std::max(*residual_max, st.residual_max);
    }
    quantize_embedding(m);
    m.quantized = true;
  };

  TModel best;
  double best_loss = 0, best_rmax = 0;
  int best_seed = r.rotate_seed;
  const int trials = r.rotate ? r.rotate_trials : 1;
  for (int t = 0; t < trials; ++t) {
    const int seed = r.rotate_seed + t;
    TModel m = transformed(seed);
    double rmax = 0;
    quantize_all(m, &rmax);
    if (trials == 1) {
      best = std::move(m);
      best_rmax = rmax;
      break;
    }
    double loss = 0;
    for (size_t i = 0; i < calib.size(); i += 2)
      loss += simulate(m, true, qcfg, calib[i].data(), int(calib[i].size()));
    char b[120];
    std::snprintf(b, sizeof b, "rotation seed %d: calibration nll %.4f", seed, loss);
    note(b);
    if (t == 0 || loss < best_loss) {
      best_loss = loss;
      best = std::move(m);
      best_rmax = rmax;
      best_seed = seed;
    }
  }
  if (r.rotate) note("rotation seed: " + std::to_string(best_seed));
  if (rep) {
    rep->residual_max = best_rmax;
    const double range = 2147483647.0 / (best_rmax * r.residual_headroom);
    rep->residual_exp = int(std::floor(std::log2(range)));
    char b[160];
    std::snprintf(b, sizeof b, "residual: max |x| %.3f, E = %d; quantized in %.2f s", best_rmax,
                  rep->residual_exp, seconds_since(t0));
    note(b);
  }
  return best;
}

}  // namespace fq::llama
