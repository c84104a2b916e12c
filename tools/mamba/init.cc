// Random Mamba checkpoints (init.h).
#include "init.h"

#include <cmath>

namespace fq::mamba {

uint64_t Rng::next() {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Rng::uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }

double Rng::normal() {
  const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1]
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

Model init_model(const Config& c, const InitOptions& o) {
  validate_config(c, "init_model");
  Model m;
  m.config = c;
  Rng rng(o.seed);
  auto make = [&](const std::string& name, const std::vector<int64_t>& shape) -> std::vector<float>& {
    Tensor& t = m.tensors[name];
    t.shape = shape;
    t.dtype = "F32";
    t.data.assign(size_t(t.numel()), 0.0f);
    return t.data;
  };
  auto uniform = [&](std::vector<float>& v, double bound) {
    for (float& x : v) x = float((2.0 * rng.uniform() - 1.0) * bound);
  };
  const int64_t D = c.d_model, Di = c.d_inner(), N = c.d_state, K = c.d_conv, R = c.dt_rank;
  for (const auto& [tensor_name, shape] : expected_tensors(c)) {
    const std::string& name = tensor_name;  // (a lambda below reads it: clang 14 cannot capture a binding)
    std::vector<float>& v = make(name, shape);
    const auto ends = [&](const char* s) {
      const std::string e(s);
      return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
    };
    if (name == "backbone.embeddings.weight" || name == "lm_head.weight") {
      for (float& x : v) x = float(rng.normal() * o.embed_std);
    } else if (ends("norm.weight") || ends("norm_f.weight") || ends("mixer.D")) {
      for (float& x : v) x = 1.0f;
    } else if (ends("in_proj.weight")) {
      uniform(v, 1.0 / std::sqrt(double(D)));
    } else if (ends("x_proj.weight")) {
      uniform(v, 1.0 / std::sqrt(double(Di)));
    } else if (ends("out_proj.weight")) {
      uniform(v, 1.0 / std::sqrt(double(Di)));
      for (float& x : v) x = float(double(x) / std::sqrt(double(c.n_layer)));
    } else if (ends("conv1d.weight") || ends("conv1d.bias")) {
      uniform(v, 1.0 / std::sqrt(double(K)));
    } else if (ends("dt_proj.weight")) {
      uniform(v, std::pow(double(R), -0.5) * o.dt_scale);
    } else if (ends("dt_proj.bias")) {
      const double lo = std::log(o.dt_min), hi = std::log(o.dt_max);
      for (float& x : v) {
        const double dt = std::max(std::exp(rng.uniform() * (hi - lo) + lo), o.dt_init_floor);
        x = float(dt + std::log(-std::expm1(-dt)));  // softplus^-1(dt)
      }
    } else if (ends("A_log")) {
      for (int64_t d = 0; d < Di; ++d)
        for (int64_t n = 0; n < N; ++n) v[size_t(d * N + n)] = float(std::log(double(n + 1)));
    }
  }
  return m;
}

}  // namespace fq::mamba
