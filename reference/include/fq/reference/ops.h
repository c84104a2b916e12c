// Float reference operators (NHWC activations, [O,KH,KW,I] weights). They define what the float
// graphs mean, feed calibration, and measure the integer kernels' accuracy. Never linked into the
// integer inference library.
#pragma once
#include <cstdint>

namespace fq::ref {

struct Conv2dShape {
  int n, h, w, c, o, kh, kw, stride, pad_t, pad_l, oh, ow;
};

void conv2d(const Conv2dShape& s, const float* x, const float* w, const float* b, bool relu,
            float* y);
void add(const float* const* xs, int count, int64_t n, bool relu, float* y);
void relu(const float* x, int64_t n, float* y);
void global_avg_pool(const float* x, int n, int hw, int c, float* y);
void fully_connected(const float* x, int n, int k, const float* w, const float* b, int o,
                     bool relu, float* y);
void softmax(const float* x, int rows, int cols, float* y);

// ---- transformer ops (llm_ops.cc; the arithmetic and summation order of llama2.c run.c, built
// without floating-point contraction so results are bit-reproducible) ----

// y[t] = table[ids[t]] for t < T; an id outside [0, V) gives a row of zeros.
void embedding(const int32_t* ids, int t, const float* table, int v, int d, float* y);
// Per row: y = w * (x / sqrt(mean(x^2) + eps)), computed as w[j] * (ss * x[j]) with a float sum.
void rmsnorm(const float* x, int rows, int d, const float* w, float eps, float* y);
// Rotary embedding of adjacent pairs (x[i], x[i+1]), i even, of rows [T, width]; row r is at
// position pos + r; the angle is (pos + r) * base^(-(i % head_dim) / head_dim).
void rope(const float* x, int rows, int width, int head_dim, float base, int pos, float* y);
// y = silu(gate) * up, element-wise.
void swiglu(const float* gate, const float* up, int64_t n, float* y);

struct AttentionShape {
  int t;           // query rows
  int n_heads;     // query heads
  int n_kv_heads;  // key/value heads (n_heads is a multiple)
  int head_dim;
  int seq_len;     // rows of the caches
};
// Writes rows k[r], v[r] into k_cache/v_cache row pos + r, then for each query row r and head h
// softmax(q . k_cache[0..pos+r] / sqrt(head_dim)) weighted sum of v_cache rows (GQA: head h reads
// kv head h / (n_heads / n_kv_heads)). `att` holds seq_len floats of scratch. Contract:
// 0 <= pos and pos + t <= seq_len; otherwise nothing is written to the caches and y is zeroed.
void attention(const AttentionShape& s, const float* q, const float* k, const float* v,
               float* k_cache, float* v_cache, int pos, float* att, float* y);

}  // namespace fq::ref
