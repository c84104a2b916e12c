// Transformer reference ops (ops.h). Same expressions and summation order as llama2.c run.c
// (tools/llama/forward.cc), compiled with -ffp-contract=off: bit-identical to it.
#include <cmath>
#include <cstring>

#include "fq/reference/ops.h"

namespace fq::ref {

void embedding(const int32_t* ids, int t, const float* table, int v, int d, float* y) {
  for (int r = 0; r < t; ++r) {
    float* out = y + int64_t(r) * d;
    if (ids[r] < 0 || ids[r] >= v) {
      std::memset(out, 0, sizeof(float) * size_t(d));
      continue;
    }
    std::memcpy(out, table + int64_t(ids[r]) * d, sizeof(float) * size_t(d));
  }
}

void rmsnorm(const float* x, int rows, int d, const float* w, float eps, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* in = x + int64_t(r) * d;
    float* out = y + int64_t(r) * d;
    float ss = 0.0f;
    for (int j = 0; j < d; j++) ss += in[j] * in[j];
    ss /= d;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < d; j++) out[j] = w[j] * (ss * in[j]);
  }
}

void rope(const float* x, int rows, int width, int head_dim, float base, int pos, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* in = x + int64_t(r) * width;
    float* out = y + int64_t(r) * width;
    const int p = pos + r;
    for (int i = 0; i < width; i += 2) {
      const int hd = i % head_dim;
      const float freq = 1.0f / powf(base, hd / static_cast<float>(head_dim));
      const float val = p * freq;
      const float fcr = cosf(val);
      const float fci = sinf(val);
      const float v0 = in[i];
      const float v1 = in[i + 1];
      out[i] = v0 * fcr - v1 * fci;
      out[i + 1] = v0 * fci + v1 * fcr;
    }
  }
}

void swiglu(const float* gate, const float* up, int64_t n, float* y) {
  for (int64_t i = 0; i < n; i++) {
    float val = gate[i];
    val *= (1.0f / (1.0f + expf(-val)));
    val *= up[i];
    y[i] = val;
  }
}

void attention(const AttentionShape& s, const float* q, const float* k, const float* v,
               float* k_cache, float* v_cache, int pos, float* att, float* y) {
  const int hd = s.head_dim;
  const int dim = s.n_heads * hd, kv_dim = s.n_kv_heads * hd;
  const int kv_mul = s.n_heads / s.n_kv_heads;
  if (pos < 0 || int64_t(pos) + s.t > s.seq_len) {
    std::memset(y, 0, sizeof(float) * size_t(s.t) * size_t(dim));
    return;
  }
  std::memcpy(k_cache + int64_t(pos) * kv_dim, k, sizeof(float) * size_t(s.t) * size_t(kv_dim));
  std::memcpy(v_cache + int64_t(pos) * kv_dim, v, sizeof(float) * size_t(s.t) * size_t(kv_dim));
  const float scale = sqrtf(static_cast<float>(hd));
  for (int r = 0; r < s.t; ++r) {
    const int last = pos + r;  // causal: positions 0..last
    for (int h = 0; h < s.n_heads; h++) {
      const float* qh = q + int64_t(r) * dim + h * hd;
      for (int t = 0; t <= last; t++) {
        const float* kt = k_cache + int64_t(t) * kv_dim + (h / kv_mul) * hd;
        float score = 0.0f;
        for (int i = 0; i < hd; i++) score += qh[i] * kt[i];
        score /= scale;
        att[t] = score;
      }
      // softmax, as run.c
      float max_val = att[0];
      for (int t = 1; t <= last; t++)
        if (att[t] > max_val) max_val = att[t];
      float sum = 0.0f;
      for (int t = 0; t <= last; t++) {
        att[t] = expf(att[t] - max_val);
        sum += att[t];
      }
      for (int t = 0; t <= last; t++) att[t] /= sum;
      float* out = y + int64_t(r) * dim + h * hd;
      std::memset(out, 0, sizeof(float) * size_t(hd));
      for (int t = 0; t <= last; t++) {
        const float* vt = v_cache + int64_t(t) * kv_dim + (h / kv_mul) * hd;
        const float a = att[t];
        for (int i = 0; i < hd; i++) out[i] += a * vt[i];
      }
    }
  }
}

}  // namespace fq::ref
