// Float32 AVX-512 baseline of the selective scan for the benchmark (not part of FQ): Mamba's
// recurrence h = exp(dt A) h + dt B u, y = C . h + D u with softplus(dt), in float, 16 states per
// zmm, exp by a degree-5 polynomial (Cody-Waite reduction, relative error ~2e-7). Compiled with
// the flags of llm_f32.cc.
#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers (the "undefined" pass-through operand).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <cmath>
#include <cstdint>

namespace fq::bench {
namespace {

inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 120);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace

// u, dt [M][C]; b, c [M][N]; A [C][N] (negative); D [C]; h [C][N] in/out; y [M][C]. N <= 16k.
void ssm_scan_f32(const float* u, const float* dt, const float* b, const float* c, const float* A,
                  const float* D, int64_t M, int64_t C, int64_t N, float* h, float* y) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t ch = 0; ch < C; ++ch) {
      const float x = dt[m * C + ch];
      const float d = x > 20.0f ? x : std::log1p(std::exp(x));
      const float du = d * u[m * C + ch];
      __m512 acc = _mm512_setzero_ps();
      for (int64_t n = 0; n < N; n += 16) {
        const __mmask16 k = N - n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (N - n)) - 1);
        const __m512 g = exp512(_mm512_mul_ps(_mm512_set1_ps(d), _mm512_maskz_loadu_ps(k, A + ch * N + n)));
        __m512 hv = _mm512_maskz_loadu_ps(k, h + ch * N + n);
        hv = _mm512_fmadd_ps(g, hv, _mm512_mul_ps(_mm512_set1_ps(du), _mm512_maskz_loadu_ps(k, b + m * N + n)));
        _mm512_mask_storeu_ps(h + ch * N + n, k, hv);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, c + m * N + n), hv, acc);
      }
      y[m * C + ch] = _mm512_reduce_add_ps(acc) + D[ch] * u[m * C + ch];
    }
}

}  // namespace fq::bench
