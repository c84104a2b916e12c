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

// ---- softmax / layernorm baselines (AVX-512 intrinsics: the exp is the usual range reduction
// e^x = 2^n * 2^f with a degree-6 polynomial for 2^f, ~1 ulp; no library call) --------------------
#include <immintrin.h>

namespace fq::bench {
namespace {
inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);  // [-0.5, 0.5]
  __m512 p = _mm512_set1_ps(1.5403530e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}
}  // namespace

void softmax_f32(const float* x, int64_t n, float* y) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(x + i));
  float m = _mm512_reduce_max_ps(mx);
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  const __m512 mv = _mm512_set1_ps(m);
  __m512 zs = _mm512_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
    _mm512_storeu_ps(y + i, e);
    zs = _mm512_add_ps(zs, e);
  }
  float z = _mm512_reduce_add_ps(zs);
  for (; i < n; ++i) z += (y[i] = std::exp(x[i] - m));
  const __m512 inv = _mm512_set1_ps(1.0f / z);
  for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), inv));
  for (; i < n; ++i) y[i] *= 1.0f / z;
}

void layernorm_f32(const float* x, int64_t n, const float* g, const float* b, float eps, float* y) {
  float s = 0, ss = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const float mean = s / float(n);
  for (int64_t i = 0; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
  const float r = 1.0f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * r * g[i] + b[i];
}

}  // namespace fq::bench
