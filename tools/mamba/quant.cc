// fqquant-mamba's pipeline (quant.h): recipe, calibration text, transforms, statistics, weights
// and the integer constants of the ssm kernels.
#include "quant.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "forward.h"
#include "fq/fq.h"
#include "gptq.h"
#include "init.h"
#include "recipe_yaml.h"

namespace fq::mamba {

namespace {

using Vec = std::vector<double>;
using tools::recipe::bad;
using tools::recipe::scalar;

// ---- recipe ---------------------------------------------------------------------------------

void set_key(MambaRecipe& r, const std::string& key, const YAML::Node& v, const std::string& path) {
  auto integer = [&](int lo, int hi) { return tools::recipe::in_range<int>(path, key, v, lo, hi); };
  auto bits = [&]() { return tools::recipe::bits(path, key, v); };
  if (key == "name") r.name = scalar<std::string>(path, key, v);
  else if (key == "weight_bits") r.weight_bits = bits();
  else if (key == "head_bits") r.head_bits = bits();
  else if (key == "activation_bits") r.activation_bits = bits();
  else if (key == "group") {
    r.group = scalar<int>(path, key, v);
    if (r.group != 32 && r.group != 64 && r.group != 128) bad(path, v, "group must be 32, 64 or 128");
  } else if (key == "rotate") {
    r.rotate = scalar<std::string>(path, key, v);
    if (r.rotate != "none" && r.rotate != "hadamard" && r.rotate != "klt" && r.rotate != "auto")
      bad(path, v, "rotate must be none, hadamard, klt or auto");
  } else if (key == "rotate_seed") r.rotate_seed = integer(0, 1 << 30);
  else if (key == "online_hadamard") {
    r.online_auto = v.IsScalar() && v.Scalar() == "auto";
    if (!r.online_auto) r.online_hadamard = scalar<bool>(path, key, v);
  }
  else if (key == "clip_search") r.clip_search = scalar<bool>(path, key, v);
  else if (key == "gptq") r.gptq = scalar<bool>(path, key, v);
  else if (key == "gptq_act_order") r.act_order = scalar<bool>(path, key, v);
  else if (key == "calib_sequences") r.calib_sequences = integer(1, 4096);
  else if (key == "calib_tokens") r.calib_tokens = integer(2, 1 << 20);
  else if (key == "calib_seed") r.calib_seed = integer(0, 1 << 30);
  else bad(path, v, "unknown recipe key '" + key + "'");
}

// ---- linear algebra (double) -----------------------------------------------------------------

Mat to_mat(const std::vector<float>& v, int rows, int cols, size_t offset = 0) {
  Mat m(rows, cols);
  std::copy(v.begin() + long(offset), v.begin() + long(offset + size_t(rows) * cols), m.a.begin());
  return m;
}

// w <- w Q (columns mixed: a reader of the rotated stream), Q [K][K].
void mul_right(Mat& w, const Vec& q) {
  const int K = w.cols;
  Vec row(static_cast<size_t>(K));
  for (int n = 0; n < w.rows; ++n) {
    std::fill(row.begin(), row.end(), 0.0);
    for (int i = 0; i < K; ++i) {
      const double wi = w.at(n, i);
      for (int j = 0; j < K; ++j) row[size_t(j)] += wi * q[size_t(i) * K + j];
    }
    for (int j = 0; j < K; ++j) w.at(n, j) = float(row[size_t(j)]);
  }
}

// w <- Q^T w (rows mixed: a writer of the rotated stream), Q [N][N], w [N][K].
void mul_left_t(Mat& w, const Vec& q) {
  const int N = w.rows, K = w.cols;
  std::vector<double> out(size_t(N) * K, 0.0);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const double qij = q[size_t(i) * N + j];  // (Q^T)[j][i]
      if (qij == 0) continue;
      for (int k = 0; k < K; ++k) out[size_t(j) * K + k] += qij * w.at(i, k);
    }
  for (size_t i = 0; i < out.size(); ++i) w.a[i] = float(out[i]);
}

// Sylvester Hadamard H_n (n = 2^k), entries +-1: H[i][j] = (-1)^popcount(i & j) (the integer
// hadamard kernel's matrix for b = 1, fq/kernels/llm.h).
Vec hadamard(int n) {
  Vec h(size_t(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) h[size_t(i) * n + j] = (__builtin_popcount(unsigned(i & j)) & 1) ? -1.0 : 1.0;
  return h;
}

bool pow2(int n) { return n > 0 && (n & (n - 1)) == 0; }

// Eigenvectors of a symmetric matrix (cyclic Jacobi), columns sorted by decreasing eigenvalue.
Vec eigenvectors(Vec a, int n) {
  Vec v(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i) v[size_t(i) * n + i] = 1;
  for (int sweep = 0; sweep < 60; ++sweep) {
    double off = 0, diag = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) (i == j ? diag : off) += a[size_t(i) * n + j] * a[size_t(i) * n + j];
    if (off <= 1e-24 * diag) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[size_t(p) * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double app = a[size_t(p) * n + p], aqq = a[size_t(q) * n + q];
        const double theta = (aqq - app) / (2 * apq);
        const double t = (theta >= 0 ? 1 : -1) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // A <- A J (columns p, q)
          const double akp = a[size_t(k) * n + p], akq = a[size_t(k) * n + q];
          a[size_t(k) * n + p] = c * akp - s * akq;
          a[size_t(k) * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // A <- J^T A (rows p, q)
          const double apk = a[size_t(p) * n + k], aqk = a[size_t(q) * n + k];
          a[size_t(p) * n + k] = c * apk - s * aqk;
          a[size_t(q) * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {  // V <- V J
          const double vkp = v[size_t(k) * n + p], vkq = v[size_t(k) * n + q];
          v[size_t(k) * n + p] = c * vkp - s * vkq;
          v[size_t(k) * n + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[size_t(i)] = i;
  std::sort(order.begin(), order.end(),
            [&](int x, int y) { return a[size_t(x) * n + x] > a[size_t(y) * n + y]; });
  Vec out(size_t(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) out[size_t(i) * n + j] = v[size_t(i) * n + order[size_t(j)]];
  return out;
}

// ---- the transformed float64 model, with statistics hooks ---------------------------------------

struct Stats {
  bool hessians = false;
  double resid_max = 0;
  Vec cov;                                    // [D][D] normalized residual (for the KLT)
  struct Layer {
    Vec h_in, h_u, h_dtl, h_g;                // second moments of the linears' inputs
    double xi_max = 0, u_max = 0, y_max = 0;
    Vec hmax;                                 // per channel max |state|
  };
  std::vector<Layer> layers;
  Vec h_head;
  double x_max_final = 0;
};

void add_outer(Vec& h, const Vec& x) {
  const size_t n = x.size();
  if (h.empty()) h.assign(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const double xi = x[i];
    if (xi == 0) continue;
    double* row = h.data() + i * n;
    for (size_t j = 0; j < n; ++j) row[j] += xi * x[j];
  }
}

Vec matvec(const Mat& w, const Vec& x) {
  Vec y(static_cast<size_t>(w.rows), 0.0);
  const int K = w.cols;
  for (int n = 0; n < w.rows; ++n) {
    const float* r = w.row(n);
    double acc[4] = {0, 0, 0, 0};  // four chains: calibration statistics, not a reference
    int k = 0;
    for (; k + 4 <= K; k += 4)
      for (int j = 0; j < 4; ++j) acc[j] += double(r[k + j]) * x[size_t(k + j)];
    for (; k < K; ++k) acc[0] += double(r[k]) * x[size_t(k)];
    y[size_t(n)] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  }
  return y;
}

Vec normalized(const Vec& x, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1 / std::sqrt(ss / double(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r;
  return y;
}

// Runs the transformed model (q.layers' float matrices; gammas folded, so norms are plain) over a
// sequence from the zero state, feeding `st`. `had` is the online Hadamard (or empty).
// Per-token symmetric fake quantization at qmax (0: none): the integer graph's matmul inputs.
Vec fq_row(const Vec& v, int qmax) {
  if (qmax == 0) return v;
  double mx = 0;
  for (double x : v) mx = std::max(mx, std::fabs(x));
  if (mx == 0) return v;
  Vec o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = std::nearbyint(v[i] / mx * qmax) * mx / qmax;
  return o;
}

void run_sequence(const QModel& q, const std::vector<int>& toks, const Vec& had, Stats& st,
                  bool cov_only, const SimPoints* sim = nullptr, std::vector<Vec>* hidden = nullptr) {
  const SimPoints none;
  const SimPoints& sp = sim ? *sim : none;
  auto W = [&](const Mat& w, const QLinear& qw) -> const Mat& {
    return sp.weights && qw.bits ? qw.deq : w;
  };
  const Config& c = q.c;
  const int D = c.d_model, Di = c.d_inner(), N = c.d_state, K = c.d_conv;
  std::vector<Vec> conv(size_t(c.n_layer), Vec(size_t(K - 1) * Di, 0.0)),
      ssm(size_t(c.n_layer), Vec(size_t(Di) * N, 0.0));
  for (int tok : toks) {
    Vec x(q.emb.row(tok), q.emb.row(tok) + D);
    for (double v : x) st.resid_max = std::max(st.resid_max, std::fabs(v));
    for (int l = 0; l < c.n_layer; ++l) {
      const QLayer& L = q.layers[size_t(l)];
      Stats::Layer& S = st.layers[size_t(l)];
      const Vec h = fq_row(normalized(x, c.norm_eps), sp.in);
      if (cov_only) add_outer(st.cov, h);
      if (st.hessians) add_outer(S.h_in, h);
      const Vec xi = matvec(W(L.wx, L.qx), h), z = matvec(W(L.wz, L.qz), h);
      Vec u(static_cast<size_t>(Di));
      Vec& cv = conv[size_t(l)];
      for (int d = 0; d < Di; ++d) {
        S.xi_max = std::max(S.xi_max, std::fabs(xi[size_t(d)]));
        double acc = L.conv_b[size_t(d)];
        for (int j = 0; j < K; ++j)
          acc += L.conv_w[size_t(d) * K + j] * (j < K - 1 ? cv[size_t(j) * Di + d] : xi[size_t(d)]);
        u[size_t(d)] = silu(acc);
        S.u_max = std::max(S.u_max, std::fabs(u[size_t(d)]));
      }
      for (int j = 0; j + 1 < K - 1; ++j)
        std::copy(cv.begin() + long(j + 1) * Di, cv.begin() + long(j + 2) * Di, cv.begin() + long(j) * Di);
      std::copy(xi.begin(), xi.end(), cv.begin() + long(K - 2) * Di);
      if (st.hessians) add_outer(S.h_u, u);
      const Vec uq = fq_row(u, sp.u);
      const Vec dtl = fq_row(matvec(W(L.xdt, L.qdt_low), uq), sp.dtl);
      const Vec B = matvec(W(L.xb, L.qb), uq), C = matvec(W(L.xc, L.qc), uq);
      if (st.hessians) add_outer(S.h_dtl, dtl);
      Vec dt = matvec(W(L.wdt, L.qdt), dtl);
      Vec g(static_cast<size_t>(Di));
      for (int d = 0; d < Di; ++d) {
        const double dd = softplus(dt[size_t(d)] + L.dt_b[size_t(d)]);
        double* hs = ssm[size_t(l)].data() + size_t(d) * N;
        double sum = 0;
        for (int n = 0; n < N; ++n) {
          hs[n] = hs[n] * std::exp(-dd * L.a[size_t(d) * N + n]) + dd * B[size_t(n)] * u[size_t(d)];
          S.hmax[size_t(d)] = std::max(S.hmax[size_t(d)], std::fabs(hs[n]));
          sum += hs[n] * C[size_t(n)];
        }
        const double y = sum + L.d[size_t(d)] * u[size_t(d)];
        S.y_max = std::max(S.y_max, std::fabs(y));
        g[size_t(d)] = y * silu(z[size_t(d)]);
      }
      if (!had.empty()) {
        if (sp.g) g = fq_row(g, 32767);  // the gate's int16 output before the Hadamard
        Vec t(static_cast<size_t>(Di), 0.0);
        for (int i = 0; i < Di; ++i)
          for (int j = 0; j < Di; ++j) t[size_t(i)] += had[size_t(i) * Di + j] * g[size_t(j)];
        g = t;
      }
      g = fq_row(g, sp.g);
      if (st.hessians) add_outer(S.h_g, g);
      const Vec o = matvec(W(L.wout, L.qout), g);
      for (int i = 0; i < D; ++i) {
        x[size_t(i)] += o[size_t(i)];
        st.resid_max = std::max(st.resid_max, std::fabs(x[size_t(i)]));
      }
    }
    if (hidden) hidden->push_back(x);
    const Vec f = normalized(x, c.norm_eps);
    if (cov_only) add_outer(st.cov, f);
    if (st.hessians) add_outer(st.h_head, f);
  }
}

Stats statistics(const QModel& q, const std::vector<std::vector<int>>& calib, const Vec& had,
                 bool hessians, bool cov_only) {
  Stats st;
  st.hessians = hessians;
  st.layers.resize(size_t(q.c.n_layer));
  for (auto& L : st.layers) L.hmax.assign(size_t(q.c.d_inner()), 0.0);
  for (const auto& seq : calib) run_sequence(q, seq, had, st, cov_only);
  return st;
}

int ceil_log2(double v) { return int(std::ceil(std::log2(v))); }

QLinear quant(const Mat& w, const Vec& h, int bits, const MambaRecipe& r) {
  llama::WeightQuantOptions o;
  o.bits = bits;
  o.group = bits == 4 ? r.group : 0;
  o.clip_search = r.clip_search && !h.empty();
  o.gptq = r.gptq && !h.empty();
  o.act_order = r.act_order;
  return llama::quantize_linear(w, h, o);
}

}  // namespace

std::vector<double> simulate_error(const QModel& q, const std::vector<int>& toks, const SimPoints& sim) {
  Vec had;
  if (q.r.online_hadamard) had = hadamard(q.c.d_inner());
  Stats a, b;
  for (Stats* s : {&a, &b}) {
    s->layers.resize(size_t(q.c.n_layer));
    for (auto& L : s->layers) L.hmax.assign(size_t(q.c.d_inner()), 0.0);
  }
  std::vector<Vec> ref, got;
  run_sequence(q, toks, had, a, false, nullptr, &ref);
  run_sequence(q, toks, had, b, false, &sim, &got);
  std::vector<double> err;
  for (size_t t = 0; t < ref.size(); ++t) {
    const Vec r = normalized(ref[t], q.c.norm_eps), g = normalized(got[t], q.c.norm_eps);
    double e = 0, n = 0;
    for (size_t i = 0; i < r.size(); ++i) e += (g[i] - r[i]) * (g[i] - r[i]), n += r[i] * r[i];
    err.push_back(std::sqrt(e / n));
  }
  return err;
}

MambaRecipe read_recipe(const std::string& path, const std::vector<std::string>& sets) {
  MambaRecipe r;
  r.path = path;
  const YAML::Node root = tools::recipe::load(read_file(path), path);
  if (!root.IsNull()) {
    if (!root.IsMap()) bad(path, root, "a recipe is a map of keys (see configs/mamba-w8a8.yaml)");
    std::set<std::string> seen;
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (!seen.insert(key).second) bad(path, kv.first, "duplicate recipe key '" + key + "'");
      set_key(r, key, kv.second, path);
    }
  }
  for (const std::string& s : sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--set " + s + ": expected KEY=VALUE");
    set_key(r, s.substr(0, eq), YAML::Load(s.substr(eq + 1)), "--set " + s);
  }
  return r;
}

std::vector<std::vector<int>> sample_sequences(const Model& m, int n, int tokens, uint64_t seed) {
  const int V = m.config.vocab_size;
  std::vector<std::vector<int>> out;
  for (int i = 0; i < n; ++i) {
    Rng rng(seed + uint64_t(i));
    State s(m.config);
    std::vector<int> seq{0};
    while (int(seq.size()) < tokens) {
      const Vec logits = forward(m, s, seq.back());
      const double mx = *std::max_element(logits.begin(), logits.begin() + V);
      double z = 0;
      for (int v = 0; v < V; ++v) z += std::exp(logits[size_t(v)] - mx);
      double u = rng.uniform() * z;
      int next = V - 1;
      for (int v = 0; v < V; ++v) {
        u -= std::exp(logits[size_t(v)] - mx);
        if (u < 0) { next = v; break; }
      }
      seq.push_back(next);
    }
    out.push_back(std::move(seq));
  }
  return out;
}

namespace {

// Step 1: the float matrices, gammas folded (the integer rmsnorm has no affine part).
QModel fold(const Model& m, const MambaRecipe& r) {
  const Config& c = m.config;
  const int D = c.d_model, Di = c.d_inner(), N = c.d_state, R = c.dt_rank, V = c.padded_vocab();
  QModel q;
  q.c = c;
  q.r = r;
  q.emb = to_mat(m.v("backbone.embeddings.weight"), V, D);
  q.head = to_mat(m.head(), V, D);
  const std::vector<float>& gf = m.v("backbone.norm_f.weight");
  for (int v = 0; v < V; ++v)
    for (int i = 0; i < D; ++i) q.head.at(v, i) *= gf[size_t(i)];
  q.layers.resize(size_t(c.n_layer));
  for (int l = 0; l < c.n_layer; ++l) {
    QLayer& L = q.layers[size_t(l)];
    const std::vector<float>& w_in = m.mixer(l, "in_proj.weight");
    const std::vector<float>& g = m.v("backbone.layers." + std::to_string(l) + ".norm.weight");
    L.wx = to_mat(w_in, Di, D);
    L.wz = to_mat(w_in, Di, D, size_t(Di) * D);
    for (Mat* w : {&L.wx, &L.wz})
      for (int n = 0; n < Di; ++n)
        for (int i = 0; i < D; ++i) w->at(n, i) *= g[size_t(i)];
    const std::vector<float>& xp = m.mixer(l, "x_proj.weight");
    L.xdt = to_mat(xp, R, Di);
    L.xb = to_mat(xp, N, Di, size_t(R) * Di);
    L.xc = to_mat(xp, N, Di, size_t(R + N) * Di);
    L.wdt = to_mat(m.mixer(l, "dt_proj.weight"), Di, R);
    L.wout = to_mat(m.mixer(l, "out_proj.weight"), D, Di);
    auto vec = [&](const char* name) {
      const std::vector<float>& v = m.mixer(l, name);
      return Vec(v.begin(), v.end());
    };
    L.conv_w = vec("conv1d.weight");
    L.conv_b = vec("conv1d.bias");
    L.dt_b = vec("dt_proj.bias");
    L.d = vec("D");
    L.a = vec("A_log");
    for (double& a : L.a) a = std::exp(a);  // |A|
  }
  return q;
}

// Step 2: the rotations (exact in real arithmetic). R1 (`rotate`): x' = Q^T x, Q a random-signed
// Hadamard or K H (K: eigenvectors of the calibration covariance); R2 (`online`): returns the
// online Hadamard H (out_proj <- out_proj H^T / Di), or an empty matrix.
Vec transform(QModel& q, const std::string& rotate, bool online, const std::vector<std::vector<int>>& calib) {
  const Config& c = q.c;
  const int D = c.d_model, Di = c.d_inner();
  const MambaRecipe& r = q.r;
  q.r.rotate = rotate;
  q.r.online_hadamard = online;
  if (rotate != "none") {
    if (!pow2(D)) throw Error("rotate: d_model " + std::to_string(D) + " is not a power of two");
    Vec H = hadamard(D);
    Rng rng(uint64_t(r.rotate_seed) * 7919 + 17);
    for (int j = 0; j < D; ++j) {  // random column signs, normalized
      const double s = (r.rotate_seed && rng.uniform() < 0.5 ? -1.0 : 1.0) / std::sqrt(double(D));
      for (int i = 0; i < D; ++i) H[size_t(i) * D + j] *= s;
    }
    Vec Q = H;
    if (rotate == "klt") {  // Q = K H, K the covariance eigenvectors (MambaQuant)
      const Stats s0 = statistics(q, calib, {}, false, true);
      const Vec Kv = eigenvectors(s0.cov, D);
      Q.assign(size_t(D) * D, 0.0);
      for (int i = 0; i < D; ++i)
        for (int k = 0; k < D; ++k) {
          const double kik = Kv[size_t(i) * D + k];
          for (int j = 0; j < D; ++j) Q[size_t(i) * D + j] += kik * H[size_t(k) * D + j];
        }
    }
    q.rotation = Q;
    mul_right(q.emb, Q);
    mul_right(q.head, Q);
    for (QLayer& L : q.layers) {
      mul_right(L.wx, Q);
      mul_right(L.wz, Q);
      mul_left_t(L.wout, Q);
    }
  }
  // R2: the online Hadamard before out_proj: g' = H g, out_proj <- out_proj H^T / Di
  Vec had;
  if (online) {
    if (!pow2(Di)) throw Error("online_hadamard: d_inner " + std::to_string(Di) + " is not a power of two");
    had = hadamard(Di);
    Vec ht(had);
    for (double& v : ht) v /= Di;  // H symmetric: H^T / Di
    for (QLayer& L : q.layers) mul_right(L.wout, ht);
  }
  return had;
}

// Step 4: the weights (Hessians in st when the recipe searches clipping or runs GPTQ).
void quantize_weights(QModel& q, const Stats& st) {
  const Config& c = q.c;
  const MambaRecipe& r = q.r;
  const int D = c.d_model, V = c.padded_vocab();
  for (int l = 0; l < c.n_layer; ++l) {
    QLayer& L = q.layers[size_t(l)];
    const Stats::Layer& S = st.layers[size_t(l)];
    const int b = r.weight_bits;
    L.qx = quant(L.wx, S.h_in, b, r);
    L.qz = quant(L.wz, S.h_in, b, r);
    L.qdt_low = quant(L.xdt, S.h_u, b, r);
    L.qb = quant(L.xb, S.h_u, b, r);
    L.qc = quant(L.xc, S.h_u, b, r);
    L.qdt = quant(L.wdt, S.h_dtl, b, r);
    L.qout = quant(L.wout, S.h_g, b, r);
  }
  q.qhead = quant(q.head, st.h_head, r.head_bits, r);
  q.emb_q.assign(size_t(V) * D, 0);
  q.emb_scale.assign(size_t(V), 0.0);
  for (int v = 0; v < V; ++v) {
    double mx = 0;
    for (int i = 0; i < D; ++i) mx = std::max(mx, std::fabs(double(q.emb.at(v, i))));
    const double s = mx / 127;
    q.emb_scale[size_t(v)] = s;
    for (int i = 0; s > 0 && i < D; ++i)
      q.emb_q[size_t(v) * D + i] = int8_t(std::clamp(std::nearbyint(q.emb.at(v, i) / s), -127.0, 127.0));
  }
}

}  // namespace

QModel quantize(const Model& m, const MambaRecipe& r, const std::vector<std::vector<int>>& calib_in) {
  const Config& c = m.config;
  const int Di = c.d_inner();
  std::ostringstream notes;
  const std::vector<std::vector<int>> calib =
      calib_in.empty() ? sample_sequences(m, r.calib_sequences, r.calib_tokens, uint64_t(r.calib_seed))
                       : calib_in;
  const QModel base = fold(m, r);
  // `auto`: each candidate (R1 in none / hadamard / klt, R2 off / on) with round-to-nearest
  // weights, simulated with every quantization point on the first calibration sequence; the lowest
  // mean error of the final residual wins.
  const std::vector<std::string> rots =
      r.rotate == "auto" ? std::vector<std::string>{"none", "hadamard", "klt"} : std::vector<std::string>{r.rotate};
  const std::vector<bool> onl =
      r.online_auto ? std::vector<bool>{false, true} : std::vector<bool>{r.online_hadamard};
  std::string best_rot = rots[0];
  bool best_on = onl[0];
  if (rots.size() * onl.size() > 1) {
    const std::vector<std::vector<int>> sub(calib.begin(), calib.begin() + 1);
    const int a = r.act_qmax();
    double best = 1e300;
    for (const std::string& rot : rots)
      for (bool on : onl) {
        QModel t = base;
        t.r.clip_search = t.r.gptq = false;
        const Vec had = transform(t, rot, on, calib);
        quantize_weights(t, statistics(t, {}, had, false, false));  // round to nearest: no statistics
        double err = 0;
        for (const auto& seq : sub) {
          const std::vector<double> e = simulate_error(t, seq, {a, a, a, a, true});
          for (double v : e) err += v / double(e.size() * sub.size());
        }
        notes << "search: rotate " << rot << ", online Hadamard " << (on ? "on" : "off")
              << ": simulated error " << err << "\n";
        if (err < best) best = err, best_rot = rot, best_on = on;
      }
  }
  QModel q = base;
  const Vec had = transform(q, best_rot, best_on, calib);
  notes << "rotate " << best_rot << ", online Hadamard " << (best_on ? "on" : "off") << "\n";
  // 3. statistics of the transformed model, 4. weights
  const Stats st = statistics(q, calib, had, r.gptq || r.clip_search, false);
  quantize_weights(q, st);

  // 5. integer constants of the ssm ops (fq/kernels/ssm.h)
  q.residual_exp = int(std::floor(std::log2(2147483647.0 / (16 * std::max(st.resid_max, 1e-30)))));
  notes << "residual max " << st.resid_max << " -> E " << q.residual_exp << "\n";
  for (int l = 0; l < c.n_layer; ++l) {
    QLayer& L = q.layers[size_t(l)];
    const Stats::Layer& S = st.layers[size_t(l)];
    double wmax = 0, bmax = 0, amax = 0, dmax = 0;
    for (double v : L.conv_w) wmax = std::max(wmax, std::fabs(v));
    for (double v : L.conv_b) bmax = std::max(bmax, std::fabs(v));
    for (double v : L.a) amax = std::max(amax, v);
    for (double v : L.d) dmax = std::max(dmax, std::fabs(v));
    const std::string where = "layer " + std::to_string(l) + ": ";
    if (!(S.xi_max > 0 && S.u_max > 0 && S.y_max > 0 && wmax > 0))
      throw Error(where + "calibration saw an all-zero activation (conv input, scan input or output)");
    // conv input in Q(x_exp) with ~17 bits at the calibrated max (int32 headroom 2^14); taps int16,
    // the bias in units 2^-(x_exp + w_exp) kept below 2^30
    L.x_exp = 17 - ceil_log2(S.xi_max);
    L.w_exp = int(std::floor(std::log2(32767 / wmax)));
    if (bmax > 0) L.w_exp = std::min(L.w_exp, 30 - L.x_exp - ceil_log2(bmax));
    L.u_exp = 24 - ceil_log2(S.u_max);
    L.y_exp = 40 - ceil_log2(S.y_max);
    if (amax >= 1 << 23) throw Error(where + "|A| = " + std::to_string(amax) + " is too large");
    L.a_frac = std::min(40, int(std::floor(std::log2(((1 << 24) - 1) / std::max(amax, 1e-30)))));
    if (dmax * 65536 >= (1 << 24)) throw Error(where + "|D| = " + std::to_string(dmax) + " >= 256");
    L.conv_wq.resize(L.conv_w.size());
    for (size_t i = 0; i < L.conv_w.size(); ++i)
      L.conv_wq[i] = int16_t(std::clamp(std::nearbyint(std::ldexp(L.conv_w[i], L.w_exp)), -32767.0, 32767.0));
    L.conv_bq.resize(L.conv_b.size());
    for (size_t i = 0; i < L.conv_b.size(); ++i)
      L.conv_bq[i] = int32_t(std::nearbyint(std::ldexp(L.conv_b[i], L.x_exp + L.w_exp)));
    L.aq.resize(L.a.size());
    for (size_t i = 0; i < L.a.size(); ++i) L.aq[i] = int32_t(std::nearbyint(std::ldexp(L.a[i], L.a_frac)));
    L.dq.resize(L.d.size());
    for (size_t i = 0; i < L.d.size(); ++i) L.dq[i] = int32_t(std::nearbyint(L.d[i] * 65536));
    L.dt_bq.resize(L.dt_b.size());
    for (size_t i = 0; i < L.dt_b.size(); ++i)
      L.dt_bq[i] = int32_t(std::clamp(std::nearbyint(L.dt_b[i] * 4096), -(1 << 20) + 0.0, (1 << 20) + 0.0));
    // state of channel c: the calibrated max at 2^24 (int32 headroom 2^7: sequences longer than
    // the calibration ones accumulate more in the slowest channels)
    L.h_exp.resize(size_t(Di));
    for (int d = 0; d < Di; ++d) {
      const double hm = S.hmax[size_t(d)];
      L.h_exp[size_t(d)] = int8_t(hm > 0 ? std::clamp(24 - ceil_log2(hm), -62, 62) : 24);
    }
    notes << where << "xi max " << S.xi_max << " (x_exp " << L.x_exp << "), conv w_exp " << L.w_exp
          << ", u max " << S.u_max << " (u_exp " << L.u_exp << "), y max " << S.y_max << " (y_exp "
          << L.y_exp << "), a_frac " << L.a_frac << "\n";
  }
  q.notes = notes.str();
  return q;
}

}  // namespace fq::mamba
