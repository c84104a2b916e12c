// The RWKV quantizer (quant.h): calibration, weights, integer units. Float code, offline.
#include "quant.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "dulut.h"
#include "fq/kernels/rwkv.h"
#include "graph_builder.h"
#include "recipe_yaml.h"
#include "vq.h"

namespace fq::rwkv {

namespace {
using Vec = std::vector<float>;
using llama::Mat;
using llama::QLinear;
namespace rc = tools::recipe;

// splitmix64: the sampler's generator (deterministic across platforms).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
};

}  // namespace

RwkvRecipe parse_rwkv_recipe(const std::string& text, const std::string& path) {
  RwkvRecipe r;
  r.path = path;
  const YAML::Node root = rc::load(text, path);
  if (!root || root.IsNull()) return r;
  if (!root.IsMap()) rc::bad(path, root, "a recipe is a map of keys");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "name") r.name = rc::scalar<std::string>(path, key, v);
    else if (key == "weight_bits") r.weight_bits = rc::bits(path, key, v);
    else if (key == "group") {
      r.group = rc::scalar<int>(path, key, v);
      if (r.group != 32 && r.group != 64 && r.group != 128) rc::bad(path, v, "group must be 32, 64 or 128");
    } else if (key == "head_bits") r.head_bits = rc::bits(path, key, v);
    else if (key == "gptq") r.gptq = rc::scalar<bool>(path, key, v);
    else if (key == "clip_search") r.clip_search = rc::scalar<bool>(path, key, v);
    else if (key == "calib_sequences") r.calib_sequences = rc::in_range<int>(path, key, v, 1, 4096);
    else if (key == "calib_bytes") r.calib_bytes = rc::in_range<int>(path, key, v, 2, 1 << 16);
    else if (key == "calib_seed") r.calib_seed = uint64_t(rc::in_range<int64_t>(path, key, v, 0, int64_t{1} << 40));
    else if (key == "calib_temperature") r.calib_temperature = rc::in_range<double>(path, key, v, 0.05, 4.0);
    else if (key == "residual_headroom") r.residual_headroom = rc::in_range<double>(path, key, v, 1.0, 1e6);
    else if (key == "state_headroom") r.state_headroom = rc::in_range<double>(path, key, v, 1.0, 1e6);
    else if (key == "codebook") r.codebook = rc::scalar<bool>(path, key, v);
    else if (key == "codebook_bits") r.codebook_bits = rc::in_range<int>(path, key, v, 3, 4);
    else if (key == "codebook_group") {
      r.codebook_group = rc::scalar<int>(path, key, v);
      if (r.codebook_group != 32 && r.codebook_group != 64 && r.codebook_group != 128)
        rc::bad(path, v, "codebook_group must be 32, 64 or 128");
    } else if (key == "codebook_rows") r.codebook_rows = rc::in_range<int>(path, key, v, 1, 1 << 16);
    else if (key == "proxy") r.proxy = rc::scalar<bool>(path, key, v);
    else if (key == "proxy_tau1") r.proxy_tau1 = rc::in_range<double>(path, key, v, 0.0, 1e9);
    else if (key == "proxy_tau2") r.proxy_tau2 = rc::in_range<double>(path, key, v, 0.0, 1e9);
    else if (key == "kmeans_iters") r.kmeans_iters = rc::in_range<int>(path, key, v, 1, 1000);
    else if (key == "mu_bits") {
      r.mu_bits = rc::in_range<int>(path, key, v, 0, 4);
      if (r.mu_bits == 1) rc::bad(path, v, "mu_bits must be 0 (Q16) or 2..4");
    } else if (key == "mu_group") r.mu_group = rc::in_range<int>(path, key, v, 1, 1 << 16);
    else rc::bad(path, kv.first, "unknown recipe key '" + key + "'");
  }
  return r;
}

RwkvRecipe load_rwkv_recipe(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open the recipe");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_rwkv_recipe(ss.str(), path);
}

std::vector<std::vector<int>> sample_sequences(const Model& m, int n, int bytes, uint64_t seed,
                                               double temp, int first, Observer* obs) {
  std::vector<std::vector<int>> out;
  for (int s = 0; s < n; ++s) {
    Rng rng{seed + uint64_t(s)};
    State st(m);
    std::vector<int> seq{first};
    while (int(seq.size()) < bytes) {
      const Vec l = forward(m, st, seq.back(), obs);
      double mx = -1e300;
      for (float v : l) mx = std::max(mx, double(v));
      std::vector<double> p(l.size());
      double z = 0;
      for (size_t i = 0; i < l.size(); ++i) z += p[i] = std::exp((double(l[i]) - mx) / temp);
      double u = rng.uniform() * z;
      int pick = int(l.size()) - 1;
      for (size_t i = 0; i < l.size(); ++i)
        if ((u -= p[i]) < 0) {
          pick = int(i);
          break;
        }
      seq.push_back(pick);
    }
    out.push_back(std::move(seq));
  }
  return out;
}

namespace {

// Calibration statistics from the float reference: max |.| and Hessians of every matrix input,
// the residual and WKV state maxima.
struct Calib : Observer {
  int layers;
  std::vector<std::map<std::string, std::vector<double>>> hess;  // [layer + 1] (last: head)
  std::vector<std::map<std::string, double>> amax;
  double res_max = 0;
  std::vector<double> state_max;
  std::vector<std::map<std::string, std::vector<double>>> mask;  // mean |sx| per channel ("att.sx")
  std::vector<std::map<std::string, int64_t>> mask_n;
  bool want_hessians;
  Calib(int n, bool h) : layers(n), hess(size_t(n) + 1), amax(size_t(n) + 1), state_max(size_t(n), 0.0),
                         mask(size_t(n)), mask_n(size_t(n)), want_hessians(h) {}
  void see(int l, const std::string& what, const Vec& v) override {
    double mx = 0;
    for (float x : v) mx = std::max(mx, double(std::fabs(x)));
    if (what == "x") {
      res_max = std::max(res_max, mx);
      return;
    }
    if (what == "wkv") {
      state_max[size_t(l)] = std::max(state_max[size_t(l)], mx);
      return;
    }
    if (what == "att.sx" || what == "ffn.sx") {
      std::vector<double>& m = mask[size_t(l)][what];
      if (m.empty()) m.assign(v.size(), 0.0);
      for (size_t i = 0; i < v.size(); ++i) m[i] += std::fabs(double(v[i]));
      ++mask_n[size_t(l)][what];
      return;
    }
    const size_t li = l < 0 ? size_t(layers) : size_t(l);
    double& a = amax[li][what];
    a = std::max(a, mx);
    if (!want_hessians) return;
    std::vector<double>& h = hess[li][what];
    const size_t k = v.size();
    if (h.empty()) h.assign(k * k, 0.0);
    for (size_t i = 0; i < k; ++i) {  // the upper triangle; mirrored by symmetrize()
      const double vi = v[i];
      double* hr = h.data() + i * k;
      for (size_t j = i; j < k; ++j) hr[j] += vi * double(v[j]);
    }
  }
  void symmetrize() {
    for (auto& layer : hess)
      for (auto& kv : layer) {
        std::vector<double>& h = kv.second;
        const size_t k = size_t(std::llround(std::sqrt(double(h.size()))));
        for (size_t i = 0; i < k; ++i)
          for (size_t j = 0; j < i; ++j) h[i * k + j] = h[j * k + i];
      }
  }
};

// block: a matrix of an RWKV block (the codebook format under the rwkvquant recipe); the head is not.
QLinear quant(const Mat& w, const std::vector<double>& h, int bits, const RwkvRecipe& r, bool block = true,
              Proxy* proxy = nullptr) {
  if (r.codebook && block) {
    const int g = std::min(r.codebook_group, (w.cols + 31) / 32 * 32);
    const int group = g >= 128 ? 128 : g >= 64 ? 64 : 32;
    const Proxy p = rwkvquant_proxy(w.a, r.proxy_tau1, r.proxy_tau2);
    if (proxy) *proxy = p;
    return quantize_codebook(w, h, r.codebook_bits, group, r.proxy && p.coherent, r.kmeans_iters, r.gptq,
                             r.codebook_rows);
  }
  llama::WeightQuantOptions o;
  o.bits = bits;
  o.group = bits == 4 ? r.group : 0;
  o.clip_search = r.clip_search && !h.empty();
  o.gptq = r.gptq && !h.empty();
  return llama::quantize_linear(w, h, o);
}

Mat mat_of(const float* d, int rows, int cols) {
  Mat m(rows, cols);
  std::copy(d, d + size_t(rows) * cols, m.a.begin());
  return m;
}

// Q(frac) integer of a real, saturated to int32.
int32_t fix(double v, int frac) {
  return int32_t(std::clamp(std::nearbyint(std::ldexp(v, frac)), -2147483648.0, 2147483647.0));
}

// The Q16 values a coded mixing vector stands for: what the engine decodes at load (decode_mu).
std::vector<int32_t> decoded(const QMuCodebook& c) {
  std::vector<uint8_t> packed;
  tools::pack_bits(c.idx.data(), c.idx.size(), c.bits, &packed);
  std::vector<int32_t> o(c.idx.size());
  if (!k::decode_mu(packed.data(), c.cb.empty() ? nullptr : c.cb.data(), c.bits, c.group, k::RowScale{c.mant, c.exp},
                    int64_t(o.size()), o.data()))
    throw std::logic_error("decode_mu refused a mixing vector's code");
  return o;
}

// A real eps as (eps_m in [2^30, 2^31), eps_e).
void eps_of(double eps, QNorm* n) {
  const int e = 30 - int(std::floor(std::log2(eps)));
  n->eps_e = e;
  n->eps_m = int32_t(std::min(std::nearbyint(std::ldexp(eps, e)), 2147483647.0));
}

QNorm qnorm(const Vec& w, const Vec& b, double eps) {
  QNorm n;
  double mx = 1e-30;
  for (float v : w) mx = std::max(mx, double(std::fabs(v)));
  // gamma = gm 2^-ae with |gm| <= 2^15; beta = bo 2^-ae (|bo| < 2^31: ae lowered if needed)
  int ae = int(std::floor(std::log2(32768.0 / mx)));
  double bmax = 0;
  for (float v : b) bmax = std::max(bmax, double(std::fabs(v)));
  while (ae > -62 && bmax * std::ldexp(1.0, ae) >= 2147483647.0) --ae;
  ae = std::clamp(ae, -62, 62);
  n.ae = ae;
  for (float v : w) n.gm.push_back(int32_t(std::clamp(std::nearbyint(std::ldexp(double(v), ae)), -32768.0, 32768.0)));
  for (float v : b) n.bo.push_back(fix(double(v), ae));
  eps_of(eps, &n);
  return n;
}

k::LutTable fit_act(quant::ActFn f, int frac, std::vector<std::string>* notes) {
  quant::DulutSpec s;
  s.fn = f;
  s.in_bits = 16, s.in_scale = std::ldexp(1.0, -frac);
  s.out_bits = 16, s.out_scale = std::ldexp(1.0, -15);
  s.k1 = 6, s.k2 = 6;
  const quant::DulutTables t = quant::fit_dulut(s);
  k::LutTable kt;
  if (!quant::to_kernel_table(t, &kt)) throw Error(std::string("DULUT fit of ") + quant::act_name(f) + " failed");
  const quant::ErrStats e = quant::dulut_error(s, t);
  notes->push_back(std::string("DULUT ") + quant::act_name(f) + ": max error " + std::to_string(e.max) +
                   " LSB (2^-15), mean " + std::to_string(e.mean));
  return kt;
}

}  // namespace

QModel quantize_model(const Model& m, const RwkvRecipe& r) {
  const int major = m.version.major;
  if (major < 5)
    throw Error(m.path + ": the integer RWKV graphs cover v5.1, v5.2, v6 and v7; this is v" + m.version.str());
  const int E = m.n_embed, V = m.n_vocab, N = m.head_size;
  QModel q;
  q.m = &m;
  q.r = r;

  // 1. calibration: sequences the model samples itself (UTF-16LE models start at a 0 byte pair)
  Calib cal(m.n_layer, r.gptq || r.clip_search);
  // (the statistics are taken while the sequences are sampled: the same forward passes)
  const auto seqs = sample_sequences(m, r.calib_sequences, r.calib_bytes, r.calib_seed, r.calib_temperature, '\n',
                                     &cal);
  cal.symmetrize();
  q.notes.push_back("calibration: " + std::to_string(seqs.size()) + " sampled sequences x " +
                    std::to_string(r.calib_bytes) + " bytes");

  // 2. the residual unit
  q.residual_max = cal.res_max;
  q.residual_exp = std::clamp(int(std::floor(std::log2(2147483647.0 / (r.residual_headroom * cal.res_max)))), 0, 62);

  // 3. embedding: LN0 folded (rows normalized offline), int8 per row
  {
    const Vec& emb = m.v("emb.weight");
    const Vec &w0 = m.v("blocks.0.ln0.weight"), &b0 = m.v("blocks.0.ln0.bias");
    q.emb_q.assign(size_t(V) * E, 0);
    q.emb_scale.assign(size_t(V), 0.0);
    for (int v = 0; v < V; ++v) {
      const float* x = emb.data() + size_t(v) * E;
      double mean = 0, var = 0;
      for (int i = 0; i < E; ++i) mean += x[i];
      mean /= E;
      for (int i = 0; i < E; ++i) var += (x[i] - mean) * (x[i] - mean);
      var /= E;
      std::vector<double> y(static_cast<size_t>(E));
      double mx = 0;
      for (int i = 0; i < E; ++i) {
        y[size_t(i)] = (x[i] - mean) / std::sqrt(var + 1e-5) * w0[size_t(i)] + b0[size_t(i)];
        mx = std::max(mx, std::fabs(y[size_t(i)]));
      }
      const double s = mx / 127.0;
      q.emb_scale[size_t(v)] = s;
      for (int i = 0; i < E && s > 0; ++i)
        q.emb_q[size_t(v) * E + i] = int8_t(std::clamp(std::nearbyint(y[size_t(i)] / s), -127.0, 127.0));
    }
  }

  // 4. per layer: norms, mixing vectors, decays, matrices, the state unit
  auto hess = [&](int l, const std::string& n) -> const std::vector<double>& {
    static const std::vector<double> none;
    const auto& mp = cal.hess[l < 0 ? size_t(m.n_layer) : size_t(l)];
    auto it = mp.find(n);
    return it == mp.end() ? none : it->second;
  };
  const int wb = r.weight_bits;
  for (int l = 0; l < m.n_layer; ++l) {
    QLayer L;
    auto lv = [&](const std::string& n) -> const Vec& { return m.lv(l, n); };
    L.ln1 = qnorm(lv("ln1.weight"), lv("ln1.bias"), 1e-5);
    L.ln2 = qnorm(lv("ln2.weight"), lv("ln2.bias"), 1e-5);
    L.ln_x = qnorm(lv("att.ln_x.weight"), lv("att.ln_x.bias"), major == 5 ? 1e-5 : double(64e-5f));
    auto matq = [&](const std::string& name) {
      const Tensor& t = m.t("blocks." + std::to_string(l) + "." + name);
      L.w[name] = quant(mat_of(t.data.data(), int(t.ne[1]), int(t.ne[0])), hess(l, name), wb, r, true, &L.proxy[name]);
    };
    // a mixing vector (y = a + (p - a) mu): Q16 (mu_bits 0); with mu_bits, the proxy picks scalar
    // int8 (coherent) or an activation-weighted k-means codebook (the issue's "or scalar int8 where
    // the proxy says so")
    auto q16 = [&](const std::string& name, const Vec& v, bool one_minus) {
      std::vector<double> mu;
      for (float x : v) mu.push_back(one_minus ? 1.0 - double(x) : double(x));
      std::vector<int32_t> o;
      // the vector's scale as (mant, exp): unit = max |c| / 127 = mant 2^-exp, mant < 2^15
      auto unit_of = [](const std::vector<double>& c, QMuCodebook* cb) {
        double cmax = 1e-30;
        for (double x : c) cmax = std::max(cmax, std::fabs(x));
        cb->exp = 14 - int(std::floor(std::log2(cmax / 127)));
        cb->mant = int32_t(std::min(std::nearbyint(std::ldexp(cmax / 127, cb->exp)), 32767.0));
        return std::ldexp(double(cb->mant), -cb->exp);
      };
      // the proxy: a coherent vector becomes scalar int8, the others codebooks
      const bool scalar = r.mu_bits > 0 && r.proxy &&
                          rwkvquant_proxy(std::vector<float>(mu.begin(), mu.end()), r.proxy_tau1, r.proxy_tau2).coherent;
      if (scalar) {
        QMuCodebook cb;
        cb.bits = 8, cb.group = 1;
        const double unit = unit_of(mu, &cb);
        for (double x : mu) {
          cb.idx.push_back(uint8_t(int8_t(std::clamp(std::nearbyint(x / unit), -127.0, 127.0))));
        }
        o = decoded(cb);
        L.mu_cb[name] = cb;
      } else if (r.mu_bits > 0) {
        const std::string sx = name.rfind("ffn.", 0) == 0 ? "ffn.sx" : "att.sx";
        std::vector<double> mask = cal.mask[size_t(l)].count(sx) ? cal.mask[size_t(l)].at(sx) : std::vector<double>();
        if (mask.empty()) mask.assign(mu.size(), 1.0);
        const std::vector<double> c = kmeans_mul(mu, mask, r.mu_bits, r.mu_group);
        QMuCodebook cb;
        cb.bits = r.mu_bits, cb.group = r.mu_group;
        const double unit = unit_of(c, &cb);
        const size_t ng = (mu.size() + size_t(cb.group) - 1) / size_t(cb.group), ne = size_t(1) << cb.bits;
        cb.cb.assign(ng * ne, 0);
        for (size_t g = 0; g < ng; ++g) {  // the group's distinct centroids -> entries
          std::vector<double> ent;
          for (size_t i = g * size_t(cb.group); i < std::min(mu.size(), (g + 1) * size_t(cb.group)); ++i)
            if (std::find(ent.begin(), ent.end(), c[i]) == ent.end()) ent.push_back(c[i]);
          for (size_t j = 0; j < ent.size() && j < ne; ++j)
            cb.cb[g * ne + j] = int8_t(std::clamp(std::nearbyint(ent[j] / unit), -127.0, 127.0));
          for (size_t i = g * size_t(cb.group); i < std::min(mu.size(), (g + 1) * size_t(cb.group)); ++i) {
            const size_t j = size_t(std::find(ent.begin(), ent.end(), c[i]) - ent.begin());
            cb.idx.push_back(uint8_t(j));
          }
        }
        o = decoded(cb);
        L.mu_cb[name] = cb;
      } else {
        for (double x : mu) o.push_back(fix(x, 16));
      }
      L.q16[name] = o;
    };
    for (const char* n : {"att.receptance.weight", "att.key.weight", "att.value.weight", "att.output.weight",
                          "ffn.key.weight", "ffn.value.weight"})
      matq(n);
    if (major != 7) matq("ffn.receptance.weight");
    if (major == 7) {
      // mixing vectors x_r, x_w, x_k, x_v, x_a, x_g (x + (x_prev - x) mu) and the channel mix's x_k
      const Vec& mu = lv("att.x_rwkvag");
      const char* tags[6] = {"r", "w", "k", "v", "a", "g"};
      for (int c = 0; c < 6; ++c)
        q16(std::string("att.mu_") + tags[c], Vec(mu.begin() + int64_t(c) * E, mu.begin() + int64_t(c + 1) * E), false);
      q16("ffn.mu_k", lv("ffn.x_k"), false);
      for (const char* n : {"att.w1", "att.w2", "att.a1", "att.a2", "att.g1", "att.g2"}) matq(n);
      if (l > 0) matq("att.v1"), matq("att.v2");
      // per-channel constants: l2norm factors (k_k, -k_k), the key update's k_a (a mixing vector:
      // k = k0 + (k0 a - k0) k_a), the bonus r_k, and the LoRA biases in the sigmoid input format
      std::vector<int32_t> kk, nkk, rk, zero(size_t(E), 0);
      for (float v : lv("att.k_k")) kk.push_back(fix(v, 16)), nkk.push_back(fix(-double(v), 16));
      for (float v : lv("att.r_k")) rk.push_back(fix(v, 16));
      L.q16["att.k_k"] = kk, L.q16["att.neg_k_k"] = nkk, L.q16["att.r_k"] = rk, L.q16["att.mu_zero"] = zero;
      std::vector<int32_t> ka;
      for (float v : lv("att.k_a")) ka.push_back(fix(v, 16));
      L.q16["att.k_a"] = ka;
      for (const char* b : {"att.w0", "att.a0", "att.v0"}) {
        if (l == 0 && std::string(b) == "att.v0") continue;
        std::vector<int32_t> o;
        for (float v : lv(b)) o.push_back(fix(v, kSigmoidFrac));
        L.q16[b] = o;
      }
    } else if (major == 5) {
      // v4/v5 mixing x mu + p (1 - mu) = x + (p - x)(1 - mu)
      for (const char* c : {"k", "v", "r"}) q16(std::string("att.mu_") + c, lv(std::string("att.time_mix_") + c), true);
      for (const char* c : {"k", "r"}) q16(std::string("ffn.mu_") + c, lv(std::string("ffn.time_mix_") + c), true);
      const bool v52 = m.version.minor >= 2;
      if (v52) {
        q16("att.mu_g", lv("att.time_mix_g"), true);
        matq("att.gate.weight");
      }
      // rwkv.cpp stores the v5 decay as the factor w = exp(-exp(raw)); the kernel takes ln(w)
      const Vec& td = lv("att.time_decay");
      const Vec& tf = lv(v52 ? "att.time_faaaa" : "att.time_first");
      std::vector<int32_t> u;
      for (int i = 0; i < E; ++i) {
        const size_t src = v52 ? size_t(i) : size_t(i / N);
        const double w = td[src];
        L.decay_q24.push_back(w > 0 ? fix(std::max(std::log(w), -128.0), kDecayFrac) : INT32_MIN);
        u.push_back(fix(tf[src], 16));
      }
      L.q16["att.u"] = u;
    } else {  // 6
      q16("att.mu_x", lv("att.time_maa_x"), false);
      for (const char* c : {"w", "k", "v", "r", "g"}) q16(std::string("att.mu_") + c, lv(std::string("att.time_maa_") + c), false);
      for (const char* c : {"k", "r"}) q16(std::string("ffn.mu_") + c, lv(std::string("ffn.time_maa_") + c), false);
      const Tensor& w1 = m.t("blocks." + std::to_string(l) + ".att.time_maa_w1");
      const Tensor& w2 = m.t("blocks." + std::to_string(l) + ".att.time_maa_w2");
      const int D = int(w1.ne[1] / 5);
      // the five fc1 parts as one [5D, E] matrix, as rwkv.cpp stores them (one input, one GEMV)
      L.w["att.time_maa_w1"] = quant(mat_of(w1.data.data(), 5 * D, E), hess(l, "att.time_maa_w1"), wb, r, true,
                                     &L.proxy["att.time_maa_w1"]);
      const char* tags[5] = {"w", "k", "v", "r", "g"};
      for (int g = 0; g < 5; ++g) {
        const std::string n2 = std::string("att.time_maa_w2.") + tags[g];
        L.w[n2] = quant(mat_of(w2.data.data() + size_t(g) * E * D, E, D), hess(l, n2), wb, r, true, &L.proxy[n2]);
      }
      matq("att.gate.weight");
      matq("att.time_decay_w1");
      matq("att.time_decay_w2");
      for (float v : lv("att.time_decay")) L.decay_q24.push_back(fix(v, kDecayFrac));
      std::vector<int32_t> u;
      for (float v : lv("att.time_faaaa")) u.push_back(fix(v, 16));
      L.q16["att.u"] = u;
    }
    L.state_max = cal.state_max[size_t(l)];
    L.state_exp = std::clamp(int(std::floor(std::log2(2147483647.0 / (r.state_headroom * std::max(L.state_max, 1e-30))))), -62, 62);
    q.layers.push_back(std::move(L));
  }
  q.ln_out = qnorm(m.v("ln_out.weight"), m.v("ln_out.bias"), 1e-5);
  const Tensor& hd = m.t("head.weight");
  q.head = quant(mat_of(hd.data.data(), int(hd.ne[1]), int(hd.ne[0])), hess(-1, "head.weight"), r.head_bits, r, false);
  {  // stored bits per weight of the block matrices
    double bits = 0, n = 0;
    int coherent = 0, total = 0;
    for (const QLayer& L : q.layers)
      for (const auto& kv : L.w) {
        const double nw = double(kv.second.deq.rows) * kv.second.deq.cols;
        const double b = !kv.second.codebook.empty() ? codebook_bits_per_weight(kv.second)
                         : kv.second.bits == 8 ? 8 + 32.0 / kv.second.deq.cols
                                               : 4 + 16.0 / kv.second.group + 8.0 / kv.second.deq.cols;
        bits += b * nw, n += nw;
        if (r.codebook) ++total, coherent += L.proxy.at(kv.first).coherent;
      }
    q.weight_bits_avg = n > 0 ? bits / n : 0;
    q.notes.push_back("block matrices: " + std::to_string(q.weight_bits_avg) + " stored bits per weight");
    if (r.codebook) q.notes.push_back("proxy: " + std::to_string(coherent) + " of " + std::to_string(total) +
                                      " matrices coherent (uniform codebook)");
    int mu_scalar = 0, mu_total = 0;
    for (const QLayer& L : q.layers)
      for (const auto& kv : L.mu_cb) ++mu_total, mu_scalar += kv.second.bits == 8;
    if (mu_total) q.notes.push_back("proxy: " + std::to_string(mu_scalar) + " of " + std::to_string(mu_total) +
                                    " mixing vectors coherent (scalar int8)");
  }
  q.sigmoid = fit_act(quant::ActFn::sigmoid, kSigmoidFrac, &q.notes);
  q.tanh = fit_act(quant::ActFn::tanh, kTanhFrac, &q.notes);
  q.notes.push_back("residual: max |x| " + std::to_string(q.residual_max) + ", E = " + std::to_string(q.residual_exp));
  return q;
}

}  // namespace fq::rwkv
