// Float32 reference forward pass and sampler for llama2.c models: the same arithmetic, in the same
// order, as llama2.c run.c's forward() and sampler (docs/llama.md). This is the ground truth the
// FQ float graph and the integer graph are checked against; it is deliberately plain (one thread,
// sequential float sums, no fast-math), so results are reproducible bit for bit.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "tokenizer.h"

namespace fq::llama {

// Activations and the KV cache of one sequence (llama2.c's RunState).
struct RunState {
  explicit RunState(const LlamaConfig& c);
  LlamaConfig config;
  std::vector<float> x, xb, xb2;   // [dim] residual stream and scratch
  std::vector<float> hb, hb2;      // [hidden_dim]
  std::vector<float> q;            // [dim]
  std::vector<float> att;          // [n_heads, seq_len] attention scores / weights
  std::vector<float> logits;       // [vocab_size]
  std::vector<float> key_cache;    // [n_layers, seq_len, kv_dim] (keys after RoPE)
  std::vector<float> value_cache;  // [n_layers, seq_len, kv_dim]
};

// Building blocks, exactly as in run.c.
// o = weight * x / sqrt(mean(x^2) + 1e-5)   (sum in index order, float)
void rmsnorm(float* o, const float* x, const float* weight, int size);
// In-place softmax with max subtraction.
void softmax(float* x, int size);
// xout[d] = W[d, n] @ x[n], W row-major, each dot product summed in index order.
void matmul(float* xout, const float* x, const float* w, int n, int d);
// Rotates adjacent pairs (v[i], v[i+1]) for even i < size by pos * 10000^(-(i % head_size) /
// head_size) radians.
void rope(float* v, int size, int head_size, int pos);

// Runs token `token` at position `pos` (0 <= pos < seq_len; positions 0..pos-1 must already be
// in the KV cache) and returns the logits (state.logits, vocab_size floats). Throws fq::Error on
// a token or position out of range or a state built for another config.
const float* forward(const LlamaWeights& w, RunState& s, int token, int pos);

// llama2.c's xorshift64* generator (random_u32 / random_f32).
uint32_t random_u32(uint64_t* state);
float random_f32(uint64_t* state);  // in [0, 1)

int sample_argmax(const float* probabilities, int n);
// Inverse-CDF sample with coin in [0, 1) (n - 1 on rounding shortfall).
int sample_mult(const float* probabilities, int n, float coin);
// Nucleus sampling: the smallest prefix of tokens, in descending probability order, whose
// cumulative probability exceeds topp (candidates below (1 - topp) / (n - 1) are dropped first).
// Equal probabilities keep index order (a stable sort; run.c uses qsort, whose tie order glibc
// also keeps stable for arrays this size).
int sample_topp(const float* probabilities, int n, float topp, float coin);

// llama2.c's Sampler: temperature 0 = greedy argmax; otherwise logits / temperature, softmax,
// one random_f32 coin per call, then sample_mult (topp <= 0 or >= 1) or sample_topp.
class Sampler {
 public:
  Sampler(int vocab_size, float temperature, float topp, uint64_t seed);
  // Modifies `logits` in place (divided by the temperature and softmaxed) like run.c.
  int sample(float* logits);
  uint64_t rng_state() const { return rng_state_; }

 private:
  int vocab_size_;
  float temperature_, topp_;
  uint64_t rng_state_;
};

// run.c's generate(): encode the prompt with BOS, feed it, then sample until `steps` positions
// are done (steps <= 0 or > seq_len means seq_len) or BOS is produced. Returns the text run.c
// prints to stdout before its final newline: every decoded piece that passes piece_printable.
// `on_piece`, when given, is called with each printed piece as it is produced (run.c's streaming
// printf; it runs inside the timed loop, as in run.c).
struct GenerateResult {
  std::string text;         // everything printed
  std::vector<int> tokens;  // BOS, the rest of the prompt tokens, then the sampled tokens
  int positions = 0;     // forward passes run (run.c's final pos)
  double tok_per_s = 0;  // run.c's measure: (pos - 1) / time since the first token was printed
};
GenerateResult generate(const LlamaWeights& w, const Tokenizer& tok, Sampler& sampler,
                        const std::string& prompt, int steps,
                        const std::function<void(const std::string&)>& on_piece = nullptr);

}  // namespace fq::llama
