// Calibration text (the float model's own samples) and evaluation token files.
#include <fstream>
#include <sstream>

#include "forward.h"
#include "quantize.h"

namespace fq::llama {

std::vector<std::vector<int>> sample_sequences(const LlamaWeights& w, int n, int tokens,
                                               uint64_t seed, float topp, bool stop_at_bos) {
  const LlamaConfig& c = w.config;
  if (tokens > c.seq_len) tokens = c.seq_len;
  std::vector<std::vector<int>> out;
  std::vector<float> logits(size_t(c.vocab_size));
  for (int i = 0; i < n; ++i) {
    RunState st(c);
    Sampler sampler(c.vocab_size, 1.0f, topp, seed + uint64_t(i));
    std::vector<int> seq{kBos};
    for (int pos = 0; pos + 1 < tokens; ++pos) {
      const float* l = forward(w, st, seq.back(), pos);
      logits.assign(l, l + c.vocab_size);
      const int next = sampler.sample(logits.data());
      if (next == kBos && stop_at_bos) break;
      seq.push_back(next);
    }
    out.push_back(std::move(seq));
  }
  return out;
}

std::vector<std::vector<int>> read_token_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open token file");
  std::vector<std::vector<int>> out;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    std::istringstream s(line);
    std::vector<int> seq;
    std::string tok;
    while (s >> tok) {
      try {
        size_t used = 0;
        const long v = std::stol(tok, &used);
        if (used != tok.size() || v < 0 || v > (1 << 30)) throw std::invalid_argument(tok);
        seq.push_back(int(v));
      } catch (const std::exception&) {
        throw Error(path + ":" + std::to_string(lineno) + ": bad token id '" + tok + "'");
      }
    }
    if (!seq.empty()) out.push_back(std::move(seq));
  }
  return out;
}

}  // namespace fq::llama
