// Float reference operators of the RWKV graphs (docs/rwkv.md, docs/format.md section 3). Rows are
// tokens ([T, C] activations); recurrent states are updated in place and processed row by row, so
// T rows give the same results as T single-row calls. Compiled without floating-point contraction;
// tools/rwkv/forward.cc uses the same expressions, so the graphs equal it bit for bit.
#pragma once
#include <cstdint>

namespace fq::ref {

// Per row and per group of d / groups channels: (x - mean) / sqrt(var + eps) * w + b, with mean
// and variance summed in double (ggml_norm), then y = (n * w) + b. groups = 1 is LayerNorm.
void layernorm(const float* x, int rows, int d, int groups, const float* w, const float* b,
               float eps, float* y);
// Token shift: y[0] = state, y[t] = x[t - 1]; then state = x[rows - 1].
void token_shift(const float* x, int rows, int d, float* state, float* y);
// Element-wise y = x1 op x2 with x2 repeated (n1 a multiple of n2).
void mul(const float* x1, int64_t n1, const float* x2, int64_t n2, float* y);
void sub(const float* x1, int64_t n1, const float* x2, int64_t n2, float* y);

enum class Unary { sigmoid, tanh, silu, exp, relu_squared, scale, softplus };
// sigmoid 1/(1+expf(-x)), tanhf, silu x/(1+expf(-x)), expf, relu_squared max(x,0)^2, scale x*s,
// softplus log1pf(expf(x)) (x itself above 20, as PyTorch and mamba's kernels; Mamba graphs).
void unary(Unary op, const float* x, int64_t n, float s, float* y);

// Per row and per group: y = x / max(sqrt(sum x^2), eps), the sum in double.
void l2norm(const float* x, int rows, int d, int groups, float eps, float* y);

// RWKV v4 WKV (rwkv.cpp's rwkv_att_wkv_v4) on k, v [rows, c]; time_first u, time_decay w [c]
// (stored as -exp(decay)); state [3, c] = aa, bb, pp. A channel whose bb is 0 has no history and
// uses pp = -1e30, rwkv.cpp's initial state, so a zeroed state is the start of a sequence.
void rwkv_wkv4(const float* k, const float* v, const float* u, const float* w, int rows, int c,
               float* state, float* y);
// RWKV v5/v6 WKV (ggml_rwkv_wkv6): per head h, key i, value j:
//   y_j += (v_j k_i u_i + S_ij) r_i;  S_ij = S_ij w_i + v_j k_i
// r, k, v [rows, H*N]; w the decay factor (exp(-exp(.))) [H*N], or [rows, H*N] when w_rows;
// u [H*N]; state [H, N, N] (S[h][i][j]).
void rwkv_wkv5(const float* r, const float* k, const float* v, const float* w, bool w_rows,
               const float* u, int rows, int heads, int head_size, float* state, float* y);
// RWKV v7 WKV (generalized delta rule, rwkv.cpp's rwkv_wkv_v7): per head h, value i, key j:
//   sa = sum_j a_j S_ij;  S_ij = (S_ij w_j + v_i k_j) + sa b_j;  y_i = sum_j S_ij r_j
// all inputs [rows, H*N]; state [H, N, N] (S[h][i][j]).
void rwkv_wkv7(const float* r, const float* w, const float* k, const float* v, const float* a,
               const float* b, int rows, int heads, int head_size, float* state, float* y);
// RWKV v7 bonus: per head, s = sum_j (k_j r_j) rk_j (in double), y_i = v_i s. rk [H*N].
void rwkv7_bonus(const float* r, const float* k, const float* v, const float* rk, int rows,
                 int heads, int head_size, float* y);

}  // namespace fq::ref
