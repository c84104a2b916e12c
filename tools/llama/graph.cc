// llama2.c float32 decode graph (graph.h).
#include "graph.h"

#include <utility>

#include "graph_builder.h"

namespace fq::llama {

namespace {

using Builder = tools::GraphBuilder;

}  // namespace

Graph build_float_graph(const LlamaWeights& w, const std::string& name) {
  const LlamaConfig& c = w.config;
  validate_config(c, w.path);
  const int64_t dim = c.dim, hidden = c.hidden_dim, kv_dim = c.kv_dim(), vocab = c.vocab_size;
  const double eps = 1e-5;
  Builder b;
  b.g.name = name;
  b.g.meta["model"] = "llama2.c";
  b.g.meta["dim"] = std::to_string(c.dim);
  b.g.meta["n_layers"] = std::to_string(c.n_layers);
  b.g.meta["n_heads"] = std::to_string(c.n_heads);
  b.g.meta["n_kv_heads"] = std::to_string(c.n_kv_heads);
  b.g.meta["vocab_size"] = std::to_string(c.vocab_size);
  b.g.meta["seq_len"] = std::to_string(c.seq_len);
  b.g.inputs = {"tokens", "pos"};
  b.g.outputs = {"logits"};
  b.tensor("tokens", DType::i32, {1});
  b.tensor("pos", DType::i32, {1});
  b.constant("token_embedding", w.token_embedding, {vocab, dim});
  b.constant("rms_final", w.rms_final, {dim});
  if (!c.shared_classifier) b.constant("wcls", w.wcls, {vocab, dim});

  std::string x = b.node("embed", "embedding", {"tokens", "token_embedding"}, {1, dim});
  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaLayer& L = w.layers[l];
    const std::string p = "layer" + std::to_string(l) + ".";
    b.constant(p + "rms_att", L.rms_att, {dim});
    b.constant(p + "wq", L.wq, {dim, dim});
    b.constant(p + "wk", L.wk, {kv_dim, dim});
    b.constant(p + "wv", L.wv, {kv_dim, dim});
    b.constant(p + "wo", L.wo, {dim, dim});
    b.constant(p + "rms_ffn", L.rms_ffn, {dim});
    b.constant(p + "w1", L.w1, {hidden, dim});
    b.constant(p + "w2", L.w2, {dim, hidden});
    b.constant(p + "w3", L.w3, {hidden, dim});
    b.tensor(p + "k_cache", DType::f32, {c.seq_len, kv_dim}, true);
    b.tensor(p + "v_cache", DType::f32, {c.seq_len, kv_dim}, true);

    const std::string xb = b.node(p + "att_norm", "rmsnorm", {x, p + "rms_att"}, {1, dim}, {{"eps", eps}});
    const std::string q = b.node(p + "q", "fully_connected", {xb, p + "wq"}, {1, dim});
    const std::string k = b.node(p + "k", "fully_connected", {xb, p + "wk"}, {1, kv_dim});
    const std::string v = b.node(p + "v", "fully_connected", {xb, p + "wv"}, {1, kv_dim});
    const std::map<std::string, Attr> rope{{"head_dim", int64_t(c.head_size())}, {"base", 10000.0}};
    const std::string qr = b.node(p + "q_rope", "rope", {q, "pos"}, {1, dim}, rope);
    const std::string kr = b.node(p + "k_rope", "rope", {k, "pos"}, {1, kv_dim}, rope);
    const std::string att =
        b.node(p + "attention", "attention", {qr, kr, v, p + "k_cache", p + "v_cache", "pos"},
               {1, dim}, {{"n_heads", int64_t(c.n_heads)}, {"n_kv_heads", int64_t(c.n_kv_heads)}});
    const std::string o = b.node(p + "o", "fully_connected", {att, p + "wo"}, {1, dim});
    const std::string x1 = b.node(p + "att_res", "add", {x, o}, {1, dim});
    const std::string xb2 = b.node(p + "ffn_norm", "rmsnorm", {x1, p + "rms_ffn"}, {1, dim}, {{"eps", eps}});
    const std::string g1 = b.node(p + "ffn_gate", "fully_connected", {xb2, p + "w1"}, {1, hidden});
    const std::string g3 = b.node(p + "ffn_up", "fully_connected", {xb2, p + "w3"}, {1, hidden});
    const std::string h = b.node(p + "swiglu", "swiglu", {g1, g3}, {1, hidden});
    const std::string f = b.node(p + "ffn_down", "fully_connected", {h, p + "w2"}, {1, dim});
    x = b.node(p + "ffn_res", "add", {x1, f}, {1, dim});
  }
  const std::string xf = b.node("final_norm", "rmsnorm", {x, "rms_final"}, {1, dim}, {{"eps", eps}});
  b.node("logits", "fully_connected",
         {xf, c.shared_classifier ? "token_embedding" : "wcls"}, {1, vocab});
  validate_graph(b.g);
  return std::move(b.g);
}

}  // namespace fq::llama
