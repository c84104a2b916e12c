// RWKV reference ops (rwkv_ops.h). Built with -ffp-contract=off: tools/rwkv/forward.cc uses the
// same expressions and equals the graphs bit for bit.
#include "fq/reference/rwkv_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace fq::ref {

void layernorm(const float* x, int rows, int d, int groups, const float* w, const float* b,
               float eps, float* y) {
  const int g = d / groups;
  for (int r = 0; r < rows; ++r)
    for (int q = 0; q < groups; ++q) {
      const int64_t o = int64_t(r) * d + int64_t(q) * g;
      const float* in = x + o;
      float* out = y + o;
      double sum = 0.0;
      for (int i = 0; i < g; ++i) sum += double(in[i]);
      const float mean = float(sum / g);
      double sum2 = 0.0;
      for (int i = 0; i < g; ++i) {
        const float v = in[i] - mean;
        out[i] = v;
        sum2 += double(v * v);
      }
      const float variance = float(sum2 / g);
      const float scale = 1.0f / sqrtf(variance + eps);
      for (int i = 0; i < g; ++i) {
        const float n = out[i] * scale;
        out[i] = n * w[q * g + i] + b[q * g + i];
      }
    }
}

void token_shift(const float* x, int rows, int d, float* state, float* y) {
  if (rows < 1) return;
  std::memcpy(y, state, sizeof(float) * size_t(d));
  if (rows > 1) std::memcpy(y + d, x, sizeof(float) * size_t(rows - 1) * size_t(d));
  std::memcpy(state, x + int64_t(rows - 1) * d, sizeof(float) * size_t(d));
}

void mul(const float* x1, int64_t n1, const float* x2, int64_t n2, float* y) {
  for (int64_t i = 0; i < n1; ++i) y[i] = x1[i] * x2[i % n2];
}

void sub(const float* x1, int64_t n1, const float* x2, int64_t n2, float* y) {
  for (int64_t i = 0; i < n1; ++i) y[i] = x1[i] - x2[i % n2];
}

void unary(Unary op, const float* x, int64_t n, float s, float* y) {
  switch (op) {
    case Unary::sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + expf(-x[i]));
      break;
    case Unary::tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = tanhf(x[i]);
      break;
    case Unary::silu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + expf(-x[i]));
      break;
    case Unary::exp:
      for (int64_t i = 0; i < n; ++i) y[i] = expf(x[i]);
      break;
    case Unary::relu_squared:
      for (int64_t i = 0; i < n; ++i) {
        const float v = std::max(x[i], 0.0f);
        y[i] = v * v;
      }
      break;
    case Unary::scale:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
      break;
    case Unary::softplus:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 20.0f ? x[i] : log1pf(expf(x[i]));
      break;
  }
}

void l2norm(const float* x, int rows, int d, int groups, float eps, float* y) {
  const int g = d / groups;
  for (int r = 0; r < rows; ++r)
    for (int q = 0; q < groups; ++q) {
      const int64_t o = int64_t(r) * d + int64_t(q) * g;
      double sum = 0.0;
      for (int i = 0; i < g; ++i) sum += double(x[o + i] * x[o + i]);
      const float scale = 1.0f / std::max(sqrtf(float(sum)), eps);
      for (int i = 0; i < g; ++i) y[o + i] = x[o + i] * scale;
    }
}

void rwkv_wkv4(const float* k, const float* v, const float* u, const float* w, int rows, int c,
               float* state, float* y) {
  float* aa = state;
  float* bb = state + c;
  float* pp = state + 2 * int64_t(c);
  for (int t = 0; t < rows; ++t)
    for (int i = 0; i < c; ++i) {
      const int64_t o = int64_t(t) * c + i;
      const float p = bb[i] == 0.0f ? -1e30f : pp[i];
      float ww = u[i] + k[o];
      float qq = std::fmax(p, ww);
      float e1 = expf(p - qq);
      float e2 = expf(ww - qq);
      const float a = e1 * aa[i] + e2 * v[o];
      const float b = e1 * bb[i] + e2;
      ww = p + w[i];
      qq = std::fmax(ww, k[o]);
      e1 = expf(ww - qq);
      e2 = expf(k[o] - qq);
      aa[i] = e1 * aa[i] + e2 * v[o];
      bb[i] = e1 * bb[i] + e2;
      pp[i] = qq;
      y[o] = a / b;
    }
}

void rwkv_wkv5(const float* r, const float* k, const float* v, const float* w, bool w_rows,
               const float* u, int rows, int heads, int head_size, float* state, float* y) {
  const int n = head_size;
  const int64_t c = int64_t(heads) * n;
  for (int t = 0; t < rows; ++t) {
    const int64_t o = t * c;
    const float* wt = w_rows ? w + o : w;
    std::memset(y + o, 0, sizeof(float) * size_t(c));
    for (int h = 0; h < heads; ++h) {
      float* s = state + int64_t(h) * n * n;
      for (int i = 0; i < n; ++i) {
        const int64_t hi = int64_t(h) * n + i;
        const float k_i = k[o + hi], r_i = r[o + hi], u_i = u[hi], w_i = wt[hi];
        for (int j = 0; j < n; ++j) {
          const int64_t hj = o + int64_t(h) * n + j;
          const float kv = v[hj] * k_i;
          const float prev = s[i * n + j];
          const float tmp = kv * u_i + prev;
          y[hj] += tmp * r_i;
          s[i * n + j] = prev * w_i + kv;
        }
      }
    }
  }
}

void rwkv_wkv7(const float* r, const float* w, const float* k, const float* v, const float* a,
               const float* b, int rows, int heads, int head_size, float* state, float* y) {
  const int n = head_size;
  const int64_t c = int64_t(heads) * n;
  for (int t = 0; t < rows; ++t) {
    const int64_t o = t * c;
    for (int h = 0; h < heads; ++h) {
      float* s = state + int64_t(h) * n * n;
      const int64_t ho = o + int64_t(h) * n;
      for (int i = 0; i < n; ++i) {
        float* si = s + int64_t(i) * n;
        float sa = 0.0f;
        for (int j = 0; j < n; ++j) sa += a[ho + j] * si[j];
        const float v_i = v[ho + i];
        float sum = 0.0f;
        for (int j = 0; j < n; ++j) {
          const float kv = v_i * k[ho + j];
          const float st = (si[j] * w[ho + j] + kv) + sa * b[ho + j];
          si[j] = st;
          sum += st * r[ho + j];
        }
        y[ho + i] = sum;
      }
    }
  }
}

void rwkv7_bonus(const float* r, const float* k, const float* v, const float* rk, int rows,
                 int heads, int head_size, float* y) {
  const int n = head_size;
  const int64_t c = int64_t(heads) * n;
  for (int t = 0; t < rows; ++t)
    for (int h = 0; h < heads; ++h) {
      const int64_t ho = t * c + int64_t(h) * n;
      double sum = 0.0;
      for (int j = 0; j < n; ++j) {
        const float kr = k[ho + j] * r[ho + j];
        sum += double(kr * rk[int64_t(h) * n + j]);
      }
      const float s = float(sum);
      for (int i = 0; i < n; ++i) y[ho + i] = v[ho + i] * s;
    }
}

}  // namespace fq::ref
