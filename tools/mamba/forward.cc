// Float64 reference forward pass (forward.h). Equations (docs/mamba.md), per layer:
//   h = RMSNorm(x) ; xi = W_x h ; z = W_z h                  (in_proj rows [0, Di) and [Di, 2Di))
//   u = SiLU(conv_b + sum_j conv_w[j] * xi[t - K + 1 + j])    (causal depthwise, K = d_conv)
//   dt_low, B, C = x_proj u (rows [0, R), [R, R + N), [R + N, R + 2N))
//   dt = softplus(W_dt dt_low + b_dt) ; A = -exp(A_log)
//   s[d][n] = s[d][n] * exp(dt[d] A[d][n]) + (dt[d] B[n]) u[d]
//   y[d] = sum_n s[d][n] C[n] + D[d] u[d] ; y = y * SiLU(z) ; x = x + W_out y
// logits = head RMSNorm_f(x).
#include "forward.h"

#include <cmath>

#include "fq/fq.h"

namespace fq::mamba {

namespace {

using Vec = std::vector<double>;

void check_token(const Model& m, int token) {
  if (token < 0 || token >= m.config.padded_vocab())
    throw Error("mamba reference: token " + std::to_string(token) + " outside the vocabulary [0, " +
                std::to_string(m.config.padded_vocab()) + ")");
}

Vec rmsnorm(const Vec& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = double(w[i]) * (x[i] * r);
  return y;
}

// y = W[row0 : row0 + rows] x (+ b), W row-major [*, K].
Vec matvec(const std::vector<float>& w, const Vec& x, size_t row0, size_t rows, const std::vector<float>* b = nullptr) {
  const size_t k = x.size();
  Vec y(rows);
  for (size_t j = 0; j < rows; ++j) {
    double acc = b ? double((*b)[j]) : 0.0;
    const float* wr = w.data() + (row0 + j) * k;
    for (size_t i = 0; i < k; ++i) acc += double(wr[i]) * x[i];
    y[j] = acc;
  }
  return y;
}

// One mixer on one token: (xi, z) after in_proj -> the mixer output (before out_proj: y gated).
// conv [K-1][Di], ssm [Di][N] updated.
Vec mixer_core(const Model& m, int l, const Vec& xi, const Vec& z, Vec& conv, Vec& ssm) {
  const Config& c = m.config;
  const int Di = c.d_inner(), K = c.d_conv, N = c.d_state, R = c.dt_rank;
  const std::vector<float>& cw = m.mixer(l, "conv1d.weight");  // [Di, 1, K]
  const std::vector<float>& cb = m.mixer(l, "conv1d.bias");
  Vec u(static_cast<size_t>(Di));
  for (int d = 0; d < Di; ++d) {
    double acc = double(cb[size_t(d)]);
    for (int j = 0; j < K; ++j) {
      const double in = j < K - 1 ? conv[size_t(j) * Di + d] : xi[size_t(d)];
      acc += double(cw[size_t(d) * K + j]) * in;
    }
    u[size_t(d)] = silu(acc);
  }
  // Shift the conv state: drop the oldest row, append xi.
  for (int j = 0; j + 1 < K - 1; ++j)
    for (int d = 0; d < Di; ++d) conv[size_t(j) * Di + d] = conv[size_t(j + 1) * Di + d];
  for (int d = 0; d < Di; ++d) conv[size_t(K - 2) * Di + d] = xi[size_t(d)];

  const std::vector<float>& xp = m.mixer(l, "x_proj.weight");
  const Vec dt_low = matvec(xp, u, 0, size_t(R));
  const Vec B = matvec(xp, u, size_t(R), size_t(N));
  const Vec C = matvec(xp, u, size_t(R + N), size_t(N));
  Vec dt = matvec(m.mixer(l, "dt_proj.weight"), dt_low, 0, size_t(Di), &m.mixer(l, "dt_proj.bias"));
  for (double& v : dt) v = softplus(v);
  const std::vector<float>& A_log = m.mixer(l, "A_log");
  const std::vector<float>& D = m.mixer(l, "D");
  Vec y(static_cast<size_t>(Di));
  for (int d = 0; d < Di; ++d) {
    double* h = ssm.data() + size_t(d) * N;
    double sum = 0;
    for (int n = 0; n < N; ++n) {
      const double a = -std::exp(double(A_log[size_t(d) * N + n]));
      h[n] = h[n] * std::exp(dt[size_t(d)] * a) + (dt[size_t(d)] * B[size_t(n)]) * u[size_t(d)];
      sum += h[n] * C[size_t(n)];
    }
    y[size_t(d)] = (sum + double(D[size_t(d)]) * u[size_t(d)]) * silu(z[size_t(d)]);
  }
  return y;
}

}  // namespace

double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }
double silu(double x) { return x / (1.0 + std::exp(-x)); }

State::State(const Config& c) {
  conv.assign(size_t(c.n_layer), Vec(size_t(c.d_conv - 1) * c.d_inner(), 0.0));
  ssm.assign(size_t(c.n_layer), Vec(size_t(c.d_inner()) * c.d_state, 0.0));
}

void State::reset() {
  for (auto* g : {&conv, &ssm})
    for (Vec& v : *g) std::fill(v.begin(), v.end(), 0.0);
}

std::vector<double> forward(const Model& m, State& s, int token, std::vector<double>* hidden) {
  check_token(m, token);
  const Config& c = m.config;
  const size_t D = size_t(c.d_model), Di = size_t(c.d_inner());
  const std::vector<float>& emb = m.v("backbone.embeddings.weight");
  Vec x(D);
  for (size_t i = 0; i < D; ++i) x[i] = double(emb[size_t(token) * D + i]);
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "backbone.layers." + std::to_string(l) + ".";
    const Vec h = rmsnorm(x, m.v(p + "norm.weight"), c.norm_eps);
    const std::vector<float>& w_in = m.mixer(l, "in_proj.weight");
    const Vec xi = matvec(w_in, h, 0, Di), z = matvec(w_in, h, Di, Di);
    const Vec y = mixer_core(m, l, xi, z, s.conv[size_t(l)], s.ssm[size_t(l)]);
    const Vec o = matvec(m.mixer(l, "out_proj.weight"), y, 0, D);
    for (size_t i = 0; i < D; ++i) x[i] += o[i];
  }
  const Vec f = rmsnorm(x, m.v("backbone.norm_f.weight"), c.norm_eps);
  if (hidden) *hidden = f;
  return matvec(m.head(), f, 0, size_t(c.padded_vocab()));
}

std::vector<std::vector<double>> forward_sequence(const Model& m, const std::vector<int>& tokens,
                                                  State* state, std::vector<std::vector<double>>* hidden) {
  const Config& c = m.config;
  const size_t D = size_t(c.d_model), Di = size_t(c.d_inner()), T = tokens.size();
  State local(c);
  State& s = state ? *state : local;
  const std::vector<float>& emb = m.v("backbone.embeddings.weight");
  std::vector<Vec> x(T, Vec(D));
  for (size_t t = 0; t < T; ++t) {
    check_token(m, tokens[t]);
    for (size_t i = 0; i < D; ++i) x[t][i] = double(emb[size_t(tokens[t]) * D + i]);
  }
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "backbone.layers." + std::to_string(l) + ".";
    const std::vector<float>& w_in = m.mixer(l, "in_proj.weight");
    // in_proj over all tokens, then the recurrent part token by token, then out_proj.
    std::vector<Vec> xi(T), z(T), y(T);
    for (size_t t = 0; t < T; ++t) {
      const Vec h = rmsnorm(x[t], m.v(p + "norm.weight"), c.norm_eps);
      xi[t] = matvec(w_in, h, 0, Di);
      z[t] = matvec(w_in, h, Di, Di);
    }
    // Causal conv over the padded sequence (the carried rows, then xi), all tokens.
    const size_t K = size_t(c.d_conv), P = K - 1, N = size_t(c.d_state), R = size_t(c.dt_rank);
    Vec& conv = s.conv[size_t(l)];
    std::vector<const double*> rows(P + T);
    for (size_t j = 0; j < P; ++j) rows[j] = conv.data() + j * Di;
    for (size_t t = 0; t < T; ++t) rows[P + t] = xi[t].data();
    const std::vector<float>& cw = m.mixer(l, "conv1d.weight");
    const std::vector<float>& cb = m.mixer(l, "conv1d.bias");
    std::vector<Vec> u(T, Vec(Di));
    for (size_t t = 0; t < T; ++t)
      for (size_t d = 0; d < Di; ++d) {
        double acc = double(cb[d]);
        for (size_t j = 0; j < K; ++j) acc += double(cw[d * K + j]) * rows[t + j][d];
        u[t][d] = silu(acc);
      }
    Vec tail(P * Di);  // the new carried rows: the last P rows of the padded sequence
    for (size_t j = 0; j < P; ++j)
      for (size_t d = 0; d < Di; ++d) tail[j * Di + d] = rows[T + j][d];
    conv = tail;
    // x_proj, dt_proj and softplus for all tokens.
    const std::vector<float>& xp = m.mixer(l, "x_proj.weight");
    std::vector<Vec> B(T), C(T), dt(T);
    for (size_t t = 0; t < T; ++t) {
      const Vec dt_low = matvec(xp, u[t], 0, R);
      B[t] = matvec(xp, u[t], R, N);
      C[t] = matvec(xp, u[t], R + N, N);
      dt[t] = matvec(m.mixer(l, "dt_proj.weight"), dt_low, 0, Di, &m.mixer(l, "dt_proj.bias"));
      for (double& v : dt[t]) v = softplus(v);
    }
    // The scan, channel by channel over the whole sequence (channel-major, the parallel order).
    const std::vector<float>& A_log = m.mixer(l, "A_log");
    const std::vector<float>& Dv = m.mixer(l, "D");
    for (size_t t = 0; t < T; ++t) y[t].assign(Di, 0.0);
    for (size_t d = 0; d < Di; ++d) {
      double* h = s.ssm[size_t(l)].data() + d * N;
      for (size_t t = 0; t < T; ++t) {
        double sum = 0;
        for (size_t n = 0; n < N; ++n) {
          const double a = -std::exp(double(A_log[d * N + n]));
          h[n] = h[n] * std::exp(dt[t][d] * a) + (dt[t][d] * B[t][n]) * u[t][d];
          sum += h[n] * C[t][n];
        }
        y[t][d] = (sum + double(Dv[d]) * u[t][d]) * silu(z[t][d]);
      }
    }
    for (size_t t = 0; t < T; ++t) {
      const Vec o = matvec(m.mixer(l, "out_proj.weight"), y[t], 0, D);
      for (size_t i = 0; i < D; ++i) x[t][i] += o[i];
    }
  }
  std::vector<Vec> logits(T);
  if (hidden) hidden->assign(T, Vec());
  for (size_t t = 0; t < T; ++t) {
    const Vec f = rmsnorm(x[t], m.v("backbone.norm_f.weight"), c.norm_eps);
    if (hidden) (*hidden)[t] = f;
    logits[t] = matvec(m.head(), f, 0, size_t(c.padded_vocab()));
  }
  return logits;
}

}  // namespace fq::mamba
