// Mamba float32 decode graph (graph.h).
#include "graph.h"

#include <cmath>
#include <utility>

#include "graph_builder.h"

namespace fq::mamba {

namespace {

using Attrs = std::map<std::string, Attr>;

using Builder = tools::GraphBuilder;

}  // namespace

Graph build_float_graph(const Model& m, const std::string& name, const std::string& tokenizer) {
  const Config& c = m.config;
  const int64_t D = c.d_model, Di = c.d_inner(), N = c.d_state, K = c.d_conv, R = c.dt_rank,
                V = c.padded_vocab();
  Builder b;
  b.g.name = name;
  b.g.meta["model"] = "mamba";
  b.g.meta["d_model"] = std::to_string(D);
  b.g.meta["n_layer"] = std::to_string(c.n_layer);
  b.g.meta["vocab_size"] = std::to_string(c.vocab_size);
  b.g.meta["d_state"] = std::to_string(N);
  b.g.meta["d_conv"] = std::to_string(K);
  b.g.meta["expand"] = std::to_string(c.expand);
  b.g.meta["dt_rank"] = std::to_string(R);
  if (!tokenizer.empty()) b.g.meta["tokenizer"] = tokenizer;
  b.g.inputs = {"tokens", "pos"};
  b.g.outputs = {"logits"};
  b.tensor("tokens", DType::i32, {1});
  b.tensor("pos", DType::i32, {1});
  const double eps = c.norm_eps;

  const std::string emb = b.constant("backbone.embeddings.weight", m.v("backbone.embeddings.weight").data(), {V, D});
  std::string x = b.node("embed", "embedding", {"tokens", emb}, {1, D});
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "backbone.layers." + std::to_string(l) + ".";
    const std::string q = p + "mixer.";
    auto fc = [&](const std::string& out, const std::string& in, const std::string& w,
                  int64_t rows, const std::string& bias = "") {
      std::vector<std::string> ins = {in, w};
      if (!bias.empty()) ins.push_back(bias);
      return b.node(q + out, "fully_connected", ins, {1, rows});
    };
    const std::vector<float>& w_in = m.mixer(l, "in_proj.weight");
    const std::vector<float>& w_x = m.mixer(l, "x_proj.weight");
    const std::string norm_w = b.constant(p + "norm.weight", m.v(p + "norm.weight").data(), {D});
    const std::string in_x = b.constant(q + "in_proj.weight.x", w_in.data(), {Di, D});
    const std::string in_z = b.constant(q + "in_proj.weight.z", w_in.data() + Di * D, {Di, D});
    const std::string conv_w = b.constant(q + "conv1d.weight", m.mixer(l, "conv1d.weight").data(), {Di, K});
    const std::string conv_b = b.constant(q + "conv1d.bias", m.mixer(l, "conv1d.bias").data(), {Di});
    const std::string xp_dt = b.constant(q + "x_proj.weight.dt", w_x.data(), {R, Di});
    const std::string xp_B = b.constant(q + "x_proj.weight.B", w_x.data() + R * Di, {N, Di});
    const std::string xp_C = b.constant(q + "x_proj.weight.C", w_x.data() + (R + N) * Di, {N, Di});
    const std::string dt_w = b.constant(q + "dt_proj.weight", m.mixer(l, "dt_proj.weight").data(), {Di, R});
    const std::string dt_b = b.constant(q + "dt_proj.bias", m.mixer(l, "dt_proj.bias").data(), {Di});
    std::vector<float> A(size_t(Di * N));
    const std::vector<float>& A_log = m.mixer(l, "A_log");
    for (size_t i = 0; i < A.size(); ++i) A[i] = float(-std::exp(double(A_log[i])));
    const std::string a = b.constant(q + "A", A.data(), {Di, N});
    const std::string d_skip = b.constant(q + "D", m.mixer(l, "D").data(), {Di});
    const std::string out_w = b.constant(q + "out_proj.weight", m.mixer(l, "out_proj.weight").data(), {D, Di});
    const std::string conv_state = q + "conv_state", ssm_state = q + "ssm_state";
    b.tensor(conv_state, DType::f32, {K - 1, Di}, true);
    b.tensor(ssm_state, DType::f32, {Di, N}, true);

    const std::string h = b.node(p + "norm", "rmsnorm", {x, norm_w}, {1, D}, {{"eps", eps}});
    const std::string xi = fc("in_proj.x", h, in_x, Di);
    const std::string z = fc("in_proj.z", h, in_z, Di);
    const std::string cv = b.node(q + "conv", "causal_conv1d", {xi, conv_w, conv_b, conv_state}, {1, Di});
    const std::string u = b.node(q + "conv_act", "silu", {cv}, {1, Di});
    const std::string dt_low = fc("x_proj.dt", u, xp_dt, R);
    const std::string Bt = fc("x_proj.B", u, xp_B, N);
    const std::string Ct = fc("x_proj.C", u, xp_C, N);
    const std::string dt_raw = fc("dt_proj", dt_low, dt_w, Di, dt_b);
    const std::string dt = b.node(q + "dt", "softplus", {dt_raw}, {1, Di});
    const std::string y = b.node(q + "scan", "selective_scan", {u, dt, a, Bt, Ct, d_skip, ssm_state}, {1, Di});
    const std::string g = b.node(q + "gate", "silu", {z}, {1, Di});
    const std::string yg = b.node(q + "gated", "mul", {y, g}, {1, Di});
    const std::string o = fc("out_proj", yg, out_w, D);
    x = b.node(p + "residual", "add", {x, o}, {1, D});
  }
  const std::string nf = b.constant("backbone.norm_f.weight", m.v("backbone.norm_f.weight").data(), {D});
  x = b.node("norm_f", "rmsnorm", {x, nf}, {1, D}, {{"eps", eps}});
  const std::string head = m.tensors.count("lm_head.weight")
                               ? b.constant("lm_head.weight", m.v("lm_head.weight").data(), {V, D})
                               : emb;  // tied: the embedding table is the head
  b.node("logits", "fully_connected", {x, head}, {1, V});
  validate_graph(b.g);
  return std::move(b.g);
}

}  // namespace fq::mamba
