// Language-model decode graphs (docs/fqrun.md, "Language models"): what `fqrun generate` and
// `fqrun eval` need from them. Inputs `tokens` and `pos` (i32 [1]); output `logits` [1, vocab],
// f32 (the float graph) or integer with its row scale `logits_scale` (the integer graphs,
// docs/llm_int.md); the KV caches are state tensors updated by `attention` nodes.
#pragma once
#include <cstdint>
#include <string>

#include "common.h"

namespace fqrun {

// True when the graph has inputs named `tokens` and `pos` (a decode graph, not an image model).
bool is_decode_graph(const fq::Graph& g);

// The context length: the rows (first dimension) of the smallest state tensor an `attention`
// node updates (the KV caches, and their scales in integer graphs). A recurrent graph (state
// tensors but no attention, e.g. RWKV) has no limit: kNoContextLimit. Throws fq::Error naming
// `path` when the graph has neither.
constexpr int64_t kNoContextLimit = (int64_t{1} << 31) - 1;
int64_t context_length(const fq::Graph& g, const std::string& path);

// A byte-level model (docs/fqrun.md): meta `tokenizer: bytes`, or no `tokenizer` and an output
// `logits` of 256 columns. Its token ids are the bytes of the text; there is no tokenizer file.
bool is_byte_model(const fq::Graph& g);

// The tokenizer file named by meta `tokenizer`, resolved next to the graph. Throws fq::Error
// naming `path` and `why` (e.g. "--text") when the graph names none.
std::string tokenizer_file(const fq::Graph& g, const std::string& path, const std::string& why);

// A session on a decode graph with its inputs and logits bound and checked.
class DecodeSession {
 public:
  DecodeSession(const fq::Graph& g, const std::string& path, const fq::Options& opt);
  fq::Session& session() { return s_; }
  const RealOutput& logits() const { return logits_; }
  int vocab() const { return vocab_; }
  int64_t context() const { return context_; }
  // Runs token `token` at position `pos` (the caller keeps both in range).
  void step(int token, int pos);

 private:
  fq::Session s_;
  fq::TensorView tokens_, pos_;
  RealOutput logits_;
  int vocab_ = 0;
  int64_t context_ = 0;
};

// fqrun eval --tokens / --text (eval_lm.cc); `a` holds eval's parsed options.
int eval_lm(const Args& a, const Global& global);

}  // namespace fqrun
