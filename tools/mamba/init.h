// Random Mamba (v1) checkpoints with mamba_ssm's initialization (docs/mamba.md), deterministic
// for a seed (splitmix64 + Box-Muller in double; no library RNG, so every platform agrees).
#pragma once
#include <cstdint>

#include "model.h"

namespace fq::mamba {

struct InitOptions {
  uint64_t seed = 1;
  double dt_min = 0.001, dt_max = 0.1, dt_init_floor = 1e-4, dt_scale = 1.0;
  double embed_std = 0.02;
};

// A model with config `c` (validated) initialized as mamba_ssm's MambaLMHeadModel:
//   embedding N(0, 0.02); norms 1; in_proj, x_proj, out_proj U(-1/sqrt(fan_in), 1/sqrt(fan_in))
//   (kaiming_uniform a = sqrt(5)), out_proj then divided by sqrt(n_layer) (prenorm residual
//   rescaling); conv1d weight and bias U(-1/sqrt(d_conv), 1/sqrt(d_conv)); dt_proj weight
//   U(-dt_rank^-0.5, dt_rank^-0.5) * dt_scale; dt_proj bias = softplus^-1(dt), dt log-uniform in
//   [dt_min, dt_max] clamped to >= dt_init_floor; A_log[d][n] = log(n + 1) (S4D-real, A = -(n + 1));
//   D = 1.
Model init_model(const Config& c, const InitOptions& o = {});

// The generator (splitmix64).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next();
  double uniform();  // [0, 1), 53 bits
  double normal();   // Box-Muller, one value per call
};

}  // namespace fq::mamba
