// Float32 baselines of the llm operators for the benchmark (not part of FQ): plain loops compiled
// with AVX-512 flags (llm_f32.cc).
#pragma once
#include <cstdint>

namespace fq::bench {

// One attention head: logits = K q (K [n][hd]), softmax, o = P V (V [n][hd]); p is scratch [n].
void attention_head_f32(const float* q, const float* k, const float* v, int64_t n, int hd, float* p,
                        float* o);
// y = x / sqrt(mean(x^2) + eps).
void rmsnorm_f32(const float* x, int64_t n, float eps, float* y);
// Row softmax (AVX-512 intrinsics, polynomial exp).
void softmax_f32(const float* x, int64_t n, float* y);
// y = (x - mean) / sqrt(var + eps) * g + b.
void layernorm_f32(const float* x, int64_t n, const float* g, const float* b, float eps, float* y);
// y = silu(g) * u.
void swiglu_f32(const float* g, const float* u, int64_t n, float* y);

}  // namespace fq::bench
