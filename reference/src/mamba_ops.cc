// Mamba reference ops (mamba_ops.h). Built with -ffp-contract=off.
#include "fq/reference/mamba_ops.h"

#include <cmath>
#include <cstring>

namespace fq::ref {

void causal_conv1d(const float* x, int rows, int c, int k, const float* w, const float* b,
                   float* state, float* y) {
  const int p = k - 1;  // carried rows
  // Row r of xx = (state rows, x rows).
  auto xx = [&](int r, int ch) -> float {
    return r < p ? state[int64_t(r) * c + ch] : x[int64_t(r - p) * c + ch];
  };
  for (int t = 0; t < rows; ++t)
    for (int ch = 0; ch < c; ++ch) {
      float acc = b ? b[ch] : 0.0f;
      for (int j = 0; j < k; ++j) acc += w[int64_t(ch) * k + j] * xx(t + j, ch);
      y[int64_t(t) * c + ch] = acc;
    }
  if (p == 0 || rows < 1) return;
  // New state: the last p rows of xx (rows .. rows + p - 1). Shift first when rows < p.
  if (rows >= p) {
    std::memcpy(state, x + int64_t(rows - p) * c, sizeof(float) * size_t(p) * size_t(c));
  } else {
    std::memmove(state, state + int64_t(rows) * c, sizeof(float) * size_t(p - rows) * size_t(c));
    std::memcpy(state + int64_t(p - rows) * c, x, sizeof(float) * size_t(rows) * size_t(c));
  }
}

void selective_scan(const float* x, const float* dt, const float* A, const float* B,
                    const float* C, const float* D, int rows, int c, int n, float* state, float* y) {
  for (int t = 0; t < rows; ++t) {
    const float* bt = B + int64_t(t) * n;
    const float* ct = C + int64_t(t) * n;
    for (int d = 0; d < c; ++d) {
      const float xv = x[int64_t(t) * c + d], dv = dt[int64_t(t) * c + d];
      float* h = state + int64_t(d) * n;
      const float* a = A + int64_t(d) * n;
      float sum = 0.0f;
      for (int j = 0; j < n; ++j) {
        const float da = expf(dv * a[j]);
        const float db = dv * bt[j];
        h[j] = h[j] * da + db * xv;
        sum += h[j] * ct[j];
      }
      y[int64_t(t) * c + d] = sum + (D ? D[d] : 0.0f) * xv;
    }
  }
}

}  // namespace fq::ref
