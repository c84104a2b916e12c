// quant.h's fidelity(): an integer Mamba graph against the float64 reference, token by token.
#include <algorithm>
#include <cmath>

#include "fq/fq.h"
#include "forward.h"
#include "quant.h"

namespace fq::mamba {

namespace {

// real value of element i of a dynamic activation row (values + (mant, exp))
double real(const TensorView& v, const TensorView& s, size_t i) {
  const int32_t* sc = static_cast<const int32_t*>(s.data);
  const double q = v.dtype == DType::i8 ? double(static_cast<const int8_t*>(v.data)[i])
                                        : double(static_cast<const int16_t*>(v.data)[i]);
  return q * sc[0] * std::ldexp(1.0, -sc[1]);
}

// log-softmax of the first n entries
std::vector<double> log_softmax(const std::vector<double>& x, size_t n) {
  const double mx = *std::max_element(x.begin(), x.begin() + long(n));
  double z = 0;
  for (size_t i = 0; i < n; ++i) z += std::exp(x[i] - mx);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = x[i] - mx - std::log(z);
  return out;
}

}  // namespace

double Fidelity::mean(const std::vector<double>& v, size_t t0, size_t t1) const {
  t1 = std::min(t1, v.size());
  double s = 0;
  for (size_t t = t0; t < t1; ++t) s += v[t];
  return t1 > t0 ? s / double(t1 - t0) : 0;
}

Fidelity fidelity(const Model& m, const QModel& q, const Graph& g, const std::vector<int>& seq, int threads) {
  const Config& c = m.config;
  const size_t D = size_t(c.d_model), V = size_t(c.vocab_size);
  Options opt;
  opt.threads = threads;
  Session s(g, opt);
  TensorView tokens = s.input("tokens"), pos = s.input("pos");
  if (tokens.shape[0] != 1) throw Error(g.name + ": fidelity runs a decode graph (rows 1)");
  const TensorView logits = s.output("logits"), logits_s = s.output("logits_scale");
  const TensorView hidden = s.output("hidden");
  const double unit = std::ldexp(1.0, -q.residual_exp);
  const std::vector<float>& gf = m.v("backbone.norm_f.weight");
  State ref(c);
  Fidelity f;
  for (size_t t = 0; t < seq.size(); ++t) {
    static_cast<int32_t*>(tokens.data)[0] = seq[t];
    static_cast<int32_t*>(pos.data)[0] = int32_t(t);
    s.run();
    std::vector<double> h_ref;
    const std::vector<double> l_ref = forward(m, ref, seq[t], &h_ref);
    std::vector<double> hq(D), h(D, 0.0);
    for (size_t i = 0; i < D; ++i) hq[i] = static_cast<const int32_t*>(hidden.data)[i] * unit;
    if (q.rotation.empty()) {
      h = hq;
    } else {  // n = R h'
      for (size_t i = 0; i < D; ++i)
        for (size_t j = 0; j < D; ++j) h[i] += q.rotation[i * D + j] * hq[j];
    }
    double ss = 0;
    for (size_t i = 0; i < D; ++i) ss += h[i] * h[i];
    const double rms = 1 / std::sqrt(ss / double(D) + c.norm_eps);
    double dot = 0, nq = 0, nr = 0, ne = 0;
    for (size_t i = 0; i < D; ++i) {
      h[i] *= rms * double(gf[i]);
      dot += h[i] * h_ref[i], nq += h[i] * h[i], nr += h_ref[i] * h_ref[i];
      ne += (h[i] - h_ref[i]) * (h[i] - h_ref[i]);
    }
    f.cos.push_back(dot / std::sqrt(nq * nr));
    f.rel_err.push_back(std::sqrt(ne / nr));
    std::vector<double> lq(V);
    for (size_t i = 0; i < V; ++i) lq[i] = real(logits, logits_s, i);
    const std::vector<double> pr = log_softmax(l_ref, V), pq = log_softmax(lq, V);
    double kl = 0;
    for (size_t i = 0; i < V; ++i) kl += std::exp(pr[i]) * (pr[i] - pq[i]);
    f.kl.push_back(kl);
    if (t + 1 < seq.size()) {
      f.nll_ref.push_back(-pr[size_t(seq[t + 1])]);
      f.nll_q.push_back(-pq[size_t(seq[t + 1])]);
    }
  }
  return f;
}

}  // namespace fq::mamba
