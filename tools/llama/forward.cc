// Float32 reference forward pass and sampler, arithmetic identical to llama2.c run.c (forward.h).
#include "forward.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>

#include "fq/graph.h"

namespace fq::llama {

RunState::RunState(const LlamaConfig& c) : config(c) {
  validate_config(c, "RunState");
  const size_t kv = static_cast<size_t>(c.n_layers) * c.seq_len * c.kv_dim();
  x.assign(c.dim, 0.f);
  xb.assign(c.dim, 0.f);
  xb2.assign(c.dim, 0.f);
  hb.assign(c.hidden_dim, 0.f);
  hb2.assign(c.hidden_dim, 0.f);
  q.assign(c.dim, 0.f);
  att.assign(static_cast<size_t>(c.n_heads) * c.seq_len, 0.f);
  logits.assign(c.vocab_size, 0.f);
  key_cache.assign(kv, 0.f);
  value_cache.assign(kv, 0.f);
}

void rmsnorm(float* o, const float* x, const float* weight, int size) {
  float ss = 0.0f;
  for (int j = 0; j < size; j++) ss += x[j] * x[j];
  ss /= size;
  ss += 1e-5f;
  ss = 1.0f / sqrtf(ss);
  for (int j = 0; j < size; j++) o[j] = weight[j] * (ss * x[j]);
}

void softmax(float* x, int size) {
  float max_val = x[0];
  for (int i = 1; i < size; i++)
    if (x[i] > max_val) max_val = x[i];
  float sum = 0.0f;
  for (int i = 0; i < size; i++) {
    x[i] = expf(x[i] - max_val);
    sum += x[i];
  }
  for (int i = 0; i < size; i++) x[i] /= sum;
}

void matmul(float* xout, const float* x, const float* w, int n, int d) {
  for (int i = 0; i < d; i++) {
    const float* row = w + static_cast<size_t>(i) * n;
    float val = 0.0f;
    for (int j = 0; j < n; j++) val += row[j] * x[j];
    xout[i] = val;
  }
}

void rope(float* v, int size, int head_size, int pos) {
  for (int i = 0; i < size; i += 2) {
    const int head_dim = i % head_size;
    const float freq = 1.0f / powf(10000.0f, head_dim / static_cast<float>(head_size));
    const float val = pos * freq;
    const float fcr = cosf(val);
    const float fci = sinf(val);
    const float v0 = v[i];
    const float v1 = v[i + 1];
    v[i] = v0 * fcr - v1 * fci;
    v[i + 1] = v0 * fci + v1 * fcr;
  }
}

const float* forward(const LlamaWeights& w, RunState& s, int token, int pos) {
  const LlamaConfig& p = w.config;
  if (s.config != p) throw fq::Error(w.path + ": forward: RunState built for another config");
  if (token < 0 || token >= p.vocab_size || pos < 0 || pos >= p.seq_len) {
    std::ostringstream m;
    m << w.path << ": forward: token " << token << " / position " << pos
      << " out of range (vocab_size " << p.vocab_size << ", seq_len " << p.seq_len << ")";
    throw fq::Error(m.str());
  }
  const int dim = p.dim;
  const int kv_dim = p.kv_dim();
  const int kv_mul = p.kv_mul();
  const int hidden_dim = p.hidden_dim;
  const int head_size = p.head_size();
  float* x = s.x.data();
  std::memcpy(x, w.token_embedding.data() + static_cast<size_t>(token) * dim, dim * sizeof(float));

  for (int l = 0; l < p.n_layers; l++) {
    const LlamaLayer& L = w.layers[l];
    rmsnorm(s.xb.data(), x, L.rms_att.data(), dim);

    // Keys and values are written straight into this position's cache row.
    const size_t loff = static_cast<size_t>(l) * p.seq_len * kv_dim;
    float* k = s.key_cache.data() + loff + static_cast<size_t>(pos) * kv_dim;
    float* v = s.value_cache.data() + loff + static_cast<size_t>(pos) * kv_dim;
    matmul(s.q.data(), s.xb.data(), L.wq.data(), dim, dim);
    matmul(k, s.xb.data(), L.wk.data(), dim, kv_dim);
    matmul(v, s.xb.data(), L.wv.data(), dim, kv_dim);

    // RoPE: q over all dim entries, k over its kv_dim entries; the angle depends only on the
    // position inside the head, so rotating them separately equals run.c's joint loop.
    rope(s.q.data(), dim, head_size, pos);
    rope(k, kv_dim, head_size, pos);

    // Multi-head attention; query head h reads key/value head h / kv_mul (GQA).
    const float scale = sqrtf(static_cast<float>(head_size));
    for (int h = 0; h < p.n_heads; h++) {
      const float* qh = s.q.data() + h * head_size;
      float* att = s.att.data() + static_cast<size_t>(h) * p.seq_len;
      for (int t = 0; t <= pos; t++) {
        const float* kt = s.key_cache.data() + loff + static_cast<size_t>(t) * kv_dim +
                          (h / kv_mul) * head_size;
        float score = 0.0f;
        for (int i = 0; i < head_size; i++) score += qh[i] * kt[i];
        score /= scale;
        att[t] = score;
      }
      softmax(att, pos + 1);
      float* xb = s.xb.data() + h * head_size;
      std::memset(xb, 0, head_size * sizeof(float));
      for (int t = 0; t <= pos; t++) {
        const float* vt = s.value_cache.data() + loff + static_cast<size_t>(t) * kv_dim +
                          (h / kv_mul) * head_size;
        const float a = att[t];
        for (int i = 0; i < head_size; i++) xb[i] += a * vt[i];
      }
    }

    matmul(s.xb2.data(), s.xb.data(), L.wo.data(), dim, dim);
    for (int i = 0; i < dim; i++) x[i] += s.xb2[i];

    // FFN: w2(silu(w1 x) * w3 x)
    rmsnorm(s.xb.data(), x, L.rms_ffn.data(), dim);
    matmul(s.hb.data(), s.xb.data(), L.w1.data(), dim, hidden_dim);
    matmul(s.hb2.data(), s.xb.data(), L.w3.data(), dim, hidden_dim);
    for (int i = 0; i < hidden_dim; i++) {
      float val = s.hb[i];
      val *= (1.0f / (1.0f + expf(-val)));
      val *= s.hb2[i];
      s.hb[i] = val;
    }
    matmul(s.xb.data(), s.hb.data(), L.w2.data(), hidden_dim, dim);
    for (int i = 0; i < dim; i++) x[i] += s.xb[i];
  }

  rmsnorm(x, x, w.rms_final.data(), dim);
  matmul(s.logits.data(), x, w.classifier().data(), dim, p.vocab_size);
  return s.logits.data();
}

uint32_t random_u32(uint64_t* state) {
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  return static_cast<uint32_t>((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

float random_f32(uint64_t* state) { return (random_u32(state) >> 8) / 16777216.0f; }

int sample_argmax(const float* probabilities, int n) {
  int max_i = 0;
  float max_p = probabilities[0];
  for (int i = 1; i < n; i++) {
    if (probabilities[i] > max_p) {
      max_i = i;
      max_p = probabilities[i];
    }
  }
  return max_i;
}

int sample_mult(const float* probabilities, int n, float coin) {
  float cdf = 0.0f;
  for (int i = 0; i < n; i++) {
    cdf += probabilities[i];
    if (coin < cdf) return i;
  }
  return n - 1;
}

int sample_topp(const float* probabilities, int n, float topp, float coin) {
  struct ProbIndex {
    float prob;
    int index;
  };
  std::vector<ProbIndex> cand;
  const float cutoff = (1.0f - topp) / (n - 1);
  for (int i = 0; i < n; i++)
    if (probabilities[i] >= cutoff) cand.push_back({probabilities[i], i});
  std::stable_sort(cand.begin(), cand.end(),
                   [](const ProbIndex& a, const ProbIndex& b) { return a.prob > b.prob; });
  const int n0 = static_cast<int>(cand.size());
  float cumulative_prob = 0.0f;
  int last_idx = n0 - 1;
  for (int i = 0; i < n0; i++) {
    cumulative_prob += cand[i].prob;
    if (cumulative_prob > topp) {
      last_idx = i;
      break;
    }
  }
  const float r = coin * cumulative_prob;
  float cdf = 0.0f;
  for (int i = 0; i <= last_idx; i++) {
    cdf += cand[i].prob;
    if (r < cdf) return cand[i].index;
  }
  return cand[last_idx].index;
}

Sampler::Sampler(int vocab_size, float temperature, float topp, uint64_t seed)
    : vocab_size_(vocab_size), temperature_(temperature), topp_(topp), rng_state_(seed) {
  if (vocab_size <= 0) throw fq::Error("Sampler: vocab_size must be positive");
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    throw fq::Error("Sampler: temperature must be finite and >= 0");
  if (!(topp >= 0.0f && topp <= 1.0f)) throw fq::Error("Sampler: topp must be in [0, 1]");
}

int Sampler::sample(float* logits) {
  if (temperature_ == 0.0f) return sample_argmax(logits, vocab_size_);
  for (int q = 0; q < vocab_size_; q++) logits[q] /= temperature_;
  softmax(logits, vocab_size_);
  const float coin = random_f32(&rng_state_);
  if (topp_ <= 0 || topp_ >= 1) return sample_mult(logits, vocab_size_, coin);
  return sample_topp(logits, vocab_size_, topp_, coin);
}

GenerateResult generate(const LlamaWeights& w, const Tokenizer& tok, Sampler& sampler,
                        const std::string& prompt, int steps,
                        const std::function<void(const std::string&)>& on_piece) {
  if (tok.vocab_size() != w.config.vocab_size) {
    std::ostringstream m;
    m << tok.path() << ": tokenizer has " << tok.vocab_size() << " tokens, model " << w.path
      << " has vocab_size " << w.config.vocab_size;
    throw fq::Error(m.str());
  }
  if (steps <= 0 || steps > w.config.seq_len) steps = w.config.seq_len;
  const std::vector<int> prompt_tokens = tok.encode(prompt, true, false);
  for (int t : prompt_tokens)
    if (t < 0 || t >= w.config.vocab_size)
      throw fq::Error(tok.path() + ": encode produced a token outside the model vocabulary");

  using clock = std::chrono::steady_clock;
  GenerateResult res;
  RunState s(w.config);
  int token = prompt_tokens[0];
  res.tokens.push_back(token);
  int pos = 0;
  bool started = false;
  clock::time_point start;
  const int n_prompt = static_cast<int>(prompt_tokens.size());
  while (pos < steps) {
    forward(w, s, token, pos);
    int next;
    if (pos < n_prompt - 1) {
      next = prompt_tokens[pos + 1];  // still feeding the prompt
    } else {
      next = sampler.sample(s.logits.data());
    }
    pos++;
    if (next == kBos) break;  // BOS delimits sequences
    const std::string piece = tok.decode(token, next);
    if (piece_printable(piece)) {
      res.text += piece;
      if (on_piece) on_piece(piece);
    }
    res.tokens.push_back(next);
    token = next;
    if (!started) {
      started = true;
      start = clock::now();
    }
  }
  res.positions = pos;
  if (pos > 1 && started) {
    const double sec = std::chrono::duration<double>(clock::now() - start).count();
    res.tok_per_s = sec > 0 ? (pos - 1) / sec : 0;
  }
  return res;
}

}  // namespace fq::llama
