#include "lm.h"

#include <algorithm>

namespace fqrun {

bool is_decode_graph(const fq::Graph& g) {
  return std::find(g.inputs.begin(), g.inputs.end(), "tokens") != g.inputs.end() &&
         std::find(g.inputs.begin(), g.inputs.end(), "pos") != g.inputs.end();
}

int64_t context_length(const fq::Graph& g, const std::string& path) {
  int64_t context = 0;
  for (const fq::NodeDef& n : g.nodes) {
    if (n.op != "attention") continue;
    for (const std::string& in : n.inputs) {
      const fq::TensorDef& t = g.tensor(in);
      if (!t.is_state || t.shape.empty()) continue;
      context = context ? std::min(context, t.shape[0]) : t.shape[0];
    }
  }
  if (context < 1) {
    for (const fq::TensorDef& t : g.tensors)
      if (t.is_state) return kNoContextLimit;  // recurrent state (RWKV): no context limit
    throw fq::Error(path + ": the graph has no attention node with a KV cache (not a decode graph)");
  }
  return context;
}

bool is_byte_model(const fq::Graph& g) {
  const auto it = g.meta.find("tokenizer");
  if (it != g.meta.end()) return it->second == "bytes";
  for (const std::string& out : g.outputs)
    if (out == "logits") {
      const fq::TensorDef& t = g.tensor(out);
      return !t.shape.empty() && t.shape.back() == 256;
    }
  return false;
}

std::string tokenizer_file(const fq::Graph& g, const std::string& path, const std::string& why) {
  const auto it = g.meta.find("tokenizer");
  if (it == g.meta.end() || it->second.empty())
    throw fq::Error(path + ": the graph names no tokenizer (meta 'tokenizer'), which " + why +
                    " needs; fqimport-llama writes it");
  return dirname_of(path) + "/" + it->second;
}

DecodeSession::DecodeSession(const fq::Graph& g, const std::string& path, const fq::Options& opt)
    : s_(g, opt) {
  if (!is_decode_graph(g))
    throw fq::Error(path + ": not a language-model decode graph (needs inputs 'tokens' and 'pos')");
  context_ = context_length(g, path);
  tokens_ = s_.input("tokens");
  pos_ = s_.input("pos");
  if (tokens_.dtype != fq::DType::i32 || tokens_.shape != std::vector<int64_t>{1} ||
      pos_.dtype != fq::DType::i32 || pos_.shape != std::vector<int64_t>{1})
    throw fq::Error(path + ": inputs 'tokens' and 'pos' must be i32 [1]");
  bool has_logits = false;
  for (size_t i = 0; i < s_.num_outputs(); ++i) has_logits = has_logits || s_.output(i).name == "logits";
  if (!has_logits) throw fq::Error(path + ": the graph has no output 'logits'");
  logits_ = real_output(s_, "logits");
  if (logits_.rows != 1 || logits_.cols < 1 || logits_.cols > (int64_t(1) << 24))
    throw fq::Error(path + ": output 'logits' " + shape_str(logits_.values.shape) +
                    " must be [1, vocab]");
  if (!logits_.is_float() && !logits_.has_row_scale && logits_.values.quant.empty())
    throw fq::Error(path + ": output 'logits' is " + fq::dtype_name(logits_.values.dtype) +
                    " without a scale (an output 'logits_scale' or quant)");
  vocab_ = int(logits_.cols);
}

void DecodeSession::step(int token, int pos) {
  static_cast<int32_t*>(tokens_.data)[0] = token;
  static_cast<int32_t*>(pos_.data)[0] = pos;
  s_.run();
}

}  // namespace fqrun
