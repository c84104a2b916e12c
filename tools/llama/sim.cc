// Float simulation of the integer decode graph (quantize.h, simulate): the quantization points of
// docs/llm_int.md applied in float to a whole sequence at once (causal attention).
#include <algorithm>
#include <cmath>

#include "quantize.h"

namespace fq::llama {

namespace {

// Y[t][n] = sum_k X[t][k] W[n][k]
void matmul_t(const float* x, int t, int k, const Mat& w, float* y) {
  const int n = w.rows;
  for (int i = 0; i < t; ++i) {
    const float* xr = x + size_t(i) * k;
    float* yr = y + size_t(i) * n;
    for (int o = 0; o < n; ++o) {
      const float* wr = w.row(o);
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int j = 0; j < k; ++j) s += xr[j] * wr[j];
      yr[o] = s;
    }
  }
}

void rmsnorm_rows(const float* x, int t, int d, float* y, double eps) {
  for (int i = 0; i < t; ++i) {
    const float* xr = x + size_t(i) * d;
    double ss = 0;
    for (int j = 0; j < d; ++j) ss += double(xr[j]) * xr[j];
    const float r = float(1.0 / std::sqrt(ss / d + eps));
    for (int j = 0; j < d; ++j) y[size_t(i) * d + j] = xr[j] * r;
  }
}

// Per-row symmetric abs-max fake quantization at qmax (quantize_row of llm.h, in float).
void fake_quant_rows(float* x, int t, int d, int qmax) {
  if (qmax <= 0) return;
  for (int i = 0; i < t; ++i) {
    float* r = x + size_t(i) * d;
    float a = 0;
    for (int j = 0; j < d; ++j) a = std::max(a, std::fabs(r[j]));
    if (a == 0) continue;
    const float f = qmax / a, inv = a / qmax;
    for (int j = 0; j < d; ++j) {
      float q = std::floor(r[j] * f + 0.5f);
      q = std::min<float>(qmax, std::max<float>(-qmax, q));
      r[j] = q * inv;
    }
  }
}

void rope_rows(float* x, int t, int width, int hs, bool q14) {
  for (int p = 0; p < t; ++p) {
    float* r = x + size_t(p) * width;
    for (int i = 0; i < width; i += 2) {
      const int hi = i % hs;
      const float freq = 1.0f / std::pow(10000.0f, hi / float(hs));
      const float val = p * freq;
      float fcr = std::cos(val), fci = std::sin(val);
      if (q14) {
        fcr = std::nearbyint(fcr * 16384.0f) / 16384.0f;
        fci = std::nearbyint(fci * 16384.0f) / 16384.0f;
      }
      const float a = r[i], b = r[i + 1];
      r[i] = a * fcr - b * fci;
      r[i + 1] = a * fci + b * fcr;
    }
  }
}

}  // namespace

double simulate(const TModel& m, bool quant, const SimConfig& cfg, const int* tokens, int T,
                SimObserver* obs, std::vector<float>* logits_out) {
  const LlamaConfig& c = m.c;
  const int D = c.dim, HD = m.hidden, hs = c.head_size(), kvd = c.kv_dim(), V = c.vocab_size;
  const int H = c.n_heads, kvmul = c.kv_mul();
  const int R = m.res > 0 ? m.res : D;  // residual width (expanded frame)
  const double eps = m.norm_eps;
  std::vector<float> x(size_t(T) * R), xb(size_t(T) * R), q(size_t(T) * D), k(size_t(T) * kvd),
      v(size_t(T) * kvd), att(size_t(T) * D), o(size_t(T) * std::max(R, D)), g(size_t(T) * HD),
      u(size_t(T) * HD), sc(T);
  const Mat& emb = quant ? m.emb_deq : m.emb;
  for (int i = 0; i < T; ++i) std::copy_n(emb.row(tokens[i]), R, x.data() + size_t(i) * R);
  if (obs) obs->residual(-1, x.data(), T, R);
  Mat had, hado;
  if (m.online_had_o) {
    const std::vector<int8_t> h8 = hadamard_matrix(D);
    hado = Mat(D, D);
    for (size_t i = 0; i < h8.size(); ++i) hado.a[i] = h8[i];
  }
  if (m.online_had) {
    const std::vector<int8_t> h8 = hadamard_matrix(HD);
    had = Mat(HD, HD);
    for (size_t i = 0; i < h8.size(); ++i) had.a[i] = h8[i];
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const TLayer& L = m.layers[l];
    rmsnorm_rows(x.data(), T, R, xb.data(), eps);
    if (obs) obs->input(l, kSiteAtt, xb.data(), T, R);
    fake_quant_rows(xb.data(), T, R, cfg.act_qmax);
    matmul_t(xb.data(), T, R, quant ? L.qq.deq : L.wq, q.data());
    matmul_t(xb.data(), T, R, quant ? L.qk.deq : L.wk, k.data());
    matmul_t(xb.data(), T, R, quant ? L.qv.deq : L.wv, v.data());
    rope_rows(q.data(), T, D, hs, quant);
    rope_rows(k.data(), T, kvd, hs, quant);
    if (cfg.kv_int8) {
      for (int i = 0; i < T; ++i)
        for (int gg = 0; gg < c.n_kv_heads; ++gg) {
          fake_quant_rows(k.data() + size_t(i) * kvd + gg * hs, 1, hs, 127);
          fake_quant_rows(v.data() + size_t(i) * kvd + gg * hs, 1, hs, 127);
        }
    }
    for (int i = 0; i < T; ++i) {
      for (int h = 0; h < H; ++h) {
        const int gg = h / kvmul;
        const float* qh = q.data() + size_t(i) * D + h * hs;
        float mx = -1e30f;
        for (int u2 = 0; u2 <= i; ++u2) {
          const float* kr = k.data() + size_t(u2) * kvd + gg * hs;
          float s = 0;
          for (int j = 0; j < hs; ++j) s += qh[j] * kr[j];
          sc[u2] = s;
          mx = std::max(mx, s);
        }
        double z = 0;
        for (int u2 = 0; u2 <= i; ++u2) {
          float d = sc[u2] - mx;
          if (cfg.clip > 0) d = std::max<float>(d, -cfg.clip);
          sc[u2] = std::exp(d);
          z += sc[u2];
        }
        float* out = att.data() + size_t(i) * D + h * hs;
        std::fill_n(out, hs, 0.f);
        for (int u2 = 0; u2 <= i; ++u2) {
          const float p = float(sc[u2] / z);
          const float* vr = v.data() + size_t(u2) * kvd + gg * hs;
          for (int j = 0; j < hs; ++j) out[j] += p * vr[j];
        }
      }
    }
    if (m.online_had_o) {
      if (cfg.act_qmax > 0) fake_quant_rows(att.data(), T, D, 127);
      std::vector<float> t2(att.size());
      matmul_t(att.data(), T, D, hado, t2.data());
      att.swap(t2);
    }
    if (obs) obs->input(l, kSiteO, att.data(), T, D);
    fake_quant_rows(att.data(), T, D, cfg.act_qmax);
    matmul_t(att.data(), T, D, quant ? L.qo.deq : L.wo, o.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    if (obs) obs->residual(l, x.data(), T, R);
    rmsnorm_rows(x.data(), T, R, xb.data(), eps);
    if (obs) obs->input(l, kSiteFfn, xb.data(), T, R);
    fake_quant_rows(xb.data(), T, R, cfg.act_qmax);
    matmul_t(xb.data(), T, R, quant ? L.q1.deq : L.w1, g.data());
    matmul_t(xb.data(), T, R, quant ? L.q3.deq : L.w3, u.data());
    for (size_t i = 0; i < g.size(); ++i) {
      const float z = g[i];
      g[i] = z * (1.0f / (1.0f + std::exp(-z))) * u[i];
    }
    if (m.online_had) {
      // swiglu -> int8 (qmax 127) -> integer Hadamard -> requantized at act_qmax
      if (cfg.act_qmax > 0) fake_quant_rows(g.data(), T, HD, 127);
      matmul_t(g.data(), T, HD, had, u.data());
      std::swap(g, u);
    }
    if (obs) obs->input(l, kSiteDown, g.data(), T, HD);
    fake_quant_rows(g.data(), T, HD, cfg.act_qmax);
    matmul_t(g.data(), T, HD, quant ? L.q2.deq : L.w2, o.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    if (obs) obs->residual(l, x.data(), T, R);
    if (l == cfg.stop_layer) return 0;
  }
  rmsnorm_rows(x.data(), T, R, xb.data(), eps);
  if (obs) obs->input(c.n_layers, kSiteAtt, xb.data(), T, R);
  fake_quant_rows(xb.data(), T, R, cfg.act_qmax);
  std::vector<float> logits(size_t(T) * V);
  matmul_t(xb.data(), T, R, quant ? m.qcls.deq : m.wcls, logits.data());
  double nll = 0;
  for (int i = 0; i + 1 < T; ++i) {
    const float* lr = logits.data() + size_t(i) * V;
    float mx = *std::max_element(lr, lr + V);
    double z = 0;
    for (int j = 0; j < V; ++j) z += std::exp(double(lr[j]) - mx);
    nll += std::log(z) + mx - lr[tokens[i + 1]];
  }
  if (logits_out) *logits_out = std::move(logits);
  return nll;
}

}  // namespace fq::llama
