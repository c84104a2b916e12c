// Float32 baselines of the llm operators (see llm_f32.h). Compiled with AVX-512 flags.
#include "llm_f32.h"

#include <cmath>

namespace fq::bench {

void attention_head_f32(const float* q, const float* k, const float* v, int64_t n, int hd, float* p,
                        float* o) {
  float mx = -INFINITY;
  for (int64_t u = 0; u < n; ++u) {
    float s = 0;
    for (int j = 0; j < hd; ++j) s += q[j] * k[u * hd + j];
    p[u] = s;
    mx = s > mx ? s : mx;
  }
  float z = 0;
  for (int64_t u = 0; u < n; ++u) z += (p[u] = std::exp(p[u] - mx));
  const float inv = 1.0f / z;
  for (int j = 0; j < hd; ++j) o[j] = 0;
  for (int64_t u = 0; u < n; ++u)
    for (int j = 0; j < hd; ++j) o[j] += p[u] * inv * v[u * hd + j];
}

void rmsnorm_f32(const float* x, int64_t n, float eps, float* y) {
  float ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float r = 1.0f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r;
}

void swiglu_f32(const float* g, const float* u, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace fq::bench
