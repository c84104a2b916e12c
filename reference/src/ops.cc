#include "fq/reference/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace fq::ref {

void conv2d(const Conv2dShape& s, const float* x, const float* w, const float* b, bool relu,
            float* y) {
  for (int n = 0; n < s.n; ++n)
    for (int oy = 0; oy < s.oh; ++oy)
      for (int ox = 0; ox < s.ow; ++ox) {
        float* out = y + ((int64_t(n) * s.oh + oy) * s.ow + ox) * s.o;
        for (int o = 0; o < s.o; ++o) out[o] = b ? b[o] : 0.f;
        for (int ky = 0; ky < s.kh; ++ky) {
          const int iy = oy * s.stride - s.pad_t + ky;
          if (iy < 0 || iy >= s.h) continue;
          for (int kx = 0; kx < s.kw; ++kx) {
            const int ix = ox * s.stride - s.pad_l + kx;
            if (ix < 0 || ix >= s.w) continue;
            const float* in = x + ((int64_t(n) * s.h + iy) * s.w + ix) * s.c;
            for (int o = 0; o < s.o; ++o) {
              const float* wk = w + ((int64_t(o) * s.kh + ky) * s.kw + kx) * s.c;
              float acc = 0.f;
              for (int i = 0; i < s.c; ++i) acc += in[i] * wk[i];
              out[o] += acc;
            }
          }
        }
        if (relu)
          for (int o = 0; o < s.o; ++o) out[o] = std::max(out[o], 0.f);
      }
}

void add(const float* const* xs, int count, int64_t n, bool relu, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    float acc = 0.f;
    for (int k = 0; k < count; ++k) acc += xs[k][i];
    y[i] = relu ? std::max(acc, 0.f) : acc;
  }
}

void relu(const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], 0.f);
}

void global_avg_pool(const float* x, int n, int hw, int c, float* y) {
  for (int b = 0; b < n; ++b)
    for (int ch = 0; ch < c; ++ch) {
      double acc = 0;
      for (int p = 0; p < hw; ++p) acc += x[(int64_t(b) * hw + p) * c + ch];
      y[int64_t(b) * c + ch] = static_cast<float>(acc / hw);
    }
}

void fully_connected(const float* x, int n, int k, const float* w, const float* b, int o,
                     bool relu, float* y) {
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < o; ++j) {
      float acc = b ? b[j] : 0.f;
      for (int i = 0; i < k; ++i) acc += x[int64_t(r) * k + i] * w[int64_t(j) * k + i];
      y[int64_t(r) * o + j] = relu ? std::max(acc, 0.f) : acc;
    }
}

void softmax(const float* x, int rows, int cols, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* in = x + int64_t(r) * cols;
    float* out = y + int64_t(r) * cols;
    const float mx = *std::max_element(in, in + cols);
    double sum = 0;
    for (int i = 0; i < cols; ++i) sum += out[i] = std::exp(in[i] - mx);
    for (int i = 0; i < cols; ++i) out[i] = static_cast<float>(out[i] / sum);
  }
}

}  // namespace fq::ref
